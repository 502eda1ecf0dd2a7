/**
 * DCMTK's movescu and getscu against our Query/Retrieve services, run in this process (an
 * ApplicationEntity with the storage, find, move and get services over an archive in a temporary
 * folder, and a job runner), DCMTK's storescp as the move destination. Checked: the data sets that
 * arrive are the stored ones byte for byte; an unknown destination answers 0xA801; a destination
 * that is down yields failure counts and 0xA702; movescu --cancel in the middle of a move gets
 * 0xFE00 and the rest is not sent. Child processes are spawned asynchronously: the server runs in
 * this process.
 */
import assert from 'node:assert/strict';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Archive, openArchive } from '../../src/archive/archive.js';
import { jobStoreFor } from '../../src/archive/jobs/open.js';
import { JobRunner } from '../../src/archive/jobs/runner.js';
import { ApplicationEntity, type DicomServer } from '../../src/network/ae.js';
import { findService } from '../../src/services/query-retrieve/find-scp.js';
import { getService } from '../../src/services/query-retrieve/get-scp.js';
import { moveService } from '../../src/services/query-retrieve/move-scp.js';
import { storageService } from '../../src/services/storage/scp.js';
import type { FileInfo } from '../../src/services/storage/scu.js';
import { run } from '../helpers/cli.js';
import { dcmtkTool } from '../helpers/corpus.js';
import { writeCtSeries } from '../helpers/synthetic.js';
import { type Child, freePort, spawnChild, tempDir } from '../server/helpers.js';
import { fileInfos, finalCount, finalStatus } from './dcmtk-output.js';

/** DCMTK reads TCP_NODELAY from the environment: without it, small PDUs wait for Nagle's delay. */
const DCMTK_ENV = { TCP_NODELAY: '1' };

/** The data set bytes of a Part-10 file (after its meta). */
async function dataSetBytes(f: FileInfo): Promise<Buffer> {
  const { readFile } = await import('node:fs/promises');
  return (await readFile(f.path)).subarray(f.dataSetOffset);
}

/** Each source file's data set is in `received`, byte for byte, under its SOP Instance UID. */
async function assertSameDataSets(
  sources: readonly FileInfo[],
  received: readonly FileInfo[],
): Promise<void> {
  const byUid = new Map(received.map((r) => [r.sopInstanceUid, r]));
  assert.equal(byUid.size, sources.length, 'one file per object');
  for (const s of sources) {
    const r = byUid.get(s.sopInstanceUid);
    assert.ok(r, `received ${s.sopInstanceUid}`);
    assert.equal(r.transferSyntaxUid, s.transferSyntaxUid);
    assert.ok(
      (await dataSetBytes(r)).equals(await dataSetBytes(s)),
      `${s.sopInstanceUid}: same data set bytes`,
    );
  }
}

