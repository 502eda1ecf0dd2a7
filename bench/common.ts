/**
 * The one harness of every bench: free ports, waiting for a port, spawning peers (each with
 * TCP_NODELAY=1, which every DCMTK program and Orthanc need: without it Debian's DCMTK waits for
 * the delayed ACK, 40 ms per DIMSE response), timing rounds (the median of several rounds in one
 * run), sampling a process's resident memory, the peers' configuration printed beside their
 * figures, and the targets printed with the measured ratio and MET / NOT MET.
 *
 * It starts the peers the benches compare: `pacs server` (bin/pacs, built by `npx tsc`), DCMTK's
 * storescp and dcmqrscp, and Orthanc from a generated configuration. Benches use only those
 * programs' command lines; what they take from src/ goes through bench/adapters.ts.
 */
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

export const HOST = '127.0.0.1';
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const PACS_BIN = join(ROOT, 'bin', 'pacs');
export const ORTHANC = '/usr/sbin/Orthanc';
/** The environment of every child: DCMTK (Orthanc is built on it) leaves Nagle on without TCP_NODELAY=1. */
export const PEER_ENV: NodeJS.ProcessEnv = { ...process.env, TCP_NODELAY: '1' };

// --- command line ------------------------------------------------------------------------------------

/** The value after `--name`, or undefined. */
export function arg(argv: readonly string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

export function numberArg(argv: readonly string[], name: string, fallback: number): number {
  const v = arg(argv, name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} ${v}: not a number`);
  return n;
}

/** Runs a bench's main: a failure is one line on stderr and exit code 1. */
export function runMain(name: string, main: () => Promise<void>): void {
  main().catch((e: unknown) => {
    console.error(`${name}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(1);
  });
}

// --- processes -----------------------------------------------------------------------------------------

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Resolves once something accepts TCP connections on the port; fails when `child` exits first. */
export async function waitForPort(
  port: number,
  child?: ChildProcess,
  what = `port ${port}`,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child && (child.exitCode !== null || child.signalCode !== null))
      throw new Error(`${what} exited (${child.exitCode ?? child.signalCode}) before listening on ${port}`);
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
    await sleep(50);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Spawns a child with TCP_NODELAY=1 in its environment (always: one rule, never forgotten). */
export function spawnPeer(cmd: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  return spawn(cmd, args, {
    stdio: ['ignore', 'ignore', 'inherit'],
    ...options,
    env: { ...PEER_ENV, ...options.env, TCP_NODELAY: '1' },
  });
}

export interface Ran {
  readonly code: number | null;
  readonly output: string;
  /** Wall time from spawn to exit, process start included. */
  readonly ms: number;
}

/** Runs a command to its end (TCP_NODELAY=1); resolves with its exit code, output and time. */
export function run(cmd: string, args: readonly string[], options: SpawnOptions = {}): Promise<Ran> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawnPeer(cmd, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (d: Buffer): void => {
      output += d.toString();
      if (output.length > 200_000) output = output.slice(-100_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.once('error', (e) => resolve({ code: -1, output: `${output}${e.message}`, ms: 0 }));
    child.once('close', (code) => resolve({ code, output, ms: performance.now() - started }));
  });
}

/** run(), failing on a non-zero exit with the end of the output. */
export async function runOk(cmd: string, args: readonly string[], options: SpawnOptions = {}): Promise<Ran> {
  const r = await run(cmd, args, options);
  if (r.code !== 0)
    throw new Error(
      `${cmd} ${args.join(' ').slice(0, 300)} failed (${r.code}): ${r.output.trim().slice(-800)}`,
    );
  return r;
}

