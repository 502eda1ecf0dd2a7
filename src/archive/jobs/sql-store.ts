/**
 * The job queue in the index database (kysely), on SQLite and PostgreSQL. The `job` table is
 * created by migration 2 (index/migrations.ts).
 *
 * Claiming is one transaction. On PostgreSQL several processes claim at once: candidates are
 * selected `FOR UPDATE SKIP LOCKED` (a row another claimer holds is skipped, never waited for,
 * never taken twice), and a destination's running jobs are counted under a transaction advisory
 * lock on that destination, so that two claimers cannot both take its last free slot. On SQLite
 * the transaction starts with BEGIN IMMEDIATE: one writer at a time, so the same reads are exact.
 *
 * Times come from this process's clock (injectable for tests): processes sharing a PostgreSQL
 * database are expected to keep their clocks in step (NTP); leases are tens of seconds.
 */
import { type Generated, type Kysely, type Selectable, sql } from 'kysely';
import { inTransaction, type SqlEngine } from '../database.js';
import type { IndexDatabase } from '../index/schema.js';
import {
  CANCELLED,
  type ClaimOptions,
  type EnqueueOptions,
  fromJson,
  type Job,
  type JobEnd,
  JobEventSource,
  JobPriority,
  type JobState,
  type JobStore,
  type LeaseStatus,
  type ListOptions,
  toJson,
} from './job.js';

/** The `job` table as kysely sees it. */
export interface JobTable {
  id: Generated<number>;
  kind: string;
  priority: number;
  payload: string;
  state: string;
  attempts: number;
  max_attempts: number;
  next_run_at: string;
  destination: string | null;
  locked_by: string | null;
  locked_at: string | null;
  lease_until: string | null;
  cancel_requested: number;
  result: string | null;
  last_error: string | null;
  created_at: string;
  updated_at: string;
  finished_at: string | null;
}

export interface JobDatabase {
  job: JobTable;
}

type Db = Kysely<JobDatabase>;
type JobRow = Selectable<JobTable>;

export interface SqlJobStoreOptions {
  /** Milliseconds since the epoch (default Date.now); tests move time on. */
  readonly now?: () => number;
  /** Called by close(); default nothing (the index owns the connection). */
  readonly onClose?: () => Promise<void>;
}

/** Candidates read per claim beyond the jobs wanted, to skip past saturated destinations. */
const CLAIM_SLACK = 16;

export class SqlJobStore extends JobEventSource implements JobStore {
  readonly engine: SqlEngine;
  private readonly db: Db;
  private readonly now: () => number;
  private readonly onClose: () => Promise<void>;

  /** `db` is the index's kysely instance; migration 2 created the job table in it. */
  constructor(db: Kysely<IndexDatabase>, engine: SqlEngine, options: SqlJobStoreOptions = {}) {
    super();
    // schema.ts describes the level tables; the job table is this module's, typed here.
    this.db = db as unknown as Db;
    this.engine = engine;
    this.now = options.now ?? Date.now;
    this.onClose = options.onClose ?? (async () => undefined);
  }

