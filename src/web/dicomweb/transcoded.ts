/**
 * WADO-RS objects and frames in a transfer syntax that needs a pixel codec (issue 13): the
 * object file transcoded as it is read (io/transcode.ts, frames on the worker pool at the
 * priority of a peer waiting), or one frame transcoded for /frames (a viewer waiting).
 */
import type { ObjectStore } from '../../archive/store.js';
import { type PixelModule, pixelModuleOf } from '../../dicom/codec/types.js';
import { TAG } from '../../dicom/dictionary.js';
import { readDicomChunks } from '../../dicom/reader.js';
import { checkTranscode, type FrameResult } from '../../dicom/transcode.js';
import { EXPLICIT_VR_LE, UID } from '../../dicom/uid.js';
import { pooledFrameCoder, TranscodePriority, transcodeStream } from '../../io/transcode.js';
import { httpError } from '../errors.js';

/** A stored Part-10 object's bytes transcoded into `to`, Part-10 again (file meta first). */
export function transcodedObject(bytes: AsyncIterable<Uint8Array>, to: string): AsyncIterable<Uint8Array> {
  return transcodeStream(bytes, { to, fileMeta: true, priority: TranscodePriority.transfer });
}

const interactive = pooledFrameCoder(TranscodePriority.interactive);

/** One frame (native little endian, or encoded in `from`) transcoded into `to`. */
export function transcodedFrame(
  frame: Uint8Array,
  from: string,
  to: string,
  module: PixelModule,
): Promise<FrameResult> {
  return interactive({
    source: frame,
    sourceTransferSyntaxUid: from,
    targetTransferSyntaxUid: to,
    module,
    options: {},
  });
}

/** PS3.18 Table 8.7.3-2: the default transfer syntax of each frame media type we can produce. */
const MEDIA_DEFAULT_SYNTAX: Readonly<Record<string, string>> = {
  'image/jpeg': UID.JPEGLosslessSV1,
  'image/jls': UID.JPEGLSLossless,
  'image/jp2': UID.JPEG2000Lossless,
  'image/jphc': UID.HTJ2KLossless,
  'image/dicom-rle': UID.RLELossless,
  'application/octet-stream': EXPLICIT_VR_LE,
};

/**
 * The syntax frames stored in `from` (the native frame syntax for uncompressed data) are
 * transcoded into for a part of media type `media` and an optional `transfer-syntax` parameter,
 * or why they cannot be (no codec, a lossy target, a syntax of another media type).
 */
export function frameTarget(
  from: string,
  media: string,
  wanted: string | undefined,
  mediaOf: (ts: string) => string,
): { readonly to: string } | { readonly reason: string } {
  const to = wanted ?? MEDIA_DEFAULT_SYNTAX[media];
  if (to === undefined) return { reason: `${media} is not a form frames are transcoded into` };
  if (mediaOf(to) !== media) return { reason: `${to} is not sent as ${media}` };
  const problem = checkTranscode(from, to);
  return problem === undefined ? { to } : { reason: `the frames are stored in ${from}: ${problem}` };
}

/** The pixel module of a stored object, from its header (read through the store up to Pixel Data); 406 when it has none. */
export async function pixelModuleOfObject(
  store: Pick<ObjectStore, 'readObject'>,
  path: string,
): Promise<PixelModule> {
  const head = await readDicomChunks(store.readObject(path, { chunkSize: 16 * 1024 }), {
    stopAtTag: TAG.PixelData,
  });
  try {
    return pixelModuleOf(head.dataSet);
  } catch (e) {
    throw httpError(406, 'ERR_HTTP_NOT_ACCEPTABLE', `cannot transcode the frames: ${(e as Error).message}`);
  }
}
