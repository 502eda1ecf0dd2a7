/**
 * The one way an object comes into the archive (ARCHITECTURE.md decision 7): C-STORE, STOW-RS,
 * the REST upload and import all write the object's bytes into an IngestStream, a Node Writable
 * with backpressure. On the way the stream writes our file meta and the data set bytes exactly
 * as received into a temporary object file, and parses them to check them and to keep the header
 * for the index (values over HEADER_VALUE_LIMIT are not kept in memory). When the input ends the
 * archive commits the file (fsync, rename, folder fsync), indexes it, and only then resolves
 * `outcome` and emits 'finish' (decision 3: durable before success).
 *
 * Expected failures (out of space, does not parse, UID mismatch, duplicate refused, index down)
 * never error the stream: the rest of the input is read and dropped, so that a DIMSE receiver
 * can go on to the end of the message, and `outcome` carries the ArchiveError.
 */
import { Writable } from 'node:stream';
import { DicomParseError } from '../core/errors.js';
import { err, type Result } from '../core/result.js';
import type { DataSet } from '../dicom/dataset.js';
import { TAG } from '../dicom/dictionary.js';
import { DicomParser } from '../dicom/parser.js';
import { encodeFileMeta } from '../dicom/writer.js';
import { ArchiveError } from './errors.js';
import { type InstanceMetadataDocs, MetadataCapture } from './index/capture.js';
import type { ObjectWriter } from './store.js';

/** Data set bytes held before the file meta is written, while waiting for the SOP UIDs (they sit in group 0008). */
const UID_WAIT_LIMIT = 1024 * 1024;

/** PS3.10 7.1: 128-byte preamble, "DICM", then (0002,0000) UL of 12 bytes in Explicit VR LE. */
const PART10_HEAD = 128 + 4 + 12;

/** How an object came in (the `via` of the 'object-received' event). */
export type IngestVia = 'C-STORE' | 'STOW-RS' | 'upload' | 'import';

/**
 * What to do with an object whose SOP Instance UID is archived already:
 * - keep (default): keep the archived object, drop the new one, report `duplicate` (the Storage
 *   SCP answers a warning): a resent object does not silently change what was read already;
 * - replace: archive the new object in place of the old one;
 * - reject: drop the new one and fail with ERR_ARCHIVE_DUPLICATE.
 */
export type DuplicatePolicy = 'keep' | 'replace' | 'reject';

export interface IngestRequest {
  /**
   * 'dataset' (default): the bytes are a data set in `transferSyntaxUid` (a C-STORE data set).
   * 'part10': the bytes are a Part-10 file (STOW-RS); its file meta is read and replaced by ours.
   */
  readonly format?: 'dataset' | 'part10';
  /** The transfer syntax of the data set; required for 'dataset', taken from the file meta for 'part10'. */
  readonly transferSyntaxUid?: string;
  /** UIDs the caller was told (the C-STORE command's Affected SOP Class/Instance UID): checked against the data set. */
  readonly expected?: { readonly sopClassUid?: string; readonly sopInstanceUid?: string };
  /** Who sent it: the calling AE title, the user; null when unknown. */
  readonly source: string | null;
  readonly via: IngestVia;
  /** The sender's address and authenticated user, when known (the 'object-received' event's). */
  readonly remoteAddress?: string | undefined;
  readonly user?: string;
  /** Default: now. */
  readonly receivedAt?: Date;
  /** Overrides the archive's policy for this object. */
  readonly duplicatePolicy?: DuplicatePolicy;
}

/** What an IngestStream hands the archive once its input has ended and parsed. */
export interface ReceivedObject {
  readonly handle: ObjectWriter;
  readonly header: DataSet;
  readonly transferSyntaxUid: string;
  /** Bytes of the data set (file meta not counted). */
  readonly bytes: number;
  /** The instance's WADO-RS documents with file offsets (capture.ts), made on demand. */
  readonly metadata: () => InstanceMetadataDocs;
}

