/** The worker-thread side of decoding for rendering: each task a DecodeTask, the pixels transferred back. */
import { serveWorkerTasks } from '../../core/worker-pool.js';
import type { DecodedFrame } from '../../dicom/codec/types.js';
import { type DecodeTask, runDecodeTask } from './decode-task.js';

serveWorkerTasks<DecodeTask, DecodedFrame>(async (task) => {
  const decoded = await runDecodeTask(task);
  // A copy of its own: a decoder's pixels may be a view into the codec's memory, never to be transferred.
  const pixels = new Uint8Array(decoded.pixels);
  return { result: { ...decoded, pixels }, transfer: [pixels.buffer as ArrayBuffer] };
});
