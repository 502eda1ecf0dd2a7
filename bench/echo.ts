/**
 * C-ECHO benchmark, side by side with DCMTK, in one run:
 *  1. C-ECHO round trips per second on one association (each echo waits for its response);
 *  2. associations per second, each opened, used for one C-ECHO and released (what echoscu does);
 * for our SCU -> our SCP, DCMTK echoscu -> our SCP and DCMTK echoscu -> DCMTK storescp.
 *
 * Our SCP is `node bin/pacs server` in a child process (log level warn, like storescp's default
 * output), or, if the command line has no server yet, an ApplicationEntity with the Verification
 * service in a child process (`node dist/bench/echo.js --serve PORT`). Our SCU runs in this process.
 *
 * echoscu's echo rate is (N - 1) / (time(--repeat N) - time(--repeat 1)), which removes its process
 * start and its association. Its association rate is measured one process per association, as
 * users run it, so it includes a process start: the start of `echoscu --version` is printed next
 * to it. "echoscu -> our SCP" against "echoscu -> storescp" compares the two servers with the same
 * client. The DCMTK tools get TCP_NODELAY=1 (they leave Nagle on otherwise).
 *
 * Each figure is the best of `--rounds` short rounds, the scenarios taking turns in each round: the
 * machines this runs on are small and shared, and the best round is the one least disturbed.
 *
 * Run: npm run bench:echo
 *   (or node dist/bench/echo.js [--echoes N] [--associations N] [--rounds N] [--our-scp ae])
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApplicationEntity } from '../src/network/ae.js';
import type { DimseAssociation } from '../src/network/dimse.js';
import { verificationService } from '../src/services/verification/scp.js';
import { echo, VERIFICATION_CONTEXT } from '../src/services/verification/scu.js';

const HOST = '127.0.0.1';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DCMTK_ENV = { ...process.env, TCP_NODELAY: '1' };

interface Options {
  readonly echoes: number;
  readonly associations: number;
  readonly rounds: number;
  /** 'auto': `pacs server` when the CLI has it; 'ae': the ApplicationEntity child of this file. */
  readonly ourScp: 'auto' | 'ae';
  readonly serve?: number;
}

function parseArgs(argv: readonly string[]): Options {
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const serve = get('--serve');
  return {
    echoes: Number(get('--echoes') ?? 10_000),
    associations: Number(get('--associations') ?? 100),
    rounds: Number(get('--rounds') ?? 5),
    ourScp: get('--our-scp') === 'ae' ? 'ae' : 'auto',
    ...(serve !== undefined ? { serve: Number(serve) } : {}),
  };
}

