/**
 * The streaming transcoder (issue 13), sans-I/O: a Part-10 stream (or a raw data set) in transfer
 * syntax A goes in by write(), the same object in syntax B comes out through a sink, frame by
 * frame. The parser drives this handler; elements before and after Pixel Data are re-encoded by a
 * DataSetWriter for the target syntax; each frame of Pixel Data is cut out of the stream (native
 * frames by size, encapsulated ones by the offset tables or codestream starts, PS3.5 A.4) and
 * decoded and/or encoded by a FrameCoder (in-thread, or a worker pool: io/transcode.ts), a few
 * frames at a time, so memory stays bounded by a few frames whatever the object's size.
 *
 * The pixel module is fixed as PS3.5 8.2 requires: Photometric Interpretation and Planar
 * Configuration become what the codec produced (YBR_FULL_422 of JPEG baseline decodes to RGB,
 * RGB encoded by OpenJPEG becomes YBR_RCT), Lossy Image Compression is "01" once a lossy step
 * happened (PS3.3 C.7.6.1.1.5) and a lossy step now appends its Ratio and Method; the Extended
 * Offset Table of the source is dropped, the output has one fragment per frame, each padded to an
 * even length, and a Basic Offset Table when the encoded frames fit the hold-back buffer (an
 * empty one otherwise, as PS3.5 A.4 allows). To fix group 0028 before it is written, the elements
 * from (0028,0000) up to Pixel Data are held (they are header elements) until the first frame
 * is done. Lossless stays lossless: a lossy target is refused unless `lossy` is set.
 */
import { PacsError } from '../core/errors.js';
import { concat, startsCodestream, u32s, u64s } from './codec/frames.js';
import { codecFor } from './codec/registry.js';
import {
  type EncodeOptions,
  nativeFrameLength,
  PixelCodecError,
  type PixelModule,
  pixelModuleOf,
} from './codec/types.js';
import { DataSet } from './dataset.js';
import { dictionaryVR, TAG } from './dictionary.js';
import { type DataSetHandler, DicomParser } from './parser.js';
import type { Tag } from './tag.js';
import { describeUid, transferSyntax, UID } from './uid.js';
import { encodeStrings } from './values.js';
import { copyBytes, isVR, type VR } from './vr.js';
import { DataSetWriter, encodeFileMeta } from './writer.js';

/** Why a transcode cannot be done at all (no codec, lossy not allowed, unknown syntax). */
export class TranscodeError extends PacsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_TRANSCODE_UNSUPPORTED', message, options);
  }
}

/** The encapsulated syntaxes we encode into; JPEG baseline is lossy (allowed only when asked). */
export const ENCODE_TARGETS: readonly string[] = [
  UID.JPEGLSLossless,
  UID.JPEG2000Lossless,
  UID.HTJ2KLossless,
  UID.RLELossless,
  // Our JPEG 2000 and HTJ2K encoders are reversible: data sent in these syntaxes stays lossless.
  UID.JPEG2000,
  UID.HTJ2K,
  UID.JPEGBaseline8Bit,
];

/** Targets whose encoding loses data. */
export const LOSSY_TARGETS: ReadonlySet<string> = new Set([UID.JPEGBaseline8Bit]);

/** Sources that are always lossy compressed (PS3.5 A.4.1: JPEG DCT processes). */
const LOSSY_SOURCES: ReadonlyMap<string, string> = new Map([
  [UID.JPEGBaseline8Bit, 'ISO_10918_1'],
  [UID.JPEGExtended12Bit, 'ISO_10918_1'],
]);

/** PS3.3 C.7.6.1.1.5.1: the method of each lossy target. */
const LOSSY_METHOD: ReadonlyMap<string, string> = new Map([[UID.JPEGBaseline8Bit, 'ISO_10918_1']]);

/** Why a transcode from `from` to `to` cannot be done, or undefined when it can. */
export function checkTranscode(
  from: string,
  to: string,
  options: { lossy?: boolean } = {},
): string | undefined {
  const target = transferSyntax(to);
  if (!target) return `unknown transfer syntax ${to}`;
  const source = transferSyntax(from);
  if (!source) return `unknown source transfer syntax ${from}`;
  if (from === to) return undefined;
  if (source.encapsulated && codecFor(from) === undefined) return `no decoder for ${describeUid(from)}`;
  if (target.encapsulated) {
    if (!ENCODE_TARGETS.includes(to) || codecFor(to)?.encodeFrame === undefined)
      return `cannot encode into ${describeUid(to)}`;
    if (LOSSY_TARGETS.has(to) && !options.lossy)
      return `${describeUid(to)} is lossy: it is produced only when lossy transcoding is allowed`;
  }
  return undefined;
}

