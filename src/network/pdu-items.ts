/**
 * The variable items of A-ASSOCIATE-RQ/AC (PS3.8 9.3.2-9.3.3) and the User Information sub-items
 * (PS3.8 Annex D, PS3.7 Annex D.3.3): types and their exact encoding. Items this code does not know
 * are kept as raw bytes and skipped (PS3.8 9.3.1: unrecognized items are ignored), so a newer peer
 * never breaks negotiation.
 */
import { asciiBytes, ByteCursor, ByteWriter, decodeUid, latin1 } from './bytes.js';
import { NetworkError, pduError } from './errors.js';

export const ITEM_TYPE = {
  ApplicationContext: 0x10,
  PresentationContextRq: 0x20,
  PresentationContextAc: 0x21,
  AbstractSyntax: 0x30,
  TransferSyntax: 0x40,
  UserInformation: 0x50,
  MaximumLength: 0x51,
  ImplementationClassUid: 0x52,
  AsynchronousOperationsWindow: 0x53,
  RoleSelection: 0x54,
  ImplementationVersionName: 0x55,
  SopClassExtendedNegotiation: 0x56,
  SopClassCommonExtendedNegotiation: 0x57,
  UserIdentityRq: 0x58,
  UserIdentityAc: 0x59,
} as const;

/** PS3.8 9.3.3.2 Result/Reason of a presentation context in A-ASSOCIATE-AC. */
export const PresentationContextResult = {
  Acceptance: 0,
  UserRejection: 1,
  NoReason: 2,
  AbstractSyntaxNotSupported: 3,
  TransferSyntaxesNotSupported: 4,
} as const;

/** PS3.7 D.3.3.7.1 user identity types. */
export const UserIdentityType = {
  Username: 1,
  UsernameAndPasscode: 2,
  Kerberos: 3,
  Saml: 4,
  Jwt: 5,
} as const;

/** An item or sub-item this code does not interpret: its type and value bytes. */
export interface RawItem {
  readonly type: number;
  readonly data: Uint8Array;
}

/** PS3.8 9.3.2.2: one proposed context (odd id 1..255, one abstract syntax, one or more transfer syntaxes). */
export interface PresentationContextRq {
  readonly id: number;
  readonly abstractSyntax: string;
  readonly transferSyntaxes: readonly string[];
}

/** PS3.8 9.3.3.2: the answer to one proposed context; `transferSyntax` is not significant unless accepted. */
export interface PresentationContextAc {
  readonly id: number;
  readonly result: number;
  readonly transferSyntax: string;
}

/** PS3.7 D.3.3.4 SCP/SCU role selection (0x54). In RQ: roles the requestor proposes for itself; in AC: the ones accepted. */
export interface RoleSelection {
  readonly sopClassUid: string;
  readonly scuRole: boolean;
  readonly scpRole: boolean;
}

/** PS3.7 D.3.3.3 asynchronous operations window (0x53); 0 means unlimited. */
export interface AsyncOperationsWindow {
  readonly maxOperationsInvoked: number;
  readonly maxOperationsPerformed: number;
}

/** PS3.7 D.3.3.5 SOP class extended negotiation (0x56): service-class-specific bytes. */
export interface SopClassExtendedNegotiation {
  readonly sopClassUid: string;
  readonly applicationInformation: Uint8Array;
}

/** PS3.7 D.3.3.6 SOP class common extended negotiation (0x57, RQ only). */
export interface SopClassCommonExtendedNegotiation {
  readonly sopClassUid: string;
  readonly serviceClassUid: string;
  readonly relatedGeneralSopClassUids: readonly string[];
}

/** PS3.7 D.3.3.7.1 user identity negotiation, RQ (0x58). `secondaryField` is used only by type 2 (passcode). */
export interface UserIdentityRq {
  readonly identityType: number;
  readonly positiveResponseRequested: boolean;
  readonly primaryField: Uint8Array;
  readonly secondaryField: Uint8Array;
}

