/**
 * The identity service over the in-memory store, with a clock of its own: passwords (and the
 * unknown-user path), API tokens (expiry, revocation and replay, role scope), JWT delegation,
 * sessions (idle and absolute expiry, end), rate limiting per user and per address with its
 * events and log lines. The SQL stores are held to the same contract in test/archive/security.
 */
import assert from 'node:assert/strict';
import { beforeEach, describe, test } from 'node:test';
import pino from 'pino';
import { MemoryIdentityStore } from '../../src/archive/security/memory-identity-store.js';
import { EventBus, type EventOf } from '../../src/core/events.js';
import type { AttemptContext, AuthResult, JwtVerifier } from '../../src/security/authentication.js';
import {
  addRole,
  addUser,
  createToken,
  revokeToken,
  setDisabled,
  setPassword,
  setRole,
} from '../../src/security/identity-admin.js';
import { csrfTokenMatches, StoredIdentityService } from '../../src/security/identity-service.js';
import type { IdentityStore } from '../../src/security/identity-store.js';
import { type PasswordHasher, scryptHasher } from '../../src/security/passwords.js';

const PASSWORD = 'a long enough password';
const START = Date.parse('2026-03-01T08:00:00Z');
const MIN = 60_000;

interface Rig {
  store: IdentityStore;
  service: StoredIdentityService;
  events: EventOf<'authentication'>[];
  logs: Array<{ level: number; msg: string }>;
  calls: { verify: number; verifyUnknown: number };
  advance(ms: number): void;
  now(): number;
}

async function rig(options: { jwt?: JwtVerifier } = {}): Promise<Rig> {
  let clock = START;
  const store = new MemoryIdentityStore();
  const bus = new EventBus();
  const events: EventOf<'authentication'>[] = [];
  bus.on('authentication', (e) => events.push(e));
  const logs: Array<{ level: number; msg: string }> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const calls = { verify: 0, verifyUnknown: 0 };
  const hasher: PasswordHasher = {
    ...scryptHasher,
    verify: (p, h) => {
      calls.verify++;
      return scryptHasher.verify(p, h);
    },
    verifyUnknown: (p) => {
      calls.verifyUnknown++;
      return scryptHasher.verifyUnknown(p);
    },
  };
  const service = new StoredIdentityService({
    store,
    events: bus,
    logger,
    hasher,
    now: () => clock,
    ...(options.jwt ? { jwt: options.jwt } : {}),
  });
  return {
    store,
    service,
    events,
    logs,
    calls,
    advance: (ms) => {
      clock += ms;
    },
    now: () => clock,
  };
}

const at = (remoteAddress: string, channel?: 'http' | 'dicom'): AttemptContext => ({
  remoteAddress,
  ...(channel ? { channel } : {}),
});

function identityOf(result: AuthResult) {
  assert.ok(result.ok, `expected success, got ${result.ok ? '' : result.reason}`);
  return result.identity;
}

function failure(result: AuthResult): { reason: string; retryAfterMs?: number } {
  assert.ok(!result.ok, 'expected a failure');
  return result;
}

async function user(store: IdentityStore, name: string, role: string, password = PASSWORD): Promise<void> {
  const added = await addUser(store, { name, role, password });
  assert.ok(added.ok, added.ok ? '' : added.error);
}

