/**
 * One rendering job as the worker pool runs it: a native frame's bytes and the data set's render
 * parameters in, an encoded JPEG or PNG out. Plain data both ways (structured clone), the frame's
 * buffer transferred rather than copied. runRenderTask() is also what the worker calls.
 */
import { type RenderParameters, renderFrame, type Window } from '../../dicom/pixel/render.js';
import { applyViewport, type Viewport } from '../../dicom/pixel/scale.js';
import { encodeJpeg, encodePng } from './encode.js';

/** The output formats of /rendered and /thumbnail. */
export type RenderFormat = 'jpeg' | 'png';

/** What a worker is asked to do. */
export interface RenderTask {
  readonly parameters: RenderParameters;
  /** The frame's bytes, little endian, from its first byte. */
  readonly bytes: Uint8Array;
  readonly bitOffset: number;
  readonly window?: Window;
  readonly viewport?: Viewport;
  readonly format: RenderFormat;
  /** JPEG quality 1..100. */
  readonly quality: number;
}

/** What it answers. */
export interface RenderResult {
  readonly body: Uint8Array;
  readonly width: number;
  readonly height: number;
}

/** Renders, scales and encodes one frame (pure computation; throws PixelDataError). */
export async function runRenderTask(task: RenderTask): Promise<RenderResult> {
  let image = renderFrame(task.parameters, task.bytes, task.bitOffset, task.window);
  if (task.viewport !== undefined) image = applyViewport(image, task.viewport);
  const body =
    task.format === 'png' ? await encodePng(image) : await encodeJpeg(image, { quality: task.quality });
  return { body, width: image.width, height: image.height };
}
