/**
 * The server's CPU per retrieved object, A/B between builds in one run (issue 11, C-GET/C-MOVE
 * sub-operations): a `pacs server` per `--bin` (default this checkout's bin/pacs; pass another
 * build's bin/pacs for a before/after), each filled by storescu (TCP_NODELAY=1) with the same
 * --objects CT images (512x512, 16-bit), then per round --retrieves C-GETs by `getscu --ignore`
 * and as many C-MOVEs by movescu to a `storescp --ignore` (all TCP_NODELAY=1), the servers taking
 * turns. It reads the server's user+system CPU time (/proc/PID/stat) and its write system calls
 * (/proc/PID/io syscw) around each batch.
 *
 * Run: node dist/bench/retrieve-cpu.js [--objects 100] [--retrieves 3] [--rounds 5] [--bin A --bin B]
 *   [--dcmqrscp] (DCMTK's dcmqrscp beside them, for reference)
 */
import { readFileSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { writeCtSeries } from './adapters.js';
import {
  fmt,
  HOST,
  inRounds,
  median,
  numberArg,
  PACS_BIN,
  type Peer,
  printTable,
  runMain,
  runOk,
  startDcmqrscp,
  startPacsServer,
  startStorescp,
} from './common.js';

const STUDY = '1.2.826.0.1.3680043.8.498.4243';
const KEYS = ['-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${STUDY}`];

/** User + system CPU time of a process and its reaped children (ms). */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 to 17 of stat (utime, stime, and those of children reaped: dcmqrscp forks one per
  // association) in clock ticks (100 Hz on Linux).
  return (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) * 10;
}

/** Write system calls a process made so far (write, writev...). */
function writeCalls(pid: number): number {
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  return Number(/syscw:\s*(\d+)/.exec(io)?.[1] ?? 0);
}

/** Read system calls a process made so far (read, pread... of files and sockets). */
function readCalls(pid: number): number {
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  return Number(/syscr:\s*(\d+)/.exec(io)?.[1] ?? 0);
}

interface Sample {
  readonly cpuMs: number;
  readonly writes: number;
  readonly reads: number;
  readonly wallMs: number;
}

/** Runs `batch` and reads the server's CPU time and write calls around it. */
async function measured(server: Peer, batch: () => Promise<void>): Promise<Sample> {
  const pid = server.process.pid ?? 0;
  const cpu0 = cpuMs(pid);
  const w0 = writeCalls(pid);
  const r0 = readCalls(pid);
  const t = performance.now();
  await batch();
  return {
    cpuMs: cpuMs(pid) - cpu0,
    writes: writeCalls(pid) - w0,
    reads: readCalls(pid) - r0,
    wallMs: performance.now() - t,
  };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const objects = numberArg(argv, '--objects', 100);
  const retrieves = Math.max(1, numberArg(argv, '--retrieves', 3));
  const rounds = Math.max(1, numberArg(argv, '--rounds', 5));
  const bins = argv.flatMap((a, i) => (a === '--bin' ? [resolve(argv[i + 1] ?? '')] : []));
  if (bins.length === 0) bins.push(PACS_BIN);
  const work = await mkdtemp(join(tmpdir(), 'pacs-bench-retrieve-cpu-'));
  const peers: Peer[] = [];
  try {
    const dest = await startStorescp(join(work, 'dest'), { ignore: true, aet: 'DEST' });
    peers.push(dest);
    const files = writeCtSeries(join(work, 'study'), objects, { studyInstanceUid: STUDY });
    const servers: Peer[] = [];
    for (const [i, bin] of bins.entries()) {
      const s = await startPacsServer({
        dir: join(work, `pacs${i}`),
        bin,
        peers: [`DEST=${HOST}:${dest.port}`],
      });
      peers.push(s);
      servers.push(s);
      await runOk('storescu', ['-aec', s.aet, HOST, String(s.port), ...files]);
    }
    const names = [...bins];
    // --dcmqrscp: DCMTK's dcmqrscp (one process, no fsync) as a reference for the CPU per object.
    if (argv.includes('--dcmqrscp')) {
      const qr = await startDcmqrscp(join(work, 'dcmqrscp'), { hosts: [['DEST', dest.port]] });
      peers.push(qr);
      servers.push(qr);
      names.push('dcmqrscp');
      await runOk('storescu', ['-aec', qr.aet, HOST, String(qr.port), ...files]);
    }
    const getscu = (s: Peer) => async () => {
      for (let i = 0; i < retrieves; i++)
        await runOk('getscu', ['-S', '--ignore', '-aec', s.aet, ...KEYS, HOST, String(s.port)]);
    };
    const movescu = (s: Peer) => async () => {
      for (let i = 0; i < retrieves; i++)
        await runOk('movescu', ['-S', '-aec', s.aet, '-aem', 'DEST', ...KEYS, HOST, String(s.port)]);
    };
    const per = (v: Sample) =>
      `${fmt(v.cpuMs / (retrieves * objects))} ms CPU/object, ${fmt(v.writes / (retrieves * objects))} writes/object`;
    const scenarios = servers.flatMap((s, i) => [
      { name: `C-GET ${names[i]}`, measure: () => measured(s, getscu(s)) },
      { name: `C-MOVE ${names[i]}`, measure: () => measured(s, movescu(s)) },
    ]);
    const values = await inRounds(rounds, scenarios, per);
    console.log(
      `\n${objects} CT objects per retrieve, ${retrieves} retrieves per round, medians of ${rounds} rounds`,
    );
    printTable(
      ['scenario', 'server CPU ms/object', 'write calls/object', 'read calls/object', 'wall ms/retrieve'],
      values.map((v, i) => [
        scenarios[i]?.name ?? '',
        fmt(median(v.map((x) => x.cpuMs / (retrieves * objects)))),
        fmt(median(v.map((x) => x.writes / (retrieves * objects)))),
        fmt(median(v.map((x) => x.reads / (retrieves * objects)))),
        fmt(median(v.map((x) => x.wallMs / retrieves))),
      ]),
    );
  } finally {
    for (const p of peers) await p.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

runMain('bench:retrieve-cpu', main);
