/**
 * WADO-RS frames (PS3.18 10.4.1.1.4, 8.7.3.5.2): `.../instances/{i}/frames/{list}`, the frames
 * read straight from the object file by the offsets kept at ingest (no parsing per request).
 * Native frames go as `application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1` (big endian
 * files swapped to little endian); encapsulated frames as stored, with the media type of their
 * syntax (image/jpeg, image/jls, image/jp2, image/jphc, image/dicom-rle, video/...) and the
 * stored syntax in `transfer-syntax=` on every part. What the client accepts decides; a form
 * that needs decoding or encoding is transcoded frame by frame when a codec can (lossless only),
 * 406 with the reason otherwise.
 *
 * Accepted: `multipart/related; type="application/octet-stream"` (native; compressed data only
 * with `transfer-syntax=*` or the stored syntax), `multipart/related; type="<media type of the
 * stored syntax>"` (transfer-syntax absent, `*` or the stored one), `multipart/related` with no
 * type or `type="*\/*"`, `*\/*` (as stored), and `application/octet-stream` for one frame.
 */
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { PixelLayout } from '../../archive/index/capture.js';
import type { ObjectStore } from '../../archive/store.js';
import { httpError } from '../errors.js';
import { acceptOf, type MediaRange } from '../media-type.js';
import { closeDelimiter, multipartContentType, newBoundary, partHead } from '../multipart-writer.js';
import type { DicomwebContext } from './context.js';
import { paramsSchema } from './params.js';
import {
  frameMediaType,
  isNativeSyntax,
  type LoadedInstance,
  loadInstance,
  NATIVE_FRAME_SYNTAX,
  nativeFrameSpan,
  readValue,
  readValueByParsing,
  readValueInto,
  readValueWhole,
} from './parts.js';
import { frameTarget, pixelModuleOfObject, transcodedFrame } from './transcoded.js';

/** Registers GET .../frames/{list}. */
export function registerFrames(app: FastifyInstance, context: DicomwebContext): void {
  app.route({
    method: 'GET',
    url: '/studies/:study/series/:series/instances/:instance/frames/:frames',
    config: { operation: 'dicomweb:view' },
    schema: {
      params: {
        type: 'object',
        properties: { ...paramsSchema('study', 'series', 'instance').properties, frames: { type: 'string' } },
        required: ['study', 'series', 'instance', 'frames'],
      },
    },
    handler: async (request, reply) => {
      const p = request.params as { study: string; series: string; instance: string; frames: string };
      const numbers = parseFrameList(p.frames);
      const loaded = await loadInstance(context, {
        studyInstanceUid: p.study,
        seriesInstanceUid: p.series,
        sopInstanceUid: p.instance,
      });
      return sendFrames(request, reply, loaded, numbers, context.archive.store);
    },
  });
}

/** "1,3,5" -> [1, 3, 5]; 400 for anything but a comma separated list of positive integers. */
export function parseFrameList(text: string): number[] {
  if (!/^\s*\d+\s*(,\s*\d+\s*)*$/.test(text))
    throw httpError(
      400,
      'ERR_HTTP_BAD_FRAME_LIST',
      `frame list '${text.slice(0, 64)}' is not a list of frame numbers like 1,3,5`,
    );
  const numbers = text.split(',').map((t) => Number(t.trim()));
  if (numbers.some((n) => !Number.isSafeInteger(n) || n < 1))
    throw httpError(400, 'ERR_HTTP_BAD_FRAME_LIST', 'frame numbers start at 1');
  if (numbers.length > 10_000)
    throw httpError(400, 'ERR_HTTP_BAD_FRAME_LIST', 'at most 10000 frames per request');
  return numbers;
}

/** How the frames are sent: the part Content-Type, and whether as one single-part body. */
interface FrameForm {
  readonly partType: string;
  readonly transferSyntax: string;
  readonly single: boolean;
  /** Set when each frame is decoded and/or encoded into transferSyntax (transcoded.ts). */
  readonly transcode?: boolean;
}

