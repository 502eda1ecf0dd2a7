/**
 * Helpers of the WADO-RS metadata, bulk data and frame routes: the stored layout of an instance
 * (with the read-the-file-once fallback for rows indexed before it was kept), reading values by
 * offset and length (little endian, as PS3.18 8.7.3.3.2 wants them), the media types of frames per
 * transfer syntax (PS3.18 8.7.3.5.2, Table 8.7.3-5); multipart/related bodies are multipart-writer.ts's.
 */
import type { InstanceMetadataRow, MetadataScope } from '../../archive/index/archive-index.js';
import {
  type BulkLayout,
  type InstanceMetadataDocs,
  type PixelLayout,
  parseBulkLayout,
} from '../../archive/index/capture.js';
import { captureObjectFile } from '../../archive/reconcile.js';
import type { ObjectHandle, ObjectStore } from '../../archive/store.js';
import type { DataSetHandler } from '../../dicom/parser.js';
import { DicomParser } from '../../dicom/parser.js';
import { type Tag, tagHex } from '../../dicom/tag.js';
import { swapBytes } from '../../dicom/vr.js';
import { httpError } from '../errors.js';
import type { DicomwebContext } from './context.js';

/** Explicit VR Little Endian: what native frames and bulk data are sent in (PS3.18 8.7.3.5.2 default). */
export const NATIVE_FRAME_SYNTAX = '1.2.840.10008.1.2.1';

const NATIVE_SYNTAXES = new Set([
  '1.2.840.10008.1.2',
  '1.2.840.10008.1.2.1',
  '1.2.840.10008.1.2.2',
  '1.2.840.10008.1.2.1.99',
]);

/** PS3.18 Table 8.7.3-5: the media type of a compressed frame in each transfer syntax. */
const FRAME_MEDIA_TYPES: Readonly<Record<string, string>> = {
  '1.2.840.10008.1.2.4.50': 'image/jpeg',
  '1.2.840.10008.1.2.4.51': 'image/jpeg',
  '1.2.840.10008.1.2.4.57': 'image/jpeg',
  '1.2.840.10008.1.2.4.70': 'image/jpeg',
  '1.2.840.10008.1.2.4.80': 'image/jls',
  '1.2.840.10008.1.2.4.81': 'image/jls',
  '1.2.840.10008.1.2.4.90': 'image/jp2',
  '1.2.840.10008.1.2.4.91': 'image/jp2',
  '1.2.840.10008.1.2.4.92': 'image/jpx',
  '1.2.840.10008.1.2.4.93': 'image/jpx',
  '1.2.840.10008.1.2.4.201': 'image/jphc',
  '1.2.840.10008.1.2.4.202': 'image/jphc',
  '1.2.840.10008.1.2.4.203': 'image/jphc',
  '1.2.840.10008.1.2.4.110': 'image/jxl',
  '1.2.840.10008.1.2.4.111': 'image/jxl',
  '1.2.840.10008.1.2.4.112': 'image/jxl',
  '1.2.840.10008.1.2.5': 'image/dicom-rle',
  '1.2.840.10008.1.2.4.100': 'video/mpeg',
  '1.2.840.10008.1.2.4.101': 'video/mpeg',
  '1.2.840.10008.1.2.4.102': 'video/mp4',
  '1.2.840.10008.1.2.4.103': 'video/mp4',
  '1.2.840.10008.1.2.4.104': 'video/mp4',
  '1.2.840.10008.1.2.4.105': 'video/mp4',
  '1.2.840.10008.1.2.4.106': 'video/mp4',
  '1.2.840.10008.1.2.4.107': 'video/H265',
  '1.2.840.10008.1.2.4.108': 'video/H265',
};

/** True for the transfer syntaxes whose pixel data is native (not encapsulated). */
export function isNativeSyntax(ts: string): boolean {
  return NATIVE_SYNTAXES.has(ts);
}

