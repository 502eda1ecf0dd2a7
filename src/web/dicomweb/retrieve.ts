/**
 * WADO-RS retrieve of instances (PS3.18 10.4.1.1.1-3): GET /studies/{study},
 * /studies/{study}/series/{series} and /studies/{study}/series/{series}/instances/{instance} as
 * `multipart/related; type="application/dicom"`, one Part-10 file per part streamed from the
 * archive's object files, or as a streamed ZIP (`accept=application/zip`), or, for one instance,
 * a single-part `application/dicom`.
 *
 * Transfer syntaxes (PS3.18 8.7.3.5.2, 8.7.8.2), per part:
 * - `transfer-syntax=*`: as stored, byte for byte (what Orthanc and dcm4chee do too).
 * - no transfer-syntax: the standard's default, Explicit VR Little Endian (PS3.18 8.7.3: default
 *   unless the origin server has only the pixel data in lossy compressed form). An object stored
 *   in it is sent as stored; one in another native syntax is re-encoded while it is streamed; a
 *   lossy compressed one is sent as stored (the standard's exception); a losslessly compressed
 *   one is decoded (transcoded.ts), or, with no decoder for its syntax, the answer is 406.
 * - an explicit UID: as stored when it is the stored one, re-encoded when that needs no pixel
 *   codec (Implicit/Explicit VR LE, Explicit VR BE, Deflated; PS3.18 8.7.3 says Implicit and Big
 *   Endian "shall not be used" with web services, but a client that names one gets it rather
 *   than a refusal), transcoded when a codec can (never into a lossy syntax), 406 otherwise.
 *   Never 500.
 * Several Accept ranges: the best (q, then order) for which every instance has a syntax; within
 * that media type each part gets the first range its stored syntax can satisfy.
 *
 * The index is read in pages (archive/index/retrieve.ts) and each file read in chunks as the
 * client takes them; a client that goes away stops the reading and closes the file.
 */
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  type RetrieveInstance,
  type RetrieveKeys,
  type RetrieveSummary,
  retrieveSource,
} from '../../archive/index/retrieve.js';
import type { ObjectStore } from '../../archive/store.js';
import type { Logger } from '../../core/logger.js';
import { CONVERSION_HEAD_STOP, checkConversion, startConversion } from '../../dicom/convert.js';
import { readDicomChunks } from '../../dicom/reader.js';
import { checkTranscode } from '../../dicom/transcode.js';
import {
  describeUid,
  EXPLICIT_VR_LE,
  transferSyntax,
  UNCOMPRESSED_TRANSFER_SYNTAXES,
} from '../../dicom/uid.js';
import { httpError } from '../errors.js';
import { acceptOf, type MediaRange } from '../media-type.js';
import {
  FILE_CHUNK,
  type MultipartPart,
  primed,
  primedFirstPart,
  sendMultipart,
} from '../multipart-writer.js';
import { reportRetrieved } from './audit-events.js';
import { type DicomwebContext, serviceUrl } from './context.js';
import { paramsSchema, UID_PATTERN, type UidParams } from './params.js';
import { transcodedObject, transcodeStarted } from './transcoded.js';
import { type ZipEntry, zipChunks } from './zip.js';

/** The transfer syntax a client asked for one media type: '*', a UID, or none given (the default). */
export type RequestedSyntax =
  | { readonly kind: 'any' }
  | { readonly kind: 'default' }
  | { readonly kind: 'uid'; readonly uid: string };

/** How an object stored in one syntax is sent: its file as it is, or re-encoded while streamed. */
export type SendPlan =
  | { readonly kind: 'stored'; readonly transferSyntaxUid: string }
  | { readonly kind: 'convert'; readonly transferSyntaxUid: string }
  /** Pixel data decoded and/or encoded on the way (dicom/transcode.ts, frame by frame). */
  | { readonly kind: 'transcode'; readonly transferSyntaxUid: string }
  | { readonly kind: 'refused'; readonly reason: string };

const TS_RE = new RegExp(UID_PATTERN);

