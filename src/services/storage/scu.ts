/**
 * Storage SCU (PS3.4 Annex B): reads a file's header, plans the presentation contexts to propose,
 * and sends the file with C-STORE. The data set is streamed from disk, never loaded whole
 * (ARCHITECTURE.md decision 2): as its bytes are when the peer accepted the file's own transfer
 * syntax, re-encoded on the fly (parser piped into writer) when it accepted only another
 * uncompressed one. As stored, it is read into pooled buffers (BufferPool) one chunk ahead of the
 * send, in reads that end on the peer's PDV boundaries (ChunkReader); a file opened with openFile()
 * is sent from that open, its header bytes reused.
 */
import { type FileHandle, open } from 'node:fs/promises';
import { DicomEncodeError, DicomParseError, PacsError } from '../../core/errors.js';
import type { EventBus } from '../../core/events.js';
import { err, ok, type Result } from '../../core/result.js';
import type { DataSet } from '../../dicom/dataset.js';
import { TAG } from '../../dicom/dictionary.js';
import { type DataSetHandler, DicomParser } from '../../dicom/parser.js';
import { DataSetBuilder } from '../../dicom/reader.js';
import {
  DEFLATED_EXPLICIT_VR_LE,
  describeUid,
  EXPLICIT_VR_BE,
  EXPLICIT_VR_LE,
  IMPLICIT_VR_LE,
  transferSyntax,
} from '../../dicom/uid.js';
import { DataSetWriter } from '../../dicom/writer.js';
import { readChunks } from '../../io/dicom-file.js';
import type { ProposedPresentationContext } from '../../network/association.js';
import type { DimseAssociation } from '../../network/dimse.js';
import { CommandField, Priority } from '../../network/dimse-command.js';
import { Status } from '../../network/dimse-status.js';
import { SEND_HIGH_WATER_MARK } from '../../network/transport.js';

/** PS3.8 9.3.2.2: presentation context IDs are odd numbers 1..255, so at most 128 per association. */
export const MAX_PRESENTATION_CONTEXTS = 128;

/** The uncompressed syntaxes proposed as a fallback for a SOP class, in order of preference. */
export const FALLBACK_TRANSFER_SYNTAXES: readonly string[] = [EXPLICIT_VR_LE, IMPLICIT_VR_LE];

/** Syntaxes whose data sets re-encode without a pixel data codec (the parser reads them all). */
const REENCODABLE: ReadonlySet<string> = new Set([
  IMPLICIT_VR_LE,
  EXPLICIT_VR_LE,
  EXPLICIT_VR_BE,
  DEFLATED_EXPLICIT_VR_LE,
]);

/** Targets for re-encoding, best first: little endian explicit, then the others. */
const REENCODE_TARGETS: readonly string[] = [
  EXPLICIT_VR_LE,
  IMPLICIT_VR_LE,
  DEFLATED_EXPLICIT_VR_LE,
  EXPLICIT_VR_BE,
];

const CHUNK = 256 * 1024;
/** The first read of a header: most headers fit, and the data set's first bytes come with it. */
const HEAD_READ = 16 * 1024;

/** What a header read tells about a file to send. */
export interface FileInfo {
  readonly path: string;
  readonly sopClassUid: string;
  readonly sopInstanceUid: string;
  /** The file's transfer syntax (from its meta; guessed from the bytes for a raw data set). */
  readonly transferSyntaxUid: string;
  /** Byte offset where the data set starts: after preamble and file meta, 0 for a raw data set. */
  readonly dataSetOffset: number;
  /** File size in bytes. */
  readonly size: number;
  /**
   * False when the data set is not encoded as its meta says (implicit VR under an explicit VR
   * UID or the reverse, seen in the field): it is then re-encoded into its declared syntax.
   */
  readonly encodingMatchesSyntax: boolean;
}

export type FileInfoErrorCode =
  /** Not DICOM at all (no meta, no plausible data element). */
  | 'ERR_NOT_DICOM'
  /** DICOM, but its header does not parse. */
  | 'ERR_MALFORMED'
  /** DICOM, but no SOP Class and SOP Instance UID in the data set: nothing a Storage SCP can take. */
  | 'ERR_NOT_STORABLE'
  /** The file cannot be read. */
  | 'ERR_FILE';

