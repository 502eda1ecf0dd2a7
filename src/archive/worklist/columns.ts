/**
 * What the worklist tables index about an item, taken from its data set the way the matcher reads
 * it (valuesOf: decoded in the item's character set, padding removed), so that SQL on the columns
 * narrows exactly what the matcher then tests.
 */
import { err, ok, type Result } from '../../core/result.js';
import type { DataSet } from '../../dicom/dataset.js';
import { TAG } from '../../dicom/dictionary.js';
import { type DicomJsonAttribute, type DicomJsonObject, fromDicomJson } from '../../dicom/json.js';
import { dateKey, timeKey, valuesOf } from '../../dicom/matching.js';
import { tagHex } from '../../dicom/tag.js';
import { ArchiveError } from '../errors.js';
import { type ItemSelector, isSelective, type WorklistColumns } from './worklist-store.js';

const SPS = tagHex(TAG.ScheduledProcedureStepSequence);
const SPS_STATUS = tagHex(TAG.ScheduledProcedureStepStatus);

function first(ds: DataSet, tag: number): string | null {
  const v = valuesOf(ds, tag)[0];
  return v === undefined || v === '' ? null : v;
}

/** The indexed attributes of VM 1: a column holds one value, so an item with several is refused. */
const SINGLE_VALUED: readonly (readonly [scope: 'item' | 'step', tag: number, name: string])[] = [
  ['item', TAG.PatientID, 'Patient ID (0010,0020)'],
  ['item', TAG.PatientName, "Patient's Name (0010,0010)"],
  ['item', TAG.AccessionNumber, 'Accession Number (0008,0050)'],
  ['item', TAG.RequestedProcedureID, 'Requested Procedure ID (0040,1001)'],
  ['item', TAG.StudyInstanceUID, 'Study Instance UID (0020,000D)'],
  ['step', TAG.ScheduledStationName, 'Scheduled Station Name (0040,0010)'],
  ['step', TAG.ScheduledProcedureStepStartDate, 'Scheduled Procedure Step Start Date (0040,0002)'],
  ['step', TAG.ScheduledProcedureStepStartTime, 'Scheduled Procedure Step Start Time (0040,0003)'],
  ['step', TAG.Modality, 'Modality (0008,0060)'],
  ['step', TAG.ScheduledPerformingPhysicianName, "Scheduled Performing Physician's Name (0040,0006)"],
  ['step', TAG.ScheduledProcedureStepStatus, 'Scheduled Procedure Step Status (0040,0020)'],
  ['step', TAG.ScheduledProcedureStepID, 'Scheduled Procedure Step ID (0040,0009)'],
];

/** The items of a put with their columns; the first that lacks them is thrown, so that a put stores all or none. */
export function itemsWithColumns(
  items: readonly DicomJsonObject[],
): { item: DicomJsonObject; columns: WorklistColumns }[] {
  return items.map((item, i) => {
    const columns = worklistColumns(item);
    if (!columns.ok)
      throw new ArchiveError('ERR_ARCHIVE_INVALID_OBJECT', `worklist item ${i + 1}: ${columns.error}`);
    return { item, columns: columns.value };
  });
}

/** removeItems() refuses a selector with no criterion: removing every item takes `all: true`. */
export function requireSelective(selector: ItemSelector): void {
  if (!isSelective(selector))
    throw new ArchiveError(
      'ERR_ARCHIVE_STATE',
      'removeItems: no criterion given (use all: true for every item)',
    );
}

/** The indexed columns of one item; an error when it lacks what identifies it. */
export function worklistColumns(item: DicomJsonObject): Result<WorklistColumns, string> {
  const parsed = fromDicomJson(item);
  if (!parsed.ok) return err(parsed.error);
  const ds = parsed.value;
  const steps = ds.sequence(TAG.ScheduledProcedureStepSequence) ?? [];
  const step = steps[0];
  if (steps.length !== 1 || step === undefined)
    return err(`the Scheduled Procedure Step Sequence has ${steps.length} items; a worklist item has one`);
  for (const [scope, tag, name] of SINGLE_VALUED) {
    const n = valuesOf(scope === 'item' ? ds : step, tag).length;
    if (n > 1) return err(`${name} has ${n} values; its VM is 1`);
  }
  const studyInstanceUid = first(ds, TAG.StudyInstanceUID);
  if (studyInstanceUid === null) return err('Study Instance UID (0020,000D) is missing');
  const scheduledProcedureStepId = first(step, TAG.ScheduledProcedureStepID);
  if (scheduledProcedureStepId === null) return err('Scheduled Procedure Step ID (0040,0009) is missing');
  const date = first(step, TAG.ScheduledProcedureStepStartDate);
  const time = first(step, TAG.ScheduledProcedureStepStartTime);
  const startDate = date === null ? null : (dateKey(date) ?? null);
  const startTime = time === null ? null : (timeKey(time) ?? null);
  // Combined date-time matching reads a step without time as midnight, and one whose time is
  // not valid as matching nothing (see compileCondition of dateTimeRange).
  const startDateTime =
    startDate === null || (time !== null && startTime === null)
      ? null
      : startDate + (startTime ?? '000000.000000');
  return ok({
    studyInstanceUid,
    scheduledProcedureStepId,
    patientId: first(ds, TAG.PatientID),
    patientName: first(ds, TAG.PatientName),
    accessionNumber: first(ds, TAG.AccessionNumber),
    requestedProcedureId: first(ds, TAG.RequestedProcedureID),
    stationAeTitles: [...new Set(valuesOf(step, TAG.ScheduledStationAETitle).filter((v) => v !== ''))],
    stationName: first(step, TAG.ScheduledStationName),
    startDate,
    startTime,
    startDateTime,
    modality: first(step, TAG.Modality),
    performingPhysicianName: first(step, TAG.ScheduledPerformingPhysicianName),
    status: first(step, TAG.ScheduledProcedureStepStatus),
  });
}

function stepOf(item: DicomJsonObject): DicomJsonObject | undefined {
  const value = item[SPS]?.Value?.[0];
  return value !== null && typeof value === 'object' && !('Alphabetic' in value)
    ? (value as DicomJsonObject)
    : undefined;
}

/** The Scheduled Station AE Titles of an item's step, as worklistColumns gives them, read from the JSON alone. */
export function stationAeTitlesOf(item: DicomJsonObject): string[] {
  const values = stepOf(item)?.[tagHex(TAG.ScheduledStationAETitle)]?.Value ?? [];
  const out = new Set<string>();
  for (const v of values) if (typeof v === 'string' && v.trim() !== '') out.add(v.trim());
  return [...out];
}

/**
 * One data set per Scheduled Procedure Step: a copy of the item whose Scheduled Procedure Step
 * Sequence holds only that step (PS3.4 K.6: each worklist answer is one step). An item without
 * steps is returned as it is (the store refuses it).
 */
export function splitScheduledSteps(item: DicomJsonObject): DicomJsonObject[] {
  const steps = item[SPS]?.Value ?? [];
  if (steps.length <= 1) return [item];
  return steps.map((step) => ({ ...item, [SPS]: { vr: 'SQ', Value: [step] } }));
}

/** A copy of the item with its step's Scheduled Procedure Step Status set. */
export function withStepStatus(item: DicomJsonObject, status: string): DicomJsonObject {
  const step = stepOf(item);
  if (step === undefined) return item;
  const attribute: DicomJsonAttribute = { vr: 'CS', Value: [status] };
  const sorted = Object.fromEntries(
    Object.entries({ ...step, [SPS_STATUS]: attribute }).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
  return { ...item, [SPS]: { vr: 'SQ', Value: [sorted] } };
}
