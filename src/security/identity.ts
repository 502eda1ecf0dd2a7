/**
 * Who asks (issue 14). Every DIMSE request and every HTTP request carries one Identity, set by
 * authentication (HTTP) or by association negotiation (DICOM), and the one policy (policy.ts)
 * decides from it.
 */
import type { AePermission, Permission } from './permissions.js';

/** How a user proved who they are. */
export type AuthenticationMethod =
  /** HTTP Basic with the user's password. */
  | 'password'
  /** HTTP Bearer with an API token of ours. */
  | 'token'
  /** The web application's session cookie. */
  | 'session'
  /** HTTP Bearer with an OpenID Connect access token (JWT). */
  | 'oidc'
  /** DICOM user identity negotiation: username and passcode. */
  | 'dimse-password'
  /** DICOM user identity negotiation: a JWT. */
  | 'dimse-jwt';

export interface UserIdentity {
  readonly kind: 'user';
  readonly name: string;
  readonly role: string;
  readonly permissions: ReadonlySet<Permission>;
  readonly method: AuthenticationMethod;
  /** The API token's public id, when a token was used (for audit and revocation). */
  readonly tokenId?: string;
  readonly remoteAddress?: string | undefined;
}

export interface AnonymousIdentity {
  readonly kind: 'anonymous';
  readonly remoteAddress?: string | undefined;
}

/** A DICOM node: the calling AE of an association, as the AE registry (or the unknown-AE default) knows it. */
export interface NodeIdentity {
  readonly kind: 'ae';
  readonly aeTitle: string;
  /** False for an AE the registry does not know (it gets the server.dicom.unknownAe permissions). */
  readonly registered: boolean;
  readonly permissions: ReadonlySet<AePermission>;
  /** The C-MOVE destinations it may name: 'any' known AE, or these titles. */
  readonly moveDestinations: 'any' | readonly string[];
  readonly remoteAddress?: string | undefined;
  /** The user of a user identity negotiation (PS3.7 D.3.3.7), when there was one and it was accepted. */
  readonly user?: UserIdentity;
}

/** The archive itself: jobs, start-up work, local CLI commands on the data folder. */
export interface SystemIdentity {
  readonly kind: 'system';
  readonly name: string;
}

export type Identity = UserIdentity | AnonymousIdentity | NodeIdentity | SystemIdentity;

export const ANONYMOUS: AnonymousIdentity = { kind: 'anonymous' };

/** A short name for logs and audit messages: the user, the AE title, 'anonymous' or the system's name. */
export function identityName(identity: Identity): string {
  switch (identity.kind) {
    case 'user':
      return identity.name;
    case 'ae':
      return identity.user !== undefined ? `${identity.user.name}@${identity.aeTitle}` : identity.aeTitle;
    case 'anonymous':
      return 'anonymous';
    case 'system':
      return identity.name;
  }
}