export class FileInfoError extends PacsError {
  override readonly code: FileInfoErrorCode;
  constructor(code: FileInfoErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.code = code;
  }
}

/** Builds the header and notes where the data set starts. */
class HeaderBuilder extends DataSetBuilder {
  parser: DicomParser | undefined;
  dataSetOffset = 0;

  constructor() {
    super({ bulkData: 'skip', bulkDataThreshold: 1024 });
  }

  // The parser's offset when it reports the meta is where the data set starts (PS3.10 7.1: the
  // meta is the run of group 0002 elements, whatever its group length says).
  override meta(meta: DataSet, ts: string): void {
    super.meta(meta, ts);
    this.dataSetOffset = this.parser?.offset ?? 0;
  }
}

/**
 * A file opened for sending (openFile): its header read, its handle kept open and the bytes that
 * read took kept, so that the send neither opens the file again nor reads those bytes twice.
 * storeFile() closes it; call close() for a file not sent.
 */
export interface OpenFile extends FileInfo {
  readonly handle: FileHandle;
  /** The first bytes of the file, [0, head.length), read with the header. */
  readonly head: Uint8Array;
  close(): Promise<void>;
}

/** Reads a file's header (up to SOP Instance UID) to learn what to propose and how to send it. */
export async function readFileInfo(path: string): Promise<Result<FileInfo, FileInfoError>> {
  const r = await openFile(path);
  if (!r.ok) return r;
  await r.value.close();
  const { handle: _h, head: _b, close: _c, ...info } = r.value;
  return ok(info);
}

/** readFileInfo(), the file left open for storeFile() (one open per file sent). */
export async function openFile(path: string): Promise<Result<OpenFile, FileInfoError>> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    return err(new FileInfoError('ERR_FILE', (e as Error).message, { cause: e }));
  }
  const r = await inspect(fh, path);
  if (!r.ok) await fh.close().catch(() => undefined);
  return r;
}

async function inspect(fh: FileHandle, path: string): Promise<Result<OpenFile, FileInfoError>> {
  const header = new HeaderBuilder();
  const parser = new DicomParser(header, { stopAtTag: TAG.SOPInstanceUID + 1 });
  header.parser = parser;
  let size: number;
  const read: Buffer[] = [];
  try {
    const s = await fh.stat();
    if (!s.isFile()) return err(new FileInfoError('ERR_FILE', `${path}: not a regular file`));
    size = s.size;
    if (size === 0) return err(new FileInfoError('ERR_NOT_DICOM', 'not DICOM: empty file'));
    // A header usually fits one small read (as readDicomFile does).
    for await (const chunk of readChunks(fh, 0, HEAD_READ)) {
      read.push(chunk);
      parser.write(chunk);
      if (parser.stopped) break;
    }
    parser.end();
  } catch (e) {
    if (e instanceof DicomParseError) {
      return /^not (a )?DICOM/.test(e.message)
        ? err(new FileInfoError('ERR_NOT_DICOM', e.message, { cause: e }))
        : err(new FileInfoError('ERR_MALFORMED', `malformed: ${e.message}`, { cause: e }));
    }
    return err(new FileInfoError('ERR_FILE', (e as Error).message, { cause: e }));
  }
  const sopClassUid = header.root.string(TAG.SOPClassUID);
  const sopInstanceUid = header.root.string(TAG.SOPInstanceUID);
  if (!sopClassUid || !sopInstanceUid) {
    const missing = !sopClassUid ? 'SOP Class UID' : 'SOP Instance UID';
    return err(new FileInfoError('ERR_NOT_STORABLE', `no ${missing} in the data set: not a storable object`));
  }
  let closed = false;
  return ok({
    path,
    sopClassUid,
    sopInstanceUid,
    transferSyntaxUid: parser.transferSyntaxUid,
    dataSetOffset: header.dataSetOffset,
    size,
    encodingMatchesSyntax: !parser.syntaxMismatch,
    handle: fh,
    head: read.length === 1 ? (read[0] as Buffer) : Buffer.concat(read),
    close: async () => {
      if (closed) return;
      closed = true;
      await fh.close();
    },
  });
}