describe('identity service: passwords', () => {
  let r: Rig;
  beforeEach(async () => {
    r = await rig();
    await user(r.store, 'alice', 'technologist');
  });

  test("the right password: the user with their role's permissions, evented once", async () => {
    const id = identityOf(await r.service.authenticatePassword('alice', PASSWORD, at('10.0.0.1')));
    assert.equal(id.kind, 'user');
    assert.equal(id.name, 'alice');
    assert.equal(id.role, 'technologist');
    assert.equal(id.method, 'password');
    assert.equal(id.remoteAddress, '10.0.0.1');
    assert.ok(
      id.permissions.has('upload') && id.permissions.has('worklist') && !id.permissions.has('delete'),
    );
    assert.deepEqual(r.events, [
      {
        type: 'authentication',
        action: 'login',
        outcome: 'success',
        user: 'alice',
        method: 'password',
        remoteAddress: '10.0.0.1',
      },
    ]);
    // HTTP Basic authenticates every request: the same success is not evented again at once...
    identityOf(await r.service.authenticatePassword('alice', PASSWORD, at('10.0.0.1')));
    assert.equal(r.events.length, 1);
    // ... but after the interval, and from elsewhere, it is.
    identityOf(await r.service.authenticatePassword('alice', PASSWORD, at('10.0.0.2')));
    r.advance(11 * MIN);
    identityOf(await r.service.authenticatePassword('alice', PASSWORD, at('10.0.0.1')));
    assert.equal(r.events.length, 3);
  });

  test('DICOM user identity: the method says so', async () => {
    const id = identityOf(await r.service.authenticatePassword('alice', PASSWORD, at('10.0.0.1', 'dicom')));
    assert.equal(id.method, 'dimse-password');
  });

  test('a wrong password fails, evented with the name given and the reason', async () => {
    const f = failure(await r.service.authenticatePassword('alice', 'not the password', at('10.0.0.1')));
    assert.equal(f.reason, 'wrong password');
    assert.equal(f.retryAfterMs, undefined);
    assert.deepEqual(r.events, [
      {
        type: 'authentication',
        action: 'login',
        outcome: 'failure',
        user: 'alice',
        method: 'password',
        remoteAddress: '10.0.0.1',
        reason: 'wrong password',
      },
    ]);
    assert.ok(r.logs.some((l) => l.msg === 'authentication failed'));
  });

  test('an unknown user costs a verification too (the dummy hash), so timing does not tell', async () => {
    const f = failure(await r.service.authenticatePassword('mallory', PASSWORD, at('10.0.0.1')));
    assert.equal(f.reason, 'unknown user');
    assert.deepEqual(r.calls, { verify: 0, verifyUnknown: 1 });
    // A name that could never exist takes the same path.
    failure(await r.service.authenticatePassword('no such: name', PASSWORD, at('10.0.0.1')));
    assert.deepEqual(r.calls, { verify: 0, verifyUnknown: 2 });
    // A known user: a real verification.
    failure(await r.service.authenticatePassword('alice', 'wrong password!', at('10.0.0.1')));
    assert.deepEqual(r.calls, { verify: 1, verifyUnknown: 2 });
    assert.equal(r.events[0]?.user, 'mallory');
  });

  test('a disabled user is refused with the right password', async () => {
    assert.ok((await setDisabled(r.store, 'alice', true)).ok);
    assert.equal(
      failure(await r.service.authenticatePassword('alice', PASSWORD, at('10.0.0.1'))).reason,
      'user disabled',
    );
    assert.ok((await setDisabled(r.store, 'alice', false)).ok);
    identityOf(await r.service.authenticatePassword('alice', PASSWORD, at('10.0.0.1')));
  });

  test('permissions come from the role at authentication time (custom roles too)', async () => {
    assert.ok((await addRole(r.store, { name: 'reader', permissions: ['view', 'download'] })).ok);
    assert.ok((await setRole(r.store, 'alice', 'reader')).ok);
    const id = identityOf(await r.service.authenticatePassword('alice', PASSWORD, at('10.0.0.1')));
    assert.equal(id.role, 'reader');
    assert.deepEqual([...id.permissions].sort(), ['download', 'view']);
  });
});

