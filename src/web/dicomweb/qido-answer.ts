/**
 * One QIDO-RS answer (PS3.18 10.6.3.3, F.2) built from the index's stored DICOM JSON documents of
 * the matching entity (archive/index/query.ts mappedPlan), attribute by attribute, without a
 * DataSet per row: the lowest level's document wins for an attribute several levels keep
 * (Specific Character Set, Timezone Offset From UTC). Attributes come in tag order; a default or
 * requested attribute the entity lacks is returned empty (`{"vr": ...}`, as C-FIND returns a
 * zero-length value). Specific Character Set is never returned: the answer is Unicode.
 * When the query has a sequence matching key the C-FIND response Identifier decides (matching
 * items only, each reduced to its keys, PS3.4 C.2.2.2.6) and is turned into JSON.
 */
import type { MatchedRow } from '../../archive/index/query.js';
import { TAG } from '../../dicom/dictionary.js';
import { type DicomJsonAttribute, type DicomJsonObject, toDicomJson } from '../../dicom/json.js';
import { type Tag, tagHex } from '../../dicom/tag.js';
import { attributeRank, type QidoScope, vrOf } from './qido-params.js';

/** An answer's attributes in tag order: [8 hex digits, attribute]. */
export type AnswerEntries = ReadonlyArray<readonly [string, DicomJsonAttribute]>;

const SCS = '00080005';
const LEVEL_RANK: Readonly<Record<QidoScope['level'], number>> = { STUDY: 1, SERIES: 2, IMAGE: 3 };

/** What every answer of one search shares. */
export interface AnswerContext {
  readonly level: QidoScope['level'];
  /** The DICOMweb base URL (context.ts serviceUrl), for Retrieve URL. */
  readonly baseUrl: string;
  readonly aeTitle: string;
  /** Sorted; ignored with `all`. */
  readonly returnTags: readonly Tag[];
  readonly all: boolean;
}

function firstString(a: DicomJsonAttribute | undefined): string | undefined {
  const v = a?.Value?.[0];
  return typeof v === 'string' ? v : undefined;
}

/** The attribute of `hex` from the lowest level that has it. */
function stored(docs: readonly (DicomJsonObject | undefined)[], hex: string): DicomJsonAttribute | undefined {
  for (let i = docs.length - 1; i >= 0; i--) {
    const a = docs[i]?.[hex];
    if (a !== undefined) return a;
  }
  return undefined;
}

function text(vr: DicomJsonAttribute['vr'], values: readonly (string | number)[]): DicomJsonAttribute {
  return values.length === 0 ? { vr } : { vr, Value: [...values] };
}

/** The computed and answer attributes of a row (PS3.4 C.6.1.1, PS3.18 10.6.3.3.1). */
function computedAttribute(
  tag: Tag,
  m: MatchedRow,
  ctx: AnswerContext,
  uid: (hex: string) => string | undefined,
): DicomJsonAttribute | undefined {
  const r = m.row;
  const count = (n: number | null | undefined) =>
    text('IS', n === null || n === undefined ? [] : [Number(n)]);
  const list = (s: string | null | undefined) =>
    s === null || s === undefined || s === '' ? [] : s.split('\\');
  switch (tag) {
    case TAG.NumberOfPatientRelatedStudies:
      return count(r.numberOfPatientRelatedStudies);
    case TAG.NumberOfPatientRelatedSeries:
      return count(r.numberOfPatientRelatedSeries);
    case TAG.NumberOfPatientRelatedInstances:
      return count(r.numberOfPatientRelatedInstances);
    case TAG.NumberOfStudyRelatedSeries:
      return count(r.numberOfStudyRelatedSeries);
    case TAG.NumberOfStudyRelatedInstances:
      return count(r.numberOfStudyRelatedInstances);
    case TAG.NumberOfSeriesRelatedInstances:
      return count(r.numberOfSeriesRelatedInstances);
    case TAG.ModalitiesInStudy:
      return text('CS', list(r.modalitiesInStudy));
    case TAG.SOPClassesInStudy:
      return text('UI', list(r.sopClassesInStudy));
    case TAG.RetrieveAETitle:
      return text('AE', [ctx.aeTitle]);
    case TAG.InstanceAvailability:
      // Every indexed object is on line: its file is in the store.
      return text('CS', ['ONLINE']);
    case TAG.RetrieveURL: {
      const url = retrieveUrl(ctx, uid);
      return text('UR', url === undefined ? [] : [url]);
    }
    default:
      return undefined;
  }
}

