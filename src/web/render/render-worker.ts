/**
 * The worker-thread side of rendering (core/worker-pool.ts): each task is a RenderTask, each
 * answer a RenderResult whose encoded bytes are transferred back.
 */
import { serveWorkerTasks } from '../../core/worker-pool.js';
import { type RenderResult, type RenderTask, runRenderTask } from './render-task.js';

serveWorkerTasks<RenderTask, RenderResult>(async (task) => {
  const result = await runRenderTask(task);
  return { result, transfer: [result.body.buffer as ArrayBuffer] };
});
