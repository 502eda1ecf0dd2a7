/**
 * The job queue contract on SQLite, PostgreSQL (a schema of its own per test) and in memory:
 * priorities, due times, the per-destination limit, leases that expire and are taken again,
 * retries with backoff, cancel; then the runner, and two runners sharing one store (and, on
 * PostgreSQL, two connection pools on one schema: every job runs exactly once).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ArchiveIndex } from '../../src/archive/index/archive-index.js';
import { openIndex } from '../../src/archive/index/open.js';
import {
  backoffDelay,
  CANCELLED,
  type ClaimOptions,
  type Job,
  JobPriority,
  type JobStore,
  RetryableJobError,
} from '../../src/archive/jobs/job.js';
import { jobStoreFor } from '../../src/archive/jobs/open.js';
import { type JobContext, JobRunner, JobStopped } from '../../src/archive/jobs/runner.js';
import { ALL_ENGINES, postgresEngine, sqliteEngine, type TestEngine } from './helpers.js';

/** A clock the test moves by hand. */
class FakeClock {
  t = Date.parse('2024-06-11T10:00:00.000Z');
  readonly now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

async function withStore(
  engine: TestEngine,
  fn: (store: JobStore, index: ArchiveIndex, clock: FakeClock) => Promise<void>,
  options: { fakeClock?: boolean } = {},
): Promise<void> {
  const opened = await engine.open();
  const clock = new FakeClock();
  const store = jobStoreFor(opened.index, options.fakeClock === false ? {} : { now: clock.now });
  try {
    await fn(store, opened.index, clock);
  } finally {
    await store.close();
    await opened.cleanup();
  }
}

function claimOptions(over: Partial<ClaimOptions> = {}): ClaimOptions {
  return {
    worker: 'w1',
    limit: 10,
    kinds: ['test'],
    leaseMs: 10_000,
    destinationLimit: () => 2,
    ...over,
  };
}

const ids = (jobs: readonly Job[]): number[] => jobs.map((j) => j.id);

function until(condition: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const check = async (): Promise<void> => {
      if (await condition()) return resolve();
      if (Date.now() - started > timeoutMs) return reject(new Error('condition not met in time'));
      setTimeout(() => void check(), 10);
    };
    void check();
  });
}

