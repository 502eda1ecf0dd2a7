/**
 * The Query/Retrieve information models (PS3.4 C.3, C.6): Patient Root, Study Root and
 * Patient/Study Only, their levels, the unique key of each level, their FIND, MOVE and GET SOP
 * classes, and the SOP class extended negotiation of the Query/Retrieve service (PS3.4 C.5).
 * Shared by the C-FIND, C-MOVE and C-GET SCPs and SCUs.
 */
import { TAG } from '../../dicom/dictionary.js';
import type { Tag } from '../../dicom/tag.js';
import { UID } from '../../dicom/uid.js';

/** Query/Retrieve Level (0008,0052) values (PS3.4 C.6). */
export type QueryRetrieveLevel = 'PATIENT' | 'STUDY' | 'SERIES' | 'IMAGE';

/** Every level, top down. */
export const QUERY_RETRIEVE_LEVELS: readonly QueryRetrieveLevel[] = ['PATIENT', 'STUDY', 'SERIES', 'IMAGE'];

/** PS3.4 C.6.1.1.1, C.6.2.1.1: the unique key of each level. */
export const UNIQUE_KEY: Readonly<Record<QueryRetrieveLevel, Tag>> = {
  PATIENT: TAG.PatientID,
  STUDY: TAG.StudyInstanceUID,
  SERIES: TAG.SeriesInstanceUID,
  IMAGE: TAG.SOPInstanceUID,
};

export type InformationModelName = 'patient-root' | 'study-root' | 'patient-study-only';

export type QueryRetrieveOperation = 'find' | 'move' | 'get';

export interface InformationModel {
  readonly name: InformationModelName;
  /** "Patient Root", for messages. */
  readonly title: string;
  /** Its levels, top down (PS3.4 C.6.1, C.6.2, C.6.3). */
  readonly levels: readonly QueryRetrieveLevel[];
  /** The SOP class of each operation. */
  readonly sopClasses: Readonly<Record<QueryRetrieveOperation, string>>;
}

export const PATIENT_ROOT: InformationModel = {
  name: 'patient-root',
  title: 'Patient Root',
  levels: ['PATIENT', 'STUDY', 'SERIES', 'IMAGE'],
  sopClasses: {
    find: UID.PatientRootQueryRetrieveInformationModelFind,
    move: UID.PatientRootQueryRetrieveInformationModelMove,
    get: UID.PatientRootQueryRetrieveInformationModelGet,
  },
};

export const STUDY_ROOT: InformationModel = {
  name: 'study-root',
  title: 'Study Root',
  levels: ['STUDY', 'SERIES', 'IMAGE'],
  sopClasses: {
    find: UID.StudyRootQueryRetrieveInformationModelFind,
    move: UID.StudyRootQueryRetrieveInformationModelMove,
    get: UID.StudyRootQueryRetrieveInformationModelGet,
  },
};

/** Retired since DICOM 2004 but still sent by old workstations and served by dcmqrscp. */
export const PATIENT_STUDY_ONLY: InformationModel = {
  name: 'patient-study-only',
  title: 'Patient/Study Only',
  levels: ['PATIENT', 'STUDY'],
  sopClasses: {
    find: UID.PatientStudyOnlyQueryRetrieveInformationModelFind,
    move: UID.PatientStudyOnlyQueryRetrieveInformationModelMove,
    get: UID.PatientStudyOnlyQueryRetrieveInformationModelGet,
  },
};

export const INFORMATION_MODELS: readonly InformationModel[] = [PATIENT_ROOT, STUDY_ROOT, PATIENT_STUDY_ONLY];

/** The model and operation of a Query/Retrieve SOP class UID; undefined for any other UID. */
export function modelOfSopClass(
  uid: string,
): { readonly model: InformationModel; readonly operation: QueryRetrieveOperation } | undefined {
  for (const model of INFORMATION_MODELS)
    for (const operation of ['find', 'move', 'get'] as const)
      if (model.sopClasses[operation] === uid) return { model, operation };
  return undefined;
}

/** A Query/Retrieve Level value as sent ("STUDY", padded or not); undefined when it is none. */
export function parseLevel(text: string | undefined): QueryRetrieveLevel | undefined {
  const t = text?.trim();
  return QUERY_RETRIEVE_LEVELS.find((l) => l === t);
}

