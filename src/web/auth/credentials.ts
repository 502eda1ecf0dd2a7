/**
 * The credentials of an HTTP request, as sent: `Authorization: Basic` (RFC 7617), `Authorization:
 * Bearer` (RFC 6750 2.1), or the web application's session cookie (RFC 6265). Parsing only; what
 * they are worth is the IdentityService's to say (authenticate.ts).
 */
import type { FastifyRequest } from 'fastify';

export type Credentials =
  | { readonly kind: 'none' }
  | { readonly kind: 'basic'; readonly user: string; readonly password: string }
  | { readonly kind: 'bearer'; readonly token: string }
  | { readonly kind: 'session'; readonly sessionId: string }
  /** An Authorization header that is neither: refused (401) with this reason. */
  | { readonly kind: 'malformed'; readonly scheme: 'basic' | 'bearer' | 'other'; readonly reason: string };

/** RFC 6750 2.1: b64token. */
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** The credentials of `request`: its Authorization header first, else the session cookie named `cookieName`. */
export function credentialsOf(request: FastifyRequest, cookieName: string): Credentials {
  const header = request.headers.authorization;
  if (header !== undefined) return parseAuthorization(header);
  const sessionId = cookieValue(request.headers.cookie, cookieName);
  if (sessionId !== undefined && sessionId !== '') return { kind: 'session', sessionId };
  return { kind: 'none' };
}

export function parseAuthorization(header: string): Credentials {
  const space = header.indexOf(' ');
  const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase();
  const value = space < 0 ? '' : header.slice(space + 1).trim();
  if (scheme === 'basic') {
    if (!BASE64.test(value) || value.length % 4 !== 0)
      return { kind: 'malformed', scheme: 'basic', reason: 'Basic credentials are not base64' };
    // RFC 7617 2.1: user-id ":" password, UTF-8 (we announce charset="UTF-8").
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return { kind: 'malformed', scheme: 'basic', reason: 'Basic credentials have no ":"' };
    return { kind: 'basic', user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  if (scheme === 'bearer') {
    if (!TOKEN68.test(value))
      return { kind: 'malformed', scheme: 'bearer', reason: 'the Bearer token is not a b64token' };
    return { kind: 'bearer', token: value };
  }
  return {
    kind: 'malformed',
    scheme: 'other',
    reason: `the ${scheme === '' ? 'empty' : scheme} authorization scheme is not supported (Basic or Bearer)`,
  };
}

/** The value of cookie `name` in a Cookie header (RFC 6265 5.4), or undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq < 0) continue;
    if (pair.slice(0, eq).trim() !== name) continue;
    let value = pair.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    return value;
  }
  return undefined;
}
