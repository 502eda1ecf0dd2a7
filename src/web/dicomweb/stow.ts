/**
 * STOW-RS (PS3.18 10.5): POST /studies and /studies/{study} with a multipart/related payload.
 *
 * - `application/dicom` parts (Part-10 files) stream one at a time into the archive's one ingest
 *   entry point (Archive.createIngestStream, format 'part10', via 'STOW-RS'), with backpressure
 *   from the file back to the socket: no size cap but the disk, memory bounded by the chunk size.
 * - `application/dicom+json` metadata parts (an array of DICOM JSON instances, PS3.18 F.2) with
 *   bulk data parts referenced by their Content-Location (PS3.18 10.5.1.2.2): octet-stream for
 *   native values, a compressed image media type for encapsulated Pixel Data (one part = one
 *   frame; its transfer-syntax parameter, or the media type's default, is the object's transfer
 *   syntax). Bulk parts over BULK_MEMORY_LIMIT are spooled to a file in the archive's tmp folder.
 *   Each instance is then encoded and ingested as a data set.
 * - `application/dicom+xml` metadata is not supported: 415 with a reason.
 *
 * Per instance (PS3.18 10.5.3, Table I.2-2 failure reasons): a Study Instance UID other than the
 * target study's is refused (A900, nothing of it stored: the ingest is dropped as soon as the UID
 * is read); a part that does not parse is C000; a full disk A700; a refused duplicate 0111; any
 * other archive failure 0110. A duplicate kept by the archive's policy is a warning (B006, as the
 * Storage SCP answers). The answer: 200 all stored, 202 some stored with failures or warnings,
 * 409 none stored, 415 an unsupported media type, 400 a malformed payload when nothing was stored.
 *
 * Deviation (documented): a payload that turns out malformed after some parts were stored keeps
 * the stored instances (each was complete and durable) and answers 202 with them listed and a
 * `Warning: 299` header naming the fault; only when nothing was stored is it a 400 {code, reason}.
 * The standard leaves this case open; reporting what was stored lets the client avoid resending.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { IngestOutcome, IngestRequest } from '../../archive/archive.js';
import type { ArchiveError } from '../../archive/errors.js';
import type { Result } from '../../core/result.js';
import type { DataSet } from '../../dicom/dataset.js';
import { TAG } from '../../dicom/dictionary.js';
import { type DicomJsonObject, fromDicomJson } from '../../dicom/json.js';
import { DicomParser } from '../../dicom/parser.js';
import { DataSetBuilder } from '../../dicom/reader.js';
import { EXPLICIT_VR_LE, transferSyntax } from '../../dicom/uid.js';
import { DataSetWriter } from '../../dicom/writer.js';
import { httpError } from '../errors.js';
import { parseMediaType } from '../media-type.js';
import { boundaryOf, MultipartError, type MultipartPart, MultipartReader } from '../multipart-reader.js';
import { type DicomwebContext, serviceUrl } from './context.js';
import { paramsSchema } from './params.js';

/** PS3.18 Table I.2-2 failure reasons and I.2-1 warning reasons (FailureReason / WarningReason, US). */
export const STOW_REASON = {
  /** A7xx Refused: out of resources (the disk is full). */
  OutOfResources: 0xa700,
  /** A9xx Data Set does not match SOP Class: here also a Study Instance UID other than the target study's. */
  DataSetDoesNotMatch: 0xa900,
  /** Cxxx Cannot understand: the part does not parse as DICOM. */
  CannotUnderstand: 0xc000,
  /** C122 Referenced Transfer Syntax not supported. */
  TransferSyntaxNotSupported: 0xc122,
  /** 0110 Processing failure. */
  ProcessingFailure: 0x0110,
  /** 0111 Duplicate SOP Instance (PS3.7 C.5.7): the duplicate policy is 'reject'. */
  DuplicateSopInstance: 0x0111,
  /** B006 Elements discarded: a duplicate, the archived object was kept (warning). */
  ElementsDiscarded: 0xb006,
} as const;

/** Bulk data parts up to this size stay in memory; larger ones are spooled to the archive's tmp folder. */
const BULK_MEMORY_LIMIT = 1024 * 1024;
/** Bulk data bytes one request may hold in memory in all; past it every bulk part is spooled. */
const BULK_MEMORY_BUDGET = 16 * 1024 * 1024;
/** The largest metadata (JSON) part: metadata is small by nature, bulk data comes in its own parts. */
const METADATA_LIMIT = 64 * 1024 * 1024;

