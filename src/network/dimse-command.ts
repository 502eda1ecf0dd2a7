/**
 * DIMSE command sets (PS3.7 9.3 and 10.3): always Implicit VR Little Endian, group 0000 with its
 * group length first. A typed record in, exact bytes out, and back.
 */
import { DicomEncodeError, DicomParseError } from '../core/errors.js';
import { TAG } from '../dicom/dictionary.js';

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

type FieldKind = 'UI' | 'AE' | 'LO' | 'US' | 'AT' | 'DataSetType';

interface CommandFieldSpec {
  readonly tag: number;
  readonly key: Exclude<keyof DimseCommand, 'hasDataSet'> | 'hasDataSet';
  readonly kind: FieldKind;
}

/** The command elements we read and write, in ascending tag order (PS3.7 E.1). */
const FIELDS: readonly CommandFieldSpec[] = [
  { tag: TAG.AffectedSOPClassUID, key: 'affectedSopClassUid', kind: 'UI' },
  { tag: TAG.RequestedSOPClassUID, key: 'requestedSopClassUid', kind: 'UI' },
  { tag: TAG.CommandField, key: 'commandField', kind: 'US' },
  { tag: TAG.MessageID, key: 'messageId', kind: 'US' },
  { tag: TAG.MessageIDBeingRespondedTo, key: 'messageIdBeingRespondedTo', kind: 'US' },
  { tag: TAG.MoveDestination, key: 'moveDestination', kind: 'AE' },
  { tag: TAG.Priority, key: 'priority', kind: 'US' },
  { tag: TAG.CommandDataSetType, key: 'hasDataSet', kind: 'DataSetType' },
  { tag: TAG.Status, key: 'status', kind: 'US' },
  { tag: TAG.OffendingElement, key: 'offendingElements', kind: 'AT' },
  { tag: TAG.ErrorComment, key: 'errorComment', kind: 'LO' },
  { tag: TAG.ErrorID, key: 'errorId', kind: 'US' },
  { tag: TAG.AffectedSOPInstanceUID, key: 'affectedSopInstanceUid', kind: 'UI' },
  { tag: TAG.RequestedSOPInstanceUID, key: 'requestedSopInstanceUid', kind: 'UI' },
  { tag: TAG.EventTypeID, key: 'eventTypeId', kind: 'US' },
  { tag: TAG.AttributeIdentifierList, key: 'attributeIdentifierList', kind: 'AT' },
  { tag: TAG.ActionTypeID, key: 'actionTypeId', kind: 'US' },
  { tag: TAG.NumberOfRemainingSuboperations, key: 'remainingSubOperations', kind: 'US' },
  { tag: TAG.NumberOfCompletedSuboperations, key: 'completedSubOperations', kind: 'US' },
  { tag: TAG.NumberOfFailedSuboperations, key: 'failedSubOperations', kind: 'US' },
  { tag: TAG.NumberOfWarningSuboperations, key: 'warningSubOperations', kind: 'US' },
  { tag: TAG.MoveOriginatorApplicationEntityTitle, key: 'moveOriginatorAet', kind: 'AE' },
  { tag: TAG.MoveOriginatorMessageID, key: 'moveOriginatorMessageId', kind: 'US' },
];
const FIELD_BY_TAG: ReadonlyMap<number, CommandFieldSpec> = new Map(FIELDS.map((f) => [f.tag, f]));

type FieldValue = string | number | readonly number[];

/**
 * The command's values in FIELDS order, or undefined where it has none. Read by name: keyed reads
 * of the many absent keys were the largest cost of encoding a command.
 */
function commandValues(cmd: DimseCommand, messageId: number | undefined): Array<FieldValue | undefined> {
  return [
    cmd.affectedSopClassUid,
    cmd.requestedSopClassUid,
    cmd.commandField,
    messageId,
    cmd.messageIdBeingRespondedTo,
    cmd.moveDestination,
    cmd.priority,
    cmd.hasDataSet ? 0x0000 : NO_DATA_SET,
    cmd.status,
    cmd.offendingElements?.length ? cmd.offendingElements : undefined,
    cmd.errorComment === undefined ? undefined : truncateErrorComment(cmd.errorComment),
    cmd.errorId,
    cmd.affectedSopInstanceUid,
    cmd.requestedSopInstanceUid,
    cmd.eventTypeId,
    cmd.attributeIdentifierList?.length ? cmd.attributeIdentifierList : undefined,
    cmd.actionTypeId,
    cmd.remainingSubOperations,
    cmd.completedSubOperations,
    cmd.failedSubOperations,
    cmd.warningSubOperations,
    cmd.moveOriginatorAet,
    cmd.moveOriginatorMessageId,
  ];
}

function valueLength(f: CommandFieldSpec, v: FieldValue): number {
  if (f.kind === 'US' || f.kind === 'DataSetType') return 2;
  if (f.kind === 'AT') return 4 * (v as readonly number[]).length;
  const n = (v as string).length;
  return n + (n & 1);
}

/**
 * Encodes a command set: Implicit VR LE, CommandGroupLength first (PS3.7 6.3.1). Written directly
 * into one buffer of the exact size: a command is sent with every DIMSE message, and the general
 * data set writer (64 KiB blocks) made the garbage collector the largest cost of a C-ECHO.
 * `messageId` overrides the command's (a requestor allocates it without copying the command).
 */
