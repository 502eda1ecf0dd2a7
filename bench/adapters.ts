/**
 * Everything the benches take from src/ (and test/helpers), in one file: the rest of bench/ uses
 * only the programs' command lines (bin/pacs, DCMTK, Orthanc). When an API below changes, this
 * is the file to adapt:
 *   - the persistent C-FIND, C-GET and C-ECHO clients (our SCU library: network/ae, services/*-scu);
 *   - the index fill of bench/scale.ts: multi-row inserts into the index tables of
 *     archive/index/schema.ts as SqlArchiveIndex.insertInstance writes them (checked at the start
 *     against insertInstance itself: `checkBulkFill` fails when the two differ);
 *   - the synthetic objects (test/helpers/synthetic.ts).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Kysely, sql } from 'kysely';
import type { IndexEntry } from '../src/archive/index/extract.js';
import { describeInstance } from '../src/archive/index/extract.js';
import { openIndex } from '../src/archive/index/open.js';
import { joinList, patientKey } from '../src/archive/index/rules.js';
import type { IndexDatabase } from '../src/archive/index/schema.js';
import { DataSet } from '../src/dicom/dataset.js';
import { TAG } from '../src/dicom/dictionary.js';
import { normalizePersonName } from '../src/dicom/matching/person-name.js';
import { EXPLICIT_VR_LE, UID } from '../src/dicom/uid.js';
import { encodePart10 } from '../src/dicom/writer.js';
import { ApplicationEntity } from '../src/network/ae.js';
import type { DimseAssociation } from '../src/network/dimse.js';
import { Status } from '../src/network/dimse-status.js';
import type { DimseService } from '../src/network/service.js';
import { find, findContexts } from '../src/services/query-retrieve/find-scu.js';
import { get, getContexts } from '../src/services/query-retrieve/get-scu.js';
import { STUDY_ROOT } from '../src/services/query-retrieve/models.js';
import { readFileInfo } from '../src/services/storage/scu.js';
import { echo, VERIFICATION_CONTEXT } from '../src/services/verification/scu.js';
import { makeCtDataSet, writeCtSeries } from '../test/helpers/synthetic.js';
import { HOST } from './common.js';

export { writeCtSeries };

// --- synthetic objects ----------------------------------------------------------------------------------

/** The Part-10 header (file meta + data set up to Pixel Data) of a multi-frame 16-bit object. */
export function largeObjectHeader(rows: number, columns: number, frames: number): Uint8Array {
  const ds = makeCtDataSet({ rows, columns });
  ds.setString(TAG.SOPClassUID, UID.MultiFrameGrayscaleWordSecondaryCaptureImageStorage);
  ds.setString(TAG.NumberOfFrames, String(frames), 'IS');
  ds.delete(TAG.PixelData);
  return encodePart10(ds, EXPLICIT_VR_LE);
}

const FAMILY = ['SMITH', 'JONES', 'BROWN', 'TAYLOR', 'WILSON', 'DAVIES'];
const GIVEN = ['JOHN', 'MARY', 'PETER', 'ANNA', 'PAUL', 'EMMA', 'MARK', 'SARAH', 'LUKE', 'JANE', 'ADAM'];
const MODALITIES = ['CT', 'MR', 'US', 'CR'];

/** How many series per study and instances per series; patients have two studies each. */
export interface StudyShape {
  readonly series: number;
  readonly instances: number;
}

export const patientIdOf = (study: number): string => `PID${String(Math.floor(study / 2)).padStart(7, '0')}`;
export const accessionOf = (study: number): string => `ACC${String(study).padStart(8, '0')}`;

/**
 * The i-th study's instances (tiny 4x4 images): patient i/2, one family name in six (SMITH*),
 * study dates spread over two years from 2023-01-01, names uppercase.
 */
export function* studyDataSets(study: number, shape: StudyShape): Generator<DataSet> {
  const p = studyParams(study);
  for (let s = 0; s < shape.series; s++)
    for (let i = 0; i < shape.instances; i++)
      yield makeCtDataSet({
        patientId: p.patientId,
        patientName: p.patientName,
        studyInstanceUid: p.studyUid,
        seriesInstanceUid: `${p.studyUid}.${s + 1}`,
        sopInstanceUid: `${p.studyUid}.${s + 1}.${i + 1}`,
        accessionNumber: p.accession,
        studyDate: p.date,
        modality: p.modality(s),
        seriesNumber: s + 1,
        instanceNumber: i + 1,
        rows: 4,
        columns: 4,
        studyDescription: p.description,
      });
}

