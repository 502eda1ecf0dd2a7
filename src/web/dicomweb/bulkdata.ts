/**
 * WADO-RS bulk data (PS3.18 10.4.1.1.5, 8.7.3.3.2): the BulkDataURIs the metadata gives,
 * `.../instances/{i}/bulk/{tagpath}` where tagpath is the attribute's tag as 8 hex digits, inside
 * sequences `SEQUENCE.ITEM.TAG` with 0-based items (`00540016.0.00181072`). The value is read
 * from the object file by the offset and length kept at ingest, little endian (a big endian file's
 * value is swapped). Answers `multipart/related; type="application/octet-stream"` (one part) by
 * default and the bare bytes when Accept is `application/octet-stream`; a single-part answer
 * honours one `Range: bytes=` (206, or 416). The top-level Pixel Data of compressed objects is
 * sent as its frames (as frames.ts does for every frame); nested encapsulated values (an icon) as
 * their fragments' bytes.
 */
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { httpError } from '../errors.js';
import { acceptOf, rangeMatches } from '../media-type.js';
import { closeDelimiter, multipartContentType, newBoundary, partHead, primed } from '../multipart-writer.js';
import type { DicomwebContext } from './context.js';
import { frameCount, sendFrames } from './frames.js';
import { paramsSchema } from './params.js';
import { type LoadedInstance, loadInstance, readValue, readValueByParsing } from './parts.js';

const OCTETS = 'application/octet-stream';
const TAG_PATH = /^[0-9A-Fa-f]{8}(\.\d{1,6}\.[0-9A-Fa-f]{8}){0,16}$/;

/** Registers GET .../bulk/{tagpath}. */
export function registerBulkdata(app: FastifyInstance, context: DicomwebContext): void {
  app.route({
    method: 'GET',
    url: '/studies/:study/series/:series/instances/:instance/bulk/:path',
    config: { operation: 'dicomweb:view' },
    schema: {
      params: {
        type: 'object',
        properties: { ...paramsSchema('study', 'series', 'instance').properties, path: { type: 'string' } },
        required: ['study', 'series', 'instance', 'path'],
      },
    },
    handler: async (request, reply) => {
      const p = request.params as { study: string; series: string; instance: string; path: string };
      if (!TAG_PATH.test(p.path))
        throw httpError(
          400,
          'ERR_HTTP_BAD_TAG_PATH',
          'a bulk data path is TAG or SEQUENCE.ITEM.TAG..., tags as 8 hex digits',
        );
      const loaded = await loadInstance(context, {
        studyInstanceUid: p.study,
        seriesInstanceUid: p.series,
        sopInstanceUid: p.instance,
      });
      return sendBulk(request, reply, loaded, p.path.toUpperCase());
    },
  });
}

async function sendBulk(
  request: FastifyRequest,
  reply: FastifyReply,
  loaded: LoadedInstance,
  path: string,
): Promise<FastifyReply> {
  const value = loaded.layout.values.find((v) => v.path === path);
  if (!value)
    throw httpError(
      404,
      'ERR_HTTP_NOT_FOUND',
      `instance ${loaded.row.sopInstanceUid} has no bulk data at ${path}`,
    );
  const pixels = loaded.layout.pixels;
  if (value.encapsulated && pixels?.kind === 'encapsulated' && pixels.path === path) {
    const all = Array.from({ length: frameCount(pixels) }, (_, i) => i + 1);
    return sendFrames(request, reply, loaded, all);
  }
  const accept = acceptOf(request.headers, request.query as Record<string, unknown>);
  let single = false;
  let acceptable = false;
  for (const r of accept) {
    if (r.type === OCTETS) {
      single = true;
      acceptable = true;
      break;
    }
    if (
      r.type === '*/*' ||
      (r.type === 'multipart/related' &&
        rangeMatches({ type: (r.params['type'] ?? '*/*').toLowerCase(), params: {}, q: 1 }, OCTETS))
    ) {
      acceptable = true;
      break;
    }
  }
  if (!acceptable)
    throw httpError(
      406,
      'ERR_HTTP_NOT_ACCEPTABLE',
      `bulk data is sent as ${OCTETS} or multipart/related; type="${OCTETS}"`,
    );
  const length = value.ranges.reduce((n, r) => n + r[1], 0);
  const read = (start: number, end: number): AsyncGenerator<Buffer> | Promise<Buffer> =>
    loaded.layout.addressable
      ? readValue(loaded.object, value.ranges, value.swap, start, end)
      : readValueByParsing(loaded.object, value.path, start, end);
  // The first bytes are read before the answer starts: an object that fails its integrity check is a 500.
  const stream = async (start: number, end: number) => {
    const r = read(start, end);
    return r instanceof Promise
      ? Readable.from(oneOf(Promise.resolve(await r)), { objectMode: false })
      : Readable.from(await primed(r), { objectMode: false });
  };

  if (single) {
    reply.header('Accept-Ranges', 'bytes');
    const range = parseRange(request.headers.range, length);
    if (range === 'unsatisfiable') {
      reply.header('Content-Range', `bytes */${length}`);
      throw httpError(416, 'ERR_HTTP_RANGE_NOT_SATISFIABLE', `the value has ${length} bytes`, {
        headers: { 'Content-Range': `bytes */${length}` },
      });
    }
    reply.type(OCTETS);
    if (range) {
      reply.code(206).header('Content-Range', `bytes ${range[0]}-${range[1] - 1}/${length}`);
      reply.header('Content-Length', String(range[1] - range[0]));
      return reply.send(await stream(range[0], range[1]));
    }
    reply.header('Content-Length', String(length));
    return reply.send(await stream(0, length));
  }
  const boundary = newBoundary();
  reply.type(multipartContentType(OCTETS, boundary));
  async function* body(): AsyncGenerator<Buffer> {
    yield partHead(boundary, { contentType: OCTETS }, true);
    const r = read(0, length);
    if (r instanceof Promise) yield await r;
    else yield* r;
    yield closeDelimiter(boundary);
  }
  return reply.send(Readable.from(body(), { objectMode: false }));
}

async function* oneOf(p: Promise<Buffer>): AsyncGenerator<Buffer> {
  yield await p;
}

/**
 * One `bytes=` range of RFC 9110 14.1.2 as [start, end); undefined when absent, not bytes, or
 * several ranges (answered whole, as RFC 9110 allows); 'unsatisfiable' when it lies past the end.
 */
export function parseRange(
  header: string | undefined,
  length: number,
): [number, number] | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m) return undefined;
  const [, a, b] = m;
  if (a === '' && b === '') return undefined;
  if (a === '') {
    const n = Number(b);
    if (n === 0) return 'unsatisfiable';
    return [Math.max(0, length - n), length];
  }
  const start = Number(a);
  if (b !== '' && Number(b) < start) return undefined;
  const end = b === '' ? length - 1 : Math.min(Number(b), length - 1);
  if (start >= length || end < start) return 'unsatisfiable';
  return [start, end + 1];
}
