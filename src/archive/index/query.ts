/**
 * The C-FIND query layer (ARCHITECTURE.md decision 5: the index is authoritative, C-FIND never
 * opens object files). A query at a level is planned once (planQuery): its keys become match
 * conditions (PS3.4 C.2.2.2, src/dicom/matching.ts), the conditions on indexed columns become SQL,
 * and the stored headers the answers need are chosen. The matching rows are read in pages by key
 * (keyset pagination on the level table's id, so no connection or cursor is held while the peer
 * reads the answers), each row's headers are joined into the entity's data set with the computed
 * attributes (counters, Modalities/SOP Classes in Study), and the in-memory matcher decides on
 * that data set. SQL only narrows: a condition it translates approximately (person names, numbers)
 * or not at all (sequences, times, any attribute without a column) is decided by the matcher, so
 * the answers are the matcher's on both engines and on the in-memory index.
 *
 * Decisions:
 * - The entity at a level has the attributes of its level and of the levels above it (a STUDY
 *   entity has the patient attributes the study was received with). Keys of levels below the
 *   query level are neither matched nor filled (returned empty): `unsupportedKeys`, which the SCP
 *   answers with 0xFF01.
 * - Wild cards are case-sensitive (C.2.2.2.4): GLOB on SQLite (its LIKE ignores ASCII case),
 *   LIKE on PostgreSQL (the key columns collate "C", so a prefix uses the index either way).
 * - Person names match on the uppercase *_norm columns; case-insensitively by default
 *   (QueryOptions.caseInsensitivePN), as dcm4chee and Orthanc do; case-sensitively the column
 *   only narrows and the matcher decides.
 */
import { type Kysely, type RawBuilder, type SqlBool, sql } from 'kysely';
import { type DataElement, DataSet } from '../../dicom/dataset.js';
import { TAG } from '../../dicom/dictionary.js';
import { encodeElements, flatEncoding, isFlat } from '../../dicom/element-encoder.js';
import { type DicomJsonObject, fromDicomJson } from '../../dicom/json.js';
import { type JsonView, JsonViewUnsupported, jsonView } from '../../dicom/json-view.js';
import {
  buildResponse,
  type CompiledQuery,
  compileQuery,
  flatResponse,
  hasSequenceKey,
  type MatchCondition,
  type MatchOptions,
  normalizePersonName,
  type PersonNameKey,
  personNameKey,
  toSqlLike,
  type ValueCondition,
  valuesOf,
} from '../../dicom/matching.js';
import { isGroupLengthTag, type Tag } from '../../dicom/tag.js';
import { encodeStrings } from '../../dicom/values.js';
import type { VR } from '../../dicom/vr.js';
import type { SqlEngine } from '../database.js';
import { type Level, levelOf } from './levels.js';
import type { IndexDatabase } from './schema.js';

/** Query/Retrieve Level (0008,0052) values. */
export type QueryLevel = 'PATIENT' | 'STUDY' | 'SERIES' | 'IMAGE';

export interface QueryOptions {
  /** Match PN keys ignoring case (default true; PS3.4 C.2.2.2.1 lets the SCP choose). */
  readonly caseInsensitivePN?: boolean;
  /** Combined date-time range matching (agreed by SOP class extended negotiation, C.2.2.2.5). */
  readonly combinedDateTime?: boolean;
  /** The AE title to answer in Retrieve AE Title (0008,0054) when it is asked for. */
  readonly retrieveAeTitle?: string;
  /**
   * Fuzzy Person Name matching (QIDO-RS `fuzzymatching=true`, PS3.18 10.6.1.2.1): case and
   * accents ignored, and a phonetic (Soundex) match per component (dicom/matching/person-name.ts).
   * The PN columns then do not narrow the SQL: the matcher decides on every candidate of the other keys.
   */
  readonly fuzzyPN?: boolean;
}

/**
 * A query ready to run on any ArchiveIndex (see planQuery). `A` is the form of its answers: the
 * response Identifier as a DataSet (planQuery), or its bytes in a transfer syntax (encodedPlan).
 */
export interface QueryPlan<A = DataSet> {
  readonly level: QueryLevel;
  /** The Identifier as received: every key of it is in each answer. */
  readonly identifier: DataSet;
  readonly matchOptions: MatchOptions;
  /** The conditions of the keys the entity has (unsupported keys left out). */
  readonly compiled: CompiledQuery;
  /** Keys of levels below the query level: not matched, returned empty (PS3.4 C.4.1.1.3.1: 0xFF01). */
  readonly unsupportedKeys: readonly Tag[];
  /** The stored headers the answers need, top down. */
  readonly headers: readonly Level[];
  /** Computed attributes asked for. */
  readonly computed: ReadonlySet<Tag>;
  readonly retrieveAeTitle: string | undefined;
  /** No sequence key or condition: matching and answers may read the stored JSON (dicom/json-view.ts). */
  readonly flat: boolean;
  /** The answer for a row, undefined when the row does not match. */
  readonly answer: (row: EntityRow) => A | undefined;
}

const RANK: Readonly<Record<QueryLevel, number>> = { PATIENT: 0, STUDY: 1, SERIES: 2, IMAGE: 3 };
const LEVEL_RANK: Readonly<Record<Level, number>> = { patient: 0, study: 1, series: 2, instance: 3 };
const LEVEL_OF_RANK: readonly Level[] = ['patient', 'study', 'series', 'instance'];

/** Attributes the index computes from its counters (PS3.4 C.6.1.1.2-C.6.1.1.4), by the level they describe. */
const COMPUTED: ReadonlyMap<Tag, Level> = new Map<Tag, Level>([
  [TAG.NumberOfPatientRelatedStudies, 'patient'],
  [TAG.NumberOfPatientRelatedSeries, 'patient'],
  [TAG.NumberOfPatientRelatedInstances, 'patient'],
  [TAG.NumberOfStudyRelatedSeries, 'study'],
  [TAG.NumberOfStudyRelatedInstances, 'study'],
  [TAG.ModalitiesInStudy, 'study'],
  [TAG.SOPClassesInStudy, 'study'],
  [TAG.NumberOfSeriesRelatedInstances, 'series'],
]);

