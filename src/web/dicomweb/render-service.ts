/**
 * Rendered images of stored objects (PS3.18 8.3.5 and 10.4.1.1.3; also what WADO-URI's image/jpeg
 * and image/png answers use): finds the object through the index, reads its header and only the
 * asked frame's bytes from the file (a 2 GB multi-frame object is not read whole), and renders and
 * encodes that frame on the worker pool (core/worker-pool.ts).
 *
 * Choices (PS3.18 leaves them to the origin server):
 * - a study renders the middle instance (by Instance Number) of its series with the most
 *   instances, a series its middle instance;
 * - an instance renders its first frame (JPEG and PNG hold one frame); /frames/{n}/rendered one
 *   frame, and a list of several frames is 406 (no single-image media type holds them);
 * - a thumbnail is the rendered image shrunk to fit 128x128 (never enlarged) unless a viewport is given;
 * - without a window the data set's first window (or VOI LUT) is used, else the frame's range.
 * Compressed (encapsulated) pixel data is decoded on a worker (dicom/codec: JPEG, JPEG-LS, JPEG
 * 2000, HTJ2K, RLE), one frame at a time; a syntax without a decoder, or a frame that does not
 * decode, answers 406 with the reason. An object without Pixel Data answers 406 (nothing of it can
 * be rendered as an image).
 */
import { planQuery } from '../../archive/index/query.js';
import type { ObjectHandle } from '../../archive/store.js';
import { WorkerPool, WorkerTaskError } from '../../core/worker-pool.js';
import { codecFor } from '../../dicom/codec/registry.js';
import { type DecodedFrame, pixelModuleOf } from '../../dicom/codec/types.js';
import { DataSet } from '../../dicom/dataset.js';
import { TAG } from '../../dicom/dictionary.js';
import { DicomParser } from '../../dicom/parser.js';
import { describeFrames, type FrameInfo, frameRange, PixelDataError } from '../../dicom/pixel/frame.js';
import { renderParameters, type VoiFunction, type Window } from '../../dicom/pixel/render.js';
import type { Viewport } from '../../dicom/pixel/scale.js';
import { DataSetBuilder, readDicomChunks } from '../../dicom/reader.js';
import { DEFLATED_EXPLICIT_VR_LE, EXPLICIT_VR_BE, EXPLICIT_VR_LE, IMPLICIT_VR_LE } from '../../dicom/uid.js';
import { readChunks } from '../../io/dicom-file.js';
import { httpError } from '../errors.js';
import { type MediaRange, rangeMatches } from '../media-type.js';
import type { DecodeTask } from '../render/decode-task.js';
import type { RenderFormat, RenderResult, RenderTask } from '../render/render-task.js';
import type { DicomwebContext } from './context.js';
import { readFrame } from './frames.js';
import { loadInstance } from './parts.js';

/** What to render: the UIDs of a study, series or instance resource, and how. */
export interface RenderRequest {
  readonly study: string;
  readonly series?: string;
  readonly instance?: string;
  /** 1-based frame number (instance level); default 1. */
  readonly frame?: number;
  /** The Accept ranges (media-type.ts acceptOf); image/jpeg when anything goes. */
  readonly accept: readonly MediaRange[];
  /** JPEG quality 1..100 (default 90). */
  readonly quality?: number;
  readonly window?: Window;
  readonly viewport?: Viewport;
  /** A thumbnail: fitted in 128x128 when no viewport is given. */
  readonly thumbnail?: boolean;
  /**
   * A region of the frame as fractions of its size (WADO-URI `region`, PS3.18 9.1.2.4.4): left,
   * top, right, bottom in 0..1. Applied with `viewport` (its source region is replaced), or alone
   * at the region's own size.
   */
  readonly region?: {
    readonly left: number;
    readonly top: number;
    readonly right: number;
    readonly bottom: number;
  };
}

/** A rendered image ready to send. */
export interface RenderedImage {
  readonly contentType: 'image/jpeg' | 'image/png';
  readonly body: Buffer;
  readonly width: number;
  readonly height: number;
}

/** The media types rendered, in order of preference. */
export const RENDERED_TYPES = ['image/jpeg', 'image/png'] as const;

