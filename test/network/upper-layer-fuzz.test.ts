/**
 * Mutation fuzz test of the Upper Layer (issue 14, "hostile DICOM peers"): real PDUs of every type
 * (the golden PDUs of golden-pdus.ts) mutated by a seeded random generator: bytes flipped, set to
 * control and non-ISO 646 values, inserted, deleted, truncated, length fields changed. Bounded by
 * count, not time. The decoder may only answer a PDU, "need more bytes" or a protocol error
 * (ERR_PDU_*); an accepted A-ASSOCIATE-RQ must have an answer that encodes (the fuzz finding: a
 * calling AE title with a byte outside ISO 646 was accepted, then the A-ASSOCIATE-AC failed to
 * encode: "internal error: aborting association"). A live acceptor fed the same mutations logs no
 * error, raises no uncaught exception, and still serves a C-ECHO afterwards.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ApplicationEntity, type DicomServer } from '../../src/network/ae.js';
import { NetworkError } from '../../src/network/errors.js';
import type { NetworkLogger } from '../../src/network/logger.js';
import { negotiateAsAcceptor } from '../../src/network/negotiation.js';
import { encodePdu } from '../../src/network/pdu.js';
import { PduReader } from '../../src/network/pdu-reader.js';
import { verificationService } from '../../src/services/verification/scp.js';
import { echo, VERIFICATION_CONTEXT } from '../../src/services/verification/scu.js';
import { GOLDEN, IMPLICIT_LE, VERIFICATION } from './golden-pdus.js';
import { rawClient, unwrapOk } from './loopback-helpers.js';

/** mulberry32: a small seeded generator, so a failing case is reproduced from its seed. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Values a hostile peer likes: controls, DEL, the backslash, high bytes, 0x00 and 0xff. */
const NASTY = [0x00, 0x01, 0x07, 0x0a, 0x1b, 0x5c, 0x7f, 0x80, 0x9b, 0xc3, 0xe9, 0xff];

/** One to three mutations of a PDU's bytes. */
function mutate(bytes: Uint8Array, next: () => number): Uint8Array {
  let out = Uint8Array.from(bytes);
  const pick = (n: number) => Math.floor(next() * n);
  const count = 1 + pick(3);
  for (let m = 0; m < count; m++) {
    const at = pick(Math.max(out.length, 1));
    switch (pick(8)) {
      case 0: // flip a bit
        out[at] = (out[at] ?? 0) ^ (1 << pick(8));
        break;
      case 1: // a nasty value
        out[at] = NASTY[pick(NASTY.length)] ?? 0;
        break;
      case 2: // a nasty value in an AE title (A-ASSOCIATE-RQ/AC: bytes 10..41)
        if (out.length >= 42) out[10 + pick(32)] = NASTY[pick(NASTY.length)] ?? 0;
        break;
      case 3: // insert bytes
        out = Uint8Array.from([
          ...out.subarray(0, at),
          ...Array.from({ length: 1 + pick(8) }, () => pick(256)),
          ...out.subarray(at),
        ]);
        break;
      case 4: // delete bytes
        out = Uint8Array.from([...out.subarray(0, at), ...out.subarray(at + 1 + pick(8))]);
        break;
      case 5: // truncate
        out = out.subarray(0, at);
        break;
      case 6: {
        // the PDU length (bytes 2..5), or an item length further in
        const where = next() < 0.5 ? 2 : 6 + pick(Math.max(out.length - 6, 1));
        const value = [0, 1, 3, 4, 0xffff, 0xffffffff, out.length - 6, out.length][pick(8)] ?? 0;
        if (where + 4 <= out.length) new DataView(out.buffer, out.byteOffset).setUint32(where, value >>> 0);
        break;
      }
      default: // a random byte
        out[at] = pick(256);
    }
  }
  return out;
}

const POLICY = {
  aeTitle: 'ANY-SCP',
  promiscuous: true,
  maxPduLength: 16384,
  abstractSyntaxes: [{ abstractSyntax: VERIFICATION, transferSyntaxes: [IMPLICIT_LE] }],
};

/** Decodes like the Upper Layer does, then checks that an acceptor's answer to an RQ encodes. */
function decodeOne(bytes: Uint8Array): 'pdu' | 'incomplete' | 'protocol-error' {
  const reader = new PduReader({ maxPDataLength: 16384 + 6, maxAssociateLength: 1024 * 1024 });
  reader.push(bytes);
  let pdu: ReturnType<PduReader['next']>;
  try {
    pdu = reader.next();
  } catch (e) {
    if (e instanceof NetworkError && e.code.startsWith('ERR_PDU_')) return 'protocol-error';
    throw e;
  }
  if (pdu === null) return 'incomplete';
  if (pdu.type === 'A-ASSOCIATE-RQ') {
    const outcome = negotiateAsAcceptor(pdu, POLICY, { activeAssociations: 0, peerHost: '127.0.0.1' });
    encodePdu(outcome.kind === 'accept' ? outcome.ac : outcome.rj);
  }
  return 'pdu';
}

const DECODER_CASES_PER_PDU = 1000;
const LIVE_CASES = 600;

