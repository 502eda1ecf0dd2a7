/**
 * Test fixtures of the archive: the index engines every contract test runs on (SQLite, PostgreSQL
 * in a schema of its own per test, the in-memory fake) and small data sets built in the test.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { ArchiveIndex, InstanceRecord, LevelHeaders } from '../../src/archive/index/archive-index.js';
import { describeInstance } from '../../src/archive/index/extract.js';
import { MemoryArchiveIndex } from '../../src/archive/index/memory-index.js';
import { type OpenIndexOptions, openIndex } from '../../src/archive/index/open.js';
import { ObjectStore } from '../../src/archive/store.js';
import { DataSet } from '../../src/dicom/dataset.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { EXPLICIT_VR_LE, generateUid } from '../../src/dicom/uid.js';

export const PG_URL = process.env['PACS_TEST_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface OpenedTestIndex {
  readonly index: ArchiveIndex;
  /** The URL to open the same database again (SQL engines). */
  readonly url: string | undefined;
  /** Closes the index (if still open) and removes the database or schema. */
  cleanup(): Promise<void>;
}

export interface TestEngine {
  readonly name: 'sqlite' | 'postgres' | 'memory';
  readonly sql: boolean;
  open(options?: OpenIndexOptions): Promise<OpenedTestIndex>;
}

