import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NetworkError } from '../../src/network/errors.js';
import { decodePdu, encodePDataTfChunks, encodePdu } from '../../src/network/pdu.js';
import { a, ae, cat, h, toHex } from './bytes-helpers.js';
import { APP_CONTEXT, GOLDEN, IMPLICIT_LE, RQ, VERIFICATION } from './golden-pdus.js';

function assertNetworkError(fn: () => unknown, code: string, reason?: number): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof NetworkError, `expected NetworkError, got ${String(e)}`);
    assert.equal(e.code, code);
    if (reason !== undefined) assert.equal(e.abort?.reason, reason);
    return true;
  });
}

describe('PDU codec golden bytes', () => {
  for (const g of GOLDEN) {
    it(`encodes ${g.name} to the exact bytes`, () => {
      assert.equal(toHex(encodePdu(g.pdu)), toHex(g.bytes));
    });
    it(`decodes ${g.name}`, () => {
      assert.deepEqual(decodePdu(g.bytes), g.pdu);
    });
    it(`round-trips ${g.name}`, () => {
      assert.deepEqual(decodePdu(encodePdu(decodePdu(g.bytes))), g.pdu);
    });
  }
});

describe('PDU codec details', () => {
  it('skips unknown items and sub-items, keeping their bytes', () => {
    // RQ_NEG with an unknown top-level item 0x77 (3 bytes) appended, and the user information item
    // replaced by one that adds an unknown sub-item 0x5f (1 byte) after the max length.
    const withUnknown = cat(
      h('01 00 00000075 0001 0000'),
      ae('PACS'),
      ae('WS1'),
      new Uint8Array(32),
      h('10 00 0015'),
      a(APP_CONTEXT),
      h('50 00 000d'),
      h('51 00 0004 00010000'),
      h('5f 00 0001 2a'),
      h('77 00 0003 010203'),
    );
    const pdu = decodePdu(withUnknown);
    assert.equal(pdu.type, 'A-ASSOCIATE-RQ');
    assert.deepEqual(pdu, {
      type: 'A-ASSOCIATE-RQ',
      protocolVersion: 1,
      calledAeTitle: 'PACS',
      callingAeTitle: 'WS1',
      applicationContextName: APP_CONTEXT,
      presentationContexts: [],
      userInformation: { maxLength: 65536, unknownSubItems: [{ type: 0x5f, data: h('2a') }] },
      unknownItems: [{ type: 0x77, data: h('010203') }],
    });
    assert.equal(toHex(encodePdu(pdu)), toHex(withUnknown));
  });

  it('accepts UIDs padded with a trailing NUL by lenient peers', () => {
    // Application context name sent as 22 bytes: the UID and a NUL pad.
    const padded = cat(
      h('01 00 0000006a 0001 0000'),
      ae('PACS'),
      ae('WS1'),
      new Uint8Array(32),
      h('10 00 0016'),
      a(APP_CONTEXT),
      h('00'),
      h('50 00 0008 51 00 0004 00004000'),
    );
    const pdu = decodePdu(padded);
    assert.equal(pdu.type === 'A-ASSOCIATE-RQ' && pdu.applicationContextName, APP_CONTEXT);
  });

  it('writes P-DATA values as separate chunks without copying them', () => {
    const value = h('0102030405');
    const chunks = encodePDataTfChunks([
      { contextId: 3, isCommand: false, isLast: true, data: [value.subarray(0, 2), value.subarray(2)] },
    ]);
    assert.equal(chunks.length, 3);
    assert.equal(chunks[1]?.buffer, value.buffer);
    assert.equal(toHex(cat(...chunks)), '04000000000b000000070302' + '0102030405');
  });

  it('refuses to encode invalid values', () => {
    assertNetworkError(
      () => encodePdu({ ...RQ, callingAeTitle: 'THIS-AE-TITLE-IS-TOO-LONG' }),
      'ERR_PDU_ENCODE',
    );
    assertNetworkError(() => encodePdu({ ...RQ, calledAeTitle: '   ' }), 'ERR_PDU_ENCODE');
    assertNetworkError(
      () =>
        encodePdu({
          ...RQ,
          presentationContexts: [{ id: 1, abstractSyntax: '1.2.x', transferSyntaxes: [IMPLICIT_LE] }],
        }),
      'ERR_PDU_ENCODE',
    );
    assertNetworkError(
      () =>
        encodePdu({
          ...RQ,
          presentationContexts: [{ id: 256, abstractSyntax: VERIFICATION, transferSyntaxes: [IMPLICIT_LE] }],
        }),
      'ERR_PDU_ENCODE',
    );
  });

  it('rejects malformed PDUs with the A-ABORT reason to send', () => {
    // Unknown PDU type 0x08: unrecognized-PDU (1).
    assertNetworkError(() => decodePdu(h('08 00 00000004 00000000')), 'ERR_PDU_UNRECOGNIZED', 1);
    // A-RELEASE-RQ with length 5: invalid-PDU-parameter value (6).
    assertNetworkError(() => decodePdu(h('05 00 00000005 0000000000')), 'ERR_PDU_INVALID', 6);
    // PDV item length 1 (must count at least the context id and control header).
    assertNetworkError(() => decodePdu(h('04 00 00000005 00000001 01')), 'ERR_PDU_INVALID', 6);
    // PDV item announcing more bytes than the PDU holds.
    assertNetworkError(() => decodePdu(h('04 00 00000008 00000009 01 00 0102')), 'ERR_PDU_INVALID', 6);
    // A-ASSOCIATE-RQ whose item length runs past the PDU.
    const truncated = cat(
      h('01 00 00000048 0001 0000'),
      ae('PACS'),
      ae('WS1'),
      new Uint8Array(32),
      h('10 00 0015'),
    );
    assertNetworkError(() => decodePdu(truncated), 'ERR_PDU_INVALID', 6);
    // A-ASSOCIATE-RQ shorter than its fixed fields.
    assertNetworkError(() => decodePdu(h('01 00 00000002 0001')), 'ERR_PDU_INVALID', 6);
  });
});
