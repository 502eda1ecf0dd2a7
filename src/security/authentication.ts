/**
 * Authentication's port (issue 14): how the HTTP side and DICOM user identity negotiation turn
 * credentials into a UserIdentity. One implementation (security/identity-service.ts) sits on the
 * user, token and session stores that archive/security/ implements on the index; tests may use
 * any other. Rate limiting of failed attempts (per user and per address) happens behind this
 * port, so every way in is limited alike.
 */
import type { UserIdentity } from './identity.js';

/** Where the attempt comes from (for rate limiting, logs and the audit trail). */
export interface AttemptContext {
  readonly remoteAddress: string | undefined;
  /** Which way in (default 'http'): names the method of the identity ('password' or 'dimse-password'...). */
  readonly channel?: 'http' | 'dicom';
}

export type AuthResult =
  | { readonly ok: true; readonly identity: UserIdentity }
  | {
      readonly ok: false;
      /** Said in logs; the client only learns that authentication failed. */
      readonly reason: string;
      /** Set when the attempt was refused by the rate limit: try again after this long. */
      readonly retryAfterMs?: number;
    };

/** A browser session: the cookie value (given to the client once) and its CSRF token. */
export interface NewSession {
  readonly sessionId: string;
  readonly csrfToken: string;
  readonly expiresAt: Date;
}

export interface SessionResult {
  readonly identity: UserIdentity;
  readonly csrfToken: string;
}

/** Checks signed JWTs (OpenID Connect access tokens, RFC 9068), for Bearer and DICOM user identity. */
export interface JwtVerifier {
  /** The identity the token stands for (role from the configured claim), or why not. */
  verify(token: string, context: AttemptContext): Promise<AuthResult>;
}

export interface IdentityService {
  /** A user's name and password (HTTP Basic, the login form, DICOM username + passcode). */
  authenticatePassword(name: string, password: string, context: AttemptContext): Promise<AuthResult>;
  /** An API token of ours (HTTP Bearer), or a JWT when a JwtVerifier is configured. */
  authenticateBearer(token: string, context: AttemptContext): Promise<AuthResult>;
  /** A JWT only (DICOM user identity type 5): fails when no OpenID provider is configured. */
  authenticateJwt(token: string, context: AttemptContext): Promise<AuthResult>;
  /** Starts a browser session for an authenticated user. */
  createSession(identity: UserIdentity, context: AttemptContext): Promise<NewSession>;
  /** The session of a cookie value, when it exists and has not expired. */
  resumeSession(sessionId: string): Promise<SessionResult | undefined>;
  endSession(sessionId: string): Promise<void>;
}
