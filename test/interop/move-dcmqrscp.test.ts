/**
 * Our `pacs move` and `pacs get` (the real command line, as child processes) against DCMTK's
 * dcmqrscp, configured in a temporary folder with a storage area and filled with storescu; the
 * move destination is DCMTK's storescp. Checked: the data sets arrive unchanged; the summary, the
 * --json outcome and the exit codes; an unknown destination exits non-zero with 0xA801; Patient
 * Root and SERIES level; usage errors.
 */
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type FileInfo, readFileInfo } from '../../src/services/storage/scu.js';
import { run, runPacs } from '../helpers/cli.js';
import { dcmtkTool } from '../helpers/corpus.js';
import { writeCtSeries } from '../helpers/synthetic.js';
import { type Child, freePort, spawnChild, tempDir } from '../server/helpers.js';

const DCMTK_ENV = { TCP_NODELAY: '1' };

async function fileInfos(dir: string): Promise<FileInfo[]> {
  const out: FileInfo[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const r = await readFileInfo(join(dir, name));
    if (r.ok) out.push(r.value);
  }
  return out;
}

async function assertSameDataSets(
  sources: readonly FileInfo[],
  received: readonly FileInfo[],
): Promise<void> {
  const byUid = new Map(received.map((r) => [r.sopInstanceUid, r]));
  assert.equal(byUid.size, sources.length, 'one file per object');
  for (const s of sources) {
    const r = byUid.get(s.sopInstanceUid);
    assert.ok(r, `received ${s.sopInstanceUid}`);
    const a = (await readFile(r.path)).subarray(r.dataSetOffset);
    const b = (await readFile(s.path)).subarray(s.dataSetOffset);
    assert.ok(a.equals(b), `${s.sopInstanceUid}: same data set bytes`);
  }
}

