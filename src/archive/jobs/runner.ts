/**
 * The job runner: claims jobs of the kinds it has handlers for and runs them on the event loop
 * (jobs are I/O: CPU-heavy steps inside a handler go to the worker pool). It claims when woken
 * (a job enqueued through the same store, a slot freed, a retry due) and polls otherwise, which
 * is how it sees jobs enqueued by other processes and leases that expired. While a job runs, its
 * lease is renewed every third of the lease time; a renewal that finds the job gone (another
 * runner took it after a stall) or a cancel requested stops the handler through its signal.
 *
 * A handler returns the job's result (JSON), or throws: RetryableJobError puts the job back to
 * queued with exponential backoff while attempts are left; any other error fails it.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { PacsError } from '../../core/errors.js';
import {
  type BackoffOptions,
  backoffDelay,
  CANCELLED,
  type Job,
  type JobEnd,
  type JobStore,
  RetryableJobError,
} from './job.js';

/** The logging a runner does (pino's Logger fits). */
export interface JobLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export type StopReason = 'cancel' | 'shutdown' | 'lease-lost';

/** The reason of a job's signal when the runner stops it. */
export class JobStopped extends PacsError {
  readonly reason: StopReason;
  constructor(reason: StopReason) {
    const text = {
      cancel: 'the job was cancelled',
      shutdown: 'the runner is shutting down',
      'lease-lost': 'the job was taken by another runner after its lease expired',
    }[reason];
    super('ERR_JOB_STOPPED', text);
    this.reason = reason;
  }
}

export interface JobContext {
  readonly job: Job;
  /** Aborted (with a JobStopped reason) when the job is cancelled, the runner stops, or the lease is lost. */
  readonly signal: AbortSignal;
  /**
   * Progress: listeners of this process hear it at once; it is written to the store at most every
   * `saveIntervalMs` (and at once with `save`), so that a run taken again after a crash resumes
   * from it (the job's `result` when the run starts) and other processes can follow it.
   */
  report(result: unknown, options?: { readonly save?: boolean }): void;
  readonly log: JobLogger;
}

export type JobHandler = (ctx: JobContext) => Promise<unknown>;

export interface JobRunnerOptions {
  /** Written to locked_by; default host:pid:random. */
  readonly workerId?: string;
  /** Jobs this runner runs at once (default 4). */
  readonly concurrency?: number;
  /** Claim round interval when not woken (default 1000 ms). */
  readonly pollMs?: number;
  /** Lease length (default 30 s); renewed every third of it. */
  readonly leaseMs?: number;
  /** Running jobs per destination over every runner of the store (default 4). */
  readonly perDestination?: number | ((destination: string) => number);
  readonly backoff?: BackoffOptions;
  /** Longest time between progress writes of a running job (default 1000 ms). */
  readonly saveIntervalMs?: number;
  /** How long stop() waits for stopped handlers to return (default 10 s). */
  readonly stopGraceMs?: number;
  /** Finished jobs older than this are deleted, checked hourly (default 7 days; 0 keeps them). */
  readonly keepFinishedMs?: number;
  readonly logger?: JobLogger;
}

interface Running {
  readonly job: Job;
  readonly controller: AbortController;
  result: unknown;
  lastSave: number;
  saving: Promise<unknown>;
  readonly done: Promise<void>;
}

const noop = (): void => {};
const silent: JobLogger = { debug: noop, info: noop, warn: noop, error: noop };

export class JobRunner {
  readonly store: JobStore;
  readonly workerId: string;
  private readonly handlers = new Map<string, JobHandler>();
  private readonly active = new Map<number, Running>();
  private readonly concurrency: number;
  private readonly pollMs: number;
  private readonly leaseMs: number;
  private readonly destinationLimit: (destination: string) => number;
  private readonly backoff: BackoffOptions;
  private readonly saveIntervalMs: number;
  private readonly stopGraceMs: number;
  private readonly log: JobLogger;
  private started = false;
  private stopping: Promise<void> | undefined;
  private ticking = false;
  private again = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private purgeTimer: NodeJS.Timeout | undefined;
  private readonly keepFinishedMs: number;
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  private readonly onEnqueued = (job: Job): void => {
    if (this.handlers.has(job.kind)) this.wake();
  };
  private readonly onCancel = (id: number): void => {
    this.active.get(id)?.controller.abort(new JobStopped('cancel'));
  };