/** Thumbnails fit in this square unless the request gives a viewport. */
export const THUMBNAIL_SIZE = 128;

/** The largest frame rendered (pixels); larger ones answer 406. */
const MAX_PIXELS = 1 << 26;

const COMPRESSED_REASON = 'no decoder for the transfer syntax of this object';

/** Frame bytes queued or rendering at most (one frame larger than this still runs alone). */
const MAX_IN_FLIGHT_BYTES = 512 * 1024 * 1024;
let inFlightBytes = 0;

let pool: WorkerPool<RenderTask, RenderResult> | undefined;

/** The rendering worker pool, started on first use (idle workers do not keep the process alive). */
export function renderPool(): WorkerPool<RenderTask, RenderResult> {
  pool ??= new WorkerPool<RenderTask, RenderResult>({
    script: new URL('../render/render-worker.js', import.meta.url),
    size: 2,
  });
  return pool;
}

/** Stops the rendering workers (server shutdown, tests). */
export async function closeRenderPool(): Promise<void> {
  const p = pool;
  pool = undefined;
  await p?.close();
}

/** The format chosen from the Accept ranges, or 406. */
export function chooseFormat(accept: readonly MediaRange[]): RenderFormat {
  for (const range of accept)
    for (const type of RENDERED_TYPES)
      if (rangeMatches(range, type)) return type === 'image/png' ? 'png' : 'jpeg';
  throw httpError(
    406,
    'ERR_HTTP_NOT_ACCEPTABLE',
    `rendered resources are available as ${RENDERED_TYPES.join(' or ')}`,
  );
}

/** Parses `quality` (PS3.18 8.3.5.1.4): an integer 1..100. */
export function parseQuality(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const text = String(value);
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 100)
    throw httpError(
      400,
      'ERR_HTTP_BAD_QUERY',
      `quality must be an integer from 1 to 100 (got ${JSON.stringify(text)})`,
    );
  return n;
}

/** Parses `window=center,width[,function]` (PS3.18 8.3.5.1.3; function linear, linear-exact or sigmoid). */
export function parseWindow(value: unknown): Window | undefined {
  if (value === undefined) return undefined;
  const text = String(value);
  const parts = text.split(',').map((p) => p.trim());
  const center = Number(parts[0]);
  const width = Number(parts[1]);
  const fnText = (parts[2] ?? 'linear').toUpperCase().replace(/-/g, '_');
  if (
    parts.length < 2 ||
    parts.length > 3 ||
    parts[0] === '' ||
    parts[1] === '' ||
    !Number.isFinite(center) ||
    !Number.isFinite(width)
  )
    throw httpError(
      400,
      'ERR_HTTP_BAD_QUERY',
      `window must be center,width,function (got ${JSON.stringify(text)})`,
    );
  if (fnText !== 'LINEAR' && fnText !== 'LINEAR_EXACT' && fnText !== 'SIGMOID')
    throw httpError(
      400,
      'ERR_HTTP_BAD_QUERY',
      `window function must be linear, linear-exact or sigmoid (got ${JSON.stringify(parts[2])})`,
    );
  const fn = fnText as VoiFunction;
  if (fn === 'LINEAR' ? width < 1 : width <= 0)
    throw httpError(
      400,
      'ERR_HTTP_BAD_QUERY',
      `window width ${width} is too small for ${fn.toLowerCase()} (PS3.3 C.11.2.1.2)`,
    );
  return { center, width, function: fn };
}

const MAX_VIEWPORT = 8192;

