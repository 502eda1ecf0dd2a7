/**
 * The acceptor's admission hook (NegotiationPolicy.admit): asynchronous, awaited in Sta3 after the
 * A-ASSOCIATE indication; its identity is carried by the association; a refusal is A-ASSOCIATE-RJ
 * (permanent, service-user, with its reason); a positive response goes in the A-ASSOCIATE-AC; a
 * peer that leaves while the hook runs ends quietly; a hook that throws rejects, the server goes on.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { AdmissionRequest, AdmissionVerdict } from '../../src/network/negotiation.js';
import { h } from './bytes-helpers.js';
import { rawAssociateRq, rawClient, startAcceptor, unwrapOk, waitFor } from './loopback-helpers.js';

const later = <T>(ms: number, value: T): Promise<T> =>
  new Promise((resolve) => setTimeout(() => resolve(value), ms));

describe('admission hook', () => {
  const harnesses: Array<{ close(): Promise<void> }> = [];
  after(async () => {
    for (const hx of harnesses) await hx.close();
  });

  it('waits for an asynchronous verdict and carries its identity with the association', async () => {
    const seen: AdmissionRequest[] = [];
    const hx = await startAcceptor({
      admit: (request) => {
        seen.push(request);
        return later(50, { accepted: true, identity: { who: request.callingAeTitle } });
      },
    });
    harnesses.push(hx);
    const assoc = unwrapOk(await hx.request());
    const accepted = await hx.nextAccepted();
    assert.deepEqual(accepted.identity, { who: 'SCU' });
    assert.equal(seen[0]?.peerHost, '127.0.0.1');
    assert.equal(seen[0]?.peerCertificateSubject, undefined);
    assert.equal(seen[0]?.userIdentity, undefined);
    await assoc.release();
  });

  it('refuses with A-ASSOCIATE-RJ (permanent, service-user, calling AE title not recognized or no reason)', async () => {
    let verdict: AdmissionVerdict = { accepted: false, reason: 'calling-ae-not-recognized', why: 'unknown' };
    const hx = await startAcceptor({ admit: async () => verdict });
    harnesses.push(hx);
    const r = await hx.request();
    assert.deepEqual(!r.ok && r.error.reject, { result: 1, source: 1, reason: 3 });
    verdict = { accepted: false, reason: 'no-reason-given', why: 'bad password' };
    const r2 = await hx.request();
    assert.deepEqual(!r2.ok && r2.error.reject, { result: 1, source: 1, reason: 1 });
  });

  it('sends the user identity server response in the A-ASSOCIATE-AC when a positive response was asked', async () => {
    const hx = await startAcceptor({
      admit: async (request) => {
        assert.equal(request.userIdentity?.identityType, 2);
        return { accepted: true, identity: 'alice', userIdentityResponse: h('6f6b') };
      },
    });
    harnesses.push(hx);
    const userIdentity = {
      identityType: 2,
      positiveResponseRequested: true,
      primaryField: h('61'),
      secondaryField: h('62'),
    };
    const assoc = unwrapOk(await hx.request({ userIdentity }));
    assert.equal(
      Buffer.from(assoc.ac.userInformation.userIdentityResponse?.serverResponse ?? []).toString('hex'),
      '6f6b',
    );
    await assoc.release();
    const quiet = unwrapOk(
      await hx.request({ userIdentity: { ...userIdentity, positiveResponseRequested: false } }),
    );
    assert.equal(quiet.ac.userInformation.userIdentityResponse, undefined);
    await quiet.release();
  });

  it('ends quietly when the peer leaves while the hook runs, and rejects when the hook throws', async () => {
    let admitted = 0;
    const hx = await startAcceptor({
      admit: async (request) => {
        if (request.callingAeTitle === 'BOOM') throw new Error('registry down');
        await later(100, undefined);
        admitted++;
        return { accepted: true };
      },
    });
    harnesses.push(hx);
    const raw = await rawClient(hx.port);
    raw.socket.write(rawAssociateRq());
    raw.socket.destroy();
    await waitFor(() => admitted === 1);
    await waitFor(() => hx.acceptor.activeAssociations === 0);
    assert.equal(hx.accepted.length, 0);
    const boom = await hx.request({ callingAeTitle: 'BOOM' });
    assert.deepEqual(!boom.ok && boom.error.reject, { result: 1, source: 1, reason: 1 });
    const fine = unwrapOk(await hx.request());
    await fine.release();
  });
});