/**
 * The levels above `level` in `model`, top down, with their unique keys: what a hierarchical
 * query or retrieve at `level` must name with a single value (PS3.4 C.4.1.2.1, C.4.2.2.1).
 * Empty when the model lacks the level.
 */
export function levelsAbove(
  model: InformationModel,
  level: QueryRetrieveLevel,
): { readonly level: QueryRetrieveLevel; readonly uniqueKey: Tag }[] {
  const at = model.levels.indexOf(level);
  if (at < 0) return [];
  return model.levels.slice(0, at).map((l) => ({ level: l, uniqueKey: UNIQUE_KEY[l] }));
}

/**
 * SOP class extended negotiation of the C-FIND SOP classes (PS3.4 C.5.1.1, Table C.5-1): one byte
 * per option, 1 = asked for (request) or agreed (reply). A request may stop after any byte.
 */
export interface FindExtendedNegotiation {
  /** Byte 1: relational queries (PS3.4 C.4.1.2.2). */
  readonly relationalQueries: boolean;
  /** Byte 2: combined date and time range matching (C.2.2.2.5). */
  readonly combinedDateTime: boolean;
  /** Byte 3: fuzzy semantic matching of person names (C.2.2.2.1). */
  readonly fuzzySemanticPersonNames: boolean;
  /** Byte 4: timezone query adjustment (C.4.1.1.3.1). */
  readonly timezoneAdjustment: boolean;
  /** Byte 5: enhanced multi-frame image conversion (C.4.1.1.3.3). */
  readonly enhancedMultiFrameConversion: boolean;
}

const FIND_OPTIONS: readonly (keyof FindExtendedNegotiation)[] = [
  'relationalQueries',
  'combinedDateTime',
  'fuzzySemanticPersonNames',
  'timezoneAdjustment',
  'enhancedMultiFrameConversion',
];

export const NO_FIND_EXTENDED_NEGOTIATION: FindExtendedNegotiation = {
  relationalQueries: false,
  combinedDateTime: false,
  fuzzySemanticPersonNames: false,
  timezoneAdjustment: false,
  enhancedMultiFrameConversion: false,
};

/** Reads the service-class application information of a C-FIND 0x56 sub-item; missing bytes are 0. */
export function parseFindExtendedNegotiation(bytes: Uint8Array | undefined): FindExtendedNegotiation {
  const out: Record<keyof FindExtendedNegotiation, boolean> = { ...NO_FIND_EXTENDED_NEGOTIATION };
  FIND_OPTIONS.forEach((option, i) => {
    out[option] = bytes !== undefined && bytes[i] === 1;
  });
  return out;
}

/** The bytes of a C-FIND 0x56 sub-item: `length` bytes (default: up to the last option set, at least 1). */
export function encodeFindExtendedNegotiation(
  options: Partial<FindExtendedNegotiation>,
  length?: number,
): Uint8Array {
  let n = length ?? 1;
  if (length === undefined)
    FIND_OPTIONS.forEach((o, i) => {
      if (options[o] === true) n = Math.max(n, i + 1);
    });
  const bytes = new Uint8Array(n);
  FIND_OPTIONS.forEach((o, i) => {
    if (i < n && options[o] === true) bytes[i] = 1;
  });
  return bytes;
}

/**
 * SOP class extended negotiation of the C-MOVE and C-GET SOP classes (PS3.4 C.5.2.1, C.5.3.1):
 * byte 1 relational retrieval, byte 2 enhanced multi-frame image conversion.
 */
export interface RetrieveExtendedNegotiation {
  readonly relationalRetrieval: boolean;
  readonly enhancedMultiFrameConversion: boolean;
}

export function parseRetrieveExtendedNegotiation(bytes: Uint8Array | undefined): RetrieveExtendedNegotiation {
  return {
    relationalRetrieval: bytes !== undefined && bytes[0] === 1,
    enhancedMultiFrameConversion: bytes !== undefined && bytes[1] === 1,
  };
}

export function encodeRetrieveExtendedNegotiation(
  options: Partial<RetrieveExtendedNegotiation>,
  length?: number,
): Uint8Array {
  const n = length ?? (options.enhancedMultiFrameConversion === true ? 2 : 1);
  const bytes = new Uint8Array(n);
  if (options.relationalRetrieval === true) bytes[0] = 1;
  if (n > 1 && options.enhancedMultiFrameConversion === true) bytes[1] = 1;
  return bytes;
}
