/**
 * The session cookie in a real browser (Debian's Chromium, headless) on the loopback listener
 * over plain HTTP: a page of the app logs in with fetch, the browser keeps the `__Host-` cookie
 * although it is Secure (127.0.0.1 is a potentially trustworthy origin), page scripts cannot read
 * it (HttpOnly), it authenticates the next requests, and an unsafe request needs the CSRF token.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { startWebServer, type WebServerHandle } from '../../src/web/listen.js';
import { SECURITY_POLICY } from '../../src/web/policy.js';
import { FakeIdentityService } from './auth-helpers.js';
import { memoryLogger } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const run = promisify(execFile);

/** The page: login, read document.cookie, whoami, logout without then with the CSRF token, whoami. */
const PAGE = `<!doctype html><html><body><pre id="out">pending</pre><script>
// Synchronous requests, so that the answers are in the page before its load event (--dump-dom).
function send(method, url, headers, body) {
  const x = new XMLHttpRequest();
  x.open(method, url, false);
  for (const [k, v] of Object.entries(headers || {})) x.setRequestHeader(k, v);
  x.send(body === undefined ? null : body);
  return x;
}
const steps = {};
try {
  let r = send('POST', '/api/auth/login', { 'content-type': 'application/json' }, JSON.stringify({ user: 'tess', password: 'pw-tess' }));
  const login = JSON.parse(r.responseText);
  steps.login = r.status;
  steps.cookieVisibleToScript = document.cookie.includes('pacs_session');
  r = send('GET', '/api/auth/whoami');
  steps.whoami = r.status + ' ' + JSON.parse(r.responseText).user;
  steps.logoutWithoutCsrf = send('POST', '/api/auth/logout').status;
  steps.logout = send('POST', '/api/auth/logout', { 'x-csrf-token': login.csrfToken }).status;
  steps.whoamiAfterLogout = send('GET', '/api/auth/whoami').status;
  document.getElementById('out').textContent = JSON.stringify(steps);
} catch (e) {
  document.getElementById('out').textContent = 'error ' + e;
}
</script></body></html>`;

describe('the session cookie in Chromium over plain HTTP on 127.0.0.1', () => {
  let server: WebServerHandle;
  const identity = new FakeIdentityService();
  identity.addUser('tess', 'technologist', 'pw-tess');

  before(async () => {
    server = await startWebServer({
      host: '127.0.0.1',
      port: 0,
      logger: memoryLogger([]),
      policy: SECURITY_POLICY,
      identity,
      health: async () => ({ ok: true }),
      metrics: async () => '',
      // A page of the web application (a static file).
      register: async (app) => {
        app.get('/test-page', { config: { operation: 'web:static' } }, async (_req, reply) =>
          reply.type('text/html').send(PAGE),
        );
      },
    });
  });
  after(() => server.close());

  it('keeps the Secure HttpOnly cookie, hides it from scripts, sends it, and needs the CSRF token', async () => {
    assert.ok(existsSync(CHROMIUM), 'chromium is installed (scripts/system-packages.mjs)');
    const profile = mkdtempSync(join(tmpdir(), 'pacs-chromium-'));
    try {
      const { stdout } = await run(
        CHROMIUM,
        [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-background-networking',
          `--user-data-dir=${profile}`,
          '--dump-dom',
          `http://127.0.0.1:${server.port}/test-page`,
        ],
        // A safety net against a browser that hangs, not a time limit of the test.
        { encoding: 'utf8', maxBuffer: 1 << 20, timeout: 120_000, killSignal: 'SIGKILL' },
      );
      const out = /<pre id="out">([^<]*)<\/pre>/.exec(stdout)?.[1] ?? stdout;
      assert.deepEqual(JSON.parse(out.replace(/&quot;/g, '"')), {
        login: 200,
        cookieVisibleToScript: false,
        whoami: '200 tess',
        logoutWithoutCsrf: 403,
        logout: 204,
        whoamiAfterLogout: 401,
      });
      assert.equal(identity.sessions.size, 0);
    } finally {
      rmSync(profile, { recursive: true, force: true });
    }
  });
});
