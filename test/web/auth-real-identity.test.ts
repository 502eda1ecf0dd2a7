/**
 * The HTTP authentication against the real identity service (security/identity-service.ts on
 * the identity store of an SQLite index), not the tests' fake: Basic with the right and a wrong
 * password, an API token (then replayed after `pacs token revoke`), the login form's session
 * (cookie, CSRF, logout), the failed-attempt limit (429 with Retry-After), and the service's
 * 'authentication' events for each (the web layer emits none of its own).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { identityServiceFor, identityStoreOf } from '../../src/archive/security/open.js';
import type { PacsEvent } from '../../src/core/events.js';
import { addUser, createToken, revokeToken } from '../../src/security/identity-admin.js';
import { identityConfig } from '../../src/security/identity-config.js';
import { SECURITY_POLICY } from '../../src/web/policy.js';
import { basic, logout } from './auth-helpers.js';
import { startTestWeb, type TestWeb } from './helpers.js';

describe('HTTP authentication with the real identity service (SQLite)', () => {
  let web: TestWeb;
  const events: PacsEvent[] = [];

  before(async () => {
    web = await startTestWeb({
      policy: SECURITY_POLICY,
      identity: (archive, bus) =>
        identityServiceFor(archive.index, identityConfig.identity.parse({}), {
          events: bus,
          rateLimit: { userFreeFailures: 2, addressFreeFailures: 100, baseLockMs: 30_000 },
        }),
    });
    web.events.subscribe((e) => {
      if (e.type === 'authentication') events.push(e);
    });
    const archive = web.archive;
    const store = identityStoreOf(archive.index);
    assert.ok(
      (await addUser(store, { name: 'tess', role: 'technologist', password: 'Correct-Horse-42' })).ok,
    );
    assert.ok((await addUser(store, { name: 'vera', role: 'viewer', password: 'Vera-Password-42' })).ok);
  });
  after(() => web.close());

  const whoami = (headers: Record<string, string>) => fetch(`${web.origin}/api/auth/whoami`, { headers });

  it('Basic, an API token and its replay after revocation', async () => {
    let r = await whoami({ authorization: basic('tess', 'Correct-Horse-42') });
    assert.equal(r.status, 200);
    assert.equal(((await r.json()) as { method: string }).method, 'password');
    r = await whoami({ authorization: basic('tess', 'wrong-password') });
    assert.equal(r.status, 401);
    await r.arrayBuffer();
    const store = identityStoreOf(web.archive.index);
    const created = await createToken(store, { user: 'tess', expiresDays: 1 });
    assert.ok(created.ok);
    r = await whoami({ authorization: `Bearer ${created.value.token}` });
    assert.equal(r.status, 200);
    assert.deepEqual(((await r.json()) as { user: string; method: string }).method, 'token');
    assert.ok((await revokeToken(store, created.value.record.tokenId)).ok);
    r = await whoami({ authorization: `Bearer ${created.value.token}` });
    assert.equal(r.status, 401);
    assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="PACS", error="invalid_token"');
    await r.arrayBuffer();
    const failures = events.filter((e) => e.type === 'authentication' && e.outcome !== 'success');
    assert.ok(failures.length >= 2, JSON.stringify(events));
  });

  it('a session: cookie, CSRF, logout', async () => {
    const login = await fetch(`${web.origin}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user: 'vera', password: 'Vera-Password-42' }),
    });
    assert.equal(login.status, 200);
    const body = (await login.json()) as { role: string; csrfToken: string };
    assert.equal(body.role, 'viewer');
    const m =
      /^(__Host-pacs_session=[A-Za-z0-9_-]+); Path=\/; Max-Age=\d+; HttpOnly; Secure; SameSite=Strict$/.exec(
        login.headers.get('set-cookie') ?? '',
      );
    assert.ok(m !== null, login.headers.get('set-cookie') ?? '');
    const cookie = m[1] ?? '';
    let r = await whoami({ cookie });
    assert.equal(r.status, 200);
    assert.equal(((await r.json()) as { method: string }).method, 'session');
    r = await logout(web.origin, cookie);
    assert.equal(r.status, 403);
    await r.arrayBuffer();
    r = await logout(web.origin, cookie, body.csrfToken);
    assert.equal(r.status, 204);
    r = await whoami({ cookie });
    assert.equal(r.status, 401);
    await r.arrayBuffer();
  });

  it('the failed-attempt limit: 429 with Retry-After', async () => {
    let status = 0;
    let retryAfter: string | null = null;
    for (let i = 0; i < 4 && status !== 429; i++) {
      const r = await whoami({ authorization: basic('vera', `guess-${i}`) });
      status = r.status;
      retryAfter = r.headers.get('retry-after');
      await r.arrayBuffer();
    }
    assert.equal(status, 429);
    assert.ok(Number(retryAfter) >= 1, `Retry-After ${retryAfter}`);
    const lines = web.logLines.filter(
      (l) => l['msg'] === 'HTTP authentication refused' && l['status'] === 429,
    );
    assert.ok(lines.length >= 1);
  });
});
