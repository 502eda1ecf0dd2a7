/**
 * The index on SQL through kysely: one implementation for SQLite and PostgreSQL. Writes go
 * through group commit; each insert or delete keeps the counters of its study, series and
 * patient current in the same transaction. Rows are locked in the order study -> series to
 * keep concurrent writers of several processes (PostgreSQL) from deadlocking in the common case;
 * the rare deadlock or lost race is retried by the group commit.
 */
import type { Kysely } from 'kysely';
import type { Logger } from '../../core/logger.js';
import type { DataSet } from '../../dicom/dataset.js';
import type { DicomJsonObject } from '../../dicom/json.js';
import { normalizePersonName } from '../../dicom/matching/person-name.js';
import {
  inSavepoint,
  inTransaction,
  isRetryable,
  PG_FOREIGN_KEY_VIOLATION,
  type SqlEngine,
} from '../database.js';
import type {
  ArchiveIndex,
  IndexedInstance,
  IndexTransaction,
  IndexWarning,
  InsertOptions,
  InsertResult,
  InstanceFile,
  InstanceRecord,
  LevelHeaders,
  PatientAttributes,
  PatientSummary,
  SeriesSummary,
  StudySummary,
} from './archive-index.js';
import { GroupCommit, type GroupCommitOptions, type GroupCommitStats } from './group-commit.js';
import { countSql, findSql, type QueryPlan } from './query.js';
import {
  addToList,
  joinList,
  patientKey,
  patientMismatch,
  seriesStudyMismatch,
  splitList,
  studyPatientMismatch,
} from './rules.js';
import type { IndexDatabase } from './schema.js';

type Db = Kysely<IndexDatabase>;

export interface SqlIndexOptions {
  readonly groupCommit?: GroupCommitOptions;
  readonly logger?: Logger;
  /** Called by close() after the last write, to release what open() set up (default: db.destroy()). */
  readonly onClose?: () => Promise<void>;
}

const PAGE = 1000;

export class SqlArchiveIndex implements ArchiveIndex {
  readonly engine: SqlEngine;
  /** For read-only queries of later modules (C-FIND); writes go through withTransaction. */
  readonly db: Db;
  private readonly commits: GroupCommit<Db>;
  private readonly onClose: () => Promise<void>;
  private closing: Promise<void> | undefined;

  constructor(db: Db, engine: SqlEngine, options: SqlIndexOptions = {}) {
    this.db = db;
    this.engine = engine;
    this.onClose = options.onClose ?? (() => db.destroy());
    const logger = options.logger;
    this.commits = new GroupCommit<Db>(
      {
        transaction: (body) => inTransaction(db, engine, body),
        savepoint: (conn, name, body) => inSavepoint(conn, name, body),
        isRetryable: (error) => {
          const retry = isRetryable(engine, error, [PG_FOREIGN_KEY_VIOLATION]);
          if (retry) logger?.debug({ err: error }, 'index write retried');
          return retry;
        },
      },
      options.groupCommit,
    );
  }

  get groupCommitStats(): GroupCommitStats {
    return this.commits.stats;
  }

  withTransaction<T>(fn: (tx: IndexTransaction) => Promise<T>): Promise<T> {
    return this.commits.submit((conn) => fn(new SqlTransaction(conn)));
  }

  insertInstance(
    record: InstanceRecord,
    headers: LevelHeaders,
    options?: InsertOptions,
  ): Promise<InsertResult> {
    return this.withTransaction((tx) => tx.insertInstance(record, headers, options));
  }

  deleteInstance(sopInstanceUid: string): Promise<IndexedInstance | undefined> {
    return this.withTransaction((tx) => tx.deleteInstance(sopInstanceUid));
  }

  findInstance(sopInstanceUid: string): Promise<IndexedInstance | undefined> {
    return findInstance(this.db, sopInstanceUid);
  }

