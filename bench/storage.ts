/**
 * C-STORE ingest benchmark, side by side in one run (ISSUE 4 "Performance"). DCMTK's storescu
 * (TCP_NODELAY=1) sends, in turn, to:
 *   - our server: `node bin/pacs server`, default settings (fsync on, SQLite index);
 *   - DCMTK storescp: writes files (--output-directory), keeps no index, never fsyncs;
 *   - Orthanc (/usr/sbin/Orthanc), default settings (SQLite index), from a generated config.
 * Scenarios: 500 CT objects of 512x512 over one association; 2,000 small objects (64x64) over one
 * association; 4 concurrent senders of 125 CT objects of 512x512 each. Each receiver starts fresh
 * (empty data folder) for each scenario, so duplicates never happen and its peak memory is the
 * scenario's. The time is from the first storescu start to the last one's exit; every object must
 * have arrived (counted in the receiver afterwards). Then one 2 GB multi-frame object, generated
 * on disk as a stream, is sent to our server by `pacs store` (which streams it): its peak RSS.
 *
 * Printed: objects/s, MB/s (file bytes), peak resident memory of the receiving process(es) (VmHWM,
 * and VmRSS sampled over storescp's forked children), memory per association ((peak - idle RSS)
 * / associations), the ratios, and the targets with a verdict.
 *
 * Run: npm run bench:storage   (or node dist/bench/storage.js [--rounds N] [--skip-2gb] [--keep DIR])
 * With --rounds N each figure is the best of N rounds (the machines this runs on are small and shared).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TAG } from '../src/dicom/dictionary.js';
import { EXPLICIT_VR_LE, UID } from '../src/dicom/uid.js';
import { encodePart10 } from '../src/dicom/writer.js';
import { makeCtDataSet, writeCtSeries } from '../test/helpers/synthetic.js';

const HOST = '127.0.0.1';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PACS_BIN = join(ROOT, 'bin', 'pacs');
const DCMTK_ENV = { ...process.env, TCP_NODELAY: '1' };
const ORTHANC = '/usr/sbin/Orthanc';

interface Options {
  readonly rounds: number;
  readonly skip2gb: boolean;
  readonly keep: string | undefined;
}

function parseArgs(argv: readonly string[]): Options {
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  return {
    rounds: Number(get('--rounds') ?? 1),
    skip2gb: argv.includes('--skip-2gb'),
    keep: get('--keep'),
  };
}

// --- processes ---------------------------------------------------------------------------------

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

function run(
  cmd: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout?.on('data', (d) => {
      output += d;
    });
    child.stderr?.on('data', (d) => {
      output += d;
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
  });
}

/** kB from a /proc/PID/status line ("VmHWM:   12345 kB"); 0 when the process is gone. */
function procStatus(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** The children of PID (a scan of /proc: this kernel has no /proc/PID/task/TID/children). */
function childrenOf(pid: number): number[] {
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

/** Samples the resident memory of a process and (optionally) its children; max of the sum. */
class MemorySampler {
  peak = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pid: number,
    withChildren: boolean,
  ) {
    const sample = (): void => {
      let rss = procStatus(this.pid, 'VmRSS');
      if (withChildren) for (const c of childrenOf(this.pid)) rss += procStatus(c, 'VmRSS');
      this.peak = Math.max(this.peak, rss);
    };
    this.timer = setInterval(sample, withChildren ? 100 : 50);
  }

  /** The peak: the process's own high-water mark or the sampled sum, whichever is higher. */
  stop(): number {
    clearInterval(this.timer);
    return Math.max(this.peak, procStatus(this.pid, 'VmHWM'));
  }
}

// --- receivers ---------------------------------------------------------------------------------

interface Receiver {
  readonly name: string;
  readonly aet: string;
  readonly port: number;
  readonly process: ChildProcess;
  /** RSS once listening, before any association. */
  readonly idleRss: number;
  readonly forks: boolean;
  /** Objects it holds now. */
  count(): Promise<number>;
  stop(): Promise<void>;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await once(child, 'exit');
  clearTimeout(timer);
}

function countFiles(dir: string): number {
  if (!existsSync(dir)) return 0;
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) n += countFiles(join(dir, e.name));
    else n++;
  }
  return n;
}