/** What differs between the generated studies. */
function studyParams(study: number) {
  const patient = Math.floor(study / 2);
  const day = new Date(Date.UTC(2023, 0, 1) + ((study * 7919) % 730) * 86_400_000);
  return {
    patientId: patientIdOf(study),
    patientName: `${FAMILY[patient % FAMILY.length]}^${GIVEN[patient % GIVEN.length]}`,
    studyUid: `1.2.826.0.1.3680043.8.498.9.${study + 1}`,
    accession: accessionOf(study),
    date: day.toISOString().slice(0, 10).replace(/-/g, ''),
    description: `STUDY ${study % 50}`,
    modality: (series: number): string => MODALITIES[(study + series) % MODALITIES.length] ?? 'CT',
  };
}

/** Writes studies [0, studies) as Part-10 files into `dir`; returns how many files. */
export function writeStudyFiles(dir: string, studies: number, shape: StudyShape): number {
  mkdirSync(dir, { recursive: true });
  let n = 0;
  for (let st = 0; st < studies; st++)
    for (const ds of studyDataSets(st, shape)) {
      writeFileSync(join(dir, `${st}-${n}.dcm`), encodePart10(ds, EXPLICIT_VR_LE));
      n++;
    }
  return n;
}

// --- our SCU library as persistent clients --------------------------------------------------------------

/** Study Root STUDY-level C-FIND on one open association: our SCU library (dist/src). */
export interface FindClient {
  /** One C-FIND with these keys (keyword -> value; '' for a return key); resolves with the match count. */
  query(keys: Readonly<Record<string, string>>): Promise<number>;
  close(): Promise<void>;
}

export async function openFindClient(port: number, calledAeTitle: string): Promise<FindClient> {
  const ae = new ApplicationEntity({ aeTitle: 'BENCH', maxPduLength: 262144 });
  const opened = await ae.connect({ host: HOST, port, calledAeTitle, contexts: findContexts([STUDY_ROOT]) });
  if (!opened.ok) throw opened.error;
  const assoc: DimseAssociation = opened.value;
  return {
    async query(keys) {
      const ds = new DataSet();
      for (const [k, v] of Object.entries(keys)) ds.setString(TAG[k as keyof typeof TAG], v);
      const r = await find(assoc, ds, { sopClassUid: STUDY_ROOT.sopClasses.find, level: 'STUDY' }).outcome;
      if (!r.ok) throw r.error;
      if (r.value.status !== 0) throw new Error(`C-FIND status 0x${r.value.status.toString(16)}`);
      return r.value.matches;
    },
    close: () => assoc.release(),
  };
}

/** C-ECHO on one association (`echoes` round trips), then `associations` open/echo/release cycles. */
export async function echoClient(
  port: number,
  calledAeTitle: string,
): Promise<{ echoes(n: number): Promise<void>; cycles(n: number): Promise<void> }> {
  const ae = new ApplicationEntity({ aeTitle: 'BENCH' });
  const open = async (): Promise<DimseAssociation> => {
    const r = await ae.connect({ host: HOST, port, calledAeTitle, contexts: [VERIFICATION_CONTEXT] });
    if (!r.ok) throw r.error;
    return r.value;
  };
  const echoOnce = async (a: DimseAssociation): Promise<void> => {
    const r = await echo(a);
    if (!r.ok || r.value !== 0) throw new Error(`C-ECHO failed: ${r.ok ? r.value : r.error.message}`);
  };
  return {
    async echoes(n) {
      const a = await open();
      for (let i = 0; i < n; i++) await echoOnce(a);
      await a.release();
    },
    async cycles(n) {
      for (let i = 0; i < n; i++) {
        const a = await open();
        await echoOnce(a);
        await a.release();
      }
    },
  };
}

/** A Storage SCP for C-GET sub-operations that reads each data set and drops it (as getscu --ignore). */
const dropService: DimseService = {
  name: 'drop',
  sopClasses: [UID.CTImageStorage].map((uid) => ({ uid })),
  transferSyntaxes: ['1.2.840.10008.1.2.1', '1.2.840.10008.1.2'],
  handlers: {
    'C-STORE': async (_ctx, data) => {
      for await (const _ of data) {
        // dropped
      }
      return { status: Status.Success };
    },
  },
};

