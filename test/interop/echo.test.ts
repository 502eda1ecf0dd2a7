/**
 * Verification interop with DCMTK (ARCHITECTURE.md "Testing"), in both directions: DCMTK's
 * echoscu, getscu and storescu against `pacs server` (a real child process) or an in-process
 * server with chosen services, and `pacs echo` and our requestor against DCMTK's storescp; over
 * TCP and TLS, with maximum PDU 4096, 16384 and 131072 on each side. A missing DCMTK tool fails the
 * test with the install command. DCMTK runs with TCP_NODELAY=1 (Nagle off, as on our side).
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { EXPLICIT_VR_LE, IMPLICIT_VR_LE, UID } from '../../src/dicom/uid.js';
import { ApplicationEntity } from '../../src/network/ae.js';
import { requestAssociation } from '../../src/network/requestor.js';
import type { DimseService } from '../../src/network/service.js';
import { loadConfig } from '../../src/server/config.js';
import { type ServerHandle, startServer } from '../../src/server/server.js';
import type { ServiceFactory } from '../../src/server/services.js';
import { verificationService } from '../../src/services/verification/scp.js';
import { echo, VERIFICATION_CONTEXT } from '../../src/services/verification/scu.js';
import { run, runPacs } from '../helpers/cli.js';
import { dcmtkTool, TEST_FILES } from '../helpers/corpus.js';
import {
  type Child,
  freePort,
  makePki,
  type Pki,
  spawnChild,
  startPacsServer,
  tempDir,
  waitForPort,
} from '../server/helpers.js';

const PDU_SIZES = [4096, 16384, 131072] as const;
const DCMTK_ENV = { TCP_NODELAY: '1' };

/** Runs a DCMTK tool to its end; output is stdout and stderr together (DCMTK logs to both). */
async function dcmtk(
  tool: string,
  args: readonly string[],
): Promise<{ code: number | null; output: string }> {
  const r = await run(dcmtkTool(tool), args, { env: DCMTK_ENV, timeoutMs: 30_000 });
  return { code: r.code, output: `${r.stdout}${r.stderr}` };
}

let root: { path: string; remove: () => Promise<void> };
let pki: Pki;
const children: Child[] = [];
const inProcess: ServerHandle[] = [];

before(async () => {
  root = await tempDir('pacs-echo-interop-');
  pki = await makePki(root.path);
});
after(async () => {
  for (const c of children) await c.stop('SIGKILL');
  for (const s of inProcess) await s.abort();
  await root.remove();
});

async function pacsServer(
  args: string[],
): Promise<{ server: Child; port: number; tlsPort: number | undefined }> {
  const started = await startPacsServer(['--host', '127.0.0.1', ...args]);
  children.push(started.server);
  return started;
}

/** DCMTK storescp on a free port, with `-d` so that it prints what it negotiated. */
async function storescp(args: string[] = []): Promise<{ scp: Child; port: number }> {
  const port = await freePort();
  const out = join(root.path, `storescp-${port}`);
  await mkdir(out);
  const scp = spawnChild(
    dcmtkTool('storescp'),
    ['-d', '-aet', 'STORESCP', '-od', out, ...args, String(port)],
    {
      env: DCMTK_ENV,
      name: 'storescp',
    },
  );
  children.push(scp);
  await waitForPort(port);
  return { scp, port };
}

let dataCount = 0;
/** Our server in this process with the given services (for negotiation cases). */
async function serveInProcess(services: readonly ServiceFactory[]): Promise<number> {
  const loaded = loadConfig({
    overrides: {
      server: { host: '127.0.0.1', port: await freePort() },
      data: { dir: join(root.path, `data-${++dataCount}`) },
    },
  });
  if (!loaded.ok) throw loaded.error;
  const started = await startServer(loaded.value, pino({ enabled: false }), { services });
  if (!started.ok) throw started.error;
  inProcess.push(started.value);
  return started.value.listeners[0]?.port ?? 0;
}

