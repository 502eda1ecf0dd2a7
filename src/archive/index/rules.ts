/**
 * The indexing rules every ArchiveIndex implementation shares: what identifies a patient row,
 * when two sets of patient attributes conflict, the warnings reported, and how the multi-valued
 * counters (Modalities in Study, SOP Classes in Study) are kept.
 */

import { normalizePersonName } from '../../dicom/matching/person-name.js';
import type { IndexWarning, PatientAttributes, SeriesAttributes, StudyAttributes } from './archive-index.js';

/**
 * The identity of a patient row: Patient ID and issuer (PS3.4 C.6.1.1.2: the patient level's
 * unique key). Objects without a Patient ID are never merged with one another: each study gets
 * a patient row of its own.
 */
export function patientKey(
  patientId: string | null,
  issuer: string | null,
  studyInstanceUid: string,
): string {
  return patientId === null
    ? JSON.stringify(['', issuer ?? '', studyInstanceUid])
    : JSON.stringify([patientId, issuer ?? '']);
}

/**
 * Same Patient ID and issuer, and no conflicting name (compared normalised: case and padding do
 * not count) or birth date. A value missing on one side is not a conflict.
 */
export function samePatient(a: PatientAttributes, b: PatientAttributes): boolean {
  const compatible = (x: string | null, y: string | null) => x === null || y === null || x === y;
  return (
    a.patientId === b.patientId &&
    a.issuerOfPatientId === b.issuerOfPatientId &&
    compatible(normalizePersonName(a.patientName), normalizePersonName(b.patientName)) &&
    compatible(a.patientBirthDate, b.patientBirthDate)
  );
}

function describeId(p: PatientAttributes): string {
  return JSON.stringify(
    p.issuerOfPatientId ? `${p.patientId ?? ''} (issuer ${p.issuerOfPatientId})` : p.patientId,
  );
}

export function describePatient(p: PatientAttributes): string {
  return `${describeId(p)} ${JSON.stringify(p.patientName ?? '')} born ${p.patientBirthDate ?? '(unknown)'}`;
}

/** A new study names a Patient ID indexed with other demographics (null when they agree). */
export function patientMismatch(
  indexed: PatientAttributes,
  received: PatientAttributes,
  study: StudyAttributes,
): IndexWarning | null {
  if (received.patientId === null || samePatient(indexed, received)) return null;
  return {
    code: 'patient-mismatch',
    message: `patient ID ${describeId(received)} is indexed as ${describePatient(indexed)}, study ${study.studyInstanceUid} names ${describePatient(received)}: not merged, the study keeps its own patient attributes`,
    patientId: received.patientId,
    issuerOfPatientId: received.issuerOfPatientId,
    indexed,
    received,
  };
}

/** An object of an indexed study names another patient than the study has (null when they agree). */
export function studyPatientMismatch(
  studyInstanceUid: string,
  indexed: PatientAttributes,
  received: PatientAttributes,
): IndexWarning | null {
  if (samePatient(indexed, received)) return null;
  return {
    code: 'study-patient-mismatch',
    message: `study ${studyInstanceUid} is indexed for patient ${describePatient(indexed)}, the object names ${describePatient(received)}: the study keeps its patient`,
    studyInstanceUid,
    indexed,
    received,
  };
}

/** The object's series is indexed under another study (null when it is the same). */
export function seriesStudyMismatch(
  series: SeriesAttributes,
  indexedStudyInstanceUid: string,
  receivedStudyInstanceUid: string,
): IndexWarning | null {
  if (indexedStudyInstanceUid === receivedStudyInstanceUid) return null;
  return {
    code: 'series-study-mismatch',
    message: `series ${series.seriesInstanceUid} is indexed in study ${indexedStudyInstanceUid}, the object names study ${receivedStudyInstanceUid}: it joins the indexed series`,
    seriesInstanceUid: series.seriesInstanceUid,
    indexedStudyInstanceUid,
    receivedStudyInstanceUid,
  };
}

/** Distinct non-empty values, sorted, '\'-joined as the multi-valued attribute is; null when none. */
export function joinList(values: readonly (string | null)[]): string | null {
  const distinct = [...new Set(values.filter((v): v is string => v !== null && v !== ''))].sort();
  return distinct.length === 0 ? null : distinct.join('\\');
}

export function splitList(list: string | null): string[] {
  return list === null || list === '' ? [] : list.split('\\');
}

/** The list with `value` added, or undefined when the value is null or in the list already. */
export function addToList(list: string | null, value: string | null): string | undefined {
  if (value === null || value === '') return undefined;
  const values = splitList(list);
  if (values.includes(value)) return undefined;
  return joinList([...values, value]) ?? undefined;
}
