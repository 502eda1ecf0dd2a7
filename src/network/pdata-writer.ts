/**
 * The one P-DATA writer (the dicom-rs way): one command or data set is written to it as a byte
 * stream, and it cuts what is written into PDVs that fit the peer's maximum length (PS3.8 9.3.5,
 * annex E: one message control header per PDV, the last fragment flagged), one PDV per P-DATA-TF.
 * Nothing is copied: each PDV's value is a list of views of the written buffers. Every sender uses
 * it: DIMSE messages (dimse.ts) and the stream of Association.createPdvWriter.
 *
 * Backpressure: `write` resolves once every full PDV it produced was handed to the transport
 * (which waits for 'drain' when the socket is congested), so a source piped into it is read only
 * as fast as the peer takes it. The last PDV is held until `end()`: only then is it known to be last.
 */
import { type OutgoingPdv, PDV_HEADER_LENGTH } from './pdu.js';

/** Sends one PDV in a P-DATA-TF; resolves when the transport took it. */
export type PdvSink = (pdv: OutgoingPdv) => Promise<void>;

/**
 * Largest PDV value that fits a P-DATA-TF of `maxPduLength` (PS3.8 9.3.5: the maximum length
 * counts the PDV item headers): the length less the 6-byte PDV header, kept even so that a data
 * set is never cut inside a 2-byte unit. 0 (no limit) uses `fallback`.
 */
export function maxPdvValueLength(maxPduLength: number, fallback: number): number {
  const limit = maxPduLength === 0 ? fallback : Math.min(maxPduLength, fallback);
  const room = limit - PDV_HEADER_LENGTH;
  return Math.max(2, room - (room % 2));
}

export class PDataWriter {
  private parts: Uint8Array[] = [];
  private pending = 0;
  private contextId = 0;
  private isCommand = false;

  /** @param maxValueLength largest PDV value (maxPdvValueLength of the peer's maximum). */
  constructor(
    private readonly sink: PdvSink,
    readonly maxValueLength: number,
  ) {}

  /** Starts a message part (a command or a data set) on a presentation context; drops what was left. */
  begin(contextId: number, isCommand: boolean): this {
    this.contextId = contextId;
    this.isCommand = isCommand;
    this.parts = [];
    this.pending = 0;
    return this;
  }

  /** Bytes not sent yet (at most one PDV's worth after `write` resolved). */
  get buffered(): number {
    return this.pending;
  }

  /** Queues bytes and sends every PDV that is full, keeping what may be the last one. */
  async write(chunk: Uint8Array): Promise<void> {
    if (chunk.length === 0) return;
    this.parts.push(chunk);
    this.pending += chunk.length;
    while (this.pending > this.maxValueLength) await this.flush(false, this.maxValueLength);
  }

  /** Sends what is left as the last fragment (an empty one if nothing was written). */
  end(): Promise<void> {
    return this.flush(true, this.pending);
  }

  /** Writes a whole message part held in memory: its PDVs are views of `bytes`. */
  async writeAll(contextId: number, isCommand: boolean, bytes: Uint8Array): Promise<void> {
    this.begin(contextId, isCommand);
    const max = this.maxValueLength;
    let at = 0;
    while (bytes.length - at > max) {
      await this.sink({ contextId, isCommand, isLast: false, data: bytes.subarray(at, at + max) });
      at += max;
    }
    await this.sink({ contextId, isCommand, isLast: true, data: at === 0 ? bytes : bytes.subarray(at) });
  }

  /** Forgets what was written and not sent (a message given up). */
  discard(): void {
    this.parts = [];
    this.pending = 0;
  }

  /** Sends the first `n` pending bytes as one PDV. */
  private flush(isLast: boolean, n: number): Promise<void> {
    const parts = this.parts;
    let data: Uint8Array | Uint8Array[];
    const first = parts[0];
    if (first !== undefined && first.length === n) {
      // The usual case: one written buffer is one PDV.
      parts.shift();
      data = first;
    } else {
      const out: Uint8Array[] = [];
      let need = n;
      while (need > 0) {
        const head = parts[0];
        if (head === undefined) break;
        if (head.length <= need) {
          out.push(head);
          parts.shift();
          need -= head.length;
        } else {
          out.push(head.subarray(0, need));
          parts[0] = head.subarray(need);
          need = 0;
        }
      }
      data = out;
    }
    this.pending -= n;
    return this.sink({ contextId: this.contextId, isCommand: this.isCommand, isLast, data });
  }
}