for (const engine of ALL_ENGINES) {
  describe(`job store on ${engine.name}`, () => {
    test('enqueue, get and list (newest first, by state and kind)', () =>
      withStore(engine, async (store) => {
        const a = await store.enqueue({ kind: 'test', payload: { n: 1, text: 'é' }, destination: 'DEST' });
        const b = await store.enqueue({ kind: 'other', payload: [1, 2], priority: JobPriority.background });
        assert.equal(a.state, 'queued');
        assert.equal(a.attempts, 0);
        assert.equal(a.maxAttempts, 5);
        assert.equal(a.priority, JobPriority.normal);
        assert.deepEqual(a.payload, { n: 1, text: 'é' });
        assert.equal(a.destination, 'DEST');
        assert.equal(a.result, null);
        const got = await store.get(a.id);
        assert.deepEqual(got, a);
        assert.equal(await store.get(9999), undefined);
        assert.deepEqual(ids(await store.list()), [b.id, a.id]);
        assert.deepEqual(ids(await store.list({ kind: 'other' })), [b.id]);
        assert.deepEqual(ids(await store.list({ states: ['running'] })), []);
        assert.deepEqual(ids(await store.list({ limit: 1 })), [b.id]);
      }));

    test('claims by priority, then due time, then age; only known kinds; never twice', () =>
      withStore(engine, async (store, _index, clock) => {
        const bg = await store.enqueue({ kind: 'test', payload: 1, priority: JobPriority.background });
        const n1 = await store.enqueue({ kind: 'test', payload: 2 });
        clock.advance(1);
        const n2 = await store.enqueue({ kind: 'test', payload: 3, runAt: new Date(clock.t - 10) });
        const inter = await store.enqueue({ kind: 'test', payload: 4, priority: JobPriority.interactive });
        await store.enqueue({ kind: 'unknown-kind', payload: 5, priority: JobPriority.interactive });
        const first = await store.claim(claimOptions({ limit: 3 }));
        // n2 was due before n1 (runAt in the past): due time orders them.
        assert.deepEqual(ids(first), [inter.id, n2.id, n1.id]);
        for (const j of first) {
          assert.equal(j.state, 'running');
          assert.equal(j.attempts, 1);
          assert.equal(j.lockedBy, 'w1');
          assert.equal(j.leaseUntil?.getTime(), clock.t + 10_000);
        }
        assert.deepEqual(ids(await store.claim(claimOptions({ worker: 'w2' }))), [bg.id]);
        assert.deepEqual(await store.claim(claimOptions({ worker: 'w3' })), []);
      }));

    test('a job is not claimed before its time', () =>
      withStore(engine, async (store, _index, clock) => {
        const later = await store.enqueue({ kind: 'test', payload: null, runAt: new Date(clock.t + 5000) });
        assert.deepEqual(await store.claim(claimOptions()), []);
        clock.advance(5000);
        assert.deepEqual(ids(await store.claim(claimOptions())), [later.id]);
      }));

    test('a destination runs at most its limit of jobs at once, over every claimer', () =>
      withStore(engine, async (store) => {
        const a = [];
        for (let i = 0; i < 4; i++)
          a.push(await store.enqueue({ kind: 'test', payload: i, destination: 'A' }));
        const b = await store.enqueue({ kind: 'test', payload: 9, destination: 'B' });
        const free = await store.enqueue({ kind: 'test', payload: 10 });
        const first = await store.claim(claimOptions({ limit: 3 }));
        assert.deepEqual(ids(first), [a[0]?.id, a[1]?.id, b.id]);
        // Another runner: A is full, so it gets the job without a destination.
        assert.deepEqual(ids(await store.claim(claimOptions({ worker: 'w2' }))), [free.id]);
        assert.deepEqual(await store.claim(claimOptions({ worker: 'w3' })), []);
        // A per-destination limit of 3 lets one more A run.
        assert.deepEqual(ids(await store.claim(claimOptions({ destinationLimit: () => 3 }))), [a[2]?.id]);
        const done = a[0] as Job;
        assert.equal(await store.finish(done.id, 'w1', { state: 'done', result: { ok: true } }), true);
        assert.deepEqual(ids(await store.claim(claimOptions({ destinationLimit: () => 3 }))), [a[3]?.id]);
      }));

    test('a running job whose lease expired is taken again; the old runner can no longer write', () =>
      withStore(engine, async (store, _index, clock) => {
        const job = await store.enqueue({ kind: 'test', payload: null, destination: 'A' });
        await store.claim(claimOptions({ leaseMs: 1000 }));
        assert.deepEqual(await store.claim(claimOptions({ worker: 'w2' })), []);
        // Renewed in time: still w1's.
        clock.advance(900);
        assert.deepEqual(await store.renew(job.id, 'w1', 1000), { owned: true, cancelRequested: false });
        clock.advance(900);
        assert.deepEqual(await store.claim(claimOptions({ worker: 'w2' })), []);
        // w1 stops renewing (it died): once the lease is over, w2 takes it; the expired lease does
        // not count against the destination's limit.
        clock.advance(1001);
        const again = await store.claim(claimOptions({ worker: 'w2', destinationLimit: () => 1 }));
        assert.deepEqual(ids(again), [job.id]);
        assert.equal(again[0]?.attempts, 2);
        assert.equal(again[0]?.lockedBy, 'w2');
        assert.equal(await store.saveProgress(job.id, 'w1', { stale: true }), false);
        assert.equal(await store.finish(job.id, 'w1', { state: 'done', result: null }), false);
        assert.deepEqual(await store.renew(job.id, 'w1', 1000), { owned: false, cancelRequested: false });
        assert.equal(await store.saveProgress(job.id, 'w2', { at: 5 }), true);
        assert.deepEqual((await store.get(job.id))?.result, { at: 5 });
      }));

    test('a job whose lease expires on its last attempt fails', () =>
      withStore(engine, async (store, _index, clock) => {
        const job = await store.enqueue({ kind: 'test', payload: null, maxAttempts: 1 });
        const finished: Job[] = [];
        store.on('finished', (j) => finished.push(j));
        await store.claim(claimOptions({ leaseMs: 1000 }));
        clock.advance(2000);
        assert.deepEqual(await store.claim(claimOptions({ worker: 'w2' })), []);
        const failed = await store.get(job.id);
        assert.equal(failed?.state, 'failed');
        assert.match(failed?.lastError ?? '', /lease expired on attempt 1 of 1/);
        assert.deepEqual(ids(finished), [job.id]);
      }));

    test('retry puts a job back for later; release does not count the attempt', () =>
      withStore(engine, async (store, _index, clock) => {
        const job = await store.enqueue({ kind: 'test', payload: null });
        await store.claim(claimOptions());
        const runAt = new Date(clock.t + 2000);
        assert.equal(
          await store.finish(job.id, 'w1', { state: 'retry', error: 'refused', result: { n: 1 }, runAt }),
          true,
        );
        const queued = await store.get(job.id);
        assert.equal(queued?.state, 'queued');
        assert.equal(queued?.lastError, 'refused');
        assert.deepEqual(queued?.result, { n: 1 });
        assert.equal(queued?.lockedBy, null);
        assert.deepEqual(await store.claim(claimOptions()), []);
        clock.advance(2000);
        const second = await store.claim(claimOptions());
        assert.equal(second[0]?.attempts, 2);
        await store.finish(job.id, 'w1', { state: 'released', result: { n: 2 } });
        const released = await store.get(job.id);
        assert.equal(released?.state, 'queued');
        assert.equal(released?.attempts, 1);
        const third = await store.claim(claimOptions());
        assert.equal(third[0]?.attempts, 2);
        await store.finish(job.id, 'w1', { state: 'failed', error: 'broken', result: null });
        const failed = await store.get(job.id);
        assert.equal(failed?.state, 'failed');
        assert.equal(failed?.lastError, 'broken');
        assert.ok(failed?.finishedAt);
      }));

    test('finished jobs older than a date are purged; others stay', () =>
      withStore(engine, async (store, _index, clock) => {
        const old = await store.enqueue({ kind: 'test', payload: 1 });
        const young = await store.enqueue({ kind: 'test', payload: 2 });
        const running = await store.enqueue({ kind: 'test', payload: 3 });
        const queued = await store.enqueue({ kind: 'test', payload: 4, runAt: new Date(clock.t + 60_000) });
        await store.claim(claimOptions({ limit: 3 }));
        await store.finish(old.id, 'w1', { state: 'done', result: null });
        clock.advance(10_000);
        await store.finish(young.id, 'w1', { state: 'failed', error: 'x', result: null });
        assert.equal(await store.purgeFinished(new Date(clock.t - 5_000)), 1);
        assert.deepEqual(ids(await store.list()).sort(), [young.id, running.id, queued.id].sort());
      }));

    test('cancel: a queued job fails at once, a running one is flagged for its runner', () =>
      withStore(engine, async (store) => {
        const queued = await store.enqueue({ kind: 'test', payload: null, priority: 5 });
        const running = await store.enqueue({ kind: 'test', payload: null, priority: 1 });
        await store.claim(claimOptions({ limit: 1 }));
        const cancels: number[] = [];
        store.on('cancel', (id) => cancels.push(id));
        assert.equal(await store.requestCancel(queued.id), true);
        const q = await store.get(queued.id);
        assert.equal(q?.state, 'failed');
        assert.equal(q?.lastError, CANCELLED);
        assert.equal(await store.requestCancel(running.id), true);
        assert.deepEqual(cancels, [running.id]);
        assert.deepEqual(await store.renew(running.id, 'w1', 1000), { owned: true, cancelRequested: true });
        await store.finish(running.id, 'w1', { state: 'done', result: null });
        assert.equal(await store.requestCancel(running.id), false);
        assert.equal(await store.requestCancel(424242), false);
      }));
  });

  describe(`job runner on ${engine.name}`, () => {
    test('interactive jobs run before background ones; results are recorded', () =>
      withStore(
        engine,
        async (store) => {
          const order: number[] = [];
          const runner = new JobRunner(store, { concurrency: 1, pollMs: 20 });
          runner.register('test', async ({ job }) => {
            order.push(job.payload as number);
            return { seen: job.payload };
          });
          const bg = await store.enqueue({ kind: 'test', payload: 1, priority: JobPriority.background });
          await store.enqueue({ kind: 'test', payload: 2, priority: JobPriority.normal });
          const inter = await store.enqueue({ kind: 'test', payload: 3, priority: JobPriority.interactive });
          runner.start();
          await until(async () => (await store.get(bg.id))?.state === 'done');
          await runner.stop();
          assert.deepEqual(order, [3, 2, 1]);
          const done = await store.get(inter.id);
          assert.deepEqual(done?.result, { seen: 3 });
          assert.equal(done?.attempts, 1);
          assert.equal(done?.lockedBy, null);
        },
        { fakeClock: false },
      ));

    test('a transient failure is retried with exponential backoff, then the job fails', () =>
      withStore(
        engine,
        async (store) => {
          const times: number[] = [];
          const runner = new JobRunner(store, { pollMs: 1000, backoff: { baseMs: 60, jitter: 0 } });
          runner.register('test', async ({ job }) => {
            times.push(Date.now());
            if (job.payload === 'recovers' && job.attempts === 3) return { delivered: true };
            throw new RetryableJobError('association refused');
          });
          runner.start();
          const ok = await store.enqueue({ kind: 'test', payload: 'recovers', maxAttempts: 5 });
          await until(async () => (await store.get(ok.id))?.state === 'done');
          assert.equal(times.length, 3);
          const [t1 = 0, t2 = 0, t3 = 0] = times;
          assert.ok(t2 - t1 >= 55, `first retry after ${t2 - t1} ms`);
          assert.ok(t3 - t2 >= 115, `second retry after ${t3 - t2} ms (doubled)`);
          const done = await store.get(ok.id);
          assert.equal(done?.attempts, 3);
          assert.deepEqual(done?.result, { delivered: true });

          const bad = await store.enqueue({ kind: 'test', payload: 'never', maxAttempts: 2 });
          await until(async () => (await store.get(bad.id))?.state === 'failed');
          const failed = await store.get(bad.id);
          assert.equal(failed?.attempts, 2);
          assert.equal(failed?.lastError, 'association refused');
          await runner.stop();
        },
        { fakeClock: false },
      ));

    test('an error that is not transient fails the job at once', () =>
      withStore(
        engine,
        async (store) => {
          const runner = new JobRunner(store, { pollMs: 20 });
          runner.register('test', async () => {
            throw new Error('no such study');
          });
          runner.start();
          const job = await store.enqueue({ kind: 'test', payload: null });
          await until(async () => (await store.get(job.id))?.state === 'failed');
          assert.equal((await store.get(job.id))?.attempts, 1);
          assert.equal((await store.get(job.id))?.lastError, 'no such study');
          await runner.stop();
        },
        { fakeClock: false },
      ));

    test('cancel stops a running handler through its signal; its progress is kept', () =>
      withStore(
        engine,
        async (store) => {
          const runner = new JobRunner(store, { pollMs: 20 });
          let started = false;
          runner.register('test', (ctx: JobContext) => {
            started = true;
            ctx.report({ done: 1 });
            return new Promise((resolve) => {
              ctx.signal.addEventListener('abort', () => {
                assert.ok(ctx.signal.reason instanceof JobStopped);
                resolve({ done: 1, stoppedBy: (ctx.signal.reason as JobStopped).reason });
              });
            });
          });
          runner.start();
          const job = await store.enqueue({ kind: 'test', payload: null });
          await until(() => started);
          assert.equal(await store.requestCancel(job.id), true);
          await until(async () => (await store.get(job.id))?.state === 'failed');
          const ended = await store.get(job.id);
          assert.equal(ended?.lastError, CANCELLED);
          assert.deepEqual(ended?.result, { done: 1, stoppedBy: 'cancel' });
          await runner.stop();
        },
        { fakeClock: false },
      ));

    test('a job left running by a dead runner is taken again once its lease expires', () =>
      withStore(
        engine,
        async (store) => {
          const job = await store.enqueue({ kind: 'test', payload: null });
          // A runner claims it and dies (never renews, never finishes).
          const [dead] = await store.claim(claimOptions({ worker: 'dead', leaseMs: 150 }));
          assert.equal(dead?.id, job.id);
          const runner = new JobRunner(store, { pollMs: 30, leaseMs: 5000 });
          runner.register('test', async (ctx) => ({ attempt: ctx.job.attempts, by: ctx.job.lockedBy }));
          runner.start();
          await until(async () => (await store.get(job.id))?.state === 'done');
          assert.deepEqual((await store.get(job.id))?.result, { attempt: 2, by: runner.workerId });
          await runner.stop();
        },
        { fakeClock: false },
      ));

    test('a runner keeps its lease while a job runs longer than the lease', () =>
      withStore(
        engine,
        async (store) => {
          const runs: number[] = [];
          const a = new JobRunner(store, { pollMs: 20, leaseMs: 120, workerId: 'a' });
          const b = new JobRunner(store, { pollMs: 20, leaseMs: 120, workerId: 'b' });
          const handler = async (ctx: JobContext): Promise<unknown> => {
            runs.push(ctx.job.id);
            await new Promise((r) => setTimeout(r, 500));
            return null;
          };
          a.register('test', handler).start();
          const job = await store.enqueue({ kind: 'test', payload: null });
          await until(() => runs.length === 1);
          b.register('test', handler).start();
          await until(async () => (await store.get(job.id))?.state === 'done');
          assert.deepEqual(runs, [job.id]);
          await Promise.all([a.stop(), b.stop()]);
        },
        { fakeClock: false },
      ));

    test('stop releases running jobs without counting the attempt', () =>
      withStore(
        engine,
        async (store) => {
          const runner = new JobRunner(store, { pollMs: 20 });
          let started = false;
          runner.register('test', (ctx) => {
            started = true;
            ctx.report({ cursor: 7 });
            return new Promise((_resolve, reject) => {
              ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason));
            });
          });
          runner.start();
          const job = await store.enqueue({ kind: 'test', payload: null });
          await until(() => started);
          await runner.stop();
          const released = await store.get(job.id);
          assert.equal(released?.state, 'queued');
          assert.equal(released?.attempts, 0);
          assert.deepEqual(released?.result, { cursor: 7 });
        },
        { fakeClock: false },
      ));

    test('two runners on one store: every job runs once, the destination limit holds', () =>
      withStore(
        engine,
        async (store) => {
          const runs = new Map<number, number>();
          const live = new Map<string, number>();
          let worst = 0;
          const handler = async (ctx: JobContext): Promise<unknown> => {
            runs.set(ctx.job.id, (runs.get(ctx.job.id) ?? 0) + 1);
            const d = ctx.job.destination ?? '';
            live.set(d, (live.get(d) ?? 0) + 1);
            worst = Math.max(worst, live.get(d) ?? 0);
            await new Promise((r) => setTimeout(r, 2));
            live.set(d, (live.get(d) ?? 0) - 1);
            return null;
          };
          const runners = ['r1', 'r2'].map((id) =>
            new JobRunner(store, { workerId: id, concurrency: 4, pollMs: 10, perDestination: 2 }).register(
              'test',
              handler,
            ),
          );
          for (const r of runners) r.start();
          const jobs = [];
          for (let i = 0; i < 60; i++)
            jobs.push(await store.enqueue({ kind: 'test', payload: i, destination: `D${i % 3}` }));
          await until(
            async () => (await store.list({ states: ['done'], limit: 1000 })).length === 60,
            30_000,
          );
          await Promise.all(runners.map((r) => r.stop()));
          assert.equal(runs.size, 60);
          assert.ok([...runs.values()].every((n) => n === 1));
          assert.ok(worst <= 2, `at most 2 per destination, saw ${worst}`);
        },
        { fakeClock: false },
      ));
  });
}

