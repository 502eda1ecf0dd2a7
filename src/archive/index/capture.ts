/**
 * What WADO-RS needs of an object, captured while it streams in (ARCHITECTURE.md decision 8): a
 * DataSetHandler that builds the header (values up to HEADER_VALUE_LIMIT, binary values up to
 * BULK_DATA_THRESHOLD) and notes where every larger value sits in the object file (its tag path,
 * VR, offset and length), plus the frame layout of the Pixel Data: native (offset and frame
 * size) or encapsulated (fragment offsets and which fragments make each frame, from the Extended
 * Offset Table, the Basic Offset Table, one fragment per frame, or the frames' start markers).
 * Values are never held: only their positions. The instance's DICOM JSON (PS3.18 F.2) is written
 * with relative BulkDataURIs (`bulk/{tagpath}`) that the metadata route makes absolute.
 */
import { type BulkDataRef, type DataElement, DataSet } from '../../dicom/dataset.js';
import type { DicomJsonObject } from '../../dicom/json.js';
import { toDicomJson } from '../../dicom/json.js';
import type { DataSetHandler } from '../../dicom/parser.js';
import { type Tag, tagGroup, tagHex } from '../../dicom/tag.js';
import { DEFLATED_EXPLICIT_VR_LE, EXPLICIT_VR_BE, transferSyntax } from '../../dicom/uid.js';
import { isBulkVR, swapUnit, type VR } from '../../dicom/vr.js';

/** Binary values longer than this are bulk data: a BulkDataURI in the metadata, no bytes in the index. */
export const BULK_DATA_THRESHOLD = 1024;

/** Any value longer than this is not kept in memory (the index keeps text up to 64 KiB). */
export const HEADER_VALUE_LIMIT = 64 * 1024;

const PIXEL_DATA = 0x7fe00010;
const FLOAT_PIXEL_DATA = 0x7fe00008;
const DOUBLE_FLOAT_PIXEL_DATA = 0x7fe00009;
const EXTENDED_OFFSET_TABLE = 0x7fe00001;
const EXTENDED_OFFSET_TABLE_LENGTHS = 0x7fe00002;
const TRAILING_PADDING = 0xfffcfffc;

/** One bulk value: where its bytes are (a list of byte ranges: one for a plain value, the fragments for encapsulated data). */
export interface BulkValue {
  /** Tag path: `7FE00010`, or `00540016.0.00181072` (sequence tag, 0-based item, tag...). */
  readonly path: string;
  readonly vr: VR;
  /** [offset, length] in the object file (data set stream offsets when the layout is not addressable). */
  readonly ranges: ReadonlyArray<readonly [number, number]>;
  /** Byte-swap unit to little endian (big endian files); 0 when none. */
  readonly swap: 0 | 2 | 4 | 8;
  /** True for encapsulated data (ranges are its fragments, the Basic Offset Table left out). */
  readonly encapsulated?: boolean;
}

/** The frames of the top-level Pixel Data. */
export type PixelLayout =
  | {
      readonly kind: 'native';
      readonly path: string;
      readonly offset: number;
      readonly length: number;
      /** Bits of one frame (Rows x Columns x Samples per Pixel x Bits Allocated). */
      readonly frameBits: number;
      readonly frames: number;
      readonly swap: 0 | 2 | 4 | 8;
    }
  | {
      readonly kind: 'encapsulated';
      readonly path: string;
      /** [offset, length] of each fragment after the Basic Offset Table. */
      readonly fragments: ReadonlyArray<readonly [number, number]>;
      /** [first fragment, fragment count] per frame; null when the frame boundaries are unknown. */
      readonly frames: ReadonlyArray<readonly [number, number]> | null;
    };

/** Where the bulk data of an instance is (the `bulk` column, as JSON). */
export interface BulkLayout {
  readonly version: 1;
  /**
   * False when the offsets are in an inflated stream (Deflated Explicit VR Little Endian): the
   * values are served by parsing the file again.
   */
  readonly addressable: boolean;
  readonly values: readonly BulkValue[];
  readonly pixels?: PixelLayout;
}

/** What is kept of one instance for WADO-RS (the instance row's `metadata` and `bulk` columns). */
export interface InstanceMetadataDocs {
  /** DICOM JSON of the whole data set, BulkDataURIs relative: `bulk/{tagpath}`. */
  readonly metadata: string;
  /** A BulkLayout as JSON. */
  readonly bulk: string;
}

/** The prefix of every stored BulkDataURI; the route puts the instance's URL before it. */
export const BULK_URI_PREFIX = 'bulk/';

interface Level {
  readonly dataSet: DataSet;
  /** Path prefix of elements in this data set ('' at the top, `SEQ.i.` inside items). */
  readonly prefix: string;
}

