/**
 * The identity service (issue 14): the one implementation of IdentityService (authentication.ts)
 * that every way in uses (HTTP Basic, Bearer, the login form and its session cookie, DICOM user
 * identity negotiation). It sits on an IdentityStore (archive/security/ keeps it in the index) and
 * answers with a UserIdentity whose permissions are those of the user's role now (custom roles are
 * read from the store at each authentication).
 *
 * - Passwords: scrypt (passwords.ts); an unknown name costs the same work as a known one. A good
 *   check is remembered 5 min in memory (HMAC of name, stored hash and password under a per-process
 *   key), and parallel requests with the same credentials share one check, so HTTP Basic costs one
 *   scrypt per client, not per request. Parallel guesses are limited to the free failures left.
 * - API tokens (tokens.ts): revoked, expired, or a disabled owner: refused. A token's permissions
 *   are its role's within its owner's role's, both as they are now.
 * - Anything else given as Bearer goes to the JwtVerifier, when there is one (OpenID Connect).
 * - Sessions: a 256-bit random id, stored as its SHA-256; a CSRF token each; an idle limit and an
 *   absolute one.
 * - Failed attempts are limited per user name and per remote address (rate-limit.ts, in memory).
 *
 * Every failure and every login is emitted as an 'authentication' event (core/events.ts). HTTP Basic
 * and tokens authenticate each request, so a success of the same user, method, token and address is
 * emitted once per `successEventIntervalMs` (default 10 min), not per request; failures always.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { EventBus } from '../core/events.js';
import type { Logger } from '../core/logger.js';
import type {
  AttemptContext,
  AuthResult,
  IdentityService,
  JwtVerifier,
  NewSession,
  SessionResult,
} from './authentication.js';
import type { AuthenticationMethod, UserIdentity } from './identity.js';
import type { IdentityStore, UserRecord } from './identity-store.js';
import { MAX_PASSWORD_LENGTH, type PasswordHasher, scryptHasher } from './passwords.js';
import type { Permission } from './permissions.js';
import { AttemptLimiter, type LimitKey, type RateLimitOptions } from './rate-limit.js';
import { resolveRole, userNameProblem } from './roles.js';
import { looksLikeApiToken, parseToken, secretMatches } from './tokens.js';

export interface IdentityServiceOptions {
  /** Users, roles, tokens and sessions (archive/security: securityStoreOf(index) or openSecurityStore(url)). */
  readonly store: IdentityStore;
  /** Where 'authentication' events go (the server's one bus). */
  readonly events?: EventBus;
  readonly logger?: Logger;
  /** Checks JWTs (OpenID Connect); without it, a Bearer that is not our token and authenticateJwt() fail. */
  readonly jwt?: JwtVerifier;
  /** Failed-attempt limits, or a limiter to share. */
  readonly rateLimit?: RateLimitOptions | AttemptLimiter;
  /** A session ends after this long without a request (default 30 min). */
  readonly sessionIdleMs?: number;
  /** ... and this long after it began, whatever happens (default 12 h). */
  readonly sessionAbsoluteMs?: number;
  /** A repeated success is emitted at most this often per user, method, token and address (default 10 min). */
  readonly successEventIntervalMs?: number;
  /** Default scrypt (passwords.ts); tests may count its calls. */
  readonly hasher?: PasswordHasher;
  readonly now?: () => number;
}

/** A token's or session's last use is written at most this often (a write per request would not scale). */
const TOUCH_INTERVAL_MS = 60_000;
const SESSION_ID_PATTERN = /^[A-Za-z0-9_-]{43}$/;
/** Expired sessions are swept at most this often (on the way of a createSession). */
const SWEEP_INTERVAL_MS = 10 * 60_000;
const MAX_REMEMBERED = 10_000;
/** How long a good password check is remembered (a changed password misses at once: the stored hash is in the key). */
const VERIFIED_CACHE_MS = 5 * 60_000;

