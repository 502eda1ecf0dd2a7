/**
 * Who a calling DICOM node is (issue 14, PS3.15 and PS3.7 D.3.3.7): the calling AE title looked up
 * in the AE registry, bound to its address and TLS certificate when the registry says so, and the
 * user identity it negotiated (username + passcode, or a JWT) checked by the IdentityService. The
 * result is the association's NodeIdentity; policy.ts decides each request from it.
 *
 * Defaults (README "Security"): an AE the registry does not know gets UNKNOWN_AE_DEFAULT (C-ECHO
 * and C-STORE, so a quick start works) unless `server.dicom.unknownAe` is 'reject'.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { AeEntry } from './ae-registry.js';
import { moveDestinationsOf, subjectMatches } from './ae-registry.js';
import type { IdentityService } from './authentication.js';
import type { NodeIdentity, UserIdentity } from './identity.js';
import { UNKNOWN_AE_DEFAULT } from './permissions.js';

/** PS3.7 Table D.3-14: User-Identity-Type. */
export const USER_IDENTITY_TYPE = {
  Username: 1,
  UsernameAndPasscode: 2,
  Kerberos: 3,
  Saml: 4,
  Jwt: 5,
} as const;

/** The user identity sub-item as negotiated (network/ PS3.7 D.3.3.7.1 fields). */
export interface NegotiatedUserIdentity {
  readonly identityType: number;
  readonly positiveResponseRequested: boolean;
  readonly primaryField: Uint8Array;
  readonly secondaryField: Uint8Array;
}

export interface NodeAdmissionRequest {
  readonly callingAeTitle: string;
  readonly peerHost: string | undefined;
  readonly peerCertificateSubject: Readonly<Record<string, string>> | undefined;
  readonly userIdentity: NegotiatedUserIdentity | undefined;
}

export type NodeAdmission =
  | {
      readonly accepted: true;
      readonly identity: NodeIdentity;
      /** Sent in the A-ASSOCIATE-AC when a positive response was requested and the user was accepted. */
      readonly userIdentityResponse?: Uint8Array;
      /** Why a user identity sub-item was not used (type 1 or an unsupported type), for the log. */
      readonly note?: string;
    }
  | {
      readonly accepted: false;
      readonly reason: 'calling-ae-not-recognized' | 'no-reason-given';
      readonly why: string;
      /** The user name of a failed user identity, for the log and the audit trail. */
      readonly user?: string;
      /** True when the node failed its address or certificate binding (a Security Alert of its own kind). */
      readonly nodeAuthentication?: boolean;
    };

export interface AdmissionOptions {
  /** The registry entry of a calling AE title (config over index). */
  readonly lookup: (aeTitle: string) => Promise<AeEntry | undefined>;
  /** 'default': unknown AEs get UNKNOWN_AE_DEFAULT; 'reject': they are refused. */
  readonly unknownAe: 'default' | 'reject';
  /** Checks negotiated user identities; without it they are ignored (PS3.7 D.3.3.7 allows it). */
  readonly identityService?: IdentityService;
  /** The addresses of a host name (bindAddress); default DNS through the system resolver. */
  readonly resolveHost?: (host: string) => Promise<readonly string[]>;
}

const decoder = new TextDecoder('utf-8', { fatal: false });