describe('DCMTK movescu and getscu against our Query/Retrieve SCP', () => {
  let work: { path: string; remove: () => Promise<void> };
  let archive: Archive;
  let runner: JobRunner;
  let server: DicomServer;
  let port: number;
  let storescp: Child;
  let storescpDir: string;
  let small: FileInfo[] = [];
  let large: FileInfo[] = [];
  const smallStudy = '1.2.826.0.1.3680043.8.498.9001';
  const largeStudy = '1.2.826.0.1.3680043.8.498.9002';

  before(async () => {
    work = await tempDir('pacs-interop-move-');
    const storescpPort = await freePort();
    const downPort = await freePort();
    storescpDir = join(work.path, 'storescp');
    await mkdir(storescpDir);
    // +B: written as received (bit preserving), so the bytes can be compared.
    storescp = spawnChild(
      dcmtkTool('storescp'),
      ['-aet', 'STORESCP', '+B', '-od', storescpDir, String(storescpPort)],
      { env: DCMTK_ENV, name: 'storescp' },
    );
    archive = await openArchive({ dataDir: join(work.path, 'archive'), durability: 'none' });
    runner = new JobRunner(jobStoreFor(archive.index), { pollMs: 50, backoff: { baseMs: 100, jitter: 0 } });
    server = await new ApplicationEntity({ aeTitle: 'PACS' })
      .addService({ ...storageService({ archive }), requestorRoles: { scu: true, scp: true } })
      .addService(findService({ archive }))
      .addService(
        moveService({
          archive,
          jobs: runner,
          attempts: 2,
          peers: [
            { aet: 'STORESCP', host: '127.0.0.1', port: storescpPort },
            { aet: 'DOWN', host: '127.0.0.1', port: downPort },
          ],
        }),
      )
      .addService(getService({ archive }))
      .listen({ port: 0, host: '127.0.0.1' });
    runner.start();
    port = server.address?.port ?? 0;
    const src = join(work.path, 'src');
    const smallPaths = writeCtSeries(join(src, 'small'), 8, {
      studyInstanceUid: smallStudy,
      rows: 128,
      columns: 128,
    });
    const largePaths = writeCtSeries(join(src, 'large'), 40, { studyInstanceUid: largeStudy });
    // Filled by DCMTK's storescu, as a modality would.
    const stored = await run(
      dcmtkTool('storescu'),
      ['-aec', 'PACS', '127.0.0.1', String(port), ...smallPaths, ...largePaths],
      { env: DCMTK_ENV },
    );
    assert.equal(stored.code, 0, stored.stderr);
    small = await fileInfos(join(src, 'small'));
    large = await fileInfos(join(src, 'large'));
  });

  after(async () => {
    await storescp?.stop();
    await server?.close(1000);
    await runner?.stop();
    await archive?.close();
    await work?.remove();
  });

  function movescu(dest: string, study: string, extra: string[] = []) {
    return run(
      dcmtkTool('movescu'),
      [
        '-d',
        '-S',
        '-aec',
        'PACS',
        '-aem',
        dest,
        '-k',
        'QueryRetrieveLevel=STUDY',
        '-k',
        `StudyInstanceUID=${study}`,
        ...extra,
        '127.0.0.1',
        String(port),
      ],
      { env: DCMTK_ENV },
    );
  }

  it('movescu: the study arrives at storescp unchanged, final status success', async () => {
    const r = await movescu('STORESCP', smallStudy);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const out = r.stdout + r.stderr;
    assert.equal(finalStatus(out), '0x0000', out);
    assert.equal(finalCount(out, 'Completed'), small.length);
    assert.match(out, /DIMSE Status\s*:\s*0xff00/, 'pending responses');
    await assertSameDataSets(small, await fileInfos(storescpDir));
  });

  it('movescu to an AE we do not know: 0xA801', async () => {
    const r = await movescu('NOBODY', smallStudy);
    const out = r.stdout + r.stderr;
    assert.equal(finalStatus(out), '0xa801', out);
    assert.match(out, /Move Destination unknown/i);
  });

  it('movescu to a destination that is down: failure counts and 0xA702', async () => {
    const r = await movescu('DOWN', smallStudy);
    const out = r.stdout + r.stderr;
    assert.equal(finalStatus(out), '0xa702', out);
    assert.equal(finalCount(out, 'Failed'), small.length);
    assert.equal(finalCount(out, 'Completed'), 0);
  });

  it('movescu --cancel 1 in the middle of a 40-object move: 0xFE00, the rest not sent', async () => {
    const before = (await readdir(storescpDir)).length;
    const r = await movescu('STORESCP', largeStudy, ['--cancel', '1']);
    const out = r.stdout + r.stderr;
    assert.equal(finalStatus(out), '0xfe00', out);
    const completed = finalCount(out, 'Completed') ?? -1;
    assert.ok(completed >= 1 && completed < large.length, `cancelled part-way: ${completed} completed`);
    assert.equal(
      (finalCount(out, 'Remaining') ?? 0) + completed + (finalCount(out, 'Failed') ?? 0),
      large.length,
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    const arrived = (await readdir(storescpDir)).length - before;
    assert.equal(arrived, completed, 'nothing is sent after the cancel');
  });

  it('getscu: the study arrives unchanged on its own association (Storage SCP role)', async () => {
    const dir = join(work.path, 'getscu');
    await mkdir(dir);
    const r = await run(
      dcmtkTool('getscu'),
      [
        '-d',
        '-S',
        '+B',
        '-aec',
        'PACS',
        '-od',
        dir,
        '-k',
        'QueryRetrieveLevel=STUDY',
        '-k',
        `StudyInstanceUID=${smallStudy}`,
        '127.0.0.1',
        String(port),
      ],
      { env: DCMTK_ENV },
    );
    const out = r.stdout + r.stderr;
    assert.equal(r.code, 0, out);
    assert.equal(finalStatus(out), '0x0000', out);
    await assertSameDataSets(small, await fileInfos(dir));
  });
});