export class StoredIdentityService implements IdentityService {
  readonly limiter: AttemptLimiter;
  private readonly store: IdentityStore;
  private readonly events: EventBus | undefined;
  private readonly logger: Logger | undefined;
  private readonly jwt: JwtVerifier | undefined;
  private readonly hasher: PasswordHasher;
  private readonly idleMs: number;
  private readonly absoluteMs: number;
  private readonly successIntervalMs: number;
  private readonly now: () => number;
  private readonly successes = new Map<string, number>();
  /** Recent good password checks: HMAC key -> until when (see authenticatePassword). */
  private readonly verified = new Map<string, number>();
  /** Password checks in flight, by the same key. */
  private readonly checking = new Map<string, Promise<boolean>>();
  private readonly cacheKey = randomBytes(32);
  private lastSweep = 0;

  constructor(options: IdentityServiceOptions) {
    this.store = options.store;
    this.events = options.events;
    this.logger = options.logger;
    this.jwt = options.jwt;
    this.hasher = options.hasher ?? scryptHasher;
    this.idleMs = options.sessionIdleMs ?? 30 * 60_000;
    this.absoluteMs = options.sessionAbsoluteMs ?? 12 * 3600_000;
    this.successIntervalMs = options.successEventIntervalMs ?? 10 * 60_000;
    this.now = options.now ?? Date.now;
    this.limiter =
      options.rateLimit instanceof AttemptLimiter
        ? options.rateLimit
        : new AttemptLimiter({ now: this.now, ...options.rateLimit });
    void this.hasher
      .prepare?.()
      .catch((e: unknown) => this.logger?.error({ err: e }, 'password hashing unavailable'));
  }

  async authenticatePassword(name: string, password: string, context: AttemptContext): Promise<AuthResult> {
    const method: AuthenticationMethod = context.channel === 'dicom' ? 'dimse-password' : 'password';
    const keys = limitKeys(context, name);
    const refused = this.refuseIfLimited(keys, name, method, context);
    if (refused !== undefined) return refused;

    const user =
      userNameProblem(name) === undefined && password.length <= 2 * MAX_PASSWORD_LENGTH
        ? await this.store.getUser(name)
        : undefined;
    const hash = user?.passwordHash ?? null;
    // HTTP Basic sends the password with every request: a recent success is remembered (keyed by
    // an HMAC of name, stored hash and password), so only the first request pays for scrypt.
    const remembered =
      user !== undefined && hash !== null ? this.verifiedKey(user.name, hash, password) : undefined;
    let good = remembered !== undefined && (this.verified.get(remembered) ?? 0) > this.now();
    if (!good) {
      // The same credentials already being checked (a client's parallel requests): wait for that check.
      const same = remembered === undefined ? undefined : this.checking.get(remembered);
      if (same !== undefined) good = await same;
      else {
        const busy = this.limiter.begin(keys);
        if (busy > 0) return this.refuse(name, method, context, 'too many password checks at once', busy);
        try {
          if (user === undefined || hash === null || remembered === undefined) {
            // No password of ours is that long: the same work as an unknown name, not a megabyte through scrypt.
            const tooLong = password.length > 2 * MAX_PASSWORD_LENGTH;
            await this.hasher.verifyUnknown(tooLong ? '' : password);
            const reason = tooLong
              ? 'password too long'
              : user === undefined
                ? 'unknown user'
                : 'no password set';
            return this.fail(keys, name, method, context, reason);
          }
          const check = this.hasher.verify(password, hash);
          this.checking.set(remembered, check);
          try {
            good = await check;
          } finally {
            this.checking.delete(remembered);
          }
          // Remembered from this check on, not from each use (not a sliding window).
          if (good) this.remember(remembered);
        } finally {
          this.limiter.end(keys);
        }
      }
    }
    if (!good || user === undefined || hash === null || remembered === undefined)
      return this.fail(keys, name, method, context, 'wrong password');
    const identity = await this.identityOf(user, method, context.remoteAddress);
    if (typeof identity === 'string') return this.fail(keys, name, method, context, identity);
    this.limiter.succeed(userKey(name));
    if (this.hasher.needsRehash(hash)) this.rehash(user, password);
    this.succeeded(identity, context);
    return { ok: true, identity };
  }

