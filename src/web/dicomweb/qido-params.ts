/**
 * The query of a QIDO-RS request (PS3.18 8.3.4, 10.6.1.2) parsed into what the index layer needs:
 * a C-FIND style Identifier (matching keys and return keys, archive/index/query.ts plans it), the
 * attributes to return, the page (limit, offset, orderby) and fuzzy matching.
 *
 * Decisions:
 * - The query string is read from the raw URL and percent-decoded exactly once (RFC 3986 2.1):
 *   `PatientName=C%2A` is `C*`, a wild card. `+` is a plus sign, not a space (RFC 3986 has no
 *   form encoding; PS3.18 8.3.4.1 URI-encodes the values, and `+` is a character of DT offsets
 *   and of `+0100` Timezone Offset values): `%2B` and `+` are both "+", a space is `%20`. A bad
 *   escape (`%ZZ`, a cut UTF-8 sequence) is a 400.
 * - An attribute is named by keyword or by 8 hex digits (also `gggg,eeee`); a dotted path
 *   (`00081111.00081150`, `ReferencedStudySequence.ReferencedSOPInstanceUID`) is a sequence key
 *   (PS3.4 C.2.2.2.6: one item, the keys of the path's last attribute in it).
 * - UI values are lists of UIDs separated by `,` (PS3.18 8.3.4.1) or `\` (PS3.4 C.2.2.2.2).
 * - A matching key given twice is a 400 (its conditions could not be told apart), except UI keys,
 *   whose lists are joined.
 * - A matching key of a level below the search's (SOPInstanceUID in a study search) is a 400 with
 *   its name: PS3.18 10.6.1.2 lists the keys of each level, and a key the index cannot match at that
 *   level must not be ignored silently. includefield of such an attribute is ignored (nothing to return).
 * - Any other parameter that is neither an attribute nor a control parameter (includefield,
 *   fuzzymatching, limit, offset, orderby, accept) is a 400 with its name.
 * - limit is 1..2147483647 and offset 0..2147483647 (decimal digits only); answers are cut at
 *   QIDO_MAX_RESULTS per request (see qido.ts for the Warning header).
 */

import { levelOf } from '../../archive/index/levels.js';
import { defaultOrder, type QuerySort, sortableTags } from '../../archive/index/query.js';
import { DataSet } from '../../dicom/dataset.js';
import { keywordOf, lookupTag, parseTagOrKeyword, TAG } from '../../dicom/dictionary.js';
import { formatTag, type Tag } from '../../dicom/tag.js';
import type { VR } from '../../dicom/vr.js';
import { httpError } from '../errors.js';

/** The most answers one request gets (limit above it is cut, with a Warning: 299). */
export const QIDO_MAX_RESULTS = 1000;

/** What the path names (PS3.18 10.6.1.1): the search level and the UIDs that scope it. */
export interface QidoScope {
  readonly level: 'STUDY' | 'SERIES' | 'IMAGE';
  readonly study?: string;
  readonly series?: string;
}

/** One attribute as the query names it: a tag, or a path of sequence tags down to it. */
type AttributePath = readonly Tag[];

/** A parsed QIDO-RS request. */
export interface QidoSearch {
  readonly scope: QidoScope;
  /** Matching keys with their values, return keys zero-length, sort keys too: the plan's Identifier. */
  readonly identifier: DataSet;
  /** Top-level attributes of each answer (sorted), unless `all`. */
  readonly returnTags: readonly Tag[];
  /** includefield=all: every attribute the index keeps for the levels of the answer. */
  readonly all: boolean;
  readonly fuzzy: boolean;
  readonly offset: number;
  /** The requested limit, or undefined. */
  readonly requestedLimit: number | undefined;
  /** The limit applied: min(requested, QIDO_MAX_RESULTS). */
  readonly limit: number;
  readonly orderBy: readonly QuerySort[];
}

const CONTROL = new Set(['includefield', 'fuzzymatching', 'limit', 'offset', 'orderby', 'accept']);

const RANK: Readonly<Record<string, number>> = { patient: 0, study: 1, series: 2, instance: 3 };
const LEVEL_RANK: Readonly<Record<QidoScope['level'], number>> = { STUDY: 1, SERIES: 2, IMAGE: 3 };

