/**
 * The streaming, incremental DICOM reader (sans-I/O). Feed it chunks as they arrive with write()
 * and finish with end(); it reports what it reads to a DataSetHandler, synchronously, as it goes:
 * small values whole, large values in chunks (never buffered by their announced length),
 * sequences and items as start/end events, encapsulated pixel data as fragments passed through.
 *
 * It reads Part-10 files (with or without preamble and file meta) and raw data sets in Implicit
 * VR LE, Explicit VR LE/BE and Deflated Explicit VR LE. Binary values of big endian streams are
 * delivered little endian. Errors are DicomParseError with the byte offset and the element.
 */
import { Inflate } from 'fflate';
import { DicomParseError } from '../core/errors.js';
import { DataSet } from './dataset.js';
import { dictionaryVR, TAG } from './dictionary.js';
import {
  ITEM,
  ITEM_DELIMITATION,
  isGroupLengthTag,
  SEQUENCE_DELIMITATION,
  type Tag,
  UNDEFINED_LENGTH,
} from './tag.js';
import {
  DEFLATED_EXPLICIT_VR_LE,
  EXPLICIT_VR_BE,
  EXPLICIT_VR_LE,
  IMPLICIT_VR_LE,
  transferSyntax,
} from './uid.js';
import { copyBytes, hasLongHeader, isVR, swapBytes, swapUnit, type VR } from './vr.js';

/** What the reader reports. Offsets are byte offsets in the data set stream (inflated for deflated syntaxes). */
export interface DataSetHandler {
  /** The file meta information (group 0002) and the transfer syntax the data set is read in. */
  meta?(meta: DataSet, transferSyntaxUid: string): void;
  /** A whole value (little endian for binary VRs). The bytes may be a view into the input chunk. */
  element(tag: Tag, vr: VR, value: Uint8Array, offset: number): void;
  /** A value longer than the inline limit: valueChunk() follows until valueEnd(). */
  valueStart(tag: Tag, vr: VR, length: number, offset: number): void;
  valueChunk(bytes: Uint8Array): void;
  valueEnd(): void;
  /** A sequence; `length` is UNDEFINED_LENGTH for undefined length. */
  sequenceStart(tag: Tag, length: number, offset: number): void;
  itemStart(length: number, offset: number): void;
  itemEnd(): void;
  sequenceEnd(): void;
  /** Encapsulated pixel data (PS3.5 A.4): fragments follow, the Basic Offset Table first. */
  fragmentsStart(tag: Tag, vr: VR, offset: number): void;
  /** One fragment; its bytes arrive by valueChunk() until fragmentEnd(). */
  fragmentStart(length: number, offset: number): void;
  fragmentEnd(): void;
  fragmentsEnd(): void;
}

export interface ParserOptions {
  /** 'auto' (default) detects a Part-10 file or a raw data set; 'dataset' reads a raw data set in `transferSyntax`. */
  readonly format?: 'auto' | 'part10' | 'dataset';
  /** The transfer syntax of a raw data set ('dataset' format); required there, a hint for 'auto'. */
  readonly transferSyntax?: string;
  /** Stop before the first top-level element whose tag is >= this (e.g. Pixel Data for a header). */
  readonly stopAtTag?: Tag;
  /** Maximum nesting of sequences (default 32). */
  readonly maxDepth?: number;
  /** Values up to this length are reported whole by element(); longer ones in chunks (default 256 KiB). */
  readonly inlineLimit?: number;
}

interface Syntax {
  readonly explicit: boolean;
  readonly little: boolean;
}

enum Kind {
  DataSet,
  Item,
  Sequence,
  Fragments,
}

interface Context {
  readonly kind: Kind;
  /** Absolute end offset, or -1 for undefined length. */
  readonly end: number;
  readonly tag: Tag;
  readonly syntax: Syntax;
  /** Pixel Representation seen in this data set, to resolve "US or SS" (PS3.5 A.1). */
  pixelRepresentation: number;
}

enum State {
  Detect,
  Meta,
  Body,
  Value,
  Stopped,
  Done,
}

const EMPTY = new Uint8Array(0);
const LE_EXPLICIT: Syntax = { explicit: true, little: true };
const LE_IMPLICIT: Syntax = { explicit: false, little: true };
const BE_EXPLICIT: Syntax = { explicit: true, little: false };

