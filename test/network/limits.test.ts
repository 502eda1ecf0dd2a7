/**
 * The association limit: 300 concurrent associations against an ApplicationEntity that allows 100.
 * The extra ones are refused with A-ASSOCIATE-RJ rejected-transient (2), source service-provider
 * presentation related (3), reason local-limit-exceeded (2) (PS3.8 9.3.4); the accepted ones are
 * served; memory stays bounded. No wall-clock assertions: this runs on small, noisy machines.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ApplicationEntity, type DicomServer } from '../../src/network/ae.js';
import type { DimseAssociation } from '../../src/network/dimse.js';
import { Status } from '../../src/network/dimse-status.js';
import { verificationService } from '../../src/services/verification/scp.js';
import { echo, VERIFICATION_CONTEXT } from '../../src/services/verification/scu.js';
import { rawAssociateRq, rawClient, unwrapOk, waitFor } from './loopback-helpers.js';

const LIMIT = 100;
const PEERS = 300;
const LOCAL_LIMIT_EXCEEDED = { result: 2, source: 3, reason: 2 };

let server: DicomServer;
let port = 0;
const scu = new ApplicationEntity({ aeTitle: 'SCU' });

before(async () => {
  server = await new ApplicationEntity({ aeTitle: 'PACS', timeouts: { acseMs: 5000 } })
    .addService(verificationService())
    .listen({ port: 0, host: '127.0.0.1', maxAssociations: LIMIT });
  port = server.address?.port ?? 0;
});

after(async () => {
  await server.close(0);
});

const connect = () =>
  scu.connect({ host: '127.0.0.1', port, calledAeTitle: 'PACS', contexts: [VERIFICATION_CONTEXT] });

describe('association limit', () => {
  it(`refuses what is over a limit of ${LIMIT} with "local limit exceeded" and serves the rest`, async () => {
    const rssBefore = process.memoryUsage().rss;
    const results = await Promise.all(Array.from({ length: PEERS }, connect));
    const accepted: DimseAssociation[] = [];
    for (const r of results) {
      if (r.ok) accepted.push(r.value);
      else {
        assert.equal(r.error.code, 'ERR_ASSOCIATION_REJECTED', r.error.message);
        assert.deepEqual(r.error.reject, LOCAL_LIMIT_EXCEEDED);
      }
    }
    assert.ok(accepted.length >= 1 && accepted.length <= LIMIT, `${accepted.length} accepted`);
    // Every accepted association is served while all of them are open at once.
    const statuses = await Promise.all(accepted.map((a) => echo(a)));
    assert.ok(statuses.every((s) => unwrapOk(s) === Status.Success));
    assert.ok(server.activeAssociations <= LIMIT);
    await Promise.all(accepted.map((a) => a.release()));
    await waitFor(() => server.activeAssociations === 0, 20_000);
    const growth = process.memoryUsage().rss - rssBefore;
    assert.ok(growth < 128 * 1024 * 1024, `rss grew by ${(growth / 1048576).toFixed(1)} MiB`);

    // The places are free again.
    const again = unwrapOk(await connect());
    assert.equal(unwrapOk(await echo(again)), Status.Success);
    await again.release();
    await waitFor(() => server.activeAssociations === 0);
  });

  it(`accepts exactly ${LIMIT} of ${PEERS} peers that connect before any of them asks to associate`, async () => {
    const peers = await Promise.all(Array.from({ length: PEERS }, () => rawClient(port)));
    await waitFor(() => server.activeAssociations === PEERS);
    for (const p of peers) p.socket.write(rawAssociateRq());
    await waitFor(() => peers.every((p) => p.received().length >= 10), 20_000);
    const answers = peers.map((p) => p.received()[0]);
    const acs = answers.filter((t) => t === 0x02).length;
    const rjs = peers.filter((p) => {
      const b = p.received();
      return b[0] === 0x03 && b[7] === 2 && b[8] === 3 && b[9] === 2;
    }).length;
    for (const p of peers) p.socket.destroy();
    await waitFor(() => server.activeAssociations === 0, 20_000);
    assert.equal(acs, LIMIT, `${acs} accepted`);
    assert.equal(rjs, PEERS - LIMIT, `${rjs} rejected with local limit exceeded`);
  });
});
