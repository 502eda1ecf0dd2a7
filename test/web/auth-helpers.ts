/**
 * A small IdentityService for the HTTP authentication tests: users with passwords, API tokens
 * (expiring, revocable), sessions with CSRF tokens, a per-user and per-address limit on failed
 * attempts, and an optional JwtVerifier for Bearer JWTs. It answers what the real service
 * (security/identity-service.ts, on the index) answers through the same port; the web layer cannot
 * tell them apart.
 */
import { randomBytes } from 'node:crypto';
import type {
  AttemptContext,
  AuthResult,
  IdentityService,
  JwtVerifier,
  NewSession,
  SessionResult,
} from '../../src/security/authentication.js';
import type { AuthenticationMethod, UserIdentity } from '../../src/security/identity.js';
import { BUILTIN_ROLES, type Permission } from '../../src/security/permissions.js';

export interface FakeUser {
  readonly password: string;
  readonly role: string;
}

export interface FakeToken {
  readonly id: string;
  readonly user: string;
  expiresAt: Date;
  revoked: boolean;
}

export function permissionsOf(role: string): ReadonlySet<Permission> {
  const found = BUILTIN_ROLES.find((r) => r.name === role);
  if (found === undefined) throw new Error(`no role ${role}`);
  return new Set(found.permissions);
}

export class FakeIdentityService implements IdentityService {
  readonly users = new Map<string, FakeUser>();
  readonly tokens = new Map<string, FakeToken>();
  readonly sessions = new Map<string, { identity: UserIdentity; csrfToken: string; expiresAt: Date }>();
  /** Failed attempts per key (`user:NAME`, `addr:ADDRESS`) and when the window started. */
  private readonly failures = new Map<string, { count: number; since: number }>();
  readonly calls: string[] = [];

  constructor(
    readonly options: {
      readonly maxFailures?: number;
      readonly lockoutMs?: number;
      readonly sessionMs?: number;
      readonly jwt?: JwtVerifier;
    } = {},
  ) {}

  addUser(name: string, role: string, password: string): void {
    this.users.set(name, { role, password });
  }

  /** A new API token for `user` (the secret, as `pacs token create` prints it once). */
  addToken(
    user: string,
    expiresAt = new Date(Date.now() + 86_400_000),
  ): { token: string; record: FakeToken } {
    const id = randomBytes(6).toString('hex');
    const token = `pacs_${id}_${randomBytes(24).toString('base64url')}`;
    const record: FakeToken = { id, user, expiresAt, revoked: false };
    this.tokens.set(token, record);
    return { token, record };
  }

  private identity(
    name: string,
    method: AuthenticationMethod,
    context: AttemptContext,
    tokenId?: string,
  ): UserIdentity {
    const user = this.users.get(name);
    if (user === undefined) throw new Error(`no user ${name}`);
    return {
      kind: 'user',
      name,
      role: user.role,
      permissions: permissionsOf(user.role),
      method,
      ...(tokenId !== undefined ? { tokenId } : {}),
      remoteAddress: context.remoteAddress,
    };
  }

  private limited(keys: readonly string[]): number | undefined {
    const max = this.options.maxFailures ?? 5;
    const lockout = this.options.lockoutMs ?? 60_000;
    for (const key of keys) {
      const f = this.failures.get(key);
      if (f === undefined) continue;
      const left = f.since + lockout - Date.now();
      if (left <= 0) this.failures.delete(key);
      else if (f.count >= max) return left;
    }
    return undefined;
  }

  private failed(keys: readonly string[], reason: string): AuthResult {
    for (const key of keys) {
      const f = this.failures.get(key);
      if (f === undefined) this.failures.set(key, { count: 1, since: Date.now() });
      else f.count += 1;
    }
    return { ok: false, reason };
  }

  async authenticatePassword(name: string, password: string, context: AttemptContext): Promise<AuthResult> {
    this.calls.push(`password ${name}`);
    const keys = [`user:${name}`, `addr:${context.remoteAddress ?? '?'}`];
    const wait = this.limited(keys);
    if (wait !== undefined)
      return { ok: false, reason: `too many failed attempts for ${name}`, retryAfterMs: wait };
    const user = this.users.get(name);
    if (user === undefined) return this.failed(keys, `no user ${name}`);
    if (user.password !== password) return this.failed(keys, `wrong password for ${name}`);
    return { ok: true, identity: this.identity(name, 'password', context) };
  }

  async authenticateBearer(token: string, context: AttemptContext): Promise<AuthResult> {
    this.calls.push('bearer');
    const keys = [`addr:${context.remoteAddress ?? '?'}`];
    const wait = this.limited(keys);
    if (wait !== undefined) return { ok: false, reason: 'too many failed attempts', retryAfterMs: wait };
    // A JWT has two dots; our tokens have none.
    if (token.split('.').length === 3 && this.options.jwt !== undefined) {
      const r = await this.options.jwt.verify(token, context);
      return r.ok ? r : this.failed(keys, r.reason);
    }
    const record = this.tokens.get(token);
    if (record === undefined) return this.failed(keys, 'unknown token');
    if (record.revoked) return this.failed(keys, `token ${record.id} is revoked`);
    if (record.expiresAt.getTime() <= Date.now()) return this.failed(keys, `token ${record.id} expired`);
    return { ok: true, identity: this.identity(record.user, 'token', context, record.id) };
  }

  async authenticateJwt(token: string, context: AttemptContext): Promise<AuthResult> {
    if (this.options.jwt === undefined) return { ok: false, reason: 'no OpenID provider is configured' };
    return this.options.jwt.verify(token, context);
  }

  async createSession(identity: UserIdentity, _context: AttemptContext): Promise<NewSession> {
    const sessionId = randomBytes(32).toString('base64url');
    const csrfToken = randomBytes(32).toString('base64url');
    const expiresAt = new Date(Date.now() + (this.options.sessionMs ?? 8 * 3_600_000));
    this.sessions.set(sessionId, { identity: { ...identity, method: 'session' }, csrfToken, expiresAt });
    return { sessionId, csrfToken, expiresAt };
  }

  async resumeSession(sessionId: string): Promise<SessionResult | undefined> {
    this.calls.push('session');
    const s = this.sessions.get(sessionId);
    if (s === undefined || s.expiresAt.getTime() <= Date.now()) return undefined;
    return { identity: s.identity, csrfToken: s.csrfToken };
  }

  async endSession(sessionId: string): Promise<void> {
    this.sessions.delete(sessionId);
  }
}

export function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/** POST /api/auth/logout with the session cookie, and the CSRF token when given. */
export function logout(origin: string, cookie: string, csrfToken?: string): Promise<Response> {
  return fetch(`${origin}/api/auth/logout`, {
    method: 'POST',
    headers: { cookie, ...(csrfToken !== undefined ? { 'x-csrf-token': csrfToken } : {}) },
  });
}
