/**
 * The C-FIND query layer (src/archive/index/query.ts) on SQLite, on PostgreSQL (a schema per
 * test) and on the in-memory index: every matching type at every level gives the same answers,
 * which are written out by hand here from the corpus below.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ArchiveIndex } from '../../src/archive/index/archive-index.js';
import { planQuery, type QueryLevel, type QueryOptions } from '../../src/archive/index/query.js';
import { DataSet } from '../../src/dicom/dataset.js';
import { TAG } from '../../src/dicom/dictionary.js';
import {
  ALL_ENGINES,
  CT_IMAGE,
  entryOf,
  GSPS,
  type InstanceSpec,
  MR_IMAGE,
  makeDataSet,
  type OpenedTestIndex,
} from '../archive/helpers.js';

const US_IMAGE = '1.2.840.10008.5.1.4.1.1.6.1';

interface Obj {
  readonly spec: InstanceSpec;
  readonly studyTime?: string;
  readonly noAccession?: boolean;
  readonly noStudyDate?: boolean;
  readonly seriesDescription?: string;
  readonly procedureCode?: string;
}

/** Five patients, six studies, nine series, ten instances. */
const CORPUS: readonly Obj[] = [
  // P1 Doe^John: U1 (CT + PR), U2 (MR)
  ...[1, 2].map((n) => ({
    spec: {
      patientId: 'P1',
      patientName: 'Doe^John',
      birthDate: '19600101',
      sex: 'M',
      studyUid: '1.1',
      studyDate: '20240115',
      accession: 'A1001',
      studyDescription: 'CT CHEST',
      seriesUid: '1.1.1',
      modality: 'CT',
      seriesNumber: 1,
      sopUid: `1.1.1.${n}`,
      instanceNumber: n,
    },
    procedureCode: 'CTCHEST',
  })),
  {
    spec: {
      patientId: 'P1',
      patientName: 'Doe^John',
      birthDate: '19600101',
      sex: 'M',
      studyUid: '1.1',
      studyDate: '20240115',
      accession: 'A1001',
      studyDescription: 'CT CHEST',
      seriesUid: '1.1.2',
      modality: 'PR',
      seriesNumber: 2,
      sopUid: '1.1.2.1',
      sopClass: GSPS,
      instanceNumber: 1,
    },
  },
  ...[1, 2].map((n) => ({
    spec: {
      patientId: 'P1',
      patientName: 'Doe^John',
      birthDate: '19600101',
      sex: 'M',
      studyUid: '1.2',
      studyDate: '20240220',
      accession: 'A1002',
      studyDescription: 'MR HEAD',
      seriesUid: '1.2.1',
      modality: 'MR',
      seriesNumber: 1,
      sopUid: `1.2.1.${n}`,
      sopClass: MR_IMAGE,
      instanceNumber: n,
    },
    studyTime: '143000',
    seriesDescription: 'T1 SAG',
  })),
  // P_1 doe^jane: U3, wild card characters in the accession
  {
    spec: {
      patientId: 'P_1',
      patientName: 'doe^jane',
      birthDate: '19751231',
      sex: 'F',
      studyUid: '1.3',
      studyDate: '20231201',
      accession: 'A[1]',
      studyDescription: 'chest low dose',
      seriesUid: '1.3.1',
      modality: 'CT',
      sopUid: '1.3.1.1',
    },
    studyTime: '235900',
  },
  // P%2 Smith^John^Q: U4 without accession
  {
    spec: {
      patientId: 'P%2',
      patientName: 'Smith^John^Q',
      birthDate: '19800202',
      sex: 'M',
      studyUid: '1.4',
      studyDate: '20240115',
      studyDescription: 'US ABDOMEN',
      seriesUid: '1.4.1',
      modality: 'US',
      sopUid: '1.4.1.1',
      sopClass: US_IMAGE,
    },
    studyTime: '080000',
    noAccession: true,
  },
  // PA1 Yamada: U5 in UTF-8, a second series in another character set
  {
    spec: {
      patientId: 'PA1',
      patientName: 'Yamada^Tarou=山田^太郎=やまだ^たろう',
      birthDate: '19900303',
      sex: 'F',
      studyUid: '1.5',
      studyDate: '20240116',
      accession: 'A1005',
      studyDescription: '胸部',
      seriesUid: '1.5.1',
      modality: 'CT',
      sopUid: '1.5.1.1',
      charset: 'ISO_IR 192',
    },
    studyTime: '090000',
    procedureCode: 'CTCHEST',
  },
  {
    spec: {
      // Latin-1 cannot hold the names: the study keeps those of its first object.
      patientId: 'PA1',
      patientName: 'Yamada^Tarou',
      birthDate: '19900303',
      sex: 'F',
      studyUid: '1.5',
      studyDate: '20240116',
      accession: 'A1005',
      studyDescription: 'Brust',
      seriesUid: '1.5.2',
      modality: 'CT',
      seriesNumber: 2,
      sopUid: '1.5.2.1',
      charset: 'ISO_IR 100',
    },
    seriesDescription: 'Kopf Übersicht',
  },
  // No Patient ID, no study date
  {
    spec: {
      patientId: null,
      patientName: 'Anonymous',
      sex: 'O',
      birthDate: '20000101',
      studyUid: '1.6',
      studyDescription: 'OTHER',
      seriesUid: '1.6.1',
      modality: 'OT',
      sopUid: '1.6.1.1',
    },
    noStudyDate: true,
    noAccession: true,
  },
];

