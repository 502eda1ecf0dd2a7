/**
 * Worklist match conditions as SQL on the indexed columns. Every translation selects a superset
 * of what the condition matches (the matcher then decides), so a condition that SQL cannot express
 * exactly is either widened (SQLite's LIKE ignores ASCII case; a person name is narrowed by its
 * alphabetic group only) or left out; never narrowed beyond the matcher's answer.
 */
import { type Expression, type ExpressionBuilder, type SqlBool, sql } from 'kysely';
import { TAG } from '../../dicom/dictionary.js';
import { type MatchCondition, SQL_LIKE_ESCAPE, toSqlLike } from '../../dicom/matching.js';
import type { Tag } from '../../dicom/tag.js';
import type { WorklistDatabase } from './schema.js';

type Eb = ExpressionBuilder<WorklistDatabase, 'worklist_item'>;
type Where = Expression<SqlBool>;

type ItemColumn =
  | 'study_instance_uid'
  | 'sps_id'
  | 'patient_id'
  | 'patient_name_norm'
  | 'accession_number'
  | 'requested_procedure_id'
  | 'station_name'
  | 'sps_start_date'
  | 'sps_start_time'
  | 'modality'
  | 'performing_physician_name_norm'
  | 'sps_status';

type ColumnSpec =
  | { readonly kind: 'text' | 'pn' | 'date' | 'time'; readonly column: ItemColumn }
  | { readonly kind: 'aet' };

/** Keys of the item's top level that have a column. */
const ITEM_COLUMNS: ReadonlyMap<Tag, ColumnSpec> = new Map<Tag, ColumnSpec>([
  [TAG.PatientID, { kind: 'text', column: 'patient_id' }],
  [TAG.PatientName, { kind: 'pn', column: 'patient_name_norm' }],
  [TAG.AccessionNumber, { kind: 'text', column: 'accession_number' }],
  [TAG.RequestedProcedureID, { kind: 'text', column: 'requested_procedure_id' }],
  [TAG.StudyInstanceUID, { kind: 'text', column: 'study_instance_uid' }],
]);

/** Keys inside the Scheduled Procedure Step Sequence that have a column (one step per item). */
const STEP_COLUMNS: ReadonlyMap<Tag, ColumnSpec> = new Map<Tag, ColumnSpec>([
  [TAG.ScheduledStationAETitle, { kind: 'aet' }],
  [TAG.ScheduledStationName, { kind: 'text', column: 'station_name' }],
  [TAG.ScheduledProcedureStepStartDate, { kind: 'date', column: 'sps_start_date' }],
  [TAG.ScheduledProcedureStepStartTime, { kind: 'time', column: 'sps_start_time' }],
  [TAG.Modality, { kind: 'text', column: 'modality' }],
  [TAG.ScheduledPerformingPhysicianName, { kind: 'pn', column: 'performing_physician_name_norm' }],
  [TAG.ScheduledProcedureStepStatus, { kind: 'text', column: 'sps_status' }],
  [TAG.ScheduledProcedureStepID, { kind: 'text', column: 'sps_id' }],
]);

/** The WHERE clause narrowing worklist_item rows to candidates of the conditions; undefined when none applies. */
export function candidateFilter(eb: Eb, conditions: readonly MatchCondition[]): Where | undefined {
  return all(
    eb,
    conditions.map((c) => translate(eb, c, ITEM_COLUMNS)),
  );
}

function all(eb: Eb, parts: readonly (Where | undefined)[]): Where | undefined {
  const defined = parts.filter((p): p is Where => p !== undefined);
  if (defined.length === 0) return undefined;
  return defined.length === 1 ? defined[0] : eb.and(defined);
}

function translate(eb: Eb, c: MatchCondition, scope: ReadonlyMap<Tag, ColumnSpec>): Where | undefined {
  switch (c.kind) {
    case 'sequence':
      // One step per item: "some item of the sequence matches" is "this row's step matches".
      if (scope !== ITEM_COLUMNS || c.tag !== TAG.ScheduledProcedureStepSequence) return undefined;
      return all(
        eb,
        c.conditions.map((x) => translate(eb, x, STEP_COLUMNS)),
      );
    case 'dateTimeRange':
      return scope === STEP_COLUMNS && c.tag === TAG.ScheduledProcedureStepStartDate
        ? between(eb, 'sps_start', c)
        : undefined;
    case 'multiple': {
      const parts = c.conditions.map((x) => translate(eb, x, scope));
      // "any" needs every alternative expressed (else one left out could be the one that matches).
      if (c.mode === 'any') return parts.every((p) => p !== undefined) ? eb.or(parts as Where[]) : undefined;
      return all(eb, parts);
    }
    case 'single':
    case 'wildcard':
    case 'range':
    case 'list': {
      const spec = scope.get(c.tag);
      return spec === undefined ? undefined : valueFilter(eb, spec, c);
    }
    default:
      // universal, empty ("" matches absent values, which have no row to compare) and invalid.
      return undefined;
  }
}

