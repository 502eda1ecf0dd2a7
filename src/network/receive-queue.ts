/**
 * The receive side of an established association: P-DATA indications (PS3.8 9.3.5) queued for
 * their one reader, with flow control. Received PDVs queue up to a high-water mark, then the
 * transport is paused until the reader catches up, so memory per association stays bounded.
 * PDV values are views into received chunks, never copied.
 *
 * The queue also knows when its reader is idle: the Upper Layer answers a peer's A-RELEASE-RQ
 * (Sta8) only once everything received was read and the reader asks for more (PS3.8 9.2.3 leaves
 * when to answer to the user; answering earlier would cut off a response still being prepared).
 */
import { NetworkError } from './errors.js';
import type { Pdv } from './pdu.js';

/** What the queue asks of the Upper Layer that feeds it. */
export interface ReceiveQueueHost {
  /** Stop reading the transport (the reader is behind by the high-water mark). */
  pause(): void;
  /** Read the transport again. */
  resume(): void;
  /** The reader waits for a PDV (arm the DIMSE timer), or stopped waiting (disarm it). */
  readerWaiting(waiting: boolean): void;
  /** The reader may have become idle: a pending A-RELEASE-RQ may be answered now. */
  readerIdle(): void;
}

export type ReceiveEnd = { readonly kind: 'done' } | { readonly kind: 'error'; readonly error: NetworkError };

export class ReceiveQueue {
  private readonly received: Pdv[] = [];
  /** Index of the next PDV to read: the array is emptied when read to its end, not shifted. */
  private head = 0;
  private queuedBytes = 0;
  private paused = false;
  private waiter: { resolve: (r: IteratorResult<Pdv>) => void; reject: (e: Error) => void } | undefined;
  private attached = false;
  /** The peer asked for release: once read to the end, the reader gets `done`. */
  private releasing = false;
  private readerReachedEnd = false;
  private ended: ReceiveEnd | undefined;

  constructor(
    private readonly host: ReceiveQueueHost,
    private readonly highWaterMark: number,
  ) {}

  /** A P-DATA indication's PDV: handed to a waiting reader, or queued. */
  push(pdv: Pdv): void {
    const w = this.waiter;
    if (w !== undefined) {
      this.waiter = undefined;
      this.host.readerWaiting(false);
      w.resolve({ value: pdv, done: false });
      return;
    }
    this.received.push(pdv);
    this.queuedBytes += pdv.data.length;
    if (this.queuedBytes >= this.highWaterMark && !this.paused) {
      this.paused = true;
      this.host.pause();
    }
  }

  /** The next PDV for the one reader; `done` after release, rejects after an abort. */
  next(): Promise<IteratorResult<Pdv>> {
    this.attached = true;
    if (this.head < this.received.length) {
      const pdv = this.received[this.head] as Pdv;
      this.received[this.head] = undefined as unknown as Pdv;
      this.head++;
      if (this.head === this.received.length) {
        this.received.length = 0;
        this.head = 0;
      }
      this.queuedBytes -= pdv.data.length;
      if (this.paused && this.queuedBytes <= this.highWaterMark / 2) {
        this.paused = false;
        this.host.resume();
      }
      return Promise.resolve({ value: pdv, done: false });
    }
    if (this.ended !== undefined) {
      return this.ended.kind === 'error'
        ? Promise.reject(this.ended.error)
        : Promise.resolve({ value: undefined, done: true });
    }
    if (this.releasing) {
      this.readerReachedEnd = true;
      this.host.readerIdle();
      return Promise.resolve({ value: undefined, done: true });
    }
    if (this.waiter !== undefined)
      return Promise.reject(new NetworkError('ERR_ASSOCIATION_STATE', 'PDVs have one reader at a time'));
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.host.readerWaiting(true);
    });
  }

  /** The reader left (its for-await loop ended). */
  detach(): void {
    this.attached = false;
    this.host.readerIdle();
  }

  /** The peer sent A-RELEASE-RQ (Sta8): the reader reads what is queued, then gets `done`. */
  releaseRequested(): void {
    this.releasing = true;
  }

  /** Everything received was read, and the reader waits, reached the end, or never read. */
  get readerIdle(): boolean {
    const drained = this.head === this.received.length;
    return drained && (this.waiter !== undefined || this.readerReachedEnd || !this.attached);
  }

  /** No more PDVs: a waiting reader gets `done` or the error. The first end wins. */
  end(end: ReceiveEnd): void {
    if (this.ended !== undefined) return;
    this.ended = end;
    const w = this.waiter;
    this.waiter = undefined;
    if (w === undefined) return;
    this.host.readerWaiting(false);
    if (end.kind === 'error') w.reject(end.error);
    else w.resolve({ value: undefined, done: true });
  }
}