describe('identity service: password checks, parallel and repeated', () => {
  test('a good check is remembered: the next requests skip scrypt until the password changes or 5 min pass', async () => {
    const r = await rig();
    await user(r.store, 'gus', 'viewer');
    identityOf(await r.service.authenticatePassword('gus', PASSWORD, at('10.4.0.1')));
    identityOf(await r.service.authenticatePassword('gus', PASSWORD, at('10.4.0.2')));
    assert.equal(r.calls.verify, 1);
    failure(await r.service.authenticatePassword('gus', `${PASSWORD}!`, at('10.4.0.1')));
    assert.equal(r.calls.verify, 2, 'another password is checked');
    r.advance(4 * MIN);
    identityOf(await r.service.authenticatePassword('gus', PASSWORD, at('10.4.0.1')));
    assert.equal(r.calls.verify, 2);
    r.advance(1 * MIN);
    identityOf(await r.service.authenticatePassword('gus', PASSWORD, at('10.4.0.1')));
    assert.equal(r.calls.verify, 3, 'forgotten 5 minutes after the check, however often it was used');
    assert.ok((await setPassword(r.store, 'gus', 'the next password')).ok);
    assert.equal(
      failure(await r.service.authenticatePassword('gus', PASSWORD, at('10.4.0.1'))).reason,
      'wrong password',
    );
    identityOf(await r.service.authenticatePassword('gus', 'the next password', at('10.4.0.1')));
    assert.equal(r.calls.verify, 5);
  });

  test("a client's parallel requests with the same credentials share one check", async () => {
    const r = await rig();
    await user(r.store, 'hana', 'viewer');
    const results = await Promise.all(
      Array.from({ length: 8 }, () => r.service.authenticatePassword('hana', PASSWORD, at('10.4.0.3'))),
    );
    for (const result of results) identityOf(result);
    assert.equal(r.calls.verify, 1);
  });

  test('guesses sent in parallel cannot outrun the count: at most the free failures are checked', async () => {
    const r = await rig();
    await user(r.store, 'ivy', 'viewer');
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        r.service.authenticatePassword('ivy', `guess number ${i}`, at(`10.5.0.${i}`)),
      ),
    );
    assert.ok(r.calls.verify <= 5, `${r.calls.verify} checks`);
    const busy = results.filter((x) => !x.ok && x.reason === 'too many password checks at once');
    assert.equal(busy.length, 20 - r.calls.verify);
    for (const b of busy) assert.equal(failure(b).retryAfterMs, 1000);
    assert.ok(r.logs.some((l) => l.level === 40 && /too many password checks at once/.test(l.msg)));
  });
});

describe('identity service: rate limiting', () => {
  test('per user: after 5 failures the name is locked, doubling, even for the right password, then free again', async () => {
    const r = await rig();
    await user(r.store, 'bob', 'viewer');
    for (let i = 1; i <= 5; i++) {
      // From different addresses: the per-user limit holds whoever tries.
      const f = failure(await r.service.authenticatePassword('bob', `wrong guess ${i}`, at(`192.0.2.${i}`)));
      assert.equal(f.retryAfterMs, undefined, `failure ${i} is free`);
    }
    const sixth = failure(await r.service.authenticatePassword('bob', 'wrong guess 6', at('192.0.2.6')));
    assert.equal(sixth.retryAfterMs, 1000);
    const verifications = r.calls.verify;
    const locked = failure(await r.service.authenticatePassword('bob', PASSWORD, at('192.0.2.7')));
    assert.ok(locked.retryAfterMs !== undefined && locked.retryAfterMs > 0 && locked.retryAfterMs <= 1000);
    assert.match(locked.reason, /too many failed attempts/);
    assert.equal(r.calls.verify, verifications, 'a locked name is refused without checking the password');
    assert.ok(
      r.logs.some((l) => l.level === 40 && /locked for 1 s/.test(l.msg)),
      'the lock is logged as a warning',
    );
    assert.ok(
      r.logs.some((l) => l.level === 40 && /authentication refused: too many failed attempts/.test(l.msg)),
    );
    const evented = r.events.filter((e) => e.outcome === 'failure' && /too many/.test(e.reason ?? ''));
    assert.equal(evented.length, 1);
    r.advance(1000);
    // The next failure doubles the lock.
    assert.equal(
      failure(await r.service.authenticatePassword('bob', 'wrong guess 7', at('192.0.2.8'))).retryAfterMs,
      2000,
    );
    r.advance(2000);
    identityOf(await r.service.authenticatePassword('bob', PASSWORD, at('192.0.2.9')));
    // A success clears the name.
    assert.equal(r.service.limiter.failures({ kind: 'user', value: 'bob' }), 0);
    // Other names were never affected.
    await user(r.store, 'carol', 'viewer');
    identityOf(await r.service.authenticatePassword('carol', PASSWORD, at('192.0.2.9')));
  });

  test('per address: 20 failures over many names lock the address, not the others', async () => {
    const r = await rig();
    await user(r.store, 'dave', 'viewer');
    for (let i = 0; i < 20; i++)
      assert.equal(
        failure(await r.service.authenticatePassword(`user${i}`, PASSWORD, at('198.51.100.7'))).retryAfterMs,
        undefined,
      );
    assert.ok(
      (failure(await r.service.authenticatePassword('user20', PASSWORD, at('198.51.100.7'))).retryAfterMs ??
        0) > 0,
    );
    // Dave's right password from the scanning address: refused; from his own: accepted.
    assert.ok(
      (failure(await r.service.authenticatePassword('dave', PASSWORD, at('198.51.100.7'))).retryAfterMs ??
        0) > 0,
    );
    identityOf(await r.service.authenticatePassword('dave', PASSWORD, at('198.51.100.8')));
    // Token guessing from the locked address is refused too.
    assert.ok(
      (failure(
        await r.service.authenticateBearer(`pacs_${'0'.repeat(16)}_${'a'.repeat(43)}`, at('198.51.100.7')),
      ).retryAfterMs ?? 0) > 0,
    );
    // Forgotten after the window.
    r.advance(16 * MIN);
    failure(await r.service.authenticatePassword('user21', PASSWORD, at('198.51.100.7')));
    assert.equal(r.service.limiter.failures({ kind: 'address', value: '198.51.100.7' }), 1);
  });
});