/** Attributes computed by the index, with the level they describe (PS3.4 C.6.1.1). */
const COMPUTED_LEVEL: ReadonlyMap<Tag, number> = new Map([
  [TAG.NumberOfPatientRelatedStudies, 0],
  [TAG.NumberOfPatientRelatedSeries, 0],
  [TAG.NumberOfPatientRelatedInstances, 0],
  [TAG.NumberOfStudyRelatedSeries, 1],
  [TAG.NumberOfStudyRelatedInstances, 1],
  [TAG.ModalitiesInStudy, 1],
  [TAG.SOPClassesInStudy, 1],
  [TAG.NumberOfSeriesRelatedInstances, 2],
]);

/** Attributes of an answer at any level (PS3.4 C.4.1.1.3.2, PS3.18 10.6.3.3). */
const ANSWER_TAGS: ReadonlySet<Tag> = new Set([
  TAG.RetrieveAETitle,
  TAG.RetrieveURL,
  TAG.InstanceAvailability,
  TAG.TimezoneOffsetFromUTC,
  TAG.SpecificCharacterSet,
]);

/** The information-model level rank of a top-level attribute (0 patient ... 3 instance). */
export function attributeRank(tag: Tag): number {
  if (ANSWER_TAGS.has(tag)) return 0;
  return COMPUTED_LEVEL.get(tag) ?? (RANK[levelOf(tag)] as number);
}

// PS3.18 Table 10.6.3-3, with Study Description and the Specific Character Set left out (JSON
// is Unicode). Study Description is not in the table; viewers (OHIF) show it, so it is returned.
const STUDY_DEFAULTS: readonly Tag[] = [
  TAG.StudyDate,
  TAG.StudyTime,
  TAG.AccessionNumber,
  TAG.InstanceAvailability,
  TAG.ModalitiesInStudy,
  TAG.ReferringPhysicianName,
  TAG.TimezoneOffsetFromUTC,
  TAG.RetrieveAETitle,
  TAG.RetrieveURL,
  TAG.PatientName,
  TAG.PatientID,
  TAG.PatientBirthDate,
  TAG.PatientSex,
  TAG.StudyInstanceUID,
  TAG.StudyID,
  TAG.StudyDescription,
  TAG.NumberOfStudyRelatedSeries,
  TAG.NumberOfStudyRelatedInstances,
];

const SERIES_DEFAULTS: readonly Tag[] = [
  TAG.Modality,
  TAG.TimezoneOffsetFromUTC,
  TAG.SeriesDescription,
  TAG.RetrieveAETitle,
  TAG.RetrieveURL,
  TAG.SeriesInstanceUID,
  TAG.SeriesNumber,
  TAG.NumberOfSeriesRelatedInstances,
  TAG.PerformedProcedureStepStartDate,
  TAG.PerformedProcedureStepStartTime,
  TAG.RequestAttributesSequence,
  // Not in the table, but every series answer says which study it is in (the path may not).
  TAG.StudyInstanceUID,
];

const INSTANCE_DEFAULTS: readonly Tag[] = [
  TAG.SOPClassUID,
  TAG.SOPInstanceUID,
  TAG.InstanceAvailability,
  TAG.TimezoneOffsetFromUTC,
  TAG.RetrieveAETitle,
  TAG.RetrieveURL,
  TAG.InstanceNumber,
  TAG.Rows,
  TAG.Columns,
  TAG.BitsAllocated,
  TAG.NumberOfFrames,
  TAG.StudyInstanceUID,
  TAG.SeriesInstanceUID,
];

/**
 * The default return attributes of a search (PS3.18 10.6.3.3): the level's, and those of the
 * levels above that the path does not fix (/series answers carry the study attributes,
 * /instances the study and series ones, /studies/{s}/instances the series ones).
 */
export function defaultReturnTags(scope: QidoScope): readonly Tag[] {
  if (scope.level === 'STUDY') return STUDY_DEFAULTS;
  if (scope.level === 'SERIES')
    return scope.study === undefined ? [...STUDY_DEFAULTS, ...SERIES_DEFAULTS] : SERIES_DEFAULTS;
  if (scope.study === undefined) return [...STUDY_DEFAULTS, ...SERIES_DEFAULTS, ...INSTANCE_DEFAULTS];
  if (scope.series === undefined) return [...SERIES_DEFAULTS, ...INSTANCE_DEFAULTS];
  return INSTANCE_DEFAULTS;
}

function bad(reason: string): Error {
  return httpError(400, 'ERR_HTTP_BAD_QUERY', reason);
}

function decode(text: string, what: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw bad(`${what} is not validly percent-encoded (RFC 3986 2.1)`);
  }
}

