/**
 * The job queue in memory, beside the in-memory index (service tests without a database). Same
 * rules as SqlJobStore; nothing survives the process, and only runners of this process share it.
 */
import {
  CANCELLED,
  type ClaimOptions,
  type EnqueueOptions,
  type Job,
  type JobEnd,
  JobEventSource,
  JobPriority,
  type JobStore,
  type LeaseStatus,
  type ListOptions,
} from './job.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export class MemoryJobStore extends JobEventSource implements JobStore {
  readonly engine = 'memory' as const;
  private readonly jobs = new Map<number, Mutable<Job>>();
  private nextId = 1;
  private readonly now: () => number;

  constructor(options: { readonly now?: () => number } = {}) {
    super();
    this.now = options.now ?? Date.now;
  }

  async enqueue(options: EnqueueOptions): Promise<Job> {
    const now = new Date(this.now());
    const job: Mutable<Job> = {
      id: this.nextId++,
      kind: options.kind,
      priority: options.priority ?? JobPriority.normal,
      payload: clone(options.payload),
      state: 'queued',
      attempts: 0,
      maxAttempts: Math.max(1, options.maxAttempts ?? 5),
      nextRunAt: options.runAt ?? now,
      destination: options.destination ?? null,
      lockedBy: null,
      lockedAt: null,
      leaseUntil: null,
      cancelRequested: false,
      result: null,
      lastError: null,
      createdAt: now,
      updatedAt: now,
      finishedAt: null,
    };
    this.jobs.set(job.id, job);
    const copy = { ...job };
    this.events.emit('enqueued', copy);
    return copy;
  }

  async get(id: number): Promise<Job | undefined> {
    const job = this.jobs.get(id);
    return job ? { ...job } : undefined;
  }

  async list(options: ListOptions = {}): Promise<Job[]> {
    return [...this.jobs.values()]
      .filter((j) => !options.states?.length || options.states.includes(j.state))
      .filter((j) => options.kind === undefined || j.kind === options.kind)
      .sort((a, b) => b.id - a.id)
      .slice(0, options.limit ?? 100)
      .map((j) => ({ ...j }));
  }

  async claim(options: ClaimOptions): Promise<Job[]> {
    const now = this.now();
    const leased = (j: Job) => j.state === 'running' && (j.leaseUntil?.getTime() ?? 0) >= now;
    const busy = new Map<string, number>();
    for (const j of this.jobs.values())
      if (leased(j) && j.destination !== null) busy.set(j.destination, (busy.get(j.destination) ?? 0) + 1);
    const candidates = [...this.jobs.values()]
      .filter((j) => options.kinds.includes(j.kind))
      .filter(
        (j) =>
          (j.state === 'queued' && j.nextRunAt.getTime() <= now) ||
          (j.state === 'running' && (j.leaseUntil?.getTime() ?? 0) < now),
      )
      .sort(
        (a, b) => a.priority - b.priority || a.nextRunAt.getTime() - b.nextRunAt.getTime() || a.id - b.id,
      );
    const out: Job[] = [];
    for (const j of candidates) {
      if (out.length >= options.limit) break;
      if (j.destination !== null && (busy.get(j.destination) ?? 0) >= options.destinationLimit(j.destination))
        continue;
      if (j.state === 'running' && j.attempts >= j.maxAttempts) {
        Object.assign(j, {
          state: 'failed',
          lastError: `lease expired on attempt ${j.attempts} of ${j.maxAttempts} (the runner ${j.lockedBy ?? '?'} stopped)`,
          lockedBy: null,
          leaseUntil: null,
          updatedAt: new Date(now),
          finishedAt: new Date(now),
        });
        this.events.emit('finished', { ...j });
        continue;
      }
      Object.assign(j, {
        state: 'running',
        attempts: j.attempts + 1,
        lockedBy: options.worker,
        lockedAt: new Date(now),
        leaseUntil: new Date(now + options.leaseMs),
        updatedAt: new Date(now),
      });
      if (j.destination !== null) busy.set(j.destination, (busy.get(j.destination) ?? 0) + 1);
      out.push({ ...j });
    }
    return out;
  }

  private held(id: number, worker: string): Mutable<Job> | undefined {
    const j = this.jobs.get(id);
    return j && j.state === 'running' && j.lockedBy === worker ? j : undefined;
  }

  async renew(id: number, worker: string, leaseMs: number): Promise<LeaseStatus> {
    const j = this.held(id, worker);
    if (!j) return { owned: false, cancelRequested: false };
    j.leaseUntil = new Date(this.now() + leaseMs);
    j.updatedAt = new Date(this.now());
    return { owned: true, cancelRequested: j.cancelRequested };
  }

  async saveProgress(id: number, worker: string, result: unknown): Promise<boolean> {
    const j = this.held(id, worker);
    if (!j) return false;
    j.result = clone(result);
    j.updatedAt = new Date(this.now());
    this.events.emit('progress', id, result);
    return true;
  }

  async purgeFinished(before: Date): Promise<number> {
    let n = 0;
    for (const [id, j] of this.jobs)
      if ((j.state === 'done' || j.state === 'failed') && j.finishedAt !== null && j.finishedAt < before) {
        this.jobs.delete(id);
        n++;
      }
    return n;
  }

  async finish(id: number, worker: string, end: JobEnd): Promise<boolean> {
    const j = this.held(id, worker);
    if (!j) return false;
    const now = new Date(this.now());
    Object.assign(j, { lockedBy: null, leaseUntil: null, updatedAt: now, result: clone(end.result) });
    switch (end.state) {
      case 'done':
        Object.assign(j, { state: 'done', lastError: null, finishedAt: now });
        break;
      case 'failed':
        Object.assign(j, { state: 'failed', lastError: end.error, finishedAt: now });
        break;
      case 'retry':
        Object.assign(j, { state: 'queued', lastError: end.error, nextRunAt: end.runAt });
        break;
      case 'released':
        Object.assign(j, { state: 'queued', nextRunAt: now, attempts: j.attempts - 1 });
        break;
    }
    if (j.state === 'done' || j.state === 'failed') this.events.emit('finished', { ...j });
    return true;
  }

  async requestCancel(id: number): Promise<boolean> {
    const j = this.jobs.get(id);
    if (!j) return false;
    const now = new Date(this.now());
    if (j.state === 'queued') {
      Object.assign(j, {
        state: 'failed',
        cancelRequested: true,
        lastError: CANCELLED,
        updatedAt: now,
        finishedAt: now,
      });
      this.events.emit('finished', { ...j });
      return true;
    }
    if (j.state !== 'running') return false;
    j.cancelRequested = true;
    j.updatedAt = now;
    this.events.emit('cancel', id);
    return true;
  }

  async close(): Promise<void> {
    this.events.removeAllListeners();
  }
}

/** Stored as JSON would be, so that callers cannot change what is kept. */
function clone(value: unknown): unknown {
  return value === undefined ? null : (JSON.parse(JSON.stringify(value)) as unknown);
}
