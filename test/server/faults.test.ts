/**
 * Storage faults against the real `pacs server` process (ISSUE 4 "How it is checked"): an A-ABORT
 * in the middle of a data set and a peer that vanishes mid-transfer leave no file and no row; a
 * full disk (a 2 MiB tmpfs holding the data folder and its index) answers 0xA700 and leaves
 * nothing partial; the free-space floor answers 0xA700 without writing; kill -9 of the server
 * during a 500-object transfer, then a restart: every object whose success response was sent is
 * present and intact, no partial file remains, and the index matches the files exactly; a data
 * set whose UIDs differ from the command's, or that does not parse, gets a failure status and
 * nothing is stored. The senders run in this process (our requestor API) or as children (storescu).
 * What the index holds is read after the server stopped, by `pacs archive reindex --json`, which
 * must find nothing to repair, and by opening the index.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openIndex } from '../../src/archive/index/open.js';
import type { DataSet } from '../../src/dicom/dataset.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { EXPLICIT_VR_LE, generateUid, UID } from '../../src/dicom/uid.js';
import { encodeDataSet } from '../../src/dicom/writer.js';
import { ApplicationEntity } from '../../src/network/ae.js';
import type { DimseAssociation } from '../../src/network/dimse.js';
import { CommandField, Priority } from '../../src/network/dimse-command.js';
import { Status } from '../../src/network/dimse-status.js';
import { type FileInfo, readFileInfo } from '../../src/services/storage/scu.js';
import { run, runPacs } from '../helpers/cli.js';
import { dcmtkTool } from '../helpers/corpus.js';
import { makeCtDataSet, writeCtSeries } from '../helpers/synthetic.js';
import {
  type Child,
  spawnChild,
  startPacsServer,
  storescuAcknowledged,
  TEST_CLIENT_AES,
  tempDir,
} from './helpers.js';

const CT = UID.CTImageStorage;
/** A safety net for a hung child or condition only (the suite runs on busy machines: no timing is asserted). */
const LIMIT_MS = 10 * 60_000;

/** Polls `condition` until it holds; fails with `what` after LIMIT_MS. */
async function until(what: string, condition: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + LIMIT_MS;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function walkFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walkFiles(p)));
    else out.push(p);
  }
  return out.sort();
}

/** The object files of an archive by SOP Instance UID; each must be a complete, readable object. */
async function objectsByUid(dataDir: string): Promise<Map<string, FileInfo>> {
  const map = new Map<string, FileInfo>();
  for (const path of await walkFiles(join(dataDir, 'objects'))) {
    const r = await readFileInfo(path);
    assert.ok(r.ok, `${path} is a readable DICOM object`);
    map.set(r.value.sopInstanceUid, r.value);
  }
  return map;
}

async function dataSetBytes(f: FileInfo): Promise<Buffer> {
  return (await readFile(f.path)).subarray(f.dataSetOffset);
}

async function tmpFiles(dataDir: string): Promise<string[]> {
  return walkFiles(join(dataDir, 'tmp'));
}

interface ReindexReport {
  tempFilesRemoved: number;
  filesIndexed: number;
  duplicateFilesRemoved: number;
  rowsRemoved: number;
  unreadableFiles: string[];
  filesChecked: number;
  rowsChecked: number;
  repaired: number;
}

/**
 * With the server stopped: the index names exactly the object files (as many rows as files, each
 * row's file there, each file a row), which `pacs archive reindex` confirms by repairing nothing.
 */
async function assertIndexMatchesFiles(
  dataDir: string,
  dbUrl = `sqlite:${join(dataDir, 'index.sqlite')}`,
): Promise<Map<string, FileInfo>> {
  const files = await objectsByUid(dataDir);
  const { index } = await openIndex(dbUrl);
  try {
    assert.equal(await index.countInstances(), files.size, 'as many index rows as object files');
    for await (const row of index.listInstanceFiles()) {
      const file = files.get(row.sopInstanceUid);
      assert.equal(file?.path, join(dataDir, row.path), `${row.sopInstanceUid}: the row's file exists`);
    }
  } finally {
    await index.close();
  }
  const r = await runPacs(
    ['archive', 'reindex', '--json', '--grace', '0', '--data', dataDir, '--db', dbUrl],
    {
      timeoutMs: LIMIT_MS,
    },
  );
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as ReindexReport;
  assert.deepEqual(
    {
      repaired: report.repaired,
      unreadable: report.unreadableFiles,
      files: report.filesChecked,
      rows: report.rowsChecked,
    },
    { repaired: 0, unreadable: [], files: files.size, rows: files.size },
    'pacs archive reindex finds nothing to repair',
  );
  return files;
}

