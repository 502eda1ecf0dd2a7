/**
 * Modality Worklist SCP against our SCU in one process (an in-process ApplicationEntity), on the
 * in-memory store and on SQLite: answers with every requested attribute (nested ones, expanded
 * empty sequence items, absent sequences left out), character sets, matching (ranges, wild cards,
 * multi-valued AE titles, sequence keys), refused identifiers, streaming and C-CANCEL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { SqlArchiveIndex } from '../../src/archive/index/sql-index.js';
import { MemoryWorklistStore } from '../../src/archive/worklist/memory-store.js';
import { SqlWorklistStore } from '../../src/archive/worklist/sql-store.js';
import type { WorklistStore } from '../../src/archive/worklist/worklist-store.js';
import { unwrap } from '../../src/core/result.js';
import { DataSet } from '../../src/dicom/dataset.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { type DicomJsonObject, toDicomJson } from '../../src/dicom/json.js';
import { ApplicationEntity, type DicomServer } from '../../src/network/ae.js';
import type { DimseAssociation } from '../../src/network/dimse.js';
import { Status } from '../../src/network/dimse-status.js';
import {
  buildIdentifier,
  type KeyAssignment,
  parseKeyAssignment,
} from '../../src/services/query-retrieve/find-scu.js';
import {
  buildWorklistItem,
  prepareWorklistItem,
  type WorklistItemFields,
  worklistItemProblems,
} from '../../src/services/worklist/model.js';
import { worklistService } from '../../src/services/worklist/scp.js';
import {
  queryWorklist,
  WORKLIST_FIND_CONTEXT,
  withModalityReturnKeys,
} from '../../src/services/worklist/scu.js';
import { sqliteEngine } from '../archive/helpers.js';

function items(f: WorklistItemFields): DicomJsonObject[] {
  const prepared = prepareWorklistItem(buildWorklistItem(f));
  assert.ok('items' in prepared, JSON.stringify(prepared));
  return prepared.items;
}

const BASE: WorklistItemFields = {
  patientName: 'Doe^John',
  patientId: 'P1',
  patientBirthDate: '19700101',
  patientSex: 'M',
  accessionNumber: 'A1',
  studyInstanceUid: '1.2.826.0.1.3680043.8.1055.1.1',
  requestedProcedureId: 'RP1',
  requestedProcedureDescription: 'CT CHEST',
  modality: 'CT',
  stationAeTitle: ['CT1', 'CT2'],
  stationName: 'ROOM1',
  startDate: '20240611',
  startTime: '083000',
  stepId: 'S1',
  stepDescription: 'CHEST W/O',
  performingPhysicianName: 'Welby^Marcus',
  status: 'SCHEDULED',
};

const FIXTURE: readonly WorklistItemFields[] = [
  BASE,
  {
    ...BASE,
    patientName: 'Müller^Jörg',
    patientId: 'P2',
    accessionNumber: 'A2',
    studyInstanceUid: '1.2.826.0.1.3680043.8.1055.1.2',
    modality: 'MR',
    stationAeTitle: 'MR1',
    startDate: '20240612',
    startTime: '2300',
    stepId: 'S2',
    characterSet: 'ISO_IR 100',
  },
  {
    ...BASE,
    patientName: 'Yamada^Tarou=山田^太郎=やまだ^たろう',
    patientId: 'P3',
    accessionNumber: 'A3',
    studyInstanceUid: '1.2.826.0.1.3680043.8.1055.1.3',
    modality: 'US',
    stationAeTitle: 'US1',
    startDate: '20240613',
    startTime: '010000',
    stepId: 'S3',
    characterSet: 'ISO_IR 192',
  },
  {
    ...BASE,
    patientName: 'Smith^Ann',
    patientId: 'P4',
    accessionNumber: 'A4',
    studyInstanceUid: '1.2.826.0.1.3680043.8.1055.1.4',
    stationAeTitle: ['CT2', 'CT3'],
    startDate: '20240612',
    startTime: '0700',
    stepId: 'S4',
    status: 'STARTED',
  },
];

interface Rig {
  readonly store: WorklistStore;
  readonly server: DicomServer;
  readonly assoc: DimseAssociation;
  close(): Promise<void>;
}

async function startRig(store: WorklistStore, cleanup: () => Promise<void> = async () => {}): Promise<Rig> {
  const ae = new ApplicationEntity({ aeTitle: 'PACS' }).addService(worklistService({ worklist: store }));
  const server = await ae.listen({ port: 0, host: '127.0.0.1' });
  const scu = new ApplicationEntity({ aeTitle: 'MOD1' });
  const assoc = unwrap(
    await scu.connect({
      host: '127.0.0.1',
      port: server.address?.port ?? 0,
      calledAeTitle: 'PACS',
      contexts: [WORKLIST_FIND_CONTEXT],
    }),
  );
  return {
    store,
    server,
    assoc,
    async close() {
      if (assoc.canSend) await assoc.release();
      await server.close(0);
      await cleanup();
    },
  };
}

/** An identifier from findscu-style keys. */
function keys(...texts: string[]): DataSet {
  const assignments: KeyAssignment[] = texts.map((t) => {
    const parsed = parseKeyAssignment(t);
    assert.ok(parsed.ok, t);
    return parsed.value;
  });
  return buildIdentifier(assignments);
}

