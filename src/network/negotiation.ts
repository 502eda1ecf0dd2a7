/**
 * Association negotiation (PS3.7 Annex D.3, PS3.8 7.1.1): the acceptor's answer to an
 * A-ASSOCIATE-RQ under a policy, and the requestor's reading of an A-ASSOCIATE-AC. Pure functions.
 */

// Our implementation class UID and version name (PS3.7 D.3.3.2): one definition for the
// file meta and the association, in dicom/uid.ts.
import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME } from '../dicom/uid.js';
import {
  AbortSource,
  type AssociateAcPdu,
  type AssociateRjPdu,
  type AssociateRqPdu,
  DICOM_APPLICATION_CONTEXT,
  type PresentationContextAc,
  PresentationContextResult,
  RejectReason,
  RejectResult,
  RejectSource,
  type RoleSelection,
  type SopClassExtendedNegotiation,
  type UserIdentityRq,
  type UserInformation,
} from './pdu.js';

export { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME };
/** Largest P-DATA-TF variable field we offer to receive unless configured (PS3.8 D.1). */
export const DEFAULT_MAX_PDU_LENGTH = 65536;

export interface SupportedAbstractSyntax {
  readonly abstractSyntax: string;
  /** Transfer syntaxes we accept for it, in our order of preference. */
  readonly transferSyntaxes: readonly string[];
  /**
   * Roles the requestor may take on it (PS3.7 D.3.3.4). Default { scu: true, scp: false }: the
   * requestor is the SCU and we are the SCP. `scp: true` lets a C-GET requestor be a storage SCP.
   */
  readonly requestorRoles?: { readonly scu: boolean; readonly scp: boolean };
  /** Our answer to a SOP class extended negotiation sub-item (0x56); undefined = none sent back. */
  readonly extendedNegotiation?: (requested: Uint8Array) => Uint8Array | undefined;
}

/** A calling AE title allowed to associate, optionally only from one host address. */
export interface AllowedCaller {
  readonly aeTitle: string;
  readonly host?: string;
}

export type UserIdentityVerdict =
  | { readonly accepted: true; readonly serverResponse?: Uint8Array }
  | { readonly accepted: false };

export interface NegotiationPolicy {
  /** Our AE title: the called AE title the requestor must use, unless `promiscuous`. */
  readonly aeTitle: string;
  /** Accept any called AE title. */
  readonly promiscuous?: boolean;
  /** When given, only these calling AE titles (and hosts) may associate. */
  readonly allowedCallers?: readonly AllowedCaller[];
  /** Live associations beyond which a new one is refused (rejected-transient, local-limit-exceeded). */
  readonly maxAssociations?: number;
  /** Largest P-DATA-TF variable field we receive (sent as our maximum length, 0x51). */
  readonly maxPduLength: number;
  readonly abstractSyntaxes: readonly SupportedAbstractSyntax[];
  /** Checks a user identity (0x58). Without it identities are ignored, as PS3.7 D.3.3.7 allows. */
  readonly verifyUserIdentity?: (
    identity: UserIdentityRq,
    caller: { aeTitle: string; host: string | undefined },
  ) => UserIdentityVerdict;
  /**
   * Admits the calling node once the association would otherwise be accepted: who it is (calling AE
   * title, address, TLS client certificate, user identity) and what it may do. It may be
   * asynchronous (a password hash, an index lookup): the acceptor waits in Sta3 (PS3.8 9.2, the
   * A-ASSOCIATE response primitive is the local user's). The identity it returns is carried by the
   * association to every request (RequestContext.identity); network/ never looks inside it.
   */
  readonly admit?: (request: AdmissionRequest) => AdmissionVerdict | Promise<AdmissionVerdict>;
  readonly implementationClassUid?: string;
  readonly implementationVersionName?: string;
}

