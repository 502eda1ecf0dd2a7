/**
 * Load and soak: S concurrent DCMTK storescu senders (each sends a new small study of a few
 * objects per association, again and again) mixed with findscu (STUDY queries) and movescu (a
 * stored study to a storescp peer) against one `pacs server` (a child process: its own data folder
 * and SQLite, or `--db postgres://...`, `--workers N`). At the end it reports:
 *   - failures (must be 0): a tool that exits non-zero or a response other than Success;
 *   - lost objects (must be 0): objects storescu saw acknowledged that the index does not hold;
 *   - latency percentiles of each kind of association (process start included);
 *   - resident memory of the server (primary and workers) over time, as a PNG line chart.
 *
 * Run: npm run bench:soak  (60 s, 20 senders), or
 *      node dist/bench/soak.js --minutes 30 --senders 100 [--workers 2] [--db postgres://...] [--png FILE]
 *        [--seconds S] [--finders N] [--movers N]  (--finders 0 --movers 0: ingest only, for scaling)
 * test/server/soak.test.ts runs a 10 s, 4-sender version and checks failures and losses, not times.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import { acknowledgedIndexCheck, sopInstanceUidOf, writeCtSeries } from './adapters.js';
import {
  arg,
  BENCH_DICOM_ACCESS,
  freePort,
  HOST,
  PACS_BIN,
  percentile,
  residentBytes,
  run,
  spawnPeer,
  stopProcess,
  waitForPort,
} from './common.js';

export interface SoakOptions {
  readonly seconds: number;
  readonly senders: number;
  /** Objects per storescu association (default 5). */
  readonly objectsPerAssociation?: number;
  /** findscu and movescu loops (default: one of each per 10 senders, at least one). */
  readonly finders?: number;
  readonly movers?: number;
  readonly workers?: number;
  /** Index URL (default SQLite in the data folder). */
  readonly db?: string;
  /** Where the memory plot goes (default: none). */
  readonly png?: string;
  /** Progress lines (default none). */
  readonly log?: (line: string) => void;
}

export interface Percentiles {
  readonly count: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
}

export interface SoakReport {
  readonly seconds: number;
  readonly failures: readonly string[];
  readonly objectsAcknowledged: number;
  readonly indexRows: number;
  /** Acknowledged objects the index does not hold. */
  readonly lost: number;
  readonly latencyMs: { readonly store: Percentiles; readonly find: Percentiles; readonly move: Percentiles };
  /** [seconds since start, resident bytes of the server processes]. */
  readonly memory: ReadonlyArray<readonly [number, number]>;
}

// ---------------------------------------------------------------------------------------------
// Processes.

