/**
 * The one P-DATA writer (src/network/pdata-writer.ts): what is written is cut into PDVs that fit
 * the peer's maximum length (PS3.8 9.3.5: the length counts the 6-byte PDV header), the last one
 * flagged; values are views of the written buffers; `write` waits for the transport (backpressure).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { maxPdvValueLength, PDataWriter } from '../../src/network/pdata-writer.js';
import type { OutgoingPdv } from '../../src/network/pdu.js';

function bytesOf(pdv: OutgoingPdv): Uint8Array[] {
  return pdv.data instanceof Uint8Array ? [pdv.data] : [...pdv.data];
}

function lengthOf(pdv: OutgoingPdv): number {
  return bytesOf(pdv).reduce((n, b) => n + b.length, 0);
}

function joined(pdvs: readonly OutgoingPdv[]): Buffer {
  return Buffer.concat(pdvs.flatMap(bytesOf));
}

function counting(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = i & 0xff;
  return out;
}

describe('maxPdvValueLength', () => {
  it("is the peer's maximum less the PDV header, kept even, and our own limit when the peer has none", () => {
    assert.equal(maxPdvValueLength(16384, 262144), 16378);
    assert.equal(maxPdvValueLength(16385, 262144), 16378, 'odd room rounds down to even');
    assert.equal(maxPdvValueLength(0, 262144), 262138, 'PS3.8 D.1: 0 means no limit');
    assert.equal(maxPdvValueLength(1048576, 262144), 262138, 'our limit when it is smaller');
    assert.equal(maxPdvValueLength(7, 262144), 2, 'never under 2');
  });
});

describe('PDataWriter', () => {
  it("cuts a stream of odd-sized writes into PDVs of the peer's maximum, the last one flagged", async () => {
    const sent: OutgoingPdv[] = [];
    const writer = new PDataWriter(async (pdvs) => void sent.push(...pdvs), 100).begin(3, false);
    const source = counting(1000);
    for (const [from, to] of [
      [0, 7],
      [7, 250],
      [250, 251],
      [251, 999],
      [999, 1000],
    ] as const)
      await writer.write(source.subarray(from, to));
    await writer.end();
    assert.deepEqual(
      sent.map((p) => lengthOf(p)),
      [100, 100, 100, 100, 100, 100, 100, 100, 100, 100],
    );
    assert.deepEqual(
      sent.map((p) => p.isLast),
      [false, false, false, false, false, false, false, false, false, true],
    );
    assert.ok(sent.every((p) => p.contextId === 3 && !p.isCommand));
    assert.deepEqual(joined(sent), Buffer.from(source));
  });

  it('copies nothing: PDV values are views of the written buffers', async () => {
    const sent: OutgoingPdv[] = [];
    const writer = new PDataWriter(async (pdvs) => void sent.push(...pdvs), 64);
    const big = counting(200);
    await writer.writeAll(1, true, big);
    assert.deepEqual(
      sent.map((p) => [lengthOf(p), p.isLast, p.isCommand]),
      [
        [64, false, true],
        [64, false, true],
        [64, false, true],
        [8, true, true],
      ],
    );
    for (const pdv of sent)
      for (const b of bytesOf(pdv)) assert.equal(b.buffer, big.buffer, 'a view, not a copy');
    sent.length = 0;
    const chunk = counting(64);
    writer.begin(1, false);
    await writer.write(chunk);
    await writer.end();
    assert.equal(sent[0]?.data, chunk, 'a written buffer that is one whole PDV is sent as it is');
  });

  it('sends one empty last PDV for an empty message part', async () => {
    const sent: OutgoingPdv[] = [];
    const writer = new PDataWriter(async (pdvs) => void sent.push(...pdvs), 64).begin(5, false);
    await writer.end();
    assert.equal(sent.length, 1);
    assert.equal(lengthOf(sent[0] as OutgoingPdv), 0);
    assert.equal(sent[0]?.isLast, true);
  });

  it('holds back the writer while the transport has not taken a PDV (backpressure)', async () => {
    const sent: OutgoingPdv[] = [];
    const releases: Array<() => void> = [];
    const writer = new PDataWriter(
      (pdvs) =>
        new Promise<void>((resolve) => {
          sent.push(...pdvs);
          releases.push(resolve);
        }),
      10,
    ).begin(1, false);
    let written = false;
    const writing = writer.write(counting(35)).then(() => {
      written = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(sent.length, 1, 'the second PDV waits for the first to be taken');
    assert.equal(written, false);
    for (let i = 0; i < 3; i++) {
      releases.shift()?.();
      await new Promise((resolve) => setImmediate(resolve));
    }
    await writing;
    assert.equal(written, true);
    assert.equal(sent.length, 3, 'three full PDVs; the rest (5 bytes) waits for end()');
    assert.equal(writer.buffered, 5);
    const ending = writer.end();
    releases.shift()?.();
    await ending;
    assert.deepEqual(
      sent.map((p) => [lengthOf(p), p.isLast]),
      [
        [10, false],
        [10, false],
        [10, false],
        [5, true],
      ],
    );
  });

  it('sends a held command in the P-DATA-TF of the first data PDV, which has that much less room', async () => {
    const pdus: OutgoingPdv[][] = [];
    const writer = new PDataWriter(async (pdvs) => void pdus.push([...pdvs]), 100);
    const command = counting(20);
    // A data set in memory that fits with the command: one PDU of two PDVs.
    await writer.holdCommand(1, command);
    assert.equal(pdus.length, 0, 'held until its data set');
    await writer.writeAll(1, false, counting(74));
    assert.deepEqual(
      pdus.map((pdu) => pdu.map((p) => [p.isCommand, p.isLast, lengthOf(p)])),
      [
        [
          [true, true, 20],
          [false, true, 74],
        ],
      ],
      'PS3.8 9.3.5: 6 + 20 + 6 + 74 = 106 = the PDU room of a 100-byte PDV value plus its header',
    );
    // Larger: the first data PDV takes what the command leaves (100 - 26 = 74), the rest full PDVs.
    pdus.length = 0;
    await writer.holdCommand(1, command);
    const data = counting(250);
    await writer.writeAll(1, false, data);
    assert.deepEqual(
      pdus.map((pdu) => pdu.map((p) => [p.isCommand, p.isLast, lengthOf(p)])),
      [
        [
          [true, true, 20],
          [false, false, 74],
        ],
        [[false, false, 100]],
        [[false, true, 76]],
      ],
    );
    assert.deepEqual(joined(pdus.flat().filter((p) => !p.isCommand)), Buffer.from(data));
    // A streamed data set: the same cut.
    pdus.length = 0;
    await writer.holdCommand(2, command);
    writer.begin(2, false);
    for (let at = 0; at < 250; at += 30) await writer.write(data.subarray(at, Math.min(250, at + 30)));
    await writer.end();
    assert.deepEqual(
      pdus.map((pdu) => pdu.map((p) => [p.isCommand, p.isLast, lengthOf(p)])),
      [
        [
          [true, true, 20],
          [false, false, 74],
        ],
        [[false, false, 100]],
        [[false, true, 76]],
      ],
    );
    assert.deepEqual(joined(pdus.flat().filter((p) => !p.isCommand)), Buffer.from(data));
  });

  it('sends a held command alone when there is no data set, and a long one at once', async () => {
    const pdus: OutgoingPdv[][] = [];
    const writer = new PDataWriter(async (pdvs) => void pdus.push([...pdvs]), 100);
    await writer.holdCommand(1, counting(40));
    await writer.sendHeld();
    assert.deepEqual(
      pdus.map((pdu) => pdu.map((p) => [p.isCommand, p.isLast, lengthOf(p)])),
      [[[true, true, 40]]],
    );
    pdus.length = 0;
    // 94 + 6 + 2 > 100: no room left for data, so it is not held.
    await writer.holdCommand(1, counting(94));
    assert.deepEqual(
      pdus.map((pdu) => pdu.map((p) => [p.isCommand, p.isLast, lengthOf(p)])),
      [[[true, true, 94]]],
    );
    await writer.sendHeld();
    assert.equal(pdus.length, 1, 'nothing held');
    // A discarded message forgets its held command.
    await writer.holdCommand(1, counting(10));
    writer.discard();
    await writer.writeAll(1, false, counting(4));
    assert.deepEqual(
      pdus.slice(1).map((pdu) => pdu.map((p) => [p.isCommand, lengthOf(p)])),
      [[[false, 4]]],
    );
  });

  it('passes a transport failure to the writer', async () => {
    const writer = new PDataWriter(() => Promise.reject(new Error('gone')), 10).begin(1, false);
    await assert.rejects(writer.write(counting(25)), /gone/);
  });
});
