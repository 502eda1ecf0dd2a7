/**
 * The modality workflow end to end, on SQLite and on PostgreSQL (a schema of its own per run):
 * items imported into the index, the modality's worklist query, N-CREATE built from the answer,
 * the item STARTED, N-SET COMPLETED with the Performed Series Sequence of the acquired objects,
 * the item COMPLETED, a further N-SET refused. The worklist and MPPS services run in one
 * ApplicationEntity in this process.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { SqlArchiveIndex } from '../../src/archive/index/sql-index.js';
import { SqlWorklistStore } from '../../src/archive/worklist/sql-store.js';
import { unwrap } from '../../src/core/result.js';
import { DataSet } from '../../src/dicom/dataset.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { EXPLICIT_VR_LE, generateUid } from '../../src/dicom/uid.js';
import { encodePart10 } from '../../src/dicom/writer.js';
import { ApplicationEntity } from '../../src/network/ae.js';
import { Status } from '../../src/network/dimse-status.js';
import { mppsService } from '../../src/services/mpps/scp.js';
import {
  createMpps,
  MPPS_CONTEXT,
  mppsFromWorklistItem,
  mppsUpdate,
  performedSeriesFromFiles,
  setMpps,
} from '../../src/services/mpps/scu.js';
import { buildWorklistItem, prepareWorklistItem } from '../../src/services/worklist/model.js';
import { worklistService } from '../../src/services/worklist/scp.js';
import {
  fetchWorklist,
  WORKLIST_FIND_CONTEXT,
  withModalityReturnKeys,
} from '../../src/services/worklist/scu.js';
import { postgresEngine, sqliteEngine } from '../archive/helpers.js';

const CT = '1.2.840.10008.5.1.4.1.1.2';
const SR = '1.2.840.10008.5.1.4.1.1.88.11';

/** Writes the objects a CT acquisition leaves: two images of one series and a report. */
async function acquire(dir: string, studyUid: string): Promise<{ series: string[]; instances: string[] }> {
  const series = [generateUid(), generateUid()];
  const instances: string[] = [];
  const objects: Array<{ sopClass: string; series: string; image: boolean }> = [
    { sopClass: CT, series: series[0] as string, image: true },
    { sopClass: CT, series: series[0] as string, image: true },
    { sopClass: SR, series: series[1] as string, image: false },
  ];
  for (const [i, o] of objects.entries()) {
    const ds = new DataSet();
    const uid = generateUid();
    instances.push(uid);
    ds.setString(TAG.SOPClassUID, o.sopClass);
    ds.setString(TAG.SOPInstanceUID, uid);
    ds.setString(TAG.Modality, o.image ? 'CT' : 'SR');
    ds.setString(TAG.StudyInstanceUID, studyUid);
    ds.setString(TAG.SeriesInstanceUID, o.series);
    ds.setString(TAG.SeriesNumber, o.image ? '1' : '2');
    if (o.image) {
      ds.setString(TAG.ProtocolName, 'CHEST ROUTINE');
      ds.setString(TAG.SeriesDescription, 'AXIAL 5mm');
      ds.setString(TAG.OperatorsName, 'Tech^Tina');
      ds.setNumbers(TAG.Rows, 2);
      ds.setNumbers(TAG.Columns, 2);
    }
    await writeFile(join(dir, `obj${i}.dcm`), encodePart10(ds, EXPLICIT_VR_LE));
  }
  await writeFile(join(dir, 'notes.txt'), 'not DICOM');
  return { series, instances };
}

