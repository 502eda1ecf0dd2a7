/**
 * `pacs mpps` as users run it (bin/pacs in a child process) against our worklist and MPPS SCPs
 * (in this process, SQLite): create from an accession (one step, and the group case), set with
 * and without the series, the refusals in words with a non-zero exit, create from a data set
 * file; and examples/mpps-scu.ts doing a modality's whole workflow.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type OpenedWorklist, openWorklistStore } from '../../src/archive/worklist/open.js';
import { DataSet } from '../../src/dicom/dataset.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { toDicomJson } from '../../src/dicom/json.js';
import { EXPLICIT_VR_LE, generateUid, isValidUid } from '../../src/dicom/uid.js';
import { encodePart10 } from '../../src/dicom/writer.js';
import { ApplicationEntity, type DicomServer } from '../../src/network/ae.js';
import { mppsService } from '../../src/services/mpps/scp.js';
import { mppsFromWorklistItem } from '../../src/services/mpps/scu.js';
import {
  buildWorklistItem,
  prepareWorklistItem,
  type WorklistItemFields,
} from '../../src/services/worklist/model.js';
import { worklistService } from '../../src/services/worklist/scp.js';
import { REPO_ROOT, run, runPacs } from '../helpers/cli.js';

const MPPS_SCU = join(REPO_ROOT, 'dist', 'examples', 'mpps-scu.js');

function fields(accession: string, step: string, over: Partial<WorklistItemFields> = {}): WorklistItemFields {
  return {
    patientName: 'Doe^Jane',
    patientId: 'PID-1',
    accessionNumber: accession,
    studyInstanceUid: `1.2.826.0.1.3680043.8.1055.4.${accession.replace(/\D/g, '')}`,
    requestedProcedureId: 'RP1',
    requestedProcedureDescription: 'CT ABDOMEN',
    modality: 'CT',
    stationAeTitle: 'CT1',
    startDate: '20240611',
    startTime: '100000',
    stepId: step,
    stepDescription: 'ABDOMEN',
    status: 'SCHEDULED',
    ...over,
  };
}

/** Two CT images of one series, in a folder of their own. */
async function acquisition(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const series = generateUid();
  for (let i = 0; i < 2; i++) {
    const ds = new DataSet();
    ds.setString(TAG.SOPClassUID, '1.2.840.10008.5.1.4.1.1.2');
    ds.setString(TAG.SOPInstanceUID, generateUid());
    ds.setString(TAG.Modality, 'CT');
    ds.setString(TAG.SeriesInstanceUID, series);
    ds.setString(TAG.SeriesDescription, 'ABDOMEN PV');
    ds.setNumbers(TAG.Rows, 1);
    await writeFile(join(dir, `${i}.dcm`), encodePart10(ds, EXPLICIT_VR_LE));
  }
  return dir;
}

