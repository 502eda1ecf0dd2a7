/**
 * The streaming writer: a DataSetHandler that encodes what it is told into a transfer syntax and
 * passes the bytes to a sink as it goes, so the parser can be piped straight into it (re-encoding
 * without holding values in memory). Sequences and items are written with undefined length,
 * which every transfer syntax allows (PS3.5 7.5), so nothing needs to be known in advance.
 */
import { Deflate } from 'fflate';
import { DicomEncodeError } from '../core/errors.js';
import type { DataSet } from './dataset.js';
import { TAG } from './dictionary.js';
import type { DataSetHandler } from './parser.js';
import {
  ITEM,
  ITEM_DELIMITATION,
  isGroupLengthTag,
  SEQUENCE_DELIMITATION,
  type Tag,
  UNDEFINED_LENGTH,
} from './tag.js';
import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME, transferSyntax } from './uid.js';
import { encodeStrings } from './values.js';
import { copyBytes, hasLongHeader, paddingByte, swapBytes, swapUnit, type VR } from './vr.js';

export type Sink = (chunk: Uint8Array) => void;

export interface WriterOptions {
  /** Keep group length elements (gggg,0000). Off by default: re-encoding changes lengths and they are optional (PS3.5 7.2). */
  readonly keepGroupLengths?: boolean;
}

const BLOCK = 64 * 1024;

export class DataSetWriter implements DataSetHandler {
  private readonly sink: Sink;
  private readonly explicit: boolean;
  private readonly little: boolean;
  private readonly deflate: Deflate | undefined;
  private readonly keepGroupLengths: boolean;
  private out = Buffer.allocUnsafe(BLOCK);
  private used = 0;
  // A streamed value: its swap unit, bytes left, a partial unit carried between chunks, odd padding.
  private unit: 0 | 2 | 4 | 8 = 0;
  private carry: Uint8Array | undefined;
  private streamed = 0;
  private streamedLength = 0;
  private streamedPad = 0;
  private skipping = false;

  constructor(sink: Sink, transferSyntaxUid: string, options: WriterOptions = {}) {
    const ts = transferSyntax(transferSyntaxUid);
    if (!ts) throw new DicomEncodeError(`unknown transfer syntax ${transferSyntaxUid}`);
    this.explicit = ts.explicitVR;
    this.little = ts.littleEndian;
    this.keepGroupLengths = options.keepGroupLengths ?? false;
    if (ts.deflated) {
      this.deflate = new Deflate({ level: 6 }, (data) => {
        if (data.length > 0) sink(data);
      });
      this.sink = (chunk) => this.deflate?.push(chunk, false);
    } else this.sink = sink;
  }

  // --- byte output ---------------------------------------------------------------------------

  private flush(): void {
    if (this.used === 0) return;
    // The sink may keep the chunk: hand over this block and start a new one.
    const chunk = this.out.subarray(0, this.used);
    this.out = Buffer.allocUnsafe(BLOCK);
    this.used = 0;
    this.sink(chunk);
  }

  private room(n: number): void {
    if (this.used + n > this.out.length) this.flush();
  }

  private bytes(b: Uint8Array): void {
    if (b.length > BLOCK / 4) {
      this.flush();
      this.sink(b);
      return;
    }
    this.room(b.length);
    this.out.set(b, this.used);
    this.used += b.length;
  }

  private u16(v: number): void {
    this.room(2);
    if (this.little) this.out.writeUInt16LE(v, this.used);
    else this.out.writeUInt16BE(v, this.used);
    this.used += 2;
  }

  private u32(v: number): void {
    this.room(4);
    if (this.little) this.out.writeUInt32LE(v >>> 0, this.used);
    else this.out.writeUInt32BE(v >>> 0, this.used);
    this.used += 4;
  }

  private tag(tag: Tag): void {
    this.u16(tag >>> 16);
    this.u16(tag & 0xffff);
  }

  /** An element header (PS3.5 7.1.2 explicit, 7.1.3 implicit). Returns the VR actually written. */
  private header(tag: Tag, vr: VR, length: number): VR {
    this.tag(tag);
    if (!this.explicit) {
      this.u32(length);
      return vr;
    }
    // A value too long for a 16-bit length is written as UN (as DCMTK does).
    const written: VR = !hasLongHeader(vr) && length > 0xffff ? 'UN' : vr;
    this.room(2);
    this.out.write(written, this.used, 'latin1');
    this.used += 2;
    if (hasLongHeader(written)) {
      this.u16(0);
      this.u32(length);
    } else this.u16(length);
    return written;
  }