/** True when a data set in this syntax can be re-encoded into another uncompressed syntax. */
export function isReencodable(transferSyntaxUid: string): boolean {
  return REENCODABLE.has(transferSyntaxUid);
}

interface ClassNeeds {
  /** The files' own syntaxes, in first-seen order. */
  readonly own: string[];
  fallback: boolean;
}

function needsOf(files: readonly FileInfo[]): Map<string, ClassNeeds> {
  const byClass = new Map<string, ClassNeeds>();
  for (const f of files) addNeeds(byClass, f);
  return byClass;
}

function addNeeds(byClass: Map<string, ClassNeeds>, f: FileInfo): void {
  let needs = byClass.get(f.sopClassUid);
  if (!needs) {
    needs = { own: [], fallback: false };
    byClass.set(f.sopClassUid, needs);
  }
  if (!needs.own.includes(f.transferSyntaxUid)) needs.own.push(f.transferSyntaxUid);
  if (isReencodable(f.transferSyntaxUid)) needs.fallback = true;
}

/** Contexts a file would add to those already planned. */
function extraContexts(byClass: Map<string, ClassNeeds>, f: FileInfo): number {
  const needs = byClass.get(f.sopClassUid);
  const own = needs?.own.includes(f.transferSyntaxUid) ? 0 : 1;
  const fallback = isReencodable(f.transferSyntaxUid) && !needs?.fallback ? 1 : 0;
  return own + fallback;
}

function countContexts(byClass: Map<string, ClassNeeds>): number {
  let n = 0;
  for (const needs of byClass.values()) n += needs.own.length + (needs.fallback ? 1 : 0);
  return n;
}

/**
 * The presentation contexts to propose for these files. Per SOP class: one context for each of
 * the files' own transfer syntaxes, alone, so that the peer accepts it whenever it supports it
 * (an acceptor picks one syntax of a context by its own preference, which would otherwise turn
 * a big endian or implicit VR file into a re-encoded one); then, when a file of that class can
 * be re-encoded, one context with the uncompressed syntaxes (Explicit VR LE, Implicit VR LE) to
 * fall back on. An encapsulated (compressed) syntax thus always has a context of its own.
 * Use planAssociations() to keep each association within MAX_PRESENTATION_CONTEXTS.
 */
export function planContexts(files: readonly FileInfo[]): ProposedPresentationContext[] {
  const contexts: ProposedPresentationContext[] = [];
  for (const [sopClass, needs] of needsOf(files)) {
    for (const ts of needs.own) contexts.push({ abstractSyntax: sopClass, transferSyntaxes: [ts] });
    if (needs.fallback)
      contexts.push({ abstractSyntax: sopClass, transferSyntaxes: [...FALLBACK_TRANSFER_SYNTAXES] });
  }
  return contexts;
}

/** The files one association sends, and the contexts it proposes for them. */
export interface AssociationPlan {
  readonly contexts: ProposedPresentationContext[];
  readonly files: FileInfo[];
}

/**
 * Groups files into associations of at most `maxContexts` proposed contexts each: a file joins
 * the first planned association that has, or has room for, the contexts it needs (first fit), so
 * a study of a few SOP classes is one association whatever the order of its files.
 */
export function planAssociations(
  files: readonly FileInfo[],
  maxContexts: number = MAX_PRESENTATION_CONTEXTS,
): AssociationPlan[] {
  if (maxContexts < 2) throw new RangeError('an association plan needs room for at least 2 contexts');
  const groups: { byClass: Map<string, ClassNeeds>; count: number; files: FileInfo[] }[] = [];
  for (const f of files) {
    let group = groups.find((g) => g.count + extraContexts(g.byClass, f) <= maxContexts);
    if (!group) {
      group = { byClass: new Map(), count: 0, files: [] };
      groups.push(group);
    }
    addNeeds(group.byClass, f);
    group.count = countContexts(group.byClass);
    group.files.push(f);
  }
  return groups.map((g) => ({ contexts: planContexts(g.files), files: g.files }));
}