/** What one request holds in memory (metadata JSON, small bulk parts): bounded whatever the payload. */
interface MemoryBudget {
  metadata: number;
  bulk: number;
}
/** Stop reading the header copy past Series Instance UID (0020,000E): all the UIDs STOW checks are before it. */
const PEEK_STOP = 0x0020_0010;

/** PS3.18 Table 8.7.3-4 (the default transfer syntax of each compressed pixel data media type). */
const PIXEL_MEDIA_DEFAULT_TS: Readonly<Record<string, string>> = {
  'image/jpeg': '1.2.840.10008.1.2.4.70',
  'image/jls': '1.2.840.10008.1.2.4.80',
  'image/jp2': '1.2.840.10008.1.2.4.90',
  'image/jpx': '1.2.840.10008.1.2.4.92',
  'image/jphc': '1.2.840.10008.1.2.4.201',
  'image/dicom-rle': '1.2.840.10008.1.2.5',
};

interface Stored {
  readonly sopClassUid: string;
  readonly sopInstanceUid: string;
  readonly studyInstanceUid: string;
  readonly seriesInstanceUid: string;
  readonly warning?: number;
}

interface Failed {
  readonly sopClassUid?: string;
  readonly sopInstanceUid?: string;
  readonly reason: number;
  readonly why: string;
}

interface StowReport {
  readonly stored: Stored[];
  readonly failed: Failed[];
}

/** A bulk data part, kept in memory or in a spool file. */
interface BulkPart {
  readonly location: string;
  readonly mediaType: string;
  readonly transferSyntax: string | undefined;
  readonly length: number;
  readonly bytes?: Buffer;
  readonly path?: string;
}

/** Registers POST /studies and /studies/{study} (operation 'dicomweb:store'). */
export async function registerStow(app: FastifyInstance, context: DicomwebContext): Promise<void> {
  await app.register(async (scope) => {
    // The body stays a stream (no buffering, no bodyLimit: the disk is the only cap). Every media
    // type reaches the handler, which answers 415 with a reason for those it does not take.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
    scope.route({
      method: 'POST',
      url: '/studies',
      config: { operation: 'dicomweb:store' },
      handler: (request, reply) => stow(context, request, reply, undefined),
    });
    scope.route({
      method: 'POST',
      url: '/studies/:study',
      config: { operation: 'dicomweb:store' },
      schema: { params: paramsSchema('study') },
      handler: (request, reply) => stow(context, request, reply, (request.params as { study: string }).study),
    });
  });
}

/**
 * A declared Content-Length larger than the free space above the store's floor can never be
 * stored: 413 before a byte of the body is read, and the connection closed (HTTP/1.1) so that
 * the rest is not read either. A body without a length streams, and the floor stops it.
 */
async function refuseWhatCannotFit(context: DicomwebContext, request: FastifyRequest): Promise<void> {
  const declared = request.headers['content-length'];
  if (declared === undefined || !/^[0-9]+$/.test(declared)) return;
  const store = context.archive.store;
  const room = Math.max(0, (await store.freeBytes()) - store.minFreeBytes);
  if (Number(declared) <= room) return;
  throw httpError(
    413,
    'ERR_HTTP_PAYLOAD_TOO_LARGE',
    `the payload (${declared} bytes) is larger than the free space of the archive (${room} bytes above its floor)`,
    request.raw.httpVersionMajor === 1 ? { headers: { connection: 'close' } } : {},
  );
}

