/**
 * Interop with DCMTK (installed by .ci/run with apt-get). A missing tool fails the test with a
 * clear message; nothing here is skipped.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { requestAssociation } from '../../src/network/requestor.js';
import { dcmtkTool, TEST_FILES } from '../helpers/corpus.js';
import { h } from './bytes-helpers.js';
import {
  CT_IMAGE,
  EXPLICIT_LE,
  IMPLICIT_LE,
  startAcceptor,
  unwrapOk,
  VERIFICATION,
  waitFor,
} from './loopback-helpers.js';

function run(cmd: string, args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args);
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

// C-ECHO-RQ command set, Implicit VR Little Endian (PS3.7 9.3.5): group length 56; Affected SOP
// Class UID Verification (17 chars + NUL pad); Command Field 0x0030; Message ID 1; Command Data Set
// Type 0x0101 (no data set). Written by hand: this test must not depend on the DIMSE layer.
const C_ECHO_RQ = Buffer.concat([
  h('0000 0000 04000000 38000000'),
  h('0000 0200 12000000'),
  Buffer.from('1.2.840.10008.1.1\0', 'latin1'),
  h('0000 0001 02000000 3000'),
  h('0000 1001 02000000 0100'),
  h('0000 0008 02000000 0101'),
]);

/** The US value of a group-0000 element in an Implicit VR LE command set, or undefined. */
function commandUs(command: Buffer, element: number): number | undefined {
  for (let at = 0; at + 8 <= command.length; ) {
    const group = command.readUInt16LE(at);
    const elem = command.readUInt16LE(at + 2);
    const length = command.readUInt32LE(at + 4);
    if (group === 0 && elem === element) return command.readUInt16LE(at + 8);
    at += 8 + length;
  }
  return undefined;
}

describe('DCMTK interop', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  after(async () => {
    for (const c of cleanups) await c();
  });

  it('echoscu gets an A-ASSOCIATE-AC from our acceptor', async () => {
    const echoscu = dcmtkTool('echoscu');
    const hx = await startAcceptor();
    cleanups.push(() => hx.close());
    // No DIMSE yet: read the C-ECHO-RQ command, check it arrived whole, then abort.
    const commands: Buffer[] = [];
    hx.acceptor.on('association', (assoc) => {
      void (async () => {
        const parts: Uint8Array[] = [];
        const reader = assoc.pdvs();
        for (let r = await reader.next(); !r.done; r = await reader.next()) {
          parts.push(r.value.data);
          if (r.value.isCommand && r.value.isLast) break;
        }
        commands.push(Buffer.concat(parts));
        assoc.abort();
      })().catch(() => {});
    });
    const { output } = await run(echoscu, ['-v', '-aec', 'PACS', '127.0.0.1', String(hx.port)]);
    assert.match(output, /Association Accepted/, output);
    await waitFor(() => commands.length === 1);
    assert.equal(commandUs(commands[0] ?? Buffer.alloc(0), 0x0100), 0x0030, 'C-ECHO-RQ command field');
  });

  it('echoscu is rejected with called-AE-title-not-recognized', async () => {
    const echoscu = dcmtkTool('echoscu');
    const hx = await startAcceptor();
    cleanups.push(() => hx.close());
    const { code, output } = await run(echoscu, ['-v', '-aec', 'WRONG', '127.0.0.1', String(hx.port)]);
    assert.notEqual(code, 0);
    assert.match(output, /Association Rejected/, output);
    assert.match(output, /Called AE Title Not Recognized/i, output);
  });

  it('storescu parses our A-ASSOCIATE-AC with a rejected context (empty transfer syntax sub-item)', async () => {
    const storescu = dcmtkTool('storescu');
    // CT is supported, MR is not: the MR contexts are answered abstract-syntax-not-supported.
    const hx = await startAcceptor({
      abstractSyntaxes: [{ abstractSyntax: CT_IMAGE, transferSyntaxes: [EXPLICIT_LE, IMPLICIT_LE] }],
    });
    cleanups.push(() => hx.close());
    hx.acceptor.on('association', (assoc) => {
      assoc
        .pdvs()
        .next()
        .then(
          () => assoc.abort(),
          () => {},
        );
    });
    const files = [join(TEST_FILES, 'CT_small.dcm'), join(TEST_FILES, 'MR_small.dcm')];
    const { output } = await run(storescu, ['-v', '-aec', 'PACS', '127.0.0.1', String(hx.port), ...files]);
    assert.match(output, /Association Accepted/, output);
    assert.doesNotMatch(output, /Association Request Failed/, output);
    const accepted = hx.accepted[0];
    assert.ok(accepted !== undefined);
    assert.ok(accepted.ac.presentationContexts.some((pc) => pc.result === 3));
  });

  it('our requestor associates with storescp, exchanges a C-ECHO by hand and releases', async () => {
    const storescp = dcmtkTool('storescp');
    const port = await freePort();
    const scp: ChildProcess = spawn(storescp, ['-aet', 'STORESCP', String(port)], { stdio: 'ignore' });
    cleanups.push(() => {
      scp.kill();
    });
    // Wait until storescp listens.
    for (let i = 0; ; i++) {
      const connected = await new Promise<boolean>((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port }, () => {
          s.destroy();
          resolve(true);
        });
        s.on('error', () => resolve(false));
      });
      if (connected) break;
      assert.ok(i < 100, 'storescp did not start listening');
      await new Promise((r) => setTimeout(r, 50));
    }
    const assoc = unwrapOk(
      await requestAssociation({
        host: '127.0.0.1',
        port,
        callingAeTitle: 'PACSTEST',
        calledAeTitle: 'STORESCP',
        presentationContexts: [{ abstractSyntax: VERIFICATION, transferSyntaxes: [IMPLICIT_LE] }],
        maxPduLength: 16384,
      }),
    );
    assert.equal(assoc.presentationContexts[0]?.transferSyntax, IMPLICIT_LE);
    assert.ok(assoc.peerMaxPduLength > 0);
    await assoc.sendPData([{ contextId: 1, isCommand: true, isLast: true, data: C_ECHO_RQ }]);
    const parts: Uint8Array[] = [];
    const reader = assoc.pdvs();
    for (let r = await reader.next(); !r.done; r = await reader.next()) {
      parts.push(r.value.data);
      if (r.value.isLast) break;
    }
    const response = Buffer.concat(parts);
    assert.equal(commandUs(response, 0x0100), 0x8030, 'C-ECHO-RSP command field');
    assert.equal(commandUs(response, 0x0900), 0x0000, 'status success');
    await assoc.release();
    assert.deepEqual(await assoc.closed, { kind: 'released' });
  });
});