/** C-GET of a study by our SCU library, the objects dropped; fails unless all `expected` arrived. */
export async function libraryGet(
  port: number,
  calledAeTitle: string,
  studyUid: string,
  expected: number,
): Promise<void> {
  const ae = new ApplicationEntity({ aeTitle: 'BENCH' }).addService(dropService);
  const opened = await ae.connect({ host: HOST, port, calledAeTitle, contexts: getContexts(STUDY_ROOT) });
  if (!opened.ok) throw opened.error;
  const identifier = new DataSet();
  identifier.setString(TAG.QueryRetrieveLevel, 'STUDY');
  identifier.setString(TAG.StudyInstanceUID, studyUid);
  const r = await get(opened.value, { model: STUDY_ROOT, identifier });
  await opened.value.release();
  if (!r.ok) throw r.error;
  if (r.value.status !== Status.Success || r.value.completed !== expected)
    throw new Error(`C-GET: status ${r.value.status}, ${r.value.completed} completed`);
}

// --- the soak's checks (bench/soak.ts) ------------------------------------------------------------------

/** The SOP Instance UID of a Part-10 file, or undefined when it cannot be read. */
export async function sopInstanceUidOf(path: string): Promise<string | undefined> {
  const info = await readFileInfo(path);
  return info.ok ? info.value.sopInstanceUid : undefined;
}

/** The index's instance count, and how many of `uids` it does not hold. */
export async function acknowledgedIndexCheck(
  url: string,
  uids: Iterable<string>,
): Promise<{ indexRows: number; lost: number }> {
  const { index } = await openIndex(url);
  try {
    let lost = 0;
    for (const uid of uids) if ((await index.findInstance(uid)) === undefined) lost++;
    return { indexRows: await index.countInstances(), lost };
  } finally {
    await index.close();
  }
}

// --- the index fill (bench/scale.ts) ---------------------------------------------------------------------

type Db = Kysely<IndexDatabase>;

/** The entries of study 0, one per instance, as JSON text: the template of every study's entries. */
const templates = new Map<string, string[]>();

function templateOf(shape: StudyShape): string[] {
  const key = `${shape.series}x${shape.instances}`;
  let t = templates.get(key);
  if (t === undefined) {
    t = [];
    for (const ds of studyDataSets(0, shape)) {
      ds.delete(TAG.PixelData);
      const e = describeInstance(ds, {
        transferSyntaxUid: EXPLICIT_VR_LE,
        path: 'objects/bench/template.dcm',
        size: 2000,
        receivedAt: new Date(0),
        callingAet: 'BENCH',
      });
      if (!e.ok) throw e.error;
      t.push(JSON.stringify(e.value));
    }
    templates.set(key, t);
  }
  return t;
}

const STUDY_UID_0 = /"1\.2\.826\.0\.1\.3680043\.8\.498\.9\.1((?:\.\d+)*)"/g;

/**
 * The entries of a study as the archive would index them (describeInstance of each header).
 * describeInstance of each of a million headers would take most of the fill's time on this
 * machine, so study 0's entries are the template and the values that differ between studies
 * (studyDataSets) are replaced in their JSON; checkBulkFill compares the outcome with
 * describeInstance + insertInstance.
 */
function studyEntries(study: number, shape: StudyShape): IndexEntry[] {
  const p = studyParams(study);
  const p0 = studyParams(0);
  const receivedAt = new Date();
  return templateOf(shape).map((text, k) => {
    const s = Math.floor(k / shape.instances);
    const json = text
      .replace(STUDY_UID_0, (_m, rest: string) => `"${p.studyUid}${rest}"`)
      .replaceAll(`"${p0.patientId}"`, `"${p.patientId}"`)
      .replaceAll(`"${p0.patientName}"`, `"${p.patientName}"`)
      .replaceAll(`"${p0.date}"`, `"${p.date}"`)
      .replaceAll(`"${p0.accession}"`, `"${p.accession}"`)
      .replaceAll(`"${p0.description}"`, `"${p.description}"`)
      .replaceAll(`"${p0.modality(s)}"`, `"${p.modality(s)}"`);
    const e = JSON.parse(json) as {
      record: IndexEntry['record'] & { instance: { receivedAt: Date; path: string } };
      headers: IndexEntry['headers'];
    };
    e.record.instance.receivedAt = receivedAt;
    const hex = randomBytes(12).toString('hex');
    e.record.instance.path = `objects/bench/${hex.slice(0, 2)}/${hex}.dcm`;
    return e;
  });
}

