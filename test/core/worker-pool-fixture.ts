/** A worker for the pool tests: echoes, doubles a transferred buffer, throws, crashes or waits. */
import { threadId } from 'node:worker_threads';
import { serveWorkerTasks } from '../../src/core/worker-pool.js';

/** What the test posts. */
export type FixtureTask =
  | { readonly op: 'echo'; readonly value: unknown }
  | { readonly op: 'double'; readonly bytes: Uint8Array }
  | { readonly op: 'throw' }
  | { readonly op: 'crash' }
  | { readonly op: 'wait'; readonly ms: number };

serveWorkerTasks<FixtureTask, unknown>(async (task) => {
  switch (task.op) {
    case 'echo':
      return { result: { value: task.value, threadId } };
    case 'double': {
      const out = task.bytes.map((b) => b * 2);
      return { result: out, transfer: [out.buffer] };
    }
    case 'throw':
      throw Object.assign(new Error('asked to fail'), { code: 'ERR_FIXTURE' });
    case 'crash':
      process.exit(3);
      break;
    case 'wait':
      await new Promise((r) => setTimeout(r, task.ms));
      return { result: threadId };
  }
  return { result: undefined };
});