/** The RequestedSyntax of a `transfer-syntax` value (undefined: none given). */
export function requestedSyntax(value: string | undefined): RequestedSyntax {
  if (value === undefined || value === '') return { kind: 'default' };
  const v = value.trim();
  return v === '*' ? { kind: 'any' } : { kind: 'uid', uid: v };
}

/** How to send an object stored in `stored` when `requested` was asked (see the header of this file). */
export function planSyntax(stored: string, requested: RequestedSyntax): SendPlan {
  const storedName = describeUid(stored);
  if (requested.kind === 'any') return { kind: 'stored', transferSyntaxUid: stored };
  if (requested.kind === 'default') {
    if (stored === EXPLICIT_VR_LE) return { kind: 'stored', transferSyntaxUid: stored };
    if (UNCOMPRESSED_TRANSFER_SYNTAXES.includes(stored))
      return { kind: 'convert', transferSyntaxUid: EXPLICIT_VR_LE };
    if (transferSyntax(stored)?.lossy === true) return { kind: 'stored', transferSyntaxUid: stored };
    if (checkTranscode(stored, EXPLICIT_VR_LE) === undefined)
      return { kind: 'transcode', transferSyntaxUid: EXPLICIT_VR_LE };
    return {
      kind: 'refused',
      reason:
        `an instance is stored in ${storedName} (${stored}); the default transfer syntax, Explicit VR Little Endian, ` +
        'needs a decoder this server does not have: ask for transfer-syntax=* to get it as stored',
    };
  }
  const uid = requested.uid;
  if (!TS_RE.test(uid) || transferSyntax(uid) === undefined)
    return { kind: 'refused', reason: `${uid} is not a transfer syntax this server knows` };
  if (uid === stored) return { kind: 'stored', transferSyntaxUid: stored };
  const problem =
    transferSyntax(stored) === undefined
      ? `${stored} is not a known transfer syntax`
      : checkConversion(stored, uid);
  if (problem === undefined) return { kind: 'convert', transferSyntaxUid: uid };
  const codecProblem = transferSyntax(stored) === undefined ? problem : checkTranscode(stored, uid);
  if (codecProblem === undefined) return { kind: 'transcode', transferSyntaxUid: uid };
  return {
    kind: 'refused',
    reason: `an instance is stored in ${storedName} (${stored}) and cannot be sent in ${describeUid(uid)}: ${codecProblem}`,
  };
}

/** The forms an answer can take. */
export type RetrieveFormat = 'multipart' | 'zip' | 'single';

/** One acceptable form, with the syntax asked for it. */
export interface RetrieveOption {
  readonly format: RetrieveFormat;
  readonly syntax: RequestedSyntax;
}

/** The acceptable forms of an Accept list, best first (ranges this resource cannot answer are left out). */
export function retrieveOptions(
  ranges: readonly MediaRange[],
  singleAllowed: boolean,
  queryTransferSyntax?: string,
): RetrieveOption[] {
  const options: RetrieveOption[] = [];
  for (const r of ranges) {
    const ts = r.params['transfer-syntax'] ?? queryTransferSyntax;
    if (r.type === 'multipart/related') {
      const type = r.params.type?.toLowerCase();
      if (type === undefined || type === 'application/dicom' || type === 'application/*' || type === '*/*')
        options.push({ format: 'multipart', syntax: requestedSyntax(ts) });
    } else if (r.type === 'multipart/*' || r.type === '*/*') {
      options.push({ format: 'multipart', syntax: requestedSyntax(ts) });
    } else if (r.type === 'application/zip') {
      // Not a DICOM media type, so no DICOM default applies: the files as archived unless asked otherwise.
      options.push({ format: 'zip', syntax: ts === undefined ? { kind: 'any' } : requestedSyntax(ts) });
    } else if (r.type === 'application/dicom' && singleAllowed) {
      options.push({ format: 'single', syntax: requestedSyntax(ts) });
    }
  }
  return options;
}