export class DicomParser {
  private readonly handler: DataSetHandler;
  private readonly format: 'auto' | 'part10' | 'dataset';
  private readonly hintSyntax: string | undefined;
  private readonly stopAtTag: number;
  private readonly maxDepth: number;
  private readonly inlineLimit: number;

  private buf: Uint8Array = EMPTY;
  private pos = 0;
  /** Absolute offset of buf[0]. */
  private base = 0;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  /** Bytes needed from pos before parsing can go on. */
  private need = 0;
  private ended = false;
  private state: State;

  private stack: Context[] = [];
  private meta: DataSet | undefined;
  private metaBuilder: MetaCollector | undefined;
  private inflater: Inflate | undefined;
  /** An exception thrown while parsing inflated bytes, on its way out through fflate. */
  private inflatedError: { error: unknown } | undefined;
  private ts = '';

  // A value being streamed (State.Value).
  private valueRemaining = 0;
  private valueUnit: 0 | 2 | 4 | 8 = 0;
  private valueIsFragment = false;
  private currentTag: Tag | undefined;
  private sawElement = false;
  /** Set when the data set's encoding differed from its declared transfer syntax (and was read as found). */
  syntaxMismatch = false;

  constructor(handler: DataSetHandler, options: ParserOptions = {}) {
    this.handler = handler;
    this.format = options.format ?? 'auto';
    this.hintSyntax = options.transferSyntax;
    this.stopAtTag = options.stopAtTag ?? 0x1_0000_0000;
    this.maxDepth = options.maxDepth ?? 32;
    this.inlineLimit = options.inlineLimit ?? 256 * 1024;
    if (this.format === 'dataset') {
      if (!options.transferSyntax)
        throw new TypeError("a raw data set needs its transfer syntax ('dataset' format)");
      this.state = State.Body;
      this.enterBody(options.transferSyntax, false);
    } else {
      this.state = State.Detect;
    }
  }

  /** The transfer syntax of the data set, once known. */
  get transferSyntaxUid(): string {
    return this.ts;
  }

  /** The file meta information, once read (undefined for a raw data set). */
  get fileMeta(): DataSet | undefined {
    return this.meta;
  }

  /** True once the stop tag was reached: further input is ignored. */
  get stopped(): boolean {
    return this.state === State.Stopped;
  }

  /** Absolute offset of the next byte to parse (in the inflated stream for deflated data). */
  get offset(): number {
    return this.base + this.pos;
  }

  write(chunk: Uint8Array): void {
    if (this.state === State.Stopped || this.state === State.Done || chunk.length === 0) return;
    if (this.ended) throw new Error('write after end');
    if (this.inflater) {
      this.inflatePush(chunk, false);
      return;
    }
    this.accept(chunk);
  }

  /** No more input: checks that the data set ended where it may, and reports the end of open items. */
  end(): void {
    if (this.state === State.Stopped || this.state === State.Done) return;
    if (this.inflater) this.inflatePush(EMPTY, true);
    this.ended = true;
    this.flushPending();
    this.run();
    if ((this.state as State) === State.Stopped) return;
    this.finish();
  }

  // --- input buffering -------------------------------------------------------------------------

  private accept(chunk: Uint8Array): void {
    if (this.pos >= this.buf.length && this.pendingBytes === 0) {
      this.base += this.buf.length;
      this.buf = chunk;
      this.pos = 0;
    } else {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
      if (this.buf.length - this.pos + this.pendingBytes < this.need && this.state !== State.Value) return;
      this.flushPending();
    }
    this.run();
  }

  private flushPending(): void {
    if (this.pendingBytes === 0) return;
    const rest = this.buf.length - this.pos;
    const merged = new Uint8Array(rest + this.pendingBytes);
    merged.set(this.buf.subarray(this.pos), 0);
    let o = rest;
    for (const c of this.pending) {
      merged.set(c, o);
      o += c.length;
    }
    this.base += this.pos;
    this.buf = merged;
    this.pos = 0;
    this.pending = [];
    this.pendingBytes = 0;
  }