/** True when pixel data changes (a codec runs) between these two syntaxes. */
export function needsCodec(from: string, to: string): boolean {
  if (from === to) return false;
  return (transferSyntax(from)?.encapsulated ?? false) || (transferSyntax(to)?.encapsulated ?? false);
}

/** One frame to transcode: its bytes in the source syntax and what to make of them. */
export interface FrameTask {
  readonly source: Uint8Array;
  readonly sourceTransferSyntaxUid: string;
  readonly targetTransferSyntaxUid: string;
  readonly module: PixelModule;
  readonly options: EncodeOptions;
}

/** A transcoded frame: native bytes or an encoded frame, and the layout they have. */
export interface FrameResult {
  readonly bytes: Uint8Array;
  readonly photometricInterpretation: string;
  readonly planarConfiguration: number;
}

/** Where frames are transcoded: transcodeFrame in this thread, or a worker pool (io/transcode.ts). */
export type FrameCoder = (task: FrameTask) => Promise<FrameResult>;

/** Transcodes one frame (decode when the source is encapsulated, encode when the target is); pure. */
export async function transcodeFrame(task: FrameTask): Promise<FrameResult> {
  const m = task.module;
  let native = task.source;
  let photometricInterpretation = m.photometricInterpretation;
  let planarConfiguration = m.planarConfiguration;
  const from = task.sourceTransferSyntaxUid;
  if (transferSyntax(from)?.encapsulated) {
    const codec = codecFor(from);
    if (!codec) throw new TranscodeError(`no decoder for ${describeUid(from)}`);
    const d = await codec.decodeFrame(task.source, m);
    native = d.pixels;
    photometricInterpretation = d.photometricInterpretation;
    planarConfiguration = d.planarConfiguration;
  }
  const length = nativeFrameLength(m);
  if (native.length < length)
    throw new PixelCodecError(`frame decodes to ${native.length} bytes, the pixel module needs ${length}`);
  const to = task.targetTransferSyntaxUid;
  if (!transferSyntax(to)?.encapsulated)
    return { bytes: native.subarray(0, length), photometricInterpretation, planarConfiguration };
  const codec = codecFor(to);
  if (!codec?.encodeFrame) throw new TranscodeError(`cannot encode into ${describeUid(to)}`);
  const decoded: PixelModule = { ...m, photometricInterpretation, planarConfiguration };
  const e = await codec.encodeFrame(native.subarray(0, length), decoded, task.options);
  return {
    bytes: e.bytes,
    photometricInterpretation: e.photometricInterpretation,
    // RLE keeps the byte planes of either layout; the other codecs interleave (PS3.5 8.2.1, 8.2.3, 8.2.4).
    planarConfiguration: to === UID.RLELossless ? planarConfiguration : 0,
  };
}

/** What a transcode does. */
export interface TranscodeOptions {
  /** The target transfer syntax UID. */
  readonly to: string;
  /** Allow a lossy step (JPEG baseline target). Default false: lossless stays lossless. */
  readonly lossy?: boolean;
  /** JPEG baseline quality 1..100 (default 90). */
  readonly quality?: number;
  /** Where frames are transcoded (default transcodeFrame in this thread). */
  readonly coder?: FrameCoder;
  /** Write a preamble and file meta information before the data set (default true). */
  readonly fileMeta?: boolean;
  /** The input is a raw data set in this syntax (default: a Part-10 stream, its meta says). */
  readonly sourceTransferSyntax?: string;
  /** Frames in flight (submitted, not yet written) before ready() waits (default 4). */
  readonly maxPendingFrames?: number;
  /** Encoded frames held back to write a Basic Offset Table, in bytes (default 16 MiB). */
  readonly offsetTableHoldBack?: number;
}

/** How a transcode went. */
export interface TranscodeSummary {
  readonly from: string;
  readonly to: string;
  /** Frames decoded or encoded (0 when pixel data passed through or there is none). */
  readonly frames: number;
  /** True when this transcode made a lossy step (and recorded it in the data set). */
  readonly lossy: boolean;
  /** Bytes written to the sink (file meta included). */
  readonly bytes: number;
}