/** PS3.7 D.3.3.7.2 user identity negotiation, AC (0x59). */
export interface UserIdentityAc {
  readonly serverResponse: Uint8Array;
}

/**
 * The User Information item (0x50). Absent sub-items are absent properties (never empty arrays),
 * so a decoded value equals the value it was encoded from.
 */
export interface UserInformation {
  /** PS3.8 D.1 maximum length of a P-DATA-TF PDU's variable field the sender can receive; 0 = unlimited. */
  readonly maxLength?: number;
  readonly implementationClassUid?: string;
  readonly asyncOperationsWindow?: AsyncOperationsWindow;
  readonly roleSelections?: readonly RoleSelection[];
  readonly implementationVersionName?: string;
  readonly sopClassExtendedNegotiations?: readonly SopClassExtendedNegotiation[];
  readonly sopClassCommonExtendedNegotiations?: readonly SopClassCommonExtendedNegotiation[];
  readonly userIdentity?: UserIdentityRq;
  readonly userIdentityResponse?: UserIdentityAc;
  readonly unknownSubItems?: readonly RawItem[];
}

// ---------------------------------------------------------------------------------------------
// Encoding

const UID_RE = /^[0-9.]{1,64}$/;

/** PS3.8 Annex F / PS3.5 9.1: UIDs in items are sent as they are, without padding. */
export function uidBytes(uid: string, what: string, allowEmpty = false): Uint8Array {
  if (uid === '' && allowEmpty) return new Uint8Array(0);
  if (!UID_RE.test(uid))
    throw new NetworkError('ERR_PDU_ENCODE', `${what} is not a valid UID: ${JSON.stringify(uid)}`);
  return asciiBytes(uid, what);
}

/** Header (type, reserved or version byte, 16-bit length) followed by the value. */
export function encodeItem(type: number, value: Uint8Array, secondByte = 0): Uint8Array {
  if (value.length > 0xffff) {
    throw new NetworkError(
      'ERR_PDU_ENCODE',
      `item 0x${type.toString(16)} is ${value.length} bytes, over 65535`,
    );
  }
  return new ByteWriter().u8(type).u8(secondByte).u16(value.length).bytes(value).toBytes();
}

function uidItem(type: number, uid: string, what: string, allowEmpty = false): Uint8Array {
  return encodeItem(type, uidBytes(uid, what, allowEmpty));
}

/** A 16-bit length followed by a UID (used inside 0x54, 0x56, 0x57). */
function lengthPrefixedUid(w: ByteWriter, uid: string, what: string): void {
  const b = uidBytes(uid, what);
  w.u16(b.length).bytes(b);
}

export function encodeApplicationContextItem(name: string): Uint8Array {
  return uidItem(ITEM_TYPE.ApplicationContext, name, 'application context name');
}

function checkContextId(id: number): void {
  if (!Number.isInteger(id) || id < 1 || id > 255) {
    throw new NetworkError('ERR_PDU_ENCODE', `presentation context id ${id} is not in 1..255`);
  }
}

export function encodePresentationContextRqItem(pc: PresentationContextRq): Uint8Array {
  checkContextId(pc.id);
  const w = new ByteWriter().u8(pc.id).u8(0).u8(0).u8(0);
  w.bytes(uidItem(ITEM_TYPE.AbstractSyntax, pc.abstractSyntax, 'abstract syntax'));
  for (const ts of pc.transferSyntaxes) w.bytes(uidItem(ITEM_TYPE.TransferSyntax, ts, 'transfer syntax'));
  return encodeItem(ITEM_TYPE.PresentationContextRq, w.toBytes());
}