  private inflatePush(chunk: Uint8Array, final: boolean): void {
    const inflater = this.inflater;
    if (!inflater) return;
    this.inflatedError = undefined;
    try {
      inflater.push(chunk, final);
    } catch (e) {
      // What the inflated bytes' parse or the handler threw passes through as it is (a handler's
      // own error is not corrupt data); only fflate's errors mean a corrupt deflate stream.
      const passed = this.takeInflatedError();
      if (passed) throw passed.error;
      this.state = State.Done;
      throw new DicomParseError(
        `deflated data set is corrupt (${(e as Error).message})`,
        this.offset,
        undefined,
        { cause: e },
      );
    }
  }

  private takeInflatedError(): { error: unknown } | undefined {
    const e = this.inflatedError;
    this.inflatedError = undefined;
    return e;
  }

  /** The inflater's output callback: parses the inflated bytes, keeping what they throw for inflatePush. */
  private acceptInflated(data: Uint8Array): void {
    try {
      this.accept(data);
    } catch (e) {
      this.inflatedError = { error: e };
      throw e;
    }
  }

  private available(): number {
    return this.buf.length - this.pos;
  }

  private fail(message: string, tag: Tag | undefined = this.currentTag, at: number = this.offset): never {
    this.state = State.Done;
    throw new DicomParseError(message, at, tag);
  }

  // --- the parse loop --------------------------------------------------------------------------

  private run(): void {
    for (;;) {
      let progressed: boolean;
      switch (this.state) {
        case State.Detect:
          progressed = this.detect();
          break;
        case State.Meta:
          progressed = this.readMetaElement();
          break;
        case State.Body:
          progressed = this.step();
          break;
        case State.Value:
          progressed = this.streamValue();
          break;
        default:
          return;
      }
      if (!progressed) return;
    }
  }

  /** Sets `need` and returns false when fewer than n bytes are buffered. */
  private has(n: number): boolean {
    if (this.available() >= n) return true;
    this.need = n;
    return false;
  }

  private detect(): boolean {
    const avail = this.available();
    if (avail < 132 && !this.ended) {
      this.need = 132;
      return false;
    }
    const b = this.buf;
    const p = this.pos;
    if (
      avail >= 132 &&
      b[p + 128] === 0x44 &&
      b[p + 129] === 0x49 &&
      b[p + 130] === 0x43 &&
      b[p + 131] === 0x4d
    ) {
      this.pos += 132;
      this.startMeta();
      return true;
    }
    if (avail >= 4 && b[p] === 0x44 && b[p + 1] === 0x49 && b[p + 2] === 0x43 && b[p + 3] === 0x4d) {
      this.pos += 4;
      this.startMeta();
      return true;
    }
    if (avail >= 8 && b[p] === 0x02 && b[p + 1] === 0x00 && isVRBytes(b[p + 4], b[p + 5])) {
      this.startMeta();
      return true;
    }
    if (this.format === 'part10')
      this.fail('not a DICOM Part-10 file (no DICM prefix and no file meta information)', undefined);
    const ts = this.hintSyntax ?? this.guessSyntax();
    this.enterBody(ts, true);
    return true;
  }

  /** Guesses the syntax of a raw data set from its first element header (as pydicom and DCMTK do). */
  private guessSyntax(): string {
    const b = this.buf;
    const p = this.pos;
    if (this.available() < 8) {
      if (this.available() === 0) return IMPLICIT_VR_LE;
      this.fail('not DICOM: too short to hold a data element');
    }
    const explicit = isVRBytes(b[p + 4], b[p + 5]);
    const groupLE = (b[p] as number) | ((b[p + 1] as number) << 8);
    const groupBE = ((b[p] as number) << 8) | (b[p + 1] as number);
    if (explicit) return groupBE < groupLE ? EXPLICIT_VR_BE : EXPLICIT_VR_LE;
    // Implicit VR: a real data set starts in a low group (command 0000, meta 0002, identification 0008...).
    if (groupLE > 0x0010)
      this.fail(
        'not DICOM: no DICM prefix, no file meta information, and no data element at the start',
        undefined,
      );
    return IMPLICIT_VR_LE;
  }

  private startMeta(): void {
    this.state = State.Meta;
    this.metaBuilder = new MetaCollector();
    this.stack = [{ kind: Kind.DataSet, end: -1, tag: 0, syntax: LE_EXPLICIT, pixelRepresentation: -1 }];
  }

