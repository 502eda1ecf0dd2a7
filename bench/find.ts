/**
 * C-FIND, side by side with Orthanc on the same data in one run (issue 11 "Targets"): both
 * servers are filled by storescu (TCP_NODELAY=1) with the same generated objects (--studies
 * 2,000 studies of 5 instances: 10,000 instances, 2 studies per patient), then asked Study Root
 * STUDY-level queries:
 *   exact Patient ID (2 answers), PatientName=SMI* (one family name in six), a one-month Study
 *   Date range, all studies.
 * The headline client is persistent: our SCU library (dist/src), one association per server and
 * query kind, --queries queries each (fewer for the large answers), the servers taking turns in
 * --rounds rounds: median and p95 latency and the query rate (1 / median). A second table has
 * DCMTK findscu, one process and one association per query (process start included), --findscu
 * queries per cell. Matches must agree between the servers.
 *
 * Run: npm run bench:find
 *   (or node dist/bench/find.js [--studies N] [--queries N] [--rounds N] [--findscu N])
 */
import { rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openFindClient, patientIdOf, writeStudyFiles } from './adapters.js';
import {
  existsOrthanc,
  fmt,
  HOST,
  inRounds,
  median,
  numberArg,
  type Peer,
  percentile,
  printPeers,
  printTable,
  ratio,
  runMain,
  runOk,
  sleep,
  startOrthanc,
  startPacsServer,
  Targets,
} from './common.js';

const SHAPE = { series: 1, instances: 5 };
const RETURN_KEYS = {
  PatientName: '',
  PatientID: '',
  StudyDate: '',
  StudyTime: '',
  AccessionNumber: '',
  StudyID: '',
  StudyDescription: '',
  StudyInstanceUID: '',
};

interface Kind {
  readonly name: string;
  readonly keys: (i: number) => Record<string, string>;
  /** Share of --queries this kind runs (large answers take long). */
  readonly share: number;
}

function kinds(studies: number): Kind[] {
  const patients = Math.max(1, Math.floor(studies / 2));
  return [
    {
      name: 'exact Patient ID',
      share: 1,
      keys: (i) => ({ ...RETURN_KEYS, PatientID: patientIdOf(((i * 7907) % patients) * 2) }),
    },
    { name: 'PatientName=SMI*', share: 0.2, keys: () => ({ ...RETURN_KEYS, PatientName: 'SMI*' }) },
    {
      name: 'one-month date range',
      share: 0.2,
      keys: () => ({ ...RETURN_KEYS, StudyDate: '20230601-20230630' }),
    },
    { name: 'all studies', share: 0.05, keys: () => ({ ...RETURN_KEYS }) },
  ];
}

interface Figure {
  readonly median: number;
  readonly p95: number;
  readonly matches: number;
}

/** `count` queries on one association of our SCU library: their times (ms) and the last match count. */
async function persistent(
  server: Peer,
  kind: Kind,
  count: number,
  offset: number,
): Promise<{ times: number[]; matches: number }> {
  const client = await openFindClient(server.port, server.aet);
  const times: number[] = [];
  let matches = 0;
  try {
    await client.query(kind.keys(offset + 99_999)); // the association's first query: warm-up
    for (let i = 0; i < count; i++) {
      const t = performance.now();
      matches = await client.query(kind.keys(offset + i));
      times.push(performance.now() - t);
    }
  } finally {
    await client.close();
  }
  return { times, matches };
}

