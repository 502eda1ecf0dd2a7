/**
 * Sans-I/O PDU reader (the dicom-rs / ws way): push the chunks a socket gives, pull whole PDUs.
 * The 6-byte header is checked as soon as it is complete, so a PDU over the limit is refused before
 * any of its body is buffered. A PDU inside one chunk is decoded from a view of that chunk; only a PDU
 * split across chunks is copied into one buffer of its own size.
 */

import type { NetworkError } from './errors.js';
import { pduError } from './errors.js';
import { ASSOCIATE_FIXED_LENGTH, decodePduBody, PDU_HEADER_LENGTH, PDU_TYPE, type Pdu } from './pdu.js';

export interface PduReaderOptions {
  /** Largest P-DATA-TF variable field accepted: our advertised maximum length plus any slack. */
  readonly maxPDataLength: number;
  /** Largest A-ASSOCIATE-RQ/AC variable field accepted (default 1 MiB). */
  readonly maxAssociateLength?: number;
}

export const DEFAULT_MAX_ASSOCIATE_LENGTH = 1024 * 1024;

export class PduReader {
  private readonly chunks: Uint8Array[] = [];
  /** Read offset into chunks[0]. */
  private head = 0;
  private buffered = 0;
  private failure: NetworkError | undefined;
  private readonly maxPData: number;
  private readonly maxAssociate: number;

  constructor(options: PduReaderOptions) {
    this.maxPData = options.maxPDataLength;
    this.maxAssociate = options.maxAssociateLength ?? DEFAULT_MAX_ASSOCIATE_LENGTH;
  }

  /** Bytes received and not yet returned as PDUs. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /**
   * The next whole PDU, or null when more bytes are needed. Throws NetworkError (with the A-ABORT
   * reason to send) for a malformed or oversized PDU; the reader then stays failed.
   */
  next(): Pdu | null {
    if (this.failure !== undefined) throw this.failure;
    if (this.buffered < PDU_HEADER_LENGTH) return null;
    const type = this.byteAt(0);
    const length =
      ((this.byteAt(2) << 24) | (this.byteAt(3) << 16) | (this.byteAt(4) << 8) | this.byteAt(5)) >>> 0;
    const problem = this.checkHeader(type, length);
    if (problem !== undefined) {
      this.failure = problem;
      throw problem;
    }
    if (this.buffered < PDU_HEADER_LENGTH + length) return null;
    const whole = this.take(PDU_HEADER_LENGTH + length);
    try {
      return decodePduBody(type, whole.subarray(PDU_HEADER_LENGTH));
    } catch (e) {
      this.failure = e as NetworkError;
      throw e;
    }
  }

  private checkHeader(type: number, length: number): NetworkError | undefined {
    const hex = `0x${type.toString(16).padStart(2, '0')}`;
    switch (type) {
      case PDU_TYPE.AssociateRq:
      case PDU_TYPE.AssociateAc:
        if (length < ASSOCIATE_FIXED_LENGTH)
          return pduError('ERR_PDU_INVALID', `PDU ${hex} length ${length} is under 68`, 6);
        if (length > this.maxAssociate) {
          return pduError(
            'ERR_PDU_TOO_LARGE',
            `PDU ${hex} length ${length} exceeds the limit ${this.maxAssociate}`,
            6,
          );
        }
        return undefined;
      case PDU_TYPE.PDataTf:
        if (length > this.maxPData) {
          return pduError(
            'ERR_PDU_TOO_LARGE',
            `P-DATA-TF length ${length} exceeds our maximum ${this.maxPData}`,
            6,
          );
        }
        return undefined;
      case PDU_TYPE.AssociateRj:
      case PDU_TYPE.ReleaseRq:
      case PDU_TYPE.ReleaseRp:
      case PDU_TYPE.Abort:
        return length === 4
          ? undefined
          : pduError('ERR_PDU_INVALID', `PDU ${hex} must have length 4, has ${length}`, 6);
      default:
        return pduError('ERR_PDU_UNRECOGNIZED', `unrecognized PDU type ${hex}`, 1);
    }
  }

  private byteAt(offset: number): number {
    let at = this.head + offset;
    for (const chunk of this.chunks) {
      if (at < chunk.length) return chunk[at] ?? 0;
      at -= chunk.length;
    }
    return 0;
  }

  /** Removes n buffered bytes: a view when they lie in one chunk, else one copy of exactly n bytes. */
  private take(n: number): Uint8Array {
    this.buffered -= n;
    const first = this.chunks[0];
    if (first !== undefined && first.length - this.head >= n) {
      const view = first.subarray(this.head, this.head + n);
      this.head += n;
      if (this.head === first.length) {
        this.chunks.shift();
        this.head = 0;
      }
      return view;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[0];
      if (chunk === undefined) break;
      const count = Math.min(chunk.length - this.head, n - filled);
      out.set(chunk.subarray(this.head, this.head + count), filled);
      filled += count;
      this.head += count;
      if (this.head === chunk.length) {
        this.chunks.shift();
        this.head = 0;
      }
    }
    return out;
  }
}