describe('pacs mpps', () => {
  let work: string;
  let opened: OpenedWorklist;
  let server: DicomServer;
  let port: string;
  const statusOf = async (accession: string): Promise<string[]> => {
    const out: string[] = [];
    for await (const item of opened.store.listItems({ accessionNumber: accession }))
      out.push(item.status ?? '');
    return out;
  };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'pacs-mpps-cli-'));
    opened = await openWorklistStore(`sqlite:${join(work, 'index.sqlite')}`, { durability: 'none' });
    const items = [
      fields('ACC1', 'S1'),
      fields('ACC2', 'S1'),
      fields('ACC2', 'S2', { stepDescription: 'PELVIS' }),
      fields('ACC3', 'S1'),
    ].flatMap((f) => {
      const p = prepareWorklistItem(buildWorklistItem(f));
      assert.ok('items' in p);
      return p.items;
    });
    await opened.store.putItems(items);
    server = await new ApplicationEntity({ aeTitle: 'PACS' })
      .addService(worklistService({ worklist: opened.store }))
      .addService(mppsService({ worklist: opened.store }))
      .listen({ port: 0, host: '127.0.0.1' });
    port = String(server.address?.port ?? 0);
  });
  after(async () => {
    await server.close(0);
    await opened.close();
    await rm(work, { recursive: true, force: true });
  });

  test('create from an accession, set COMPLETED with the series, refusals in words', async () => {
    const created = await runPacs([
      'mpps',
      'create',
      '--aet',
      'CT1',
      '127.0.0.1',
      port,
      '--accession',
      'ACC1',
    ]);
    assert.equal(created.code, 0, created.stderr);
    const lines = created.stdout.trim().split('\n');
    assert.match(
      lines[0] ?? '',
      /^N-CREATE 0x0000 \(Success\): IN PROGRESS for Doe\^Jane, 1 scheduled step$/,
    );
    const uid = lines[lines.length - 1] ?? '';
    assert.ok(isValidUid(uid), uid);
    assert.deepEqual(await statusOf('ACC1'), ['STARTED']);
    const record = await opened.store.findMpps(uid);
    assert.equal(record?.callingAet, 'CT1');
    assert.equal(record?.dataSet['00400241']?.Value?.[0], 'CT1');

    const incomplete = await runPacs([
      'mpps',
      'set',
      '127.0.0.1',
      port,
      '--uid',
      uid,
      '--status',
      'COMPLETED',
    ]);
    assert.equal(incomplete.code, 1);
    assert.equal(
      incomplete.stderr,
      `pacs: N-SET to PACS@127.0.0.1:${port}: status 0x0121 (Missing attribute value): COMPLETED: PerformedSeriesSequence has no value [PerformedSeriesSequence]\n`,
    );
    const dir = await acquisition(join(work, 'acq1'));
    const done = await runPacs([
      'mpps',
      'set',
      '127.0.0.1',
      port,
      '--uid',
      uid,
      '--status',
      'COMPLETED',
      '--series-from',
      dir,
    ]);
    assert.equal(done.code, 0, done.stderr);
    assert.equal(done.stdout, `N-SET 0x0000 (Success): COMPLETED, 1 performed series\n${uid}\n`);
    assert.deepEqual(await statusOf('ACC1'), ['COMPLETED']);
    const series = (await opened.store.findMpps(uid))?.dataSet['00400340']?.Value?.[0] as Record<
      string,
      { Value?: unknown[] }
    >;
    assert.equal(series['00081140']?.Value?.length, 2);
    assert.equal(series['00080054']?.Value?.[0], 'PACS');
    assert.equal(series['00181030']?.Value?.[0], 'ABDOMEN PV');

    const late = await runPacs(['mpps', 'set', '127.0.0.1', port, '--uid', uid, '--status', 'DISCONTINUED']);
    assert.equal(late.code, 1);
    assert.match(
      late.stderr,
      /status 0x0110 \(Processing failure\): Performed Procedure Step Object may no longer be updated \(Error ID A710\)/,
    );
    const dup = await runPacs(['mpps', 'create', '127.0.0.1', port, '--accession', 'ACC1', '--uid', uid]);
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /status 0x0111 \(Duplicate SOP Instance\)/);
    const unknown = await runPacs([
      'mpps',
      'set',
      '127.0.0.1',
      port,
      '--uid',
      generateUid(),
      '--status',
      'COMPLETED',
    ]);
    assert.match(unknown.stderr, /status 0x0112 \(No such SOP Instance\)/);
    const missing = await runPacs(['mpps', 'create', '127.0.0.1', port, '--accession', 'NOPE']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no worklist item with Accession Number NOPE/);
  });

  test('the group case: one step for every scheduled step of the accession', async () => {
    const r = await runPacs(['mpps', 'create', '--aet', 'CT1', '127.0.0.1', port, '--accession', 'ACC2']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /2 scheduled steps/);
    const uid = r.stdout.trim().split('\n').pop() ?? '';
    assert.deepEqual((await opened.store.findMpps(uid))?.itemIds.length, 2);
    assert.deepEqual(await statusOf('ACC2'), ['STARTED', 'STARTED']);
    const d = await runPacs([
      'mpps',
      'set',
      '127.0.0.1',
      port,
      '--uid',
      uid,
      '--status',
      'DISCONTINUED',
      '-k',
      'PerformedSeriesSequence',
    ]);
    assert.equal(d.code, 0, d.stderr);
    assert.deepEqual(await statusOf('ACC2'), ['DISCONTINUED', 'DISCONTINUED']);
  });

  test('create from a data set file, -k overrides, refusals and usage errors', async () => {
    const attributes = mppsFromWorklistItem(
      buildWorklistItem(fields('ACC9', 'S9', { studyInstanceUid: generateUid() })),
      {
        stationAeTitle: 'US1',
      },
    );
    const file = join(work, 'mpps.json');
    await writeFile(file, JSON.stringify(toDicomJson(attributes)));
    const ok = await runPacs([
      'mpps',
      'create',
      '127.0.0.1',
      port,
      '--file',
      file,
      '-k',
      'PerformedStationName=ROOM 2',
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    const uid = ok.stdout.trim().split('\n').pop() ?? '';
    const record = await opened.store.findMpps(uid);
    assert.deepEqual(record?.itemIds, [], 'unscheduled: kept without items');
    assert.equal(record?.dataSet['00400242']?.Value?.[0], 'ROOM 2');

    const completed = await runPacs([
      'mpps',
      'create',
      '127.0.0.1',
      port,
      '--file',
      file,
      '-k',
      'PerformedProcedureStepStatus=COMPLETED',
    ]);
    assert.equal(completed.code, 1);
    assert.match(
      completed.stderr,
      /status 0x0106 \(Invalid attribute value\): N-CREATE with status "COMPLETED": only IN PROGRESS \[PerformedProcedureStepStatus\]/,
    );
    const noModality = await runPacs([
      'mpps',
      'create',
      '127.0.0.1',
      port,
      '--file',
      file,
      '-k',
      'Modality=',
    ]);
    assert.match(
      noModality.stderr,
      /status 0x0121 \(Missing attribute value\): Modality has no value \[Modality\]/,
    );

    assert.equal(
      (await runPacs(['mpps', 'create', '127.0.0.1', port, '--file', file, '--accession', 'A'])).code,
      2,
    );
    assert.equal(
      (await runPacs(['mpps', 'set', '127.0.0.1', port, '--uid', uid, '--status', 'DONE'])).code,
      2,
    );
  });

  test('examples/mpps-scu.ts: the modality workflow', async () => {
    const dir = await acquisition(join(work, 'acq3'));
    const r = await run(process.execPath, [MPPS_SCU, '127.0.0.1', port, 'PACS', 'CT1', 'ACC3', dir]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.deepEqual(lines.slice(0, 3), [
      'performing ACC3 for Doe^Jane',
      'N-CREATE 0x0000 (Success): IN PROGRESS',
      'N-SET 0x0000 (Success): COMPLETED, 1 series, 2 objects',
    ]);
    assert.equal((await opened.store.findMpps(lines[3] ?? ''))?.status, 'COMPLETED');
    assert.deepEqual(await statusOf('ACC3'), ['COMPLETED']);
  });
});