export async function have(cmd: string): Promise<boolean> {
  return (await run('which', [cmd])).code === 0;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the child has exited. */
export async function stopProcess(child: ChildProcess, graceMs = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/**
 * Starts a server on a free port. Another process may take the port between the probe and the
 * server's bind (other benches and tests share this machine): a server that dies at once is
 * started again on another port, up to five times.
 */
export async function startOnFreePort(
  what: string,
  start: (port: number) => ChildProcess,
  timeoutMs = 60_000,
): Promise<{ child: ChildProcess; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const child = start(port);
    try {
      await waitForPort(port, child, what, timeoutMs);
      return { child, port };
    } catch (e) {
      await stopProcess(child, 2000);
      if (attempt >= 5) throw e;
    }
  }
}

// --- memory ------------------------------------------------------------------------------------------------

/** Bytes from a /proc/PID/status line ("VmHWM:   12345 kB"); 0 when the process is gone. */
export function procStatus(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** The children of PID, by a scan of /proc (this kernel has no /proc/PID/task/TID/children). */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Resident bytes of a process, plus its children's when asked (storescp --fork, pacs --workers). */
export function residentBytes(pid: number, withChildren = false): number {
  let rss = procStatus(pid, 'VmRSS');
  if (withChildren) for (const c of childrenOf(pid)) rss += procStatus(c, 'VmRSS');
  return rss;
}

/** Samples the resident memory of a process (and its children) until stopped; the peak. */
export class RssSampler {
  private peakBytes = 0;
  private readonly timer: NodeJS.Timeout;
  readonly samples: Array<[number, number]> = [];
  private readonly started = performance.now();

  constructor(
    private readonly pid: number,
    private readonly withChildren = false,
    intervalMs = withChildren ? 100 : 50,
    private readonly keepSamples = false,
  ) {
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.sample();
  }

  sample(): number {
    const rss = residentBytes(this.pid, this.withChildren);
    this.peakBytes = Math.max(this.peakBytes, rss);
    if (this.keepSamples) this.samples.push([(performance.now() - this.started) / 1000, rss]);
    return rss;
  }

  /** The peak: the sampled maximum or the process's own high-water mark, whichever is higher. */
  stop(): number {
    clearInterval(this.timer);
    this.sample();
    return Math.max(this.peakBytes, this.withChildren ? 0 : procStatus(this.pid, 'VmHWM'));
  }
}

// --- timing ---------------------------------------------------------------------------------------------------

export const now = (): number => performance.now();

export function percentile(values: readonly number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
}

export const median = (values: readonly number[]): number => percentile(values, 50);

/**
 * Runs each scenario `rounds` times, the scenarios taking turns in each round (a disturbance of
 * the shared machine hits all of them alike), and returns each scenario's values (its measure's
 * results, one per round). `log` gets one line per round.
 */
export async function inRounds<T>(
  rounds: number,
  scenarios: ReadonlyArray<{ readonly name: string; readonly measure: () => Promise<T> }>,
  describe: (value: T) => string,
  log: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Promise<T[][]> {
  const values: T[][] = scenarios.map(() => []);
  for (let round = 1; round <= rounds; round++) {
    const parts: string[] = [];
    for (const [i, s] of scenarios.entries()) {
      const v = await s.measure();
      (values[i] as T[]).push(v);
      parts.push(`${s.name}: ${describe(v)}`);
    }
    log(`round ${round}/${rounds}: ${parts.join('; ')}`);
  }
  return values;
}

// --- printing ------------------------------------------------------------------------------------------------------

export const fmt = (n: number, digits?: number): string => {
  if (!Number.isFinite(n)) return String(n);
  const d = digits ?? (Math.abs(n) >= 100 ? 0 : Math.abs(n) >= 10 ? 1 : 2);
  return n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
};
export const mib = (bytes: number): string => `${fmt(bytes / 1048576, 1)} MiB`;
export const ratio = (x: number): string => `${fmt(x, 2)}x`;

/** A table with a header row; numeric-looking cells right-aligned. */
export function printTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  indent = '  ',
): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = /^[\d.,\s/x%-]+( ms| MiB| MB)?$/;
  const line = (cells: readonly string[]): string =>
    `${indent}${cells
      .map((c, i) => (i > 0 && numeric.test(c) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')}`.trimEnd();
  console.log(line(header));
  console.log(`${indent}${widths.map((w) => '-'.repeat(w)).join('  ')}`);
  for (const r of rows) console.log(line(r));
}

/**
 * One HTTP GET with a persistent client (`agent`): bytes and seconds; the body is read and dropped.
 * Anything but 200 rejects.
 */
export function httpGetBytes(
  agent: http.Agent,
  port: number,
  path: string,
  accept: string,
): Promise<{ bytes: number; seconds: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    http
      .get({ host: HOST, port, path, agent, headers: { accept } }, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(new Error(`GET ${path}: ${res.statusCode}`));
          return;
        }
        let bytes = 0;
        res.on('data', (c: Buffer) => {
          bytes += c.length;
        });
        res.on('end', () => resolve({ bytes, seconds: (performance.now() - started) / 1000 }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

/** Prints what each peer is and how it is configured (the figures are meaningless without it). */
export function printPeers(peers: ReadonlyArray<{ readonly name: string; readonly config: string }>): void {
  console.log('peers:');
  const w = Math.max(...peers.map((p) => p.name.length));
  for (const p of peers) console.log(`  ${p.name.padEnd(w)}  ${p.config}`);
}

export interface Target {
  /** What the issue asks, e.g. "CT 512x512, 1 association, fsync: >= 2x Orthanc". */
  readonly what: string;
  /** The measured value (a ratio, or ms, or bytes), undefined when it could not be measured. */
  readonly measured: number | undefined;
  readonly op: '>=' | '<';
  readonly threshold: number;
  /** How to show the value (default a ratio "1.23x"). */
  readonly show?: (value: number) => string;
}

/** The targets of the issue with the measured values and MET / NOT MET (or "not measured"). */
export class Targets {
  private readonly list: Target[] = [];

  constructor(private readonly title: string) {}

  add(t: Target): this {
    this.list.push(t);
    return this;
  }

  /** Numerator / denominator as a ratio target (higher is better). */
  ratio(what: string, ours: number | undefined, theirs: number | undefined, threshold: number): this {
    const measured = ours !== undefined && theirs !== undefined && theirs > 0 ? ours / theirs : undefined;
    return this.add({ what, measured, op: '>=', threshold });
  }

  print(): void {
    console.log(`\ntargets (${this.title}):`);
    const w = Math.max(...this.list.map((t) => t.what.length));
    for (const t of this.list) {
      const show = t.show ?? ratio;
      const met =
        t.measured === undefined
          ? undefined
          : t.op === '>='
            ? t.measured >= t.threshold
            : t.measured < t.threshold;
      const verdict = met === undefined ? 'not measured' : met ? 'MET' : 'NOT MET';
      const value = t.measured === undefined ? '-' : show(t.measured);
      console.log(`  ${t.what.padEnd(w)}  measured ${value.padStart(10)}  ${verdict}`);
    }
  }
}

// --- files ----------------------------------------------------------------------------------------------------------

export function countFiles(dir: string): number {
  if (!existsSync(dir)) return 0;
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true }))
    n += e.isDirectory() ? countFiles(join(dir, e.name)) : 1;
  return n;
}

export function folderBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    n += e.isDirectory() ? folderBytes(p) : statSync(p).size;
  }
  return n;
}