  /** File meta elements are Explicit VR LE (PS3.10 7.1); the meta ends at the first tag outside group 0002. */
  private readMetaElement(): boolean {
    if (!this.has(6)) {
      if (this.ended) this.endMeta();
      return this.state !== State.Meta;
    }
    const b = this.buf;
    const p = this.pos;
    const group = (b[p] as number) | ((b[p + 1] as number) << 8);
    if (group !== 0x0002) {
      this.endMeta();
      return true;
    }
    const tag = (((group << 16) | ((b[p + 2] as number) | ((b[p + 3] as number) << 8))) >>> 0) as Tag;
    this.currentTag = tag;
    if (!isVRBytes(b[p + 4], b[p + 5])) this.fail('file meta element without a valid VR', tag);
    const vr = String.fromCharCode(b[p + 4] as number, b[p + 5] as number) as VR;
    let header = 8;
    let length: number;
    if (hasLongHeader(vr)) {
      if (!this.has(12)) return this.truncatedIfEnded(12);
      header = 12;
      length = readU32(b, p + 8, true);
    } else {
      if (!this.has(8)) return this.truncatedIfEnded(8);
      length = (b[p + 6] as number) | ((b[p + 7] as number) << 8);
    }
    if (length === UNDEFINED_LENGTH || length > 0x10000)
      this.fail(`file meta element with implausible length ${length}`, tag);
    if (!this.has(header + length)) return this.truncatedIfEnded(header + length);
    this.metaBuilder?.add(tag, vr, copyBytes(this.buf, p + header, p + header + length));
    this.pos += header + length;
    return true;
  }

  private endMeta(): void {
    const meta = this.metaBuilder?.dataSet ?? new DataSet();
    this.meta = meta;
    this.metaBuilder = undefined;
    let ts = meta.string(TAG.TransferSyntaxUID) ?? '';
    if (!ts || !transferSyntax(ts)) {
      // PS3.10 requires it; files without one are read in the syntax their bytes show (as pydicom does).
      ts = this.available() >= 8 ? this.guessSyntax() : (this.hintSyntax ?? EXPLICIT_VR_LE);
    }
    this.handler.meta?.(meta, ts);
    this.enterBody(ts, true);
  }

  private enterBody(ts: string, afterDetect: boolean): void {
    const props = transferSyntax(ts);
    this.ts = ts;
    const syntax = props
      ? !props.explicitVR
        ? LE_IMPLICIT
        : props.littleEndian
          ? LE_EXPLICIT
          : BE_EXPLICIT
      : LE_EXPLICIT;
    // An unknown transfer syntax is read as explicit VR little endian, which every syntax but the
    // native ones uses (PS3.5 10).
    this.stack = [{ kind: Kind.DataSet, end: -1, tag: 0, syntax, pixelRepresentation: -1 }];
    this.state = State.Body;
    if (props?.deflated || ts === DEFLATED_EXPLICIT_VR_LE) {
      // The rest of the stream is raw deflate (RFC 1951): inflate it and parse what comes out.
      const rest = afterDetect ? this.buf.subarray(this.pos) : EMPTY;
      const pendingChunks = this.pending;
      this.buf = EMPTY;
      this.pos = 0;
      this.pending = [];
      this.pendingBytes = 0;
      this.base = 0;
      this.inflater = new Inflate((data) => this.acceptInflated(data));
      if (rest.length > 0) this.inflatePush(rest, false);
      for (const c of pendingChunks) this.inflatePush(c, false);
    }
  }

  private truncatedIfEnded(n: number): boolean {
    if (this.ended) this.fail(`unexpected end of data: ${n} bytes needed, ${this.available()} left`);
    return false;
  }

  private top(): Context {
    return this.stack[this.stack.length - 1] as Context;
  }

  /** One step of the data set body: closes what ended, or reads one header. */
  private step(): boolean {
    const ctx = this.top();
    const abs = this.offset;
    if (ctx.end >= 0 && abs >= ctx.end) {
      if (abs > ctx.end)
        this.fail(
          `element runs ${abs - ctx.end} bytes past the end of its enclosing item or sequence`,
          ctx.tag,
        );
      this.close();
      return true;
    }
    switch (ctx.kind) {
      case Kind.DataSet:
      case Kind.Item:
        return this.readElement(ctx);
      case Kind.Sequence:
        return this.readItem(ctx);
      case Kind.Fragments:
        return this.readFragment(ctx);
    }
  }