/** Attributes of the answer rather than of an entity level (PS3.4 C.4.1.1.3.2): available at every level. */
const ANSWER_ATTRIBUTES: ReadonlySet<Tag> = new Set([
  TAG.RetrieveAETitle,
  TAG.InstanceAvailability,
  TAG.TimezoneOffsetFromUTC,
]);

/** The level a top-level key belongs to. */
function keyLevel(tag: Tag): Level {
  if (ANSWER_ATTRIBUTES.has(tag)) return 'patient';
  return COMPUTED.get(tag) ?? levelOf(tag);
}

function isControlKey(tag: Tag): boolean {
  return (
    tag === TAG.SpecificCharacterSet ||
    tag === TAG.QueryRetrieveLevel ||
    tag === TAG.QueryRetrieveView ||
    isGroupLengthTag(tag)
  );
}

/** A copy of a sequence item (values shared): DataSet.set re-parents items, the Identifier's must stay its own. */
function copyItem(item: DataSet): DataSet {
  const out = new DataSet();
  for (const e of item) out.set(Array.isArray(e.value) ? { ...e, value: e.value.map(copyItem) } : e);
  return out;
}

/**
 * Plans a C-FIND query at `level`: what it matches on, which keys the entity lacks, which stored
 * headers and computed attributes its answers need. `compiled.problems` lists values that cannot be
 * matched as their VR says (the SCP answers them with an error before running anything).
 */
export function planQuery(level: QueryLevel, identifier: DataSet, options: QueryOptions = {}): QueryPlan {
  const rank = RANK[level];
  const unsupported: Tag[] = [];
  const headers = new Set<Level>();
  const computed = new Set<Tag>();
  const matchKeys = new DataSet();
  for (const e of identifier) {
    if (isControlKey(e.tag)) {
      if (e.tag === TAG.SpecificCharacterSet) matchKeys.set(e);
      continue;
    }
    const at = keyLevel(e.tag);
    if (LEVEL_RANK[at] > rank) {
      unsupported.push(e.tag);
      continue;
    }
    matchKeys.set(Array.isArray(e.value) ? { ...e, value: e.value.map(copyItem) } : e);
    if (COMPUTED.has(e.tag)) computed.add(e.tag);
    else if (e.tag === TAG.TimezoneOffsetFromUTC) headers.add(LEVEL_OF_RANK[rank] as Level);
    else if (!ANSWER_ATTRIBUTES.has(e.tag)) headers.add(at);
  }
  const matchOptions: MatchOptions = {
    caseInsensitivePN: options.caseInsensitivePN ?? true,
    combinedDateTime: options.combinedDateTime === true,
    ...(options.fuzzyPN === true ? { fuzzyPN: true } : {}),
  };
  const compiled = compileQuery(matchKeys, matchOptions);
  const plan: QueryPlan = {
    level,
    identifier,
    matchOptions,
    compiled,
    unsupportedKeys: unsupported,
    headers: LEVEL_OF_RANK.filter((l) => headers.has(l)),
    computed,
    retrieveAeTitle: options.retrieveAeTitle,
    flat: !compiled.hasSequenceConditions && !hasSequenceKey(identifier),
    answer: (row) => answerOf(plan, row),
  };
  return plan;
}

/**
 * The plan with its answers encoded in `transferSyntaxUid` (the presentation context's), ready
 * to send as a C-FIND response's data set. In Implicit and Explicit VR Little Endian the bytes
 * come straight from the stored JSON where that is exact (dicom/json-view.ts,
 * dicom/element-encoder.ts); otherwise, and for rows the view cannot read, the answer is the
 * DataSet (the dispatcher encodes it).
 */
export function encodedPlan(
  plan: QueryPlan<unknown>,
  transferSyntaxUid: string,
): QueryPlan<DataSet | Uint8Array> {
  const base = plan as QueryPlan<unknown> as QueryPlan;
  const encodes = flatEncoding(transferSyntaxUid) !== undefined;
  return {
    ...base,
    answer: (row) => {
      if (!base.flat) return answerOf(base, row);
      const view = viewOf(base, row);
      const matched = view === undefined ? undefined : matchView(base, view);
      if (matched === false) return undefined;
      if (view === undefined || matched === undefined) return answerOf(base, row);
      const bytes = encodes ? encodedAnswer(base, view, transferSyntaxUid) : undefined;
      return bytes ?? answerOf(base, row, true);
    },
  };
}

// --- candidates -------------------------------------------------------------------------------------

/** One entity as an index reads it: its level headers (top down, those the plan needs) and counters. */
export interface EntityRow {
  readonly headers: readonly (DicomJsonObject | string | null | undefined)[];
  readonly numberOfPatientRelatedStudies?: number | null;
  readonly numberOfPatientRelatedSeries?: number | null;
  readonly numberOfPatientRelatedInstances?: number | null;
  readonly numberOfStudyRelatedSeries?: number | null;
  readonly numberOfStudyRelatedInstances?: number | null;
  /** '\'-joined as the index keeps them. */
  readonly modalitiesInStudy?: string | null;
  readonly sopClassesInStudy?: string | null;
  readonly numberOfSeriesRelatedInstances?: number | null;
}

const SCS_KEY = '00080005';
const UTF8 = 'ISO_IR 192';

function charsetOf(doc: DicomJsonObject): string {
  return (doc[SCS_KEY]?.Value ?? []).map((v) => (typeof v === 'string' ? v : '')).join('\\');
}

/**
 * The entity's data set: the level headers joined (each level's attributes come from its own
 * document), encoded in their common Specific Character Set, or in UTF-8 when the levels were
 * received in different ones (the text is Unicode in the documents, so nothing is lost).
 */
function entityDataSet(docs: readonly DicomJsonObject[]): DataSet {
  const charsets = new Set(docs.filter((d) => d[SCS_KEY] !== undefined).map(charsetOf));
  const merged: DicomJsonObject = Object.assign({}, ...docs);
  if (charsets.size > 1) merged[SCS_KEY] = { vr: 'CS', Value: [UTF8] };
  const first = decodeDocument(merged);
  if (first !== undefined) return first;
  // A value the declared character set cannot hold (a header stored without one, with 8-bit text).
  return decodeDocument({ ...merged, [SCS_KEY]: { vr: 'CS', Value: [UTF8] } }) ?? new DataSet();
}

