/**
 * The index port: what services and the archive facade need from the index, independent of the
 * engine. SqlArchiveIndex implements it on SQLite and PostgreSQL, MemoryArchiveIndex in memory
 * (for service tests). Every write is durable (committed) when its promise resolves.
 */
import type { DataSet } from '../../dicom/dataset.js';
import type { DicomJsonObject } from '../../dicom/json.js';
import type { InstanceMetadataDocs } from './capture.js';
import type { QueryPage, QueryPlan } from './query.js';

export type IndexEngine = 'sqlite' | 'postgres' | 'memory';

/** Patient-level attributes as received (PS3.4 C.6.1.1.2). Absent or empty values are null. */
export interface PatientAttributes {
  readonly patientId: string | null;
  readonly issuerOfPatientId: string | null;
  /** The PN value as text: component groups separated by '=', components by '^' (PS3.5 6.2). */
  readonly patientName: string | null;
  /** DA, YYYYMMDD. */
  readonly patientBirthDate: string | null;
  readonly patientSex: string | null;
}

export interface StudyAttributes {
  readonly studyInstanceUid: string;
  readonly studyDate: string | null;
  readonly studyTime: string | null;
  readonly accessionNumber: string | null;
  readonly studyId: string | null;
  readonly referringPhysicianName: string | null;
  readonly studyDescription: string | null;
}

export interface SeriesAttributes {
  readonly seriesInstanceUid: string;
  readonly modality: string | null;
  readonly seriesNumber: number | null;
  readonly seriesDescription: string | null;
  readonly bodyPartExamined: string | null;
}

export interface InstanceAttributes {
  readonly sopInstanceUid: string;
  readonly sopClassUid: string;
  readonly instanceNumber: number | null;
  /** The transfer syntax the object is stored in. */
  readonly transferSyntaxUid: string;
  /** The object file, relative to the data folder, '/' separated. */
  readonly path: string;
  readonly size: number;
  readonly receivedAt: Date;
  /** The AE title that sent the object (null when unknown, e.g. imported). */
  readonly callingAet: string | null;
}

/** What is indexed about one object: its keys at each level of the information model. */
export interface InstanceRecord {
  readonly patient: PatientAttributes;
  readonly study: StudyAttributes;
  readonly series: SeriesAttributes;
  readonly instance: InstanceAttributes;
}

/** Each level's attributes (no bulk data) as DICOM JSON, so that any attribute can be returned later. */
export interface LevelHeaders {
  readonly patient: DicomJsonObject;
  readonly study: DicomJsonObject;
  readonly series: DicomJsonObject;
  readonly instance: DicomJsonObject;
  /** The instance's WADO-RS metadata and bulk layout (capture.ts); absent: left NULL, read from the file on request. */
  readonly stored?: InstanceMetadataDocs;
}

/** An indexed object, as findInstance and friends return it. */
export interface IndexedInstance extends InstanceAttributes {
  readonly studyInstanceUid: string;
  readonly seriesInstanceUid: string;
}

/** What an index should do when the SOP Instance UID is indexed already. */
export type DuplicateMode =
  /** Leave the indexed object; the result is `duplicate` with the existing one. */
  | 'keep'
  /** Index the new object in place of the old; the result is `replaced` with the old one (its file is the caller's to remove). */
  | 'replace';

export interface InsertOptions {
  /** Default 'keep'. */
  readonly onDuplicate?: DuplicateMode;
}

/**
 * Data the index did not merge, for the caller to log. Two patients who share a Patient ID
 * but differ in name or birth date are not merged: each study keeps the patient attributes it
 * was received with.
 */