  async authenticateBearer(token: string, context: AttemptContext): Promise<AuthResult> {
    if (looksLikeApiToken(token)) return this.authenticateToken(token, context);
    if (this.jwt !== undefined) return this.verifyJwt(this.jwt, token, context, 'oidc');
    return this.fail(
      limitKeys(context),
      null,
      'token',
      context,
      'not an API token, and no OpenID provider is configured',
    );
  }

  async authenticateJwt(token: string, context: AttemptContext): Promise<AuthResult> {
    const method: AuthenticationMethod = context.channel === 'http' ? 'oidc' : 'dimse-jwt';
    if (this.jwt === undefined) {
      // A configuration matter, not a guess: not counted against the address.
      const reason = 'no OpenID provider is configured';
      this.emitFailure(null, method, context, reason);
      return { ok: false, reason };
    }
    return this.verifyJwt(this.jwt, token, context, method);
  }

  async createSession(identity: UserIdentity, context: AttemptContext): Promise<NewSession> {
    const user = await this.store.getUser(identity.name);
    if (user === undefined)
      throw new Error(`no user ${JSON.stringify(identity.name)} to start a session for`);
    const now = this.now();
    const sessionId = randomBytes(32).toString('base64url');
    const csrfToken = randomBytes(32).toString('base64url');
    const expiresAt = new Date(now + this.absoluteMs);
    await this.store.addSession({
      sessionHash: sessionHash(sessionId),
      userId: user.id,
      csrfToken,
      remoteAddress: context.remoteAddress ?? null,
      createdAt: new Date(now),
      expiresAt,
    });
    this.emit({ outcome: 'success', action: 'login', user: user.name, method: 'session', context });
    this.logger?.info({ user: user.name, remoteAddress: context.remoteAddress }, 'session started');
    if (now - this.lastSweep > SWEEP_INTERVAL_MS) {
      this.lastSweep = now;
      void this.store
        .removeExpiredSessions(new Date(now))
        .catch((e: unknown) => this.logger?.warn({ err: e }, 'expired sessions not removed'));
    }
    return { sessionId, csrfToken, expiresAt };
  }

  async resumeSession(sessionId: string): Promise<SessionResult | undefined> {
    if (!SESSION_ID_PATTERN.test(sessionId)) return undefined;
    const hash = sessionHash(sessionId);
    const session = await this.store.getSession(hash);
    if (session === undefined) return undefined;
    const now = this.now();
    if (now >= session.expiresAt.getTime() || now - session.lastSeenAt.getTime() >= this.idleMs) {
      await this.store.removeSession(hash);
      return undefined;
    }
    const user = await this.store.getUserById(session.userId);
    if (user === undefined) return undefined;
    const identity = await this.identityOf(user, 'session', session.remoteAddress ?? undefined);
    if (typeof identity === 'string') {
      this.logger?.info({ user: user.name, reason: identity }, 'session refused');
      return undefined;
    }
    if (now - session.lastSeenAt.getTime() >= Math.min(TOUCH_INTERVAL_MS, this.idleMs / 10))
      await this.store.touchSession(hash, new Date(now));
    return { identity, csrfToken: session.csrfToken };
  }

  async endSession(sessionId: string): Promise<void> {
    if (!SESSION_ID_PATTERN.test(sessionId)) return;
    const removed = await this.store.removeSession(sessionHash(sessionId));
    if (removed === undefined) return;
    const user = await this.store.getUserById(removed.userId);
    this.emit({
      outcome: 'success',
      action: 'logout',
      user: user?.name ?? null,
      method: 'session',
      context: { remoteAddress: removed.remoteAddress ?? undefined },
    });
  }

  // --- the parts -----------------------------------------------------------------------------------

