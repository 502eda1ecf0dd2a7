/**
 * Golden bytes of DIMSE command sets (PS3.7 9.3 and 10.3, encoded per PS3.7 6.3.1: Implicit VR Little
 * Endian, group 0000, Command Group Length first) for every C- and N- message, both ways, and the
 * status categories of PS3.7 Annex C.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DicomEncodeError, DicomParseError } from '../../src/core/errors.js';
import {
  CommandField,
  commandName,
  type DimseCommand,
  decodeCommand,
  encodeCommand,
  isResponse,
  Priority,
  truncateErrorComment,
} from '../../src/network/dimse-command.js';
import { describeStatus, Status, statusCategory } from '../../src/network/dimse-status.js';
import { a, cat, h, toHex } from './bytes-helpers.js';

const VERIFICATION = '1.2.840.10008.1.1'; // 17 characters: padded with one NUL
const CT_IMAGE = '1.2.840.10008.5.1.4.1.1.2'; // 25 characters
const FIND_STUDY_ROOT = '1.2.840.10008.5.1.4.1.2.2.1'; // 27 characters
const GET_STUDY_ROOT = '1.2.840.10008.5.1.4.1.2.2.3';
const MOVE_STUDY_ROOT = '1.2.840.10008.5.1.4.1.2.2.2';
const MPPS = '1.2.840.10008.3.1.2.3.3'; // 23 characters
const STORAGE_COMMITMENT = '1.2.840.10008.1.20.1'; // 20 characters
const STORAGE_COMMITMENT_INSTANCE = '1.2.840.10008.1.20.1.1'; // 22 characters
const INSTANCE = '1.2.3.4.5.6.7.8.9'; // 17 characters

// --- building blocks of an Implicit VR LE element: tag (group, element, LE), 4-byte LE length, value.

function el(group: number, element: number, value: Uint8Array): Uint8Array {
  const head = Buffer.alloc(8);
  head.writeUInt16LE(group, 0);
  head.writeUInt16LE(element, 2);
  head.writeUInt32LE(value.length, 4);
  return cat(head, value);
}
/** UI: NUL-padded to even length (PS3.5 6.2). */
const ui = (s: string): Uint8Array => (s.length % 2 ? cat(a(s), h('00')) : a(s));
const us = (n: number): Uint8Array =>
  h(
    n
      .toString(16)
      .padStart(4, '0')
      .replace(/(..)(..)/, '$2$1'),
  );
/** AT: group then element, each little endian. */
const at = (tag: number): Uint8Array => cat(us(tag >>> 16), us(tag & 0xffff));

/** The whole command set: (0000,0000) UL with the byte count of what follows, then the elements. */
function commandSet(...elements: Uint8Array[]): Uint8Array {
  const body = cat(...elements);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(body.length, 0);
  return cat(h('00000000 04000000'), length, body);
}

const affectedClass = (uid: string) => el(0x0000, 0x0002, ui(uid));
const requestedClass = (uid: string) => el(0x0000, 0x0003, ui(uid));
const field = (f: number) => el(0x0000, 0x0100, us(f));
const messageId = (n: number) => el(0x0000, 0x0110, us(n));
const respondingTo = (n: number) => el(0x0000, 0x0120, us(n));
const priority = (n: number) => el(0x0000, 0x0700, us(n));
const noDataSet = el(0x0000, 0x0800, us(0x0101));
const dataSetFollows = el(0x0000, 0x0800, us(0x0000));
const status = (s: number) => el(0x0000, 0x0900, us(s));
const affectedInstance = (uid: string) => el(0x0000, 0x1000, ui(uid));
const requestedInstance = (uid: string) => el(0x0000, 0x1001, ui(uid));

interface Golden {
  readonly name: string;
  readonly command: DimseCommand;
  readonly bytes: Uint8Array;
  /** The Command Group Length, computed by hand. */
  readonly groupLength: number;
}