  constructor(store: JobStore, options: JobRunnerOptions = {}) {
    this.store = store;
    this.workerId = options.workerId ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    this.concurrency = Math.max(1, options.concurrency ?? 4);
    this.pollMs = options.pollMs ?? 1000;
    this.leaseMs = options.leaseMs ?? 30_000;
    const per = options.perDestination ?? 4;
    this.destinationLimit = typeof per === 'number' ? () => per : per;
    this.backoff = options.backoff ?? {};
    this.saveIntervalMs = options.saveIntervalMs ?? 1000;
    this.stopGraceMs = options.stopGraceMs ?? 10_000;
    this.keepFinishedMs = options.keepFinishedMs ?? 7 * 24 * 3600_000;
    this.log = options.logger ?? silent;
  }

  /** Registers the handler of a job kind (before or after start). */
  register(kind: string, handler: JobHandler): this {
    this.handlers.set(kind, handler);
    if (this.started) this.wake();
    return this;
  }

  get kinds(): readonly string[] {
    return [...this.handlers.keys()];
  }

  /** Jobs running in this runner now. */
  get running(): readonly Job[] {
    return [...this.active.values()].map((r) => r.job);
  }

  start(): this {
    if (this.started || this.stopping) return this;
    this.started = true;
    this.store.on('enqueued', this.onEnqueued);
    this.store.on('cancel', this.onCancel);
    this.wake();
    if (this.keepFinishedMs > 0) {
      void this.purge();
      this.purgeTimer = setInterval(() => void this.purge(), 3600_000);
      this.purgeTimer.unref();
    }
    return this;
  }

  /** Deletes the finished jobs older than `keepFinishedMs` (every runner may do it: it is idempotent). */
  private async purge(): Promise<void> {
    try {
      const n = await this.store.purgeFinished(new Date(Date.now() - this.keepFinishedMs));
      if (n > 0) this.log.debug({ jobs: n }, 'finished jobs deleted');
    } catch (e) {
      this.log.warn({ err: describe(e) }, 'deleting finished jobs failed');
    }
  }

  /** Starts a claim round soon. */
  wake(): void {
    if (!this.started || this.stopping) return;
    if (this.ticking) {
      this.again = true;
      return;
    }
    setImmediate(() => void this.tick());
  }