export interface StoreOptions {
  /** PS3.7 9.3.1.1; default Priority.Medium. */
  readonly priority?: number;
  /** For the sub-operations of a C-MOVE (PS3.7 9.3.1.1: Move Originator AE Title and Message ID). */
  readonly moveOriginator?: { readonly aeTitle: string; readonly messageId: number };
  /**
   * Parse the data set while it is sent (default true): a file found malformed part-way is not
   * completed; the association is aborted instead, so the peer discards what it received.
   */
  readonly verify?: boolean;
  /** Called with the number of file bytes just read and handed to the association (progress). */
  readonly onBytes?: (bytes: number) => void;
  /** The event stream: one 'object-sent' per file the peer answered (core/events.ts). */
  readonly events?: EventBus;
  /** What the event says the send served (default 'C-STORE'; C-MOVE and C-GET sub-operations). */
  readonly via?: 'C-STORE' | 'C-MOVE' | 'C-GET';
  /** The archived object's study, when known (the event's, for the audit trail). */
  readonly studyInstanceUid?: string;
}

/** The peer's answer to one C-STORE. */
export interface StoreOutcome {
  readonly status: number;
  readonly errorComment?: string;
  /** The transfer syntax the data set was sent in. */
  readonly transferSyntaxUid: string;
  /** True when the data set was re-encoded rather than sent as its bytes are in the file. */
  readonly reencoded: boolean;
  /** Bytes of the data set sent (file meta not counted). */
  readonly bytes: number;
}

export type StoreErrorCode =
  /** No accepted context fits: the association is still usable for other files. */
  | 'ERR_NO_CONTEXT'
  /** The file could not be read or turned out malformed; the association was aborted if it was mid-message. */
  | 'ERR_FILE'
  /** The association ended (or timed out) before the response came; it is no longer usable. */
  | 'ERR_ASSOCIATION';

export class StoreError extends PacsError {
  override readonly code: StoreErrorCode;
  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.code = code;
  }
}

/** Where a file goes: the accepted context, its syntax, and whether the data set is re-encoded for it. */
export interface ContextChoice {
  readonly contextId: number;
  readonly transferSyntaxUid: string;
  readonly reencode: boolean;
}

/** The accepted context to send this file on, and whether its data set must be re-encoded. */
export function chooseContext(
  assoc: Pick<DimseAssociation, 'presentationContexts'>,
  file: FileInfo,
): Result<ContextChoice, StoreError> {
  const usable = assoc.presentationContexts.filter((c) => c.abstractSyntax === file.sopClassUid && c.scu);
  const own = usable.find((c) => c.transferSyntax === file.transferSyntaxUid);
  if (own)
    return ok({
      contextId: own.id,
      transferSyntaxUid: own.transferSyntax,
      reencode: !file.encodingMatchesSyntax,
    });
  if (isReencodable(file.transferSyntaxUid)) {
    for (const ts of REENCODE_TARGETS) {
      const c = usable.find((u) => u.transferSyntax === ts);
      if (c) return ok({ contextId: c.id, transferSyntaxUid: ts, reencode: true });
    }
  }
  const what = describeUid(file.sopClassUid);
  const syntax = describeUid(file.transferSyntaxUid);
  const message =
    usable.length === 0
      ? `the peer accepted no presentation context for ${what}`
      : isReencodable(file.transferSyntaxUid)
        ? `the peer accepted ${what} in no uncompressed transfer syntax`
        : `the peer did not accept ${what} in ${syntax}, and a compressed data set cannot be converted without a transcoder`;
  return err(new StoreError('ERR_NO_CONTEXT', message));
}

