/**
 * The worklist tables as the query layer (kysely) sees them (created by the worklist migration,
 * see migration.ts). Dates and times are fixed-width keys that compare as text (DA "YYYYMMDD", TM
 * "HHMMSS.FFFFFF"); Person Names have the index's *_norm form (archive/index/person-name.ts); each
 * item and MPPS instance is kept whole as DICOM JSON text (PS3.18 F.2).
 *
 * Type aliases rather than interfaces: kysely's withTables() needs types with an implicit index signature.
 */
import type { Generated } from 'kysely';

/** One Scheduled Procedure Step of the Modality Worklist (PS3.4 K.6). */
export type WorklistItemTable = {
  id: Generated<number>;
  /** With sps_id, the identity of the item (unique). */
  study_instance_uid: string;
  sps_id: string;
  patient_id: string | null;
  patient_name: string | null;
  patient_name_norm: string | null;
  accession_number: string | null;
  requested_procedure_id: string | null;
  station_name: string | null;
  sps_start_date: string | null;
  sps_start_time: string | null;
  /** Date and time as one key "YYYYMMDDHHMMSS.FFFFFF", for combined date-time ranges. */
  sps_start: string | null;
  modality: string | null;
  performing_physician_name: string | null;
  performing_physician_name_norm: string | null;
  sps_status: string | null;
  header: string;
  created_at: string;
  updated_at: string;
};

/** The Scheduled Station AE Titles of an item, one row each (the attribute is multi-valued). */
export type WorklistItemAetTable = {
  item_fk: number;
  aet: string;
};

/** A Modality Performed Procedure Step SOP instance (PS3.4 F.7). */
export type MppsInstanceTable = {
  id: Generated<number>;
  sop_instance_uid: string;
  status: string;
  calling_aet: string | null;
  header: string;
  created_at: string;
  updated_at: string;
};

/** Which worklist items an MPPS instance performs. */
export type MppsWorklistItemTable = {
  mpps_fk: number;
  item_fk: number;
};

export type WorklistDatabase = {
  worklist_item: WorklistItemTable;
  worklist_item_aet: WorklistItemAetTable;
  mpps_instance: MppsInstanceTable;
  mpps_worklist_item: MppsWorklistItemTable;
};
