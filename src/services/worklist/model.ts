/**
 * The Modality Worklist information model (PS3.4 K.6): what an item must carry to be served, how
 * an item is prepared for the index, and the C-FIND response of a matching item.
 *
 * Decisions where the standard leaves room or where the reference implementation, DCMTK's
 * wlmscpfs, does something particular (answers must equal its answers on the same items):
 * - An item must have the return keys of type 1 of Table K.6-1 (what wlmscpfs checks before it
 *   serves a file): Patient's Name, Patient ID, Study Instance UID, Requested Procedure ID, a
 *   Requested Procedure Description or Code Sequence, and a Scheduled Procedure Step Sequence
 *   whose items have Scheduled Station AE Title, Start Date, Start Time, Modality, Scheduled
 *   Procedure Step ID and a Description or Protocol Code Sequence. Accession Number (type 2) must
 *   be present, possibly empty.
 * - Several steps in one item become several items: each worklist answer is one step (K.6-1:
 *   the Scheduled Procedure Step Sequence holds a single item).
 * - A sequence key with no item or an empty item asks for the attributes of that sequence
 *   (C.2.2.2.6); for the sequences of Table K.6-1 they are its attributes there, returned empty
 *   when the item lacks them (the expansion wlmscpfs makes).
 * - A requested sequence the item does not have is left out of the answer, as wlmscpfs does:
 *   those of Table K.6-1 are of type 1C or 3 (a code sequence returned without items would say
 *   there are none), and the type 2 ones (Referenced Study and Patient Sequence) are added empty
 *   to an item when it is imported without them.
 */
import { splitScheduledSteps, worklistColumns } from '../../archive/worklist/columns.js';
import { type DataElement, DataSet, defaultVR } from '../../dicom/dataset.js';
import { lookupTag, TAG } from '../../dicom/dictionary.js';
import { type DicomJsonObject, toDicomJson } from '../../dicom/json.js';
import {
  buildResponse,
  compiledQuery,
  dateKey,
  type MatchOptions,
  timeKey,
  valuesOf,
} from '../../dicom/matching.js';
import { formatTag, type Tag } from '../../dicom/tag.js';
import { generateUid, UID } from '../../dicom/uid.js';

export const WORKLIST_FIND_SOP_CLASS: string = UID.ModalityWorklistInformationModelFind;

/** How worklist keys are matched: combined start date and time, as wlmscpfs always does (C.2.2.2.5). */
export const WORKLIST_MATCH_OPTIONS: MatchOptions = { combinedDateTime: true };

/** A code sequence item as Table K.6-1 returns it (PS3.3 Table 8.8-1a, the basic code attributes). */
const CODE_KEYS: readonly Tag[] = [
  TAG.CodeValue,
  TAG.CodingSchemeDesignator,
  TAG.CodingSchemeVersion,
  TAG.CodeMeaning,
];

/** The item keys of the sequences of Table K.6-1 that an empty sequence key asks for. */
const SEQUENCE_KEYS: ReadonlyMap<Tag, readonly (Tag | readonly [Tag, readonly Tag[]])[]> = new Map<
  Tag,
  readonly (Tag | readonly [Tag, readonly Tag[]])[]
>([
  [
    TAG.ScheduledProcedureStepSequence,
    [
      TAG.ScheduledStationAETitle,
      TAG.ScheduledProcedureStepStartDate,
      TAG.ScheduledProcedureStepStartTime,
      TAG.Modality,
      TAG.ScheduledPerformingPhysicianName,
      TAG.ScheduledProcedureStepDescription,
      TAG.ScheduledStationName,
      TAG.ScheduledProcedureStepLocation,
      TAG.PreMedication,
      TAG.ScheduledProcedureStepID,
      TAG.RequestedContrastAgent,
      TAG.CommentsOnTheScheduledProcedureStep,
      TAG.ScheduledProcedureStepStatus,
      TAG.ScheduledProcedureStepEndDate,
      TAG.ScheduledProcedureStepEndTime,
      [TAG.ScheduledProtocolCodeSequence, CODE_KEYS],
    ],
  ],
  [TAG.ScheduledProtocolCodeSequence, CODE_KEYS],
  [TAG.RequestedProcedureCodeSequence, CODE_KEYS],
  [TAG.ReferencedStudySequence, [TAG.ReferencedSOPClassUID, TAG.ReferencedSOPInstanceUID]],
  [TAG.ReferencedPatientSequence, [TAG.ReferencedSOPClassUID, TAG.ReferencedSOPInstanceUID]],
]);

