/**
 * Key Attribute values of a C-FIND Identifier as match conditions (PS3.4 C.2.2.2): a
 * discriminated union the SQL index can translate and the in-memory matcher evaluates.
 */
import type { DataElement, DataSet } from '../dataset.js';
import { lookupTag, TAG } from '../dictionary.js';
import { isGroupLengthTag, type Tag, tagGroup } from '../tag.js';
import { decodeNumbers, decodeStrings } from '../values.js';
import { isBinaryNumberVR, isStringVR, usesSpecificCharacterSet, type VR } from '../vr.js';
import {
  type DateTimeVR,
  dateTimePairs,
  type Instant,
  joinDateTime,
  parseDateTimeQuery,
} from './date-time.js';
import { type PersonNameKey, personNameKey } from './person-name.js';
import { hasWildcard, isOnlyStars } from './wildcard.js';

export interface MatchOptions {
  /** Match PN values ignoring case (C.2.2.2.1 allows it); the index's *_norm columns are uppercase. */
  readonly caseInsensitivePN?: boolean;
  /**
   * Fuzzy PN matching (PS3.18 10.6.1.2.1 `fuzzymatching=true`): case and accents ignored
   * (person-name.ts foldPersonName) and, for a key group without wild cards, a phonetic match
   * too: each component of the key has the Soundex of the candidate's (person-name.ts soundex).
   */
  readonly fuzzyPN?: boolean;
  /**
   * Match a date key and its time key together as one date-time range (C.2.2.2.5: after Extended
   * Negotiation of combined date-time matching in Query/Retrieve; wlmscpfs always does it for the
   * worklist's Scheduled Procedure Step Start Date and Time).
   */
  readonly combinedDateTime?: boolean;
  /**
   * Extended Negotiation of Multiple Value Matching succeeded (C.2.2.2.8): several values in a key
   * of an attribute with VM > 1 must each match a value of the candidate (AND). Without it the
   * standard leaves several values undefined (C.2.2.2.8 note 4) and we match any of them (OR),
   * as dcm4chee does.
   */
  readonly multipleValueMatching?: boolean;
  /**
   * Keys that are not matched (only returned). Default isNonMatchingKey; a predicate given here
   * replaces it, so compose with isNonMatchingKey to keep those skipped.
   */
  readonly skip?: (tag: Tag) => boolean;
}

interface Key {
  readonly tag: Tag;
  readonly vr: VR;
}

/** Zero-length value (C.2.2.2.3), "*" (C.2.2.2.4 note 1) or a sequence item without keys (C.2.2.2.6). */
export interface UniversalCondition extends Key {
  readonly kind: 'universal';
}

/** The value "" (two QUOTATION MARKs): the attribute is absent or empty in the candidate (C.2.2.2.7). */
export interface EmptyCondition extends Key {
  readonly kind: 'empty';
}

/** Single Value Matching (C.2.2.2.1). */
export interface SingleCondition extends Key {
  readonly kind: 'single';
  /** The value as sent (padding removed). */
  readonly value: string;
  /** DA, TM and DT: the instant the value names; candidates naming the same instant match. */
  readonly instant?: Instant;
  /** IS, DS, binary numbers and AT: compared as numbers. */
  readonly number?: number;
  /** PN: the normalised groups to compare. */
  readonly personName?: PersonNameKey;
}

/** List of UID Matching (C.2.2.2.2): any of the UIDs. */
export interface ListCondition extends Key {
  readonly kind: 'list';
  readonly values: readonly string[];
}

/** Wild Card Matching (C.2.2.2.4) on AE, CS, LO, LT, PN, SH, ST, UC, UR and UT. */
export interface WildcardCondition extends Key {
  readonly kind: 'wildcard';
  readonly pattern: string;
  /** PN: a pattern per normalised group. */
  readonly personName?: PersonNameKey;
}

/** Range Matching (C.2.2.2.5) of one DA, TM or DT attribute; an absent bound is open. */
export interface RangeCondition extends Key {
  readonly kind: 'range';
  readonly vr: DateTimeVR;
  readonly lower: Instant | undefined;
  readonly upper: Instant | undefined;
}

