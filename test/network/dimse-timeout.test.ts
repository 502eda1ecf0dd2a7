/**
 * The DIMSE timeout (PS3.7 has none; DCMTK's -td): a peer that stalls inside a message is aborted
 * after it, while an association idle between messages is left to the idle timeout.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { EXPLICIT_VR_LE, UID } from '../../src/dicom/uid.js';
import { ApplicationEntity, type DicomServer } from '../../src/network/ae.js';
import { CommandField, encodeCommand } from '../../src/network/dimse-command.js';
import { verificationService } from '../../src/services/verification/scp.js';
import { echo } from '../../src/services/verification/scu.js';
import { unwrapOk } from './loopback-helpers.js';

const servers: DicomServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close(0)));
});

async function serve(dimseMs: number, idleMs: number): Promise<number> {
  const ae = new ApplicationEntity({ aeTitle: 'SCP', timeouts: { dimseMs, idleMs } }).addService(
    verificationService(),
  );
  const server = await ae.listen({ port: 0, host: '127.0.0.1' });
  servers.push(server);
  return server.address?.port ?? 0;
}

const CONTEXTS = [{ abstractSyntax: UID.Verification, transferSyntaxes: [EXPLICIT_VR_LE] }];

describe('DIMSE timeout', () => {
  it('aborts a peer that stops in the middle of a command set', async () => {
    const port = await serve(300, 60_000);
    const scu = new ApplicationEntity({ aeTitle: 'SCU' });
    const assoc = unwrapOk(
      await scu.connect({ host: '127.0.0.1', port, calledAeTitle: 'SCP', contexts: CONTEXTS }),
    );
    const command = encodeCommand({
      commandField: CommandField.C_ECHO_RQ,
      messageId: 1,
      affectedSopClassUid: UID.Verification,
      hasDataSet: false,
    });
    const pc = assoc.presentationContexts[0];
    assert.ok(pc);
    // The first half of the command, not flagged last: the SCP now waits inside a message.
    await assoc.association.sendPData([
      { contextId: pc.id, isCommand: true, isLast: false, data: command.subarray(0, 20) },
    ]);
    const info = await assoc.association.closed;
    assert.equal(info.kind, 'aborted');
  });

  it('keeps an association idle between messages for longer than the DIMSE timeout', async () => {
    const port = await serve(200, 60_000);
    const scu = new ApplicationEntity({ aeTitle: 'SCU' });
    const assoc = unwrapOk(
      await scu.connect({ host: '127.0.0.1', port, calledAeTitle: 'SCP', contexts: CONTEXTS }),
    );
    assert.equal(unwrapOk(await echo(assoc)), 0);
    await new Promise((resolve) => setTimeout(resolve, 700));
    assert.equal(unwrapOk(await echo(assoc)), 0, 'still served after 3.5 DIMSE timeouts of silence');
    await assoc.release();
  });
});
