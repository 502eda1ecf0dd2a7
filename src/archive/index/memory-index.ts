/**
 * An ArchiveIndex in memory, for testing services without a database. It follows the same rules
 * as the SQL index (rules.ts) and passes the same contract tests. Transactions run one at a time;
 * a transaction that throws is undone.
 */
import type { DataSet } from '../../dicom/dataset.js';
import type { DicomJsonObject } from '../../dicom/json.js';
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
  SeriesAttributes,
  SeriesSummary,
  StudyAttributes,
  StudySummary,
} from './archive-index.js';
import type { InstanceMetadataDocs } from './capture.js';
import type { Level } from './levels.js';
import {
  countRows,
  type EntityRow,
  findPageRows,
  findRows,
  type QueryPage,
  type QueryPlan,
} from './query.js';
import {
  addToList,
  joinList,
  patientKey,
  patientMismatch,
  seriesStudyMismatch,
  splitList,
  studyPatientMismatch,
} from './rules.js';

interface PatientRow {
  readonly attributes: PatientAttributes;
  readonly numberOfStudies: number;
  readonly header: DicomJsonObject;
}

interface StudyRow {
  readonly attributes: StudyAttributes;
  readonly patientKey: string;
  readonly patient: PatientAttributes;
  readonly numberOfSeries: number;
  readonly numberOfInstances: number;
  readonly modalities: string | null;
  readonly sopClasses: string | null;
  readonly header: DicomJsonObject;
  readonly patientHeader: DicomJsonObject;
}

interface SeriesRow {
  readonly attributes: SeriesAttributes;
  readonly studyInstanceUid: string;
  readonly numberOfInstances: number;
  readonly header: DicomJsonObject;
}

interface InstanceRow {
  readonly instance: IndexedInstance;
  readonly header: DicomJsonObject;
  /** The WADO-RS documents (capture.ts), filled later for rows that had none. */
  stored: InstanceMetadataDocs | undefined;
}

interface Tables {
  readonly patients: Map<string, PatientRow>;
  readonly studies: Map<string, StudyRow>;
  readonly series: Map<string, SeriesRow>;
  readonly instances: Map<string, InstanceRow>;
}

export class MemoryArchiveIndex implements ArchiveIndex {
  readonly engine = 'memory' as const;
  private readonly tables: Tables = {
    patients: new Map(),
    studies: new Map(),
    series: new Map(),
    instances: new Map(),
  };
  private tail: Promise<unknown> = Promise.resolve();
  /** Counts transactions: the version of every WADO-RS metadata scope (coarse, but it changes with any write). */
  private generation = 0;
  private closed = false;

  withTransaction<T>(fn: (tx: IndexTransaction) => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error('the index is closed'));
    const run = async (): Promise<T> => {
      const undo: (() => void)[] = [];
      try {
        return await fn(new MemoryTransaction(this.tables, undo));
      } catch (e) {
        this.generation++;
        for (let i = undo.length - 1; i >= 0; i--) (undo[i] as () => void)();
        throw e;
      }
    };
    const counted = (): Promise<T> => {
      this.generation++;
      return run();
    };
    const result = this.tail.then(counted, counted);
    this.tail = result.catch(() => undefined);
    return result;
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

  async findInstance(sopInstanceUid: string): Promise<IndexedInstance | undefined> {
    return this.tables.instances.get(sopInstanceUid)?.instance;
  }

  async findSeries(seriesInstanceUid: string): Promise<SeriesSummary | undefined> {
    const row = this.tables.series.get(seriesInstanceUid);
    if (!row) return undefined;
    return {
      ...row.attributes,
      studyInstanceUid: row.studyInstanceUid,
      numberOfInstances: row.numberOfInstances,
      header: row.header,
    };
  }

  async findStudy(studyInstanceUid: string): Promise<StudySummary | undefined> {
    const row = this.tables.studies.get(studyInstanceUid);
    if (!row) return undefined;
    return {
      ...row.attributes,
      patient: row.patient,
      numberOfSeries: row.numberOfSeries,
      numberOfInstances: row.numberOfInstances,
      modalitiesInStudy: splitList(row.modalities),
      sopClassesInStudy: splitList(row.sopClasses),
      header: row.header,
      patientHeader: row.patientHeader,
    };
  }

