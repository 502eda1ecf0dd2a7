/**
 * Retrieve and our SCUs, side by side with DCMTK in one run (issue 11 "Targets"), on a study of
 * --objects CT images (512x512, 16-bit; about 0.5 MB each):
 *   - C-MOVE with movescu: pacs server vs dcmqrscp, the destination a storescp --ignore;
 *   - C-GET with getscu --ignore: pacs server vs dcmqrscp; and our SCU library (data dropped);
 *   - `pacs get --out DIR` vs `getscu -od DIR` against the same SCP (dcmqrscp), both writing files;
 *   - `pacs store` vs storescu of the study's files to the same storescp --ignore.
 * pacs server and dcmqrscp are filled by storescu with the same files. Each figure times the
 * whole client run (process start and association included: the start of each program is
 * printed), and is the median of --rounds rounds, the scenarios taking turns. Every DCMTK
 * program runs with TCP_NODELAY=1.
 *
 * Run: npm run bench:retrieve  (or node dist/bench/retrieve.js [--objects N] [--rounds N])
 */
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { libraryGet, writeCtSeries } from './adapters.js';
import {
  countFiles,
  fmt,
  HOST,
  inRounds,
  median,
  numberArg,
  PACS_BIN,
  type Peer,
  printPeers,
  printTable,
  run,
  runMain,
  runOk,
  startDcmqrscp,
  startPacsServer,
  startStorescp,
  Targets,
} from './common.js';

const STUDY = '1.2.826.0.1.3680043.8.498.4242';
const KEYS = ['-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${STUDY}`];

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const objects = numberArg(argv, '--objects', 100);
  const rounds = Math.max(1, numberArg(argv, '--rounds', 5));
  const work = await mkdtemp(join(tmpdir(), 'pacs-bench-retrieve-'));
  const peers: Peer[] = [];
  try {
    const dest = await startStorescp(join(work, 'dest'), { ignore: true, aet: 'DEST' });
    peers.push(dest);
    const ours = await startPacsServer({ dir: join(work, 'pacs'), peers: [`DEST=${HOST}:${dest.port}`] });
    peers.push(ours);
    const qr = await startDcmqrscp(join(work, 'dcmqrscp'), { hosts: [['DEST', dest.port]] });
    peers.push(qr);

    const files = writeCtSeries(join(work, 'study'), objects, { studyInstanceUid: STUDY });
    const bytes = files.reduce((n, f) => n + statSync(f).size, 0);
    for (const p of [ours, qr]) await runOk('storescu', ['-aec', p.aet, HOST, String(p.port), ...files]);

    const out = (name: string): string => {
      const d = join(work, 'out', name);
      rmSync(d, { recursive: true, force: true });
      mkdirSync(d, { recursive: true });
      return d;
    };
    const expectFiles = (d: string, what: string): void => {
      const n = countFiles(d);
      if (n !== objects) throw new Error(`${what}: ${n} files received, not ${objects}`);
    };
    const movescu = (p: Peer) => () =>
      runOk('movescu', ['-S', '-aec', p.aet, '-aem', 'DEST', ...KEYS, HOST, String(p.port)]);
    const getscuIgnore = (p: Peer) => () =>
      runOk('getscu', ['-S', '--ignore', '-aec', p.aet, ...KEYS, HOST, String(p.port)]);
    const scenarios: Array<{ name: string; measure: () => Promise<number> }> = [
      ['C-MOVE movescu -> pacs server', movescu(ours)],
      ['C-MOVE movescu -> dcmqrscp', movescu(qr)],
      ['C-GET getscu --ignore <- pacs server', getscuIgnore(ours)],
      ['C-GET getscu --ignore <- dcmqrscp', getscuIgnore(qr)],
      ['C-GET our SCU library <- pacs server', () => libraryGet(ours.port, ours.aet, STUDY, objects)],
      ['C-GET our SCU library <- dcmqrscp', () => libraryGet(qr.port, qr.aet, STUDY, objects)],
      [
        'pacs get --out <- dcmqrscp',
        async () => {
          const d = out('pacs-get');
          await runOk(process.execPath, [
            PACS_BIN,
            'get',
            '--aec',
            qr.aet,
            ...KEYS.slice(2),
            '--out',
            d,
            HOST,
            String(qr.port),
          ]);
          expectFiles(d, 'pacs get');
        },
      ],
      [
        'getscu -od <- dcmqrscp',
        async () => {
          const d = out('getscu');
          await runOk('getscu', ['-S', '-od', d, '-aec', qr.aet, ...KEYS, HOST, String(qr.port)]);
          expectFiles(d, 'getscu');
        },
      ],
      [
        'pacs store -> storescp --ignore',
        () =>
          runOk(process.execPath, [PACS_BIN, 'store', '--aec', dest.aet, HOST, String(dest.port), ...files]),
      ],
      [
        'storescu -> storescp --ignore',
        () => runOk('storescu', ['-aec', dest.aet, HOST, String(dest.port), ...files]),
      ],
    ].map(([name, f]) => ({
      name: name as string,
      measure: async () => {
        const t = performance.now();
        await (f as () => Promise<unknown>)();
        return (performance.now() - t) / 1000;
      },
    }));
    for (const s of scenarios) await s.measure(); // warm-up: page cache, JIT, dcmqrscp's index
    const values = await inRounds(rounds, scenarios, (s) => `${fmt(s * 1000, 0)} ms`);
    const seconds = values.map((v) => median(v));

    const start = async (cmd: string, args: string[]): Promise<number> => {
      const times: number[] = [];
      for (let i = 0; i < 3; i++) times.push((await run(cmd, args)).ms);
      return median(times);
    };
    const nodeStart = await start(process.execPath, [PACS_BIN, '--help']);
    const dcmtkStart = await start('storescu', ['--version']);

    console.log('');
    printPeers([
      ...peers.map((p) => ({ name: p.name === 'storescp' ? 'storescp (DEST)' : p.name, config: p.config })),
      {
        name: 'clients',
        config: `each run timed whole, process start included (pacs CLI ${fmt(nodeStart, 0)} ms, a DCMTK tool ${fmt(dcmtkStart, 0)} ms)`,
      },
    ]);
    console.log(
      `\na study of ${objects} CT objects (${fmt(bytes / 1e6, 1)} MB); median of ${rounds} round(s)`,
    );
    printTable(
      ['scenario', 'objects/s', 'MB/s', 'ms'],
      scenarios.map((s, i) => {
        const sec = seconds[i] as number;
        return [s.name, fmt(objects / sec, 0), fmt(bytes / 1e6 / sec, 1), fmt(sec * 1000, 0)];
      }),
    );
    const rate = (i: number): number => objects / (seconds[i] as number);
    new Targets('issue 11, retrieve and our SCUs')
      .ratio('C-MOVE (movescu): pacs server >= 1.0x dcmqrscp', rate(0), rate(1), 1)
      .ratio('C-GET (getscu): pacs server >= 1.0x dcmqrscp', rate(2), rate(3), 1)
      .ratio('pacs get >= 1.0x getscu (same SCP)', rate(6), rate(7), 1)
      .ratio('pacs store >= 1.0x storescu (to storescp)', rate(8), rate(9), 1)
      .print();
    console.log(
      `  (reported, no target) C-GET by our SCU library: pacs server / dcmqrscp ${fmt(rate(4) / rate(5), 2)}x`,
    );
  } finally {
    for (const p of peers.reverse()) await p.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

runMain('bench:retrieve', main);