/** The chosen form and a plan per stored syntax, or the reason none fits (a 406). */
export type Negotiated =
  | {
      readonly ok: true;
      readonly format: RetrieveFormat;
      readonly plans: ReadonlyMap<string, SendPlan>;
      readonly options: readonly RetrieveOption[];
    }
  | { readonly ok: false; readonly reason: string };

/** Picks the first form for which every stored syntax of `storedSyntaxes` has a plan. */
export function negotiate(options: readonly RetrieveOption[], storedSyntaxes: readonly string[]): Negotiated {
  if (options.length === 0)
    return {
      ok: false,
      reason:
        'no acceptable media type: instances are answered as multipart/related; type="application/dicom" ' +
        '(with transfer-syntax), application/zip, or application/dicom for one instance',
    };
  let firstReason: string | undefined;
  const formats = [...new Set(options.map((o) => o.format))];
  for (const format of formats) {
    const mine = options.filter((o) => o.format === format);
    const plans = new Map<string, SendPlan>();
    let refused: string | undefined;
    for (const stored of storedSyntaxes) {
      const plan = firstPlan(stored, mine);
      if (plan.kind === 'refused') {
        refused ??= plan.reason;
        break;
      }
      plans.set(stored, plan);
    }
    if (refused === undefined) return { ok: true, format, plans, options: mine };
    firstReason ??= refused;
  }
  return { ok: false, reason: firstReason ?? 'no acceptable transfer syntax' };
}

/** The plan of the first option the stored syntax can satisfy (or the first refusal). */
export function firstPlan(stored: string, options: readonly RetrieveOption[]): SendPlan {
  let first: SendPlan | undefined;
  for (const o of options) {
    const plan = planSyntax(stored, o.syntax);
    if (plan.kind !== 'refused') return plan;
    first ??= plan;
  }
  return first ?? { kind: 'refused', reason: 'no acceptable transfer syntax' };
}

/**
 * The bytes of a stored object as planned: as stored, or re-encoded as they are read. Read
 * through the store (store.readObject), which decrypts objects encrypted at rest.
 */
export function objectBody(
  store: ObjectStore,
  path: string,
  plan: SendPlan,
  size: number,
): AsyncIterable<Uint8Array> {
  if (plan.kind === 'stored') return store.readObject(path, { end: size, chunkSize: FILE_CHUNK });
  if (plan.kind === 'refused') throw new Error(plan.reason);
  if (plan.kind === 'transcode')
    return transcodedObject(store.readObject(path, { chunkSize: FILE_CHUNK }), plan.transferSyntaxUid);
  return convertedFile(store, path, plan.transferSyntaxUid);
}

/**
 * A Part-10 file re-encoded into `to` while it is read (dicom/convert.ts): the new file meta, then
 * the data set as the parser produces it, chunk by chunk. Never the whole object in memory.
 */
async function* convertedFile(store: ObjectStore, path: string, to: string): AsyncGenerator<Uint8Array> {
  const head = await readDicomChunks(store.readObject(path, { chunkSize: 16 * 1024 }), {
    stopAtTag: CONVERSION_HEAD_STOP,
  });
  let out: Uint8Array[] = [];
  const converter = startConversion(head, to, (chunk) => out.push(chunk));
  yield converter.fileMeta;
  for await (const chunk of store.readObject(path, { chunkSize: FILE_CHUNK })) {
    converter.write(chunk);
    if (out.length > 0) {
      const ready = out;
      out = [];
      yield* ready;
    }
  }
  converter.end();
  yield* out;
}

/** The instance's URL (Content-Location of its part), when the index gave its study and series. */
function instanceUrl(base: string, i: RetrieveInstance): string | undefined {
  if (i.studyInstanceUid === undefined || i.seriesInstanceUid === undefined) return undefined;
  return `${base}/studies/${i.studyInstanceUid}/series/${i.seriesInstanceUid}/instances/${i.sopInstanceUid}`;
}

const UID_RE = new RegExp(UID_PATTERN);
const safeUid = (uid: string | undefined): uid is string =>
  uid !== undefined && uid.length <= 64 && UID_RE.test(uid);

