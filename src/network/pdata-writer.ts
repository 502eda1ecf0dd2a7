/**
 * The one P-DATA writer (the dicom-rs way): one command or data set is written to it as a byte
 * stream, and it cuts what is written into PDVs that fit the peer's maximum length (PS3.8 9.3.5,
 * annex E: one message control header per PDV, the last fragment flagged). Nothing is copied: each
 * PDV's value is a list of views of the written buffers. Every sender uses it: DIMSE messages
 * (dimse.ts) and the stream of Association.createPdvWriter.
 *
 * A command that fits one PDV can be held (`holdCommand`) and go out in the same P-DATA-TF as the
 * first PDV of its data set (PS3.8 9.3.5: a P-DATA-TF carries one or more PDVs; annex E.2: a PDV
 * holds command or data, never both): one PDU and one socket write per C-FIND answer instead of
 * two, and a C-STORE's command travels with the first bytes of its data set.
 *
 * Backpressure: `write` resolves once every full PDV it produced was handed to the transport
 * (which waits for 'drain' when the socket is congested), so a source piped into it is read only
 * as fast as the peer takes it. The last PDV is held until `end()`: only then is it known to be last.
 */
import { type OutgoingPdv, PDV_HEADER_LENGTH } from './pdu.js';

/** Sends these PDVs in one P-DATA-TF; resolves when the transport took it. */
export type PdvSink = (pdvs: readonly OutgoingPdv[]) => Promise<void>;

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
  /** A whole command waiting to share the P-DATA-TF of the first data PDV. */
  private held: OutgoingPdv | undefined;
  /** Its size in that PDU (PDV header included), 0 when nothing is held. */
  private heldSize = 0;

  /** @param maxValueLength largest PDV value (maxPdvValueLength of the peer's maximum). */
  constructor(
    private readonly sink: PdvSink,
    readonly maxValueLength: number,
  ) {}

  /**
   * Starts a message part (a command or a data set) on a presentation context; drops what was
   * left of the previous part, but keeps a held command (it goes out with this part's first PDV).
   */
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
    // The first PDV shares its P-DATA-TF with a held command: it has that much less room.
    while (this.pending > this.maxValueLength - this.heldSize)
      await this.flush(false, this.maxValueLength - this.heldSize);
  }

  /** Sends what is left as the last fragment (an empty one if nothing was written). */
  end(): Promise<void> {
    return this.flush(true, this.pending);
  }

  /**
   * A whole command (one message part in memory) that is sent with the first PDV of what follows
   * (`writeAll`, `write`/`end` of the data set, or `sendHeld` when there is no data set). One that
   * leaves no even room for data in one PDU is sent at once, cut as writeAll cuts it.
   */
  holdCommand(contextId: number, bytes: Uint8Array): Promise<void> {
    this.held = undefined;
    this.heldSize = 0;
    if (bytes.length % 2 !== 0 || bytes.length + PDV_HEADER_LENGTH + 2 > this.maxValueLength)
      return this.writeAll(contextId, true, bytes);
    this.held = { contextId, isCommand: true, isLast: true, data: bytes };
    this.heldSize = PDV_HEADER_LENGTH + bytes.length;
    return Promise.resolve();
  }

  /** Sends a held command alone (a message without a data set); nothing when none is held. */
  sendHeld(): Promise<void> {
    const held = this.held;
    if (held === undefined) return Promise.resolve();
    this.held = undefined;
    this.heldSize = 0;
    return this.sink([held]);
  }

  /** Writes a whole message part held in memory: its PDVs are views of `bytes`. */
  async writeAll(contextId: number, isCommand: boolean, bytes: Uint8Array): Promise<void> {
    this.begin(contextId, isCommand);
    const max = this.maxValueLength;
    let at = 0;
    // The first PDV, with the held command when there is one (it then has less room).
    const first = max - this.heldSize;
    if (bytes.length > first) {
      await this.send({ contextId, isCommand, isLast: false, data: bytes.subarray(0, first) });
      at = first;
      while (bytes.length - at > max) {
        await this.sink([{ contextId, isCommand, isLast: false, data: bytes.subarray(at, at + max) }]);
        at += max;
      }
    }
    await this.send({ contextId, isCommand, isLast: true, data: at === 0 ? bytes : bytes.subarray(at) });
  }

  /** Forgets what was written and not sent (a message given up), a held command included. */
  discard(): void {
    this.parts = [];
    this.pending = 0;
    this.held = undefined;
    this.heldSize = 0;
  }

  /** One PDV in a P-DATA-TF, after the held command if there is one. */
  private send(pdv: OutgoingPdv): Promise<void> {
    const held = this.held;
    if (held === undefined) return this.sink([pdv]);
    this.held = undefined;
    this.heldSize = 0;
    return this.sink([held, pdv]);
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
    return this.send({ contextId: this.contextId, isCommand: this.isCommand, isLast, data });
  }
}