const GOLDEN: readonly Golden[] = [
  {
    // (0000,0002) UI 18 "1.2.840.10008.1.1\0", (0000,0100) US 0x0030, (0000,0110) US 1, (0000,0800) US 0x0101.
    name: 'C-ECHO-RQ',
    command: {
      commandField: CommandField.C_ECHO_RQ,
      messageId: 1,
      affectedSopClassUid: VERIFICATION,
      hasDataSet: false,
    },
    bytes: h(
      '00000000 04000000 38000000' +
        '00000200 12000000 312e322e3834302e31303030382e312e3100' +
        '00000001 02000000 3000' +
        '00001001 02000000 0100' +
        '00000008 02000000 0101',
    ),
    groupLength: 26 + 10 + 10 + 10,
  },
  {
    // C-ECHO-RSP: Message ID Being Responded To 1, Status 0x0000.
    name: 'C-ECHO-RSP',
    command: {
      commandField: CommandField.C_ECHO_RSP,
      messageIdBeingRespondedTo: 1,
      affectedSopClassUid: VERIFICATION,
      hasDataSet: false,
      status: 0,
    },
    bytes: h(
      '00000000 04000000 42000000' +
        '00000200 12000000 312e322e3834302e31303030382e312e3100' +
        '00000001 02000000 3080' +
        '00002001 02000000 0100' +
        '00000008 02000000 0101' +
        '00000009 02000000 0000',
    ),
    groupLength: 26 + 10 + 10 + 10 + 10,
  },
  {
    // C-STORE-RQ as a C-MOVE sub-operation: Move Originator AE "MOVESCU" (AE, padded with a space to 8)
    // and Move Originator Message ID 7, Priority HIGH.
    name: 'C-STORE-RQ with Move Originator fields',
    command: {
      commandField: CommandField.C_STORE_RQ,
      messageId: 0x1234,
      affectedSopClassUid: CT_IMAGE,
      affectedSopInstanceUid: INSTANCE,
      priority: Priority.High,
      hasDataSet: true,
      moveOriginatorAet: 'MOVESCU',
      moveOriginatorMessageId: 7,
    },
    bytes: commandSet(
      affectedClass(CT_IMAGE),
      field(0x0001),
      messageId(0x1234),
      priority(1),
      dataSetFollows,
      affectedInstance(INSTANCE),
      el(0x0000, 0x1030, a('MOVESCU ')),
      el(0x0000, 0x1031, h('0700')),
    ),
    groupLength: 34 + 10 + 10 + 10 + 10 + 26 + 16 + 10,
  },
  {
    // C-STORE-RSP with a warning (0xB000 coercion of data elements) and an Error Comment (LO, odd: padded).
    name: 'C-STORE-RSP (warning with Error Comment)',
    command: {
      commandField: CommandField.C_STORE_RSP,
      messageIdBeingRespondedTo: 0x1234,
      affectedSopClassUid: CT_IMAGE,
      affectedSopInstanceUid: INSTANCE,
      hasDataSet: false,
      status: 0xb000,
      errorComment: 'coerced',
    },
    bytes: commandSet(
      affectedClass(CT_IMAGE),
      field(0x8001),
      respondingTo(0x1234),
      noDataSet,
      status(0xb000),
      el(0x0000, 0x0902, a('coerced ')),
      affectedInstance(INSTANCE),
    ),
    groupLength: 34 + 10 + 10 + 10 + 10 + 16 + 26,
  },
  {
    name: 'C-FIND-RQ',
    command: {
      commandField: CommandField.C_FIND_RQ,
      messageId: 3,
      affectedSopClassUid: FIND_STUDY_ROOT,
      priority: Priority.Medium,
      hasDataSet: true,
    },
    bytes: commandSet(
      affectedClass(FIND_STUDY_ROOT),
      field(0x0020),
      messageId(3),
      priority(0),
      dataSetFollows,
    ),
    groupLength: 36 + 10 + 10 + 10 + 10,
  },
  {
    // A pending C-FIND-RSP carries a data set (the match).
    name: 'C-FIND-RSP (pending, with identifier)',
    command: {
      commandField: CommandField.C_FIND_RSP,
      messageIdBeingRespondedTo: 3,
      affectedSopClassUid: FIND_STUDY_ROOT,
      hasDataSet: true,
      status: Status.Pending,
    },
    bytes: commandSet(
      affectedClass(FIND_STUDY_ROOT),
      field(0x8020),
      respondingTo(3),
      dataSetFollows,
      status(0xff00),
    ),
    groupLength: 36 + 10 + 10 + 10 + 10,
  },
  {
    name: 'C-GET-RQ',
    command: {
      commandField: CommandField.C_GET_RQ,
      messageId: 4,
      affectedSopClassUid: GET_STUDY_ROOT,
      priority: Priority.Low,
      hasDataSet: true,
    },
    bytes: commandSet(
      affectedClass(GET_STUDY_ROOT),
      field(0x0010),
      messageId(4),
      priority(2),
      dataSetFollows,
    ),
    groupLength: 36 + 40,
  },
  {
    // Pending C-GET-RSP: remaining 5, completed 2, failed 1, warning 0.
    name: 'C-GET-RSP (pending, sub-operation counts)',
    command: {
      commandField: CommandField.C_GET_RSP,
      messageIdBeingRespondedTo: 4,
      affectedSopClassUid: GET_STUDY_ROOT,
      hasDataSet: false,
      status: Status.Pending,
      remainingSubOperations: 5,
      completedSubOperations: 2,
      failedSubOperations: 1,
      warningSubOperations: 0,
    },
    bytes: commandSet(
      affectedClass(GET_STUDY_ROOT),
      field(0x8010),
      respondingTo(4),
      noDataSet,
      status(0xff00),
      el(0x0000, 0x1020, us(5)),
      el(0x0000, 0x1021, us(2)),
      el(0x0000, 0x1022, us(1)),
      el(0x0000, 0x1023, us(0)),
    ),
    groupLength: 36 + 40 + 40,
  },
  {
    // C-MOVE-RQ: Move Destination "STORESCP" (8 characters, even: no padding).
    name: 'C-MOVE-RQ',
    command: {
      commandField: CommandField.C_MOVE_RQ,
      messageId: 5,
      affectedSopClassUid: MOVE_STUDY_ROOT,
      priority: Priority.Medium,
      moveDestination: 'STORESCP',
      hasDataSet: true,
    },
    bytes: commandSet(
      affectedClass(MOVE_STUDY_ROOT),
      field(0x0021),
      messageId(5),
      el(0x0000, 0x0600, a('STORESCP')),
      priority(0),
      dataSetFollows,
    ),
    groupLength: 36 + 20 + 16 + 20,
  },
  {
    // Final C-MOVE-RSP: 0xB000 (sub-operations complete, one or more failures), counts, and a data set
    // (the Failed SOP Instance UID List).
    name: 'C-MOVE-RSP (final, failures, with data set)',
    command: {
      commandField: CommandField.C_MOVE_RSP,
      messageIdBeingRespondedTo: 5,
      affectedSopClassUid: MOVE_STUDY_ROOT,
      hasDataSet: true,
      status: Status.SubOperationsCompleteWithFailures,
      remainingSubOperations: 0,
      completedSubOperations: 9,
      failedSubOperations: 1,
      warningSubOperations: 2,
    },
    bytes: commandSet(
      affectedClass(MOVE_STUDY_ROOT),
      field(0x8021),
      respondingTo(5),
      dataSetFollows,
      status(0xb000),
      el(0x0000, 0x1020, us(0)),
      el(0x0000, 0x1021, us(9)),
      el(0x0000, 0x1022, us(1)),
      el(0x0000, 0x1023, us(2)),
    ),
    groupLength: 36 + 40 + 40,
  },
  {
    // C-CANCEL-RQ: only the Command Field, the Message ID Being Responded To and the Data Set Type.
    name: 'C-CANCEL-RQ',
    command: { commandField: CommandField.C_CANCEL_RQ, messageIdBeingRespondedTo: 3, hasDataSet: false },
    bytes: h(
      '00000000 04000000 1e000000' +
        '00000001 02000000 ff0f' +
        '00002001 02000000 0300' +
        '00000008 02000000 0101',
    ),
    groupLength: 30,
  },
  {
    name: 'N-CREATE-RQ',
    command: {
      commandField: CommandField.N_CREATE_RQ,
      messageId: 6,
      affectedSopClassUid: MPPS,
      affectedSopInstanceUid: INSTANCE,
      hasDataSet: true,
    },
    bytes: commandSet(
      affectedClass(MPPS),
      field(0x0140),
      messageId(6),
      dataSetFollows,
      affectedInstance(INSTANCE),
    ),
    groupLength: 32 + 30 + 26,
  },
  {
    name: 'N-CREATE-RSP',
    command: {
      commandField: CommandField.N_CREATE_RSP,
      messageIdBeingRespondedTo: 6,
      affectedSopClassUid: MPPS,
      affectedSopInstanceUid: INSTANCE,
      hasDataSet: false,
      status: 0,
    },
    bytes: commandSet(
      affectedClass(MPPS),
      field(0x8140),
      respondingTo(6),
      noDataSet,
      status(0),
      affectedInstance(INSTANCE),
    ),
    groupLength: 32 + 40 + 26,
  },
  {
    // N-SET-RQ names the Requested SOP Class (0000,0003) and Instance (0000,1001).
    name: 'N-SET-RQ',
    command: {
      commandField: CommandField.N_SET_RQ,
      messageId: 7,
      requestedSopClassUid: MPPS,
      requestedSopInstanceUid: INSTANCE,
      hasDataSet: true,
    },
    bytes: commandSet(
      requestedClass(MPPS),
      field(0x0120),
      messageId(7),
      dataSetFollows,
      requestedInstance(INSTANCE),
    ),
    groupLength: 32 + 30 + 26,
  },
  {
    // N-SET-RSP failing: 0x0106 invalid attribute value, Offending Element (0010,0010) as AT.
    name: 'N-SET-RSP (failure with Offending Element)',
    command: {
      commandField: CommandField.N_SET_RSP,
      messageIdBeingRespondedTo: 7,
      affectedSopClassUid: MPPS,
      affectedSopInstanceUid: INSTANCE,
      hasDataSet: false,
      status: Status.InvalidAttributeValue,
      offendingElements: [0x00100010],
    },
    bytes: commandSet(
      affectedClass(MPPS),
      field(0x8120),
      respondingTo(7),
      noDataSet,
      status(0x0106),
      el(0x0000, 0x0901, at(0x00100010)),
      affectedInstance(INSTANCE),
    ),
    groupLength: 32 + 40 + 12 + 26,
  },
  {
    // N-GET-RQ with an Attribute Identifier List of two tags.
    name: 'N-GET-RQ',
    command: {
      commandField: CommandField.N_GET_RQ,
      messageId: 8,
      requestedSopClassUid: MPPS,
      requestedSopInstanceUid: INSTANCE,
      hasDataSet: false,
      attributeIdentifierList: [0x00100010, 0x00400252],
    },
    bytes: commandSet(
      requestedClass(MPPS),
      field(0x0110),
      messageId(8),
      noDataSet,
      requestedInstance(INSTANCE),
      el(0x0000, 0x1005, cat(at(0x00100010), at(0x00400252))),
    ),
    groupLength: 32 + 30 + 26 + 16,
  },
  {
    name: 'N-GET-RSP (with attributes)',
    command: {
      commandField: CommandField.N_GET_RSP,
      messageIdBeingRespondedTo: 8,
      affectedSopClassUid: MPPS,
      affectedSopInstanceUid: INSTANCE,
      hasDataSet: true,
      status: 0,
    },
    bytes: commandSet(
      affectedClass(MPPS),
      field(0x8110),
      respondingTo(8),
      dataSetFollows,
      status(0),
      affectedInstance(INSTANCE),
    ),
    groupLength: 32 + 40 + 26,
  },
  {
    // Storage Commitment request: N-ACTION-RQ with Action Type ID 1.
    name: 'N-ACTION-RQ',
    command: {
      commandField: CommandField.N_ACTION_RQ,
      messageId: 9,
      requestedSopClassUid: STORAGE_COMMITMENT,
      requestedSopInstanceUid: STORAGE_COMMITMENT_INSTANCE,
      actionTypeId: 1,
      hasDataSet: true,
    },
    bytes: commandSet(
      requestedClass(STORAGE_COMMITMENT),
      field(0x0130),
      messageId(9),
      dataSetFollows,
      requestedInstance(STORAGE_COMMITMENT_INSTANCE),
      el(0x0000, 0x1008, us(1)),
    ),
    groupLength: 28 + 30 + 30 + 10,
  },
  {
    name: 'N-ACTION-RSP',
    command: {
      commandField: CommandField.N_ACTION_RSP,
      messageIdBeingRespondedTo: 9,
      affectedSopClassUid: STORAGE_COMMITMENT,
      affectedSopInstanceUid: STORAGE_COMMITMENT_INSTANCE,
      actionTypeId: 1,
      hasDataSet: false,
      status: 0,
    },
    bytes: commandSet(
      affectedClass(STORAGE_COMMITMENT),
      field(0x8130),
      respondingTo(9),
      noDataSet,
      status(0),
      affectedInstance(STORAGE_COMMITMENT_INSTANCE),
      el(0x0000, 0x1008, us(1)),
    ),
    groupLength: 28 + 40 + 30 + 10,
  },
  {
    name: 'N-DELETE-RQ',
    command: {
      commandField: CommandField.N_DELETE_RQ,
      messageId: 10,
      requestedSopClassUid: MPPS,
      requestedSopInstanceUid: INSTANCE,
      hasDataSet: false,
    },
    bytes: commandSet(
      requestedClass(MPPS),
      field(0x0150),
      messageId(10),
      noDataSet,
      requestedInstance(INSTANCE),
    ),
    groupLength: 32 + 30 + 26,
  },
  {
    // N-DELETE-RSP failing: 0x0112 no such SOP instance, with Error ID 0x0042.
    name: 'N-DELETE-RSP (failure with Error ID)',
    command: {
      commandField: CommandField.N_DELETE_RSP,
      messageIdBeingRespondedTo: 10,
      affectedSopClassUid: MPPS,
      affectedSopInstanceUid: INSTANCE,
      hasDataSet: false,
      status: Status.NoSuchSopInstance,
      errorId: 0x0042,
    },
    bytes: commandSet(
      affectedClass(MPPS),
      field(0x8150),
      respondingTo(10),
      noDataSet,
      status(0x0112),
      el(0x0000, 0x0903, us(0x0042)),
      affectedInstance(INSTANCE),
    ),
    groupLength: 32 + 40 + 10 + 26,
  },
  {
    // Storage Commitment result: N-EVENT-REPORT-RQ with Event Type ID 2 (failures exist).
    name: 'N-EVENT-REPORT-RQ',
    command: {
      commandField: CommandField.N_EVENT_REPORT_RQ,
      messageId: 11,
      affectedSopClassUid: STORAGE_COMMITMENT,
      affectedSopInstanceUid: STORAGE_COMMITMENT_INSTANCE,
      eventTypeId: 2,
      hasDataSet: true,
    },
    bytes: commandSet(
      affectedClass(STORAGE_COMMITMENT),
      field(0x0100),
      messageId(11),
      dataSetFollows,
      affectedInstance(STORAGE_COMMITMENT_INSTANCE),
      el(0x0000, 0x1002, us(2)),
    ),
    groupLength: 28 + 30 + 30 + 10,
  },
  {
    name: 'N-EVENT-REPORT-RSP',
    command: {
      commandField: CommandField.N_EVENT_REPORT_RSP,
      messageIdBeingRespondedTo: 11,
      affectedSopClassUid: STORAGE_COMMITMENT,
      affectedSopInstanceUid: STORAGE_COMMITMENT_INSTANCE,
      eventTypeId: 2,
      hasDataSet: false,
      status: 0,
    },
    bytes: commandSet(
      affectedClass(STORAGE_COMMITMENT),
      field(0x8100),
      respondingTo(11),
      noDataSet,
      status(0),
      affectedInstance(STORAGE_COMMITMENT_INSTANCE),
      el(0x0000, 0x1002, us(2)),
    ),
    groupLength: 28 + 40 + 30 + 10,
  },
];