/** findscu, one process per query: times (ms, process start included) and the answers of the last. */
async function findscu(
  server: Peer,
  kind: Kind,
  count: number,
): Promise<{ times: number[]; matches: number }> {
  const times: number[] = [];
  let matches = 0;
  for (let i = 0; i < count; i++) {
    const keys = Object.entries({ QueryRetrieveLevel: 'STUDY', ...kind.keys(i) }).flatMap(([k, v]) => [
      '-k',
      v === '' ? k : `${k}=${v}`,
    ]);
    const r = await runOk('findscu', ['-S', '-aec', server.aet, ...keys, HOST, String(server.port)]);
    times.push(r.ms);
    matches = (r.output.match(/Find Response: \d+ \(Pending/g) ?? []).length;
  }
  return { times, matches };
}

const summary = (times: readonly number[], matches: number): Figure => ({
  median: median(times),
  p95: percentile(times, 95),
  matches,
});

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const studies = numberArg(argv, '--studies', 2000);
  const queries = numberArg(argv, '--queries', 200);
  const rounds = Math.max(1, numberArg(argv, '--rounds', 3));
  const findscuCount = numberArg(argv, '--findscu', 10);
  if (!existsOrthanc())
    throw new Error('Orthanc is missing (apt-get install -y orthanc): nothing to compare with');
  const work = await mkdtemp(join(tmpdir(), 'pacs-bench-find-'));
  const servers: Peer[] = [];
  try {
    const files = join(work, 'objects');
    const instances = writeStudyFiles(files, studies, SHAPE);
    servers.push(await startPacsServer({ dir: join(work, 'pacs') }));
    servers.push(await startOrthanc(join(work, 'orthanc')));
    for (const s of servers) {
      const t = performance.now();
      await runOk('storescu', ['-aec', s.aet, '+sd', '+r', HOST, String(s.port), files]);
      for (let i = 0; i < 100 && (await s.count()) < instances; i++) await sleep(100);
      console.error(
        `${s.name}: ${instances} instances stored in ${fmt((performance.now() - t) / 1000, 1)} s`,
      );
    }

    const list = kinds(studies);
    const rows: string[][] = [];
    const t = new Targets(`issue 11, C-FIND with a persistent client, ${fmt(instances, 0)} instances`);
    const findscuRows: string[][] = [];
    for (const kind of list) {
      const perRound = Math.max(2, Math.round((queries * kind.share) / rounds));
      const values = await inRounds(
        rounds,
        servers.map((s, si) => ({ name: s.name, measure: () => persistent(s, kind, perRound, si * 1000) })),
        (v) => `${fmt(median(v.times))} ms`,
        (line) => process.stderr.write(`${kind.name}: ${line}\n`),
      );
      const figs = values.map((v) =>
        summary(
          v.flatMap((x) => x.times),
          v.at(-1)?.matches ?? 0,
        ),
      );
      const [ours, orthanc] = figs as [Figure, Figure];
      const agree =
        ours.matches === orthanc.matches ? String(ours.matches) : `DIFFER ${ours.matches}/${orthanc.matches}`;
      rows.push([
        kind.name,
        agree,
        `${fmt(orthanc.median)} / ${fmt(orthanc.p95)}`,
        `${fmt(ours.median)} / ${fmt(ours.p95)}`,
        fmt(1000 / orthanc.median, 1),
        fmt(1000 / ours.median, 1),
        ratio(orthanc.median / ours.median),
      ]);
      t.ratio(`${kind.name}: query rate >= 3x Orthanc`, 1000 / ours.median, 1000 / orthanc.median, 3);
      if (findscuCount > 0) {
        const n = Math.max(1, Math.round(findscuCount * Math.max(kind.share, 0.3)));
        const f = [];
        for (const s of servers) {
          const r = await findscu(s, kind, n);
          f.push(summary(r.times, r.matches));
        }
        const [fo, fr] = f as [Figure, Figure];
        findscuRows.push([
          kind.name,
          String(fo.matches),
          fmt(fr.median),
          fmt(fo.median),
          ratio(fr.median / fo.median),
        ]);
      }
    }

    console.log('');
    printPeers([
      ...servers.map((s) => ({ name: s.name, config: s.config })),
      {
        name: 'client',
        config:
          'our SCU library (dist/src): persistent, one association per server and query kind, max PDU 256 KiB',
      },
      ...(findscuCount > 0
        ? [{ name: 'findscu', config: 'DCMTK findscu, TCP_NODELAY=1, one process and association per query' }]
        : []),
    ]);
    console.log(
      `\n${fmt(studies, 0)} studies / ${fmt(instances, 0)} instances, both filled by storescu; Study Root, STUDY level; median of ${rounds} round(s)`,
    );
    printTable(
      [
        'query',
        'answers',
        'Orthanc ms med/p95',
        'pacs ms med/p95',
        'Orthanc q/s',
        'pacs q/s',
        'pacs / Orthanc',
      ],
      rows,
    );
    if (findscuRows.length > 0) {
      console.log('\nfindscu, one process per query (process start and association included):');
      printTable(['query', 'answers', 'Orthanc ms', 'pacs ms', 'pacs / Orthanc'], findscuRows);
    }
    t.print();
  } finally {
    for (const s of servers) await s.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

runMain('bench:find', main);