/** Parses `viewport=vw,vh[,sx,sy,sw,sh]` (PS3.18 8.3.5.1.2). */
export function parseViewport(value: unknown): Viewport | undefined {
  if (value === undefined) return undefined;
  const text = String(value);
  const parts = text.split(',').map((p) => p.trim());
  const nums = parts.map(Number);
  const ok =
    (parts.length === 2 || parts.length === 6) &&
    parts.every((p) => /^-?\d+$/.test(p)) &&
    (nums[0] as number) >= 1 &&
    (nums[1] as number) >= 1 &&
    (nums[0] as number) <= MAX_VIEWPORT &&
    (nums[1] as number) <= MAX_VIEWPORT &&
    (parts.length === 2 || ((nums[2] as number) >= 0 && (nums[3] as number) >= 0));
  if (!ok)
    throw httpError(
      400,
      'ERR_HTTP_BAD_QUERY',
      `viewport must be vw,vh or vw,vh,sx,sy,sw,sh with 1 <= vw, vh <= ${MAX_VIEWPORT} (got ${JSON.stringify(text)})`,
    );
  const [width, height, x, y, sw, sh] = nums as [number, number, number, number, number, number];
  return parts.length === 2 ? { width, height } : { width, height, source: { x, y, width: sw, height: sh } };
}

interface Located {
  /** The object's path as the index keeps it (opened through the store). */
  readonly path: string;
  readonly transferSyntaxUid: string;
  readonly studyInstanceUid: string;
  readonly seriesInstanceUid: string;
  readonly sopInstanceUid: string;
}

async function instanceUids(
  context: DicomwebContext,
  study: string,
  series?: string,
): Promise<Array<{ series: string; instance: string; number: number }>> {
  const identifier = new DataSet();
  identifier.setString(TAG.QueryRetrieveLevel, 'IMAGE');
  identifier.setString(TAG.StudyInstanceUID, study);
  identifier.setString(TAG.SeriesInstanceUID, series ?? '');
  identifier.setString(TAG.SOPInstanceUID, '');
  identifier.setString(TAG.InstanceNumber, '', 'IS');
  const out: Array<{ series: string; instance: string; number: number }> = [];
  for await (const answer of context.archive.index.find(planQuery('IMAGE', identifier))) {
    const uid = answer.string(TAG.SOPInstanceUID);
    const se = answer.string(TAG.SeriesInstanceUID);
    if (uid === undefined || se === undefined) continue;
    out.push({
      series: se,
      instance: uid,
      number: answer.number(TAG.InstanceNumber) ?? Number.MAX_SAFE_INTEGER,
    });
  }
  return out;
}

/** The object to render for a study, series or instance resource (404 when it is not there). */
async function locate(context: DicomwebContext, request: RenderRequest): Promise<Located> {
  let instance = request.instance;
  if (instance === undefined) {
    const all = await instanceUids(context, request.study, request.series);
    if (all.length === 0)
      throw httpError(
        404,
        'ERR_HTTP_NOT_FOUND',
        request.series === undefined ? 'no such study' : 'no such series',
      );
    let chosen = all;
    if (request.series === undefined) {
      const counts = new Map<string, number>();
      for (const i of all) counts.set(i.series, (counts.get(i.series) ?? 0) + 1);
      const biggest = [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]?.[0];
      chosen = all.filter((i) => i.series === biggest);
    }
    chosen.sort((a, b) => a.number - b.number || (a.instance < b.instance ? -1 : 1));
    instance = (chosen[Math.floor((chosen.length - 1) / 2)] as { instance: string }).instance;
  }
  const found = await context.archive.index.findInstance(instance);
  if (
    found === undefined ||
    found.studyInstanceUid !== request.study ||
    (request.series !== undefined && found.seriesInstanceUid !== request.series)
  )
    throw httpError(404, 'ERR_HTTP_NOT_FOUND', 'no such instance');
  return {
    path: found.path,
    transferSyntaxUid: found.transferSyntaxUid,
    studyInstanceUid: found.studyInstanceUid,
    seriesInstanceUid: found.seriesInstanceUid,
    sopInstanceUid: found.sopInstanceUid,
  };
}

const NATIVE = new Set([IMPLICIT_VR_LE, EXPLICIT_VR_LE, EXPLICIT_VR_BE, DEFLATED_EXPLICIT_VR_LE]);

/** The header (up to Pixel Data) of a file and where the Pixel Data element starts. */
async function readHeader(
  fh: ObjectHandle,
): Promise<{ dataSet: DataSet; transferSyntax: string; pixelAt: number | undefined }> {
  const builder = new DataSetBuilder();
  const parser = new DicomParser(builder, { stopAtTag: TAG.PixelData });
  for await (const chunk of readChunks(fh, 0, 16 * 1024)) {
    parser.write(chunk);
    if (parser.stopped) break;
  }
  const stopped = parser.stopped;
  const at = parser.offset;
  parser.end();
  return {
    dataSet: builder.root,
    transferSyntax: parser.transferSyntaxUid,
    pixelAt: stopped ? at : undefined,
  };
}