  private async authenticateToken(token: string, context: AttemptContext): Promise<AuthResult> {
    // Per address only: a wrong token must not lock its owner's password login.
    const keys = limitKeys(context);
    const refused = this.refuseIfLimited(keys, null, 'token', context);
    if (refused !== undefined) return refused;
    const parsed = parseToken(token);
    if (parsed === undefined) return this.fail(keys, null, 'token', context, 'malformed API token');
    const record = await this.store.getToken(parsed.tokenId);
    if (record === undefined || !secretMatches(parsed.secret, record.secretHash))
      return this.fail(keys, null, 'token', context, `unknown API token ${parsed.tokenId}`);
    const who = record.userName;
    const now = this.now();
    if (record.revokedAt !== null)
      return this.fail(keys, who, 'token', context, `API token ${record.tokenId} was revoked`);
    if (record.expiresAt !== null && now >= record.expiresAt.getTime())
      return this.fail(keys, who, 'token', context, `API token ${record.tokenId} has expired`);
    const user = await this.store.getUserById(record.userId);
    if (user === undefined) return this.fail(keys, who, 'token', context, 'the token has no user');
    const owner = await this.identityOf(user, 'token', context.remoteAddress);
    if (typeof owner === 'string') return this.fail(keys, who, 'token', context, owner);
    const role = await resolveRole(this.store, record.role);
    if (role === undefined)
      return this.fail(keys, who, 'token', context, `the token's role ${record.role} no longer exists`);
    const permissions = new Set<Permission>(role.permissions.filter((p) => owner.permissions.has(p)));
    const identity: UserIdentity = { ...owner, role: role.name, permissions, tokenId: record.tokenId };
    if (record.lastUsedAt === null || now - record.lastUsedAt.getTime() >= TOUCH_INTERVAL_MS)
      await this.store.touchToken(record.tokenId, new Date(now));
    this.succeeded(identity, context);
    return { ok: true, identity };
  }

  private async verifyJwt(
    verifier: JwtVerifier,
    token: string,
    context: AttemptContext,
    method: AuthenticationMethod,
  ): Promise<AuthResult> {
    const keys = limitKeys(context);
    const refused = this.refuseIfLimited(keys, null, method, context);
    if (refused !== undefined) return refused;
    let result: AuthResult;
    try {
      result = await verifier.verify(token, context);
    } catch (e) {
      // The provider unreachable (JWKS), not the client's fault: refused, not counted against it.
      const reason = `the JWT could not be checked: ${e instanceof Error ? e.message : String(e)}`;
      this.logger?.warn({ err: e, method, remoteAddress: context.remoteAddress }, reason);
      this.emitFailure(null, method, context, reason);
      return { ok: false, reason };
    }
    if (!result.ok) return this.fail(keys, null, method, context, result.reason);
    const identity: UserIdentity = { ...result.identity, method, remoteAddress: context.remoteAddress };
    this.succeeded(identity, context);
    return { ok: true, identity };
  }

  /** The identity of a user with their role's permissions now, or why they may not log in. */
  private async identityOf(
    user: UserRecord,
    method: AuthenticationMethod,
    remoteAddress: string | undefined,
  ): Promise<UserIdentity | string> {
    if (user.disabled) return 'user disabled';
    const role = await resolveRole(this.store, user.role);
    if (role === undefined) return `the user's role ${user.role} no longer exists`;
    return {
      kind: 'user',
      name: user.name,
      role: role.name,
      permissions: new Set(role.permissions),
      method,
      remoteAddress,
    };
  }

  private verifiedKey(name: string, hash: string, password: string): string {
    return createHmac('sha256', this.cacheKey)
      .update(`${name}\u0000${hash}\u0000${password}`)
      .digest('base64');
  }

  private remember(key: string): void {
    this.verified.delete(key);
    this.verified.set(key, this.now() + VERIFIED_CACHE_MS);
    if (this.verified.size > MAX_REMEMBERED) {
      const oldest = this.verified.keys().next();
      if (!oldest.done) this.verified.delete(oldest.value);
    }
  }

  /** Refused by the rate limit, without checking the credential: logged as a warning, evented. */
  private refuse(
    user: string | null,
    method: AuthenticationMethod,
    context: AttemptContext,
    reason: string,
    wait: number,
  ): AuthResult {
    this.logger?.warn(
      { user, method, remoteAddress: context.remoteAddress, retryAfterMs: wait },
      `authentication refused: ${reason}`,
    );
    this.emitFailure(user, method, context, reason);
    return { ok: false, reason, retryAfterMs: wait };
  }

