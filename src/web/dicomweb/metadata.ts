/**
 * WADO-RS metadata (PS3.18 10.4, 8.7.3.3.1 / F.2): the DICOM JSON of every instance of a study,
 * a series or one instance, assembled from what the index kept at ingest (ARCHITECTURE.md
 * decision 8) without opening a file, streamed a page at a time, compressed by Accept-Encoding
 * (gzip or br), with an ETag made of the scope's instance count and last change. BulkDataURIs are
 * stored relative (`bulk/{tagpath}`) and made absolute here. Rows indexed before the metadata was
 * kept read their file once (the documents are then stored).
 *
 * Only `application/dicom+json` is served; `multipart/related; type="application/dicom+xml"` is
 * not (406 with a reason).
 *
 * This module also registers the bulk data and frame routes (bulkdata.ts, frames.ts).
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { createBrotliCompress, createGzip, constants as zlibConstants } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { MetadataScope } from '../../archive/index/archive-index.js';
import { BULK_URI_PREFIX } from '../../archive/index/capture.js';
import { httpError } from '../errors.js';
import { acceptOf, rangeMatches } from '../media-type.js';
import { reportAccessed } from './audit-events.js';
import { registerBulkdata } from './bulkdata.js';
import { type DicomwebContext, serviceUrl } from './context.js';
import { registerFrames } from './frames.js';
import { paramsSchema } from './params.js';
import { backfill } from './parts.js';

const DICOM_JSON = 'application/dicom+json';

/** Rows' text is gathered into writes of about this size. */
const WRITE_SIZE = 64 * 1024;

/** Registers the metadata, bulk data and frame routes of WADO-RS. */
export async function registerMetadata(app: FastifyInstance, context: DicomwebContext): Promise<void> {
  const route = (url: string, names: Array<'study' | 'series' | 'instance'>) =>
    app.route({
      method: 'GET',
      url,
      config: { operation: 'dicomweb:view' },
      schema: { params: paramsSchema(...names) },
      handler: (request, reply) => serveMetadata(context, request, reply),
    });
  route('/studies/:study/metadata', ['study']);
  route('/studies/:study/series/:series/metadata', ['study', 'series']);
  route('/studies/:study/series/:series/instances/:instance/metadata', ['study', 'series', 'instance']);
  registerBulkdata(app, context);
  registerFrames(app, context);
}

function scopeOf(request: FastifyRequest): MetadataScope {
  const p = request.params as { study: string; series?: string; instance?: string };
  return {
    studyInstanceUid: p.study,
    ...(p.series !== undefined ? { seriesInstanceUid: p.series } : {}),
    ...(p.instance !== undefined ? { sopInstanceUid: p.instance } : {}),
  };
}

async function serveMetadata(
  context: DicomwebContext,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const accept = acceptOf(request.headers, request.query as Record<string, unknown>);
  if (!accept.some((r) => rangeMatches(r, DICOM_JSON) || rangeMatches(r, 'application/json')))
    throw httpError(
      406,
      'ERR_HTTP_NOT_ACCEPTABLE',
      `metadata is served as ${DICOM_JSON} only (multipart/related; type="application/dicom+xml" is not supported)`,
    );
  const scope = scopeOf(request);
  const index = context.archive.index;
  const version = await index.metadataVersion(scope);
  if (!version) throw await notFound(context, scope);

  const encoding = chooseEncoding(request.headers['accept-encoding']);
  const tag = createHash('sha1')
    .update(`${scope.studyInstanceUid}/${scope.seriesInstanceUid ?? ''}/${scope.sopInstanceUid ?? ''}`)
    .update(`/${version.instances}/${version.changedAt}`)
    .digest('base64url')
    .slice(0, 22);
  const etag = `"${tag}${encoding === 'identity' ? '' : `-${encoding}`}"`;
  reply.header('ETag', etag);
  reply.header('Vary', 'Accept-Encoding');
  reply.header('Cache-Control', 'no-cache');
  if (matchesEtag(request.headers['if-none-match'], etag)) return reply.code(304).send();

  const base = serviceUrl(context, request);
  reportAccessed(context, request, reply, 'WADO-RS metadata', scope.studyInstanceUid, scope.sopInstanceUid);
  const body = Readable.from(metadataText(context, scope, base), { objectMode: false });
  reply.type(DICOM_JSON);
  if (encoding === 'identity') return reply.send(body);
  reply.header('Content-Encoding', encoding);
  const compressor =
    encoding === 'gzip'
      ? createGzip({ level: 3 })
      : createBrotliCompress({ params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 4 } });
  body.on('error', (e) => compressor.destroy(e));
  return reply.send(body.pipe(compressor));
}

