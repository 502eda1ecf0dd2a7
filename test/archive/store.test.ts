import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { type ObjectFileEntry, ObjectStore, type ObjectWriter } from '../../src/archive/store.js';
import { tempDir } from './helpers.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function openStore(
  options: Partial<Parameters<typeof ObjectStore.open>[0]> = {},
): Promise<ObjectStore> {
  const dataDir = tempDir('pacs-store-test-');
  dirs.push(dataDir);
  return ObjectStore.open({ dataDir, minFreeBytes: 0, ...options });
}

async function begin(store: ObjectStore): Promise<ObjectWriter> {
  const r = await store.beginObject();
  if (!r.ok) assert.fail(r.error.message);
  return r.value;
}

/** Every file under the data folder, relative, sorted. */
function filesUnder(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...filesUnder(dir, rel));
    else out.push(rel);
  }
  return out.sort();
}

function bytes(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

describe('object store', () => {
  test('an object is streamed to a temporary file, then renamed to a path made from its id', async () => {
    const store = await openStore();
    const w = await begin(store);
    assert.match(w.id, /^[0-9a-f]{32}$/);
    const parts = [bytes(132), bytes(70_000, 2), bytes(3, 3), bytes(1_000_000, 4)];
    for (const p of parts) if (!w.write(p)) await w.drain();
    assert.equal(w.bytesWritten, 1_070_135);
    assert.deepEqual(readdirSync(join(store.dataDir, 'tmp')), [`${w.id}.part`]);
    const r = await w.commit();
    assert.ok(r.ok);
    assert.equal(r.value.path, `objects/${w.id.slice(0, 2)}/${w.id.slice(2, 4)}/${w.id}.dcm`);
    assert.equal(r.value.path, ObjectStore.pathOf(w.id));
    assert.equal(r.value.size, 1_070_135);
    assert.deepEqual(readFileSync(store.absolutePath(r.value.path)), Buffer.concat(parts));
    assert.deepEqual(filesUnder(store.dataDir), [r.value.path]);
    // The handle is finished.
    assert.throws(() => w.write(bytes(1)), { code: 'ERR_ARCHIVE_STATE' });
    const again = await w.commit();
    assert.equal(!again.ok && again.error.code, 'ERR_ARCHIVE_STATE');
    await w.abort(); // no effect after a commit
    assert.ok(await store.exists(r.value.path));
  });

  test('write() asks the writer to wait above the high-water mark, drain() says when to go on', async () => {
    const store = await openStore({ highWaterMark: 64 * 1024 });
    const w = await begin(store);
    assert.equal(w.write(bytes(1000)), true);
    assert.equal(w.write(bytes(100_000)), false);
    await w.drain();
    const r = await w.commit();
    assert.ok(r.ok);
    assert.equal(r.value.size, 101_000);
  });

  test('abort leaves nothing behind', async () => {
    const store = await openStore();
    const w = await begin(store);
    w.write(bytes(500_000));
    await w.abort();
    await w.abort(); // twice is fine
    assert.deepEqual(filesUnder(store.dataDir), []);
    assert.throws(() => w.write(bytes(1)), { code: 'ERR_ARCHIVE_STATE' });
    const r = await w.commit();
    assert.equal(!r.ok && r.error.code, 'ERR_ARCHIVE_STATE');
  });

  test('below the free-space floor no object is begun', async () => {
    const store = await openStore({ minFreeBytes: Number.MAX_SAFE_INTEGER });
    const r = await store.beginObject();
    assert.ok(!r.ok);
    assert.equal(r.error.code, 'ERR_ARCHIVE_OUT_OF_SPACE');
    assert.match(r.error.message, /below the floor/);
    assert.deepEqual(filesUnder(store.dataDir), []);
    const free = await store.freeBytes();
    assert.ok(free > 0);
  });

  test('a disk that fills up while writing gives ERR_ARCHIVE_OUT_OF_SPACE and leaves nothing', async (t) => {
    const mountPoint = tempDir('pacs-store-tmpfs-');
    dirs.push(mountPoint);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mountPoint], { stdio: 'pipe' });
    } catch (e) {
      t.skip(`a small tmpfs cannot be mounted here (needs root): ${(e as Error).message.split('\n')[0]}`);
      return;
    }
    try {
      const store = await ObjectStore.open({ dataDir: mountPoint, minFreeBytes: 0 });
      const w = await begin(store);
      for (let i = 0; i < 32; i++) if (!w.write(bytes(64 * 1024, i))) await w.drain();
      // The caller keeps reading its input to the end; writes after the failure are dropped.
      assert.equal(w.write(bytes(10)), true);
      const r = await w.commit();
      assert.ok(!r.ok);
      assert.equal(r.error.code, 'ERR_ARCHIVE_OUT_OF_SPACE');
      assert.equal(w.error?.code, 'ERR_ARCHIVE_OUT_OF_SPACE');
      assert.deepEqual(filesUnder(mountPoint), []);
      // A small object still fits afterwards.
      const small = await begin(store);
      small.write(bytes(1000));
      assert.ok((await small.commit()).ok);
    } finally {
      execFileSync('umount', [mountPoint]);
    }
  });

  test('concurrent commits all land in distinct files', async () => {
    const store = await openStore();
    const n = 120;
    const results = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const w = await begin(store);
        w.write(bytes(2000 + i, i));
        const r = await w.commit();
        assert.ok(r.ok);
        return r.value;
      }),
    );
    assert.equal(new Set(results.map((r) => r.path)).size, n);
    for (const [i, r] of results.entries())
      assert.deepEqual(readFileSync(store.absolutePath(r.path)), bytes(2000 + i, i));
    assert.deepEqual(readdirSync(join(store.dataDir, 'tmp')), []);
  });

  test('cleanTemp removes leftovers, not the files being written nor (with olderThanMs) recent ones', async () => {
    const store = await openStore();
    const tmp = join(store.dataDir, 'tmp');
    writeFileSync(join(tmp, 'crashed.part'), 'x');
    const old = new Date(Date.now() - 3_600_000);
    utimesSync(join(tmp, 'crashed.part'), old, old);
    writeFileSync(join(tmp, 'fresh.part'), 'y');
    const w = await begin(store);
    w.write(bytes(10));
    assert.equal(await store.cleanTemp({ olderThanMs: 60_000 }), 1);
    assert.deepEqual(readdirSync(tmp).sort(), [`${w.id}.part`, 'fresh.part'].sort());
    assert.equal(await store.cleanTemp(), 1);
    assert.deepEqual(readdirSync(tmp), [`${w.id}.part`]);
    assert.ok((await w.commit()).ok);
  });

  test('walkObjects lists every object file in path order', async () => {
    const store = await openStore();
    const paths: string[] = [];
    for (let i = 0; i < 40; i++) {
      const w = await begin(store);
      w.write(bytes(10));
      const r = await w.commit();
      assert.ok(r.ok);
      paths.push(r.value.path);
    }
    // Stray names are listed too (reconcile decides); folders that are not ours are not.
    mkdirSync(join(store.dataDir, 'objects', 'not-ours'));
    writeFileSync(join(store.dataDir, 'objects', 'not-ours', 'x'), '');
    const walked: ObjectFileEntry[] = [];
    for await (const f of store.walkObjects()) walked.push(f);
    assert.deepEqual(
      walked.map((f) => f.path),
      [...paths].sort(),
    );
    assert.equal(walked.at(-1)?.fraction, 1);
    assert.ok(walked.every((f, i) => i === 0 || f.fraction >= (walked[i - 1]?.fraction ?? 0)));
  });

  test('remove and absolutePath accept object paths only', async () => {
    const store = await openStore();
    const w = await begin(store);
    w.write(bytes(10));
    const r = await w.commit();
    assert.ok(r.ok);
    assert.equal(await store.remove(r.value.path), true);
    assert.equal(existsSync(store.absolutePath(r.value.path)), false);
    assert.equal(await store.remove(r.value.path), false);
    for (const bad of ['../etc/passwd', 'objects/../../x', '/objects/aa', 'tmp/x.part', 'objects//x'])
      assert.throws(() => store.absolutePath(bad), { code: 'ERR_ARCHIVE_IO' }, bad);
  });
});