/**
 * Combined date-time Range Matching (C.2.2.2.5): a date key and its time key with ranges of the
 * same form, matched as one DT range on the candidate's date and time (a candidate without
 * time counts as midnight). `tag` is the date attribute. Bounds are wall-clock "YYYYMMDDHHMMSS.FFFFFF".
 */
export interface DateTimeRangeCondition {
  readonly kind: 'dateTimeRange';
  readonly tag: Tag;
  readonly vr: 'DA';
  readonly timeTag: Tag;
  readonly lower: Instant | undefined;
  readonly upper: Instant | undefined;
}

/** Sequence Matching (C.2.2.2.6): some item of the candidate satisfies every condition. */
export interface SequenceCondition extends Key {
  readonly kind: 'sequence';
  readonly vr: 'SQ';
  readonly conditions: readonly MatchCondition[];
}

/** Several values in a key of another VR than UI: see MatchOptions.multipleValueMatching. */
export interface MultipleCondition extends Key {
  readonly kind: 'multiple';
  readonly mode: 'any' | 'all';
  readonly conditions: readonly ValueCondition[];
}

/** A value that cannot be matched as its VR says (a malformed date, a non-number for IS...): matches nothing. */
export interface InvalidCondition extends Key {
  readonly kind: 'invalid';
  readonly value: string;
  readonly reason: string;
}

/** What one value of a key asks for. */
export type ValueCondition =
  | UniversalCondition
  | EmptyCondition
  | SingleCondition
  | WildcardCondition
  | RangeCondition
  | InvalidCondition;

export type MatchCondition =
  | ValueCondition
  | ListCondition
  | MultipleCondition
  | SequenceCondition
  | DateTimeRangeCondition;

/** C.2.2.2.4: the VRs Wild Card Matching applies to. */
const WILDCARD_VRS: ReadonlySet<VR> = new Set<VR>([
  'AE',
  'CS',
  'LO',
  'LT',
  'PN',
  'SH',
  'ST',
  'UC',
  'UR',
  'UT',
]);
/** C.2.2.2.8: the VRs Multiple Value Matching applies to. */
const MULTIPLE_VALUE_VRS: ReadonlySet<VR> = new Set<VR>(['AE', 'AS', 'AT', 'CS', 'LO', 'PN', 'SH', 'UC']);
/** PS3.5 6.2: leading spaces are padding in LO, SH, UC and UR too, which decodeStrings leaves in; PN trims per component. */
const LEADING_PADDING_VRS: ReadonlySet<VR> = new Set<VR>(['LO', 'SH', 'UC', 'UR']);

/**
 * Keys of an Identifier that are never matched: Specific Character Set (C.2.2.2: it says how the
 * others are encoded), Query/Retrieve Level and View, Timezone Offset From UTC (it qualifies the
 * other times; timezone query adjustment is not done), group lengths, command and meta groups.
 */
export function isNonMatchingKey(tag: Tag): boolean {
  return (
    tag === TAG.SpecificCharacterSet ||
    tag === TAG.QueryRetrieveLevel ||
    tag === TAG.QueryRetrieveView ||
    tag === TAG.TimezoneOffsetFromUTC ||
    tagGroup(tag) <= 2 ||
    isGroupLengthTag(tag)
  );
}

