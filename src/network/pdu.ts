/**
 * DICOM Upper Layer PDUs (PS3.8 9.3): types and a sans-I/O codec. Encoders produce the exact bytes
 * of the standard; decoders take the PDU body (the bytes after the 6-byte header) as a view and never
 * copy P-DATA values. Malformed input throws NetworkError with the A-ABORT reason to answer with.
 */
import { UID } from '../dicom/generated/uids.js';
import { asciiBytes, ByteCursor, ByteWriter, latin1 } from './bytes.js';
import { NetworkError, pduError } from './errors.js';
import {
  decodeVariableItems,
  encodeApplicationContextItem,
  encodeItem,
  encodePresentationContextAcItem,
  encodePresentationContextRqItem,
  encodeUserInformationItem,
  type PresentationContextAc,
  type PresentationContextRq,
  type RawItem,
  type UserInformation,
} from './pdu-items.js';

export * from './pdu-items.js';

export const PDU_TYPE = {
  AssociateRq: 0x01,
  AssociateAc: 0x02,
  AssociateRj: 0x03,
  PDataTf: 0x04,
  ReleaseRq: 0x05,
  ReleaseRp: 0x06,
  Abort: 0x07,
} as const;

/** PDU-type (1), reserved (1), PDU-length (4). */
export const PDU_HEADER_LENGTH = 6;
/** PS3.8 9.3.2: protocol version (2) + reserved (2) + called AE (16) + calling AE (16) + reserved (32). */
export const ASSOCIATE_FIXED_LENGTH = 68;
/** PS3.8 9.3.5: PDV item length (4) + presentation context id (1) + message control header (1). */
export const PDV_HEADER_LENGTH = 6;
/** PS3.3 A.2 / PS3.7 A.2.1: the only application context name DICOM defines. */
export const DICOM_APPLICATION_CONTEXT: string = UID.DICOMApplicationContext;

/** PS3.8 9.3.8 A-ABORT source. */
export const AbortSource = { ServiceUser: 0, ServiceProvider: 2 } as const;
/** PS3.8 9.3.8 A-ABORT reason (significant when the source is the service-provider). */
export const AbortReason = {
  NotSpecified: 0,
  UnrecognizedPdu: 1,
  UnexpectedPdu: 2,
  UnrecognizedPduParameter: 4,
  UnexpectedPduParameter: 5,
  InvalidPduParameterValue: 6,
} as const;

/** PS3.8 9.3.4 A-ASSOCIATE-RJ result. */
export const RejectResult = { Permanent: 1, Transient: 2 } as const;
/** PS3.8 9.3.4 A-ASSOCIATE-RJ source. */
export const RejectSource = {
  ServiceUser: 1,
  ServiceProviderAcse: 2,
  ServiceProviderPresentation: 3,
} as const;
/** PS3.8 9.3.4 A-ASSOCIATE-RJ reason, by source. */
export const RejectReason = {
  /** Source 1 (service-user). */
  User: {
    NoReasonGiven: 1,
    ApplicationContextNameNotSupported: 2,
    CallingAeTitleNotRecognized: 3,
    CalledAeTitleNotRecognized: 7,
  },
  /** Source 2 (service-provider, ACSE related function). */
  Acse: { NoReasonGiven: 1, ProtocolVersionNotSupported: 2 },
  /** Source 3 (service-provider, presentation related function). */
  Presentation: { TemporaryCongestion: 1, LocalLimitExceeded: 2 },
} as const;

export interface AssociateRqPdu {
  readonly type: 'A-ASSOCIATE-RQ';
  /** Bit 0 set = version 1 (PS3.8 9.3.2); a receiver tests only that bit. */
  readonly protocolVersion: number;
  readonly calledAeTitle: string;
  readonly callingAeTitle: string;
  readonly applicationContextName: string;
  readonly presentationContexts: readonly PresentationContextRq[];
  readonly userInformation: UserInformation;
  readonly unknownItems?: readonly RawItem[];
}

export interface AssociateAcPdu {
  readonly type: 'A-ASSOCIATE-AC';
  readonly protocolVersion: number;
  /** PS3.8 9.3.3: reserved, sent back as received in the RQ, not tested on receipt. */
  readonly calledAeTitle: string;
  readonly callingAeTitle: string;
  readonly applicationContextName: string;
  readonly presentationContexts: readonly PresentationContextAc[];
  readonly userInformation: UserInformation;
  readonly unknownItems?: readonly RawItem[];
}

export interface AssociateRjPdu {
  readonly type: 'A-ASSOCIATE-RJ';
  readonly result: number;
  readonly source: number;
  readonly reason: number;
}