/** IPv4 peers on a dual-stack socket show as ::ffff:a.b.c.d. */
function plainAddress(address: string): string {
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

async function systemResolve(host: string): Promise<readonly string[]> {
  try {
    return (await lookup(host, { all: true })).map((a) => a.address);
  } catch {
    return [];
  }
}

/** True when the peer's address is the registered host (or one of the addresses it resolves to). */
async function addressMatches(
  host: string,
  peer: string,
  resolve: (host: string) => Promise<readonly string[]>,
): Promise<boolean> {
  const address = plainAddress(peer);
  if (isIP(host) !== 0) return plainAddress(host) === address;
  return (await resolve(host)).some((a) => plainAddress(a) === address);
}

/** The association's NodeIdentity, or why it is refused. */
export async function admitNode(
  request: NodeAdmissionRequest,
  options: AdmissionOptions,
): Promise<NodeAdmission> {
  const aeTitle = request.callingAeTitle.trim();
  const entry = await options.lookup(aeTitle);
  const from = request.peerHost ?? '?';
  if (entry === undefined && options.unknownAe === 'reject')
    return refuse('calling-ae-not-recognized', `calling AE ${aeTitle} is not in the AE registry`);
  if (entry !== undefined) {
    if (entry.bindAddress) {
      if (entry.host === undefined)
        return nodeFailure(`AE ${aeTitle} is bound to an address but has no host`);
      const matches =
        request.peerHost !== undefined &&
        (await addressMatches(entry.host, request.peerHost, options.resolveHost ?? systemResolve));
      if (!matches) return nodeFailure(`AE ${aeTitle} is bound to ${entry.host}, called from ${from}`);
    }
    if (entry.tlsSubject !== undefined) {
      const subject = request.peerCertificateSubject;
      if (subject === undefined)
        return nodeFailure(
          `AE ${aeTitle} must present a TLS client certificate with subject ${entry.tlsSubject}`,
        );
      if (!subjectMatches(entry.tlsSubject, subject))
        return nodeFailure(
          `AE ${aeTitle} presented certificate subject ${describeSubject(subject)}, not ${entry.tlsSubject}`,
        );
    }
  }
  const base = {
    kind: 'ae' as const,
    aeTitle,
    registered: entry !== undefined,
    permissions: new Set(entry?.permissions ?? UNKNOWN_AE_DEFAULT),
    moveDestinations: entry !== undefined ? moveDestinationsOf(entry) : [],
    remoteAddress: request.peerHost,
  };
  const negotiated = request.userIdentity;
  if (negotiated === undefined) return { accepted: true, identity: base };
  const user = await checkUser(negotiated, request, options);
  if (user.kind === 'refused') return { ...refuse('no-reason-given', user.why), user: user.name };
  if (user.kind === 'ignored') return { accepted: true, identity: base, note: user.why };
  const identity: NodeIdentity = { ...base, user: user.identity };
  // PS3.7 D.3.3.7.2: the server response is empty for a username + passcode; for a JWT we have no
  // token of our own to return either.
  return negotiated.positiveResponseRequested
    ? { accepted: true, identity, userIdentityResponse: new Uint8Array(0) }
    : { accepted: true, identity };
}

type UserCheck =
  | { readonly kind: 'user'; readonly identity: UserIdentity }
  | { readonly kind: 'ignored'; readonly why: string }
  | { readonly kind: 'refused'; readonly why: string; readonly name?: string };

async function checkUser(
  negotiated: NegotiatedUserIdentity,
  request: NodeAdmissionRequest,
  options: AdmissionOptions,
): Promise<UserCheck> {
  const service = options.identityService;
  const context = { remoteAddress: request.peerHost };
  const primary = decoder.decode(negotiated.primaryField);
  switch (negotiated.identityType) {
    case USER_IDENTITY_TYPE.Username:
      // A name without proof grants nothing: the association runs on the AE's permissions.
      return { kind: 'ignored', why: `user identity ${primary} (username only) not used: no proof` };
    case USER_IDENTITY_TYPE.UsernameAndPasscode: {
      if (service === undefined)
        return { kind: 'ignored', why: 'no identity service: user identity ignored' };
      const result = await service.authenticatePassword(
        primary,
        decoder.decode(negotiated.secondaryField),
        context,
      );
      return result.ok
        ? { kind: 'user', identity: { ...result.identity, method: 'dimse-password' } }
        : { kind: 'refused', why: `user ${primary}: ${result.reason}`, name: primary };
    }
    case USER_IDENTITY_TYPE.Jwt: {
      if (service === undefined)
        return { kind: 'ignored', why: 'no identity service: user identity ignored' };
      const result = await service.authenticateJwt(primary, context);
      return result.ok
        ? { kind: 'user', identity: { ...result.identity, method: 'dimse-jwt' } }
        : { kind: 'refused', why: `JWT user identity: ${result.reason}` };
    }
    default:
      return {
        kind: 'ignored',
        why: `user identity type ${negotiated.identityType} is not supported: ignored`,
      };
  }
}

function refuse(
  reason: 'calling-ae-not-recognized' | 'no-reason-given',
  why: string,
): { readonly accepted: false; readonly reason: typeof reason; readonly why: string } {
  return { accepted: false, reason, why };
}

function nodeFailure(why: string): NodeAdmission {
  return { accepted: false, reason: 'calling-ae-not-recognized', why, nodeAuthentication: true };
}

function describeSubject(subject: Readonly<Record<string, string>>): string {
  return Object.entries(subject)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}
