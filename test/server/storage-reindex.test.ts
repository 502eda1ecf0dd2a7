/**
 * `pacs archive reindex`: on an archive filled by the real `pacs server`, then damaged by hand as a
 * crash or an operator would (a leftover temporary file, an object file without its row, a copy
 * of an indexed object under another name, an index row whose file is gone, a file that is not
 * DICOM), it repairs each and says so (--json report, one-line summary, a progress bar on a
 * terminal); a second run finds nothing to repair. With the default grace period, files a running
 * server may be writing are left alone, and it runs beside a running server. Bad arguments and a
 * folder that is no archive fail with one line.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openIndex } from '../../src/archive/index/open.js';
import { EXPLICIT_VR_LE } from '../../src/dicom/uid.js';
import { encodePart10 } from '../../src/dicom/writer.js';
import { PACS_BIN, run, runPacs } from '../helpers/cli.js';
import { makeCtDataSet, writeCtSeries } from '../helpers/synthetic.js';
import { type Child, startPacsServer, tempDir } from './helpers.js';

interface ReindexReport {
  dataDir: string;
  tempFilesRemoved: number;
  filesIndexed: number;
  duplicateFilesRemoved: number;
  rowsRemoved: number;
  unreadableFiles: string[];
  filesChecked: number;
  rowsChecked: number;
  repaired: number;
}

async function reindex(dataDir: string, ...args: string[]): Promise<ReindexReport> {
  const r = await runPacs(['archive', 'reindex', '--json', '--data', dataDir, ...args]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as ReindexReport;
}

async function objectFiles(dataDir: string): Promise<string[]> {
  const out: string[] = [];
  const objects = join(dataDir, 'objects');
  for (const a of await readdir(objects))
    for (const b of await readdir(join(objects, a)))
      for (const f of await readdir(join(objects, a, b))) out.push(`objects/${a}/${b}/${f}`);
  return out.sort();
}

async function countRows(dataDir: string): Promise<number> {
  const { index } = await openIndex(`sqlite:${join(dataDir, 'index.sqlite')}`);
  try {
    return await index.countInstances();
  } finally {
    await index.close();
  }
}

/** An hour ago: older than any grace period the tests use. */
async function age(path: string): Promise<void> {
  const then = new Date(Date.now() - 3600_000);
  await utimes(path, then, then);
}