/** The JSON array, a page of rows at a time, in writes of about WRITE_SIZE. */
async function* metadataText(
  context: DicomwebContext,
  scope: MetadataScope,
  base: string,
): AsyncGenerator<string> {
  // A JSON string's content: the base URL comes from the Host header.
  const baseText = JSON.stringify(base).slice(1, -1);
  const key = `"BulkDataURI":"${BULK_URI_PREFIX}`;
  let out = '[';
  let first = true;
  for await (const row of context.archive.index.instanceMetadata(scope)) {
    const text = row.metadata ?? (await backfill(context, row)).metadata;
    const prefix = `"BulkDataURI":"${baseText}/studies/${row.studyInstanceUid}/series/${row.seriesInstanceUid}/instances/${row.sopInstanceUid}/${BULK_URI_PREFIX}`;
    out += (first ? '' : ',') + (text.includes(key) ? text.replaceAll(key, prefix) : text);
    first = false;
    if (out.length >= WRITE_SIZE) {
      yield out;
      out = '';
    }
  }
  yield `${out}]`;
}

/** 404 saying which level is unknown. */
async function notFound(context: DicomwebContext, scope: MetadataScope): Promise<Error> {
  const index = context.archive.index;
  const study = await index.findStudy(scope.studyInstanceUid);
  if (!study) return httpError(404, 'ERR_HTTP_NOT_FOUND', `no study ${scope.studyInstanceUid}`);
  if (scope.seriesInstanceUid !== undefined) {
    const series = await index.findSeries(scope.seriesInstanceUid);
    if (!series || series.studyInstanceUid !== scope.studyInstanceUid)
      return httpError(
        404,
        'ERR_HTTP_NOT_FOUND',
        `no series ${scope.seriesInstanceUid} in study ${scope.studyInstanceUid}`,
      );
  }
  return httpError(
    404,
    'ERR_HTTP_NOT_FOUND',
    `no instance ${scope.sopInstanceUid ?? ''} in series ${scope.seriesInstanceUid ?? ''}`,
  );
}

/** gzip or br by the Accept-Encoding q-values (gzip first on a tie: it is the faster of the two). */
export function chooseEncoding(header: string | string[] | undefined): 'gzip' | 'br' | 'identity' {
  const text = Array.isArray(header) ? header.join(',') : (header ?? '');
  let gzip = 0;
  let br = 0;
  let star = 0;
  for (const part of text.split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    let q = 1;
    for (const p of params) {
      const m = /^\s*q\s*=\s*([0-9.]+)\s*$/.exec(p);
      if (m) q = Number(m[1]);
    }
    if (!Number.isFinite(q)) q = 0;
    if (name === 'gzip' || name === 'x-gzip') gzip = q;
    else if (name === 'br') br = q;
    else if (name === '*') star = q;
  }
  if (gzip === 0 && br === 0 && star > 0) gzip = star;
  if (gzip === 0 && br === 0) return 'identity';
  return br > gzip ? 'br' : 'gzip';
}

/** RFC 9110 13.1.2: weak comparison, a list or `*`. */
function matchesEtag(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  const strip = (t: string) => t.trim().replace(/^W\//, '');
  return header.split(',').some((t) => strip(t) === etag);
}