type Op =
  | {
      readonly k: 'el';
      readonly tag: Tag;
      readonly vr: VR;
      readonly value: Uint8Array;
      readonly top: boolean;
    }
  | { readonly k: 'do'; readonly tag?: Tag; readonly run: (w: DataSetWriter) => void }
  | { readonly k: 'pixelStart' }
  | { readonly k: 'pixelEnd' }
  | FrameOp;

interface FrameOp {
  readonly k: 'frame';
  readonly sourceLength: number;
  readonly settled: Promise<void>;
  result?: FrameResult;
  error?: unknown;
}

const PIXEL_DATA = TAG.PixelData as Tag;
const GROUP_0028 = 0x00280000;
const DEFAULT_HOLD_BACK = 16 * 1024 * 1024;

/**
 * A transcode in progress. Feed it with write() (synchronous: the parser runs), await ready()
 * before the next write to bound the frames in flight, and finish with end(). Output goes to
 * `sink` in order, as soon as it is final. A failure (corrupt frame, no codec) rejects ready() or
 * end() with PixelCodecError or TranscodeError; whatever reached the sink is then incomplete.
 */
export class Transcoder implements DataSetHandler {
  private readonly parser: DicomParser;
  private readonly coder: FrameCoder;
  private readonly maxPending: number;
  private readonly holdBack: number;
  private readonly wantMeta: boolean;
  private writer: DataSetWriter | undefined;
  private from = '';
  private codecRuns = false;
  private sourceMeta: DataSet | undefined;
  /** Output waiting for the file meta (a raw data set's SOP UIDs come with its first elements). */
  private early: Uint8Array[] | undefined;
  private metaWritten = false;
  private bytesOut = 0;

  private depth = 0;
  /** Top-level elements of group 0028 and the offset tables (the pixel module of the source). */
  private readonly pixelAttrs = new DataSet();
  private readonly sopUids = new DataSet();
  private readonly queue: Op[] = [];
  private pendingFrames = 0;
  /** Holding the elements from group 0028 on until the first frame says how to fix them. */
  private deferring = false;
  private patched = false;
  /** A top-level value streamed inside the held region, collected whole. */
  private collecting: { tag: Tag; vr: VR; parts: Uint8Array[] } | undefined;
  private failed: unknown;

  // Pixel Data being read.
  private pixel: 'none' | 'native' | 'fragments' | 'done' = 'none';
  private module: PixelModule | undefined;
  private frameLength = 0;
  private framesIn = 0;
  private nativeFrame: Uint8Array | undefined;
  private nativeFill = 0;
  private fragmentIndex = -1;
  private fragmentParts: Uint8Array[] = [];
  private frameParts: Uint8Array[] = [];
  private fragmentAt = 0;
  private offsets: ReadonlySet<number> | undefined;
  private botParts: Uint8Array[] = [];
  private firstFrame: FrameOp | undefined;
  private lossyStep = false;

  // Encapsulated output.
  private held: FrameResult[] | undefined;
  private heldBytes = 0;
  private framesOut = 0;

  constructor(
    private readonly options: TranscodeOptions,
    private readonly sink: (chunk: Uint8Array) => void,
  ) {
    if (!transferSyntax(options.to)) throw new TranscodeError(`unknown transfer syntax ${options.to}`);
    this.coder = options.coder ?? transcodeFrame;
    this.maxPending = Math.max(1, options.maxPendingFrames ?? 4);
    this.holdBack = options.offsetTableHoldBack ?? DEFAULT_HOLD_BACK;
    this.wantMeta = options.fileMeta ?? true;
    const raw = options.sourceTransferSyntax;
    this.parser = new DicomParser(this, raw !== undefined ? { format: 'dataset', transferSyntax: raw } : {});
    if (raw !== undefined) this.begin(raw, undefined);
  }

  // --- driving ---------------------------------------------------------------------------------

  /** The next bytes of the source. Throws DicomParseError on malformed input. */
  write(chunk: Uint8Array): void {
    this.throwIfFailed();
    this.parser.write(chunk);
  }

  /** Resolves once at most maxPendingFrames frames are in flight; rejects when a frame failed. */
  async ready(): Promise<void> {
    await this.settle(false);
  }