export function encodePresentationContextAcItem(pc: PresentationContextAc): Uint8Array {
  checkContextId(pc.id);
  const w = new ByteWriter().u8(pc.id).u8(0).u8(pc.result).u8(0);
  // PS3.8 9.3.3.2: the sub-item is always present; for a rejected context it is not significant,
  // and we send it empty rather than inventing a transfer syntax.
  const accepted = pc.result === PresentationContextResult.Acceptance;
  w.bytes(uidItem(ITEM_TYPE.TransferSyntax, pc.transferSyntax, 'transfer syntax', !accepted));
  return encodeItem(ITEM_TYPE.PresentationContextAc, w.toBytes());
}

export function encodeUserInformationItem(ui: UserInformation): Uint8Array {
  const w = new ByteWriter();
  if (ui.maxLength !== undefined) {
    w.bytes(encodeItem(ITEM_TYPE.MaximumLength, new ByteWriter().u32(ui.maxLength).toBytes()));
  }
  if (ui.implementationClassUid !== undefined) {
    w.bytes(uidItem(ITEM_TYPE.ImplementationClassUid, ui.implementationClassUid, 'implementation class UID'));
  }
  if (ui.asyncOperationsWindow !== undefined) {
    const a = ui.asyncOperationsWindow;
    const v = new ByteWriter().u16(a.maxOperationsInvoked).u16(a.maxOperationsPerformed).toBytes();
    w.bytes(encodeItem(ITEM_TYPE.AsynchronousOperationsWindow, v));
  }
  for (const r of ui.roleSelections ?? []) {
    const v = new ByteWriter();
    lengthPrefixedUid(v, r.sopClassUid, 'role selection SOP class UID');
    v.u8(r.scuRole ? 1 : 0).u8(r.scpRole ? 1 : 0);
    w.bytes(encodeItem(ITEM_TYPE.RoleSelection, v.toBytes()));
  }
  if (ui.implementationVersionName !== undefined) {
    const name = ui.implementationVersionName;
    if (name.length < 1 || name.length > 16) {
      throw new NetworkError(
        'ERR_PDU_ENCODE',
        `implementation version name must be 1..16 characters: ${name}`,
      );
    }
    w.bytes(encodeItem(ITEM_TYPE.ImplementationVersionName, asciiBytes(name, 'implementation version name')));
  }
  for (const e of ui.sopClassExtendedNegotiations ?? []) {
    const v = new ByteWriter();
    lengthPrefixedUid(v, e.sopClassUid, 'extended negotiation SOP class UID');
    v.bytes(e.applicationInformation);
    w.bytes(encodeItem(ITEM_TYPE.SopClassExtendedNegotiation, v.toBytes()));
  }
  for (const c of ui.sopClassCommonExtendedNegotiations ?? []) {
    const v = new ByteWriter();
    lengthPrefixedUid(v, c.sopClassUid, 'common extended negotiation SOP class UID');
    lengthPrefixedUid(v, c.serviceClassUid, 'service class UID');
    const related = new ByteWriter();
    for (const uid of c.relatedGeneralSopClassUids)
      lengthPrefixedUid(related, uid, 'related general SOP class UID');
    v.u16(related.length).bytes(related.toBytes());
    // PS3.7 D.3.3.6: the second byte of this sub-item is its version (0), not a reserved byte.
    w.bytes(encodeItem(ITEM_TYPE.SopClassCommonExtendedNegotiation, v.toBytes(), 0));
  }
  if (ui.userIdentity !== undefined) {
    const u = ui.userIdentity;
    const v = new ByteWriter()
      .u8(u.identityType)
      .u8(u.positiveResponseRequested ? 1 : 0)
      .u16(u.primaryField.length)
      .bytes(u.primaryField)
      .u16(u.secondaryField.length)
      .bytes(u.secondaryField);
    w.bytes(encodeItem(ITEM_TYPE.UserIdentityRq, v.toBytes()));
  }
  if (ui.userIdentityResponse !== undefined) {
    const r = ui.userIdentityResponse.serverResponse;
    w.bytes(encodeItem(ITEM_TYPE.UserIdentityAc, new ByteWriter().u16(r.length).bytes(r).toBytes()));
  }
  for (const raw of ui.unknownSubItems ?? []) w.bytes(encodeItem(raw.type, raw.data));
  return encodeItem(ITEM_TYPE.UserInformation, w.toBytes());
}