async function ask(
  rig: Rig,
  query: DataSet,
): Promise<{ status: number; matches: DataSet[]; comment?: string; offending?: readonly number[] }> {
  const matches: DataSet[] = [];
  const worklist = queryWorklist(rig.assoc, query);
  for await (const ds of worklist) matches.push(ds);
  const result = await worklist.outcome;
  assert.ok(result.ok, result.ok ? '' : result.error.message);
  return {
    status: result.value.status,
    matches,
    ...(result.value.errorComment !== undefined ? { comment: result.value.errorComment } : {}),
    ...(result.value.offendingElements !== undefined ? { offending: result.value.offendingElements } : {}),
  };
}

async function accessions(rig: Rig, ...texts: string[]): Promise<string[]> {
  const r = await ask(rig, keys('AccessionNumber', ...texts));
  assert.equal(r.status, Status.Success);
  return r.matches.map((m) => m.string(TAG.AccessionNumber) ?? '').sort();
}

const ENGINES: ReadonlyArray<{
  name: string;
  open: () => Promise<{ store: WorklistStore; cleanup: () => Promise<void> }>;
}> = [
  { name: 'memory', open: async () => ({ store: new MemoryWorklistStore(), cleanup: async () => {} }) },
  {
    name: 'sqlite',
    open: async () => {
      const opened = await sqliteEngine.open({ durability: 'none' });
      return {
        store: new SqlWorklistStore(opened.index as SqlArchiveIndex),
        cleanup: () => opened.cleanup(),
      };
    },
  },
];

