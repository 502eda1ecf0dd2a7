/**
 * RLE Lossless (PS3.5 Annex G), written here: a 64-byte header (the number of segments and 15
 * segment offsets), then one PackBits segment per byte plane, most significant byte of each
 * sample first, each row encoded on its own and each segment padded to an even length.
 */
import { UID } from '../uid.js';
import type { DecodedFrame, EncodedFrame, PixelCodec, PixelModule } from './types.js';
import { PixelCodecError } from './types.js';

const HEADER = 64;

function planes(m: PixelModule): { bytes: number; count: number } {
  if (m.bitsAllocated % 8 !== 0 || m.bitsAllocated === 0)
    throw new PixelCodecError(`RLE cannot hold Bits Allocated ${m.bitsAllocated}`);
  const bytes = m.bitsAllocated >> 3;
  const count = bytes * m.samplesPerPixel;
  if (count > 15) throw new PixelCodecError(`RLE holds at most 15 segments, ${count} needed`);
  return { bytes, count };
}

/** Decodes one RLE frame (PS3.5 G.3.2) to native little-endian bytes in the module's planar configuration. */
export function decodeRle(encoded: Uint8Array, m: PixelModule): Uint8Array {
  const { bytes, count } = planes(m);
  if (encoded.length < HEADER) throw new PixelCodecError('RLE frame shorter than its 64-byte header');
  const view = new DataView(encoded.buffer, encoded.byteOffset, encoded.byteLength);
  const segments = view.getUint32(0, true);
  if (segments !== count)
    throw new PixelCodecError(`RLE frame has ${segments} segments, the pixel module needs ${count}`);
  const pixels = m.rows * m.columns;
  const samples = m.samplesPerPixel;
  const out = new Uint8Array(pixels * count);
  const plane = new Uint8Array(pixels);
  for (let k = 0; k < count; k++) {
    const start = view.getUint32(4 + 4 * k, true);
    const end = k + 1 < count ? view.getUint32(8 + 4 * k, true) : encoded.length;
    if (start < HEADER || end > encoded.length || end < start)
      throw new PixelCodecError(`RLE segment ${k + 1} offset ${start} is out of the frame`);
    const got = unpackBits(encoded, start, end, plane);
    if (got < pixels) throw new PixelCodecError(`RLE segment ${k + 1} decodes to ${got} of ${pixels} bytes`);
    // Segment k is byte (bytes - 1 - k % bytes) (little endian) of sample k / bytes.
    const s = Math.floor(k / bytes);
    const b = bytes - 1 - (k % bytes);
    if (m.planarConfiguration === 1) {
      const base = s * pixels * bytes + b;
      for (let p = 0; p < pixels; p++) out[base + p * bytes] = plane[p] as number;
    } else {
      const step = samples * bytes;
      const base = s * bytes + b;
      for (let p = 0; p < pixels; p++) out[base + p * step] = plane[p] as number;
    }
  }
  return out;
}

// PackBits (PS3.5 G.3.2): n in 0..127 copies n+1 bytes, -127..-1 repeats the next byte 1-n times, -128 is a no-op.
function unpackBits(src: Uint8Array, from: number, to: number, out: Uint8Array): number {
  let i = from;
  let o = 0;
  const size = out.length;
  while (i < to && o < size) {
    const n = src[i++] as number;
    if (n < 128) {
      const len = Math.min(n + 1, to - i, size - o);
      out.set(src.subarray(i, i + len), o);
      i += n + 1;
      o += len;
    } else if (n > 128) {
      if (i >= to) break;
      const len = Math.min(257 - n, size - o);
      out.fill(src[i++] as number, o, o + len);
      o += len;
    }
  }
  return o;
}

/** Encodes one native little-endian frame (laid out as the module's planar configuration says) to RLE (PS3.5 G.3.1). */
export function encodeRle(native: Uint8Array, m: PixelModule): Uint8Array {
  const { bytes, count } = planes(m);
  const pixels = m.rows * m.columns;
  if (native.length < pixels * count)
    throw new PixelCodecError(`native frame has ${native.length} bytes, ${pixels * count} expected`);
  const cols = m.columns;
  const worst = m.rows * (cols + Math.ceil(cols / 128)) + 1;
  const out = new Uint8Array(HEADER + count * worst);
  const view = new DataView(out.buffer);
  view.setUint32(0, count, true);
  const plane = new Uint8Array(pixels);
  const samples = m.samplesPerPixel;
  let o = HEADER;
  for (let k = 0; k < count; k++) {
    view.setUint32(4 + 4 * k, o, true);
    const s = Math.floor(k / bytes);
    const b = bytes - 1 - (k % bytes);
    if (m.planarConfiguration === 1) {
      const base = s * pixels * bytes + b;
      for (let p = 0; p < pixels; p++) plane[p] = native[base + p * bytes] as number;
    } else {
      const step = samples * bytes;
      const base = s * bytes + b;
      for (let p = 0; p < pixels; p++) plane[p] = native[base + p * step] as number;
    }
    for (let r = 0; r < m.rows; r++) o = packBits(plane, r * cols, (r + 1) * cols, out, o);
    if ((o - HEADER) % 2 !== 0) out[o++] = 0; // PS3.5 G.5: segments of even length
  }
  return out.slice(0, o);
}

// One row in PackBits: runs of 2 or more equal bytes are replicated, the rest goes in literals of at most 128.
function packBits(src: Uint8Array, from: number, to: number, out: Uint8Array, at: number): number {
  let o = at;
  let i = from;
  while (i < to) {
    const v = src[i] as number;
    let run = 1;
    while (i + run < to && run < 128 && src[i + run] === v) run++;
    if (run >= 2) {
      out[o++] = 257 - run;
      out[o++] = v;
      i += run;
      continue;
    }
    // A literal: up to the next run of 3 (a run of 2 inside a literal costs no more than copying it).
    const start = i;
    i++;
    while (i < to && i - start < 128) {
      if (i + 2 < to && src[i] === src[i + 1] && src[i] === src[i + 2]) break;
      if (i + 1 === to - 1 && src[i] === src[i + 1]) break;
      i++;
    }
    out[o++] = i - start - 1;
    out.set(src.subarray(start, i), o);
    o += i - start;
  }
  return o;
}

/** The RLE Lossless codec (decode and encode). */
export const rleCodec: PixelCodec = {
  name: 'rle',
  transferSyntaxUids: [UID.RLELossless],
  canEncode: true,
  async decodeFrame(encoded: Uint8Array, m: PixelModule): Promise<DecodedFrame> {
    return {
      pixels: decodeRle(encoded, m),
      photometricInterpretation: m.photometricInterpretation,
      planarConfiguration: m.planarConfiguration,
    };
  },
  async encodeFrame(native: Uint8Array, m: PixelModule): Promise<EncodedFrame> {
    return { bytes: encodeRle(native, m), photometricInterpretation: m.photometricInterpretation };
  },
};