/** One Presentation Data Value: a fragment of a command or data set on one presentation context. */
export interface Pdv {
  readonly contextId: number;
  /** Message control header bit 0 (PS3.8 E.2): command (true) or data set (false). */
  readonly isCommand: boolean;
  /** Message control header bit 1: last fragment of the command or data set. */
  readonly isLast: boolean;
  /** A view into received bytes; do not modify. */
  readonly data: Uint8Array;
}

export interface PDataTfPdu {
  readonly type: 'P-DATA-TF';
  readonly pdvs: readonly Pdv[];
}

export interface ReleaseRqPdu {
  readonly type: 'A-RELEASE-RQ';
}

export interface ReleaseRpPdu {
  readonly type: 'A-RELEASE-RP';
}

export interface AbortPdu {
  readonly type: 'A-ABORT';
  readonly source: number;
  readonly reason: number;
}

export type Pdu =
  | AssociateRqPdu
  | AssociateAcPdu
  | AssociateRjPdu
  | PDataTfPdu
  | ReleaseRqPdu
  | ReleaseRpPdu
  | AbortPdu;

/** A PDV to send whose value may be given in pieces (written with writev, never concatenated). */
export interface OutgoingPdv {
  readonly contextId: number;
  readonly isCommand: boolean;
  readonly isLast: boolean;
  readonly data: Uint8Array | readonly Uint8Array[];
}

// ---------------------------------------------------------------------------------------------
// Encoding

const AE_TITLE_LENGTH = 16;

/** PS3.8 9.3.2: 16 bytes of ISO 646, space padded; leading/trailing spaces are not significant. */
export function aeTitleBytes(title: string, what: string, allowEmpty = false): Uint8Array {
  const trimmed = title.trim();
  if (trimmed.length > AE_TITLE_LENGTH || (trimmed.length === 0 && !allowEmpty) || trimmed.includes('\\')) {
    throw new NetworkError('ERR_PDU_ENCODE', `${what} is not a valid AE title: ${JSON.stringify(title)}`);
  }
  const out = new Uint8Array(AE_TITLE_LENGTH).fill(0x20);
  out.set(asciiBytes(trimmed, what));
  return out;
}

function header(type: number, length: number): ByteWriter {
  return new ByteWriter().u8(type).u8(0).u32(length);
}

function encodeAssociate(pdu: AssociateRqPdu | AssociateAcPdu): Uint8Array {
  const isRq = pdu.type === 'A-ASSOCIATE-RQ';
  const body = new ByteWriter()
    .u16(pdu.protocolVersion)
    .u16(0)
    .bytes(aeTitleBytes(pdu.calledAeTitle, 'called AE title', !isRq))
    .bytes(aeTitleBytes(pdu.callingAeTitle, 'calling AE title', !isRq))
    .bytes(new Uint8Array(32))
    .bytes(encodeApplicationContextItem(pdu.applicationContextName));
  if (pdu.type === 'A-ASSOCIATE-RQ') {
    for (const pc of pdu.presentationContexts) body.bytes(encodePresentationContextRqItem(pc));
  } else {
    for (const pc of pdu.presentationContexts) body.bytes(encodePresentationContextAcItem(pc));
  }
  body.bytes(encodeUserInformationItem(pdu.userInformation));
  for (const raw of pdu.unknownItems ?? []) body.bytes(encodeItem(raw.type, raw.data));
  const type = isRq ? PDU_TYPE.AssociateRq : PDU_TYPE.AssociateAc;
  return header(type, body.length).bytes(body.toBytes()).toBytes();
}

function fourBytes(type: number, b1: number, b2: number, b3: number, b4: number): Uint8Array {
  return Uint8Array.of(type, 0, 0, 0, 0, 4, b1, b2, b3, b4);
}

function pdvDataLength(data: Uint8Array | readonly Uint8Array[]): number {
  if (data instanceof Uint8Array) return data.length;
  let n = 0;
  for (const part of data) n += part.length;
  return n;
}

/** Total PDU length (header included) of a P-DATA-TF carrying these PDVs. */
export function pDataTfLength(pdvs: readonly OutgoingPdv[]): number {
  let n = PDU_HEADER_LENGTH;
  for (const pdv of pdvs) n += PDV_HEADER_LENGTH + pdvDataLength(pdv.data);
  return n;
}

/**
 * P-DATA-TF as a list of chunks to write in order (with cork/writev): the PDU and PDV headers are
 * small fresh buffers, the values are the caller's views, never copied.
 */
