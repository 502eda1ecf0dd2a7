/**
 * The worklist port: Modality Worklist items and the MPPS instances that report on them, kept in
 * the index (PS3.4 K.6, F.7). SqlWorklistStore implements it on SQLite and PostgreSQL (the tables
 * of the worklist migration), MemoryWorklistStore in memory for service tests. The services decide
 * what is valid (services/worklist, services/mpps); a store keeps items and instances, finds
 * candidates, and applies each change atomically.
 *
 * One item is one Scheduled Procedure Step: its data set (DICOM JSON, PS3.18 F.2) has a Scheduled
 * Procedure Step Sequence of exactly one item, as a C-FIND response of the worklist does (PS3.4
 * Table K.6-1). An order with several steps is several items (see splitScheduledSteps). An item is
 * identified by its Study Instance UID and Scheduled Procedure Step ID; putting an item with the
 * same pair replaces the old one.
 */
import type { Result } from '../../core/result.js';
import type { DicomJsonObject } from '../../dicom/json.js';
import type { MatchCondition } from '../../dicom/matching.js';
import type { IndexEngine } from '../index/archive-index.js';

/** The indexed columns of an item (see worklistColumns): what SQL narrows a query with. */
export interface WorklistColumns {
  readonly studyInstanceUid: string;
  readonly scheduledProcedureStepId: string;
  readonly patientId: string | null;
  /** The PN value as text (groups separated by '=', components by '^'). */
  readonly patientName: string | null;
  readonly accessionNumber: string | null;
  readonly requestedProcedureId: string | null;
  /** Scheduled Station AE Title (VM 1-n): an item is a candidate when any of them matches. */
  readonly stationAeTitles: readonly string[];
  readonly stationName: string | null;
  /** DA "YYYYMMDD" and TM "HHMMSS.FFFFFF" (fixed width), null when absent or not a valid value. */
  readonly startDate: string | null;
  readonly startTime: string | null;
  /** Both as one key "YYYYMMDDHHMMSS.FFFFFF" (midnight without a time), for combined date-time matching. */
  readonly startDateTime: string | null;
  readonly modality: string | null;
  readonly performingPhysicianName: string | null;
  /** Scheduled Procedure Step Status (SCHEDULED, STARTED, COMPLETED, DISCONTINUED...). */
  readonly status: string | null;
}

export interface WorklistItem extends WorklistColumns {
  /** The store's identifier of the item (shown by `pacs worklist ls`, used by `rm`). */
  readonly id: number;
  readonly dataSet: DicomJsonObject;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface PutItemsReport {
  /** The identifiers of the items, in the order given. */
  readonly ids: readonly number[];
  readonly added: number;
  /** Items that replaced one with the same Study Instance UID and Scheduled Procedure Step ID. */
  readonly replaced: number;
}

/** Which items removeItems and listItems select: every given criterion must hold. */
export interface ItemSelector {
  readonly ids?: readonly number[];
  readonly accessionNumber?: string;
  readonly studyInstanceUid?: string;
  readonly patientId?: string;
  readonly status?: string;
  /** Every item (needed when nothing else is given to removeItems). */
  readonly all?: boolean;
}

/** True when the selector names at least one criterion, or every item. */
export function isSelective(selector: ItemSelector): boolean {
  return (
    selector.all === true ||
    selector.ids !== undefined ||
    selector.accessionNumber !== undefined ||
    selector.studyInstanceUid !== undefined ||
    selector.patientId !== undefined ||
    selector.status !== undefined
  );
}

export interface CandidateOptions {
  /** Stops reading when aborted (C-CANCEL). */
  readonly signal?: AbortSignal;
  /** Rows read per query (default 500): memory stays bounded however many items match. */
  readonly pageSize?: number;
}

/** The identifying attributes of a Scheduled Step Attributes Sequence item (PS3.4 F.7.2-1). */
export interface ScheduledStepRef {
  readonly studyInstanceUid: string;
  readonly accessionNumber: string | null;
  readonly requestedProcedureId: string | null;
  readonly scheduledProcedureStepId: string | null;
}

export interface MppsRecord {
  readonly sopInstanceUid: string;
  /** Performed Procedure Step Status: IN PROGRESS, COMPLETED or DISCONTINUED. */
  readonly status: string;
  readonly dataSet: DicomJsonObject;
  /** The AE title that created it. */
  readonly callingAet: string | null;
  /** The worklist items it performs (none for an unscheduled procedure). */
  readonly itemIds: readonly number[];
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface NewMpps {
  readonly sopInstanceUid: string;
  readonly status: string;
  readonly dataSet: DicomJsonObject;
  readonly callingAet: string | null;
  /** The items this step performs are found through these (see linkedItems). */
  readonly scheduledSteps: readonly ScheduledStepRef[];
  /** The Scheduled Procedure Step Status the linked items get (STARTED). */
  readonly itemStatus: string;
}

export type CreateMppsResult =
  | { readonly status: 'created'; readonly record: MppsRecord }
  | { readonly status: 'duplicate'; readonly existing: MppsRecord };

/** What an N-SET changes, decided from the current record. */
export interface MppsChange {
  readonly status: string;
  readonly dataSet: DicomJsonObject;
  /** When given, the linked items' Scheduled Procedure Step Status becomes this (COMPLETED...). */
  readonly itemStatus?: string;
}

export type UpdateMppsResult<E> =
  | { readonly status: 'updated'; readonly record: MppsRecord }
  | { readonly status: 'not-found' }
  | { readonly status: 'refused'; readonly error: E };

export interface WorklistStore {
  readonly engine: IndexEngine;

