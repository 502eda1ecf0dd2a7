/**
 * C-STORE ingest, side by side in one run on the same generated objects (issue 11 "Targets").
 * DCMTK's storescu sends (TCP_NODELAY=1, one association per process for all its objects: a
 * persistent client; the time is from its start to its exit, so its process start, a few ms
 * against seconds, is included for every receiver alike) to:
 *   - pacs server, defaults (fsync of each object and folder, SQLite): the headline;
 *   - pacs server with storage.durability none: a second row, what the code path costs without
 *     the flushes, never the headline;
 *   - DCMTK storescp (writes files, keeps no index, never fsyncs); `storescp --fork` for 4 senders;
 *   - Orthanc (SQLite, defaults: it fsyncs its files), TCP_NODELAY=1 like every DCMTK-based peer.
 * Scenarios: 500 CT 512x512 over one association; 2,000 small 64x64 over one association;
 * 4 concurrent senders of 125 CT each. Each receiver starts fresh (empty folders) for each
 * scenario and round, so there are no duplicates and its memory is the scenario's; every object
 * must have arrived (counted in the receiver). Each figure is the median of --rounds rounds, the
 * receivers taking turns. With --large, one 2 GB object is sent by `pacs store` to the server:
 * its peak RSS (slow: it writes 2 GB twice).
 *
 * Prints: each peer's configuration; objects/s, MB/s, idle RSS, peak RSS and RSS per association;
 * the targets of issue 11 with the measured ratios and MET / NOT MET.
 *
 * Run: npm run bench:storage
 *   (or node dist/bench/storage.js [--rounds N] [--ct N] [--small N] [--large] [--keep DIR])
 */