for (const engine of ENGINES) {
  describe(`worklist SCP and SCU (${engine.name} store)`, () => {
    let rig: Rig;
    before(async () => {
      const { store, cleanup } = await engine.open();
      await store.putItems(FIXTURE.flatMap(items));
      rig = await startRig(store, cleanup);
    });
    after(() => rig.close());

    test('returns every requested attribute, nested ones reduced to the item keys', async () => {
      const r = await ask(
        rig,
        keys(
          'PatientName',
          'PatientID=P1',
          'PatientWeight',
          'ScheduledProcedureStepSequence[0].Modality',
          'ScheduledProcedureStepSequence[0].ScheduledStationAETitle',
          'ScheduledProcedureStepSequence[0].ScheduledProcedureStepLocation',
          'ReferencedStudySequence',
          'RequestedProcedureCodeSequence',
        ),
      );
      assert.equal(r.status, Status.Success);
      assert.equal(r.matches.length, 1);
      const json = toDicomJson(r.matches[0] as DataSet);
      assert.deepEqual(json, {
        '00081110': { vr: 'SQ' },
        '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Doe^John' }] },
        '00100020': { vr: 'LO', Value: ['P1'] },
        '00101030': { vr: 'DS' },
        '00400100': {
          vr: 'SQ',
          Value: [
            {
              '00080060': { vr: 'CS', Value: ['CT'] },
              '00400001': { vr: 'AE', Value: ['CT1', 'CT2'] },
              '00400011': { vr: 'SH' },
            },
          ],
        },
      });
    });

    test('expands an empty Scheduled Procedure Step item to the attributes of Table K.6-1', async () => {
      const r = await ask(rig, keys('PatientID=P1', 'ScheduledProcedureStepSequence'));
      const step = r.matches[0]?.sequence(TAG.ScheduledProcedureStepSequence)?.[0];
      assert.ok(step);
      const tags = step.tags().map((t) => t.toString(16).padStart(8, '0'));
      assert.deepEqual(tags, [
        '00080060',
        '00321070',
        '00400001',
        '00400002',
        '00400003',
        '00400004',
        '00400005',
        '00400006',
        '00400007',
        '00400009',
        '00400010',
        '00400011',
        '00400012',
        '00400020',
        '00400400',
      ]);
      assert.equal(step.string(TAG.ScheduledProcedureStepStatus), 'SCHEDULED');
      assert.equal(step.bytes(TAG.ScheduledProcedureStepEndDate)?.length, 0);
    });

    test("character sets: each answer in its item's, declared only when needed", async () => {
      const r = await ask(rig, keys('PatientName', 'PatientID'));
      const byId = new Map(r.matches.map((m) => [m.string(TAG.PatientID), m]));
      assert.equal(byId.get('P1')?.has(TAG.SpecificCharacterSet), false);
      const latin = byId.get('P2');
      assert.equal(latin?.string(TAG.SpecificCharacterSet), 'ISO_IR 100');
      assert.equal(latin?.string(TAG.PatientName), 'Müller^Jörg');
      assert.deepEqual(
        [...(latin?.bytes(TAG.PatientName) ?? [])].slice(0, 7),
        [0x4d, 0xfc, 0x6c, 0x6c, 0x65, 0x72, 0x5e],
      );
      const utf8 = byId.get('P3');
      assert.equal(utf8?.string(TAG.SpecificCharacterSet), 'ISO_IR 192');
      assert.equal(utf8?.string(TAG.PatientName), 'Yamada^Tarou=山田^太郎=やまだ^たろう');
      // A key in another character set than the item's matches on the text.
      const q = new DataSet();
      q.setString(TAG.SpecificCharacterSet, 'ISO_IR 192');
      q.setString(TAG.PatientName, 'Müller*');
      q.setBytes(TAG.PatientID, new Uint8Array(0));
      assert.deepEqual(
        (await ask(rig, q)).matches.map((m) => m.string(TAG.PatientID)),
        ['P2'],
      );
      const q2 = new DataSet();
      q2.setString(TAG.SpecificCharacterSet, 'ISO_IR 192');
      q2.setString(TAG.PatientName, '=山田*');
      q2.setBytes(TAG.PatientID, new Uint8Array(0));
      assert.deepEqual(
        (await ask(rig, q2)).matches.map((m) => m.string(TAG.PatientID)),
        ['P3'],
      );
    });

    test('matches single values, wild cards, ranges, lists and sequence keys', async () => {
      assert.deepEqual(await accessions(rig, 'PatientName=DOE*'), []); // PN is case-sensitive
      assert.deepEqual(await accessions(rig, 'PatientName=Doe*'), ['A1']);
      assert.deepEqual(await accessions(rig, 'PatientName=*n*'), ['A1', 'A4']);
      assert.deepEqual(await accessions(rig, 'PatientID=P?'), ['A1', 'A2', 'A3', 'A4']);
      assert.deepEqual(await accessions(rig, 'AccessionNumber=A1\\A3'), ['A1', 'A3']);
      assert.deepEqual(
        await accessions(rig, 'ScheduledProcedureStepSequence[0].ScheduledStationAETitle=CT2'),
        ['A1', 'A4'],
      );
      assert.deepEqual(
        await accessions(rig, 'ScheduledProcedureStepSequence[0].ScheduledStationAETitle=CT3\\MR1'),
        ['A2', 'A4'],
      );
      assert.deepEqual(
        await accessions(rig, 'ScheduledProcedureStepSequence[0].ScheduledStationAETitle=?R*'),
        ['A2'],
      );
      assert.deepEqual(await accessions(rig, 'ScheduledProcedureStepSequence[0].Modality=CT'), ['A1', 'A4']);
      assert.deepEqual(
        await accessions(rig, 'ScheduledProcedureStepSequence[0].ScheduledProcedureStepStatus=STARTED'),
        ['A4'],
      );
      assert.deepEqual(
        await accessions(rig, 'ScheduledProcedureStepSequence[0].ScheduledStationName=ROOM*'),
        ['A1', 'A2', 'A3', 'A4'],
      );
      assert.deepEqual(
        await accessions(rig, 'ScheduledProcedureStepSequence[0].ScheduledPerformingPhysicianName=Welby*'),
        ['A1', 'A2', 'A3', 'A4'],
      );
      assert.deepEqual(
        await accessions(rig, 'ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=20240612-'),
        ['A2', 'A3', 'A4'],
      );
      assert.deepEqual(
        await accessions(rig, 'ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=-20240612'),
        ['A1', 'A2', 'A4'],
      );
      assert.deepEqual(
        await accessions(rig, 'ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime=0800-2300'),
        ['A1', 'A2'],
      );
      // Combined date-time (C.2.2.2.5): from June 12 22:00 to June 13 02:00, across midnight.
      assert.deepEqual(
        await accessions(
          rig,
          'ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=20240612-20240613',
          'ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime=2200-0200',
        ),
        ['A2', 'A3'],
      );
      // All the keys of one step must hold in the same step.
      assert.deepEqual(
        await accessions(
          rig,
          'ScheduledProcedureStepSequence[0].Modality=CT',
          'ScheduledProcedureStepSequence[0].ScheduledStationAETitle=MR1',
        ),
        [],
      );
      assert.deepEqual(
        await accessions(rig, 'PatientID=P1', 'ScheduledProcedureStepSequence[0].Modality=CT'),
        ['A1'],
      );
      // Query/Retrieve Level is not a worklist key: ignored, and not returned.
      const r = await ask(rig, keys('QueryRetrieveLevel=STUDY', 'PatientID=P1'));
      assert.equal(r.matches.length, 1);
      assert.equal(r.matches[0]?.has(TAG.QueryRetrieveLevel), false);
    });

    test('refuses an identifier it cannot match, with the Error Comment and Offending Element', async () => {
      const r = await ask(
        rig,
        keys('ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=tomorrow'),
      );
      assert.equal(r.status, Status.IdentifierDoesNotMatchSopClass);
      assert.match(r.comment ?? '', /\(0040,0002\)/);
      assert.deepEqual(r.offending, [TAG.ScheduledProcedureStepStartDate]);
      const two = keys(
        'ScheduledProcedureStepSequence[0].Modality=CT',
        'ScheduledProcedureStepSequence[1].Modality=MR',
      );
      const r2 = await ask(rig, two);
      assert.equal(r2.status, Status.IdentifierDoesNotMatchSopClass);
      assert.deepEqual(r2.offending, [TAG.ScheduledProcedureStepSequence]);
    });

    test('a modality query asks for the usual return keys', async () => {
      const r = await ask(
        rig,
        withModalityReturnKeys(keys('ScheduledProcedureStepSequence[0].ScheduledStationAETitle=US1')),
      );
      assert.equal(r.matches.length, 1);
      const m = r.matches[0] as DataSet;
      assert.equal(m.string(TAG.RequestedProcedureDescription), 'CT CHEST');
      const step = m.sequence(TAG.ScheduledProcedureStepSequence)?.[0];
      assert.equal(step?.string(TAG.ScheduledProcedureStepID), 'S3');
      assert.equal(step?.string(TAG.ScheduledProcedureStepStartTime), '010000');
    });
  });
}