for (const engine of [sqliteEngine, postgresEngine]) {
  describe(`modality workflow on ${engine.name}`, () => {
    test('import, query, N-CREATE, STARTED, N-SET COMPLETED, COMPLETED, further N-SET refused', async () => {
      const opened = await engine.open({ durability: 'none' });
      const store = new SqlWorklistStore(opened.index as SqlArchiveIndex);
      const dir = await mkdtemp(join(tmpdir(), 'pacs-mpps-workflow-'));
      const server = await new ApplicationEntity({ aeTitle: 'PACS' })
        .addService(worklistService({ worklist: store }))
        .addService(mppsService({ worklist: store }))
        .listen({ port: 0, host: '127.0.0.1' });
      try {
        // 1. The order arrives: one item for our CT, one for another station.
        const studyUid = generateUid();
        for (const [aet, acc, study] of [
          ['CT1', 'ACC-100', studyUid],
          ['MR1', 'ACC-200', generateUid()],
        ] as const) {
          const prepared = prepareWorklistItem(
            buildWorklistItem({
              patientName: 'Doe^Jane',
              patientId: 'PID-7',
              patientBirthDate: '19800202',
              patientSex: 'F',
              accessionNumber: acc,
              studyInstanceUid: study,
              requestedProcedureId: 'RP-1',
              requestedProcedureDescription: 'CT THORAX',
              modality: aet === 'CT1' ? 'CT' : 'MR',
              stationAeTitle: aet,
              startDate: '20240611',
              startTime: '093000',
              stepId: 'SPS-1',
              stepDescription: 'THORAX',
              status: 'SCHEDULED',
            }),
          );
          assert.ok('items' in prepared);
          await store.putItems(prepared.items);
        }

        const assoc = unwrap(
          await new ApplicationEntity({ aeTitle: 'CT1' }).connect({
            host: '127.0.0.1',
            port: server.address?.port ?? 0,
            calledAeTitle: 'PACS',
            contexts: [WORKLIST_FIND_CONTEXT, MPPS_CONTEXT],
          }),
        );
        const myWorklist = async (): Promise<DataSet[]> => {
          const q = new DataSet();
          const step = new DataSet(q);
          step.setString(TAG.ScheduledStationAETitle, 'CT1');
          step.setString(TAG.ScheduledProcedureStepStartDate, '20240611');
          q.setSequence(TAG.ScheduledProcedureStepSequence, [step]);
          return unwrap(await fetchWorklist(assoc, withModalityReturnKeys(q)));
        };
        const stepStatus = (item: DataSet | undefined): string | undefined =>
          item?.sequence(TAG.ScheduledProcedureStepSequence)?.[0]?.string(TAG.ScheduledProcedureStepStatus);

        // 2. The modality's worklist: its item only.
        const worklist = await myWorklist();
        assert.deepEqual(
          worklist.map((i) => i.string(TAG.AccessionNumber)),
          ['ACC-100'],
        );
        assert.equal(stepStatus(worklist[0]), 'SCHEDULED');

        // 3. N-CREATE from the answer: the item is STARTED.
        const mppsUid = generateUid();
        const created = unwrap(
          await createMpps(
            assoc,
            mppsFromWorklistItem(worklist[0] as DataSet, { stationAeTitle: 'CT1' }),
            mppsUid,
          ),
        );
        assert.equal(created.status, Status.Success, created.errorComment);
        assert.equal(stepStatus((await myWorklist())[0]), 'STARTED');

        // 4. N-SET COMPLETED with the series acquired: the item is COMPLETED.
        const acquired = await acquire(dir, studyUid);
        const performed = await performedSeriesFromFiles([dir], { retrieveAeTitle: 'PACS' });
        assert.equal(performed.objects, 3);
        assert.equal(performed.skipped.length, 1);
        assert.equal(performed.series.length, 2);
        const done = unwrap(
          await setMpps(assoc, mppsUid, mppsUpdate({ status: 'COMPLETED', series: performed.series })),
        );
        assert.equal(done.status, Status.Success, done.errorComment);
        assert.equal(stepStatus((await myWorklist())[0]), 'COMPLETED');

        const record = await store.findMpps(mppsUid);
        assert.equal(record?.status, 'COMPLETED');
        assert.deepEqual(
          (record?.dataSet['00400340']?.Value ?? []).map(
            (s) => (s as Record<string, { Value?: unknown[] }>)['0020000E']?.Value?.[0],
          ),
          acquired.series,
        );

        // 5. The step is final: nothing changes it any more.
        const late = unwrap(
          await setMpps(assoc, mppsUid, mppsUpdate({ status: 'DISCONTINUED', series: [] })),
        );
        assert.equal(late.status, Status.ProcessingFailure);
        assert.equal(late.errorId, 0xa710);
        assert.equal(stepStatus((await myWorklist())[0]), 'COMPLETED');
        await assoc.release();
      } finally {
        await server.close(0);
        await rm(dir, { recursive: true, force: true });
        await opened.cleanup();
      }
    });
  });
}