import { once } from 'node:events';
import { createWriteStream, existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { largeObjectHeader, writeCtSeries } from './adapters.js';
import {
  arg,
  existsOrthanc,
  fmt,
  folderBytes,
  HOST,
  have,
  median,
  mib,
  numberArg,
  PACS_BIN,
  type Peer,
  printPeers,
  printTable,
  RssSampler,
  run,
  runMain,
  startOrthanc,
  startPacsServer,
  startStorescp,
  Targets,
} from './common.js';

interface Options {
  readonly rounds: number;
  readonly ct: number;
  readonly small: number;
  readonly large: boolean;
  readonly keep: string | undefined;
}

interface Scenario {
  readonly name: string;
  /** One folder per sender (each one association). */
  readonly folders: readonly string[];
  readonly objects: number;
  readonly bytes: number;
}

type ReceiverKind = 'pacs' | 'pacs-none' | 'storescp' | 'orthanc';

interface Measured {
  readonly seconds: number;
  readonly peakRss: number;
  readonly idleRss: number;
  readonly name: string;
  readonly config: string;
}

async function startReceiver(kind: ReceiverKind, dir: string, concurrent: boolean): Promise<Peer> {
  switch (kind) {
    case 'pacs':
      return startPacsServer({ dir });
    case 'pacs-none':
      return startPacsServer({ dir, durability: 'none' });
    case 'storescp':
      return startStorescp(dir, { fork: concurrent });
    case 'orthanc':
      return startOrthanc(dir);
  }
}

async function runScenario(scenario: Scenario, receiver: Peer): Promise<Measured> {
  const sampler = new RssSampler(receiver.process.pid ?? 0, receiver.forks);
  const started = performance.now();
  const results = await Promise.all(
    scenario.folders.map((folder) =>
      run('storescu', ['-aec', receiver.aet, '+sd', '+r', HOST, String(receiver.port), folder]),
    ),
  );
  const seconds = (performance.now() - started) / 1000;
  const peakRss = sampler.stop();
  for (const r of results)
    if (r.code !== 0)
      throw new Error(`storescu to ${receiver.name} failed (${r.code}): ${r.output.slice(-1500)}`);
  // Orthanc may finish indexing just after its response: give it a moment.
  let count = await receiver.count();
  for (let i = 0; i < 100 && count < scenario.objects; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    count = await receiver.count();
  }
  if (count !== scenario.objects)
    throw new Error(
      `${receiver.name} holds ${count} objects after ${scenario.name}, not ${scenario.objects}`,
    );
  return { seconds, peakRss, idleRss: receiver.idleRss, name: receiver.name, config: receiver.config };
}

/** A Multi-frame Grayscale Word SC object of `frames` 512x512 frames, written as a stream. */
async function writeLargeObject(path: string, frames: number): Promise<number> {
  const frame = Buffer.alloc(512 * 512 * 2);
  const length = frame.length * frames;
  const header = largeObjectHeader(512, 512, frames);
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

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const o: Options = {
    rounds: numberArg(argv, '--rounds', 3),
    ct: numberArg(argv, '--ct', 500),
    small: numberArg(argv, '--small', 2000),
    large: argv.includes('--large'),
    keep: arg(argv, '--keep'),
  };
  for (const tool of ['storescu', 'storescp'])
    if (!(await have(tool))) throw new Error(`${tool} is missing: apt-get install -y dcmtk`);
  const withOrthanc = existsOrthanc();
  if (!withOrthanc) console.log('(Orthanc is missing: apt-get install -y orthanc; left out)');
  const work = o.keep ?? (await mkdtemp(join(tmpdir(), 'pacs-bench-storage-')));
  mkdirSync(work, { recursive: true });
  try {
    console.error(`generating objects in ${work} ...`);
    const ct = join(work, 'src', `ct512-${o.ct}`);
    const small = join(work, 'src', `small64-${o.small}`);
    const perSender = Math.ceil(o.ct / 4);
    if (!existsSync(ct))
      for (let s = 0; s < 4; s++)
        writeCtSeries(join(ct, `sender${s}`), Math.min(perSender, o.ct - s * perSender), {
          seriesNumber: s + 1,
          studyInstanceUid: '1.2.826.0.1.3680043.8.498.500',
        });
    if (!existsSync(small)) writeCtSeries(small, o.small, { rows: 64, columns: 64 });
    const ctBytes = folderBytes(ct);
    const scenarios: Scenario[] = [
      { name: `${fmt(o.ct, 0)} CT 512x512, 1 association`, folders: [ct], objects: o.ct, bytes: ctBytes },
      {
        name: `${fmt(o.small, 0)} small 64x64, 1 association`,
        folders: [small],
        objects: o.small,
        bytes: folderBytes(small),
      },
      {
        name: `4 senders x ${perSender} CT 512x512`,
        folders: [0, 1, 2, 3].map((s) => join(ct, `sender${s}`)),
        objects: o.ct,
        bytes: ctBytes,
      },
    ];
    const kinds: ReceiverKind[] = [
      'pacs',
      'pacs-none',
      'storescp',
      ...(withOrthanc ? ['orthanc' as const] : []),
    ];

    // results[scenario][kind]: one Measured per round.
    const results = scenarios.map(() => new Map<ReceiverKind, Measured[]>());
    const configs = new Map<string, string>();
    for (let round = 1; round <= o.rounds; round++) {
      for (const [si, scenario] of scenarios.entries()) {
        const line: string[] = [];
        for (const kind of kinds) {
          const dir = join(work, 'run', `${round}-${si}-${kind}`);
          rmSync(dir, { recursive: true, force: true });
          const receiver = await startReceiver(kind, dir, scenario.folders.length > 1);
          let m: Measured;
          try {
            m = await runScenario(scenario, receiver);
          } finally {
            await receiver.stop();
            rmSync(dir, { recursive: true, force: true });
          }
          configs.set(m.name, m.config);
          const list = results[si]?.get(kind) ?? [];
          list.push(m);
          results[si]?.set(kind, list);
          line.push(`${m.name} ${fmt(scenario.objects / m.seconds)}/s`);
        }
        console.error(`round ${round}/${o.rounds}, ${scenario.name}: ${line.join(', ')}`);
      }
    }

    /** The median round of a scenario and receiver (by time), with its memory figures. */
    const med = (si: number, kind: ReceiverKind): Measured | undefined => {
      const list = results[si]?.get(kind);
      if (!list || list.length === 0) return undefined;
      const m = median(list.map((x) => x.seconds));
      return list.find((x) => x.seconds === m);
    };
    const rate = (si: number, kind: ReceiverKind): number | undefined => {
      const m = med(si, kind);
      return m ? (scenarios[si] as Scenario).objects / m.seconds : undefined;
    };

    console.log('');
    printPeers([
      {
        name: 'sender',
        config: 'DCMTK storescu, TCP_NODELAY=1, one association per process; its process start is included',
      },
      ...[...configs].map(([name, config]) => ({ name, config })),
    ]);
    console.log(`\nmedian of ${o.rounds} round(s), same objects for every receiver`);
    const rows: string[][] = [];
    for (const [si, scenario] of scenarios.entries())
      for (const kind of kinds) {
        const m = med(si, kind);
        if (!m) continue;
        const assocs = scenario.folders.length;
        rows.push([
          kind === kinds[0] ? scenario.name : '',
          m.name,
          fmt(scenario.objects / m.seconds, 0),
          fmt(scenario.bytes / 1e6 / m.seconds, 1),
          mib(m.idleRss),
          mib(m.peakRss),
          mib(Math.max(0, m.peakRss - m.idleRss) / assocs),
        ]);
      }
    printTable(['scenario', 'receiver', 'objects/s', 'MB/s', 'idle RSS', 'peak RSS', 'RSS/assoc'], rows);
    console.log('  (RSS/assoc: (peak - idle) / associations; storescp --fork: summed over its children)');

    let largePeak: number | undefined;
    if (o.large) {
      const big = join(work, 'src', 'large.dcm');
      const frames = 4000; // 4000 x 512 KiB = 2.1 GB
      const size = existsSync(big) ? statSync(big).size : await writeLargeObject(big, frames);
      const dir = join(work, 'run', 'large');
      rmSync(dir, { recursive: true, force: true });
      const receiver = await startPacsServer({ dir });
      const sampler = new RssSampler(receiver.process.pid ?? 0);
      const started = performance.now();
      try {
        const sent = await run(process.execPath, [PACS_BIN, 'store', HOST, String(receiver.port), big]);
        largePeak = sampler.stop();
        if (sent.code !== 0)
          throw new Error(`pacs store of the large object failed: ${sent.output.slice(-800)}`);
        if ((await receiver.count()) !== 1) throw new Error('the large object was not stored');
      } finally {
        await receiver.stop();
        rmSync(dir, { recursive: true, force: true });
      }
      const seconds = (performance.now() - started) / 1000;
      console.log(
        `\none ${fmt(size / 1e9, 2)} GB object (${frames} frames of 512x512) by pacs store to pacs server: ` +
          `${fmt(size / 1e6 / seconds, 1)} MB/s, server peak RSS ${mib(largePeak)}`,
      );
    }

    const t = new Targets('issue 11, ingest');
    for (const si of [0, 1]) {
      const s = (scenarios[si] as Scenario).name;
      t.ratio(`${s}, fsync: >= 2x Orthanc`, rate(si, 'pacs'), rate(si, 'orthanc'), 2);
      t.ratio(`${s}, fsync: >= 0.6x storescp`, rate(si, 'pacs'), rate(si, 'storescp'), 0.6);
    }
    for (const si of [0, 1]) {
      const s = (scenarios[si] as Scenario).name;
      t.ratio(`${s}, durability none: >= 0.9x storescp`, rate(si, 'pacs-none'), rate(si, 'storescp'), 0.9);
    }
    t.ratio(
      `${(scenarios[2] as Scenario).name}, fsync: >= 0.8x storescp --fork`,
      rate(2, 'pacs'),
      rate(2, 'storescp'),
      0.8,
    );
    t.add({
      what: '2 GB object received with < 150 MB RSS (--large)',
      measured: largePeak,
      op: '<',
      threshold: 150e6,
      show: (v) => `${fmt(v / 1e6, 0)} MB`,
    });
    t.print();
    const one = med(0, 'pacs');
    const four = med(2, 'pacs');
    if (one && four)
      console.log(
        `  memory (reported, no target): idle ${mib(one.idleRss)}; per association ${mib(
          Math.max(0, one.peakRss - one.idleRss),
        )} with 1, ${mib(Math.max(0, four.peakRss - four.idleRss) / 4)} with 4`,
      );
  } finally {
    if (o.keep === undefined) rmSync(work, { recursive: true, force: true });
  }
}

runMain('bench:storage', main);
