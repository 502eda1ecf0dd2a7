/**
 * The audit trail as kept in the index (table audit_record of the security migration): the
 * AuditRecordStore port of security/audit/record.ts, on SQLite or PostgreSQL (the index's own
 * connections) and in memory for tests. Records are only ever added (one row per message id: a
 * message the spool delivers again after a crash is skipped) and read newest first with filters;
 * `pacs audit` and the API of the audit role (issue 15) read through queryAudit().
 */
import type { Generated, Kysely } from 'kysely';
import type { AuditQuery, AuditRecord, AuditRecordStore, AuditSummary } from '../../security/audit/record.js';
import { retryingTransaction, type SqlEngine } from '../database.js';
import type { ArchiveIndex } from '../index/archive-index.js';
import type { IndexDatabase } from '../index/schema.js';
import { SqlArchiveIndex } from '../index/sql-index.js';

type AuditRecordTable = {
  id: Generated<number>;
  message_id: string;
  event_time: string;
  event_id: string;
  event_action: string | null;
  outcome: number;
  user_name: string | null;
  patient_id: string | null;
  study_instance_uid: string | null;
  remote_address: string | null;
  summary: string;
  message: string;
};
type AuditDatabase = { audit_record: AuditRecordTable };

const DEFAULT_LIMIT = 100;
const ATTEMPTS = 5;

function matches(r: AuditRecord, q: AuditQuery): boolean {
  return (
    (q.since === undefined || r.eventTime >= q.since) &&
    (q.until === undefined || r.eventTime < q.until) &&
    (q.user === undefined || r.userName === q.user) &&
    (q.patientId === undefined || r.patientId === q.patientId) &&
    (q.eventId === undefined || r.eventId === q.eventId)
  );
}

export class MemoryAuditStore implements AuditRecordStore {
  private readonly records = new Map<string, AuditRecord>();

  async add(records: readonly AuditRecord[]): Promise<void> {
    for (const r of records) if (!this.records.has(r.messageId)) this.records.set(r.messageId, r);
  }

  async query(q: AuditQuery): Promise<AuditRecord[]> {
    // Newest first; of the same time, the later added first (as the SQL store's id order).
    return [...this.records.values()]
      .map((r, i) => ({ r, i }))
      .filter(({ r }) => matches(r, q))
      .sort((a, b) => b.r.eventTime.getTime() - a.r.eventTime.getTime() || b.i - a.i)
      .slice(0, q.limit ?? DEFAULT_LIMIT)
      .map(({ r }) => r);
  }
}

export class SqlAuditStore implements AuditRecordStore {
  private readonly db: Kysely<IndexDatabase & AuditDatabase>;
  private readonly engine: SqlEngine;

  constructor(index: { readonly db: Kysely<IndexDatabase>; readonly engine: SqlEngine }) {
    this.db = index.db.withTables<AuditDatabase>();
    this.engine = index.engine;
  }

  async add(records: readonly AuditRecord[]): Promise<void> {
    if (records.length === 0) return;
    await retryingTransaction(this.db, this.engine, ATTEMPTS, async (conn) => {
      await conn
        .insertInto('audit_record')
        .values(
          records.map((r) => ({
            message_id: r.messageId,
            event_time: r.eventTime.toISOString(),
            event_id: r.eventId,
            event_action: r.eventAction,
            outcome: r.outcome,
            user_name: r.userName,
            patient_id: r.patientId,
            study_instance_uid: r.studyInstanceUid,
            remote_address: r.remoteAddress,
            summary: JSON.stringify(r.summary),
            message: r.message,
          })),
        )
        .onConflict((oc) => oc.column('message_id').doNothing())
        .execute();
    });
  }

  async query(q: AuditQuery): Promise<AuditRecord[]> {
    let query = this.db.selectFrom('audit_record').selectAll();
    if (q.since !== undefined) query = query.where('event_time', '>=', q.since.toISOString());
    if (q.until !== undefined) query = query.where('event_time', '<', q.until.toISOString());
    if (q.user !== undefined) query = query.where('user_name', '=', q.user);
    if (q.patientId !== undefined) query = query.where('patient_id', '=', q.patientId);
    if (q.eventId !== undefined) query = query.where('event_id', '=', q.eventId);
    const rows = await query
      .orderBy('event_time', 'desc')
      .orderBy('id', 'desc')
      .limit(q.limit ?? DEFAULT_LIMIT)
      .execute();
    return rows.map((row) => ({
      messageId: row.message_id,
      eventTime: new Date(row.event_time),
      eventId: row.event_id,
      eventAction: row.event_action,
      outcome: Number(row.outcome),
      userName: row.user_name,
      patientId: row.patient_id,
      studyInstanceUid: row.study_instance_uid,
      remoteAddress: row.remote_address,
      summary: JSON.parse(row.summary) as AuditSummary,
      message: row.message,
    }));
  }
}

const shared = new WeakMap<ArchiveIndex, AuditRecordStore>();

/** The audit store of an opened index (one per index): on its SQL database, or in memory. */
export function auditStoreOf(index: ArchiveIndex): AuditRecordStore {
  let store = shared.get(index);
  if (store === undefined) {
    store = index instanceof SqlArchiveIndex ? new SqlAuditStore(index) : new MemoryAuditStore();
    shared.set(index, store);
  }
  return store;
}

/** The records matching `query`, newest first: what `pacs audit` and the audit role's API read. */
export function queryAudit(index: ArchiveIndex, query: AuditQuery): Promise<AuditRecord[]> {
  return auditStoreOf(index).query(query);
}
