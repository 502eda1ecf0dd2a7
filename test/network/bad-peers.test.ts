/**
 * Bad peers against a running ApplicationEntity with the Verification service. After each one, a
 * normal C-ECHO on another association must still succeed, the bad connection must be gone, and the
 * process must have seen no uncaught exception or unhandled rejection.
 *
 * A peer that stops reading (decided here): memory is bounded by flow control, and the association
 * is ended by the DIMSE timeout. The read loop stops taking requests while 16 are in flight
 * (src/network/dimse.ts), the Upper Layer then pauses the socket once 1 MiB of PDVs is queued, and
 * a response that cannot be written for the DIMSE timeout (`timeouts.dimseMs`) aborts the
 * association. Without a DIMSE or idle timeout configured, such a peer keeps its association (and
 * its bounded memory) until it goes away: servers should set one.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { UID } from '../../src/dicom/uid.js';
import { ApplicationEntity, type AssociationSummary, type DicomServer } from '../../src/network/ae.js';
import { CommandField, encodeCommand } from '../../src/network/dimse-command.js';
import { Status } from '../../src/network/dimse-status.js';
import type { NetworkError } from '../../src/network/errors.js';
import { verificationService } from '../../src/services/verification/scp.js';
import { echo, VERIFICATION_CONTEXT } from '../../src/services/verification/scu.js';
import { h } from './bytes-helpers.js';
import { rawAssociateRq, rawClient, unwrapOk, waitFor } from './loopback-helpers.js';

const ACSE_MS = 1000;
const DIMSE_MS = 1500;

let server: DicomServer;
let port = 0;
const ended: AssociationSummary[] = [];
const failed: NetworkError[] = [];
const uncaught: unknown[] = [];
const onUncaught = (e: unknown) => uncaught.push(e);
let rssAtStart = 0;

before(async () => {
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUncaught);
  const ae = new ApplicationEntity({
    aeTitle: 'PACS',
    maxPduLength: 16384,
    timeouts: { acseMs: ACSE_MS, dimseMs: DIMSE_MS },
  }).addService(verificationService());
  server = await ae.listen({ port: 0, host: '127.0.0.1', maxAssociations: 20 });
  port = server.address?.port ?? 0;
  server.onAssociationEnd = (s) => ended.push(s);
  server.onFailedAssociation = (e) => failed.push(e);
  rssAtStart = process.memoryUsage().rss;
});

after(async () => {
  await server.close(0);
  process.off('uncaughtException', onUncaught);
  process.off('unhandledRejection', onUncaught);
});

/** After each bad peer: the server is empty again, serves a normal C-ECHO, and nothing leaked out. */
afterEach(async () => {
  await waitFor(() => server.activeAssociations === 0, 15_000);
  const scu = new ApplicationEntity({ aeTitle: 'GOOD' });
  const assoc = unwrapOk(
    await scu.connect({ host: '127.0.0.1', port, calledAeTitle: 'PACS', contexts: [VERIFICATION_CONTEXT] }),
  );
  assert.equal(unwrapOk(await echo(assoc)), Status.Success);
  await assoc.release();
  await waitFor(() => server.activeAssociations === 0);
  assert.deepEqual(uncaught, [], 'no uncaught exception or unhandled rejection');
  const growth = process.memoryUsage().rss - rssAtStart;
  assert.ok(growth < 200 * 1024 * 1024, `rss grew by ${(growth / 1048576).toFixed(1)} MiB`);
});