  // --- DataSetHandler ------------------------------------------------------------------------

  meta(): void {}

  element(tag: Tag, vr: VR, value: Uint8Array): void {
    if (isGroupLengthTag(tag) && !this.keepGroupLengths) return;
    const padded = value.length % 2 === 1 ? value.length + 1 : value.length;
    this.header(tag, vr, padded);
    const unit = this.little ? 0 : swapUnit(vr);
    if (unit !== 0) {
      const swapped = copyBytes(value);
      swapBytes(swapped, unit);
      this.bytes(swapped);
    } else this.bytes(value);
    if (padded !== value.length) this.bytes(PAD[paddingByte(vr)] as Uint8Array);
  }

  valueStart(tag: Tag, vr: VR, length: number): void {
    if (isGroupLengthTag(tag) && !this.keepGroupLengths) {
      this.skipping = true;
      return;
    }
    const padded = length % 2 === 1 ? length + 1 : length;
    this.header(tag, vr, padded);
    this.unit = this.little ? 0 : swapUnit(vr);
    this.carry = undefined;
    this.streamed = 0;
    this.streamedLength = length;
    this.streamedPad = padded === length ? -1 : paddingByte(vr);
  }

  valueChunk(bytes: Uint8Array): void {
    if (this.skipping) return;
    this.streamed += bytes.length;
    if (this.unit === 0) {
      this.bytes(bytes);
      return;
    }
    let data = bytes;
    if (this.carry) {
      data = new Uint8Array(this.carry.length + bytes.length);
      data.set(this.carry, 0);
      data.set(bytes, this.carry.length);
      this.carry = undefined;
    }
    const whole = data.length - (data.length % this.unit);
    if (whole < data.length) this.carry = copyBytes(data, whole);
    const swapped = copyBytes(data, 0, whole);
    swapBytes(swapped, this.unit);
    this.bytes(swapped);
  }

  valueEnd(): void {
    if (this.skipping) {
      this.skipping = false;
      return;
    }
    if (this.carry) this.bytes(this.carry);
    this.carry = undefined;
    if (this.streamed !== this.streamedLength)
      throw new DicomEncodeError(
        `value announced ${this.streamedLength} bytes but ${this.streamed} were written`,
      );
    if (this.streamedPad >= 0) this.bytes(PAD[this.streamedPad] as Uint8Array);
  }

  sequenceStart(tag: Tag): void {
    this.header(tag, 'SQ', UNDEFINED_LENGTH);
  }

  itemStart(): void {
    this.tag(ITEM);
    this.u32(UNDEFINED_LENGTH);
  }

  itemEnd(): void {
    this.tag(ITEM_DELIMITATION);
    this.u32(0);
  }

  sequenceEnd(): void {
    this.tag(SEQUENCE_DELIMITATION);
    this.u32(0);
  }

  fragmentsStart(tag: Tag, vr: VR): void {
    // PS3.5 A.4: encapsulated pixel data exists only in explicit VR little endian syntaxes.
    if (!this.explicit || !this.little)
      throw new DicomEncodeError(
        'encapsulated pixel data cannot be written in a native (uncompressed) transfer syntax',
      );
    this.header(tag, vr, UNDEFINED_LENGTH);
  }

  fragmentStart(length: number): void {
    this.tag(ITEM);
    this.u32(length % 2 === 1 ? length + 1 : length);
    this.unit = 0;
    this.carry = undefined;
    this.streamed = 0;
    this.streamedLength = length;
    this.streamedPad = length % 2 === 1 ? 0 : -1;
  }

  fragmentEnd(): void {
    this.valueEnd();
  }

  fragmentsEnd(): void {
    this.sequenceEnd();
  }

  /** Flushes what is buffered (and finishes the deflate stream). */
  end(): void {
    this.flush();
    this.deflate?.push(new Uint8Array(0), true);
  }
}

const PAD: Record<number, Uint8Array> = { 0: new Uint8Array([0]), 32: new Uint8Array([0x20]) };

