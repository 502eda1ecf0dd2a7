/**
 * WADO-URI (PS3.18 9): GET /dicom-web/wado?requestType=WADO&studyUID=&seriesUID=&objectUID= (also
 * at /wado, where older viewers look). `contentType=application/dicom` answers the object as a
 * single Part-10 body streamed from its file; `image/jpeg` and `image/png` are rendered by a
 * RenderFn given by the rendering module (until one is given they answer 406). Without
 * contentType the standard's default applies: image/jpeg for an image object, application/dicom
 * for any other (PS3.18 9.4, contentType).
 *
 * Checked, each with a 400 naming the parameter: requestType (must be WADO), the three UIDs
 * (PS3.5 9.1), the rendering parameters' values, a transferSyntax with a rendered type (PS3.18
 * 9.4.2.4), and unknown parameters. `anonymize`, `presentationUID` and `presentationSeriesUID`
 * are not supported (400 saying so). `transferSyntax` is negotiated as WADO-RS does
 * (retrieve.ts planSyntax): default Explicit VR Little Endian, a valid syntax that cannot be
 * produced is 406. An object that is not in the archive, or not in the named study and series,
 * is 404.
 *
 * Authorization: the route's operation is 'dicomweb:view' (what a viewer shows); an answer in
 * application/dicom hands the object over, so it also asks the policy for 'dicomweb:retrieve'.
 */
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { IndexedInstance } from '../../archive/index/archive-index.js';
import { lookupUid } from '../../dicom/uid.js';
import { httpError } from '../errors.js';
import { parseAccept, rangeMatches } from '../media-type.js';
import { primed } from '../multipart-writer.js';
import { reportAccessed, reportRetrieved } from './audit-events.js';
import type { DicomwebContext } from './context.js';
import { checkUid, UID_PATTERN } from './params.js';
import { objectBody, planSyntax, requestedSyntax } from './retrieve.js';

/** What the renderer is asked: one frame of one archived object as a JPEG or PNG image. */
export interface RenderRequest {
  /** The archived object (its SOP class, stored syntax, study and series). */
  readonly instance: IndexedInstance;
  readonly mediaType: 'image/jpeg' | 'image/png';
  /** `frameNumber`, 1-based; default the first frame. */
  readonly frameNumber?: number;
  /** Output size in pixels (`rows`, `columns`). */
  readonly rows?: number;
  readonly columns?: number;
  /** `region`: left, top, right, bottom as fractions 0..1 of the image. */
  readonly region?: readonly [number, number, number, number];
  readonly windowCenter?: number;
  readonly windowWidth?: number;
  /** 1..100 (`imageQuality`, JPEG only). */
  readonly imageQuality?: number;
  /** `annotation` as given (patient, technique). */
  readonly annotation?: string;
  /** Aborted when the client goes away. */
  readonly signal: AbortSignal;
}

/** A rendered image: its media type and bytes. */
export interface RenderedImage {
  readonly contentType: string;
  readonly body: Uint8Array | AsyncIterable<Uint8Array>;
}

/**
 * The rendering entry point (provided by the rendering module, wired by the server). It throws an
 * HttpError for what it cannot render (a 406 for compressed pixel data it cannot decode...).
 */
export type RenderFn = (request: RenderRequest) => Promise<RenderedImage>;

/** Options of registerWadoUri. */
export interface WadoUriOptions {
  /** Renders image/jpeg and image/png; without it those answer 406 "rendering is not available". */
  readonly render?: RenderFn;
}

/** The parameters of PS3.18 9.4 (names compared without case: clients vary). */
const KNOWN = [
  'requestType',
  'studyUID',
  'seriesUID',
  'objectUID',
  'contentType',
  'charset',
  'anonymize',
  'annotation',
  'rows',
  'columns',
  'region',
  'windowCenter',
  'windowWidth',
  'frameNumber',
  'imageQuality',
  'presentationUID',
  'presentationSeriesUID',
  'transferSyntax',
] as const;
type Known = (typeof KNOWN)[number];
const KNOWN_BY_LOWER = new Map<string, Known>(KNOWN.map((k) => [k.toLowerCase(), k]));
const UNSUPPORTED: readonly Known[] = ['anonymize', 'presentationUID', 'presentationSeriesUID'];
const RENDERING: readonly Known[] = [
  'annotation',
  'rows',
  'columns',
  'region',
  'windowCenter',
  'windowWidth',
  'frameNumber',
  'imageQuality',
];