/** The "Context ID: n (Result)" blocks of a DCMTK -d dump of the negotiated association. */
function negotiatedContexts(output: string): Array<{ id: number; result: string; block: string }> {
  const negotiated = output.slice(output.indexOf('Association Parameters Negotiated'));
  const out: Array<{ id: number; result: string; block: string }> = [];
  const re = /Context ID:\s+(\d+) \(([^)]+)\)([\s\S]*?)(?=Context ID:|Accepted Extended Negotiation|$)/g;
  for (const m of negotiated.matchAll(re))
    out.push({ id: Number(m[1]), result: m[2] ?? '', block: m[3] ?? '' });
  return out;
}

const CT = UID.CTImageStorage;
const MR = UID.MRImageStorage;

function storageLike(
  name: string,
  uid: string,
  requestorRoles?: { scu: boolean; scp: boolean },
): ServiceFactory {
  return () => {
    const service: DimseService = {
      name,
      sopClasses: [{ uid }],
      transferSyntaxes: [EXPLICIT_VR_LE, IMPLICIT_VR_LE],
      handlers: { 'C-STORE': async () => ({ status: 0 }) },
      ...(requestorRoles ? { requestorRoles } : {}),
    };
    return service;
  };
}

describe('echoscu against pacs server', () => {
  it('gets Success, and the server logs the association', async () => {
    const { server, port } = await pacsServer([]);
    const r = await dcmtk('echoscu', ['-v', '-aec', 'PACS', '127.0.0.1', String(port)]);
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, /Received Echo Response \(Success\)/);
    await server.waitFor(
      /association ECHOSCU@127\.0\.0\.1 -> PACS released after \d+ ms: 1 request, 0 failures/,
    );
  });

  for (const ours of PDU_SIZES) {
    it(`negotiates maximum PDU ${ours} on our side with 4096, 16384 and 131072 on echoscu's`, async () => {
      const { port } = await pacsServer(['--max-pdu', String(ours)]);
      for (const theirs of PDU_SIZES) {
        const r = await dcmtk('echoscu', [
          '-d',
          '-pdu',
          String(theirs),
          '-aec',
          'PACS',
          '127.0.0.1',
          String(port),
        ]);
        assert.equal(r.code, 0, r.output);
        const negotiated = r.output.slice(r.output.indexOf('Association Parameters Negotiated'));
        assert.match(negotiated, new RegExp(`Our Max PDU Receive Size:\\s+${theirs}\\n`));
        assert.match(negotiated, new RegExp(`Their Max PDU Receive Size:\\s+${ours}\\n`));
        assert.match(r.output, /Received Echo Response \(Success\)/);
      }
    });
  }

  it('accepts each of 128 proposed contexts with our preferred transfer syntax', async () => {
    const { port } = await pacsServer([]);
    const r = await dcmtk('echoscu', [
      '-d',
      '-ppc',
      '128',
      '-pts',
      '3',
      '-aec',
      'PACS',
      '127.0.0.1',
      String(port),
    ]);
    assert.equal(r.code, 0, r.output);
    const contexts = negotiatedContexts(r.output);
    assert.equal(contexts.length, 128);
    for (const c of contexts) {
      assert.equal(c.result, 'Accepted', `context ${c.id}`);
      assert.match(c.block, /Accepted Transfer Syntax: =LittleEndianExplicit/, `context ${c.id}`);
    }
  });

  it('is rejected with a wrong called AE title (called AE title not recognised), accepted when promiscuous', async () => {
    const strict = await pacsServer([]);
    const rejected = await dcmtk('echoscu', ['-v', '-aec', 'SOMEONE', '127.0.0.1', String(strict.port)]);
    assert.notEqual(rejected.code, 0);
    assert.match(rejected.output, /Association Rejected/);
    assert.match(
      rejected.output,
      /Result: Rejected Permanent, Source: Service User\n.*Reason: Called AE Title Not Recognized/,
    );
    await strict.server.waitFor(/association from 127\.0\.0\.1 failed: .*called-AE-title-not-recognized/);

    const open = await pacsServer(['--promiscuous']);
    const accepted = await dcmtk('echoscu', ['-v', '-aec', 'SOMEONE', '127.0.0.1', String(open.port)]);
    assert.equal(accepted.code, 0, accepted.output);
    assert.match(accepted.output, /Received Echo Response \(Success\)/);
  });

  it('works over TLS, with and without a required client certificate', async () => {
    const mtls = await pacsServer([
      '--tls-port',
      String(await freePort()),
      '--tls-cert',
      pki.serverCert,
      '--tls-key',
      pki.serverKey,
      '--tls-ca',
      pki.caCert,
      '--tls-require-client-cert',
    ]);
    const tlsPort = String(mtls.tlsPort);
    const withCert = await dcmtk('echoscu', [
      '-v',
      '+tls',
      pki.clientKey,
      pki.clientCert,
      '+cf',
      pki.caCert,
      '-aec',
      'PACS',
      '127.0.0.1',
      tlsPort,
    ]);
    assert.equal(withCert.code, 0, withCert.output);
    assert.match(withCert.output, /Received Echo Response \(Success\)/);
    const anonymous = await dcmtk('echoscu', [
      '+tla',
      '+cf',
      pki.caCert,
      '-aec',
      'PACS',
      '127.0.0.1',
      tlsPort,
    ]);
    assert.notEqual(anonymous.code, 0, 'no client certificate: refused');
    await mtls.server.waitFor(/TLS handshake failed/);

    const tls = await pacsServer([
      '--tls-port',
      String(await freePort()),
      '--tls-cert',
      pki.serverCert,
      '--tls-key',
      pki.serverKey,
    ]);
    const anon = await dcmtk('echoscu', [
      '-v',
      '+tla',
      '+cf',
      pki.caCert,
      '-aec',
      'PACS',
      '127.0.0.1',
      String(tls.tlsPort),
    ]);
    assert.equal(anon.code, 0, anon.output);
    const untrusted = await dcmtk('echoscu', [
      '+tla',
      '+cf',
      pki.otherCaCert,
      '-aec',
      'PACS',
      '127.0.0.1',
      String(tls.tlsPort),
    ]);
    assert.notEqual(untrusted.code, 0, 'echoscu does not trust our certificate under another CA');
    // The plain port keeps working beside the TLS one.
    const plain = await dcmtk('echoscu', ['-aec', 'PACS', '127.0.0.1', String(tls.port)]);
    assert.equal(plain.code, 0, plain.output);
  });

  it('SIGTERM during an open association: the server stops accepting, waits for it, then exits 0', async () => {
    const { server, port } = await pacsServer([]);
    const assoc = await new ApplicationEntity({ aeTitle: 'HOLDER' }).connect({
      host: '127.0.0.1',
      port,
      calledAeTitle: 'PACS',
      contexts: [VERIFICATION_CONTEXT],
    });
    assert.ok(assoc.ok);
    server.process.kill('SIGTERM');
    await server.waitFor(/waiting for 1 association/);
    const late = await dcmtk('echoscu', ['-aec', 'PACS', '127.0.0.1', String(port)]);
    assert.notEqual(late.code, 0, 'no new association once shutting down');
    assert.ok(server.running);
    const status = await echo(assoc.value);
    assert.ok(status.ok && status.value === 0, 'the open association is still served');
    await assoc.value.release();
    assert.deepEqual(await server.exited, { code: 0, signal: null });
    assert.match(server.stdout, /association HOLDER@127\.0\.0\.1 -> PACS released/);
    assert.match(server.stdout, /server stopped/);
  });
});