  async findSeries(seriesInstanceUid: string): Promise<SeriesSummary | undefined> {
    const row = await this.db
      .selectFrom('series')
      .innerJoin('study', 'study.id', 'series.study_fk')
      .selectAll('series')
      .select('study.study_instance_uid')
      .where('series.series_instance_uid', '=', seriesInstanceUid)
      .executeTakeFirst();
    if (!row) return undefined;
    return {
      seriesInstanceUid: row.series_instance_uid,
      studyInstanceUid: row.study_instance_uid,
      modality: row.modality,
      seriesNumber: row.series_number,
      seriesDescription: row.series_description,
      bodyPartExamined: row.body_part_examined,
      numberOfInstances: Number(row.number_of_instances),
      header: parseJson(row.header),
    };
  }

  async findStudy(studyInstanceUid: string): Promise<StudySummary | undefined> {
    const row = await this.db
      .selectFrom('study')
      .selectAll()
      .where('study_instance_uid', '=', studyInstanceUid)
      .executeTakeFirst();
    if (!row) return undefined;
    return {
      studyInstanceUid: row.study_instance_uid,
      studyDate: row.study_date,
      studyTime: row.study_time,
      accessionNumber: row.accession_number,
      studyId: row.study_id,
      referringPhysicianName: row.referring_physician_name,
      studyDescription: row.study_description,
      patient: patientOf(row),
      numberOfSeries: Number(row.number_of_series),
      numberOfInstances: Number(row.number_of_instances),
      modalitiesInStudy: splitList(row.modalities_in_study),
      sopClassesInStudy: splitList(row.sop_classes_in_study),
      header: parseJson(row.header),
      patientHeader: parseJson(row.patient_header),
    };
  }

  async findPatient(
    patientId: string,
    issuerOfPatientId: string | null,
  ): Promise<PatientSummary | undefined> {
    const row = await this.db
      .selectFrom('patient')
      .selectAll()
      .where('patient_key', '=', patientKey(patientId, issuerOfPatientId, ''))
      .executeTakeFirst();
    if (!row) return undefined;
    return {
      ...patientOf(row),
      numberOfStudies: Number(row.number_of_studies),
      header: parseJson(row.header),
    };
  }

  async countInstances(): Promise<number> {
    const row = await this.db
      .selectFrom('instance')
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async *listInstanceFiles(options: { readonly after?: string } = {}): AsyncIterable<InstanceFile> {
    let after = options.after;
    for (;;) {
      let q = this.db.selectFrom('instance').select(['sop_instance_uid', 'path']).orderBy('path').limit(PAGE);
      if (after !== undefined) q = q.where('path', '>', after);
      const rows = await q.execute();
      for (const r of rows) yield { sopInstanceUid: r.sop_instance_uid, path: r.path };
      if (rows.length < PAGE) return;
      after = (rows[rows.length - 1] as { path: string }).path;
    }
  }

  find<A = DataSet>(plan: QueryPlan<A>, signal?: AbortSignal): AsyncIterable<A> {
    return findSql(this.db, this.engine, plan, { ...(signal ? { signal } : {}) });
  }

  countMatches(plan: QueryPlan, atMost: number): Promise<number> {
    return countSql(this.db, this.engine, plan, atMost);
  }

  close(): Promise<void> {
    this.closing ??= this.commits.close().then(() => this.onClose());
    return this.closing;
  }
}

/** The operations of one transaction, on its connection. */
class SqlTransaction implements IndexTransaction {
  constructor(private readonly conn: Db) {}

  findInstance(sopInstanceUid: string): Promise<IndexedInstance | undefined> {
    return findInstance(this.conn, sopInstanceUid);
  }