  /**
   * Stops claiming, stops running handlers (their jobs go back to queued, the attempt not
   * counted), and resolves once they have returned or `stopGraceMs` has passed.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.store.off('enqueued', this.onEnqueued);
      this.store.off('cancel', this.onCancel);
      if (this.pollTimer) clearTimeout(this.pollTimer);
      if (this.purgeTimer) clearInterval(this.purgeTimer);
      for (const t of this.retryTimers) clearTimeout(t);
      const runs = [...this.active.values()];
      for (const r of runs) r.controller.abort(new JobStopped('shutdown'));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(runs.map((r) => r.done)),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, this.stopGraceMs);
        }),
      ]);
      if (timer) clearTimeout(timer);
    })();
    return this.stopping;
  }

  private async tick(): Promise<void> {
    if (!this.started || this.stopping || this.ticking) return;
    this.ticking = true;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    try {
      do {
        this.again = false;
        const free = this.concurrency - this.active.size;
        if (free <= 0 || this.handlers.size === 0) break;
        const jobs = await this.store.claim({
          worker: this.workerId,
          limit: free,
          kinds: this.kinds,
          leaseMs: this.leaseMs,
          destinationLimit: this.destinationLimit,
        });
        for (const job of jobs) this.launch(job);
        if (jobs.length === free) this.again = true;
      } while (this.again && !this.stopping);
    } catch (e) {
      this.log.warn({ err: describe(e) }, 'claiming jobs failed; trying again at the next poll');
    } finally {
      this.ticking = false;
    }
    if (!this.stopping) {
      this.pollTimer = setTimeout(() => void this.tick(), this.pollMs);
      this.pollTimer.unref();
    }
  }

  private launch(job: Job): void {
    const handler = this.handlers.get(job.kind);
    if (!handler) return; // claimed only for known kinds
    const controller = new AbortController();
    let finished: () => void = noop;
    const run: Running = {
      job,
      controller,
      result: job.result,
      lastSave: Date.now(),
      saving: Promise.resolve(),
      done: new Promise<void>((resolve) => {
        finished = resolve;
      }),
    };
    this.active.set(job.id, run);
    if (job.cancelRequested) controller.abort(new JobStopped('cancel'));
    const save = (): void => {
      run.lastSave = Date.now();
      const result = run.result;
      run.saving = run.saving
        .then(() => this.store.saveProgress(job.id, this.workerId, result))
        .catch((e: unknown) =>
          this.log.warn({ job: job.id, err: describe(e) }, 'saving job progress failed'),
        );
    };
    const heartbeat = setInterval(
      () => {
        this.store.renew(job.id, this.workerId, this.leaseMs).then(
          (status) => {
            if (!status.owned) controller.abort(new JobStopped('lease-lost'));
            else if (status.cancelRequested) controller.abort(new JobStopped('cancel'));
          },
          (e: unknown) => this.log.warn({ job: job.id, err: describe(e) }, 'renewing a job lease failed'),
        );
      },
      Math.max(10, Math.floor(this.leaseMs / 3)),
    );
    heartbeat.unref();
    const ctx: JobContext = {
      job,
      signal: controller.signal,
      report: (result, options) => {
        run.result = result;
        this.store.announceProgress(job.id, result);
        if (options?.save || Date.now() - run.lastSave >= this.saveIntervalMs) save();
      },
      log: this.log,
    };
    this.log.debug({ job: job.id, kind: job.kind, attempt: job.attempts }, 'job started');
    void (async () => {
      let end: JobEnd | undefined;
      try {
        const result = await handler(ctx);
        run.result = result;
        end = this.endAfterStop(controller.signal, result) ?? { state: 'done', result };
      } catch (e) {
        end = this.endAfterStop(controller.signal, run.result) ?? this.endAfterError(job, e, run.result);
      } finally {
        clearInterval(heartbeat);
      }
      await run.saving;
      if (end !== undefined) {
        try {
          const recorded = await this.store.finish(job.id, this.workerId, end);
          if (!recorded)
            this.log.warn({ job: job.id }, 'job ended after its lease was lost: outcome not recorded');
          else this.logEnd(job, end);
        } catch (e) {
          // Left running: its lease expires and it is taken again.
          this.log.error({ job: job.id, err: describe(e) }, 'recording the end of a job failed');
        }
      }
      this.active.delete(job.id);
      finished();
      this.wake();
    })();
  }

  /** How a stopped run ends: undefined when it was not stopped. */
  private endAfterStop(signal: AbortSignal, result: unknown): JobEnd | undefined {
    if (!signal.aborted) return undefined;
    const reason = signal.reason instanceof JobStopped ? signal.reason.reason : 'cancel';
    if (reason === 'cancel') return { state: 'failed', error: CANCELLED, result };
    if (reason === 'shutdown') return { state: 'released', result };
    // The lease is lost: the job is someone else's now, nothing is written.
    return undefined;
  }

  private endAfterError(job: Job, e: unknown, result: unknown): JobEnd {
    const error = describe(e);
    if (e instanceof RetryableJobError && job.attempts < job.maxAttempts) {
      const delay = backoffDelay(job.attempts, this.backoff);
      const timer = setTimeout(() => {
        this.retryTimers.delete(timer);
        this.wake();
      }, delay);
      timer.unref();
      this.retryTimers.add(timer);
      return { state: 'retry', error, result, runAt: new Date(Date.now() + delay) };
    }
    return { state: 'failed', error, result };
  }

  private logEnd(job: Job, end: JobEnd): void {
    const fields = { job: job.id, kind: job.kind, attempt: job.attempts };
    switch (end.state) {
      case 'done':
        this.log.debug(fields, 'job done');
        break;
      case 'failed':
        if (end.error === CANCELLED) this.log.info(fields, 'job cancelled');
        else this.log.warn({ ...fields, err: end.error }, 'job failed');
        break;
      case 'retry':
        this.log.info(
          { ...fields, err: end.error, retryAt: end.runAt.toISOString() },
          'job failed; retried later',
        );
        break;
      case 'released':
        this.log.debug(fields, 'job released (shutdown)');
        break;
    }
  }
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
