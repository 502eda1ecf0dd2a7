/**
 * QIDO-RS study search latency (issue 12 target: p95 under 30 ms at 100,000 instances), as OHIF
 * sends it: `PatientName` with a wild card, a `StudyDate` range, `limit=101`, `offset=0`,
 * `fuzzymatching=false` and `includefield=00081030,00080060`.
 *
 * For each engine (SQLite, and PostgreSQL in a schema of its own, dropped at the end):
 *   1. the index is filled to --instances (default 100,000) directly through the index layer
 *      (bench/adapters.ts fillIndex, as bench/scale.ts does: studies of 2 series x 5 instances,
 *      2 studies per patient, one family name in six SMITH, dates over two years); no object files
 *      (QIDO-RS reads the index only);
 *   2. our web server is started in this process on that archive (startWebServer, HTTP/1.1);
 *   3. --warmup (default 60) requests, then --queries (default 30) OHIF-like searches over ONE
 *      keep-alive connection (a persistent client: connection set-up is not in the figures), each
 *      with other values (family name, month); p50 and p95 are printed with the answers' sizes.
 *      The figures are those of a warm server (JIT-compiled code, the index pages in the page
 *      cache), as a PACS that has been answering viewers is: the first requests after the fill
 *      are several times slower.
 * With Orthanc and its DICOMweb plugin installed (--orthanc, default on when present), the same
 * searches on a smaller same-data set (--orthanc-instances, default 2,000, sent by storescu with
 * TCP_NODELAY=1) against Orthanc and against ours filled with the same studies.
 *
 * Run: npm run build && node dist/bench/dicomweb-qido.js [--instances N] [--engines sqlite,postgres]
 *      [--queries N] [--warmup N] [--orthanc on|off] [--orthanc-instances N]
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { openArchive } from '../src/archive/archive.js';
import { startWebServer } from '../src/web/listen.js';
import { OPEN_POLICY } from '../src/web/policy.js';
import { fillIndex, type StudyShape, writeStudyFiles } from './adapters.js';
import {
  arg,
  dropPgSchema,
  fmt,
  HOST,
  median,
  numberArg,
  ORTHANC,
  ORTHANC_DICOMWEB_PLUGIN,
  PEER_ENV,
  PG_URL,
  percentile,
  pgReachable,
  printPeers,
  printTable,
  runMain,
  runOk,
  startOrthancDicomweb,
  Targets,
} from './common.js';

const SHAPE: StudyShape = { series: 2, instances: 5 };
const FAMILY = ['SMITH', 'JONES', 'BROWN', 'TAYLOR', 'WILSON', 'DAVIES'];
const DICOMWEB_PLUGIN = ORTHANC_DICOMWEB_PLUGIN;

/** The i-th OHIF-like search: a family name prefix and one month of 2023/2024. */
function ohifQuery(i: number): string {
  const family = FAMILY[i % FAMILY.length] as string;
  const month = (i * 7) % 24;
  const year = 2023 + Math.floor(month / 12);
  const m = String((month % 12) + 1).padStart(2, '0');
  const params = new URLSearchParams({
    limit: '101',
    offset: '0',
    fuzzymatching: 'false',
    includefield: '00081030,00080060',
    PatientName: `${family.slice(0, 3)}*`,
    StudyDate: `${year}${m}01-${year}${m}31`,
  });
  return `/studies?${params.toString()}`;
}

/** One keep-alive connection: each GET waits for the previous one. */
function client(base: string): {
  get(path: string): Promise<{ status: number; bytes: number; count: number }>;
  close(): void;
} {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  return {
    get: (path) =>
      new Promise((resolve, reject) => {
        const req = http.get(
          `${base}${path}`,
          { agent, headers: { accept: 'application/dicom+json' } },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              const body = Buffer.concat(chunks);
              let count = 0;
              try {
                count = (JSON.parse(body.toString('utf8')) as unknown[]).length;
              } catch {
                count = -1;
              }
              resolve({ status: res.statusCode ?? 0, bytes: body.length, count });
            });
            res.on('error', reject);
          },
        );
        req.on('error', reject);
      }),
    close: () => agent.destroy(),
  };
}

interface Figures {
  readonly p50: number;
  readonly p95: number;
  readonly matches: number;
  readonly bytes: number;
}

async function measure(base: string, queries: number, warmup: number): Promise<Figures> {
  const c = client(base);
  try {
    for (let i = 0; i < warmup; i++) await c.get(ohifQuery(i + 1000));
    const times: number[] = [];
    let matches = 0;
    let bytes = 0;
    for (let i = 0; i < queries; i++) {
      const t = performance.now();
      const r = await c.get(ohifQuery(i));
      times.push(performance.now() - t);
      if (r.status !== 200) throw new Error(`${ohifQuery(i)}: HTTP ${r.status}`);
      matches += r.count;
      bytes += r.bytes;
    }
    return {
      p50: median(times),
      p95: percentile(times, 95),
      matches: matches / queries,
      bytes: bytes / queries,
    };
  } finally {
    c.close();
  }
}