function decodeDocument(doc: DicomJsonObject): DataSet | undefined {
  try {
    const r = fromDicomJson(doc);
    return r.ok ? r.value : undefined;
  } catch {
    return undefined;
  }
}

function parseDoc(h: DicomJsonObject | string | null | undefined): DicomJsonObject | undefined {
  if (h === null || h === undefined) return undefined;
  return typeof h === 'string' ? (JSON.parse(h) as DicomJsonObject) : h;
}

/** The candidate data set of a row: headers joined, computed attributes added. */
export function candidateOf(plan: QueryPlan, row: EntityRow): DataSet {
  const docs: DicomJsonObject[] = [];
  for (const h of row.headers) {
    const d = parseDoc(h);
    if (d !== undefined) docs.push(d);
  }
  const ds = entityDataSet(docs);
  for (const e of computedElements(plan, row)?.values() ?? []) ds.set(e);
  return ds;
}

/**
 * The stored JSON of a row as a match candidate, when that is exact (see dicom/json-view.ts);
 * undefined otherwise, or when a value it needs cannot be read that way (view methods throw
 * JsonViewUnsupported, which matchView catches).
 */
function viewOf(plan: QueryPlan, row: EntityRow): JsonView | undefined {
  const stored: (DicomJsonObject | string)[] = [];
  for (const h of row.headers) if (h !== null && h !== undefined) stored.push(h);
  return jsonView(stored, computedElements(plan, row));
}

/** The counters of a row, by the attribute they answer (PS3.4 C.6.1.1.2-C.6.1.1.4). */
const COUNTERS: ReadonlyMap<Tag, (row: EntityRow) => number | null | undefined> = new Map([
  [TAG.NumberOfPatientRelatedStudies, (r: EntityRow) => r.numberOfPatientRelatedStudies],
  [TAG.NumberOfPatientRelatedSeries, (r: EntityRow) => r.numberOfPatientRelatedSeries],
  [TAG.NumberOfPatientRelatedInstances, (r: EntityRow) => r.numberOfPatientRelatedInstances],
  [TAG.NumberOfStudyRelatedSeries, (r: EntityRow) => r.numberOfStudyRelatedSeries],
  [TAG.NumberOfStudyRelatedInstances, (r: EntityRow) => r.numberOfStudyRelatedInstances],
  [TAG.NumberOfSeriesRelatedInstances, (r: EntityRow) => r.numberOfSeriesRelatedInstances],
]);

/** An element of text values in a VR that uses no character set (its bytes are the same in any). */
function textElement(tag: Tag, vr: VR, values: readonly string[]): DataElement {
  return { tag, vr, value: encodeStrings(values, vr, []) };
}

/** The computed attributes and answer attributes of a row, as elements that take the place of stored ones. */
function computedElements(plan: QueryPlan, row: EntityRow): Map<Tag, DataElement> | undefined {
  const retrieveAe = plan.identifier.has(TAG.RetrieveAETitle) && plan.retrieveAeTitle !== undefined;
  const availability = plan.identifier.has(TAG.InstanceAvailability);
  if (plan.computed.size === 0 && !retrieveAe && !availability) return undefined;
  const out = new Map<Tag, DataElement>();
  const list = (text: string | null | undefined) =>
    text === null || text === undefined || text === '' ? [] : text.split('\\');
  for (const tag of plan.computed) {
    const counter = COUNTERS.get(tag);
    if (counter !== undefined) {
      const n = counter(row);
      out.set(tag, textElement(tag, 'IS', n === null || n === undefined ? [] : [String(Number(n))]));
    } else if (tag === TAG.ModalitiesInStudy)
      out.set(tag, textElement(tag, 'CS', list(row.modalitiesInStudy)));
    else if (tag === TAG.SOPClassesInStudy) out.set(tag, textElement(tag, 'UI', list(row.sopClassesInStudy)));
  }
  if (retrieveAe)
    out.set(TAG.RetrieveAETitle, textElement(TAG.RetrieveAETitle, 'AE', [plan.retrieveAeTitle as string]));
  // Every indexed object is on line: its file is in the store.
  if (availability)
    out.set(TAG.InstanceAvailability, textElement(TAG.InstanceAvailability, 'CS', ['ONLINE']));
  return out;
}

/** The answer's bytes read from the view; undefined when it needs the DataSet path. */
function encodedAnswer(plan: QueryPlan, view: JsonView, transferSyntaxUid: string): Uint8Array | undefined {
  try {
    const elements = flatResponse(plan.identifier, (t) => view.element(t));
    return elements !== undefined && isFlat(elements)
      ? encodeElements(elements, transferSyntaxUid)
      : undefined;
  } catch (e) {
    if (e instanceof JsonViewUnsupported) return undefined;
    throw e;
  }
}

/** Whether the view matches: undefined when it cannot tell (the DataSet path decides). */
function matchView(plan: QueryPlan, view: JsonView): boolean | undefined {
  try {
    return plan.compiled.matchesCandidate(view);
  } catch (e) {
    if (e instanceof JsonViewUnsupported) return undefined;
    throw e;
  }
}

/** Whether a row matches, read from its stored JSON where that is exact. */
function viewMatches(plan: QueryPlan, row: EntityRow): boolean | undefined {
  if (!plan.flat) return undefined;
  const view = viewOf(plan, row);
  return view === undefined ? undefined : matchView(plan, view);
}

/**
 * The answer for a row, or undefined when the row does not match. `matched`: the caller knows
 * it matches (only the answer is built).
 */
export function answerOf(plan: QueryPlan, row: EntityRow, matched = false): DataSet | undefined {
  if (!matched) {
    const fast = viewMatches(plan, row);
    if (fast === false) return undefined;
    matched = fast === true;
  }
  const candidate = candidateOf(plan, row);
  if (!matched && !plan.compiled.matches(candidate)) return undefined;
  return buildResponse(plan.identifier, candidate, plan.matchOptions);
}

/** Whether a row matches (for counting: no answer built). */
export function rowMatches(plan: QueryPlan, row: EntityRow): boolean {
  return viewMatches(plan, row) ?? plan.compiled.matches(candidateOf(plan, row));
}