describe('DIMSE command set golden bytes', () => {
  it('covers a request and a response of every C- and N- command', () => {
    const covered = new Set(GOLDEN.map((g) => g.command.commandField));
    for (const [name, value] of Object.entries(CommandField))
      assert.ok(covered.has(value), `${name} covered`);
  });

  for (const g of GOLDEN) {
    it(`encodes ${g.name}`, () => {
      assert.equal(toHex(encodeCommand(g.command)), toHex(g.bytes));
    });
    it(`decodes ${g.name}`, () => {
      assert.deepEqual(decodeCommand(g.bytes), g.command);
    });
    it(`gives ${g.name} the right Command Group Length`, () => {
      const bytes = encodeCommand(g.command);
      const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      assert.equal(view.readUInt32LE(0), 0x00000000, '(0000,0000) comes first');
      assert.equal(view.readUInt32LE(4), 4, 'UL, 4 bytes');
      assert.equal(view.readUInt32LE(8), g.groupLength);
      assert.equal(bytes.length, 12 + g.groupLength, 'the group length counts every byte after it');
    });
  }

  it('accepts any Command Data Set Type other than 0x0101 as "a data set follows" (DCMTK sends 0x0102)', () => {
    const bytes = commandSet(
      affectedClass(CT_IMAGE),
      field(0x8001),
      respondingTo(1),
      el(0, 0x0800, us(0x0102)),
    );
    assert.equal(decodeCommand(bytes).hasDataSet, true);
    const absent = commandSet(field(0x0030), messageId(1));
    assert.equal(decodeCommand(absent).hasDataSet, false, 'no Command Data Set Type: no data set');
  });

  it('decodes a command set without its group length and with unknown group 0000 elements', () => {
    // (0000,0001) Command Length to End (retired, 4 bytes) and (0000,4000) retired element are ignored.
    const bytes = cat(
      el(0, 0x0001, h('00000000')),
      field(0x0030),
      messageId(2),
      noDataSet,
      el(0, 0x4000, a('AB')),
    );
    assert.deepEqual(decodeCommand(bytes), { commandField: 0x0030, messageId: 2, hasDataSet: false });
  });

  it('refuses a command set without a Command Field, and one that is truncated', () => {
    assert.throws(() => decodeCommand(commandSet(messageId(1), noDataSet)), DicomParseError);
    const good = GOLDEN[0]?.bytes ?? new Uint8Array();
    assert.throws(() => decodeCommand(good.subarray(0, good.length - 3)), DicomParseError);
  });
});

