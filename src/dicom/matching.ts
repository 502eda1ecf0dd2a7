/**
 * Attribute matching of C-FIND (PS3.4 C.2.2.2 for Query/Retrieve, K.6 for the Modality Worklist),
 * pure and without I/O: Identifier keys parsed into conditions the SQL index translates, an
 * in-memory matcher over data sets, and the response Identifier of a match.
 *
 * Decisions where the standard leaves room (each explained where it is implemented):
 * - "*" alone is Universal Matching for every VR; "" (two QUOTATION MARKs) is Empty Value Matching.
 * - Several values in a key: any of them for UI (List of UID Matching) and, without Extended
 *   Negotiation of Multiple Value Matching, for other VRs too; all of them with it.
 * - DA/TM/DT values of reduced precision stand for their first instant, as in DCMTK.
 * - Combined date-time matching when asked for (MatchOptions.combinedDateTime).
 * - PN: per component group, wild cards over a group's text, case-insensitive on request;
 *   normalised as the index's *_norm columns are (normalizePersonName). Fuzzy on request
 *   (QIDO-RS fuzzymatching): accents and case folded, plus Soundex per component.
 * - A sequence key's item with only universal keys matches every entity (it asks for a return).
 * - A candidate lacking a non-universal key does not match, unless the key asks for empty values.
 */
export type {
  DateTimeRangeCondition,
  EmptyCondition,
  InvalidCondition,
  ListCondition,
  MatchCondition,
  MatchOptions,
  MultipleCondition,
  RangeCondition,
  SequenceCondition,
  SingleCondition,
  UniversalCondition,
  ValueCondition,
  WildcardCondition,
} from './matching/condition.js';
export {
  combinedDateTimeRanges,
  conditionOf,
  conditionsOf,
  elementValues,
  invalidConditions,
  isNonMatchingKey,
  parseCondition,
  valuesOf,
} from './matching/condition.js';
export type { DateTimeQuery, DateTimeVR, Instant } from './matching/date-time.js';
export {
  compareInstants,
  dateKey,
  dateTimeInstant,
  dateTimePairs,
  instantOf,
  parseDateTimeQuery,
  timeKey,
} from './matching/date-time.js';
export type { CompiledQuery, MatchCandidate } from './matching/evaluate.js';
export {
  compiledQuery,
  compileQuery,
  dataSetCandidate,
  isEmptyAttribute,
  isEmptyElement,
  matchDataSet,
} from './matching/evaluate.js';
export type { PersonNameKey } from './matching/person-name.js';
export {
  foldPersonName,
  normalizePersonName,
  normalizePersonNameGroup,
  PN_COMPONENTS,
  personNameKey,
  phoneticGroupTest,
  soundex,
} from './matching/person-name.js';
export { buildResponse, flatResponse, hasSequenceKey } from './matching/response.js';
export { hasWildcard, SQL_LIKE_ESCAPE, toSqlLike, wildcardRegExp } from './matching/wildcard.js';