/** Rows per INSERT: under SQLite's 32,766 bound parameters with the widest table (study, 24 columns). */
const ROWS_PER_INSERT = 500;

/** The tables seen as rows of named values: the rows below are built to schema.ts's columns, checked by checkBulkFill. */
type LooseDb = Kysely<Record<string, Record<string, unknown>>>;

async function insertRows(
  db: Db,
  table: 'patient' | 'study' | 'series' | 'instance',
  rows: readonly Record<string, unknown>[],
  key?: string,
): Promise<Map<string, number>> {
  const loose = db as unknown as LooseDb;
  const ids = new Map<string, number>();
  for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
    const chunk = rows.slice(i, i + ROWS_PER_INSERT);
    if (key === undefined) {
      await loose.insertInto(table).values(chunk).execute();
      continue;
    }
    const returned = await loose.insertInto(table).values(chunk).returning(['id', key]).execute();
    for (const r of returned) ids.set(String(r[key]), Number(r['id']));
  }
  return ids;
}

/** The patient attribute columns, which the patient row and each study row keep. */
function patientColumns(p: IndexEntry['record']['patient']): Record<string, string | null> {
  return {
    patient_id: p.patientId,
    issuer_of_patient_id: p.issuerOfPatientId,
    patient_name: p.patientName,
    patient_name_norm: normalizePersonName(p.patientName),
    patient_birth_date: p.patientBirthDate,
    patient_sex: p.patientSex,
  };
}

/** The first entry of each key, in order, with how many entries share the key. */
function firstOfEach(
  entries: readonly IndexEntry[],
  keyOf: (e: IndexEntry) => string,
): Map<string, { entry: IndexEntry; n: number }> {
  const out = new Map<string, { entry: IndexEntry; n: number }>();
  for (const e of entries) {
    const k = keyOf(e);
    const known = out.get(k);
    if (known) known.n++;
    else out.set(k, { entry: e, n: 1 });
  }
  return out;
}

/**
 * Inserts studies [first, first + count) with multi-row INSERTs in one transaction, the rows
 * (counters, lists, normalised names, headers) as insertInstance would leave them. Patients are
 * complete within a batch when `first` and `count` are even (two studies per patient).
 */