interface PixelValue {
  readonly offset: number;
  readonly length: number;
  readonly vr: string;
}

/** Reads the Pixel Data element header at `at` (PS3.5 7.1.2/7.1.3); undefined when another element is there. */
async function pixelElement(fh: ObjectHandle, at: number, ts: string): Promise<PixelValue | undefined> {
  const head = Buffer.alloc(12);
  const { bytesRead } = await fh.read(head, 0, 12, at);
  if (bytesRead < 8) return undefined;
  const little = ts !== EXPLICIT_VR_BE;
  const group = little ? head.readUInt16LE(0) : head.readUInt16BE(0);
  const element = little ? head.readUInt16LE(2) : head.readUInt16BE(2);
  if (group !== 0x7fe0 || element !== 0x0010) return undefined;
  if (ts === IMPLICIT_VR_LE) return { offset: at + 8, length: head.readUInt32LE(4), vr: 'OW' };
  const vr = head.toString('latin1', 4, 6);
  if (vr === 'OB' || vr === 'OW' || vr === 'UN' || vr === 'OF' || vr === 'OD' || vr === 'OL' || vr === 'OV')
    return { offset: at + 12, length: little ? head.readUInt32LE(8) : head.readUInt32BE(8), vr };
  return { offset: at + 8, length: little ? head.readUInt16LE(6) : head.readUInt16BE(6), vr };
}

function swapInPlace(bytes: Uint8Array, unit: number): void {
  for (let i = 0; i + unit <= bytes.length; i += unit)
    for (let a = i, b = i + unit - 1; a < b; a++, b--) {
      const t = bytes[a] as number;
      bytes[a] = bytes[b] as number;
      bytes[b] = t;
    }
}

function pixelFailure(e: PixelDataError): never {
  if (e.code === 'ERR_PIXEL_FRAME') throw httpError(404, 'ERR_HTTP_NOT_FOUND', e.message, { cause: e });
  if (e.code === 'ERR_PIXEL_VIEWPORT') throw httpError(400, 'ERR_HTTP_BAD_QUERY', e.message, { cause: e });
  throw httpError(406, 'ERR_HTTP_NOT_RENDERABLE', `cannot render this object: ${e.message}`, { cause: e });
}

/** The frame's bytes (little endian) and what is needed to render it. */
async function loadFrame(
  context: DicomwebContext,
  located: Located,
  frame: number,
): Promise<{ info: FrameInfo; dataSet: DataSet; bytes: Uint8Array; bitOffset: number }> {
  if (!NATIVE.has(located.transferSyntaxUid)) return loadCompressedFrame(context, located, frame);
  const fh = await context.archive.store.openObject(located.path);
  try {
    let dataSet: DataSet;
    let value: { bytes: Uint8Array; bitOffset: number } | undefined;
    let info: FrameInfo;
    if (located.transferSyntaxUid === DEFLATED_EXPLICIT_VR_LE) {
      // Offsets in a deflated stream are not file offsets: inflate the object (deflated images are rare and small).
      const object = await readDicomChunks(readChunks(fh, 0, 256 * 1024));
      dataSet = object.dataSet;
      const pixel = dataSet.get(TAG.PixelData);
      if (pixel === undefined)
        throw httpError(406, 'ERR_HTTP_NOT_RENDERABLE', 'the object has no Pixel Data (it is not an image)');
      if (!(pixel.value instanceof Uint8Array))
        throw httpError(406, 'ERR_HTTP_NOT_RENDERABLE', COMPRESSED_REASON);
      info = describeOrFail(dataSet);
      const r = rangeOrFail(info, frame, pixel.value.length);
      value = { bytes: pixel.value.slice(r.start, r.end), bitOffset: r.bitOffset };
    } else {
      const head = await readHeader(fh);
      dataSet = head.dataSet;
      const element =
        head.pixelAt === undefined
          ? undefined
          : await pixelElement(fh, head.pixelAt, located.transferSyntaxUid);
      if (element === undefined)
        throw httpError(406, 'ERR_HTTP_NOT_RENDERABLE', 'the object has no Pixel Data (it is not an image)');
      if (element.length === 0xffffffff) throw httpError(406, 'ERR_HTTP_NOT_RENDERABLE', COMPRESSED_REASON);
      info = describeOrFail(dataSet);
      const r = rangeOrFail(info, frame, element.length);
      const bytes = new Uint8Array(r.end - r.start);
      const { bytesRead } = await fh.read(bytes, 0, bytes.length, element.offset + r.start);
      if (bytesRead < bytes.length)
        throw httpError(
          406,
          'ERR_HTTP_NOT_RENDERABLE',
          'cannot render this object: its file ends inside the pixel data',
        );
      // Big endian OW: words were swapped on writing (PS3.5 7.3); the renderer reads little endian.
      if (located.transferSyntaxUid === EXPLICIT_VR_BE && element.vr !== 'OB' && info.bitsAllocated > 8)
        swapInPlace(bytes, info.bitsAllocated / 8);
      value = { bytes, bitOffset: r.bitOffset };
    }
    return { info, dataSet, bytes: value.bytes, bitOffset: value.bitOffset };
  } finally {
    await fh.close();
  }
}

