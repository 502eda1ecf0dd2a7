/**
 * `pacs echo` as a user runs it (the real bin/pacs in a child process) against peers made in this
 * process: the server of startServer(), and raw TCP peers that misbehave on purpose. Each failure
 * must be one line on stderr naming its reason, with a non-zero exit.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { IMPLICIT_VR_LE, UID } from '../../src/dicom/uid.js';
import { ApplicationEntity } from '../../src/network/ae.js';
import { type Config, type DeepPartial, loadConfig } from '../../src/server/config.js';
import { type ServerHandle, startServer } from '../../src/server/server.js';
import type { ServiceFactory } from '../../src/server/services.js';
import { VERIFICATION_CONTEXT } from '../../src/services/verification/scu.js';
import { runPacs } from '../helpers/cli.js';
import { freePort, makePki, type Pki, tempDir } from '../server/helpers.js';

let root: { path: string; remove: () => Promise<void> };
let pki: Pki;
const servers: ServerHandle[] = [];
const raw: net.Server[] = [];

before(async () => {
  root = await tempDir('pacs-echo-cli-');
  pki = await makePki(root.path);
});
after(async () => {
  for (const s of servers) await s.abort();
  for (const s of raw) s.close();
  await root.remove();
});

let dataCount = 0;
async function serve(
  overrides: DeepPartial<Config> = {},
  services?: readonly ServiceFactory[],
): Promise<number> {
  const loaded = loadConfig({
    overrides: {
      ...overrides,
      server: { host: '127.0.0.1', port: await freePort(), ...overrides.server },
      data: { dir: join(root.path, `data-${++dataCount}`) },
    },
  });
  if (!loaded.ok) throw loaded.error;
  const started = await startServer(loaded.value, pino({ enabled: false }), services ? { services } : {});
  if (!started.ok) throw started.error;
  servers.push(started.value);
  return started.value.listeners.at(-1)?.port ?? 0;
}

/** A TCP peer that does `onData` with whatever the client sends. */
async function rawPeer(onData: (socket: net.Socket) => void): Promise<number> {
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', () => onData(socket));
  });
  raw.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

/** Runs pacs echo; the stderr of a failure must be exactly one line. */
async function pacsEcho(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const r = await runPacs(['echo', ...args], { timeoutMs: 30_000 });
  if (r.code !== 0) assert.match(r.stderr, /^pacs: [^\n]+\n$/, `one line on stderr, got: ${r.stderr}`);
  return r;
}