/** Starts a child (TCP_NODELAY=1) and resolves once its output matches `ready`. */
function startProcess(cmd: string, args: readonly string[], ready: RegExp): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawnPeer(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const timer = setTimeout(() => reject(new Error(`${cmd} did not start:\n${output}`)), 60_000);
    const onData = (d: Buffer): void => {
      output += d.toString();
      if (output.length > 100_000) output = output.slice(-50_000);
      if (ready.test(output)) {
        clearTimeout(timer);
        resolve(child);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} exited (${code}) before it was ready:\n${output}`));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Figures.

function percentiles(values: readonly number[]): Percentiles {
  const at = (p: number): number => (values.length === 0 ? 0 : percentile(values, p));
  return {
    count: values.length,
    p50: at(50),
    p95: at(95),
    p99: at(99),
    max: values.length === 0 ? 0 : Math.max(...values),
  };
}

/** The files storescu -v reports acknowledged with Success, and any other response. */
function storeResponses(output: string): { acked: string[]; failed: string[] } {
  const acked: string[] = [];
  const failed: string[] = [];
  let current: string | undefined;
  for (const line of output.split('\n')) {
    const sending = /Sending file: (.*)$/.exec(line);
    if (sending) {
      current = sending[1]?.trim();
      continue;
    }
    const response = /Received Store Response \(([^)]*)\)/.exec(line);
    if (response && current !== undefined) {
      if (response[1] === 'Success') acked.push(current);
      else failed.push(`${current}: ${response[1]}`);
      current = undefined;
    }
  }
  return { acked, failed };
}

// ---------------------------------------------------------------------------------------------
// The memory plot: a line chart drawn into an RGB bitmap, encoded by pngjs.

/** PNG of an RGB bitmap (width * height * 3 bytes, rows top to bottom): 8-bit RGB, no filter. */
export function encodePng(width: number, height: number, rgb: Uint8Array): Buffer {
  const png = new PNG({ width, height });
  png.data = Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength);
  return PNG.sync.write(png, {
    colorType: 2,
    inputColorType: 2,
    inputHasAlpha: false,
    bitDepth: 8,
    filterType: 0,
  });
}

/**
 * A line chart of (x, y) points: white background, grey axes and horizontal grid lines (one per
 * 64 MiB when y is bytes, else four), the line in blue. No text: the report prints the scales.
 */
export function lineChartPng(
  points: ReadonlyArray<readonly [number, number]>,
  width = 800,
  height = 400,
): Buffer {
  const rgb = new Uint8Array(width * height * 3).fill(255);
  const set = (x: number, y: number, c: readonly [number, number, number]): void => {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    const i = (Math.round(y) * width + Math.round(x)) * 3;
    rgb[i] = c[0];
    rgb[i + 1] = c[1];
    rgb[i + 2] = c[2];
  };
  const line = (
    x0: number,
    y0: number,
    x1: number,
    y1: number,
    c: readonly [number, number, number],
  ): void => {
    const steps = Math.max(1, Math.ceil(Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0))));
    for (let i = 0; i <= steps; i++) set(x0 + ((x1 - x0) * i) / steps, y0 + ((y1 - y0) * i) / steps, c);
  };
  const margin = 20;
  const left = margin;
  const right = width - margin;
  const top = margin;
  const bottom = height - margin;
  const maxX = Math.max(1, ...points.map((p) => p[0]));
  const maxY = Math.max(1, ...points.map((p) => p[1])) * 1.1;
  const grid: readonly [number, number, number] = [225, 225, 225];
  const step = maxY > 64 * 2 ** 20 ? 64 * 2 ** 20 : maxY / 4;
  for (let v = step; v < maxY; v += step) {
    const y = bottom - (v / maxY) * (bottom - top);
    line(left, y, right, y, grid);
  }
  const axis: readonly [number, number, number] = [90, 90, 90];
  line(left, bottom, right, bottom, axis);
  line(left, top, left, bottom, axis);
  const blue: readonly [number, number, number] = [30, 90, 200];
  const px = (p: readonly [number, number]): [number, number] => [
    left + (p[0] / maxX) * (right - left),
    bottom - (p[1] / maxY) * (bottom - top),
  ];
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1];
    const b = points[i];
    if (a === undefined || b === undefined) continue;
    const [x0, y0] = px(a);
    const [x1, y1] = px(b);
    line(x0, y0, x1, y1, blue);
    line(x0, y0 + 1, x1, y1 + 1, blue);
  }
  return encodePng(width, height, rgb);
}

// ---------------------------------------------------------------------------------------------
// The run.

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const log = options.log ?? (() => {});
  const perAssociation = options.objectsPerAssociation ?? 5;
  const finders = options.finders ?? Math.max(1, Math.round(options.senders / 10));
  const movers = options.movers ?? Math.max(1, Math.round(options.senders / 10));
  const work = await mkdtemp(join(tmpdir(), 'pacs-soak-'));
  const data = join(work, 'data');
  const sinkDir = join(work, 'sink');
  await mkdir(sinkDir);
  const children: ChildProcess[] = [];
  const failures: string[] = [];
  const acked = new Set<string>();
  const storedStudies: string[] = [];
  const latency = { store: [] as number[], find: [] as number[], move: [] as number[] };
  const memory: Array<[number, number]> = [];
  let sampler: NodeJS.Timeout | undefined;
  try {
    const sinkPort = await freePort();
    // The move destination keeps nothing (--ignore): the soak is about the server, not the disk.
    const sink = spawnPeer('storescp', ['--ignore', '-aet', 'SINK', String(sinkPort)], { stdio: 'ignore' });
    children.push(sink);
    await waitForPort(sinkPort, sink, 'storescp');
    const port = await freePort();
    const config = join(work, 'soak-config.json');
    await writeFile(config, JSON.stringify({ server: { dicom: BENCH_DICOM_ACCESS } }));
    const args = [
      PACS_BIN,
      'server',
      '--config',
      config,
      '--port',
      String(port),
      '--data',
      data,
      '--peer',
      `SINK=${HOST}:${sinkPort}`,
      '--log-level',
      'warn',
      '--max-associations',
      String(Math.max(100, options.senders + finders + movers + 10)),
      ...(options.db !== undefined ? ['--db', options.db] : []),
      ...(options.workers !== undefined ? ['--workers', String(options.workers)] : []),
    ];
    const server = await startProcess(process.execPath, args, /pacs: listening as /);
    children.push(server);
    const serverPid = server.pid ?? 0;
    const started = performance.now();
    const elapsed = () => (performance.now() - started) / 1000;
    const sample = async (): Promise<void> => {
      memory.push([elapsed(), residentBytes(serverPid, true)]);
    };
    await sample();
    sampler = setInterval(() => void sample(), Math.max(1000, (options.seconds * 1000) / 300));
    const deadline = started + options.seconds * 1000;
    log(
      `soak: ${options.senders} senders (${perAssociation} objects per association), ${finders} findscu and ${movers} movescu loops, ${options.seconds} s`,
    );

    const sender = async (n: number): Promise<void> => {
      for (let round = 0; performance.now() < deadline; round++) {
        const dir = join(work, `s${n}-${round}`);
        const study = `1.2.826.0.1.3680043.8.498.77.${n}.${round}`;
        const files = writeCtSeries(dir, perAssociation, {
          studyInstanceUid: study,
          patientId: `SOAK${n}`,
          patientName: `SOAK^${n}`,
          rows: 64,
          columns: 64,
        });
        const r = await run('storescu', ['-v', '-aec', 'PACS', HOST, String(port), ...files]);
        latency.store.push(r.ms);
        const { acked: ok, failed } = storeResponses(r.output);
        for (const f of failed) failures.push(`storescu: ${f}`);
        if (r.code !== 0)
          failures.push(`storescu exited ${r.code}: ${r.output.split('\n').slice(-3).join(' ')}`);
        for (const file of ok) {
          const uid = await sopInstanceUidOf(file);
          if (uid !== undefined) acked.add(uid);
        }
        if (ok.length === files.length) storedStudies.push(study);
        await rm(dir, { recursive: true, force: true });
      }
    };
    const finder = async (n: number): Promise<void> => {
      for (let i = 0; performance.now() < deadline; i++) {
        const r = await run('findscu', [
          '-S',
          '-aec',
          'PACS',
          '-k',
          'QueryRetrieveLevel=STUDY',
          '-k',
          `PatientID=SOAK${(n + i) % Math.max(1, options.senders)}`,
          '-k',
          'StudyInstanceUID',
          '-k',
          'NumberOfStudyRelatedInstances',
          HOST,
          String(port),
        ]);
        latency.find.push(r.ms);
        if (r.code !== 0 || /\bE: /.test(r.output))
          failures.push(`findscu exited ${r.code}: ${r.output.split('\n').slice(-3).join(' ')}`);
      }
    };
    const mover = async (n: number): Promise<void> => {
      for (let i = 0; performance.now() < deadline; i++) {
        const study = storedStudies[(n * 7 + i * 13) % Math.max(1, storedStudies.length)];
        if (study === undefined) {
          await new Promise((r) => setTimeout(r, 200));
          continue;
        }
        const r = await run('movescu', [
          '-S',
          '-aec',
          'PACS',
          '-aem',
          'SINK',
          '-k',
          'QueryRetrieveLevel=STUDY',
          '-k',
          `StudyInstanceUID=${study}`,
          HOST,
          String(port),
        ]);
        latency.move.push(r.ms);
        if (r.code !== 0 || /\bE: /.test(r.output))
          failures.push(`movescu exited ${r.code}: ${r.output.split('\n').slice(-3).join(' ')}`);
      }
    };
    let last = 0;
    const progress = setInterval(() => {
      const s = Math.round(elapsed());
      if (s - last >= 10) {
        last = s;
        log(`  ${s} s: ${acked.size} objects acknowledged, ${failures.length} failures`);
      }
    }, 1000);
    await Promise.all([
      ...Array.from({ length: options.senders }, (_, i) => sender(i)),
      ...Array.from({ length: finders }, (_, i) => finder(i)),
      ...Array.from({ length: movers }, (_, i) => mover(i)),
    ]);
    clearInterval(progress);
    clearInterval(sampler);
    sampler = undefined;
    await sample();
    const seconds = elapsed();
    await stopProcess(server);

    const { indexRows, lost } = await acknowledgedIndexCheck(
      options.db ?? `sqlite:${join(data, 'index.sqlite')}`,
      acked,
    );
    if (options.png !== undefined) await writeFile(options.png, lineChartPng(memory));
    return {
      seconds,
      failures,
      objectsAcknowledged: acked.size,
      indexRows,
      lost,
      latencyMs: {
        store: percentiles(latency.store),
        find: percentiles(latency.find),
        move: percentiles(latency.move),
      },
      memory,
    };
  } finally {
    if (sampler !== undefined) clearInterval(sampler);
    for (const c of children.reverse()) await stopProcess(c);
    await rm(work, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Command line.

async function main(argv: readonly string[]): Promise<void> {
  const minutes = arg(argv, '--minutes');
  const seconds = minutes !== undefined ? Number(minutes) * 60 : Number(arg(argv, '--seconds') ?? 60);
  const senders = Number(arg(argv, '--senders') ?? 20);
  const workers = arg(argv, '--workers');
  const db = arg(argv, '--db');
  const png = arg(argv, '--png') ?? join(process.cwd(), 'soak-memory.png');
  const finders = arg(argv, '--finders');
  const movers = arg(argv, '--movers');
  const report = await runSoak({
    seconds,
    senders,
    png,
    ...(finders !== undefined ? { finders: Number(finders) } : {}),
    ...(movers !== undefined ? { movers: Number(movers) } : {}),
    ...(workers !== undefined ? { workers: Number(workers) } : {}),
    ...(db !== undefined ? { db } : {}),
    log: (line) => process.stdout.write(`${line}\n`),
  });
  const mib = (b: number) => (b / 2 ** 20).toFixed(0);
  const row = (name: string, p: Percentiles) =>
    `  ${name.padEnd(6)} ${String(p.count).padStart(7)} ${[p.p50, p.p95, p.p99, p.max].map((v) => v.toFixed(0).padStart(7)).join(' ')}`;
  const rss = report.memory.map((m) => m[1]);
  process.stdout.write(
    [
      '',
      `duration ${report.seconds.toFixed(0)} s, ${senders} senders${workers !== undefined ? `, ${workers} workers` : ''}, index ${db === undefined ? 'SQLite' : 'PostgreSQL'}`,
      `objects acknowledged ${report.objectsAcknowledged} (${(report.objectsAcknowledged / report.seconds).toFixed(1)}/s), index rows ${report.indexRows}`,
      `lost objects ${report.lost} (must be 0)`,
      `failures ${report.failures.length} (must be 0)${report.failures.length > 0 ? `: ${report.failures.slice(0, 5).join('; ')}` : ''}`,
      'latency per association (ms, process start included):',
      '  kind     count     p50     p95     p99     max',
      row('store', report.latencyMs.store),
      row('find', report.latencyMs.find),
      row('move', report.latencyMs.move),
      `resident memory (server processes): start ${mib(rss[0] ?? 0)} MiB, max ${mib(Math.max(0, ...rss))} MiB, end ${mib(rss.at(-1) ?? 0)} MiB`,
      `plot: ${png} (x: 0 to ${report.seconds.toFixed(0)} s, y: 0 to ${mib(Math.max(1, ...rss) * 1.1)} MiB, grid every 64 MiB)`,
      '',
    ].join('\n'),
  );
  if (report.failures.length > 0 || report.lost > 0) process.exitCode = 1;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main(process.argv.slice(2));
}