// --- items ---------------------------------------------------------------------------------------

function name(tag: Tag): string {
  const entry = lookupTag(tag);
  return `${entry?.keyword || 'attribute'} ${formatTag(tag)}`;
}

function hasValue(ds: DataSet, tag: Tag): boolean {
  return valuesOf(ds, tag).some((v) => v !== '');
}

function hasCodes(ds: DataSet, tag: Tag): boolean {
  const items = ds.sequence(tag);
  return (
    items !== undefined &&
    items.length > 0 &&
    items.every((i) => hasValue(i, TAG.CodeValue) && hasValue(i, TAG.CodingSchemeDesignator))
  );
}

/**
 * What keeps a data set from being a worklist item (Table K.6-1, type 1 return keys; see the
 * module comment): one phrase per problem, empty when it is a valid item.
 */
export function worklistItemProblems(ds: DataSet): string[] {
  const problems: string[] = [];
  const need = (where: DataSet, tag: Tag, prefix = ''): void => {
    if (!hasValue(where, tag))
      problems.push(`${prefix}${name(tag)} is ${where.has(tag) ? 'empty' : 'missing'}`);
  };
  for (const tag of [TAG.PatientName, TAG.PatientID, TAG.StudyInstanceUID, TAG.RequestedProcedureID])
    need(ds, tag);
  if (!ds.has(TAG.AccessionNumber)) problems.push(`${name(TAG.AccessionNumber)} is missing`);
  if (!hasValue(ds, TAG.RequestedProcedureDescription) && !hasCodes(ds, TAG.RequestedProcedureCodeSequence))
    problems.push(
      `${name(TAG.RequestedProcedureDescription)} and ${name(TAG.RequestedProcedureCodeSequence)} are both missing or empty`,
    );
  const steps = ds.sequence(TAG.ScheduledProcedureStepSequence);
  if (steps === undefined || steps.length === 0) {
    problems.push(
      `${name(TAG.ScheduledProcedureStepSequence)} is ${steps === undefined ? 'missing' : 'empty'}`,
    );
    return problems;
  }
  steps.forEach((step, i) => {
    const prefix = steps.length === 1 ? 'in the scheduled step: ' : `in scheduled step ${i + 1}: `;
    for (const tag of [
      TAG.ScheduledStationAETitle,
      TAG.ScheduledProcedureStepStartDate,
      TAG.ScheduledProcedureStepStartTime,
      TAG.Modality,
      TAG.ScheduledProcedureStepID,
    ])
      need(step, tag, prefix);
    if (
      !hasValue(step, TAG.ScheduledProcedureStepDescription) &&
      !hasCodes(step, TAG.ScheduledProtocolCodeSequence)
    )
      problems.push(
        `${prefix}${name(TAG.ScheduledProcedureStepDescription)} and ${name(TAG.ScheduledProtocolCodeSequence)} are both missing or empty`,
      );
    const date = valuesOf(step, TAG.ScheduledProcedureStepStartDate)[0];
    if (date !== undefined && date !== '' && dateKey(date) === undefined)
      problems.push(
        `${prefix}${name(TAG.ScheduledProcedureStepStartDate)} "${date}" is not a date (YYYYMMDD)`,
      );
    const time = valuesOf(step, TAG.ScheduledProcedureStepStartTime)[0];
    if (time !== undefined && time !== '' && timeKey(time) === undefined)
      problems.push(`${prefix}${name(TAG.ScheduledProcedureStepStartTime)} "${time}" is not a time (HHMMSS)`);
  });
  return problems;
}