// --- SQL ------------------------------------------------------------------------------------------

type ColumnKind = 'text' | 'uid' | 'pn' | 'date' | 'time' | 'int' | 'list';

interface Column {
  readonly ref: string;
  readonly kind: ColumnKind;
}

const PATIENT_TABLE_COLUMNS: ReadonlyMap<Tag, Column> = new Map<Tag, Column>([
  [TAG.PatientID, { ref: 'p.patient_id', kind: 'text' }],
  [TAG.IssuerOfPatientID, { ref: 'p.issuer_of_patient_id', kind: 'text' }],
  [TAG.PatientName, { ref: 'p.patient_name_norm', kind: 'pn' }],
  [TAG.PatientBirthDate, { ref: 'p.patient_birth_date', kind: 'date' }],
  [TAG.PatientSex, { ref: 'p.patient_sex', kind: 'text' }],
]);

const STUDY_TABLE_COLUMNS: readonly [Tag, Column][] = [
  [TAG.PatientID, { ref: 'st.patient_id', kind: 'text' }],
  [TAG.IssuerOfPatientID, { ref: 'st.issuer_of_patient_id', kind: 'text' }],
  [TAG.PatientName, { ref: 'st.patient_name_norm', kind: 'pn' }],
  [TAG.PatientBirthDate, { ref: 'st.patient_birth_date', kind: 'date' }],
  [TAG.PatientSex, { ref: 'st.patient_sex', kind: 'text' }],
  [TAG.StudyInstanceUID, { ref: 'st.study_instance_uid', kind: 'uid' }],
  [TAG.StudyDate, { ref: 'st.study_date', kind: 'date' }],
  [TAG.StudyTime, { ref: 'st.study_time', kind: 'time' }],
  [TAG.AccessionNumber, { ref: 'st.accession_number', kind: 'text' }],
  [TAG.StudyID, { ref: 'st.study_id', kind: 'text' }],
  [TAG.ReferringPhysicianName, { ref: 'st.referring_physician_name_norm', kind: 'pn' }],
  [TAG.StudyDescription, { ref: 'st.study_description', kind: 'text' }],
  [TAG.ModalitiesInStudy, { ref: 'st.modalities_in_study', kind: 'list' }],
  [TAG.SOPClassesInStudy, { ref: 'st.sop_classes_in_study', kind: 'list' }],
];

const SERIES_TABLE_COLUMNS: readonly [Tag, Column][] = [
  [TAG.SeriesInstanceUID, { ref: 'se.series_instance_uid', kind: 'uid' }],
  [TAG.Modality, { ref: 'se.modality', kind: 'text' }],
  [TAG.SeriesNumber, { ref: 'se.series_number', kind: 'int' }],
  [TAG.SeriesDescription, { ref: 'se.series_description', kind: 'text' }],
  [TAG.BodyPartExamined, { ref: 'se.body_part_examined', kind: 'text' }],
];

const INSTANCE_TABLE_COLUMNS: readonly [Tag, Column][] = [
  [TAG.SOPInstanceUID, { ref: 'i.sop_instance_uid', kind: 'uid' }],
  [TAG.SOPClassUID, { ref: 'i.sop_class_uid', kind: 'uid' }],
  [TAG.InstanceNumber, { ref: 'i.instance_number', kind: 'int' }],
];

const COLUMNS: Readonly<Record<QueryLevel, ReadonlyMap<Tag, Column>>> = {
  PATIENT: PATIENT_TABLE_COLUMNS,
  STUDY: new Map(STUDY_TABLE_COLUMNS),
  SERIES: new Map([...STUDY_TABLE_COLUMNS, ...SERIES_TABLE_COLUMNS]),
  IMAGE: new Map([...STUDY_TABLE_COLUMNS, ...SERIES_TABLE_COLUMNS, ...INSTANCE_TABLE_COLUMNS]),
};

/** An SQL condition narrowing the rows; `exact` when it selects exactly the rows the matcher accepts. */
interface SqlCondition {
  readonly expr: RawBuilder<SqlBool>;
  readonly exact: boolean;
}

const FALSE: SqlCondition = { expr: sql<SqlBool>`1 = 0`, exact: true };