/** What the admission hook is told about a requestor. */
export interface AdmissionRequest {
  readonly callingAeTitle: string;
  readonly calledAeTitle: string;
  /** The peer's IP address (IPv4 without the ::ffff: prefix). */
  readonly peerHost: string | undefined;
  /**
   * The subject of the TLS client certificate, when the peer presented one that verified against
   * our CA (`{CN: 'modality1', O: 'Hospital'}`); undefined on plain TCP or without one.
   */
  readonly peerCertificateSubject: Readonly<Record<string, string>> | undefined;
  /** The user identity sub-item (PS3.7 D.3.3.7), when the requestor sent one. */
  readonly userIdentity: UserIdentityRq | undefined;
}

export type AdmissionVerdict =
  | {
      readonly accepted: true;
      /** Carried by the association (opaque here). */
      readonly identity?: unknown;
      /** The server response of a user identity whose positive response was requested (D.3.3.7.2). */
      readonly userIdentityResponse?: Uint8Array;
    }
  | {
      readonly accepted: false;
      /** PS3.8 Table 9-21 reason (source service-user): 3 calling AE title not recognized, 1 no reason given. */
      readonly reason: 'calling-ae-not-recognized' | 'no-reason-given';
      /** Said in the log, never to the peer. */
      readonly why: string;
    };

/**
 * The outcome after the admission hook: a refusal becomes A-ASSOCIATE-RJ (permanent, service-user,
 * with the verdict's reason); an acceptance carries its identity and, when a positive response was
 * requested, the user identity server response in the A-ASSOCIATE-AC (PS3.7 D.3.3.7.2).
 */
export function applyAdmission(
  outcome: NegotiationOutcome,
  verdict: AdmissionVerdict,
  rq: AssociateRqPdu,
): NegotiationOutcome {
  if (outcome.kind !== 'accept') return outcome;
  if (!verdict.accepted) {
    const reason =
      verdict.reason === 'calling-ae-not-recognized'
        ? RejectReason.User.CallingAeTitleNotRecognized
        : RejectReason.User.NoReasonGiven;
    return reject('user', RejectResult.Permanent, RejectSource.ServiceUser, reason, verdict.why);
  }
  const asked = rq.userInformation.userIdentity?.positiveResponseRequested === true;
  const response = verdict.userIdentityResponse;
  const ac: AssociateAcPdu =
    asked && response !== undefined
      ? {
          ...outcome.ac,
          userInformation: {
            ...outcome.ac.userInformation,
            userIdentityResponse: { serverResponse: response },
          },
        }
      : outcome.ac;
  return { kind: 'accept', ac, contexts: outcome.contexts, identity: verdict.identity };
}

export interface NegotiationContext {
  /** Associations live besides this one (established or negotiating). */
  readonly activeAssociations: number;
  /** The requestor's IP address. */
  readonly peerHost?: string;
}

/** An accepted presentation context, with the roles of the local AE on it. */
/** A presentation context a requestor proposes (PS3.8 9.3.2.2). */
export interface ProposedPresentationContext {
  /** Odd, 1..255; assigned in order (1, 3, 5...) when absent. */
  readonly id?: number;
  readonly abstractSyntax: string;
  readonly transferSyntaxes: readonly string[];
  /** Propose SCP/SCU role selection (PS3.7 D.3.3.4) with the roles we want on this SOP class. */
  readonly roles?: { readonly scu: boolean; readonly scp: boolean };
}

export interface AcceptedPresentationContext {
  readonly id: number;
  readonly abstractSyntax: string;
  readonly transferSyntax: string;
  /** The local AE may act as SCU (send requests) on this context. */
  readonly scu: boolean;
  /** The local AE may act as SCP (answer requests) on this context. */
  readonly scp: boolean;
}

export type NegotiationOutcome =
  | {
      readonly kind: 'accept';
      readonly ac: AssociateAcPdu;
      readonly contexts: readonly AcceptedPresentationContext[];
      /** What the admission hook said the requestor is (NegotiationPolicy.admit); opaque here. */
      readonly identity?: unknown;
    }
  | {
      readonly kind: 'reject';
      readonly rj: AssociateRjPdu;
      /** 'provider' rejections are sent by AE-6 before any indication; 'user' ones by AE-8. */
      readonly by: 'provider' | 'user';
      readonly why: string;
    };

