import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NetworkError } from '../../src/network/errors.js';
import type { Pdu } from '../../src/network/pdu.js';
import { PduReader } from '../../src/network/pdu-reader.js';
import { cat, h } from './bytes-helpers.js';
import { GOLDEN } from './golden-pdus.js';

const STREAM = cat(...GOLDEN.map((g) => g.bytes));
const EXPECTED = GOLDEN.map((g) => g.pdu);

function drain(reader: PduReader, out: Pdu[]): void {
  for (let pdu = reader.next(); pdu !== null; pdu = reader.next()) out.push(pdu);
}

function newReader(): PduReader {
  return new PduReader({ maxPDataLength: 16384 });
}

function assertRefused(fn: () => unknown, code: string, reason: number): void {
  assert.throws(
    fn,
    (e: unknown) => e instanceof NetworkError && e.code === code && e.abort?.reason === reason,
  );
}

describe('PduReader', () => {
  it('reads every golden PDU from one chunk', () => {
    const reader = newReader();
    reader.push(STREAM);
    const out: Pdu[] = [];
    drain(reader, out);
    assert.deepEqual(out, EXPECTED);
    assert.equal(reader.bufferedBytes, 0);
  });

  it('reads the same PDUs with the stream split in two at every byte position', () => {
    for (let cut = 0; cut <= STREAM.length; cut++) {
      const reader = newReader();
      const out: Pdu[] = [];
      reader.push(STREAM.subarray(0, cut));
      drain(reader, out);
      reader.push(STREAM.subarray(cut));
      drain(reader, out);
      assert.deepEqual(out, EXPECTED, `split at ${cut}`);
    }
  });

  it('reads the same PDUs fed one byte at a time', () => {
    const reader = newReader();
    const out: Pdu[] = [];
    for (let i = 0; i < STREAM.length; i++) {
      reader.push(STREAM.subarray(i, i + 1));
      drain(reader, out);
    }
    assert.deepEqual(out, EXPECTED);
  });

  it('decodes a PDU inside one chunk from a view of that chunk (no copy)', () => {
    const reader = newReader();
    const chunk = cat(h('0000'), h('04 00 00000008 00000004 05 02 abcd'));
    reader.push(chunk.subarray(2));
    const pdu = reader.next();
    assert.equal(pdu?.type, 'P-DATA-TF');
    assert.equal(pdu.type === 'P-DATA-TF' && pdu.pdvs[0]?.data.buffer, chunk.buffer);
  });

  it('refuses a P-DATA-TF announcing 4 GB from its header alone, without buffering', () => {
    const reader = newReader();
    reader.push(h('04 00 ffffffff'));
    const before = process.memoryUsage().arrayBuffers;
    assertRefused(() => reader.next(), 'ERR_PDU_TOO_LARGE', 6);
    assert.ok(process.memoryUsage().arrayBuffers - before < 1024 * 1024);
    // Once failed, the reader stays failed.
    reader.push(new Uint8Array(100));
    assertRefused(() => reader.next(), 'ERR_PDU_TOO_LARGE', 6);
  });

  it('refuses an A-ASSOCIATE-RQ announcing 4 GB', () => {
    const reader = newReader();
    reader.push(h('01 00 ffffffff'));
    assertRefused(() => reader.next(), 'ERR_PDU_TOO_LARGE', 6);
  });

  it('accepts a P-DATA-TF of exactly the maximum and refuses one byte more', () => {
    const ok = new PduReader({ maxPDataLength: 8 });
    ok.push(h('04 00 00000008 00000004 01 00 0102'));
    assert.equal(ok.next()?.type, 'P-DATA-TF');
    const tooBig = new PduReader({ maxPDataLength: 8 });
    tooBig.push(h('04 00 00000009'));
    assertRefused(() => tooBig.next(), 'ERR_PDU_TOO_LARGE', 6);
  });

  it('refuses an unknown PDU type from its header (unrecognized-PDU)', () => {
    const reader = newReader();
    reader.push(h('47 45 54 20 2f 20')); // "GET / " : an HTTP client on the DICOM port
    assertRefused(() => reader.next(), 'ERR_PDU_UNRECOGNIZED', 1);
  });

  it('refuses a fixed-length PDU with another length from its header', () => {
    const reader = newReader();
    reader.push(h('07 00 00010000'));
    assertRefused(() => reader.next(), 'ERR_PDU_INVALID', 6);
  });

  it('returns null until the whole PDU is there', () => {
    const reader = newReader();
    reader.push(h('05 00 0000'));
    assert.equal(reader.next(), null);
    reader.push(h('0004 0000'));
    assert.equal(reader.next(), null);
    reader.push(h('0000'));
    assert.deepEqual(reader.next(), { type: 'A-RELEASE-RQ' });
    assert.equal(reader.next(), null);
  });
});