  async findPatient(
    patientId: string,
    issuerOfPatientId: string | null,
  ): Promise<PatientSummary | undefined> {
    const row = this.tables.patients.get(patientKey(patientId, issuerOfPatientId, ''));
    return row && { ...row.attributes, numberOfStudies: row.numberOfStudies, header: row.header };
  }

  async countInstances(): Promise<number> {
    return this.tables.instances.size;
  }

  async *listInstanceFiles(options: { readonly after?: string } = {}): AsyncIterable<InstanceFile> {
    const after = options.after;
    const files = [...this.tables.instances.values()]
      .map((r) => ({ sopInstanceUid: r.instance.sopInstanceUid, path: r.instance.path }))
      .filter((f) => after === undefined || f.path > after)
      .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    yield* files;
  }

  async *instanceMetadata(scope: MetadataScope): AsyncIterable<InstanceMetadataRow> {
    for (const row of [...this.tables.instances.values()])
      if (inScope(row.instance, scope)) yield metadataRow(row, false);
  }

  async instanceBulk(scope: Required<MetadataScope>): Promise<InstanceMetadataRow | undefined> {
    const row = this.tables.instances.get(scope.sopInstanceUid);
    return row && inScope(row.instance, scope) ? metadataRow(row, true) : undefined;
  }

  async storeInstanceMetadata(sopInstanceUid: string, docs: InstanceMetadataDocs): Promise<void> {
    const row = this.tables.instances.get(sopInstanceUid);
    if (row && row.stored === undefined) row.stored = docs;
  }

  async metadataVersion(scope: MetadataScope): Promise<MetadataVersion | undefined> {
    let instances: number;
    if (scope.sopInstanceUid !== undefined) {
      const row = this.tables.instances.get(scope.sopInstanceUid);
      if (!row || !inScope(row.instance, scope)) return undefined;
      instances = 1;
    } else if (scope.seriesInstanceUid !== undefined) {
      const se = this.tables.series.get(scope.seriesInstanceUid);
      if (!se || se.studyInstanceUid !== scope.studyInstanceUid) return undefined;
      instances = se.numberOfInstances;
    } else {
      const st = this.tables.studies.get(scope.studyInstanceUid);
      if (!st) return undefined;
      instances = st.numberOfInstances;
    }
    return { instances, changedAt: String(this.generation) };
  }

  find<A = DataSet>(plan: QueryPlan<A>, signal?: AbortSignal): AsyncIterable<A> {
    return findRows(plan, this.entityRows(plan), signal);
  }

  countMatches(plan: QueryPlan, atMost: number): Promise<number> {
    return countRows(plan, this.entityRows(plan), atMost);
  }

  search<A = DataSet>(plan: QueryPlan<A>, page: QueryPage, signal?: AbortSignal): AsyncIterable<A> {
    return findPageRows(plan, this.entityRows(plan), page, signal);
  }