/** The media type of a stored compressed frame; application/octet-stream for a syntax without one. */
export function frameMediaType(ts: string): string {
  return FRAME_MEDIA_TYPES[ts] ?? 'application/octet-stream';
}

/**
 * An archived object, read through its store (store.openObject: the store decrypts what is
 * encrypted at rest), never by opening its file here.
 */
export interface ArchivedObject {
  readonly store: ObjectStore;
  /** The object's path as the index keeps it. */
  readonly path: string;
}

/** One instance's row and its parsed bulk layout. */
export interface LoadedInstance {
  readonly row: InstanceMetadataRow;
  readonly layout: BulkLayout;
  readonly object: ArchivedObject;
}

/** Parsed layouts by object file path (a replaced object gets a new file, so a path's layout never changes). */
const layoutCache = new Map<string, BulkLayout>();
const LAYOUT_CACHE_SIZE = 512;

/**
 * The instance's row and bulk layout: 404 when the instance is not in that series of that study.
 * A row indexed before the layout was kept reads its file once and stores what it found.
 */
export async function loadInstance(
  context: DicomwebContext,
  scope: Required<MetadataScope>,
): Promise<LoadedInstance> {
  const archive = context.archive;
  const row = await archive.index.instanceBulk(scope);
  if (!row)
    throw httpError(
      404,
      'ERR_HTTP_NOT_FOUND',
      `no instance ${scope.sopInstanceUid} in series ${scope.seriesInstanceUid} of study ${scope.studyInstanceUid}`,
    );
  const object: ArchivedObject = { store: archive.store, path: row.path };
  const absolutePath = archive.store.absolutePath(row.path);
  let layout = layoutCache.get(absolutePath);
  if (!layout) {
    layout = parseBulkLayout(row.bulk);
    if (!layout) layout = parseBulkLayout((await backfill(context, row)).bulk);
    if (!layout) throw new Error(`the bulk layout of ${row.sopInstanceUid} cannot be read`);
    if (layoutCache.size >= LAYOUT_CACHE_SIZE) layoutCache.delete(layoutCache.keys().next().value as string);
    layoutCache.set(absolutePath, layout);
  }
  return { row, layout, object };
}

/** Reads an object file indexed before migration 4 once, and keeps its documents in the index. */
export async function backfill(
  context: DicomwebContext,
  row: InstanceMetadataRow,
): Promise<InstanceMetadataDocs> {
  const file = await captureObjectFile(context.archive.store, row.path);
  const docs = file.metadata();
  try {
    await context.archive.index.storeInstanceMetadata(row.sopInstanceUid, docs);
  } catch (e) {
    context.logger.warn(
      { err: e, sopInstanceUid: row.sopInstanceUid },
      'could not keep the metadata read from the file',
    );
  }
  return docs;
}

// --- reading values ------------------------------------------------------------------------------

const READ_CHUNK = 1024 * 1024;

/**
 * Bytes [start, end) of a value made of `ranges` of the file (one range, or the fragments of an
 * encapsulated value, concatenated), little endian: a big endian value is swapped by `swap`.
 */
export async function* readValue(
  object: ArchivedObject,
  ranges: ReadonlyArray<readonly [number, number]>,
  swap: 0 | 2 | 4 | 8,
  start = 0,
  end = ranges.reduce((n, r) => n + r[1], 0),
): AsyncGenerator<Buffer> {
  if (end <= start) return;
  const file = await files.acquire(object);
  try {
    let base = 0;
    for (const [offset, length] of ranges) {
      const from = Math.max(start, base);
      const to = Math.min(end, base + length);
      if (from < to) yield* readRange(file, offset, from - base, to - base, swap);
      base += length;
      if (base >= end) break;
    }
  } finally {
    files.release(object);
  }
}

/**
 * Open object files, kept for the next request (a viewer asks for the frames of one instance after
 * another): an open and a close less per frame. A file is never rewritten in place (a replaced
 * object gets a new path) and the index is asked before a file is read, so a kept handle is safe.
 */
