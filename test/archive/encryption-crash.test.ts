/**
 * Crashes with encryption at rest (issue 14): kill -9 of `pacs server` during a storescu transfer
 * leaves no partial object among the objects and every indexed object readable and intact; kill
 * -9 of `pacs archive rotate-key` between (or inside) objects leaves every object readable with
 * the old or the new key, and a second run finishes the rotation.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openIndex } from '../../src/archive/index/open.js';
import { ObjectStore } from '../../src/archive/store.js';
import {
  HEADER_SIZE,
  isEnvelope,
  type KeyEncryptionKey,
  makeKeyring,
  newKeyEncryptionKey,
  openHeader,
} from '../../src/security/envelope.js';
import { formatKeyFile } from '../../src/security/key-file.js';
import { type FileInfo, openArchivedFile, readFileInfo } from '../../src/services/storage/scu.js';
import { PACS_BIN, runPacs } from '../helpers/cli.js';
import { dcmtkTool } from '../helpers/corpus.js';
import { writeCtSeries } from '../helpers/synthetic.js';
import { spawnChild, startPacsServer, storescuAcknowledged, tempDir } from '../server/helpers.js';

const LIMIT_MS = 10 * 60_000;

async function until(what: string, condition: () => Promise<boolean> | boolean, stepMs = 20): Promise<void> {
  const deadline = Date.now() + LIMIT_MS;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, stepMs));
  }
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else out.push(p);
  }
  return out.sort();
}

async function writeKey(path: string, kek: KeyEncryptionKey): Promise<void> {
  await writeFile(path, formatKeyFile(kek), { mode: 0o600 });
}

/** The object path (relative to the data folder) of an absolute file path. */
function objectPath(dataDir: string, abs: string): string {
  return abs
    .slice(dataDir.length + 1)
    .split('/')
    .join('/');
}

