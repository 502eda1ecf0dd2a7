/**
 * Worklist query latency with 10,000 scheduled items, side by side with DCMTK's wlmscpfs holding
 * the same items (one *.wl file each, as it keeps them). Each query is what a modality does: open
 * an association, one Modality Worklist C-FIND, read every answer, release. The client is our SCU
 * for both servers; our server runs in a child process (this script with --serve) on SQLite and,
 * when it is reachable, on PostgreSQL.
 *
 * Run: npm run bench:worklist  (or node dist/bench/worklist.js [--items N] [--runs N] [--pg URL])
 * The items are written to a temporary folder, removed at the end.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openWorklistStore } from '../src/archive/worklist/open.js';
import { DataSet } from '../src/dicom/dataset.js';
import { TAG } from '../src/dicom/dictionary.js';
import { EXPLICIT_VR_LE } from '../src/dicom/uid.js';
import { encodePart10 } from '../src/dicom/writer.js';
import { ApplicationEntity } from '../src/network/ae.js';
import {
  buildWorklistItem,
  prepareWorklistItem,
  type WorklistItemFields,
} from '../src/services/worklist/model.js';
import { worklistService } from '../src/services/worklist/scp.js';
import {
  queryWorklist,
  WORKLIST_FIND_CONTEXT,
  withModalityReturnKeys,
} from '../src/services/worklist/scu.js';
import {
  arg as argOf,
  dropPgSchema,
  freePort,
  HOST,
  median,
  PG_URL,
  pgReachable,
  printPeers,
  printTable,
  spawnPeer,
  stopProcess,
  waitForPort,
} from './common.js';

const SELF = fileURLToPath(import.meta.url);
const argv = process.argv.slice(2);
const arg = (name: string): string | undefined => argOf(argv, name);

// --- server mode: node worklist.js --serve URL PORT -----------------------------------------------

if (argv[0] === '--serve') {
  const [, url = '', port = '0'] = argv;
  const { store } = await openWorklistStore(url);
  const server = await new ApplicationEntity({ aeTitle: 'PACS' })
    .addService(worklistService({ worklist: store }))
    .listen({ port: Number(port), host: HOST });
  process.stdout.write(`listening ${server.address?.port}\n`);
  await new Promise(() => undefined);
}

// --- items ---------------------------------------------------------------------------------------

const FAMILY = [
  'SMITH',
  'JONES',
  'MULLER',
  'GARCIA',
  'ROSSI',
  'DUBOIS',
  'NOVAK',
  'TANAKA',
  'SILVA',
  'KOWALSKI',
];
const GIVEN = ['ANNA', 'JOHN', 'MARIA', 'PETER', 'LENA', 'OMAR', 'YUKI', 'LUCA', 'SARA', 'IVAN'];
const MODALITIES = ['CT', 'MR', 'US', 'CR', 'DX', 'NM', 'MG', 'XA'];
const STATIONS = 40;
const DAYS = 50;

/** Item i: 10 name families x 10 given names x ..., 40 stations (some with two AE titles), 50 days. */
function itemFields(i: number): WorklistItemFields {
  const day = new Date(Date.UTC(2024, 0, 1 + (i % DAYS)));
  const date = day.toISOString().slice(0, 10).replaceAll('-', '');
  const station = i % STATIONS;
  const minutes = 7 * 60 + ((i * 7) % (12 * 60));
  return {
    patientName: `${FAMILY[i % 10]}${Math.floor(i / 100)}^${GIVEN[Math.floor(i / 10) % 10]}`,
    patientId: `PID${String(i).padStart(6, '0')}`,
    accessionNumber: `ACC${String(i).padStart(7, '0')}`,
    studyInstanceUid: `1.2.826.0.1.3680043.8.1055.9.${i + 1}`,
    requestedProcedureId: `RP${i}`,
    requestedProcedureDescription: 'ROUTINE EXAM',
    modality: MODALITIES[station % MODALITIES.length] as string,
    stationAeTitle: station % 5 === 0 ? [`STATION${station}`, `BACKUP${station}`] : `STATION${station}`,
    stationName: `ROOM${station}`,
    startDate: date,
    startTime: `${String(Math.floor(minutes / 60)).padStart(2, '0')}${String(minutes % 60).padStart(2, '0')}00`,
    stepId: `SPS${i}`,
    stepDescription: 'ROUTINE',
    performingPhysicianName: `DOC^${GIVEN[i % 10]}`,
    status: 'SCHEDULED',
  };
}

