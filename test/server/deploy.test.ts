/**
 * Per-service processes (README "Deployment"): three `pacs server` processes with different
 * `--services`, each on its own port, share one PostgreSQL schema and one data folder. Objects
 * stored through the storage process are found and moved through the query-retrieve process; the
 * worklist and MPPS process serves an imported item and moves its step status. A process does not
 * answer for a service it does not run.
 */
import assert from 'node:assert/strict';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { toDicomJson } from '../../src/dicom/json.js';
import { buildWorklistItem } from '../../src/services/worklist/model.js';
import { dropSchema, PG_URL, randomSchema } from '../archive/helpers.js';
import { run, runPacs } from '../helpers/cli.js';
import { dcmtkTool } from '../helpers/corpus.js';
import { writeCtSeries } from '../helpers/synthetic.js';
import {
  type Child,
  freePort,
  spawnChild,
  startPacsServer,
  TEST_CLIENT_AES,
  tempDir,
  waitForPort,
} from './helpers.js';

const DCMTK_ENV = { TCP_NODELAY: '1' };
const STUDY = '1.2.826.0.1.3680043.8.498.9701';

function finalStatus(output: string): string | undefined {
  return [...output.matchAll(/DIMSE Status\s*:\s*(0x[0-9a-f]{4})/g)].map((m) => m[1]).at(-1);
}

describe('per-service processes on one PostgreSQL index and one data folder', () => {
  let work: { path: string; remove: () => Promise<void> };
  const schema = randomSchema();
  const db = `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}`;
  const servers: Child[] = [];
  let storagePort = 0;
  let qrPort = 0;
  let wlPort = 0;
  let storescp: Child;
  let recvDir = '';
  let sources: string[] = [];

  before(async () => {
    work = await tempDir('pacs-deploy-');
    const data = join(work.path, 'data');
    recvDir = join(work.path, 'recv');
    await mkdir(recvDir);
    const recvPort = await freePort();
    storescp = spawnChild(dcmtkTool('storescp'), ['-aet', 'RECV', '+B', '-od', recvDir, String(recvPort)], {
      env: DCMTK_ENV,
      name: 'storescp',
    });
    await waitForPort(recvPort);
    const common = ['--data', data, '--db', db, '--log-level', 'warn'];
    // Started one after the other: the first runs the migrations (they are safe to race, but
    // this keeps the test about deployment).
    for (const services of ['storage,verification', 'query-retrieve,verification', 'worklist,mpps']) {
      const { server, port } = await startPacsServer(
        [...common, '--services', services, '--peer', `RECV=127.0.0.1:${recvPort}`],
        { aes: [...TEST_CLIENT_AES, { aeTitle: 'CT1', permissions: ['echo', 'worklist', 'mpps'] }] },
      );
      servers.push(server);
      if (services.startsWith('storage')) storagePort = port;
      else if (services.startsWith('query')) qrPort = port;
      else wlPort = port;
    }
    sources = writeCtSeries(join(work.path, 'src'), 4, { studyInstanceUid: STUDY, rows: 64, columns: 64 });
  });

  after(async () => {
    for (const s of servers) await s.stop();
    await storescp?.stop();
    await work?.remove();
    await dropSchema(schema);
  });

  it('every process answers C-ECHO', async () => {
    for (const port of [storagePort, qrPort, wlPort]) {
      const r = await runPacs(['echo', '127.0.0.1', String(port)]);
      assert.equal(r.code, 0, r.stderr);
    }
  });

  it('store through the storage process (storescu), find and move through the query-retrieve process', async () => {
    const stored = await run(
      dcmtkTool('storescu'),
      ['-aec', 'PACS', '127.0.0.1', String(storagePort), ...sources],
      {
        env: DCMTK_ENV,
      },
    );
    assert.equal(stored.code, 0, stored.stdout + stored.stderr);

    const found = await runPacs([
      'find',
      '127.0.0.1',
      String(qrPort),
      '--json',
      '-k',
      'QueryRetrieveLevel=SERIES',
      '-k',
      `StudyInstanceUID=${STUDY}`,
      '-k',
      'NumberOfSeriesRelatedInstances',
    ]);
    assert.equal(found.code, 0, found.stderr);
    assert.match(found.stdout, /"00201209":\{"vr":"IS","Value":\[4\]\}/);

    const moved = await run(
      dcmtkTool('movescu'),
      [
        '-d',
        '-S',
        '-aec',
        'PACS',
        '-aem',
        'RECV',
        '-k',
        'QueryRetrieveLevel=STUDY',
        '-k',
        `StudyInstanceUID=${STUDY}`,
        '127.0.0.1',
        String(qrPort),
      ],
      { env: DCMTK_ENV },
    );
    const out = moved.stdout + moved.stderr;
    assert.equal(finalStatus(out), '0x0000', out);
    assert.equal((await readdir(recvDir)).length, 4);
  });

  it('a process does not serve what it does not run', async () => {
    const stored = await runPacs(['store', '127.0.0.1', String(qrPort), ...sources.slice(0, 1)]);
    assert.notEqual(stored.code, 0);
    const found = await runPacs([
      'find',
      '127.0.0.1',
      String(storagePort),
      '-k',
      `StudyInstanceUID=${STUDY}`,
    ]);
    assert.notEqual(found.code, 0);
  });

  it('worklist import and query, then MPPS, through the worklist process', async () => {
    const item = toDicomJson(
      buildWorklistItem({
        patientName: 'Deploy^Test',
        patientId: 'DEP',
        accessionNumber: 'DEP-1',
        requestedProcedureId: 'RP',
        requestedProcedureDescription: 'CT',
        modality: 'CT',
        stationAeTitle: 'CT1',
        startDate: '20240611',
        startTime: '120000',
        stepId: 'S1',
        stepDescription: 'CT',
        status: 'SCHEDULED',
      }),
    );
    await writeFile(join(work.path, 'item.json'), JSON.stringify(item));
    const imported = await runPacs(['worklist', 'import', '--db', db, join(work.path, 'item.json')]);
    assert.equal(imported.code, 0, imported.stderr);
    const query = async (): Promise<string> => {
      const r = await run(dcmtkTool('findscu'), [
        '-W',
        '-v',
        '-aec',
        'PACS',
        '-k',
        'AccessionNumber=DEP-1',
        '-k',
        'ScheduledProcedureStepSequence[0].ScheduledProcedureStepStatus',
        '127.0.0.1',
        String(wlPort),
      ]);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout + r.stderr;
    };
    assert.match(await query(), /\(0040,0020\) CS \[SCHEDULED ?\]/);
    const created = await runPacs([
      'mpps',
      'create',
      '--aet',
      'CT1',
      '127.0.0.1',
      String(wlPort),
      '--accession',
      'DEP-1',
    ]);
    assert.equal(created.code, 0, created.stderr);
    assert.match(await query(), /\(0040,0020\) CS \[STARTED ?\]/);
  });
});