/** Config files go here, beside (not in) the data folders, which may be on a small tmpfs. */
let configDir = tmpdir();

async function startServer(
  dataDir: string,
  storage: Record<string, unknown> = {},
  dbUrl?: string,
): Promise<{ server: Child; port: number }> {
  const config = join(configDir, `config-${randomBytes(4).toString('hex')}.json`);
  await writeFile(
    config,
    JSON.stringify({ storage, server: { shutdownTimeoutSeconds: 5, dicom: { aes: TEST_CLIENT_AES } } }),
  );
  return startPacsServer([
    '--config',
    config,
    '--data',
    dataDir,
    ...(dbUrl !== undefined ? ['--db', dbUrl] : []),
  ]);
}

async function stopServer(server: Child): Promise<void> {
  const { code } = await server.stop('SIGTERM');
  assert.equal(code, 0, `pacs server exited ${code}:\n${server.output.slice(-4000)}`);
}

async function connect(port: number): Promise<DimseAssociation> {
  const opened = await new ApplicationEntity({ aeTitle: 'FAULTS' }).connect({
    host: '127.0.0.1',
    port,
    calledAeTitle: 'PACS',
    contexts: [{ abstractSyntax: CT, transferSyntaxes: [EXPLICIT_VR_LE] }],
  });
  assert.ok(opened.ok, opened.ok ? '' : opened.error.message);
  return opened.value;
}

function contextId(assoc: DimseAssociation): number {
  const pc = assoc.association.findContext(CT, EXPLICIT_VR_LE);
  assert.ok(pc, 'CT Image Storage accepted in Explicit VR LE');
  return pc.id;
}

function storeCommand(ds: DataSet, uids: { sopClassUid?: string; sopInstanceUid?: string } = {}) {
  return {
    commandField: CommandField.C_STORE_RQ,
    affectedSopClassUid: uids.sopClassUid ?? ds.string(TAG.SOPClassUID) ?? '',
    affectedSopInstanceUid: uids.sopInstanceUid ?? ds.string(TAG.SOPInstanceUID) ?? '',
    priority: Priority.Medium,
    hasDataSet: true,
  };
}

/** Sends one C-STORE on the association and returns its status and Error Comment. */
async function store(
  assoc: DimseAssociation,
  ds: DataSet,
  data: Uint8Array = encodeDataSet(ds, EXPLICIT_VR_LE),
  uids: { sopClassUid?: string; sopInstanceUid?: string } = {},
): Promise<{ status: number; errorComment: string | undefined }> {
  const response = await assoc.requestOne(contextId(assoc), storeCommand(ds, uids), data);
  return { status: response.command.status ?? -1, errorComment: response.command.errorComment };
}

/** Bytes in pieces of 16 KiB, as a socket would hand them over. */
function* pieces(bytes: Uint8Array, size = 16 * 1024): Generator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