/** The name of an instance in a ZIP: STUDY/SERIES/INSTANCE.dcm, UIDs checked (never `..` or a `/` from the data). */
export function zipEntryName(i: RetrieveInstance, n: number): string {
  const file = safeUid(i.sopInstanceUid) ? `${i.sopInstanceUid}.dcm` : `instance-${n}.dcm`;
  return safeUid(i.studyInstanceUid) && safeUid(i.seriesInstanceUid)
    ? `${i.studyInstanceUid}/${i.seriesInstanceUid}/${file}`
    : file;
}

function keysOf(params: UidParams): { keys: RetrieveKeys; what: string } {
  if (params.instance !== undefined)
    return {
      keys: {
        level: 'IMAGE',
        studyInstanceUids: [params.study ?? ''],
        seriesInstanceUids: [params.series ?? ''],
        sopInstanceUids: [params.instance],
      },
      what: `instance ${params.instance} of series ${params.series} of study ${params.study}`,
    };
  if (params.series !== undefined)
    return {
      keys: { level: 'SERIES', studyInstanceUids: [params.study ?? ''], seriesInstanceUids: [params.series] },
      what: `series ${params.series} of study ${params.study}`,
    };
  return { keys: { level: 'STUDY', studyInstanceUids: [params.study ?? ''] }, what: `study ${params.study}` };
}

/** Reads a string query value (the last of repeated ones). */
function queryString(query: unknown, name: string): string | undefined {
  const v = (query as Record<string, unknown> | undefined)?.[name];
  if (typeof v === 'string') return v;
  if (Array.isArray(v) && typeof v[v.length - 1] === 'string') return v[v.length - 1] as string;
  return undefined;
}

/**
 * Serves one retrieve request: index summary (404 when nothing matches), negotiation (406 with
 * the reason), then the streamed answer. HEAD answers the headers only.
 */
async function retrieve(
  context: DicomwebContext,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const params = request.params as UidParams;
  const { keys, what } = keysOf(params);
  const query = request.query as Record<string, unknown> | undefined;
  const ranges = acceptOf(request.headers, query);
  // PS3.18 8.7.8.2: the transfer-syntax query parameter applies to media types of the accept query parameter.
  const queryTs =
    queryString(query, 'accept') !== undefined ? queryString(query, 'transfer-syntax') : undefined;
  const options = retrieveOptions(ranges, params.instance !== undefined, queryTs);
  const source = retrieveSource(context.archive.index);
  const summary: RetrieveSummary = await source.summarize(keys);
  if (summary.instances === 0) throw httpError(404, 'ERR_HTTP_NOT_FOUND', `no ${what} in the archive`);
  const negotiated = negotiate(
    options,
    summary.syntaxes.map((s) => s.transferSyntaxUid),
  );
  if (!negotiated.ok) throw httpError(406, 'ERR_HTTP_NOT_ACCEPTABLE', negotiated.reason);

  const store = context.archive.store;
  const base = serviceUrl(context, request);
  const logger = context.logger;
  const planOf = (i: RetrieveInstance): Exclude<SendPlan, { kind: 'refused' }> => {
    // An instance replaced since the summary may be in another syntax: plan it on its own.
    const plan =
      negotiated.plans.get(i.transferSyntaxUid) ?? firstPlan(i.transferSyntaxUid, negotiated.options);
    if (plan.kind === 'refused') throw new Error(plan.reason);
    return plan;
  };
  const audit = reportRetrieved(context, request, reply, 'WADO-RS', params.study);
  const instances = () => sentInstances(source.instances(keys, { upTo: summary.lastPosition }), audit);
  reply.header('cache-control', 'private, no-cache');

  if (negotiated.format === 'single') {
    const first = await firstOf(instances());
    if (first === undefined) throw httpError(404, 'ERR_HTTP_NOT_FOUND', `no ${what} in the archive`);
    const plan = planOf(first);
    reply.header('content-type', `application/dicom; transfer-syntax=${plan.transferSyntaxUid}`);
    if (plan.kind === 'stored') reply.header('content-length', String(first.size));
    if (request.method === 'HEAD') return reply.send();
    let body = objectBody(store, first.path, plan, first.size);
    // A transcode is started before the status goes out: an object that cannot be is a 406; a
    // stored one is read ahead so that an integrity failure is a 500, not a cut answer.
    body =
      plan.kind === 'transcode' ? await transcodeStarted(body, plan.transferSyntaxUid) : await primed(body);
    body = logged(body, logger, request);
    return reply.send(Readable.from(body, { objectMode: false, highWaterMark: 64 * 1024 }));
  }

  if (negotiated.format === 'zip') {
    reply.header('content-type', 'application/zip');
    const name = params.instance ?? params.series ?? params.study ?? 'instances';
    reply.header('content-disposition', `attachment; filename="${name}.zip"`);
    if (request.method === 'HEAD') return reply.send();
    async function* entries(): AsyncGenerator<ZipEntry> {
      let n = 0;
      for await (const i of instances()) {
        const plan = planOf(i);
        yield {
          name: zipEntryName(i, ++n),
          sizeHint: plan.kind === 'stored' ? i.size : undefined,
          body: objectBody(store, i.path, plan, i.size),
        };
      }
    }
    return reply.send(
      Readable.from(logged(zipChunks(entries()), logger, request), {
        objectMode: false,
        highWaterMark: 64 * 1024,
      }),
    );
  }

  if (request.method === 'HEAD') {
    reply.header('content-type', 'multipart/related; type="application/dicom"');
    return reply.send();
  }
  async function* parts(): AsyncGenerator<MultipartPart> {
    for await (const i of instances()) {
      const plan = planOf(i);
      const location = instanceUrl(base, i);
      yield {
        contentType: `application/dicom; transfer-syntax=${plan.transferSyntaxUid}`,
        ...(location !== undefined ? { contentLocation: location } : {}),
        ...(plan.kind === 'stored' ? { contentLength: i.size } : {}),
        body: logged(objectBody(store, i.path, plan, i.size), logger, request),
      };
    }
  }
  return sendMultipart(reply, 'application/dicom', logged(await primedFirstPart(parts()), logger, request));
}