/**
 * Sends one file with C-STORE on an open association and returns the peer's status. Expected
 * failures are values: no fitting context or an unreadable file (the association is untouched);
 * a file found malformed part-way, or the association ending (it is then aborted or over: check
 * `association.canSend` before the next file). An OpenFile (openFile()) is sent from its handle
 * and closed, whatever the outcome; a FileInfo is opened here.
 */
export async function storeFile(
  assoc: DimseAssociation,
  file: FileInfo | OpenFile,
  options: StoreOptions = {},
): Promise<Result<StoreOutcome, StoreError>> {
  const opened = 'handle' in file ? file : undefined;
  try {
    const chosen = chooseContext(assoc, file);
    if (!chosen.ok) return chosen;
    const { contextId, transferSyntaxUid, reencode } = chosen.value;
    if (reencode && !transferSyntax(transferSyntaxUid))
      return err(new StoreError('ERR_NO_CONTEXT', `cannot re-encode into ${describeUid(transferSyntaxUid)}`));
    // Opened before the command goes out, so that a file gone since its header was read fails alone.
    let fh: FileHandle;
    try {
      fh = opened?.handle ?? (await open(file.path, 'r'));
    } catch (e) {
      return err(new StoreError('ERR_FILE', (e as Error).message, { cause: e }));
    }
    const head = opened?.head;
    const fileError: { error?: Error } = {};
    const counter = { bytes: 0 };
    const reader = reencode
      ? undefined
      : new ChunkReader(
          fh,
          file.dataSetOffset,
          head,
          assoc.association.maxPdvDataLength,
          sendBuffers,
          file.size,
        );
    const data = reader
      ? asStored(reader, file, options.verify ?? true, options.onBytes, fileError, counter)
      : reencoded(fh, head, transferSyntaxUid, options.onBytes, fileError, counter);
    try {
      const r = await assoc.requestOne(
        contextId,
        {
          commandField: CommandField.C_STORE_RQ,
          affectedSopClassUid: file.sopClassUid,
          affectedSopInstanceUid: file.sopInstanceUid,
          priority: options.priority ?? Priority.Medium,
          hasDataSet: true,
          ...(options.moveOriginator
            ? {
                moveOriginatorAet: options.moveOriginator.aeTitle,
                moveOriginatorMessageId: options.moveOriginator.messageId,
              }
            : {}),
        },
        data,
      );
      const status = r.command.status ?? Status.ProcessingFailure;
      const outcome: StoreOutcome = {
        status,
        ...(r.command.status === undefined
          ? { errorComment: 'C-STORE-RSP without a Status' }
          : r.command.errorComment !== undefined
            ? { errorComment: r.command.errorComment }
            : {}),
        transferSyntaxUid,
        reencoded: reencode,
        bytes: counter.bytes,
      };
      if (options.events?.active)
        options.events.emit({
          type: 'object-sent',
          sopInstanceUid: file.sopInstanceUid,
          bytes: counter.bytes,
          destination: peerAeTitle(assoc),
          status,
          via: options.via ?? 'C-STORE',
          sopClassUid: file.sopClassUid,
          ...(options.studyInstanceUid !== undefined ? { studyInstanceUid: options.studyInstanceUid } : {}),
          ...(options.moveOriginator !== undefined ? { user: options.moveOriginator.aeTitle } : {}),
        });
      return ok(outcome);
    } catch (e) {
      // A message cut off part-way cannot be resumed (PS3.8 has no way to cancel a data set): abort.
      assoc.abort();
      if (fileError.error) {
        const f = fileError.error;
        const why = f instanceof DicomParseError || f instanceof DicomEncodeError ? 'malformed: ' : '';
        return err(new StoreError('ERR_FILE', `${why}${f.message}`, { cause: f }));
      }
      return err(new StoreError('ERR_ASSOCIATION', (e as Error)?.message ?? String(e), { cause: e }));
    } finally {
      // The response came (the peer has every byte) or the association is aborted: the buffers are free.
      await reader?.release();
      if (!opened) await fh.close();
    }
  } finally {
    await opened?.close();
  }
}

/** The AE title on the other side of the association: the one we called, or the one that called us. */
function peerAeTitle(assoc: DimseAssociation): string {
  const a = assoc.association;
  return (a.role === 'requestor' ? a.calledAeTitle : a.callingAeTitle).trim();
}