describe('DCMTK requestors against our negotiation (in-process server)', () => {
  it('getscu: role selection answered per context (SCP role granted, refused, unknown SOP classes)', async () => {
    // CT lets the requestor be the storage SCP (as a C-GET requestor is); MR does not.
    const port = await serveInProcess([
      () => verificationService(),
      storageLike('ct', CT, { scu: true, scp: true }),
      storageLike('mr', MR),
    ]);
    const r = await dcmtk('getscu', [
      '-d',
      '-aec',
      'PACS',
      '127.0.0.1',
      String(port),
      '-k',
      'QueryRetrieveLevel=STUDY',
      '-k',
      'StudyInstanceUID=1.2.3',
    ]);
    assert.match(r.output, /Association Accepted/, r.output);
    const contexts = negotiatedContexts(r.output);
    assert.ok(contexts.length > 50, `getscu proposes many contexts (${contexts.length})`);
    const byName = (name: string) => contexts.find((c) => c.block.includes(`Abstract Syntax: =${name}\n`));
    const ct = byName('CTImageStorage');
    assert.equal(ct?.result, 'Accepted');
    assert.match(ct?.block ?? '', /Proposed SCP\/SCU Role: SCP\n.*Accepted SCP\/SCU Role: SCP\n/);
    const mr = byName('MRImageStorage');
    assert.equal(mr?.result, 'User Rejection');
    const get = byName('GETPatientRootQueryRetrieveInformationModel');
    assert.equal(get?.result, 'Abstract Syntax Not Supported');
    for (const c of contexts)
      if (c !== ct && c !== mr) assert.equal(c.result, 'Abstract Syntax Not Supported', c.block);
  });

  it('storescu: none of its contexts acceptable, the association is rejected', async () => {
    const port = await serveInProcess([() => verificationService()]);
    const r = await dcmtk('storescu', [
      '-v',
      '-aec',
      'PACS',
      '127.0.0.1',
      String(port),
      join(TEST_FILES, 'CT_small.dcm'),
    ]);
    assert.notEqual(r.code, 0);
    assert.match(r.output, /Association Rejected/, r.output);
    assert.match(r.output, /Result: Rejected Permanent, Source: Service User\n.*Reason: No Reason\n/);
  });
});

