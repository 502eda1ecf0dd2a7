/**
 * DIMSE command sets (PS3.7 9.3 and 10.3): always Implicit VR Little Endian, group 0000 with its
 * group length first. A typed record in, exact bytes out, and back.
 */
import { DicomParseError } from '../core/errors.js';
import { DataSet } from '../dicom/dataset.js';
import { TAG } from '../dicom/dictionary.js';
import { parseDicom } from '../dicom/reader.js';
import { IMPLICIT_VR_LE } from '../dicom/uid.js';
import { encodeDataSet } from '../dicom/writer.js';

/** Command Field values (PS3.7 E.1). */
export const CommandField = {
  C_STORE_RQ: 0x0001,
  C_STORE_RSP: 0x8001,
  C_GET_RQ: 0x0010,
  C_GET_RSP: 0x8010,
  C_FIND_RQ: 0x0020,
  C_FIND_RSP: 0x8020,
  C_MOVE_RQ: 0x0021,
  C_MOVE_RSP: 0x8021,
  C_ECHO_RQ: 0x0030,
  C_ECHO_RSP: 0x8030,
  N_EVENT_REPORT_RQ: 0x0100,
  N_EVENT_REPORT_RSP: 0x8100,
  N_GET_RQ: 0x0110,
  N_GET_RSP: 0x8110,
  N_SET_RQ: 0x0120,
  N_SET_RSP: 0x8120,
  N_ACTION_RQ: 0x0130,
  N_ACTION_RSP: 0x8130,
  N_CREATE_RQ: 0x0140,
  N_CREATE_RSP: 0x8140,
  N_DELETE_RQ: 0x0150,
  N_DELETE_RSP: 0x8150,
  C_CANCEL_RQ: 0x0fff,
} as const;

const NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(CommandField).map(([k, v]) => [v, k.replace(/_/g, '-').replace(/^([CN])-/, '$1-')]),
);

export function commandName(field: number): string {
  return NAMES.get(field) ?? `command 0x${field.toString(16).padStart(4, '0')}`;
}

export function isResponse(field: number): boolean {
  return (field & 0x8000) !== 0;
}

/** Priority (PS3.7 9.3.1.1 Table 9.3-1 note): MEDIUM 0, HIGH 1, LOW 2. */
export const Priority = { Medium: 0x0000, High: 0x0001, Low: 0x0002 } as const;

/** Command Data Set Type: 0x0101 means no data set follows; any other value means one does (PS3.7 E.1). */
const NO_DATA_SET = 0x0101;

export interface DimseCommand {
  readonly commandField: number;
  readonly messageId?: number;
  readonly messageIdBeingRespondedTo?: number;
  readonly affectedSopClassUid?: string;
  readonly requestedSopClassUid?: string;
  readonly affectedSopInstanceUid?: string;
  readonly requestedSopInstanceUid?: string;
  readonly priority?: number;
  /** Whether a data set follows the command. */
  readonly hasDataSet: boolean;
  readonly status?: number;
  readonly moveDestination?: string;
  readonly moveOriginatorAet?: string;
  readonly moveOriginatorMessageId?: number;
  readonly remainingSubOperations?: number;
  readonly completedSubOperations?: number;
  readonly failedSubOperations?: number;
  readonly warningSubOperations?: number;
  readonly errorComment?: string;
  readonly errorId?: number;
  readonly offendingElements?: readonly number[];
  readonly eventTypeId?: number;
  readonly actionTypeId?: number;
  readonly attributeIdentifierList?: readonly number[];
}

