/**
 * WADO-RS rendered resources (PS3.18 10.4.1.1.3 / 8.3.5): `/rendered` and `/thumbnail` of a
 * study, a series, an instance and `/frames/{list}`, as image/jpeg (default) or image/png.
 * Query parameters: `quality`, `window`, `viewport`, `annotation` (accepted and ignored: nothing
 * is burnt in; values other than patient and technique are 400), `accept`; any other is 400.
 * What is rendered for each level: render-service.ts.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { httpError } from '../errors.js';
import { acceptOf } from '../media-type.js';
import { reportAccessed } from './audit-events.js';
import type { DicomwebContext } from './context.js';
import { paramsSchema, type UidParams } from './params.js';
import { parseQuality, parseViewport, parseWindow, renderInstance } from './render-service.js';

const KNOWN_QUERY = new Set(['accept', 'quality', 'window', 'viewport', 'annotation', 'charset']);

type Query = Readonly<Record<string, unknown>>;

/** The single value of a query parameter (400 when it is repeated). */
function single(query: Query, name: string): string | undefined {
  const v = query[name];
  if (v === undefined) return undefined;
  if (Array.isArray(v)) throw httpError(400, 'ERR_HTTP_BAD_QUERY', `${name} is given more than once`);
  return String(v);
}

function checkQuery(query: Query): void {
  const unknown = Object.keys(query).filter((k) => !KNOWN_QUERY.has(k));
  if (unknown.length > 0)
    throw httpError(
      400,
      'ERR_HTTP_BAD_QUERY',
      `unknown query parameter ${unknown.join(', ')} for a rendered resource`,
    );
  const annotation = single(query, 'annotation');
  if (annotation !== undefined) {
    // PS3.18 8.3.5.1.1: patient and/or technique; we accept them and burn nothing in.
    const bad = annotation.split(',').filter((a) => a.trim() !== 'patient' && a.trim() !== 'technique');
    if (bad.length > 0)
      throw httpError(
        400,
        'ERR_HTTP_BAD_QUERY',
        `annotation must be patient and/or technique (got ${JSON.stringify(annotation)})`,
      );
  }
}

/** `1`, `1,3`: frame numbers from 1 (PS3.18 10.4.1.1.2). */
function parseFrames(text: string): number[] {
  const parts = text.split(',');
  const frames = parts.map((p) => Number(p.trim()));
  if (parts.some((p) => !/^\s*\d+\s*$/.test(p)) || frames.some((f) => f < 1 || !Number.isSafeInteger(f)))
    throw httpError(
      400,
      'ERR_HTTP_BAD_FRAMES',
      `frames must be a comma-separated list of frame numbers from 1 (got ${JSON.stringify(text)})`,
    );
  return frames;
}

async function answer(
  context: DicomwebContext,
  request: FastifyRequest,
  reply: FastifyReply,
  thumbnail: boolean,
): Promise<FastifyReply> {
  const params = request.params as UidParams & { frames?: string };
  const query = (request.query ?? {}) as Query;
  checkQuery(query);
  const quality = parseQuality(single(query, 'quality'));
  const window = parseWindow(single(query, 'window'));
  const viewport = parseViewport(single(query, 'viewport'));
  let frame: number | undefined;
  if (params.frames !== undefined) {
    const frames = parseFrames(params.frames);
    if (frames.length > 1)
      throw httpError(
        406,
        'ERR_HTTP_NOT_ACCEPTABLE',
        'image/jpeg and image/png hold one frame: ask for one frame at a time',
      );
    frame = frames[0];
  }
  const image = await renderInstance(context, {
    study: params.study as string,
    ...(params.series !== undefined ? { series: params.series } : {}),
    ...(params.instance !== undefined ? { instance: params.instance } : {}),
    ...(frame !== undefined ? { frame } : {}),
    accept: acceptOf(request.headers, query),
    thumbnail,
    ...(quality !== undefined ? { quality } : {}),
    ...(window !== undefined ? { window } : {}),
    ...(viewport !== undefined ? { viewport } : {}),
  });
  reportAccessed(
    context,
    request,
    reply,
    thumbnail ? 'thumbnail' : 'rendered',
    params.study,
    params.instance,
  );
  return reply
    .header('content-type', image.contentType)
    .header('content-length', image.body.length)
    .header('vary', 'Accept')
    .send(image.body);
}

/** Registers the rendered and thumbnail routes under /dicom-web. */
export async function registerRendered(app: FastifyInstance, context: DicomwebContext): Promise<void> {
  const levels: Array<{ path: string; params: ReturnType<typeof paramsSchema> | Record<string, unknown> }> = [
    { path: '/studies/:study', params: paramsSchema('study') },
    { path: '/studies/:study/series/:series', params: paramsSchema('study', 'series') },
    {
      path: '/studies/:study/series/:series/instances/:instance',
      params: paramsSchema('study', 'series', 'instance'),
    },
  ];
  const instanceParams = paramsSchema('study', 'series', 'instance');
  levels.push({
    path: '/studies/:study/series/:series/instances/:instance/frames/:frames',
    params: {
      ...instanceParams,
      properties: { ...instanceParams.properties, frames: { type: 'string', maxLength: 4096 } },
      required: [...instanceParams.required, 'frames'],
    },
  });
  for (const level of levels)
    for (const kind of ['rendered', 'thumbnail'] as const)
      app.get(
        `${level.path}/${kind}`,
        { config: { operation: 'dicomweb:view' }, schema: { params: level.params } },
        (request, reply) => answer(context, request, reply, kind === 'thumbnail'),
      );
}
