/**
 * The index on SQL through kysely: one implementation for SQLite and PostgreSQL. Writes go
 * through group commit; each insert or delete keeps the counters of its study, series and
 * patient current in the same transaction. Rows are locked in the order study -> series to
 * keep concurrent writers of several processes (PostgreSQL) from deadlocking in the common case;
 * the rare deadlock or lost race is retried by the group commit.
 */
import { CompiledQuery, type Kysely } from 'kysely';
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
  InstanceFileSwitch,
  InstanceMetadataRow,
  InstanceRecord,
  LevelHeaders,
  MetadataScope,
  MetadataVersion,
  PatientAttributes,
  PatientSummary,
  SeriesSummary,
  StudySummary,
} from './archive-index.js';
import type { InstanceMetadataDocs } from './capture.js';
import { GroupCommit, type GroupCommitOptions, type GroupCommitStats } from './group-commit.js';
import { countSql, findPageSql, findSql, type QueryPage, type QueryPlan } from './query.js';
import {
  addToList,
  joinList,
  patientKey,
  patientMismatch,
  seriesStudyMismatch,
  splitList,
  studyPatientMismatch,
} from './rules.js';
import type { IndexDatabase, InstanceTable, SeriesTable, StudyTable } from './schema.js';

type Db = Kysely<IndexDatabase>;

export interface SqlIndexOptions {
  readonly groupCommit?: GroupCommitOptions;
  readonly logger?: Logger;
  /** Called by close() after the last write, to release what open() set up (default: db.destroy()). */
  readonly onClose?: () => Promise<void>;
}

const PAGE = 1000;
/** Metadata documents are a few KiB each: pages of 200 keep a page's memory small. */
const METADATA_PAGE = 200;

export class SqlArchiveIndex implements ArchiveIndex {
  readonly engine: SqlEngine;
  /** For read-only queries of later modules (C-FIND); writes go through withTransaction. */
  readonly db: Db;
  private readonly commits: GroupCommit<Db>;
  private readonly statements: Statements;
  private readonly onClose: () => Promise<void>;
  private closing: Promise<void> | undefined;