interface Seq {
  readonly tag: Tag;
  readonly items: DataSet[];
  readonly prefix: string;
}

interface OpenValue {
  readonly tag: Tag;
  readonly vr: VR;
  readonly length: number;
  readonly offset: number;
  /** Kept bytes (only when the value is kept or is an offset table). */
  readonly chunks: Uint8Array[] | undefined;
}

interface OpenFragments {
  readonly tag: Tag;
  readonly vr: VR;
  readonly path: string;
  readonly top: boolean;
  readonly items: Array<{ offset: number; length: number; head: Uint8Array }>;
  bot: Uint8Array[];
}

/** A DataSetHandler for the ingest path and reindexing: the header and the bulk layout in one pass. */
export class MetadataCapture implements DataSetHandler {
  readonly root = new DataSet();
  fileMeta: DataSet | undefined;
  transferSyntax = '';
  private readonly levels: Level[] = [{ dataSet: this.root, prefix: '' }];
  private readonly seqs: Seq[] = [];
  private readonly refs = new Map<BulkDataRef, BulkValue>();
  private readonly values: BulkValue[] = [];
  private position: () => number = () => 0;
  private value: OpenValue | undefined;
  private fragments: OpenFragments | undefined;
  private fragment: { head: Uint8Array; filled: number; bot: boolean } | undefined;
  private offsetTable: Uint8Array | undefined;
  private pixelValue: BulkValue | undefined;
  private encapsulatedPixels:
    | { path: string; fragments: Array<readonly [number, number]>; heads: Uint8Array[]; bot: Uint8Array }
    | undefined;
  private swapAll = false;

  /** The syntax of a raw data set (a Part-10 input reports its own through meta()). */
  constructor(transferSyntaxUid?: string) {
    if (transferSyntaxUid !== undefined) this.setSyntax(transferSyntaxUid);
  }

  /** Where the parser is: offsets of values are taken from it (the offset just past what it reported). */
  track(position: () => number): void {
    this.position = position;
  }

  private setSyntax(ts: string): void {
    this.transferSyntax = ts;
    this.swapAll = ts === EXPLICIT_VR_BE || transferSyntax(ts)?.littleEndian === false;
  }

  private level(): Level {
    return this.levels[this.levels.length - 1] as Level;
  }

  private isTop(): boolean {
    return this.levels.length === 1;
  }

  meta(meta: DataSet, ts: string): void {
    this.fileMeta = meta;
    this.setSyntax(ts);
  }

  private bulk(tag: Tag, vr: VR, ranges: Array<readonly [number, number]>, encapsulated = false): BulkValue {
    const length = ranges.reduce((n, r) => n + r[1], 0);
    const ref: BulkDataRef = { kind: 'bulk', offset: ranges[0]?.[0] ?? -1, length };
    const v: BulkValue = {
      path: `${this.level().prefix}${tagHex(tag)}`,
      vr,
      ranges,
      swap: this.swapAll && !encapsulated ? swapUnit(vr) : 0,
      ...(encapsulated ? { encapsulated } : {}),
    };
    this.refs.set(ref, v);
    this.values.push(v);
    this.level().dataSet.set({ tag, vr, value: ref });
    return v;
  }

  /** True when the value's bytes are kept in the header (not bulk). */
  private keeps(tag: Tag, vr: VR, length: number): boolean {
    if (this.isTop() && isPixelTag(tag)) return false;
    if (length > HEADER_VALUE_LIMIT) return false;
    return !(isBulkVR(vr) && length > BULK_DATA_THRESHOLD);
  }

  element(tag: Tag, vr: VR, value: Uint8Array): void {
    const start = this.position() - value.length;
    if (this.isTop() && (tag === EXTENDED_OFFSET_TABLE || tag === EXTENDED_OFFSET_TABLE_LENGTHS)) {
      if (tag === EXTENDED_OFFSET_TABLE) this.offsetTable = value.slice();
    }
    if (this.keeps(tag, vr, value.length)) {
      this.level().dataSet.set({ tag, vr, value });
      return;
    }
    const v = this.bulk(tag, vr, [[start, value.length]]);
    if (this.isTop() && isPixelTag(tag)) this.pixelValue = v;
  }

  valueStart(tag: Tag, vr: VR, length: number): void {
    const keepTable = this.isTop() && tag === EXTENDED_OFFSET_TABLE;
    this.value = {
      tag,
      vr,
      length,
      offset: this.position(),
      chunks: keepTable || this.keeps(tag, vr, length) ? [] : undefined,
    };
  }