// --- the peers -----------------------------------------------------------------------------------------------------

/** A running SCP: what it is, how it is configured, where it listens. */
export interface Peer {
  readonly name: string;
  /** Its configuration in one line, printed beside its figures. */
  readonly config: string;
  readonly aet: string;
  readonly port: number;
  readonly process: ChildProcess;
  /** Resident bytes once listening, before any association. */
  readonly idleRss: number;
  /** True when it forks a process per association (memory is sampled over the children). */
  readonly forks: boolean;
  /** Objects it holds now (files or index rows). */
  count(): Promise<number>;
  stop(): Promise<void>;
}

export interface PacsServerOptions {
  /** Data folder (created); the server's config file is written beside it. */
  readonly dir: string;
  readonly durability?: 'fsync' | 'none';
  /** Index URL (default SQLite in the data folder). */
  readonly db?: string;
  /** Known peers, AET=HOST:PORT. */
  readonly peers?: readonly string[];
  readonly extraArgs?: readonly string[];
  readonly aet?: string;
  /** How long its start may take (default 60 s; the start-up reconcile walks every object file). */
  readonly startTimeoutMs?: number;
  /** The `pacs` executable (default bin/pacs of this checkout; an A/B bench passes another build's). */
  readonly bin?: string;
  /** More `storage` settings of its config (e.g. `encryption`). */
  readonly storage?: Readonly<Record<string, unknown>>;
}