describe('encoder checks', () => {
  it("takes the message ID given apart over the command's (a requestor does not copy the command)", () => {
    const echo = GOLDEN[0] as Golden;
    const { messageId: _, ...withoutId } = echo.command;
    assert.equal(toHex(encodeCommand(withoutId, 1)), toHex(echo.bytes));
    assert.equal(decodeCommand(encodeCommand(echo.command, 0x4242)).messageId, 0x4242);
  });

  it('refuses a US value out of range and text outside Latin-1 in an AE', () => {
    assert.throws(
      () => encodeCommand({ commandField: CommandField.C_ECHO_RQ, messageId: 0x10000, hasDataSet: false }),
      DicomEncodeError,
    );
    assert.throws(
      () =>
        encodeCommand({
          commandField: CommandField.C_MOVE_RQ,
          messageId: 1,
          moveDestination: '受信者',
          hasDataSet: true,
        }),
      DicomEncodeError,
    );
  });
});

describe('Error Comment', () => {
  it('is cut to 64 characters, the length of an LO value', () => {
    const long = 'x'.repeat(100);
    const cut = truncateErrorComment(long);
    assert.equal(cut.length, 64);
    assert.ok(cut.endsWith('...'));
    assert.equal(truncateErrorComment('y'.repeat(64)), 'y'.repeat(64), 'exactly 64 stays whole');
  });

  it('is cut in the encoded command, and decodes back as sent', () => {
    const bytes = encodeCommand({
      commandField: CommandField.C_STORE_RSP,
      messageIdBeingRespondedTo: 1,
      affectedSopClassUid: CT_IMAGE,
      hasDataSet: false,
      status: Status.ProcessingFailure,
      errorComment: `disk full while writing ${'/very/long/path/'.repeat(10)}`,
    });
    const decoded = decodeCommand(bytes);
    assert.equal(decoded.errorComment?.length, 64);
    assert.ok(decoded.errorComment?.startsWith('disk full while writing /very/long/path/'));
  });

  it('holds no value separator or control characters (LO is one value of one line)', () => {
    assert.equal(truncateErrorComment('a\\b\r\nc'), 'a b  c');
  });

  it('stays in the default repertoire: a handler message in any script never breaks the response', () => {
    // The command set has no Specific Character Set (PS3.7 6.3.1), so LO is ISO-IR 6 there.
    const comment = truncateErrorComment('échec: 患者 not found \u{1F4A5}');
    assert.match(comment, /^[\x20-\x7e]*$/);
    const bytes = encodeCommand({
      commandField: CommandField.N_SET_RSP,
      messageIdBeingRespondedTo: 1,
      hasDataSet: false,
      status: Status.ProcessingFailure,
      errorComment: '処理に失敗しました',
    });
    assert.equal(decodeCommand(bytes).status, Status.ProcessingFailure);
  });
});