describe('job queue on PostgreSQL shared by two connection pools (two servers)', () => {
  test('200 jobs, two runners on separate pools of one schema: each job runs exactly once', async () => {
    const opened = await postgresEngine.open();
    const second = await openIndex(opened.url as string);
    const stores = [jobStoreFor(opened.index), jobStoreFor(second.index)];
    const runs = new Map<number, string[]>();
    const live = new Map<string, number>();
    let worst = 0;
    try {
      const runners = stores.map((store, i) =>
        new JobRunner(store, { workerId: `node${i}`, concurrency: 6, pollMs: 5, perDestination: 3 }).register(
          'test',
          async (ctx) => {
            runs.set(ctx.job.id, [...(runs.get(ctx.job.id) ?? []), `node${i}`]);
            // Jobs without a destination have no limit.
            const d = ctx.job.destination;
            if (d !== null) {
              live.set(d, (live.get(d) ?? 0) + 1);
              worst = Math.max(worst, live.get(d) ?? 0);
            }
            await new Promise((r) => setTimeout(r, 1 + (ctx.job.id % 3)));
            if (d !== null) live.set(d, (live.get(d) ?? 0) - 1);
            return null;
          },
        ),
      );
      const enqueuer = stores[0] as JobStore;
      await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          enqueuer.enqueue({ kind: 'test', payload: i, destination: i % 4 === 0 ? null : `AE${i % 5}` }),
        ),
      );
      for (const r of runners) r.start();
      await until(
        async () => (await enqueuer.list({ states: ['done'], limit: 1000 })).length === 200,
        60_000,
      );
      await Promise.all(runners.map((r) => r.stop()));
      assert.equal(runs.size, 200);
      const twice = [...runs].filter(([, by]) => by.length !== 1);
      assert.deepEqual(twice, []);
      const byNode = new Set([...runs.values()].flat());
      assert.equal(byNode.size, 2, 'both runners took jobs');
      assert.ok(worst <= 3, `at most 3 per destination over both nodes, saw ${worst}`);
    } finally {
      for (const s of stores) await s.close();
      await second.index.close();
      await opened.cleanup();
    }
  });
});