describe('Upper Layer mutation fuzz', () => {
  it(`decodes ${DECODER_CASES_PER_PDU} mutations of each golden PDU to a PDU, "more bytes" or a protocol error`, () => {
    const seen = { pdu: 0, incomplete: 0, 'protocol-error': 0 };
    for (const [g, golden] of GOLDEN.entries()) {
      const next = random(0x5eed + g);
      for (let i = 0; i < DECODER_CASES_PER_PDU; i++) {
        const bytes = mutate(golden.bytes, next);
        try {
          seen[decodeOne(bytes)]++;
        } catch (e) {
          assert.fail(
            `${golden.name} case ${i} (${Buffer.from(bytes).toString('hex')}): ${(e as Error).stack}`,
          );
        }
      }
    }
    // The mutations reach each outcome: the test is not only feeding garbage the header refuses.
    assert.ok(seen.pdu > 500, `decoded ${seen.pdu}`);
    assert.ok(seen['protocol-error'] > 500, `protocol errors ${seen['protocol-error']}`);
    assert.ok(seen.incomplete > 100, `incomplete ${seen.incomplete}`);
  });

  it('refuses a calling AE title holding a byte outside ISO 646 at decode, as an invalid parameter value', () => {
    const rq = GOLDEN[0];
    assert.ok(rq !== undefined);
    for (const bad of [0x01, 0x1b, 0x5c, 0x7f, 0x80, 0xe9, 0xff]) {
      const bytes = Uint8Array.from(rq.bytes);
      bytes[26 + 2] = bad; // the calling AE title starts at byte 26 ("ECHOSCU")
      const reader = new PduReader({ maxPDataLength: 16384 });
      reader.push(bytes);
      assert.throws(
        () => reader.next(),
        (e: unknown) =>
          e instanceof NetworkError && e.code === 'ERR_PDU_INVALID' && /calling AE title/.test(e.message),
      );
    }
  });

  describe('a live acceptor', () => {
    let server: DicomServer;
    let port = 0;
    const errors: string[] = [];
    const warnings: string[] = [];
    const uncaught: unknown[] = [];
    const onUncaught = (e: unknown) => uncaught.push(e);
    const logger: NetworkLogger = {
      debug: () => {},
      info: () => {},
      warn: (_obj, msg) => warnings.push(msg ?? ''),
      error: (obj, msg) => errors.push(`${msg}: ${JSON.stringify(obj)}`),
    };

    before(async () => {
      process.on('uncaughtException', onUncaught);
      process.on('unhandledRejection', onUncaught);
      const ae = new ApplicationEntity({
        aeTitle: 'ANY-SCP',
        maxPduLength: 16384,
        logger,
        timeouts: { acseMs: 2000 },
      });
      ae.addService(verificationService());
      // An asynchronous admission, as the server's: mutations also meet the Sta3 wait.
      server = await ae.listen({
        port: 0,
        host: '127.0.0.1',
        promiscuous: true,
        maxAssociations: 50,
        admit: async (request) => ({ accepted: true, identity: request.callingAeTitle }),
        authorize: () => undefined,
      });
      port = server.address?.port ?? 0;
    });

    after(async () => {
      await server.close(0);
      process.off('uncaughtException', onUncaught);
      process.off('unhandledRejection', onUncaught);
    });

    /** Sends bytes, half-closes, and waits until the acceptor has closed the connection. */
    async function feed(bytes: Uint8Array): Promise<Buffer> {
      const client = await rawClient(port);
      client.socket.write(bytes);
      client.socket.end();
      await client.closed;
      return client.received();
    }

    it('answers an A-ASSOCIATE-RQ whose calling AE title holds 0xE9 with A-ABORT (invalid parameter value), no error', async () => {
      const rq = GOLDEN[0];
      assert.ok(rq !== undefined);
      const bytes = Uint8Array.from(rq.bytes);
      bytes[28] = 0xe9;
      const before = errors.length;
      const answer = await feed(bytes);
      // PS3.8 9.3.8: A-ABORT, source service-provider (2), reason invalid-PDU-parameter-value (6).
      assert.equal(answer.subarray(0, 10).toString('hex'), '07000000000400000206');
      assert.equal(errors.length, before);
      assert.ok(warnings.includes('invalid PDU received'));
    });

    it(`survives ${LIVE_CASES} connections of mutated PDUs of every type with protocol errors only`, async () => {
      const rq = GOLDEN[0];
      assert.ok(rq !== undefined);
      const next = random(0xdecaf);
      const BATCH = 20;
      for (let done = 0; done < LIVE_CASES; done += BATCH) {
        const batch: Promise<Buffer>[] = [];
        for (let i = 0; i < BATCH; i++) {
          const golden = GOLDEN[(done + i) % GOLDEN.length];
          assert.ok(golden !== undefined);
          const mutated = mutate(golden.bytes, next);
          // An association first (for every PDU but the RQ itself), then the mutated PDU.
          const isRq = golden.pdu.type === 'A-ASSOCIATE-RQ';
          batch.push(feed(isRq ? mutated : Buffer.concat([rq.bytes, mutated])));
        }
        await Promise.all(batch);
      }
      assert.deepEqual(errors, []);
      assert.deepEqual(uncaught, []);
      // Still serving.
      const scu = new ApplicationEntity({ aeTitle: 'GOOD' });
      const assoc = unwrapOk(
        await scu.connect({
          host: '127.0.0.1',
          port,
          calledAeTitle: 'ANY-SCP',
          contexts: [VERIFICATION_CONTEXT],
        }),
      );
      assert.equal(unwrapOk(await echo(assoc)), 0);
      await assoc.release();
    });
  });
});
