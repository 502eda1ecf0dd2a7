/**
 * Transcoding on the way out (issue 13 "Targets"), in one run:
 *   - C-MOVE with movescu of a --objects CT study (512x512, 16-bit, 12 bits stored) stored in
 *     JPEG 2000 lossless (encoded by our encoder) from `pacs server` to a storescp that accepts
 *     only uncompressed syntaxes (its default; --ignore: it receives and drops), so every object
 *     is decoded on the way; against the DCMTK-side path for the same study: DCMTK cannot
 *     decompress JPEG 2000 (Debian's DCMTK has no dcmdjp2k) and dcmqrscp cannot transcode, so
 *     the reference is GDCM's `gdcmconv --raw` of each file (one process per file, as a script
 *     would) followed by storescu of the decompressed files to the same storescp. Target >= 0.7x.
 *   - a 512x512 CT frame rendered to a 256x256 JPEG thumbnail (in this process, as a render
 *     worker does): median under 10 ms.
 * Every DCMTK program runs with TCP_NODELAY=1; medians of --rounds rounds, the scenarios taking turns.
 *
 * Run: npm run bench:transcode  (or node dist/bench/transcode.js [--objects N] [--rounds N])
 */
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { thumbnailTimes, toJpeg2000Lossless, writeCtSeries } from './adapters.js';
import {
  fmt,
  HOST,
  have,
  inRounds,
  median,
  numberArg,
  PACS_BIN,
  type Peer,
  printPeers,
  printTable,
  runMain,
  runOk,
  startPacsServer,
  startStorescp,
  Targets,
} from './common.js';

const STUDY = '1.2.826.0.1.3680043.8.498.1313';
const KEYS = ['-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${STUDY}`];

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const objects = numberArg(argv, '--objects', 100);
  const rounds = Math.max(1, numberArg(argv, '--rounds', 3));
  console.log(
    `load average at start: ${loadavg()
      .map((l) => fmt(l, 2))
      .join(' ')} (${cpus().length} cores)`,
  );
  const work = await mkdtemp(join(tmpdir(), 'pacs-bench-transcode-'));
  const peers: Peer[] = [];
  try {
    if (!(await have('gdcmconv'))) throw new Error('gdcmconv is missing: apt-get install libgdcm-tools');
    const dest = await startStorescp(join(work, 'dest'), { ignore: true, aet: 'DEST' });
    peers.push(dest);
    const ours = await startPacsServer({ dir: join(work, 'pacs'), peers: [`DEST=${HOST}:${dest.port}`] });
    peers.push(ours);
    const natives = writeCtSeries(join(work, 'native'), objects, { studyInstanceUid: STUDY });
    const j2k = await toJpeg2000Lossless(natives, join(work, 'j2k'));
    const bytes = j2k.reduce((n, f) => n + statSync(f).size, 0);
    await runOk(process.execPath, [PACS_BIN, 'store', '--aec', ours.aet, HOST, String(ours.port), ...j2k]);

    const scenarios: Array<{ name: string; measure: () => Promise<number> }> = [
      {
        name: 'C-MOVE movescu -> pacs server (J2K decoded on the way)',
        measure: async () => {
          const t = performance.now();
          await runOk('movescu', ['-S', '-aec', ours.aet, '-aem', 'DEST', ...KEYS, HOST, String(ours.port)]);
          return (performance.now() - t) / 1000;
        },
      },
      {
        name: 'gdcmconv --raw (per file) + storescu',
        measure: async () => {
          const raw = join(work, 'raw');
          rmSync(raw, { recursive: true, force: true });
          mkdirSync(raw);
          const t = performance.now();
          const out: string[] = [];
          for (const f of j2k) {
            const o = join(raw, f.split('/').at(-1) as string);
            await runOk('gdcmconv', ['--raw', f, o]);
            out.push(o);
          }
          await runOk('storescu', ['-aec', dest.aet, HOST, String(dest.port), ...out]);
          return (performance.now() - t) / 1000;
        },
      },
    ];
    for (const s of scenarios) await s.measure(); // warm-up
    const values = await inRounds(rounds, scenarios, (s) => `${fmt(s * 1000, 0)} ms`);
    const seconds = values.map((v) => median(v));
    const thumbs = await thumbnailTimes(200, 20);

    console.log('');
    printPeers([
      ...peers.map((p) => ({ name: p.name === 'storescp' ? 'storescp (DEST)' : p.name, config: p.config })),
      { name: 'gdcmconv', config: 'GDCM gdcmconv --raw, one process per file (JPEG 2000 via OpenJPEG)' },
    ]);
    console.log(
      `\nstudy: ${objects} CT 512x512 in JPEG 2000 lossless (ours), ${fmt(bytes / 1048576, 1)} MiB; medians of ${rounds} rounds`,
    );
    printTable(
      ['scenario', 'seconds', 'objects/s'],
      scenarios.map((s, i) => [
        s.name,
        fmt(seconds[i] as number, 2),
        fmt(objects / (seconds[i] as number), 1),
      ]),
    );
    const p90 = (v: readonly number[]): number =>
      [...v].sort((a, b) => a - b)[Math.floor(v.length * 0.9)] as number;
    console.log(
      `thumbnail 512x512 CT -> 256x256 JPEG (200 renders): wall median ${fmt(median(thumbs.wall), 2)} ms (p90 ${fmt(
        p90(thumbs.wall),
        2,
      )}), CPU median ${fmt(median(thumbs.cpu), 2)} ms (p90 ${fmt(p90(thumbs.cpu), 2)})`,
    );
    console.log(
      `load average at end: ${loadavg()
        .map((l) => fmt(l, 2))
        .join(' ')}`,
    );
    new Targets('issue 13')
      .ratio(
        'C-MOVE 100 J2K CT to an Explicit-VR-LE-only peer vs gdcmconv --raw + storescu',
        seconds[1],
        seconds[0],
        0.7,
      )
      .add({
        what: 'thumbnail 512x512 CT -> 256x256 JPEG, median (wall)',
        measured: median(thumbs.wall),
        op: '<',
        threshold: 10,
        show: (v) => `${fmt(v, 2)} ms`,
      })
      .add({
        what: 'thumbnail 512x512 CT -> 256x256 JPEG, median (CPU time)',
        measured: median(thumbs.cpu),
        op: '<',
        threshold: 10,
        show: (v) => `${fmt(v, 2)} ms`,
      })
      .print();
  } finally {
    for (const p of peers) await p.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

runMain('bench:transcode', main);