/** Our server on the index at `db`, in this process. */
async function withOurServer<T>(dir: string, db: string, fn: (base: string) => Promise<T>): Promise<T> {
  const logger = pino({ level: 'warn' });
  const archive = await openArchive({ dataDir: join(dir, 'data'), dbUrl: db, durability: 'none', logger });
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
  try {
    return await fn(`http://${HOST}:${server.port}/dicom-web`);
  } finally {
    await server.close();
    await archive.close();
  }
}

async function fill(db: string, instances: number, label: string): Promise<number> {
  const studies = Math.ceil(instances / (SHAPE.series * SHAPE.instances));
  const t = performance.now();
  const n = await fillIndex(db, studies, SHAPE, () => {});
  console.error(`${label}: ${fmt(n, 0)} instances indexed in ${fmt((performance.now() - t) / 1000, 1)} s`);
  return n;
}

/** Orthanc with its DICOMweb plugin (bench/common.ts). */
async function startOrthanc(
  dir: string,
): Promise<{ base: string; dicomPort: number; stop(): Promise<void> }> {
  const o = await startOrthancDicomweb(dir);
  return { base: `${o.rest}/dicom-web`, dicomPort: o.dicomPort, stop: () => o.stop() };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const instances = numberArg(argv, '--instances', 100_000);
  const queries = numberArg(argv, '--queries', 30);
  const warmup = numberArg(argv, '--warmup', 60);
  const engines = (arg(argv, '--engines') ?? 'sqlite,postgres').split(',');
  const orthancWanted = (arg(argv, '--orthanc') ?? 'on') !== 'off';
  const orthancInstances = numberArg(argv, '--orthanc-instances', 2000);
  const work = await mkdtemp(join(tmpdir(), 'pacs-bench-qido-'));
  const targets = new Targets('issue 12, QIDO-RS');
  const rows: string[][] = [];
  const peers: Array<{ name: string; config: string }> = [
    {
      name: 'ours',
      config: 'pacs web server in this process (fastify, HTTP/1.1), index filled through the index layer',
    },
  ];
  try {
    for (const engine of engines) {
      if (engine === 'postgres' && !(await pgReachable())) {
        console.error('PostgreSQL not reachable: skipped');
        continue;
      }
      const dir = join(work, engine);
      mkdirSync(join(dir, 'data'), { recursive: true });
      const schema = `bench_qido_${process.pid}`;
      const db =
        engine === 'sqlite' ? `sqlite:${join(dir, 'data', 'index.sqlite')}` : `${PG_URL}?schema=${schema}`;
      try {
        const n = await fill(db, instances, engine);
        const f = await withOurServer(dir, db, (base) => measure(base, queries, warmup));
        rows.push([
          `ours, ${engine}`,
          fmt(n, 0),
          fmt(f.p50, 1),
          fmt(f.p95, 1),
          fmt(f.matches, 0),
          fmt(f.bytes, 0),
        ]);
        targets.add({
          what: `QIDO study search p95 at ${fmt(n, 0)} instances, ${engine}`,
          measured: f.p95,
          op: '<',
          threshold: 30,
          show: (v) => `${fmt(v, 1)} ms`,
        });
      } finally {
        if (engine === 'postgres') await dropPgSchema(schema);
      }
    }

    if (orthancWanted && existsSync(ORTHANC) && existsSync(DICOMWEB_PLUGIN)) {
      const dir = join(work, 'orthanc');
      const files = join(dir, 'files');
      const studies = Math.ceil(orthancInstances / (SHAPE.series * SHAPE.instances));
      writeStudyFiles(files, studies, SHAPE);
      const orthanc = await startOrthanc(join(dir, 'orthanc'));
      peers.push({
        name: 'Orthanc',
        config: 'Orthanc + DICOMweb plugin (Debian packages), defaults (SQLite index), TCP_NODELAY=1',
      });
      try {
        await runOk('storescu', ['-aec', 'ORTHANC', '+sd', '+r', HOST, String(orthanc.dicomPort), files], {
          env: PEER_ENV,
        });
        const theirs = await measure(orthanc.base, queries, warmup);
        rows.push([
          'Orthanc',
          fmt(orthancInstances, 0),
          fmt(theirs.p50, 1),
          fmt(theirs.p95, 1),
          fmt(theirs.matches, 0),
          fmt(theirs.bytes, 0),
        ]);
        const small = join(dir, 'ours');
        mkdirSync(join(small, 'data'), { recursive: true });
        const db = `sqlite:${join(small, 'data', 'index.sqlite')}`;
        const n = await fill(db, orthancInstances, 'ours (small set)');
        const ours = await withOurServer(small, db, (base) => measure(base, queries, warmup));
        rows.push([
          'ours, sqlite',
          fmt(n, 0),
          fmt(ours.p50, 1),
          fmt(ours.p95, 1),
          fmt(ours.matches, 0),
          fmt(ours.bytes, 0),
        ]);
        targets.ratio(`p95 Orthanc / ours at ${fmt(n, 0)} instances`, theirs.p95, ours.p95, 1);
      } finally {
        await orthanc.stop();
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  printPeers(peers);
  console.log(
    `\nQIDO-RS study search, ${queries} OHIF-like requests over one keep-alive connection (after ${warmup} warm-up):`,
  );
  printTable(['server', 'instances', 'p50 ms', 'p95 ms', 'answers/req', 'bytes/req'], rows);
  targets.print();
}

runMain('dicomweb-qido', main);