/** PS3.18 10.6.3.3.1: the WADO-RS URL of the entity the answer is about. */
function retrieveUrl(ctx: AnswerContext, uid: (hex: string) => string | undefined): string | undefined {
  const study = uid('0020000D');
  if (study === undefined) return undefined;
  let url = `${ctx.baseUrl}/studies/${encodeURIComponent(study)}`;
  if (ctx.level === 'STUDY') return url;
  const series = uid('0020000E');
  if (series === undefined) return undefined;
  url += `/series/${encodeURIComponent(series)}`;
  if (ctx.level === 'SERIES') return url;
  const instance = uid('00080018');
  return instance === undefined ? undefined : `${url}/instances/${encodeURIComponent(instance)}`;
}

const COMPUTED_FOR_ALL: readonly Tag[] = [
  TAG.NumberOfPatientRelatedStudies,
  TAG.NumberOfPatientRelatedSeries,
  TAG.NumberOfPatientRelatedInstances,
  TAG.NumberOfStudyRelatedSeries,
  TAG.NumberOfStudyRelatedInstances,
  TAG.ModalitiesInStudy,
  TAG.SOPClassesInStudy,
  TAG.NumberOfSeriesRelatedInstances,
  TAG.RetrieveAETitle,
  TAG.RetrieveURL,
  TAG.InstanceAvailability,
];

/** The answer's attributes for a matching row. */
export function answerEntries(m: MatchedRow, ctx: AnswerContext): AnswerEntries {
  const rank = LEVEL_RANK[ctx.level];
  if (m.response !== undefined && !ctx.all) return fromResponse(m, ctx);
  const docs = m.docs;
  const uid = (hex: string) => firstString(stored(docs, hex));
  const out: Array<[string, DicomJsonAttribute]> = [];
  if (ctx.all) {
    const merged: Record<string, DicomJsonAttribute> = Object.assign(
      {},
      ...docs.filter((d) => d !== undefined),
    );
    delete merged[SCS];
    for (const tag of COMPUTED_FOR_ALL) {
      if (attributeRank(tag) > rank) continue;
      const a = computedAttribute(tag, m, ctx, uid);
      if (a !== undefined) merged[tagHex(tag)] = a;
    }
    for (const hex of Object.keys(merged).sort()) out.push([hex, merged[hex] as DicomJsonAttribute]);
    return out;
  }
  for (const tag of ctx.returnTags) {
    const hex = tagHex(tag);
    const a = computedAttribute(tag, m, ctx, uid) ?? stored(docs, hex) ?? { vr: vrOf(tag) };
    out.push([hex, a]);
  }
  return out;
}

/** The answer from the C-FIND response Identifier (sequence matching), with the answer attributes added. */
function fromResponse(m: MatchedRow, ctx: AnswerContext): AnswerEntries {
  const json = toDicomJson(m.response as NonNullable<MatchedRow['response']>);
  delete json[SCS];
  const uid = (hex: string) => firstString(json[hex]) ?? firstString(stored(m.docs, hex));
  const wanted = new Set(ctx.returnTags.map(tagHex));
  const out: Array<[string, DicomJsonAttribute]> = [];
  for (const tag of ctx.returnTags) {
    const hex = tagHex(tag);
    const a = computedAttribute(tag, m, ctx, uid) ?? json[hex] ?? { vr: vrOf(tag) };
    if (wanted.has(hex)) out.push([hex, a]);
  }
  return out;
}

/** The answer as DICOM JSON text (PS3.18 F.2), attributes in tag order. */
export function answerJson(entries: AnswerEntries): string {
  let s = '{';
  for (let i = 0; i < entries.length; i++) {
    const [hex, a] = entries[i] as readonly [string, DicomJsonAttribute];
    if (i > 0) s += ',';
    s += `"${hex}":${JSON.stringify(a)}`;
  }
  return `${s}}`;
}
