/**
 * The server's CPU per C-FIND answer, A/B between builds in one run (issue 11, the C-FIND hot
 * path): a `pacs server` per `--bin` (default this checkout's bin/pacs; pass another build's
 * bin/pacs for a before/after), each filled by storescu (TCP_NODELAY=1) with the same --studies
 * one-instance studies, then asked "all studies" at STUDY level by a persistent client (our SCU
 * library, one association per round) --queries times per round, the servers taking turns.
 * Per round it reads the server's user+system CPU time (/proc/PID/stat) and its write system
 * calls (/proc/PID/io syscw), so the figures do not depend on what else the machine runs as
 * much as wall time does.
 *
 * Run: node dist/bench/find-cpu.js [--studies 2000] [--queries 10] [--rounds 5] [--bin A --bin B]
 */
import { readFileSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openFindClient, writeStudyFiles } from './adapters.js';
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
  sleep,
  startPacsServer,
} from './common.js';

const KEYS = { PatientName: '', PatientID: '', StudyDate: '', StudyInstanceUID: '', StudyDescription: '' };

/** User + system CPU time of a process (ms). */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of stat (utime, stime) in clock ticks (100 Hz on Linux).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Write system calls a process made so far (write, writev...). */
function writeCalls(pid: number): number {
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  return Number(/syscw:\s*(\d+)/.exec(io)?.[1] ?? 0);
}

interface Sample {
  readonly cpuMs: number;
  readonly writes: number;
  readonly wallMs: number;
  readonly answers: number;
}

async function round(server: Peer, queries: number): Promise<Sample> {
  const client = await openFindClient(server.port, server.aet);
  try {
    await client.query(KEYS); // warm-up of the association
    const pid = server.process.pid ?? 0;
    const cpu0 = cpuMs(pid);
    const w0 = writeCalls(pid);
    const t = performance.now();
    let answers = 0;
    for (let i = 0; i < queries; i++) answers += await client.query(KEYS);
    return {
      cpuMs: cpuMs(pid) - cpu0,
      writes: writeCalls(pid) - w0,
      wallMs: performance.now() - t,
      answers,
    };
  } finally {
    await client.close();
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const studies = numberArg(argv, '--studies', 2000);
  const queries = numberArg(argv, '--queries', 10);
  const rounds = Math.max(1, numberArg(argv, '--rounds', 5));
  const bins = argv.flatMap((a, i) => (a === '--bin' ? [resolve(argv[i + 1] ?? '')] : []));
  if (bins.length === 0) bins.push(PACS_BIN);
  const work = await mkdtemp(join(tmpdir(), 'pacs-bench-find-cpu-'));
  const servers: Peer[] = [];
  try {
    const files = join(work, 'objects');
    const instances = writeStudyFiles(files, studies, { series: 1, instances: 1 });
    for (const [i, bin] of bins.entries()) {
      const s = await startPacsServer({ dir: join(work, `pacs${i}`), bin });
      servers.push(s);
      await runOk('storescu', ['-aec', s.aet, '+sd', '+r', HOST, String(s.port), files]);
      for (let k = 0; k < 100 && (await s.count()) < instances; k++) await sleep(100);
    }
    const values = await inRounds(
      rounds,
      servers.map((s, i) => ({ name: bins[i] ?? s.name, measure: () => round(s, queries) })),
      (v) => `${fmt((v.cpuMs * 1000) / v.answers)} us CPU/answer, ${fmt(v.writes / v.answers)} writes/answer`,
    );
    console.log(`\n"all studies" at STUDY level, ${studies} answers each, ${queries} queries per round`);
    printTable(
      ['server', 'CPU us/answer (median)', 'write calls/answer', 'wall ms/query (median)'],
      values.map((v, i) => [
        bins[i] ?? '',
        fmt(median(v.map((x) => (x.cpuMs * 1000) / x.answers))),
        fmt(median(v.map((x) => x.writes / x.answers))),
        fmt(median(v.map((x) => x.wallMs / queries))),
      ]),
    );
  } finally {
    for (const s of servers) await s.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

runMain('bench:find-cpu', main);
