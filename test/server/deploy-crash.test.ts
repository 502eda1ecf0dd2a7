/**
 * kill -9 of the storage process of a per-service deployment (three processes on one PostgreSQL
 * schema and one data folder) in the middle of a transfer: the query-retrieve and worklist
 * processes keep serving, and after the storage process is started again every object it had
 * acknowledged is indexed, its file intact, and it is found through the query-retrieve process.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openIndex } from '../../src/archive/index/open.js';
import { readFileInfo } from '../../src/services/storage/scu.js';
import { dropSchema, PG_URL, randomSchema } from '../archive/helpers.js';
import { run, runPacs } from '../helpers/cli.js';
import { dcmtkTool } from '../helpers/corpus.js';
import { writeCtSeries } from '../helpers/synthetic.js';
import { type Child, spawnChild, startPacsServer, TEST_CLIENT_AES, tempDir } from './helpers.js';

const DCMTK_ENV = { TCP_NODELAY: '1' };
const STUDY = '1.2.826.0.1.3680043.8.498.9702';

/** The files storescu -v reports acknowledged with a success status. */
function acknowledged(output: string): string[] {
  const done: string[] = [];
  let current: string | undefined;
  for (const line of output.split('\n')) {
    const sending = /Sending file: (.*)$/.exec(line);
    if (sending) current = sending[1]?.trim();
    else if (/Received Store Response \(Success\)/.test(line) && current !== undefined) {
      done.push(current);
      current = undefined;
    }
  }
  return done;
}

describe('kill -9 of the storage process of a per-service deployment', () => {
  let work: { path: string; remove: () => Promise<void> };
  const schema = randomSchema();
  const db = `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}`;
  const servers: Child[] = [];
  let common: string[] = [];

  before(async () => {
    work = await tempDir('pacs-deploy-crash-');
    common = ['--data', join(work.path, 'data'), '--db', db];
  });

  after(async () => {
    for (const s of servers) await s.stop('SIGKILL');
    await work?.remove();
    await dropSchema(schema);
  });

  it('the others keep serving; after a restart every acknowledged object is present and intact', async () => {
    const storage = await startPacsServer([...common, '--services', 'storage'], { aes: TEST_CLIENT_AES });
    servers.push(storage.server);
    const qr = await startPacsServer([...common, '--services', 'query-retrieve'], { aes: TEST_CLIENT_AES });
    servers.push(qr.server);
    const wl = await startPacsServer([...common, '--services', 'worklist,mpps'], { aes: TEST_CLIENT_AES });
    servers.push(wl.server);

    const files = writeCtSeries(join(work.path, 'src'), 150, {
      studyInstanceUid: STUDY,
      rows: 256,
      columns: 256,
    });
    const sender = spawnChild(
      dcmtkTool('storescu'),
      ['-v', '-aec', 'PACS', '127.0.0.1', String(storage.port), ...files],
      {
        env: DCMTK_ENV,
        name: 'storescu',
      },
    );
    // Some objects acknowledged, then the storage process dies in the middle of the next ones.
    await sender.waitFor(/(?:Received Store Response \(Success\)[\s\S]*){5}/, 60_000);
    const pid = storage.server.process.pid;
    assert.ok(pid !== undefined);
    process.kill(pid, 'SIGKILL');
    await storage.server.exited;
    await sender.exited;
    const acked = acknowledged(sender.output);
    assert.ok(acked.length >= 5 && acked.length < files.length, `${acked.length} acknowledged`);

    // The other processes keep serving.
    for (const port of [qr.port, wl.port]) {
      const echo = await runPacs(['echo', '127.0.0.1', String(port)]);
      assert.equal(echo.code, 0, echo.stderr);
    }
    const found = await runPacs([
      'find',
      '127.0.0.1',
      String(qr.port),
      '--json',
      '-k',
      `StudyInstanceUID=${STUDY}`,
    ]);
    assert.equal(found.code, 0, found.stderr);
    const worklist = await run(dcmtkTool('findscu'), [
      '-W',
      '-aec',
      'PACS',
      '-k',
      'AccessionNumber=*',
      '127.0.0.1',
      String(wl.port),
    ]);
    assert.equal(worklist.code, 0, worklist.stderr);

    // Started again on the same port (other processes may be storing: its reconcile leaves young files alone).
    const restarted = await startPacsServer(
      [...common, '--services', 'storage', '--port', String(storage.port)],
      { aes: TEST_CLIENT_AES },
    );
    servers.push(restarted.server);
    const { index } = await openIndex(db);
    try {
      for (const file of acked) {
        const source = await readFileInfo(file);
        assert.ok(source.ok);
        const row = await index.findInstance(source.value.sopInstanceUid);
        assert.ok(row, `${file} was acknowledged but is not indexed`);
        const stored = await readFileInfo(join(work.path, 'data', row.path));
        assert.ok(stored.ok, `${row.path} readable`);
        const a = (await readFile(stored.value.path)).subarray(stored.value.dataSetOffset);
        const b = (await readFile(file)).subarray(source.value.dataSetOffset);
        assert.ok(a.equals(b), `${file}: same data set bytes`);
      }
    } finally {
      await index.close();
    }
    // The rest can be sent again; the query-retrieve process then finds the whole series.
    const resent = await runPacs(['store', '127.0.0.1', String(restarted.port), join(work.path, 'src')]);
    assert.equal(resent.code, 0, resent.stderr);
    const series = await runPacs([
      'find',
      '127.0.0.1',
      String(qr.port),
      '--json',
      '-k',
      'QueryRetrieveLevel=SERIES',
      '-k',
      `StudyInstanceUID=${STUDY}`,
      '-k',
      'NumberOfSeriesRelatedInstances',
    ]);
    assert.equal(series.code, 0, series.stderr);
    assert.match(series.stdout, /"00201209":\{"vr":"IS","Value":\[150\]\}/);
  });
});
