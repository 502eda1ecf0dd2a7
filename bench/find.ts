/**
 * C-FIND benchmark: latency (median and p95) of STUDY-level Study Root queries, side by side with
 * DCMTK's dcmqrscp holding the same data, in one run:
 *  1. an exact Patient ID (two studies),
 *  2. a Patient Name wild card ("SMITH*": one family name in twenty),
 *  3. a one-month Study Date range,
 *  4. all studies.
 * Studies have 2 series of 5 instances, patients 2 studies. Sizes: 2,000 instances side by side
 * with dcmqrscp (its index file holds at most 500 studies and 32 MiB), then 10,000 instances, and
 * 100,000 more with PACS_BENCH_FIND_100K=1. Our index is filled directly (C-FIND reads only the
 * index) on SQLite and, when PostgreSQL answers at PACS_BENCH_PG_URL (default the test database),
 * on PostgreSQL in a schema of its own; our SCP runs in a child process (`--serve`). dcmqrscp gets
 * the same objects as small Part-10 files registered with dcmqridx. One SCU (ours, in this
 * process) asks every server, each query on one open association, so the figures compare servers.
 *
 * Run: npm run bench:find  (or node dist/bench/find.js [--instances N] [--compare N] [--repeat N])
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import pg from 'pg';
import type { ArchiveIndex } from '../src/archive/index/archive-index.js';
import { describeInstance } from '../src/archive/index/extract.js';
import { openIndex } from '../src/archive/index/open.js';
import { DataSet } from '../src/dicom/dataset.js';
import { TAG } from '../src/dicom/dictionary.js';
import { EXPLICIT_VR_LE } from '../src/dicom/uid.js';
import { encodePart10 } from '../src/dicom/writer.js';
import { ApplicationEntity } from '../src/network/ae.js';
import type { DimseAssociation } from '../src/network/dimse.js';
import { findService } from '../src/services/query-retrieve/find-scp.js';
import { find, findContexts } from '../src/services/query-retrieve/find-scu.js';
import { STUDY_ROOT } from '../src/services/query-retrieve/models.js';
import { makeCtDataSet } from '../test/helpers/synthetic.js';

const HOST = '127.0.0.1';
const SELF = fileURLToPath(import.meta.url);
const PG_URL = process.env['PACS_BENCH_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

interface Options {
  /** Instances of the main run (ours only). */
  readonly instances: number;
  /** Instances of the run side by side with dcmqrscp (0: none). */
  readonly compare: number;
  readonly repeat: number;
}