  /** No more input: waits for every frame, writes the rest and returns the summary. */
  async end(): Promise<TranscodeSummary> {
    this.throwIfFailed();
    this.parser.end();
    if (this.from === '') throw new TranscodeError('no data set in the input');
    if (this.pixel === 'native' || this.pixel === 'fragments')
      throw new PixelCodecError('the input ended inside Pixel Data');
    await this.settle(true);
    this.writeMeta();
    this.writer?.end();
    this.flushEarly();
    return {
      from: this.from,
      to: this.options.to,
      frames: this.codecRuns ? this.framesIn : 0,
      lossy: this.lossyStep,
      bytes: this.bytesOut,
    };
  }

  private throwIfFailed(): void {
    if (this.failed !== undefined) throw this.failed;
  }

  private out(chunk: Uint8Array): void {
    if (this.early) {
      this.early.push(chunk);
      return;
    }
    this.bytesOut += chunk.length;
    this.sink(chunk);
  }

  private flushEarly(): void {
    const early = this.early;
    if (!early) return;
    this.early = undefined;
    for (const c of early) this.out(c);
  }

  private begin(from: string, meta: DataSet | undefined): void {
    this.from = from;
    const problem = checkTranscode(from, this.options.to, this.options);
    if (problem) throw new TranscodeError(problem);
    this.codecRuns = needsCodec(from, this.options.to);
    this.sourceMeta = meta;
    if (this.wantMeta) this.early = [];
    this.writer = new DataSetWriter((c) => this.out(c), this.options.to);
    if (meta?.string(TAG.MediaStorageSOPInstanceUID)) this.writeMeta();
  }

  /** The file meta, first in the output, once the SOP UIDs are known. */
  private writeMeta(): void {
    if (!this.wantMeta || this.metaWritten) return;
    this.metaWritten = true;
    const meta = this.sourceMeta;
    const extra = new DataSet();
    if (meta) for (const e of meta) if (e.tag !== TAG.TransferSyntaxUID) extra.set(e);
    const head = encodeFileMeta({
      mediaStorageSopClassUid:
        meta?.string(TAG.MediaStorageSOPClassUID) ?? this.sopUids.string(TAG.SOPClassUID) ?? '',
      mediaStorageSopInstanceUid:
        meta?.string(TAG.MediaStorageSOPInstanceUID) ?? this.sopUids.string(TAG.SOPInstanceUID) ?? '',
      transferSyntaxUid: this.options.to,
      extra,
    });
    const early = this.early ?? [];
    this.early = undefined;
    this.out(head);
    for (const c of early) this.out(c);
  }

  // --- the op queue ----------------------------------------------------------------------------

  private push(op: Op): void {
    if (this.queue.length === 0 && !this.deferring && op.k !== 'frame') this.apply(op);
    else this.queue.push(op);
  }

  private apply(op: Op): void {
    const w = this.writer as DataSetWriter;
    switch (op.k) {
      case 'el':
        w.element(op.tag, op.vr, op.value);
        return;
      case 'do':
        op.run(w);
        return;
      case 'pixelStart':
        this.startPixelOutput(w);
        return;
      case 'pixelEnd':
        this.endPixelOutput(w);
        return;
      case 'frame':
        this.writeFrame(w, op.result as FrameResult);
        return;
    }
  }

  /** Writes what is ready; waits for frames while more than maxPending are in flight (all at the end). */
  private async settle(final: boolean): Promise<void> {
    this.throwIfFailed();
    try {
      for (;;) {
        if (this.deferring) {
          const first = this.firstFrame;
          if (first === undefined) {
            if (!final) return;
          } else {
            if (first.result === undefined && first.error === undefined) {
              if (!final && this.pendingFrames <= this.maxPending) return;
              await first.settled;
            }
            if (first.error !== undefined) throw first.error;
          }
          this.patch(first?.result, first?.sourceLength ?? 0);
          this.deferring = false;
        }
        const op = this.queue[0];
        if (op === undefined) return;
        if (op.k === 'frame') {
          if (op.result === undefined && op.error === undefined) {
            if (!final && this.pendingFrames <= this.maxPending) return;
            await op.settled;
          }
          if (op.error !== undefined) throw op.error;
          this.pendingFrames--;
        }
        this.queue.shift();
        this.apply(op);
      }
    } catch (e) {
      this.failed = e;
      throw e;
    }
  }

  // --- the pixel module, fixed once the first frame is done -------------------------------------

