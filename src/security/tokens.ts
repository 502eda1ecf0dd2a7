/**
 * API tokens (issue 14): `pacs_<id>_<secret>`. The id (16 hex digits) is public: listings and
 * revocation name it, and the store finds the token by it. The secret (256 random bits,
 * base64url) is shown once when the token is made; the store keeps only its SHA-256 (a token is
 * random, so a fast hash is enough: nothing to guess by dictionary). A token is scoped to a role
 * whose permissions are within its user's, and it is checked against the user's role again at
 * every use, so demoting a user demotes their tokens.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Permission } from './permissions.js';

export const TOKEN_PREFIX = 'pacs_';
const TOKEN_PATTERN = /^pacs_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export interface GeneratedToken {
  /** What the user is given, once. */
  readonly token: string;
  readonly tokenId: string;
  /** What the store keeps. */
  readonly secretHash: string;
}

export function generateToken(): GeneratedToken {
  const tokenId = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { token: `${TOKEN_PREFIX}${tokenId}_${secret}`, tokenId, secretHash: hashSecret(secret) };
}

/** True when a bearer credential has our prefix (else it may be a JWT). */
export function looksLikeApiToken(credential: string): boolean {
  return credential.startsWith(TOKEN_PREFIX);
}

/** The id and the secret of a token, or undefined when it is not well formed. */
export function parseToken(token: string): { readonly tokenId: string; readonly secret: string } | undefined {
  const m = TOKEN_PATTERN.exec(token);
  if (m === null || m[1] === undefined || m[2] === undefined) return undefined;
  return { tokenId: m[1], secret: m[2] };
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Constant-time: does `secret` hash to `secretHash`? */
export function secretMatches(secret: string, secretHash: string): boolean {
  const a = Buffer.from(hashSecret(secret), 'hex');
  const b = Buffer.from(secretHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The permissions of `wanted` that `held` lacks: a token's role may not reach beyond its user's. */
export function permissionsBeyond(
  wanted: readonly Permission[],
  held: ReadonlySet<Permission> | readonly Permission[],
): Permission[] {
  const have = held instanceof Set ? held : new Set(held as readonly Permission[]);
  return wanted.filter((p) => !have.has(p));
}

/** Longest a token may live: ten years. */
export const MAX_TOKEN_DAYS = 3650;

/** When a token made `now` for `days` days ends. */
export function tokenExpiry(now: Date, days: number): Date {
  return new Date(now.getTime() + days * 86_400_000);
}