  private close(): void {
    const ctx = this.stack.pop() as Context;
    switch (ctx.kind) {
      case Kind.Item:
        this.handler.itemEnd();
        break;
      case Kind.Sequence:
        this.handler.sequenceEnd();
        break;
      case Kind.Fragments:
        this.handler.fragmentsEnd();
        break;
      case Kind.DataSet:
        this.stack.push(ctx);
        this.state = State.Done;
        break;
    }
  }

  private readElement(ctx: Context): boolean {
    if (!this.has(8)) {
      if (this.ended) {
        if (this.available() === 0 && ctx.kind === Kind.DataSet) {
          this.state = State.Done;
          return false;
        }
        if (this.available() === 0)
          this.fail('unexpected end of data inside an item (missing item delimiter)', ctx.tag);
        this.fail(
          `unexpected end of data: ${this.available()} trailing bytes are not a data element header`,
          undefined,
        );
      }
      return false;
    }
    const b = this.buf;
    const p = this.pos;
    const little = ctx.syntax.little;
    const tag = readTag(b, p, little);
    const at = this.offset;
    this.currentTag = tag;
    if (tag === ITEM_DELIMITATION) {
      if (ctx.kind !== Kind.Item || ctx.end >= 0) {
        // A stray delimiter where none belongs (seen in the field): skip it, as DCMTK does.
        if (ctx.kind === Kind.DataSet) this.fail('item delimitation item outside of an item', tag);
      }
      this.pos += 8;
      this.stack.pop();
      this.handler.itemEnd();
      return true;
    }
    if (tag === SEQUENCE_DELIMITATION || tag === ITEM) {
      if (ctx.kind === Kind.Item && ctx.end < 0 && tag === SEQUENCE_DELIMITATION) {
        this.fail('sequence delimiter before the item delimiter', tag);
      }
      this.fail(
        tag === ITEM ? 'item tag outside of a sequence' : 'sequence delimiter outside of a sequence',
        tag,
      );
    }
    if (ctx.kind === Kind.DataSet && this.stack.length === 1 && tag >= this.stopAtTag) {
      this.state = State.Stopped;
      return false;
    }
    if (!this.sawElement && this.stack.length === 1) {
      this.sawElement = true;
      this.checkFirstElementSyntax(ctx);
      return true;
    }
    let vr: VR;
    let length: number;
    let header: number;
    if (ctx.syntax.explicit) {
      const c0 = b[p + 4] as number;
      const c1 = b[p + 5] as number;
      if (!isVRBytes(c0, c1)) {
        this.fail(`unknown VR '${printable(c0)}${printable(c1)}'`, tag, at + 4);
      }
      vr = String.fromCharCode(c0, c1) as VR;
      if (hasLongHeader(vr)) {
        if (!this.has(12)) return this.truncatedIfEnded(12);
        length = readU32(b, p + 8, little);
        header = 12;
      } else {
        length = little
          ? (b[p + 6] as number) | ((b[p + 7] as number) << 8)
          : ((b[p + 6] as number) << 8) | (b[p + 7] as number);
        header = 8;
      }
    } else {
      length = readU32(b, p + 4, true);
      vr = this.implicitVR(tag, length);
      header = 8;
    }
    this.pos += header;
    if (vr === 'SQ' || (length === UNDEFINED_LENGTH && vr === 'UN' && tag !== TAG.PixelData)) {
      // PS3.5 6.2.2 note: UN of undefined length holds an Implicit VR LE sequence.
      if (this.stack.length >= this.maxDepth * 2 + 1)
        this.fail(`sequences nested deeper than ${this.maxDepth}`, tag);
      const syntax = vr === 'UN' ? LE_IMPLICIT : ctx.syntax;
      const end = length === UNDEFINED_LENGTH ? -1 : this.offset + length;
      this.stack.push({ kind: Kind.Sequence, end, tag, syntax, pixelRepresentation: -1 });
      this.handler.sequenceStart(tag, length, at);
      return true;
    }
    if (length === UNDEFINED_LENGTH) {
      if (vr === 'OB' || vr === 'OW' || vr === 'UN' || tag === TAG.PixelData) {
        this.stack.push({ kind: Kind.Fragments, end: -1, tag, syntax: ctx.syntax, pixelRepresentation: -1 });
        // PS3.5 A.4: encapsulated pixel data is OB (an implicit VR stream or a UN header does not say).
        this.handler.fragmentsStart(tag, vr === 'UN' || !ctx.syntax.explicit ? 'OB' : vr, at);
        return true;
      }
      this.fail(`undefined length on a ${vr} element`, tag, at);
    }
    const unit = little ? 0 : swapUnit(vr);
    if (length <= this.inlineLimit) {
      if (!this.has(length)) {
        this.pos -= header;
        return this.truncatedIfEnded(header + length);
      }
      let value = this.buf.subarray(this.pos, this.pos + length);
      if (unit !== 0) {
        value = copyBytes(value);
        swapBytes(value, unit);
      }
      this.pos += length;
      if (tag === TAG.PixelRepresentation && length >= 2)
        ctx.pixelRepresentation = (value[0] as number) | ((value[1] as number) << 8);
      this.handler.element(tag, vr, value, at);
      return true;
    }
    this.valueRemaining = length;
    this.valueUnit = unit;
    this.valueIsFragment = false;
    this.state = State.Value;
    this.handler.valueStart(tag, vr, length, at);
    return true;
  }

