import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GroupCommit, type TransactionHost } from '../../src/archive/index/group-commit.js';

/** A fake database: a transaction is a list of writes applied at commit; savepoints truncate it. */
class FakeHost implements TransactionHost<string[]> {
  committed: string[][] = [];
  failNextCommit = false;
  transactions = 0;

  async transaction<R>(body: (conn: string[]) => Promise<R>): Promise<R> {
    this.transactions++;
    const writes: string[] = [];
    const r = await body(writes);
    await new Promise((resolve) => setTimeout(resolve, 2)); // the commit's fsync
    if (this.failNextCommit) {
      this.failNextCommit = false;
      throw new Error('disk I/O error');
    }
    this.committed.push(writes);
    return r;
  }

  async savepoint<R>(conn: string[], _name: string, body: () => Promise<R>): Promise<R> {
    const mark = conn.length;
    try {
      return await body();
    } catch (e) {
      conn.length = mark;
      throw e;
    }
  }

  isRetryable(error: unknown): boolean {
    return (error as { code?: string }).code === 'BUSY';
  }
}

const write = (value: string) => async (conn: string[]) => {
  conn.push(value);
  return value;
};

describe('group commit', () => {
  test('operations submitted together share one transaction; each resolves after its commit', async () => {
    const host = new FakeHost();
    const gc = new GroupCommit(host);
    const results = await Promise.all(['a', 'b', 'c', 'd'].map((v) => gc.submit(write(v))));
    assert.deepEqual(results, ['a', 'b', 'c', 'd']);
    assert.deepEqual(host.committed, [['a', 'b', 'c', 'd']]);
    assert.deepEqual(gc.stats, { batches: 1, operations: 4, largestBatch: 4, retries: 0 });
  });

  test('operations arriving during a commit form the next batch', async () => {
    const host = new FakeHost();
    const gc = new GroupCommit(host);
    const first = gc.submit(write('a'));
    await new Promise((resolve) => setTimeout(resolve, 1)); // 'a' is committing
    const later = await Promise.all([first, gc.submit(write('b')), gc.submit(write('c'))]);
    assert.deepEqual(later, ['a', 'b', 'c']);
    assert.deepEqual(host.committed, [['a'], ['b', 'c']]);
  });

  test('a failing operation is rolled back alone; the others commit', async () => {
    const host = new FakeHost();
    const gc = new GroupCommit(host);
    const results = await Promise.allSettled([
      gc.submit(write('a')),
      gc.submit(async (conn) => {
        conn.push('half');
        throw new Error('constraint failed');
      }),
      gc.submit(write('c')),
    ]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    assert.deepEqual(host.committed, [['a', 'c']]);
  });

  test('retryable failures are tried again in a later batch', async () => {
    const host = new FakeHost();
    const gc = new GroupCommit(host, { maxAttempts: 3 });
    let tries = 0;
    const r = await gc.submit(async (conn) => {
      tries++;
      if (tries < 3) throw Object.assign(new Error('database is locked'), { code: 'BUSY' });
      conn.push('x');
      return 'done';
    });
    assert.equal(r, 'done');
    assert.equal(tries, 3);
    assert.deepEqual(host.committed, [['x']]);
    const gave = gc.submit(async () => {
      throw Object.assign(new Error('still locked'), { code: 'BUSY' });
    });
    await assert.rejects(gave, /still locked/);
  });

  test('a failed commit fails every operation of its batch', async () => {
    const host = new FakeHost();
    const gc = new GroupCommit(host);
    host.failNextCommit = true;
    const results = await Promise.allSettled([gc.submit(write('a')), gc.submit(write('b'))]);
    assert.ok(results.every((r) => r.status === 'rejected'));
    assert.deepEqual(host.committed, []);
  });

  test('maxBatch bounds a transaction; close waits for what is queued and refuses more', async () => {
    const host = new FakeHost();
    const gc = new GroupCommit(host, { maxBatch: 3 });
    const all = Array.from({ length: 8 }, (_, i) => gc.submit(write(String(i))));
    await gc.close();
    assert.deepEqual(host.committed, [
      ['0', '1', '2'],
      ['3', '4', '5'],
      ['6', '7'],
    ]);
    assert.equal((await Promise.all(all)).length, 8);
    await assert.rejects(gc.submit(write('late')), /closed/);
  });
});
