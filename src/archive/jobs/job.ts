/**
 * The job queue (ARCHITECTURE.md decision 6): long work that outlives a request (C-MOVE
 * sub-operations first; forwarding and re-indexing later) is a row in the index, so it survives a
 * restart and, on PostgreSQL, is shared by every server process. This module is the port: the
 * job record, what a store must do, and the rules shared by every store (priorities, backoff).
 *
 * Life of a job: queued -> running (claimed by one runner under a lease it renews) -> done or
 * failed. A runner that dies stops renewing; once the lease has expired another runner takes the
 * job again. A transient failure puts it back to queued with a later next_run_at (exponential
 * backoff) until its attempts are used up. A cancelled job ends as failed with the error
 * "cancelled".
 */
import { EventEmitter } from 'node:events';
import { PacsError } from '../../core/errors.js';

export type JobState = 'queued' | 'running' | 'done' | 'failed';

export const JOB_STATES: readonly JobState[] = ['queued', 'running', 'done', 'failed'];

/** Lower runs first: interactive retrieves before background work. */
export const JobPriority = {
  /** A user is waiting (C-MOVE). */
  interactive: 0,
  normal: 50,
  /** Forwarding, re-indexing, clean-up. */
  background: 100,
} as const;

/** The error text of a job ended by a cancel request. */
export const CANCELLED = 'cancelled';

export interface Job {
  readonly id: number;
  readonly kind: string;
  readonly priority: number;
  /** JSON as given to enqueue(). */
  readonly payload: unknown;
  readonly state: JobState;
  /** Runs started so far (a claim counts one; a run stopped by a shutdown does not). */
  readonly attempts: number;
  readonly maxAttempts: number;
  /** A queued job is not claimed before this. */
  readonly nextRunAt: Date;
  /** Jobs with the same destination share its concurrency limit (e.g. a C-MOVE destination AE). */
  readonly destination: string | null;
  /** The runner holding the job while it runs, since when, and until when unless it renews. */
  readonly lockedBy: string | null;
  readonly lockedAt: Date | null;
  readonly leaseUntil: Date | null;
  readonly cancelRequested: boolean;
  /** JSON: the progress a running job last saved, then its outcome. */
  readonly result: unknown;
  readonly lastError: string | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly finishedAt: Date | null;
}

export interface EnqueueOptions {
  readonly kind: string;
  /** Any JSON value. */
  readonly payload: unknown;
  /** Default JobPriority.normal. */
  readonly priority?: number;
  readonly destination?: string | null;
  /** Default 5. */
  readonly maxAttempts?: number;
  /** Not before this time (default now). */
  readonly runAt?: Date;
}

export interface ClaimOptions {
  /** Identifies the runner (host, process, instance) in locked_by. */
  readonly worker: string;
  /** Jobs to take at most. */
  readonly limit: number;
  /** Only these kinds (the ones the runner can run). */
  readonly kinds: readonly string[];
  readonly leaseMs: number;
  /** Running jobs allowed at once per destination, over every runner sharing the store. */
  readonly destinationLimit: (destination: string) => number;
}

export interface ListOptions {
  readonly states?: readonly JobState[];
  readonly kind?: string;
  /** Newest first; default 100. */
  readonly limit?: number;
}

/** How a running job ends, as the runner records it. */
export type JobEnd =
  | { readonly state: 'done'; readonly result: unknown }
  | { readonly state: 'failed'; readonly error: string; readonly result: unknown }
  /** Back to queued at `runAt` (a transient failure with attempts left). */
  | { readonly state: 'retry'; readonly error: string; readonly result: unknown; readonly runAt: Date }
  /** Back to queued now, the attempt not counted (the runner is shutting down). */
  | { readonly state: 'released'; readonly result: unknown };

/** What a store tells about a running job when its lease is renewed. */
export interface LeaseStatus {
  /** False when the job is no longer this runner's (its lease expired and another took it, or it ended). */
  readonly owned: boolean;
  readonly cancelRequested: boolean;
}

/** In-process notifications, so that a runner or a waiting service need not poll its own store. */
export interface JobEvents {
  enqueued: [job: Job];
  /** Progress saved or reported by a runner of this process (result as given). */
  progress: [id: number, result: unknown];
  /** A job reached done or failed through this store. */
  finished: [job: Job];
  /** A cancel was requested through this store. */
  cancel: [id: number];
}