function arg(argv: readonly string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

// --- the data ---------------------------------------------------------------------------------------

const FAMILY = [
  'SMITH',
  'JONES',
  'BROWN',
  'TAYLOR',
  'WILSON',
  'DAVIES',
  'EVANS',
  'THOMAS',
  'JOHNSON',
  'ROBERTS',
  'WALKER',
  'WRIGHT',
  'ROBINSON',
  'THOMPSON',
  'WHITE',
  'HUGHES',
  'EDWARDS',
  'GREEN',
  'HALL',
  'WOOD',
];
const GIVEN = ['JOHN', 'MARY', 'PETER', 'ANNA', 'PAUL', 'EMMA', 'MARK', 'SARAH', 'LUKE', 'JANE', 'ADAM'];
const MODALITIES = ['CT', 'MR', 'US', 'CR'];
const SERIES_PER_STUDY = 2;
const INSTANCES_PER_SERIES = 5;
const STUDIES_PER_PATIENT = 2;

interface Instance {
  readonly ds: DataSet;
}

/** The i-th study's instances: patient i/2, dates spread over two years, names uppercase (dcmqrscp matches case-sensitively). */
function* studyInstances(study: number): Generator<Instance> {
  const patient = Math.floor(study / STUDIES_PER_PATIENT);
  const day = new Date(Date.UTC(2023, 0, 1) + ((study * 7919) % 730) * 86_400_000);
  const date = day.toISOString().slice(0, 10).replace(/-/g, '');
  const studyUid = `1.2.826.0.1.3680043.8.498.9.${study + 1}`;
  for (let s = 0; s < SERIES_PER_STUDY; s++)
    for (let i = 0; i < INSTANCES_PER_SERIES; i++) {
      const ds = makeCtDataSet({
        patientId: `PID${String(patient).padStart(6, '0')}`,
        patientName: `${FAMILY[patient % FAMILY.length]}^${GIVEN[patient % GIVEN.length]}`,
        studyInstanceUid: studyUid,
        seriesInstanceUid: `${studyUid}.${s + 1}`,
        sopInstanceUid: `${studyUid}.${s + 1}.${i + 1}`,
        accessionNumber: `ACC${String(study).padStart(7, '0')}`,
        studyDate: date,
        modality: MODALITIES[(study + s) % MODALITIES.length] ?? 'CT',
        seriesNumber: s + 1,
        instanceNumber: i + 1,
        rows: 4,
        columns: 4,
        studyDescription: `STUDY ${study % 50}`,
      });
      yield { ds };
    }
}

async function fillIndex(index: ArchiveIndex, studies: number): Promise<void> {
  const BATCH = 20;
  for (let first = 0; first < studies; first += BATCH) {
    await index.withTransaction(async (tx) => {
      for (let st = first; st < Math.min(studies, first + BATCH); st++)
        for (const { ds } of studyInstances(st)) {
          const e = describeInstance(ds, {
            transferSyntaxUid: EXPLICIT_VR_LE,
            path: `objects/${randomBytes(16).toString('hex')}.dcm`,
            size: 2000,
            receivedAt: new Date(),
            callingAet: 'BENCH',
          });
          if (!e.ok) throw e.error;
          await tx.insertInstance(e.value.record, e.value.headers);
        }
    });
  }
}

function writeFiles(dir: string, studies: number): string[] {
  mkdirSync(dir, { recursive: true });
  const out: string[] = [];
  for (let st = 0; st < studies; st++)
    for (const { ds } of studyInstances(st)) {
      const p = join(dir, `${ds.string(TAG.SOPInstanceUID)}.dcm`);
      writeFileSync(p, encodePart10(ds, EXPLICIT_VR_LE));
      out.push(p);
    }
  return out;
}

// --- processes ---------------------------------------------------------------------------------------

/** `--serve PORT --db URL`: our C-FIND SCP over an index, until killed. */
async function serve(port: number, url: string): Promise<void> {
  const { index } = await openIndex(url);
  await new ApplicationEntity({ aeTitle: 'PACS' })
    .addService(findService({ archive: { index } }))
    .listen({ port, host: HOST });
  process.stdout.write('ready\n');
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function portOpen(port: number, child: ChildProcess, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${what} exited with code ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: HOST, port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what} does not listen on ${port}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function run(cmd: string, args: readonly string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout?.on('data', (d) => (output += d));
    child.stderr?.on('data', (d) => (output += d));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
  });
}

async function pgReachable(): Promise<boolean> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    await c.end();
    return true;
  } catch {
    return false;
  }
}

// --- measuring -------------------------------------------------------------------------------------------

interface Query {
  readonly name: string;
  readonly keys: () => DataSet;
  readonly repeat: number;
}

function returnKeys(): DataSet {
  const ds = new DataSet();
  for (const t of [
    TAG.PatientName,
    TAG.PatientID,
    TAG.StudyDate,
    TAG.StudyTime,
    TAG.AccessionNumber,
    TAG.StudyID,
    TAG.StudyDescription,
    TAG.StudyInstanceUID,
  ])
    ds.setString(t, '');
  return ds;
}

