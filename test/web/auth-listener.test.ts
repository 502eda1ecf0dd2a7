/**
 * `pacs server --http-port`: the HTTP listener binds 127.0.0.1 unless told otherwise (issue 14:
 * secure defaults), `--http-host` (server.http.host) moves it; every route but /healthz needs
 * credentials there.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { freePort, startPacsServer } from '../server/helpers.js';

/** True when a TCP connection to host:port is accepted. */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

describe('pacs server: the HTTP listener address', () => {
  it('binds 127.0.0.1 by default, --http-host elsewhere; routes need credentials', async () => {
    const httpPort = await freePort();
    const { server } = await startPacsServer(['--http-port', String(httpPort), '--log-level', 'warn']);
    try {
      assert.equal(await accepts('127.0.0.1', httpPort), true);
      // Another loopback address of this host: nothing listens there (0.0.0.0 would answer).
      assert.equal(await accepts('127.0.0.2', httpPort), false);
      const health = await fetch(`http://127.0.0.1:${httpPort}/healthz`);
      assert.equal(health.status, 200);
      await health.arrayBuffer();
      for (const path of ['/metrics', '/dicom-web/studies', '/api/auth/whoami']) {
        const r = await fetch(`http://127.0.0.1:${httpPort}${path}`);
        assert.equal(r.status, 401, path);
        assert.equal(((await r.json()) as { code: string }).code, 'ERR_HTTP_UNAUTHENTICATED');
      }
    } finally {
      await server.stop();
    }
    const other = await freePort();
    const moved = await startPacsServer([
      '--http-port',
      String(other),
      '--http-host',
      '127.0.0.2',
      '--log-level',
      'warn',
    ]);
    try {
      assert.equal(await accepts('127.0.0.2', other), true);
      assert.equal(await accepts('127.0.0.1', other), false);
    } finally {
      await moved.server.stop();
    }
  });
});
