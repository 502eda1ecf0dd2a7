/** The worker-thread side of transcoding (io/transcode.ts): each task one frame, the result's bytes transferred back. */
import { serveWorkerTasks } from '../core/worker-pool.js';
import { type FrameResult, type FrameTask, transcodeFrame } from '../dicom/transcode.js';

serveWorkerTasks<FrameTask, FrameResult>(async (task) => {
  const r = await transcodeFrame(task);
  // A buffer of its own: a codec's output may be a view into a larger one (or the task's input).
  const whole = r.bytes.byteOffset === 0 && r.bytes.byteLength === r.bytes.buffer.byteLength;
  const bytes = whole ? r.bytes : new Uint8Array(r.bytes);
  return { result: { ...r, bytes }, transfer: [bytes.buffer as ArrayBuffer] };
});