  /**
   * Files whose data set is not in the syntax their meta says exist in the field (implicit VR data
   * under an explicit VR UID and the reverse); like pydicom and DCMTK, read what the bytes show.
   */
  private checkFirstElementSyntax(ctx: Context): void {
    // A syntax given for a raw data set (negotiated on an association) is not second-guessed: an
    // implicit VR length such as 0x424F reads as 'OB' but is no VR.
    if (!ctx.syntax.little || this.format === 'dataset') return;
    const b = this.buf;
    const p = this.pos;
    const explicitLooking = isVRBytes(b[p + 4], b[p + 5]);
    if (ctx.syntax.explicit === explicitLooking) return;
    this.stack[0] = { ...ctx, syntax: explicitLooking ? LE_EXPLICIT : LE_IMPLICIT };
    this.syntaxMismatch = true;
  }

  /** The VR of an implicit VR element: the dictionary's, with ambiguous VRs resolved per PS3.5 A.1 / C.7.6.3. */
  private implicitVR(tag: Tag, length: number): VR {
    if (isGroupLengthTag(tag)) return 'UL';
    const dv = dictionaryVR(tag);
    if (dv.length === 2) return dv as VR;
    if (dv === 'US or SS') {
      let rep = -1;
      for (let i = this.stack.length - 1; i >= 0 && rep < 0; i--)
        rep = (this.stack[i] as Context).pixelRepresentation;
      return rep === 1 ? 'SS' : 'US';
    }
    if (dv === 'OB or OW') return 'OW';
    if (dv === 'US or SS or OW' || dv === 'US or OW') return length > 2 * 3 ? 'OW' : 'US';
    return 'UN';
  }

  /**
   * The header of an item or a sequence delimiter at the position (PS3.5 7.5: tag, 32-bit length),
   * not consumed; undefined until its 8 bytes have arrived. Data that ends here fails with `cutOff`.
   */
  private itemHeader(ctx: Context, cutOff: string): { tag: Tag; length: number; at: number } | undefined {
    if (!this.has(8)) {
      if (this.ended) {
        if (this.available() === 0) this.fail(cutOff, ctx.tag);
        this.truncatedIfEnded(8);
      }
      return undefined;
    }
    return {
      tag: readTag(this.buf, this.pos, ctx.syntax.little),
      length: readU32(this.buf, this.pos + 4, ctx.syntax.little),
      at: this.offset,
    };
  }

  private readItem(ctx: Context): boolean {
    const header = this.itemHeader(
      ctx,
      'unexpected end of data inside a sequence (missing sequence delimiter)',
    );
    if (header === undefined) return false;
    const { tag, length, at } = header;
    if (tag === SEQUENCE_DELIMITATION) {
      this.pos += 8;
      this.stack.pop();
      this.handler.sequenceEnd();
      return true;
    }
    if (tag !== ITEM) this.fail(`expected an item in the sequence, found ${tagText(tag)}`, ctx.tag, at);
    this.pos += 8;
    const end = length === UNDEFINED_LENGTH ? -1 : this.offset + length;
    if (ctx.end >= 0 && end > ctx.end)
      this.fail(`item of ${length} bytes runs past the end of its sequence`, ctx.tag, at);
    this.stack.push({ kind: Kind.Item, end, tag: ctx.tag, syntax: ctx.syntax, pixelRepresentation: -1 });
    this.handler.itemStart(length, at);
    return true;
  }