  valueChunk(bytes: Uint8Array): void {
    const f = this.fragment;
    if (f) {
      if (f.bot) this.fragments?.bot.push(bytes.slice());
      else if (f.filled < f.head.length) {
        const n = Math.min(bytes.length, f.head.length - f.filled);
        f.head.set(bytes.subarray(0, n), f.filled);
        f.filled += n;
      }
      return;
    }
    this.value?.chunks?.push(bytes.slice());
  }

  valueEnd(): void {
    const v = this.value;
    this.value = undefined;
    if (!v) return;
    const bytes = v.chunks ? concat(v.chunks) : undefined;
    if (this.isTop() && v.tag === EXTENDED_OFFSET_TABLE && bytes) this.offsetTable = bytes;
    if (bytes && this.keeps(v.tag, v.vr, v.length)) {
      this.level().dataSet.set({ tag: v.tag, vr: v.vr, value: bytes });
      return;
    }
    const b = this.bulk(v.tag, v.vr, [[v.offset, v.length]]);
    if (this.isTop() && isPixelTag(v.tag)) this.pixelValue = b;
  }

  sequenceStart(tag: Tag): void {
    const items: DataSet[] = [];
    const level = this.level();
    this.seqs.push({ tag, items, prefix: `${level.prefix}${tagHex(tag)}.` });
    level.dataSet.set({ tag, vr: 'SQ', value: items });
  }

  itemStart(): void {
    const seq = this.seqs[this.seqs.length - 1];
    const item = new DataSet(this.level().dataSet);
    const index = seq ? seq.items.length : 0;
    seq?.items.push(item);
    this.levels.push({ dataSet: item, prefix: `${seq?.prefix ?? ''}${index}.` });
  }

  itemEnd(): void {
    if (this.levels.length > 1) this.levels.pop();
  }

  sequenceEnd(): void {
    this.seqs.pop();
  }

  fragmentsStart(tag: Tag, vr: VR): void {
    this.fragments = {
      tag,
      vr,
      path: `${this.level().prefix}${tagHex(tag)}`,
      top: this.isTop(),
      items: [],
      bot: [],
    };
  }

  fragmentStart(length: number, offset: number): void {
    const fs = this.fragments;
    const bot = fs !== undefined && fs.items.length === 0;
    // The head of a fragment tells a frame's start (JPEG SOI, a JPEG 2000 codestream or box).
    const head = new Uint8Array(Math.min(12, length));
    fs?.items.push({ offset: offset + 8, length, head });
    this.fragment = { head, filled: 0, bot };
  }

  fragmentEnd(): void {
    this.fragment = undefined;
  }

  fragmentsEnd(): void {
    const fs = this.fragments;
    this.fragments = undefined;
    if (!fs) return;
    const [, ...rest] = fs.items;
    const ranges = rest.map((i) => [i.offset, i.length] as const);
    this.bulk(fs.tag, fs.vr, ranges, true);
    if (fs.top && fs.tag === PIXEL_DATA)
      this.encapsulatedPixels = {
        path: fs.path,
        fragments: ranges,
        heads: rest.map((i) => i.head),
        bot: concat(fs.bot),
      };
  }

  /**
   * The stored documents, with file offsets: `delta` is added to the parser's offsets (the file
   * meta written before the data set minus the bytes the parser saw before it).
   */
  finish(delta: number): InstanceMetadataDocs {
    const addressable =
      this.transferSyntax !== DEFLATED_EXPLICIT_VR_LE && !transferSyntax(this.transferSyntax)?.deflated;
    const d = addressable ? delta : 0;
    const shift = (r: readonly [number, number]) => [r[0] + d, r[1]] as const;
    const values = this.values.map((v) => ({ ...v, ranges: v.ranges.map(shift) }));
    const pixels = this.pixelLayout(d);
    const layout: BulkLayout = { version: 1, addressable, values, ...(pixels ? { pixels } : {}) };
    const json = this.json();
    return { metadata: JSON.stringify(json), bulk: JSON.stringify(layout) };
  }

  /** The instance's DICOM JSON: every attribute as received but the file meta and trailing padding. */
  json(): DicomJsonObject {
    const ds = new DataSet();
    for (const e of this.root) if (tagGroup(e.tag) !== 0x0002 && e.tag !== TRAILING_PADDING) ds.set(e);
    return toDicomJson(ds, {
      bulkDataUri: (_tag: Tag, element: DataElement) => {
        const v = element.value;
        if (v instanceof Uint8Array || Array.isArray(v) || v.kind !== 'bulk') return undefined;
        const b = this.refs.get(v);
        return b ? `${BULK_URI_PREFIX}${b.path}` : undefined;
      },
    });
  }