  /** Replaces, drops and inserts the pixel module elements held in the queue (PS3.5 8.2). */
  private patch(first: FrameResult | undefined, firstSourceLength: number): void {
    if (this.patched) return;
    this.patched = true;
    const set = new Map<Tag, { vr: VR; value: Uint8Array } | null>();
    set.set(TAG.ExtendedOffsetTable as Tag, null);
    set.set(TAG.ExtendedOffsetTableLengths as Tag, null);
    const m = this.module;
    if (first !== undefined && m !== undefined) {
      set.set(TAG.PhotometricInterpretation as Tag, cs(first.photometricInterpretation));
      if (m.samplesPerPixel > 1) set.set(TAG.PlanarConfiguration as Tag, us(first.planarConfiguration));
      const ratio = (nativeFrameLength(m) / Math.max(1, first.bytes.length)).toFixed(2);
      const ratios = this.pixelAttrs.strings(TAG.LossyImageCompressionRatio);
      const methods = this.pixelAttrs.strings(TAG.LossyImageCompressionMethod);
      const sourceMethod = LOSSY_SOURCES.get(this.from);
      const targetMethod = LOSSY_METHOD.get(this.options.to);
      if (sourceMethod !== undefined && this.pixelAttrs.string(TAG.LossyImageCompression) !== '01') {
        // A lossy source without its record (PS3.3 C.7.6.1.1.5): the step that was made, from frame 1.
        const r = (nativeFrameLength(m) / Math.max(1, firstSourceLength)).toFixed(2);
        if (methods.length === 0) {
          ratios.push(r);
          methods.push(sourceMethod);
        }
      }
      if (targetMethod !== undefined) {
        this.lossyStep = true;
        ratios.push(ratio);
        methods.push(targetMethod);
      }
      if (sourceMethod !== undefined || targetMethod !== undefined) {
        set.set(TAG.LossyImageCompression as Tag, cs('01'));
        if (ratios.length > 0) set.set(TAG.LossyImageCompressionRatio as Tag, ds(ratios));
        if (methods.length > 0) set.set(TAG.LossyImageCompressionMethod as Tag, cs(methods.join('\\')));
      }
    }
    // Rebuild the held part of the queue: top-level elements replaced or dropped, missing ones inserted in order.
    const inserts = [...set.entries()]
      .filter((e): e is [Tag, { vr: VR; value: Uint8Array }] => e[1] !== null)
      .sort((a, b) => a[0] - b[0]);
    const out: Op[] = [];
    const insertBefore = (tag: number): void => {
      while (inserts.length > 0 && (inserts[0] as [Tag, unknown])[0] < tag) {
        const [t, e] = inserts.shift() as [Tag, { vr: VR; value: Uint8Array }];
        out.push({ k: 'el', tag: t, vr: e.vr, value: e.value, top: true });
      }
    };
    for (const op of this.queue) {
      const tag =
        op.k === 'el' && op.top
          ? op.tag
          : op.k === 'do'
            ? op.tag
            : op.k === 'pixelStart'
              ? PIXEL_DATA
              : undefined;
      if (tag !== undefined) {
        insertBefore(tag);
        if (op.k === 'el' && set.has(tag)) {
          const r = set.get(tag);
          if (r) {
            out.push({ ...op, vr: r.vr, value: r.value });
            const at = inserts.findIndex((i) => i[0] === tag);
            if (at >= 0) inserts.splice(at, 1);
          }
          continue;
        }
      }
      out.push(op);
    }
    // No Pixel Data in the queue (ended before it): the rest goes last.
    insertBefore(PIXEL_DATA);
    this.queue.splice(0, this.queue.length, ...out);
  }

  // --- pixel output ----------------------------------------------------------------------------

  private startPixelOutput(w: DataSetWriter): void {
    const m = this.module as PixelModule;
    if (transferSyntax(this.options.to)?.encapsulated) {
      w.fragmentsStart(PIXEL_DATA, 'OB');
      this.held = [];
      this.heldBytes = 0;
    } else {
      w.valueStart(PIXEL_DATA, m.bitsAllocated === 8 ? 'OB' : 'OW', m.numberOfFrames * nativeFrameLength(m));
    }
  }

  private writeFrame(w: DataSetWriter, r: FrameResult): void {
    this.framesOut++;
    if (!transferSyntax(this.options.to)?.encapsulated) {
      w.valueChunk(r.bytes);
      return;
    }
    if (this.held) {
      this.held.push(r);
      this.heldBytes += r.bytes.length;
      if (this.heldBytes > this.holdBack) this.releaseHeld(w, false);
      return;
    }
    fragment(w, r.bytes);
  }