describe('worklist SCP streaming and C-CANCEL', () => {
  /** A store whose candidates come slowly, and that says how far it got. */
  class SlowStore extends MemoryWorklistStore {
    read = 0;
    override async *candidates(...args: Parameters<MemoryWorklistStore['candidates']>) {
      for await (const item of super.candidates(...args)) {
        await new Promise((resolve) => setTimeout(resolve, 10));
        this.read++;
        yield item;
      }
    }
  }

  test('answers each match as it is found, and stops on C-CANCEL', async () => {
    const store = new SlowStore();
    await store.putItems(
      Array.from({ length: 40 }, (_, i) =>
        items({ ...BASE, studyInstanceUid: `1.2.3.${i + 1}`, accessionNumber: `X${i}` }),
      ).flat(),
    );
    const rig = await startRig(store);
    try {
      const controller = new AbortController();
      const seenAt: number[] = [];
      const query = queryWorklist(rig.assoc, keys('AccessionNumber'), { signal: controller.signal });
      for await (const _ of query) {
        seenAt.push(store.read);
        if (seenAt.length === 3) controller.abort();
      }
      const result = await query.outcome;
      assert.ok(result.ok);
      assert.equal(result.value.status, Status.Cancel);
      assert.ok(result.value.matches < 40, `${result.value.matches} matches before the cancel took effect`);
      assert.equal(seenAt[0], 1, 'the first match is answered before the second item is read');
      assert.ok(store.read < 40, `the search stopped after ${store.read} items`);
    } finally {
      await rig.close();
    }
  });
});

