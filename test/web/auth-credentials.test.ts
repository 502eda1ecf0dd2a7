/**
 * HTTP credentials (issue 14): Basic with a good and a bad password, Bearer with a good, an
 * expired, a revoked (replayed after revocation) and an unknown token, a malformed Authorization
 * header; a browser session: login sets the cookie with exactly HttpOnly, Secure, SameSite=Strict,
 * Path=/; an unsafe request with the cookie needs the session's X-CSRF-Token (missing or wrong:
 * 403, nothing done); logout ends the session; failed attempts beyond the limit answer 429 with
 * Retry-After and one log line each.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import { after, before, beforeEach, describe, it } from 'node:test';
import { SECURITY_POLICY } from '../../src/web/policy.js';
import { basic, FakeIdentityService, logout } from './auth-helpers.js';
import { startTestWeb, type TestWeb } from './helpers.js';

// fetch sends `Sec-Fetch-Mode: cors` as a browser's script does: no Basic challenge (no password dialog).
const CHALLENGE = 'Bearer realm="PACS"';
const BEARER_CHALLENGE = 'Bearer realm="PACS", error="invalid_token"';

/** A GET by node:http: headers exactly as given (a script or a DICOMweb client, not a browser page). */
function get(
  url: string,
  headers: Record<string, string>,
): Promise<{ status: number; challenge: string | undefined }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, challenge: res.headers['www-authenticate'] });
      })
      .on('error', reject);
  });
}

