import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SharedSync } from '../../src/archive/fsync.js';

describe('shared fsync', () => {
  test('requests during a sync share the next one; each resolves after a sync that began after it', async () => {
    const started: number[] = [];
    let finish: (() => void)[] = [];
    const shared = new SharedSync(
      () =>
        new Promise<void>((resolve) => {
          started.push(performance.now());
          finish.push(resolve);
        }),
    );
    const first = shared.sync();
    const asked: number[] = [];
    const later = Array.from({ length: 5 }, () => {
      asked.push(performance.now());
      return shared.sync();
    });
    assert.equal(started.length, 1, 'the others wait for the running sync to end');
    const release = () => {
      const f = finish;
      finish = [];
      for (const r of f) r();
    };
    release();
    await first;
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(started.length, 2, 'one more sync for all five');
    release();
    await Promise.all(later);
    assert.ok(asked.every((t) => t <= (started[1] as number)));
    assert.ok(shared.idle);
  });

  test('a failed sync rejects its requests; the next one runs anew', async () => {
    let fail = true;
    const shared = new SharedSync(async () => {
      if (fail) throw new Error('EIO');
    });
    await assert.rejects(shared.sync(), /EIO/);
    fail = false;
    await shared.sync();
  });
});
