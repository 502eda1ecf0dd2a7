/**
 * Several hosts behind a TCP load balancer, on one machine: two `pacs server` processes with all
 * services share one PostgreSQL schema and one data folder, behind a round-robin TCP proxy (the
 * test's stand-in for a layer-4 balancer) that skips a backend whose /healthz is not 200. Four
 * storescu senders at once through the proxy: both processes take associations, every object is
 * indexed once with its file; a C-FIND through the proxy sees them all, whichever process answers.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openIndex } from '../../src/archive/index/open.js';
import { dropSchema, PG_URL, randomSchema } from '../archive/helpers.js';
import { run, runPacs } from '../helpers/cli.js';
import { dcmtkTool } from '../helpers/corpus.js';
import { writeCtSeries } from '../helpers/synthetic.js';
import { type Child, freePort, startPacsServer, TEST_CLIENT_AES, tempDir } from './helpers.js';

interface Backend {
  readonly port: number;
  readonly httpPort: number;
  connections: number;
}

/** A round-robin TCP proxy over the backends whose /healthz answers 200. */
async function startBalancer(backends: Backend[]): Promise<{ port: number; close: () => Promise<void> }> {
  let next = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.pause();
    void (async () => {
      for (let tried = 0; tried < backends.length; tried++) {
        const backend = backends[next++ % backends.length];
        if (backend === undefined) continue;
        const healthy = await fetch(`http://127.0.0.1:${backend.httpPort}/healthz`)
          .then((r) => r.status === 200)
          .catch(() => false);
        if (!healthy) continue;
        backend.connections++;
        const upstream = net.connect({ host: '127.0.0.1', port: backend.port });
        sockets.add(upstream);
        upstream.on('close', () => sockets.delete(upstream));
        upstream.on('error', () => client.destroy());
        client.on('error', () => upstream.destroy());
        client.pipe(upstream).pipe(client);
        client.resume();
        return;
      }
      client.destroy();
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

async function countFiles(dir: string): Promise<number> {
  let n = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) if (entry.isFile()) n++;
  return n;
}

describe('two full processes on one PostgreSQL and one folder, behind a TCP balancer', () => {
  let work: { path: string; remove: () => Promise<void> };
  const schema = randomSchema();
  const db = `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}`;
  const servers: Child[] = [];
  const backends: Backend[] = [];
  let balancer: { port: number; close: () => Promise<void> } | undefined;

  before(async () => {
    work = await tempDir('pacs-balancer-');
    for (let i = 0; i < 2; i++) {
      const httpPort = await freePort();
      const { server, port } = await startPacsServer(
        [
          '--data',
          join(work.path, 'data'),
          '--db',
          db,
          '--http-port',
          String(httpPort),
          '--log-level',
          'warn',
        ],
        { aes: TEST_CLIENT_AES },
      );
      servers.push(server);
      backends.push({ port, httpPort, connections: 0 });
    }
    balancer = await startBalancer(backends);
  });

  after(async () => {
    await balancer?.close();
    for (const s of servers) await s.stop();
    await work?.remove();
    await dropSchema(schema);
  });

  it('4 senders through the balancer: both processes serve, every object stored once, found through either', async () => {
    const port = String(balancer?.port);
    const perSender = 6;
    const sets = Array.from({ length: 4 }, (_, i) =>
      writeCtSeries(join(work.path, `src${i}`), perSender, { rows: 64, columns: 64, patientId: `LB${i}` }),
    );
    const results = await Promise.all(
      sets.map((files) =>
        run(dcmtkTool('storescu'), ['-aec', 'PACS', '127.0.0.1', port, ...files], {
          env: { TCP_NODELAY: '1' },
        }),
      ),
    );
    for (const r of results) assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.ok(
      backends.every((b) => b.connections > 0),
      `connections per backend: ${backends.map((b) => b.connections)}`,
    );
    const { index } = await openIndex(db);
    try {
      assert.equal(await index.countInstances(), 4 * perSender);
    } finally {
      await index.close();
    }
    assert.equal(await countFiles(join(work.path, 'data', 'objects')), 4 * perSender);
    // Two queries: the balancer sends them to different processes; both see every patient.
    for (let i = 0; i < 2; i++) {
      const found = await runPacs(['find', '127.0.0.1', port, '--json', '-k', 'PatientID=LB*']);
      assert.equal(found.code, 0, found.stderr);
      assert.equal((JSON.parse(found.stdout) as unknown[]).length, 4);
    }
  });
});