/** The data set bytes as they are in the file, checked by a parser on the way when `verify`. */
async function* asStored(
  reader: ChunkReader,
  file: FileInfo,
  verify: boolean,
  onBytes: ((n: number) => void) | undefined,
  failure: { error?: Error },
  counter: { bytes: number },
): AsyncGenerator<Uint8Array> {
  const parser = verify
    ? new DicomParser(NULL_HANDLER, { format: 'dataset', transferSyntax: file.transferSyntaxUid })
    : undefined;
  try {
    for await (const bytes of reader) {
      parser?.write(bytes);
      onBytes?.(bytes.length);
      counter.bytes += bytes.length;
      yield bytes;
    }
    parser?.end();
    if (counter.bytes % 2 === 1 && file.transferSyntaxUid === DEFLATED_EXPLICIT_VR_LE) {
      counter.bytes++;
      yield DEFLATE_PAD;
    }
  } catch (e) {
    failure.error = e as Error;
    throw e;
  }
}

/**
 * The data set re-encoded into `target` as the file is read: the parser drives the writer. Fresh
 * buffers here (the writer may pass on views of what it is given); re-encoding is the rare path.
 */
async function* reencoded(
  fh: FileHandle,
  head: Uint8Array | undefined,
  target: string,
  onBytes: ((n: number) => void) | undefined,
  failure: { error?: Error },
  counter: { bytes: number },
): AsyncGenerator<Uint8Array> {
  let out: Uint8Array[] = [];
  try {
    const writer = new DataSetWriter((c) => out.push(c), target);
    // From the start of the file, as the header read did: the meta is read and not written.
    const parser = new DicomParser(writer);
    const chunks = async function* (): AsyncGenerator<Uint8Array> {
      if (head !== undefined && head.length > 0) yield head;
      yield* readChunks(fh, head?.length ?? 0, CHUNK);
    };
    for await (const chunk of chunks()) {
      parser.write(chunk);
      onBytes?.(chunk.length);
      if (out.length > 0) {
        const ready = out;
        out = [];
        for (const c of ready) counter.bytes += c.length;
        yield* ready;
      }
    }
    parser.end();
    writer.end();
    for (const c of out) counter.bytes += c.length;
    yield* out;
    if (target === DEFLATED_EXPLICIT_VR_LE && counter.bytes % 2 === 1) {
      counter.bytes++;
      yield DEFLATE_PAD;
    }
  } catch (e) {
    failure.error = e as Error;
    throw e;
  }
}

/** Read buffers of CHUNK bytes kept between sends: a fresh one per chunk cost ~30% of a retrieve's CPU in GC. */
export class BufferPool {
  private readonly free: Buffer[] = [];
  /** Buffers made so far (for tests and metrics: it stays small however large the objects). */
  created = 0;

  constructor(
    readonly size: number,
    /** Free buffers kept; more given back are left to the GC. */
    private readonly keep: number,
  ) {}

  take(): Buffer {
    const b = this.free.pop();
    if (b !== undefined) return b;
    this.created++;
    return Buffer.allocUnsafeSlow(this.size);
  }

  give(b: Buffer): void {
    if (this.free.length < this.keep) this.free.push(b);
  }

  /** Free buffers now. */
  get idle(): number {
    return this.free.length;
  }
}

/** The pool every send reads into (a few buffers per association sending at once). */
export const sendBuffers = new BufferPool(CHUNK, 32);

/**
 * Headroom before a buffer handed to the association may be read into again: more than the
 * socket's high-water mark (network/transport.ts SEND_HIGH_WATER_MARK, Node's 16 KiB on a TLS
 * socket). Once that many more bytes were written after a buffer's last byte, the socket either
 * flushed it or reported congestion, and the next P-DATA waited for 'drain', i.e. for everything
 * before it to be written (net.Socket semantics).
 */
const SOCKET_SLACK = SEND_HIGH_WATER_MARK + 64 * 1024;

