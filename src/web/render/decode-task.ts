/**
 * Decoding one compressed frame for rendering (dicom/codec), run on a worker thread: the codec
 * work is CPU-heavy (ARCHITECTURE.md decision 6). The answer is the native frame and the layout
 * the decoder produced (a JPEG decoder turns YBR into RGB).
 */
import { codecFor } from '../../dicom/codec/registry.js';
import { type DecodedFrame, PixelCodecError, type PixelModule } from '../../dicom/codec/types.js';

/** What a decode worker is asked to do. */
export interface DecodeTask {
  readonly encoded: Uint8Array;
  readonly transferSyntaxUid: string;
  readonly module: PixelModule;
}

/** Decodes the task's frame; PixelCodecError when no codec handles its syntax or the data is corrupt. */
export async function runDecodeTask(task: DecodeTask): Promise<DecodedFrame> {
  const codec = codecFor(task.transferSyntaxUid);
  if (codec === undefined)
    throw new PixelCodecError(`no decoder for transfer syntax ${task.transferSyntaxUid}`);
  return codec.decodeFrame(task.encoded, task.module);
}