// ---------------------------------------------------------------------------------------------
// Decoding

/** Reads one item header and returns its type and a cursor over its value. */
function nextItem(cur: ByteCursor, what: string): { type: number; value: ByteCursor } {
  const type = cur.u8(`${what} type`);
  cur.skip(1, `${what} reserved byte`);
  const length = cur.u16(`${what} length`);
  const start = cur.pos;
  cur.skip(length, `${what} 0x${type.toString(16)} value`);
  return { type, value: new ByteCursor(cur.bytes, start, start + length) };
}

function rest(c: ByteCursor): Uint8Array {
  return c.take(c.remaining, 'value');
}

function lengthPrefixed(c: ByteCursor, what: string): Uint8Array {
  const n = c.u16(`${what} length`);
  return c.take(n, what);
}

function decodePresentationContextRq(c: ByteCursor): PresentationContextRq {
  const id = c.u8('presentation context id');
  c.skip(3, 'presentation context reserved bytes');
  let abstractSyntax: string | undefined;
  const transferSyntaxes: string[] = [];
  while (c.remaining > 0) {
    const sub = nextItem(c, 'presentation context sub-item');
    if (sub.type === ITEM_TYPE.AbstractSyntax && abstractSyntax === undefined)
      abstractSyntax = decodeUid(rest(sub.value));
    else if (sub.type === ITEM_TYPE.TransferSyntax) transferSyntaxes.push(decodeUid(rest(sub.value)));
  }
  if (abstractSyntax === undefined) {
    throw pduError('ERR_PDU_INVALID', `presentation context ${id} has no abstract syntax sub-item`, 6);
  }
  return { id, abstractSyntax, transferSyntaxes };
}

function decodePresentationContextAc(c: ByteCursor): PresentationContextAc {
  const id = c.u8('presentation context id');
  c.skip(1, 'presentation context reserved byte');
  const result = c.u8('presentation context result');
  c.skip(1, 'presentation context reserved byte');
  let transferSyntax = '';
  while (c.remaining > 0) {
    const sub = nextItem(c, 'presentation context sub-item');
    if (sub.type === ITEM_TYPE.TransferSyntax && transferSyntax === '')
      transferSyntax = decodeUid(rest(sub.value));
  }
  return { id, result, transferSyntax };
}

function append<T>(list: T[] | undefined, item: T): T[] {
  const out = list ?? [];
  out.push(item);
  return out;
}

interface MutableUserInformation {
  maxLength?: number;
  implementationClassUid?: string;
  asyncOperationsWindow?: AsyncOperationsWindow;
  roleSelections?: RoleSelection[];
  implementationVersionName?: string;
  sopClassExtendedNegotiations?: SopClassExtendedNegotiation[];
  sopClassCommonExtendedNegotiations?: SopClassCommonExtendedNegotiation[];
  userIdentity?: UserIdentityRq;
  userIdentityResponse?: UserIdentityAc;
  unknownSubItems?: RawItem[];
}

