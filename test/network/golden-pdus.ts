/** Golden PDUs written by hand from PS3.8 9.3, each with a comment saying what it decodes to. */
import type { AssociateAcPdu, AssociateRqPdu, Pdu } from '../../src/network/pdu.js';
import { a, ae, cat, h } from './bytes-helpers.js';

export const APP_CONTEXT = '1.2.840.10008.3.1.1.1';
export const VERIFICATION = '1.2.840.10008.1.1';
export const IMPLICIT_LE = '1.2.840.10008.1.2';
export const CT_IMAGE = '1.2.840.10008.5.1.4.1.1.2';
const DCMTK_IMPL = '1.2.276.0.7230010.3.0.3.6.4';

// A-ASSOCIATE-RQ from ECHOSCU to ANY-SCP: one presentation context (id 1, Verification, Implicit VR
// LE; both UIDs are 17 characters, odd, and sent unpadded), max length 16384, DCMTK's implementation
// class UID and version name. PDU length 205 = 68 fixed + 25 + 50 + 62.
const RQ_BYTES = cat(
  h('01 00 000000cd 0001 0000'),
  ae('ANY-SCP'),
  ae('ECHOSCU'),
  new Uint8Array(32),
  h('10 00 0015'),
  a(APP_CONTEXT),
  h('20 00 002e 01 00 00 00'),
  h('30 00 0011'),
  a(VERIFICATION),
  h('40 00 0011'),
  a(IMPLICIT_LE),
  h('50 00 003a'),
  h('51 00 0004 00004000'),
  h('52 00 001b'),
  a(DCMTK_IMPL),
  h('55 00 000f'),
  a('OFFIS_DCMTK_364'),
);
export const RQ: AssociateRqPdu = {
  type: 'A-ASSOCIATE-RQ',
  protocolVersion: 1,
  calledAeTitle: 'ANY-SCP',
  callingAeTitle: 'ECHOSCU',
  applicationContextName: APP_CONTEXT,
  presentationContexts: [{ id: 1, abstractSyntax: VERIFICATION, transferSyntaxes: [IMPLICIT_LE] }],
  userInformation: {
    maxLength: 16384,
    implementationClassUid: DCMTK_IMPL,
    implementationVersionName: 'OFFIS_DCMTK_364',
  },
};

// A-ASSOCIATE-AC: context 1 accepted with Implicit VR LE; context 3 rejected (3, abstract syntax not
// supported) with an empty transfer syntax sub-item; max length 0 (unlimited); async window 1/1; role
// selection for CT Image Storage (25-char UID) with SCU role 0, SCP role 1; user identity server
// response "ok". PDU length 68 + 25 + 29 + 12 + 92 = 226 (0xe2).
const AC_BYTES = cat(
  h('02 00 000000e2 0001 0000'),
  ae('ANY-SCP'),
  ae('ECHOSCU'),
  new Uint8Array(32),
  h('10 00 0015'),
  a(APP_CONTEXT),
  h('21 00 0019 01 00 00 00'),
  h('40 00 0011'),
  a(IMPLICIT_LE),
  h('21 00 0008 03 00 03 00'),
  h('40 00 0000'),
  h('50 00 0058'),
  h('51 00 0004 00000000'),
  h('52 00 001b'),
  a(DCMTK_IMPL),
  h('53 00 0004 0001 0001'),
  h('54 00 001d 0019'),
  a(CT_IMAGE),
  h('00 01'),
  h('59 00 0004 0002'),
  a('ok'),
);
const AC: AssociateAcPdu = {
  type: 'A-ASSOCIATE-AC',
  protocolVersion: 1,
  calledAeTitle: 'ANY-SCP',
  callingAeTitle: 'ECHOSCU',
  applicationContextName: APP_CONTEXT,
  presentationContexts: [
    { id: 1, result: 0, transferSyntax: IMPLICIT_LE },
    { id: 3, result: 3, transferSyntax: '' },
  ],
  userInformation: {
    maxLength: 0,
    implementationClassUid: DCMTK_IMPL,
    asyncOperationsWindow: { maxOperationsInvoked: 1, maxOperationsPerformed: 1 },
    roleSelections: [{ sopClassUid: CT_IMAGE, scuRole: false, scpRole: true }],
    userIdentityResponse: { serverResponse: a('ok') },
  },
};

