/**
 * Who sent an HTTP request (issue 14), settled once per request in app.ts's onRequest hook before
 * the policy is asked: `Authorization: Basic` (a user's password), `Authorization: Bearer` (an API
 * token of ours or an OpenID Connect JWT), or the web application's session cookie. What the
 * credentials are worth is the IdentityService's to say (security/authentication.ts; it also rate
 * limits failed attempts and emits the 'authentication' events); this file maps its answers to
 * HTTP: 401 with WWW-Authenticate (RFC 7235, RFC 7617, RFC 6750 3), 429 with Retry-After (RFC
 * 6585 4), 403 for a cookie-authenticated unsafe request without its CSRF token. Each refusal is
 * one JSON {code, reason} answer and one log line that says why (the client only learns that
 * authentication failed).
 *
 * The cookie is HttpOnly, Secure, SameSite=Strict, Path=/ and named with the `__Host-` prefix
 * (RFC 6265bis 4.1.3.2: Secure, no Domain, Path=/, so no subdomain can plant one). Browsers keep
 * Secure cookies of http://localhost and http://127.0.0.1 too (potentially trustworthy origins), so
 * the loopback default listener works without TLS.
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../../core/logger.js';
import type { AttemptContext, AuthResult, IdentityService } from '../../security/authentication.js';
import type { ErrorBody } from '../errors.js';
import type { WebIdentity } from '../policy.js';
import { credentialsOf } from './credentials.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The browser session the request came with (set when its cookie authenticated it). */
    authSession: { readonly id: string; readonly csrfToken: string } | undefined;
  }
}

export const DEFAULT_SESSION_COOKIE = '__Host-pacs_session';
export const CSRF_HEADER = 'x-csrf-token';

/** Browser sessions (the identity service decides their lifetime). */
export interface SessionSettings {
  /** Default `__Host-pacs_session`. */
  readonly cookieName?: string;
}

/** What app.ts gives the authentication hook and the /api/auth routes. */
export interface WebAuthentication {
  /** Absent: nobody can authenticate (every non-public route answers 401). */
  readonly identity: IdentityService | undefined;
  readonly cookieName: string;
  /** The realm of the challenges. */
  readonly realm: string;
  readonly logger: Logger;
}

export function webAuthentication(options: {
  readonly identity?: IdentityService | undefined;
  readonly session?: SessionSettings | undefined;
  readonly logger: Logger;
}): WebAuthentication {
  return {
    identity: options.identity,
    cookieName: options.session?.cookieName ?? DEFAULT_SESSION_COOKIE,
    realm: 'PACS',
    logger: options.logger,
  };
}

/**
 * RFC 7235 4.1: the schemes we take; `invalid_token` (RFC 6750 3.1) when a bearer token was
 * refused. A page's script (Fetch Metadata `Sec-Fetch-Mode` other than navigate, or the
 * `X-Requested-With` convention) gets no Basic challenge: browsers answer that one with a native
 * password dialog, which the web application's own login replaces.
 */
