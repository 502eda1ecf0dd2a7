/**
 * The check a compressed copy passes before it replaces its original (compression at rest): every
 * frame of the copy, decoded, has the original's sample values (exactly: the targets are
 * lossless), and every attribute but the ones the transfer syntax itself governs is unchanged.
 * Both objects are read through store handles (what is on disk is what is checked), one frame at
 * a time, by the bulk layouts captured from the files (capture.ts).
 */
import { codecFor } from '../../dicom/codec/registry.js';
import {
  type DecodedFrame,
  nativeFrameLength,
  type PixelModule,
  pixelModuleOf,
  planarToInterleaved,
} from '../../dicom/codec/types.js';
import { swapBytes } from '../../dicom/vr.js';
import type { BulkLayout, PixelLayout } from '../index/capture.js';
import type { CapturedFile } from '../reconcile.js';
import type { ObjectHandle } from '../store.js';

/** Decodes one encoded frame of `transferSyntaxUid` (the codec registry's, or a worker pool's). */
export type FrameDecoder = (
  encoded: Uint8Array,
  module: PixelModule,
  transferSyntaxUid: string,
) => Promise<DecodedFrame>;

/** Decoding in this thread with the codec registry. */
export const decodeInProcess: FrameDecoder = async (encoded, module, ts) => {
  const codec = codecFor(ts);
  if (!codec) throw new Error(`no codec decodes ${ts}`);
  return codec.decodeFrame(encoded, module);
};

/** An object read for the check: open through the store, what was captured of it, and its layout. */
export interface CheckedObject {
  readonly handle: ObjectHandle;
  readonly file: CapturedFile;
  readonly layout: BulkLayout;
}

/**
 * Attributes the transfer syntax may change (PS3.5 8.2: a lossless JPEG 2000 encoder applying the
 * reversible colour transform says YBR_RCT; frames are interleaved after decoding; the encapsulated
 * value may come with an Extended Offset Table), plus the pixel data itself (checked by value) and
 * group lengths (a writer may drop them).
 */
const SYNTAX_GOVERNED = new Set(['00280004', '00280006', '7FE00001', '7FE00002', '7FE00010']);

/** Why the copy does not hold the original's object, or undefined when it does. */
export async function verifyCopy(
  original: CheckedObject,
  copy: CheckedObject,
  decode: FrameDecoder,
  signal?: AbortSignal,
): Promise<string | undefined> {
  const attributes = compareAttributes(original.file, copy.file);
  if (attributes) return attributes;
  const from = original.layout.pixels;
  const to = copy.layout.pixels;
  if (from?.kind !== 'native') return 'the original has no native pixel data';
  if (to?.kind !== 'encapsulated') return 'the copy has no encapsulated pixel data';
  if (to.frames === null) return 'the frame boundaries of the copy are unknown';
  const module = pixelModuleOf(original.file.dataSet);
  const frames = Math.max(1, module.numberOfFrames);
  if (from.frames < frames) return `the original holds ${from.frames} of its ${frames} frames`;
  if (to.frames.length !== frames) return `the copy has ${to.frames.length} frames, the original ${frames}`;
  const copyModule = pixelModuleOf(copy.file.dataSet);

  for (let k = 0; k < frames; k++) {
    signal?.throwIfAborted();
    const native = await nativeFrame(original.handle, from, k, module);
    const encoded = await encapsulatedFrame(copy.handle, to, k);
    let decoded: DecodedFrame;
    try {
      decoded = await decode(encoded, copyModule, copy.file.transferSyntax);
    } catch (e) {
      return `frame ${k + 1} of the copy does not decode: ${e instanceof Error ? e.message : String(e)}`;
    }
    if (decoded.photometricInterpretation !== module.photometricInterpretation)
      return `frame ${k + 1} decodes as ${decoded.photometricInterpretation}, the original is ${module.photometricInterpretation}`;
    const difference = compareSamples(native, decoded, module);
    if (difference) return `frame ${k + 1}: ${difference}`;
  }
  return undefined;
}

