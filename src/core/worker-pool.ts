/**
 * A small worker-thread pool for CPU-heavy work (ARCHITECTURE.md decision 6: deflate,
 * transcoding, rendering, hashing). I/O never goes here; it stays on the event loop.
 *
 * Each worker runs one task at a time. Tasks wait in a bounded FIFO queue; when it is full `run`
 * rejects at once (ERR_WORKER_POOL_QUEUE_FULL) so the caller can answer "out of resources"
 * instead of piling up memory. Workers start on demand, up to `size`. A worker that dies (an
 * uncaught exception, process.exit, out of memory) rejects its task with ERR_WORKER_CRASHED and
 * is replaced by a fresh one the next time a task needs it, so a script that cannot even load
 * fails each task once rather than respawning in a loop.
 *
 * The worker script calls `serveTasks(handler)`; see test/core/fixtures/pool-worker.ts.
 */
import { availableParallelism } from 'node:os';
import { parentPort, type ResourceLimits, type Transferable, Worker } from 'node:worker_threads';
import { PacsError } from './errors.js';

export interface WorkerPoolOptions {
  /** The worker script (an ES module URL, e.g. `new URL('./deflate-worker.js', import.meta.url)`). */
  script: URL;
  /** Number of worker threads. Default: the available cores minus one for the event loop (at least 1). */
  size?: number;
  /** Tasks that may wait for a free worker. Default 1024. */
  maxQueue?: number;
  /** Passed to every worker as `workerData`. */
  workerData?: unknown;
  /** Limits for each worker's heap (e.g. `{ maxOldGenerationSizeMb: 256 }`). */
  resourceLimits?: ResourceLimits;
}

/** Messages between the pool and a worker. */
type TaskMessage = { id: number; task: unknown };
type ReplyMessage =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: { name: string; message: string; stack?: string; code?: string } };

interface Task {
  id: number;
  task: unknown;
  transfer: readonly Transferable[];
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

interface Slot {
  worker: Worker;
  current: Task | undefined;
  /** Set once the slot has been dropped (crash or close), so late events are ignored. */
  gone: boolean;
}

export class WorkerPool {
  readonly size: number;
  readonly maxQueue: number;
  readonly #options: WorkerPoolOptions;
  readonly #slots = new Set<Slot>();
  readonly #queue: Task[] = [];
  #nextId = 1;
  #closed = false;

  constructor(options: WorkerPoolOptions) {
    const size = options.size ?? Math.max(1, availableParallelism() - 1);
    const maxQueue = options.maxQueue ?? 1024;
    if (!Number.isInteger(size) || size < 1) {
      throw new RangeError(`WorkerPool size must be an integer >= 1, got ${size}`);
    }
    if (!Number.isInteger(maxQueue) || maxQueue < 0) {
      throw new RangeError(`WorkerPool maxQueue must be an integer >= 0, got ${maxQueue}`);
    }
    this.size = size;
    this.maxQueue = maxQueue;
    this.#options = options;
  }