describe('HTTP credentials', () => {
  let web: TestWeb;
  let identity: FakeIdentityService;
  const whoami = () => `${web.origin}/api/auth/whoami`;

  beforeEach(async () => {
    identity = new FakeIdentityService({ maxFailures: 3, lockoutMs: 60_000 });
    identity.addUser('tess', 'technologist', 'correct horse');
    identity.addUser('vera', 'viewer', 'vera-pw');
    web = await startTestWeb({ policy: SECURITY_POLICY, identity });
  });
  after(async () => undefined);
  const close = () => web.close();

  const login = (body: unknown) =>
    fetch(`${web.origin}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const refusals = () => web.logLines.filter((l) => l['msg'] === 'HTTP authentication refused');

  it('Basic: the right password is the user, a wrong one 401 with the challenges and one log line', async () => {
    try {
      let r = await fetch(whoami(), { headers: { authorization: basic('tess', 'correct horse') } });
      assert.equal(r.status, 200);
      assert.deepEqual(await r.json(), {
        user: 'tess',
        role: 'technologist',
        permissions: ['download', 'modify', 'query-remote', 'send', 'upload', 'view', 'worklist'],
        method: 'password',
      });
      r = await fetch(whoami(), { headers: { authorization: basic('tess', 'wrong') } });
      assert.equal(r.status, 401);
      assert.equal(r.headers.get('www-authenticate'), CHALLENGE);
      assert.deepEqual(await r.json(), { code: 'ERR_HTTP_UNAUTHENTICATED', reason: 'authentication failed' });
      const lines = refusals();
      assert.equal(lines.length, 1);
      assert.equal(lines[0]?.['why'], 'wrong password for tess');
      assert.equal(lines[0]?.['user'], 'tess');
      assert.equal(lines[0]?.['level'], 40);
      // The error handler does not log it a second time.
      assert.equal(web.logLines.filter((l) => l['msg'] === 'HTTP request refused').length, 0);
    } finally {
      await close();
    }
  });

  it("challenges: Basic and Bearer for clients, Bearer only for a browser page's script", async () => {
    try {
      const bad = { authorization: basic('tess', 'wrong') };
      assert.deepEqual(await get(whoami(), bad), {
        status: 401,
        challenge: 'Basic realm="PACS", charset="UTF-8", Bearer realm="PACS"',
      });
      assert.deepEqual(await get(whoami(), {}), {
        status: 401,
        challenge: 'Basic realm="PACS", charset="UTF-8", Bearer realm="PACS"',
      });
      assert.deepEqual(await get(whoami(), { authorization: 'Bearer nope' }), {
        status: 401,
        challenge: 'Basic realm="PACS", charset="UTF-8", Bearer realm="PACS", error="invalid_token"',
      });
      const scripts: Array<Record<string, string>> = [
        { 'sec-fetch-mode': 'cors' },
        { 'sec-fetch-mode': 'same-origin' },
        { 'x-requested-with': 'XMLHttpRequest' },
      ];
      for (const h of scripts)
        assert.deepEqual(await get(whoami(), h), {
          status: 401,
          challenge: 'Bearer realm="PACS"',
        });
      // A navigation may get the Basic challenge.
      assert.match((await get(whoami(), { 'sec-fetch-mode': 'navigate' })).challenge ?? '', /^Basic /);
    } finally {
      await close();
    }
  });

  it('HTTP/2 (h2c): the same credentials, challenges and session cookie', async () => {
    try {
      const session = http2.connect(web.origin);
      const ask = (headers: Record<string, string>, body?: string) =>
        new Promise<{ status: number; headers: http2.IncomingHttpHeaders; text: string }>(
          (resolve, reject) => {
            const req = session.request(headers);
            let text = '';
            let answer: http2.IncomingHttpHeaders = {};
            req.on('response', (h) => {
              answer = h;
            });
            req.setEncoding('utf8');
            req.on('data', (c: string) => {
              text += c;
            });
            req.on('end', () => resolve({ status: Number(answer[':status']), headers: answer, text }));
            req.on('error', reject);
            req.end(body);
          },
        );
      try {
        let r = await ask({ ':path': '/api/auth/whoami', authorization: basic('tess', 'correct horse') });
        assert.equal(r.status, 200);
        assert.equal((JSON.parse(r.text) as { user: string }).user, 'tess');
        r = await ask({ ':path': '/api/auth/whoami' });
        assert.equal(r.status, 401);
        assert.equal(
          r.headers['www-authenticate'],
          'Basic realm="PACS", charset="UTF-8", Bearer realm="PACS"',
        );
        r = await ask(
          { ':path': '/api/auth/login', ':method': 'POST', 'content-type': 'application/json' },
          JSON.stringify({ user: 'tess', password: 'correct horse' }),
        );
        assert.equal(r.status, 200);
        const cookie = String(r.headers['set-cookie'] ?? '').split(';')[0] ?? '';
        assert.match(cookie, /^__Host-pacs_session=/);
        r = await ask({ ':path': '/api/auth/whoami', cookie });
        assert.equal((JSON.parse(r.text) as { method: string }).method, 'session');
      } finally {
        session.close();
      }
    } finally {
      await close();
    }
  });

  it('a malformed or unknown Authorization header is 401, never anonymous', async () => {
    try {
      for (const header of ['Basic !!!', 'Basic dGVzcw==', 'Bearer a b', 'Digest username="tess"', 'Basic']) {
        const r = await fetch(whoami(), { headers: { authorization: header } });
        assert.equal(r.status, 401, header);
        assert.equal(((await r.json()) as { code: string }).code, 'ERR_HTTP_UNAUTHENTICATED');
      }
      assert.deepEqual(
        refusals().map((l) => l['why']),
        [
          'Basic credentials are not base64',
          'Basic credentials have no ":"',
          'the Bearer token is not a b64token',
          'the digest authorization scheme is not supported (Basic or Bearer)',
          'Basic credentials are not base64',
        ],
      );
    } finally {
      await close();
    }
  });

  it('Bearer: a valid token is its user; expired, revoked (replay after revocation) and unknown ones 401 invalid_token', async () => {
    try {
      const good = identity.addToken('tess');
      const expired = identity.addToken('tess', new Date(Date.now() - 1000));
      let r = await fetch(whoami(), { headers: { authorization: `Bearer ${good.token}` } });
      assert.equal(r.status, 200);
      assert.equal(((await r.json()) as { method: string }).method, 'token');
      // A token that worked, replayed after `pacs token revoke`.
      good.record.revoked = true;
      for (const token of [good.token, expired.token, 'pacs_0000_unknown']) {
        r = await fetch(whoami(), { headers: { authorization: `Bearer ${token}` } });
        assert.equal(r.status, 401);
        assert.equal(r.headers.get('www-authenticate'), BEARER_CHALLENGE);
        assert.deepEqual(await r.json(), {
          code: 'ERR_HTTP_UNAUTHENTICATED',
          reason: 'authentication failed',
        });
      }
      assert.deepEqual(
        refusals().map((l) => l['why']),
        [`token ${good.record.id} is revoked`, `token ${expired.record.id} expired`, 'unknown token'],
      );
    } finally {
      await close();
    }
  });

  it('a session: login sets the cookie (exact flags), CSRF guards unsafe methods, logout ends it', async () => {
    try {
      const answer = await login({ user: 'tess', password: 'correct horse' });
      assert.equal(answer.status, 200);
      const body = (await answer.json()) as {
        user: string;
        role: string;
        permissions: string[];
        csrfToken: string;
      };
      assert.equal(body.user, 'tess');
      assert.equal(body.role, 'technologist');
      assert.ok(body.permissions.includes('upload'));
      const setCookie = answer.headers.get('set-cookie') ?? '';
      const m =
        /^__Host-pacs_session=([A-Za-z0-9_-]+); Path=\/; Max-Age=(\d+); HttpOnly; Secure; SameSite=Strict$/.exec(
          setCookie,
        );
      assert.ok(m !== null, setCookie);
      assert.ok(Number(m[2]) > 8 * 3600 - 60 && Number(m[2]) <= 8 * 3600);
      const [session, sessionId] = [identity.sessions.get(m[1] ?? ''), m[1] ?? ''];
      assert.equal(session?.csrfToken, body.csrfToken);
      const cookie = `__Host-pacs_session=${sessionId}`;

      // A safe request needs no CSRF token; whoami gives it back (the page may have reloaded).
      let r = await fetch(whoami(), { headers: { cookie } });
      assert.equal(r.status, 200);
      assert.deepEqual(await r.json(), { ...body, method: 'session' });

      // An unsafe request with the cookie and no token, or a wrong one: 403 before the handler (STOW stores nothing).
      const stow = (headers: Record<string, string>) =>
        fetch(`${web.base}/studies`, {
          method: 'POST',
          headers: {
            cookie,
            'content-type': 'multipart/related; type="application/dicom"; boundary=b',
            ...headers,
          },
          body: '--b--\r\n',
        });
      const attempts: Array<Record<string, string>> = [
        {},
        { 'x-csrf-token': `${body.csrfToken.slice(0, -1)}${body.csrfToken.endsWith('A') ? 'B' : 'A'}` },
        { 'x-csrf-token': '' },
      ];
      for (const headers of attempts) {
        r = await stow(headers);
        assert.equal(r.status, 403);
        assert.deepEqual(await r.json(), {
          code: 'ERR_HTTP_CSRF',
          reason: "POST with a session cookie needs the session's X-CSRF-Token header",
        });
      }
      assert.equal(refusals().length, 3);
      // With the token the request goes through (an empty multipart payload: 400 from STOW itself).
      r = await stow({ 'x-csrf-token': body.csrfToken });
      assert.notEqual(r.status, 403);
      assert.notEqual(r.status, 401);
      await r.arrayBuffer();
      // Logout without the token is refused too; with it, the session ends and the cookie is cleared.
      r = await logout(web.origin, cookie);
      assert.equal(r.status, 403);
      await r.arrayBuffer();
      r = await logout(web.origin, cookie, body.csrfToken);
      assert.equal(r.status, 204);
      assert.equal(
        r.headers.get('set-cookie'),
        '__Host-pacs_session=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict',
      );
      assert.equal(identity.sessions.size, 0);
      // The cookie replayed after logout: anonymous, 401, and told to forget the cookie. A page's
      // script gets no Basic challenge (no browser password dialog).
      r = await fetch(whoami(), { headers: { cookie, 'sec-fetch-mode': 'same-origin' } });
      assert.equal(r.status, 401);
      assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="PACS"');
      assert.match(r.headers.get('set-cookie') ?? '', /^__Host-pacs_session=; Path=\/; Max-Age=0;/);
      await r.arrayBuffer();
    } finally {
      await close();
    }
  });

  it('login refuses a wrong password (401), a malformed body (400), and Basic/Bearer requests need no CSRF token', async () => {
    try {
      let r = await login({ user: 'tess', password: 'nope' });
      assert.equal(r.status, 401);
      assert.equal(r.headers.get('set-cookie'), null);
      assert.deepEqual(await r.json(), { code: 'ERR_HTTP_UNAUTHENTICATED', reason: 'authentication failed' });
      r = await login({ user: 'tess' });
      assert.equal(r.status, 400);
      await r.arrayBuffer();
      r = await fetch(`${web.origin}/api/auth/logout`, {
        method: 'POST',
        headers: { authorization: basic('tess', 'correct horse') },
      });
      assert.equal(r.status, 204);
      assert.equal(r.headers.get('set-cookie'), null);
    } finally {
      await close();
    }
  });

  it('failed attempts beyond the limit: 429 with Retry-After and a log line each, for Basic and the login form', async () => {
    try {
      for (let i = 0; i < 3; i++) {
        const r = await fetch(whoami(), { headers: { authorization: basic('vera', `guess-${i}`) } });
        assert.equal(r.status, 401);
        await r.arrayBuffer();
      }
      // Now even the right password waits: the limit is per user and per address.
      let r = await fetch(whoami(), { headers: { authorization: basic('vera', 'vera-pw') } });
      assert.equal(r.status, 429);
      const retry = Number(r.headers.get('retry-after'));
      assert.ok(retry >= 59 && retry <= 60, `Retry-After ${retry}`);
      assert.equal(r.headers.get('www-authenticate'), null);
      assert.deepEqual(await r.json(), {
        code: 'ERR_HTTP_TOO_MANY_ATTEMPTS',
        reason: `too many failed attempts: try again in ${retry} s`,
      });
      r = await login({ user: 'tess', password: 'correct horse' });
      // Same address: limited too.
      assert.equal(r.status, 429);
      assert.ok(Number(r.headers.get('retry-after')) >= 1);
      await r.arrayBuffer();
      const lines = refusals();
      assert.equal(lines.length, 5);
      assert.deepEqual(
        lines.map((l) => l['status']),
        [401, 401, 401, 429, 429],
      );
      assert.equal(lines[3]?.['why'], 'too many failed attempts for vera');
      assert.equal(lines[3]?.['remoteAddress'], '127.0.0.1');
    } finally {
      await close();
    }
  });

  it('public operations check no credentials (a bad header does not break /healthz)', async () => {
    try {
      const r = await fetch(`${web.origin}/healthz`, { headers: { authorization: basic('tess', 'wrong') } });
      assert.equal(r.status, 200);
      await r.arrayBuffer();
      assert.deepEqual(identity.calls, []);
    } finally {
      await close();
    }
  });
});

describe('HTTP credentials without an identity service', () => {
  let web: TestWeb;
  before(async () => {
    web = await startTestWeb({ policy: SECURITY_POLICY });
  });
  after(() => web.close());

  it('nobody authenticates: 401 for credentials, 503 for the login form', async () => {
    let r = await fetch(`${web.origin}/api/auth/whoami`, { headers: { authorization: basic('a', 'b') } });
    assert.equal(r.status, 401);
    await r.arrayBuffer();
    r = await fetch(`${web.origin}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user: 'a', password: 'b' }),
    });
    assert.equal(r.status, 503);
    assert.equal(((await r.json()) as { code: string }).code, 'ERR_HTTP_AUTH_UNAVAILABLE');
  });
});