/** The archive side of an IngestStream: begins the object file, and settles a received object. */
export interface IngestSink<T> {
  begin(): Promise<Result<ObjectWriter, ArchiveError>>;
  settle(received: ReceivedObject): Promise<Result<T, ArchiveError>>;
}

/** The writable end of one ingest (made by Archive.createIngestStream). */
export class IngestStream<T> extends Writable {
  /** Resolves once the object is durable and indexed, or dropped with the reason. Never rejects. */
  readonly outcome: Promise<Result<T, ArchiveError>>;
  private resolveOutcome!: (r: Result<T, ArchiveError>) => void;
  private readonly sink: IngestSink<T>;
  private readonly request: IngestRequest;
  /**
   * The header (no value over 64 KiB, no binary value over 1 KiB is kept in memory) and where each
   * bulk value and frame sits in the file (capture.ts), as reconcile reads them, so both paths agree.
   */
  private readonly builder: MetadataCapture;
  private parser: DicomParser;
  /** Bytes of the input before the data set (the Part-10 preamble and meta we drop). */
  private dataSetStart = 0;
  /** Bytes of the file meta we wrote before the data set. */
  private metaLength = 0;
  private handle: ObjectWriter | undefined;
  /**
   * The first failure of the object (no room to begin it, does not parse): from then on input is
   * read and dropped. A write error (disk full) stays in the file writer and is reported after
   * parse errors and UID mismatches, as the Storage SCP always answered.
   */
  private failure: ArchiveError | undefined;
  private aborting: Promise<void> | undefined;
  private finishing: Promise<Result<T, ArchiveError>> | undefined;
  /** Part-10 input: bytes before the data set (preamble and meta) still to skip; -1 until known. */
  private skip: number;
  private head: Uint8Array[] = [];
  private headBytes = 0;
  /** Data set bytes held until the file meta can be written. */
  private held: Uint8Array[] | undefined = [];
  private heldBytes = 0;
  private dataBytes = 0;
  private settled = false;

  /** @internal */
  constructor(sink: IngestSink<T>, request: IngestRequest) {
    super({ highWaterMark: 256 * 1024 });
    this.sink = sink;
    this.request = request;
    this.outcome = new Promise((resolve) => {
      this.resolveOutcome = resolve;
    });
    const part10 = request.format === 'part10';
    if (!part10 && !request.transferSyntaxUid)
      throw new TypeError("ingest of a raw data set needs its transfer syntax ('dataset' format)");
    this.skip = part10 ? -1 : 0;
    this.builder = new MetadataCapture(part10 ? undefined : request.transferSyntaxUid);
    this.parser = new DicomParser(
      this.builder,
      part10
        ? { format: 'part10' }
        : { format: 'dataset', transferSyntax: request.transferSyntaxUid as string },
    );
    const parser = this.parser;
    this.builder.track(() => parser.offset);
  }

  override _construct(callback: (error?: Error | null) => void): void {
    this.sink.begin().then(
      (begun) => {
        if (begun.ok) this.handle = begun.value;
        else this.failure = begun.error;
        callback();
      },
      (e: unknown) => callback(e instanceof Error ? e : new Error(String(e))),
    );
  }

  override _write(
    chunk: Uint8Array,
    _encoding: BufferEncoding,
    callback: (error?: Error | null) => void,
  ): void {
    const wait = this.take(chunk);
    if (wait) wait.then(() => callback(), callback);
    else callback();
  }