export function encodeCommand(cmd: DimseCommand, messageId: number | undefined = cmd.messageId): Uint8Array {
  const values = commandValues(cmd, messageId);
  let body = 0;
  for (let i = 0; i < FIELDS.length; i++) {
    const v = values[i];
    if (v !== undefined) body += 8 + valueLength(FIELDS[i] as CommandFieldSpec, v);
  }
  const out = Buffer.allocUnsafe(12 + body);
  out.writeUInt32LE(0x00000000, 0); // (0000,0000) Command Group Length, UL
  out.writeUInt32LE(4, 4);
  out.writeUInt32LE(body, 8);
  let at = 12;
  for (let i = 0; i < FIELDS.length; i++) {
    const v = values[i];
    if (v === undefined) continue;
    const f = FIELDS[i] as CommandFieldSpec;
    const length = valueLength(f, v);
    out.writeUInt16LE(0x0000, at);
    out.writeUInt16LE(f.tag & 0xffff, at + 2);
    out.writeUInt32LE(length, at + 4);
    at += 8;
    switch (f.kind) {
      case 'US':
      case 'DataSetType': {
        const n = v as number;
        if (!Number.isInteger(n) || n < 0 || n > 0xffff)
          throw new DicomEncodeError(`${f.key} ${n} is not an unsigned 16-bit value`);
        out.writeUInt16LE(n, at);
        break;
      }
      case 'AT':
        for (const t of v as readonly number[]) {
          out.writeUInt16LE((t >>> 16) & 0xffff, at);
          out.writeUInt16LE(t & 0xffff, at + 2);
          at += 4;
        }
        continue;
      default: {
        // Short ASCII values: a loop beats a call into the string encoder.
        const text = v as string;
        for (let c = 0; c < text.length; c++) {
          const code = text.charCodeAt(c);
          if (code > 0xff)
            throw new DicomEncodeError(`${f.key} holds a character outside the default repertoire`);
          out[at + c] = code;
        }
        // PS3.5 6.2: UI pads with NUL, the other string VRs with a space.
        if (text.length & 1) out[at + text.length] = f.kind === 'UI' ? 0x00 : 0x20;
      }
    }
    at += length;
  }
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

/** The text of a string element: first value, padding removed (PS3.5 6.2; AE also loses leading spaces). */
function decodeText(buf: Buffer, start: number, end: number, kind: FieldKind): string | undefined {
  let text = buf.toString('latin1', start, end);
  const sep = text.indexOf('\\');
  if (sep >= 0) text = text.slice(0, sep);
  let stop = text.length;
  while (stop > 0) {
    const c = text.charCodeAt(stop - 1);
    if (c !== 0x20 && c !== 0x00) break;
    stop--;
  }
  let begin = 0;
  if (kind === 'AE') while (begin < stop && text.charCodeAt(begin) === 0x20) begin++;
  return begin < stop ? text.slice(begin, stop) : undefined;
}

/**
 * Decodes a command set (Implicit VR LE, group 0000). Unknown and retired elements are skipped.
 * Throws DicomParseError when an element runs past the end or the Command Field is missing.
 */
export function decodeCommand(bytes: Uint8Array): DimseCommand {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const cmd: { -readonly [K in keyof DimseCommand]: DimseCommand[K] } = {
    commandField: 0,
    hasDataSet: false,
  };
  const record = cmd as unknown as Record<string, unknown>;
  let sawField = false;
  let at = 0;
  while (at < buf.length) {
    if (at + 8 > buf.length) throw new DicomParseError('command set ends inside an element header', at);
    const tag = ((buf.readUInt16LE(at) << 16) | buf.readUInt16LE(at + 2)) >>> 0;
    const length = buf.readUInt32LE(at + 4);
    const start = at + 8;
    if (length > buf.length - start)
      throw new DicomParseError(`element length ${length} runs past the end of the command set`, at, tag);
    at = start + length;
    const f = FIELD_BY_TAG.get(tag);
    if (f === undefined) continue;
    switch (f.kind) {
      case 'US':
        if (length >= 2) {
          record[f.key] = buf.readUInt16LE(start);
          if (f.key === 'commandField') sawField = true;
        }
        break;
      case 'DataSetType':
        // Any value other than 0x0101 means a data set follows (PS3.7 E.1); DCMTK sends 0x0102.
        cmd.hasDataSet = length >= 2 && buf.readUInt16LE(start) !== NO_DATA_SET;
        break;
      case 'AT': {
        const tags: number[] = [];
        for (let p = start; p + 4 <= start + length; p += 4)
          tags.push(((buf.readUInt16LE(p) << 16) | buf.readUInt16LE(p + 2)) >>> 0);
        if (tags.length > 0) record[f.key] = tags;
        break;
      }
      default: {
        const text = decodeText(buf, start, start + length, f.kind);
        if (text !== undefined) record[f.key] = text;
      }
    }
  }
  if (!sawField) throw new DicomParseError('command set without a Command Field', 0, TAG.CommandField);
  return cmd;
}