/**
 * `server.dicom` for the benches: the calling AE titles of the DCMTK tools and of `pacs` may do
 * everything (an unknown AE may only C-ECHO and C-STORE, issue 14); access control stays on, so
 * its cost is in every figure.
 */
export const BENCH_DICOM_ACCESS = {
  aes: ['FINDSCU', 'MOVESCU', 'GETSCU', 'PACSSCU', 'STORESCU', 'ECHOSCU', 'BENCH'].map((aeTitle) => ({
    aeTitle,
    permissions: ['echo', 'store', 'find', 'move', 'get', 'worklist', 'mpps', 'commit'],
    moveDestinations: '*',
  })),
};

/** `node bin/pacs server` with a config file of its own, log level warn. */
export async function startPacsServer(o: PacsServerOptions): Promise<Peer> {
  const durability = o.durability ?? 'fsync';
  mkdirSync(o.dir, { recursive: true });
  const config = join(o.dir, 'pacs.json');
  writeFileSync(
    config,
    JSON.stringify({ storage: { durability, ...o.storage }, server: { dicom: BENCH_DICOM_ACCESS } }),
  );
  const data = join(o.dir, 'data');
  const aet = o.aet ?? 'PACS';
  const { child, port } = await startOnFreePort(
    'pacs server',
    (p) =>
      spawnPeer(
        process.execPath,
        [
          o.bin ?? PACS_BIN,
          'server',
          '--config',
          config,
          '--aet',
          aet,
          '--host',
          HOST,
          '--port',
          String(p),
          '--data',
          data,
          '--log-level',
          'warn',
          '--max-associations',
          '1000',
          ...(o.db !== undefined ? ['--db', o.db] : []),
          ...(o.peers ?? []).flatMap((peer) => ['--peer', peer]),
          ...(o.extraArgs ?? []),
        ],
        { cwd: o.dir },
      ),
    o.startTimeoutMs,
  );
  const engine = o.db === undefined || o.db.startsWith('sqlite:') ? 'SQLite' : 'PostgreSQL';
  return {
    name: durability === 'fsync' ? 'pacs server' : 'pacs server (durability none)',
    config:
      durability === 'fsync'
        ? `node bin/pacs server, defaults: fsync of each object file and folder, ${engine} index (synchronous=FULL), group commit`
        : `node bin/pacs server, storage.durability none: no fsync (acknowledges before the disk has the object), ${engine} index`,
    aet,
    port,
    process: child,
    idleRss: procStatus(child.pid ?? 0, 'VmRSS'),
    forks: false,
    count: async () => countFiles(join(data, 'objects')),
    stop: () => stopProcess(child),
  };
}

/** DCMTK storescp writing files (or dropping them with `ignore`), optionally one process per association. */
export async function startStorescp(
  dir: string,
  o: { readonly fork?: boolean; readonly ignore?: boolean; readonly aet?: string } = {},
): Promise<Peer> {
  const out = join(dir, 'storescp');
  mkdirSync(out, { recursive: true });
  const aet = o.aet ?? 'STORESCP';
  const { child, port } = await startOnFreePort('storescp', (p) =>
    spawnPeer(
      'storescp',
      [
        '--aetitle',
        aet,
        ...(o.ignore ? ['--ignore'] : ['--output-directory', out]),
        ...(o.fork ? ['--fork'] : []),
        String(p),
      ],
      { cwd: dir },
    ),
  );
  return {
    name: o.fork ? 'storescp --fork' : 'storescp',
    config: `DCMTK storescp${o.fork ? ' --fork (a process per association)' : ''}, ${
      o.ignore ? '--ignore (receives and drops)' : 'writes files, no fsync, no index'
    }, TCP_NODELAY=1`,
    aet,
    port,
    process: child,
    idleRss: procStatus(child.pid ?? 0, 'VmRSS'),
    forks: o.fork === true,
    count: async () => countFiles(out),
    stop: () => stopProcess(child),
  };
}