/** The fallback SCP: an ApplicationEntity serving Verification until killed. */
async function serve(port: number): Promise<void> {
  await new ApplicationEntity({ aeTitle: 'PACS' })
    .addService(verificationService())
    .listen({ port, host: HOST, maxAssociations: 1000 });
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

/** Resolves once something accepts TCP connections on the port. */
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

/** Runs a command to its end (asynchronously); resolves with its exit code and output. */
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

async function runOk(cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv): Promise<void> {
  const r = await run(cmd, args, env);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.output.trim()}`);
}

interface Figures {
  readonly echoesPerSecond: number;
  readonly associationsPerSecond: number;
}

async function ourScu(port: number, calledAeTitle: string, o: Options): Promise<Figures> {
  const ae = new ApplicationEntity({ aeTitle: 'BENCH' });
  const open = async (): Promise<DimseAssociation> => {
    const r = await ae.connect({ host: HOST, port, calledAeTitle, contexts: [VERIFICATION_CONTEXT] });
    if (!r.ok) throw r.error;
    return r.value;
  };
  const echoOnce = async (a: DimseAssociation): Promise<void> => {
    const r = await echo(a);
    if (!r.ok || r.value !== 0) throw new Error(`C-ECHO failed: ${r.ok ? r.value : r.error.message}`);
  };
  const assoc = await open();
  for (let i = 0; i < Math.min(2000, o.echoes); i++) await echoOnce(assoc); // warm-up (JIT)
  let t = now();
  for (let i = 0; i < o.echoes; i++) await echoOnce(assoc);
  const echoesPerSecond = o.echoes / seconds(t);
  await assoc.release();

  const cycle = async (): Promise<void> => {
    const a = await open();
    await echoOnce(a);
    await a.release();
  };
  for (let i = 0; i < Math.min(50, o.associations); i++) await cycle();
  t = now();
  for (let i = 0; i < o.associations; i++) await cycle();
  return { echoesPerSecond, associationsPerSecond: o.associations / seconds(t) };
}

async function echoscu(port: number, calledAeTitle: string, o: Options): Promise<Figures> {
  const args = ['-aec', calledAeTitle, HOST, String(port)];
  await runOk('echoscu', args, DCMTK_ENV); // warm-up (page cache)
  // The fastest of three single-echo runs: a slow process start here would inflate the rate.
  let one = Number.POSITIVE_INFINITY;
  let t: bigint;
  for (let i = 0; i < 3; i++) {
    t = now();
    await runOk('echoscu', ['--repeat', '1', ...args], DCMTK_ENV);
    one = Math.min(one, seconds(t));
  }
  t = now();
  await runOk('echoscu', ['--repeat', String(o.echoes + 1), ...args], DCMTK_ENV);
  const many = seconds(t);
  const echoesPerSecond = o.echoes / (many - one);

  t = now();
  for (let i = 0; i < o.associations; i++) await runOk('echoscu', args, DCMTK_ENV);
  return { echoesPerSecond, associationsPerSecond: o.associations / seconds(t) };
}

/** Seconds to start and end `echoscu --version`: the process start inside its association figure. */
async function echoscuStart(count: number): Promise<number> {
  const t = now();
  for (let i = 0; i < count; i++) await run('echoscu', ['--version'], DCMTK_ENV);
  return seconds(t) / count;
}

/** Our server: `pacs server` when the command line has it, else the fallback SCP of this file. */
/**
 * Starts a server on a free port. Another process may take the port between our probe and the
 * server's bind (other benchmarks and tests share this machine): a server that dies right after
 * starting is started again on another port.
 */
async function startServer(
  what: string,
  start: (port: number) => ChildProcess,
): Promise<{ child: ChildProcess; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const child = start(port);
    try {
      await portOpen(port, child, what);
      await new Promise((resolve) => setTimeout(resolve, 500));
      if (child.exitCode === null && child.signalCode === null) return { child, port };
    } catch (e) {
      if (attempt >= 5) throw e;
    }
    child.kill('SIGKILL');
    if (attempt >= 5) throw new Error(`${what} could not be started`);
  }
}

/** How to start our server: `pacs server` when the CLI has it, else the fallback SCP of this file. */
async function ourServerCommand(
  data: string,
  o: Options,
): Promise<{ how: string; args: (port: number) => string[] }> {
  const pacs = join(ROOT, 'bin', 'pacs');
  const help =
    o.ourScp === 'auto' && existsSync(pacs)
      ? await run(process.execPath, [pacs, 'server', '--help'])
      : undefined;
  if (help?.code === 0 && help.output.includes('--port')) {
    const extra: string[] = [];
    if (help.output.includes('--log-level')) extra.push('--log-level', 'warn');
    if (help.output.includes('--max-associations')) extra.push('--max-associations', '1000');
    return {
      how: 'node bin/pacs server',
      args: (port) => [
        pacs,
        'server',
        '--aet',
        'PACS',
        '--host',
        HOST,
        '--port',
        String(port),
        '--data',
        data,
        ...extra,
      ],
    };
  }
  const self = fileURLToPath(import.meta.url);
  return {
    how: 'an ApplicationEntity (Verification) in a child process',
    args: (port) => [self, '--serve', String(port)],
  };
}

function fmt(n: number): string {
  return n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1);
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  if (o.serve !== undefined) return serve(o.serve);

  const data = mkdtempSync(join(tmpdir(), 'pacs-bench-echo-'));
  const children: ChildProcess[] = [];
  try {
    const ourCommand = await ourServerCommand(data, o);
    const ours = await startServer(ourCommand.how, (port) =>
      spawn(process.execPath, ourCommand.args(port), { cwd: data, stdio: ['ignore', 'ignore', 'inherit'] }),
    );
    children.push(ours.child);
    const dcmtk = await startServer('storescp', (port) =>
      spawn('storescp', ['--aetitle', 'STORESCP', String(port)], {
        cwd: data,
        env: DCMTK_ENV,
        stdio: ['ignore', 'ignore', 'ignore'],
      }),
    );
    children.push(dcmtk.child);
    const [ourPort, dcmtkPort] = [ours.port, dcmtk.port];

    console.log(
      `C-ECHO benchmark: ${o.echoes} echoes on one association, ${o.associations} associations, ` +
        `best of ${o.rounds} rounds`,
    );
    console.log(
      `our SCP: ${ourCommand.how}; DCMTK: ${(await run('echoscu', ['--version'])).output.split('\n')[0]}`,
    );
    console.log(`node ${process.version}, TCP on ${HOST}\n`);

    const scenarios: Array<[string, () => Promise<Figures>]> = [
      ['our SCU  -> our SCP', () => ourScu(ourPort, 'PACS', o)],
      ['echoscu  -> our SCP', () => echoscu(ourPort, 'PACS', o)],
      ['echoscu  -> storescp', () => echoscu(dcmtkPort, 'STORESCP', o)],
      ['our SCU  -> storescp', () => ourScu(dcmtkPort, 'STORESCP', o)],
    ];
    const best: Figures[] = scenarios.map(() => ({ echoesPerSecond: 0, associationsPerSecond: 0 }));
    for (let round = 1; round <= o.rounds; round++) {
      const line: string[] = [];
      for (const [i, [, measure]] of scenarios.entries()) {
        const f = await measure();
        const b = best[i] as Figures;
        best[i] = {
          echoesPerSecond: Math.max(b.echoesPerSecond, f.echoesPerSecond),
          associationsPerSecond: Math.max(b.associationsPerSecond, f.associationsPerSecond),
        };
        line.push(`${fmt(f.echoesPerSecond)}/${fmt(f.associationsPerSecond)}`);
      }
      console.log(`round ${round} (C-ECHO/s / assoc/s, rows below in order): ${line.join('  ')}`);
    }
    const rows: Array<[string, Figures]> = scenarios.map(([name], i) => [name, best[i] as Figures]);
    console.log('');
    const start = await echoscuStart(Math.min(100, o.associations));

    const w = 24;
    console.log(`${''.padEnd(w)}${'C-ECHO/s'.padStart(12)}${'assoc/s'.padStart(12)}`);
    for (const [name, f] of rows) {
      console.log(
        `${name.padEnd(w)}${fmt(f.echoesPerSecond).padStart(12)}${fmt(f.associationsPerSecond).padStart(12)}`,
      );
    }
    console.log(
      `\n(echoscu assoc/s include a process start: echoscu --version takes ${(start * 1000).toFixed(1)} ms)`,
    );
    const [ourPair, dcmtkToOurs, dcmtkPair, ourToDcmtk] = rows.map(([, f]) => f) as [
      Figures,
      Figures,
      Figures,
      Figures,
    ];
    const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}x`;
    const line = (label: string, ours: Figures, theirs: Figures, note = ''): void =>
      console.log(
        `  ${label.padEnd(34)}C-ECHO ${ratio(ours.echoesPerSecond, theirs.echoesPerSecond).padStart(6)}` +
          `   assoc ${ratio(ours.associationsPerSecond, theirs.associationsPerSecond).padStart(6)}${note}`,
      );
    console.log('\nratios (ours / DCMTK; above 1 is better):');
    line('servers, same client echoscu:', dcmtkToOurs, dcmtkPair, '  (assoc: mostly process starts)');
    line('servers, same client our SCU:', ourPair, ourToDcmtk);
    line('clients, same server storescp:', ourToDcmtk, dcmtkPair);
    line("ours end to end vs DCMTK's:", ourPair, dcmtkPair);
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await Promise.all(
      children.map((c) =>
        c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : null,
      ),
    );
    rmSync(data, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(`bench:echo: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