/** A wild card pattern for SQLite's GLOB: only '[' needs escaping ("*" and "?" mean the same). */
function toGlob(pattern: string): string {
  return pattern.replace(/\[/g, '[[]');
}

function hasWildcardChar(text: string): boolean {
  return text.includes('*') || text.includes('?');
}

class SqlTranslator {
  constructor(
    private readonly engine: SqlEngine,
    private readonly columns: ReadonlyMap<Tag, Column>,
    private readonly caseInsensitivePN: boolean,
    private readonly fuzzyPN = false,
  ) {}

  /** `col` matches the wild card pattern, case-sensitively. */
  private wildcard(col: RawBuilder<unknown>, pattern: string): RawBuilder<SqlBool> {
    if (this.engine === 'sqlite') return sql<SqlBool>`${col} glob ${toGlob(pattern)}`;
    // PostgreSQL's default LIKE escape character is the backslash toSqlLike uses.
    return sql<SqlBool>`${col} like ${toSqlLike(pattern).like}`;
  }

  translate(c: MatchCondition): SqlCondition | undefined {
    if (c.kind === 'invalid') return FALSE;
    if (c.kind === 'universal') return undefined;
    if (c.kind === 'sequence') return undefined;
    const column = this.columns.get(c.tag);
    if (column === undefined) return undefined;
    // Fuzzy names sound alike with other letters: the *_norm column cannot narrow them.
    if (column.kind === 'pn' && this.fuzzyPN) return undefined;
    const col = sql.ref(column.ref);
    switch (c.kind) {
      case 'dateTimeRange': {
        // The date part narrows; the matcher decides on date and time together.
        if (column.kind !== 'date') return undefined;
        const parts: RawBuilder<SqlBool>[] = [sql<SqlBool>`${col} is not null`];
        if (c.lower !== undefined) parts.push(sql<SqlBool>`${col} >= ${c.lower.local.slice(0, 8)}`);
        if (c.upper !== undefined) parts.push(sql<SqlBool>`${col} <= ${c.upper.local.slice(0, 8)}`);
        return { expr: and(parts), exact: false };
      }
      case 'list':
        if (column.kind !== 'uid') return undefined;
        return {
          expr: sql<SqlBool>`${col} in (${sql.join(c.values.map((v) => sql`${v}`))})`,
          exact: true,
        };
      case 'multiple': {
        const parts = c.conditions.map((v) => this.value(column, v));
        if (c.mode === 'any') {
          if (parts.some((p) => p === undefined)) return undefined;
          const defined = parts as SqlCondition[];
          return { expr: or(defined.map((p) => p.expr)), exact: defined.every((p) => p.exact) };
        }
        const defined = parts.filter((p): p is SqlCondition => p !== undefined);
        if (defined.length === 0) return undefined;
        return { expr: and(defined.map((p) => p.expr)), exact: false };
      }
      default:
        return this.value(column, c);
    }
  }

  /** One value of a key on its column. */
  private value(column: Column, c: ValueCondition): SqlCondition | undefined {
    const col = sql.ref(column.ref);
    switch (c.kind) {
      case 'universal':
        return undefined;
      case 'invalid':
        return FALSE;
      case 'empty':
        return {
          expr: sql<SqlBool>`${col} is null`,
          exact: column.kind !== 'pn' && column.kind !== 'int',
        };
      case 'single': {
        switch (column.kind) {
          case 'pn':
            return this.personName(col, c.personName, c.value, false);
          case 'date':
            return c.instant === undefined
              ? undefined
              : { expr: sql<SqlBool>`${col} = ${c.instant.local}`, exact: true };
          case 'time':
            return undefined;
          case 'int':
            return c.number !== undefined && Number.isInteger(c.number)
              ? { expr: sql<SqlBool>`${col} = ${c.number}`, exact: false }
              : undefined;
          case 'list':
            return { expr: this.inList(col, c.value), exact: true };
          default:
            return { expr: sql<SqlBool>`${col} = ${c.value}`, exact: true };
        }
      }
      case 'wildcard':
        if (column.kind === 'pn') return this.personName(col, c.personName, c.pattern, true);
        if (column.kind !== 'text') return undefined;
        return { expr: this.wildcard(col, c.pattern), exact: true };
      case 'range': {
        if (column.kind !== 'date' || c.vr !== 'DA') return undefined;
        const parts: RawBuilder<SqlBool>[] = [sql<SqlBool>`${col} is not null`];
        if (c.lower !== undefined) parts.push(sql<SqlBool>`${col} >= ${c.lower.local}`);
        if (c.upper !== undefined) parts.push(sql<SqlBool>`${col} <= ${c.upper.local}`);
        // "-" (both bounds open) matches any valid date: the matcher drops malformed ones.
        return { expr: and(parts), exact: c.lower !== undefined || c.upper !== undefined };
      }
    }
  }

  /** A value of a '\'-joined list column (Modalities in Study, SOP Classes in Study). */
  private inList(col: RawBuilder<unknown>, value: string): RawBuilder<SqlBool> {
    const needle = `\\${value}\\`;
    const hay = sql`'\\' || ${col} || '\\'`;
    return this.engine === 'sqlite'
      ? sql<SqlBool>`instr(${hay}, ${needle}) > 0`
      : sql<SqlBool>`strpos(${hay}, ${needle}) > 0`;
  }

  /**
   * A PN key on a *_norm column ("FAMILY^GIVEN^MIDDLE^PREFIX^SUFFIX=ideographic=phonetic",
   * uppercase). Only the alphabetic group narrows (it leads the text, so a prefix uses the index);
   * the matcher decides on every group.
   */
  private personName(
    col: RawBuilder<unknown>,
    key: PersonNameKey | undefined,
    text: string,
    wildcard: boolean,
  ): SqlCondition | undefined {
    const upper = key?.caseInsensitive ? key : personNameKey(text, true);
    const group = upper.groups[0];
    if (group === undefined) return undefined;
    if (!wildcard || !hasWildcardChar(group)) {
      // The whole value, or the alphabetic group followed by the others.
      const rest = this.engine === 'sqlite' ? `${toGlob(group)}=*` : `${toSqlLike(group).like}=%`;
      const op = this.engine === 'sqlite' ? sql`glob` : sql`like`;
      return { expr: sql<SqlBool>`(${col} = ${group} or ${col} ${op} ${rest})`, exact: false };
    }
    // Upper-casing can change the length of a character ("ß" is "SS"): with "?" only the matcher is exact.
    if (!this.caseInsensitivePN && group.includes('?')) return undefined;
    return { expr: this.wildcard(col, `${group}*`), exact: false };
  }
}

function and(parts: readonly RawBuilder<SqlBool>[]): RawBuilder<SqlBool> {
  if (parts.length === 1) return parts[0] as RawBuilder<SqlBool>;
  return sql<SqlBool>`(${sql.join(parts, sql` and `)})`;
}

function or(parts: readonly RawBuilder<SqlBool>[]): RawBuilder<SqlBool> {
  if (parts.length === 1) return parts[0] as RawBuilder<SqlBool>;
  return sql<SqlBool>`(${sql.join(parts, sql` or `)})`;
}

/** The WHERE conditions of a plan, and whether they alone decide (no condition left to the matcher). */
export function sqlConditions(
  engine: SqlEngine,
  plan: QueryPlan<unknown>,
): { readonly conditions: readonly RawBuilder<SqlBool>[]; readonly exact: boolean } {
  const translator = new SqlTranslator(
    engine,
    COLUMNS[plan.level],
    plan.matchOptions.caseInsensitivePN === true,
    plan.matchOptions.fuzzyPN === true,
  );
  const conditions: RawBuilder<SqlBool>[] = [];
  let exact = true;
  for (const c of plan.compiled.conditions) {
    if (c.kind === 'universal') continue;
    const t = translator.translate(c);
    if (t === undefined) {
      exact = false;
      continue;
    }
    conditions.push(t.expr);
    if (!t.exact) exact = false;
  }
  return { conditions, exact };
}

/** FROM and the key of the level table. */
const FROM: Readonly<Record<QueryLevel, { from: RawBuilder<unknown>; id: string }>> = {
  PATIENT: { from: sql`patient p`, id: 'p.id' },
  STUDY: { from: sql`study st`, id: 'st.id' },
  SERIES: { from: sql`series se inner join study st on st.id = se.study_fk`, id: 'se.id' },
  IMAGE: {
    from: sql`instance i inner join series se on se.id = i.series_fk inner join study st on st.id = i.study_fk`,
    id: 'i.id',
  },
};

/** The header column of each level at a query level (patient attributes of a study are its own). */
function headerColumn(level: QueryLevel, header: Level): string {
  if (header === 'patient') return level === 'PATIENT' ? 'p.header' : 'st.patient_header';
  return header === 'study' ? 'st.header' : header === 'series' ? 'se.header' : 'i.header';
}

interface SqlRow {
  readonly id: number;
  readonly h0?: string | null;
  readonly h1?: string | null;
  readonly h2?: string | null;
  readonly h3?: string | null;
  readonly pat_studies?: number | null;
  readonly pat_series?: number | null;
  readonly pat_instances?: number | null;
  readonly study_series?: number | null;
  readonly study_instances?: number | null;
  readonly modalities?: string | null;
  readonly sop_classes?: string | null;
  readonly series_instances?: number | null;
}

function selectList(plan: QueryPlan<unknown>): RawBuilder<unknown> {
  const level = plan.level;
  const id = FROM[level].id;
  const items: RawBuilder<unknown>[] = [sql`${sql.ref(id)} as id`];
  plan.headers.forEach((h, i) => {
    items.push(sql`${sql.ref(headerColumn(level, h))} as ${sql.id(`h${i}`)}`);
  });
  const patientFk = level === 'PATIENT' ? sql.ref('p.id') : sql.ref('st.patient_fk');
  const c = plan.computed;
  if (c.has(TAG.NumberOfPatientRelatedStudies))
    items.push(
      level === 'PATIENT'
        ? sql`p.number_of_studies as pat_studies`
        : sql`(select p2.number_of_studies from patient p2 where p2.id = ${patientFk}) as pat_studies`,
    );
  if (c.has(TAG.NumberOfPatientRelatedSeries))
    items.push(
      sql`(select sum(s2.number_of_series) from study s2 where s2.patient_fk = ${patientFk}) as pat_series`,
    );
  if (c.has(TAG.NumberOfPatientRelatedInstances))
    items.push(
      sql`(select sum(s2.number_of_instances) from study s2 where s2.patient_fk = ${patientFk}) as pat_instances`,
    );
  if (c.has(TAG.NumberOfStudyRelatedSeries)) items.push(sql`st.number_of_series as study_series`);
  if (c.has(TAG.NumberOfStudyRelatedInstances)) items.push(sql`st.number_of_instances as study_instances`);
  if (c.has(TAG.ModalitiesInStudy)) items.push(sql`st.modalities_in_study as modalities`);
  if (c.has(TAG.SOPClassesInStudy)) items.push(sql`st.sop_classes_in_study as sop_classes`);
  if (c.has(TAG.NumberOfSeriesRelatedInstances)) items.push(sql`se.number_of_instances as series_instances`);
  return sql.join(items);
}

function entityRow(row: SqlRow): EntityRow {
  return {
    headers: [row.h0, row.h1, row.h2, row.h3],
    numberOfPatientRelatedStudies: row.pat_studies,
    numberOfPatientRelatedSeries: row.pat_series,
    numberOfPatientRelatedInstances: row.pat_instances,
    numberOfStudyRelatedSeries: row.study_series,
    numberOfStudyRelatedInstances: row.study_instances,
    modalitiesInStudy: row.modalities,
    sopClassesInStudy: row.sop_classes,
    numberOfSeriesRelatedInstances: row.series_instances,
  };
}

/** Rows read per page: big enough to amortise a round trip, small enough to answer the first match fast. */
export const QUERY_PAGE_SIZE = 256;

/** The plan's candidate rows in id order, a page at a time (no connection held between pages). */
async function* sqlRows(
  db: Kysely<IndexDatabase>,
  engine: SqlEngine,
  plan: QueryPlan<unknown>,
  pageSize: number,
  signal?: AbortSignal,
): AsyncGenerator<EntityRow, void, undefined> {
  const { from, id } = FROM[plan.level];
  const { conditions } = sqlConditions(engine, plan);
  const select = selectList(plan);
  let after = 0;
  for (;;) {
    if (signal?.aborted) return;
    const where = and([...conditions, sql<SqlBool>`${sql.ref(id)} > ${after}`]);
    const result =
      await sql<SqlRow>`select ${select} from ${from} where ${where} order by ${sql.ref(id)} limit ${pageSize}`.execute(
        db,
      );
    for (const row of result.rows) yield entityRow(row);
    if (result.rows.length < pageSize) return;
    after = Number((result.rows[result.rows.length - 1] as SqlRow).id);
  }
}

/** The answers of a plan on an SQL index: each matching entity's response Identifier, streamed. */
export async function* findSql<A = DataSet>(
  db: Kysely<IndexDatabase>,
  engine: SqlEngine,
  plan: QueryPlan<A>,
  options: { readonly pageSize?: number; readonly signal?: AbortSignal } = {},
): AsyncGenerator<A, void, undefined> {
  const rows = sqlRows(db, engine, plan, options.pageSize ?? QUERY_PAGE_SIZE, options.signal);
  for await (const row of rows) {
    const answer = plan.answer(row);
    if (answer !== undefined) yield answer;
  }
}

/** How many entities match, counting no further than `atMost`. */
export async function countSql(
  db: Kysely<IndexDatabase>,
  engine: SqlEngine,
  plan: QueryPlan,
  atMost: number,
): Promise<number> {
  const { conditions, exact } = sqlConditions(engine, plan);
  if (exact) {
    const { from, id } = FROM[plan.level];
    const where = conditions.length > 0 ? sql`where ${and(conditions)}` : sql``;
    const result = await sql<{
      n: number | string;
    }>`select count(*) as n from (select ${sql.ref(id)} from ${from} ${where} limit ${atMost}) m`.execute(db);
    return Number(result.rows[0]?.n ?? 0);
  }
  let n = 0;
  for await (const row of sqlRows(db, engine, plan, QUERY_PAGE_SIZE)) {
    if (rowMatches(plan, row) && ++n >= atMost) break;
  }
  return n;
}

/** The answers of a plan over rows an index produced otherwise (the in-memory index). */
export async function* findRows<A = DataSet>(
  plan: QueryPlan<A>,
  rows: Iterable<EntityRow> | AsyncIterable<EntityRow>,
  signal?: AbortSignal,
): AsyncGenerator<A, void, undefined> {
  for await (const row of rows) {
    if (signal?.aborted) return;
    const answer = plan.answer(row);
    if (answer !== undefined) yield answer;
  }
}

export async function countRows(
  plan: QueryPlan,
  rows: Iterable<EntityRow> | AsyncIterable<EntityRow>,
  atMost: number,
): Promise<number> {
  let n = 0;
  for await (const row of rows) if (rowMatches(plan, row) && ++n >= atMost) break;
  return n;
}

// --- QIDO-RS: answers built from the stored documents, sorted pages -------------------------------

/** A row that matched, as mappedPlan's builder gets it. */
export interface MatchedRow {
  readonly row: EntityRow;
  /** The row's documents, parsed, in the order of plan.headers (undefined where the row has none). */
  readonly docs: readonly (DicomJsonObject | undefined)[];
  /** The C-FIND response Identifier (buildResponse) of the match, when mappedPlan was asked for it. */
  readonly response: DataSet | undefined;
}

/** The entity's data set from documents parsed already, with the computed attributes. */
function candidateOfDocs(
  plan: QueryPlan,
  docs: readonly (DicomJsonObject | undefined)[],
  row: EntityRow,
): DataSet {
  const ds = entityDataSet(docs.filter((d): d is DicomJsonObject => d !== undefined));
  for (const e of computedElements(plan, row)?.values() ?? []) ds.set(e);
  return ds;
}

/**
 * The plan with answers of another form, built by `build` from the matching row's parsed
 * documents (QIDO-RS builds DICOM JSON straight from them, no DataSet per row). Each row's
 * headers are parsed once; matching reads the stored JSON where that is exact (json-view.ts),
 * the DataSet otherwise; a query with only universal keys matches without either.
 * `options.response`: build the C-FIND response Identifier too (sequence keys need it).
 */
export function mappedPlan<A>(
  plan: QueryPlan<unknown>,
  build: (matched: MatchedRow) => A,
  options: { readonly response: boolean },
): QueryPlan<A> {
  const base = plan as QueryPlan<unknown> as QueryPlan;
  const universal = base.compiled.conditions.every((c) => c.kind === 'universal');
  return {
    ...base,
    answer: (row) => {
      const docs = row.headers.map(parseDoc);
      let candidate: DataSet | undefined;
      if (!universal) {
        let matched: boolean | undefined;
        if (!base.compiled.hasSequenceConditions) {
          const view = jsonView(
            docs.filter((d): d is DicomJsonObject => d !== undefined),
            computedElements(base, row),
          );
          if (view !== undefined) matched = matchView(base, view);
        }
        if (matched === undefined) {
          candidate = candidateOfDocs(base, docs, row);
          matched = base.compiled.matches(candidate);
        }
        if (!matched) return undefined;
      }
      let response: DataSet | undefined;
      if (options.response) {
        candidate ??= candidateOfDocs(base, docs, row);
        response = buildResponse(base.identifier, candidate, base.matchOptions);
      }
      return build({ row, docs, response });
    },
  };
}

/** One sort key of a search: an attribute with a column at the query level. */
export interface QuerySort {
  readonly tag: Tag;
  readonly descending: boolean;
}

/** Which answers of a search, in which order (QIDO-RS orderby, offset, limit). */
export interface QueryPage {
  /** Empty: the level's default order (defaultOrder). */
  readonly orderBy: readonly QuerySort[];
  /** Matches skipped first. */
  readonly offset: number;
  /** Matches answered at most. */
  readonly limit: number;
}

const COUNTER_COLUMNS: Readonly<Record<QueryLevel, readonly [Tag, Column][]>> = {
  PATIENT: [[TAG.NumberOfPatientRelatedStudies, { ref: 'p.number_of_studies', kind: 'int' }]],
  STUDY: [
    [TAG.NumberOfStudyRelatedSeries, { ref: 'st.number_of_series', kind: 'int' }],
    [TAG.NumberOfStudyRelatedInstances, { ref: 'st.number_of_instances', kind: 'int' }],
  ],
  SERIES: [
    [TAG.NumberOfStudyRelatedSeries, { ref: 'st.number_of_series', kind: 'int' }],
    [TAG.NumberOfStudyRelatedInstances, { ref: 'st.number_of_instances', kind: 'int' }],
    [TAG.NumberOfSeriesRelatedInstances, { ref: 'se.number_of_instances', kind: 'int' }],
  ],
  IMAGE: [
    [TAG.NumberOfStudyRelatedSeries, { ref: 'st.number_of_series', kind: 'int' }],
    [TAG.NumberOfStudyRelatedInstances, { ref: 'st.number_of_instances', kind: 'int' }],
    [TAG.NumberOfSeriesRelatedInstances, { ref: 'se.number_of_instances', kind: 'int' }],
  ],
};

const SORT_COLUMNS: Readonly<Record<QueryLevel, ReadonlyMap<Tag, Column>>> = Object.fromEntries(
  (['PATIENT', 'STUDY', 'SERIES', 'IMAGE'] as const).map((level) => [
    level,
    new Map<Tag, Column>([
      ...[...COLUMNS[level]].filter(([, c]) => c.kind !== 'list'),
      ...COUNTER_COLUMNS[level],
    ]),
  ]),
) as unknown as Record<QueryLevel, ReadonlyMap<Tag, Column>>;

/** The attributes a search at `level` can be sorted by: those with a column (person names sort by their normalised form). */
export function sortableTags(level: QueryLevel): readonly Tag[] {
  return [...SORT_COLUMNS[level].keys()];
}

/**
 * The default order: studies most recent first (Study Date, then Study Time, descending, then
 * the newest indexed first), series by Series Number, instances by Instance Number (then in the
 * order they were indexed). Absent values sort last, in either direction.
 */
export function defaultOrder(level: QueryLevel): readonly QuerySort[] {
  if (level === 'STUDY')
    return [
      { tag: TAG.StudyDate, descending: true },
      { tag: TAG.StudyTime, descending: true },
    ];
  if (level === 'SERIES') return [{ tag: TAG.SeriesNumber, descending: false }];
  if (level === 'IMAGE') return [{ tag: TAG.InstanceNumber, descending: false }];
  return [];
}

function orderSql(engine: SqlEngine, level: QueryLevel, orderBy: readonly QuerySort[]): RawBuilder<unknown> {
  const sorts = orderBy.length > 0 ? orderBy : defaultOrder(level);
  const items: RawBuilder<unknown>[] = [];
  for (const s of sorts) {
    const column = SORT_COLUMNS[level].get(s.tag);
    if (column === undefined) throw new Error(`no column to sort ${level} by ${s.tag.toString(16)}`);
    const ref = sql.ref(column.ref);
    // Byte order on both engines (the key columns collate "C" on PostgreSQL, the others do not).
    const col = engine === 'postgres' && column.kind === 'text' ? sql`${ref} collate "C"` : ref;
    items.push(s.descending ? sql`${col} desc nulls last` : sql`${col} asc nulls last`);
  }
  const id = sql.ref(FROM[level].id);
  items.push(level === 'STUDY' ? sql`${id} desc` : sql`${id} asc`);
  return sql.join(items);
}

/** Rows read per page at most (a page of big headers stays small; the next one is read as the client takes answers). */
const SEARCH_PAGE_MAX = QUERY_PAGE_SIZE;

/**
 * The answers of a plan on an SQL index, sorted and paged in SQL (ORDER BY ... LIMIT ... OFFSET).
 * When the SQL conditions decide alone, the statements read exactly the page (OFFSET in SQL),
 * at most SEARCH_PAGE_MAX rows at a time; otherwise pages of candidates (as many as the answer
 * still needs, at most SEARCH_PAGE_MAX) are read in order until the matcher has accepted
 * `offset + limit` of them.
 */
export async function* findPageSql<A>(
  db: Kysely<IndexDatabase>,
  engine: SqlEngine,
  plan: QueryPlan<A>,
  page: QueryPage,
  signal?: AbortSignal,
): AsyncGenerator<A, void, undefined> {
  if (page.limit <= 0) return;
  const { from } = FROM[plan.level];
  const { conditions, exact } = sqlConditions(engine, plan);
  const select = selectList(plan);
  const order = orderSql(engine, plan.level, page.orderBy);
  const where = conditions.length > 0 ? sql`where ${and(conditions)}` : sql``;
  const read = async (limit: number, offset: number): Promise<readonly SqlRow[]> =>
    (
      await sql<SqlRow>`select ${select} from ${from} ${where} order by ${order} limit ${limit} offset ${offset}`.execute(
        db,
      )
    ).rows;
  // Exact: the SQL skips `offset` itself and every row read is an answer. Otherwise the
  // matcher skips and decides, on pages of as many candidates as the answer still needs.
  let skip = exact ? 0 : page.offset;
  let left = page.limit;
  let at = exact ? page.offset : 0;
  for (;;) {
    if (signal?.aborted) return;
    const size = Math.min(exact ? left : Math.max(skip + left, 16), SEARCH_PAGE_MAX);
    const rows = await read(size, at);
    at += rows.length;
    for (const row of rows) {
      if (signal?.aborted) return;
      const answer = plan.answer(entityRow(row));
      if (answer === undefined) continue;
      if (skip > 0) {
        skip--;
        continue;
      }
      yield answer;
      if (--left === 0) return;
    }
    if (rows.length < size) return;
  }
}

/** The value a row sorts by, from its candidate data set (the in-memory index). */
function sortValue(candidate: DataSet, tag: Tag, kind: ColumnKind): string | number | undefined {
  const v = valuesOfCandidate(candidate, tag);
  if (v === undefined || v === '') return undefined;
  if (kind === 'int') {
    const n = Number(v);
    return Number.isFinite(n) ? n : undefined;
  }
  return kind === 'pn' ? (normalizePersonName(v) ?? undefined) : v;
}

function valuesOfCandidate(candidate: DataSet, tag: Tag): string | undefined {
  return valuesOf(candidate, tag)[0];
}

/**
 * findPageSql over rows an index produced otherwise (the in-memory index): every match is
 * collected and sorted. The sort attributes must be keys of the plan's Identifier (so that the
 * rows carry their level's header); QIDO-RS adds them.
 */
export async function* findPageRows<A>(
  plan: QueryPlan<A>,
  rows: Iterable<EntityRow> | AsyncIterable<EntityRow>,
  page: QueryPage,
  signal?: AbortSignal,
): AsyncGenerator<A, void, undefined> {
  const sorts = page.orderBy.length > 0 ? page.orderBy : defaultOrder(plan.level);
  const columns = SORT_COLUMNS[plan.level];
  const matched: { answer: A; keys: (string | number | undefined)[]; n: number }[] = [];
  let n = 0;
  for await (const row of rows) {
    if (signal?.aborted) return;
    n++;
    const answer = plan.answer(row);
    if (answer === undefined) continue;
    const candidate = candidateOf(plan as QueryPlan<unknown> as QueryPlan, row);
    const keys = sorts.map((s) => sortValue(candidate, s.tag, columns.get(s.tag)?.kind ?? 'text'));
    matched.push({ answer, keys, n });
  }
  const compare = (a: string | number | undefined, b: string | number | undefined): number => {
    if (a === b) return 0;
    if (a === undefined) return 1;
    if (b === undefined) return -1;
    return a < b ? -1 : 1;
  };
  matched.sort((x, y) => {
    for (let i = 0; i < sorts.length; i++) {
      const c = compare(x.keys[i], y.keys[i]);
      if (c === 0) continue;
      // Absent values last in either direction.
      const absent = x.keys[i] === undefined || y.keys[i] === undefined;
      return sorts[i]?.descending === true && !absent ? -c : c;
    }
    return plan.level === 'STUDY' ? y.n - x.n : x.n - y.n;
  });
  for (const m of matched.slice(page.offset, page.offset + page.limit)) yield m.answer;
}
