/**
 * The worklist against DCMTK: `findscu -W` asks DCMTK's wlmscpfs and our worklist SCP, both
 * holding DCMTK's example worklist (/usr/share/doc/dcmtk/examples/wlistdb, turned into data sets
 * with dump2dcm), the same questions: DCMTK's example queries (wlistqry) and queries of our own
 * (ranges, combined date-time, wild cards, multi-valued AE titles, sequence keys). The answers
 * must be the same data sets (order aside). Our SCP runs in this process on SQLite and on
 * PostgreSQL; the items reach it through `pacs worklist import` run while it is serving.
 *
 * Where wlmscpfs departs from PS3.4 (it matches Scheduled Station AE Title, Patient ID and
 * Modality without wild cards, and does not match Scheduled Station Name at all), our answers
 * follow the standard and are checked on their own.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import type { SqlArchiveIndex } from '../../src/archive/index/sql-index.js';
import { SqlWorklistStore } from '../../src/archive/worklist/sql-store.js';
import { toDicomJson } from '../../src/dicom/json.js';
import { readDicomFile } from '../../src/io/dicom-file.js';
import { ApplicationEntity, type DicomServer } from '../../src/network/ae.js';
import { worklistService } from '../../src/services/worklist/scp.js';
import { type OpenedTestIndex, postgresEngine, sqliteEngine } from '../archive/helpers.js';
import { run, runPacs } from '../helpers/cli.js';
import { dcmtkTool } from '../helpers/corpus.js';
import { type Child, freePort, spawnChild, waitForPort } from '../server/helpers.js';

const EXAMPLES = '/usr/share/doc/dcmtk/examples';

/** The dump files of an example folder (plain or gzip-compressed), sorted. */
async function dumps(dir: string): Promise<string[]> {
  const names = (await readdir(dir)).filter((n) => /\.dump(\.gz)?$/.test(n)).sort();
  assert.ok(names.length > 0, `no DCMTK example dumps in ${dir}: apt-get install dcmtk`);
  return names.map((n) => join(dir, n));
}

/** dump2dcm, from a plain copy when the dump is compressed. */
async function dumpToDicom(dump: string, out: string, work: string): Promise<void> {
  let source = dump;
  if (dump.endsWith('.gz')) {
    source = join(work, basename(dump, '.gz'));
    await writeFile(source, gunzipSync(await readFile(dump)));
  }
  const r = await run(dcmtkTool('dump2dcm'), ['+te', source, out]);
  assert.equal(r.code, 0, `dump2dcm ${source}: ${r.stderr}`);
}

