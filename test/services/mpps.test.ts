/**
 * The MPPS SCP's state machine and validation (PS3.4 F.7, Table F.7.2-1) against our SCU in one
 * process, on the in-memory store: every refusal with its status and Error Comment, the links to
 * worklist items and their Scheduled Procedure Step Status, unscheduled steps.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MemoryWorklistStore } from '../../src/archive/worklist/memory-store.js';
import { unwrap } from '../../src/core/result.js';
import { DataSet } from '../../src/dicom/dataset.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { fromDicomJson, toDicomJson } from '../../src/dicom/json.js';
import { generateUid, isValidUid } from '../../src/dicom/uid.js';
import { ApplicationEntity, type DicomServer } from '../../src/network/ae.js';
import type { DimseAssociation } from '../../src/network/dimse.js';
import { CommandField } from '../../src/network/dimse-command.js';
import { Status } from '../../src/network/dimse-status.js';
import { MPPS_SOP_CLASS } from '../../src/services/mpps/model.js';
import { mppsService } from '../../src/services/mpps/scp.js';
import {
  createMpps,
  MPPS_CONTEXT,
  type MppsResponse,
  mppsFromWorklistItem,
  mppsUpdate,
  setMpps,
} from '../../src/services/mpps/scu.js';
import {
  buildWorklistItem,
  prepareWorklistItem,
  type WorklistItemFields,
} from '../../src/services/worklist/model.js';

const ITEM: WorklistItemFields = {
  patientName: 'Doe^John',
  patientId: 'P1',
  accessionNumber: 'ACC1',
  studyInstanceUid: '1.2.826.0.1.3680043.8.1055.2.1',
  requestedProcedureId: 'RP1',
  requestedProcedureDescription: 'CT CHEST',
  modality: 'CT',
  stationAeTitle: 'CT1',
  startDate: '20240611',
  startTime: '083000',
  stepId: 'S1',
  stepDescription: 'CHEST',
  status: 'SCHEDULED',
};

const SERIES = [
  {
    '00080054': { vr: 'AE' as const, Value: ['PACS'] },
    '00081050': { vr: 'PN' as const },
    '00081070': { vr: 'PN' as const },
    '0008103E': { vr: 'LO' as const, Value: ['AXIAL'] },
    '00081140': {
      vr: 'SQ' as const,
      Value: [
        {
          '00081150': { vr: 'UI' as const, Value: ['1.2.840.10008.5.1.4.1.1.2'] },
          '00081155': { vr: 'UI' as const, Value: ['1.2.3.4.5.6'] },
        },
      ],
    },
    '00181030': { vr: 'LO' as const, Value: ['CHEST ROUTINE'] },
    '0020000E': { vr: 'UI' as const, Value: ['1.2.3.4.5'] },
    '00400220': { vr: 'SQ' as const },
  },
];

describe('MPPS SCP', () => {
  const store = new MemoryWorklistStore();
  let server: DicomServer;
  let assoc: DimseAssociation;
  let itemId: number;

  before(async () => {
    const prepared = prepareWorklistItem(buildWorklistItem(ITEM));
    assert.ok('items' in prepared);
    itemId = (await store.putItems(prepared.items)).ids[0] as number;
    server = await new ApplicationEntity({ aeTitle: 'PACS' })
      .addService(mppsService({ worklist: store }))
      .listen({ port: 0, host: '127.0.0.1' });
    assoc = unwrap(
      await new ApplicationEntity({ aeTitle: 'MOD1' }).connect({
        host: '127.0.0.1',
        port: server.address?.port ?? 0,
        calledAeTitle: 'PACS',
        contexts: [MPPS_CONTEXT],
      }),
    );
  });
  after(async () => {
    if (assoc.canSend) await assoc.release();
    await server.close(0);
  });

  /** The N-CREATE attribute list a modality sends for ITEM. */
  function started(): DataSet {
    return mppsFromWorklistItem(buildWorklistItem(ITEM), {
      stationAeTitle: 'MOD1',
      startedAt: new Date(2024, 5, 11, 8, 31),
    });
  }

  async function create(ds: DataSet, uid?: string): Promise<MppsResponse> {
    return unwrap(await createMpps(assoc, ds, uid));
  }

  async function set(uid: string, ds: DataSet): Promise<MppsResponse> {
    return unwrap(await setMpps(assoc, uid, ds));
  }

  function expectRefusal(
    r: MppsResponse,
    status: number,
    comment: RegExp,
    offending?: readonly number[],
  ): void {
    assert.equal(r.status, status, `0x${r.status.toString(16)} ${r.errorComment}`);
    assert.match(r.errorComment ?? '', comment);
    assert.ok((r.errorComment ?? '').length <= 64);
    if (offending !== undefined) assert.deepEqual(r.offendingElements, offending);
  }

  function without(ds: DataSet, tag: number): DataSet {
    const copy = unwrap(fromDicomJson(toDicomJson(ds)));
    copy.delete(tag);
    return copy;
  }

  function withValue(ds: DataSet, tag: number, value: string): DataSet {
    const copy = unwrap(fromDicomJson(toDicomJson(ds)));
    copy.setString(tag, value);
    return copy;
  }

  test('N-CREATE IN PROGRESS: created, linked, the item STARTED', async () => {
    const uid = generateUid();
    const r = await create(started(), uid);
    assert.equal(r.status, Status.Success);
    assert.equal(r.sopInstanceUid, uid);
    const record = await store.findMpps(uid);
    assert.equal(record?.status, 'IN PROGRESS');
    assert.equal(record?.callingAet, 'MOD1');
    assert.deepEqual(record?.itemIds, [itemId]);
    assert.equal((await store.getItem(itemId))?.status, 'STARTED');
  });

  test('N-CREATE without an instance UID: the SCP assigns one and answers it', async () => {
    const pc = assoc.presentationContexts.find((c) => c.abstractSyntax === MPPS_SOP_CLASS);
    const { command: r } = await assoc.requestOne(
      pc?.id ?? 0,
      { commandField: CommandField.N_CREATE_RQ, affectedSopClassUid: MPPS_SOP_CLASS, hasDataSet: true },
      started(),
    );
    assert.equal(r.status, Status.Success);
    assert.ok(r.affectedSopInstanceUid !== undefined && isValidUid(r.affectedSopInstanceUid));
    assert.equal((await store.findMpps(r.affectedSopInstanceUid))?.status, 'IN PROGRESS');
  });

  test('N-CREATE refusals: duplicate, status, missing attributes and values, invalid values', async () => {
    const uid = generateUid();
    assert.equal((await create(started(), uid)).status, Status.Success);
    expectRefusal(await create(started(), uid), Status.DuplicateSopInstance, /exists/);
    expectRefusal(
      await create(withValue(started(), TAG.PerformedProcedureStepStatus, 'COMPLETED')),
      Status.InvalidAttributeValue,
      /only IN PROGRESS/,
      [TAG.PerformedProcedureStepStatus],
    );
    expectRefusal(
      await create(without(started(), TAG.PerformedStationAETitle)),
      Status.MissingAttribute,
      /PerformedStationAETitle is missing/,
      [TAG.PerformedStationAETitle],
    );
    expectRefusal(
      await create(withValue(started(), TAG.PerformedProcedureStepID, '')),
      Status.MissingAttributeValue,
      /PerformedProcedureStepID has no value/,
      [TAG.PerformedProcedureStepID],
    );
    // Type 2: present, possibly empty; absent is missing.
    assert.equal((await create(withValue(started(), TAG.PatientName, ''))).status, Status.Success);
    expectRefusal(
      await create(without(started(), TAG.PatientName)),
      Status.MissingAttribute,
      /PatientName is missing/,
    );
    const noStudy = started();
    noStudy.sequence(TAG.ScheduledStepAttributesSequence)?.[0]?.delete(TAG.StudyInstanceUID);
    expectRefusal(
      await create(noStudy),
      Status.MissingAttribute,
      /ScheduledStepAttributesSequence\[0\]\.StudyInstanceUID is missing/,
    );
    expectRefusal(
      await create(withValue(started(), TAG.PerformedProcedureStepStartDate, '2024-06-11')),
      Status.InvalidAttributeValue,
      /PerformedProcedureStepStartDate "2024-06-11" is not a date/,
    );
    const empty = new DataSet();
    expectRefusal(await create(empty), Status.MissingAttribute, /is missing \(\+\d+ more\)/);
  });

  test('N-SET: unknown instance, not allowed changes, invalid status, final-state requirements', async () => {
    expectRefusal(
      await set(generateUid(), mppsUpdate({ status: 'IN PROGRESS' })),
      Status.NoSuchSopInstance,
      /no MPPS/,
    );
    const uid = generateUid();
    assert.equal((await create(started(), uid)).status, Status.Success);

    // IN PROGRESS -> IN PROGRESS with a description: fine; a not-allowed attribute repeated unchanged too.
    const update = mppsUpdate({ status: 'IN PROGRESS' });
    update.setString(TAG.PerformedProcedureStepDescription, 'CT CHEST, CONTRAST');
    update.setString(TAG.Modality, 'CT');
    assert.equal((await set(uid, update)).status, Status.Success);
    assert.equal((await store.findMpps(uid))?.dataSet['00400254']?.Value?.[0], 'CT CHEST, CONTRAST');

    const changeModality = mppsUpdate({ status: 'IN PROGRESS' });
    changeModality.setString(TAG.Modality, 'MR');
    expectRefusal(await set(uid, changeModality), Status.NoSuchAttribute, /Modality may not be set/, [
      TAG.Modality,
    ]);
    expectRefusal(await set(uid, mppsUpdate({ status: 'DONE' })), Status.InvalidAttributeValue, /"DONE"/);

    // COMPLETED needs series; its items need Protocol Name and Series Instance UID.
    expectRefusal(
      await set(uid, mppsUpdate({ status: 'COMPLETED' })),
      Status.MissingAttributeValue,
      /COMPLETED: PerformedSeriesSequence has no value/,
      [TAG.PerformedSeriesSequence],
    );
    const noProtocol = structuredClone(SERIES);
    delete (noProtocol[0] as Record<string, unknown>)['00181030'];
    expectRefusal(
      await set(uid, mppsUpdate({ status: 'COMPLETED', series: noProtocol })),
      Status.MissingAttribute,
      /PerformedSeriesSequence\[0\]\.ProtocolName is missing/,
    );
    const noEnd = mppsUpdate({ status: 'COMPLETED', series: SERIES });
    noEnd.delete(TAG.PerformedProcedureStepEndTime);
    expectRefusal(
      await set(uid, noEnd),
      Status.MissingAttributeValue,
      /COMPLETED: PerformedProcedureStepEndTime has no value/,
    );
    assert.equal((await store.findMpps(uid))?.status, 'IN PROGRESS', 'a refused N-SET changes nothing');
    assert.equal((await store.getItem(itemId))?.status, 'STARTED');

    // COMPLETED: the item follows; then the instance is final.
    assert.equal(
      (await set(uid, mppsUpdate({ status: 'COMPLETED', series: SERIES }))).status,
      Status.Success,
    );
    assert.equal((await store.findMpps(uid))?.status, 'COMPLETED');
    assert.equal((await store.getItem(itemId))?.status, 'COMPLETED');
    const again = await set(uid, mppsUpdate({ status: 'IN PROGRESS' }));
    expectRefusal(again, Status.ProcessingFailure, /may no longer be updated/);
    assert.equal(again.errorId, 0xa710);
    expectRefusal(
      await set(uid, mppsUpdate({ status: 'DISCONTINUED' })),
      Status.ProcessingFailure,
      /no longer/,
    );
  });

  test('DISCONTINUED without series; the item follows', async () => {
    const uid = generateUid();
    assert.equal((await create(started(), uid)).status, Status.Success);
    assert.equal((await store.getItem(itemId))?.status, 'STARTED');
    const r = await set(uid, mppsUpdate({ status: 'DISCONTINUED', series: [] }));
    assert.equal(r.status, Status.Success, r.errorComment);
    assert.equal((await store.getItem(itemId))?.status, 'DISCONTINUED');
    expectRefusal(
      await set(uid, mppsUpdate({ status: 'COMPLETED', series: SERIES })),
      Status.ProcessingFailure,
      /no longer/,
    );
  });

  test('an unscheduled procedure is accepted and kept', async () => {
    const ds = started();
    const step = ds.sequence(TAG.ScheduledStepAttributesSequence)?.[0] as DataSet;
    step.setString(TAG.StudyInstanceUID, generateUid());
    for (const tag of [TAG.AccessionNumber, TAG.RequestedProcedureID, TAG.ScheduledProcedureStepID])
      step.setBytes(tag, new Uint8Array(0));
    const uid = generateUid();
    assert.equal((await create(ds, uid)).status, Status.Success);
    assert.deepEqual((await store.findMpps(uid))?.itemIds, []);
    assert.equal(
      (await set(uid, mppsUpdate({ status: 'COMPLETED', series: SERIES }))).status,
      Status.Success,
    );
    assert.equal((await store.findMpps(uid))?.status, 'COMPLETED');
  });
});