class OpenFiles {
  private readonly open = new Map<string, { fh: Promise<ObjectHandle>; users: number; used: number }>();
  private sweeper: NodeJS.Timeout | undefined;

  /** At most `size` handles, none kept unused longer than about `idleMs` (a removed file's space is freed). */
  constructor(
    private readonly size: number,
    private readonly idleMs: number,
  ) {}

  private sweep(): void {
    const before = Date.now() - this.idleMs;
    for (const [path, e] of this.open)
      if (e.users === 0 && e.used < before) {
        this.open.delete(path);
        e.fh.then(
          (fh) => fh.close(),
          () => undefined,
        );
      }
    if (this.open.size === 0 && this.sweeper) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  acquire(object: ArchivedObject): Promise<ObjectHandle> {
    const path = object.store.absolutePath(object.path);
    let e = this.open.get(path);
    if (e) {
      // Most recently used last.
      this.open.delete(path);
      this.open.set(path, e);
    } else {
      e = { fh: object.store.openObject(object.path), users: 0, used: Date.now() };
      const entry = e;
      e.fh.catch(() => {
        if (this.open.get(path) === entry) this.open.delete(path);
      });
      this.open.set(path, e);
      this.trim();
      if (!this.sweeper) {
        this.sweeper = setInterval(() => this.sweep(), this.idleMs);
        this.sweeper.unref();
      }
    }
    e.users++;
    return e.fh;
  }

  release(object: ArchivedObject): void {
    const e = this.open.get(object.store.absolutePath(object.path));
    if (e) {
      e.users--;
      e.used = Date.now();
    }
    this.trim();
  }

  private trim(): void {
    if (this.open.size <= this.size) return;
    for (const [path, e] of this.open) {
      if (this.open.size <= this.size) break;
      if (e.users > 0) continue;
      this.open.delete(path);
      e.fh.then(
        (fh) => fh.close(),
        () => undefined,
      );
    }
  }
}

const files = new OpenFiles(64, 5000);

/** Bytes [from, to) of one range of the file starting at `offset`; swapped values are read in whole units. */
async function* readRange(
  fh: ObjectHandle,
  offset: number,
  from: number,
  to: number,
  swap: 0 | 2 | 4 | 8,
): AsyncGenerator<Buffer> {
  const unit = swap === 0 ? 1 : swap;
  const alignedFrom = from - (from % unit);
  let position = alignedFrom;
  while (position < to) {
    const size = Math.min(READ_CHUNK, to - position + ((unit - ((to - position) % unit)) % unit));
    const buf = Buffer.allocUnsafe(size);
    const { bytesRead } = await fh.read(buf, 0, size, offset + position);
    if (bytesRead === 0) throw new Error('the object file ends before the value');
    let chunk = buf.subarray(0, bytesRead);
    if (swap !== 0) swapBytes(chunk, swap);
    const skip = position < from ? from - position : 0;
    const keep = Math.min(chunk.length, to - position);
    chunk = chunk.subarray(skip, keep);
    position += bytesRead;
    if (chunk.length > 0) yield chunk;
  }
}

/** Reads the whole of [start, end) into one buffer (a single frame). */
export async function readValueWhole(
  object: ArchivedObject,
  ranges: ReadonlyArray<readonly [number, number]>,
  swap: 0 | 2 | 4 | 8,
  start: number,
  end: number,
): Promise<Buffer> {
  const out = Buffer.allocUnsafe(Math.max(0, end - start));
  await readValueInto(object, ranges, swap, start, end, out, 0);
  return out;
}

/**
 * Reads [start, end) of the value into `target` at `at` (no copy for unswapped values: the file
 * is read straight into place). Returns the bytes written.
 */
export async function readValueInto(
  object: ArchivedObject,
  ranges: ReadonlyArray<readonly [number, number]>,
  swap: 0 | 2 | 4 | 8,
  start: number,
  end: number,
  target: Buffer,
  at: number,
): Promise<number> {
  if (swap !== 0) {
    let o = at;
    for await (const c of readValue(object, ranges, swap, start, end)) {
      c.copy(target, o);
      o += c.length;
    }
    return o - at;
  }
  const file = await files.acquire(object);
  try {
    let base = 0;
    let o = at;
    for (const [offset, length] of ranges) {
      const from = Math.max(start, base);
      const to = Math.min(end, base + length);
      for (let p = from; p < to; ) {
        const { bytesRead } = await file.read(target, o, to - p, offset + (p - base));
        if (bytesRead === 0) throw new Error('the object file ends before the value');
        p += bytesRead;
        o += bytesRead;
      }
      base += length;
      if (base >= end) break;
    }
    return o - at;
  } finally {
    files.release(object);
  }
}

/**
 * Bytes [start, end) of the value at `path` read by parsing the file (deflated data sets, whose
 * offsets are in the inflated stream). The parser delivers values little endian. Holds the slice.
 */
export async function readValueByParsing(
  object: ArchivedObject,
  path: string,
  start: number,
  end: number,
): Promise<Buffer> {
  const reader = new ValueSlice(path, start, end);
  const parser = new DicomParser(reader, { format: 'part10' });
  // Stopping the iteration early (the value is complete) closes the object.
  for await (const chunk of object.store.readObject(object.path)) {
    parser.write(Buffer.from(chunk));
    if (reader.done) break;
  }
  if (!reader.done) parser.end();
  return Buffer.concat(reader.chunks);
}

/** A handler that keeps bytes [start, end) of one value, found by its tag path. */
class ValueSlice implements DataSetHandler {
  readonly chunks: Buffer[] = [];
  done = false;
  private readonly prefixes: string[] = [''];
  private readonly seqs: Array<{ prefix: string; items: number }> = [];
  private at = -1;