/** The first Accept range the stored frames can be sent in without re-encoding; 406 with the reasons otherwise. */
export function negotiateFrames(
  accept: readonly MediaRange[],
  storedSyntax: string,
  count: number,
): FrameForm {
  const native = isNativeSyntax(storedSyntax);
  const ts = native ? NATIVE_FRAME_SYNTAX : storedSyntax;
  const media = native ? 'application/octet-stream' : frameMediaType(storedSyntax);
  const asStored: FrameForm = { partType: media, transferSyntax: ts, single: false };
  const reasons: string[] = [];
  for (const range of accept) {
    const wanted = range.params['transfer-syntax'];
    if (range.type === '*/*') return asStored;
    if (range.type === 'application/octet-stream') {
      if (count !== 1) {
        reasons.push(
          'application/octet-stream (single part) holds one frame only: ask for multipart/related',
        );
        continue;
      }
      if (native || wanted === '*' || wanted === storedSyntax)
        return { partType: 'application/octet-stream', transferSyntax: ts, single: true };
      const t = frameTarget(storedSyntax, range.type, wanted, frameMediaType);
      if ('to' in t) return { partType: range.type, transferSyntax: t.to, single: true, transcode: true };
      reasons.push(t.reason);
      continue;
    }
    if (range.type !== 'multipart/related') {
      reasons.push(`${range.type} is not a form frames are sent in`);
      continue;
    }
    const inner = (range.params['type'] ?? '*/*').toLowerCase();
    if (inner === '*/*' || (inner.endsWith('/*') && media.startsWith(inner.slice(0, -1))))
      if (wanted === undefined || wanted === '*' || wanted === ts) return asStored;
    if (inner === 'application/octet-stream') {
      if (native) {
        if (wanted === undefined || wanted === '*' || wanted === NATIVE_FRAME_SYNTAX)
          return { partType: inner, transferSyntax: ts, single: false };
        reasons.push(
          `native frames are sent as application/octet-stream in ${NATIVE_FRAME_SYNTAX}, not ${wanted}: ask for the media type of ${wanted} to have them encoded`,
        );
        continue;
      }
      if (wanted === '*' || wanted === storedSyntax)
        return { partType: inner, transferSyntax: ts, single: false };
      const t = frameTarget(storedSyntax, inner, wanted, frameMediaType);
      if ('to' in t) return { partType: inner, transferSyntax: t.to, single: false, transcode: true };
      reasons.push(t.reason);
      continue;
    }
    if (inner === media && !native) {
      if (wanted === undefined || wanted === '*' || wanted === storedSyntax)
        return { partType: media, transferSyntax: ts, single: false };
    }
    const t = frameTarget(ts, inner, wanted === '*' ? undefined : wanted, frameMediaType);
    if ('to' in t) return { partType: inner, transferSyntax: t.to, single: false, transcode: true };
    reasons.push(t.reason);
  }
  throw httpError(406, 'ERR_HTTP_NOT_ACCEPTABLE', `no acceptable form for the frames: ${reasons.join('; ')}`);
}

/** Where the bytes of each frame are: ranges of the file, or a span of the value to parse out (deflated). */
type FrameSource =
  | {
      readonly kind: 'ranges';
      readonly ranges: ReadonlyArray<readonly [number, number]>;
      readonly swap: 0 | 2 | 4 | 8;
      readonly start: number;
      readonly end: number;
    }
  | { readonly kind: 'parse'; readonly path: string; readonly start: number; readonly end: number };

function frameSources(loaded: LoadedInstance, numbers: readonly number[]): FrameSource[] {
  const pixels = loaded.layout.pixels;
  if (!pixels)
    throw httpError(404, 'ERR_HTTP_NO_FRAMES', `instance ${loaded.row.sopInstanceUid} has no pixel data`);
  const count = frameCount(pixels);
  const past = numbers.find((n) => n > count);
  if (past !== undefined)
    throw httpError(
      404,
      'ERR_HTTP_NO_SUCH_FRAME',
      `frame ${past} is past the last frame (${count}) of the instance`,
    );
  if (pixels.kind === 'native') {
    if (pixels.frameBits % 8 !== 0 && count > 1)
      throw httpError(
        406,
        'ERR_HTTP_NOT_ACCEPTABLE',
        'the frames of this instance do not start on byte boundaries (1-bit data): retrieve the whole pixel data instead',
      );
    return numbers.map((n) => {
      const [start, end] =
        count === 1 && pixels.frameBits % 8 !== 0
          ? [0, Math.ceil(pixels.frameBits / 8)]
          : nativeFrameSpan(pixels, n);
      return loaded.layout.addressable
        ? { kind: 'ranges', ranges: [[pixels.offset, pixels.length]], swap: pixels.swap, start, end }
        : { kind: 'parse', path: pixels.path, start, end };
    });
  }
  const frames = pixels.frames;
  if (!frames)
    throw httpError(
      406,
      'ERR_HTTP_NOT_ACCEPTABLE',
      'the frame boundaries of this encapsulated pixel data are unknown (no offset table, fragments do not match the frames)',
    );
  return numbers.map((n) => {
    const [first, fragments] = frames[n - 1] as readonly [number, number];
    const ranges = pixels.fragments.slice(first, first + fragments);
    return { kind: 'ranges', ranges, swap: 0, start: 0, end: ranges.reduce((s, r) => s + r[1], 0) };
  });
}

/** Frames in the pixel data. */
export function frameCount(pixels: PixelLayout): number {
  return pixels.kind === 'native' ? pixels.frames : (pixels.frames?.length ?? 1);
}

async function readWhole(loaded: LoadedInstance, s: FrameSource): Promise<Buffer> {
  return s.kind === 'ranges'
    ? readValueWhole(loaded.object, s.ranges, s.swap, s.start, s.end)
    : readValueByParsing(loaded.object, s.path, s.start, s.end);
}

async function* readStream(loaded: LoadedInstance, s: FrameSource): AsyncGenerator<Buffer> {
  if (s.kind === 'ranges') yield* readValue(loaded.object, s.ranges, s.swap, s.start, s.end);
  else yield await readValueByParsing(loaded.object, s.path, s.start, s.end);
}

