/**
 * Scale of the archive (issue 11 section 4): ingest and query speed must not fall as the archive
 * grows. For each engine (SQLite, and PostgreSQL in a schema of its own, dropped at the end):
 *   1. an empty archive: `pacs server` (defaults: fsync) takes small 64x64 objects from storescu
 *      (TCP_NODELAY=1, one association per round): the empty-archive ingest rate;
 *   2. the server stopped, the index filled to --instances (default 1,000,000) directly through
 *      the index layer (multi-row INSERTs in transactions, bench/adapters.ts fillIndex: studies of
 *      2 series x 5 instances, 2 studies per patient); each row's file is a hard link to one small
 *      object, since the server's start-up reconcile removes rows whose file is missing;
 *   3. the server started again on the full archive (its start-up time printed: the reconcile
 *      walks every file): the same ingest measured, then C-FIND latency (median, p95) for an
 *      exact Patient ID and an exact Accession Number, with a persistent client (our SCU library:
 *      one association, --queries queries each, a different existing value each time).
 * Rates are medians of --rounds rounds (fresh objects each round). Targets: full-archive ingest
 * >= 0.9x the empty archive's, C-FIND p95 < 20 ms, PostgreSQL ingest >= 0.8x SQLite's.
 *
 * Run: npm run bench:scale
 *   (or node dist/bench/scale.js [--instances N] [--engines sqlite,postgres] [--objects N]
 *    [--rounds N] [--queries N]); PostgreSQL at PACS_BENCH_PG_URL (default the test database).
 */
import { copyFileSync, linkSync, mkdirSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  accessionOf,
  checkBulkFill,
  fillIndex,
  openFindClient,
  patientIdOf,
  type StudyShape,
  writeCtSeries,
} from './adapters.js';
import {
  arg,
  dropPgSchema,
  fmt,
  HOST,
  median,
  numberArg,
  type Peer,
  PG_URL,
  percentile,
  pgReachable,
  printPeers,
  printTable,
  ratio,
  runMain,
  runOk,
  startPacsServer,
  Targets,
} from './common.js';

const SHAPE: StudyShape = { series: 2, instances: 5 };

interface EngineFigures {
  readonly engine: string;
  readonly emptyRate: number;
  readonly fullRate: number;
  readonly instances: number;
  readonly fillSeconds: number;
  readonly startSeconds: number;
  readonly patientId: { median: number; p95: number; matches: number };
  readonly accession: { median: number; p95: number; matches: number };
}

/** storescu of each folder in turn (one association each) to the server: objects/s per round. */
async function ingestRates(server: Peer, folders: readonly string[], objects: number): Promise<number[]> {
  const rates: number[] = [];
  for (const f of folders) {
    const t = performance.now();
    await runOk('storescu', ['-aec', server.aet, '+sd', '+r', HOST, String(server.port), f]);
    rates.push(objects / ((performance.now() - t) / 1000));
  }
  return rates;
}

async function latency(
  server: Peer,
  queries: number,
  keys: (i: number) => Record<string, string>,
): Promise<{ median: number; p95: number; matches: number }> {
  const client = await openFindClient(server.port, server.aet);
  const times: number[] = [];
  let matches = 0;
  try {
    for (let i = 0; i < Math.min(10, queries); i++) await client.query(keys(i + 7777)); // warm-up
    for (let i = 0; i < queries; i++) {
      const t = performance.now();
      matches = await client.query(keys(i));
      times.push(performance.now() - t);
    }
  } finally {
    await client.close();
  }
  return { median: median(times), p95: percentile(times, 95), matches };
}

const returnKeys = { StudyInstanceUID: '', StudyDate: '', PatientName: '', StudyDescription: '' };

