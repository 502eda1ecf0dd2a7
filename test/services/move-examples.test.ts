/**
 * The retrieve examples run as a reader would run them: examples/move-scu.ts and
 * examples/get-scu.ts as child processes against our archive with the move and get services in
 * this process, the move destination a Storage SCP in this process too. What arrives is each
 * stored data set byte for byte.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Archive, openArchive } from '../../src/archive/archive.js';
import { jobStoreFor } from '../../src/archive/jobs/open.js';
import { JobRunner } from '../../src/archive/jobs/runner.js';
import { unwrap } from '../../src/core/result.js';
import { ApplicationEntity, type DicomServer } from '../../src/network/ae.js';
import { Status } from '../../src/network/dimse-status.js';
import { getService } from '../../src/services/query-retrieve/get-scp.js';
import { folderReceiver } from '../../src/services/query-retrieve/get-scu.js';
import { moveService } from '../../src/services/query-retrieve/move-scp.js';
import { storageService } from '../../src/services/storage/scp.js';
import { type FileInfo, planAssociations, readFileInfo, storeFile } from '../../src/services/storage/scu.js';
import { REPO_ROOT, run } from '../helpers/cli.js';
import { writeCtSeries } from '../helpers/synthetic.js';

const MOVE_SCU = join(REPO_ROOT, 'dist', 'examples', 'move-scu.js');
const GET_SCU = join(REPO_ROOT, 'dist', 'examples', 'get-scu.js');
const tmp = mkdtempSync(join(tmpdir(), 'pacs-retrieve-examples-'));

function sameDataSets(sources: readonly FileInfo[], folder: string): void {
  const received = new Map<string, Buffer>();
  for (const name of readdirSync(folder)) {
    const path = join(folder, name);
    const bytes = readFileSync(path);
    // The file's own meta length: preamble, DICM, (0002,0000) UL.
    const offset = 132 + 12 + bytes.readUInt32LE(140);
    received.set(name, bytes.subarray(offset));
  }
  assert.equal(received.size, sources.length);
  const bodies = [...received.values()];
  for (const s of sources) {
    const original = readFileSync(s.path).subarray(s.dataSetOffset);
    assert.ok(
      bodies.some((b) => b.equals(original)),
      `${s.sopInstanceUid} arrived unchanged`,
    );
  }
}

describe('retrieve examples', () => {
  let archive: Archive;
  let runner: JobRunner;
  let server: DicomServer;
  let destination: DicomServer;
  let port: number;
  let files: FileInfo[] = [];
  const study = '1.2.826.0.1.3680043.8.498.9301';
  const destFolder = join(tmp, 'destination');

  before(async () => {
    mkdirSync(destFolder);
    archive = await openArchive({ dataDir: join(tmp, 'archive'), durability: 'none' });
    runner = new JobRunner(jobStoreFor(archive.index), { pollMs: 50 });
    destination = await new ApplicationEntity({ aeTitle: 'DEST' })
      .addService(folderReceiver({ dir: destFolder }))
      .listen({ port: 0, host: '127.0.0.1' });
    server = await new ApplicationEntity({ aeTitle: 'PACS' })
      .addService({ ...storageService({ archive }), requestorRoles: { scu: true, scp: true } })
      .addService(
        moveService({
          archive,
          jobs: runner,
          peers: [{ aet: 'DEST', host: '127.0.0.1', port: destination.address?.port ?? 0 }],
        }),
      )
      .addService(getService({ archive }))
      .listen({ port: 0, host: '127.0.0.1' });
    runner.start();
    port = server.address?.port ?? 0;
    const paths = writeCtSeries(join(tmp, 'src'), 4, { studyInstanceUid: study, rows: 64, columns: 64 });
    const infos = await Promise.all(paths.map(async (p) => unwrap(await readFileInfo(p))));
    for (const plan of planAssociations(infos)) {
      const assoc = unwrap(
        await new ApplicationEntity({ aeTitle: 'MODALITY' }).connect({
          host: '127.0.0.1',
          port,
          calledAeTitle: 'PACS',
          contexts: plan.contexts,
        }),
      );
      for (const f of plan.files) assert.equal(unwrap(await storeFile(assoc, f)).status, Status.Success);
      await assoc.release();
    }
    files = infos;
  });

  after(async () => {
    await server.close(1000);
    await destination.close(1000);
    await runner.stop();
    await archive.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('move-scu moves a study to the destination and prints the counts', async () => {
    const r = await run(process.execPath, [MOVE_SCU, '127.0.0.1', String(port), 'PACS', 'DEST', study]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^pending: \d+ remaining/m);
    assert.match(r.stdout, /final: 0x0000 \(Success\): 4 completed, 0 failed, 0 warning/);
    sameDataSets(files, destFolder);
  });

  it('get-scu retrieves the study into a folder', async () => {
    const out = join(tmp, 'get');
    const r = await run(process.execPath, [GET_SCU, '127.0.0.1', String(port), 'PACS', study, out]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.stdout.match(/^received /gm)?.length, 4);
    assert.match(r.stdout, /final: 0x0000 \(Success\): 4 completed/);
    sameDataSets(files, out);
  });

  it('move-scu to an unknown destination exits 1 with the status', async () => {
    const r = await run(process.execPath, [MOVE_SCU, '127.0.0.1', String(port), 'PACS', 'NOWHERE', study]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /final: 0xA801/);
  });
});