/**
 * A data set's bytes read into pooled buffers, the next chunk read while the current one is sent
 * (read-ahead), in reads that end on PDV boundaries so each PDV is one view of one buffer.
 *
 * A buffer goes back to the pool only when nothing can still read it: the association's sender
 * holds back at most one PDV (`maxPdv` bytes) when it asks for the next chunk, and writes each
 * P-DATA before resolving, so a buffer whose last byte lies more than two PDVs plus SOCKET_SLACK
 * behind what was handed over is free. The rest are freed by release(), once the response came
 * (the peer has read every byte) or the association was aborted.
 */
export class ChunkReader implements AsyncIterable<Uint8Array> {
  private readonly inUse: { buf: Buffer; end: number }[] = [];
  private readonly margin: number;
  private readonly step: number;
  private pending: Promise<unknown> | undefined;

  constructor(
    private readonly fh: FileHandle,
    /** Where the data set starts in the file. */
    private readonly start: number,
    /** Bytes [0, head.length) of the file, already read. */
    private readonly head: Uint8Array | undefined,
    maxPdv: number,
    private readonly pool: BufferPool = sendBuffers,
    /** The file's size when known (its header was read): no read is spent to find the end. */
    private readonly size = Number.POSITIVE_INFINITY,
  ) {
    this.margin = 2 * maxPdv + SOCKET_SLACK;
    this.step = maxPdv > 0 && maxPdv <= pool.size ? maxPdv : pool.size;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    let handed = 0;
    const head = this.head;
    let position = this.start;
    if (head !== undefined && head.length > this.start) {
      const bytes = head.subarray(this.start);
      position = head.length;
      handed += bytes.length;
      yield bytes;
    }
    let next = this.read(position, handed);
    this.pending = next;
    for (;;) {
      const chunk = await next;
      if (chunk === undefined) return;
      position += chunk.length;
      handed += chunk.length;
      next = this.read(position, handed);
      this.pending = next;
      yield chunk;
      this.recycle(handed);
    }
  }

  /** Reads the chunk at `position`, `handed` bytes of the data set being before it. */
  private async read(position: number, handed: number): Promise<Uint8Array | undefined> {
    if (position >= this.size) return undefined;
    const buf = this.pool.take();
    // End the read on a PDV boundary of the data set, so that PDVs do not straddle two buffers.
    const length = Math.floor((handed + buf.length) / this.step) * this.step - handed;
    let bytesRead: number;
    try {
      ({ bytesRead } = await this.fh.read(buf, 0, length, position));
    } catch (e) {
      this.pool.give(buf);
      throw e;
    }
    if (bytesRead === 0) {
      this.pool.give(buf);
      return undefined;
    }
    this.inUse.push({ buf, end: handed + bytesRead });
    return buf.subarray(0, bytesRead);
  }

  private recycle(handed: number): void {
    while (this.inUse.length > 0 && (this.inUse[0]?.end ?? 0) + this.margin <= handed)
      this.pool.give((this.inUse.shift() as { buf: Buffer }).buf);
  }

  /** Gives every buffer back: call once nothing can read them (the response came, or an abort). */
  async release(): Promise<void> {
    await this.pending?.catch(() => undefined);
    for (const u of this.inUse.splice(0)) this.pool.give(u.buf);
  }
}

/**
 * PS3.5 A.5: a deflated data set of odd length is padded with one trailing 00H, so that PDVs
 * stay even (DCMTK refuses an odd fragment). Files in the field lack it (pydicom's image_dfl.dcm).
 */
const DEFLATE_PAD = Uint8Array.of(0);

const noop = (): void => {};
/** A handler that ignores everything: the parser only checks the structure. */
const NULL_HANDLER: DataSetHandler = {
  element: noop,
  valueStart: noop,
  valueChunk: noop,
  valueEnd: noop,
  sequenceStart: noop,
  itemStart: noop,
  itemEnd: noop,
  sequenceEnd: noop,
  fragmentsStart: noop,
  fragmentStart: noop,
  fragmentEnd: noop,
  fragmentsEnd: noop,
};