/** A value with its insignificant leading spaces removed. */
export function withoutPadding(vr: VR, text: string): string {
  if (text.charCodeAt(0) !== 0x20 || !LEADING_PADDING_VRS.has(vr)) return text;
  let i = 1;
  while (text.charCodeAt(i) === 0x20) i++;
  return text.slice(i);
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/**
 * The values of an element as matching compares them: decoded text (after character set
 * decoding, so any two encodings of the same text are equal), numbers as text for binary VRs
 * and AT, hex for other binary values. [] when absent or zero length.
 */
export function valuesOf(ds: DataSet, tag: Tag): string[] {
  const e = ds.get(tag);
  if (e === undefined) return [];
  // DataSet.strings would look up (and decode) Specific Character Set for every VR; only text VRs use it.
  return elementValues(e, isStringVR(e.vr) && usesSpecificCharacterSet(e.vr) ? ds.characterSets() : []);
}

/** valuesOf for an element whose text is in `charsets` (the Specific Character Set in force). */
export function elementValues(e: DataElement, charsets: readonly string[]): string[] {
  if (!(e.value instanceof Uint8Array) || e.value.length === 0) return [];
  if (isStringVR(e.vr)) {
    const values = decodeStrings(e.value, e.vr, usesSpecificCharacterSet(e.vr) ? charsets : []);
    if (LEADING_PADDING_VRS.has(e.vr))
      for (let i = 0; i < values.length; i++) values[i] = withoutPadding(e.vr, values[i] as string);
    return values;
  }
  if (isBinaryNumberVR(e.vr) || e.vr === 'AT') return decodeNumbers(e.value, e.vr).map(String);
  return [hex(e.value)];
}

function isDataSets(value: readonly string[] | readonly DataSet[]): value is readonly DataSet[] {
  return value.length > 0 && typeof value[0] !== 'string';
}

/**
 * The condition of one key: `value` is the element's values as valuesOf gives them (decoded
 * strings), or a sequence's items. A zero-length value is Universal Matching; "*" too, for any
 * VR (C.2.2.2.4 note 1 says so for the wild card VRs; elsewhere "*" could match nothing, and
 * dcm4che treats it the same way).
 */
export function parseCondition(
  tag: Tag,
  vr: VR,
  value: readonly string[] | readonly DataSet[],
  options: MatchOptions = {},
): MatchCondition {
  if (isDataSets(value)) return sequenceCondition(tag, value, options);
  // A sequence without items (or a malformed one given as text) holds no key: universal.
  if (vr === 'SQ') return { kind: 'universal', tag, vr };
  const values = value as readonly string[];
  const nonEmpty: string[] = [];
  for (const v of values) {
    const text = withoutPadding(vr, v);
    if (text !== '') nonEmpty.push(text);
  }
  if (nonEmpty.length === 0) return { kind: 'universal', tag, vr };
  // C.2.2.2.7: the whole value is two QUOTATION MARKs.
  if (values.length === 1 && nonEmpty[0] === '""') return { kind: 'empty', tag, vr };
  if (nonEmpty.length === 1) return parseValue(tag, vr, nonEmpty[0] as string, options);
  if (nonEmpty.some(isOnlyStars)) return { kind: 'universal', tag, vr };
  if (vr === 'UI') return { kind: 'list', tag, vr, values: nonEmpty };
  const conditions = nonEmpty.map((v) => parseValue(tag, vr, v, options));
  const mode =
    options.multipleValueMatching === true && MULTIPLE_VALUE_VRS.has(vr) && lookupTag(tag)?.vm !== '1'
      ? 'all'
      : 'any';
  return { kind: 'multiple', tag, vr, mode, conditions };
}

function parseValue(tag: Tag, vr: VR, text: string, options: MatchOptions): ValueCondition {
  if (isOnlyStars(text)) return { kind: 'universal', tag, vr };
  switch (vr) {
    case 'DA':
    case 'TM':
    case 'DT': {
      const q = parseDateTimeQuery(vr, text);
      if (q.kind === 'single') return { kind: 'single', tag, vr, value: text, instant: q.instant };
      if (q.kind === 'range') return { kind: 'range', tag, vr, lower: q.lower, upper: q.upper };
      return { kind: 'invalid', tag, vr, value: text, reason: q.reason };
    }
    case 'IS':
    case 'DS':
    case 'AT':
    case 'US':
    case 'SS':
    case 'UL':
    case 'SL':
    case 'FL':
    case 'FD':
    case 'SV':
    case 'UV': {
      const number = Number(text);
      if (!Number.isFinite(number))
        return { kind: 'invalid', tag, vr, value: text, reason: `"${text}" is not a number` };
      return { kind: 'single', tag, vr, value: text, number };
    }
    case 'PN': {
      const personName = personNameKey(text, options.caseInsensitivePN === true, options.fuzzyPN === true);
      if (personName.groups.every((g) => g === undefined || isOnlyStars(g)))
        return { kind: 'universal', tag, vr };
      return hasWildcard(text)
        ? { kind: 'wildcard', tag, vr, pattern: text, personName }
        : { kind: 'single', tag, vr, value: text, personName };
    }
    default:
      if (WILDCARD_VRS.has(vr) && hasWildcard(text)) return { kind: 'wildcard', tag, vr, pattern: text };
      return { kind: 'single', tag, vr, value: text };
  }
}

/**
 * C.2.2.2.6: the key holds one item (further items are ignored); an item without keys, or whose
 * keys are all universal, matches every entity, whether it has the sequence or not: such an item
 * only asks for the sequence (or those of its attributes) to be returned.
 */
function sequenceCondition(tag: Tag, items: readonly DataSet[], options: MatchOptions): MatchCondition {
  const first = items[0];
  if (first === undefined) return { kind: 'universal', tag, vr: 'SQ' };
  const conditions = conditionsOf(first, options);
  if (conditions.every((c) => c.kind === 'universal')) return { kind: 'universal', tag, vr: 'SQ' };
  return { kind: 'sequence', tag, vr: 'SQ', conditions };
}

/** The condition of an element of `ds` (a query data set or item). */
export function conditionOf(ds: DataSet, tag: Tag, options: MatchOptions = {}): MatchCondition | undefined {
  const e = ds.get(tag);
  if (e === undefined) return undefined;
  if (Array.isArray(e.value)) return sequenceCondition(tag, e.value, options);
  return parseCondition(tag, e.vr, valuesOf(ds, tag), options);
}

/**
 * The conditions of every matching key of a query data set (or sequence item), universal ones
 * included, in tag order; with `combinedDateTime`, a date/time pair of the same range form is one
 * dateTimeRange condition in place of the two.
 */
export function conditionsOf(query: DataSet, options: MatchOptions = {}): MatchCondition[] {
  const skip = options.skip ?? isNonMatchingKey;
  const combined = options.combinedDateTime === true ? combinedDateTimeRanges(query, options) : [];
  const joined = new Set<Tag>();
  for (const c of combined) joined.add(c.tag).add(c.timeTag);
  const out: MatchCondition[] = [];
  for (const tag of query.tags()) {
    if (skip(tag)) continue;
    if (joined.has(tag)) {
      const c = combined.find((x) => x.tag === tag);
      if (c !== undefined) out.push(c);
      continue;
    }
    const c = conditionOf(query, tag, options);
    if (c !== undefined) out.push(c);
  }
  return out;
}

/**
 * The combined date-time ranges of a query data set (C.2.2.2.5): for each date key whose time
 * key is present too (pairs from the dictionary, see dateTimePairs), when both are ranges of the
 * same form ("a-b" with "c-d", "-b" with "-d", "a-" with "c-"), one range from date a + time c to
 * date b + time d. "20060705-20060707" with "1000-1800" is July 5 10:00 to July 7 18:00, and
 * "20240101-20240102" with "2200-0200" the four hours across that midnight. Other combinations
 * (a single date with a time range, ...) are matched attribute by attribute, as wlmscpfs does.
 */
export function combinedDateTimeRanges(query: DataSet, options: MatchOptions = {}): DateTimeRangeCondition[] {
  const skip = options.skip ?? isNonMatchingKey;
  const { byDate } = dateTimePairs();
  const out: DateTimeRangeCondition[] = [];
  for (const tag of query.tags()) {
    const timeTag = byDate.get(tag);
    if (timeTag === undefined || !query.has(timeTag) || skip(tag) || skip(timeTag)) continue;
    const date = conditionOf(query, tag, options);
    const time = conditionOf(query, timeTag, options);
    if (date?.kind !== 'range' || time?.kind !== 'range') continue;
    if ((date.lower === undefined) !== (time.lower === undefined)) continue;
    if ((date.upper === undefined) !== (time.upper === undefined)) continue;
    const join = (d: Instant | undefined, t: Instant | undefined): Instant | undefined =>
      d === undefined || t === undefined ? undefined : joinDateTime(d, t);
    out.push({
      kind: 'dateTimeRange',
      tag,
      vr: 'DA',
      timeTag,
      lower: join(date.lower, time.lower),
      upper: join(date.upper, time.upper),
    });
  }
  return out;
}

/** Every invalid condition, nested ones included: what an SCP reports as an Identifier error. */
export function invalidConditions(conditions: readonly MatchCondition[]): InvalidCondition[] {
  const out: InvalidCondition[] = [];
  for (const c of conditions) {
    if (c.kind === 'invalid') out.push(c);
    else if (c.kind === 'multiple' || c.kind === 'sequence') out.push(...invalidConditions(c.conditions));
  }
  return out;
}