  private refuseIfLimited(
    keys: readonly LimitKey[],
    user: string | null,
    method: AuthenticationMethod,
    context: AttemptContext,
  ): AuthResult | undefined {
    const wait = this.limiter.retryAfter(keys);
    if (wait <= 0) return undefined;
    return this.refuse(
      user,
      method,
      context,
      `too many failed attempts: retry in ${Math.ceil(wait / 1000)} s`,
      wait,
    );
  }

  private fail(
    keys: readonly LimitKey[],
    user: string | null,
    method: AuthenticationMethod,
    context: AttemptContext,
    reason: string,
  ): AuthResult {
    const lock = this.limiter.fail(keys);
    const fields = { user, method, remoteAddress: context.remoteAddress, reason };
    if (lock > 0)
      this.logger?.warn(
        { ...fields, retryAfterMs: lock },
        `authentication failed, locked for ${Math.ceil(lock / 1000)} s`,
      );
    else this.logger?.info(fields, 'authentication failed');
    this.emitFailure(user, method, context, reason);
    return lock > 0 ? { ok: false, reason, retryAfterMs: lock } : { ok: false, reason };
  }

  private succeeded(identity: UserIdentity, context: AttemptContext): void {
    const key = `${identity.method}\u0000${identity.name}\u0000${identity.tokenId ?? ''}\u0000${context.remoteAddress ?? ''}`;
    const now = this.now();
    const last = this.successes.get(key);
    if (last !== undefined && now - last < this.successIntervalMs) return;
    this.successes.delete(key);
    this.successes.set(key, now);
    if (this.successes.size > MAX_REMEMBERED) {
      const oldest = this.successes.keys().next();
      if (!oldest.done) this.successes.delete(oldest.value);
    }
    this.logger?.info(
      { user: identity.name, method: identity.method, remoteAddress: context.remoteAddress },
      'authenticated',
    );
    this.emit({ outcome: 'success', action: 'login', user: identity.name, method: identity.method, context });
  }

  private emitFailure(
    user: string | null,
    method: AuthenticationMethod,
    context: AttemptContext,
    reason: string,
  ): void {
    this.emit({ outcome: 'failure', action: 'login', user, method, context, reason });
  }

  private emit(e: {
    outcome: 'success' | 'failure';
    action: 'login' | 'logout';
    user: string | null;
    method: string;
    context: AttemptContext;
    reason?: string;
  }): void {
    this.events?.emit({
      type: 'authentication',
      action: e.action,
      outcome: e.outcome,
      user: e.user,
      method: e.method,
      remoteAddress: e.context.remoteAddress,
      ...(e.reason !== undefined ? { reason: e.reason } : {}),
    });
  }

  private rehash(user: UserRecord, password: string): void {
    void (async () => {
      const hash = await this.hasher.hash(password);
      await this.store.updateUser(user.name, { passwordHash: hash });
    })().catch((e: unknown) => this.logger?.warn({ err: e, user: user.name }, 'password not rehashed'));
  }
}

/** Constant time: is `given` the session's CSRF token? (for the HTTP side's check of unsafe methods) */
export function csrfTokenMatches(expected: string, given: string | undefined): boolean {
  if (given === undefined) return false;
  const a = createHash('sha256').update(expected).digest();
  const b = createHash('sha256').update(given).digest();
  return timingSafeEqual(a, b);
}

function sessionHash(sessionId: string): string {
  return createHash('sha256').update(sessionId, 'utf8').digest('hex');
}

function userKey(name: string): LimitKey {
  return { kind: 'user', value: name.toLowerCase() };
}

function limitKeys(context: AttemptContext, name?: string): LimitKey[] {
  const keys: LimitKey[] = [];
  if (name !== undefined) keys.push(userKey(name));
  if (context.remoteAddress !== undefined) keys.push({ kind: 'address', value: context.remoteAddress });
  return keys;
}