function reject(
  by: 'provider' | 'user',
  result: number,
  source: number,
  reason: number,
  why: string,
): NegotiationOutcome {
  return { kind: 'reject', rj: { type: 'A-ASSOCIATE-RJ', result, source, reason }, by, why };
}

/** IPv4 peers on a dual-stack socket show as ::ffff:a.b.c.d. */
export function normalizeHost(host: string | undefined): string | undefined {
  return host?.startsWith('::ffff:') ? host.slice(7) : host;
}

const DEFAULT_REQUESTOR_ROLES = { scu: true, scp: false } as const;

/** The acceptor's answer to an A-ASSOCIATE-RQ. */
export function negotiateAsAcceptor(
  rq: AssociateRqPdu,
  policy: NegotiationPolicy,
  context: NegotiationContext,
): NegotiationOutcome {
  const user = RejectSource.ServiceUser;
  // PS3.8 9.3.2: a receiver tests only bit 0 of the protocol version.
  if ((rq.protocolVersion & 1) === 0) {
    return reject(
      'provider',
      RejectResult.Permanent,
      RejectSource.ServiceProviderAcse,
      RejectReason.Acse.ProtocolVersionNotSupported,
      `protocol version ${rq.protocolVersion} not supported`,
    );
  }
  if (policy.maxAssociations !== undefined && context.activeAssociations >= policy.maxAssociations) {
    return reject(
      'provider',
      RejectResult.Transient,
      RejectSource.ServiceProviderPresentation,
      RejectReason.Presentation.LocalLimitExceeded,
      `association limit ${policy.maxAssociations} reached`,
    );
  }
  if (rq.applicationContextName !== DICOM_APPLICATION_CONTEXT) {
    return reject(
      'user',
      RejectResult.Permanent,
      user,
      RejectReason.User.ApplicationContextNameNotSupported,
      `application context ${rq.applicationContextName} not supported`,
    );
  }
  if (!policy.promiscuous && rq.calledAeTitle !== policy.aeTitle.trim()) {
    return reject(
      'user',
      RejectResult.Permanent,
      user,
      RejectReason.User.CalledAeTitleNotRecognized,
      `called AE title ${rq.calledAeTitle} is not ${policy.aeTitle}`,
    );
  }
  const host = normalizeHost(context.peerHost);
  if (policy.allowedCallers !== undefined) {
    const allowed = policy.allowedCallers.some(
      (c) =>
        c.aeTitle.trim() === rq.callingAeTitle && (c.host === undefined || normalizeHost(c.host) === host),
    );
    if (!allowed) {
      return reject(
        'user',
        RejectResult.Permanent,
        user,
        RejectReason.User.CallingAeTitleNotRecognized,
        `calling AE title ${rq.callingAeTitle} from ${host ?? '?'} not allowed`,
      );
    }
  }
  let userIdentityResponse: UserInformation['userIdentityResponse'];
  const identity = rq.userInformation.userIdentity;
  if (identity !== undefined && policy.verifyUserIdentity !== undefined) {
    const verdict = policy.verifyUserIdentity(identity, { aeTitle: rq.callingAeTitle, host });
    if (!verdict.accepted) {
      return reject(
        'user',
        RejectResult.Permanent,
        user,
        RejectReason.User.NoReasonGiven,
        'user identity not accepted',
      );
    }
    if (identity.positiveResponseRequested) {
      userIdentityResponse = { serverResponse: verdict.serverResponse ?? new Uint8Array(0) };
    }
  }

  const supported = new Map<string, SupportedAbstractSyntax>();
  for (const s of policy.abstractSyntaxes)
    if (!supported.has(s.abstractSyntax)) supported.set(s.abstractSyntax, s);
  const proposedRoles = new Map<string, RoleSelection>();
  for (const r of rq.userInformation.roleSelections ?? [])
    if (!proposedRoles.has(r.sopClassUid)) proposedRoles.set(r.sopClassUid, r);

  /** Roles the requestor gets on an abstract syntax: what it proposed (or the default) and we allow. */
  const requestorRoles = (s: SupportedAbstractSyntax): { scu: boolean; scp: boolean } => {
    const allowed = s.requestorRoles ?? DEFAULT_REQUESTOR_ROLES;
    const proposed = proposedRoles.get(s.abstractSyntax);
    if (proposed === undefined) return { scu: allowed.scu, scp: false };
    return { scu: proposed.scuRole && allowed.scu, scp: proposed.scpRole && allowed.scp };
  };

  const results: PresentationContextAc[] = [];
  const contexts: AcceptedPresentationContext[] = [];
  const seenIds = new Set<number>();
  for (const pc of rq.presentationContexts) {
    const answer = (result: number, transferSyntax = ''): void => {
      results.push({ id: pc.id, result, transferSyntax });
    };
    // PS3.8 9.3.2.2: ids are odd and unique; a broken context is refused, not the association.
    if (pc.id % 2 === 0 || seenIds.has(pc.id) || pc.transferSyntaxes.length === 0) {
      answer(PresentationContextResult.NoReason);
      seenIds.add(pc.id);
      continue;
    }
    seenIds.add(pc.id);
    const s = supported.get(pc.abstractSyntax);
    if (s === undefined) {
      answer(PresentationContextResult.AbstractSyntaxNotSupported);
      continue;
    }
    const ts = s.transferSyntaxes.find((t) => pc.transferSyntaxes.includes(t));
    if (ts === undefined) {
      answer(PresentationContextResult.TransferSyntaxesNotSupported);
      continue;
    }
    const roles = requestorRoles(s);
    if (!roles.scu && !roles.scp) {
      answer(PresentationContextResult.UserRejection);
      continue;
    }
    answer(PresentationContextResult.Acceptance, ts);
    // We take the complementary roles: the requestor's SCU talks to our SCP and vice versa.
    contexts.push({
      id: pc.id,
      abstractSyntax: pc.abstractSyntax,
      transferSyntax: ts,
      scu: roles.scp,
      scp: roles.scu,
    });
  }
  if (contexts.length === 0) {
    // DCMTK and pynetdicom do the same: an association without a usable context is refused.
    return reject(
      'user',
      RejectResult.Permanent,
      user,
      RejectReason.User.NoReasonGiven,
      'no presentation context accepted',
    );
  }

  // PS3.7 D.3.3.4: answer role selection only for SOP classes the requestor asked about.
  const roleSelections: RoleSelection[] = [];
  for (const [sopClassUid] of proposedRoles) {
    const s = supported.get(sopClassUid);
    if (s === undefined) continue;
    const roles = requestorRoles(s);
    roleSelections.push({ sopClassUid, scuRole: roles.scu, scpRole: roles.scp });
  }
  const extended: SopClassExtendedNegotiation[] = [];
  for (const e of rq.userInformation.sopClassExtendedNegotiations ?? []) {
    const info = supported.get(e.sopClassUid)?.extendedNegotiation?.(e.applicationInformation);
    if (info !== undefined) extended.push({ sopClassUid: e.sopClassUid, applicationInformation: info });
  }

  const userInformation: UserInformation = {
    maxLength: policy.maxPduLength,
    implementationClassUid: policy.implementationClassUid ?? IMPLEMENTATION_CLASS_UID,
    // We perform one operation at a time: the window is answered 1/1 (PS3.7 D.3.3.3).
    ...(rq.userInformation.asyncOperationsWindow !== undefined
      ? { asyncOperationsWindow: { maxOperationsInvoked: 1, maxOperationsPerformed: 1 } }
      : {}),
    ...(roleSelections.length > 0 ? { roleSelections } : {}),
    implementationVersionName: policy.implementationVersionName ?? IMPLEMENTATION_VERSION_NAME,
    ...(extended.length > 0 ? { sopClassExtendedNegotiations: extended } : {}),
    ...(userIdentityResponse !== undefined ? { userIdentityResponse } : {}),
  };
  const ac: AssociateAcPdu = {
    type: 'A-ASSOCIATE-AC',
    protocolVersion: 1,
    calledAeTitle: rq.calledAeTitle,
    callingAeTitle: rq.callingAeTitle,
    applicationContextName: DICOM_APPLICATION_CONTEXT,
    presentationContexts: results,
    userInformation,
  };
  return { kind: 'accept', ac, contexts };
}