/**
 * Orthanc (1.10.1 here) with defaults (SQLite index, files fsynced: SyncStorageArea) from a
 * config in `dir`, storage and index there too; DICOM on a free port as ORTHANC accepting any
 * calling AE (store, find, move, get), HTTP on another (its REST API counts the objects).
 */
export async function startOrthanc(
  dir: string,
  o: { readonly modalities?: Record<string, [string, string, number]> } = {},
): Promise<Peer> {
  mkdirSync(dir, { recursive: true });
  const httpPort = await freePort();
  const config = join(dir, 'orthanc.json');
  const { child, port } = await startOnFreePort('Orthanc', (p) => {
    writeFileSync(
      config,
      JSON.stringify(
        {
          Name: 'bench',
          StorageDirectory: join(dir, 'orthanc-storage'),
          IndexDirectory: join(dir, 'orthanc-index'),
          DicomAet: 'ORTHANC',
          DicomPort: p,
          HttpPort: httpPort,
          HttpServerEnabled: true,
          RemoteAccessAllowed: false,
          AuthenticationEnabled: false,
          DicomCheckCalledAet: false,
          DicomAlwaysAllowEcho: true,
          DicomAlwaysAllowStore: true,
          DicomAlwaysAllowFind: true,
          DicomAlwaysAllowGet: true,
          DicomAlwaysAllowMove: true,
          DicomModalities: o.modalities ?? {},
          Plugins: [],
        },
        null,
        2,
      ),
    );
    return spawnPeer(ORTHANC, [config], { cwd: dir, stdio: ['ignore', 'ignore', 'ignore'] });
  });
  await waitForPort(httpPort, child, 'Orthanc (HTTP)');
  const version = await orthancVersion(httpPort);
  return {
    name: 'Orthanc',
    config: `Orthanc ${version}, defaults: SQLite index, each file fsynced (SyncStorageArea), TCP_NODELAY=1`,
    aet: 'ORTHANC',
    port,
    process: child,
    idleRss: procStatus(child.pid ?? 0, 'VmRSS'),
    forks: false,
    count: async () => {
      const r = await fetch(`http://${HOST}:${httpPort}/statistics`);
      const stats = (await r.json()) as { CountInstances?: number };
      return stats.CountInstances ?? 0;
    },
    stop: () => stopProcess(child),
  };
}

async function orthancVersion(httpPort: number): Promise<string> {
  try {
    const r = await fetch(`http://${HOST}:${httpPort}/system`);
    return ((await r.json()) as { Version?: string }).Version ?? '?';
  } catch {
    return '?';
  }
}

/** DCMTK dcmqrscp over a folder of its own (RW, filled by storescu), knowing `hosts` as move destinations. */
export async function startDcmqrscp(
  dir: string,
  o: {
    readonly aet?: string;
    readonly hosts?: ReadonlyArray<[string, number]>;
    readonly maxPdu?: number;
  } = {},
): Promise<Peer> {
  const aet = o.aet ?? 'QRSCP';
  const storage = join(dir, 'qrstore');
  mkdirSync(storage, { recursive: true });
  const cfg = join(dir, 'dcmqrscp.cfg');
  const { child, port } = await startOnFreePort('dcmqrscp', (p) => {
    writeFileSync(
      cfg,
      [
        `NetworkTCPPort  = ${p}`,
        `MaxPDUSize      = ${o.maxPdu ?? 16384}`,
        'MaxAssociations = 16',
        'HostTable BEGIN',
        ...(o.hosts ?? []).map(([a, hp], i) => `host${i} = (${a}, ${HOST}, ${hp})`),
        'HostTable END',
        'VendorTable BEGIN',
        'VendorTable END',
        'AETable BEGIN',
        `${aet}   ${storage}   RW (500, 1024mb)   ANY`,
        'AETable END',
        '',
      ].join('\n'),
    );
    return spawnPeer('dcmqrscp', ['-c', cfg], { cwd: dir });
  });
  return {
    name: 'dcmqrscp',
    config: `DCMTK dcmqrscp, max PDU ${o.maxPdu ?? 16384}, its own index file, no fsync, TCP_NODELAY=1`,
    aet,
    port,
    process: child,
    idleRss: procStatus(child.pid ?? 0, 'VmRSS'),
    forks: false,
    count: async () => countFiles(storage) - 1,
    stop: () => stopProcess(child),
  };
}