/** The instances as they are taken for sending, each counted for the audit trail. */
async function* sentInstances(
  items: AsyncIterable<RetrieveInstance>,
  count: (uid: string, study?: string) => void,
): AsyncGenerator<RetrieveInstance> {
  for await (const i of items) {
    count(i.sopInstanceUid, i.studyInstanceUid);
    yield i;
  }
}

async function firstOf<T>(items: AsyncIterable<T>): Promise<T | undefined> {
  for await (const item of items) return item;
  return undefined;
}

/**
 * Logs a failure of a body that is being streamed (the headers are out: the connection is cut, and
 * fastify's own logger is off), then passes it on.
 */
async function* logged<T>(
  body: AsyncIterable<T>,
  logger: Logger,
  request: FastifyRequest,
): AsyncGenerator<T> {
  try {
    yield* body;
  } catch (e) {
    logger.error(
      { method: request.method, url: request.url, err: e },
      'WADO-RS retrieve failed while streaming: the answer is cut',
    );
    throw e;
  }
}

/** Registers the retrieve routes (GET and HEAD) of the three levels. */
export async function registerRetrieve(app: FastifyInstance, context: DicomwebContext): Promise<void> {
  const handler = (request: FastifyRequest, reply: FastifyReply) => retrieve(context, request, reply);
  const common = {
    method: ['GET', 'HEAD'] as ['GET', 'HEAD'],
    // HEAD is answered here without reading any file (fastify's own HEAD route would read the body).
    exposeHeadRoute: false,
    config: { operation: 'dicomweb:retrieve' as const },
    handler,
  };
  app.route({ ...common, url: '/studies/:study', schema: { params: paramsSchema('study') } });
  app.route({
    ...common,
    url: '/studies/:study/series/:series',
    schema: { params: paramsSchema('study', 'series') },
  });
  app.route({
    ...common,
    url: '/studies/:study/series/:series/instances/:instance',
    schema: { params: paramsSchema('study', 'series', 'instance') },
  });
}
