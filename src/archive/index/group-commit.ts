/**
 * Group commit: write operations submitted while a commit is in progress (or within `delayMs`)
 * run together in one transaction and share its commit, the way database engines batch their
 * log flushes. An operation that fails is rolled back alone and the others still commit (the
 * batch is then run again with a savepoint per operation). Every promise resolves only after the
 * commit it belongs to.
 *
 * With no load there is no added latency (the batch starts on the next turn of the event loop);
 * under load batches grow by themselves while the previous commit waits for the disk.
 */

export interface TransactionHost<C> {
  /** Runs body in one transaction on one connection: commit when it resolves, roll back when it throws. */
  transaction<R>(body: (conn: C) => Promise<R>): Promise<R>;
  /** Runs body in a savepoint of the current transaction; on a throw, rolls back to it and rethrows. */
  savepoint<R>(conn: C, name: string, body: () => Promise<R>): Promise<R>;
  /** True for failures worth trying again in a later transaction (deadlock, serialization failure, a lost race). */
  isRetryable(error: unknown): boolean;
}

export interface GroupCommitOptions {
  /** Operations per transaction at most (default 256). */
  readonly maxBatch?: number;
  /** Wait this long for more operations before starting a batch (default 0: the next event loop turn). */
  readonly delayMs?: number;
  /** Batches in flight at once (default 1; SQLite has one writer anyway). */
  readonly concurrency?: number;
  /** Attempts of an operation that keeps failing with a retryable error (default 5). */
  readonly maxAttempts?: number;
}

export interface GroupCommitStats {
  readonly batches: number;
  readonly operations: number;
  readonly largestBatch: number;
  readonly retries: number;
}

interface Job<C> {
  readonly run: (conn: C) => Promise<unknown>;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
  attempts: number;
}

/** Thrown out of a transaction when one of its operations failed (as opposed to begin or commit). */
class OperationFailed extends Error {
  constructor(override readonly cause: unknown) {
    super('an operation of the batch failed');
  }
}

type Outcome =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: unknown };

export class GroupCommit<C> {
  private readonly host: TransactionHost<C>;
  private readonly maxBatch: number;
  private readonly delayMs: number;
  private readonly concurrency: number;
  private readonly maxAttempts: number;
  private queue: Job<C>[] = [];
  private running = 0;
  private scheduled = false;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  private counters = { batches: 0, operations: 0, largestBatch: 0, retries: 0 };

  constructor(host: TransactionHost<C>, options: GroupCommitOptions = {}) {
    this.host = host;
    this.maxBatch = Math.max(1, options.maxBatch ?? 256);
    this.delayMs = Math.max(0, options.delayMs ?? 0);
    this.concurrency = Math.max(1, options.concurrency ?? 1);
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 5);
  }

  get stats(): GroupCommitStats {
    return { ...this.counters };
  }

  /**
   * Queues an operation; resolves with its result once its transaction has committed. The
   * operation may run more than once (after a retryable failure), so it must not have effects
   * outside the transaction.
   */
  submit<T>(run: (conn: C) => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error('the index is closed'));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run, resolve: resolve as (value: unknown) => void, reject, attempts: 0 });
      this.schedule();
    });
  }

  /** Refuses new operations and resolves when every queued one has finished. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.queue.length === 0 && this.running === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private schedule(): void {
    if (this.scheduled || this.running >= this.concurrency || this.queue.length === 0) return;
    this.scheduled = true;
    const start = () => {
      this.scheduled = false;
      void this.flush();
    };
    if (this.delayMs > 0) setTimeout(start, this.delayMs);
    else setImmediate(start);
  }

  private async flush(): Promise<void> {
    if (this.running >= this.concurrency || this.queue.length === 0) {
      this.settled();
      return;
    }
    const batch = this.queue.splice(0, this.maxBatch);
    this.running++;
    // Another batch may start while this one waits for its commit.
    this.schedule();
    try {
      await this.runBatch(batch);
    } finally {
      this.running--;
      this.schedule();
      this.settled();
    }
  }

  private settled(): void {
    if (this.queue.length > 0 || this.running > 0 || this.scheduled) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private async runBatch(batch: Job<C>[]): Promise<void> {
    this.counters.batches++;
    this.counters.operations += batch.length;
    this.counters.largestBatch = Math.max(this.counters.largestBatch, batch.length);
    // Optimistically without savepoints (each costs two round trips on PostgreSQL); if any
    // operation fails, the transaction is rolled back and the batch runs again, isolated.
    const fast = await this.attempt(batch, false);
    if (!fast.ok && fast.error instanceof OperationFailed) {
      if (batch.length === 1) this.settle(batch, { ok: false, error: fast.error.cause });
      else this.settle(batch, await this.attempt(batch, true));
      return;
    }
    this.settle(batch, fast);
  }

  /** One transaction over the batch: the outcome of each job, or the failure of the whole. */
  private async attempt(
    batch: Job<C>[],
    isolated: boolean,
  ): Promise<{ ok: true; outcomes: Outcome[] } | { ok: false; error: unknown }> {
    const outcomes: Outcome[] = [];
    try {
      await this.host.transaction(async (conn) => {
        outcomes.length = 0;
        for (let i = 0; i < batch.length; i++) {
          const job = batch[i] as Job<C>;
          if (!isolated) {
            try {
              outcomes.push({ ok: true, value: await job.run(conn) });
            } catch (error) {
              throw new OperationFailed(error);
            }
            continue;
          }
          try {
            outcomes.push({
              ok: true,
              value: await this.host.savepoint(conn, `op${i}`, () => job.run(conn)),
            });
          } catch (error) {
            outcomes.push({ ok: false, error });
          }
        }
      });
    } catch (error) {
      // Begin or commit failed, or (not isolated) an operation threw: nothing of this batch is committed.
      return { ok: false, error };
    }
    return { ok: true, outcomes };
  }

  private settle(
    batch: Job<C>[],
    result: { ok: true; outcomes: Outcome[] } | { ok: false; error: unknown },
  ): void {
    if (!result.ok) {
      for (const job of batch) this.fail(job, result.error);
      return;
    }
    batch.forEach((job, i) => {
      const o = result.outcomes[i] as Outcome;
      if (o.ok) job.resolve(o.value);
      else this.fail(job, o.error);
    });
  }

  private fail(job: Job<C>, error: unknown): void {
    job.attempts++;
    if (job.attempts < this.maxAttempts && this.host.isRetryable(error)) {
      this.counters.retries++;
      this.queue.push(job);
      return;
    }
    job.reject(error);
  }
}