/** The raw query of a URL as [name, value] pairs, each percent-decoded once (`+` stays `+`). */
export function queryPairs(url: string): Array<[string, string]> {
  const q = url.indexOf('?');
  if (q < 0) return [];
  const out: Array<[string, string]> = [];
  for (const part of url.slice(q + 1).split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const rawName = eq < 0 ? part : part.slice(0, eq);
    const name = decode(rawName, `the parameter name ${JSON.stringify(rawName)}`);
    const value = eq < 0 ? '' : decode(part.slice(eq + 1), `the value of ${name}`);
    out.push([name, value]);
  }
  return out;
}

/** The tag of one attribute name (keyword, 8 hex digits or gggg,eeee), or undefined. */
function tagOf(name: string): Tag | undefined {
  if (/^[0-9A-Fa-f]{8}$/.test(name)) return Number.parseInt(name, 16) >>> 0;
  if (/^[A-Za-z][A-Za-z0-9]*$/.test(name)) return parseTagOrKeyword(name);
  if (/^\(?[0-9A-Fa-f]{4},[0-9A-Fa-f]{4}\)?$/.test(name)) return parseTagOrKeyword(name);
  return undefined;
}

/** An attribute path (`A` or `A.B.C`), or undefined when a part is not an attribute. */
function pathOf(name: string): AttributePath | undefined {
  const parts = name.split('.');
  const tags: Tag[] = [];
  for (const p of parts) {
    const t = tagOf(p);
    if (t === undefined) return undefined;
    tags.push(t);
  }
  // Every part but the last must be a sequence.
  for (const t of tags.slice(0, -1)) if (vrOf(t) !== 'SQ') return undefined;
  return tags;
}

/** The VR of an attribute in a key (the dictionary's first choice; UN for unknown private ones). */
export function vrOf(tag: Tag): VR {
  const vr = lookupTag(tag)?.vr ?? 'UN';
  return (vr.length > 2 ? vr.slice(0, 2) : vr) as VR;
}

function nameOf(tag: Tag): string {
  return keywordOf(tag) || formatTag(tag);
}

function integer(name: string, text: string, min: number): number {
  if (!/^[0-9]{1,10}$/.test(text)) throw bad(`${name} must be a whole number, not ${JSON.stringify(text)}`);
  const n = Number(text);
  if (n < min || n > 2 ** 31 - 1) throw bad(`${name} must be between ${min} and ${2 ** 31 - 1}, not ${text}`);
  return n;
}

/** The item of `ds` under sequence `tag`, created when absent. */
function itemOf(ds: DataSet, tag: Tag): DataSet {
  const items = ds.sequence(tag);
  if (items !== undefined && items[0] !== undefined) return items[0];
  const item = new DataSet();
  ds.setSequence(tag, [item]);
  return item;
}

/** Sets a key at the end of a path, in UTF-8 (the identifier's Specific Character Set). */
function setKey(root: DataSet, path: AttributePath, value: string): void {
  let ds = root;
  for (const t of path.slice(0, -1)) ds = itemOf(ds, t);
  const tag = path[path.length - 1] as Tag;
  const vr = vrOf(tag);
  if (vr === 'SQ') {
    // A sequence named as a key: its value can only be empty (a return key, the whole sequence).
    if (value !== '')
      throw bad(`${nameOf(tag)} is a sequence: name one of its attributes (${nameOf(tag)}.Keyword)`);
    if (!ds.has(tag)) ds.setSequence(tag, []);
    return;
  }
  if (vr === 'UI') {
    const uids = value.split(/[,\\]/).filter((u) => u !== '');
    const existing = ds.has(tag) ? ds.strings(tag).filter((u) => u !== '') : [];
    ds.setString(tag, [...existing, ...uids], vr);
    return;
  }
  ds.setString(tag, value, vr);
}

