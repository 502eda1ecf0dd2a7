/**
 * DCMTK's findscu against our C-FIND SCP, on SQLite and on PostgreSQL: the archive is filled by
 * storing generated objects and the pydicom character set corpus with storescu, then every
 * matching type is asked at every level in both models, and the answers are compared with those
 * computed here from the stored files (plain JavaScript over what the files say, not our matcher).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { DataSet } from '../../src/dicom/dataset.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { readDicomFile } from '../../src/io/dicom-file.js';
import { run } from '../helpers/cli.js';
import { dcmtkTool } from '../helpers/corpus.js';
import {
  CHARSET_CORPUS,
  type Engine,
  entities,
  type FindRig,
  queryDataSet,
  type Rec,
  readRecs,
  startFindRig,
  storeWithStorescu,
  studyUid,
  writeGeneratedObjects,
  writeQueryFile,
} from './find-fixtures.js';

type Level = 'PATIENT' | 'STUDY' | 'SERIES' | 'IMAGE';

const KEY_OF: Record<Level, keyof Rec> = {
  PATIENT: 'patientId',
  STUDY: 'studyUid',
  SERIES: 'seriesUid',
  IMAGE: 'sopUid',
};
const TAG_OF: Record<Level, number> = {
  PATIENT: TAG.PatientID,
  STUDY: TAG.StudyInstanceUID,
  SERIES: TAG.SeriesInstanceUID,
  IMAGE: TAG.SOPInstanceUID,
};
const KEYWORD_OF: Record<Level, string> = {
  PATIENT: 'PatientID',
  STUDY: 'StudyInstanceUID',
  SERIES: 'SeriesInstanceUID',
  IMAGE: 'SOPInstanceUID',
};

interface FindscuResult {
  /** The final status as findscu words it: "Success", "Error: DataSetDoesNotMatchSOPClass"... */
  readonly final: string;
  readonly responses: DataSet[];
  readonly stderr: string;
}

async function findscu(
  rig: FindRig,
  model: 'P' | 'S',
  keys: readonly string[],
  queryFile?: string,
  verbosity = '-v',
): Promise<FindscuResult> {
  const out = mkdtempSync(join(rig.dir, 'rsp-'));
  const args = [
    verbosity,
    `-${model}`,
    '-X',
    '-od',
    out,
    '-aec',
    'PACS',
    '127.0.0.1',
    String(rig.port),
    ...keys.flatMap((k) => ['-k', k]),
    ...(queryFile !== undefined ? [queryFile] : []),
  ];
  const r = await run(dcmtkTool('findscu'), args, { env: { TCP_NODELAY: '1' } });
  const final =
    /Received Final Find Response \(([^)]*)\)/.exec(r.stderr)?.[1] ?? `no final response: ${r.stderr}`;
  const responses: DataSet[] = [];
  for (const f of readdirSync(out).sort()) responses.push((await readDicomFile(join(out, f))).dataSet);
  return { final, responses, stderr: r.stderr };
}

/** Uppercase, as the SCP compares person names by default. */
const up = (s: string) => s.toUpperCase();
/** The component groups of a PN value: alphabetic, ideographic, phonetic. */
const groups = (name: string) => name.split('=');
/** A PN group with its components trimmed and trailing empty ones dropped ("Doe^John^^" is "Doe^John"). */
const group = (name: string, i: number) => (groups(name)[i] ?? '').replace(/\^+$/, '');
/** A PN value without trailing empty components and groups (PS3.5 6.2: they may be left out). */
const trimPN = (name: string) => name.replace(/[=^]+$/, '');

interface Case {
  readonly name: string;
  readonly model: 'P' | 'S';
  readonly level: Level;
  readonly keys: readonly string[];
  readonly expect: (r: Rec) => boolean;
  /** Keys in a character set: a query file. */
  readonly file?: DataSet;
}

const P1 = 'PatientID=PAT001';