const bad = (reason: string) => httpError(400, 'ERR_HTTP_BAD_QUERY', reason);

/** The query as known parameter names to single values; 400 for unknown or repeated ones. */
function parameters(query: unknown): Partial<Record<Known, string>> {
  const out: Partial<Record<Known, string>> = {};
  for (const [key, value] of Object.entries((query ?? {}) as Record<string, unknown>)) {
    const name = KNOWN_BY_LOWER.get(key.toLowerCase());
    if (name === undefined)
      throw bad(`unknown WADO-URI parameter ${key} (PS3.18 9.4 defines ${KNOWN.join(', ')})`);
    if (Array.isArray(value) || out[name] !== undefined) throw bad(`${name} is given more than once`);
    out[name] = String(value);
  }
  return out;
}

function positiveInt(p: Partial<Record<Known, string>>, name: Known, max: number): number | undefined {
  const v = p[name];
  if (v === undefined) return undefined;
  if (!/^[0-9]+$/.test(v) || Number(v) < 1 || Number(v) > max)
    throw bad(`${name} must be an integer from 1 to ${max}`);
  return Number(v);
}

function decimal(p: Partial<Record<Known, string>>, name: Known): number | undefined {
  const v = p[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw bad(`${name} must be a decimal number`);
  return n;
}

function regionOf(value: string | undefined): [number, number, number, number] | undefined {
  if (value === undefined) return undefined;
  const parts = value.split(',').map((x) => Number(x.trim()));
  if (parts.length !== 4 || parts.some((x) => !Number.isFinite(x) || x < 0 || x > 1))
    throw bad('region must be four decimals from 0 to 1: left,top,right,bottom');
  const [l, t, r, b] = parts as [number, number, number, number];
  if (l >= r || t >= b) throw bad('region must have left < right and top < bottom');
  return [l, t, r, b];
}

/** True for SOP classes of images (their keyword names them: CTImageStorage, ...ImageStorage). */
function isImageClass(sopClassUid: string): boolean {
  const keyword = lookupUid(sopClassUid)?.keyword ?? '';
  return /Image/.test(keyword);
}

type WadoContentType = 'application/dicom' | 'image/jpeg' | 'image/png';

/** The content type to answer (PS3.18 9.4, contentType: a list with q values is allowed). */
function chooseContentType(value: string | undefined, image: boolean): WadoContentType {
  if (value === undefined || value.trim() === '') return image ? 'image/jpeg' : 'application/dicom';
  const ranges = parseAccept(value);
  const offered: WadoContentType[] = image
    ? ['image/jpeg', 'application/dicom', 'image/png']
    : ['application/dicom'];
  for (const r of ranges) {
    if (r.type === '*/*') return image ? 'image/jpeg' : 'application/dicom';
    const hit = offered.find((t) => rangeMatches(r, t));
    if (hit !== undefined) return hit;
  }
  throw httpError(
    406,
    'ERR_HTTP_NOT_ACCEPTABLE',
    `contentType ${value} cannot be answered: this object is available as ${offered.join(', ')}`,
  );
}

async function wadoUri(
  context: DicomwebContext,
  options: WadoUriOptions,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const p = parameters(request.query);
  if (p.requestType === undefined) throw bad('requestType is missing (it must be WADO)');
  if (p.requestType !== 'WADO') throw bad(`requestType must be WADO, not ${p.requestType}`);
  for (const name of ['studyUID', 'seriesUID', 'objectUID'] as const)
    if (p[name] === undefined) throw bad(`${name} is missing`);
  const studyUid = checkUid(p.studyUID, 'studyUID');
  const seriesUid = checkUid(p.seriesUID, 'seriesUID');
  const objectUid = checkUid(p.objectUID, 'objectUID');
  for (const name of UNSUPPORTED)
    if (p[name] !== undefined) throw bad(`${name} is not supported by this server`);
  const ts = p.transferSyntax;
  if (ts !== undefined && !new RegExp(UID_PATTERN).test(ts)) throw bad(`transferSyntax ${ts} is not a UID`);
  // Values are checked before the object is looked up: a bad request is a 400 whatever is archived.
  const rendering = {
    rows: positiveInt(p, 'rows', 65535),
    columns: positiveInt(p, 'columns', 65535),
    frameNumber: positiveInt(p, 'frameNumber', 2 ** 31 - 1),
    imageQuality: positiveInt(p, 'imageQuality', 100),
    windowCenter: decimal(p, 'windowCenter'),
    windowWidth: decimal(p, 'windowWidth'),
    region: regionOf(p.region),
  };
  if ((rendering.windowCenter === undefined) !== (rendering.windowWidth === undefined))
    throw bad('windowCenter and windowWidth go together (PS3.18 9.4.2)');
  if (rendering.windowWidth !== undefined && rendering.windowWidth < 1)
    throw bad('windowWidth must be at least 1');

  const instance = await context.archive.index.findInstance(objectUid);
  if (
    instance === undefined ||
    instance.studyInstanceUid !== studyUid ||
    instance.seriesInstanceUid !== seriesUid
  )
    throw httpError(
      404,
      'ERR_HTTP_NOT_FOUND',
      `no object ${objectUid} in series ${seriesUid} of study ${studyUid} in the archive`,
    );
  const contentType = chooseContentType(p.contentType, isImageClass(instance.sopClassUid));
  // The route is a view (rendered images); the object itself taken away is a retrieve.
  if (contentType === 'application/dicom') await request.authorize('dicomweb:retrieve');
  reply.header('cache-control', 'private, no-cache');

  if (contentType === 'application/dicom') {
    const given = RENDERING.filter((n) => p[n] !== undefined);
    if (given.length > 0) throw bad(`${given.join(', ')} apply to rendered images, not to application/dicom`);
    const plan = planSyntax(instance.transferSyntaxUid, requestedSyntax(ts));
    if (plan.kind === 'refused') throw httpError(406, 'ERR_HTTP_NOT_ACCEPTABLE', plan.reason);
    // PS3.18 8.7.3.5.2: no transfer-syntax parameter in URI service responses.
    reply.header('content-type', 'application/dicom');
    if (plan.kind === 'stored') reply.header('content-length', String(instance.size));
    if (request.method === 'HEAD') return reply.send();
    reportRetrieved(context, request, reply, 'WADO-URI', studyUid)(objectUid);
    return reply.send(
      Readable.from(await primed(objectBody(context.archive.store, instance.path, plan, instance.size)), {
        objectMode: false,
        highWaterMark: 64 * 1024,
      }),
    );
  }

  if (ts !== undefined)
    throw bad('transferSyntax applies to contentType application/dicom only (PS3.18 9.4.2.4)');
  if (options.render === undefined)
    throw httpError(
      406,
      'ERR_HTTP_NOT_ACCEPTABLE',
      `rendering is not available: ${contentType} cannot be produced; ask contentType=application/dicom`,
    );
  const abort = new AbortController();
  request.raw.once('close', () => abort.abort());
  const image = await options.render({
    instance,
    mediaType: contentType,
    ...(rendering.frameNumber !== undefined ? { frameNumber: rendering.frameNumber } : {}),
    ...(rendering.rows !== undefined ? { rows: rendering.rows } : {}),
    ...(rendering.columns !== undefined ? { columns: rendering.columns } : {}),
    ...(rendering.region !== undefined ? { region: rendering.region } : {}),
    ...(rendering.windowCenter !== undefined ? { windowCenter: rendering.windowCenter } : {}),
    ...(rendering.windowWidth !== undefined ? { windowWidth: rendering.windowWidth } : {}),
    ...(rendering.imageQuality !== undefined ? { imageQuality: rendering.imageQuality } : {}),
    ...(p.annotation !== undefined ? { annotation: p.annotation } : {}),
    signal: abort.signal,
  });
  reply.header('content-type', image.contentType);
  if (request.method === 'HEAD') return reply.send();
  reportAccessed(context, request, reply, 'WADO-URI rendered', studyUid, objectUid);
  if (image.body instanceof Uint8Array)
    return reply.send(Buffer.from(image.body.buffer, image.body.byteOffset, image.body.length));
  return reply.send(Readable.from(image.body, { objectMode: false }));
}

/** Registers GET and HEAD `/wado` (under the prefix it is registered with). */
export async function registerWadoUri(
  app: FastifyInstance,
  context: DicomwebContext,
  options: WadoUriOptions = {},
): Promise<void> {
  app.route({
    method: ['GET', 'HEAD'],
    url: '/wado',
    exposeHeadRoute: false,
    config: { operation: 'dicomweb:view' },
    handler: (request, reply) => wadoUri(context, options, request, reply),
  });
}
