/**
 * The Modality Performed Procedure Step SOP Class (PS3.4 F.7): the attribute requirements of
 * Table F.7.2-1 for N-CREATE, N-SET and the final state, the state machine of Performed Procedure
 * Step Status, and the failures as DIMSE statuses with an Error Comment:
 *
 *   N-CREATE  -> IN PROGRESS          (any other status: 0106 Invalid attribute value)
 *   IN PROGRESS --N-SET--> IN PROGRESS | COMPLETED | DISCONTINUED
 *   COMPLETED, DISCONTINUED: final; an N-SET is refused with 0110 Processing failure, Error ID
 *   A710 "Performed Procedure Step Object may no longer be updated" (F.7.2.2.2).
 *
 * Statuses: a required attribute absent is 0120 Missing attribute, present without value 0121
 * Missing attribute value; a value that is not valid 0106; an N-SET changing an attribute that
 * Table F.7.2-1 does not allow in N-SET 0105 No such attribute (as dcm4che answers); an unknown
 * instance 0112; an N-CREATE of an existing one 0111.
 *
 * Decisions: an N-SET may repeat a not-allowed attribute with its current value (modalities that
 * send the whole data set again are not refused for it); the final state needs the Performed
 * Series Sequence with at least one item for COMPLETED, and present (possibly empty) for
 * DISCONTINUED, since a step can be discontinued before anything was acquired (IHE RAD TF-2,
 * "discontinued, no images"); PS3.4 gives the final-state column for both.
 */

import type { ScheduledStepRef } from '../../archive/worklist/worklist-store.js';
import { err, ok, type Result } from '../../core/result.js';
import type { DataSet } from '../../dicom/dataset.js';
import { lookupTag, TAG } from '../../dicom/dictionary.js';
import { type DicomJsonObject, toDicomJson } from '../../dicom/json.js';
import { dateKey, timeKey, valuesOf } from '../../dicom/matching.js';
import { formatTag, type Tag, tagHex } from '../../dicom/tag.js';
import { UID } from '../../dicom/uid.js';
import { Status } from '../../network/dimse-status.js';
import { ServiceError } from '../../network/service-error.js';

export const MPPS_SOP_CLASS: string = UID.ModalityPerformedProcedureStep;

export const PPS_STATUS = {
  InProgress: 'IN PROGRESS',
  Completed: 'COMPLETED',
  Discontinued: 'DISCONTINUED',
} as const;
export type PpsStatus = (typeof PPS_STATUS)[keyof typeof PPS_STATUS];

const STATUSES: readonly string[] = Object.values(PPS_STATUS);

export function isFinalStatus(status: string): boolean {
  return status === PPS_STATUS.Completed || status === PPS_STATUS.Discontinued;
}

/** The Scheduled Procedure Step Status of the worklist items an MPPS performs, per MPPS status. */
export function itemStatusFor(status: string): string | undefined {
  if (status === PPS_STATUS.InProgress) return 'STARTED';
  if (isFinalStatus(status)) return status;
  return undefined;
}

/** A requirement of Table F.7.2-1: type 1, 2 or 3, or "Not allowed" (-). */
type Usage = '1' | '2' | '3' | '-';

interface Rule {
  readonly tag: Tag;
  readonly create: Usage;
  readonly set: Usage;
  /** The final-state requirement, when it is stricter than N-SET's. */
  readonly final?: '1';
  /** Kind of value checked beyond presence. */
  readonly value?: 'date' | 'time';
  readonly items?: readonly Rule[];
}

const REFERENCED_SOP: readonly Rule[] = [
  { tag: TAG.ReferencedSOPClassUID, create: '1', set: '1' },
  { tag: TAG.ReferencedSOPInstanceUID, create: '1', set: '1' },
];