/** Deterministic bytes (xorshift32), so a failure can be replayed. */
function randomBytes(seed: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

function pData(contextId: number, control: number, data: Uint8Array): Buffer {
  const head = Buffer.alloc(12);
  head[0] = 0x04;
  head.writeUInt32BE(6 + data.length, 2);
  head.writeUInt32BE(data.length + 2, 6);
  head[10] = contextId;
  head[11] = control;
  return Buffer.concat([head, data]);
}

const ECHO_RQ = pData(
  1,
  0x03,
  encodeCommand({
    commandField: CommandField.C_ECHO_RQ,
    messageId: 1,
    affectedSopClassUid: UID.Verification,
    hasDataSet: false,
  }),
);
const RELEASE_RQ = h('05 00 00000004 00000000');
const ABORT = h('07 00 00000004 0000 0000');

type Raw = Awaited<ReturnType<typeof rawClient>>;

/** A raw peer with an established association (Verification on context 1). */
async function established(): Promise<Raw> {
  const raw = await rawClient(port);
  raw.socket.write(rawAssociateRq());
  await waitFor(() => raw.received()[0] === 0x02);
  return raw;
}

/** Waits for the server to close the connection; returns what it sent. */
async function closedByServer(raw: Raw): Promise<Buffer> {
  await raw.closed;
  return raw.received();
}

/** The PDU types in a byte stream. */
function pduTypes(bytes: Buffer): number[] {
  const types: number[] = [];
  for (let at = 0; at + 6 <= bytes.length; at += 6 + bytes.readUInt32BE(at + 2)) types.push(bytes[at] ?? -1);
  return types;
}

describe('garbage', () => {
  for (const seed of [1, 2, 3, 0xdeadbeef]) {
    it(`closes a connection that sends random bytes (seed ${seed}) before associating`, async () => {
      const raw = await rawClient(port);
      raw.socket.write(randomBytes(seed, 64 * 1024));
      const answer = await closedByServer(raw);
      // Nothing, or an A-ABORT (AA-1, AA-8): never an association.
      assert.ok(answer.length === 0 || answer[0] === 0x07, `got ${answer.subarray(0, 16).toString('hex')}`);
    });
  }

  it('aborts an association that receives random bytes', async () => {
    const raw = await established();
    const before = ended.length;
    raw.socket.write(randomBytes(42, 64 * 1024));
    await closedByServer(raw);
    await waitFor(() => ended.length === before + 1);
    assert.equal(ended.at(-1)?.outcome, 'aborted');
  });
});

describe('oversized PDUs', () => {
  for (const [what, header, setUp] of [
    ['an A-ASSOCIATE-RQ announcing 4 GB', h('01 00 ffffffff'), false],
    ['a P-DATA-TF announcing 4 GB', h('04 00 ffffffff'), true],
    ['a P-DATA-TF one byte over the maximum plus slack', h('04 00 00004007'), true],
  ] as const) {
    it(`refuses ${what} from its header, with A-ABORT reason 6, without buffering it`, async () => {
      const rss = process.memoryUsage().rss;
      const raw = setUp ? await established() : await rawClient(port);
      const skip = raw.received().length;
      raw.socket.write(header);
      // The body "follows": a megabyte of it, which must not be kept.
      raw.socket.write(Buffer.alloc(1024 * 1024));
      await waitFor(() => raw.received().length >= skip + 10);
      const abort = raw.received().subarray(skip);
      assert.equal(abort[0], 0x07, 'A-ABORT');
      assert.equal(abort[8], 2, 'source: service-provider');
      assert.equal(abort[9], 6, 'reason: invalid-PDU-parameter value');
      raw.socket.destroy();
      assert.ok(process.memoryUsage().rss - rss < 64 * 1024 * 1024);
    });
  }
});

describe('peers that stall', () => {
  it('closes a half-open connection (half an A-ASSOCIATE-RQ, then nothing) at the ARTIM timeout', async () => {
    const raw = await rawClient(port);
    const rq = rawAssociateRq();
    raw.socket.write(rq.subarray(0, rq.length >> 1));
    const answer = await closedByServer(raw);
    assert.equal(answer.length, 0, 'closed without a word (AA-2)');
  });

  it('closes a connection that sends nothing at the ARTIM timeout', async () => {
    const raw = await rawClient(port);
    const answer = await closedByServer(raw);
    assert.equal(answer.length, 0);
  });

  it('stops reading from a peer that sends C-ECHO-RQ without reading the responses (flow control)', {
    timeout: 120_000,
  }, async () => {
    // A server of its own without any timeout, whose C-ECHO handler counts the requests it serves.
    let served = 0;
    const verification = verificationService();
    const counting = {
      ...verification,
      handlers: {
        'C-ECHO': () => {
          served++;
          return { status: Status.Success };
        },
      },
    };
    const patient = await new ApplicationEntity({ aeTitle: 'PACS' })
      .addService(counting)
      .listen({ port: 0, host: '127.0.0.1' });
    try {
      const raw = await rawClient(patient.address?.port ?? 0);
      raw.socket.write(rawAssociateRq());
      await waitFor(() => raw.received()[0] === 0x02);
      raw.socket.pause(); // read nothing more: the responses pile up on the server's side
      const rssBefore = process.memoryUsage().rss;
      const flood = startFlood(raw.socket);
      // Flow control: the server stops serving (its count stays still for a second) while the peer
      // has requests waiting to be written. Without it, the server would read and queue them all.
      for (let stillFor = 0; stillFor < 1000; ) {
        const servedThen = served;
        await new Promise((resolve) => setTimeout(resolve, 100));
        stillFor = served === servedThen && raw.socket.writableLength > 0 ? stillFor + 100 : 0;
        assert.ok(flood.sent() < 2_000_000, `the server kept reading: ${served} requests served`);
        const grown = process.memoryUsage().rss - rssBefore;
        assert.ok(grown < 256 * 1024 * 1024, `rss grew by ${grown >> 20} MiB while flooded`);
      }
      const growth = process.memoryUsage().rss - rssBefore;
      flood.stop();
      assert.ok(served < flood.sent(), `served ${served} of ${flood.sent()}`);
      assert.ok(growth < 96 * 1024 * 1024, `rss grew by ${(growth / 1048576).toFixed(1)} MiB`);
      raw.socket.destroy();
    } finally {
      await patient.close(0);
    }
  });

  it('aborts a peer that stops reading at the DIMSE timeout', { timeout: 60_000 }, async () => {
    const raw = await established();
    raw.socket.pause();
    const before = ended.length;
    const flood = startFlood(raw.socket);
    await waitFor(() => ended.length === before + 1, 30_000);
    flood.stop();
    assert.equal(ended.at(-1)?.outcome, 'aborted');
    raw.socket.destroy();
  });
});

function drainOrClose(socket: Raw['socket']): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

/** Writes C-ECHO-RQs in batches of 1000 for as long as the socket takes them. */
function startFlood(socket: Raw['socket']): { sent: () => number; stop: () => void } {
  const batch = Buffer.concat(Array.from({ length: 1000 }, () => ECHO_RQ));
  let sent = 0;
  let stopped = false;
  socket.on('close', () => {
    stopped = true;
  });
  void (async () => {
    while (!stopped) {
      if (!socket.write(batch)) await drainOrClose(socket);
      sent += 1000;
    }
  })().catch(() => {});
  return {
    sent: () => sent,
    stop: () => {
      stopped = true;
    },
  };
}

describe('A-ABORT in every state a peer can reach', () => {
  /** Sends `bytes` on a fresh connection (after `setUp`) and checks the server let go. */
  async function abortCase(setUp: (raw: Raw) => Promise<void>, bytes: Uint8Array): Promise<Raw> {
    const raw = await rawClient(port);
    await setUp(raw);
    raw.socket.write(bytes);
    await closedByServer(raw);
    return raw;
  }

  it('right after connecting (Sta2: AA-2, no association)', async () => {
    const before = failed.length;
    await abortCase(async () => {}, ABORT);
    await waitFor(() => failed.length === before + 1);
    assert.equal(failed.at(-1)?.code, 'ERR_ASSOCIATION_ABORTED');
  });

  it('right behind the A-ASSOCIATE-RQ, before reading the A-ASSOCIATE-AC', async () => {
    const before = ended.length + failed.length;
    const raw = await abortCase(async () => {}, Buffer.concat([rawAssociateRq(), ABORT]));
    await waitFor(() => ended.length + failed.length === before + 1);
    assert.ok(pduTypes(raw.received()).every((t) => t === 0x02));
  });

  it('after the A-ASSOCIATE-AC (Sta6)', async () => {
    const before = ended.length;
    await abortCase(async (raw) => {
      raw.socket.write(rawAssociateRq());
      await waitFor(() => raw.received()[0] === 0x02);
    }, ABORT);
    await waitFor(() => ended.length === before + 1);
    assert.equal(ended.at(-1)?.outcome, 'aborted');
  });

  it('with a request in flight', async () => {
    const before = ended.length;
    await abortCase(
      async (raw) => {
        raw.socket.write(rawAssociateRq());
        await waitFor(() => raw.received()[0] === 0x02);
      },
      Buffer.concat([ECHO_RQ, ABORT]),
    );
    await waitFor(() => ended.length === before + 1);
  });

  it('in the middle of a command set', async () => {
    const before = ended.length;
    await abortCase(
      async (raw) => {
        raw.socket.write(rawAssociateRq());
        await waitFor(() => raw.received()[0] === 0x02);
      },
      Buffer.concat([pData(1, 0x01, ECHO_RQ.subarray(12, 40)), ABORT]),
    );
    await waitFor(() => ended.length === before + 1);
  });

  it('in the middle of a data set', async () => {
    const storeRq = encodeCommand({
      commandField: CommandField.C_STORE_RQ,
      messageId: 1,
      affectedSopClassUid: UID.Verification,
      affectedSopInstanceUid: '1.2.3',
      priority: 0,
      hasDataSet: true,
    });
    const before = ended.length;
    await abortCase(
      async (raw) => {
        raw.socket.write(rawAssociateRq());
        await waitFor(() => raw.received()[0] === 0x02);
      },
      Buffer.concat([pData(1, 0x03, storeRq), pData(1, 0x00, Buffer.alloc(8000)), ABORT]),
    );
    await waitFor(() => ended.length === before + 1);
    assert.equal(ended.at(-1)?.outcome, 'aborted');
  });

  it('right behind an A-RELEASE-RQ (Sta8)', async () => {
    const before = ended.length;
    await abortCase(
      async (raw) => {
        raw.socket.write(rawAssociateRq());
        await waitFor(() => raw.received()[0] === 0x02);
      },
      Buffer.concat([RELEASE_RQ, ABORT]),
    );
    await waitFor(() => ended.length === before + 1);
  });

  it('after the A-RELEASE-RP (Sta13)', async () => {
    const before = ended.length;
    await abortCase(async (raw) => {
      raw.socket.write(rawAssociateRq());
      await waitFor(() => raw.received()[0] === 0x02);
      const at = raw.received().length;
      raw.socket.write(RELEASE_RQ);
      await waitFor(() => raw.received()[at] === 0x06);
    }, ABORT);
    await waitFor(() => ended.length === before + 1);
    assert.equal(ended.at(-1)?.outcome, 'released');
  });
});
