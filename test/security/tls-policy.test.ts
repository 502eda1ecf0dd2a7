/**
 * The TLS policy (security/tls-policy.ts; PS3.15 B.12, BCP 195: RFC 8996, RFC 9325) on the DICOM
 * TLS listener of `pacs server` and on its HTTPS listener, checked with openssl s_client as a
 * client that would accept anything (SECLEVEL=0): TLS 1.0 and 1.1 refused, a CBC-only or an RSA
 * key transport suite refused, finite-field DHE refused; TLS 1.2 with ECDHE-RSA-AES128-GCM-SHA256
 * accepted, TLS 1.3 accepted and preferred. DCMTK storescu +tls is covered by test/interop.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TLS_POLICY, TLS12_CIPHERS } from '../../src/security/tls-policy.js';
import { loadConfig } from '../../src/server/config.js';
import { type ServerHandle, startServer } from '../../src/server/server.js';
import { run } from '../helpers/cli.js';
import { freePort, makePki, type Pki, tempDir } from '../server/helpers.js';
import { memoryLogger } from '../web/helpers.js';

interface Handshake {
  readonly ok: boolean;
  readonly protocol: string | undefined;
  readonly cipher: string | undefined;
  readonly output: string;
}

/** One openssl s_client handshake; `ok` when a cipher was agreed. */
async function handshake(port: number, args: readonly string[]): Promise<Handshake> {
  const r = await run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-brief', ...args], {
    timeoutMs: 20_000,
  });
  const output = `${r.stdout}${r.stderr}`;
  const protocol = /Protocol version: (\S+)/.exec(output)?.[1];
  const cipher = /Ciphersuite: (\S+)/.exec(output)?.[1];
  return { ok: cipher !== undefined, protocol, cipher, output };
}

// A client that offers what we want to see refused: the server, not the client, must say no.
const ANYTHING = 'ALL:@SECLEVEL=0';

describe('TLS policy', () => {
  let work: { path: string; remove: () => Promise<void> };
  let pki: Pki;
  let server: ServerHandle;
  let dicomTls = 0;
  let https = 0;

  before(async () => {
    work = await tempDir('pacs-tls-policy-');
    pki = await makePki(work.path);
    dicomTls = await freePort();
    const loaded = loadConfig({
      overrides: {
        server: {
          host: '127.0.0.1',
          port: await freePort(),
          tls: { port: dicomTls, cert: pki.serverCert, key: pki.serverKey },
          http: { port: await freePort(), cert: pki.serverCert, key: pki.serverKey },
        },
        data: { dir: join(work.path, 'data') },
      },
    });
    if (!loaded.ok) throw loaded.error;
    const started = await startServer(loaded.value, memoryLogger([]));
    if (!started.ok) throw started.error;
    server = started.value;
    https = server.httpPort ?? 0;
  });

  after(async () => {
    await server?.close();
    await work?.remove();
  });

  it('lists only ECDHE with AES-GCM or ChaCha20-Poly1305 for TLS 1.2, and TLS 1.2 as the minimum', () => {
    for (const c of TLS12_CIPHERS)
      assert.match(c, /^ECDHE-(RSA|ECDSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$/);
    assert.equal(TLS_POLICY.minVersion, 'TLSv1.2');
    assert.equal(TLS_POLICY.maxVersion, 'TLSv1.3');
  });

  for (const listener of ['DICOM', 'HTTPS'] as const) {
    const portOf = () => (listener === 'DICOM' ? dicomTls : https);

    it(`${listener}: TLS 1.0 and TLS 1.1 are refused`, async () => {
      for (const version of ['-tls1', '-tls1_1']) {
        const h = await handshake(portOf(), [version, '-cipher', ANYTHING]);
        assert.equal(h.ok, false, `${version}: ${h.output}`);
        // The server answered with an alert: the client did offer the old version.
        assert.match(h.output, /alert|handshake failure|unsupported protocol|wrong version/i, h.output);
      }
    });

    it(`${listener}: TLS 1.2 with a CBC-only, an RSA key transport or a DHE suite is refused`, async () => {
      for (const cipher of [
        'ECDHE-RSA-AES128-SHA256',
        'ECDHE-RSA-AES256-SHA',
        'AES128-GCM-SHA256',
        'AES256-SHA256',
        'DHE-RSA-AES128-GCM-SHA256',
      ]) {
        const h = await handshake(portOf(), ['-tls1_2', '-cipher', `${cipher}:@SECLEVEL=0`]);
        assert.equal(h.ok, false, `${cipher}: ${h.output}`);
      }
    });

    it(`${listener}: TLS 1.2 with ECDHE-RSA-AES128-GCM-SHA256 is accepted`, async () => {
      const h = await handshake(portOf(), ['-tls1_2', '-cipher', 'ECDHE-RSA-AES128-GCM-SHA256']);
      assert.equal(h.protocol, 'TLSv1.2', h.output);
      assert.equal(h.cipher, 'ECDHE-RSA-AES128-GCM-SHA256');
    });

    it(`${listener}: TLS 1.3 is accepted, and preferred by a client offering 1.2 and 1.3`, async () => {
      const h13 = await handshake(portOf(), ['-tls1_3']);
      assert.equal(h13.protocol, 'TLSv1.3', h13.output);
      const any = await handshake(portOf(), []);
      assert.equal(any.protocol, 'TLSv1.3', any.output);
    });
  }
});