export const existsOrthanc = (): boolean => existsSync(ORTHANC);

/** PostgreSQL of the benches: PACS_BENCH_PG_URL, default the test database (trust auth). */
export const PG_URL = process.env['PACS_BENCH_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

/** True when PostgreSQL answers at the URL (its ?schema= left out). */
export async function pgReachable(url = PG_URL): Promise<boolean> {
  const c = new pg.Client({
    connectionString: url.replace(/[?&]schema=[^&]*/, ''),
    connectionTimeoutMillis: 2000,
  });
  try {
    await c.connect();
    await c.end();
    return true;
  } catch {
    return false;
  }
}

/** Drops a bench's PostgreSQL schema (and everything in it). */
export async function dropPgSchema(schema: string, url = PG_URL): Promise<void> {
  const c = new pg.Client({ connectionString: url.replace(/[?&]schema=[^&]*/, '') });
  await c.connect();
  try {
    await c.query(`drop schema if exists ${schema} cascade`);
  } finally {
    await c.end();
  }
}

/** Debian's DICOMweb plugin of Orthanc (`apt-get install -y orthanc-dicomweb`). */
export const ORTHANC_DICOMWEB_PLUGIN = '/usr/share/orthanc/plugins/libOrthancDicomWeb.so';

/** A running Orthanc with its DICOMweb plugin. */
export interface OrthancDicomweb {
  /** `http://127.0.0.1:PORT` (its REST API; DICOMweb under /dicom-web). */
  readonly rest: string;
  readonly dicomPort: number;
  readonly version: string;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Orthanc with its DICOMweb plugin, defaults otherwise (SQLite index, files fsynced, the plugin's
 * series metadata read from the files), TCP_NODELAY=1, storage and index in `dir`; DICOM as
 * ORTHANC accepting stores from any AE. The DICOMweb benches' one Orthanc.
 */
export async function startOrthancDicomweb(dir: string): Promise<OrthancDicomweb> {
  mkdirSync(dir, { recursive: true });
  const httpPort = await freePort();
  const dicomPort = await freePort();
  const config = join(dir, 'orthanc.json');
  writeFileSync(
    config,
    JSON.stringify({
      Name: 'bench',
      StorageDirectory: join(dir, 'storage'),
      IndexDirectory: join(dir, 'index'),
      DicomAet: 'ORTHANC',
      DicomPort: dicomPort,
      HttpPort: httpPort,
      RemoteAccessAllowed: false,
      AuthenticationEnabled: false,
      DicomCheckCalledAet: false,
      DicomAlwaysAllowStore: true,
      Plugins: [ORTHANC_DICOMWEB_PLUGIN],
      DicomWeb: { Enable: true, Root: '/dicom-web/' },
    }),
  );
  const child = spawnPeer(ORTHANC, [config], { cwd: dir, stdio: ['ignore', 'ignore', 'ignore'] });
  await waitForPort(httpPort, child, 'Orthanc (HTTP)');
  await waitForPort(dicomPort, child, 'Orthanc (DICOM)');
  return {
    rest: `http://${HOST}:${httpPort}`,
    dicomPort,
    version: await orthancVersion(httpPort),
    child,
    stop: () => stopProcess(child),
  };
}