function dataSetOf(o: Obj): DataSet {
  const ds = makeDataSet(o.spec);
  if (o.studyTime !== undefined) ds.setString(TAG.StudyTime, o.studyTime);
  if (o.noAccession) ds.delete(TAG.AccessionNumber);
  if (o.noStudyDate) ds.delete(TAG.StudyDate);
  if (o.seriesDescription !== undefined) ds.setString(TAG.SeriesDescription, o.seriesDescription);
  if (o.procedureCode !== undefined) {
    const item = new DataSet();
    item.setString(TAG.CodeValue, o.procedureCode);
    item.setString(TAG.CodingSchemeDesignator, 'LOCAL');
    ds.setSequence(TAG.ProcedureCodeSequence, [item]);
  }
  return ds;
}

type Key = readonly [keyof typeof TAG, string | readonly string[]];

function identifier(level: QueryLevel, keys: readonly Key[], charset?: string): DataSet {
  const ds = new DataSet();
  if (charset !== undefined) ds.setString(TAG.SpecificCharacterSet, charset.split('\\'));
  ds.setString(TAG.QueryRetrieveLevel, level);
  for (const [k, v] of keys) ds.setString(TAG[k], typeof v === 'string' ? v : [...v]);
  return ds;
}

const UNIQUE: Record<QueryLevel, keyof typeof TAG> = {
  PATIENT: 'PatientID',
  STUDY: 'StudyInstanceUID',
  SERIES: 'SeriesInstanceUID',
  IMAGE: 'SOPInstanceUID',
};

async function answers(
  index: ArchiveIndex,
  level: QueryLevel,
  keys: readonly Key[],
  options: QueryOptions & { charset?: string } = {},
): Promise<DataSet[]> {
  const plan = planQuery(level, identifier(level, keys, options.charset), options);
  assert.deepEqual(plan.compiled.problems, []);
  const out: DataSet[] = [];
  for await (const a of index.find(plan)) out.push(a);
  return out;
}

/** The unique keys of the answers, sorted. */
async function uids(
  index: ArchiveIndex,
  level: QueryLevel,
  keys: readonly Key[],
  options: QueryOptions & { charset?: string } = {},
): Promise<string[]> {
  const key = UNIQUE[level];
  const withKey: Key[] = keys.some(([k]) => k === key) ? [...keys] : [...keys, [key, '']];
  const got = await answers(index, level, withKey, options);
  return got.map((a) => a.string(TAG[key]) ?? '(none)').sort();
}