describe('storage faults against the pacs server process', () => {
  let work: { path: string; remove: () => Promise<void> };

  before(async () => {
    work = await tempDir('pacs-faults-');
    configDir = work.path;
  });
  after(async () => {
    await work.remove();
  });

  /**
   * Starts a C-STORE whose data set stops part-way (the server has begun the object file), then
   * ends the association with `cut`; the server must drop the object: no file, no row.
   */
  async function interruptedStore(
    name: string,
    cut: (assoc: DimseAssociation, proxy: { upstream: net.Socket | undefined }) => void,
  ): Promise<void> {
    const dataDir = join(work.path, name);
    const { server, port } = await startServer(dataDir);
    // Through a proxy of ours, so that the connection can also be cut without a word.
    const proxy: { upstream: net.Socket | undefined } = { upstream: undefined };
    const relay = net.createServer((downstream) => {
      const upstream = net.connect({ host: '127.0.0.1', port });
      proxy.upstream = upstream;
      downstream.pipe(upstream).pipe(downstream);
      const close = () => {
        downstream.destroy();
        upstream.destroy();
      };
      downstream.on('error', close).on('close', close);
      upstream.on('error', close).on('close', close);
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    const relayPort = (relay.address() as net.AddressInfo).port;
    try {
      const assoc = await connect(relayPort);
      // A stored object first: the association works and the index is not empty by accident.
      const good = makeCtDataSet({ rows: 64, columns: 64 });
      assert.equal((await store(assoc, good)).status, Status.Success);

      const ds = makeCtDataSet();
      const bytes = encodeDataSet(ds, EXPLICIT_VR_LE);
      let release: () => void = () => {};
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      // Two thirds of the data set, then nothing more until the association is cut.
      const partial = (async function* () {
        yield* pieces(bytes.subarray(0, Math.floor((bytes.length * 2) / 3)));
        await gate;
      })();
      const sending = assoc.sendMessage(contextId(assoc), { ...storeCommand(ds), messageId: 99 }, partial);
      sending.catch(() => undefined);
      const tmp = join(dataDir, 'tmp');
      await until('the server writes the object into a temporary file', async () => {
        for (const f of await walkFiles(tmp)) if ((await stat(f)).size > 100_000) return true;
        return false;
      });
      cut(assoc, proxy);
      release();
      // Our side fails the send when it aborted; a cut connection may go unnoticed by it for a while.
      const outcome = await sending.then(
        () => 'sent',
        () => 'failed',
      );
      if (name === 'abort') assert.equal(outcome, 'failed');
      // The server removes the temporary file itself (not a reconcile at the next start).
      await until('the temporary file is removed', async () => (await tmpFiles(dataDir)).length === 0);
      await until('the server ends the association', () =>
        /association FAULTS@\S+ -> PACS aborted/.test(server.output),
      );
      assert.ok(server.running, 'the server keeps running');
      // Still serving: another association stores.
      const next = await connect(port);
      assert.equal((await store(next, makeCtDataSet({ rows: 64, columns: 64 }))).status, Status.Success);
      await next.release();
    } finally {
      await new Promise((resolve) => relay.close(resolve));
      await stopServer(server);
    }
    const files = await assertIndexMatchesFiles(dataDir);
    assert.equal(files.size, 2, 'the two complete objects, and nothing of the interrupted one');
    assert.deepEqual(await tmpFiles(dataDir), []);
  }

  it('an A-ABORT in the middle of a data set leaves no file and no row', async () => {
    await interruptedStore('abort', (assoc) => assoc.abort());
  });

  it('a peer that vanishes mid-transfer (connection reset) leaves no file and no row', async () => {
    await interruptedStore('reset', (_assoc, proxy) => proxy.upstream?.resetAndDestroy());
  });

  it('a peer that vanishes mid-transfer (connection closed) leaves no file and no row', async () => {
    await interruptedStore('closed', (_assoc, proxy) => proxy.upstream?.destroy());
  });

  it('a data set whose UIDs differ from the command, or that does not parse: a failure status, nothing stored', async () => {
    const dataDir = join(work.path, 'bad-data-sets');
    const { server, port } = await startServer(dataDir);
    const ds = makeCtDataSet({ rows: 64, columns: 64 });
    try {
      const assoc = await connect(port);
      const instance = await store(assoc, ds, undefined, { sopInstanceUid: generateUid() });
      assert.equal(instance.status, Status.DataSetDoesNotMatchSopClass);
      assert.match(instance.errorComment ?? '', /SOP Instance UID/);
      const sopClass = await store(assoc, ds, undefined, { sopClassUid: UID.MRImageStorage });
      // The SOP class is not the context's: refused by the dispatcher or the service, never stored.
      assert.ok(
        [Status.DataSetDoesNotMatchSopClass, 0x0122].includes(sopClass.status),
        `status ${sopClass.status}`,
      );

      // An element whose length runs past the end of the data set.
      const good = encodeDataSet(ds, EXPLICIT_VR_LE);
      const truncated = good.subarray(0, good.length - 1000);
      const cut = await store(assoc, ds, truncated);
      assert.equal(cut.status, Status.CannotUnderstand);
      assert.match(cut.errorComment ?? '', /does not parse/);
      // Garbage after a valid start: an explicit VR element with an invalid VR and a huge length.
      const garbage = Buffer.concat([
        good.subarray(0, 200),
        Buffer.from([0x10, 0x00, 0x10, 0x00, 0x01, 0x02, 0xff, 0xff]),
      ]);
      const junk = await store(assoc, ds, garbage);
      assert.equal(junk.status, Status.CannotUnderstand, junk.errorComment);

      // The association still works, and the object itself stores.
      assert.equal((await store(assoc, ds)).status, Status.Success);
      await assoc.release();
      assert.deepEqual(await tmpFiles(dataDir), []);
    } finally {
      await stopServer(server);
    }
    const files = await assertIndexMatchesFiles(dataDir);
    assert.deepEqual([...files.keys()], [ds.string(TAG.SOPInstanceUID)], 'only the good object');
  });

  it('below the free-space floor, C-STORE answers 0xA700 and writes nothing', async () => {
    const dataDir = join(work.path, 'floor');
    // A floor far above what any test disk has free.
    const { server, port } = await startServer(dataDir, { minFreeMegabytes: 1_000_000 });
    try {
      const assoc = await connect(port);
      for (let i = 0; i < 3; i++) {
        const r = await store(assoc, makeCtDataSet({ rows: 64, columns: 64 }));
        assert.equal(r.status, Status.OutOfResources);
        assert.match(r.errorComment ?? '', /space/);
      }
      await assoc.release();
      assert.deepEqual(await tmpFiles(dataDir), [], 'no temporary file');
      assert.deepEqual(await walkFiles(join(dataDir, 'objects')), [], 'no object file');
    } finally {
      await stopServer(server);
    }
    assert.equal((await assertIndexMatchesFiles(dataDir)).size, 0);
  });

  describe('a full disk (a 2 MiB tmpfs as the data folder)', () => {
    const mounts: string[] = [];

    after(async () => {
      for (const m of mounts) {
        const r = await run('umount', [m]);
        assert.equal(r.code, 0, r.stderr);
      }
    });

    // With the index on the tmpfs too, the index is what runs out of room first (its write-ahead
    // log grows with each commit); with the index elsewhere, an object file runs out mid-write.
    for (const where of ['on the tmpfs', 'in another folder'] as const) {
      it(`index ${where}: answers 0xA700 once the disk is full, keeps every object it acknowledged, leaves nothing partial`, async () => {
        const mountPoint = join(work.path, `tmpfs-${mounts.length}`);
        await mkdir(mountPoint);
        // Root is needed; without it this fails (it is not skipped): the full-disk path must be proven.
        const mounted = await run('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mountPoint]);
        assert.equal(
          mounted.code,
          0,
          `cannot mount a tmpfs at ${mountPoint}: ${mounted.stderr.trim() || `exit ${mounted.code}`}`,
        );
        mounts.push(mountPoint);
        const dataDir = join(mountPoint, 'data');
        const dbUrl =
          where === 'on the tmpfs'
            ? `sqlite:${join(dataDir, 'index.sqlite')}`
            : `sqlite:${join(work.path, `index-${mounts.length}.sqlite`)}`;
        const { server, port } = await startServer(dataDir, { minFreeMegabytes: 0 }, dbUrl);
        const acknowledged = new Map<string, Buffer>();
        const outcomes: string[] = [];
        try {
          const assoc = await connect(port);
          // 128 KiB objects until several in a row are refused.
          let refusedInARow = 0;
          for (let i = 1; refusedInARow < 3 && i <= 100; i++) {
            const ds = makeCtDataSet({ rows: 256, columns: 256, instanceNumber: i });
            const bytes = encodeDataSet(ds, EXPLICIT_VR_LE);
            const r = await store(assoc, ds, bytes);
            outcomes.push(`${i}: 0x${r.status.toString(16)} ${r.errorComment ?? ''}`);
            if (r.status === Status.Success) {
              acknowledged.set(ds.string(TAG.SOPInstanceUID) ?? '', Buffer.from(bytes));
              refusedInARow = 0;
            } else {
              assert.equal(r.status, Status.OutOfResources, outcomes.join('\n'));
              refusedInARow++;
            }
          }
          assert.ok(acknowledged.size > 0, `some objects fit:\n${outcomes.join('\n')}`);
          assert.equal(refusedInARow, 3, `the disk filled up:\n${outcomes.join('\n')}`);
          assert.match(
            outcomes.join('\n'),
            // On the tmpfs the index, the audit spool and the object files share the 2 MiB: whichever
            // fills it first, the answer is A700 and nothing is partial (checked below).
            where === 'on the tmpfs'
              ? /0xa700 (archive failure: indexing|out of storage space)/
              : /0xa700 out of storage space/,
            'the expected part ran out of room',
          );
          assert.deepEqual(await tmpFiles(dataDir), [], 'no temporary file left by the refused ones');
          await assoc.release();
        } finally {
          await stopServer(server);
        }
        const files = await assertIndexMatchesFiles(dataDir, dbUrl);
        assert.deepEqual(
          [...files.keys()].sort(),
          [...acknowledged.keys()].sort(),
          'exactly the acknowledged objects',
        );
        for (const [uid, bytes] of acknowledged)
          assert.ok((await dataSetBytes(files.get(uid) as FileInfo)).equals(bytes), `${uid} intact`);

        // A server started on the full disk: the start-up reconcile runs, and C-STORE is refused cleanly.
        const again = await startServer(dataDir, { minFreeMegabytes: 0 }, dbUrl);
        try {
          const assoc = await connect(again.port);
          const r = await store(assoc, makeCtDataSet({ rows: 256, columns: 256 }));
          assert.equal(r.status, Status.OutOfResources, r.errorComment);
          await assoc.release();
        } finally {
          await stopServer(again.server);
        }
        assert.deepEqual(await tmpFiles(dataDir), []);
        await assertIndexMatchesFiles(dataDir, dbUrl);
      });
    }
  });

  it('kill -9 during a 500-object transfer: after a restart every acknowledged object is intact, nothing partial, index = files', async () => {
    const sourceDir = join(work.path, 'kill-src');
    const sources = writeCtSeries(sourceDir, 500);
    const bySourceUid = new Map<string, FileInfo>();
    for (const p of sources) {
      const r = await readFileInfo(p);
      assert.ok(r.ok);
      bySourceUid.set(r.value.sopInstanceUid, r.value);
    }
    const dataDir = join(work.path, 'kill');
    const { server, port } = await startServer(dataDir);
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
      await until('storescu has stored 150 objects', () => successes() >= 150 || !storescu.running);
      assert.ok(storescu.running, `storescu still sending:\n${storescu.output.slice(-2000)}`);
      const killed = await server.stop('SIGKILL');
      assert.equal(killed.signal, 'SIGKILL');
    } finally {
      await storescu.exited;
    }
    // Each response storescu got, by the file it sent.
    const acknowledged = storescuAcknowledged(storescu.output);
    assert.ok(acknowledged.length >= 150 && acknowledged.length < 500, `${acknowledged.length} acknowledged`);
    const partial = await tmpFiles(dataDir);

    // Restart: the start-up reconcile removes leftovers and indexes what was renamed but not indexed.
    const restarted = await startServer(dataDir);
    try {
      assert.deepEqual(
        await tmpFiles(dataDir),
        [],
        `no temporary file after the restart (before: ${partial.length})`,
      );
      const assoc = await connect(restarted.port);
      assert.equal((await store(assoc, makeCtDataSet({ rows: 64, columns: 64 }))).status, Status.Success);
      await assoc.release();
    } finally {
      await stopServer(restarted.server);
    }
    const files = await assertIndexMatchesFiles(dataDir);
    for (const path of acknowledged) {
      const source = [...bySourceUid.values()].find((s) => s.path === path) as FileInfo;
      const stored = files.get(source.sopInstanceUid);
      assert.ok(stored, `${path} acknowledged and present`);
      assert.ok((await dataSetBytes(stored)).equals(await dataSetBytes(source)), `${path} intact`);
    }
    // Whatever else is there is complete: an object committed whose response was not yet sent.
    for (const [uid, stored] of files) {
      const source = bySourceUid.get(uid);
      if (source === undefined) continue; // the object stored after the restart
      assert.ok((await dataSetBytes(stored)).equals(await dataSetBytes(source)), `${uid} complete`);
    }
    // storescu waits for each response: at most the one object in flight was committed unanswered.
    assert.ok(
      files.size <= acknowledged.length + 1 + 1,
      'the acknowledged, the one in flight, the one after the restart',
    );
  });
});
