import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { Transferable } from 'node:worker_threads';
import { PacsError } from '../../src/core/errors.js';
import { WorkerPool } from '../../src/core/worker-pool.js';
import type { PoolTask } from './fixtures/pool-worker.js';

const script = new URL('./fixtures/pool-worker.js', import.meta.url);

function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<void> {
  return assert.rejects(promise, (e: unknown) => e instanceof PacsError && e.code === code);
}

describe('WorkerPool', () => {
  const pool = new WorkerPool({ script, size: 4 });
  const run = <T>(task: PoolTask, transfer?: Transferable[]) => pool.run<T>(task, transfer);
  after(() => pool.close());

  test('returns what the handler returns', async () => {
    assert.deepEqual(await run({ op: 'echo', value: { a: [1, 'two'] } }), { a: [1, 'two'] });
  });

  test('runs tasks in parallel on different threads', async () => {
    const started = performance.now();
    const ids = await Promise.all([1, 2, 3, 4].map(() => run<number>({ op: 'block', ms: 300 })));
    const elapsed = performance.now() - started;
    assert.equal(new Set(ids).size, 4, `thread ids ${ids.join(',')}`);
    // Serially this would take 1200 ms; in parallel about 300 ms plus worker start-up.
    assert.ok(elapsed < 900, `took ${elapsed.toFixed(0)} ms`);
  });

  test('a handler error rejects the task with its name, message and code; the worker lives on', async () => {
    await assert.rejects(run({ op: 'throw', message: 'bad input', code: 'ERR_BAD' }), (e: unknown) => {
      assert.ok(e instanceof PacsError);
      assert.deepEqual([e.code, e.name, e.message], ['ERR_BAD', 'TypeError', 'bad input']);
      return true;
    });
    assert.equal(await run({ op: 'echo', value: 'still here' }), 'still here');
    assert.equal(pool.running, 0);
  });

  test('moves transferred buffers both ways', async () => {
    const data = new Float64Array([1, 2, 3]);
    const result = await run<Float64Array>({ op: 'double', data }, [data.buffer]);
    assert.equal(data.length, 0, 'the buffer was transferred, not copied');
    assert.deepEqual([...result], [2, 4, 6]);
  });

  test('a rejected clone (a function in the task) rejects only that task', async () => {
    await assert.rejects(pool.run({ op: 'echo', value: () => 1 }), /could not be cloned/);
    assert.equal(await run({ op: 'echo', value: 7 }), 7);
  });
});

describe('WorkerPool crashes', () => {
  test('an uncaught exception rejects the task with ERR_WORKER_CRASHED and the worker is replaced', async () => {
    const pool = new WorkerPool({ script, size: 1 });
    try {
      const before = await pool.run<number>({ op: 'block', ms: 0 });
      await assert.rejects(pool.run({ op: 'crash' }), (e: unknown) => {
        assert.ok(e instanceof PacsError);
        assert.equal(e.code, 'ERR_WORKER_CRASHED');
        assert.match(e.message, /died while running a task: boom from the worker/);
        return true;
      });
      const afterCrash = await pool.run<number>({ op: 'block', ms: 0 });
      assert.notEqual(afterCrash, before, 'a new thread took the place of the dead one');
    } finally {
      await pool.close();
    }
  });

  test('process.exit in a worker rejects its task; queued tasks still run', async () => {
    const pool = new WorkerPool({ script, size: 1 });
    try {
      const dying = pool.run({ op: 'exit', code: 3 });
      const queued = [pool.run({ op: 'echo', value: 'a' }), pool.run({ op: 'echo', value: 'b' })];
      await assert.rejects(dying, (e: unknown) => e instanceof PacsError && /exit code 3/.test(e.message));
      assert.deepEqual(await Promise.all(queued), ['a', 'b']);
    } finally {
      await pool.close();
    }
  });

  test('a script that cannot load fails each task once, without respawning in a loop', async () => {
    const pool = new WorkerPool({
      script: new URL('./fixtures/no-such-worker.js', import.meta.url),
      size: 2,
    });
    try {
      await rejectsWithCode(pool.run({ op: 'echo', value: 1 }), 'ERR_WORKER_CRASHED');
      await rejectsWithCode(pool.run({ op: 'echo', value: 2 }), 'ERR_WORKER_CRASHED');
      assert.equal(pool.running, 0);
    } finally {
      await pool.close();
    }
  });
});

describe('WorkerPool queue and close', () => {
  test('the queue is bounded: a task beyond maxQueue rejects at once', async () => {
    const pool = new WorkerPool({ script, size: 1, maxQueue: 2 });
    try {
      const accepted = [
        pool.run({ op: 'block', ms: 200 }),
        pool.run({ op: 'echo', value: 1 }),
        pool.run({ op: 'echo', value: 2 }),
      ];
      assert.equal(pool.queued, 2);
      await rejectsWithCode(pool.run({ op: 'echo', value: 3 }), 'ERR_WORKER_POOL_QUEUE_FULL');
      const results = await Promise.all(accepted);
      assert.deepEqual(results.slice(1), [1, 2]);
    } finally {
      await pool.close();
    }
  });

  test('close() rejects running and queued tasks, and later runs', async () => {
    const pool = new WorkerPool({ script, size: 1 });
    const running = pool.run({ op: 'block', ms: 5000 });
    const queued = pool.run({ op: 'echo', value: 1 });
    const rejected = [
      rejectsWithCode(running, 'ERR_WORKER_POOL_CLOSED'),
      rejectsWithCode(queued, 'ERR_WORKER_POOL_CLOSED'),
    ];
    const started = performance.now();
    await pool.close();
    assert.ok(performance.now() - started < 2000, 'close() does not wait for the running task');
    await Promise.all(rejected);
    await rejectsWithCode(pool.run({ op: 'echo', value: 2 }), 'ERR_WORKER_POOL_CLOSED');
  });

  test('rejects a bad size', () => {
    assert.throws(() => new WorkerPool({ script, size: 0 }), RangeError);
    assert.throws(() => new WorkerPool({ script, size: 1.5 }), RangeError);
  });
});