describe('job queue across a restart (SQLite)', () => {
  test('queued and running jobs survive closing the index; a running one is taken again after its lease', async () => {
    const opened = await sqliteEngine.open();
    const url = opened.url as string;
    const store = jobStoreFor(opened.index);
    const queued = await store.enqueue({ kind: 'test', payload: 'a' });
    const running = await store.enqueue({ kind: 'test', payload: 'b', priority: JobPriority.interactive });
    await store.claim(claimOptions({ worker: 'crashed', leaseMs: 100, limit: 1 }));
    assert.equal((await store.get(running.id))?.state, 'running');
    // Closing the index: the process "restarts".
    await opened.index.close();
    const reopened = await openIndex(url);
    const store2 = jobStoreFor(reopened.index);
    try {
      const runner = new JobRunner(store2, { pollMs: 20 });
      const seen: unknown[] = [];
      runner.register('test', async (ctx) => {
        seen.push(ctx.job.payload);
        return null;
      });
      runner.start();
      await until(async () => (await store2.list({ states: ['done'] })).length === 2);
      await runner.stop();
      assert.deepEqual(seen.sort(), ['a', 'b']);
      assert.equal((await store2.get(running.id))?.attempts, 2);
      assert.equal((await store2.get(queued.id))?.attempts, 1);
    } finally {
      await reopened.index.close();
      await opened.cleanup();
    }
  });
});

test('backoff doubles from the base, is capped, and jitter only shortens it', () => {
  const none = () => 0;
  assert.equal(backoffDelay(1, { baseMs: 100 }, none), 100);
  assert.equal(backoffDelay(2, { baseMs: 100 }, none), 200);
  assert.equal(backoffDelay(4, { baseMs: 100 }, none), 800);
  assert.equal(backoffDelay(30, { baseMs: 100, maxMs: 5000 }, none), 5000);
  assert.equal(
    backoffDelay(2, { baseMs: 100, jitter: 0.5 }, () => 1),
    100,
  );
});