// A-ASSOCIATE-RQ with the negotiation sub-items: SOP class extended negotiation (0x56) for Patient
// Root Find (27 chars) with 3 bytes of application information; SOP class common extended
// negotiation (0x57: second byte is the sub-item version 0) for CT Image Storage, service class
// Storage, related general class Enhanced CT; user identity (0x58) type 2, positive response
// requested, "alice"/"secret". No presentation context. PDU length 68 + 25 + 4 + 146 = 243 (0xf3).
const PATIENT_ROOT_FIND = '1.2.840.10008.5.1.4.1.2.1.1';
const STORAGE_SERVICE = '1.2.840.10008.4.2';
const ENHANCED_CT = '1.2.840.10008.5.1.4.1.1.2.1';
const RQ_NEG_BYTES = cat(
  h('01 00 000000f3 0001 0000'),
  ae('PACS'),
  ae('WS1'),
  new Uint8Array(32),
  h('10 00 0015'),
  a(APP_CONTEXT),
  h('50 00 0092'),
  h('51 00 0004 00010000'),
  h('56 00 0020 001b'),
  a(PATIENT_ROOT_FIND),
  h('01 01 00'),
  h('57 00 004d 0019'),
  a(CT_IMAGE),
  h('0011'),
  a(STORAGE_SERVICE),
  h('001d 001b'),
  a(ENHANCED_CT),
  h('58 00 0011 02 01 0005'),
  a('alice'),
  h('0006'),
  a('secret'),
);
const RQ_NEG: AssociateRqPdu = {
  type: 'A-ASSOCIATE-RQ',
  protocolVersion: 1,
  calledAeTitle: 'PACS',
  callingAeTitle: 'WS1',
  applicationContextName: APP_CONTEXT,
  presentationContexts: [],
  userInformation: {
    maxLength: 65536,
    sopClassExtendedNegotiations: [{ sopClassUid: PATIENT_ROOT_FIND, applicationInformation: h('01 01 00') }],
    sopClassCommonExtendedNegotiations: [
      { sopClassUid: CT_IMAGE, serviceClassUid: STORAGE_SERVICE, relatedGeneralSopClassUids: [ENHANCED_CT] },
    ],
    userIdentity: {
      identityType: 2,
      positiveResponseRequested: true,
      primaryField: a('alice'),
      secondaryField: a('secret'),
    },
  },
};

// A-ASSOCIATE-RJ: rejected-permanent (1), service-user (1), called-AE-title-not-recognized (7).
const RJ_BYTES = h('03 00 00000004 00 01 01 07');
// P-DATA-TF with two PDVs: context 1, command + last (0x03), 4 bytes; context 1, data not last (0x00),
// 3 bytes (odd length). PDV item lengths count the context id and control header bytes.
const PDATA_BYTES = h('04 00 00000013  00000006 01 03 01020304  00000005 01 00 aabbcc');
const RELEASE_RQ_BYTES = h('05 00 00000004 00000000');
const RELEASE_RP_BYTES = h('06 00 00000004 00000000');
// A-ABORT from the service-provider (2), invalid-PDU-parameter value (6).
const ABORT_BYTES = h('07 00 00000004 00 00 02 06');

export const GOLDEN: ReadonlyArray<{ name: string; bytes: Uint8Array; pdu: Pdu }> = [
  { name: 'A-ASSOCIATE-RQ', bytes: RQ_BYTES, pdu: RQ },
  {
    name: 'A-ASSOCIATE-AC (rejected context, role selection, async window, identity response)',
    bytes: AC_BYTES,
    pdu: AC,
  },
  {
    name: 'A-ASSOCIATE-RQ (extended negotiation, common extended negotiation, user identity)',
    bytes: RQ_NEG_BYTES,
    pdu: RQ_NEG,
  },
  {
    name: 'A-ASSOCIATE-RJ',
    bytes: RJ_BYTES,
    pdu: { type: 'A-ASSOCIATE-RJ', result: 1, source: 1, reason: 7 },
  },
  {
    name: 'P-DATA-TF',
    bytes: PDATA_BYTES,
    pdu: {
      type: 'P-DATA-TF',
      pdvs: [
        { contextId: 1, isCommand: true, isLast: true, data: h('01020304') },
        { contextId: 1, isCommand: false, isLast: false, data: h('aabbcc') },
      ],
    },
  },
  { name: 'A-RELEASE-RQ', bytes: RELEASE_RQ_BYTES, pdu: { type: 'A-RELEASE-RQ' } },
  { name: 'A-RELEASE-RP', bytes: RELEASE_RP_BYTES, pdu: { type: 'A-RELEASE-RP' } },
  { name: 'A-ABORT', bytes: ABORT_BYTES, pdu: { type: 'A-ABORT', source: 2, reason: 6 } },
];