  /** The entities of the plan's level, as the SQL index reads them (query.ts decides which match). */
  private *entityRows(plan: QueryPlan<unknown>): Generator<EntityRow> {
    const t = this.tables;
    const totals = new Map<string, { series: number; instances: number }>();
    for (const s of t.studies.values()) {
      const sum = totals.get(s.patientKey) ?? { series: 0, instances: 0 };
      sum.series += s.numberOfSeries;
      sum.instances += s.numberOfInstances;
      totals.set(s.patientKey, sum);
    }
    const patientTotals = (key: string) => totals.get(key) ?? { series: 0, instances: 0 };
    const studyCounts = (study: StudyRow) => {
      const totals = patientTotals(study.patientKey);
      return {
        numberOfPatientRelatedStudies: t.patients.get(study.patientKey)?.numberOfStudies ?? null,
        numberOfPatientRelatedSeries: totals.series,
        numberOfPatientRelatedInstances: totals.instances,
        numberOfStudyRelatedSeries: study.numberOfSeries,
        numberOfStudyRelatedInstances: study.numberOfInstances,
        modalitiesInStudy: study.modalities,
        sopClassesInStudy: study.sopClasses,
      };
    };
    const pick = (docs: Partial<Record<Level, DicomJsonObject>>) => plan.headers.map((l) => docs[l]);
    if (plan.level === 'PATIENT') {
      for (const [key, p] of t.patients) {
        const totals = patientTotals(key);
        yield {
          headers: pick({ patient: p.header }),
          numberOfPatientRelatedStudies: p.numberOfStudies,
          numberOfPatientRelatedSeries: totals.series,
          numberOfPatientRelatedInstances: totals.instances,
        };
      }
      return;
    }
    if (plan.level === 'STUDY') {
      for (const s of t.studies.values())
        yield { headers: pick({ patient: s.patientHeader, study: s.header }), ...studyCounts(s) };
      return;
    }
    if (plan.level === 'SERIES') {
      for (const se of t.series.values()) {
        const s = t.studies.get(se.studyInstanceUid);
        if (s === undefined) continue;
        yield {
          headers: pick({ patient: s.patientHeader, study: s.header, series: se.header }),
          ...studyCounts(s),
          numberOfSeriesRelatedInstances: se.numberOfInstances,
        };
      }
      return;
    }
    for (const i of t.instances.values()) {
      const se = t.series.get(i.instance.seriesInstanceUid);
      const s = t.studies.get(i.instance.studyInstanceUid);
      if (se === undefined || s === undefined) continue;
      yield {
        headers: pick({ patient: s.patientHeader, study: s.header, series: se.header, instance: i.header }),
        ...studyCounts(s),
        numberOfSeriesRelatedInstances: se.numberOfInstances,
      };
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.tail;
  }
}

function inScope(i: IndexedInstance, scope: MetadataScope): boolean {
  return (
    i.studyInstanceUid === scope.studyInstanceUid &&
    (scope.seriesInstanceUid === undefined || i.seriesInstanceUid === scope.seriesInstanceUid) &&
    (scope.sopInstanceUid === undefined || i.sopInstanceUid === scope.sopInstanceUid)
  );
}

function metadataRow(row: InstanceRow, bulk: boolean): InstanceMetadataRow {
  const i = row.instance;
  return {
    studyInstanceUid: i.studyInstanceUid,
    seriesInstanceUid: i.seriesInstanceUid,
    sopInstanceUid: i.sopInstanceUid,
    transferSyntaxUid: i.transferSyntaxUid,
    path: i.path,
    metadata: bulk ? null : (row.stored?.metadata ?? null),
    bulk: bulk ? (row.stored?.bulk ?? null) : null,
  };
}

class MemoryTransaction implements IndexTransaction {
  constructor(
    private readonly t: Tables,
    private readonly undo: (() => void)[],
  ) {}

  private put<V>(map: Map<string, V>, key: string, value: V): void {
    const had = map.has(key);
    const old = map.get(key);
    this.undo.push(() => (had ? map.set(key, old as V) : map.delete(key)));
    map.set(key, value);
  }

  private drop<V>(map: Map<string, V>, key: string): void {
    if (!map.has(key)) return;
    const old = map.get(key) as V;
    this.undo.push(() => map.set(key, old));
    map.delete(key);
  }

  async findInstance(sopInstanceUid: string): Promise<IndexedInstance | undefined> {
    return this.t.instances.get(sopInstanceUid)?.instance;
  }

