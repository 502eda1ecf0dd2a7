/**
 * What the C-FIND interop tests share: a generated set of CT, MR, US and CR objects (several
 * patients, studies and series with varied names, dates and modalities), the pydicom character
 * set corpus, an archive served with storage and find in this process, and the facts of every
 * stored file read back from disk, from which the tests compute their expected answers.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Archive, openArchive } from '../../src/archive/archive.js';
import { DataSet } from '../../src/dicom/dataset.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { EXPLICIT_VR_LE, UID } from '../../src/dicom/uid.js';
import { encodePart10 } from '../../src/dicom/writer.js';
import { readDicomFile } from '../../src/io/dicom-file.js';
import { ApplicationEntity, type DicomServer } from '../../src/network/ae.js';
import { type FindServiceOptions, findService } from '../../src/services/query-retrieve/find-scp.js';
import { storageService } from '../../src/services/storage/scp.js';
import { dropSchema, PG_URL, randomSchema } from '../archive/helpers.js';
import { run } from '../helpers/cli.js';
import { CHARSET_FILES } from '../helpers/corpus.js';
import { makeCtDataSet } from '../helpers/synthetic.js';

/** The charset corpus files that are storable and distinct (chrSQEncoding* have no SOP UIDs; two are copies). */
export const CHARSET_CORPUS: readonly string[] = [
  'chrArab',
  'chrFren',
  'chrGerm',
  'chrGreek',
  'chrH31',
  'chrH32',
  'chrHbrw',
  'chrI2',
  'chrJapMulti',
  'chrKoreanMulti',
  'chrRuss',
  'chrX1',
  'chrX2',
].map((n) => join(CHARSET_FILES, `${n}.dcm`));

interface SeriesPlan {
  readonly modality: string;
  readonly sopClass: string;
  readonly count: number;
  readonly description: string;
}

interface StudyPlan {
  readonly key: string;
  readonly date: string;
  readonly time: string;
  readonly accession: string | null;
  readonly description: string;
  readonly series: readonly SeriesPlan[];
}

interface PatientPlan {
  readonly id: string;
  readonly name: string;
  readonly birthDate: string;
  readonly sex: string;
  readonly studies: readonly StudyPlan[];
}

const ct = (count: number, description = 'AXIAL 1mm'): SeriesPlan => ({
  modality: 'CT',
  sopClass: UID.CTImageStorage,
  count,
  description,
});

/** Five patients, six studies, nine series, sixteen instances. */
export const PLAN: readonly PatientPlan[] = [
  {
    id: 'PAT001',
    name: 'Doe^John',
    birthDate: '19600101',
    sex: 'M',
    studies: [
      {
        key: 'A',
        date: '20240115',
        time: '101500',
        accession: 'A-1001',
        description: 'CT CHEST',
        series: [ct(3), ct(2, 'CORONAL 3mm')],
      },
      {
        key: 'B',
        date: '20240220',
        time: '143000',
        accession: 'A-1002',
        description: 'MR HEAD',
        series: [
          { modality: 'MR', sopClass: UID.MRImageStorage, count: 2, description: 'T1 SAG' },
          { modality: 'MR', sopClass: UID.MRImageStorage, count: 1, description: 'T2 AX' },
        ],
      },
    ],
  },
  {
    id: 'PAT002',
    name: 'Doe^Jane',
    birthDate: '19751231',
    sex: 'F',
    studies: [
      {
        key: 'C',
        date: '20231201',
        time: '235959',
        accession: 'A-2001',
        description: 'CT ABDOMEN',
        series: [ct(2)],
      },
    ],
  },
  {
    id: 'PAT003',
    name: 'Smith^John^Q',
    birthDate: '19800202',
    sex: 'M',
    studies: [
      {
        key: 'D',
        date: '20240115',
        time: '080000',
        accession: null,
        description: 'US ABDOMEN',
        series: [{ modality: 'US', sopClass: UID.UltrasoundImageStorage, count: 2, description: 'LIVER' }],
      },
    ],
  },
  {
    id: 'PAT004',
    name: 'Müller^Jürgen',
    birthDate: '19551111',
    sex: 'M',
    studies: [
      {
        key: 'E',
        date: '20220630',
        time: '120000',
        accession: 'B_2%',
        description: 'Röntgen Thorax',
        series: [
          { modality: 'CR', sopClass: UID.ComputedRadiographyImageStorage, count: 1, description: 'PA' },
        ],
      },
    ],
  },
  {
    id: 'PAT005',
    name: 'doe^johnny',
    birthDate: '20010101',
    sex: 'O',
    studies: [
      {
        key: 'F',
        date: '20240116',
        time: '091500',
        accession: 'A-1003',
        description: 'CT HEAD',
        series: [ct(3)],
      },
    ],
  },
];

/** The study UID of a plan key ("A".."F"). */
export function studyUid(key: string): string {
  return `1.2.826.0.1.3680043.8.498.77.${key.charCodeAt(0) - 64}`;
}