function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export const sqliteEngine: TestEngine = {
  name: 'sqlite',
  sql: true,
  async open(options) {
    const dir = tempDir('pacs-index-test-');
    const url = `sqlite:${join(dir, 'index.sqlite')}`;
    const { index } = await openIndex(url, options);
    return {
      index,
      url,
      async cleanup() {
        await index.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

/** Runs SQL on the test database outside the index (creating and dropping schemas). */
export async function pgAdmin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
  } catch (e) {
    // The PostgreSQL half of the suite is required, never skipped (ARCHITECTURE.md decision 4).
    throw new Error(
      `PostgreSQL is unreachable at ${PG_URL} (${(e as Error).message || String(e)}): the index tests run on ` +
        'PostgreSQL as well as SQLite and are not skipped. Start PostgreSQL or set PACS_TEST_PG_URL.',
    );
  }
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A fresh schema name per test, so parallel runs never share tables. */
export function randomSchema(): string {
  return `pacs_test_${randomBytes(6).toString('hex')}`;
}

export const postgresEngine: TestEngine = {
  name: 'postgres',
  sql: true,
  async open(options) {
    const schema = randomSchema();
    await pgAdmin(async () => undefined); // a clear message when PostgreSQL is not there
    const url = `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}`;
    const { index } = await openIndex(url, options);
    return {
      index,
      url,
      async cleanup() {
        await index.close();
        await dropSchema(schema);
      },
    };
  },
};

export async function dropSchema(schema: string): Promise<void> {
  await pgAdmin((c) => c.query(`drop schema if exists ${schema} cascade`));
}

export const memoryEngine: TestEngine = {
  name: 'memory',
  sql: false,
  async open() {
    const index = new MemoryArchiveIndex();
    return { index, url: undefined, cleanup: () => index.close() };
  },
};

export const SQL_ENGINES: readonly TestEngine[] = [sqliteEngine, postgresEngine];
export const ALL_ENGINES: readonly TestEngine[] = [sqliteEngine, postgresEngine, memoryEngine];

export const CT_IMAGE = '1.2.840.10008.5.1.4.1.1.2';
export const MR_IMAGE = '1.2.840.10008.5.1.4.1.1.4';
export const GSPS = '1.2.840.10008.5.1.4.1.1.11.1';

export interface InstanceSpec {
  readonly patientId?: string | null;
  readonly issuer?: string;
  readonly patientName?: string;
  readonly birthDate?: string;
  readonly sex?: string;
  readonly studyUid?: string;
  readonly studyDate?: string;
  readonly accession?: string;
  readonly studyDescription?: string;
  readonly seriesUid?: string;
  readonly modality?: string;
  readonly seriesNumber?: number;
  readonly sopUid?: string;
  readonly sopClass?: string;
  readonly instanceNumber?: number;
  readonly charset?: string;
}

/** A small image header with the keys of every level. */
export function makeDataSet(spec: InstanceSpec = {}): DataSet {
  const ds = new DataSet();
  if (spec.charset) ds.setString(TAG.SpecificCharacterSet, spec.charset);
  ds.setString(TAG.SOPClassUID, spec.sopClass ?? CT_IMAGE);
  ds.setString(TAG.SOPInstanceUID, spec.sopUid ?? generateUid());
  ds.setString(TAG.StudyDate, spec.studyDate ?? '20240611');
  ds.setString(TAG.StudyTime, '101500');
  ds.setString(TAG.AccessionNumber, spec.accession ?? 'ACC1');
  ds.setString(TAG.Modality, spec.modality ?? 'CT');
  ds.setString(TAG.ReferringPhysicianName, 'Welby^Marcus');
  ds.setString(TAG.StudyDescription, spec.studyDescription ?? 'CHEST');
  ds.setString(TAG.SeriesDescription, 'AXIAL');
  ds.setString(TAG.PatientName, spec.patientName ?? 'Doe^Jane');
  if (spec.patientId !== null) ds.setString(TAG.PatientID, spec.patientId ?? 'PID1');
  if (spec.issuer) ds.setString(TAG.IssuerOfPatientID, spec.issuer);
  ds.setString(TAG.PatientBirthDate, spec.birthDate ?? '19700101');
  ds.setString(TAG.PatientSex, spec.sex ?? 'F');
  ds.setString(TAG.PatientAge, '054Y');
  ds.setString(TAG.BodyPartExamined, 'CHEST');
  ds.setString(TAG.StudyInstanceUID, spec.studyUid ?? '1.2.3.4');
  ds.setString(TAG.SeriesInstanceUID, spec.seriesUid ?? '1.2.3.4.1');
  ds.setString(TAG.StudyID, 'S1');
  ds.setNumbers(TAG.SeriesNumber, spec.seriesNumber ?? 1);
  ds.setNumbers(TAG.InstanceNumber, spec.instanceNumber ?? 1);
  ds.setNumbers(TAG.Rows, 2);
  ds.setNumbers(TAG.Columns, 2);
  // Bulk data that the stored headers leave out, and a small binary value they keep.
  ds.setBytes(TAG.PixelData, new Uint8Array(8), 'OW');
  ds.setBytes(TAG.RedPaletteColorLookupTableData, new Uint8Array(4096), 'OW');
  ds.setBytes(TAG.ICCProfile, new Uint8Array(16), 'OB');
  return ds;
}

/** The index entry of a data set, at a made-up object path. */
export function entryOf(
  ds: DataSet,
  path: string = ObjectStore.pathOf(randomBytes(16).toString('hex')),
): { record: InstanceRecord; headers: LevelHeaders } {
  const described = describeInstance(ds, {
    transferSyntaxUid: EXPLICIT_VR_LE,
    path,
    size: 1000,
    receivedAt: new Date('2024-06-11T10:15:00Z'),
    callingAet: 'MODALITY',
  });
  if (!described.ok) throw described.error;
  return described.value;
}

export function entry(spec: InstanceSpec = {}): { record: InstanceRecord; headers: LevelHeaders } {
  return entryOf(makeDataSet(spec));
}

export { tempDir };

/** Object files under objects/ and leftovers in tmp/. */
export function files(dataDir: string): { objects: string[]; tmp: string[] } {
  const objects: string[] = [];
  const walk = (rel: string) => {
    for (const e of readdirSync(join(dataDir, rel), { withFileTypes: true })) {
      if (e.isDirectory()) walk(`${rel}/${e.name}`);
      else objects.push(`${rel}/${e.name}`);
    }
  };
  walk('objects');
  return { objects: objects.sort(), tmp: readdirSync(join(dataDir, 'tmp')) };
}