/** The DICOM JSON of both objects, but for the attributes the syntax governs: equal, or the first difference. */
function compareAttributes(a: CapturedFile, b: CapturedFile): string | undefined {
  const left = comparable(a);
  const right = comparable(b);
  for (const tag of new Set([...Object.keys(left), ...Object.keys(right)])) {
    const x = left[tag];
    const y = right[tag];
    if (x === undefined) return `the copy has (${tag.slice(0, 4)},${tag.slice(4)}), the original has not`;
    if (y === undefined) return `the copy lacks (${tag.slice(0, 4)},${tag.slice(4)})`;
    if (x !== y) return `(${tag.slice(0, 4)},${tag.slice(4)}) differs in the copy`;
  }
  return undefined;
}

function comparable(f: CapturedFile): Record<string, string> {
  const json = JSON.parse(f.metadata().metadata) as Record<string, unknown>;
  const out: Record<string, string> = {};
  for (const [tag, value] of Object.entries(json))
    if (!SYNTAX_GOVERNED.has(tag) && !tag.endsWith('0000')) out[tag] = JSON.stringify(value);
  return out;
}

/** Frame `k` of native pixel data, little endian, colour-by-pixel. */
async function nativeFrame(
  h: ObjectHandle,
  pixels: Extract<PixelLayout, { kind: 'native' }>,
  k: number,
  m: PixelModule,
): Promise<Uint8Array> {
  const length = nativeFrameLength(m);
  let bytes = await readRange(h, pixels.offset + k * length, length);
  if (pixels.swap !== 0) swapBytes(bytes, pixels.swap);
  if (m.samplesPerPixel > 1 && m.planarConfiguration === 1)
    bytes = planarToInterleaved(bytes, m.samplesPerPixel, m.rows * m.columns, m.bitsAllocated >> 3);
  return bytes;
}

/** Frame `k` of encapsulated pixel data: its fragments, concatenated. */
async function encapsulatedFrame(
  h: ObjectHandle,
  pixels: Extract<PixelLayout, { kind: 'encapsulated' }>,
  k: number,
): Promise<Uint8Array> {
  const [first, count] = pixels.frames?.[k] ?? [0, 0];
  const ranges = pixels.fragments.slice(first, first + count);
  const out = new Uint8Array(ranges.reduce((n, r) => n + r[1], 0));
  let at = 0;
  for (const [offset, length] of ranges) {
    out.set(await readRange(h, offset, length), at);
    at += length;
  }
  return out;
}

async function readRange(h: ObjectHandle, offset: number, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await h.read(out, done, length - done, offset + done);
    if (bytesRead === 0) throw new Error(`the object ends at ${offset + done}, inside a frame`);
    done += bytesRead;
  }
  return out;
}

/**
 * Compares sample values: the low Bits Stored bits of every sample (PS3.5 8.1.1; a lossless codec
 * keeps those, as signed values when Pixel Representation is 1). Bits above Bits Stored in the
 * original that are neither zero nor the sign's extension would be lost: that fails too.
 */
export function compareSamples(
  original: Uint8Array,
  decoded: DecodedFrame,
  m: PixelModule,
): string | undefined {
  const bytes = m.bitsAllocated >> 3;
  const count = m.rows * m.columns * m.samplesPerPixel;
  if (original.length < count * bytes) return `the original frame has ${original.length} bytes`;
  if (decoded.pixels.length !== count * bytes)
    return `the decoded frame has ${decoded.pixels.length} bytes, ${count * bytes} expected`;
  const width = 8 * bytes;
  const stored = Math.min(m.bitsStored, width);
  const mask = stored >= 32 ? 0xffffffff : (1 << stored) - 1;
  const high = width === stored ? 0 : ((1 << width) - 1) ^ mask;
  const signBit = 1 << (stored - 1);
  const a = original;
  const b = decoded.pixels;
  for (let i = 0; i < count; i++) {
    const va = bytes === 2 ? (a[2 * i] as number) | ((a[2 * i + 1] as number) << 8) : (a[i] as number);
    const vb = bytes === 2 ? (b[2 * i] as number) | ((b[2 * i + 1] as number) << 8) : (b[i] as number);
    if ((va & mask) !== (vb & mask))
      return `sample ${i} is ${vb & mask} in the copy, ${va & mask} in the original`;
    const rest = va & high;
    const extension = m.pixelRepresentation === 1 && (va & signBit) !== 0 ? high : 0;
    if (rest !== 0 && rest !== extension)
      return `sample ${i} of the original has bits above Bits Stored (${stored}) that a lossless codec does not keep`;
  }
  return undefined;
}