function valueFilter(
  eb: Eb,
  spec: ColumnSpec,
  c: Extract<MatchCondition, { kind: 'single' | 'wildcard' | 'range' | 'list' }>,
): Where | undefined {
  if (spec.kind === 'aet') {
    const test = aetTest(c);
    if (test === undefined) return undefined;
    // IN rather than a correlated EXISTS: both engines then start from the AE title index.
    return eb(
      'worklist_item.id',
      'in',
      eb.selectFrom('worklist_item_aet as a').select('a.item_fk').where(test),
    );
  }
  const column = spec.column;
  switch (spec.kind) {
    case 'text':
      if (c.kind === 'single') return eb(column, '=', c.value);
      if (c.kind === 'list') return eb(column, 'in', [...c.values]);
      if (c.kind === 'wildcard') return wildcard(column, c.pattern);
      return undefined;
    case 'date':
    case 'time':
      if (c.kind === 'single' && c.instant !== undefined) return eb(column, '=', c.instant.local);
      if (c.kind === 'range') return between(eb, column, c);
      return undefined;
    case 'pn':
      return personNameFilter(column, c);
  }
}

type AetEb = ExpressionBuilder<WorklistDatabase & { a: WorklistDatabase['worklist_item_aet'] }, 'a'>;

function aetTest(c: MatchCondition): ((eb: AetEb) => Where) | undefined {
  if (c.kind === 'single') {
    const value = c.value;
    return (eb) => eb('a.aet', '=', value);
  }
  if (c.kind === 'wildcard') {
    const pattern = c.pattern;
    return () => wildcard('a.aet', pattern);
  }
  return undefined;
}

/**
 * A person name by its normalised alphabetic group: the column starts with the key's group
 * (uppercase, so case is ignored: a superset of case-sensitive matching). Keys naming only the
 * ideographic or phonetic group, and "?" (one character, which uppercasing may turn into two:
 * "ß" is "SS"), are left to the matcher.
 */
function personNameFilter(column: ItemColumn, c: MatchCondition): Where | undefined {
  if (c.kind !== 'single' && c.kind !== 'wildcard') return undefined;
  const group = c.personName?.groups[0];
  if (group === undefined || group.includes('?')) return undefined;
  // The normal form is the group, then "=" and the other groups when the name has them. (A
  // single value has no "*": it would be a wildcard condition.)
  return wildcard(column, `${group.toUpperCase()}*`);
}

/** Above every character: a text starting with P sorts below P + this in byte order. */
const ABOVE_ALL = String.fromCodePoint(0x10ffff);

/**
 * A wild card pattern as LIKE, and when it starts with literal text also as the range of values
 * starting with it, which an index serves (LIKE with ESCAPE, case-insensitive on SQLite, cannot).
 * Both engines compare these columns in byte order (SQLite BINARY, PostgreSQL collate "C").
 */
function wildcard(column: string, pattern: string): Where {
  const match = sql<SqlBool>`${sql.ref(column)} like ${toSqlLike(pattern).like} escape ${SQL_LIKE_ESCAPE}`;
  const stop = pattern.search(/[*?]/);
  const prefix = stop < 0 ? pattern : pattern.slice(0, stop);
  if (prefix === '') return match;
  return sql<SqlBool>`(${sql.ref(column)} >= ${prefix} and ${sql.ref(column)} < ${prefix + ABOVE_ALL} and ${match})`;
}

function between(
  eb: Eb,
  column: ItemColumn | 'sps_start',
  c: { readonly lower: { local: string } | undefined; readonly upper: { local: string } | undefined },
): Where | undefined {
  const parts: Where[] = [];
  if (c.lower !== undefined) parts.push(eb(column, '>=', c.lower.local));
  if (c.upper !== undefined) parts.push(eb(column, '<=', c.upper.local));
  // "-" alone (both open) matches any valid value: a row with the column set.
  if (parts.length === 0) return eb(column, 'is not', null);
  return parts.length === 1 ? parts[0] : eb.and(parts);
}