  /**
   * Adds the items, replacing those with the same Study Instance UID and Scheduled Procedure Step
   * ID, all in one transaction: every item is stored or none (an invalid one throws
   * ERR_ARCHIVE_INVALID_OBJECT before anything is written).
   */
  putItems(items: readonly DicomJsonObject[]): Promise<PutItemsReport>;
  /** Removes the selected items (and their links to MPPS instances); returns how many. */
  removeItems(selector: ItemSelector): Promise<number>;
  getItem(id: number): Promise<WorklistItem | undefined>;
  /** The selected items ordered by id, read in pages. */
  listItems(selector?: ItemSelector): AsyncIterable<WorklistItem>;
  countItems(): Promise<number>;
  /**
   * Every item that may match the conditions (those of compileQuery on a worklist identifier),
   * ordered by id and read in pages: a superset of the matches, which the caller then tests with
   * the matcher. Conditions the store cannot narrow with are left to the caller.
   */
  candidates(conditions: readonly MatchCondition[], options?: CandidateOptions): AsyncIterable<WorklistItem>;

  /**
   * Creates an MPPS instance and, in the same transaction, links it to the items its scheduled
   * steps name (see linkedItems) and sets their Scheduled Procedure Step Status.
   */
  createMpps(mpps: NewMpps): Promise<CreateMppsResult>;
  /**
   * Changes an MPPS instance atomically: `decide` sees the current record (locked against
   * concurrent changes) and returns the change or an error, which is passed back as `refused`.
   */
  updateMpps<E>(
    sopInstanceUid: string,
    decide: (current: MppsRecord) => Result<MppsChange, E>,
  ): Promise<UpdateMppsResult<E>>;
  findMpps(sopInstanceUid: string): Promise<MppsRecord | undefined>;
  /** MPPS instances linked to an item. */
  mppsOfItem(id: number): Promise<MppsRecord[]>;
}

/**
 * Whether an item is the one a Scheduled Step Attributes Sequence item names: the same Study
 * Instance UID, and each of Accession Number, Requested Procedure ID and Scheduled Procedure Step
 * ID equal when the reference has it (these are type 2 in the MPPS: empty when unknown).
 */
export function refersTo(ref: ScheduledStepRef, item: WorklistColumns): boolean {
  return (
    ref.studyInstanceUid === item.studyInstanceUid &&
    (ref.accessionNumber === null || ref.accessionNumber === item.accessionNumber) &&
    (ref.requestedProcedureId === null || ref.requestedProcedureId === item.requestedProcedureId) &&
    (ref.scheduledProcedureStepId === null || ref.scheduledProcedureStepId === item.scheduledProcedureStepId)
  );
}
