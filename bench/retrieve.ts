/**
 * Retrieve benchmark, side by side with DCMTK's dcmqrscp holding the same data, in one run:
 * C-MOVE and C-GET of a 100-object CT study (512x512, 16-bit: about 52 MB; test/helpers/synthetic.ts),
 * in objects/s and MB/s, with the same clients for both servers:
 *   C-MOVE: movescu -> server -> storescp --ignore (the destination receives and drops);
 *   C-GET:  getscu --ignore <- server, and our C-GET SCU (library, data dropped) <- server.
 *
 * Our server is `node bin/pacs server` (log level warn, the study's destination as --peer) when it
 * serves C-MOVE, else an ApplicationEntity with the storage, move and get services over an archive
 * in a child process (`node dist/bench/retrieve.js --serve PORT DATA DEST_PORT`). dcmqrscp runs with
 * a configuration made in a temporary folder; both are filled by storescu. Each figure times the
 * whole client run (process start and association included: a few ms against a few hundred), and
 * is the best of `--rounds` rounds, the scenarios taking turns: the machines this runs on are small
 * and shared. The DCMTK tools get TCP_NODELAY=1.
 *
 * Run: npm run bench:retrieve  (or node dist/bench/retrieve.js [--objects N] [--rounds N])
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openArchive } from '../src/archive/archive.js';
import { DataSet } from '../src/dicom/dataset.js';
import { TAG } from '../src/dicom/dictionary.js';
import { allStorageSopClasses } from '../src/dicom/uid.js';
import { ApplicationEntity } from '../src/network/ae.js';
import { Status } from '../src/network/dimse-status.js';
import type { DimseService } from '../src/network/service.js';
import { getService } from '../src/services/query-retrieve/get-scp.js';
import { get, getContexts } from '../src/services/query-retrieve/get-scu.js';
import { STUDY_ROOT } from '../src/services/query-retrieve/models.js';
import { moveService } from '../src/services/query-retrieve/move-scp.js';
import { retrieveContext } from '../src/services/query-retrieve/move-scu.js';
import { storageService } from '../src/services/storage/scp.js';
import { writeCtSeries } from '../test/helpers/synthetic.js';

const HOST = '127.0.0.1';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DCMTK_ENV = { ...process.env, TCP_NODELAY: '1' };
const STUDY = '1.2.826.0.1.3680043.8.498.4242';

interface Options {
  readonly objects: number;
  readonly rounds: number;
  readonly serve?: { port: number; data: string; destPort: number };
}

function parseArgs(argv: readonly string[]): Options {
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const i = argv.indexOf('--serve');
  return {
    objects: Number(get('--objects') ?? 100),
    rounds: Number(get('--rounds') ?? 5),
    ...(i >= 0
      ? { serve: { port: Number(argv[i + 1]), data: String(argv[i + 2]), destPort: Number(argv[i + 3]) } }
      : {}),
  };
}

/** The fallback server: storage, move and get over an archive, until killed. */
async function serve(s: NonNullable<Options['serve']>): Promise<void> {
  const archive = await openArchive({ dataDir: s.data });
  const move = moveService({ archive, peers: [{ aet: 'DEST', host: HOST, port: s.destPort }] });
  await move.start?.();
  await new ApplicationEntity({ aeTitle: 'PACS' })
    .addService(storageService({ archive }))
    .addService(move)
    .addService(getService({ archive }))
    .listen({ port: s.port, host: HOST });
  process.stdout.write('ready\n');
}

const now = (): bigint => process.hrtime.bigint();
const seconds = (from: bigint, to: bigint = now()): number => Number(to - from) / 1e9;

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function portOpen(port: number, child: ChildProcess, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
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
    child.stdout?.on('data', (d) => (output += d));
    child.stderr?.on('data', (d) => (output += d));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
  });
}