async function runEngine(
  engine: 'sqlite' | 'postgres',
  work: string,
  o: { instances: number; objects: number; rounds: number; queries: number },
  schema: string,
): Promise<EngineFigures> {
  const dir = join(work, engine);
  const data = join(dir, 'data');
  const db = engine === 'sqlite' ? `sqlite:${join(data, 'index.sqlite')}` : `${PG_URL}?schema=${schema}`;
  const name = engine === 'sqlite' ? 'SQLite' : 'PostgreSQL';
  // Fresh objects for each measurement (no duplicates): rounds x (empty, full).
  const folders = (phase: string): string[] =>
    Array.from({ length: o.rounds }, (_, r) => {
      const f = join(work, 'objects', `${engine}-${phase}-${r}`);
      writeCtSeries(f, o.objects, { rows: 64, columns: 64, patientId: `SCALE-${phase}-${r}` });
      return f;
    });
  const emptyFolders = folders('empty');
  const fullFolders = folders('full');

  let server = await startPacsServer({ dir, db });
  let emptyRate: number;
  try {
    emptyRate = median(await ingestRates(server, emptyFolders, o.objects));
  } finally {
    await server.stop();
  }
  console.error(`${name}: empty archive ingest ${fmt(emptyRate)} objects/s; filling ...`);

  // The files the rows name: hard links to a small object (no data blocks of their own); a new
  // copy every 60,000 links (ext4 allows 65,000 links per inode).
  const first = writeCtSeries(join(dir, 'template'), 1, { rows: 4, columns: 4 })[0] as string;
  let template = first;
  let links = 0;
  const made = new Set<string>();
  const started = performance.now();
  let last = 0;
  const studies = Math.ceil(o.instances / (SHAPE.series * SHAPE.instances));
  const indexed = await fillIndex(
    db,
    studies,
    SHAPE,
    (n) => {
      if (n - last >= 100_000 || n === studies * SHAPE.series * SHAPE.instances) {
        last = n;
        const s = (performance.now() - started) / 1000;
        console.error(`  ${name}: ${fmt(n, 0)} instances in ${fmt(s, 0)} s (${fmt(n / s, 0)}/s)`);
      }
    },
    (paths) => {
      for (const p of paths) {
        const abs = join(data, p);
        const folder = dirname(abs);
        if (!made.has(folder)) {
          mkdirSync(folder, { recursive: true });
          made.add(folder);
        }
        if (++links % 60_000 === 0) {
          template = `${first}.${links}`;
          copyFileSync(first, template);
        }
        linkSync(template, abs);
      }
    },
  );
  const fillSeconds = (performance.now() - started) / 1000;

  const t = performance.now();
  server = await startPacsServer({ dir, db, startTimeoutMs: 3_600_000 });
  const startSeconds = (performance.now() - t) / 1000;
  try {
    const fullRate = median(await ingestRates(server, fullFolders, o.objects));
    const patients = Math.floor(studies / 2);
    const patientId = await latency(server, o.queries, (i) => ({
      ...returnKeys,
      PatientID: patientIdOf(((i * 7919) % patients) * 2),
    }));
    const accession = await latency(server, o.queries, (i) => ({
      ...returnKeys,
      AccessionNumber: accessionOf((i * 104729) % studies),
    }));
    return {
      engine: name,
      emptyRate,
      fullRate,
      instances: indexed,
      fillSeconds,
      startSeconds,
      patientId,
      accession,
    };
  } finally {
    await server.stop();
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const o = {
    instances: numberArg(argv, '--instances', 1_000_000),
    objects: numberArg(argv, '--objects', 500),
    rounds: numberArg(argv, '--rounds', 3),
    queries: numberArg(argv, '--queries', 200),
  };
  const wanted = (arg(argv, '--engines') ?? 'sqlite,postgres').split(',');
  const engines: Array<'sqlite' | 'postgres'> = [];
  if (wanted.includes('sqlite')) engines.push('sqlite');
  if (wanted.includes('postgres')) {
    if (await pgReachable()) engines.push('postgres');
    else console.log(`(PostgreSQL is not reachable at ${PG_URL}: SQLite only)`);
  }
  await checkBulkFill(SHAPE);
  const schema = `pacs_bench_scale_${process.pid}`;
  const work = await mkdtemp(join(tmpdir(), 'pacs-bench-scale-'));
  const figures: EngineFigures[] = [];
  try {
    for (const e of engines) figures.push(await runEngine(e, work, o, schema));
  } finally {
    rmSync(work, { recursive: true, force: true });
    if (engines.includes('postgres')) {
      await dropPgSchema(schema);
    }
  }

  console.log('');
  printPeers([
    {
      name: 'sender',
      config: `DCMTK storescu, TCP_NODELAY=1, ${o.objects} objects 64x64 over one association per round, process start included`,
    },
    {
      name: 'pacs server',
      config: 'node bin/pacs server, defaults (fsync), the engine below; the fill is not measured as ingest',
    },
    {
      name: 'C-FIND client',
      config: `our SCU library (dist/src), persistent: one association, ${o.queries} Study Root STUDY queries`,
    },
  ]);
  console.log(
    `\n${fmt(o.instances, 0)} instances (2 series x 5 instances per study), median of ${o.rounds} round(s)`,
  );
  printTable(
    [
      'engine',
      'indexed',
      'fill s',
      'start s',
      'ingest empty/s',
      'ingest full/s',
      'full/empty',
      'PatientID ms med/p95',
      'Accession ms med/p95',
    ],
    figures.map((f) => [
      f.engine,
      fmt(f.instances, 0),
      fmt(f.fillSeconds, 0),
      fmt(f.startSeconds, 1),
      fmt(f.emptyRate, 0),
      fmt(f.fullRate, 0),
      ratio(f.fullRate / f.emptyRate),
      `${fmt(f.patientId.median)} / ${fmt(f.patientId.p95)} (${f.patientId.matches})`,
      `${fmt(f.accession.median)} / ${fmt(f.accession.p95)} (${f.accession.matches})`,
    ]),
  );
  const t = new Targets(`issue 11 section 4, ${fmt(o.instances, 0)} instances`);
  const ms = (v: number): string => `${fmt(v)} ms`;
  for (const f of figures) {
    t.ratio(`${f.engine}: ingest full >= 0.9x empty`, f.fullRate, f.emptyRate, 0.9);
    t.add({
      what: `${f.engine}: C-FIND exact Patient ID p95 < 20 ms`,
      measured: f.patientId.p95,
      op: '<',
      threshold: 20,
      show: ms,
    });
    t.add({
      what: `${f.engine}: C-FIND exact Accession Number p95 < 20 ms`,
      measured: f.accession.p95,
      op: '<',
      threshold: 20,
      show: ms,
    });
  }
  const sqlite = figures.find((f) => f.engine === 'SQLite');
  const postgres = figures.find((f) => f.engine === 'PostgreSQL');
  t.ratio('PostgreSQL ingest (full) >= 0.8x SQLite', postgres?.fullRate, sqlite?.fullRate, 0.8);
  t.print();
}

runMain('bench:scale', main);
