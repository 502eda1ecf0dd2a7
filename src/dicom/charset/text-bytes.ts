/** Small buffers shared by the character set codecs. */

/** Why a character could not be encoded, for the caller to wrap in its error. */
export class UnencodableCharacter {
  constructor(readonly codePoint: number) {}
}

/** Builds a string from UTF-16 code units, in slices small enough to pass as arguments. */
export function codeUnitsToString(units: Uint16Array, length: number): string {
  const chunk = 8192;
  if (length <= chunk) return String.fromCharCode(...units.subarray(0, length));
  let s = '';
  for (let i = 0; i < length; i += chunk) {
    s += String.fromCharCode(...units.subarray(i, Math.min(length, i + chunk)));
  }
  return s;
}

/** A growable byte buffer. */
export class ByteSink {
  private buf: Uint8Array;
  private length = 0;

  constructor(capacity: number) {
    this.buf = new Uint8Array(Math.max(16, capacity));
  }

  push(b: number): void {
    if (this.length === this.buf.length) this.grow();
    this.buf[this.length++] = b;
  }

  pushAll(bytes: readonly number[]): void {
    for (const b of bytes) this.push(b);
  }

  bytes(): Uint8Array {
    return this.buf.slice(0, this.length);
  }

  private grow(): void {
    const next = new Uint8Array(this.buf.length * 2);
    next.set(this.buf);
    this.buf = next;
  }
}