/**
 * The contexts a requestor may use after an A-ASSOCIATE-AC: accepted ones whose transfer syntax is
 * one it proposed, with its roles (PS3.7 D.3.3.4: without a role selection answer, the defaults
 * apply: requestor SCU, acceptor SCP).
 */
export function acceptedContextsForRequestor(
  rq: AssociateRqPdu,
  ac: AssociateAcPdu,
): AcceptedPresentationContext[] {
  const proposed = new Map(rq.presentationContexts.map((pc) => [pc.id, pc]));
  const rqRoles = new Map((rq.userInformation.roleSelections ?? []).map((r) => [r.sopClassUid, r]));
  const acRoles = new Map((ac.userInformation.roleSelections ?? []).map((r) => [r.sopClassUid, r]));
  const out: AcceptedPresentationContext[] = [];
  for (const answer of ac.presentationContexts) {
    const pc = proposed.get(answer.id);
    if (answer.result !== PresentationContextResult.Acceptance || pc === undefined) continue;
    if (!pc.transferSyntaxes.includes(answer.transferSyntax)) continue;
    const asked = rqRoles.get(pc.abstractSyntax);
    const given = acRoles.get(pc.abstractSyntax);
    const roles =
      asked !== undefined && given !== undefined
        ? { scu: asked.scuRole && given.scuRole, scp: asked.scpRole && given.scpRole }
        : DEFAULT_REQUESTOR_ROLES;
    if (!roles.scu && !roles.scp) continue;
    out.push({
      id: pc.id,
      abstractSyntax: pc.abstractSyntax,
      transferSyntax: answer.transferSyntax,
      ...roles,
    });
  }
  return out;
}