describe('command fields', () => {
  it('names commands and tells requests from responses', () => {
    assert.equal(commandName(CommandField.C_ECHO_RQ), 'C-ECHO-RQ');
    assert.equal(commandName(CommandField.N_EVENT_REPORT_RSP), 'N-EVENT-REPORT-RSP');
    assert.equal(commandName(CommandField.C_CANCEL_RQ), 'C-CANCEL-RQ');
    assert.equal(commandName(0x0042), 'command 0x0042');
    assert.equal(isResponse(CommandField.C_FIND_RSP), true);
    assert.equal(isResponse(CommandField.C_CANCEL_RQ), false);
    for (const [name, value] of Object.entries(CommandField)) {
      if (name === 'C_CANCEL_RQ') continue;
      assert.equal(isResponse(value), name.endsWith('_RSP'), name);
    }
  });
});

describe('status codes', () => {
  const cases: ReadonlyArray<[number, string]> = [
    [0x0000, 'success'],
    [0x0001, 'warning'],
    [0x0107, 'warning'],
    [0x0116, 'warning'],
    [0xb000, 'warning'],
    [0xb006, 'warning'],
    [0xb007, 'warning'],
    [0xbfff, 'warning'],
    [0xfe00, 'cancel'],
    [0xff00, 'pending'],
    [0xff01, 'pending'],
    [0x0105, 'failure'],
    [0x0106, 'failure'],
    [0x0110, 'failure'],
    [0x0111, 'failure'],
    [0x0112, 'failure'],
    [0x0117, 'failure'],
    [0x0118, 'failure'],
    [0x0119, 'failure'],
    [0x0120, 'failure'],
    [0x0122, 'failure'],
    [0x0124, 'failure'],
    [0x0210, 'failure'],
    [0x0211, 'failure'],
    [0x0212, 'failure'],
    [0x0213, 'failure'],
    [0xa700, 'failure'],
    [0xa7ff, 'failure'],
    [0xa801, 'failure'],
    [0xa900, 'failure'],
    [0xc000, 'failure'],
    [0xcfff, 'failure'],
  ];
  for (const [code, category] of cases) {
    it(`0x${code.toString(16).padStart(4, '0')} is ${category}`, () => {
      assert.equal(statusCategory(code), category);
    });
  }

  it('describes a status with its meaning', () => {
    assert.equal(describeStatus(Status.Success), '0x0000 (Success)');
    assert.equal(describeStatus(0xa700), '0xA700 (Refused: out of resources)');
    assert.equal(describeStatus(0xa7ab), '0xA7AB (Refused: out of resources)');
    assert.equal(describeStatus(0xc123), '0xC123 (Error: cannot understand)');
    assert.equal(describeStatus(0xfe00), '0xFE00 (Cancel)');
    assert.equal(describeStatus(0xb123), '0xB123 (warning)');
  });
});