export type IndexWarning =
  | {
      /** A new study names a Patient ID that is indexed with another name or birth date. */
      readonly code: 'patient-mismatch';
      readonly message: string;
      readonly patientId: string;
      readonly issuerOfPatientId: string | null;
      readonly indexed: PatientAttributes;
      readonly received: PatientAttributes;
    }
  | {
      /** An object of an indexed study carries other patient attributes than the study has. */
      readonly code: 'study-patient-mismatch';
      readonly message: string;
      readonly studyInstanceUid: string;
      readonly indexed: PatientAttributes;
      readonly received: PatientAttributes;
    }
  | {
      /** The Series Instance UID is indexed under another study; the object joins the indexed series. */
      readonly code: 'series-study-mismatch';
      readonly message: string;
      readonly seriesInstanceUid: string;
      readonly indexedStudyInstanceUid: string;
      readonly receivedStudyInstanceUid: string;
    };

export type InsertResult =
  | { readonly status: 'inserted'; readonly warnings: readonly IndexWarning[] }
  | { readonly status: 'duplicate'; readonly existing: IndexedInstance }
  | {
      readonly status: 'replaced';
      readonly previous: IndexedInstance;
      readonly warnings: readonly IndexWarning[];
    };

export interface PatientSummary extends PatientAttributes {
  readonly numberOfStudies: number;
  readonly header: DicomJsonObject;
}

export interface StudySummary extends StudyAttributes {
  /** The patient attributes this study was received with (not necessarily its patient row's). */
  readonly patient: PatientAttributes;
  readonly numberOfSeries: number;
  readonly numberOfInstances: number;
  /** Distinct values, sorted. */
  readonly modalitiesInStudy: readonly string[];
  readonly sopClassesInStudy: readonly string[];
  readonly header: DicomJsonObject;
  readonly patientHeader: DicomJsonObject;
}

export interface SeriesSummary extends SeriesAttributes {
  readonly studyInstanceUid: string;
  readonly numberOfInstances: number;
  readonly header: DicomJsonObject;
}

export interface InstanceFile {
  readonly sopInstanceUid: string;
  readonly path: string;
}

/** The writes of one object, on the index itself or inside one of its transactions. */
export interface InstanceWrites {
  /** On the index: one insert in its own transaction; concurrent calls share a commit (group commit). */
  insertInstance(
    record: InstanceRecord,
    headers: LevelHeaders,
    options?: InsertOptions,
  ): Promise<InsertResult>;
  /**
   * Removes the object's row and updates the counters; a series, study or patient left empty goes
   * too. Returns the removed row (its file is the caller's to remove), or undefined when not indexed.
   */
  deleteInstance(sopInstanceUid: string): Promise<IndexedInstance | undefined>;
  /**
   * Points an indexed object at another file holding the same object (compression at rest): its
   * path, transfer syntax, size, instance header and WADO-RS documents change, nothing else; the
   * series and study count as changed (their metadata ETags). Only while the row still names
   * `from`: false when it is gone or names another file (nothing is written then).
   */
  switchInstanceFile(sopInstanceUid: string, from: string, to: InstanceFileSwitch): Promise<boolean>;
}

/** The new file of an object (switchInstanceFile): what the index keeps of it, read from that file. */
export interface InstanceFileSwitch {
  readonly path: string;
  readonly transferSyntaxUid: string;
  readonly size: number;
  /** The instance level's attributes as DICOM JSON (LevelHeaders.instance). */
  readonly header: DicomJsonObject;
  /** Its WADO-RS metadata and bulk layout (the frame offsets are the new file's). */
  readonly stored: InstanceMetadataDocs;
}

/** The operations of one transaction (see ArchiveIndex.withTransaction). */
export interface IndexTransaction extends InstanceWrites {
  findInstance(sopInstanceUid: string): Promise<IndexedInstance | undefined>;
}

export interface ArchiveIndex extends InstanceWrites {
  readonly engine: IndexEngine;

  /**
   * Runs `fn` atomically: all of its operations commit together, or none when it throws (the
   * error is passed on). Concurrent transactions share one database commit (group commit);
   * each resolves only after that commit.
   */
  withTransaction<T>(fn: (tx: IndexTransaction) => Promise<T>): Promise<T>;

