/**
 * WADO-RS series metadata and frames, side by side with Orthanc + its DICOMweb plugin on the same
 * objects (issue 12 targets): the series `/metadata` of a 600-instance CT series (p50/p95 of 20
 * requests, identity and gzip), and single-frame 512x512 frame requests per second over one
 * HTTP/1.1 keep-alive connection.
 *
 * Our side runs in this process (the archive and the web app of src/, the same code `pacs server`
 * serves); the metadata client is on the same event loop (its work is counted against us), the
 * frames client is curl in its own process when installed.
 * Orthanc gets TCP_NODELAY=1, its defaults (SQLite index, SeriesMetadata as its plugin defaults:
 * read from the files) and the objects through its REST upload.
 *
 *   npm run build && node dist/bench/dicomweb-metadata.js [--instances 600] [--requests 20]
 *     [--frames 1000] [--no-orthanc]
 */
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { openArchive } from '../src/archive/archive.js';
import { startWebServer } from '../src/web/listen.js';
import { OPEN_POLICY } from '../src/web/policy.js';
import { writeCtSeries } from './adapters.js';
import {
  fmt,
  HOST,
  have,
  numberArg,
  ORTHANC,
  ORTHANC_DICOMWEB_PLUGIN,
  percentile,
  printPeers,
  printTable,
  run,
  runMain,
  startOrthancDicomweb,
  Targets,
} from './common.js';

interface Timed {
  readonly ms: number;
  readonly bytes: number;
  readonly status: number;
}

/** One GET on a keep-alive agent, the whole body read; its time. */
function timedGet(agent: http.Agent, url: string, headers: Record<string, string> = {}): Promise<Timed> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent, headers }, (res) => {
        let bytes = 0;
        res.on('data', (c: Buffer) => {
          bytes += c.length;
        });
        res.on('end', () => resolve({ ms: performance.now() - t0, bytes, status: res.statusCode ?? 0 }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

async function timeRequests(
  url: string,
  count: number,
  headers: Record<string, string>,
): Promise<{ p50: number; p95: number; bytes: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    for (let i = 0; i < 2; i++) await timedGet(agent, url, headers); // warm-up
    const times: number[] = [];
    let bytes = 0;
    for (let i = 0; i < count; i++) {
      const r = await timedGet(agent, url, headers);
      if (r.status !== 200) throw new Error(`${url}: HTTP ${r.status}`);
      times.push(r.ms);
      bytes = r.bytes;
    }
    return { p50: percentile(times, 50), p95: percentile(times, 95), bytes };
  } finally {
    agent.destroy();
  }
}

/**
 * Frame requests per second, one at a time on one keep-alive connection: curl in its own process
 * (one curl run reuses its connection for every URL of its config; its start-up, about 10 ms, is
 * counted), or this process's client when curl is not installed.
 */
async function frameRate(
  dir: string,
  urls: readonly string[],
  count: number,
  accept: string,
): Promise<number> {
  if (await have('curl')) {
    const config = join(dir, `curl-${Date.now()}.cfg`);
    const list = (n: number) =>
      Array.from({ length: n }, (_, i) => `url = "${urls[i % urls.length]}"\noutput = "/dev/null"`).join(
        '\n',
      );
    const curl = (n: number) => {
      writeFileSync(config, list(n));
      return run('curl', ['-s', '-H', `Accept: ${accept}`, '-w', '%{http_code}\n', '-K', config]);
    };
    await curl(20);
    const r = await curl(count);
    const codes = r.output.split('\n').filter((l) => l !== '');
    if (codes.length !== count || codes.some((c) => c !== '200'))
      throw new Error(`frames by curl: ${codes.filter((c) => c !== '200').length} answers not 200`);
    return count / (r.ms / 1000);
  }
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    for (let i = 0; i < 20; i++) await timedGet(agent, urls[i % urls.length] as string, { accept });
    const t0 = performance.now();
    for (let i = 0; i < count; i++) {
      const r = await timedGet(agent, urls[i % urls.length] as string, { accept });
      if (r.status !== 200) throw new Error(`frame: HTTP ${r.status}`);
    }
    return count / ((performance.now() - t0) / 1000);
  } finally {
    agent.destroy();
  }
}

async function startOrthanc(dir: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const o = await startOrthancDicomweb(dir);
  return { url: o.rest, stop: () => o.stop() };
}

async function uploadToOrthanc(base: string, paths: readonly string[]): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    for (const p of paths)
      await new Promise<void>((resolve, reject) => {
        const req = http.request(
          `${base}/instances`,
          { method: 'POST', agent, headers: { 'content-type': 'application/dicom' } },
          (res) => {
            res.resume();
            res.on('end', () =>
              res.statusCode === 200 ? resolve() : reject(new Error(`upload: ${res.statusCode}`)),
            );
          },
        );
        req.on('error', reject);
        createReadStream(p).pipe(req);
      });
  } finally {
    agent.destroy();
  }
}