async function stow(
  context: DicomwebContext,
  request: FastifyRequest,
  reply: FastifyReply,
  study: string | undefined,
): Promise<FastifyReply> {
  const contentType = request.headers['content-type'];
  const media = contentType === undefined ? undefined : parseMediaType(contentType);
  if (media === undefined || media.type !== 'multipart/related')
    throw httpError(
      415,
      'ERR_HTTP_UNSUPPORTED_MEDIA_TYPE',
      `STOW-RS takes multipart/related (PS3.18 10.5.1.2), not ${contentType ?? 'a body without Content-Type'}`,
    );
  const rootType = media.params['type']?.toLowerCase();
  if (rootType === 'application/dicom+xml')
    throw httpError(
      415,
      'ERR_HTTP_UNSUPPORTED_MEDIA_TYPE',
      'application/dicom+xml metadata is not supported; send application/dicom or application/dicom+json',
    );
  if (rootType !== undefined && rootType !== 'application/dicom' && rootType !== 'application/dicom+json')
    throw httpError(
      415,
      'ERR_HTTP_UNSUPPORTED_MEDIA_TYPE',
      `multipart/related type=${rootType} is not a STOW-RS payload (application/dicom or application/dicom+json)`,
    );
  await refuseWhatCannotFit(context, request);
  let boundary: string;
  try {
    boundary = boundaryOf(contentType);
  } catch (e) {
    if (e instanceof MultipartError) throw httpError(400, 'ERR_HTTP_MULTIPART', e.message);
    throw e;
  }

  const body = request.body as Readable;
  // Who sent it: the user, else the remote address (an IPv4-mapped IPv6 address as plain IPv4).
  const source =
    (request.identity?.kind === 'user' ? request.identity.name : undefined) ??
    request.ip?.replace(/^::ffff:/, '') ??
    null;
  const report: StowReport = { stored: [], failed: [] };
  const metadata: Array<{ json: unknown; part: number }> = [];
  const bulk = new Map<string, BulkPart>();
  const budget: MemoryBudget = { metadata: 0, bulk: 0 };
  const log = context.logger;
  let malformed: MultipartError | undefined;
  let aborted = false;
  body.on('aborted', () => {
    aborted = true;
  });
  const reader = new MultipartReader(body as AsyncIterable<Uint8Array>, boundary);
  try {
    try {
      for await (const part of reader) {
        const type = partType(part, rootType);
        if (type === 'application/dicom') {
          await storePart(context, part, study, source, report);
        } else if (type === 'application/dicom+json' || type === 'application/json') {
          metadata.push({ json: await readJson(part, budget), part: part.index });
        } else if (type === 'application/dicom+xml') {
          await drain(part.body);
          report.failed.push({
            reason: STOW_REASON.CannotUnderstand,
            why: `part ${part.index}: application/dicom+xml metadata is not supported`,
          });
        } else if (rootType === 'application/dicom+json' || metadata.length > 0 || !isDicomRoot(rootType)) {
          const spooled = await spoolBulk(context, part, type, budget);
          if (spooled === undefined) {
            report.failed.push({
              reason: STOW_REASON.CannotUnderstand,
              why: `part ${part.index} (${type}) has no Content-Location for a BulkDataURI to name`,
            });
          } else bulk.set(spooled.location, spooled);
        } else {
          await drain(part.body);
          report.failed.push({
            reason: STOW_REASON.CannotUnderstand,
            why: `part ${part.index} is ${type}, not application/dicom`,
          });
        }
      }
      if (reader.parts === 0) throw new MultipartError('truncated', 'the multipart payload holds no part');
    } catch (e) {
      if (e instanceof MultipartError) malformed = e;
      else throw e;
    }
    if (malformed === undefined)
      for (const m of metadata) await storeMetadata(context, m.json, m.part, bulk, study, source, report);
  } finally {
    await Promise.all(
      [...bulk.values()].map((b) =>
        b.path !== undefined ? unlink(b.path).catch(() => undefined) : undefined,
      ),
    );
  }

  for (const f of report.failed)
    log.warn(
      { sopInstanceUid: f.sopInstanceUid, reason: `0x${f.reason.toString(16).padStart(4, '0')}`, why: f.why },
      'STOW-RS: instance not stored',
    );
  if (malformed !== undefined) {
    const cut = aborted || malformed.reason === 'source-error';
    log.warn(
      { url: request.url, reason: malformed.reason, stored: report.stored.length, err: malformed.message },
      cut ? 'STOW-RS: the request body stopped early' : 'STOW-RS: malformed multipart payload',
    );
    if (cut && (request.raw.destroyed || request.raw.socket?.destroyed)) return reply; // nobody to answer
    if (report.stored.length === 0) throw httpError(400, 'ERR_HTTP_MULTIPART', malformed.message);
    reply.header('warning', `299 - "${malformed.message.replace(/["\\]/g, '')}"`);
  }
  const status =
    report.stored.length === 0
      ? 409
      : report.failed.length > 0 ||
          malformed !== undefined ||
          report.stored.some((s) => s.warning !== undefined)
        ? 202
        : 200;
  return reply
    .code(status)
    .type('application/dicom+json')
    .send(JSON.stringify(responseBody(serviceUrl(context, request), study, report)));
}

