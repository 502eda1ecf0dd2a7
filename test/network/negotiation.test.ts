import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  acceptedContextsForRequestor,
  IMPLEMENTATION_CLASS_UID,
  type NegotiationOutcome,
  type NegotiationPolicy,
  negotiateAsAcceptor,
} from '../../src/network/negotiation.js';
import type { AssociateRqPdu } from '../../src/network/pdu.js';
import { a } from './bytes-helpers.js';

const VERIFICATION = '1.2.840.10008.1.1';
const CT = '1.2.840.10008.5.1.4.1.1.2';
const MR = '1.2.840.10008.5.1.4.1.1.4';
const FIND = '1.2.840.10008.5.1.4.1.2.1.1';
const ILE = '1.2.840.10008.1.2';
const ELE = '1.2.840.10008.1.2.1';
const JPEG = '1.2.840.10008.1.2.4.50';

const POLICY: NegotiationPolicy = {
  aeTitle: 'PACS',
  maxPduLength: 32768,
  abstractSyntaxes: [
    { abstractSyntax: VERIFICATION, transferSyntaxes: [ILE] },
    { abstractSyntax: CT, transferSyntaxes: [ELE, ILE], requestorRoles: { scu: true, scp: true } },
    { abstractSyntax: MR, transferSyntaxes: [ELE] },
    { abstractSyntax: FIND, transferSyntaxes: [ILE], extendedNegotiation: (req) => req.subarray(0, 1) },
  ],
};

function rq(overrides: Partial<AssociateRqPdu> = {}): AssociateRqPdu {
  return {
    type: 'A-ASSOCIATE-RQ',
    protocolVersion: 1,
    calledAeTitle: 'PACS',
    callingAeTitle: 'MODALITY',
    applicationContextName: '1.2.840.10008.3.1.1.1',
    presentationContexts: [{ id: 1, abstractSyntax: VERIFICATION, transferSyntaxes: [ILE] }],
    userInformation: { maxLength: 16384 },
    ...overrides,
  };
}

function accepted(outcome: NegotiationOutcome) {
  assert.equal(outcome.kind, 'accept', outcome.kind === 'reject' ? outcome.why : '');
  if (outcome.kind !== 'accept') throw new Error('unreachable');
  return outcome;
}

function rejection(outcome: NegotiationOutcome) {
  assert.equal(outcome.kind, 'reject');
  if (outcome.kind !== 'reject') throw new Error('unreachable');
  return { by: outcome.by, ...outcome.rj };
}

const CTX = { activeAssociations: 0, peerHost: '::ffff:10.1.2.3' };