function queries(studies: number, repeat: number): Query[] {
  const patients = Math.ceil(studies / STUDIES_PER_PATIENT);
  let n = 0;
  return [
    {
      name: 'exact PatientID',
      repeat,
      keys: () => {
        const ds = returnKeys();
        ds.setString(TAG.PatientID, `PID${String((n++ * 7907) % patients).padStart(6, '0')}`);
        return ds;
      },
    },
    {
      name: 'PatientName SMITH*',
      repeat: Math.max(10, Math.round(repeat / 5)),
      keys: () => {
        const ds = returnKeys();
        ds.setString(TAG.PatientName, 'SMITH*');
        return ds;
      },
    },
    {
      name: 'StudyDate one month',
      repeat: Math.max(10, Math.round(repeat / 5)),
      keys: () => {
        const ds = returnKeys();
        ds.setString(TAG.StudyDate, '20230601-20230630');
        return ds;
      },
    },
    {
      name: 'all studies',
      repeat: Math.max(5, Math.round(repeat / 20)),
      keys: returnKeys,
    },
  ];
}

interface Figure {
  readonly median: number;
  readonly p95: number;
  readonly matches: number;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

async function measure(port: number, calledAeTitle: string, q: Query): Promise<Figure> {
  const ae = new ApplicationEntity({ aeTitle: 'BENCH', maxPduLength: 65536 });
  const opened = await ae.connect({ host: HOST, port, calledAeTitle, contexts: findContexts([STUDY_ROOT]) });
  if (!opened.ok) throw opened.error;
  const assoc: DimseAssociation = opened.value;
  const once = async (): Promise<{ ms: number; matches: number }> => {
    const t = process.hrtime.bigint();
    const r = await find(assoc, q.keys(), { sopClassUid: STUDY_ROOT.sopClasses.find, level: 'STUDY' })
      .outcome;
    const ms = Number(process.hrtime.bigint() - t) / 1e6;
    if (!r.ok) throw r.error;
    if (r.value.status !== 0) throw new Error(`${q.name}: status 0x${r.value.status.toString(16)}`);
    return { ms, matches: r.value.matches };
  };
  for (let i = 0; i < Math.min(5, q.repeat); i++) await once(); // warm-up (JIT, caches)
  const times: number[] = [];
  let matches = 0;
  for (let i = 0; i < q.repeat; i++) {
    const r = await once();
    times.push(r.ms);
    matches = r.matches;
  }
  await assoc.release();
  times.sort((a, b) => a - b);
  return { median: percentile(times, 50), p95: percentile(times, 95), matches };
}

const fmt = (n: number): string => (n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0));

interface Server {
  readonly name: string;
  readonly port: number;
  readonly aet: string;
}

