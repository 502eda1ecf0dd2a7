/**
 * OpenID Connect access tokens (issue 14): the JwtVerifier of security/authentication.ts for HTTP
 * Bearer JWTs and DICOM user identity type 5. A token is accepted when its signature checks
 * against the provider's JWKS (RS256, ES256 or PS256; `none` and HS* are refused: a shared-secret
 * algorithm would let anyone who knows the public key sign), its `iss` is the configured issuer,
 * its `aud` names our audience, `exp` is in the future and `nbf` in the past (a small clock skew
 * allowed), and its `typ` is an access token's (RFC 9068 2.1 `at+jwt`, or the plain `JWT` many
 * providers still send; an ID token or any other type is refused).
 *
 * Keys: from the configured `jwksUri`, else from the issuer's discovery document (OpenID Connect
 * Discovery 1.0 4: `{issuer}/.well-known/openid-configuration`, whose `issuer` must be the
 * configured one). The JWKS is fetched once and cached; a token whose `kid` is not in the cache
 * fetches it again (key rotation), at most once per `minRefetchSeconds` (an attacker sending
 * random kids cannot make us hammer the provider). jose's remote key set does exactly this.
 *
 * Who: the user name is the `userClaim` (default `preferred_username`, else `sub`); the role is the
 * first value of `roleClaim` (a dotted path such as `realm_access.roles`; a string or an array of
 * strings) that, after the optional `roleMap`, names a known role. No known role: refused.
 */
import { createRemoteJWKSet, errors, type JWTPayload, jwtVerify } from 'jose';
import type { AttemptContext, AuthResult, JwtVerifier } from './authentication.js';
import type { UserIdentity } from './identity.js';
import { BUILTIN_ROLES, type Permission } from './permissions.js';

export interface OidcSettings {
  /** The provider's issuer identifier (the `iss` of its tokens). */
  readonly issuer: string;
  /** What our tokens' `aud` must contain (the resource indicator, RFC 8707). */
  readonly audience: string;
  /** The provider's JWKS; default from the discovery document. */
  readonly jwksUri?: string | undefined;
  /** Where the role is: a claim name or dotted path (`roles`, `realm_access.roles`). */
  readonly roleClaim: string;
  /** The user name's claim (default preferred_username, falling back to sub). */
  readonly userClaim?: string | undefined;
  /** Claim values to our role names (`{"pacs-readers": "viewer"}`); unmapped values are taken as role names. */
  readonly roleMap?: Readonly<Record<string, string>> | undefined;
  /** Allowed clock difference for exp and nbf (default 30 s). */
  readonly clockSkewSeconds?: number | undefined;
}

/** A role's permissions, or undefined when there is no such role (the role table may add roles). */
export type RoleLookup = (
  role: string,
) => ReadonlySet<Permission> | undefined | Promise<ReadonlySet<Permission> | undefined>;

export interface OidcVerifierOptions {
  readonly settings: OidcSettings;
  /** Default: the built-in roles. */
  readonly roles?: RoleLookup;
  /** The least time between two JWKS fetches caused by unknown kids (default 30 s). */
  readonly minRefetchSeconds?: number;
  /** How long a fetched JWKS is kept before it is fetched again anyway (default 10 min). */
  readonly cacheSeconds?: number;
  /** Time-out of each request to the provider (default 5 s). */
  readonly timeoutMs?: number;
}

/** Asymmetric algorithms only (RFC 8725 3.1: never let the token choose, never `none`). */
export const OIDC_ALGORITHMS = ['RS256', 'ES256', 'PS256'] as const;
const ACCESS_TOKEN_TYPES = new Set(['at+jwt', 'application/at+jwt', 'jwt']);

export const builtinRoles: RoleLookup = (role) => {
  const found = BUILTIN_ROLES.find((r) => r.name === role);
  return found === undefined ? undefined : new Set(found.permissions);
};