const CASES: readonly Case[] = [
  // Study Root, STUDY level.
  { name: 'universal: every study', model: 'S', level: 'STUDY', keys: [], expect: () => true },
  {
    name: 'PN wild card, case-insensitive',
    model: 'S',
    level: 'STUDY',
    keys: ['PatientName=DOE*'],
    expect: (r) => up(group(r.patientName, 0)).startsWith('DOE'),
  },
  {
    name: 'PN single value, case-insensitive, not a prefix',
    model: 'S',
    level: 'STUDY',
    keys: ['PatientName=doe^john'],
    expect: (r) => up(r.patientName) === 'DOE^JOHN',
  },
  {
    name: 'PN wild card on the given name',
    model: 'S',
    level: 'STUDY',
    keys: ['PatientName=*^JOHN*'],
    expect: (r) => up(group(r.patientName, 0).split('^')[1] ?? '').startsWith('JOHN'),
  },
  {
    name: 'wild card "?" on LO',
    model: 'S',
    level: 'STUDY',
    keys: ['PatientID=PAT00?'],
    expect: (r) => /^PAT00.$/.test(r.patientId),
  },
  {
    name: 'DA single value',
    model: 'S',
    level: 'STUDY',
    keys: ['StudyDate=20240115'],
    expect: (r) => r.studyDate === '20240115',
  },
  {
    name: 'DA range',
    model: 'S',
    level: 'STUDY',
    keys: ['StudyDate=20240101-20240131'],
    expect: (r) => r.studyDate >= '20240101' && r.studyDate <= '20240131',
  },
  {
    name: 'DA range open at the start',
    model: 'S',
    level: 'STUDY',
    keys: ['StudyDate=-20231231'],
    expect: (r) => r.studyDate !== '' && r.studyDate <= '20231231',
  },
  {
    name: 'DA range open at the end',
    model: 'S',
    level: 'STUDY',
    keys: ['StudyDate=20240201-'],
    expect: (r) => r.studyDate >= '20240201',
  },
  {
    name: 'TM range',
    model: 'S',
    level: 'STUDY',
    keys: ['StudyTime=0800-1000'],
    expect: (r) =>
      r.studyTime !== '' && r.studyTime.padEnd(6, '0') >= '080000' && r.studyTime.padEnd(6, '0') <= '100000',
  },
  {
    name: 'wild card on SH',
    model: 'S',
    level: 'STUDY',
    keys: ['AccessionNumber=A-100*'],
    expect: (r) => r.accession.startsWith('A-100'),
  },
  {
    name: 'SQL pattern characters are literal',
    model: 'S',
    level: 'STUDY',
    keys: ['AccessionNumber=B_2%'],
    expect: (r) => r.accession === 'B_2%',
  },
  {
    name: 'empty value matching',
    model: 'S',
    level: 'STUDY',
    keys: ['AccessionNumber=""'],
    expect: (r) => r.accession === '',
  },
  {
    name: 'wild card inside LO, case-sensitive',
    model: 'S',
    level: 'STUDY',
    keys: ['StudyDescription=*HEAD*'],
    expect: (r) => r.studyDescription.includes('HEAD'),
  },
  {
    name: 'list of UIDs',
    model: 'S',
    level: 'STUDY',
    keys: [`StudyInstanceUID=${studyUid('A')}\\${studyUid('C')}\\1.2.3.999`],
    expect: (r) => r.studyUid === studyUid('A') || r.studyUid === studyUid('C'),
  },
  {
    name: 'Modalities in Study, one value',
    model: 'S',
    level: 'STUDY',
    keys: ['ModalitiesInStudy=MR'],
    expect: (r) => r.modality === 'MR',
  },
  {
    name: 'Modalities in Study, several values',
    model: 'S',
    level: 'STUDY',
    keys: ['ModalitiesInStudy=US\\CR'],
    expect: (r) => r.modality === 'US' || r.modality === 'CR',
  },
  {
    name: 'two keys together',
    model: 'S',
    level: 'STUDY',
    keys: ['PatientName=doe*', 'StudyDate=20240116-'],
    expect: (r) => up(r.patientName).startsWith('DOE') && r.studyDate >= '20240116',
  },
  // Study Root, SERIES and IMAGE levels.
  {
    name: 'series of a study',
    model: 'S',
    level: 'SERIES',
    keys: [`StudyInstanceUID=${studyUid('B')}`],
    expect: (r) => r.studyUid === studyUid('B'),
  },
  {
    name: 'series by modality and number',
    model: 'S',
    level: 'SERIES',
    keys: [`StudyInstanceUID=${studyUid('A')}`, 'Modality=CT', 'SeriesNumber=2'],
    expect: (r) => r.studyUid === studyUid('A') && r.seriesNumber === '2',
  },
  {
    name: 'series description wild card',
    model: 'S',
    level: 'SERIES',
    keys: [`StudyInstanceUID=${studyUid('B')}`, 'SeriesDescription=T? *'],
    expect: (r) => r.studyUid === studyUid('B') && /^T. /.test(r.seriesDescription),
  },
  {
    name: 'images of a series',
    model: 'S',
    level: 'IMAGE',
    keys: [`StudyInstanceUID=${studyUid('A')}`, `SeriesInstanceUID=${studyUid('A')}.1`],
    expect: (r) => r.seriesUid === `${studyUid('A')}.1`,
  },
  {
    name: 'image by number',
    model: 'S',
    level: 'IMAGE',
    keys: [`StudyInstanceUID=${studyUid('A')}`, `SeriesInstanceUID=${studyUid('A')}.1`, 'InstanceNumber=2'],
    expect: (r) => r.seriesUid === `${studyUid('A')}.1` && r.instanceNumber === '2',
  },
  // Patient Root.
  { name: 'every patient', model: 'P', level: 'PATIENT', keys: [], expect: () => true },
  {
    name: 'patients by birth date range',
    model: 'P',
    level: 'PATIENT',
    keys: ['PatientBirthDate=19700101-19900101'],
    expect: (r) => r.birthDate >= '19700101' && r.birthDate <= '19900101',
  },
  {
    name: 'patients by sex',
    model: 'P',
    level: 'PATIENT',
    keys: ['PatientSex=F'],
    expect: (r) => r.sex === 'F',
  },
  {
    name: 'patient name with non-ASCII text in UTF-8',
    model: 'P',
    level: 'PATIENT',
    keys: ['SpecificCharacterSet=ISO_IR 192', 'PatientName=müller*'],
    expect: (r) => up(r.patientName).startsWith('MÜLLER'),
  },
  {
    name: 'studies of a patient',
    model: 'P',
    level: 'STUDY',
    keys: [P1],
    expect: (r) => r.patientId === 'PAT001',
  },
  {
    name: 'studies of a patient by date',
    model: 'P',
    level: 'STUDY',
    keys: [P1, 'StudyDate=20240201-'],
    expect: (r) => r.patientId === 'PAT001' && r.studyDate >= '20240201',
  },
  {
    name: 'series of a patient study',
    model: 'P',
    level: 'SERIES',
    keys: [P1, `StudyInstanceUID=${studyUid('A')}`],
    expect: (r) => r.studyUid === studyUid('A'),
  },
  {
    name: 'images of a patient series',
    model: 'P',
    level: 'IMAGE',
    keys: [P1, `StudyInstanceUID=${studyUid('B')}`, `SeriesInstanceUID=${studyUid('B')}.1`],
    expect: (r) => r.seriesUid === `${studyUid('B')}.1`,
  },
  // Character sets (Study Root, STUDY level).
  {
    name: 'Japanese: alphabetic group in ASCII',
    model: 'S',
    level: 'STUDY',
    keys: ['PatientName=Yamada^Tarou'],
    expect: (r) => up(group(r.patientName, 0)) === 'YAMADA^TAROU',
  },
  {
    name: 'Japanese: ideographic group, key in ISO 2022 IR 87',
    model: 'S',
    level: 'STUDY',
    keys: [],
    file: queryDataSet(['', 'ISO 2022 IR 87'], [[TAG.PatientName, '=山田^太郎']]),
    expect: (r) => group(r.patientName, 1) === '山田^太郎',
  },
  {
    name: 'Japanese: hiragana alphabetic group, key in UTF-8',
    model: 'S',
    level: 'STUDY',
    keys: ['SpecificCharacterSet=ISO_IR 192', 'PatientName=やまだ^たろう'],
    expect: (r) => group(r.patientName, 0) === 'やまだ^たろう',
  },
  {
    name: 'Korean: ideographic group, key in ISO 2022 IR 149',
    model: 'S',
    level: 'STUDY',
    keys: [],
    file: queryDataSet(['', 'ISO 2022 IR 149'], [[TAG.PatientName, '=洪^吉洞']]),
    expect: (r) => group(r.patientName, 1) === '洪^吉洞',
  },
  {
    name: 'Korean: Hangul name, key in UTF-8',
    model: 'S',
    level: 'STUDY',
    keys: ['SpecificCharacterSet=ISO_IR 192', 'PatientName=김희중'],
    expect: (r) => group(r.patientName, 0) === '김희중',
  },
  {
    name: 'Chinese: alphabetic group, two character sets stored',
    model: 'S',
    level: 'STUDY',
    keys: ['PatientName=wang^xiaodong'],
    expect: (r) => up(group(r.patientName, 0)) === 'WANG^XIAODONG',
  },
  {
    name: 'Chinese: simplified ideographic group, key in GB18030',
    model: 'S',
    level: 'STUDY',
    keys: [],
    file: queryDataSet(['GB18030'], [[TAG.PatientName, '=王^小东']]),
    expect: (r) => group(r.patientName, 1) === '王^小东',
  },
  {
    name: 'Latin-1: key in ISO_IR 100',
    model: 'S',
    level: 'STUDY',
    keys: [],
    file: queryDataSet(['ISO_IR 100'], [[TAG.PatientName, 'Buc^Jérôme']]),
    expect: (r) => r.patientName === 'Buc^Jérôme',
  },
  {
    name: 'Latin-1: the same name upper-cased, key in UTF-8',
    model: 'S',
    level: 'STUDY',
    keys: ['SpecificCharacterSet=ISO_IR 192', 'PatientName=BUC^JÉRÔME'],
    expect: (r) => up(r.patientName) === 'BUC^JÉRÔME',
  },
  {
    name: 'German: wild card after a non-ASCII letter',
    model: 'S',
    level: 'STUDY',
    keys: ['SpecificCharacterSet=ISO_IR 192', 'PatientName=äneas*'],
    expect: (r) => up(r.patientName).startsWith('ÄNEAS'),
  },
  {
    name: 'Greek and Hebrew: exact names in UTF-8',
    model: 'S',
    level: 'STUDY',
    keys: ['SpecificCharacterSet=ISO_IR 192', 'PatientName=Διονυσιος\\שרון^דבורה'],
    expect: (r) => r.patientName === 'Διονυσιος' || r.patientName === 'שרון^דבורה',
  },
];