describe('worklist item model', () => {
  test('names every missing type 1 attribute of Table K.6-1', () => {
    const ds = buildWorklistItem(BASE);
    ds.delete(TAG.PatientID);
    const step = ds.sequence(TAG.ScheduledProcedureStepSequence)?.[0] as DataSet;
    step.delete(TAG.ScheduledStationAETitle);
    step.setString(TAG.ScheduledProcedureStepStartDate, '2024-06-11');
    step.delete(TAG.ScheduledProcedureStepDescription);
    assert.deepEqual(worklistItemProblems(ds), [
      'PatientID (0010,0020) is missing',
      'in the scheduled step: ScheduledStationAETitle (0040,0001) is missing',
      'in the scheduled step: ScheduledProcedureStepDescription (0040,0007) and ScheduledProtocolCodeSequence (0040,0008) are both missing or empty',
      'in the scheduled step: ScheduledProcedureStepStartDate (0040,0002) "2024-06-11" is not a date (YYYYMMDD)',
    ]);
  });

  test('splits an item with two steps into two items', () => {
    const ds = buildWorklistItem(BASE);
    const steps = ds.sequence(TAG.ScheduledProcedureStepSequence) as DataSet[];
    const second = new DataSet(ds);
    for (const e of steps[0] as DataSet) second.set(e);
    second.setString(TAG.ScheduledProcedureStepID, 'S1B');
    ds.setSequence(TAG.ScheduledProcedureStepSequence, [steps[0] as DataSet, second]);
    const prepared = prepareWorklistItem(ds);
    assert.ok('items' in prepared);
    assert.equal(prepared.items.length, 2);
    assert.deepEqual(
      prepared.items.map((i) => ((i['00400100']?.Value?.[0] ?? {}) as DicomJsonObject)['00400009']?.Value),
      [['S1'], ['S1B']],
    );
  });
});