export function createOidcVerifier(options: OidcVerifierOptions): JwtVerifier {
  const s = options.settings;
  const roles = options.roles ?? builtinRoles;
  const timeoutMs = options.timeoutMs ?? 5000;
  const minRefetchMs = (options.minRefetchSeconds ?? 30) * 1000;
  let keys: Promise<ReturnType<typeof createRemoteJWKSet>> | undefined;
  let failedAt: number | undefined;

  const keySet = (): Promise<ReturnType<typeof createRemoteJWKSet>> => {
    // A provider that did not answer is asked again after the minimum interval, not per token.
    if (failedAt !== undefined && Date.now() - failedAt >= minRefetchMs) {
      keys = undefined;
      failedAt = undefined;
    }
    if (keys === undefined) {
      keys = (async () => {
        const uri = s.jwksUri ?? (await discoverJwksUri(s.issuer, timeoutMs));
        return createRemoteJWKSet(new URL(uri), {
          cooldownDuration: minRefetchMs,
          cacheMaxAge: (options.cacheSeconds ?? 600) * 1000,
          timeoutDuration: timeoutMs,
        });
      })();
      keys.catch(() => {
        failedAt = Date.now();
      });
    }
    return keys;
  };

  return {
    async verify(token: string, context: AttemptContext): Promise<AuthResult> {
      let payload: JWTPayload;
      try {
        const jwks = await keySet();
        const verified = await jwtVerify(token, jwks, {
          issuer: s.issuer,
          audience: s.audience,
          algorithms: [...OIDC_ALGORITHMS],
          clockTolerance: s.clockSkewSeconds ?? 30,
          requiredClaims: ['exp'],
        });
        const typ = verified.protectedHeader.typ;
        if (typ !== undefined && !ACCESS_TOKEN_TYPES.has(typ.toLowerCase()))
          return { ok: false, reason: `the JWT's typ ${typ} is not an access token's (RFC 9068: at+jwt)` };
        payload = verified.payload;
      } catch (e) {
        return { ok: false, reason: describeFailure(e) };
      }
      const name = claimStrings(payload, s.userClaim ?? 'preferred_username')[0] ?? payload.sub;
      if (name === undefined || name === '')
        return { ok: false, reason: 'the JWT names no user (no user claim, no sub)' };
      for (const value of claimStrings(payload, s.roleClaim)) {
        const role = s.roleMap?.[value] ?? value;
        const permissions = await roles(role);
        if (permissions !== undefined) {
          const identity: UserIdentity = {
            kind: 'user',
            name,
            role,
            permissions,
            method: 'oidc',
            remoteAddress: context.remoteAddress,
          };
          return { ok: true, identity };
        }
      }
      return { ok: false, reason: `the JWT of ${name} has no known role in its ${s.roleClaim} claim` };
    },
  };
}

/** OpenID Connect Discovery 1.0 4: the provider's metadata names its JWKS. */
async function discoverJwksUri(issuer: string, timeoutMs: number): Promise<string> {
  const url = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
  const r = await fetch(url, {
    signal: AbortSignal.timeout(timeoutMs),
    headers: { accept: 'application/json' },
  });
  if (!r.ok) throw new DiscoveryError(`${url} answered ${r.status}`);
  const doc = (await r.json()) as { issuer?: unknown; jwks_uri?: unknown };
  // Discovery 4.3: the issuer in the document must be the one asked for.
  if (doc.issuer !== issuer)
    throw new DiscoveryError(`${url} names issuer ${String(doc.issuer)}, not ${issuer}`);
  if (typeof doc.jwks_uri !== 'string') throw new DiscoveryError(`${url} has no jwks_uri`);
  return doc.jwks_uri;
}

class DiscoveryError extends Error {}

/** A claim by name or dotted path, as strings (a string, or the strings of an array). */
function claimStrings(payload: JWTPayload, path: string): string[] {
  let value: unknown = payload;
  for (const key of path.split('.')) {
    if (value === null || typeof value !== 'object') return [];
    value = (value as Record<string, unknown>)[key];
  }
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  return [];
}

/** Why a token was refused, for the log line (the client only learns that it was). */
function describeFailure(e: unknown): string {
  if (e instanceof DiscoveryError) return `OpenID provider discovery failed: ${e.message}`;
  if (e instanceof errors.JWTExpired) return 'the JWT has expired';
  if (e instanceof errors.JWTClaimValidationFailed) {
    if (e.claim === 'nbf') return 'the JWT is not yet valid (nbf)';
    if (e.claim === 'iss') return 'the JWT is from another issuer';
    if (e.claim === 'aud') return 'the JWT is for another audience';
    return `the JWT's ${e.claim} claim is not valid: ${e.message}`;
  }
  if (e instanceof errors.JOSEAlgNotAllowed)
    return `the JWT's algorithm is not allowed (${OIDC_ALGORITHMS.join(', ')} only)`;
  if (e instanceof errors.JWKSNoMatchingKey) return "no key of the provider's JWKS matches the JWT's kid";
  if (e instanceof errors.JWSSignatureVerificationFailed) return "the JWT's signature does not verify";
  if (e instanceof errors.JWSInvalid || e instanceof errors.JWTInvalid)
    return `the JWT is malformed: ${e.message}`;
  if (e instanceof errors.JOSENotSupported) return `the JWT uses what is not supported: ${e.message}`;
  if (e instanceof errors.JWKSTimeout) return "the OpenID provider's JWKS did not answer in time";
  if (e instanceof errors.JOSEError) return `the JWT is refused: ${e.message}`;
  return `the OpenID provider cannot be reached: ${e instanceof Error ? e.message : String(e)}`;
}