  /** Tasks waiting for a worker. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Tasks being run right now. */
  get running(): number {
    let n = 0;
    for (const slot of this.#slots) if (slot.current) n++;
    return n;
  }

  /**
   * Runs one task on a worker and resolves with what its handler returned. `transfer` lists
   * buffers to move rather than copy (they become unusable here once the task starts). Rejects
   * with ERR_WORKER_POOL_QUEUE_FULL, ERR_WORKER_CRASHED, ERR_WORKER_POOL_CLOSED, or the
   * handler's own error (same name, message and `code`, default ERR_WORKER_TASK).
   */
  run<T>(task: unknown, transfer: readonly Transferable[] = []): Promise<T> {
    if (this.#closed) {
      return Promise.reject(new PacsError('ERR_WORKER_POOL_CLOSED', 'the worker pool is closed'));
    }
    return new Promise<T>((resolve, reject) => {
      const entry: Task = {
        id: this.#nextId++,
        task,
        transfer,
        // The worker's answer is trusted to be a T, as with any message crossing a thread.
        resolve: (value) => resolve(value as T),
        reject,
      };
      const slot = this.#idleSlot();
      if (slot) return this.#start(slot, entry);
      if (this.#queue.length >= this.maxQueue) {
        const message = `the worker pool queue is full (${this.maxQueue} tasks waiting)`;
        return reject(new PacsError('ERR_WORKER_POOL_QUEUE_FULL', message));
      }
      this.#queue.push(entry);
    });
  }

  /**
   * Stops every worker now. Tasks still queued or running reject with ERR_WORKER_POOL_CLOSED;
   * callers wanting a graceful end await their own tasks first.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const closed = () =>
      new PacsError('ERR_WORKER_POOL_CLOSED', 'the worker pool was closed before the task finished');
    for (const task of this.#queue.splice(0)) task.reject(closed());
    const exits: Promise<unknown>[] = [];
    for (const slot of this.#slots) {
      slot.gone = true;
      slot.current?.reject(closed());
      slot.current = undefined;
      exits.push(slot.worker.terminate());
    }
    this.#slots.clear();
    await Promise.all(exits);
  }

  #idleSlot(): Slot | undefined {
    for (const slot of this.#slots) if (!slot.current) return slot;
    return this.#slots.size < this.size ? this.#spawn() : undefined;
  }

  #spawn(): Slot {
    const worker = new Worker(this.#options.script, {
      workerData: this.#options.workerData,
      ...(this.#options.resourceLimits ? { resourceLimits: this.#options.resourceLimits } : {}),
    });
    const slot: Slot = { worker, current: undefined, gone: false };
    this.#slots.add(slot);
    worker.on('message', (reply: ReplyMessage) => this.#onReply(slot, reply));
    worker.on('messageerror', (error) => this.#finish(slot, undefined, error));
    // 'error' (uncaught exception) is followed by 'exit'; keep the first, more precise cause.
    let cause: Error | undefined;
    worker.on('error', (error) => {
      cause ??= error;
    });
    worker.on('exit', (code) => this.#onExit(slot, code, cause));
    return slot;
  }

  #start(slot: Slot, task: Task): void {
    slot.current = task;
    slot.worker.ref(); // a running task keeps the process alive; an idle pool does not
    const message: TaskMessage = { id: task.id, task: task.task };
    try {
      slot.worker.postMessage(message, task.transfer);
    } catch (e) {
      // The task could not be cloned (a function, a detached buffer...): the caller's bug, not the worker's.
      slot.current = undefined;
      task.reject(e instanceof Error ? e : new Error(String(e)));
      this.#next(slot);
    }
  }

  #onReply(slot: Slot, reply: ReplyMessage): void {
    if (slot.gone || slot.current?.id !== reply.id) return;
    if (reply.ok) this.#finish(slot, reply.value, undefined);
    else this.#finish(slot, undefined, reviveError(reply.error));
  }

  #finish(slot: Slot, value: unknown, error: Error | undefined): void {
    const task = slot.current;
    if (slot.gone || !task) return;
    slot.current = undefined;
    if (error) task.reject(error);
    else task.resolve(value);
    this.#next(slot);
  }

  #next(slot: Slot): void {
    const task = this.#queue.shift();
    if (task) this.#start(slot, task);
    else slot.worker.unref();
  }

  #onExit(slot: Slot, code: number, cause: Error | undefined): void {
    if (slot.gone) return;
    slot.gone = true;
    this.#slots.delete(slot);
    const task = slot.current;
    slot.current = undefined;
    if (task) {
      const why = cause ? `: ${cause.message}` : ` (exit code ${code})`;
      task.reject(
        new PacsError('ERR_WORKER_CRASHED', `the worker thread died while running a task${why}`, { cause }),
      );
    }
    // Replace the worker only if work is waiting; otherwise the next run() starts one.
    const waiting = this.#queue.shift();
    if (waiting && !this.#closed) this.#start(this.#spawn(), waiting);
  }
}

/** What a worker handler may return to move buffers back instead of copying them. */
export class TaskResult<T = unknown> {
  constructor(
    readonly value: T,
    readonly transfer: readonly Transferable[],
  ) {}
}

/**
 * Worker side: answers the pool's tasks with `handler`. A handler that throws rejects its task with
 * the same name, message and `code`; the worker lives on. Call once, at the top of the worker script.
 */
export function serveTasks(handler: (task: unknown) => unknown): void {
  const port = parentPort;
  if (port === null) throw new Error('serveTasks() must be called inside a worker thread');
  port.on('message', async ({ id, task }: TaskMessage) => {
    let reply: ReplyMessage;
    let transfer: readonly Transferable[] = [];
    try {
      const result = await handler(task);
      if (result instanceof TaskResult) {
        reply = { id, ok: true, value: result.value };
        transfer = result.transfer;
      } else {
        reply = { id, ok: true, value: result };
      }
    } catch (e) {
      reply = { id, ok: false, error: serializeError(e) };
    }
    try {
      port.postMessage(reply, transfer);
    } catch (e) {
      // The result could not be cloned: report that instead of leaving the task hanging.
      port.postMessage({ id, ok: false, error: serializeError(e) } satisfies ReplyMessage);
    }
  });
}

function serializeError(e: unknown): { name: string; message: string; stack?: string; code?: string } {
  if (!(e instanceof Error)) return { name: 'Error', message: String(e) };
  const code: unknown = Reflect.get(e, 'code');
  return {
    name: e.name,
    message: e.message,
    ...(e.stack === undefined ? {} : { stack: e.stack }),
    ...(typeof code === 'string' ? { code } : {}),
  };
}

function reviveError(data: { name: string; message: string; stack?: string; code?: string }): Error {
  const error = new PacsError(data.code ?? 'ERR_WORKER_TASK', data.message);
  error.name = data.name;
  if (data.stack !== undefined) error.stack = data.stack;
  return error;
}