  override _writev(
    chunks: { chunk: Uint8Array; encoding: BufferEncoding }[],
    callback: (error?: Error | null) => void,
  ): void {
    let wait: Promise<void> | undefined;
    for (const c of chunks) wait = this.take(c.chunk) ?? wait;
    if (wait) wait.then(() => callback(), callback);
    else callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.finishing = this.finish();
    this.finishing.then(
      (r) => {
        this.settle(r);
        callback();
      },
      (e: unknown) => callback(e instanceof Error ? e : new Error(String(e))),
    );
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.settled) {
      callback(error);
      return;
    }
    if (this.finishing) {
      // The input was complete: the commit under way decides.
      const done = (r: Result<T, ArchiveError>) => {
        this.settle(r);
        callback(error);
      };
      this.finishing.then(done, (e: unknown) =>
        done(err(new ArchiveError('ERR_ARCHIVE_STATE', `ingest failed: ${String(e)}`, { cause: e }))),
      );
      return;
    }
    const cause = error ?? new Error('the ingest stream was destroyed before its end');
    const aborted = new ArchiveError('ERR_ARCHIVE_ABORTED', `the input ended early: ${cause.message}`, {
      cause,
    });
    const handle = this.handle;
    this.handle = undefined;
    (handle ? handle.abort() : Promise.resolve()).then(
      () => {
        this.settle(err(aborted));
        callback(error);
      },
      () => {
        this.settle(err(aborted));
        callback(error);
      },
    );
  }

  private settle(r: Result<T, ArchiveError>): void {
    if (this.settled) return;
    this.settled = true;
    this.resolveOutcome(r);
  }

  /** Parses a chunk and passes its data set bytes to the file; a promise when the file's queue is full. */
  private take(chunk: Uint8Array): Promise<void> | undefined {
    if (chunk.length === 0) return undefined;
    this.parse(chunk, false);
    if (this.skip !== 0) {
      const rest = this.skipHead(chunk);
      if (rest === undefined) return undefined;
      chunk = rest;
    }
    this.dataBytes += chunk.length;
    if (this.held !== undefined) {
      this.held.push(chunk);
      this.heldBytes += chunk.length;
      if (!this.canWriteMeta()) return undefined;
      return this.writeMeta();
    }
    const handle = this.handle;
    if (!handle || this.failure) return undefined;
    return handle.write(chunk) ? undefined : handle.drain();
  }

  /** Part-10 input: drops the preamble and meta (PS3.10 7.1, sized by its group length); the data set bytes after them. */
  private skipHead(chunk: Uint8Array): Uint8Array | undefined {
    if (this.skip < 0) {
      this.head.push(chunk);
      this.headBytes += chunk.length;
      if (this.headBytes < PART10_HEAD) return undefined;
      const head = Buffer.concat(this.head, this.headBytes);
      this.head = [];
      const dicm = head.toString('latin1', 128, 132) === 'DICM';
      const groupLength = head.readUInt16LE(132) === 0x0002 && head.readUInt16LE(134) === 0x0000;
      if (!dicm || !groupLength) {
        this.fail(
          new ArchiveError(
            'ERR_ARCHIVE_UNPARSABLE',
            'not a Part-10 file with File Meta Information Group Length (PS3.10 7.1)',
          ),
        );
        this.skip = Number.POSITIVE_INFINITY;
        return undefined;
      }
      this.skip = PART10_HEAD + head.readUInt32LE(140);
      this.dataSetStart = this.skip;
      // What came past the meta in this chunk, as if it arrived alone.
      chunk = head;
      this.headBytes = 0;
    }
    if (chunk.length <= this.skip) {
      this.skip -= chunk.length;
      return undefined;
    }
    const rest = chunk.subarray(this.skip);
    this.skip = 0;
    return rest;
  }

  private parse(chunk: Uint8Array | undefined, end: boolean): void {
    if (this.failure) return;
    try {
      if (end) this.parser.end();
      else this.parser.write(chunk as Uint8Array);
    } catch (e) {
      if (!(e instanceof DicomParseError)) throw e;
      this.fail(
        new ArchiveError(end ? 'ERR_ARCHIVE_TRUNCATED' : 'ERR_ARCHIVE_UNPARSABLE', e.message, { cause: e }),
      );
    }
  }

  /** Records the first failure and drops the object file. */
  private fail(error: ArchiveError): void {
    if (this.failure) return;
    this.failure = error;
    this.held = undefined;
    const handle = this.handle;
    this.handle = undefined;
    if (handle) this.aborting = handle.abort();
  }

  private expectedUids(): { sopClassUid: string; sopInstanceUid: string } | undefined {
    const e = this.request.expected;
    if (e?.sopClassUid !== undefined && e.sopInstanceUid !== undefined)
      return { sopClassUid: e.sopClassUid, sopInstanceUid: e.sopInstanceUid };
    const root = this.builder.root;
    const sopClassUid = e?.sopClassUid ?? root.string(TAG.SOPClassUID);
    const sopInstanceUid = e?.sopInstanceUid ?? root.string(TAG.SOPInstanceUID);
    if (sopClassUid === undefined || sopInstanceUid === undefined) return undefined;
    return { sopClassUid, sopInstanceUid };
  }

  private canWriteMeta(): boolean {
    return this.expectedUids() !== undefined || this.heldBytes >= UID_WAIT_LIMIT;
  }

  /** Writes our file meta (PS3.10 7.1) and the data set bytes held so far. */
  private writeMeta(): Promise<void> | undefined {
    const held = this.held ?? [];
    this.held = undefined;
    this.heldBytes = 0;
    const handle = this.handle;
    if (!handle || this.failure) return undefined;
    const uids = this.expectedUids();
    const meta = encodeFileMeta({
      mediaStorageSopClassUid: uids?.sopClassUid ?? '',
      mediaStorageSopInstanceUid: uids?.sopInstanceUid ?? '',
      transferSyntaxUid: this.transferSyntax(),
      // Source AE Title is an AE title: only a C-STORE's calling AE is one (STOW-RS has a user or an address).
      ...(this.request.via === 'C-STORE' && this.request.source && this.request.source.length <= 16
        ? { sourceApplicationEntityTitle: this.request.source }
        : {}),
    });
    this.metaLength = meta.length;
    handle.write(meta);
    let full = false;
    for (const c of held) full = !handle.write(c);
    return full ? handle.drain() : undefined;
  }

  private transferSyntax(): string {
    return this.request.transferSyntaxUid ?? this.builder.transferSyntax;
  }

  private async finish(): Promise<Result<T, ArchiveError>> {
    this.parse(undefined, true);
    if (this.skip !== 0 && !this.failure)
      this.fail(
        new ArchiveError('ERR_ARCHIVE_TRUNCATED', 'the input ended inside the file meta information'),
      );
    if (this.held !== undefined && !this.failure) await this.writeMeta();
    const header = this.builder.root;
    const expected = this.request.expected;
    if (!this.failure && expected) {
      const mismatch =
        expected.sopClassUid !== undefined && header.string(TAG.SOPClassUID) !== expected.sopClassUid
          ? { which: 'SOP Class', tag: TAG.SOPClassUID }
          : expected.sopInstanceUid !== undefined &&
              header.string(TAG.SOPInstanceUID) !== expected.sopInstanceUid
            ? { which: 'SOP Instance', tag: TAG.SOPInstanceUID }
            : undefined;
      if (mismatch)
        this.fail(
          new ArchiveError(
            'ERR_ARCHIVE_UID_MISMATCH',
            `the ${mismatch.which} UID of the data set is not the one expected`,
            { tag: mismatch.tag },
          ),
        );
    }
    const handle = this.handle;
    if (!this.failure && handle?.error) this.fail(handle.error);
    if (this.failure || !handle) {
      await this.aborting;
      return err(this.failure ?? new ArchiveError('ERR_ARCHIVE_STATE', 'no object file was begun'));
    }
    this.handle = undefined;
    return this.sink.settle({
      handle,
      header,
      transferSyntaxUid: this.transferSyntax(),
      bytes: this.dataBytes,
      // Parser offsets count the input's own preamble and meta; the file has ours instead.
      metadata: () => this.builder.finish(this.metaLength - this.dataSetStart),
    });
  }
}