async function insertStudies(
  db: Db,
  first: number,
  count: number,
  shape: StudyShape,
  onPaths?: (paths: readonly string[]) => void,
): Promise<number> {
  const now = new Date().toISOString();
  const studies = Array.from({ length: count }, (_, i) => studyEntries(first + i, shape));
  onPaths?.(studies.flat().map((e) => e.record.instance.path));
  await db.transaction().execute(async (trx) => {
    const patients = firstOfEach(
      studies.map((entries) => entries[0] as IndexEntry),
      (e) =>
        patientKey(
          e.record.patient.patientId,
          e.record.patient.issuerOfPatientId,
          e.record.study.studyInstanceUid,
        ),
    );
    const patientIds = await insertRows(
      trx,
      'patient',
      [...patients].map(([key, { entry, n }]) => {
        const p = entry.record.patient;
        return {
          patient_key: key,
          ...patientColumns(p),
          number_of_studies: n,
          header: JSON.stringify(entry.headers.patient),
          created_at: now,
          updated_at: now,
        };
      }),
      'patient_key',
    );
    const studyIds = await insertRows(
      trx,
      'study',
      studies.map((entries) => {
        const e = entries[0] as IndexEntry;
        const { patient: p, study: s } = e.record;
        const seriesUids = new Set(entries.map((x) => x.record.series.seriesInstanceUid));
        const modalities = [...new Set(entries.map((x) => x.record.series.modality))].sort();
        const sopClasses = [...new Set(entries.map((x) => x.record.instance.sopClassUid))].sort();
        return {
          patient_fk: patientIds.get(patientKey(p.patientId, p.issuerOfPatientId, s.studyInstanceUid)),
          study_instance_uid: s.studyInstanceUid,
          study_date: s.studyDate,
          study_time: s.studyTime,
          accession_number: s.accessionNumber,
          study_id: s.studyId,
          referring_physician_name: s.referringPhysicianName,
          referring_physician_name_norm: normalizePersonName(s.referringPhysicianName),
          study_description: s.studyDescription,
          ...patientColumns(p),
          number_of_series: seriesUids.size,
          number_of_instances: entries.length,
          modalities_in_study: joinList(modalities),
          sop_classes_in_study: joinList(sopClasses),
          header: JSON.stringify(e.headers.study),
          patient_header: JSON.stringify(e.headers.patient),
          created_at: now,
          updated_at: now,
        };
      }),
      'study_instance_uid',
    );
    const all = studies.flat();
    const firstOfSeries = firstOfEach(all, (e) => e.record.series.seriesInstanceUid);
    const seriesIds = await insertRows(
      trx,
      'series',
      [...firstOfSeries.values()].map(({ entry, n }) => {
        const s = entry.record.series;
        return {
          study_fk: studyIds.get(entry.record.study.studyInstanceUid),
          series_instance_uid: s.seriesInstanceUid,
          modality: s.modality,
          series_number: s.seriesNumber,
          series_description: s.seriesDescription,
          body_part_examined: s.bodyPartExamined,
          number_of_instances: n,
          header: JSON.stringify(entry.headers.series),
          created_at: now,
          updated_at: now,
        };
      }),
      'series_instance_uid',
    );
    const rows = all.map((e) => {
      const i = e.record.instance;
      return {
        series_fk: seriesIds.get(e.record.series.seriesInstanceUid),
        study_fk: studyIds.get(e.record.study.studyInstanceUid),
        sop_instance_uid: i.sopInstanceUid,
        sop_class_uid: i.sopClassUid,
        instance_number: i.instanceNumber,
        transfer_syntax_uid: i.transferSyntaxUid,
        path: i.path,
        size: i.size,
        received_at: i.receivedAt.toISOString(),
        calling_aet: i.callingAet,
        header: JSON.stringify(e.headers.instance),
      };
    });
    await insertRows(trx, 'instance', rows);
  });
  return studies.reduce((n, s) => n + s.length, 0);
}

/**
 * Fills the index at `url` with studies [0, studies) in batches of `batch` studies (one
 * transaction each); `progress` is called after each batch with the instances so far. The
 * rows' paths are objects/bench/xx/HEX.dcm; `onPaths` gets them (to make the files: the
 * server's start-up reconcile removes rows whose file is missing).
 * Durability 'none' during the fill (it is set up, not measured); ANALYZE at the end, as a
 * running server's statistics would have it.
 */
export async function fillIndex(
  url: string,
  studies: number,
  shape: StudyShape,
  progress: (instances: number) => void,
  onPaths?: (paths: readonly string[]) => void,
  batch = 200,
): Promise<number> {
  const { index } = await openIndex(url, { durability: 'none' });
  let total = 0;
  try {
    // PostgreSQL: a few transactions at once overlap building the rows here with inserting
    // them there; SQLite has one connection. Batches start at even studies: a patient's two
    // studies are in one batch.
    const size = batch % 2 === 0 ? batch : batch + 1;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < studies) {
        const first = next;
        next += size;
        total += await insertStudies(index.db, first, Math.min(size, studies - first), shape, onPaths);
        progress(total);
      }
    };
    await Promise.all(Array.from({ length: index.engine === 'postgres' ? 3 : 1 }, worker));
    await sql`analyze`.execute(index.db);
    return await index.countInstances();
  } finally {
    await index.close();
  }
}

/** Every table's rows without ids, foreign keys and timestamps, sorted: what two fills must agree on. */
async function tableContents(db: Db): Promise<Record<string, string[]>> {
  const tables = (
    await sql<{
      name: string;
    }>`select name from sqlite_master where type = 'table' and name not like 'sqlite_%'`.execute(db)
  ).rows.map((r) => r.name);
  const skip = /^(id|.*_fk|created_at|updated_at|received_at|applied_at|path)$/;
  const out: Record<string, string[]> = {};
  for (const t of tables) {
    const rows = (await sql<Record<string, unknown>>`select * from ${sql.table(t)}`.execute(db)).rows;
    out[t] = rows.map((r) => JSON.stringify(Object.entries(r).filter(([k]) => !skip.test(k)))).sort();
  }
  return out;
}

