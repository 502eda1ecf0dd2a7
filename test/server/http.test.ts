/**
 * `--http-port`: /healthz and /metrics of a running `pacs server`, including while DCMTK's
 * storescu sends a series; the counters match what was sent; /healthz is 503 once the PostgreSQL
 * index stops answering. The HTTP module alone: 503 with a
 * JSON reason when the health check fails or is too slow, 404 and 405 for anything else.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { type MetricsJson, mergeWorkerMetrics } from '../../src/server/metrics.js';
import { startWebServer } from '../../src/web/listen.js';
import { OPEN_POLICY } from '../../src/web/policy.js';
import { dropSchema, PG_URL, randomSchema } from '../archive/helpers.js';
import { run, runPacs } from '../helpers/cli.js';
import { dcmtkTool } from '../helpers/corpus.js';
import { writeCtSeries } from '../helpers/synthetic.js';
import { memoryLogger } from '../web/helpers.js';
import { firstAdmin, freePort, startPacsServer, TEST_CLIENT_AES, tempDir } from './helpers.js';

function sample(text: string, name: string): number | undefined {
  const m = new RegExp(`^${name.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
  return m === null ? undefined : Number(m[1]);
}

describe('pacs server --http-port', () => {
  it('/healthz and /metrics answer, also during a storescu transfer, and count what was stored and found', async () => {
    const work = await tempDir('pacs-http-');
    const httpPort = await freePort();
    const admin = await firstAdmin();
    const { server, port } = await startPacsServer(
      ['--http-port', String(httpPort), '--log-level', 'warn', ...admin.args],
      {
        dataDir: join(work.path, 'data'),
        aes: TEST_CLIENT_AES,
      },
    );
    const base = `http://127.0.0.1:${httpPort}`;
    try {
      const health = await fetch(`${base}/healthz`);
      assert.equal(health.status, 200);
      assert.deepEqual(await health.json(), { status: 'ok' });
      const first = await fetch(`${base}/metrics`, { headers: admin.headers });
      assert.equal(first.status, 200);
      assert.match(first.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      const text = await first.text();
      for (const name of [
        'pacs_associations_open',
        'pacs_associations_total',
        'pacs_objects_received_total',
        'pacs_bytes_received_total',
        'pacs_objects_sent_total',
        'pacs_bytes_sent_total',
        'pacs_cfind_duration_seconds',
        'pacs_jobs_queue_depth',
        'pacs_dimse_failures_total',
      ]) {
        assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
      }

      const count = 40;
      const files = writeCtSeries(join(work.path, 'src'), count, { rows: 256, columns: 256 });
      const sending = run(dcmtkTool('storescu'), ['-aec', 'PACS', '127.0.0.1', String(port), ...files], {
        env: { TCP_NODELAY: '1' },
      });
      let polls = 0;
      let sawOpen = false;
      let done = false;
      void sending.finally(() => {
        done = true;
      });
      while (!done || polls < 3) {
        const [h, m] = await Promise.all([
          fetch(`${base}/healthz`),
          fetch(`${base}/metrics`, { headers: admin.headers }),
        ]);
        assert.equal(h.status, 200, await h.text());
        const body = await m.text();
        if ((sample(body, 'pacs_associations_open') ?? 0) > 0) sawOpen = true;
        polls++;
      }
      const sent = await sending;
      assert.equal(sent.code, 0, sent.stdout + sent.stderr);
      assert.ok(polls >= 3);

      const found = await runPacs(['find', '127.0.0.1', String(port), '-k', 'PatientID=*']);
      assert.equal(found.code, 0, found.stderr);
      const after = await (await fetch(`${base}/metrics`, { headers: admin.headers })).text();
      assert.equal(sample(after, 'pacs_objects_received_total'), count);
      assert.ok((sample(after, 'pacs_bytes_received_total') ?? 0) > count * 256 * 256 * 2);
      assert.equal(sample(after, 'pacs_associations_total{outcome="released"}'), 2);
      assert.equal(sample(after, 'pacs_cfind_duration_seconds_count'), 1);
      assert.equal(sample(after, 'pacs_dimse_requests_total{command="C-STORE"}'), count);
      assert.equal(sample(after, 'pacs_jobs_queue_depth'), 0);
      assert.ok((sample(after, 'pacs_process_resident_memory_bytes') ?? 0) > 0);
      // Not asserted: whether a poll fell inside the association depends on scheduling.
      void sawOpen;
    } finally {
      await server.stop();
      await work.remove();
    }
  });

  it('/healthz answers 503 with the reason when the PostgreSQL index stops answering', async () => {
    const work = await tempDir('pacs-http-pg-');
    const schema = randomSchema();
    const httpPort = await freePort();
    const { server } = await startPacsServer(
      [
        '--db',
        `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}`,
        '--http-port',
        String(httpPort),
      ],
      { dataDir: join(work.path, 'data') },
    );
    try {
      assert.equal((await fetch(`http://127.0.0.1:${httpPort}/healthz`)).status, 200);
      // The index's tables vanish under the running server (as if the database were lost).
      await dropSchema(schema);
      const r = await fetch(`http://127.0.0.1:${httpPort}/healthz`);
      assert.equal(r.status, 503);
      const body = (await r.json()) as { status: string; reason: string };
      assert.equal(body.status, 'unavailable');
      assert.match(body.reason, /^the index does not answer: /);
    } finally {
      await server.stop();
      await work.remove();
      await dropSchema(schema);
    }
  });

  it('503 with a JSON reason when the health check fails or hangs; 404 and 405 otherwise', async () => {
    let health: () => Promise<{ ok: true } | { ok: false; reason: string }> = async () => ({
      ok: false,
      reason: 'the index does not answer: connection refused',
    });
    const registry = new Registry();
    new Counter({ name: 'x_total', help: 'x', labelNames: ['a'], registers: [registry] }).inc(
      { a: 'q"b' },
      2,
    );
    const http = await startWebServer({
      host: '127.0.0.1',
      port: 0,
      logger: memoryLogger([]),
      health: () => health(),
      metrics: () => registry.metrics(),
      healthTimeoutMs: 200,
      // This test is about what /healthz and /metrics answer, not who may ask (test/web/auth-*).
      policy: OPEN_POLICY,
    });
    const base = `http://127.0.0.1:${http.port}`;
    try {
      let r = await fetch(`${base}/healthz`);
      assert.equal(r.status, 503);
      assert.deepEqual(await r.json(), {
        status: 'unavailable',
        reason: 'the index does not answer: connection refused',
      });
      health = () => new Promise(() => {});
      r = await fetch(`${base}/healthz`);
      assert.equal(r.status, 503);
      assert.match(((await r.json()) as { reason: string }).reason, /took longer than 200 ms/);
      r = await fetch(`${base}/metrics`);
      assert.equal(await r.text(), '# HELP x_total x\n# TYPE x_total counter\nx_total{a="q\\"b"} 2\n');
      r = await fetch(`${base}/other`);
      assert.equal(r.status, 404);
      await r.text();
      r = await fetch(`${base}/metrics`, { method: 'POST' });
      assert.equal(r.status, 405);
      assert.equal(r.headers.get('allow'), 'GET, HEAD');
      assert.equal(((await r.json()) as { code: string }).code, 'ERR_HTTP_METHOD_NOT_ALLOWED');
    } finally {
      await http.close();
    }
  });

  it("the workers' metrics merge: counters and histograms add up, shared gauges take the largest", async () => {
    const json = async (objects: number, depth: number, latency: number): Promise<MetricsJson> => {
      const registers = [new Registry()];
      new Counter({ name: 'a_total', help: 'objects', registers }).inc(objects);
      new Counter({ name: 'f_total', help: 'failures', labelNames: ['status'], registers }).inc(
        { status: '0xA700' },
        1,
      );
      new Gauge({ name: 'depth', help: 'queue', aggregator: 'max', registers }).set(depth);
      new Histogram({ name: 'lat_seconds', help: 'latency', buckets: [0.1, 1], registers }).observe(latency);
      return (await registers[0]?.getMetricsAsJSON()) as MetricsJson;
    };
    const merged = await mergeWorkerMetrics([await json(3, 5, 0.05), await json(4, 2, 0.5)]);
    assert.equal(
      merged,
      [
        '# HELP pacs_workers Workers listening',
        '# TYPE pacs_workers gauge',
        'pacs_workers 2',
        '',
        '# HELP a_total objects',
        '# TYPE a_total counter',
        'a_total 7',
        '',
        '# HELP f_total failures',
        '# TYPE f_total counter',
        'f_total{status="0xA700"} 2',
        '',
        '# HELP depth queue',
        '# TYPE depth gauge',
        'depth 5',
        '',
        '# HELP lat_seconds latency',
        '# TYPE lat_seconds histogram',
        'lat_seconds_bucket{le="0.1"} 1',
        'lat_seconds_bucket{le="1"} 2',
        'lat_seconds_bucket{le="+Inf"} 2',
        'lat_seconds_sum 0.55',
        'lat_seconds_count 2',
        '',
      ].join('\n'),
    );
  });
});
