/**
 * MPPS SCU (PS3.4 F.7): a modality's side. It builds the N-CREATE attribute list from the
 * worklist item it performs (mppsFromWorklistItem, Table F.7.2-1), sends N-CREATE and N-SET, and
 * builds the Performed Series Sequence of the final N-SET from the objects it acquired.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DicomParseError, PacsError } from '../../core/errors.js';
import { err, ok, type Result } from '../../core/result.js';
import type { DataSet } from '../../dicom/dataset.js';
import { lookupTag, TAG } from '../../dicom/dictionary.js';
import {
  type DicomJsonAttribute,
  type DicomJsonObject,
  fromDicomJson,
  toDicomJson,
} from '../../dicom/json.js';
import { type Tag, tagHex } from '../../dicom/tag.js';
import { EXPLICIT_VR_LE, generateUid, IMPLICIT_VR_LE } from '../../dicom/uid.js';
import type { VR } from '../../dicom/vr.js';
import { readDicomFile } from '../../io/dicom-file.js';
import type { ProposedPresentationContext } from '../../network/association.js';
import type { DimseAssociation } from '../../network/dimse.js';
import { CommandField } from '../../network/dimse-command.js';
import { isFinalStatus, MPPS_SOP_CLASS, PPS_STATUS } from './model.js';

export const MPPS_CONTEXT: ProposedPresentationContext = {
  abstractSyntax: MPPS_SOP_CLASS,
  transferSyntaxes: [EXPLICIT_VR_LE, IMPLICIT_VR_LE],
};

/** The answer to an N-CREATE or N-SET: check `status` (statusCategory); failures carry a comment. */
export interface MppsResponse {
  readonly status: number;
  /** The MPPS instance: the one asked for, or the one the SCP assigned on N-CREATE. */
  readonly sopInstanceUid: string;
  readonly errorComment?: string;
  readonly errorId?: number;
  readonly offendingElements?: readonly number[];
}

function contextOf(association: DimseAssociation): Result<number, PacsError> {
  const pc = association.presentationContexts.find((c) => c.abstractSyntax === MPPS_SOP_CLASS && c.scu);
  return pc
    ? ok(pc.id)
    : err(new PacsError('ERR_NO_CONTEXT', 'the peer did not accept Modality Performed Procedure Step'));
}

async function exchange(
  association: DimseAssociation,
  command: Parameters<DimseAssociation['requestOne']>[1],
  dataSet: DataSet,
  uid: string,
): Promise<Result<MppsResponse, PacsError>> {
  const pc = contextOf(association);
  if (!pc.ok) return pc;
  try {
    const { command: rsp } = await association.requestOne(pc.value, command, dataSet);
    return ok({
      status: rsp.status ?? 0,
      sopInstanceUid: rsp.affectedSopInstanceUid ?? uid,
      ...(rsp.errorComment !== undefined ? { errorComment: rsp.errorComment } : {}),
      ...(rsp.errorId !== undefined ? { errorId: rsp.errorId } : {}),
      ...(rsp.offendingElements !== undefined ? { offendingElements: rsp.offendingElements } : {}),
    });
  } catch (e) {
    return err(e instanceof PacsError ? e : new PacsError('ERR_DIMSE', String(e), { cause: e }));
  }
}

/** N-CREATE of an MPPS instance; its UID is generated unless given (as modalities do). */
export function createMpps(
  association: DimseAssociation,
  attributes: DataSet,
  sopInstanceUid: string = generateUid(),
): Promise<Result<MppsResponse, PacsError>> {
  return exchange(
    association,
    {
      commandField: CommandField.N_CREATE_RQ,
      affectedSopClassUid: MPPS_SOP_CLASS,
      affectedSopInstanceUid: sopInstanceUid,
      hasDataSet: true,
    },
    attributes,
    sopInstanceUid,
  );
}

/** N-SET of an MPPS instance: the attributes given replace the instance's (PS3.7 10.1.3). */
export function setMpps(
  association: DimseAssociation,
  sopInstanceUid: string,
  modifications: DataSet,
): Promise<Result<MppsResponse, PacsError>> {
  return exchange(
    association,
    {
      commandField: CommandField.N_SET_RQ,
      requestedSopClassUid: MPPS_SOP_CLASS,
      requestedSopInstanceUid: sopInstanceUid,
      hasDataSet: true,
    },
    modifications,
    sopInstanceUid,
  );
}