async function runOk(cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv): Promise<string> {
  const r = await run(cmd, args, env);
  if (r.code !== 0)
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.output.trim().slice(-500)}`);
  return r.output;
}

/** True when the server accepts a Study Root C-MOVE context. */
async function servesMove(port: number): Promise<boolean> {
  const r = await new ApplicationEntity({ aeTitle: 'BENCH' }).connect({
    host: HOST,
    port,
    calledAeTitle: 'PACS',
    contexts: [retrieveContext(STUDY_ROOT, 'move')],
  });
  if (!r.ok) return false;
  await r.value.release();
  return true;
}

async function startOurServer(
  port: number,
  data: string,
  destPort: number,
): Promise<{ child: ChildProcess; how: string }> {
  const pacs = join(ROOT, 'bin', 'pacs');
  const args = [pacs, 'server', '--aet', 'PACS', '--host', HOST, '--port', String(port), '--data', data];
  args.push('--log-level', 'warn', '--peer', `DEST=${HOST}:${destPort}`);
  const server = spawn(process.execPath, args, { cwd: data, stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    await portOpen(port, server, 'pacs server');
    if (await servesMove(port)) return { child: server, how: 'node bin/pacs server' };
  } catch {
    // The command line cannot serve this yet: the fallback below.
  }
  server.kill('SIGTERM');
  await new Promise((r) => (server.exitCode === null ? server.once('exit', r) : r(null)));
  rmSync(data, { recursive: true, force: true });
  mkdirSync(data);
  const self = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, [self, '--serve', String(port), data, String(destPort)], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const how = 'ApplicationEntity with storage, move and get in a child process';
  await portOpen(port, child, how);
  return { child, how };
}

async function startDcmqrscp(port: number, work: string, destPort: number): Promise<ChildProcess> {
  const storage = join(work, 'qrstore');
  mkdirSync(storage);
  const cfg = join(work, 'dcmqrscp.cfg');
  writeFileSync(
    cfg,
    [
      `NetworkTCPPort  = ${port}`,
      'MaxPDUSize      = 16384',
      'MaxAssociations = 16',
      'HostTable BEGIN',
      `dest = (DEST, ${HOST}, ${destPort})`,
      'HostTable END',
      'VendorTable BEGIN',
      'VendorTable END',
      'AETable BEGIN',
      `QRSCP   ${storage}   RW (200, 1024mb)   ANY`,
      'AETable END',
      '',
    ].join('\n'),
  );
  const child = spawn('dcmqrscp', ['-c', cfg], { env: DCMTK_ENV, stdio: ['ignore', 'ignore', 'inherit'] });
  await portOpen(port, child, 'dcmqrscp');
  return child;
}

const KEYS = ['-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${STUDY}`];

function movescu(port: number, aec: string): Promise<string> {
  return runOk('movescu', ['-S', '-aec', aec, '-aem', 'DEST', ...KEYS, HOST, String(port)], DCMTK_ENV);
}

function getscu(port: number, aec: string): Promise<string> {
  return runOk('getscu', ['-S', '--ignore', '-aec', aec, ...KEYS, HOST, String(port)], DCMTK_ENV);
}

/** A Storage SCP for C-GET sub-operations that reads each data set and drops it (as getscu --ignore). */
const dropService: DimseService = {
  name: 'drop',
  sopClasses: allStorageSopClasses().map((uid) => ({ uid })),
  transferSyntaxes: ['1.2.840.10008.1.2.1', '1.2.840.10008.1.2'],
  handlers: {
    'C-STORE': async (_ctx, data) => {
      for await (const _ of data) {
        // dropped
      }
      return { status: Status.Success };
    },
  },
};

async function ourGetScu(port: number, aec: string, expected: number): Promise<void> {
  const ae = new ApplicationEntity({ aeTitle: 'BENCH' }).addService(dropService);
  const opened = await ae.connect({
    host: HOST,
    port,
    calledAeTitle: aec,
    contexts: getContexts(STUDY_ROOT),
  });
  if (!opened.ok) throw opened.error;
  const identifier = new DataSet();
  identifier.setString(TAG.QueryRetrieveLevel, 'STUDY');
  identifier.setString(TAG.StudyInstanceUID, STUDY);
  const r = await get(opened.value, { model: STUDY_ROOT, identifier });
  await opened.value.release();
  if (!r.ok) throw r.error;
  if (r.value.status !== Status.Success || r.value.completed !== expected)
    throw new Error(`C-GET: status ${r.value.status}, ${r.value.completed} completed`);
}