runMain('bench dicomweb-metadata', async () => {
  const argv = process.argv.slice(2);
  const instances = numberArg(argv, '--instances', 600);
  const requests = numberArg(argv, '--requests', 20);
  const frames = numberArg(argv, '--frames', 1000);
  const withOrthanc = !argv.includes('--no-orthanc');
  const dir = mkdtempSync(join(tmpdir(), 'pacs-bench-wado-'));
  try {
    const studyUid = `2.25.${Date.now()}1`;
    const seriesUid = `${studyUid}.1`;
    const files = writeCtSeries(join(dir, 'source'), instances, {
      studyInstanceUid: studyUid,
      seriesInstanceUid: seriesUid,
    });
    const logger = pino({ level: 'warn' });
    const archive = await openArchive({ dataDir: join(dir, 'pacs'), durability: 'none', logger });
    for (const f of files) {
      const r = await archive.ingest(createReadStream(f), {
        format: 'part10',
        source: 'BENCH',
        via: 'import',
      });
      if (!r.ok) throw r.error;
    }
    const server = await startWebServer({
      host: HOST,
      port: 0,
      logger,
      health: async () => ({ ok: true }),
      metrics: async () => '',
      // The routes' own cost, as the peers run without authentication (bench/http-auth.ts measures it).
      policy: OPEN_POLICY,
      dicomweb: { archive, logger, aeTitle: 'PACS' },
    });
    const ours = `http://${HOST}:${server.port}/dicom-web`;
    const seriesPath = `/studies/${studyUid}/series/${seriesUid}`;
    const sopUids: string[] = [];
    for await (const row of archive.index.instanceMetadata({
      studyInstanceUid: studyUid,
      seriesInstanceUid: seriesUid,
    }))
      sopUids.push(row.sopInstanceUid);
    const frameUrls = (base: string) => sopUids.map((s) => `${base}${seriesPath}/instances/${s}/frames/1`);
    const octets = 'multipart/related; type="application/octet-stream"; transfer-syntax=*';

    const rows: string[][] = [];
    const plain = await timeRequests(`${ours}${seriesPath}/metadata`, requests, {});
    const gzip = await timeRequests(`${ours}${seriesPath}/metadata`, requests, { 'accept-encoding': 'gzip' });
    const ourFrames = await frameRate(dir, frameUrls(ours), frames, octets);
    rows.push(['pacs (identity)', fmt(plain.p50), fmt(plain.p95), fmt(plain.bytes / 1024, 0)]);
    rows.push(['pacs (gzip)', fmt(gzip.p50), fmt(gzip.p95), fmt(gzip.bytes / 1024, 0)]);
    await server.close();
    await archive.close();

    let orthanc: { p50: number; p95: number; bytes: number } | undefined;
    let orthancFrames: number | undefined;
    if (withOrthanc) {
      const o = await startOrthanc(join(dir, 'orthanc'));
      try {
        await uploadToOrthanc(o.url, files);
        orthanc = await timeRequests(`${o.url}/dicom-web${seriesPath}/metadata`, requests, {});
        orthancFrames = await frameRate(dir, frameUrls(`${o.url}/dicom-web`), Math.min(frames, 300), octets);
        rows.push(['Orthanc', fmt(orthanc.p50), fmt(orthanc.p95), fmt(orthanc.bytes / 1024, 0)]);
      } finally {
        await o.stop();
      }
    }

    printPeers([
      {
        name: 'pacs',
        config:
          'src/ archive + web app in this process (SQLite index, durability none: reads only), client in-process',
      },
      ...(withOrthanc
        ? [
            {
              name: 'Orthanc',
              config: `${ORTHANC} + ${ORTHANC_DICOMWEB_PLUGIN}, defaults, TCP_NODELAY=1, filled by REST upload`,
            },
          ]
        : []),
    ]);
    console.log(
      `\nseries /metadata of ${instances} CT instances (512x512), ${requests} requests, one keep-alive connection:`,
    );
    printTable(['server', 'p50 ms', 'p95 ms', 'KiB'], rows);
    const client = (await have('curl')) ? 'curl in its own process' : 'this process (curl not installed)';
    console.log(
      `\nframes/1 of single-frame 512x512 CT, one at a time, one keep-alive connection, client ${client}:`,
    );
    printTable(
      ['server', 'frames/s'],
      [
        ['pacs', fmt(ourFrames, 0)],
        ...(orthancFrames !== undefined ? [['Orthanc', fmt(orthancFrames, 0)]] : []),
      ],
    );
    new Targets('issue 12')
      .add({
        what: `series metadata p95 (${instances} instances) < 150 ms`,
        measured: plain.p95,
        op: '<',
        threshold: 150,
        show: (v) => `${fmt(v)} ms`,
      })
      .ratio('series metadata: Orthanc p95 / ours >= 10x', orthanc?.p95, plain.p95, 10)
      .add({
        what: 'frames/s over one connection >= 1000',
        measured: ourFrames,
        op: '>=',
        threshold: 1000,
        show: (v) => fmt(v, 0),
      })
      .print();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
