/**
 * Sample-level helpers shared by the codecs: widening decoded samples to Bits Allocated, sign
 * extension from Bits Stored, and masking to Bits Stored before an encoder that expects it.
 */
import type { PixelModule } from './types.js';

/**
 * Native little-endian samples of `bytes` bytes each (1 or 2) as the module's Bits Allocated
 * (8 or 16) wants them; signed samples are sign-extended from Bits Stored (PS3.5 8.1.1: the
 * value is in the low Bits Stored bits, High Bit = Bits Stored - 1 for compressed data).
 */
export function toNative(decoded: Uint8Array, bytes: number, m: PixelModule): Uint8Array {
  const want = m.bitsAllocated >> 3;
  const count = bytes === 0 ? 0 : Math.floor(decoded.length / bytes);
  const signed = m.pixelRepresentation === 1 && m.bitsStored < 8 * want;
  if (bytes === want && !signed) return decoded;
  const out = new Uint8Array(count * want);
  const shift = 32 - m.bitsStored;
  for (let i = 0; i < count; i++) {
    let v =
      bytes === 2
        ? (decoded[2 * i] as number) | ((decoded[2 * i + 1] as number) << 8)
        : (decoded[i] as number);
    if (signed) v = (v << shift) >> shift;
    if (want === 2) {
      out[2 * i] = v & 0xff;
      out[2 * i + 1] = (v >> 8) & 0xff;
    } else out[i] = v & 0xff;
  }
  return out;
}

/**
 * Native samples as an encoder wants them: `bytes` bytes each (1 or 2), the value in the low
 * Bits Stored bits, and, when `signExtend`, signed samples sign-extended to the full width
 * (else masked to Bits Stored, as JPEG-LS and the DICOM rules for signed data want).
 */
export function fromNative(
  native: Uint8Array,
  bytes: number,
  m: PixelModule,
  signExtend: boolean,
): Uint8Array {
  const have = m.bitsAllocated >> 3;
  const count = Math.floor(native.length / have);
  const out = new Uint8Array(count * bytes);
  const mask = m.bitsStored >= 32 ? 0xffffffff : (1 << m.bitsStored) - 1;
  const shift = 32 - m.bitsStored;
  const signed = signExtend && m.pixelRepresentation === 1;
  for (let i = 0; i < count; i++) {
    let v =
      have === 2 ? (native[2 * i] as number) | ((native[2 * i + 1] as number) << 8) : (native[i] as number);
    v = signed ? (v << shift) >> shift : v & mask;
    if (bytes === 2) {
      out[2 * i] = v & 0xff;
      out[2 * i + 1] = (v >> 8) & 0xff;
    } else out[i] = v & 0xff;
  }
  return out;
}