describe('acceptor negotiation: association level', () => {
  it('accepts and answers our max length, implementation identity, and no async window unless asked', () => {
    const { ac } = accepted(negotiateAsAcceptor(rq(), POLICY, CTX));
    assert.equal(ac.calledAeTitle, 'PACS');
    assert.equal(ac.callingAeTitle, 'MODALITY');
    assert.equal(ac.userInformation.maxLength, 32768);
    assert.equal(ac.userInformation.implementationClassUid, IMPLEMENTATION_CLASS_UID);
    assert.equal(ac.userInformation.asyncOperationsWindow, undefined);
  });

  it('answers an asynchronous operations window with 1/1', () => {
    const request = rq({
      userInformation: {
        maxLength: 0,
        asyncOperationsWindow: { maxOperationsInvoked: 5, maxOperationsPerformed: 0 },
      },
    });
    const { ac } = accepted(negotiateAsAcceptor(request, POLICY, CTX));
    assert.deepEqual(ac.userInformation.asyncOperationsWindow, {
      maxOperationsInvoked: 1,
      maxOperationsPerformed: 1,
    });
  });

  const rejections: Array<[string, AssociateRqPdu, Partial<NegotiationPolicy>, number, object]> = [
    [
      'called AE title not recognised',
      rq({ calledAeTitle: 'OTHER' }),
      {},
      0,
      { by: 'user', result: 1, source: 1, reason: 7 },
    ],
    [
      'calling AE title not allowed',
      rq(),
      { allowedCallers: [{ aeTitle: 'WS1' }] },
      0,
      { by: 'user', result: 1, source: 1, reason: 3 },
    ],
    [
      'calling AE title allowed only from another host',
      rq(),
      { allowedCallers: [{ aeTitle: 'MODALITY', host: '10.9.9.9' }] },
      0,
      { by: 'user', result: 1, source: 1, reason: 3 },
    ],
    [
      'application context not supported',
      rq({ applicationContextName: '1.2.3' }),
      {},
      0,
      { by: 'user', result: 1, source: 1, reason: 2 },
    ],
    [
      'local limit exceeded',
      rq(),
      { maxAssociations: 2 },
      2,
      { by: 'provider', result: 2, source: 3, reason: 2 },
    ],
    [
      'protocol version bit 0 not set',
      rq({ protocolVersion: 2 }),
      {},
      0,
      { by: 'provider', result: 1, source: 2, reason: 2 },
    ],
    [
      'no presentation context acceptable',
      rq({ presentationContexts: [{ id: 1, abstractSyntax: '1.2.3', transferSyntaxes: [ILE] }] }),
      {},
      0,
      { by: 'user', result: 1, source: 1, reason: 1 },
    ],
    [
      'user identity refused',
      rq({
        userInformation: {
          userIdentity: {
            identityType: 1,
            positiveResponseRequested: false,
            primaryField: a('eve'),
            secondaryField: new Uint8Array(0),
          },
        },
      }),
      { verifyUserIdentity: () => ({ accepted: false }) },
      0,
      { by: 'user', result: 1, source: 1, reason: 1 },
    ],
  ];
  for (const [name, request, policy, active, expected] of rejections) {
    it(`rejects: ${name}`, () => {
      const outcome = negotiateAsAcceptor(
        request,
        { ...POLICY, ...policy },
        { ...CTX, activeAssociations: active },
      );
      assert.deepEqual(rejection(outcome), { type: 'A-ASSOCIATE-RJ', ...expected });
    });
  }

  it('accepts any called AE title in promiscuous mode, and an allowed caller from its host', () => {
    const policy = {
      ...POLICY,
      promiscuous: true,
      allowedCallers: [{ aeTitle: 'MODALITY', host: '10.1.2.3' }],
    };
    accepted(negotiateAsAcceptor(rq({ calledAeTitle: 'ANYTHING' }), policy, CTX));
  });

  it('accepts below the association limit', () => {
    accepted(negotiateAsAcceptor(rq(), { ...POLICY, maxAssociations: 2 }, { ...CTX, activeAssociations: 1 }));
  });

  it('answers a user identity with the server response when one is requested', () => {
    const request = rq({
      userInformation: {
        userIdentity: {
          identityType: 2,
          positiveResponseRequested: true,
          primaryField: a('alice'),
          secondaryField: a('pw'),
        },
      },
    });
    let seen: { aeTitle: string; host: string | undefined } | undefined;
    const policy: NegotiationPolicy = {
      ...POLICY,
      verifyUserIdentity: (id, caller) => {
        seen = caller;
        return id.secondaryField.length === 2 ? { accepted: true } : { accepted: false };
      },
    };
    const { ac } = accepted(negotiateAsAcceptor(request, policy, CTX));
    assert.deepEqual(seen, { aeTitle: 'MODALITY', host: '10.1.2.3' });
    assert.deepEqual(ac.userInformation.userIdentityResponse, { serverResponse: new Uint8Array(0) });
  });
});