/** Frames up to this size are read whole and sent in one write. */
const SMALL_ANSWER = 4 * 1024 * 1024;

/** Sends the frames `numbers` (1-based) of a loaded instance in the form the client accepts. */
export async function sendFrames(
  request: FastifyRequest,
  reply: FastifyReply,
  loaded: LoadedInstance,
  numbers: readonly number[],
  /** Where the object's header is read for a transcode (without it, forms that need one are refused). */
  store?: Pick<ObjectStore, 'readObject'>,
): Promise<FastifyReply> {
  const sources = frameSources(loaded, numbers);
  const form = negotiateFrames(
    acceptOf(request.headers, request.query as Record<string, unknown>),
    loaded.row.transferSyntaxUid,
    numbers.length,
  );
  const partType = `${form.partType}; transfer-syntax=${form.transferSyntax}`;
  if (form.transcode) {
    if (store === undefined)
      throw httpError(
        406,
        'ERR_HTTP_NOT_ACCEPTABLE',
        'frames are transcoded by the .../frames/{list} resource only',
      );
    return sendTranscoded(reply, loaded, sources, form, partType, store);
  }
  if (form.single) {
    const data = await readWhole(loaded, sources[0] as FrameSource);
    return reply.type(partType).send(data);
  }
  const boundary = newBoundary();
  reply.type(multipartContentType(form.partType, boundary));
  const total = sources.reduce((n, s) => n + (s.end - s.start), 0);
  if (total <= SMALL_ANSWER) {
    // One buffer, the frames read straight into place between the part headers.
    const heads = sources.map((_, i) => partHead(boundary, { contentType: partType }, i === 0));
    const tail = closeDelimiter(boundary);
    const out = Buffer.allocUnsafe(heads.reduce((n, h) => n + h.length, 0) + total + tail.length);
    let at = 0;
    for (const [i, s] of sources.entries()) {
      at += (heads[i] as Buffer).copy(out, at);
      if (s.kind === 'ranges')
        at += await readValueInto(loaded.object, s.ranges, s.swap, s.start, s.end, out, at);
      else at += (await readWhole(loaded, s)).copy(out, at);
    }
    tail.copy(out, at);
    return reply.send(out);
  }
  async function* body(): AsyncGenerator<Buffer> {
    for (let i = 0; i < sources.length; i++) {
      yield partHead(boundary, { contentType: partType }, i === 0);
      yield* readStream(loaded, sources[i] as FrameSource);
    }
    yield closeDelimiter(boundary);
  }
  return reply.send(Readable.from(body(), { objectMode: false }));
}

/**
 * Frames decoded and/or encoded one by one on the worker pool (a viewer waits: interactive
 * priority), the next one transcoded while the current one is sent. The first is done before the
 * answer starts, so a frame that cannot be transcoded is a 406 with the codec's reason.
 */
async function sendTranscoded(
  reply: FastifyReply,
  loaded: LoadedInstance,
  sources: readonly FrameSource[],
  form: FrameForm,
  partType: string,
  store: Pick<ObjectStore, 'readObject'>,
): Promise<FastifyReply> {
  const module = await pixelModuleOfObject(store, loaded.row.path);
  const stored = loaded.row.transferSyntaxUid;
  const from = isNativeSyntax(stored) ? NATIVE_FRAME_SYNTAX : stored;
  const one = async (s: FrameSource): Promise<Uint8Array> => {
    const frame = new Uint8Array(await readWhole(loaded, s));
    return (await transcodedFrame(frame, from, form.transferSyntax, module)).bytes;
  };
  let first: Uint8Array;
  try {
    first = await one(sources[0] as FrameSource);
  } catch (e) {
    throw httpError(406, 'ERR_HTTP_NOT_ACCEPTABLE', `cannot transcode the frame: ${(e as Error).message}`, {
      cause: e,
    });
  }
  if (form.single)
    return reply.type(partType).send(Buffer.from(first.buffer, first.byteOffset, first.length));
  const boundary = newBoundary();
  reply.type(multipartContentType(form.partType, boundary));
  async function* body(): AsyncGenerator<Uint8Array> {
    let next: Promise<Uint8Array> = Promise.resolve(first);
    for (let i = 0; i < sources.length; i++) {
      const current = next;
      const following = sources[i + 1];
      if (following !== undefined) {
        next = one(following);
        next.catch(() => undefined); // awaited below, or the answer was cut
      }
      yield partHead(boundary, { contentType: partType }, i === 0);
      yield await current;
    }
    yield closeDelimiter(boundary);
  }
  return reply.send(Readable.from(body(), { objectMode: false }));
}

/** The bytes of frame `n` (1-based) as stored: native little endian, or the compressed frame's fragments joined. */
export async function readFrame(loaded: LoadedInstance, n: number): Promise<Buffer> {
  return readWhole(loaded, frameSources(loaded, [n])[0] as FrameSource);
}
