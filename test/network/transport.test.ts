/**
 * TCP transport (src/network/transport.ts): Nagle off, and a write high-water mark of
 * SEND_HIGH_WATER_MARK on the sockets we connect (accepted ones keep Node's 16 KiB: a raised mark
 * there let a peer that floods us without reading grow our memory past its bound), so that the P-DATA-TFs written in one tick (a 256 KiB read
 * of a file cut into PDUs) leave in one writev rather than one system call per PDU (issue 11).
 */
import assert from 'node:assert/strict';
import type net from 'node:net';
import { describe, it } from 'node:test';
import { createTransportServer, openTransport, SEND_HIGH_WATER_MARK } from '../../src/network/transport.js';

describe('TCP transport', () => {
  it('connected sockets take SEND_HIGH_WATER_MARK unwritten bytes before reporting congestion, accepted ones the default', async () => {
    let accepted: (s: net.Socket) => void = () => undefined;
    const got = new Promise<net.Socket>((resolve) => {
      accepted = resolve;
    });
    const server = createTransportServer((s) => accepted(s));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    const r = await openTransport({ host: '127.0.0.1', port });
    assert.ok(r.ok);
    const client = r.value;
    const peer = await got;
    try {
      assert.ok(SEND_HIGH_WATER_MARK > 16 * 1024, "more than Node's default");
      assert.equal(client.writableHighWaterMark, SEND_HIGH_WATER_MARK);
      assert.equal(peer.writableHighWaterMark, 16 * 1024);
      // Corked, a socket reports congestion only past the mark.
      client.cork();
      assert.equal(client.write(Buffer.alloc(SEND_HIGH_WATER_MARK - 1)), true);
      assert.equal(client.write(Buffer.alloc(1)), false);
      client.uncork();
    } finally {
      client.destroy();
      peer.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