for (const engine of ALL_ENGINES) {
  describe(`C-FIND query layer on ${engine.name}`, () => {
    let opened: OpenedTestIndex;
    let index: ArchiveIndex;
    before(async () => {
      opened = await engine.open({ durability: 'none' });
      index = opened.index;
      for (const o of CORPUS) {
        const e = entryOf(dataSetOf(o));
        const r = await index.insertInstance(e.record, e.headers);
        assert.equal(r.status, 'inserted');
      }
    });
    after(() => opened.cleanup());

    test('single value matching at every level', async () => {
      assert.deepEqual(await uids(index, 'PATIENT', [['PatientID', 'P1']]), ['P1']);
      assert.deepEqual(await uids(index, 'STUDY', [['PatientID', 'P1']]), ['1.1', '1.2']);
      assert.deepEqual(await uids(index, 'STUDY', [['AccessionNumber', 'A1002']]), ['1.2']);
      assert.deepEqual(await uids(index, 'STUDY', [['StudyDate', '20240115']]), ['1.1', '1.4']);
      assert.deepEqual(await uids(index, 'SERIES', [['Modality', 'CT']]), [
        '1.1.1',
        '1.3.1',
        '1.5.1',
        '1.5.2',
      ]);
      assert.deepEqual(await uids(index, 'SERIES', [['SeriesNumber', '2']]), ['1.1.2', '1.5.2']);
      assert.deepEqual(await uids(index, 'IMAGE', [['SOPInstanceUID', '1.2.1.2']]), ['1.2.1.2']);
      assert.deepEqual(await uids(index, 'IMAGE', [['SOPClassUID', MR_IMAGE]]), ['1.2.1.1', '1.2.1.2']);
      assert.deepEqual(await uids(index, 'IMAGE', [['InstanceNumber', '2']]), ['1.1.1.2', '1.2.1.2']);
      // Patient attributes at lower levels come from the study they were received with.
      assert.deepEqual(await uids(index, 'IMAGE', [['PatientSex', 'F']]), ['1.3.1.1', '1.5.1.1', '1.5.2.1']);
      // A value no entity has, and matching is exact (no prefix match).
      assert.deepEqual(await uids(index, 'STUDY', [['AccessionNumber', 'A100']]), []);
      // Case-sensitive outside PN.
      assert.deepEqual(await uids(index, 'STUDY', [['StudyDescription', 'ct chest']]), []);
    });

    test('list of UID matching', async () => {
      assert.deepEqual(await uids(index, 'STUDY', [['StudyInstanceUID', ['1.1', '1.3', '9.9']]]), [
        '1.1',
        '1.3',
      ]);
      assert.deepEqual(await uids(index, 'SERIES', [['SeriesInstanceUID', ['1.1.2', '1.5.2']]]), [
        '1.1.2',
        '1.5.2',
      ]);
    });

    test('universal matching: zero length and "*" return every entity', async () => {
      assert.deepEqual(await uids(index, 'PATIENT', []), ['(none)', 'P%2', 'P1', 'PA1', 'P_1']);
      assert.deepEqual(await uids(index, 'STUDY', [['AccessionNumber', '*']]), [
        '1.1',
        '1.2',
        '1.3',
        '1.4',
        '1.5',
        '1.6',
      ]);
      assert.equal((await uids(index, 'IMAGE', [])).length, 10);
    });

    test('wild card matching: "*" and "?", case-sensitive, with SQL pattern characters taken literally', async () => {
      assert.deepEqual(await uids(index, 'STUDY', [['AccessionNumber', 'A100*']]), ['1.1', '1.2', '1.5']);
      assert.deepEqual(await uids(index, 'STUDY', [['AccessionNumber', 'A100?']]), ['1.1', '1.2', '1.5']);
      assert.deepEqual(await uids(index, 'STUDY', [['AccessionNumber', 'A?00?']]), ['1.1', '1.2', '1.5']);
      assert.deepEqual(await uids(index, 'STUDY', [['AccessionNumber', 'A[1*']]), ['1.3']);
      assert.deepEqual(await uids(index, 'STUDY', [['AccessionNumber', '*]']]), ['1.3']);
      // "_" and "%" are no wild cards in DICOM.
      assert.deepEqual(await uids(index, 'PATIENT', [['PatientID', 'P_*']]), ['P_1']);
      assert.deepEqual(await uids(index, 'PATIENT', [['PatientID', 'P%?']]), ['P%2']);
      assert.deepEqual(await uids(index, 'PATIENT', [['PatientID', 'P?1']]), ['PA1', 'P_1']);
      assert.deepEqual(await uids(index, 'STUDY', [['StudyDescription', '*CHEST*']]), ['1.1']);
      assert.deepEqual(await uids(index, 'STUDY', [['StudyDescription', '*chest*']]), ['1.3']);
      assert.deepEqual(await uids(index, 'SERIES', [['SeriesDescription', '*Ü*']]), ['1.5.2']);
      // "?" is one character, not one byte.
      assert.deepEqual(await uids(index, 'STUDY', [['StudyDescription', '??']]), ['1.5']);
    });

    test('person names: case-insensitive by default, per component group', async () => {
      assert.deepEqual(await uids(index, 'PATIENT', [['PatientName', 'DOE^JOHN']]), ['P1']);
      assert.deepEqual(await uids(index, 'PATIENT', [['PatientName', 'doe*']]), ['P1', 'P_1']);
      assert.deepEqual(await uids(index, 'PATIENT', [['PatientName', '*^JOHN*']]), ['P%2', 'P1']);
      assert.deepEqual(await uids(index, 'PATIENT', [['PatientName', 'SMITH^JOHN']]), []);
      assert.deepEqual(await uids(index, 'PATIENT', [['PatientName', 'Smith^John^Q']]), ['P%2']);
      assert.deepEqual(await uids(index, 'STUDY', [['PatientName', 'd?e^j*']]), ['1.1', '1.2', '1.3']);
      // Ideographic and phonetic groups, keys in UTF-8.
      assert.deepEqual(
        await uids(index, 'PATIENT', [['PatientName', '=山田^太郎']], { charset: 'ISO_IR 192' }),
        ['PA1'],
      );
      assert.deepEqual(
        await uids(index, 'PATIENT', [['PatientName', '==やまだ*']], { charset: 'ISO_IR 192' }),
        ['PA1'],
      );
      assert.deepEqual(
        await uids(index, 'PATIENT', [['PatientName', 'YAMADA^TAROU=山田^太郎']], { charset: 'ISO_IR 192' }),
        ['PA1'],
      );
      assert.deepEqual(
        await uids(index, 'PATIENT', [['PatientName', '=山田^花子']], { charset: 'ISO_IR 192' }),
        [],
      );
      // The same key in ISO 2022 (JIS X 0208): matched after decoding.
      assert.deepEqual(
        await uids(index, 'PATIENT', [['PatientName', '=山田^太郎']], { charset: '\\ISO 2022 IR 87' }),
        ['PA1'],
      );
      assert.deepEqual(
        await uids(index, 'STUDY', [['ReferringPhysicianName', 'welby*']]).then((u) => u.length),
        6,
      );
    });

    test('person names case-sensitively when the setting is off', async () => {
      const cs = { caseInsensitivePN: false };
      assert.deepEqual(await uids(index, 'PATIENT', [['PatientName', 'DOE^JOHN']], cs), []);
      assert.deepEqual(await uids(index, 'PATIENT', [['PatientName', 'Doe^John']], cs), ['P1']);
      assert.deepEqual(await uids(index, 'PATIENT', [['PatientName', 'doe*']], cs), ['P_1']);
      assert.deepEqual(await uids(index, 'PATIENT', [['PatientName', 'd?e*']], cs), ['P_1']);
    });

    test('range matching on DA and TM, open-ended too, and combined date-time', async () => {
      assert.deepEqual(await uids(index, 'STUDY', [['StudyDate', '20240101-20240131']]), [
        '1.1',
        '1.4',
        '1.5',
      ]);
      assert.deepEqual(await uids(index, 'STUDY', [['StudyDate', '-20231231']]), ['1.3']);
      assert.deepEqual(await uids(index, 'STUDY', [['StudyDate', '20240116-']]), ['1.2', '1.5']);
      assert.deepEqual(await uids(index, 'PATIENT', [['PatientBirthDate', '19700101-19851231']]), [
        'P%2',
        'P_1',
      ]);
      assert.deepEqual(await uids(index, 'STUDY', [['StudyTime', '0800-1000']]), ['1.4', '1.5']);
      assert.deepEqual(await uids(index, 'STUDY', [['StudyTime', '140000-']]), ['1.2', '1.3']);
      // Attribute by attribute: 2024-01-15..16 and 09:00..11:00 on each day.
      const keys: Key[] = [
        ['StudyDate', '20240115-20240116'],
        ['StudyTime', '0900-1100'],
      ];
      assert.deepEqual(await uids(index, 'STUDY', keys), ['1.1', '1.5']);
      // Combined: from 2024-01-15 09:00 to 2024-01-16 11:00, so 08:00 on the 15th is out, 10:15 in.
      assert.deepEqual(await uids(index, 'STUDY', keys, { combinedDateTime: true }), ['1.1', '1.5']);
      const across: Key[] = [
        ['StudyDate', '20240115-20240116'],
        ['StudyTime', '0700-0930'],
      ];
      assert.deepEqual(await uids(index, 'STUDY', across), ['1.4', '1.5']);
      assert.deepEqual(await uids(index, 'STUDY', across, { combinedDateTime: true }), ['1.1', '1.4', '1.5']);
    });

    test('empty value matching ("")', async () => {
      assert.deepEqual(await uids(index, 'STUDY', [['AccessionNumber', '""']]), ['1.4', '1.6']);
      assert.deepEqual(await uids(index, 'STUDY', [['StudyDate', '""']]), ['1.6']);
      assert.deepEqual(await uids(index, 'PATIENT', [['PatientID', '""']]), ['(none)']);
    });

    test('sequence matching returns the matching items', async () => {
      const item = new DataSet();
      item.setString(TAG.CodeValue, 'CTCHEST');
      item.setBytes(TAG.CodingSchemeDesignator, new Uint8Array(0));
      const q = identifier('STUDY', [['StudyInstanceUID', '']]);
      q.setSequence(TAG.ProcedureCodeSequence, [item]);
      const got: DataSet[] = [];
      for await (const a of index.find(planQuery('STUDY', q))) got.push(a);
      assert.deepEqual(got.map((a) => a.string(TAG.StudyInstanceUID)).sort(), ['1.1', '1.5']);
      const items = got[0]?.sequence(TAG.ProcedureCodeSequence) ?? [];
      assert.equal(items.length, 1);
      assert.equal(items[0]?.string(TAG.CodingSchemeDesignator), 'LOCAL');
      // An empty sequence key asks for the sequence: every study, with its items if it has any.
      const all = identifier('STUDY', [['StudyInstanceUID', '']]);
      all.setSequence(TAG.ProcedureCodeSequence, []);
      let n = 0;
      for await (const a of index.find(planQuery('STUDY', all))) {
        n++;
        assert.ok(a.has(TAG.ProcedureCodeSequence));
      }
      assert.equal(n, 6);
    });

    test('computed attributes from the counters, and matching on them', async () => {
      const [p1] = await answers(index, 'PATIENT', [
        ['PatientID', 'P1'],
        ['NumberOfPatientRelatedStudies', ''],
        ['NumberOfPatientRelatedSeries', ''],
        ['NumberOfPatientRelatedInstances', ''],
      ]);
      assert.deepEqual(p1?.numbers(TAG.NumberOfPatientRelatedStudies), [2]);
      assert.deepEqual(p1?.numbers(TAG.NumberOfPatientRelatedSeries), [3]);
      assert.deepEqual(p1?.numbers(TAG.NumberOfPatientRelatedInstances), [5]);
      const [u1] = await answers(index, 'STUDY', [
        ['StudyInstanceUID', '1.1'],
        ['NumberOfStudyRelatedSeries', ''],
        ['NumberOfStudyRelatedInstances', ''],
        ['ModalitiesInStudy', ''],
        ['SOPClassesInStudy', ''],
        ['NumberOfPatientRelatedStudies', ''],
      ]);
      assert.deepEqual(u1?.numbers(TAG.NumberOfStudyRelatedSeries), [2]);
      assert.deepEqual(u1?.numbers(TAG.NumberOfStudyRelatedInstances), [3]);
      assert.deepEqual(u1?.strings(TAG.ModalitiesInStudy), ['CT', 'PR']);
      assert.deepEqual(u1?.strings(TAG.SOPClassesInStudy), [CT_IMAGE, GSPS].sort());
      assert.deepEqual(u1?.numbers(TAG.NumberOfPatientRelatedStudies), [2]);
      const [s] = await answers(index, 'SERIES', [
        ['SeriesInstanceUID', '1.1.1'],
        ['NumberOfSeriesRelatedInstances', ''],
        ['NumberOfStudyRelatedInstances', ''],
      ]);
      assert.deepEqual(s?.numbers(TAG.NumberOfSeriesRelatedInstances), [2]);
      assert.deepEqual(s?.numbers(TAG.NumberOfStudyRelatedInstances), [3]);
      // Modalities in Study matches any of the study's modalities.
      assert.deepEqual(await uids(index, 'STUDY', [['ModalitiesInStudy', 'PR']]), ['1.1']);
      assert.deepEqual(await uids(index, 'STUDY', [['ModalitiesInStudy', ['MR', 'US']]]), ['1.2', '1.4']);
      assert.deepEqual(await uids(index, 'STUDY', [['ModalitiesInStudy', 'C*']]), ['1.1', '1.3', '1.5']);
      assert.deepEqual(await uids(index, 'STUDY', [['NumberOfStudyRelatedInstances', '2']]), ['1.2', '1.5']);
      assert.deepEqual(await uids(index, 'STUDY', [['SOPClassesInStudy', US_IMAGE]]), ['1.4']);
    });

    test('answers hold every key: known values, unknown ones empty, lower levels unsupported', async () => {
      const q = identifier('STUDY', [
        ['StudyInstanceUID', '1.2'],
        ['PatientName', ''],
        ['PatientAge', ''],
        ['AdmittingDiagnosesDescription', ''],
        ['SeriesDescription', ''],
        ['RetrieveAETitle', ''],
        ['InstanceAvailability', ''],
      ]);
      const plan = planQuery('STUDY', q, { retrieveAeTitle: 'ARCHIVE' });
      assert.deepEqual(plan.unsupportedKeys, [TAG.SeriesDescription]);
      const got: DataSet[] = [];
      for await (const a of index.find(plan)) got.push(a);
      assert.equal(got.length, 1);
      const a = got[0] as DataSet;
      assert.equal(a.string(TAG.QueryRetrieveLevel), 'STUDY');
      assert.equal(a.string(TAG.PatientName), 'Doe^John');
      assert.equal(a.string(TAG.PatientAge), '054Y');
      assert.ok(
        a.has(TAG.AdmittingDiagnosesDescription) &&
          a.get(TAG.AdmittingDiagnosesDescription)?.value instanceof Uint8Array,
      );
      assert.equal(a.string(TAG.AdmittingDiagnosesDescription), undefined);
      assert.ok(a.has(TAG.SeriesDescription));
      assert.equal(a.string(TAG.SeriesDescription), undefined);
      assert.equal(a.string(TAG.RetrieveAETitle), 'ARCHIVE');
      assert.equal(a.string(TAG.InstanceAvailability), 'ONLINE');
      assert.equal(a.size, 8);
    });

    test("Specific Character Set: the entity's own, UTF-8 when its levels differ, absent for plain ASCII", async () => {
      const [ascii] = await answers(index, 'STUDY', [
        ['StudyInstanceUID', '1.2'],
        ['PatientName', ''],
      ]);
      assert.equal(ascii?.has(TAG.SpecificCharacterSet), false);
      const [utf8] = await answers(index, 'STUDY', [
        ['StudyInstanceUID', '1.5'],
        ['PatientName', ''],
        ['StudyDescription', ''],
      ]);
      assert.deepEqual(utf8?.strings(TAG.SpecificCharacterSet), ['ISO_IR 192']);
      assert.equal(utf8?.string(TAG.PatientName), 'Yamada^Tarou=山田^太郎=やまだ^たろう');
      assert.equal(utf8?.string(TAG.StudyDescription), '胸部');
      // Series 1.5.2 came in Latin-1, its study in UTF-8: the answer holds both, in UTF-8.
      const [mixed] = await answers(index, 'SERIES', [
        ['SeriesInstanceUID', '1.5.2'],
        ['StudyDescription', ''],
        ['SeriesDescription', ''],
      ]);
      assert.deepEqual(mixed?.strings(TAG.SpecificCharacterSet), ['ISO_IR 192']);
      assert.equal(mixed?.string(TAG.StudyDescription), '胸部');
      assert.equal(mixed?.string(TAG.SeriesDescription), 'Kopf Übersicht');
    });

    test('countMatches counts exactly, and no further than asked', async () => {
      const count = (level: QueryLevel, keys: readonly Key[], atMost: number) =>
        index.countMatches(planQuery(level, identifier(level, keys)), atMost);
      assert.equal(await count('IMAGE', [], 100), 10);
      assert.equal(await count('IMAGE', [], 4), 4);
      assert.equal(await count('STUDY', [['StudyDate', '20240101-']], 100), 4);
      // Not decided by SQL alone (a person name, a time): counted through the matcher.
      assert.equal(await count('STUDY', [['PatientName', 'doe*']], 100), 3);
      assert.equal(await count('STUDY', [['StudyTime', '-0900']], 100), 2);
      assert.equal(await count('STUDY', [['PatientName', 'doe*']], 2), 2);
    });
  });
}