/** Text for an A-ASSOCIATE-RJ, for messages and logs. */
export function describeReject(rj: { result: number; source: number; reason: number }): string {
  const result = rj.result === RejectResult.Transient ? 'rejected-transient' : 'rejected-permanent';
  const texts: Record<number, Record<number, string>> = {
    [RejectSource.ServiceUser]: {
      1: 'no-reason-given',
      2: 'application-context-name-not-supported',
      3: 'calling-AE-title-not-recognized',
      7: 'called-AE-title-not-recognized',
    },
    [RejectSource.ServiceProviderAcse]: { 1: 'no-reason-given', 2: 'protocol-version-not-supported' },
    [RejectSource.ServiceProviderPresentation]: { 1: 'temporary-congestion', 2: 'local-limit-exceeded' },
  };
  const source =
    ['', 'service-user', 'service-provider (ACSE)', 'service-provider (presentation)'][rj.source] ??
    `source ${rj.source}`;
  return `${result}, ${source}, ${texts[rj.source]?.[rj.reason] ?? `reason ${rj.reason}`}`;
}

/** Text for an A-ABORT source and reason. */
export function describeAbort(source: number, reason: number): string {
  if (source === AbortSource.ServiceUser) return 'service-user';
  const reasons = [
    'reason-not-specified',
    'unrecognized-PDU',
    'unexpected-PDU',
    'reserved',
    'unrecognized-PDU-parameter',
    'unexpected-PDU-parameter',
    'invalid-PDU-parameter-value',
  ];
  return `service-provider, ${reasons[reason] ?? `reason ${reason}`}`;
}
