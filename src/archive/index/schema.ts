/**
 * The index tables as the query layer (kysely) sees them, at the latest migration. Text values
 * absent from the object are NULL; dates and times stay DICOM text (DA "YYYYMMDD", TM), which
 * sorts and range-matches as text; timestamps of our own are ISO 8601 UTC text; each level's
 * header is DICOM JSON text (PS3.18 F.2). Person names have a *_norm column (see person-name.ts).
 */
import type { Generated } from 'kysely';

/** The patient attributes: the patient row's, and on each study the ones it was received with. */
interface PatientColumns {
  patient_id: string | null;
  issuer_of_patient_id: string | null;
  patient_name: string | null;
  patient_name_norm: string | null;
  patient_birth_date: string | null;
  patient_sex: string | null;
}

export interface PatientTable extends PatientColumns {
  id: Generated<number>;
  /** Identity of the patient row: Patient ID + issuer; see patientKey() in sql-index.ts. Unique. */
  patient_key: string;
  number_of_studies: number;
  header: string;
  created_at: string;
  updated_at: string;
}

export interface StudyTable extends PatientColumns {
  id: Generated<number>;
  patient_fk: number;
  study_instance_uid: string;
  study_date: string | null;
  study_time: string | null;
  accession_number: string | null;
  study_id: string | null;
  referring_physician_name: string | null;
  referring_physician_name_norm: string | null;
  study_description: string | null;
  // Its PatientColumns are the ones this study was received with: two patients sharing a Patient ID are not merged.
  number_of_series: number;
  number_of_instances: number;
  /** Distinct values joined by '\' as the multi-valued attribute would be (sorted), or NULL. */
  modalities_in_study: string | null;
  sop_classes_in_study: string | null;
  header: string;
  patient_header: string;
  created_at: string;
  updated_at: string;
}

export interface SeriesTable {
  id: Generated<number>;
  study_fk: number;
  series_instance_uid: string;
  modality: string | null;
  series_number: number | null;
  series_description: string | null;
  body_part_examined: string | null;
  number_of_instances: number;
  header: string;
  created_at: string;
  updated_at: string;
}

export interface InstanceTable {
  id: Generated<number>;
  series_fk: number;
  study_fk: number;
  sop_instance_uid: string;
  sop_class_uid: string;
  instance_number: number | null;
  transfer_syntax_uid: string;
  path: string;
  size: number;
  received_at: string;
  calling_aet: string | null;
  header: string;
  /** Migration 4: the instance's DICOM JSON for WADO-RS (capture.ts); NULL for rows indexed before. */
  metadata: string | null;
  /** Migration 4: the bulk layout (capture.ts BulkLayout) as JSON; NULL for rows indexed before. */
  bulk: string | null;
}

export interface SchemaMigrationTable {
  version: number;
  name: string;
  applied_at: string;
}

export interface IndexDatabase {
  patient: PatientTable;
  study: StudyTable;
  series: SeriesTable;
  instance: InstanceTable;
  schema_migrations: SchemaMigrationTable;
}
