/**
 * WADO-RS objects and frames in a transfer syntax that needs a pixel codec (issue 13): the
 * object file transcoded as it is read (io/transcode.ts, frames on the worker pool at the
 * priority of a peer waiting), or one frame transcoded for /frames (a viewer waiting).
 */
import type { PixelModule } from '../../dicom/codec/types.js';
import type { FrameResult } from '../../dicom/transcode.js';
import { pooledFrameCoder, TranscodePriority, transcodeStream } from '../../io/transcode.js';

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