  /** Writes the Basic Offset Table (empty when not every frame was held) and the held fragments. */
  private releaseHeld(w: DataSetWriter, complete: boolean): void {
    const held = this.held ?? [];
    this.held = undefined;
    const offsets: number[] = [];
    let at = 0;
    for (const f of held) {
      offsets.push(at);
      at += 8 + f.bytes.length + (f.bytes.length % 2);
    }
    // PS3.5 A.4: an empty table when not every frame is known or the offsets exceed 32 bits.
    const bot = new Uint8Array(complete && at <= 0xffffffff ? 4 * offsets.length : 0);
    const v = new DataView(bot.buffer);
    for (let i = 0; i < bot.length / 4; i++) v.setUint32(4 * i, offsets[i] as number, true);
    w.fragmentStart(bot.length);
    if (bot.length > 0) w.valueChunk(bot);
    w.fragmentEnd();
    for (const f of held) fragment(w, f.bytes);
  }

  private endPixelOutput(w: DataSetWriter): void {
    const m = this.module as PixelModule;
    if (this.framesOut !== m.numberOfFrames)
      throw new PixelCodecError(
        `Pixel Data holds ${this.framesOut} frames, Number of Frames says ${m.numberOfFrames}`,
      );
    if (transferSyntax(this.options.to)?.encapsulated) {
      if (this.held) this.releaseHeld(w, true);
      w.fragmentsEnd();
    } else w.valueEnd();
  }

  // --- pixel input -----------------------------------------------------------------------------

  private startPixels(): void {
    this.module = pixelModuleOf(this.pixelAttrs);
    const m = this.module;
    if (m.photometricInterpretation === 'YBR_FULL_422' && !transferSyntax(this.from)?.encapsulated)
      throw new TranscodeError('native YBR_FULL_422 pixel data is not transcoded (it would need resampling)');
    // PS3.5 8.1.1: 1-bit frames are packed and may start inside a byte; the codecs take whole bytes.
    if (m.bitsAllocated % 8 !== 0)
      throw new TranscodeError(`pixel data of Bits Allocated ${m.bitsAllocated} is not transcoded`);
    this.frameLength = nativeFrameLength(m);
    this.push({ k: 'pixelStart' });
  }

  private submit(source: Uint8Array): void {
    const m = this.module as PixelModule;
    if (this.framesIn >= m.numberOfFrames)
      throw new PixelCodecError(`Pixel Data holds more frames than Number of Frames (${m.numberOfFrames})`);
    this.framesIn++;
    const op: { -readonly [K in keyof FrameOp]: FrameOp[K] } = {
      k: 'frame',
      sourceLength: source.length,
      settled: Promise.resolve(),
    };
    op.settled = this.coder({
      source,
      sourceTransferSyntaxUid: this.from,
      targetTransferSyntaxUid: this.options.to,
      module: m,
      options: { ...(this.options.quality !== undefined ? { quality: this.options.quality } : {}) },
    }).then(
      (r) => {
        op.result = r;
      },
      (e: unknown) => {
        op.error = e;
      },
    );
    this.firstFrame ??= op;
    this.pendingFrames++;
    this.queue.push(op);
  }

  private nativeBytes(bytes: Uint8Array): void {
    let at = 0;
    while (at < bytes.length && this.framesIn < (this.module as PixelModule).numberOfFrames) {
      this.nativeFrame ??= new Uint8Array(this.frameLength);
      const n = Math.min(bytes.length - at, this.frameLength - this.nativeFill);
      this.nativeFrame.set(bytes.subarray(at, at + n), this.nativeFill);
      this.nativeFill += n;
      at += n;
      if (this.nativeFill === this.frameLength) {
        const frame = this.nativeFrame;
        this.nativeFrame = undefined;
        this.nativeFill = 0;
        this.submit(frame);
      }
    }
  }

  private endNative(): void {
    const m = this.module as PixelModule;
    if (this.framesIn < m.numberOfFrames)
      throw new PixelCodecError(
        `Pixel Data holds ${this.framesIn} whole frames of ${this.frameLength} bytes, Number of Frames says ${m.numberOfFrames}`,
      );
    this.pixel = 'done';
    this.push({ k: 'pixelEnd' });
  }