/** PS3.4 Table F.7.2-1 (the attributes of the Modality Performed Procedure Step IOD's modules). */
const RULES: readonly Rule[] = [
  // Performed Procedure Step Relationship
  {
    tag: TAG.ScheduledStepAttributesSequence,
    create: '1',
    set: '-',
    items: [
      { tag: TAG.StudyInstanceUID, create: '1', set: '-' },
      { tag: TAG.ReferencedStudySequence, create: '2', set: '-', items: REFERENCED_SOP },
      { tag: TAG.AccessionNumber, create: '2', set: '-' },
      { tag: TAG.RequestedProcedureID, create: '2', set: '-' },
      { tag: TAG.RequestedProcedureDescription, create: '2', set: '-' },
      { tag: TAG.ScheduledProcedureStepID, create: '2', set: '-' },
      { tag: TAG.ScheduledProcedureStepDescription, create: '2', set: '-' },
      { tag: TAG.ScheduledProtocolCodeSequence, create: '2', set: '-' },
    ],
  },
  { tag: TAG.PatientName, create: '2', set: '-' },
  { tag: TAG.PatientID, create: '2', set: '-' },
  { tag: TAG.IssuerOfPatientID, create: '3', set: '-' },
  { tag: TAG.PatientBirthDate, create: '2', set: '-', value: 'date' },
  { tag: TAG.PatientSex, create: '2', set: '-' },
  { tag: TAG.ReferencedPatientSequence, create: '2', set: '-', items: REFERENCED_SOP },
  // Performed Procedure Step Information
  { tag: TAG.PerformedStationAETitle, create: '1', set: '-' },
  { tag: TAG.PerformedStationName, create: '2', set: '-' },
  { tag: TAG.PerformedLocation, create: '2', set: '-' },
  { tag: TAG.PerformedProcedureStepStartDate, create: '1', set: '-', value: 'date' },
  { tag: TAG.PerformedProcedureStepStartTime, create: '1', set: '-', value: 'time' },
  { tag: TAG.PerformedProcedureStepID, create: '1', set: '-' },
  { tag: TAG.PerformedProcedureStepEndDate, create: '2', set: '3', final: '1', value: 'date' },
  { tag: TAG.PerformedProcedureStepEndTime, create: '2', set: '3', final: '1', value: 'time' },
  { tag: TAG.PerformedProcedureStepStatus, create: '1', set: '3' },
  { tag: TAG.PerformedProcedureStepDescription, create: '2', set: '3' },
  { tag: TAG.PerformedProcedureTypeDescription, create: '2', set: '3' },
  { tag: TAG.ProcedureCodeSequence, create: '2', set: '3' },
  // Image Acquisition Results
  { tag: TAG.Modality, create: '1', set: '-' },
  { tag: TAG.StudyID, create: '2', set: '-' },
  { tag: TAG.PerformedProtocolCodeSequence, create: '2', set: '3' },
  {
    tag: TAG.PerformedSeriesSequence,
    create: '2',
    set: '3',
    final: '1',
    items: [
      { tag: TAG.PerformingPhysicianName, create: '2', set: '2' },
      { tag: TAG.ProtocolName, create: '1', set: '1' },
      { tag: TAG.OperatorsName, create: '2', set: '2' },
      { tag: TAG.SeriesInstanceUID, create: '1', set: '1' },
      { tag: TAG.SeriesDescription, create: '2', set: '2' },
      { tag: TAG.RetrieveAETitle, create: '2', set: '2' },
      { tag: TAG.ReferencedImageSequence, create: '2', set: '2', items: REFERENCED_SOP },
      {
        tag: TAG.ReferencedNonImageCompositeSOPInstanceSequence,
        create: '2',
        set: '2',
        items: REFERENCED_SOP,
      },
    ],
  },
];

interface Problem {
  readonly status: number;
  readonly tag: Tag;
  readonly text: string;
}

/** Which problem is reported when there are several: missing attributes first, then missing values, then values. */
const PRECEDENCE = [
  Status.NoSuchAttribute,
  Status.MissingAttribute,
  Status.MissingAttributeValue,
  Status.InvalidAttributeValue,
];

function attributeName(tag: Tag): string {
  return lookupTag(tag)?.keyword || formatTag(tag);
}

/** The refusal for the first status of PRECEDENCE that has problems; the DIMSE encoder cuts its comment to 64 characters. */
function failureOf(problems: readonly Problem[]): ServiceError | undefined {
  for (const status of PRECEDENCE) {
    const these = problems.filter((p) => p.status === status);
    const first = these[0];
    if (first === undefined) continue;
    const more = these.length > 1 ? ` (+${these.length - 1} more)` : '';
    return new ServiceError(status, `${first.text}${more}`, {
      offendingElements: [...new Set(these.map((p) => p.tag))],
    });
  }
  return undefined;
}