async function startOurs(dir: string, durability: 'fsync' | 'none' = 'fsync'): Promise<Receiver> {
  const port = await freePort();
  const config = join(dir, 'pacs.json');
  writeFileSync(config, JSON.stringify({ storage: { durability } }));
  const child = spawn(
    process.execPath,
    [
      PACS_BIN,
      'server',
      '--config',
      config,
      '--port',
      String(port),
      '--data',
      join(dir, 'data'),
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  await portOpen(port, child, 'pacs server');
  return {
    name: durability === 'fsync' ? 'pacs server (fsync)' : 'pacs server (no fsync)',
    aet: 'PACS',
    port,
    process: child,
    idleRss: procStatus(child.pid ?? 0, 'VmRSS'),
    forks: false,
    count: async () => countFiles(join(dir, 'data', 'objects')),
    stop: () => stopChild(child),
  };
}

async function startStorescp(dir: string, fork: boolean): Promise<Receiver> {
  const port = await freePort();
  const out = join(dir, 'storescp');
  mkdirSync(out, { recursive: true });
  const child = spawn(
    'storescp',
    ['--aetitle', 'STORESCP', '--output-directory', out, ...(fork ? ['--fork'] : []), String(port)],
    { env: DCMTK_ENV, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  await portOpen(port, child, 'storescp');
  return {
    name: fork ? 'storescp --fork' : 'storescp',
    aet: 'STORESCP',
    port,
    process: child,
    idleRss: procStatus(child.pid ?? 0, 'VmRSS'),
    forks: fork,
    count: async () => countFiles(out),
    stop: () => stopChild(child),
  };
}

async function startOrthanc(dir: string): Promise<Receiver> {
  const port = await freePort();
  const httpPort = await freePort();
  const config = join(dir, 'orthanc.json');
  writeFileSync(
    config,
    JSON.stringify(
      {
        Name: 'bench',
        StorageDirectory: join(dir, 'orthanc-storage'),
        IndexDirectory: join(dir, 'orthanc-index'),
        DicomAet: 'ORTHANC',
        DicomPort: port,
        HttpPort: httpPort,
        HttpServerEnabled: true,
        RemoteAccessAllowed: false,
        AuthenticationEnabled: false,
        DicomCheckCalledAet: false,
        DicomAlwaysAllowStore: true,
        Plugins: [],
      },
      null,
      2,
    ),
  );
  const child = spawn(ORTHANC, [config], { stdio: ['ignore', 'ignore', 'ignore'] });
  await portOpen(port, child, 'Orthanc');
  await portOpen(httpPort, child, 'Orthanc (HTTP)');
  return {
    name: 'Orthanc',
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
    stop: () => stopChild(child),
  };
}

// --- scenarios ---------------------------------------------------------------------------------

interface Scenario {
  readonly name: string;
  /** One folder per sender (each one association). */
  readonly folders: readonly string[];
  readonly objects: number;
  readonly bytes: number;
}

interface Result {
  readonly seconds: number;
  readonly peakRss: number;
  readonly idleRss: number;
}

function folderBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    n += e.isDirectory() ? folderBytes(p) : statSync(p).size;
  }
  return n;
}

async function runScenario(scenario: Scenario, receiver: Receiver): Promise<Result> {
  const sampler = new MemorySampler(receiver.process.pid ?? 0, receiver.forks);
  const started = process.hrtime.bigint();
  const senders = scenario.folders.map((folder) =>
    run('storescu', ['-aec', receiver.aet, '+sd', '+r', HOST, String(receiver.port), folder], DCMTK_ENV),
  );
  const results = await Promise.all(senders);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const peakRss = sampler.stop();
  for (const r of results)
    if (r.code !== 0)
      throw new Error(`storescu to ${receiver.name} failed (${r.code}): ${r.output.slice(-2000)}`);
  // Orthanc (and our server) may finish indexing just after the response: give it a moment.
  let count = await receiver.count();
  for (let i = 0; i < 50 && count < scenario.objects; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    count = await receiver.count();
  }
  if (count !== scenario.objects)
    throw new Error(
      `${receiver.name} holds ${count} objects after ${scenario.name}, not ${scenario.objects}`,
    );
  return { seconds, peakRss, idleRss: receiver.idleRss };
}

/** A Multi-frame Grayscale Word SC object of `frames` 512x512 frames, written as a stream. */
async function writeLargeObject(path: string, frames: number): Promise<number> {
  const ds = makeCtDataSet({ rows: 512, columns: 512 });
  ds.setString(TAG.SOPClassUID, UID.MultiFrameGrayscaleWordSecondaryCaptureImageStorage);
  ds.setString(TAG.NumberOfFrames, String(frames), 'IS');
  ds.delete(TAG.PixelData);
  const header = encodePart10(ds, EXPLICIT_VR_LE);
  const frame = Buffer.alloc(512 * 512 * 2);
  const length = frame.length * frames;
  const element = Buffer.alloc(12);
  element.writeUInt16LE(0x7fe0, 0);
  element.writeUInt16LE(0x0010, 2);
  element.write('OW', 4, 'latin1');
  element.writeUInt32LE(length, 8);
  const out = createWriteStream(path);
  const write = async (b: Uint8Array): Promise<void> => {
    if (!out.write(b)) await once(out, 'drain');
  };
  await write(header);
  await write(element);
  for (let i = 0; i < frames; i++) {
    frame.fill(i & 0xff);
    await write(Buffer.from(frame));
  }
  out.end();
  await once(out, 'finish');
  return header.length + element.length + length;
}

// --- output --------------------------------------------------------------------------------------

const MB = 1e6;
const fmt = (n: number, digits = 0): string =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const mb = (bytes: number): string => `${fmt(bytes / 1048576, 1)} MiB`;

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  for (const tool of ['storescu', 'storescp'])
    if ((await run('which', [tool])).code !== 0)
      throw new Error(`${tool} is missing: apt-get install -y dcmtk`);
  const haveOrthanc = existsSync(ORTHANC);
  const work = o.keep ?? (await mkdtemp(join(tmpdir(), 'pacs-bench-storage-')));
  mkdirSync(work, { recursive: true });
  try {
    console.log(`generating objects in ${work} ...`);
    const ct = join(work, 'src', 'ct512');
    const small = join(work, 'src', 'small64');
    if (!existsSync(ct))
      for (let s = 0; s < 4; s++)
        writeCtSeries(join(ct, `sender${s}`), 125, {
          seriesNumber: s + 1,
          studyInstanceUid: '1.2.826.0.1.3680043.8.498.500',
        });
    if (!existsSync(small)) writeCtSeries(small, 2000, { rows: 64, columns: 64 });
    const scenarios: Scenario[] = [
      { name: '500 CT 512x512, 1 association', folders: [ct], objects: 500, bytes: folderBytes(ct) },
      {
        name: '2,000 small 64x64, 1 association',
        folders: [small],
        objects: 2000,
        bytes: folderBytes(small),
      },
      {
        name: '4 senders x 125 CT 512x512',
        folders: [0, 1, 2, 3].map((s) => join(ct, `sender${s}`)),
        objects: 500,
        bytes: folderBytes(ct),
      },
    ];
    const receivers: { name: string; start: (dir: string, concurrent: boolean) => Promise<Receiver> }[] = [
      { name: 'pacs server (fsync)', start: (dir) => startOurs(dir) },
      // Not a contender (acknowledges before the disk has the object): what the code path costs without the flushes.
      { name: 'pacs server (no fsync)', start: (dir) => startOurs(dir, 'none') },
      { name: 'storescp', start: (dir, concurrent) => startStorescp(dir, concurrent) },
      ...(haveOrthanc ? [{ name: 'Orthanc', start: (dir: string) => startOrthanc(dir) }] : []),
    ];
    if (!haveOrthanc) console.log(`(${ORTHANC} is missing: apt-get install -y orthanc; Orthanc left out)`);

    // best[scenario][receiver]
    const best = new Map<string, Map<string, Result & { label: string }>>();
    for (let round = 1; round <= o.rounds; round++) {
      for (const scenario of scenarios) {
        for (const r of receivers) {
          const dir = join(work, 'run', `${round}-${scenarios.indexOf(scenario)}-${receivers.indexOf(r)}`);
          rmSync(dir, { recursive: true, force: true });
          mkdirSync(dir, { recursive: true });
          const receiver = await r.start(dir, scenario.folders.length > 1);
          let result: Result;
          try {
            result = await runScenario(scenario, receiver);
          } finally {
            await receiver.stop();
            rmSync(dir, { recursive: true, force: true });
          }
          const perScenario = best.get(scenario.name) ?? new Map();
          best.set(scenario.name, perScenario);
          const previous = perScenario.get(r.name);
          if (!previous || result.seconds < previous.seconds)
            perScenario.set(r.name, { ...result, label: receiver.name });
          process.stderr.write(
            `round ${round}: ${scenario.name} -> ${receiver.name}: ${fmt(scenario.objects / result.seconds)} objects/s\n`,
          );
        }
      }
    }

    console.log('');
    console.log(`storescu (TCP_NODELAY=1) as the sender; best of ${o.rounds} round(s)`);
    const w = 36;
    console.log(
      `${'scenario'.padEnd(w)}${'receiver'.padEnd(22)}${'objects/s'.padStart(10)}${'MB/s'.padStart(9)}` +
        `${'peak RSS'.padStart(12)}${'per assoc'.padStart(12)}`,
    );
    for (const scenario of scenarios) {
      const results = best.get(scenario.name) ?? new Map();
      let first = true;
      for (const [, r] of results) {
        const assocs = scenario.folders.length;
        const perAssoc = Math.max(0, r.peakRss - r.idleRss) / assocs;
        console.log(
          `${(first ? scenario.name : '').padEnd(w)}${r.label.padEnd(22)}` +
            `${fmt(scenario.objects / r.seconds).padStart(10)}${fmt(scenario.bytes / MB / r.seconds, 1).padStart(9)}` +
            `${mb(r.peakRss).padStart(12)}${mb(perAssoc).padStart(12)}`,
        );
        first = false;
      }
    }

    console.log('');
    console.log('ratios (our throughput / theirs) and targets:');
    const verdict = (ok: boolean): string => (ok ? 'met' : 'MISSED');
    for (const scenario of scenarios) {
      const results = best.get(scenario.name);
      const ours = results?.get('pacs server (fsync)');
      if (!ours || !results) continue;
      const ratioTo = (name: string): number | undefined => {
        const theirs = results.get(name);
        return theirs ? theirs.seconds / ours.seconds : undefined;
      };
      const orthanc = ratioTo('Orthanc');
      const storescp = ratioTo('storescp');
      const parts = [
        orthanc !== undefined
          ? `vs Orthanc ${fmt(orthanc, 2)}x (target >= 4x: ${verdict(orthanc >= 4)})`
          : '',
        storescp !== undefined
          ? `vs storescp ${fmt(storescp, 2)}x (target >= 0.8x: ${verdict(storescp >= 0.8)})`
          : '',
      ].filter((p) => p !== '');
      const unsynced = results.get('pacs server (no fsync)');
      const theirs = results.get('storescp');
      if (unsynced && theirs)
        parts.push(`[no fsync vs storescp ${fmt(theirs.seconds / unsynced.seconds, 2)}x]`);
      console.log(`  ${scenario.name.padEnd(w)}${parts.join('; ')}`);
    }
    const smallOurs = best.get(scenarios[1]?.name ?? '')?.get('pacs server (fsync)');
    if (smallOurs) {
      const rate = 2000 / smallOurs.seconds;
      console.log(`  small objects: ${fmt(rate)} objects/s (target >= 2,000/s: ${verdict(rate >= 2000)})`);
    }
    const concurrent = best.get(scenarios[2]?.name ?? '')?.get('pacs server (fsync)');
    const single = best.get(scenarios[0]?.name ?? '')?.get('pacs server (fsync)');
    for (const [label, r, n] of [
      ['1 association', single, 1],
      ['4 associations', concurrent, 4],
    ] as const) {
      if (!r) continue;
      const per = Math.max(0, r.peakRss - r.idleRss) / n;
      console.log(
        `  memory per association (${label}): (peak - idle ${mb(r.idleRss)}) / ${n} = ${mb(per)} (target < 10 MiB: ${verdict(per < 10 * 1048576)})`,
      );
    }
    if (single && concurrent) {
      // The same 500 objects over 1 and over 4 associations: what each association adds.
      const marginal = Math.max(0, concurrent.peakRss - single.peakRss) / 3;
      console.log(
        `  memory per additional association (peak with 4 - peak with 1) / 3 = ${mb(marginal)} (target < 10 MiB: ${verdict(marginal < 10 * 1048576)})`,
      );
    }

    if (!o.skip2gb) {
      console.log('');
      const big = join(work, 'src', 'large.dcm');
      const frames = 4000;
      const size = existsSync(big) ? statSync(big).size : await writeLargeObject(big, frames);
      const dir = join(work, 'run', 'large');
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      const receiver = await startOurs(dir);
      const sampler = new MemorySampler(receiver.process.pid ?? 0, false);
      const started = process.hrtime.bigint();
      let sent: { code: number | null; output: string };
      let peak: number;
      try {
        sent = await run(process.execPath, [PACS_BIN, 'store', HOST, String(receiver.port), big]);
        peak = sampler.stop();
        if (sent.code !== 0) throw new Error(`pacs store of the large object failed: ${sent.output}`);
        if ((await receiver.count()) !== 1) throw new Error('the large object was not stored');
      } finally {
        await receiver.stop();
        rmSync(dir, { recursive: true, force: true });
      }
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      console.log(
        `one ${fmt(size / 1e9, 2)} GB multi-frame object (${frames} frames of 512x512) sent by pacs store: ` +
          `${fmt(size / MB / seconds, 1)} MB/s; our server's peak RSS ${mb(peak)} ` +
          `(target < 150 MB: ${verdict(peak < 150e6)})`,
      );
    }
  } finally {
    if (o.keep === undefined) rmSync(work, { recursive: true, force: true });
  }
}

await main();