  /** Jobs queued or running (the depth of the shared queue, for metrics). */
  async countActive(): Promise<number> {
    const row = await this.db
      .selectFrom('job')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('state', 'in', ['queued', 'running'])
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  private iso(offsetMs = 0): string {
    return new Date(this.now() + offsetMs).toISOString();
  }

  async enqueue(options: EnqueueOptions): Promise<Job> {
    const now = this.iso();
    const row = await this.db
      .insertInto('job')
      .values({
        kind: options.kind,
        priority: options.priority ?? JobPriority.normal,
        payload: toJson(options.payload),
        state: 'queued',
        attempts: 0,
        max_attempts: Math.max(1, options.maxAttempts ?? 5),
        next_run_at: options.runAt ? options.runAt.toISOString() : now,
        destination: options.destination ?? null,
        locked_by: null,
        locked_at: null,
        lease_until: null,
        cancel_requested: 0,
        result: null,
        last_error: null,
        created_at: now,
        updated_at: now,
        finished_at: null,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    const job = toJob(row);
    this.events.emit('enqueued', job);
    return job;
  }

  async get(id: number): Promise<Job | undefined> {
    const row = await this.db.selectFrom('job').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toJob(row) : undefined;
  }

  async list(options: ListOptions = {}): Promise<Job[]> {
    let q = this.db
      .selectFrom('job')
      .selectAll()
      .orderBy('id', 'desc')
      .limit(options.limit ?? 100);
    if (options.states?.length) q = q.where('state', 'in', [...options.states]);
    if (options.kind !== undefined) q = q.where('kind', '=', options.kind);
    return (await q.execute()).map(toJob);
  }

  async claim(options: ClaimOptions): Promise<Job[]> {
    if (options.limit <= 0 || options.kinds.length === 0) return [];
    const { claimed, failed } = await this.transaction((tx) => this.claimIn(tx, options));
    for (const job of failed) this.events.emit('finished', job);
    return claimed;
  }

  private async claimIn(tx: Db, options: ClaimOptions): Promise<{ claimed: Job[]; failed: Job[] }> {
    const now = this.iso();
    const pg = this.engine === 'postgres';
    // Destinations at their limit now: their jobs are not even read.
    const running = await tx
      .selectFrom('job')
      .select(['destination', (eb) => eb.fn.countAll<number>().as('n')])
      .where('state', '=', 'running')
      .where('lease_until', '>=', now)
      .where('destination', 'is not', null)
      .groupBy('destination')
      .execute();
    const saturated = running
      .filter((r) => r.destination !== null && Number(r.n) >= options.destinationLimit(r.destination))
      .map((r) => r.destination as string);

    let q = tx
      .selectFrom('job')
      .selectAll()
      .where('kind', 'in', [...options.kinds])
      .where((eb) =>
        eb.or([
          eb.and([eb('state', '=', 'queued'), eb('next_run_at', '<=', now)]),
          eb.and([eb('state', '=', 'running'), eb('lease_until', '<', now)]),
        ]),
      )
      .orderBy('priority')
      .orderBy('next_run_at')
      .orderBy('id')
      .limit(options.limit + CLAIM_SLACK);
    if (saturated.length > 0)
      q = q.where((eb) => eb.or([eb('destination', 'is', null), eb('destination', 'not in', saturated)]));
    // PostgreSQL: rows another claimer holds are skipped, so no job is taken twice.
    const candidates = await (pg ? q.forUpdate().skipLocked() : q).execute();

    const out: Job[] = [];
    const failed: Job[] = [];
    const lockedDestinations = new Set<string>();
    for (const row of candidates) {
      if (out.length >= options.limit) break;
      const destination = row.destination;
      if (destination !== null) {
        if (pg && !lockedDestinations.has(destination)) {
          // Another claimer counting this destination right now: leave it to that one.
          const lock = await sql<{
            locked: boolean;
          }>`select pg_try_advisory_xact_lock(hashtext(current_schema() || '.pacs.job.' || ${destination})) as locked`.execute(
            tx,
          );
          if (lock.rows[0]?.locked !== true) continue;
          lockedDestinations.add(destination);
        }
        // Counted in a statement of its own: it sees every claim committed before the lock was
        // taken, and this transaction's own claims.
        const counted = await tx
          .selectFrom('job')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('state', '=', 'running')
          .where('lease_until', '>=', now)
          .where('destination', '=', destination)
          .executeTakeFirstOrThrow();
        if (Number(counted.n) >= options.destinationLimit(destination)) continue;
      }
      if (row.state === 'running' && row.attempts >= row.max_attempts) {
        // Its runner died on the last attempt: fail it rather than run it once more.
        const expired = await tx
          .updateTable('job')
          .set({
            state: 'failed',
            last_error: `lease expired on attempt ${row.attempts} of ${row.max_attempts} (the runner ${row.locked_by ?? '?'} stopped)`,
            locked_by: null,
            lease_until: null,
            updated_at: now,
            finished_at: now,
          })
          .where('id', '=', row.id)
          .returningAll()
          .executeTakeFirstOrThrow();
        failed.push(toJob(expired));
        continue;
      }
      const updated = await tx
        .updateTable('job')
        .set({
          state: 'running',
          attempts: row.attempts + 1,
          locked_by: options.worker,
          locked_at: now,
          lease_until: this.iso(options.leaseMs),
          updated_at: now,
        })
        .where('id', '=', row.id)
        .returningAll()
        .executeTakeFirstOrThrow();
      out.push(toJob(updated));
    }
    return { claimed: out, failed };
  }

  async renew(id: number, worker: string, leaseMs: number): Promise<LeaseStatus> {
    const row = await this.db
      .updateTable('job')
      .set({ lease_until: this.iso(leaseMs), updated_at: this.iso() })
      .where('id', '=', id)
      .where('locked_by', '=', worker)
      .where('state', '=', 'running')
      .returning('cancel_requested')
      .executeTakeFirst();
    return row
      ? { owned: true, cancelRequested: row.cancel_requested !== 0 }
      : { owned: false, cancelRequested: false };
  }

  async saveProgress(id: number, worker: string, result: unknown): Promise<boolean> {
    const r = await this.db
      .updateTable('job')
      .set({ result: toJson(result), updated_at: this.iso() })
      .where('id', '=', id)
      .where('locked_by', '=', worker)
      .where('state', '=', 'running')
      .executeTakeFirst();
    const owned = Number(r.numUpdatedRows) > 0;
    if (owned) this.events.emit('progress', id, result);
    return owned;
  }

  async purgeFinished(before: Date): Promise<number> {
    const r = await this.db
      .deleteFrom('job')
      .where('state', 'in', ['done', 'failed'])
      .where('finished_at', '<', before.toISOString())
      .executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  async finish(id: number, worker: string, end: JobEnd): Promise<boolean> {
    const now = this.iso();
    const base = this.db
      .updateTable('job')
      .where('id', '=', id)
      .where('locked_by', '=', worker)
      .where('state', '=', 'running');
    const common = { locked_by: null, lease_until: null, updated_at: now, result: toJson(end.result) };
    let row: JobRow | undefined;
    switch (end.state) {
      case 'done':
        row = await base
          .set({ ...common, state: 'done', last_error: null, finished_at: now })
          .returningAll()
          .executeTakeFirst();
        break;
      case 'failed':
        row = await base
          .set({ ...common, state: 'failed', last_error: end.error, finished_at: now })
          .returningAll()
          .executeTakeFirst();
        break;
      case 'retry':
        row = await base
          .set({ ...common, state: 'queued', last_error: end.error, next_run_at: end.runAt.toISOString() })
          .returningAll()
          .executeTakeFirst();
        break;
      case 'released':
        row = await base
          .set((eb) => ({ ...common, state: 'queued', next_run_at: now, attempts: eb('attempts', '-', 1) }))
          .returningAll()
          .executeTakeFirst();
        break;
    }
    if (row === undefined) return false;
    const job = toJob(row);
    if (job.state === 'done' || job.state === 'failed') this.events.emit('finished', job);
    return true;
  }

  async requestCancel(id: number): Promise<boolean> {
    const now = this.iso();
    const queued = await this.db
      .updateTable('job')
      .set({
        state: 'failed',
        cancel_requested: 1,
        last_error: CANCELLED,
        updated_at: now,
        finished_at: now,
      })
      .where('id', '=', id)
      .where('state', '=', 'queued')
      .returningAll()
      .executeTakeFirst();
    if (queued) {
      this.events.emit('finished', toJob(queued));
      return true;
    }
    const running = await this.db
      .updateTable('job')
      .set({ cancel_requested: 1, updated_at: now })
      .where('id', '=', id)
      .where('state', '=', 'running')
      .executeTakeFirst();
    if (Number(running.numUpdatedRows) === 0) return false;
    this.events.emit('cancel', id);
    return true;
  }

  close(): Promise<void> {
    this.events.removeAllListeners();
    return this.onClose();
  }

  /** One transaction on one connection (see database.ts). */
  private transaction<R>(body: (tx: Db) => Promise<R>): Promise<R> {
    return inTransaction(this.db, this.engine, body);
  }
}

function date(text: string | null): Date | null {
  return text === null ? null : new Date(text);
}

function toJob(row: JobRow): Job {
  return {
    id: Number(row.id),
    kind: row.kind,
    priority: Number(row.priority),
    payload: fromJson(row.payload),
    state: row.state as JobState,
    attempts: Number(row.attempts),
    maxAttempts: Number(row.max_attempts),
    nextRunAt: new Date(row.next_run_at),
    destination: row.destination,
    lockedBy: row.locked_by,
    lockedAt: date(row.locked_at),
    leaseUntil: date(row.lease_until),
    cancelRequested: Number(row.cancel_requested) !== 0,
    result: fromJson(row.result),
    lastError: row.last_error,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
    finishedAt: date(row.finished_at),
  };
}