  async insertInstance(
    record: InstanceRecord,
    headers: LevelHeaders,
    options: InsertOptions = {},
  ): Promise<InsertResult> {
    const conn = this.conn;
    const existing = await this.findInstance(record.instance.sopInstanceUid);
    if (existing && (options.onDuplicate ?? 'keep') === 'keep') return { status: 'duplicate', existing };
    if (existing) await this.remove(existing.sopInstanceUid);

    const warnings: IndexWarning[] = [];
    const now = new Date().toISOString();
    const { study, series, instance } = record;

    // The series decides the study: an object whose series is indexed joins that series.
    const indexedSeries = await conn
      .selectFrom('series')
      .innerJoin('study', 'study.id', 'series.study_fk')
      .select(['series.id', 'series.study_fk', 'study.study_instance_uid'])
      .where('series.series_instance_uid', '=', series.seriesInstanceUid)
      .executeTakeFirst();
    let studyFk: number;
    let seriesFk: number;
    let studyCreated = false;
    if (indexedSeries) {
      studyFk = Number(indexedSeries.study_fk);
      seriesFk = Number(indexedSeries.id);
      const w = seriesStudyMismatch(series, indexedSeries.study_instance_uid, study.studyInstanceUid);
      if (w) warnings.push(w);
    } else {
      const resolved = await this.resolveStudy(record, headers, now, warnings);
      studyFk = resolved.id;
      studyCreated = resolved.created;
      const inserted = await conn
        .insertInto('series')
        .values({
          study_fk: studyFk,
          series_instance_uid: series.seriesInstanceUid,
          modality: series.modality,
          series_number: series.seriesNumber,
          series_description: series.seriesDescription,
          body_part_examined: series.bodyPartExamined,
          number_of_instances: 0,
          header: JSON.stringify(headers.series),
          created_at: now,
          updated_at: now,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      seriesFk = Number(inserted.id);
    }

    await conn
      .insertInto('instance')
      .values({
        series_fk: seriesFk,
        study_fk: studyFk,
        sop_instance_uid: instance.sopInstanceUid,
        sop_class_uid: instance.sopClassUid,
        instance_number: instance.instanceNumber,
        transfer_syntax_uid: instance.transferSyntaxUid,
        path: instance.path,
        size: instance.size,
        received_at: instance.receivedAt.toISOString(),
        calling_aet: instance.callingAet,
        header: JSON.stringify(headers.instance),
      })
      .execute();

    // Study first, then series (the order delete uses too). The update locks the study row, so
    // the lists it returns are current and can be extended without losing a concurrent writer's values.
    const seriesCreated = !indexedSeries;
    const studyRow = await conn
      .updateTable('study')
      .set((eb) => ({
        number_of_instances: eb('number_of_instances', '+', 1),
        number_of_series: eb('number_of_series', '+', seriesCreated ? 1 : 0),
        updated_at: now,
      }))
      .where('id', '=', studyFk)
      .returning([
        'modalities_in_study',
        'sop_classes_in_study',
        'study_instance_uid',
        'patient_id',
        'issuer_of_patient_id',
        'patient_name',
        'patient_birth_date',
        'patient_sex',
      ])
      .executeTakeFirstOrThrow();
    const modalities = seriesCreated ? addToList(studyRow.modalities_in_study, series.modality) : undefined;
    const sopClasses = addToList(studyRow.sop_classes_in_study, instance.sopClassUid);
    if (modalities !== undefined || sopClasses !== undefined) {
      await conn
        .updateTable('study')
        .set({
          ...(modalities === undefined ? {} : { modalities_in_study: modalities }),
          ...(sopClasses === undefined ? {} : { sop_classes_in_study: sopClasses }),
        })
        .where('id', '=', studyFk)
        .execute();
    }
    await conn
      .updateTable('series')
      .set((eb) => ({ number_of_instances: eb('number_of_instances', '+', 1), updated_at: now }))
      .where('id', '=', seriesFk)
      .execute();

    if (!studyCreated) {
      const w = studyPatientMismatch(studyRow.study_instance_uid, patientOf(studyRow), record.patient);
      if (w) warnings.push(w);
    }
    return existing ? { status: 'replaced', previous: existing, warnings } : { status: 'inserted', warnings };
  }

  /** The study row of the record, created (with its patient row when new) if needed. */
  private async resolveStudy(
    record: InstanceRecord,
    headers: LevelHeaders,
    now: string,
    warnings: IndexWarning[],
  ): Promise<{ id: number; created: boolean }> {
    const conn = this.conn;
    const { patient, study } = record;
    const found = await conn
      .selectFrom('study')
      .select('id')
      .where('study_instance_uid', '=', study.studyInstanceUid)
      .executeTakeFirst();
    if (found) return { id: Number(found.id), created: false };

    const key = patientKey(patient.patientId, patient.issuerOfPatientId, study.studyInstanceUid);
    const patientName = patient.patientName;
    const patientNameNorm = normalizePersonName(patientName);
    const indexedPatient = await conn
      .selectFrom('patient')
      .selectAll()
      .where('patient_key', '=', key)
      .executeTakeFirst();
    let patientFk: number;
    if (indexedPatient) {
      patientFk = Number(indexedPatient.id);
      const w = patientMismatch(patientOf(indexedPatient), patient, study);
      if (w) warnings.push(w);
      await conn
        .updateTable('patient')
        .set((eb) => ({ number_of_studies: eb('number_of_studies', '+', 1), updated_at: now }))
        .where('id', '=', patientFk)
        .execute();
    } else {
      const inserted = await conn
        .insertInto('patient')
        .values({
          patient_key: key,
          patient_id: patient.patientId,
          issuer_of_patient_id: patient.issuerOfPatientId,
          patient_name: patientName,
          patient_name_norm: patientNameNorm,
          patient_birth_date: patient.patientBirthDate,
          patient_sex: patient.patientSex,
          number_of_studies: 1,
          header: JSON.stringify(headers.patient),
          created_at: now,
          updated_at: now,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      patientFk = Number(inserted.id);
    }
    const inserted = await conn
      .insertInto('study')
      .values({
        patient_fk: patientFk,
        study_instance_uid: study.studyInstanceUid,
        study_date: study.studyDate,
        study_time: study.studyTime,
        accession_number: study.accessionNumber,
        study_id: study.studyId,
        referring_physician_name: study.referringPhysicianName,
        referring_physician_name_norm: normalizePersonName(study.referringPhysicianName),
        study_description: study.studyDescription,
        patient_id: patient.patientId,
        issuer_of_patient_id: patient.issuerOfPatientId,
        patient_name: patientName,
        patient_name_norm: patientNameNorm,
        patient_birth_date: patient.patientBirthDate,
        patient_sex: patient.patientSex,
        number_of_series: 0,
        number_of_instances: 0,
        modalities_in_study: null,
        sop_classes_in_study: null,
        header: JSON.stringify(headers.study),
        patient_header: JSON.stringify(headers.patient),
        created_at: now,
        updated_at: now,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return { id: Number(inserted.id), created: true };
  }

  async deleteInstance(sopInstanceUid: string): Promise<IndexedInstance | undefined> {
    const existing = await this.findInstance(sopInstanceUid);
    if (!existing) return undefined;
    await this.remove(sopInstanceUid);
    return existing;
  }

  /** Removes an instance row and updates (or removes) its series, study and patient rows. */
  private async remove(sopInstanceUid: string): Promise<void> {
    const conn = this.conn;
    const row = await conn
      .deleteFrom('instance')
      .where('sop_instance_uid', '=', sopInstanceUid)
      .returning(['series_fk', 'study_fk'])
      .executeTakeFirst();
    if (!row) return;
    const studyFk = Number(row.study_fk);
    const seriesFk = Number(row.series_fk);
    const now = new Date().toISOString();

    // Study first (its lock orders every writer of the study and its series), then the series.
    const study = await conn
      .updateTable('study')
      .set((eb) => ({ number_of_instances: eb('number_of_instances', '-', 1), updated_at: now }))
      .where('id', '=', studyFk)
      .returning(['number_of_instances', 'patient_fk'])
      .executeTakeFirstOrThrow();
    const series = await conn
      .updateTable('series')
      .set((eb) => ({ number_of_instances: eb('number_of_instances', '-', 1), updated_at: now }))
      .where('id', '=', seriesFk)
      .returning('number_of_instances')
      .executeTakeFirstOrThrow();
    const seriesGone = Number(series.number_of_instances) <= 0;
    if (seriesGone) await conn.deleteFrom('series').where('id', '=', seriesFk).execute();

    if (Number(study.number_of_instances) <= 0) {
      await conn.deleteFrom('study').where('id', '=', studyFk).execute();
      const patientFk = Number(study.patient_fk);
      const patient = await conn
        .updateTable('patient')
        .set((eb) => ({ number_of_studies: eb('number_of_studies', '-', 1), updated_at: now }))
        .where('id', '=', patientFk)
        .returning('number_of_studies')
        .executeTakeFirstOrThrow();
      if (Number(patient.number_of_studies) <= 0)
        await conn.deleteFrom('patient').where('id', '=', patientFk).execute();
      return;
    }
    // The study row is locked by the update above, so these reads see every committed change.
    const classes = await conn
      .selectFrom('instance')
      .select('sop_class_uid')
      .distinct()
      .where('study_fk', '=', studyFk)
      .execute();
    const sopClasses = joinList(classes.map((c) => c.sop_class_uid));
    if (!seriesGone) {
      await conn
        .updateTable('study')
        .set({ sop_classes_in_study: sopClasses })
        .where('id', '=', studyFk)
        .execute();
      return;
    }
    const modalities = await conn
      .selectFrom('series')
      .select('modality')
      .distinct()
      .where('study_fk', '=', studyFk)
      .execute();
    await conn
      .updateTable('study')
      .set((eb) => ({
        number_of_series: eb('number_of_series', '-', 1),
        sop_classes_in_study: sopClasses,
        modalities_in_study: joinList(modalities.map((m) => m.modality)),
      }))
      .where('id', '=', studyFk)
      .execute();
  }
}

// --- helpers --------------------------------------------------------------------------------------

async function findInstance(db: Db, sopInstanceUid: string): Promise<IndexedInstance | undefined> {
  const row = await db
    .selectFrom('instance')
    .innerJoin('series', 'series.id', 'instance.series_fk')
    .innerJoin('study', 'study.id', 'instance.study_fk')
    .select([
      'instance.sop_instance_uid',
      'instance.sop_class_uid',
      'instance.instance_number',
      'instance.transfer_syntax_uid',
      'instance.path',
      'instance.size',
      'instance.received_at',
      'instance.calling_aet',
      'series.series_instance_uid',
      'study.study_instance_uid',
    ])
    .where('instance.sop_instance_uid', '=', sopInstanceUid)
    .executeTakeFirst();
  if (!row) return undefined;
  return {
    sopInstanceUid: row.sop_instance_uid,
    sopClassUid: row.sop_class_uid,
    instanceNumber: row.instance_number,
    transferSyntaxUid: row.transfer_syntax_uid,
    path: row.path,
    size: Number(row.size),
    receivedAt: new Date(row.received_at),
    callingAet: row.calling_aet,
    seriesInstanceUid: row.series_instance_uid,
    studyInstanceUid: row.study_instance_uid,
  };
}

interface PatientColumns {
  patient_id: string | null;
  issuer_of_patient_id: string | null;
  patient_name: string | null;
  patient_birth_date: string | null;
  patient_sex: string | null;
}

function patientOf(row: PatientColumns): PatientAttributes {
  return {
    patientId: row.patient_id,
    issuerOfPatientId: row.issuer_of_patient_id,
    patientName: row.patient_name,
    patientBirthDate: row.patient_birth_date,
    patientSex: row.patient_sex,
  };
}

function parseJson(text: string): DicomJsonObject {
  return JSON.parse(text) as DicomJsonObject;
}