/** Waits until a TCP port accepts connections. */
async function listening(port: number): Promise<void> {
  const net = await import('node:net');
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on port ${port}`);
}

describe('pacs move and pacs get against DCMTK dcmqrscp', () => {
  let work: { path: string; remove: () => Promise<void> };
  let qrscp: Child;
  let storescp: Child;
  let qrPort: number;
  let recvDir: string;
  let studyA: FileInfo[] = [];
  let studyB: FileInfo[] = [];
  const studyAUid = '1.2.826.0.1.3680043.8.498.9101';
  const studyBUid = '1.2.826.0.1.3680043.8.498.9102';
  const seriesB = '1.2.826.0.1.3680043.8.498.9102.1';

  before(async () => {
    work = await tempDir('pacs-interop-qr-');
    qrPort = await freePort();
    const recvPort = await freePort();
    const storage = join(work.path, 'qrstore');
    recvDir = join(work.path, 'recv');
    await mkdir(storage);
    await mkdir(recvDir);
    const cfg = join(work.path, 'dcmqrscp.cfg');
    await writeFile(
      cfg,
      [
        `NetworkTCPPort  = ${qrPort}`,
        'MaxPDUSize      = 16384',
        'MaxAssociations = 16',
        '',
        'HostTable BEGIN',
        `recv = (RECV, 127.0.0.1, ${recvPort})`,
        'HostTable END',
        '',
        'VendorTable BEGIN',
        'VendorTable END',
        '',
        'AETable BEGIN',
        `QRSCP   ${storage}   RW (200, 1024mb)   ANY`,
        'AETable END',
        '',
      ].join('\n'),
    );
    qrscp = spawnChild(dcmtkTool('dcmqrscp'), ['-c', cfg], { env: DCMTK_ENV, name: 'dcmqrscp' });
    storescp = spawnChild(dcmtkTool('storescp'), ['-aet', 'RECV', '+B', '-od', recvDir, String(recvPort)], {
      env: DCMTK_ENV,
      name: 'storescp',
    });
    await listening(qrPort);
    await listening(recvPort);
    const src = join(work.path, 'src');
    const a = writeCtSeries(join(src, 'a'), 6, {
      studyInstanceUid: studyAUid,
      patientId: 'QR-A',
      rows: 128,
      columns: 128,
    });
    const b = writeCtSeries(join(src, 'b'), 4, {
      studyInstanceUid: studyBUid,
      seriesInstanceUid: seriesB,
      patientId: 'QR-B',
      rows: 64,
      columns: 64,
    });
    const stored = await run(
      dcmtkTool('storescu'),
      ['-aec', 'QRSCP', '127.0.0.1', String(qrPort), ...a, ...b],
      {
        env: DCMTK_ENV,
      },
    );
    assert.equal(stored.code, 0, stored.stdout + stored.stderr);
    studyA = await fileInfos(join(src, 'a'));
    studyB = await fileInfos(join(src, 'b'));
  });

  after(async () => {
    await qrscp?.stop();
    await storescp?.stop();
    await work?.remove();
  });

  const target = () => ['127.0.0.1', String(qrPort), '--aec', 'QRSCP'];

  it('pacs move: a study goes to the destination unchanged; the summary counts it', async () => {
    const r = await runPacs(['move', ...target(), '--dest', 'RECV', '-k', `StudyInstanceUID=${studyAUid}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /C-MOVE on QRSCP@127\.0\.0\.1:\d+ to RECV: 6 completed, 0 failed, 0 warning .*0x0000/,
    );
    assert.equal(r.stderr, '');
    const received = (await fileInfos(recvDir)).filter((f) =>
      studyA.some((s) => s.sopInstanceUid === f.sopInstanceUid),
    );
    await assertSameDataSets(studyA, received);
  });

  it('pacs move --json in Patient Root at PATIENT level', async () => {
    const r = await runPacs([
      'move',
      ...target(),
      '--dest',
      'RECV',
      '--root',
      'patient',
      '--level',
      'PATIENT',
      '-k',
      'PatientID=QR-B',
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const outcome = JSON.parse(r.stdout) as {
      status: number;
      completed: number;
      failed: number;
      destination: string;
    };
    assert.equal(outcome.status, 0);
    assert.equal(outcome.completed, studyB.length);
    assert.equal(outcome.failed, 0);
    assert.equal(outcome.destination, 'RECV');
  });

  it('pacs move to a destination dcmqrscp does not know exits non-zero with 0xA801', async () => {
    const r = await runPacs(['move', ...target(), '--dest', 'NOBODY', '-k', `StudyInstanceUID=${studyAUid}`]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /^pacs: C-MOVE on QRSCP@127\.0\.0\.1:\d+ to NOBODY: status 0xA801 \(Refused: move destination unknown\)/,
    );
    assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  });

  it('pacs get: a study arrives unchanged in --out, as files named by a hash', async () => {
    const out = join(work.path, 'get-a');
    const r = await runPacs(['get', ...target(), '--out', out, '-k', `StudyInstanceUID=${studyAUid}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      new RegExp(`C-GET from QRSCP@127\\.0\\.0\\.1:\\d+: 6 objects .* into ${out} .*6 completed, 0 failed`),
    );
    const names = await readdir(out);
    assert.ok(
      names.every((n) => /^[0-9a-f]{24}\.dcm$/.test(n)),
      names.join(' '),
    );
    await assertSameDataSets(studyA, await fileInfos(out));
  });

  it('pacs get at SERIES level with --json', async () => {
    const out = join(work.path, 'get-b');
    const r = await runPacs([
      'get',
      ...target(),
      '--out',
      out,
      '--level',
      'SERIES',
      '-k',
      `StudyInstanceUID=${studyBUid}`,
      '-k',
      `SeriesInstanceUID=${seriesB}`,
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const outcome = JSON.parse(r.stdout) as {
      status: number;
      completed: number;
      received: string[];
      bytes: number;
    };
    assert.equal(outcome.status, 0);
    assert.equal(outcome.completed, studyB.length);
    assert.equal(outcome.received.length, studyB.length);
    assert.ok(outcome.bytes > 0);
    await assertSameDataSets(studyB, await fileInfos(out));
  });

  it('usage errors exit 2 with one line', async () => {
    const noDest = await runPacs(['move', ...target(), '-k', `StudyInstanceUID=${studyAUid}`]);
    assert.equal(noDest.code, 2);
    assert.match(noDest.stderr, /--dest/);
    const badLevel = await runPacs(['get', ...target(), '--out', join(work.path, 'x'), '--level', 'FRAME']);
    assert.equal(badLevel.code, 2);
    assert.match(badLevel.stderr, /^pacs: --level: expected PATIENT, STUDY, SERIES or IMAGE, got "FRAME"\n$/);
    const badKey = await runPacs(['move', ...target(), '--dest', 'RECV', '-k', 'NoSuchKeyword=1']);
    assert.equal(badKey.code, 2);
    assert.match(badKey.stderr, /NoSuchKeyword/);
  });
});
