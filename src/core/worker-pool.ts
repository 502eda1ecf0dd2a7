/**
 * A small fixed-size pool of worker threads with a task queue (ARCHITECTURE.md decision 6: CPU
 * work leaves the event loop). Tasks are posted as `{ id, task }` and a worker answers
 * `{ id, ok: true, result }` or `{ id, ok: false, error: { code, message } }`; buffers listed in
 * `transfer` move without a copy. A worker that crashes or exits fails only the task it was running
 * and is replaced; close() terminates the workers and fails what is still queued. Queued tasks
 * wait by priority, then in order.
 * The worker side is one call: `serveWorkerTasks(handler)`.
 */
import { availableParallelism } from 'node:os';
import { isMainThread, parentPort, type TransferListItem, Worker } from 'node:worker_threads';
import { PacsError } from './errors.js';

/** A task failed in its worker, the worker died, or the pool was closed (code ERR_WORKER_*, or the task's own). */
export class WorkerTaskError extends PacsError {}

/** How a pool is made: its worker module, its size, the data each worker starts with. */
export interface WorkerPoolOptions {
  /** The worker module (an ES module URL or path). */
  readonly script: URL | string;
  /** Threads (default: available cores - 1, at least 1, at most 4). */
  readonly size?: number;
  /** Passed to each worker as workerData. */
  readonly workerData?: unknown;
}

interface Pending {
  readonly task: unknown;
  readonly priority: number;
  readonly transfer: readonly TransferListItem[];
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
}

interface Slot {
  worker: Worker;
  current: (Pending & { id: number }) | undefined;
}

interface Reply {
  readonly id: number;
  readonly ok: boolean;
  readonly result?: unknown;
  readonly error?: { readonly code?: string; readonly message?: string };
}

/** A fixed-size pool of worker threads running one kind of task. */
export class WorkerPool<T = unknown, R = unknown> {
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private nextId = 1;
  private closed = false;
  readonly size: number;

  constructor(private readonly options: WorkerPoolOptions) {
    this.size = Math.max(1, options.size ?? Math.min(4, Math.max(1, availableParallelism() - 1)));
    for (let i = 0; i < this.size; i++) this.slots.push(this.spawn());
  }

  private spawn(): Slot {
    const worker = new Worker(this.options.script, { workerData: this.options.workerData });
    const slot: Slot = { worker, current: undefined };
    worker.on('message', (reply: Reply) => {
      const job = slot.current;
      if (job === undefined || reply.id !== job.id) return;
      slot.current = undefined;
      worker.unref();
      if (reply.ok) job.resolve(reply.result);
      else
        job.reject(
          new WorkerTaskError(reply.error?.code ?? 'ERR_WORKER_TASK', reply.error?.message ?? 'task failed'),
        );
      this.pump();
    });
    const died = (why: string) => {
      const index = this.slots.indexOf(slot);
      if (index < 0) return;
      const job = slot.current;
      slot.current = undefined;
      job?.reject(new WorkerTaskError('ERR_WORKER_CRASHED', `the worker thread ${why}`));
      if (this.closed) return;
      this.slots[index] = this.spawn();
      this.pump();
    };
    worker.on('error', (e) => died(`failed: ${e.message}`));
    worker.on('exit', (code) => died(`exited with code ${code}`));
    // An idle worker must not keep the process alive; unref after the listeners are attached
    // (attaching a 'message' listener refs the worker's port again).
    worker.unref();
    return slot;
  }

  private pump(): void {
    for (const slot of this.slots) {
      if (this.queue.length === 0) return;
      if (slot.current !== undefined) continue;
      const next = this.queue.shift() as Pending;
      const id = this.nextId++;
      slot.current = { ...next, id };
      slot.worker.ref();
      try {
        slot.worker.postMessage({ id, task: next.task }, next.transfer as TransferListItem[]);
      } catch (e) {
        slot.current = undefined;
        next.reject(e as Error);
      }
    }
  }

  /**
   * Runs a task on the next free worker; `transfer` lists ArrayBuffers to move rather than copy.
   * A higher `priority` goes before queued tasks of a lower one (a viewer's frame before a
   * background job); equal priorities run in order.
   */
  run(task: T, transfer: readonly TransferListItem[] = [], priority = 0): Promise<R> {
    if (this.closed)
      return Promise.reject(new WorkerTaskError('ERR_WORKER_CLOSED', 'the worker pool is closed'));
    return new Promise<R>((resolve, reject) => {
      const pending: Pending = { task, priority, transfer, resolve: resolve as (v: unknown) => void, reject };
      let at = this.queue.length;
      while (at > 0 && (this.queue[at - 1] as Pending).priority < priority) at--;
      this.queue.splice(at, 0, pending);
      this.pump();
    });
  }

  /** Tasks waiting for a worker. */
  get queued(): number {
    return this.queue.length;
  }

  /** Terminates the workers; running and queued tasks fail with ERR_WORKER_CLOSED. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.queue.splice(0))
      p.reject(new WorkerTaskError('ERR_WORKER_CLOSED', 'the worker pool is closed'));
    await Promise.all(
      this.slots.map(async (slot) => {
        const job = slot.current;
        slot.current = undefined;
        job?.reject(new WorkerTaskError('ERR_WORKER_CLOSED', 'the worker pool is closed'));
        await slot.worker.terminate();
      }),
    );
    this.slots.length = 0;
  }
}

/** In a worker module: answers the pool's tasks with `handler` (its result and the buffers to transfer). */
export function serveWorkerTasks<T, R>(
  handler: (
    task: T,
  ) => Promise<{ result: R; transfer?: TransferListItem[] }> | { result: R; transfer?: TransferListItem[] },
): void {
  if (isMainThread || parentPort === null) throw new Error('serveWorkerTasks runs in a worker thread only');
  const port = parentPort;
  port.on('message', async (message: { id: number; task: T }) => {
    try {
      const { result, transfer } = await handler(message.task);
      port.postMessage({ id: message.id, ok: true, result }, transfer ?? []);
    } catch (e) {
      const err = e as { code?: unknown; message?: unknown };
      port.postMessage({
        id: message.id,
        ok: false,
        error: {
          code: typeof err.code === 'string' ? err.code : 'ERR_WORKER_TASK',
          message: String(err.message ?? e),
        },
      });
    }
  });
}