for (const engine of ALL_ENGINES) {
  test(`C-FIND query layer on ${engine.name}: answers stream page by page and stop when aborted`, async () => {
    const opened = await engine.open({ durability: 'none' });
    try {
      const total = 600;
      await opened.index.withTransaction(async (tx) => {
        for (let i = 1; i <= total; i++) {
          const e = entryOf(
            makeDataSet({ studyUid: '7.1', seriesUid: '7.1.1', sopUid: `7.1.1.${i}`, instanceNumber: i }),
          );
          await tx.insertInstance(e.record, e.headers);
        }
      });
      const q = identifier('IMAGE', [
        ['StudyInstanceUID', '7.1'],
        ['SeriesInstanceUID', '7.1.1'],
        ['SOPInstanceUID', ''],
        ['InstanceNumber', ''],
      ]);
      const seen = new Set<string>();
      for await (const a of opened.index.find(planQuery('IMAGE', q)))
        seen.add(a.string(TAG.SOPInstanceUID) ?? '');
      assert.equal(seen.size, total);
      const controller = new AbortController();
      let n = 0;
      for await (const _ of opened.index.find(planQuery('IMAGE', q), controller.signal)) {
        if (++n === 10) controller.abort();
      }
      assert.ok(n < total, `stopped after ${n}`);
    } finally {
      await opened.cleanup();
    }
  });
}
