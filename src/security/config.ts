/**
 * The security part of the config (`security`, issue 14). `security.oidc`: the OpenID provider
 * whose access tokens are accepted as HTTP Bearer tokens and DICOM user identities (oidc.ts).
 */
import { z } from 'zod';
import { type ConfigPart, expecting, integer, nonEmpty, section } from '../core/config.js';

const URL_EXPECTED = 'an http:// or https:// URL';
const url = z.string(expecting(URL_EXPECTED)).refine(
  (u) => {
    try {
      const p = new URL(u).protocol;
      return p === 'https:' || p === 'http:';
    } catch {
      return false;
    }
  },
  { message: URL_EXPECTED },
);

const oidcSchema = section({
  /** The issuer identifier (`iss`); its discovery document names the JWKS unless jwksUri is set. */
  issuer: url,
  /** What the tokens' `aud` must contain: this server's resource identifier. */
  audience: nonEmpty('the audience our tokens name'),
  jwksUri: url.optional(),
  /** Claim (or dotted path, `realm_access.roles`) holding the role. */
  roleClaim: nonEmpty('a claim name or dotted path').default('roles'),
  /** Claim holding the user name (falls back to sub). */
  userClaim: nonEmpty('a claim name').default('preferred_username'),
  /** Claim values to role names. */
  roleMap: z.record(nonEmpty('a role name')).optional(),
  clockSkewSeconds: integer(0, 300).default(30),
});

/** `security`: identity providers and the like. */
export const securityConfig = {
  security: section({ oidc: oidcSchema.optional() }).default({}),
} satisfies ConfigPart;

export type OidcConfig = z.infer<typeof oidcSchema>;
