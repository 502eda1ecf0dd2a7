/**
 * C-ECHO, side by side with DCMTK in one run:
 *  1. C-ECHO round trips per second on one association (each echo waits for its response);
 *  2. associations per second, each opened, used for one C-ECHO and released (what echoscu does);
 * for our SCU (library, persistent in this process) and DCMTK echoscu, each against pacs server
 * and DCMTK storescp.
 *
 * echoscu's echo rate is N / (time(--repeat N+1) - time(--repeat 1)), which removes its process
 * start and its association. Its association rate is one process per association, as users run
 * it, so it includes a process start (printed beside it). Each figure is the median of --rounds
 * rounds, the scenarios taking turns. Every DCMTK program runs with TCP_NODELAY=1.
 *
 * Run: npm run bench:echo  (or node dist/bench/echo.js [--echoes N] [--associations N] [--rounds N])
 */
import { rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { echoClient } from './adapters.js';
import {
  fmt,
  HOST,
  inRounds,
  median,
  numberArg,
  type Peer,
  printPeers,
  printTable,
  ratio,
  run,
  runMain,
  runOk,
  startPacsServer,
  startStorescp,
} from './common.js';

interface Figures {
  readonly echoesPerSecond: number;
  readonly associationsPerSecond: number;
}

interface Options {
  readonly echoes: number;
  readonly associations: number;
}

async function ourScu(peer: Peer, o: Options): Promise<Figures> {
  const c = await echoClient(peer.port, peer.aet);
  await c.echoes(Math.min(2000, o.echoes)); // warm-up (JIT)
  let t = performance.now();
  await c.echoes(o.echoes);
  const echoesPerSecond = o.echoes / ((performance.now() - t) / 1000);
  await c.cycles(Math.min(50, o.associations));
  t = performance.now();
  await c.cycles(o.associations);
  return { echoesPerSecond, associationsPerSecond: o.associations / ((performance.now() - t) / 1000) };
}

async function echoscu(peer: Peer, o: Options): Promise<Figures> {
  const args = ['-aec', peer.aet, HOST, String(peer.port)];
  await runOk('echoscu', args); // warm-up (page cache)
  // The fastest of three single-echo runs: a slow process start here would inflate the rate.
  let one = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 3; i++) one = Math.min(one, (await runOk('echoscu', ['--repeat', '1', ...args])).ms);
  const many = (await runOk('echoscu', ['--repeat', String(o.echoes + 1), ...args])).ms;
  const t = performance.now();
  for (let i = 0; i < o.associations; i++) await runOk('echoscu', args);
  return {
    echoesPerSecond: o.echoes / ((many - one) / 1000),
    associationsPerSecond: o.associations / ((performance.now() - t) / 1000),
  };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const o: Options = {
    echoes: numberArg(argv, '--echoes', 10_000),
    associations: numberArg(argv, '--associations', 100),
  };
  const rounds = Math.max(1, numberArg(argv, '--rounds', 5));
  const work = await mkdtemp(join(tmpdir(), 'pacs-bench-echo-'));
  const peers: Peer[] = [];
  try {
    const ours = await startPacsServer({ dir: join(work, 'pacs') });
    peers.push(ours);
    const dcmtk = await startStorescp(join(work, 'storescp'), { ignore: true });
    peers.push(dcmtk);
    const scenarios = [
      { name: 'our SCU  -> pacs server', measure: () => ourScu(ours, o) },
      { name: 'echoscu  -> pacs server', measure: () => echoscu(ours, o) },
      { name: 'echoscu  -> storescp', measure: () => echoscu(dcmtk, o) },
      { name: 'our SCU  -> storescp', measure: () => ourScu(dcmtk, o) },
    ];
    const values = await inRounds(
      rounds,
      scenarios,
      (f) => `${fmt(f.echoesPerSecond)}/${fmt(f.associationsPerSecond)}`,
    );
    const figs: Figures[] = values.map((v) => ({
      echoesPerSecond: median(v.map((f) => f.echoesPerSecond)),
      associationsPerSecond: median(v.map((f) => f.associationsPerSecond)),
    }));
    const starts: number[] = [];
    for (let i = 0; i < 10; i++) starts.push((await run('echoscu', ['--version'])).ms);

    console.log('');
    printPeers([
      ...peers.map((p) => ({ name: p.name, config: p.config })),
      { name: 'our SCU', config: 'our SCU library (dist/src) in this process: persistent, no process start' },
      {
        name: 'echoscu',
        config: `DCMTK echoscu, TCP_NODELAY=1; C-ECHO/s without its start, assoc/s one process each (start ${fmt(median(starts), 1)} ms)`,
      },
    ]);
    console.log(
      `\n${fmt(o.echoes, 0)} echoes on one association, ${o.associations} associations; median of ${rounds} round(s)`,
    );
    printTable(
      ['scenario', 'C-ECHO/s', 'assoc/s'],
      scenarios.map((s, i) => [
        s.name,
        fmt((figs[i] as Figures).echoesPerSecond),
        fmt((figs[i] as Figures).associationsPerSecond),
      ]),
    );
    const [ourPair, dcmtkToOurs, dcmtkPair, ourToDcmtk] = figs as [Figures, Figures, Figures, Figures];
    const line = (label: string, a: Figures, b: Figures): string[] => [
      label,
      ratio(a.echoesPerSecond / b.echoesPerSecond),
      ratio(a.associationsPerSecond / b.associationsPerSecond),
    ];
    console.log('\nratios (ours / DCMTK; above 1 is better; no target in the issues):');
    printTable(
      ['comparison', 'C-ECHO', 'assoc'],
      [
        line('servers, same client echoscu', dcmtkToOurs, dcmtkPair),
        line('servers, same client our SCU', ourPair, ourToDcmtk),
        line('clients, same server storescp', ourToDcmtk, dcmtkPair),
        line("ours end to end vs DCMTK's", ourPair, dcmtkPair),
      ],
    );
  } finally {
    for (const p of peers) await p.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

runMain('bench:echo', main);