describe('pacs echo', () => {
  it('prints the round-trip time and exits 0', async () => {
    const port = await serve();
    const r = await pacsEcho(['127.0.0.1', String(port)]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      new RegExp(`^C-ECHO to PACS@127\\.0\\.0\\.1:${port}: success in \\d+\\.\\d+ ms\\n$`),
    );
    assert.equal(r.stderr, '');
  });

  it('--repeat sends several C-ECHOs on one association; --json prints data', async () => {
    const port = await serve({ server: { aet: 'OTHER' } });
    const r = await pacsEcho(['--aec', 'OTHER', '--aet', 'ME', '--repeat', '5', '127.0.0.1', String(port)]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /^C-ECHO to OTHER@127\.0\.0\.1:\d+: 5 x success, min [\d.]+ \/ avg [\d.]+ \/ max [\d.]+ ms\n$/,
    );
    const j = await pacsEcho(['--aec', 'OTHER', '--json', '127.0.0.1', String(port)]);
    assert.equal(j.code, 0, j.stderr);
    const out = JSON.parse(j.stdout) as Record<string, unknown>;
    assert.equal(out['calledAeTitle'], 'OTHER');
    assert.equal(out['callingAeTitle'], 'PACSSCU');
    assert.equal(out['status'], 0);
    assert.equal(out['count'], 1);
  });

  it('names a refused connection', async () => {
    const port = await freePort();
    const r = await pacsEcho(['127.0.0.1', String(port)]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `pacs: C-ECHO to PACS@127.0.0.1:${port}: connection refused\n`);
  });

  it('names a rejection with its result, source and reason', async () => {
    const port = await serve();
    const r = await pacsEcho(['--aec', 'NOBODY', '127.0.0.1', String(port)]);
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      `pacs: C-ECHO to NOBODY@127.0.0.1:${port}: association rejected (rejected-permanent, service-user, called-AE-title-not-recognized)\n`,
    );
    const limited = await serve({ server: { maxAssociations: 1 } });
    const hold = await new ApplicationEntity({ aeTitle: 'HOLDER' }).connect({
      host: '127.0.0.1',
      port: limited,
      calledAeTitle: 'PACS',
      contexts: [VERIFICATION_CONTEXT],
    });
    assert.ok(hold.ok);
    const busy = await pacsEcho(['127.0.0.1', String(limited)]);
    assert.equal(busy.code, 1);
    assert.match(
      busy.stderr,
      /association rejected \(rejected-transient, service-provider \(presentation\), local-limit-exceeded\)\n$/,
    );
    await hold.value.release();
  });

  it('names an abort by the peer', async () => {
    // A-ABORT (PS3.8 9.3.8): type 07, length 4, source 0 (service-user), reason 0.
    const port = await rawPeer((s) => s.end(Buffer.from([7, 0, 0, 0, 0, 4, 0, 0, 0, 0])));
    const r = await pacsEcho(['127.0.0.1', String(port)]);
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      `pacs: C-ECHO to PACS@127.0.0.1:${port}: association aborted by the peer (service-user)\n`,
    );
  });

  it('names a peer that closes the connection without answering', async () => {
    const port = await rawPeer((s) => s.destroy());
    const r = await pacsEcho(['127.0.0.1', String(port)]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /: association aborted by the network \(.*\)\n$/);
  });

  it('names a timeout (--timeout in seconds)', async () => {
    const port = await rawPeer(() => {});
    const started = Date.now();
    const r = await pacsEcho(['--timeout', '0.5', '127.0.0.1', String(port)]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      new RegExp(`^pacs: C-ECHO to PACS@127\\.0\\.0\\.1:${port}: timeout after 0\\.5 s`),
    );
    assert.ok(Date.now() - started < 10_000);
  });

  it('names a failure status', async () => {
    const failing: ServiceFactory = () => ({
      name: 'failing-echo',
      sopClasses: [{ uid: UID.Verification }],
      transferSyntaxes: [IMPLICIT_VR_LE],
      handlers: { 'C-ECHO': () => ({ status: 0x0110 }) },
    });
    const port = await serve({}, [failing]);
    const r = await pacsEcho(['127.0.0.1', String(port)]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `pacs: C-ECHO to PACS@127.0.0.1:${port}: status 0x0110 (Processing failure)\n`);
  });

  describe('over TLS', () => {
    let tlsPort: number;
    let mtlsPort: number;
    before(async () => {
      tlsPort = await serve({
        server: { tls: { port: await freePort(), cert: pki.serverCert, key: pki.serverKey } },
      });
      mtlsPort = await serve({
        server: {
          tls: {
            port: await freePort(),
            cert: pki.serverCert,
            key: pki.serverKey,
            ca: pki.caCert,
            requireClientCert: true,
          },
        },
      });
    });

    it('succeeds with the CA that signed the server certificate', async () => {
      const r = await pacsEcho(['--tls', '--tls-ca', pki.caCert, '127.0.0.1', String(tlsPort)]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /success in/);
    });

    it('succeeds with a client certificate where one is required', async () => {
      const r = await pacsEcho([
        '--tls',
        '--tls-ca',
        pki.caCert,
        '--tls-cert',
        pki.clientCert,
        '--tls-key',
        pki.clientKey,
        '127.0.0.1',
        String(mtlsPort),
      ]);
      assert.equal(r.code, 0, r.stderr);
    });

    it('names a TLS failure: untrusted server certificate', async () => {
      const r = await pacsEcho(['--tls', '--tls-ca', pki.otherCaCert, '127.0.0.1', String(tlsPort)]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /: TLS failure: .*(certificate|verify)/i);
    });

    it('names a TLS failure: no client certificate where one is required', async () => {
      const r = await pacsEcho(['--tls-ca', pki.caCert, '127.0.0.1', String(mtlsPort)]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /: TLS failure: /);
    });

    it('names a TLS failure: TLS to a plain DICOM port', async () => {
      const plain = await serve();
      const r = await pacsEcho(['--tls-ca', pki.caCert, '127.0.0.1', String(plain)]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /: TLS failure: /);
    });
  });

  it('refuses bad arguments with exit 2 and one line', async () => {
    for (const args of [
      ['127.0.0.1', 'http'],
      ['127.0.0.1', '70000'],
      ['--aet', 'A-CALLING-AE-TITLE-TOO-LONG', '127.0.0.1', '104'],
      ['--repeat', '0', '127.0.0.1', '104'],
      ['--timeout', 'soon', '127.0.0.1', '104'],
      ['--max-pdu', '100', '127.0.0.1', '104'],
      ['--tls-cert', 'a.pem', '127.0.0.1', '104'],
      ['--tls-ca', '/nonexistent.pem', '127.0.0.1', '104'],
      ['127.0.0.1'],
    ]) {
      const r = await pacsEcho(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    }
  });
});