  private endFragment(): void {
    const bytes = concat(this.fragmentParts);
    this.fragmentParts = [];
    const index = this.fragmentIndex++;
    if (index === 0) {
      this.botParts.push(bytes);
      const ext = this.pixelAttrs.bytes(TAG.ExtendedOffsetTable);
      const bot = concat(this.botParts);
      const table = ext && ext.length > 0 ? u64s(ext) : bot.length > 0 ? u32s(bot) : undefined;
      this.offsets = table ? new Set(table) : undefined;
      this.fragmentAt = 0;
      return;
    }
    const at = this.fragmentAt;
    this.fragmentAt += 8 + bytes.length;
    const m = this.module as PixelModule;
    if (this.frameParts.length > 0 && m.numberOfFrames > 1 && this.startsFrame(at, bytes))
      this.submit(concat(this.frameParts.splice(0)));
    this.frameParts.push(bytes);
  }

  /** True when a fragment at `at` (from the first fragment's item tag) begins a frame (PS3.5 A.4). */
  private startsFrame(at: number, bytes: Uint8Array): boolean {
    if (this.offsets !== undefined) return this.offsets.has(at);
    if (this.from === UID.RLELossless) return true; // PS3.5 A.4.2: one fragment per frame
    return startsCodestream(bytes);
  }

  private endFragments(): void {
    if (this.frameParts.length > 0) this.submit(concat(this.frameParts.splice(0)));
    const m = this.module as PixelModule;
    if (this.framesIn !== m.numberOfFrames)
      throw new PixelCodecError(
        `Pixel Data holds ${this.framesIn} frames, Number of Frames says ${m.numberOfFrames}`,
      );
    this.pixel = 'done';
    this.push({ k: 'pixelEnd' });
  }

  // --- DataSetHandler --------------------------------------------------------------------------

  meta(meta: DataSet, transferSyntaxUid: string): void {
    this.begin(transferSyntaxUid, meta);
  }

  /** Notes a top-level element: the pixel module, the SOP UIDs, where holding starts. */
  private topLevel(tag: Tag, vr: VR, value: Uint8Array | undefined): void {
    // A raw data set read in 'auto' format: no meta() came, the parser knows the syntax.
    if (this.from === '') this.begin(this.parser.transferSyntaxUid, undefined);
    if (tag === TAG.SOPClassUID || tag === TAG.SOPInstanceUID) {
      if (value) this.sopUids.set({ tag, vr, value: copyBytes(value) });
    } else if (tag > TAG.SOPInstanceUID && !this.metaWritten && this.sopUids.has(TAG.SOPInstanceUID))
      this.writeMeta();
    if (tag >= GROUP_0028 && tag < 0x00290000 && value)
      this.pixelAttrs.set({ tag, vr, value: copyBytes(value) });
    if ((tag === TAG.ExtendedOffsetTable || tag === TAG.ExtendedOffsetTableLengths) && value)
      this.pixelAttrs.set({ tag, vr, value: copyBytes(value) });
    if (this.codecRuns && !this.patched && tag >= GROUP_0028) this.deferring = true;
  }

  element(tag: Tag, given: VR, value: Uint8Array): void {
    const vr = knownVR(tag, given);
    if (this.depth === 0) {
      this.topLevel(tag, vr, value);
      if (tag === PIXEL_DATA && this.codecRuns) {
        this.startPixels();
        this.pixel = 'native';
        this.nativeBytes(value);
        this.endNative();
        return;
      }
    }
    const held = this.deferring || this.queue.length > 0;
    this.push({ k: 'el', tag, vr, value: held ? copyBytes(value) : value, top: this.depth === 0 });
  }

  valueStart(tag: Tag, given: VR, length: number): void {
    const vr = knownVR(tag, given);
    if (this.depth === 0) {
      this.topLevel(tag, vr, undefined);
      if (tag === PIXEL_DATA && this.codecRuns) {
        this.startPixels();
        this.pixel = 'native';
        return;
      }
      if (this.deferring) {
        this.collecting = { tag, vr, parts: [] };
        return;
      }
    }
    this.push({ k: 'do', ...(this.depth === 0 ? { tag } : {}), run: (w) => w.valueStart(tag, vr, length) });
  }

  valueChunk(bytes: Uint8Array): void {
    if (this.pixel === 'native') {
      this.nativeBytes(bytes);
      return;
    }
    if (this.pixel === 'fragments') {
      this.fragmentParts.push(copyBytes(bytes));
      return;
    }
    if (this.collecting) {
      this.collecting.parts.push(copyBytes(bytes));
      return;
    }
    const held = this.deferring || this.queue.length > 0;
    const b = held ? copyBytes(bytes) : bytes;
    this.push({ k: 'do', run: (w) => w.valueChunk(b) });
  }

