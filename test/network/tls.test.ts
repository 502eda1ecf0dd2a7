/**
 * TLS loopback (PS3.15 B.1): certificates are made by the test with openssl (a missing openssl
 * fails the test with the install command).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startAcceptor, unwrapOk } from './loopback-helpers.js';

interface Pki {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  otherCa: string;
}

function makePki(dir: string): Pki {
  const openssl = (...args: string[]): void => {
    try {
      execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new Error("openssl is missing: run 'apt-get install -y openssl'");
      throw e;
    }
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=Test CA');
  openssl(
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'other.key',
    '-out',
    'other.crt',
    '-days',
    '1',
    '-subj',
    '/CN=Other CA',
  );
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  writeFileSync(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const [name, cn] of [
    ['server', 'localhost'],
    ['client', 'SCU'],
  ] as const) {
    openssl('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    openssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.crt`,
      '-days',
      '1',
      '-extfile',
      `${name}.ext`,
    );
  }
  const read = (f: string) => readFileSync(join(dir, f), 'utf8');
  return {
    ca: read('ca.crt'),
    serverCert: read('server.crt'),
    serverKey: read('server.key'),
    clientCert: read('client.crt'),
    clientKey: read('client.key'),
    otherCa: read('other.crt'),
  };
}

describe('Upper Layer over TLS', () => {
  let dir = '';
  let pki: Pki;
  const closers: Array<() => Promise<void>> = [];
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'pacs-tls-'));
    pki = makePki(dir);
  });
  after(async () => {
    for (const c of closers) await c();
    rmSync(dir, { recursive: true, force: true });
  });

  async function tlsAcceptor() {
    const hx = await startAcceptor({}, { tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.ca } });
    closers.push(() => hx.close());
    return hx;
  }

  it('associates and releases with a verified client certificate', async () => {
    const hx = await tlsAcceptor();
    const scu = unwrapOk(await hx.request({ tls: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey } }));
    assert.equal(scu.presentationContexts.length, 1);
    await scu.release();
    assert.deepEqual(await scu.closed, { kind: 'released' });
  });

  it('refuses a client without a certificate', async () => {
    const hx = await tlsAcceptor();
    const result = await hx.request({ tls: { ca: pki.ca }, timeouts: { acseMs: 2000 } });
    assert.equal(result.ok, false);
  });

  it('refuses a server whose certificate the client cannot verify', async () => {
    const hx = await tlsAcceptor();
    const result = await hx.request({ tls: { ca: pki.otherCa, cert: pki.clientCert, key: pki.clientKey } });
    assert.equal(!result.ok && result.error.code, 'ERR_CONNECT');
  });
});