  constructor(
    private readonly path: string,
    private readonly start: number,
    private readonly end: number,
  ) {}

  private here(tag: Tag): string {
    return `${this.prefixes[this.prefixes.length - 1] ?? ''}${tagHex(tag)}`;
  }

  private take(bytes: Uint8Array): void {
    const from = Math.max(this.start - this.at, 0);
    const to = Math.min(this.end - this.at, bytes.length);
    if (from < to) this.chunks.push(Buffer.from(bytes.subarray(from, to)));
    this.at += bytes.length;
    if (this.at >= this.end) this.done = true;
  }

  element(tag: Tag, _vr: unknown, value: Uint8Array): void {
    if (this.done || this.here(tag) !== this.path) return;
    this.at = 0;
    this.take(value);
    this.done = true;
  }
  valueStart(tag: Tag): void {
    if (!this.done && this.here(tag) === this.path) this.at = 0;
  }
  valueChunk(bytes: Uint8Array): void {
    if (this.at >= 0 && !this.done) this.take(bytes);
  }
  valueEnd(): void {
    if (this.at >= 0) this.done = true;
  }
  sequenceStart(tag: Tag): void {
    this.seqs.push({ prefix: `${this.here(tag)}.`, items: 0 });
  }
  itemStart(): void {
    const s = this.seqs[this.seqs.length - 1];
    this.prefixes.push(`${s?.prefix ?? ''}${s ? s.items++ : 0}.`);
  }
  itemEnd(): void {
    this.prefixes.pop();
  }
  sequenceEnd(): void {
    this.seqs.pop();
  }
  fragmentsStart(): void {}
  fragmentStart(): void {}
  fragmentEnd(): void {}
  fragmentsEnd(): void {}
}

// --- frames --------------------------------------------------------------------------------------

/** The bytes of frame `n` (1-based) as [start, end) of the pixel value, for native data. */
export function nativeFrameSpan(
  pixels: Extract<PixelLayout, { kind: 'native' }>,
  n: number,
): [number, number] {
  const bytes = pixels.frameBits / 8;
  return [(n - 1) * bytes, n * bytes];
}