  async insertInstance(
    record: InstanceRecord,
    headers: LevelHeaders,
    options: InsertOptions = {},
  ): Promise<InsertResult> {
    const existing = this.t.instances.get(record.instance.sopInstanceUid)?.instance;
    if (existing && (options.onDuplicate ?? 'keep') === 'keep') return { status: 'duplicate', existing };
    if (existing) this.remove(existing.sopInstanceUid);

    const warnings: IndexWarning[] = [];
    const { patient, study, series, instance } = record;
    const push = (w: IndexWarning | null) => {
      if (w) warnings.push(w);
    };
    let seriesRow = this.t.series.get(series.seriesInstanceUid);
    const seriesCreated = seriesRow === undefined;
    let studyCreated = false;
    if (seriesRow) {
      push(seriesStudyMismatch(series, seriesRow.studyInstanceUid, study.studyInstanceUid));
    } else {
      if (!this.t.studies.has(study.studyInstanceUid)) {
        studyCreated = true;
        const key = patientKey(patient.patientId, patient.issuerOfPatientId, study.studyInstanceUid);
        const indexed = this.t.patients.get(key);
        if (indexed) {
          push(patientMismatch(indexed.attributes, patient, study));
          this.put(this.t.patients, key, { ...indexed, numberOfStudies: indexed.numberOfStudies + 1 });
        } else {
          this.put(this.t.patients, key, {
            attributes: patient,
            numberOfStudies: 1,
            header: headers.patient,
          });
        }
        this.put(this.t.studies, study.studyInstanceUid, {
          attributes: study,
          patientKey: key,
          patient,
          numberOfSeries: 0,
          numberOfInstances: 0,
          modalities: null,
          sopClasses: null,
          header: headers.study,
          patientHeader: headers.patient,
        });
      }
      seriesRow = {
        attributes: series,
        studyInstanceUid: study.studyInstanceUid,
        numberOfInstances: 0,
        header: headers.series,
      };
    }
    const studyUid = seriesRow.studyInstanceUid;
    this.put(this.t.instances, instance.sopInstanceUid, {
      instance: { ...instance, seriesInstanceUid: series.seriesInstanceUid, studyInstanceUid: studyUid },
      header: headers.instance,
      stored: headers.stored,
    });
    this.put(this.t.series, series.seriesInstanceUid, {
      ...seriesRow,
      numberOfInstances: seriesRow.numberOfInstances + 1,
    });
    const studyRow = this.t.studies.get(studyUid) as StudyRow;
    this.put(this.t.studies, studyUid, {
      ...studyRow,
      numberOfSeries: studyRow.numberOfSeries + (seriesCreated ? 1 : 0),
      numberOfInstances: studyRow.numberOfInstances + 1,
      modalities: seriesCreated
        ? (addToList(studyRow.modalities, series.modality) ?? studyRow.modalities)
        : studyRow.modalities,
      sopClasses: addToList(studyRow.sopClasses, instance.sopClassUid) ?? studyRow.sopClasses,
    });
    if (!studyCreated) push(studyPatientMismatch(studyUid, studyRow.patient, patient));
    return existing ? { status: 'replaced', previous: existing, warnings } : { status: 'inserted', warnings };
  }

  async deleteInstance(sopInstanceUid: string): Promise<IndexedInstance | undefined> {
    const existing = this.t.instances.get(sopInstanceUid)?.instance;
    if (existing) this.remove(sopInstanceUid);
    return existing;
  }

  async switchInstanceFile(sopInstanceUid: string, from: string, to: InstanceFileSwitch): Promise<boolean> {
    const row = this.t.instances.get(sopInstanceUid);
    if (!row || row.instance.path !== from) return false;
    this.put(this.t.instances, sopInstanceUid, {
      instance: { ...row.instance, path: to.path, transferSyntaxUid: to.transferSyntaxUid, size: to.size },
      header: to.header,
      stored: to.stored,
    });
    return true;
  }

  private remove(sopInstanceUid: string): void {
    const row = this.t.instances.get(sopInstanceUid);
    if (!row) return;
    this.drop(this.t.instances, sopInstanceUid);
    const { seriesInstanceUid, studyInstanceUid } = row.instance;
    const series = this.t.series.get(seriesInstanceUid) as SeriesRow;
    const seriesGone = series.numberOfInstances <= 1;
    if (seriesGone) this.drop(this.t.series, seriesInstanceUid);
    else
      this.put(this.t.series, seriesInstanceUid, {
        ...series,
        numberOfInstances: series.numberOfInstances - 1,
      });
    const study = this.t.studies.get(studyInstanceUid) as StudyRow;
    if (study.numberOfInstances <= 1) {
      this.drop(this.t.studies, studyInstanceUid);
      const patient = this.t.patients.get(study.patientKey) as PatientRow;
      if (patient.numberOfStudies <= 1) this.drop(this.t.patients, study.patientKey);
      else
        this.put(this.t.patients, study.patientKey, {
          ...patient,
          numberOfStudies: patient.numberOfStudies - 1,
        });
      return;
    }
    const instances = [...this.t.instances.values()].filter(
      (r) => r.instance.studyInstanceUid === studyInstanceUid,
    );
    const seriesOfStudy = [...this.t.series.values()].filter((s) => s.studyInstanceUid === studyInstanceUid);
    this.put(this.t.studies, studyInstanceUid, {
      ...study,
      numberOfInstances: study.numberOfInstances - 1,
      numberOfSeries: study.numberOfSeries - (seriesGone ? 1 : 0),
      sopClasses: joinList(instances.map((r) => r.instance.sopClassUid)),
      modalities: joinList(seriesOfStudy.map((s) => s.attributes.modality)),
    });
  }
}