  constructor(db: Db, engine: SqlEngine, options: SqlIndexOptions = {}) {
    this.db = db;
    this.engine = engine;
    this.statements = STATEMENTS_OF[engine];
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
    return this.commits.submit((conn) => fn(new SqlTransaction(conn, this.statements)));
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

  switchInstanceFile(sopInstanceUid: string, from: string, to: InstanceFileSwitch): Promise<boolean> {
    return this.withTransaction((tx) => tx.switchInstanceFile(sopInstanceUid, from, to));
  }

  findInstance(sopInstanceUid: string): Promise<IndexedInstance | undefined> {
    return findInstance(this.db, this.statements, sopInstanceUid);
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

  // --- WADO-RS metadata (kept at ingest) ------------------------------------------------------

  async *instanceMetadata(scope: MetadataScope): AsyncIterable<InstanceMetadataRow> {
    let after = 0;
    for (;;) {
      let q = this.db
        .selectFrom('instance as i')
        .innerJoin('series as se', 'se.id', 'i.series_fk')
        .innerJoin('study as st', 'st.id', 'i.study_fk')
        .select([
          'i.id',
          'i.sop_instance_uid',
          'i.transfer_syntax_uid',
          'i.path',
          'i.metadata',
          'se.series_instance_uid',
          'st.study_instance_uid',
        ])
        .where('st.study_instance_uid', '=', scope.studyInstanceUid)
        .where('i.id', '>', after)
        .orderBy('i.id')
        .limit(METADATA_PAGE);
      if (scope.seriesInstanceUid !== undefined)
        q = q.where('se.series_instance_uid', '=', scope.seriesInstanceUid);
      if (scope.sopInstanceUid !== undefined) q = q.where('i.sop_instance_uid', '=', scope.sopInstanceUid);
      const rows = await q.execute();
      for (const r of rows)
        yield {
          studyInstanceUid: r.study_instance_uid,
          seriesInstanceUid: r.series_instance_uid,
          sopInstanceUid: r.sop_instance_uid,
          transferSyntaxUid: r.transfer_syntax_uid,
          path: r.path,
          metadata: r.metadata,
          bulk: null,
        };
      if (rows.length < METADATA_PAGE) return;
      after = Number((rows[rows.length - 1] as { id: number }).id);
    }
  }

  async instanceBulk(scope: Required<MetadataScope>): Promise<InstanceMetadataRow | undefined> {
    const r = (await run<BulkRow>(this.db, this.statements.instanceBulk, [scope.sopInstanceUid]))[0];
    if (
      !r ||
      r.study_instance_uid !== scope.studyInstanceUid ||
      r.series_instance_uid !== scope.seriesInstanceUid
    )
      return undefined;
    return {
      studyInstanceUid: r.study_instance_uid,
      seriesInstanceUid: r.series_instance_uid,
      sopInstanceUid: r.sop_instance_uid,
      transferSyntaxUid: r.transfer_syntax_uid,
      path: r.path,
      metadata: null,
      bulk: r.bulk,
    };
  }

  async storeInstanceMetadata(sopInstanceUid: string, docs: InstanceMetadataDocs): Promise<void> {
    await this.db
      .updateTable('instance')
      .set({ metadata: docs.metadata, bulk: docs.bulk })
      .where('sop_instance_uid', '=', sopInstanceUid)
      .where('metadata', 'is', null)
      .execute();
  }

  async metadataVersion(scope: MetadataScope): Promise<MetadataVersion | undefined> {
    if (scope.sopInstanceUid !== undefined) {
      const r = await this.db
        .selectFrom('instance as i')
        .innerJoin('series as se', 'se.id', 'i.series_fk')
        .innerJoin('study as st', 'st.id', 'i.study_fk')
        .select(['i.id', 'i.received_at', 'i.path', 'se.series_instance_uid', 'st.study_instance_uid'])
        .where('i.sop_instance_uid', '=', scope.sopInstanceUid)
        .executeTakeFirst();
      if (
        !r ||
        r.study_instance_uid !== scope.studyInstanceUid ||
        (scope.seriesInstanceUid !== undefined && r.series_instance_uid !== scope.seriesInstanceUid)
      )
        return undefined;
      return { instances: 1, changedAt: `${r.received_at}/${r.id}/${r.path}` };
    }
    if (scope.seriesInstanceUid !== undefined) {
      const r = await this.db
        .selectFrom('series as se')
        .innerJoin('study as st', 'st.id', 'se.study_fk')
        .select(['se.id', 'se.number_of_instances', 'se.updated_at', 'st.study_instance_uid'])
        .where('se.series_instance_uid', '=', scope.seriesInstanceUid)
        .executeTakeFirst();
      if (!r || r.study_instance_uid !== scope.studyInstanceUid) return undefined;
      return { instances: Number(r.number_of_instances), changedAt: `${r.updated_at}/${r.id}` };
    }
    const r = await this.db
      .selectFrom('study')
      .select(['id', 'number_of_instances', 'updated_at'])
      .where('study_instance_uid', '=', scope.studyInstanceUid)
      .executeTakeFirst();
    if (!r) return undefined;
    return { instances: Number(r.number_of_instances), changedAt: `${r.updated_at}/${r.id}` };
  }

  search<A = DataSet>(plan: QueryPlan<A>, page: QueryPage, signal?: AbortSignal): AsyncIterable<A> {
    return findPageSql(this.db, this.engine, plan, page, signal);
  }

  close(): Promise<void> {
    this.closing ??= this.commits.close().then(() => this.onClose());
    return this.closing;
  }
}

/** The operations of one transaction, on its connection. */
class SqlTransaction implements IndexTransaction {
  constructor(
    private readonly conn: Db,
    private readonly statements: Statements,
  ) {}

  findInstance(sopInstanceUid: string): Promise<IndexedInstance | undefined> {
    return findInstance(this.conn, this.statements, sopInstanceUid);
  }

  async insertInstance(
    record: InstanceRecord,
    headers: LevelHeaders,
    options: InsertOptions = {},
  ): Promise<InsertResult> {
    const first = await this.add(record, headers);
    if (first.status !== 'duplicate' || options.onDuplicate !== 'replace') return first;
    // Removing the old row may remove its series and study too: the second try starts afresh.
    await this.remove(first.existing.sopInstanceUid);
    const second = await this.add(record, headers);
    return second.status === 'inserted'
      ? { status: 'replaced', previous: first.existing, warnings: second.warnings }
      : second;
  }

  /**
   * Inserts the instance row and keeps the counters of its study and series current; a
   * duplicate is told by the insert itself (no lookup first). In the common case (the series is
   * indexed) that is four statements: the series, the instance, the study, the series counter.
   */
  private async add(
    record: InstanceRecord,
    headers: LevelHeaders,
  ): Promise<
    { status: 'inserted'; warnings: IndexWarning[] } | { status: 'duplicate'; existing: IndexedInstance }
  > {
    const conn = this.conn;
    const q = this.statements;
    const warnings: IndexWarning[] = [];
    const now = new Date().toISOString();
    const { study, series, instance } = record;

    // The series decides the study: an object whose series is indexed joins that series.
    const indexedSeries = (await run<SeriesOfRow>(conn, q.seriesOf, [series.seriesInstanceUid]))[0];
    let studyFk: number;
    let seriesFk: number;
    let studyCreated = false;
    if (indexedSeries) {
      studyFk = Number(indexedSeries.study_fk);
      seriesFk = Number(indexedSeries.id);
      const w = seriesStudyMismatch(series, indexedSeries.study_instance_uid, study.studyInstanceUid);
      if (w) warnings.push(w);
    } else {
      // Rows are about to be created: a duplicate must be known before, not told by the insert.
      const existing = await findInstance(conn, q, instance.sopInstanceUid);
      if (existing) return { status: 'duplicate', existing };
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

    const values = [
      seriesFk,
      studyFk,
      instance.sopInstanceUid,
      instance.sopClassUid,
      instance.instanceNumber,
      instance.transferSyntaxUid,
      instance.path,
      instance.size,
      instance.receivedAt.toISOString(),
      instance.callingAet,
      JSON.stringify(headers.instance),
      headers.stored?.metadata ?? null,
      headers.stored?.bulk ?? null,
    ];
    if (indexedSeries) {
      const rows = await run(conn, q.insertInstanceUnlessIndexed, values);
      if (rows.length === 0) {
        const existing = await findInstance(conn, q, instance.sopInstanceUid);
        // Indexed a moment ago and gone now: only a concurrent delete does that; try again.
        if (!existing) throw new Error(`the row of ${instance.sopInstanceUid} changed during the insert`);
        return { status: 'duplicate', existing };
      }
    } else {
      // A row of another writer since the lookup fails this (unique violation) and the batch is retried.
      await run(conn, q.insertInstance, values);
    }

    // Study first, then series (the order delete uses too). The update locks the study row, so
    // the lists it returns are current and can be extended without losing a concurrent writer's values.
    const seriesCreated = !indexedSeries;
    const studyRow = (
      await run<StudyCountersRow>(conn, q.countInStudy, [seriesCreated ? 1 : 0, now, studyFk])
    )[0];
    if (!studyRow) throw new Error(`the study row of ${instance.sopInstanceUid} is gone`);
    const modalities = seriesCreated ? addToList(studyRow.modalities_in_study, series.modality) : undefined;
    const sopClasses = addToList(studyRow.sop_classes_in_study, instance.sopClassUid);
    if (modalities !== undefined || sopClasses !== undefined)
      await run(conn, q.setStudyLists, [modalities ?? null, sopClasses ?? null, studyFk]);
    await run(conn, q.countInSeries, [now, seriesFk]);

    if (!studyCreated) {
      const w = studyPatientMismatch(studyRow.study_instance_uid, patientOf(studyRow), record.patient);
      if (w) warnings.push(w);
    }
    return { status: 'inserted', warnings };
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

  async switchInstanceFile(sopInstanceUid: string, from: string, to: InstanceFileSwitch): Promise<boolean> {
    const conn = this.conn;
    const row = await conn
      .updateTable('instance')
      .set({
        path: to.path,
        transfer_syntax_uid: to.transferSyntaxUid,
        size: to.size,
        header: JSON.stringify(to.header),
        metadata: to.stored.metadata,
        bulk: to.stored.bulk,
      })
      .where('sop_instance_uid', '=', sopInstanceUid)
      .where('path', '=', from)
      .returning(['series_fk', 'study_fk'])
      .executeTakeFirst();
    if (!row) return false;
    const now = new Date().toISOString();
    // Study before series, as every writer orders its locks.
    await conn.updateTable('study').set({ updated_at: now }).where('id', '=', Number(row.study_fk)).execute();
    await conn
      .updateTable('series')
      .set({ updated_at: now })
      .where('id', '=', Number(row.series_fk))
      .execute();
    return true;
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

/**
 * The statements of the ingest path, their text built once per engine: kysely builds and
 * compiles a query anew on every call, which the profile of a small-object ingest shows. The
 * rarer writes (a new patient, study or series; a removal) stay kysely queries.
 */
interface Statements {
  readonly findInstance: string;
  readonly seriesOf: string;
  readonly insertInstance: string;
  /** The same insert, doing nothing when the SOP Instance UID is indexed (a duplicate): no row returned then. */
  readonly insertInstanceUnlessIndexed: string;
  readonly countInStudy: string;
  readonly setStudyLists: string;
  readonly countInSeries: string;
  /** WADO-RS frames and bulk data: one instance's file and bulk layout (the hot path of frame requests). */
  readonly instanceBulk: string;
}

const INSERT_INSTANCE = `insert into instance (series_fk, study_fk, sop_instance_uid, sop_class_uid,
  instance_number, transfer_syntax_uid, path, size, received_at, calling_aet, header, metadata, bulk)
  values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;

const STATEMENTS: Statements = {
  findInstance: `select i.sop_instance_uid, i.sop_class_uid, i.instance_number, i.transfer_syntax_uid,
  i.path, i.size, i.received_at, i.calling_aet, se.series_instance_uid, st.study_instance_uid
  from instance i inner join series se on se.id = i.series_fk inner join study st on st.id = i.study_fk
  where i.sop_instance_uid = ?`,
  seriesOf: `select se.id, se.study_fk, st.study_instance_uid
  from series se inner join study st on st.id = se.study_fk where se.series_instance_uid = ?`,
  insertInstance: INSERT_INSTANCE,
  insertInstanceUnlessIndexed: `${INSERT_INSTANCE} on conflict (sop_instance_uid) do nothing returning id`,
  countInStudy: `update study set number_of_instances = number_of_instances + 1,
  number_of_series = number_of_series + ?, updated_at = ? where id = ?
  returning modalities_in_study, sop_classes_in_study, study_instance_uid, patient_id,
  issuer_of_patient_id, patient_name, patient_birth_date, patient_sex`,
  setStudyLists: `update study set modalities_in_study = coalesce(?, modalities_in_study),
  sop_classes_in_study = coalesce(?, sop_classes_in_study) where id = ?`,
  countInSeries:
    'update series set number_of_instances = number_of_instances + 1, updated_at = ? where id = ?',
  instanceBulk: `select i.sop_instance_uid, i.transfer_syntax_uid, i.path, i.bulk,
  se.series_instance_uid, st.study_instance_uid
  from instance i inner join series se on se.id = i.series_fk inner join study st on st.id = i.study_fk
  where i.sop_instance_uid = ?`,
};

/** PostgreSQL numbers its parameters ($1, $2...); the texts above hold `?` only as placeholders. */
function numbered(text: string): string {
  let n = 0;
  return text.replace(/\?/g, () => `$${++n}`);
}

const STATEMENTS_OF: Readonly<Record<SqlEngine, Statements>> = {
  sqlite: STATEMENTS,
  postgres: Object.fromEntries(
    Object.entries(STATEMENTS).map(([name, text]) => [name, numbered(text)]),
  ) as unknown as Statements,
};

/** Runs one of the statements above (SQLite: prepared once and cached by open.ts). */
async function run<R = unknown>(db: Db, text: string, parameters: readonly unknown[]): Promise<R[]> {
  const result = await db.executeQuery<R>(CompiledQuery.raw(text, parameters as unknown[]));
  return result.rows as R[];
}

// Rows of the statements above, in the columns of schema.ts.
type SeriesOfRow = Pick<SeriesTable, 'id' | 'study_fk'> & Pick<StudyTable, 'study_instance_uid'>;

type StudyCountersRow = Pick<
  StudyTable,
  'modalities_in_study' | 'sop_classes_in_study' | 'study_instance_uid' | keyof PatientColumns
>;

type BulkRow = Pick<InstanceTable, 'sop_instance_uid' | 'transfer_syntax_uid' | 'path' | 'bulk'> &
  Pick<SeriesTable, 'series_instance_uid'> &
  Pick<StudyTable, 'study_instance_uid'>;

type InstanceRow = Pick<
  InstanceTable,
  | 'sop_instance_uid'
  | 'sop_class_uid'
  | 'instance_number'
  | 'transfer_syntax_uid'
  | 'path'
  | 'size'
  | 'received_at'
  | 'calling_aet'
> &
  Pick<SeriesTable, 'series_instance_uid'> &
  Pick<StudyTable, 'study_instance_uid'>;

async function findInstance(
  db: Db,
  statements: Statements,
  sopInstanceUid: string,
): Promise<IndexedInstance | undefined> {
  const row = (await run<InstanceRow>(db, statements.findInstance, [sopInstanceUid]))[0];
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
