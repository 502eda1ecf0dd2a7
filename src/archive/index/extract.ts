/**
 * From an object's header to what the index keeps: the key attributes of each level
 * (InstanceRecord) and each level's attributes as DICOM JSON (LevelHeaders), with the instance's
 * WADO-RS documents when captured (capture.ts); which attribute belongs to which level is levels.ts's.
 */
import { err, ok, type Result } from '../../core/result.js';
import { type DataElement, DataSet } from '../../dicom/dataset.js';
import { TAG } from '../../dicom/dictionary.js';
import { toDicomJson } from '../../dicom/json.js';
import { isGroupLengthTag, type Tag, tagGroup } from '../../dicom/tag.js';
import { ArchiveError } from '../errors.js';
import type {
  InstanceRecord,
  LevelHeaders,
  PatientAttributes,
  SeriesAttributes,
  StudyAttributes,
} from './archive-index.js';
import { BULK_DATA_THRESHOLD, type InstanceMetadataDocs } from './capture.js';
import { EVERY_LEVEL_TAGS, type Level, levelOf } from './levels.js';

/** Binary values longer than this are bulk data and are left out of the stored headers. */
export { BULK_DATA_THRESHOLD };

const BINARY_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'UN']);

/** Pixel data and the like, trailing padding, digital signatures: never header attributes. */
function isExcluded(tag: Tag): boolean {
  const group = tagGroup(tag);
  return (
    group === 0x0002 || group === 0x7fe0 || group === 0xfffa || group === 0xfffc || isGroupLengthTag(tag)
  );
}

function isBulk(e: DataElement): boolean {
  const v = e.value;
  if (v instanceof Uint8Array) return BINARY_VRS.has(e.vr) && v.length > BULK_DATA_THRESHOLD;
  return !Array.isArray(v); // encapsulated fragments or a value that was not loaded
}

/** A copy of the elements of `src`, without bulk data at any depth. */
function copyHeader(src: DataSet): DataSet {
  const out = new DataSet();
  for (const e of src) if (!isExcluded(e.tag) && !isBulk(e)) out.set(copyElement(e));
  return out;
}

/** Items are copied, not shared: DataSet.set re-parents them, which must not touch the caller's tree. */
function copyElement(e: DataElement): DataElement {
  const v = e.value;
  return Array.isArray(v) ? { tag: e.tag, vr: e.vr, value: v.map((item) => copyHeader(item)) } : e;
}

/** Each level's attributes as DICOM JSON documents, the header sorted into the four in one pass. */
export function splitHeaders(header: DataSet): LevelHeaders {
  const levels: Record<Level, DataSet> = {
    patient: new DataSet(),
    study: new DataSet(),
    series: new DataSet(),
    instance: new DataSet(),
  };
  for (const e of header) {
    if (isExcluded(e.tag) || isBulk(e)) continue;
    if (EVERY_LEVEL_TAGS.has(e.tag)) for (const ds of Object.values(levels)) ds.set(copyElement(e));
    else levels[levelOf(e.tag)].set(copyElement(e));
  }
  return {
    patient: toDicomJson(levels.patient),
    study: toDicomJson(levels.study),
    series: toDicomJson(levels.series),
    instance: toDicomJson(levels.instance),
  };
}

/** Where and how the object is stored: what the header does not say. */
export interface StoredObjectInfo {
  readonly transferSyntaxUid: string;
  /** Relative to the data folder. */
  readonly path: string;
  readonly size: number;
  readonly receivedAt: Date;
  readonly callingAet: string | null;
}

export interface IndexEntry {
  readonly record: InstanceRecord;
  readonly headers: LevelHeaders;
}

/**
 * The index entry of an object from its header (the data set up to Pixel Data). Fails with
 * ERR_ARCHIVE_INVALID_OBJECT when a UID the index is keyed by is missing.
 */
export function describeInstance(
  header: DataSet,
  stored: StoredObjectInfo,
  metadata?: () => InstanceMetadataDocs,
): Result<IndexEntry, ArchiveError> {
  const text = (tag: Tag): string | null => header.string(tag) ?? null;
  const missing = (
    ['SOPInstanceUID', 'SOPClassUID', 'StudyInstanceUID', 'SeriesInstanceUID'] as const
  ).filter((k) => text(TAG[k]) === null);
  if (missing.length > 0)
    return err(new ArchiveError('ERR_ARCHIVE_INVALID_OBJECT', `the data set has no ${missing.join(', ')}`));

  const patient: PatientAttributes = {
    patientId: text(TAG.PatientID),
    issuerOfPatientId: text(TAG.IssuerOfPatientID),
    patientName: text(TAG.PatientName),
    patientBirthDate: text(TAG.PatientBirthDate),
    patientSex: text(TAG.PatientSex),
  };
  const study: StudyAttributes = {
    studyInstanceUid: text(TAG.StudyInstanceUID) ?? '',
    studyDate: text(TAG.StudyDate),
    studyTime: text(TAG.StudyTime),
    accessionNumber: text(TAG.AccessionNumber),
    studyId: text(TAG.StudyID),
    referringPhysicianName: text(TAG.ReferringPhysicianName),
    studyDescription: text(TAG.StudyDescription),
  };
  const series: SeriesAttributes = {
    seriesInstanceUid: text(TAG.SeriesInstanceUID) ?? '',
    modality: text(TAG.Modality),
    seriesNumber: integer(header, TAG.SeriesNumber),
    seriesDescription: text(TAG.SeriesDescription),
    bodyPartExamined: text(TAG.BodyPartExamined),
  };
  let headers: LevelHeaders;
  try {
    headers = splitHeaders(header);
  } catch (e) {
    const detail = e instanceof Error ? e.message : String(e);
    return err(
      new ArchiveError('ERR_ARCHIVE_INVALID_OBJECT', `the header cannot be stored: ${detail}`, { cause: e }),
    );
  }
  // The WADO-RS documents (capture.ts): an object they cannot be made for is still stored; its
  // row is left NULL and the metadata route reads the file.
  if (metadata) {
    try {
      headers = { ...headers, stored: metadata() };
    } catch {
      // left NULL
    }
  }
  return ok({
    record: {
      patient,
      study,
      series,
      instance: {
        sopInstanceUid: text(TAG.SOPInstanceUID) ?? '',
        sopClassUid: text(TAG.SOPClassUID) ?? '',
        instanceNumber: integer(header, TAG.InstanceNumber),
        ...stored,
      },
    },
    headers,
  });
}

/** An IS value as a 32-bit integer (PS3.5 6.2 range); null when absent or not a number. */
function integer(ds: DataSet, tag: Tag): number | null {
  let n: number | undefined;
  try {
    n = ds.number(tag);
  } catch {
    return null;
  }
  if (n === undefined || !Number.isFinite(n)) return null;
  const i = Math.trunc(n);
  return i >= -(2 ** 31) && i < 2 ** 31 ? i : null;
}