/** `findscu -W` with a query file or keys; the answers as canonical DICOM JSON, sorted. */
async function findscu(
  port: number,
  aec: string,
  query: { file?: string; keys?: readonly string[] },
  work: string,
): Promise<string[]> {
  const dir = await mkdtemp(join(work, 'answers-'));
  const args = ['-W', '-aet', 'MODALITY', '-aec', aec, '-X', '-od', dir, '127.0.0.1', String(port)];
  for (const k of query.keys ?? []) args.push('-k', k);
  if (query.file !== undefined) args.push(query.file);
  const r = await run(dcmtkTool('findscu'), args);
  assert.equal(r.code, 0, `findscu ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  const out: string[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const { dataSet } = await readDicomFile(join(dir, name));
    out.push(JSON.stringify(toDicomJson(dataSet)));
  }
  await rm(dir, { recursive: true, force: true });
  return out.sort();
}

const SPS = 'ScheduledProcedureStepSequence[0]';
const RETURN_KEYS = [
  'AccessionNumber',
  'PatientName',
  'PatientID',
  `${SPS}.Modality`,
  `${SPS}.ScheduledStationAETitle`,
];

/** Queries of our own that wlmscpfs answers by the standard too. */
const OWN_QUERIES: ReadonlyArray<readonly string[]> = [
  ['PatientName=VIVALDI*'],
  ['PatientName=*WOLFGANG*'],
  ['PatientName=HAYDN^FRANZ^JOSEPH'],
  ['PatientName=?EETHOVEN*'],
  ['AccessionNumber=00003'],
  ['RequestedProcedureID=RP454G234'],
  ['PatientBirthDate=17000101-17991231'],
  ['PatientSex=M', 'PatientID=HF'],
  [`${SPS}.Modality=CT`],
  [`${SPS}.Modality=CT`, 'PatientID=AV35674'],
  [`${SPS}.ScheduledStationAETitle=NN77`],
  [`${SPS}.ScheduledStationAETitle=AA33\\TT67\\ZZ99`],
  [`${SPS}.ScheduledProcedureStepStartDate=19960101-19961231`],
  [`${SPS}.ScheduledProcedureStepStartDate=-19951231`],
  [`${SPS}.ScheduledProcedureStepStartDate=19960406`],
  [`${SPS}.ScheduledProcedureStepStartTime=120000-180000`],
  [
    `${SPS}.ScheduledProcedureStepStartDate=19960101-19961231`,
    `${SPS}.ScheduledProcedureStepStartTime=120000-180000`,
  ],
  [
    `${SPS}.ScheduledProcedureStepStartDate=19951206-19960103`,
    `${SPS}.ScheduledProcedureStepStartTime=090000-170000`,
  ],
  [`${SPS}.ScheduledPerformingPhysicianName=ROSS`],
  [`${SPS}.ScheduledPerformingPhysicianName=JOHN*`, `${SPS}.Modality=MR`],
  ['PatientName=NOBODY'],
];

describe('worklist: findscu -W against wlmscpfs and against our SCP', () => {
  let work: string;
  let wlmscpfs: Child | undefined;
  let dcmtkPort: number;
  const ours: Array<{ name: string; port: number; server: DicomServer; index: OpenedTestIndex }> = [];
  const queryFiles: string[] = [];

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'pacs-wl-interop-'));
    const db = join(work, 'wlistdb', 'OFFIS');
    await mkdir(db, { recursive: true });
    await writeFile(join(db, 'lockfile'), '');
    for (const dump of await dumps(join(EXAMPLES, 'wlistdb', 'OFFIS')))
      await dumpToDicom(dump, join(db, `${basename(dump).replace(/\.dump(\.gz)?$/, '')}.wl`), work);
    await mkdir(join(work, 'queries'));
    for (const dump of await dumps(join(EXAMPLES, 'wlistqry'))) {
      const file = join(work, 'queries', `${basename(dump).replace(/\.dump(\.gz)?$/, '')}.dcm`);
      await dumpToDicom(dump, file, work);
      queryFiles.push(file);
    }

    dcmtkPort = await freePort();
    wlmscpfs = spawnChild(dcmtkTool('wlmscpfs'), ['-dfp', join(work, 'wlistdb'), String(dcmtkPort)], {
      name: 'wlmscpfs',
    });
    await waitForPort(dcmtkPort);

    for (const engine of [sqliteEngine, postgresEngine]) {
      const index = await engine.open({ durability: 'none' });
      const store = new SqlWorklistStore(index.index as SqlArchiveIndex);
      const server = await new ApplicationEntity({ aeTitle: 'PACS' })
        .addService(worklistService({ worklist: store }))
        .listen({ port: 0, host: '127.0.0.1' });
      ours.push({ name: engine.name, port: server.address?.port ?? 0, server, index });
    }
  });

  after(async () => {
    await wlmscpfs?.stop();
    for (const o of ours) {
      await o.server.close(0);
      await o.index.cleanup();
    }
    await rm(work, { recursive: true, force: true });
  });

  test('pacs worklist import while the server runs: served at once', async () => {
    for (const o of ours) {
      const before = await findscu(o.port, 'PACS', { keys: ['PatientName'] }, work);
      assert.deepEqual(before, []);
      const r = await runPacs([
        'worklist',
        'import',
        '--db',
        o.index.url ?? '',
        join(work, 'wlistdb', 'OFFIS'),
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /imported 10 worklist items \(10 added, 0 replaced\)/);
      assert.equal((await findscu(o.port, 'PACS', { keys: ['PatientName'] }, work)).length, 10);
    }
  });

  test("DCMTK's example queries get the same answers", async () => {
    assert.equal(queryFiles.length, 13);
    for (const file of queryFiles) {
      const expected = await findscu(dcmtkPort, 'OFFIS', { file }, work);
      for (const o of ours) {
        const got = await findscu(o.port, 'PACS', { file }, work);
        assert.deepEqual(got, expected, `${basename(file)} on ${o.name}`);
      }
    }
  });

  test('our own queries (ranges, wild cards, AE title lists, sequence keys) get the same answers', async () => {
    let answered = 0;
    for (const keys of OWN_QUERIES) {
      const all = [...RETURN_KEYS.filter((k) => !keys.some((x) => x.startsWith(`${k}=`))), ...keys];
      const expected = await findscu(dcmtkPort, 'OFFIS', { keys: all }, work);
      answered += expected.length;
      for (const o of ours) {
        const got = await findscu(o.port, 'PACS', { keys: all }, work);
        assert.deepEqual(got, expected, `${keys.join(' ')} on ${o.name}`);
      }
    }
    assert.ok(answered > 30, `the queries match something (${answered} answers)`);
  });

  test('where wlmscpfs departs from PS3.4, we follow the standard', async () => {
    const accessions = async (port: number, keys: readonly string[]): Promise<string[]> =>
      (await findscu(port, 'PACS', { keys: ['AccessionNumber', ...keys] }, work))
        .map((j) => (JSON.parse(j) as Record<string, { Value?: string[] }>)['00080050']?.Value?.[0] ?? '')
        .sort();
    for (const o of ours) {
      // C.2.2.2.4: wild cards in AE and LO values.
      assert.deepEqual(await accessions(o.port, [`${SPS}.ScheduledStationAETitle=AA*`]), [
        '00000',
        '00004',
        '00009',
      ]);
      assert.deepEqual(await accessions(o.port, ['PatientID=AV*']), ['00000', '00002', '00003']);
      // Scheduled Station Name is a matching key of Table K.6-1.
      assert.deepEqual(await accessions(o.port, [`${SPS}.ScheduledStationName=STN456`]), ['00000']);
    }
    // wlmscpfs: no wild card for AE titles, Scheduled Station Name not matched.
    assert.equal(
      (await findscu(dcmtkPort, 'OFFIS', { keys: [`${SPS}.ScheduledStationAETitle=AA*`] }, work)).length,
      0,
    );
    assert.equal(
      (await findscu(dcmtkPort, 'OFFIS', { keys: [`${SPS}.ScheduledStationName=STN456`] }, work)).length,
      10,
    );
  });
});