/**
 * Fails when the bulk fill no longer writes what insertInstance writes (a new column, table or
 * rule in src/archive/index): four studies indexed both ways in memory (insertInstance of
 * describeInstance of the generated data sets, and the bulk fill), every table compared.
 */
export async function checkBulkFill(shape: StudyShape): Promise<void> {
  const viaApi = await openIndex('sqlite::memory:', { durability: 'none' });
  const viaBulk = await openIndex('sqlite::memory:', { durability: 'none' });
  try {
    for (const st of [0, 1, 1234, 1235])
      for (const ds of studyDataSets(st, shape)) {
        ds.delete(TAG.PixelData);
        const e = describeInstance(ds, {
          transferSyntaxUid: EXPLICIT_VR_LE,
          path: `objects/bench/${randomBytes(12).toString('hex')}.dcm`,
          size: 2000,
          receivedAt: new Date(),
          callingAet: 'BENCH',
        });
        if (!e.ok) throw e.error;
        await viaApi.index.insertInstance(e.value.record, e.value.headers);
      }
    await insertStudies(viaBulk.index.db, 0, 2, shape);
    await insertStudies(viaBulk.index.db, 1234, 2, shape);
    const [a, b] = [await tableContents(viaApi.index.db), await tableContents(viaBulk.index.db)];
    for (const t of new Set([...Object.keys(a), ...Object.keys(b)]))
      if (JSON.stringify(a[t]) !== JSON.stringify(b[t]))
        throw new Error(
          `the bulk fill of bench/adapters.ts no longer writes table ${t} as insertInstance does: adapt insertStudies\n` +
            `  insertInstance: ${(a[t] ?? []).slice(0, 1).join('')}\n  bulk:           ${(b[t] ?? []).slice(0, 1).join('')}`,
        );
  } finally {
    await viaApi.index.close();
    await viaBulk.index.close();
  }
}

// --- transcoding and rendering (bench/transcode.ts) -----------------------------------------------------

/** Encodes each file into JPEG 2000 lossless with our encoder (io/transcode.ts), into `dir`. */
export async function toJpeg2000Lossless(files: readonly string[], dir: string): Promise<string[]> {
  const { transcodeFile, closeTranscodePool } = await import('../src/io/transcode.js');
  mkdirSync(dir, { recursive: true });
  const out: string[] = [];
  for (const f of files) {
    const o = join(dir, f.split('/').at(-1) as string);
    await transcodeFile(f, o, { to: UID.JPEG2000Lossless });
    out.push(o);
  }
  await closeTranscodePool();
  return out;
}

/**
 * A 512x512 CT frame rendered to a 256x256 JPEG thumbnail as /thumbnail and /rendered do
 * (dicom/pixel: Modality LUT, window, scaling; the JPEG encoded by web/render/encode.ts; the
 * render task of web/render/render-task.ts), timed here: the wall-clock and CPU milliseconds of
 * each of `runs` renders after `warmup` ones (CPU time, process.cpuUsage over every thread of
 * the process, says what the work costs when other processes share the cores).
 */
export async function thumbnailTimes(
  runs: number,
  warmup: number,
): Promise<{ wall: number[]; cpu: number[] }> {
  const { describeFrames } = await import('../src/dicom/pixel/frame.js');
  const { renderParameters } = await import('../src/dicom/pixel/render.js');
  const { runRenderTask } = await import('../src/web/render/render-task.js');
  const ds = makeCtDataSet({ rows: 512, columns: 512 });
  const info = describeFrames(ds);
  const parameters = renderParameters(ds, info);
  const bytes = ds.bytes(TAG.PixelData) as Uint8Array;
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < runs + warmup; i++) {
    const c = process.cpuUsage();
    const t = performance.now();
    const r = await runRenderTask({
      parameters,
      bytes,
      bitOffset: 0,
      format: 'jpeg',
      quality: 90,
      viewport: { width: 256, height: 256 },
    });
    const ms = performance.now() - t;
    const used = process.cpuUsage(c);
    if (r.width !== 256 || r.height !== 256) throw new Error(`thumbnail is ${r.width}x${r.height}`);
    if (i >= warmup) {
      wall.push(ms);
      cpu.push((used.user + used.system) / 1000);
    }
  }
  return { wall, cpu };
}