  private readFragment(ctx: Context): boolean {
    const header = this.itemHeader(
      ctx,
      'unexpected end of data in encapsulated pixel data (missing sequence delimiter)',
    );
    if (header === undefined) return false;
    const { tag, length, at } = header;
    this.pos += 8;
    if (tag === SEQUENCE_DELIMITATION) {
      this.stack.pop();
      this.handler.fragmentsEnd();
      return true;
    }
    if (tag !== ITEM)
      this.fail(`expected a fragment item in encapsulated pixel data, found ${tagText(tag)}`, ctx.tag, at);
    if (length === UNDEFINED_LENGTH) this.fail('fragment of undefined length', ctx.tag, at);
    this.handler.fragmentStart(length, at);
    this.valueRemaining = length;
    this.valueUnit = 0;
    this.valueIsFragment = true;
    this.state = State.Value;
    return true;
  }

  /** Passes a long value's bytes to the handler as they arrive (whole swap units for big endian). */
  private streamValue(): boolean {
    if (this.valueRemaining === 0) {
      this.state = State.Body;
      if (this.valueIsFragment) this.handler.fragmentEnd();
      else this.handler.valueEnd();
      return true;
    }
    let n = Math.min(this.available(), this.valueRemaining);
    const unit = this.valueUnit;
    if (unit !== 0 && n < this.valueRemaining) n -= n % unit;
    if (n === 0) {
      if (this.ended)
        this.fail(`unexpected end of data: value truncated, ${this.valueRemaining} bytes missing`);
      this.need = unit === 0 ? 1 : unit;
      return false;
    }
    let chunk = this.buf.subarray(this.pos, this.pos + n);
    if (unit !== 0) {
      chunk = copyBytes(chunk);
      swapBytes(chunk, unit);
    }
    this.pos += n;
    this.valueRemaining -= n;
    this.handler.valueChunk(chunk);
    return true;
  }

  private finish(): void {
    if (this.state === State.Value)
      this.fail(`unexpected end of data: value truncated, ${this.valueRemaining} bytes missing`);
    if (this.state === State.Detect || this.state === State.Meta)
      this.fail('unexpected end of data in the file meta information');
    // Close defined-length contexts that end exactly here; an open undefined-length one is an error.
    while (this.stack.length > 1) {
      const ctx = this.top();
      if (ctx.end >= 0 && this.offset === ctx.end) this.close();
      else this.fail('unexpected end of data inside a sequence or item', ctx.tag);
    }
    this.state = State.Done;
  }
}

/** Collects the file meta elements into a data set. */
class MetaCollector {
  readonly dataSet = new DataSet();
  add(tag: Tag, vr: VR, value: Uint8Array): void {
    this.dataSet.set({ tag, vr, value });
  }
}

function isVRBytes(c0: number | undefined, c1: number | undefined): boolean {
  if (c0 === undefined || c1 === undefined) return false;
  return c0 >= 0x41 && c0 <= 0x5a && c1 >= 0x41 && c1 <= 0x5a && isVR(String.fromCharCode(c0, c1));
}

function readU32(b: Uint8Array, p: number, little: boolean): number {
  return little
    ? ((b[p] as number) |
        ((b[p + 1] as number) << 8) |
        ((b[p + 2] as number) << 16) |
        ((b[p + 3] as number) << 24)) >>>
        0
    : (((b[p] as number) << 24) |
        ((b[p + 1] as number) << 16) |
        ((b[p + 2] as number) << 8) |
        (b[p + 3] as number)) >>>
        0;
}

function readTag(b: Uint8Array, p: number, little: boolean): Tag {
  const g = little
    ? (b[p] as number) | ((b[p + 1] as number) << 8)
    : ((b[p] as number) << 8) | (b[p + 1] as number);
  const e = little
    ? (b[p + 2] as number) | ((b[p + 3] as number) << 8)
    : ((b[p + 2] as number) << 8) | (b[p + 3] as number);
  return ((g << 16) | e) >>> 0;
}

function tagText(tag: Tag): string {
  const h = tag.toString(16).toUpperCase().padStart(8, '0');
  return `(${h.slice(0, 4)},${h.slice(4)})`;
}

function printable(c: number): string {
  return c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
}