export function encodePDataTfChunks(pdvs: readonly OutgoingPdv[]): Uint8Array[] {
  const total = pDataTfLength(pdvs) - PDU_HEADER_LENGTH;
  const chunks: Uint8Array[] = [];
  // Headers are written into small buffers from Node's pool (one per PDV, the first with the PDU
  // header): this runs for every PDU we send.
  for (const [i, pdv] of pdvs.entries()) {
    if (!Number.isInteger(pdv.contextId) || pdv.contextId < 1 || pdv.contextId > 255) {
      throw new NetworkError('ERR_PDU_ENCODE', `presentation context id ${pdv.contextId} is not in 1..255`);
    }
    const at = i === 0 ? PDU_HEADER_LENGTH : 0;
    const head = Buffer.allocUnsafe(at + PDV_HEADER_LENGTH);
    if (i === 0) writePDataTfHeader(head, total);
    // PS3.8 9.3.5.1: item length (the value plus the 2 bytes below), context id, message control header.
    head.writeUInt32BE(2 + pdvDataLength(pdv.data), at);
    head[at + 4] = pdv.contextId;
    head[at + 5] = (pdv.isCommand ? 0x01 : 0) | (pdv.isLast ? 0x02 : 0);
    chunks.push(head);
    if (pdv.data instanceof Uint8Array) {
      if (pdv.data.length > 0) chunks.push(pdv.data);
    } else {
      for (const part of pdv.data) if (part.length > 0) chunks.push(part);
    }
  }
  if (pdvs.length === 0) {
    const head = Buffer.allocUnsafe(PDU_HEADER_LENGTH);
    writePDataTfHeader(head, total);
    chunks.push(head);
  }
  return chunks;
}

/** PS3.8 9.3.5: PDU type 04H, a reserved byte, the PDU length. */
function writePDataTfHeader(head: Buffer, length: number): void {
  head[0] = PDU_TYPE.PDataTf;
  head[1] = 0;
  head.writeUInt32BE(length, 2);
}

/** The exact bytes of a PDU, header included. */
export function encodePdu(pdu: Pdu): Uint8Array {
  switch (pdu.type) {
    case 'A-ASSOCIATE-RQ':
    case 'A-ASSOCIATE-AC':
      return encodeAssociate(pdu);
    case 'A-ASSOCIATE-RJ':
      return fourBytes(PDU_TYPE.AssociateRj, 0, pdu.result, pdu.source, pdu.reason);
    case 'P-DATA-TF': {
      const w = new ByteWriter();
      for (const chunk of encodePDataTfChunks(pdu.pdvs)) w.bytes(chunk);
      return w.toBytes();
    }
    case 'A-RELEASE-RQ':
      return fourBytes(PDU_TYPE.ReleaseRq, 0, 0, 0, 0);
    case 'A-RELEASE-RP':
      return fourBytes(PDU_TYPE.ReleaseRp, 0, 0, 0, 0);
    case 'A-ABORT':
      return fourBytes(PDU_TYPE.Abort, 0, 0, pdu.source, pdu.reason);
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding

/**
 * AE titles as received: surrounding spaces (and stray NULs) removed. PS3.8 9.3.2 and PS3.5 6.2
 * (VR AE): ISO 646 without control characters and without the backslash; anything else is an
 * invalid PDU parameter value (A-ABORT, PS3.8 9.3.8 reason 6), refused here rather than accepted
 * and then found unencodable when the A-ASSOCIATE-AC echoes it.
 */
function decodeAeTitle(bytes: Uint8Array, what: string): string {
  const text = latin1(bytes).replace(/^[ \0]+|[ \0]+$/g, '');
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x5c) {
      throw pduError(
        'ERR_PDU_INVALID',
        `${what} holds byte 0x${c.toString(16).padStart(2, '0')}, not allowed in an AE title`,
        6,
      );
    }
  }
  return text;
}