function isDicomRoot(rootType: string | undefined): boolean {
  return rootType === 'application/dicom';
}

/** A part's media type: its own Content-Type, else the payload's `type` (PS3.18 8.6.1.2). */
function partType(part: MultipartPart, rootType: string | undefined): string {
  const own = part.headers['content-type'];
  const media = own === undefined ? undefined : parseMediaType(own);
  return media?.type ?? rootType ?? 'application/octet-stream';
}

async function drain(body: Readable): Promise<void> {
  for await (const _ of body) {
    // dropped
  }
}

/** The Study, Series and SOP UIDs at the start of a data set, read from a copy of its first bytes. */
class HeaderPeek {
  private readonly builder = new DataSetBuilder({ bulkData: 'skip', bulkDataThreshold: 1024 });
  private readonly parser = new DicomParser(this.builder, { format: 'part10', stopAtTag: PEEK_STOP });
  private failed = false;

  /** False once the UIDs are known (or the bytes do not parse): no more input needed. */
  get wants(): boolean {
    return !this.failed && !this.parser.stopped;
  }

  write(chunk: Uint8Array): void {
    try {
      this.parser.write(chunk);
    } catch {
      this.failed = true; // the ingest stream says why
    }
  }

  get header(): DataSet {
    return this.builder.root;
  }
}

/** Streams one application/dicom part into the ingest entry point. */
async function storePart(
  context: DicomwebContext,
  part: MultipartPart,
  study: string | undefined,
  source: string | null,
  report: StowReport,
): Promise<void> {
  const ingest = context.archive.createIngestStream(ingestRequest(source, { format: 'part10' }));
  ingest.on('error', () => undefined); // a destroyed ingest reports through its outcome
  const peek = new HeaderPeek();
  let mismatch: string | undefined;
  try {
    for await (const chunk of part.body as AsyncIterable<Buffer>) {
      if (mismatch !== undefined) continue; // dropped
      if (peek.wants) {
        peek.write(chunk);
        const got = peek.header.string(TAG.StudyInstanceUID);
        if (study !== undefined && got !== undefined && got !== study) {
          mismatch = got;
          ingest.destroy();
          continue;
        }
      }
      if (!ingest.write(chunk)) await waitDrain(ingest);
    }
  } catch (e) {
    // The payload broke inside this part: drop the object (ERR_ARCHIVE_ABORTED), then report the fault.
    ingest.destroy(e instanceof Error ? e : new Error(String(e)));
    await ingest.outcome;
    throw e;
  }
  const header = peek.header;
  const uids = {
    sopClassUid: header.string(TAG.SOPClassUID),
    sopInstanceUid: header.string(TAG.SOPInstanceUID),
  };
  if (mismatch !== undefined) {
    await ingest.outcome;
    report.failed.push({
      ...definedUids(uids),
      reason: STOW_REASON.DataSetDoesNotMatch,
      why: `Study Instance UID ${mismatch} is not the target study ${study}`,
    });
    return;
  }
  ingest.end();
  record(await ingest.outcome, header, report);
}

function waitDrain(stream: NodeJS.WritableStream & { destroyed: boolean }): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}

function ingestRequest(source: string | null, extra: Partial<IngestRequest>): IngestRequest {
  return { ...extra, source, via: 'STOW-RS' };
}

function definedUids(uids: { sopClassUid?: string | undefined; sopInstanceUid?: string | undefined }): {
  sopClassUid?: string;
  sopInstanceUid?: string;
} {
  return {
    ...(uids.sopClassUid !== undefined ? { sopClassUid: uids.sopClassUid } : {}),
    ...(uids.sopInstanceUid !== undefined ? { sopInstanceUid: uids.sopInstanceUid } : {}),
  };
}