describe('pacs archive reindex', () => {
  let work: { path: string; remove: () => Promise<void> };
  let dataDir: string;

  /** Fills a data folder with 5 objects through pacs server and pacs store. */
  async function filledArchive(name: string): Promise<string> {
    const dir = join(work.path, name);
    const sources = writeCtSeries(join(work.path, `${name}-src`), 5, { rows: 64, columns: 64 });
    const { server, port } = await startPacsServer(['--data', dir]);
    try {
      const r = await runPacs(['store', '127.0.0.1', String(port), ...sources]);
      assert.equal(r.code, 0, r.stderr);
    } finally {
      await server.stop();
    }
    return dir;
  }

  before(async () => {
    work = await tempDir('pacs-reindex-');
    dataDir = await filledArchive('data');
  });
  after(async () => {
    await work.remove();
  });

  it('finds nothing to repair in an archive the server left in order', async () => {
    const report = await reindex(dataDir, '--grace', '0');
    assert.equal(report.repaired, 0);
    assert.equal(report.filesChecked, 5);
    assert.equal(report.rowsChecked, 5);
    const r = await runPacs(['archive', 'reindex', '--data', dataDir, '--grace', '0']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /^reindex of .*: 5 files and 5 index rows checked in [\d.]+ s; nothing to repair\n$/,
    );
  });

  it('repairs what a crash or a hand leaves, says what it did, and then finds nothing more', async () => {
    const dir = await filledArchive('damaged');
    const files = await objectFiles(dir);
    // A leftover temporary file of a crashed transfer.
    const part = join(dir, 'tmp', '0123456789abcdef0123456789abcdef.part');
    await writeFile(part, Buffer.alloc(1000, 1));
    await age(part);
    // An object renamed into place whose row never committed.
    const orphan = join(dir, 'objects', 'ee', 'ee', 'eeee0000000000000000000000000001.dcm');
    await mkdir(join(dir, 'objects', 'ee', 'ee'), { recursive: true });
    await writeFile(orphan, encodePart10(makeCtDataSet({ rows: 32, columns: 32 }), EXPLICIT_VR_LE));
    await age(orphan);
    // A second copy of an indexed object (an unfinished duplicate or replace).
    const copy = join(dir, 'objects', 'ee', 'ee', 'eeee0000000000000000000000000002.dcm');
    await copyFile(join(dir, files[0] as string), copy);
    await age(copy);
    // An indexed object whose file is gone.
    await rm(join(dir, files[1] as string));
    // Something that is not DICOM.
    const junk = join(dir, 'objects', 'ee', 'ee', 'eeee0000000000000000000000000003.dcm');
    await writeFile(junk, 'not dicom');
    await age(junk);

    const r = await runPacs(['archive', 'reindex', '--data', dir, '--grace', '60']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /checked in [\d.]+ s; 1 temporary file removed, 1 file indexed, 1 duplicate file removed, 1 row without a file removed, 1 unreadable file left in place\n$/,
    );
    assert.match(
      r.stderr,
      /warning: object file is not readable DICOM: left in place \(path objects\/ee\/ee\/eeee0+3\.dcm/,
    );
    assert.match(r.stderr, /warning: object file missing: removed its index row/);
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
    assert.equal(await countRows(dir), 5, '5 - 1 missing + 1 indexed');

    const again = await reindex(dir, '--grace', '0');
    assert.equal(again.repaired, 0);
    assert.deepEqual(again.unreadableFiles, ['objects/ee/ee/eeee0000000000000000000000000003.dcm']);
    assert.equal(again.rowsChecked, 5);
    assert.equal(again.filesChecked, 6);
  });

  it('leaves young files alone by default (a running server may be writing them), and runs beside the server', async () => {
    const dir = await filledArchive('live');
    const { server, port } = await startPacsServer(['--data', dir]);
    try {
      const part = join(dir, 'tmp', 'fedcba9876543210fedcba9876543210.part');
      await writeFile(part, Buffer.alloc(1000, 1));
      const young = join(dir, 'objects', 'dd', 'dd', 'dddd0000000000000000000000000001.dcm');
      await mkdir(join(dir, 'objects', 'dd', 'dd'), { recursive: true });
      await writeFile(young, encodePart10(makeCtDataSet({ rows: 32, columns: 32 }), EXPLICIT_VR_LE));

      const report = await reindex(dir);
      assert.equal(report.tempFilesRemoved, 0, 'the young temporary file is kept');
      assert.equal(report.filesIndexed, 0, 'the young object file is not indexed yet');
      assert.equal(report.rowsRemoved, 0);
      assert.deepEqual(await readdir(join(dir, 'tmp')), ['fedcba9876543210fedcba9876543210.part']);

      // The server goes on storing meanwhile, and another reindex beside it repairs nothing it should not.
      const more = writeCtSeries(join(work.path, 'live-more'), 3, { rows: 64, columns: 64 });
      const [stored, second] = await Promise.all([
        runPacs(['store', '127.0.0.1', String(port), ...more]),
        reindex(dir),
      ]);
      assert.equal(stored.code, 0, stored.stderr);
      assert.equal(second.rowsRemoved + second.duplicateFilesRemoved, 0);

      // Once old enough (here: a grace of 0), they are repaired.
      const last = await reindex(dir, '--grace', '0');
      assert.equal(last.tempFilesRemoved, 1);
      assert.equal(last.filesIndexed, 1);
    } finally {
      await stopServer(server);
    }
    assert.equal(await countRows(dir), 5 + 3 + 1);
  });

  it('draws a progress bar when standard error is a terminal', async () => {
    // util-linux script(1) runs the command on a pseudo-terminal.
    const command = `${process.execPath} ${PACS_BIN} archive reindex --grace 0 --data ${dataDir}`;
    const r = await run('script', ['-qfec', command, '/dev/null']);
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /\r\x1b\[Kreindex \[[#.]+\] \d+\/\d+ files checked/);
    assert.match(r.stdout, /nothing to repair/);
  });

  it('fails with one line for a folder that is no archive, and exits 2 for bad arguments', async () => {
    const missing = await runPacs(['archive', 'reindex', '--data', join(work.path, 'nowhere')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^pacs: no data folder at .*nowhere\n$/);
    const empty = join(work.path, 'empty');
    await mkdir(empty);
    const notArchive = await runPacs(['archive', 'reindex', '--data', empty]);
    assert.equal(notArchive.code, 1);
    assert.match(notArchive.stderr, /is not an archive's data folder/);
    assert.deepEqual(await readdir(empty), [], 'nothing created');
    const badDb = await runPacs(['archive', 'reindex', '--data', dataDir, '--db', 'mysql://x']);
    assert.equal(badDb.code, 2);
    assert.match(badDb.stderr, /^pacs: --db: /);
    const badGrace = await runPacs(['archive', 'reindex', '--data', dataDir, '--grace', '-1']);
    assert.equal(badGrace.code, 2);
  });
});

async function stopServer(server: Child): Promise<void> {
  const { code } = await server.stop();
  assert.equal(code, 0, server.output.slice(-2000));
}