/** Encodes a command set: Implicit VR LE, CommandGroupLength first (PS3.7 6.3.1). */
export function encodeCommand(cmd: DimseCommand): Uint8Array {
  const ds = new DataSet();
  const str = (tag: number, v: string | undefined) => {
    if (v !== undefined) ds.setString(tag, v);
  };
  const num = (tag: number, v: number | undefined) => {
    if (v !== undefined) ds.setNumbers(tag, v);
  };
  str(TAG.AffectedSOPClassUID, cmd.affectedSopClassUid);
  str(TAG.RequestedSOPClassUID, cmd.requestedSopClassUid);
  num(TAG.CommandField, cmd.commandField);
  num(TAG.MessageID, cmd.messageId);
  num(TAG.MessageIDBeingRespondedTo, cmd.messageIdBeingRespondedTo);
  str(TAG.MoveDestination, cmd.moveDestination);
  num(TAG.Priority, cmd.priority);
  num(TAG.CommandDataSetType, cmd.hasDataSet ? 0x0000 : NO_DATA_SET);
  num(TAG.Status, cmd.status);
  if (cmd.offendingElements?.length) ds.setNumbers(TAG.OffendingElement, [...cmd.offendingElements], 'AT');
  if (cmd.errorComment !== undefined) str(TAG.ErrorComment, truncateErrorComment(cmd.errorComment));
  num(TAG.ErrorID, cmd.errorId);
  str(TAG.AffectedSOPInstanceUID, cmd.affectedSopInstanceUid);
  str(TAG.RequestedSOPInstanceUID, cmd.requestedSopInstanceUid);
  num(TAG.EventTypeID, cmd.eventTypeId);
  if (cmd.attributeIdentifierList?.length)
    ds.setNumbers(TAG.AttributeIdentifierList, [...cmd.attributeIdentifierList], 'AT');
  num(TAG.ActionTypeID, cmd.actionTypeId);
  num(TAG.NumberOfRemainingSuboperations, cmd.remainingSubOperations);
  num(TAG.NumberOfCompletedSuboperations, cmd.completedSubOperations);
  num(TAG.NumberOfFailedSuboperations, cmd.failedSubOperations);
  num(TAG.NumberOfWarningSuboperations, cmd.warningSubOperations);
  str(TAG.MoveOriginatorApplicationEntityTitle, cmd.moveOriginatorAet);
  num(TAG.MoveOriginatorMessageID, cmd.moveOriginatorMessageId);
  const body = encodeDataSet(ds, IMPLICIT_VR_LE);
  const out = Buffer.allocUnsafe(12 + body.length);
  out.writeUInt32LE(0x00000000, 0); // (0000,0000)
  out.writeUInt32LE(4, 4);
  out.writeUInt32LE(body.length, 8);
  out.set(body, 12);
  return out;
}

/**
 * Error Comment is LO: at most 64 characters (dcm4che's rule, PS3.7 C.4), one value, and in the
 * default repertoire, since a command set has no Specific Character Set (PS3.7 6.3.1): any other
 * character becomes '?', so a handler's message in any script still encodes.
 */
export function truncateErrorComment(text: string): string {
  const flat = text.replace(/[\\\r\n\t]/g, ' ').replace(/[^\x20-\x7e]/gu, '?');
  return flat.length <= 64 ? flat : `${flat.slice(0, 61)}...`;
}

/** Decodes a command set. Throws DicomParseError when it is malformed or lacks a Command Field. */
export function decodeCommand(bytes: Uint8Array): DimseCommand {
  const { dataSet: ds } = parseDicom(bytes, { format: 'dataset', transferSyntax: IMPLICIT_VR_LE });
  const field = ds.number(TAG.CommandField);
  if (field === undefined)
    throw new DicomParseError('command set without a Command Field', 0, TAG.CommandField);
  const s = (tag: number) => ds.string(tag);
  const n = (tag: number) => ds.number(tag);
  const dst = n(TAG.CommandDataSetType);
  const cmd: { -readonly [K in keyof DimseCommand]: DimseCommand[K] } = {
    commandField: field,
    hasDataSet: dst !== undefined && dst !== NO_DATA_SET,
  };
  const set = <K extends keyof DimseCommand>(k: K, v: DimseCommand[K] | undefined) => {
    if (v !== undefined) cmd[k] = v;
  };
  set('messageId', n(TAG.MessageID));
  set('messageIdBeingRespondedTo', n(TAG.MessageIDBeingRespondedTo));
  set('affectedSopClassUid', s(TAG.AffectedSOPClassUID));
  set('requestedSopClassUid', s(TAG.RequestedSOPClassUID));
  set('affectedSopInstanceUid', s(TAG.AffectedSOPInstanceUID));
  set('requestedSopInstanceUid', s(TAG.RequestedSOPInstanceUID));
  set('priority', n(TAG.Priority));
  set('status', n(TAG.Status));
  set('moveDestination', s(TAG.MoveDestination));
  set('moveOriginatorAet', s(TAG.MoveOriginatorApplicationEntityTitle));
  set('moveOriginatorMessageId', n(TAG.MoveOriginatorMessageID));
  set('remainingSubOperations', n(TAG.NumberOfRemainingSuboperations));
  set('completedSubOperations', n(TAG.NumberOfCompletedSuboperations));
  set('failedSubOperations', n(TAG.NumberOfFailedSuboperations));
  set('warningSubOperations', n(TAG.NumberOfWarningSuboperations));
  set('errorComment', s(TAG.ErrorComment));
  set('errorId', n(TAG.ErrorID));
  set('eventTypeId', n(TAG.EventTypeID));
  set('actionTypeId', n(TAG.ActionTypeID));
  const offending = ds.numbers(TAG.OffendingElement);
  if (offending.length) cmd.offendingElements = offending;
  const attrs = ds.numbers(TAG.AttributeIdentifierList);
  if (attrs.length) cmd.attributeIdentifierList = attrs;
  return cmd;
}