describe('identity service: API tokens', () => {
  let r: Rig;
  beforeEach(async () => {
    r = await rig();
    await user(r.store, 'erin', 'clinician');
  });

  async function token(request: { role?: string; expiresDays?: number } = {}) {
    const created = await createToken(r.store, { user: 'erin', ...request }, new Date(r.now()));
    assert.ok(created.ok, created.ok ? '' : created.error);
    return created.value;
  }

  test("a token: its user with the token's role, its id; its use recorded", async () => {
    const t = await token({ role: 'viewer' });
    const id = identityOf(await r.service.authenticateBearer(t.token, at('10.1.0.1')));
    assert.equal(id.name, 'erin');
    assert.equal(id.role, 'viewer');
    assert.equal(id.method, 'token');
    assert.equal(id.tokenId, t.record.tokenId);
    assert.deepEqual([...id.permissions], ['view']);
    assert.equal((await r.store.getToken(t.record.tokenId))?.lastUsedAt?.getTime(), r.now());
    assert.equal(r.events.at(-1)?.method, 'token');
  });

  test('a role wider than the user is refused at creation; a demoted user demotes the token', async () => {
    const wider = await createToken(r.store, { user: 'erin', role: 'technologist' });
    assert.ok(!wider.ok);
    assert.match(
      wider.error,
      /role technologist grants upload, modify, worklist, which user erin \(role clinician\) does not have/,
    );
    const t = await token();
    assert.ok(
      identityOf(await r.service.authenticateBearer(t.token, at('10.1.0.1'))).permissions.has('download'),
    );
    assert.ok((await setRole(r.store, 'erin', 'viewer')).ok);
    const id = identityOf(await r.service.authenticateBearer(t.token, at('10.1.0.1')));
    assert.deepEqual([...id.permissions], ['view'], "never more than the user's role now");
  });

  test('an expired token is refused', async () => {
    const t = await token({ expiresDays: 1 });
    identityOf(await r.service.authenticateBearer(t.token, at('10.1.0.1')));
    r.advance(86_400_000);
    assert.match(failure(await r.service.authenticateBearer(t.token, at('10.1.0.1'))).reason, /has expired/);
  });

  test('a revoked token is refused, also when replayed later', async () => {
    const t = await token();
    identityOf(await r.service.authenticateBearer(t.token, at('10.1.0.1')));
    assert.ok((await revokeToken(r.store, t.record.tokenId)).ok);
    assert.match(failure(await r.service.authenticateBearer(t.token, at('10.1.0.1'))).reason, /was revoked/);
    r.advance(60 * MIN);
    assert.match(failure(await r.service.authenticateBearer(t.token, at('10.1.0.2'))).reason, /was revoked/);
    const again = await revokeToken(r.store, t.record.tokenId);
    assert.ok(!again.ok && /revoked already/.test(again.error));
    const failures = r.events.filter((e) => e.outcome === 'failure');
    assert.equal(failures.length, 2);
    assert.equal(failures[0]?.user, 'erin');
  });

  test("a disabled owner's token, a wrong secret, a malformed token: refused", async () => {
    const t = await token();
    const wrongSecret = `${t.token.slice(0, -1)}${t.token.endsWith('A') ? 'B' : 'A'}`;
    assert.match(
      failure(await r.service.authenticateBearer(wrongSecret, at('10.1.0.1'))).reason,
      /unknown API token/,
    );
    assert.match(
      failure(await r.service.authenticateBearer('pacs_nonsense', at('10.1.0.1'))).reason,
      /malformed/,
    );
    assert.ok((await setDisabled(r.store, 'erin', true)).ok);
    assert.equal(
      failure(await r.service.authenticateBearer(t.token, at('10.1.0.1'))).reason,
      'user disabled',
    );
  });

  test('a removed user takes their tokens along', async () => {
    const t = await token();
    assert.ok(await r.store.removeUser('erin'));
    assert.match(
      failure(await r.service.authenticateBearer(t.token, at('10.1.0.1'))).reason,
      /unknown API token/,
    );
  });
});