  findInstance(sopInstanceUid: string): Promise<IndexedInstance | undefined>;
  findSeries(seriesInstanceUid: string): Promise<SeriesSummary | undefined>;
  findStudy(studyInstanceUid: string): Promise<StudySummary | undefined>;
  /** The patient row of a Patient ID (and issuer; null matches an absent issuer only). */
  findPatient(patientId: string, issuerOfPatientId: string | null): Promise<PatientSummary | undefined>;
  countInstances(): Promise<number>;
  /**
   * Every indexed object file, ordered by path (code unit order, which is byte order for the
   * ASCII paths the store makes), read in pages so memory stays bounded. `after` starts past a path.
   */
  listInstanceFiles(options?: { readonly after?: string }): AsyncIterable<InstanceFile>;
  /**
   * C-FIND (query.ts): the response Identifier of each entity matching a planned query, read in
   * pages as they are consumed (never all loaded at once). It ends early when `signal` is aborted
   * (C-CANCEL), even while no row matches; stopping the iteration stops it too.
   */
  find<A = DataSet>(plan: QueryPlan<A>, signal?: AbortSignal): AsyncIterable<A>;
  /** How many entities match a planned query, counting no further than `atMost`. */
  countMatches(plan: QueryPlan, atMost: number): Promise<number>;
  /**
   * QIDO-RS (query.ts findPageSql): the answers of one page of a planned query, sorted as
   * `page.orderBy` says (or the level's default order), `page.offset` matches skipped, at most
   * `page.limit` answered; read in pages, ended early by `signal` or by stopping the iteration.
   */
  search<A = DataSet>(plan: QueryPlan<A>, page: QueryPage, signal?: AbortSignal): AsyncIterable<A>;

  // --- WADO-RS (ARCHITECTURE.md decision 8: metadata kept at ingest) ---------------------------

  /**
   * The stored WADO-RS documents of the instances in scope (a study, a series of it, or one
   * instance), in index order, read in pages. `metadata`/`bulk` are null for rows indexed before
   * they were kept (the caller reads the file and may store them with storeInstanceMetadata).
   */
  instanceMetadata(scope: MetadataScope): AsyncIterable<InstanceMetadataRow>;
  /** One instance's row with its bulk layout (frames, bulk data), or undefined. */
  instanceBulk(scope: Required<MetadataScope>): Promise<InstanceMetadataRow | undefined>;
  /** Fills the documents of a row that has none (an object indexed before they were kept). */
  storeInstanceMetadata(sopInstanceUid: string, docs: InstanceMetadataDocs): Promise<void>;
  /**
   * A cheap version of the scope's contents for an ETag: how many instances and when the study
   * or series last changed; undefined when the scope is not indexed (a series of another study too).
   */
  metadataVersion(scope: MetadataScope): Promise<MetadataVersion | undefined>;

  /** Waits for queued writes, then releases the connections. */
  close(): Promise<void>;
}

/** Which instances WADO-RS metadata asks for: a study, a series of it, or one instance of that series. */
export interface MetadataScope {
  readonly studyInstanceUid: string;
  readonly seriesInstanceUid?: string;
  readonly sopInstanceUid?: string;
}

/** One instance's stored WADO-RS documents (see InstanceMetadataDocs) and where its file is. */
export interface InstanceMetadataRow {
  readonly studyInstanceUid: string;
  readonly seriesInstanceUid: string;
  readonly sopInstanceUid: string;
  readonly transferSyntaxUid: string;
  /** The object file, relative to the data folder. */
  readonly path: string;
  /** DICOM JSON with relative BulkDataURIs; null when not kept (indexed before migration 4). */
  readonly metadata: string | null;
  /** The bulk layout (capture.ts BulkLayout) as JSON; null when not kept. Only instanceBulk fills it. */
  readonly bulk: string | null;
}

/** What an ETag of WADO-RS metadata is made of. */
export interface MetadataVersion {
  readonly instances: number;
  /** ISO 8601: the last change of the study (study scope), series (series scope) or instance row. */
  readonly changedAt: string;
}