export function challenges(
  auth: WebAuthentication,
  request: FastifyRequest,
  bearerError?: 'invalid_token',
): string {
  const bearer = `Bearer realm="${auth.realm}"${bearerError !== undefined ? `, error="${bearerError}"` : ''}`;
  const mode = request.headers['sec-fetch-mode'];
  const fromScript =
    (mode !== undefined && mode !== 'navigate') || request.headers['x-requested-with'] !== undefined;
  return fromScript ? bearer : `Basic realm="${auth.realm}", charset="UTF-8", ${bearer}`;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Sets request.identity (and request.authSession) from the request's credentials. Answers the
 * request itself and returns false when the credentials were refused; returns true otherwise
 * (no credentials leave the anonymous identity: the policy then says 401).
 */
export async function authenticate(
  auth: WebAuthentication,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<boolean> {
  const credentials = credentialsOf(request, auth.cookieName);
  if (credentials.kind === 'none') return true;
  const context: AttemptContext = { remoteAddress: request.ip };
  if (credentials.kind === 'malformed') {
    refuseCredentials(auth, request, reply, { ok: false, reason: credentials.reason }, credentials.scheme);
    return false;
  }
  const service = auth.identity;
  if (credentials.kind === 'session') {
    const session = service === undefined ? undefined : await service.resumeSession(credentials.sessionId);
    if (session === undefined) {
      // An ended or expired session: forget the cookie; the request goes on as anonymous.
      reply.header('set-cookie', clearedCookie(auth));
      return true;
    }
    if (
      !SAFE_METHODS.has(request.method) &&
      !csrfTokenMatches(request.headers[CSRF_HEADER], session.csrfToken)
    ) {
      refuse(
        auth,
        request,
        reply,
        403,
        'ERR_HTTP_CSRF',
        `${request.method} with a session cookie needs the session's X-CSRF-Token header`,
        {
          user: session.identity.name,
        },
      );
      return false;
    }
    setIdentity(request, session.identity);
    request.authSession = { id: credentials.sessionId, csrfToken: session.csrfToken };
    return true;
  }
  const result: AuthResult =
    service === undefined
      ? { ok: false, reason: 'authentication is not configured on this server (no identity service)' }
      : credentials.kind === 'basic'
        ? await service.authenticatePassword(credentials.user, credentials.password, context)
        : await service.authenticateBearer(credentials.token, context);
  if (!result.ok) {
    refuseCredentials(
      auth,
      request,
      reply,
      result,
      credentials.kind,
      credentials.kind === 'basic' ? credentials.user : undefined,
    );
    return false;
  }
  setIdentity(request, result.identity);
  return true;
}

export function setIdentity(request: FastifyRequest, identity: WebIdentity): void {
  request.identity = identity;
  request.user = identity.kind === 'user' ? identity.name : undefined;
}

/** 429 with Retry-After when the service's rate limit refused the attempt, else 401 with the challenges. */
export function refuseCredentials(
  auth: WebAuthentication,
  request: FastifyRequest,
  reply: FastifyReply,
  result: Extract<AuthResult, { ok: false }>,
  scheme: 'basic' | 'bearer' | 'other' | 'password',
  user?: string,
): void {
  const detail = { scheme, ...(user !== undefined ? { user } : {}) };
  if (result.retryAfterMs !== undefined) {
    const seconds = Math.max(1, Math.ceil(result.retryAfterMs / 1000));
    reply.header('retry-after', String(seconds));
    refuse(
      auth,
      request,
      reply,
      429,
      'ERR_HTTP_TOO_MANY_ATTEMPTS',
      `too many failed attempts: try again in ${seconds} s`,
      {
        ...detail,
        why: result.reason,
      },
    );
    return;
  }
  reply.header(
    'www-authenticate',
    challenges(auth, request, scheme === 'bearer' ? 'invalid_token' : undefined),
  );
  refuse(auth, request, reply, 401, 'ERR_HTTP_UNAUTHENTICATED', 'authentication failed', {
    ...detail,
    why: result.reason,
  });
}

/** One answer and one log line. */
function refuse(
  auth: WebAuthentication,
  request: FastifyRequest,
  reply: FastifyReply,
  status: number,
  code: string,
  reason: string,
  detail: Record<string, unknown>,
): void {
  auth.logger.warn(
    { method: request.method, url: request.url, status, code, reason, remoteAddress: request.ip, ...detail },
    'HTTP authentication refused',
  );
  const body: ErrorBody = { code, reason };
  void reply.code(status).header('cache-control', 'no-store').type('application/json').send(body);
}

function csrfTokenMatches(given: string | string[] | undefined, expected: string): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

const COOKIE_VALUE = /^[A-Za-z0-9._~+/=-]+$/;

/** The Set-Cookie of a new session (RFC 6265 4.1). */
export function sessionCookie(
  auth: WebAuthentication,
  sessionId: string,
  expiresAt: Date,
  now: Date = new Date(),
): string {
  // The identity service makes the id; a value outside cookie-octet would be a bug there.
  if (!COOKIE_VALUE.test(sessionId)) throw new Error('the session id is not a valid cookie value');
  const maxAge = Math.max(0, Math.floor((expiresAt.getTime() - now.getTime()) / 1000));
  return `${auth.cookieName}=${sessionId}; Path=/; Max-Age=${maxAge}; HttpOnly; Secure; SameSite=Strict`;
}

/** The Set-Cookie that makes the browser forget the session cookie. */
export function clearedCookie(auth: WebAuthentication): string {
  return `${auth.cookieName}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict`;
}