// --- queries -------------------------------------------------------------------------------------

interface Query {
  readonly name: string;
  readonly build: () => DataSet;
  readonly runs?: number;
}

function stepQuery(keys: Record<string, string>, top: Record<string, string> = {}): DataSet {
  const ds = new DataSet();
  for (const [k, v] of Object.entries(top)) ds.setString(TAG[k as keyof typeof TAG], v);
  const step = new DataSet(ds);
  for (const [k, v] of Object.entries(keys)) step.setString(TAG[k as keyof typeof TAG], v.split('\\'));
  ds.setSequence(TAG.ScheduledProcedureStepSequence, [step]);
  return withModalityReturnKeys(ds);
}

const QUERIES: readonly Query[] = [
  {
    name: "a station's steps of one day",
    build: () =>
      stepQuery({ ScheduledStationAETitle: 'STATION7', ScheduledProcedureStepStartDate: '20240108' }),
  },
  {
    name: 'one modality, one week, 08:00-12:00',
    build: () =>
      stepQuery({
        Modality: 'MR',
        ScheduledProcedureStepStartDate: '20240108-20240114',
        ScheduledProcedureStepStartTime: '080000-120000',
      }),
  },
  { name: 'patient name prefix (SMITH1*)', build: () => stepQuery({}, { PatientName: 'SMITH1*' }) },
  { name: 'accession number', build: () => stepQuery({}, { AccessionNumber: 'ACC0004242' }) },
  { name: 'every item (10,000 answers)', build: () => stepQuery({}), runs: 3 },
];

// --- measuring -----------------------------------------------------------------------------------

async function once(
  port: number,
  calledAeTitle: string,
  query: DataSet,
): Promise<{ ms: number; matches: number }> {
  const started = performance.now();
  const connected = await new ApplicationEntity({ aeTitle: 'BENCHSCU', maxPduLength: 256 * 1024 }).connect({
    host: HOST,
    port,
    calledAeTitle,
    contexts: [WORKLIST_FIND_CONTEXT],
  });
  if (!connected.ok) throw connected.error;
  const result = await queryWorklist(connected.value, query).outcome;
  await connected.value.release();
  if (!result.ok) throw result.error;
  return { ms: performance.now() - started, matches: result.value.matches };
}

async function measure(
  port: number,
  aet: string,
  q: Query,
  runs: number,
): Promise<{ ms: number; matches: number }> {
  await once(port, aet, q.build()); // warm-up
  const times: number[] = [];
  let matches = 0;
  for (let i = 0; i < (q.runs ?? runs); i++) {
    const r = await once(port, aet, q.build());
    times.push(r.ms);
    matches = r.matches;
  }
  return { ms: median(times), matches };
}