/** Writes the generated objects as Part-10 files into `dir`; returns their paths. */
export function writeGeneratedObjects(dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  const paths: string[] = [];
  for (const p of PLAN)
    for (const s of p.studies)
      s.series.forEach((se, si) => {
        const seriesUid = `${studyUid(s.key)}.${si + 1}`;
        for (let i = 1; i <= se.count; i++) {
          const ds = makeCtDataSet({
            patientId: p.id,
            patientName: p.name,
            patientBirthDate: p.birthDate,
            studyInstanceUid: studyUid(s.key),
            seriesInstanceUid: seriesUid,
            sopInstanceUid: `${seriesUid}.${i}`,
            accessionNumber: s.accession ?? '',
            studyDate: s.date,
            modality: se.modality,
            instanceNumber: i,
            seriesNumber: si + 1,
            rows: 8,
            columns: 8,
            studyDescription: s.description,
          });
          if (s.accession === null) ds.delete(TAG.AccessionNumber);
          ds.setString(TAG.StudyTime, s.time);
          ds.setString(TAG.PatientSex, p.sex);
          ds.setString(TAG.SeriesDescription, se.description);
          ds.setString(TAG.SOPClassUID, se.sopClass);
          const path = join(dir, `${s.key}-${si + 1}-${i}.dcm`);
          writeFileSync(path, encodePart10(ds, EXPLICIT_VR_LE));
          paths.push(path);
        }
      });
  return paths;
}

/** What the tests know of one stored object, read back from its file. */
export interface Rec {
  readonly file: string;
  readonly patientId: string;
  readonly patientName: string;
  readonly birthDate: string;
  readonly sex: string;
  readonly studyUid: string;
  readonly studyDate: string;
  readonly studyTime: string;
  readonly accession: string;
  readonly studyDescription: string;
  readonly seriesUid: string;
  readonly modality: string;
  readonly seriesNumber: string;
  readonly seriesDescription: string;
  readonly sopUid: string;
  readonly sopClass: string;
  readonly instanceNumber: string;
}

export async function readRecs(files: readonly string[]): Promise<Rec[]> {
  const out: Rec[] = [];
  for (const file of files) {
    const ds = (await readDicomFile(file)).dataSet;
    const s = (tag: number) => ds.string(tag) ?? '';
    out.push({
      file,
      patientId: s(TAG.PatientID),
      patientName: s(TAG.PatientName),
      birthDate: s(TAG.PatientBirthDate),
      sex: s(TAG.PatientSex),
      studyUid: s(TAG.StudyInstanceUID),
      studyDate: s(TAG.StudyDate),
      studyTime: s(TAG.StudyTime),
      accession: s(TAG.AccessionNumber),
      studyDescription: s(TAG.StudyDescription),
      seriesUid: s(TAG.SeriesInstanceUID),
      modality: s(TAG.Modality),
      seriesNumber: s(TAG.SeriesNumber),
      seriesDescription: s(TAG.SeriesDescription),
      sopUid: s(TAG.SOPInstanceUID),
      sopClass: s(TAG.SOPClassUID),
      instanceNumber: s(TAG.InstanceNumber),
    });
  }
  return out;
}

/** The first record of each distinct value of `key`, in order: the entities of a level. */
export function entities(recs: readonly Rec[], key: keyof Rec): Map<string, Rec[]> {
  const out = new Map<string, Rec[]>();
  for (const r of recs) {
    const list = out.get(r[key]);
    if (list) list.push(r);
    else out.set(r[key], [r]);
  }
  return out;
}

export type Engine = 'sqlite' | 'postgres';

/** An archive in a temporary folder (SQLite, or a PostgreSQL schema of its own) served with storage and find. */
export interface FindRig {
  readonly archive: Archive;
  readonly server: DicomServer;
  readonly port: number;
  readonly dir: string;
  close(): Promise<void>;
}

export async function startFindRig(
  engine: Engine,
  options: Omit<FindServiceOptions, 'archive'> = {},
): Promise<FindRig> {
  const dir = mkdtempSync(join(tmpdir(), 'pacs-find-'));
  const schema = engine === 'postgres' ? randomSchema() : undefined;
  const archive = await openArchive({
    dataDir: join(dir, 'data'),
    durability: 'none',
    ...(schema !== undefined
      ? { dbUrl: `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}` }
      : {}),
  });
  const ae = new ApplicationEntity({ aeTitle: 'PACS' })
    .addService(storageService({ archive }))
    .addService(findService({ ...options, archive }));
  const server = await ae.listen({ port: 0, host: '127.0.0.1' });
  return {
    archive,
    server,
    port: server.address?.port ?? 0,
    dir,
    async close() {
      await server.close(1000);
      await archive.close();
      if (schema !== undefined) await dropSchema(schema);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Stores files with DCMTK's storescu (one association); throws with its output when it fails. */
export async function storeWithStorescu(port: number, files: readonly string[]): Promise<void> {
  const r = await run('storescu', ['-aec', 'PACS', '127.0.0.1', String(port), ...files], {
    env: { TCP_NODELAY: '1' },
  });
  if (r.code !== 0) throw new Error(`storescu failed (${r.code}): ${r.stderr}`);
}

/** A query written as a file for findscu (for keys in a character set a command line cannot carry). */
export function writeQueryFile(path: string, ds: DataSet): string {
  writeFileSync(
    path,
    encodePart10(ds, EXPLICIT_VR_LE, {
      mediaStorageSopClassUid: UID.StudyRootQueryRetrieveInformationModelFind,
      mediaStorageSopInstanceUid: '1.2.3.4',
    }),
  );
  return path;
}

export function queryDataSet(charsets: readonly string[], keys: readonly [number, string][]): DataSet {
  const ds = new DataSet();
  ds.setString(TAG.SpecificCharacterSet, [...charsets]);
  for (const [tag, value] of keys) ds.setString(tag, value);
  return ds;
}