/** One size: the indexes filled and served, dcmqrscp too when asked, every query on each; prints a table. */
async function runSize(
  instances: number,
  withDcmqrscp: boolean,
  repeat: number,
  pgOk: boolean,
): Promise<void> {
  const perStudy = SERIES_PER_STUDY * INSTANCES_PER_SERIES;
  const studies = Math.ceil(instances / perStudy);
  const work = mkdtempSync(join(tmpdir(), 'pacs-bench-find-'));
  const children: ChildProcess[] = [];
  const schema = `pacs_bench_${randomBytes(4).toString('hex')}`;
  process.stdout.write(
    `\n${instances.toLocaleString('en')} instances (${studies.toLocaleString('en')} studies)\n`,
  );
  try {
    const servers: Server[] = [];
    const engines: { name: string; url: string }[] = [
      { name: 'ours, SQLite', url: `sqlite:${join(work, 'index.sqlite')}` },
    ];
    if (pgOk)
      engines.push({
        name: 'ours, PostgreSQL',
        url: `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}`,
      });
    for (const e of engines) {
      const t = Date.now();
      const { index } = await openIndex(e.url, { durability: 'none' });
      await fillIndex(index, studies);
      // Table statistics as a running server has them (PostgreSQL's autovacuum, SQLite's optimize).
      await sql`analyze`.execute(index.db);
      const count = await index.countInstances();
      await index.close();
      process.stdout.write(
        `  ${e.name}: ${count} instances indexed in ${((Date.now() - t) / 1000).toFixed(1)} s\n`,
      );
      const port = await freePort();
      const child = spawn(process.execPath, [SELF, '--serve', String(port), '--db', e.url], {
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      children.push(child);
      await portOpen(port, child, e.name);
      servers.push({ name: e.name, port, aet: 'PACS' });
    }
    if (withDcmqrscp) servers.push(await startDcmqrscp(work, studies, children));

    process.stdout.write(`  C-FIND latency, Study Root STUDY level; ms median / p95 (matches)\n`);
    const dcmqrscp = servers.findIndex((s) => s.name === 'dcmqrscp');
    const header = ['query', ...servers.map((s) => s.name), ...(dcmqrscp >= 0 ? ['dcmqrscp / SQLite'] : [])];
    const rows: string[][] = [];
    for (const q of queries(studies, repeat)) {
      const row = [q.name];
      const figures: Figure[] = [];
      for (const s of servers) {
        const f = await measure(s.port, s.aet, q);
        figures.push(f);
        row.push(`${fmt(f.median)} / ${fmt(f.p95)} (${f.matches})`);
      }
      const ours = figures[0];
      const theirs = dcmqrscp >= 0 ? figures[dcmqrscp] : undefined;
      if (ours && theirs) row.push(`${(theirs.median / ours.median).toFixed(1)}x`);
      rows.push(row);
    }
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
    const line = (cells: readonly string[]) =>
      `  ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ')}`.trimEnd();
    process.stdout.write(`${line(header)}\n${rows.map(line).join('\n')}\n`);
  } finally {
    for (const c of children) c.kill();
    if (pgOk) {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`drop schema if exists ${schema} cascade`);
      await c.end();
    }
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * dcmqrscp with the same objects, registered with dcmqridx. Its index file holds at most 500
 * studies and 32 MiB (DCMTK 3.6.7 caps both), so it takes part at the small size only.
 */
async function startDcmqrscp(work: string, studies: number, children: ChildProcess[]): Promise<Server> {
  const t = Date.now();
  const db = join(work, 'dcmqrscp');
  const files = writeFiles(db, studies);
  for (let i = 0; i < files.length; i += 1000) {
    const r = await run('dcmqridx', ['-q', db, ...files.slice(i, i + 1000)]);
    if (r.code !== 0) throw new Error(`dcmqridx failed: ${r.output.slice(0, 500)}`);
  }
  const port = await freePort();
  const cfg = join(work, 'dcmqrscp.cfg');
  writeFileSync(
    cfg,
    `NetworkTCPPort = ${port}\nMaxPDUSize = 65536\nMaxAssociations = 16\nHostTable BEGIN\nHostTable END\nVendorTable BEGIN\nVendorTable END\nAETable BEGIN\nDCMQRSCP ${db} RW (500, 1024mb) ANY\nAETable END\n`,
  );
  const child = spawn('dcmqrscp', ['-c', cfg], { stdio: 'ignore' });
  children.push(child);
  await portOpen(port, child, 'dcmqrscp');
  process.stdout.write(
    `  dcmqrscp: ${files.length} files registered in ${((Date.now() - t) / 1000).toFixed(1)} s\n`,
  );
  return { name: 'dcmqrscp', port, aet: 'DCMQRSCP' };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const servePort = arg(argv, '--serve');
  if (servePort !== undefined) return serve(Number(servePort), arg(argv, '--db') ?? '');
  const big = process.env['PACS_BENCH_FIND_100K'] === '1';
  const o: Options = {
    instances: Number(arg(argv, '--instances') ?? 10_000),
    compare: Number(arg(argv, '--compare') ?? 2_000),
    repeat: Number(arg(argv, '--repeat') ?? 200),
  };
  const pgOk = await pgReachable();
  if (!pgOk) process.stdout.write(`PostgreSQL not reachable at ${PG_URL}: SQLite only\n`);
  const hasDcmqrscp = existsSync('/usr/bin/dcmqrscp') && existsSync('/usr/bin/dcmqridx');
  if (!hasDcmqrscp) process.stdout.write('dcmqrscp not installed: ours only\n');
  if (hasDcmqrscp && o.compare > 0) await runSize(o.compare, true, o.repeat, pgOk);
  await runSize(o.instances, false, o.repeat, pgOk);
  if (big) await runSize(100_000, false, o.repeat, pgOk);
}

await main();