function fmt(n: number): string {
  return n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1);
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  if (o.serve !== undefined) return serve(o.serve);

  const work = mkdtempSync(join(tmpdir(), 'pacs-bench-retrieve-'));
  const children: ChildProcess[] = [];
  try {
    const [ourPort, qrPort, destPort] = [await freePort(), await freePort(), await freePort()];
    const dest = spawn('storescp', ['--aetitle', 'DEST', '--ignore', String(destPort)], {
      env: DCMTK_ENV,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    children.push(dest);
    await portOpen(destPort, dest, 'storescp');
    const data = join(work, 'ours');
    mkdirSync(data);
    const ours = await startOurServer(ourPort, data, destPort);
    children.push(ours.child);
    const qr = await startDcmqrscp(qrPort, work, destPort);
    children.push(qr);

    const files = writeCtSeries(join(work, 'study'), o.objects, { studyInstanceUid: STUDY });
    const bytes = files.reduce((n, f) => n + statSync(f).size, 0);
    await runOk('storescu', ['-aec', 'PACS', HOST, String(ourPort), ...files], DCMTK_ENV);
    await runOk('storescu', ['-aec', 'QRSCP', HOST, String(qrPort), ...files], DCMTK_ENV);

    console.log(
      `Retrieve benchmark: a study of ${o.objects} CT objects (${(bytes / 1e6).toFixed(1)} MB), best of ${o.rounds} rounds`,
    );
    console.log(
      `our server: ${ours.how}; DCMTK: ${(await run('dcmqrscp', ['--version'])).output.split('\n')[0]}`,
    );
    console.log(`node ${process.version}, TCP on ${HOST}; the move destination is storescp --ignore\n`);

    const scenarios: Array<[string, () => Promise<unknown>]> = [
      ['C-MOVE  movescu -> ours', () => movescu(ourPort, 'PACS')],
      ['C-MOVE  movescu -> dcmqrscp', () => movescu(qrPort, 'QRSCP')],
      ['C-GET   getscu  -> ours', () => getscu(ourPort, 'PACS')],
      ['C-GET   getscu  -> dcmqrscp', () => getscu(qrPort, 'QRSCP')],
      ['C-GET   our SCU -> ours', () => ourGetScu(ourPort, 'PACS', o.objects)],
      ['C-GET   our SCU -> dcmqrscp', () => ourGetScu(qrPort, 'QRSCP', o.objects)],
    ];
    // Warm-up: page cache, JIT, dcmqrscp's index.
    for (const [, f] of scenarios) await f();
    const best = scenarios.map(() => Number.POSITIVE_INFINITY);
    for (let round = 1; round <= o.rounds; round++) {
      const line: string[] = [];
      for (const [i, [, f]] of scenarios.entries()) {
        const t = now();
        await f();
        const s = seconds(t);
        best[i] = Math.min(best[i] as number, s);
        line.push(`${(s * 1000).toFixed(0)} ms`);
      }
      console.log(`round ${round}: ${line.join('  ')}`);
    }
    console.log('');
    const w = 30;
    console.log(`${''.padEnd(w)}${'objects/s'.padStart(12)}${'MB/s'.padStart(10)}${'ms'.padStart(10)}`);
    for (const [i, [name]] of scenarios.entries()) {
      const s = best[i] as number;
      console.log(
        `${name.padEnd(w)}${fmt(o.objects / s).padStart(12)}${fmt(bytes / 1e6 / s).padStart(10)}${(s * 1000).toFixed(0).padStart(10)}`,
      );
    }
    const ratio = (a: number, b: number) => `${(b / a).toFixed(2)}x`;
    const [moveOurs, moveQr, getOurs, getQr, ourGetOurs, ourGetQr] = best as [
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    console.log('\nthroughput ratios (ours / dcmqrscp, same client; above 1 is better, the target is 0.8):');
    console.log(`  C-MOVE with movescu:  ${ratio(moveOurs, moveQr)}`);
    console.log(`  C-GET with getscu:    ${ratio(getOurs, getQr)}`);
    console.log(`  C-GET with our SCU:   ${ratio(ourGetOurs, ourGetQr)}`);
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await Promise.all(
      children.map((c) =>
        c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : null,
      ),
    );
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(`bench:retrieve: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