/** Files an ingest outcome in the report; `header` is the data set's header (its UIDs). */
function record(result: Result<IngestOutcome, ArchiveError>, header: DataSet, report: StowReport): void {
  const uids = {
    sopClassUid: header.string(TAG.SOPClassUID),
    sopInstanceUid: header.string(TAG.SOPInstanceUID),
  };
  if (!result.ok) {
    report.failed.push({
      ...definedUids(uids),
      reason: failureReason(result.error),
      why: result.error.message,
    });
    return;
  }
  const outcome = result.value;
  if (outcome.status === 'duplicate') {
    const e = outcome.existing;
    report.stored.push({
      sopClassUid: e.sopClassUid,
      sopInstanceUid: e.sopInstanceUid,
      studyInstanceUid: e.studyInstanceUid,
      seriesInstanceUid: e.seriesInstanceUid,
      warning: STOW_REASON.ElementsDiscarded,
    });
    return;
  }
  report.stored.push({
    sopClassUid: uids.sopClassUid ?? '',
    sopInstanceUid: uids.sopInstanceUid ?? '',
    studyInstanceUid: header.string(TAG.StudyInstanceUID) ?? '',
    seriesInstanceUid: header.string(TAG.SeriesInstanceUID) ?? '',
  });
}

/** PS3.18 Table I.2-2 for an archive failure. */
function failureReason(error: ArchiveError): number {
  switch (error.code) {
    case 'ERR_ARCHIVE_OUT_OF_SPACE':
      return STOW_REASON.OutOfResources;
    case 'ERR_ARCHIVE_UNPARSABLE':
    case 'ERR_ARCHIVE_TRUNCATED':
      return STOW_REASON.CannotUnderstand;
    case 'ERR_ARCHIVE_INVALID_OBJECT':
    case 'ERR_ARCHIVE_UID_MISMATCH':
      return STOW_REASON.DataSetDoesNotMatch;
    case 'ERR_ARCHIVE_DUPLICATE':
      return STOW_REASON.DuplicateSopInstance;
    default:
      return STOW_REASON.ProcessingFailure;
  }
}

/** The Store Instances Response (PS3.18 10.5.3, Table 10.5.3-2) as DICOM JSON. */
function responseBody(base: string, study: string | undefined, report: StowReport): DicomJsonObject {
  const ui = (v: string) => ({ vr: 'UI' as const, Value: [v] });
  const ur = (v: string) => ({ vr: 'UR' as const, Value: [v] });
  const us = (v: number) => ({ vr: 'US' as const, Value: [v] });
  const out: DicomJsonObject = {};
  const studies = new Set(report.stored.map((s) => s.studyInstanceUid));
  const target = study ?? (studies.size === 1 ? [...studies][0] : undefined);
  if (target !== undefined && target !== '') out['00081190'] = ur(`${base}/studies/${target}`);
  if (report.failed.length > 0)
    out['00081198'] = {
      vr: 'SQ',
      Value: report.failed.map((f) => {
        const item: DicomJsonObject = {};
        if (f.sopClassUid !== undefined) item['00081150'] = ui(f.sopClassUid);
        if (f.sopInstanceUid !== undefined) item['00081155'] = ui(f.sopInstanceUid);
        item['00081197'] = us(f.reason);
        return item;
      }),
    };
  if (report.stored.length > 0)
    out['00081199'] = {
      vr: 'SQ',
      Value: report.stored.map((s) => {
        const item: DicomJsonObject = {
          '00081150': ui(s.sopClassUid),
          '00081155': ui(s.sopInstanceUid),
          '00081190': ur(
            `${base}/studies/${s.studyInstanceUid}/series/${s.seriesInstanceUid}/instances/${s.sopInstanceUid}`,
          ),
        };
        if (s.warning !== undefined) item['00081196'] = us(s.warning);
        return item;
      }),
    };
  return out;
}

// --- the metadata (DICOM JSON) and bulk data form -------------------------------------------------