  private pixelLayout(delta: number): PixelLayout | undefined {
    const frames = Math.max(1, Math.trunc(numberOf(this.root, 0x00280008) ?? 1));
    const native = this.pixelValue;
    if (native) {
      const range = native.ranges[0] as readonly [number, number];
      const rows = numberOf(this.root, 0x00280010) ?? 0;
      const columns = numberOf(this.root, 0x00280011) ?? 0;
      const samples = numberOf(this.root, 0x00280002) ?? 1;
      const bits =
        native.path === tagHex(PIXEL_DATA)
          ? (numberOf(this.root, 0x00280100) ?? 8)
          : native.path === tagHex(FLOAT_PIXEL_DATA)
            ? 32
            : 64;
      const frameBits = rows * columns * samples * bits;
      const fit = frameBits > 0 ? Math.min(frames, Math.floor((range[1] * 8) / frameBits)) : 0;
      return {
        kind: 'native',
        path: native.path,
        offset: range[0] + delta,
        length: range[1],
        frameBits,
        frames: fit,
        swap: native.swap,
      };
    }
    const enc = this.encapsulatedPixels;
    if (!enc) return undefined;
    return {
      kind: 'encapsulated',
      path: enc.path,
      fragments: enc.fragments.map((r) => [r[0] + delta, r[1]] as const),
      frames: frameMap(enc, frames, this.offsetTable),
    };
  }
}

/** [first fragment, count] per frame (PS3.5 A.4): from an offset table, one fragment per frame, or start markers. */
function frameMap(
  enc: { fragments: ReadonlyArray<readonly [number, number]>; heads: Uint8Array[]; bot: Uint8Array },
  frames: number,
  extended: Uint8Array | undefined,
): Array<readonly [number, number]> | null {
  const n = enc.fragments.length;
  if (n === 0) return null;
  // Offsets in the tables count from the first fragment's item tag; each item has an 8-byte header.
  const itemStarts: number[] = [];
  let at = 0;
  for (const [, length] of enc.fragments) {
    itemStarts.push(at);
    at += 8 + length;
  }
  const fromOffsets = (offsets: number[]): Array<readonly [number, number]> | null => {
    const firsts = offsets.map((o) => itemStarts.indexOf(o));
    if (firsts.some((f, i) => f < 0 || (i > 0 && f <= (firsts[i - 1] as number)))) return null;
    return firsts.map((f, i) => [f, (i + 1 < firsts.length ? (firsts[i + 1] as number) : n) - f] as const);
  };
  if (extended && extended.length >= 8) {
    const view = new DataView(extended.buffer, extended.byteOffset, extended.length);
    const offsets: number[] = [];
    for (let i = 0; i + 8 <= extended.length; i += 8) offsets.push(Number(view.getBigUint64(i, true)));
    const m = fromOffsets(offsets);
    if (m) return m;
  }
  if (enc.bot.length >= 4) {
    const view = new DataView(enc.bot.buffer, enc.bot.byteOffset, enc.bot.length);
    const offsets: number[] = [];
    for (let i = 0; i + 4 <= enc.bot.length; i += 4) offsets.push(view.getUint32(i, true));
    const m = fromOffsets(offsets);
    if (m) return m;
  }
  if (frames === 1) return [[0, n]];
  if (n === frames) return enc.fragments.map((_, i) => [i, 1] as const);
  const starts: number[] = [];
  enc.heads.forEach((h, i) => {
    if (isFrameStart(h)) starts.push(i);
  });
  if (starts.length === frames && starts[0] === 0)
    return starts.map((s, i) => [s, (i + 1 < starts.length ? (starts[i + 1] as number) : n) - s] as const);
  return null;
}

/** JPEG SOI (FFD8 FF), JPEG 2000 codestream SOC+SIZ (FF4F FF51) or the JP2 signature box. */
function isFrameStart(h: Uint8Array): boolean {
  if (h.length >= 3 && h[0] === 0xff && h[1] === 0xd8 && h[2] === 0xff) return true;
  if (h.length >= 4 && h[0] === 0xff && h[1] === 0x4f && h[2] === 0xff && h[3] === 0x51) return true;
  return h.length >= 8 && h[4] === 0x6a && h[5] === 0x50 && h[6] === 0x20 && h[7] === 0x20;
}

function isPixelTag(tag: Tag): boolean {
  return tag === PIXEL_DATA || tag === FLOAT_PIXEL_DATA || tag === DOUBLE_FLOAT_PIXEL_DATA;
}

function numberOf(ds: DataSet, tag: Tag): number | undefined {
  try {
    const n = ds.number(tag);
    return n !== undefined && Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0] as Uint8Array;
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/** Parses a stored BulkLayout (the `bulk` column); undefined when absent or not one. */
export function parseBulkLayout(text: string | null | undefined): BulkLayout | undefined {
  if (!text) return undefined;
  try {
    const v = JSON.parse(text) as BulkLayout;
    return v && v.version === 1 ? v : undefined;
  } catch {
    return undefined;
  }
}