function decodeAssociate(kind: 'rq' | 'ac', body: Uint8Array): AssociateRqPdu | AssociateAcPdu {
  if (body.length < ASSOCIATE_FIXED_LENGTH) {
    throw pduError(
      'ERR_PDU_INVALID',
      `A-ASSOCIATE-${kind.toUpperCase()} body is ${body.length} bytes, under 68`,
      6,
    );
  }
  const c = new ByteCursor(body);
  const protocolVersion = c.u16('protocol version');
  c.skip(2, 'reserved');
  const calledAeTitle = decodeAeTitle(c.take(16, 'called AE title'), 'called AE title');
  const callingAeTitle = decodeAeTitle(c.take(16, 'calling AE title'), 'calling AE title');
  c.skip(32, 'reserved');
  const items = decodeVariableItems(c, kind);
  const common = {
    protocolVersion,
    calledAeTitle,
    callingAeTitle,
    applicationContextName: items.applicationContextName ?? '',
    userInformation: items.userInformation ?? {},
    ...(items.unknownItems.length > 0 ? { unknownItems: items.unknownItems } : {}),
  };
  return kind === 'rq'
    ? { type: 'A-ASSOCIATE-RQ', ...common, presentationContexts: items.presentationContextsRq }
    : { type: 'A-ASSOCIATE-AC', ...common, presentationContexts: items.presentationContextsAc };
}

function decodePDataTf(body: Uint8Array): PDataTfPdu {
  const c = new ByteCursor(body);
  const pdvs: Pdv[] = [];
  while (c.remaining > 0) {
    const length = c.u32('PDV item length');
    if (length < 2) throw pduError('ERR_PDU_INVALID', `PDV item length ${length} is under 2`, 6);
    const contextId = c.u8('presentation context id');
    const control = c.u8('message control header');
    const data = c.take(length - 2, 'PDV value');
    pdvs.push({ contextId, isCommand: (control & 0x01) !== 0, isLast: (control & 0x02) !== 0, data });
  }
  return { type: 'P-DATA-TF', pdvs };
}

/** Decodes a PDU from its type and body (the bytes after the header). Throws NetworkError. */
export function decodePduBody(type: number, body: Uint8Array): Pdu {
  switch (type) {
    case PDU_TYPE.AssociateRq:
      return decodeAssociate('rq', body);
    case PDU_TYPE.AssociateAc:
      return decodeAssociate('ac', body);
    case PDU_TYPE.PDataTf:
      return decodePDataTf(body);
  }
  if (type < PDU_TYPE.AssociateRj || type > PDU_TYPE.Abort) {
    throw pduError(
      'ERR_PDU_UNRECOGNIZED',
      `unrecognized PDU type 0x${type.toString(16).padStart(2, '0')}`,
      1,
    );
  }
  if (body.length !== 4) {
    throw pduError('ERR_PDU_INVALID', `PDU type 0x0${type} must have length 4, has ${body.length}`, 6);
  }
  const [, b2 = 0, b3 = 0, b4 = 0] = body;
  switch (type) {
    case PDU_TYPE.AssociateRj:
      return { type: 'A-ASSOCIATE-RJ', result: b2, source: b3, reason: b4 };
    case PDU_TYPE.ReleaseRq:
      return { type: 'A-RELEASE-RQ' };
    case PDU_TYPE.ReleaseRp:
      return { type: 'A-RELEASE-RP' };
    default:
      return { type: 'A-ABORT', source: b3, reason: b4 };
  }
}

/** Decodes exactly one whole PDU (header included). */
export function decodePdu(bytes: Uint8Array): Pdu {
  if (bytes.length < PDU_HEADER_LENGTH)
    throw pduError('ERR_PDU_INVALID', 'PDU shorter than its 6-byte header', 6);
  const c = new ByteCursor(bytes);
  const type = c.u8('PDU type');
  c.skip(1, 'reserved');
  const length = c.u32('PDU length');
  if (length !== bytes.length - PDU_HEADER_LENGTH) {
    throw pduError(
      'ERR_PDU_INVALID',
      `PDU length ${length} does not match the ${bytes.length - 6} bytes given`,
      6,
    );
  }
  return decodePduBody(type, bytes.subarray(PDU_HEADER_LENGTH));
}

/** One line describing a PDU, for logs. */
export function describePdu(pdu: Pdu): string {
  switch (pdu.type) {
    case 'A-ASSOCIATE-RQ':
    case 'A-ASSOCIATE-AC':
      return `${pdu.type} ${pdu.callingAeTitle} -> ${pdu.calledAeTitle}, ${pdu.presentationContexts.length} context(s)`;
    case 'A-ASSOCIATE-RJ':
      return `${pdu.type} result ${pdu.result} source ${pdu.source} reason ${pdu.reason}`;
    case 'P-DATA-TF':
      return `${pdu.type} ${pdu.pdvs.map((p) => `[pc ${p.contextId} ${p.isCommand ? 'cmd' : 'data'}${p.isLast ? ' last' : ''} ${p.data.length}B]`).join(' ')}`;
    case 'A-ABORT':
      return `${pdu.type} source ${pdu.source} reason ${pdu.reason}`;
    default:
      return pdu.type;
  }
}