// --- attribute lists -----------------------------------------------------------------------------

function vrOf(tag: Tag): VR {
  return (lookupTag(tag)?.vr.slice(0, 2) ?? 'UN') as VR;
}

function empty(tag: Tag): DicomJsonAttribute {
  return { vr: vrOf(tag) };
}

function text(tag: Tag, value: string): DicomJsonAttribute {
  return value === '' ? empty(tag) : { vr: vrOf(tag), Value: [value] };
}

/** DA and TM of a moment, local time (what a modality's clock shows). */
export function dateTime(at: Date): { date: string; time: string } {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return {
    date: `${p(at.getFullYear(), 4)}${p(at.getMonth() + 1)}${p(at.getDate())}`,
    time: `${p(at.getHours())}${p(at.getMinutes())}${p(at.getSeconds())}`,
  };
}

/** A data set from DICOM JSON, declaring UTF-8 when the text needs it and no character set is given. */
function dataSetOf(json: DicomJsonObject): DataSet {
  const charset = json['00080005'];
  const withCharset: DicomJsonObject =
    (charset === undefined || (charset.Value ?? []).length === 0) && /[^\x00-\x7f]/.test(JSON.stringify(json))
      ? { '00080005': { vr: 'CS', Value: ['ISO_IR 192'] }, ...json }
      : json;
  const parsed = fromDicomJson(withCharset);
  if (!parsed.ok) throw new PacsError('ERR_MPPS', `MPPS attribute list: ${parsed.error}`);
  return parsed.value;
}

