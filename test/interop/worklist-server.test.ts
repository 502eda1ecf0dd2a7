/**
 * The worklist and MPPS services in `pacs server` (a child process with its own data folder, on
 * SQLite and on PostgreSQL): items imported with `pacs worklist import` while it runs are served
 * at once to DCMTK's findscu -W, and `pacs mpps` moves their step status.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { toDicomJson } from '../../src/dicom/json.js';
import { readDicomFile } from '../../src/io/dicom-file.js';
import { buildWorklistItem } from '../../src/services/worklist/model.js';
import { dropSchema, PG_URL, randomSchema } from '../archive/helpers.js';
import { run, runPacs } from '../helpers/cli.js';
import { dcmtkTool } from '../helpers/corpus.js';
import { startPacsServer, TEST_CLIENT_AES } from '../server/helpers.js';

async function findscuStatus(port: number, dir: string): Promise<string[]> {
  const out = await mkdtemp(join(dir, 'answers-'));
  const r = await run(dcmtkTool('findscu'), [
    '-W',
    '-aec',
    'PACS',
    '-X',
    '-od',
    out,
    '-k',
    'AccessionNumber=SRV-1',
    '-k',
    'ScheduledProcedureStepSequence[0].ScheduledProcedureStepStatus',
    '127.0.0.1',
    String(port),
  ]);
  assert.equal(r.code, 0, r.stderr);
  const statuses: string[] = [];
  for (const name of await readdir(out)) {
    const { dataSet } = await readDicomFile(join(out, name));
    const step = dataSet.sequence(0x00400100)?.[0];
    statuses.push(step?.string(0x00400020) ?? '');
  }
  return statuses;
}

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`pacs server serves the worklist and MPPS (${engine})`, () => {
    test('import while running, findscu -W, pacs mpps create and set', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'pacs-wl-server-'));
      const schema = randomSchema();
      const db =
        engine === 'sqlite' ? `sqlite:${join(dir, 'data', 'index.sqlite')}` : `${PG_URL}?schema=${schema}`;
      const { server, port } = await startPacsServer(['--data', join(dir, 'data'), '--db', db], {
        aes: [...TEST_CLIENT_AES, { aeTitle: 'CT1', permissions: ['echo', 'store', 'worklist', 'mpps'] }],
      });
      try {
        assert.deepEqual(await findscuStatus(port, dir), []);
        const item = toDicomJson(
          buildWorklistItem({
            patientName: 'Server^Test',
            patientId: 'SRV',
            accessionNumber: 'SRV-1',
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
        await writeFile(join(dir, 'item.json'), JSON.stringify(item));
        const imported = await runPacs(['worklist', 'import', '--db', db, join(dir, 'item.json')]);
        assert.equal(imported.code, 0, imported.stderr);
        assert.deepEqual(await findscuStatus(port, dir), ['SCHEDULED']);

        const created = await runPacs([
          'mpps',
          'create',
          '--aet',
          'CT1',
          '127.0.0.1',
          String(port),
          '--accession',
          'SRV-1',
        ]);
        assert.equal(created.code, 0, created.stderr);
        const uid = created.stdout.trim().split('\n').pop() ?? '';
        assert.deepEqual(await findscuStatus(port, dir), ['STARTED']);
        const ended = await runPacs([
          'mpps',
          'set',
          '127.0.0.1',
          String(port),
          '--uid',
          uid,
          '--status',
          'DISCONTINUED',
        ]);
        assert.equal(ended.code, 0, ended.stderr);
        assert.deepEqual(await findscuStatus(port, dir), ['DISCONTINUED']);
      } finally {
        await server.stop();
        await rm(dir, { recursive: true, force: true });
        if (engine === 'postgres') await dropSchema(schema);
      }
    });
  });
}
