/**
 * The retrieve services in `pacs server` (a child process, on SQLite and on PostgreSQL): DCMTK's
 * storescu fills it, movescu moves a study to storescp (a `--peer`), getscu gets it back on its
 * own association, an AE that is not a peer answers 0xA801, and `pacs jobs ls` shows the move job
 * done. The data sets arrive unchanged.
 */
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type FileInfo, readFileInfo } from '../../src/services/storage/scu.js';
import { dropSchema, PG_URL, randomSchema } from '../archive/helpers.js';
import { run, runPacs } from '../helpers/cli.js';
import { dcmtkTool } from '../helpers/corpus.js';
import { writeCtSeries } from '../helpers/synthetic.js';
import {
  type Child,
  firstAdmin,
  freePort,
  spawnChild,
  startPacsServer,
  TEST_CLIENT_AES,
  tempDir,
  waitForPort,
} from '../server/helpers.js';

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
  for (const s of sources) {
    const r = byUid.get(s.sopInstanceUid);
    assert.ok(r, `received ${s.sopInstanceUid}`);
    const a = (await readFile(r.path)).subarray(r.dataSetOffset);
    const b = (await readFile(s.path)).subarray(s.dataSetOffset);
    assert.ok(a.equals(b), `${s.sopInstanceUid}: same data set bytes`);
  }
}

function finalStatus(output: string): string | undefined {
  return [...output.matchAll(/DIMSE Status\s*:\s*(0x[0-9a-f]{4})/g)].map((m) => m[1]).at(-1);
}

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`pacs server retrieves (${engine})`, () => {
    let work: { path: string; remove: () => Promise<void> };
    let server: Child;
    let storescp: Child;
    let port: number;
    let recvDir: string;
    let dataDir: string;
    let files: FileInfo[] = [];
    let httpPort: number;
    let admin: Awaited<ReturnType<typeof firstAdmin>>;
    const schema = randomSchema();
    const study = engine === 'sqlite' ? '1.2.826.0.1.3680043.8.498.9501' : '1.2.826.0.1.3680043.8.498.9502';

    before(async () => {
      work = await tempDir('pacs-interop-server-retrieve-');
      recvDir = join(work.path, 'recv');
      dataDir = join(work.path, 'data');
      await mkdir(recvDir);
      const recvPort = await freePort();
      storescp = spawnChild(dcmtkTool('storescp'), ['-aet', 'RECV', '+B', '-od', recvDir, String(recvPort)], {
        env: DCMTK_ENV,
        name: 'storescp',
      });
      await waitForPort(recvPort);
      httpPort = await freePort();
      admin = await firstAdmin();
      const args = [
        ...admin.args,
        '--data',
        dataDir,
        '--peer',
        `RECV=127.0.0.1:${recvPort}`,
        '--log-level',
        'warn',
        '--http-port',
        String(httpPort),
      ];
      if (engine === 'postgres')
        args.push('--db', `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}`);
      const started = await startPacsServer(args, { aes: TEST_CLIENT_AES });
      server = started.server;
      port = started.port;
      const src = join(work.path, 'src');
      writeCtSeries(src, 5, { studyInstanceUid: study, rows: 128, columns: 128 });
      files = await fileInfos(src);
      const stored = await run(
        dcmtkTool('storescu'),
        ['-aec', 'PACS', '127.0.0.1', String(port), ...files.map((f) => f.path)],
        { env: DCMTK_ENV },
      );
      assert.equal(stored.code, 0, stored.stdout + stored.stderr);
    });

    after(async () => {
      await server?.stop();
      await storescp?.stop();
      await work?.remove();
      if (engine === 'postgres') await dropSchema(schema);
    });

    it('movescu moves a study to a --peer; the job is listed done', async () => {
      const r = await run(
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
          `StudyInstanceUID=${study}`,
          '127.0.0.1',
          String(port),
        ],
        { env: DCMTK_ENV },
      );
      const out = r.stdout + r.stderr;
      assert.equal(finalStatus(out), '0x0000', out);
      await assertSameDataSets(files, await fileInfos(recvDir));
      const jobsArgs =
        engine === 'sqlite'
          ? ['--data', dataDir]
          : ['--db', `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}`];
      const ls = await runPacs(['jobs', 'ls', ...jobsArgs]);
      assert.equal(ls.code, 0, ls.stderr);
      assert.match(ls.stdout, /^ID\s+STATE\s+KIND/);
      assert.match(ls.stdout, /\n1\s+done\s+move\s+0\s+RECV\s+1\/3\s+.*5\/5/);
    });

    it('an AE that is not a peer: 0xA801', async () => {
      const r = await runPacs([
        'move',
        '127.0.0.1',
        String(port),
        '--dest',
        'STRANGER',
        '-k',
        `StudyInstanceUID=${study}`,
      ]);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /status 0xA801 \(Refused: move destination unknown\): unknown move destination STRANGER/,
      );
    });

    it('getscu gets the study on its own association; the bytes sent are counted', async () => {
      const bytesSent = async (): Promise<number> => {
        const text = await (
          await fetch(`http://127.0.0.1:${httpPort}/metrics`, { headers: admin.headers })
        ).text();
        return Number(/^pacs_bytes_sent_total (\d+)/m.exec(text)?.[1] ?? Number.NaN);
      };
      const before = await bytesSent();
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
          `StudyInstanceUID=${study}`,
          '127.0.0.1',
          String(port),
        ],
        { env: DCMTK_ENV },
      );
      const out = r.stdout + r.stderr;
      assert.equal(finalStatus(out), '0x0000', out);
      await assertSameDataSets(files, await fileInfos(dir));
      assert.equal((await fileInfos(dir)).length, files.length);
      const dataSets = files.reduce((n, f) => n + f.size - f.dataSetOffset, 0);
      assert.ok((await bytesSent()) - before >= dataSets, 'every data set byte counted');
    });
  });
}