export type JobListener<E extends keyof JobEvents> = (...args: JobEvents[E]) => void;

/**
 * Where jobs are kept: the index tables (SqlJobStore) or memory (MemoryJobStore, for tests with
 * the in-memory index). Every write is committed when its promise resolves. Guarded writes
 * (renew, save, finish) apply only while `worker` holds the job, so a runner that lost its lease
 * cannot overwrite the new owner's work.
 */
export interface JobStore {
  readonly engine: 'sqlite' | 'postgres' | 'memory';
  enqueue(options: EnqueueOptions): Promise<Job>;
  get(id: number): Promise<Job | undefined>;
  list(options?: ListOptions): Promise<Job[]>;
  /**
   * Takes runnable jobs in priority order (then next_run_at, then id): queued ones that are due,
   * and running ones whose lease expired (their runner died). Each is returned running, leased to
   * `worker`, its attempts counted. A destination's limit holds over every runner of the store.
   * An expired job whose attempts are used up is failed instead of taken.
   */
  claim(options: ClaimOptions): Promise<Job[]>;
  /** Extends the lease of a job `worker` holds; tells whether a cancel was requested. */
  renew(id: number, worker: string, leaseMs: number): Promise<LeaseStatus>;
  /** Saves a running job's progress (its result so far); false when `worker` does not hold it. */
  saveProgress(id: number, worker: string, result: unknown): Promise<boolean>;
  /** Ends a run; false when `worker` does not hold the job (nothing is written then). */
  finish(id: number, worker: string, end: JobEnd): Promise<boolean>;
  /**
   * Asks a job to stop: a queued job fails at once ("cancelled"); a running one is flagged and its
   * runner stops it. False when the job is over already or unknown.
   */
  requestCancel(id: number): Promise<boolean>;
  /** Deletes done and failed jobs that ended before `before`; returns how many. */
  purgeFinished(before: Date): Promise<number>;
  /** Reports a running job's progress to listeners of this process without writing it. */
  announceProgress(id: number, result: unknown): void;
  on<E extends keyof JobEvents>(event: E, listener: JobListener<E>): void;
  off<E extends keyof JobEvents>(event: E, listener: JobListener<E>): void;
  close(): Promise<void>;
}

/** The events half of a JobStore, the same for every store: the stores extend it and emit on `events`. */
export abstract class JobEventSource {
  protected readonly events = new EventEmitter();

  constructor() {
    // Every waiting C-MOVE listens for its job: many listeners are expected.
    this.events.setMaxListeners(0);
  }

  announceProgress(id: number, result: unknown): void {
    this.events.emit('progress', id, result);
  }

  on<E extends keyof JobEvents>(event: E, listener: JobListener<E>): void {
    this.events.on(event, listener as (...args: unknown[]) => void);
  }

  off<E extends keyof JobEvents>(event: E, listener: JobListener<E>): void {
    this.events.off(event, listener as (...args: unknown[]) => void);
  }
}

/** A failure worth trying again later (a destination that refuses the association or is down). */
export class RetryableJobError extends PacsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_JOB_RETRYABLE', message, options);
  }
}

export interface BackoffOptions {
  /** Delay before the second attempt (default 1000 ms); it doubles for each attempt after. */
  readonly baseMs?: number;
  /** Longest delay (default 5 minutes). */
  readonly maxMs?: number;
  /** Fraction of the delay taken off at random, so that many jobs do not retry in step (default 0.2). */
  readonly jitter?: number;
}

/** The delay before the next attempt after `attempts` failed ones: base * 2^(attempts-1), capped, jittered. */
export function backoffDelay(attempts: number, options: BackoffOptions = {}, random = Math.random): number {
  const base = options.baseMs ?? 1000;
  const max = options.maxMs ?? 5 * 60_000;
  const jitter = Math.min(1, Math.max(0, options.jitter ?? 0.2));
  const delay = Math.min(max, base * 2 ** Math.max(0, attempts - 1));
  return Math.round(delay * (1 - jitter * random()));
}

/** JSON text of a payload or result; undefined is stored as null. */
export function toJson(value: unknown): string {
  return JSON.stringify(value ?? null);
}

export function fromJson(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // Written by us, so never expected; shown as it is rather than failing a listing.
    return text;
  }
}