  valueEnd(): void {
    if (this.pixel === 'native') {
      this.endNative();
      return;
    }
    const c = this.collecting;
    if (c) {
      this.collecting = undefined;
      const value = concat(c.parts);
      if (c.tag >= GROUP_0028 && c.tag < 0x00290000) this.pixelAttrs.set({ tag: c.tag, vr: c.vr, value });
      if (c.tag === TAG.ExtendedOffsetTable || c.tag === TAG.ExtendedOffsetTableLengths)
        this.pixelAttrs.set({ tag: c.tag, vr: c.vr, value });
      this.push({ k: 'el', tag: c.tag, vr: c.vr, value, top: true });
      return;
    }
    this.push({ k: 'do', run: (w) => w.valueEnd() });
  }

  sequenceStart(tag: Tag): void {
    if (this.depth === 0) this.topLevel(tag, 'SQ', undefined);
    this.push({ k: 'do', ...(this.depth === 0 ? { tag } : {}), run: (w) => w.sequenceStart(tag) });
    this.depth++;
  }

  itemStart(): void {
    this.depth++;
    this.push({ k: 'do', run: (w) => w.itemStart() });
  }

  itemEnd(): void {
    this.depth--;
    this.push({ k: 'do', run: (w) => w.itemEnd() });
  }

  sequenceEnd(): void {
    this.depth--;
    this.push({ k: 'do', run: (w) => w.sequenceEnd() });
  }

  fragmentsStart(tag: Tag, vr: VR): void {
    if (this.depth === 0) {
      this.topLevel(tag, vr, undefined);
      if (tag === PIXEL_DATA && this.codecRuns) {
        this.startPixels();
        this.pixel = 'fragments';
        this.fragmentIndex = 0;
        return;
      }
    }
    this.push({ k: 'do', ...(this.depth === 0 ? { tag } : {}), run: (w) => w.fragmentsStart(tag, vr) });
    this.depth++;
  }

  fragmentStart(length: number): void {
    if (this.pixel === 'fragments') return;
    this.push({ k: 'do', run: (w) => w.fragmentStart(length) });
  }

  fragmentEnd(): void {
    if (this.pixel === 'fragments') {
      this.endFragment();
      return;
    }
    this.push({ k: 'do', run: (w) => w.fragmentEnd() });
  }

  fragmentsEnd(): void {
    if (this.pixel === 'fragments') {
      this.endFragments();
      return;
    }
    this.depth--;
    this.push({ k: 'do', run: (w) => w.fragmentsEnd() });
  }
}

/**
 * Transcodes a whole stream of chunks; the output chunks are yielded as they are final, at most
 * maxPendingFrames frames in flight. Returns the summary. Throws DicomParseError (malformed input),
 * TranscodeError (not possible) or PixelCodecError (a frame failed).
 */
export async function* transcodeChunks(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: TranscodeOptions,
): AsyncGenerator<Uint8Array, TranscodeSummary, undefined> {
  let out: Uint8Array[] = [];
  const t = new Transcoder(options, (c) => out.push(c));
  for await (const chunk of source) {
    t.write(chunk);
    await t.ready();
    if (out.length > 0) {
      const ready = out;
      out = [];
      yield* ready;
    }
  }
  const summary = await t.end();
  yield* out;
  return summary;
}

/**
 * The dictionary's VR for an element that came as UN (PS3.5 6.2.2: UN values are little endian,
 * as the parser delivers every binary value): a peer such as DCMTK does not read a SOP Class UID
 * sent as UN. Ambiguous VRs, sequences and unknown (private) tags stay UN.
 */
function knownVR(tag: Tag, vr: VR): VR {
  if (vr !== 'UN') return vr;
  const d = dictionaryVR(tag);
  return d.length === 2 && d !== 'SQ' && d !== 'UN' && isVR(d) ? d : vr;
}

function fragment(w: DataSetWriter, bytes: Uint8Array): void {
  w.fragmentStart(bytes.length);
  if (bytes.length > 0) w.valueChunk(bytes);
  w.fragmentEnd();
}

function cs(text: string): { vr: VR; value: Uint8Array } {
  return { vr: 'CS', value: encodeStrings([text], 'CS', []) };
}

function ds(values: readonly string[]): { vr: VR; value: Uint8Array } {
  return { vr: 'DS', value: encodeStrings([values.join('\\')], 'DS', []) };
}

function us(v: number): { vr: VR; value: Uint8Array } {
  return { vr: 'US', value: Uint8Array.of(v & 0xff, v >> 8) };
}