async function readJson(part: MultipartPart, budget: MemoryBudget): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of part.body as AsyncIterable<Buffer>) {
    size += chunk.length;
    budget.metadata += chunk.length;
    if (budget.metadata > METADATA_LIMIT) {
      await drain(part.body);
      return new Error(`the metadata parts of the request are over ${METADATA_LIMIT} bytes`);
    }
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks, size).toString('utf8')) as unknown;
  } catch (e) {
    return new Error(
      `metadata part ${part.index} is not JSON: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
}

/** Keeps a bulk data part (memory up to BULK_MEMORY_LIMIT, else a file in the archive's tmp folder). */
async function spoolBulk(
  context: DicomwebContext,
  part: MultipartPart,
  type: string,
  budget: MemoryBudget,
): Promise<BulkPart | undefined> {
  const location = part.headers['content-location'];
  if (location === undefined || location === '') {
    await drain(part.body);
    return undefined;
  }
  const media = parseMediaType(part.headers['content-type'] ?? '');
  const ts = media?.params['transfer-syntax'];
  const chunks: Buffer[] = [];
  let length = 0;
  let file: WriteStream | undefined;
  let path: string | undefined;
  try {
    for await (const chunk of part.body as AsyncIterable<Buffer>) {
      length += chunk.length;
      if (file === undefined) {
        chunks.push(chunk);
        if (length <= BULK_MEMORY_LIMIT && budget.bulk + length <= BULK_MEMORY_BUDGET) continue;
        path = join(context.archive.store.dataDir, 'tmp', `stow-${randomBytes(8).toString('hex')}.bulk`);
        file = createWriteStream(path, { flags: 'wx' });
        file.on('error', () => undefined);
        for (const c of chunks.splice(0)) file.write(c);
      } else if (!file.write(chunk)) await waitDrain(file);
    }
    if (file !== undefined) {
      file.end();
      await finished(file);
    }
  } catch (e) {
    file?.destroy();
    if (path !== undefined) await unlink(path).catch(() => undefined);
    throw e;
  }
  if (path === undefined) budget.bulk += length;
  return {
    location,
    mediaType: type,
    transferSyntax: ts,
    length,
    ...(path !== undefined ? { path } : { bytes: Buffer.concat(chunks, length) }),
  };
}

/** Finds the bulk part a BulkDataURI names: the same string, or one ending with the other (relative references). */
function findBulk(bulk: ReadonlyMap<string, BulkPart>, uri: string): BulkPart | undefined {
  const exact = bulk.get(uri);
  if (exact !== undefined) return exact;
  for (const [location, part] of bulk) if (location.endsWith(uri) || uri.endsWith(location)) return part;
  return undefined;
}

/** Builds and ingests each instance of one metadata part. */
async function storeMetadata(
  context: DicomwebContext,
  json: unknown,
  partIndex: number,
  bulk: ReadonlyMap<string, BulkPart>,
  study: string | undefined,
  source: string | null,
  report: StowReport,
): Promise<void> {
  if (json instanceof Error) {
    report.failed.push({ reason: STOW_REASON.CannotUnderstand, why: json.message });
    return;
  }
  const instances = Array.isArray(json) ? json : [json];
  for (const instance of instances) {
    const placeholders = new Map<Uint8Array, BulkPart>();
    let unresolved: string | undefined;
    const built = fromDicomJson(instance, {
      bulkData: (uri) => {
        const part = findBulk(bulk, uri);
        if (part === undefined) {
          unresolved ??= uri;
          return undefined;
        }
        const placeholder = new Uint8Array(0);
        placeholders.set(placeholder, part);
        return placeholder;
      },
    });
    const uidsOf = (ds: DataSet | undefined) => ({
      sopClassUid: ds?.string(TAG.SOPClassUID),
      sopInstanceUid: ds?.string(TAG.SOPInstanceUID),
    });
    if (!built.ok) {
      report.failed.push({
        ...definedUids(jsonUids(instance)),
        reason: STOW_REASON.CannotUnderstand,
        why: `metadata part ${partIndex}: ${unresolved !== undefined ? `no part has Content-Location ${unresolved}` : built.error}`,
      });
      continue;
    }
    const ds = built.value;
    const uids = uidsOf(ds);
    const got = ds.string(TAG.StudyInstanceUID);
    if (study !== undefined && got !== undefined && got !== study) {
      report.failed.push({
        ...definedUids(uids),
        reason: STOW_REASON.DataSetDoesNotMatch,
        why: `Study Instance UID ${got} is not the target study ${study}`,
      });
      continue;
    }
    for (const e of [...ds]) if (e.tag >>> 16 === 0x0002) ds.delete(e.tag);
    const syntax = syntaxOf(ds, placeholders);
    if (typeof syntax !== 'string') {
      report.failed.push({
        ...definedUids(uids),
        reason: STOW_REASON.TransferSyntaxNotSupported,
        why: syntax.why,
      });
      continue;
    }
    const result = await context.archive.ingest(
      encodeStreaming(ds, syntax, placeholders),
      ingestRequest(source, { format: 'dataset', transferSyntaxUid: syntax }),
    );
    record(result, ds, report);
  }
}

function jsonUids(instance: unknown): { sopClassUid?: string; sopInstanceUid?: string } {
  const value = (key: string): string | undefined => {
    if (typeof instance !== 'object' || instance === null) return undefined;
    const a = (instance as Record<string, { Value?: unknown[] } | undefined>)[key];
    const v = a?.Value?.[0];
    return typeof v === 'string' ? v : undefined;
  };
  return definedUids({ sopClassUid: value('00080016'), sopInstanceUid: value('00080018') });
}

/**
 * The transfer syntax an instance is encoded in: Explicit VR LE, unless its Pixel Data comes in a
 * compressed media type (PS3.18 10.5.1.2.2): then that part's transfer-syntax, or the type's default.
 */
function syntaxOf(ds: DataSet, placeholders: ReadonlyMap<Uint8Array, BulkPart>): string | { why: string } {
  const pixel = ds.get(TAG.PixelData);
  const part = pixel?.value instanceof Uint8Array ? placeholders.get(pixel.value) : undefined;
  if (part === undefined || part.mediaType === 'application/octet-stream') return EXPLICIT_VR_LE;
  const ts = part.transferSyntax ?? PIXEL_MEDIA_DEFAULT_TS[part.mediaType];
  if (ts === undefined)
    return { why: `Pixel Data in ${part.mediaType} without a transfer-syntax parameter is not supported` };
  const entry = transferSyntax(ts);
  if (entry === undefined || !entry.encapsulated)
    return {
      why: `transfer syntax ${ts} of the ${part.mediaType} Pixel Data is not a known encapsulated one`,
    };
  const frames = Number(ds.string(TAG.NumberOfFrames) ?? '1');
  if (frames > 1)
    return {
      why: 'multi-frame compressed Pixel Data in one bulk data part is not supported (one frame per part)',
    };
  return ts;
}

/** The bytes of `ds` in `syntax`, streamed: bulk values are read from their parts as they are written. */
async function* encodeStreaming(
  ds: DataSet,
  syntax: string,
  placeholders: ReadonlyMap<Uint8Array, BulkPart>,
): AsyncGenerator<Uint8Array> {
  let out: Uint8Array[] = [];
  const writer = new DataSetWriter((c) => out.push(c), syntax);
  const take = (): Uint8Array[] => {
    const o = out;
    out = [];
    return o;
  };
  const encapsulated = transferSyntax(syntax)?.encapsulated === true;
  async function* walk(set: DataSet): AsyncGenerator<Uint8Array> {
    for (const e of set) {
      const v = e.value;
      const part = v instanceof Uint8Array ? placeholders.get(v) : undefined;
      if (part !== undefined) {
        const asFragments = e.tag === TAG.PixelData && encapsulated && set === ds;
        if (asFragments) {
          writer.fragmentsStart(e.tag, 'OB');
          writer.fragmentStart(0); // empty Basic Offset Table (PS3.5 A.4)
          writer.fragmentEnd();
          writer.fragmentStart(part.length);
        } else writer.valueStart(e.tag, e.vr, part.length);
        for await (const chunk of bulkChunks(part)) {
          writer.valueChunk(chunk);
          yield* take();
        }
        if (asFragments) {
          writer.fragmentEnd();
          writer.fragmentsEnd();
        } else writer.valueEnd();
      } else if (v instanceof Uint8Array) writer.element(e.tag, e.vr, v);
      else if (Array.isArray(v)) {
        writer.sequenceStart(e.tag);
        for (const item of v) {
          writer.itemStart();
          yield* walk(item);
          writer.itemEnd();
        }
        writer.sequenceEnd();
      } else if (v.kind === 'fragments') {
        writer.fragmentsStart(e.tag, e.vr);
        for (const f of v.fragments) {
          writer.fragmentStart(f.length);
          if (f.length > 0) writer.valueChunk(f);
          writer.fragmentEnd();
        }
        writer.fragmentsEnd();
      }
      yield* take();
    }
  }
  yield* walk(ds);
  writer.end();
  yield* take();
}

async function* bulkChunks(part: BulkPart): AsyncGenerator<Uint8Array> {
  if (part.bytes !== undefined) {
    if (part.bytes.length > 0) yield part.bytes;
    return;
  }
  if (part.path === undefined) return;
  for await (const chunk of createReadStream(part.path, { highWaterMark: 256 * 1024 })) yield chunk as Buffer;
}