let decoders: WorkerPool<DecodeTask, DecodedFrame> | undefined;

/** The decoding worker pool (dicom/codec on worker threads), started on first use. */
function decodePool(): WorkerPool<DecodeTask, DecodedFrame> {
  decoders ??= new WorkerPool<DecodeTask, DecodedFrame>({
    script: new URL('../render/decode-worker.js', import.meta.url),
    size: 2,
  });
  return decoders;
}

/**
 * A compressed frame decoded (on a worker) into native pixels: the frame's bytes are read by the
 * offsets kept at ingest (frames.ts), the header up to Pixel Data gives the pixel module, and the
 * data set then describes the decoded frame (one frame, the decoder's photometric and layout).
 */
async function loadCompressedFrame(
  context: DicomwebContext,
  located: Located,
  frame: number,
): Promise<{ info: FrameInfo; dataSet: DataSet; bytes: Uint8Array; bitOffset: number }> {
  if (codecFor(located.transferSyntaxUid) === undefined)
    throw httpError(406, 'ERR_HTTP_NOT_RENDERABLE', COMPRESSED_REASON);
  const loaded = await loadInstance(context, {
    studyInstanceUid: located.studyInstanceUid,
    seriesInstanceUid: located.seriesInstanceUid,
    sopInstanceUid: located.sopInstanceUid,
  });
  const fh = await context.archive.store.openObject(located.path);
  let dataSet: DataSet;
  try {
    dataSet = (await readHeader(fh)).dataSet;
  } finally {
    await fh.close();
  }
  describeOrFail(dataSet); // the frame number and the pixel module are checked before decoding
  const encoded = new Uint8Array(await readFrame(loaded, frame)); // a buffer of its own, to transfer
  let decoded: DecodedFrame;
  try {
    decoded = await decodePool().run(
      { encoded, transferSyntaxUid: located.transferSyntaxUid, module: pixelModuleOf(dataSet) },
      [encoded.buffer as ArrayBuffer],
      10,
    );
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    throw httpError(406, 'ERR_HTTP_NOT_RENDERABLE', `cannot decode this frame: ${reason}`, { cause: e });
  }
  dataSet.setString(TAG.PhotometricInterpretation, decoded.photometricInterpretation);
  dataSet.setNumbers(TAG.PlanarConfiguration, decoded.planarConfiguration, 'US');
  dataSet.setString(TAG.NumberOfFrames, '1', 'IS');
  const info = describeOrFail(dataSet);
  const r = rangeOrFail(info, 1, decoded.pixels.length);
  return { info, dataSet, bytes: decoded.pixels.subarray(r.start, r.end), bitOffset: r.bitOffset };
}