describe('encryption at rest: crashes', () => {
  let work: Awaited<ReturnType<typeof tempDir>>;
  before(async () => {
    work = await tempDir('pacs-encryption-crash-');
  });
  after(async () => work?.remove());

  it('kill -9 of the server during ingest: no partial object, every indexed object readable and intact', async () => {
    const kek = newKeyEncryptionKey();
    const keyFile = join(work.path, 'kek.json');
    await writeKey(keyFile, kek);
    const config = join(work.path, 'config.json');
    await writeFile(
      config,
      JSON.stringify({ storage: { encryption: { keyFile } }, server: { shutdownTimeoutSeconds: 5 } }),
    );
    const sources = writeCtSeries(join(work.path, 'src'), 300);
    const byUid = new Map<string, FileInfo>();
    for (const p of sources) {
      const r = await readFileInfo(p);
      assert.ok(r.ok);
      byUid.set(r.value.sopInstanceUid, r.value);
    }
    const dataDir = join(work.path, 'data');
    const { server, port } = await startPacsServer(['--config', config, '--data', dataDir]);
    const storescu = spawnChild(
      dcmtkTool('storescu'),
      ['-v', '-aec', 'PACS', '127.0.0.1', String(port), ...sources],
      {
        env: { TCP_NODELAY: '1' },
        name: 'storescu',
      },
    );
    const successes = () => storescu.output.match(/Received Store Response \(Success\)/g)?.length ?? 0;
    try {
      await until('storescu has stored 100 objects', () => successes() >= 100 || !storescu.running);
      assert.ok(storescu.running, 'storescu still sending');
      assert.equal((await server.stop('SIGKILL')).signal, 'SIGKILL');
    } finally {
      await storescu.exited;
    }
    const acknowledged = storescuAcknowledged(storescu.output);
    assert.ok(acknowledged.length >= 100 && acknowledged.length < 300, `${acknowledged.length} acknowledged`);

    // Every file among the objects is a whole envelope: opened, authenticated, decrypted to the end.
    const keyring = makeKeyring(kek);
    const store = await ObjectStore.open({ dataDir, minFreeBytes: 0, keyring });
    const stored = new Map<string, Buffer>();
    for (const abs of await walk(join(dataDir, 'objects'))) {
      const path = objectPath(dataDir, abs);
      assert.ok(isEnvelope(await readFile(abs)), `${path} is encrypted`);
      const handle = await store.openObject(path);
      const opened = await openArchivedFile(path, handle, handle.size);
      assert.ok(opened.ok, `${path} is a readable object`);
      const ds = Buffer.alloc(handle.size - opened.value.dataSetOffset);
      const { bytesRead } = await handle.read(ds, 0, ds.length, opened.value.dataSetOffset);
      assert.equal(bytesRead, ds.length);
      stored.set(opened.value.sopInstanceUid, ds);
      await opened.value.close();
    }
    // Restart: the start-up reconcile removes the partial temporary files and indexes what was renamed.
    const restarted = await startPacsServer(['--config', config, '--data', dataDir]);
    assert.equal((await restarted.server.stop('SIGTERM')).code, 0, restarted.server.output.slice(-3000));
    assert.deepEqual(await walk(join(dataDir, 'tmp')), [], 'no temporary file after the restart');
    const { index } = await openIndex(`sqlite:${join(dataDir, 'index.sqlite')}`);
    try {
      assert.equal(await index.countInstances(), stored.size, 'as many index rows as object files');
      for await (const row of index.listInstanceFiles()) {
        const all: Uint8Array[] = [];
        for await (const c of store.readObject(row.path)) all.push(c);
        assert.ok(Buffer.concat(all).length > 0, `${row.path} readable`);
      }
    } finally {
      await index.close();
    }
    const source = (p: string) => [...byUid.values()].find((s) => s.path === p) as FileInfo;
    const dataSet = async (f: FileInfo) => (await readFile(f.path)).subarray(f.dataSetOffset);
    for (const p of acknowledged) {
      const s = source(p);
      const got = stored.get(s.sopInstanceUid);
      assert.ok(got, `${p} acknowledged and present`);
      assert.ok(got.equals(await dataSet(s)), `${p} intact`);
    }
    for (const [uid, got] of stored) {
      const s = byUid.get(uid);
      assert.ok(s, 'only objects that were sent');
      assert.ok(got.equals(await dataSet(s)), `${uid} complete`);
    }
    const r = await runPacs(
      ['archive', 'reindex', '--json', '--grace', '0', '--data', dataDir, '--key-file', keyFile],
      {
        timeoutMs: LIMIT_MS,
      },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { repaired: number }).repaired, 0, r.stdout);
  });

  it('kill -9 of rotate-key mid-way: every object readable with the old or the new key; a second run finishes', async () => {
    const k1 = newKeyEncryptionKey();
    const k2 = newKeyEncryptionKey();
    const oldKey = join(work.path, 'old.json');
    const newKey = join(work.path, 'new.json');
    await writeKey(oldKey, k1);
    await writeKey(newKey, k2);
    const dataDir = join(work.path, 'rotate');
    const store = await ObjectStore.open({
      dataDir,
      minFreeBytes: 0,
      durability: 'none',
      keyring: makeKeyring(k1),
    });
    const contents = new Map<string, Buffer>();
    for (let i = 0; i < 3000; i++) {
      const begun = await store.beginObject();
      assert.ok(begun.ok);
      const bytes = Buffer.alloc(200 + (i % 700), i % 251);
      begun.value.write(bytes);
      const c = await begun.value.commit();
      assert.ok(c.ok);
      contents.set(c.value.path, bytes);
    }
    const paths = (await walk(join(dataDir, 'objects'))).map((a) => objectPath(dataDir, a));
    const onlyNew = makeKeyring(k2);
    const rotated = async (path: string): Promise<boolean> => {
      const abs = store.absolutePath(path);
      const b = await readFile(abs);
      const id = Buffer.from(/([0-9a-f]{32})\.dcm$/.exec(path)?.[1] ?? '', 'hex');
      try {
        openHeader(b.subarray(0, HEADER_SIZE), id, b.length, onlyNew);
        return true;
      } catch {
        return false;
      }
    };
    const probe = paths[150] as string;
    const rotation = spawnChild(
      process.execPath,
      [PACS_BIN, 'archive', 'rotate-key', '--data', dataDir, '--new-key', newKey, '--old-key', oldKey],
      { name: 'rotate-key' },
    );
    try {
      await until('rotate-key has begun', async () => (await rotated(probe)) || !rotation.running, 2);
      assert.ok(rotation.running, `rotate-key still running:\n${rotation.output}`);
      assert.equal((await rotation.stop('SIGKILL')).signal, 'SIGKILL');
    } finally {
      await rotation.exited;
    }
    let done = 0;
    const oldStore = await ObjectStore.open({ dataDir, minFreeBytes: 0, keyring: makeKeyring(k1) });
    const newStore = await ObjectStore.open({ dataDir, minFreeBytes: 0, keyring: onlyNew });
    const read = async (s: ObjectStore, p: string): Promise<Buffer | undefined> => {
      try {
        const all: Uint8Array[] = [];
        for await (const c of s.readObject(p)) all.push(c);
        return Buffer.concat(all);
      } catch {
        return undefined;
      }
    };
    for (const p of paths) {
      const withNew = await read(newStore, p);
      const withOld = await read(oldStore, p);
      const got = withNew ?? withOld;
      assert.ok(got, `${p} readable with the old or the new key`);
      assert.deepEqual(got, contents.get(p));
      if (withNew) done++;
    }
    assert.ok(
      done > 0 && done < paths.length,
      `stopped part-way: ${done} of ${paths.length} under the new key`,
    );

    const again = await runPacs(
      ['archive', 'rotate-key', '--data', dataDir, '--new-key', newKey, '--old-key', oldKey, '--json'],
      {
        timeoutMs: LIMIT_MS,
      },
    );
    assert.equal(again.code, 0, again.stderr);
    const report = JSON.parse(again.stdout) as { checked: number; rewrapped: number; current: number };
    assert.equal(report.checked, paths.length);
    assert.ok(report.current > 0 && report.rewrapped > 0, again.stdout);
    for (const p of paths) {
      assert.deepEqual(await read(newStore, p), contents.get(p), `${p} with the new key only`);
      assert.equal(await read(oldStore, p), undefined, `${p}: the old key opens nothing`);
    }
  });
});