/** Decodes the value of a User Information item. A repeated single-valued sub-item keeps its first value. */
export function decodeUserInformation(c: ByteCursor): UserInformation {
  const ui: MutableUserInformation = {};
  while (c.remaining > 0) {
    const { type, value: v } = nextItem(c, 'user information sub-item');
    switch (type) {
      case ITEM_TYPE.MaximumLength:
        ui.maxLength ??= v.u32('maximum length');
        break;
      case ITEM_TYPE.ImplementationClassUid:
        ui.implementationClassUid ??= decodeUid(rest(v));
        break;
      case ITEM_TYPE.AsynchronousOperationsWindow:
        ui.asyncOperationsWindow ??= {
          maxOperationsInvoked: v.u16('max operations invoked'),
          maxOperationsPerformed: v.u16('max operations performed'),
        };
        break;
      case ITEM_TYPE.RoleSelection: {
        const sopClassUid = decodeUid(lengthPrefixed(v, 'role selection SOP class UID'));
        const scuRole = v.u8('SCU role') !== 0;
        const scpRole = v.u8('SCP role') !== 0;
        ui.roleSelections = append(ui.roleSelections, { sopClassUid, scuRole, scpRole });
        break;
      }
      case ITEM_TYPE.ImplementationVersionName:
        ui.implementationVersionName ??= latin1(rest(v)).trim();
        break;
      case ITEM_TYPE.SopClassExtendedNegotiation: {
        const sopClassUid = decodeUid(lengthPrefixed(v, 'extended negotiation SOP class UID'));
        ui.sopClassExtendedNegotiations = append(ui.sopClassExtendedNegotiations, {
          sopClassUid,
          applicationInformation: rest(v),
        });
        break;
      }
      case ITEM_TYPE.SopClassCommonExtendedNegotiation: {
        const sopClassUid = decodeUid(lengthPrefixed(v, 'common extended negotiation SOP class UID'));
        const serviceClassUid = decodeUid(lengthPrefixed(v, 'service class UID'));
        const related = new ByteCursor(lengthPrefixed(v, 'related general SOP class identification'));
        const relatedGeneralSopClassUids: string[] = [];
        while (related.remaining > 0) {
          relatedGeneralSopClassUids.push(
            decodeUid(lengthPrefixed(related, 'related general SOP class UID')),
          );
        }
        ui.sopClassCommonExtendedNegotiations = append(ui.sopClassCommonExtendedNegotiations, {
          sopClassUid,
          serviceClassUid,
          relatedGeneralSopClassUids,
        });
        break;
      }
      case ITEM_TYPE.UserIdentityRq:
        ui.userIdentity ??= {
          identityType: v.u8('user identity type'),
          positiveResponseRequested: v.u8('positive response requested') !== 0,
          primaryField: lengthPrefixed(v, 'user identity primary field'),
          secondaryField: lengthPrefixed(v, 'user identity secondary field'),
        };
        break;
      case ITEM_TYPE.UserIdentityAc:
        ui.userIdentityResponse ??= { serverResponse: lengthPrefixed(v, 'user identity server response') };
        break;
      default:
        ui.unknownSubItems = append(ui.unknownSubItems, { type, data: rest(v) });
    }
  }
  return ui;
}

export interface VariableItems {
  applicationContextName: string | undefined;
  presentationContextsRq: PresentationContextRq[];
  presentationContextsAc: PresentationContextAc[];
  userInformation: UserInformation | undefined;
  unknownItems: RawItem[];
}

/**
 * Decodes the variable field of A-ASSOCIATE-RQ (`kind` 'rq') or -AC ('ac'). A presentation context
 * item of the other PDU's kind is kept as an unknown item.
 */
export function decodeVariableItems(c: ByteCursor, kind: 'rq' | 'ac'): VariableItems {
  const out: VariableItems = {
    applicationContextName: undefined,
    presentationContextsRq: [],
    presentationContextsAc: [],
    userInformation: undefined,
    unknownItems: [],
  };
  while (c.remaining > 0) {
    const { type, value } = nextItem(c, 'item');
    if (type === ITEM_TYPE.ApplicationContext && out.applicationContextName === undefined) {
      out.applicationContextName = decodeUid(rest(value));
    } else if (type === ITEM_TYPE.PresentationContextRq && kind === 'rq') {
      out.presentationContextsRq.push(decodePresentationContextRq(value));
    } else if (type === ITEM_TYPE.PresentationContextAc && kind === 'ac') {
      out.presentationContextsAc.push(decodePresentationContextAc(value));
    } else if (type === ITEM_TYPE.UserInformation && out.userInformation === undefined) {
      out.userInformation = decodeUserInformation(value);
    } else {
      out.unknownItems.push({ type, data: rest(value) });
    }
  }
  return out;
}