function sorted(json: DicomJsonObject): DicomJsonObject {
  return Object.fromEntries(Object.entries(json).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export interface MppsStartOptions {
  /** Performed Station AE Title: the modality's AE title. */
  readonly stationAeTitle: string;
  readonly stationName?: string;
  readonly location?: string;
  /** Performed Procedure Step ID; default one made from the start time. */
  readonly performedProcedureStepId?: string;
  /** Default now. */
  readonly startedAt?: Date;
}

/**
 * The N-CREATE attribute list of a step performing a worklist item (a C-FIND answer or the item's
 * data set): Table F.7.2-1's attributes, copied from the item where they come from it (Scheduled
 * Step Attributes, patient, Modality, codes), status IN PROGRESS, type 2 ones empty.
 */
export function mppsFromWorklistItem(item: DataSet, options: MppsStartOptions): DataSet {
  const src = toDicomJson(item);
  const stepValue = src[tagHex(TAG.ScheduledProcedureStepSequence)]?.Value?.[0];
  const step = (stepValue !== null && typeof stepValue === 'object' ? stepValue : {}) as DicomJsonObject;
  const from = (obj: DicomJsonObject, tag: Tag): DicomJsonAttribute => obj[tagHex(tag)] ?? empty(tag);
  const at = dateTime(options.startedAt ?? new Date());
  const scheduled: DicomJsonObject = {};
  for (const tag of [
    TAG.StudyInstanceUID,
    TAG.ReferencedStudySequence,
    TAG.AccessionNumber,
    TAG.RequestedProcedureID,
  ])
    scheduled[tagHex(tag)] = from(src, tag);
  scheduled[tagHex(TAG.RequestedProcedureDescription)] = from(src, TAG.RequestedProcedureDescription);
  for (const tag of [
    TAG.ScheduledProcedureStepID,
    TAG.ScheduledProcedureStepDescription,
    TAG.ScheduledProtocolCodeSequence,
  ])
    scheduled[tagHex(tag)] = from(step, tag);
  const json: DicomJsonObject = {
    [tagHex(TAG.ScheduledStepAttributesSequence)]: { vr: 'SQ', Value: [sorted(scheduled)] },
    [tagHex(TAG.PerformedStationAETitle)]: text(TAG.PerformedStationAETitle, options.stationAeTitle),
    [tagHex(TAG.PerformedStationName)]: text(TAG.PerformedStationName, options.stationName ?? ''),
    [tagHex(TAG.PerformedLocation)]: text(TAG.PerformedLocation, options.location ?? ''),
    [tagHex(TAG.PerformedProcedureStepStartDate)]: text(TAG.PerformedProcedureStepStartDate, at.date),
    [tagHex(TAG.PerformedProcedureStepStartTime)]: text(TAG.PerformedProcedureStepStartTime, at.time),
    [tagHex(TAG.PerformedProcedureStepID)]: text(
      TAG.PerformedProcedureStepID,
      options.performedProcedureStepId ?? `PPS${at.date.slice(2)}${at.time}`,
    ),
    [tagHex(TAG.PerformedProcedureStepEndDate)]: empty(TAG.PerformedProcedureStepEndDate),
    [tagHex(TAG.PerformedProcedureStepEndTime)]: empty(TAG.PerformedProcedureStepEndTime),
    [tagHex(TAG.PerformedProcedureStepStatus)]: text(TAG.PerformedProcedureStepStatus, PPS_STATUS.InProgress),
    [tagHex(TAG.PerformedProcedureStepDescription)]: {
      ...from(src, TAG.RequestedProcedureDescription),
      vr: 'LO',
    },
    [tagHex(TAG.PerformedProcedureTypeDescription)]: empty(TAG.PerformedProcedureTypeDescription),
    [tagHex(TAG.ProcedureCodeSequence)]: { ...from(src, TAG.RequestedProcedureCodeSequence), vr: 'SQ' },
    [tagHex(TAG.Modality)]: from(step, TAG.Modality),
    [tagHex(TAG.StudyID)]: empty(TAG.StudyID),
    [tagHex(TAG.PerformedProtocolCodeSequence)]: {
      ...from(step, TAG.ScheduledProtocolCodeSequence),
      vr: 'SQ',
    },
    [tagHex(TAG.PerformedSeriesSequence)]: empty(TAG.PerformedSeriesSequence),
  };
  for (const tag of [
    TAG.PatientName,
    TAG.PatientID,
    TAG.PatientBirthDate,
    TAG.PatientSex,
    TAG.ReferencedPatientSequence,
  ])
    json[tagHex(tag)] = from(src, tag);
  const charset = src[tagHex(TAG.SpecificCharacterSet)];
  if (charset !== undefined) json[tagHex(TAG.SpecificCharacterSet)] = charset;
  return dataSetOf(sorted(json));
}

export interface MppsEndOptions {
  /** IN PROGRESS, COMPLETED or DISCONTINUED. */
  readonly status: string;
  /** Performed Series Sequence items (performedSeriesFromFiles); omitted when undefined. */
  readonly series?: readonly DicomJsonObject[];
  /** End date and time of a final N-SET; default now. */
  readonly endedAt?: Date;
}

/** The N-SET modification list: the status, and for a final status its end date and time (Table F.7.2-1). */
export function mppsUpdate(options: MppsEndOptions): DataSet {
  const json: DicomJsonObject = {
    [tagHex(TAG.PerformedProcedureStepStatus)]: text(TAG.PerformedProcedureStepStatus, options.status),
  };
  if (isFinalStatus(options.status)) {
    const at = dateTime(options.endedAt ?? new Date());
    json[tagHex(TAG.PerformedProcedureStepEndDate)] = text(TAG.PerformedProcedureStepEndDate, at.date);
    json[tagHex(TAG.PerformedProcedureStepEndTime)] = text(TAG.PerformedProcedureStepEndTime, at.time);
  }
  if (options.series !== undefined)
    json[tagHex(TAG.PerformedSeriesSequence)] = { vr: 'SQ', Value: [...options.series] };
  return dataSetOf(sorted(json));
}

// --- performed series ----------------------------------------------------------------------------

export interface PerformedSeries {
  /** Performed Series Sequence items, one per series, in the order their first object was found. */
  readonly series: DicomJsonObject[];
  readonly objects: number;
  /** Files that are not DICOM objects (left out). */
  readonly skipped: readonly { readonly path: string; readonly reason: string }[];
}

async function collectFiles(path: string, out: string[]): Promise<void> {
  const s = await stat(path);
  if (s.isDirectory()) {
    for (const name of (await readdir(path)).sort()) await collectFiles(join(path, name), out);
  } else if (s.isFile()) out.push(path);
}

interface SeriesEntry {
  readonly json: DicomJsonObject;
  readonly images: DicomJsonObject[];
  readonly others: DicomJsonObject[];
}

/**
 * The Performed Series Sequence of the objects in these files and folders (Table F.7.2-1): per
 * series its Series Instance UID, Protocol Name (type 1: the object's, else its Series
 * Description, else "Modality series N"), performing physician, operators, description, Retrieve
 * AE Title, and the objects in Referenced Image Sequence (objects with Rows) or Referenced
 * Non-Image Composite SOP Instance Sequence.
 */
export async function performedSeriesFromFiles(
  paths: readonly string[],
  options: { readonly retrieveAeTitle?: string } = {},
): Promise<PerformedSeries> {
  const files: string[] = [];
  for (const p of paths) await collectFiles(p, files);
  const bySeries = new Map<string, SeriesEntry>();
  const skipped: { path: string; reason: string }[] = [];
  let objects = 0;
  for (const path of files) {
    let ds: DataSet;
    try {
      ds = (
        await readDicomFile(path, { stopAtTag: TAG.PixelData, bulkData: 'skip', bulkDataThreshold: 1024 })
      ).dataSet;
    } catch (e) {
      if (!(e instanceof DicomParseError)) throw e;
      skipped.push({ path, reason: e.message });
      continue;
    }
    const value = (tag: Tag): string => ds.strings(tag).join('\\').trim();
    const seriesUid = value(TAG.SeriesInstanceUID);
    const sopClass = value(TAG.SOPClassUID);
    const sopInstance = value(TAG.SOPInstanceUID);
    if (seriesUid === '' || sopClass === '' || sopInstance === '') {
      skipped.push({ path, reason: 'no Series Instance UID, SOP Class UID or SOP Instance UID' });
      continue;
    }
    objects++;
    let entry = bySeries.get(seriesUid);
    if (entry === undefined) {
      const src = toDicomJson(ds);
      const from = (tag: Tag): DicomJsonAttribute => src[tagHex(tag)] ?? empty(tag);
      const protocol =
        value(TAG.ProtocolName) ||
        value(TAG.SeriesDescription) ||
        `${value(TAG.Modality) || 'OT'} series ${value(TAG.SeriesNumber) || bySeries.size + 1}`;
      entry = {
        json: {
          [tagHex(TAG.PerformingPhysicianName)]: from(TAG.PerformingPhysicianName),
          [tagHex(TAG.ProtocolName)]: text(TAG.ProtocolName, protocol),
          [tagHex(TAG.OperatorsName)]: from(TAG.OperatorsName),
          [tagHex(TAG.SeriesInstanceUID)]: text(TAG.SeriesInstanceUID, seriesUid),
          [tagHex(TAG.SeriesDescription)]: from(TAG.SeriesDescription),
          [tagHex(TAG.RetrieveAETitle)]: text(TAG.RetrieveAETitle, options.retrieveAeTitle ?? ''),
        },
        images: [],
        others: [],
      };
      bySeries.set(seriesUid, entry);
    }
    const ref: DicomJsonObject = {
      [tagHex(TAG.ReferencedSOPClassUID)]: text(TAG.ReferencedSOPClassUID, sopClass),
      [tagHex(TAG.ReferencedSOPInstanceUID)]: text(TAG.ReferencedSOPInstanceUID, sopInstance),
    };
    (ds.has(TAG.Rows) ? entry.images : entry.others).push(ref);
  }
  const series = [...bySeries.values()].map((e) =>
    sorted({
      ...e.json,
      [tagHex(TAG.ReferencedImageSequence)]: { vr: 'SQ', Value: e.images },
      [tagHex(TAG.ReferencedNonImageCompositeSOPInstanceSequence)]: { vr: 'SQ', Value: e.others },
    }),
  );
  return { series, objects, skipped };
}