describe('acceptor negotiation: presentation contexts', () => {
  it('gives each context its result: acceptance, user-rejection, no-reason, abstract and transfer syntax not supported', () => {
    const request = rq({
      presentationContexts: [
        { id: 1, abstractSyntax: VERIFICATION, transferSyntaxes: [ILE] }, // acceptance
        { id: 3, abstractSyntax: CT, transferSyntaxes: [ILE, ELE] }, // acceptance, our preference ELE
        { id: 5, abstractSyntax: '1.2.3.4.5', transferSyntaxes: [ILE] }, // abstract syntax not supported
        { id: 7, abstractSyntax: MR, transferSyntaxes: [ILE, JPEG] }, // transfer syntaxes not supported
        { id: 8, abstractSyntax: VERIFICATION, transferSyntaxes: [ILE] }, // even id: no-reason
        { id: 9, abstractSyntax: VERIFICATION, transferSyntaxes: [] }, // no transfer syntax: no-reason
        { id: 1, abstractSyntax: VERIFICATION, transferSyntaxes: [ILE] }, // duplicate id: no-reason
        { id: 11, abstractSyntax: MR, transferSyntaxes: [ELE] }, // requestor asks only for SCP role: user-rejection
      ],
      userInformation: { maxLength: 0, roleSelections: [{ sopClassUid: MR, scuRole: false, scpRole: true }] },
    });
    const outcome = accepted(negotiateAsAcceptor(request, POLICY, CTX));
    assert.deepEqual(
      outcome.ac.presentationContexts.map((pc) => [pc.id, pc.result, pc.transferSyntax]),
      [
        [1, 0, ILE],
        [3, 0, ELE],
        [5, 3, ''],
        [7, 4, ''],
        [8, 2, ''],
        [9, 2, ''],
        [1, 2, ''],
        [11, 1, ''],
      ],
    );
    assert.deepEqual(outcome.contexts, [
      { id: 1, abstractSyntax: VERIFICATION, transferSyntax: ILE, scu: false, scp: true },
      { id: 3, abstractSyntax: CT, transferSyntax: ELE, scu: false, scp: true },
    ]);
    // The MR role request is answered with both roles refused.
    assert.deepEqual(outcome.ac.userInformation.roleSelections, [
      { sopClassUid: MR, scuRole: false, scpRole: false },
    ]);
  });

  it('accepts the SCP role for a C-GET requestor where the policy allows it', () => {
    const request = rq({
      presentationContexts: [{ id: 1, abstractSyntax: CT, transferSyntaxes: [ELE] }],
      userInformation: { roleSelections: [{ sopClassUid: CT, scuRole: true, scpRole: true }] },
    });
    const outcome = accepted(negotiateAsAcceptor(request, POLICY, CTX));
    assert.deepEqual(outcome.ac.userInformation.roleSelections, [
      { sopClassUid: CT, scuRole: true, scpRole: true },
    ]);
    assert.deepEqual(outcome.contexts[0], {
      id: 1,
      abstractSyntax: CT,
      transferSyntax: ELE,
      scu: true,
      scp: true,
    });
    // The requestor reads the same roles from the AC, from its side.
    assert.deepEqual(acceptedContextsForRequestor(request, outcome.ac), [
      { id: 1, abstractSyntax: CT, transferSyntax: ELE, scu: true, scp: true },
    ]);
  });

  it('answers SOP class extended negotiation only where the policy has an answer', () => {
    const request = rq({
      presentationContexts: [{ id: 1, abstractSyntax: FIND, transferSyntaxes: [ILE] }],
      userInformation: {
        sopClassExtendedNegotiations: [
          { sopClassUid: FIND, applicationInformation: Uint8Array.of(1, 1, 1) },
          { sopClassUid: CT, applicationInformation: Uint8Array.of(1) },
        ],
      },
    });
    const { ac } = accepted(negotiateAsAcceptor(request, POLICY, CTX));
    assert.deepEqual(ac.userInformation.sopClassExtendedNegotiations, [
      { sopClassUid: FIND, applicationInformation: Uint8Array.of(1) },
    ]);
  });

  it('on the requestor side, ignores contexts accepted with a transfer syntax it did not propose', () => {
    const request = rq({
      presentationContexts: [{ id: 1, abstractSyntax: VERIFICATION, transferSyntaxes: [ILE] }],
    });
    const { ac } = accepted(negotiateAsAcceptor(request, POLICY, CTX));
    const tampered = { ...ac, presentationContexts: [{ id: 1, result: 0, transferSyntax: ELE }] };
    assert.deepEqual(acceptedContextsForRequestor(request, tampered), []);
  });
});
