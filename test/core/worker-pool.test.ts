/** core/worker-pool.ts: tasks run on worker threads, transfer, errors, crashes replaced, close. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { WorkerPool, WorkerTaskError } from '../../src/core/worker-pool.js';
import type { FixtureTask } from './worker-pool-fixture.js';

const script = new URL('./worker-pool-fixture.js', import.meta.url);

describe('WorkerPool', () => {
  test('runs tasks on its threads and spreads concurrent ones', async () => {
    const pool = new WorkerPool<FixtureTask, unknown>({ script, size: 2 });
    try {
      const r = (await pool.run({ op: 'echo', value: { a: [1, 2] } })) as {
        value: unknown;
        threadId: number;
      };
      assert.deepEqual(r.value, { a: [1, 2] });
      assert.notEqual(r.threadId, 0);
      // Two waiting tasks at once occupy both threads; a third queues.
      const runs = [
        pool.run({ op: 'wait', ms: 50 }),
        pool.run({ op: 'wait', ms: 50 }),
        pool.run({ op: 'wait', ms: 1 }),
      ];
      assert.equal(pool.queued, 1);
      const ids = (await Promise.all(runs)) as number[];
      assert.equal(new Set(ids.slice(0, 2)).size, 2);
    } finally {
      await pool.close();
    }
  });

  test('queued tasks run by priority, then in order', async () => {
    const pool = new WorkerPool<FixtureTask, unknown>({ script, size: 1 });
    try {
      const order: string[] = [];
      const track = (name: string, p: Promise<unknown>) => p.then(() => order.push(name));
      const busy = track('busy', pool.run({ op: 'wait', ms: 100 }));
      const runs = [
        track('low-1', pool.run({ op: 'echo', value: 1 })),
        track('low-2', pool.run({ op: 'echo', value: 2 })),
        track('high', pool.run({ op: 'echo', value: 3 }, [], 10)),
        track('mid', pool.run({ op: 'echo', value: 4 }, [], 5)),
      ];
      await Promise.all([busy, ...runs]);
      assert.deepEqual(order, ['busy', 'high', 'mid', 'low-1', 'low-2']);
    } finally {
      await pool.close();
    }
  });

  test('buffers are transferred both ways', async () => {
    const pool = new WorkerPool<FixtureTask, unknown>({ script, size: 1 });
    try {
      const bytes = new Uint8Array([1, 2, 3]);
      const out = (await pool.run({ op: 'double', bytes }, [bytes.buffer])) as Uint8Array;
      assert.equal(bytes.byteLength, 0, 'the input buffer moved to the worker');
      assert.deepEqual([...out], [2, 4, 6]);
    } finally {
      await pool.close();
    }
  });

  test('a task error carries its code; a crash fails its task only and the worker is replaced', async () => {
    const pool = new WorkerPool<FixtureTask, unknown>({ script, size: 1 });
    try {
      await assert.rejects(
        pool.run({ op: 'throw' }),
        (e: unknown) => e instanceof WorkerTaskError && e.code === 'ERR_FIXTURE',
      );
      const queuedBehind = pool.run({ op: 'echo', value: 'after' });
      await assert.rejects(pool.run({ op: 'crash' }), {
        code: 'ERR_WORKER_CRASHED',
        message: /exited with code 3/,
      });
      // The echo was queued before the crash task but runs first (FIFO); a later one runs on the new worker.
      assert.equal(((await queuedBehind) as { value: string }).value, 'after');
      const crashNow = pool.run({ op: 'crash' });
      const next = pool.run({ op: 'echo', value: 'replaced' });
      await assert.rejects(crashNow, { code: 'ERR_WORKER_CRASHED' });
      assert.equal(((await next) as { value: string }).value, 'replaced');
    } finally {
      await pool.close();
    }
  });

  test('close fails running and queued tasks and refuses new ones', async () => {
    const pool = new WorkerPool<FixtureTask, unknown>({ script, size: 1 });
    const running = pool.run({ op: 'wait', ms: 10_000 });
    const queued = pool.run({ op: 'echo', value: 1 });
    const checks = [
      assert.rejects(running, { code: 'ERR_WORKER_CLOSED' }),
      assert.rejects(queued, { code: 'ERR_WORKER_CLOSED' }),
    ];
    await pool.close();
    await Promise.all(checks);
    await assert.rejects(pool.run({ op: 'echo', value: 2 }), { code: 'ERR_WORKER_CLOSED' });
  });

  test('a pool that ran tasks and is left open does not keep the process alive', async () => {
    // A child process runs a task and returns from its script; it must exit by itself. A watchdog
    // kills it (and fails the test) if an idle worker holds it.
    const poolModule = new URL('../../src/core/worker-pool.js', import.meta.url).href;
    const code = `
      const { WorkerPool } = await import(${JSON.stringify(poolModule)});
      const pool = new WorkerPool({ script: new URL(${JSON.stringify(script.href)}), size: 2 });
      await pool.run({ op: 'echo', value: 1 });
      await pool.run({ op: 'echo', value: 2 });
      console.log('done');
    `;
    const dir = mkdtempSync(join(tmpdir(), 'pacs-pool-'));
    const file = join(dir, 'child.mjs');
    writeFileSync(file, code);
    const child = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    const watchdog = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const [exitCode, signal] = await new Promise<[number | null, string | null]>((resolve) =>
      child.on('close', (c, s) => resolve([c, s])),
    );
    clearTimeout(watchdog);
    rmSync(dir, { recursive: true, force: true });
    assert.equal(out.trim(), 'done');
    assert.deepEqual([exitCode, signal], [0, null], 'the process exited on its own');
  });
});