describe('identity service: JWT', () => {
  const verifier: JwtVerifier & { seen: string[] } = {
    seen: [],
    async verify(token, context) {
      this.seen.push(token);
      if (token !== 'good.jwt.token') return { ok: false, reason: 'bad signature' };
      return {
        ok: true,
        identity: {
          kind: 'user',
          name: 'oidc-user',
          role: 'viewer',
          permissions: new Set(['view']),
          method: 'oidc',
          remoteAddress: context.remoteAddress,
        },
      };
    },
  };

  test('without a verifier, a Bearer that is not ours and a DICOM JWT are refused', async () => {
    const r = await rig();
    assert.match(
      failure(await r.service.authenticateBearer('eyJhbGciOi.x.y', at('10.2.0.1'))).reason,
      /no OpenID provider/,
    );
    assert.match(
      failure(await r.service.authenticateJwt('eyJhbGciOi.x.y', at('10.2.0.1'))).reason,
      /no OpenID provider/,
    );
  });

  test('with one, a JWT goes to it: oidc over HTTP, dimse-jwt over DICOM; its refusals count', async () => {
    const r = await rig({ jwt: verifier });
    assert.equal(
      identityOf(await r.service.authenticateBearer('good.jwt.token', at('10.2.0.1'))).method,
      'oidc',
    );
    assert.equal(
      identityOf(await r.service.authenticateJwt('good.jwt.token', at('10.2.0.1', 'dicom'))).method,
      'dimse-jwt',
    );
    assert.equal(
      failure(await r.service.authenticateBearer('bad.jwt.token', at('10.2.0.1'))).reason,
      'bad signature',
    );
    assert.equal(r.service.limiter.failures({ kind: 'address', value: '10.2.0.1' }), 1);
    assert.deepEqual(verifier.seen, ['good.jwt.token', 'good.jwt.token', 'bad.jwt.token']);
    // A verifier that fails (its provider unreachable): refused, not counted against the client.
    const broken = await rig({
      jwt: {
        verify: async () => {
          throw new Error('JWKS unreachable');
        },
      },
    });
    assert.match(
      failure(await broken.service.authenticateBearer('any.jwt.token', at('10.2.0.1'))).reason,
      /JWKS unreachable/,
    );
    assert.equal(broken.service.limiter.failures({ kind: 'address', value: '10.2.0.1' }), 0);
    assert.deepEqual(
      r.events.map((e) => [e.outcome, e.method]),
      [
        ['success', 'oidc'],
        ['success', 'dimse-jwt'],
        ['failure', 'oidc'],
      ],
    );
  });
});

