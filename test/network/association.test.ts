import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, describe, it } from 'node:test';
import type { Association } from '../../src/network/association.js';
import { NetworkError } from '../../src/network/errors.js';
import type { Pdv } from '../../src/network/pdu.js';
import { requestAssociation } from '../../src/network/requestor.js';
import { h } from './bytes-helpers.js';
import {
  CT_IMAGE,
  EXPLICIT_LE,
  IMPLICIT_LE,
  rawAssociateRq,
  rawClient,
  startAcceptor,
  unwrapOk,
  VERIFICATION,
  waitFor,
} from './loopback-helpers.js';

/** Reads PDVs until one with isLast on a data set (or a command without data), joining the bytes. */
async function readMessagePart(assoc: Association): Promise<{ pdvs: Pdv[]; bytes: Buffer }> {
  const pdvs: Pdv[] = [];
  const reader = assoc.pdvs();
  for (let r = await reader.next(); !r.done; r = await reader.next()) {
    pdvs.push(r.value);
    if (r.value.isLast) break;
  }
  return { pdvs, bytes: Buffer.concat(pdvs.map((p) => p.data)) };
}

describe('Upper Layer over TCP loopback', () => {
  const harnesses: Array<{ close(): Promise<void> }> = [];
  after(async () => {
    for (const h of harnesses) await h.close();
  });

  it('associates, exchanges P-DATA both ways, and releases', async () => {
    const hx = await startAcceptor();
    harnesses.push(hx);
    const requested = hx.request({
      presentationContexts: [
        { abstractSyntax: VERIFICATION, transferSyntaxes: [IMPLICIT_LE] },
        { abstractSyntax: '1.2.3.4', transferSyntaxes: [IMPLICIT_LE] },
      ],
    });
    const [scp, result] = await Promise.all([hx.nextAccepted(), requested]);
    const scu = unwrapOk(result);
    assert.deepEqual(scu.presentationContexts, [
      { id: 1, abstractSyntax: VERIFICATION, transferSyntax: IMPLICIT_LE, scu: true, scp: false },
    ]);
    assert.deepEqual(scp.presentationContexts, [
      { id: 1, abstractSyntax: VERIFICATION, transferSyntax: IMPLICIT_LE, scu: false, scp: true },
    ]);
    assert.equal(scu.peerMaxPduLength, 16384);
    assert.equal(scp.peerMaxPduLength, 65536);
    assert.equal(scu.ac.presentationContexts[1]?.result, 3);
    assert.equal(scp.callingAeTitle, 'SCU');

    // The SCU sends a command (one PDV) and a 40000-byte data set cut to the SCP's 16384 maximum.
    const data = Buffer.alloc(40000, 7);
    await scu.sendPData([{ contextId: 1, isCommand: true, isLast: true, data: h('0102') }]);
    const writer = scu.createPdvWriter(1, 'data');
    await pipeline(Readable.from([data.subarray(0, 10000), data.subarray(10000)]), writer);
    const command = await readMessagePart(scp);
    assert.deepEqual([...command.bytes], [1, 2]);
    assert.equal(command.pdvs[0]?.isCommand, true);
    const dataset = await readMessagePart(scp);
    assert.ok(dataset.bytes.equals(data));
    assert.deepEqual(
      dataset.pdvs.map((p) => [p.data.length, p.isCommand, p.isLast]),
      [
        [16378, false, false],
        [16378, false, false],
        [7244, false, true],
      ],
    );

    // The SCP answers with a command.
    await scp.sendPData([{ contextId: 1, isCommand: true, isLast: true, data: h('0304') }]);
    const answer = await readMessagePart(scu);
    assert.deepEqual([...answer.bytes], [3, 4]);

    const scpDone = (async () => {
      for await (const _ of scp.pdvs()) assert.fail('no more data expected');
    })();
    const released = once(scp, 'released');
    await scu.release();
    await scpDone;
    await released;
    assert.deepEqual(await scu.closed, { kind: 'released' });
    assert.deepEqual(await scp.closed, { kind: 'released' });
    await waitFor(() => hx.acceptor.activeAssociations === 0);
  });

  it('lets the acceptor release', async () => {
    const hx = await startAcceptor();
    harnesses.push(hx);
    const [scp, result] = await Promise.all([hx.nextAccepted(), hx.request()]);
    const scu = unwrapOk(result);
    const scuDone = (async () => {
      for await (const _ of scu.pdvs()) assert.fail('no data expected');
    })();
    await scp.release();
    await scuDone;
    assert.deepEqual(await scu.closed, { kind: 'released' });
  });

  it('resolves a release collision on both sides', async () => {
    const hx = await startAcceptor();
    harnesses.push(hx);
    const [scp, result] = await Promise.all([hx.nextAccepted(), hx.request()]);
    const scu = unwrapOk(result);
    await Promise.all([scu.release(), scp.release()]);
    assert.deepEqual(await scu.closed, { kind: 'released' });
    assert.deepEqual(await scp.closed, { kind: 'released' });
  });

  it('aborts: the peer sees A-ABORT from the service-user and reading throws', async () => {
    const hx = await startAcceptor();
    harnesses.push(hx);
    const [scp, result] = await Promise.all([hx.nextAccepted(), hx.request()]);
    const scu = unwrapOk(result);
    const aborted = once(scp, 'aborted');
    const reading = scp.pdvs().next();
    scu.abort();
    const [info] = await aborted;
    assert.deepEqual(info, { initiator: 'peer', source: 0, reason: 0, detail: 'A-ABORT from the peer' });
    await assert.rejects(
      reading,
      (e: unknown) => e instanceof NetworkError && e.code === 'ERR_ASSOCIATION_ABORTED',
    );
    const closed = await scu.closed;
    assert.equal(closed.kind === 'aborted' && closed.abort.initiator, 'local');
    await assert.rejects(
      scu.sendPData([{ contextId: 1, isCommand: true, isLast: true, data: h('00') }]),
      NetworkError,
    );
  });

  it('rejects an unknown called AE title (rejected-permanent, service-user, reason 7)', async () => {
    const hx = await startAcceptor();
    harnesses.push(hx);
    const result = await hx.request({ calledAeTitle: 'NOT-PACS' });
    assert.equal(result.ok, false);
    assert.equal(!result.ok && result.error.code, 'ERR_ASSOCIATION_REJECTED');
    assert.deepEqual(!result.ok && result.error.reject, { result: 1, source: 1, reason: 7 });
  });

  it('rejects past the association limit (rejected-transient, provider presentation, reason 2)', async () => {
    const hx = await startAcceptor({ maxAssociations: 1 });
    harnesses.push(hx);
    const first = unwrapOk(await hx.request());
    const second = await hx.request();
    assert.deepEqual(!second.ok && second.error.reject, { result: 2, source: 3, reason: 2 });
    await first.release();
  });

  it('negotiates SCP/SCU role selection over the wire', async () => {
    const hx = await startAcceptor();
    harnesses.push(hx);
    const [scp, result] = await Promise.all([
      hx.nextAccepted(),
      hx.request({
        presentationContexts: [
          {
            abstractSyntax: CT_IMAGE,
            transferSyntaxes: [IMPLICIT_LE, EXPLICIT_LE],
            roles: { scu: false, scp: true },
          },
        ],
      }),
    ]);
    const scu = unwrapOk(result);
    assert.deepEqual(scu.presentationContexts, [
      { id: 1, abstractSyntax: CT_IMAGE, transferSyntax: EXPLICIT_LE, scu: false, scp: true },
    ]);
    assert.deepEqual(scp.presentationContexts, [
      { id: 1, abstractSyntax: CT_IMAGE, transferSyntax: EXPLICIT_LE, scu: true, scp: false },
    ]);
    await scu.release();
  });

  it('pauses a fast sender while the consumer does not read, then delivers everything', async () => {
    const hx = await startAcceptor({}, { receiveHighWaterMark: 64 * 1024 });
    harnesses.push(hx);
    const [scp, result] = await Promise.all([hx.nextAccepted(), hx.request()]);
    const scu = unwrapOk(result);
    const chunk = Buffer.alloc(scu.maxPdvDataLength, 1);
    const total = 64 * 1024 * 1024;
    let sent = 0;
    const sending = (async () => {
      while (sent < total) {
        const isLast = sent + chunk.length >= total;
        await scu.sendPData([{ contextId: 1, isCommand: false, isLast, data: chunk }]);
        sent += chunk.length;
      }
    })();
    await new Promise((r) => setTimeout(r, 300));
    const sentWhileStalled = sent;
    assert.ok(sentWhileStalled < total / 2, `sender should be held back, sent ${sentWhileStalled}`);
    let receivedBytes = 0;
    for await (const pdv of scp.pdvs()) {
      receivedBytes += pdv.data.length;
      if (pdv.isLast) break;
    }
    await sending;
    assert.equal(receivedBytes, sent);
    await scu.release();
  });

  it('answers a P-DATA-TF announcing 4 GB with A-ABORT (provider, invalid-PDU-parameter value) without buffering it', async () => {
    const hx = await startAcceptor();
    harnesses.push(hx);
    const raw = await rawClient(hx.port);
    raw.socket.write(rawAssociateRq());
    await waitFor(() => raw.received().length >= 6 && raw.received()[0] === 0x02);
    const acLength = raw.received().readUInt32BE(2) + 6;
    await waitFor(() => raw.received().length >= acLength);
    raw.socket.write(h('04 00 ffffffff 0000'));
    await waitFor(() => raw.received().length >= acLength + 10);
    assert.equal(raw.received().subarray(acLength).toString('hex'), '07000000000400000206');
    raw.socket.end();
    await raw.closed;
  });

  it('answers garbage on the port with A-ABORT (unrecognized-PDU) and closes', async () => {
    const hx = await startAcceptor();
    harnesses.push(hx);
    const raw = await rawClient(hx.port);
    const failed = once(hx.acceptor, 'failed');
    raw.socket.write('GET / HTTP/1.1\r\n\r\n');
    await waitFor(() => raw.received().length >= 10);
    assert.equal(raw.received().toString('hex'), '07000000000400000201');
    raw.socket.end();
    const [error] = await failed;
    assert.equal((error as NetworkError).code, 'ERR_ASSOCIATION_ABORTED');
  });

  it('closes a connection that sends nothing when ARTIM expires', async () => {
    const hx = await startAcceptor({}, { timeouts: { acseMs: 150 } });
    harnesses.push(hx);
    const raw = await rawClient(hx.port);
    const started = Date.now();
    await raw.closed;
    assert.ok(Date.now() - started >= 100);
    assert.equal(raw.received().length, 0);
  });

  it('aborts when no PDV arrives within the DIMSE timeout', async () => {
    const hx = await startAcceptor();
    harnesses.push(hx);
    const [scp, result] = await Promise.all([hx.nextAccepted(), hx.request({ timeouts: { dimseMs: 150 } })]);
    const scu = unwrapOk(result);
    await assert.rejects(
      scu.pdvs().next(),
      (e: unknown) => e instanceof NetworkError && e.code === 'ERR_TIMEOUT',
    );
    const [info] = await once(scp, 'aborted');
    assert.equal(info.initiator, 'peer');
  });

  it('aborts an idle association', async () => {
    const hx = await startAcceptor({}, { timeouts: { idleMs: 150 } });
    harnesses.push(hx);
    const [scp, result] = await Promise.all([hx.nextAccepted(), hx.request()]);
    const scu = unwrapOk(result);
    const [info] = await once(scu, 'aborted');
    assert.equal(info.initiator, 'peer');
    const closed = await scp.closed;
    assert.equal(closed.kind === 'aborted' && closed.abort.detail, 'idle for 150 ms');
  });

  it('gives up with ERR_TIMEOUT when the acceptor never answers the A-ASSOCIATE-RQ (ACSE timeout)', async () => {
    const silent = net.createServer((socket) => socket.on('error', () => {}));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as net.AddressInfo;
    const started = Date.now();
    const result = await requestAssociation({
      host: '127.0.0.1',
      port,
      callingAeTitle: 'SCU',
      calledAeTitle: 'SILENT',
      presentationContexts: [{ abstractSyntax: VERIFICATION, transferSyntaxes: [IMPLICIT_LE] }],
      timeouts: { acseMs: 150 },
    });
    assert.equal(!result.ok && result.error.code, 'ERR_TIMEOUT');
    assert.ok(Date.now() - started < 1000, 'answered without waiting for ARTIM in Sta13');
    silent.close();
    silent.unref();
  });

  it('survives a throwing policy hook and a throwing listener: that association ends, the server goes on', async () => {
    const hx = await startAcceptor({
      verifyUserIdentity: () => {
        throw new Error('identity store down');
      },
    });
    harnesses.push(hx);
    const identity = {
      identityType: 1,
      positiveResponseRequested: false,
      primaryField: h('61'),
      secondaryField: h(''),
    };
    const refused = await hx.request({ userIdentity: identity });
    assert.deepEqual(!refused.ok && refused.error.reject, { result: 1, source: 1, reason: 1 });

    hx.acceptor.once('association', () => {
      throw new Error('listener bug');
    });
    const first = unwrapOk(await hx.request());
    const closed = await first.closed;
    assert.equal(closed.kind, 'aborted');
    const second = unwrapOk(await hx.request());
    await second.release();
  });

  it('fails with ERR_CONNECT when nothing listens', async () => {
    const hx = await startAcceptor();
    const port = hx.port;
    await hx.close();
    const result = await hx.request({ port });
    assert.equal(!result.ok && result.error.code, 'ERR_CONNECT');
  });
});