/** True when a data set's text needs more than the default repertoire (ISO 646). */
function hasNonAsciiText(json: DicomJsonObject): boolean {
  return /[^\x00-\x7f]/.test(JSON.stringify(json));
}

/**
 * The worklist items of a data set, ready for the store (one per scheduled step), or the problems
 * that keep it from being one. The data set is kept as it is, but for: group lengths and file
 * meta information (not part of an item), Specific Character Set ISO_IR 192 added when the text
 * needs one and none is declared (JSON input), and empty Referenced Study and Referenced Patient
 * Sequences added when absent (type 2 return keys; wlmscpfs adds them too).
 */
export function prepareWorklistItem(ds: DataSet): { items: DicomJsonObject[] } | { problems: string[] } {
  const problems = worklistItemProblems(ds);
  if (problems.length > 0) return { problems };
  let json = toDicomJson(ds);
  for (const key of Object.keys(json)) if (key.startsWith('0002')) delete json[key];
  const charset = json['00080005'];
  if ((charset === undefined || (charset.Value ?? []).length === 0) && hasNonAsciiText(json))
    json = { '00080005': { vr: 'CS', Value: ['ISO_IR 192'] }, ...json };
  for (const tag of ['00081110', '00081120']) if (json[tag] === undefined) json[tag] = { vr: 'SQ' };
  json = Object.fromEntries(Object.entries(json).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const items = splitScheduledSteps(json);
  for (const item of items) {
    const columns = worklistColumns(item);
    if (!columns.ok) return { problems: [columns.error] };
  }
  return { items };
}

/** The attributes of a simple worklist item (one requested procedure with one scheduled step). */
export interface WorklistItemFields {
  readonly patientName: string;
  readonly patientId: string;
  readonly patientBirthDate?: string;
  readonly patientSex?: string;
  readonly accessionNumber: string;
  /** Default: a new UID. */
  readonly studyInstanceUid?: string;
  readonly requestedProcedureId: string;
  readonly requestedProcedureDescription: string;
  readonly modality: string;
  /** One AE title or several (VM 1-n). */
  readonly stationAeTitle: string | readonly string[];
  readonly stationName?: string;
  /** DA YYYYMMDD and TM HHMMSS. */
  readonly startDate: string;
  readonly startTime: string;
  readonly stepId: string;
  readonly stepDescription: string;
  readonly performingPhysicianName?: string;
  /** Scheduled Procedure Step Status, e.g. SCHEDULED. */
  readonly status?: string;
  /** Specific Character Set, for names outside ASCII (e.g. "ISO_IR 192"). */
  readonly characterSet?: string;
}

/** A worklist item data set with the attributes of Table K.6-1 a modality uses. */
export function buildWorklistItem(f: WorklistItemFields): DataSet {
  const ds = new DataSet();
  if (f.characterSet !== undefined) ds.setString(TAG.SpecificCharacterSet, f.characterSet);
  ds.setString(TAG.AccessionNumber, f.accessionNumber);
  ds.setString(TAG.PatientName, f.patientName);
  ds.setString(TAG.PatientID, f.patientId);
  ds.setString(TAG.PatientBirthDate, f.patientBirthDate ?? '');
  ds.setString(TAG.PatientSex, f.patientSex ?? '');
  ds.setString(TAG.StudyInstanceUID, f.studyInstanceUid ?? generateUid());
  ds.setString(TAG.RequestedProcedureDescription, f.requestedProcedureDescription);
  const step = new DataSet(ds);
  step.setString(TAG.Modality, f.modality);
  step.setString(
    TAG.ScheduledStationAETitle,
    typeof f.stationAeTitle === 'string' ? [f.stationAeTitle] : f.stationAeTitle,
  );
  step.setString(TAG.ScheduledProcedureStepStartDate, f.startDate);
  step.setString(TAG.ScheduledProcedureStepStartTime, f.startTime);
  step.setString(TAG.ScheduledPerformingPhysicianName, f.performingPhysicianName ?? '');
  step.setString(TAG.ScheduledProcedureStepDescription, f.stepDescription);
  step.setString(TAG.ScheduledProcedureStepID, f.stepId);
  step.setString(TAG.ScheduledStationName, f.stationName ?? '');
  if (f.status !== undefined) step.setString(TAG.ScheduledProcedureStepStatus, f.status);
  ds.setSequence(TAG.ScheduledProcedureStepSequence, [step]);
  ds.setString(TAG.RequestedProcedureID, f.requestedProcedureId);
  return ds;
}

// --- queries and responses -----------------------------------------------------------------------

function emptyElement(tag: Tag): DataElement {
  const vr = defaultVR(tag);
  return vr === 'SQ' ? { tag, vr, value: [] } : { tag, vr, value: new Uint8Array(0) };
}

/** An item of the keys a sequence of Table K.6-1 is expanded to. */
function expansionItem(keys: readonly (Tag | readonly [Tag, readonly Tag[]])[]): DataSet {
  const item = new DataSet();
  for (const key of keys) {
    if (typeof key === 'number') item.set(emptyElement(key));
    else item.setSequence(key[0], [expansionItem(key[1])]);
  }
  return item;
}

function isEmptyItem(item: DataSet | undefined): boolean {
  if (item === undefined) return true;
  for (const tag of item.tags()) if (tag !== TAG.SpecificCharacterSet) return false;
  return true;
}

/**
 * The identifier a worklist SCP matches and answers with: Query/Retrieve Level left out (K.6:
 * not part of a worklist identifier; wlmscpfs ignores it) and each sequence key of Table K.6-1
 * without item, or with an empty one, expanded to its attributes (C.2.2.2.6; see the module
 * comment). A copy: the request is not changed.
 */
export function worklistIdentifier(request: DataSet): DataSet {
  return expandInto(request, new DataSet());
}

function expandInto(from: DataSet, out: DataSet): DataSet {
  for (const e of from) {
    if (e.tag === TAG.QueryRetrieveLevel || e.tag === TAG.QueryRetrieveView) continue;
    if (!Array.isArray(e.value)) {
      out.set(e);
      continue;
    }
    const first = e.value[0];
    const keys = SEQUENCE_KEYS.get(e.tag);
    if (keys !== undefined && isEmptyItem(first)) out.setSequence(e.tag, [expansionItem(keys)]);
    else out.setSequence(e.tag, first === undefined ? [] : [expandInto(first, new DataSet())]);
  }
  return out;
}

/**
 * The C-FIND response identifier of a matching item: buildResponse (the keys of the identifier
 * with the item's values, sequence items reduced to their keys, Specific Character Set when the
 * text needs it), less the requested sequences the item does not have (see the module comment).
 */
export function worklistResponse(identifier: DataSet, item: DataSet): DataSet {
  const response = buildResponse(identifier, item, WORKLIST_MATCH_OPTIONS);
  dropAbsentSequences(identifier, item, response);
  return response;
}

function dropAbsentSequences(query: DataSet, candidate: DataSet, response: DataSet): void {
  for (const q of query) {
    if (!Array.isArray(q.value)) continue;
    const items = candidate.sequence(q.tag);
    if (items === undefined) {
      response.delete(q.tag);
      continue;
    }
    const key = q.value[0];
    if (key === undefined || isEmptyItem(key)) continue;
    // The response holds the matching items, in order, each reduced to the key's attributes.
    const matcher = compiledQuery(key, WORKLIST_MATCH_OPTIONS);
    const answered = response.sequence(q.tag) ?? [];
    let i = 0;
    for (const item of items) {
      if (!matcher.matches(item)) continue;
      const reduced = answered[i++];
      if (reduced !== undefined) dropAbsentSequences(key, item, reduced);
    }
  }
}