describe('identity service: sessions', () => {
  let r: Rig;
  beforeEach(async () => {
    r = await rig();
    await user(r.store, 'frank', 'viewer');
  });

  async function login() {
    const id = identityOf(await r.service.authenticatePassword('frank', PASSWORD, at('10.3.0.1')));
    return r.service.createSession(id, at('10.3.0.1'));
  }

  test('a session: 256-bit id stored hashed, a CSRF token, resumed as the user', async () => {
    const s = await login();
    assert.match(s.sessionId, /^[A-Za-z0-9_-]{43}$/);
    assert.match(s.csrfToken, /^[A-Za-z0-9_-]{43}$/);
    assert.notEqual(s.csrfToken, s.sessionId);
    assert.equal(s.expiresAt.getTime(), r.now() + 12 * 60 * MIN);
    assert.equal(await r.store.getSession(s.sessionId), undefined, 'the cookie value is not the key');
    const resumed = await r.service.resumeSession(s.sessionId);
    assert.equal(resumed?.identity.name, 'frank');
    assert.equal(resumed?.identity.method, 'session');
    assert.equal(resumed?.csrfToken, s.csrfToken);
    assert.ok(csrfTokenMatches(s.csrfToken, resumed?.csrfToken));
    assert.ok(!csrfTokenMatches(s.csrfToken, `${s.csrfToken}x`));
    assert.ok(!csrfTokenMatches(s.csrfToken, undefined));
    assert.equal(r.events.at(-1)?.method, 'session');
    assert.equal(await r.service.resumeSession('not a session id'), undefined);
    assert.equal(await r.service.resumeSession('A'.repeat(43)), undefined);
  });

  test('idle expiry: 30 minutes without a request end it', async () => {
    const s = await login();
    r.advance(29 * MIN);
    assert.ok(await r.service.resumeSession(s.sessionId));
    r.advance(29 * MIN);
    assert.ok(await r.service.resumeSession(s.sessionId), 'each request restarts the idle time');
    r.advance(30 * MIN);
    assert.equal(await r.service.resumeSession(s.sessionId), undefined);
    r.advance(-30 * MIN);
    assert.equal(await r.service.resumeSession(s.sessionId), undefined, 'an expired session is removed');
  });

  test('absolute expiry: 12 hours end it whatever the activity', async () => {
    const s = await login();
    for (let t = 0; t < 12 * 60 - 20; t += 20) {
      r.advance(20 * MIN);
      assert.ok(await r.service.resumeSession(s.sessionId), `at ${t + 20} min`);
    }
    r.advance(20 * MIN);
    assert.equal(await r.service.resumeSession(s.sessionId), undefined);
  });

  test('ending a session: gone, a logout evented; a disabled user loses their session', async () => {
    const s = await login();
    await r.service.endSession(s.sessionId);
    assert.equal(await r.service.resumeSession(s.sessionId), undefined);
    assert.deepEqual(r.events.at(-1), {
      type: 'authentication',
      action: 'logout',
      outcome: 'success',
      user: 'frank',
      method: 'session',
      remoteAddress: '10.3.0.1',
    });
    await r.service.endSession(s.sessionId); // twice: nothing more
    assert.equal(r.events.filter((e) => e.action === 'logout').length, 1);
    const before = await login();
    assert.ok((await setPassword(r.store, 'frank', 'a brand new password')).ok);
    assert.equal(
      await r.service.resumeSession(before.sessionId),
      undefined,
      'a new password ends the sessions',
    );
    assert.ok((await setPassword(r.store, 'frank', PASSWORD)).ok);
    const again = await login();
    assert.ok((await setDisabled(r.store, 'frank', true)).ok);
    assert.equal(await r.service.resumeSession(again.sessionId), undefined);
  });
});