function hasValue(ds: DataSet, tag: Tag): boolean {
  const e = ds.get(tag);
  if (e === undefined) return false;
  if (Array.isArray(e.value)) return e.value.length > 0;
  return valuesOf(ds, tag).some((v) => v !== '');
}

/** Checks `ds` against the rules for one operation; `where` prefixes nested attribute names. */
function check(
  ds: DataSet,
  rules: readonly Rule[],
  usage: (r: Rule) => Usage,
  problems: Problem[],
  where = '',
  onlyPresent = false,
): void {
  for (const rule of rules) {
    const u = usage(rule);
    const present = ds.has(rule.tag);
    const label = `${where}${attributeName(rule.tag)}`;
    if (!present) {
      if (!onlyPresent && (u === '1' || u === '2'))
        problems.push({ status: Status.MissingAttribute, tag: rule.tag, text: `${label} is missing` });
      continue;
    }
    if (u === '1' && !hasValue(ds, rule.tag)) {
      problems.push({ status: Status.MissingAttributeValue, tag: rule.tag, text: `${label} has no value` });
      continue;
    }
    const text = valuesOf(ds, rule.tag)[0] ?? '';
    if (rule.value === 'date' && text !== '' && dateKey(text) === undefined)
      problems.push({
        status: Status.InvalidAttributeValue,
        tag: rule.tag,
        text: `${label} "${text}" is not a date`,
      });
    if (rule.value === 'time' && text !== '' && timeKey(text) === undefined)
      problems.push({
        status: Status.InvalidAttributeValue,
        tag: rule.tag,
        text: `${label} "${text}" is not a time`,
      });
    if (rule.items !== undefined)
      for (const [i, item] of (ds.sequence(rule.tag) ?? []).entries())
        check(item, rule.items, usage, problems, `${label}[${i}].`);
  }
}

// --- N-CREATE ------------------------------------------------------------------------------------

/** The refusal of an N-CREATE attribute list (F.7.2.1), or undefined when it may be created. */
export function createFailure(ds: DataSet): ServiceError | undefined {
  const problems: Problem[] = [];
  check(ds, RULES, (r) => r.create, problems);
  const status = valuesOf(ds, TAG.PerformedProcedureStepStatus)[0];
  if (status !== undefined && status !== '' && status !== PPS_STATUS.InProgress)
    problems.push({
      status: Status.InvalidAttributeValue,
      tag: TAG.PerformedProcedureStepStatus,
      text: `N-CREATE with status "${status}": only IN PROGRESS`,
    });
  return failureOf(problems);
}

/** The scheduled steps an MPPS names (its Scheduled Step Attributes Sequence items). */
export function scheduledStepsOf(ds: DataSet): ScheduledStepRef[] {
  const out: ScheduledStepRef[] = [];
  for (const item of ds.sequence(TAG.ScheduledStepAttributesSequence) ?? []) {
    const text = (tag: Tag): string | null => {
      const v = valuesOf(item, tag)[0];
      return v === undefined || v === '' ? null : v;
    };
    const studyInstanceUid = text(TAG.StudyInstanceUID);
    if (studyInstanceUid === null) continue;
    out.push({
      studyInstanceUid,
      accessionNumber: text(TAG.AccessionNumber),
      requestedProcedureId: text(TAG.RequestedProcedureID),
      scheduledProcedureStepId: text(TAG.ScheduledProcedureStepID),
    });
  }
  return out;
}

// --- N-SET ---------------------------------------------------------------------------------------

/** PS3.4 F.7.2.2.2: an N-SET of a final instance is a Processing failure with Error ID A710. */
function noLongerUpdatable(): ServiceError {
  return new ServiceError(
    Status.ProcessingFailure,
    'Performed Procedure Step Object may no longer be updated',
    {
      errorId: 0xa710,
    },
  );
}

function jsonText(value: unknown): string {
  return JSON.stringify(value);
}