const ENGINES: readonly Engine[] = ['sqlite', 'postgres'];

for (const engine of ENGINES) {
  describe(`findscu against our C-FIND SCP on ${engine}`, () => {
    let rig: FindRig;
    let recs: Rec[];
    before(async () => {
      rig = await startFindRig(engine);
      const generated = writeGeneratedObjects(join(rig.dir, 'generated'));
      const files = [...generated, ...CHARSET_CORPUS];
      await storeWithStorescu(rig.port, files);
      recs = await readRecs(files);
      assert.equal(await rig.archive.index.countInstances(), files.length);
    });
    after(() => rig.close());

    for (const c of CASES) {
      test(`${c.model === 'P' ? 'Patient' : 'Study'} Root ${c.level}: ${c.name}`, async () => {
        const unique = KEYWORD_OF[c.level];
        const keys = [`QueryRetrieveLevel=${c.level}`, ...c.keys];
        if (!c.keys.some((k) => k.startsWith(`${unique}=`))) keys.push(unique);
        const file =
          c.file === undefined
            ? undefined
            : writeQueryFile(join(rig.dir, `query-${CASES.indexOf(c)}.dcm`), c.file);
        const r = await findscu(rig, c.model, keys, file);
        assert.equal(r.final, 'Success', r.stderr);
        const expected = [...entities(recs, KEY_OF[c.level])]
          .filter(([, rs]) => c.expect(rs[0] as Rec))
          .map(([k]) => k)
          .sort();
        const got = r.responses.map((ds) => ds.string(TAG_OF[c.level]) ?? '').sort();
        assert.deepEqual(got, expected);
        assert.ok(expected.length > 0, 'each case finds something');
        for (const ds of r.responses) assert.equal(ds.string(TAG.QueryRetrieveLevel), c.level);
      });
    }

    test('returned values equal the stored files: names in their character sets, counters, lists', async () => {
      const r = await findscu(rig, 'S', [
        'QueryRetrieveLevel=STUDY',
        'StudyInstanceUID',
        'PatientName',
        'PatientID',
        'StudyDate',
        'StudyDescription',
        'NumberOfStudyRelatedSeries',
        'NumberOfStudyRelatedInstances',
        'ModalitiesInStudy',
        'SOPClassesInStudy',
        'NumberOfPatientRelatedStudies',
      ]);
      assert.equal(r.final, 'Success');
      const studies = entities(recs, 'studyUid');
      assert.equal(r.responses.length, studies.size);
      for (const ds of r.responses) {
        const uid = ds.string(TAG.StudyInstanceUID) ?? '';
        const rs = studies.get(uid) ?? [];
        const first = rs[0] as Rec;
        assert.equal(ds.string(TAG.PatientName) ?? '', trimPN(first.patientName), uid);
        assert.equal(ds.string(TAG.StudyDescription) ?? '', first.studyDescription, uid);
        assert.equal(ds.string(TAG.StudyDate) ?? '', first.studyDate, uid);
        assert.deepEqual(ds.numbers(TAG.NumberOfStudyRelatedInstances), [rs.length]);
        assert.deepEqual(ds.numbers(TAG.NumberOfStudyRelatedSeries), [
          new Set(rs.map((x) => x.seriesUid)).size,
        ]);
        assert.deepEqual(ds.strings(TAG.ModalitiesInStudy), [...new Set(rs.map((x) => x.modality))].sort());
        assert.deepEqual(ds.strings(TAG.SOPClassesInStudy), [...new Set(rs.map((x) => x.sopClass))].sort());
        const patientStudies = new Set(
          recs.filter((x) => x.patientId === first.patientId).map((x) => x.studyUid),
        );
        assert.deepEqual(ds.numbers(TAG.NumberOfPatientRelatedStudies), [patientStudies.size]);
      }
      // The Japanese name came in ISO 2022: the answer says so and decodes to the same text.
      const h31 = r.responses.find((ds) => ds.string(TAG.PatientID) === 'H31EXAMPLE');
      assert.deepEqual(h31?.strings(TAG.SpecificCharacterSet), ['', 'ISO 2022 IR 87']);
      const gb = r.responses.find((ds) => ds.string(TAG.PatientID) === 'X2EXAMPLE');
      assert.deepEqual(gb?.strings(TAG.SpecificCharacterSet), ['GB18030']);
      const ascii = r.responses.find((ds) => ds.string(TAG.PatientID) === 'PAT001');
      assert.equal(ascii?.has(TAG.SpecificCharacterSet), false);
    });

    test('series and image counters', async () => {
      const r = await findscu(rig, 'S', [
        'QueryRetrieveLevel=SERIES',
        `StudyInstanceUID=${studyUid('A')}`,
        'SeriesInstanceUID',
        'NumberOfSeriesRelatedInstances',
        'SeriesDescription',
      ]);
      const series = entities(recs, 'seriesUid');
      assert.equal(r.responses.length, 2);
      for (const ds of r.responses) {
        const rs = series.get(ds.string(TAG.SeriesInstanceUID) ?? '') ?? [];
        assert.deepEqual(ds.numbers(TAG.NumberOfSeriesRelatedInstances), [rs.length]);
        assert.equal(ds.string(TAG.SeriesDescription), rs[0]?.seriesDescription);
      }
    });

    test('identifier errors: findscu sees 0xA900 with the Error Comment', async () => {
      const noPatient = await findscu(rig, 'P', ['QueryRetrieveLevel=STUDY', 'StudyInstanceUID']);
      assert.match(noPatient.final, /^Error: DataSetDoesNotMatchSOPClass/);
      const debug = await findscu(
        rig,
        'P',
        ['QueryRetrieveLevel=STUDY', 'StudyInstanceUID'],
        undefined,
        '-d',
      );
      assert.match(debug.stderr, /DIMSE Status\s*: 0xa900/);
      assert.match(debug.stderr, /\(0000,0902\) LO \[STUDY query needs one PatientID/);
      assert.match(debug.stderr, /\(0000,0901\) AT \(0010,0020\)/);
      const patientInStudyRoot = await findscu(rig, 'S', ['QueryRetrieveLevel=PATIENT', 'PatientID']);
      assert.match(patientInStudyRoot.final, /^Error: DataSetDoesNotMatchSOPClass/);
      const badDate = await findscu(rig, 'S', ['QueryRetrieveLevel=STUDY', 'StudyDate=2024-01-01']);
      assert.match(badDate.final, /^Failed: UnableToProcess/);
      assert.equal(badDate.responses.length, 0);
    });
  });
}