describe('pacs echo and our requestor against storescp', () => {
  it('pacs echo gets Success', async () => {
    const { port } = await storescp();
    const r = await runPacs(['echo', '--aec', 'STORESCP', '127.0.0.1', String(port)]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^C-ECHO to STORESCP@127\.0\.0\.1:\d+: success in [\d.]+ ms\n$/);
  });

  for (const theirs of PDU_SIZES) {
    it(`storescp -pdu ${theirs} with 4096, 16384 and 131072 on our side`, async () => {
      const { scp, port } = await storescp(['-pdu', String(theirs)]);
      for (const ours of PDU_SIZES) {
        const before = scp.output.length;
        const r = await runPacs([
          'echo',
          '--aec',
          'STORESCP',
          '--max-pdu',
          String(ours),
          '127.0.0.1',
          String(port),
        ]);
        assert.equal(r.code, 0, r.stderr);
        await scp.waitFor(/Association Release/);
        const log = scp.output.slice(before);
        assert.match(log, new RegExp(`Our Max PDU Receive Size:\\s+${theirs}\\n`), log);
        assert.match(log, new RegExp(`Their Max PDU Receive Size:\\s+${ours}\\n`), log);
      }
    });
  }

  it('pacs echo over TLS to storescp +tls (client certificate required by storescp)', async () => {
    const { port } = await storescp(['+tls', pki.serverKey, pki.serverCert, '+cf', pki.caCert]);
    const ok = await runPacs([
      'echo',
      '--aec',
      'STORESCP',
      '--tls-ca',
      pki.caCert,
      '--tls-cert',
      pki.clientCert,
      '--tls-key',
      pki.clientKey,
      '127.0.0.1',
      String(port),
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /success in/);
    const noCert = await runPacs([
      'echo',
      '--aec',
      'STORESCP',
      '--tls-ca',
      pki.caCert,
      '127.0.0.1',
      String(port),
    ]);
    assert.equal(noCert.code, 1);
    assert.match(noCert.stderr, /^pacs: C-ECHO to STORESCP@127\.0\.0\.1:\d+: TLS failure: .+\n$/);
    const untrusted = await runPacs([
      'echo',
      '--aec',
      'STORESCP',
      '--tls-ca',
      pki.otherCaCert,
      '--tls-cert',
      pki.clientCert,
      '--tls-key',
      pki.clientKey,
      '127.0.0.1',
      String(port),
    ]);
    assert.equal(untrusted.code, 1);
    assert.match(untrusted.stderr, /TLS failure: .*certificate/);
  });

  it('pacs echo names a TLS failure against a plain storescp', async () => {
    const { port } = await storescp();
    const r = await runPacs(['echo', '--aec', 'STORESCP', '--tls-ca', pki.caCert, '127.0.0.1', String(port)]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /TLS failure: /);
  });

  it('our requestor: per-context results for many contexts, none acceptable, and role selection', async () => {
    const { port } = await storescp();
    const request = (
      presentationContexts: Parameters<typeof requestAssociation>[0]['presentationContexts'],
    ) =>
      requestAssociation({
        host: '127.0.0.1',
        port,
        callingAeTitle: 'PACSSCU',
        calledAeTitle: 'STORESCP',
        presentationContexts,
      });

    // 100 contexts: Verification and CT in each transfer syntax, and unknown SOP classes.
    const many = Array.from({ length: 100 }, (_, i) => {
      if (i === 0) return { abstractSyntax: UID.Verification, transferSyntaxes: [IMPLICIT_VR_LE] };
      if (i === 1) return { abstractSyntax: CT, transferSyntaxes: [EXPLICIT_VR_LE] };
      return { abstractSyntax: `1.2.826.0.1.3680043.10.1234.${i}`, transferSyntaxes: [IMPLICIT_VR_LE] };
    });
    const a = await request(many);
    assert.ok(a.ok, a.ok ? '' : a.error.message);
    const results = a.value.ac.presentationContexts;
    assert.equal(results.length, 100);
    assert.deepEqual(
      results.slice(0, 2).map((r) => [r.id, r.result]),
      [
        [1, 0],
        [3, 0],
      ],
    );
    for (const r of results.slice(2))
      assert.equal(r.result, 3, `context ${r.id}: abstract syntax not supported`);
    assert.deepEqual(
      a.value.presentationContexts.map((c) => c.abstractSyntax),
      [UID.Verification, CT],
    );
    await a.value.release();

    // None acceptable: storescp accepts the association with every context refused.
    const none = await request([
      { abstractSyntax: '1.2.826.0.1.3680043.10.1234.1', transferSyntaxes: [IMPLICIT_VR_LE] },
    ]);
    assert.ok(none.ok);
    assert.deepEqual(
      none.value.ac.presentationContexts.map((r) => r.result),
      [3],
    );
    assert.deepEqual(none.value.presentationContexts, []);
    await none.value.release();

    // Role selection: storescp does not answer it, so the default roles apply (PS3.7 D.3.3.4):
    // we are SCU only, even where we asked to be SCP.
    const roles = await request([
      { abstractSyntax: CT, transferSyntaxes: [EXPLICIT_VR_LE], roles: { scu: true, scp: true } },
      { abstractSyntax: MR, transferSyntaxes: [EXPLICIT_VR_LE], roles: { scu: false, scp: true } },
    ]);
    assert.ok(roles.ok);
    assert.equal(roles.value.ac.userInformation.roleSelections, undefined);
    assert.deepEqual(
      roles.value.presentationContexts.map((c) => [c.abstractSyntax, c.scu, c.scp]),
      [
        [CT, true, false],
        [MR, true, false],
      ],
    );
    await roles.value.release();
  });
});
