/**
 * `pacs worklist` as users run it (bin/pacs in a child process): import from DICOM JSON (one
 * object, arrays, gzip) and from wlmscpfs files, all or none with one line per bad item; ls and
 * rm; the query against our SCP (in this process, on the same SQLite index) and against DCMTK's
 * wlmscpfs; and examples/worklist-scu.ts against our SCP.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { type OpenedWorklist, openWorklistStore } from '../../src/archive/worklist/open.js';
import { toDicomJson } from '../../src/dicom/json.js';
import { ApplicationEntity, type DicomServer } from '../../src/network/ae.js';
import { buildWorklistItem, type WorklistItemFields } from '../../src/services/worklist/model.js';
import { worklistService } from '../../src/services/worklist/scp.js';
import { REPO_ROOT, run, runPacs } from '../helpers/cli.js';
import { dcmtkTool } from '../helpers/corpus.js';
import { type Child, freePort, spawnChild, waitForPort } from '../server/helpers.js';

const WORKLIST_SCU = join(REPO_ROOT, 'dist', 'examples', 'worklist-scu.js');

function fields(n: number, over: Partial<WorklistItemFields> = {}): WorklistItemFields {
  return {
    patientName: `Patient^${n}`,
    patientId: `PID${n}`,
    accessionNumber: `ACC${n}`,
    studyInstanceUid: `1.2.826.0.1.3680043.8.1055.3.${n}`,
    requestedProcedureId: `RP${n}`,
    requestedProcedureDescription: 'CT HEAD',
    modality: 'CT',
    stationAeTitle: 'CT1',
    startDate: '20240611',
    startTime: `${String(8 + n).padStart(2, '0')}0000`,
    stepId: `S${n}`,
    stepDescription: 'HEAD',
    status: 'SCHEDULED',
    ...over,
  };
}

describe('pacs worklist', () => {
  let work: string;
  let url: string;
  let opened: OpenedWorklist;
  let server: DicomServer;
  let port: number;
  let wlmscpfs: Child | undefined;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'pacs-wl-cli-'));
    url = `sqlite:${join(work, 'index.sqlite')}`;
    opened = await openWorklistStore(url, { durability: 'none' });
    server = await new ApplicationEntity({ aeTitle: 'PACS' })
      .addService(worklistService({ worklist: opened.store }))
      .listen({ port: 0, host: '127.0.0.1' });
    port = server.address?.port ?? 0;
  });
  after(async () => {
    await wlmscpfs?.stop();
    await server.close(0);
    await opened.close();
    await rm(work, { recursive: true, force: true });
  });

  test('import: one line per bad item, nothing imported', async () => {
    const good = toDicomJson(buildWorklistItem(fields(1)));
    const bad = toDicomJson(buildWorklistItem(fields(2)));
    delete bad['00100020'];
    await writeFile(join(work, 'mixed.json'), JSON.stringify([good, bad]));
    await writeFile(join(work, 'junk.wl'), 'not a worklist');
    const r = await runPacs([
      'worklist',
      'import',
      '--db',
      url,
      join(work, 'mixed.json'),
      join(work, 'junk.wl'),
    ]);
    assert.equal(r.code, 1);
    const lines = r.stderr.trim().split('\n');
    assert.deepEqual(lines.length, 3, r.stderr);
    assert.match(lines[0] ?? '', /mixed\.json \(item 2\): PatientID \(0010,0020\) is missing$/);
    assert.match(lines[1] ?? '', /junk\.wl: neither DICOM nor DICOM JSON/);
    assert.match(lines[2] ?? '', /^pacs: nothing imported: 2 inputs are not valid/);
    assert.equal(await opened.store.countItems(), 0);
  });

  test('import from DICOM JSON (plain and gzip) while the server runs; ls; query; rm', async () => {
    await writeFile(join(work, 'one.json'), JSON.stringify(toDicomJson(buildWorklistItem(fields(1)))));
    const two = [fields(2, { patientName: 'Müller^Jörg' }), fields(3, { stationAeTitle: ['CT1', 'CT2'] })];
    await writeFile(
      join(work, 'two.json.gz'),
      gzipSync(JSON.stringify(two.map((f) => toDicomJson(buildWorklistItem(f))))),
    );
    const r = await runPacs([
      'worklist',
      'import',
      '--db',
      url,
      join(work, 'one.json'),
      join(work, 'two.json.gz'),
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'imported 3 worklist items (3 added, 0 replaced)\n');
    // Importing again replaces (same Study Instance UID and step ID).
    const again = await runPacs(['worklist', 'import', '--db', url, '--json', join(work, 'one.json')]);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(JSON.parse(again.stdout).replaced, 1);

    const ls = await runPacs(['worklist', 'ls', '--db', url]);
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, /^ID\s+ACCESSION\s+PATIENT ID/);
    assert.match(ls.stdout, /Müller\^Jörg/);
    assert.match(ls.stdout, /CT1\\CT2/);
    assert.match(ls.stdout, /3 items\n$/);
    const json = JSON.parse(
      (await runPacs(['worklist', 'ls', '--db', url, '--json', '--accession', 'ACC3'])).stdout,
    );
    assert.equal(json.length, 1);
    assert.equal(json[0].dataSet['00080050'].Value[0], 'ACC3');

    const q = await runPacs([
      'worklist',
      '127.0.0.1',
      String(port),
      '-k',
      'ScheduledProcedureStepSequence[0].ScheduledStationAETitle=CT2',
    ]);
    assert.equal(q.code, 0, q.stderr);
    assert.match(
      q.stdout,
      /ACC3\s+Patient\^3\s+PID3\s+CT HEAD\s+CT\s+CT1\\CT2\s+20240611\s+110000\s+S3\s+SCHEDULED/,
    );
    assert.match(q.stdout, /1 match\n$/);
    const qj = await runPacs(['worklist', '127.0.0.1', String(port), '-k', 'PatientName=Müller*', '--json']);
    assert.equal(qj.code, 0, qj.stderr);
    const answers = JSON.parse(qj.stdout);
    assert.equal(answers.length, 1);
    assert.deepEqual(answers[0]['00100010'].Value, [{ Alphabetic: 'Müller^Jörg' }]);
    assert.equal(answers[0]['00400100'].Value[0]['00400009'].Value[0], 'S2');

    const bad = await runPacs([
      'worklist',
      '127.0.0.1',
      String(port),
      '-k',
      'ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=soon',
    ]);
    assert.equal(bad.code, 1);
    assert.match(
      bad.stderr,
      /status 0xA900 .*: \(0040,0002\): "soon" is neither a DA value nor a DA range \[ScheduledProcedureStepStartDate\]/,
    );

    const removed = await runPacs(['worklist', 'rm', '--db', url, '--accession', 'ACC1']);
    assert.equal(removed.stdout, 'removed 1 worklist item\n');
    assert.equal((await runPacs(['worklist', 'rm', '--db', url])).code, 2);
    assert.equal(
      (await runPacs(['worklist', 'rm', '--db', url, '--all'])).stdout,
      'removed 2 worklist items\n',
    );
  });

  test("examples/worklist-scu.ts: the station's steps of the day", async () => {
    await opened.store.putItems(
      [
        fields(7),
        fields(8, { startDate: '20240612' }),
        fields(9, { stationAeTitle: 'MR1', modality: 'MR' }),
      ].map((f) => toDicomJson(buildWorklistItem(f))),
    );
    const r = await run(process.execPath, [
      WORKLIST_SCU,
      '127.0.0.1',
      String(port),
      'PACS',
      'CT1',
      '20240611',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), [
      'ACC7 | Patient^7 | PID7 | CT | 20240611 150000 | HEAD | SCHEDULED',
      '1 scheduled steps, 0x0000 (Success)',
    ]);
  });

  test('the query against DCMTK wlmscpfs', async () => {
    const db = join(work, 'wlistdb', 'OFFIS');
    await mkdir(db, { recursive: true });
    await writeFile(join(db, 'lockfile'), '');
    const examples = '/usr/share/doc/dcmtk/examples/wlistdb/OFFIS';
    for (const name of (await readdir(examples)).filter((n) => n.endsWith('.dump'))) {
      const d = await run(dcmtkTool('dump2dcm'), [
        '+te',
        join(examples, name),
        join(db, `${basename(name, '.dump')}.wl`),
      ]);
      assert.equal(d.code, 0, d.stderr);
    }
    const dcmtkPort = await freePort();
    wlmscpfs = spawnChild(dcmtkTool('wlmscpfs'), ['-dfp', join(work, 'wlistdb'), String(dcmtkPort)], {
      name: 'wlmscpfs',
    });
    await waitForPort(dcmtkPort);
    const r = await runPacs([
      'worklist',
      '--aec',
      'OFFIS',
      '127.0.0.1',
      String(dcmtkPort),
      '-k',
      'ScheduledProcedureStepSequence[0].Modality=CT',
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const answers = JSON.parse(r.stdout) as Array<Record<string, { Value?: unknown[] }>>;
    assert.deepEqual(answers.map((a) => a['00080050']?.Value?.[0]).sort(), [
      '00002',
      '00006',
      '00008',
      '00009',
    ]);
  });
});
