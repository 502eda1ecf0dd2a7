/**
 * `pacs server --workers 2` (node:cluster) on SQLite: four storescu senders at once, each with
 * its own objects, all stored once (index rows = object files = objects sent); then kill -9 of
 * one worker in the middle of transfers: the other keeps serving, the primary starts a new one,
 * every acknowledged object is indexed and intact, and SIGTERM stops everything with exit code 0.
 * The primary's --http-port adds up the workers' metrics.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openIndex } from '../../src/archive/index/open.js';
import { readFileInfo } from '../../src/services/storage/scu.js';
import { run, runPacs } from '../helpers/cli.js';
import { dcmtkTool } from '../helpers/corpus.js';
import { writeCtSeries } from '../helpers/synthetic.js';
import { firstAdmin, freePort, spawnChild, startPacsServer, tempDir } from './helpers.js';

const DCMTK_ENV = { TCP_NODELAY: '1' };

async function countFiles(dir: string): Promise<number> {
  let n = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) if (entry.isFile()) n++;
  return n;
}

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

/** Every acknowledged file is indexed, and its object file holds the same data set bytes. */
async function assertIntact(dataDir: string, files: readonly string[]): Promise<void> {
  const { index } = await openIndex(`sqlite:${join(dataDir, 'index.sqlite')}`);
  try {
    for (const file of files) {
      const info = await readFileInfo(file);
      assert.ok(info.ok);
      const row = await index.findInstance(info.value.sopInstanceUid);
      assert.ok(row, `${file} acknowledged but not indexed`);
      const stored = await readFileInfo(join(dataDir, row.path));
      assert.ok(stored.ok);
      const a = (await readFile(stored.value.path)).subarray(stored.value.dataSetOffset);
      const b = (await readFile(file)).subarray(info.value.dataSetOffset);
      assert.ok(a.equals(b), `${file}: same data set bytes`);
    }
  } finally {
    await index.close();
  }
}

function workerPids(output: string): number[] {
  return [...output.matchAll(/"workerPid":(\d+),"msg":"worker listening"/g)].map((m) => Number(m[1]));
}

describe('pacs server --workers 2', () => {
  it('4 concurrent senders: everything stored once; kill -9 of a worker: the other serves, a new one starts', async () => {
    const work = await tempDir('pacs-cluster-');
    const data = join(work.path, 'data');
    const httpPort = await freePort();
    const admin = await firstAdmin();
    const { server, port } = await startPacsServer(
      ['--workers', '2', '--data', data, '--http-port', String(httpPort), ...admin.args],
      {
        dataDir: data,
      },
    );
    try {
      const senders = 4;
      const perSender = 12;
      const sets = Array.from({ length: senders }, (_, i) =>
        writeCtSeries(join(work.path, `src${i}`), perSender, { rows: 128, columns: 128, patientId: `W${i}` }),
      );
      const results = await Promise.all(
        sets.map((files) =>
          run(dcmtkTool('storescu'), ['-aec', 'PACS', '127.0.0.1', String(port), ...files], {
            env: DCMTK_ENV,
          }),
        ),
      );
      for (const r of results) assert.equal(r.code, 0, r.stdout + r.stderr);
      const { index } = await openIndex(`sqlite:${join(data, 'index.sqlite')}`);
      try {
        assert.equal(await index.countInstances(), senders * perSender);
      } finally {
        await index.close();
      }
      assert.equal(await countFiles(join(data, 'objects')), senders * perSender);
      // The primary's HTTP port: the workers' counters added up, health asked of each.
      const metrics = await (
        await fetch(`http://127.0.0.1:${httpPort}/metrics`, { headers: admin.headers })
      ).text();
      assert.match(metrics, /^pacs_workers 2$/m);
      assert.match(metrics, new RegExp(`^pacs_objects_received_total ${senders * perSender}$`, 'm'));
      assert.match(metrics, /^pacs_jobs_queue_depth 0$/m);
      const health = await fetch(`http://127.0.0.1:${httpPort}/healthz`);
      assert.equal(health.status, 200, await health.text());

      // kill -9 of one worker while two senders are busy.
      const pids = workerPids(server.output);
      assert.equal(pids.length, 2, server.output);
      const big = Array.from({ length: 2 }, (_, i) =>
        writeCtSeries(join(work.path, `big${i}`), 60, { rows: 256, columns: 256, patientId: `K${i}` }),
      );
      const running = big.map((files) =>
        spawnChild(dcmtkTool('storescu'), ['-v', '-aec', 'PACS', '127.0.0.1', String(port), ...files], {
          env: DCMTK_ENV,
          name: 'storescu',
        }),
      );
      await Promise.all(running.map((c) => c.waitFor(/Received Store Response \(Success\)/, 60_000)));
      process.kill(pids[0] ?? 0, 'SIGKILL');
      // The other worker keeps serving at once.
      const echo = await runPacs(['echo', '127.0.0.1', String(port)]);
      assert.equal(echo.code, 0, echo.stderr);
      await Promise.all(running.map((c) => c.exited));
      await server.waitFor(/exited \(SIGKILL\): starting another/);
      await server.waitFor(/(?:"msg":"worker listening"[\s\S]*){3}/, 60_000);
      assert.equal(workerPids(server.output).length, 3);

      const acked = running.flatMap((c) => acknowledged(c.output));
      assert.ok(acked.length > 0);
      await assertIntact(data, acked);
      // And new work is served after the restart.
      const again = await runPacs(['store', '127.0.0.1', String(port), join(work.path, 'big0')]);
      assert.equal(again.code, 0, again.stderr);
      await assertIntact(data, big[0] ?? []);

      assert.deepEqual(await server.stop('SIGTERM', 30_000), { code: 0, signal: null });
    } finally {
      await server.stop('SIGKILL');
      await work.remove();
    }
  });
});