function waitForLine(child: ChildProcess, pattern: RegExp): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no ${pattern} from the child: ${out}`)), 60_000);
    const on = (d: Buffer): void => {
      out += d.toString();
      const m = pattern.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    child.stdout?.on('data', on);
    child.stderr?.on('data', on);
    child.on('exit', (code) => reject(new Error(`child exited (${code}): ${out}`)));
  });
}

async function main(): Promise<void> {
  const count = Number(arg('--items') ?? 10_000);
  const runs = Number(arg('--runs') ?? 15);
  const schema = `pacs_bench_wl_${process.pid}`;
  const pgBase = arg('--pg') ?? process.env['PACS_TEST_PG_URL'] ?? PG_URL;
  const work = await mkdtemp(join(tmpdir(), 'pacs-bench-worklist-'));
  const children: ChildProcess[] = [];
  try {
    // 1. The items: .wl files for wlmscpfs, the index for us.
    const db = join(work, 'wlistdb', 'BENCH');
    await mkdir(db, { recursive: true });
    await writeFile(join(db, 'lockfile'), '');
    const items = [];
    for (let i = 0; i < count; i++) {
      const ds = buildWorklistItem(itemFields(i));
      await writeFile(
        join(db, `item${i}.wl`),
        encodePart10(ds, EXPLICIT_VR_LE, {
          mediaStorageSopClassUid: '1.2.276.0.7230010.3.1.0.1',
          mediaStorageSopInstanceUid: `1.2.3.${i + 1}`,
        }),
      );
      const prepared = prepareWorklistItem(ds);
      if (!('items' in prepared)) throw new Error(prepared.problems.join('; '));
      items.push(...prepared.items);
    }
    const targets: Array<{ name: string; url: string }> = [
      { name: 'ours, SQLite', url: `sqlite:${join(work, 'index.sqlite')}` },
    ];
    if (await pgReachable(pgBase))
      targets.push({
        name: 'ours, PostgreSQL',
        url: `${pgBase}${pgBase.includes('?') ? '&' : '?'}schema=${schema}`,
      });
    else process.stdout.write(`(PostgreSQL at ${pgBase} is not reachable: SQLite only)\n`);
    for (const t of targets) {
      const { store, close } = await openWorklistStore(t.url, { durability: 'none' });
      const started = performance.now();
      await store.putItems(items);
      process.stdout.write(
        `${t.name}: ${count} items imported in ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
      );
      await close();
    }

    // 2. The servers.
    const servers: Array<{ name: string; port: number; aet: string }> = [];
    for (const t of targets) {
      const child = spawnPeer(process.execPath, [SELF, '--serve', t.url, '0'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      const m = await waitForLine(child, /listening (\d+)/);
      servers.push({ name: t.name, port: Number(m[1]), aet: 'PACS' });
    }
    const dcmtkPort = await freePort();
    // wlmscpfs is DCMTK: spawnPeer gives it TCP_NODELAY=1 (without it each response waits 40 ms).
    const wlmscpfs = spawnPeer('wlmscpfs', ['-dfp', join(work, 'wlistdb'), String(dcmtkPort)], {
      stdio: 'ignore',
    });
    children.push(wlmscpfs);
    await waitForPort(dcmtkPort, wlmscpfs, 'wlmscpfs');
    servers.push({ name: 'DCMTK wlmscpfs', port: dcmtkPort, aet: 'BENCH' });

    // 3. The queries.
    process.stdout.write(
      `\nWorklist C-FIND latency, ${count} items (median of ${runs} runs; association + query + release)\n\n`,
    );
    const header = ['query', 'matches', ...servers.map((s) => s.name), 'wlmscpfs / ours (SQLite)'];
    const rows: string[][] = [];
    for (const q of QUERIES) {
      const results = [];
      for (const s of servers) results.push(await measure(s.port, s.aet, q, runs));
      const counts = new Set(results.map((r) => r.matches));
      const ours = results[0]?.ms ?? Number.NaN;
      const dcmtk = results[results.length - 1]?.ms ?? Number.NaN;
      rows.push([
        q.name,
        counts.size === 1
          ? String(results[0]?.matches)
          : `DIFFER: ${results.map((r) => r.matches).join('/')}`,
        ...results.map((r) => `${r.ms.toFixed(1)} ms`),
        `${(dcmtk / ours).toFixed(1)}x`,
      ]);
    }
    printPeers([
      ...servers.slice(0, -1).map((s) => ({
        name: s.name,
        config: 'our worklist SCP (ApplicationEntity + worklistService) in a child process',
      })),
      { name: 'DCMTK wlmscpfs', config: 'DCMTK wlmscpfs over one .wl file per item, TCP_NODELAY=1' },
      {
        name: 'client',
        config: 'our worklist SCU library, a new association per query (what a modality does)',
      },
    ]);
    printTable(header, rows);
  } finally {
    for (const c of children) await stopProcess(c);
    await rm(work, { recursive: true, force: true });
    if (await pgReachable(pgBase)) await dropPgSchema(schema, pgBase);
  }
}

await main();
