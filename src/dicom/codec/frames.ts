/**
 * Frames of encapsulated Pixel Data (PS3.5 A.4): the fragments of a value (after its Basic Offset
 * Table item) cut into frames with the Extended Offset Table, the Basic Offset Table, one fragment
 * per frame, or all fragments of a single frame; and the reverse, frames to fragments.
 */
import type { DataSet, PixelFragments } from '../dataset.js';
import { TAG } from '../dictionary.js';
import { PixelCodecError } from './types.js';

/** The Extended Offset Table (7FE0,0001) and its lengths (7FE0,0002), as numbers (PS3.3 C.7.6.3.1.8). */
export interface ExtendedOffsetTable {
  readonly offsets: readonly number[];
  readonly lengths?: readonly number[];
}

/** The Extended Offset Table of a data set, when it has one. */
export function extendedOffsetTableOf(ds: DataSet): ExtendedOffsetTable | undefined {
  const offsets = ds.bytes(TAG.ExtendedOffsetTable);
  if (!offsets || offsets.length === 0) return undefined;
  const lengths = ds.bytes(TAG.ExtendedOffsetTableLengths);
  return { offsets: u64s(offsets), ...(lengths && lengths.length > 0 ? { lengths: u64s(lengths) } : {}) };
}

/** Little-endian 64-bit values (an OV value) as numbers. */
export function u64s(b: Uint8Array): number[] {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: number[] = [];
  for (let o = 0; o + 8 <= b.length; o += 8) out.push(Number(v.getBigUint64(o, true)));
  return out;
}

/** Little-endian 32-bit values (a Basic Offset Table) as numbers. */
export function u32s(b: Uint8Array): number[] {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: number[] = [];
  for (let o = 0; o + 4 <= b.length; o += 4) out.push(v.getUint32(o, true));
  return out;
}

/**
 * The encoded frames of encapsulated pixel data. `value.fragments[0]` is the Basic Offset Table
 * item. Offsets of both tables count from the first byte of the first fragment's item tag, so
 * each fragment occupies 8 (item header) + its length bytes.
 */
export function encapsulatedFrames(
  value: PixelFragments,
  numberOfFrames: number,
  extended?: ExtendedOffsetTable,
): Uint8Array[] {
  const [bot, ...fragments] = value.fragments;
  if (bot === undefined) throw new PixelCodecError('encapsulated pixel data has no Basic Offset Table item');
  const starts: number[] = [];
  let at = 0;
  for (const f of fragments) {
    starts.push(at);
    at += 8 + f.length;
  }
  if (extended) return byOffsets(fragments, starts, extended.offsets, numberOfFrames, extended.lengths);
  if (bot.length > 0) return byOffsets(fragments, starts, u32s(bot), numberOfFrames);
  if (numberOfFrames <= 1) return [concat(fragments)];
  if (fragments.length === numberOfFrames) return fragments;
  // No table and more fragments than frames: a frame begins where a codestream begins.
  const firsts = fragments.flatMap((f, i) => (startsCodestream(f) ? [i] : []));
  if (firsts.length !== numberOfFrames || firsts[0] !== 0)
    throw new PixelCodecError(
      `cannot split ${fragments.length} fragments into ${numberOfFrames} frames without an offset table`,
    );
  return firsts.map((first, k) => concat(fragments.slice(first, firsts[k + 1] ?? fragments.length)));
}

function byOffsets(
  fragments: readonly Uint8Array[],
  starts: readonly number[],
  offsets: readonly number[],
  numberOfFrames: number,
  lengths?: readonly number[],
): Uint8Array[] {
  if (offsets.length < numberOfFrames)
    throw new PixelCodecError(`offset table has ${offsets.length} entries for ${numberOfFrames} frames`);
  const frames: Uint8Array[] = [];
  for (let k = 0; k < numberOfFrames; k++) {
    const from = offsets[k] as number;
    const to = k + 1 < offsets.length ? (offsets[k + 1] as number) : Number.POSITIVE_INFINITY;
    const first = starts.indexOf(from);
    if (first < 0 || to <= from)
      throw new PixelCodecError(`offset ${from} of frame ${k + 1} is not a fragment start`);
    const parts: Uint8Array[] = [];
    for (let i = first; i < fragments.length && (starts[i] as number) < to; i++)
      parts.push(fragments[i] as Uint8Array);
    const frame = concat(parts);
    const length = lengths?.[k];
    frames.push(length !== undefined && length <= frame.length ? frame.subarray(0, length) : frame);
  }
  return frames;
}

/** True when a fragment starts a JPEG / JPEG-LS (SOI), JPEG 2000 codestream (SOC SIZ) or JP2 file. */
export function startsCodestream(f: Uint8Array): boolean {
  if (f[0] === 0xff && f[1] === 0xd8 && f[2] === 0xff) return true;
  if (f[0] === 0xff && f[1] === 0x4f && f[2] === 0xff && f[3] === 0x51) return true;
  return f.length >= 8 && f[3] === 0x0c && f[4] === 0x6a && f[5] === 0x50 && f[6] === 0x20 && f[7] === 0x20;
}

/** The parts as one array (the part itself when there is one). */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0] as Uint8Array;
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Encapsulates encoded frames, one fragment per frame padded to an even length (PS3.5 A.4), with a
 * Basic Offset Table when the offsets fit in 32 bits (an empty one otherwise: then use an
 * Extended Offset Table, see extendedOffsetTableFor).
 */
export function encapsulateFrames(frames: readonly Uint8Array[]): PixelFragments {
  const fragments = frames.map((f) => (f.length % 2 === 0 ? f : padded(f)));
  const offsets: number[] = [];
  let at = 0;
  for (const f of fragments) {
    offsets.push(at);
    at += 8 + f.length;
  }
  const fits = at <= 0xffffffff;
  const bot = new Uint8Array(fits ? 4 * offsets.length : 0);
  if (fits) {
    const v = new DataView(bot.buffer);
    for (let i = 0; i < offsets.length; i++) v.setUint32(4 * i, offsets[i] as number, true);
  }
  return { kind: 'fragments', fragments: [bot, ...fragments] };
}

/** The Extended Offset Table and Lengths values (OV, little endian) for frames as encapsulateFrames lays them out. */
export function extendedOffsetTableFor(frames: readonly Uint8Array[]): {
  offsets: Uint8Array;
  lengths: Uint8Array;
} {
  const offsets = new Uint8Array(8 * frames.length);
  const lengths = new Uint8Array(8 * frames.length);
  const vo = new DataView(offsets.buffer);
  const vl = new DataView(lengths.buffer);
  let at = 0;
  frames.forEach((f, i) => {
    vo.setBigUint64(8 * i, BigInt(at), true);
    vl.setBigUint64(8 * i, BigInt(f.length), true);
    at += 8 + f.length + (f.length % 2);
  });
  return { offsets, lengths };
}

// PS3.5 A.4: a fragment of odd length gets one trailing zero byte (JPEG decoders ignore bytes after EOI).
function padded(f: Uint8Array): Uint8Array {
  const out = new Uint8Array(f.length + 1);
  out.set(f);
  return out;
}