/** Values that may be set (the `set` column is not "-") and were changed, per top-level tag. */
function notAllowedChanges(
  current: DicomJsonObject,
  request: DataSet,
  requestJson: DicomJsonObject,
): Problem[] {
  const problems: Problem[] = [];
  for (const rule of RULES) {
    if (rule.set !== '-' || !request.has(rule.tag)) continue;
    const key = tagHex(rule.tag);
    if (jsonText(current[key]) === jsonText(requestJson[key])) continue;
    problems.push({
      status: Status.NoSuchAttribute,
      tag: rule.tag,
      text: `${attributeName(rule.tag)} may not be set by N-SET`,
    });
  }
  return problems;
}

/** The current data set with the N-SET's attributes in place of its own (PS3.7 10.1.3: replaced whole). */
export function mergeMpps(current: DicomJsonObject, requestJson: DicomJsonObject): DicomJsonObject {
  const merged: DicomJsonObject = { ...current };
  const charset = '00080005';
  for (const [key, attribute] of Object.entries(requestJson)) {
    if (key === charset) continue;
    merged[key] = attribute;
  }
  // The JSON holds decoded text: when the request brings text the stored character set may not
  // encode, UTF-8 can.
  const requestCharset = jsonText(requestJson[charset]?.Value ?? []);
  const currentCharset = jsonText(current[charset]?.Value ?? []);
  if (
    requestJson[charset] !== undefined &&
    requestCharset !== currentCharset &&
    /[^\x00-\x7f]/.test(jsonText(requestJson))
  )
    merged[charset] = { vr: 'CS', Value: ['ISO_IR 192'] };
  return Object.fromEntries(Object.entries(merged).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export interface MppsUpdate {
  readonly status: string;
  readonly dataSet: DicomJsonObject;
}

/**
 * Decides an N-SET on the current instance (F.7.2.2): the merged data set and its status, or the
 * refusal. `merged` is the stored data set with the request's attributes in place, as a DataSet
 * (the caller builds it from mergeMpps), for the final-state checks.
 */
export function decideSet(
  currentStatus: string,
  current: DicomJsonObject,
  request: DataSet,
  toDataSet: (json: DicomJsonObject) => DataSet,
): Result<MppsUpdate, ServiceError> {
  if (isFinalStatus(currentStatus)) return err(noLongerUpdatable());
  const requestJson = toDicomJson(request);
  const problems: Problem[] = notAllowedChanges(current, request, requestJson);
  // Only the attributes the request carries are checked against the N-SET column.
  check(
    request,
    RULES.filter((r) => r.set !== '-'),
    (r) => r.set,
    problems,
    '',
    true,
  );
  const requested = valuesOf(request, TAG.PerformedProcedureStepStatus)[0];
  if (requested !== undefined && requested !== '' && !STATUSES.includes(requested))
    problems.push({
      status: Status.InvalidAttributeValue,
      tag: TAG.PerformedProcedureStepStatus,
      text: `status "${requested}" is not IN PROGRESS, COMPLETED or DISCONTINUED`,
    });
  const early = failureOf(problems);
  if (early !== undefined) return err(early);

  const merged = mergeMpps(current, requestJson);
  const status = requested !== undefined && requested !== '' ? requested : currentStatus;
  if (isFinalStatus(status)) {
    const final = finalStateProblems(toDataSet(merged), status);
    const failure = failureOf(final);
    if (failure !== undefined) return err(failure);
  }
  return ok({ status, dataSet: merged });
}

/** The final-state column of Table F.7.2-1, on the data set as it would be after the N-SET. */
function finalStateProblems(ds: DataSet, status: string): Problem[] {
  const problems: Problem[] = [];
  const finalRules = RULES.filter((r) => r.final === '1');
  check(ds, finalRules, (r) => r.final ?? r.set, problems, `${status}: `);
  const series = ds.sequence(TAG.PerformedSeriesSequence);
  if (status === PPS_STATUS.Discontinued && series !== undefined) {
    // Present is enough for DISCONTINUED (see the module comment): drop "has no value".
    return problems.filter(
      (p) => !(p.tag === TAG.PerformedSeriesSequence && p.status === Status.MissingAttributeValue),
    );
  }
  return problems;
}