/** Parses the query of a QIDO-RS request (see the module comment for the rules). */
export function parseQidoSearch(scope: QidoScope, url: string): QidoSearch {
  const rank = LEVEL_RANK[scope.level];
  const identifier = new DataSet();
  identifier.setString(TAG.SpecificCharacterSet, 'ISO_IR 192');
  const matchingTags = new Set<Tag>();
  const include = new Set<Tag>();
  const seen = new Set<string>();
  let all = false;
  let fuzzy = false;
  let limit: number | undefined;
  let offset: number | undefined;
  const orderBy: QuerySort[] = [];
  const keys: Array<[AttributePath, string, string]> = [];

  for (const [name, value] of queryPairs(url)) {
    const control = name.toLowerCase();
    if (CONTROL.has(control)) {
      switch (control) {
        case 'includefield':
          for (const field of value.split(',')) {
            const f = field.trim();
            if (f === '') continue;
            if (f === 'all') {
              all = true;
              continue;
            }
            const path = pathOf(f);
            if (path === undefined) throw bad(`includefield ${JSON.stringify(f)} is not an attribute`);
            const top = path[0] as Tag;
            if (attributeRank(top) <= rank) include.add(top);
          }
          break;
        case 'fuzzymatching':
          if (value !== 'true' && value !== 'false')
            throw bad(`fuzzymatching must be true or false, not ${JSON.stringify(value)}`);
          fuzzy = value === 'true';
          break;
        case 'limit':
          if (limit !== undefined) throw bad('limit is given twice');
          limit = integer('limit', value, 1);
          break;
        case 'offset':
          if (offset !== undefined) throw bad('offset is given twice');
          offset = integer('offset', value, 0);
          break;
        case 'orderby':
          for (const field of value.split(',')) {
            const f = field.trim();
            if (f === '') continue;
            const descending = f.startsWith('-');
            const attr = descending || f.startsWith('+') ? f.slice(1) : f;
            const tag = tagOf(attr);
            if (tag === undefined || !sortableTags(scope.level).includes(tag))
              throw bad(
                `orderby ${JSON.stringify(attr)} is not supported for a ${scope.level.toLowerCase()} search: ${sortableTags(
                  scope.level,
                )
                  .map(nameOf)
                  .join(', ')}`,
              );
            orderBy.push({ tag, descending });
          }
          break;
        default:
          break; // accept: media-type.ts reads it
      }
      continue;
    }
    const path = pathOf(name);
    if (path === undefined)
      throw bad(`unknown query parameter ${JSON.stringify(name)}: not an attribute nor a QIDO-RS parameter`);
    const top = path[0] as Tag;
    if (ANSWER_TAGS.has(top) && top !== TAG.TimezoneOffsetFromUTC)
      throw bad(`${nameOf(top)} is not a matching key`);
    if (attributeRank(top) > rank)
      throw bad(
        `${nameOf(top)} is an attribute of a lower level than the ${scope.level.toLowerCase()} level of this search`,
      );
    // By tag path: `PatientName` and `00100010` are the same key.
    const id = path.join('.');
    if (seen.has(id) && vrOf(path[path.length - 1] as Tag) !== 'UI') throw bad(`${name} is given twice`);
    seen.add(id);
    if (top === TAG.StudyInstanceUID && scope.study !== undefined)
      throw bad('StudyInstanceUID is given by the path');
    if (top === TAG.SeriesInstanceUID && scope.series !== undefined)
      throw bad('SeriesInstanceUID is given by the path');
    keys.push([path, value, name]);
  }

  if (scope.study !== undefined) identifier.setString(TAG.StudyInstanceUID, scope.study, 'UI');
  if (scope.series !== undefined) identifier.setString(TAG.SeriesInstanceUID, scope.series, 'UI');
  for (const [path, value] of keys) {
    setKey(identifier, path, value);
    matchingTags.add(path[0] as Tag);
  }

  const order = orderBy.length > 0 ? orderBy : defaultOrder(scope.level);
  const returnSet = new Set<Tag>([...defaultReturnTags(scope), ...matchingTags, ...include]);
  // Return keys (and sort keys, for the in-memory index) zero-length in the Identifier: the plan
  // then reads the headers of their levels and computes the counters asked for.
  const planned = new Set<Tag>([...returnSet, ...order.map((s) => s.tag)]);
  if (all)
    for (const t of [
      TAG.PatientID,
      TAG.StudyInstanceUID,
      TAG.SeriesInstanceUID,
      TAG.SOPInstanceUID,
      ...COMPUTED_LEVEL.keys(),
    ])
      if (attributeRank(t) <= rank) planned.add(t);
  for (const t of planned) {
    if (identifier.has(t) || t === TAG.RetrieveURL || t === TAG.SpecificCharacterSet) continue;
    if (attributeRank(t) > rank) continue;
    const vr = vrOf(t);
    if (vr === 'SQ') identifier.setSequence(t, []);
    else identifier.set({ tag: t, vr, value: new Uint8Array(0) });
  }
  const returnTags = [...returnSet].filter((t) => t !== TAG.SpecificCharacterSet).sort((a, b) => a - b);
  const requested = limit;
  return {
    scope,
    identifier,
    returnTags,
    all,
    fuzzy,
    offset: offset ?? 0,
    requestedLimit: requested,
    limit: Math.min(requested ?? QIDO_MAX_RESULTS, QIDO_MAX_RESULTS),
    orderBy,
  };
}
