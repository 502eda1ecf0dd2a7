/**
 * Big-endian byte helpers for the Upper Layer codec (PS3.8 9.3.1: PDU fields are big endian).
 * Internal to src/network; data sets use the dicom/ layer's own readers.
 */
import { NetworkError, pduError } from './errors.js';

/** Accumulates the fields of one PDU or item; `toBytes()` concatenates them once. */
export class ByteWriter {
  private readonly parts: Uint8Array[] = [];
  private total = 0;

  get length(): number {
    return this.total;
  }

  u8(value: number): this {
    return this.bytes(Uint8Array.of(value & 0xff));
  }

  u16(value: number): this {
    if (!Number.isInteger(value) || value < 0 || value > 0xffff) {
      throw new NetworkError('ERR_PDU_ENCODE', `value ${value} does not fit in 16 bits`);
    }
    return this.bytes(Uint8Array.of(value >>> 8, value & 0xff));
  }

  u32(value: number): this {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
      throw new NetworkError('ERR_PDU_ENCODE', `value ${value} does not fit in 32 bits`);
    }
    return this.bytes(Uint8Array.of(value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff));
  }

  bytes(value: Uint8Array): this {
    if (value.length > 0) {
      this.parts.push(value);
      this.total += value.length;
    }
    return this;
  }

  toBytes(): Uint8Array {
    if (this.parts.length === 1 && this.parts[0] !== undefined) return this.parts[0];
    const out = new Uint8Array(this.total);
    let at = 0;
    for (const part of this.parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  }
}

/** ISO 646 (ASCII) text to bytes; refuses anything outside 0x20..0x7e. */
export function asciiBytes(text: string, what: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c > 0x7e)
      throw new NetworkError('ERR_PDU_ENCODE', `${what} has a non-ISO 646 character at ${i}`);
    out[i] = c;
  }
  return out;
}

/** Reads fields from a view; every overrun is a malformed PDU (A-ABORT reason 6). */
export class ByteCursor {
  private readonly view: DataView;
  pos: number;
  readonly end: number;

  constructor(
    readonly bytes: Uint8Array,
    start = 0,
    end = bytes.length,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = start;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number, what: string): void {
    if (this.pos + n > this.end) {
      throw pduError('ERR_PDU_INVALID', `${what} overruns its container at byte ${this.pos}`, 6);
    }
  }

  u8(what: string): number {
    this.need(1, what);
    return this.view.getUint8(this.pos++);
  }

  u16(what: string): number {
    this.need(2, what);
    const v = this.view.getUint16(this.pos);
    this.pos += 2;
    return v;
  }

  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }

  /** A view (no copy) of the next n bytes. */
  take(n: number, what: string): Uint8Array {
    this.need(n, what);
    const v = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  skip(n: number, what: string): void {
    this.need(n, what);
    this.pos += n;
  }
}

/** Bytes to a string, one char per byte (latin1 keeps unexpected bytes visible instead of failing). */
export function latin1(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}

/** A UID as received: trailing NUL or space padding (sent by some peers despite PS3.8 Annex F) removed. */
export function decodeUid(bytes: Uint8Array): string {
  return latin1(bytes).replace(/[\0 ]+$/, '');
}