function describeOrFail(ds: DataSet): FrameInfo {
  try {
    const info = describeFrames(ds);
    if (info.rows * info.columns > MAX_PIXELS)
      throw new PixelDataError(
        'ERR_PIXEL_UNSUPPORTED',
        `${info.columns}x${info.rows} is larger than the renderer takes`,
      );
    return info;
  } catch (e) {
    if (e instanceof PixelDataError) pixelFailure(e);
    throw e;
  }
}

function rangeOrFail(info: FrameInfo, frame: number, length: number) {
  try {
    return frameRange(info, frame - 1, length);
  } catch (e) {
    if (e instanceof PixelDataError) pixelFailure(e);
    throw e;
  }
}

/**
 * Renders a study, series, instance or frame (see the choices above) as the Accept ranges allow.
 * Throws HttpError: 404 nothing there, 406 not renderable or no acceptable type, 400 bad viewport.
 */
export async function renderInstance(
  context: DicomwebContext,
  request: RenderRequest,
): Promise<RenderedImage> {
  const format = chooseFormat(request.accept);
  const located = await locate(context, request);
  const frame = await loadFrame(context, located, request.frame ?? 1);
  let parameters: ReturnType<typeof renderParameters>;
  try {
    parameters = renderParameters(frame.dataSet, frame.info);
  } catch (e) {
    if (e instanceof PixelDataError) pixelFailure(e);
    throw e;
  }
  // A thumbnail shrinks a large frame to THUMBNAIL_SIZE; a small one is left as it is.
  const small = Math.max(frame.info.rows, frame.info.columns) <= THUMBNAIL_SIZE;
  let viewport =
    request.viewport ??
    (request.thumbnail === true && !small ? { width: THUMBNAIL_SIZE, height: THUMBNAIL_SIZE } : undefined);
  if (request.region !== undefined) {
    const { left, top, right, bottom } = request.region;
    const { columns, rows } = frame.info;
    if (!(left >= 0 && top >= 0 && right <= 1 && bottom <= 1 && left < right && top < bottom))
      throw httpError(
        400,
        'ERR_HTTP_BAD_QUERY',
        'region must be left,top,right,bottom with 0 <= left < right <= 1 and 0 <= top < bottom <= 1',
      );
    const x = Math.floor(left * columns);
    const y = Math.floor(top * rows);
    const source = {
      x,
      y,
      width: Math.max(1, Math.ceil(right * columns) - x),
      height: Math.max(1, Math.ceil(bottom * rows) - y),
    };
    viewport = { width: viewport?.width ?? source.width, height: viewport?.height ?? source.height, source };
  }
  // Bounded memory: frames waiting for or in the workers are limited in bytes (a flood gets 503).
  const size = frame.bytes.byteLength;
  if (inFlightBytes > 0 && inFlightBytes + size > MAX_IN_FLIGHT_BYTES)
    throw httpError(503, 'ERR_HTTP_BUSY', 'the renderer is busy; try again shortly', {
      headers: { 'retry-after': '1' },
    });
  inFlightBytes += size;
  const task: RenderTask = {
    parameters,
    bytes: frame.bytes,
    bitOffset: frame.bitOffset,
    format,
    quality: request.quality ?? 90,
    ...(request.window !== undefined ? { window: request.window } : {}),
    ...(viewport !== undefined ? { viewport } : {}),
  };
  let result: RenderResult;
  try {
    // Interactive requests go before background work that may share the pool later.
    result = await renderPool().run(task, [frame.bytes.buffer as ArrayBuffer], 10);
  } catch (e) {
    inFlightBytes -= size;
    if (e instanceof WorkerTaskError && e.code.startsWith('ERR_PIXEL_'))
      pixelFailure(new PixelDataError(e.code, e.message));
    if (e instanceof WorkerTaskError)
      throw httpError(503, 'ERR_HTTP_RENDER_FAILED', `rendering failed: ${e.message}`, { cause: e });
    throw e;
  }
  inFlightBytes -= size;
  const body = Buffer.from(result.body.buffer, result.body.byteOffset, result.body.byteLength);
  return {
    contentType: format === 'png' ? 'image/png' : 'image/jpeg',
    body,
    width: result.width,
    height: result.height,
  };
}