/** Walks an in-memory data set in tag order and tells a handler (a writer) what it holds. */
export function emitDataSet(ds: DataSet, handler: DataSetHandler): void {
  for (const e of ds) {
    const v = e.value;
    if (v instanceof Uint8Array) handler.element(e.tag, e.vr, v, -1);
    else if (Array.isArray(v)) {
      handler.sequenceStart(e.tag, UNDEFINED_LENGTH, -1);
      for (const item of v) {
        handler.itemStart(UNDEFINED_LENGTH, -1);
        emitDataSet(item, handler);
        handler.itemEnd();
      }
      handler.sequenceEnd();
    } else if (v.kind === 'fragments') {
      handler.fragmentsStart(e.tag, e.vr, -1);
      for (const f of v.fragments) {
        handler.fragmentStart(f.length, -1);
        if (f.length > 0) handler.valueChunk(f);
        handler.fragmentEnd();
      }
      handler.fragmentsEnd();
    } else {
      throw new DicomEncodeError(
        `value of ${e.tag.toString(16).padStart(8, '0')} was not loaded (bulk data reference)`,
      );
    }
  }
}

/** Collects a writer's output into one buffer (for small data sets: command sets, queries, tests). */
export function encodeDataSet(
  ds: DataSet,
  transferSyntaxUid: string,
  options: WriterOptions = {},
): Uint8Array {
  const chunks: Uint8Array[] = [];
  const writer = new DataSetWriter((c) => chunks.push(c), transferSyntaxUid, options);
  emitDataSet(ds, writer);
  writer.end();
  return Buffer.concat(chunks);
}

export interface FileMetaFields {
  readonly mediaStorageSopClassUid: string;
  readonly mediaStorageSopInstanceUid: string;
  readonly transferSyntaxUid: string;
  readonly sourceApplicationEntityTitle?: string;
  /** Other meta elements to keep (e.g. from the source file); ours replace theirs where both exist. */
  readonly extra?: DataSet;
}

/**
 * The 128-byte preamble, "DICM" and the file meta information group in Explicit VR LE
 * (PS3.10 7.1), with a correct group length and our implementation class UID and version name.
 */
export function encodeFileMeta(fields: FileMetaFields): Uint8Array {
  const chunks: Uint8Array[] = [];
  const w = new DataSetWriter((c) => chunks.push(c), '1.2.840.10008.1.2.1');
  const elements = new Map<Tag, [VR, Uint8Array]>();
  if (fields.extra) {
    for (const e of fields.extra) {
      if (e.value instanceof Uint8Array && e.tag !== TAG.FileMetaInformationGroupLength)
        elements.set(e.tag, [e.vr, e.value]);
    }
  }
  const str = (vr: VR, s: string): [VR, Uint8Array] => [vr, encodeStrings([s], vr, [])];
  elements.set(TAG.FileMetaInformationVersion, ['OB', new Uint8Array([0, 1])]);
  elements.set(TAG.MediaStorageSOPClassUID, str('UI', fields.mediaStorageSopClassUid));
  elements.set(TAG.MediaStorageSOPInstanceUID, str('UI', fields.mediaStorageSopInstanceUid));
  elements.set(TAG.TransferSyntaxUID, str('UI', fields.transferSyntaxUid));
  elements.set(TAG.ImplementationClassUID, str('UI', IMPLEMENTATION_CLASS_UID));
  elements.set(TAG.ImplementationVersionName, str('SH', IMPLEMENTATION_VERSION_NAME));
  if (fields.sourceApplicationEntityTitle)
    elements.set(TAG.SourceApplicationEntityTitle, str('AE', fields.sourceApplicationEntityTitle));
  for (const tag of [...elements.keys()].sort((a, b) => a - b)) {
    const [vr, value] = elements.get(tag) as [VR, Uint8Array];
    w.element(tag, vr, value);
  }
  w.end();
  const body = Buffer.concat(chunks);
  const head = Buffer.alloc(132 + 12);
  head.write('DICM', 128, 'latin1');
  head.writeUInt16LE(0x0002, 132);
  head.writeUInt16LE(0x0000, 134);
  head.write('UL', 136, 'latin1');
  head.writeUInt16LE(4, 138);
  head.writeUInt32LE(body.length, 140);
  return Buffer.concat([head, body]);
}

/** A whole Part-10 file in memory (for small objects and tests; files are written by streaming). */
export function encodePart10(
  ds: DataSet,
  transferSyntaxUid: string,
  meta?: Partial<FileMetaFields>,
): Uint8Array {
  const sopClass = meta?.mediaStorageSopClassUid ?? ds.string(TAG.SOPClassUID) ?? '';
  const sopInstance = meta?.mediaStorageSopInstanceUid ?? ds.string(TAG.SOPInstanceUID) ?? '';
  const head = encodeFileMeta({
    ...meta,
    mediaStorageSopClassUid: sopClass,
    mediaStorageSopInstanceUid: sopInstance,
    transferSyntaxUid,
  });
  return Buffer.concat([head, encodeDataSet(ds, transferSyntaxUid)]);
}
