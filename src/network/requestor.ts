/**
 * The requestor side (PS3.8 7.1.1, 9.2 AE-1..AE-4): builds the A-ASSOCIATE-RQ from the proposed
 * presentation contexts and roles (PS3.7 D.3.3.4), opens the transport and hands out an
 * Association once the peer accepted.
 */
import { err, ok, type Result } from '../core/result.js';
import { Association } from './association.js';
import { NetworkError } from './errors.js';
import {
  DEFAULT_MAX_PDU_LENGTH,
  IMPLEMENTATION_CLASS_UID,
  IMPLEMENTATION_VERSION_NAME,
  type ProposedPresentationContext,
} from './negotiation.js';
import {
  type AssociateRqPdu,
  DICOM_APPLICATION_CONTEXT,
  type RoleSelection,
  type SopClassCommonExtendedNegotiation,
  type SopClassExtendedNegotiation,
  type UserIdentityRq,
} from './pdu.js';
import { openTransport, type TlsClientOptions } from './transport.js';
import { UpperLayer, type UpperLayerOptions } from './upper-layer.js';

export interface RequestorOptions extends UpperLayerOptions {
  readonly host: string;
  readonly port: number;
  readonly callingAeTitle: string;
  readonly calledAeTitle: string;
  readonly presentationContexts: readonly ProposedPresentationContext[];
  /** Our maximum length (0x51). Default 64 KiB. */
  readonly maxPduLength?: number;
  readonly tls?: TlsClientOptions;
  readonly userIdentity?: UserIdentityRq;
  readonly asyncOperationsWindow?: {
    readonly maxOperationsInvoked: number;
    readonly maxOperationsPerformed: number;
  };
  readonly sopClassExtendedNegotiations?: readonly SopClassExtendedNegotiation[];
  readonly sopClassCommonExtendedNegotiations?: readonly SopClassCommonExtendedNegotiation[];
  readonly implementationClassUid?: string;
  readonly implementationVersionName?: string;
}

/** The A-ASSOCIATE-RQ these options describe. */
export function buildAssociateRq(options: RequestorOptions): AssociateRqPdu {
  let nextId = 1;
  const used = new Set(options.presentationContexts.map((pc) => pc.id).filter((id) => id !== undefined));
  const presentationContexts = options.presentationContexts.map((pc) => {
    let id = pc.id;
    if (id === undefined) {
      while (used.has(nextId)) nextId += 2;
      id = nextId;
      used.add(id);
    }
    return { id, abstractSyntax: pc.abstractSyntax, transferSyntaxes: pc.transferSyntaxes };
  });
  const roleSelections: RoleSelection[] = [];
  for (const pc of options.presentationContexts) {
    if (pc.roles !== undefined && !roleSelections.some((r) => r.sopClassUid === pc.abstractSyntax)) {
      roleSelections.push({ sopClassUid: pc.abstractSyntax, scuRole: pc.roles.scu, scpRole: pc.roles.scp });
    }
  }
  return {
    type: 'A-ASSOCIATE-RQ',
    protocolVersion: 1,
    calledAeTitle: options.calledAeTitle,
    callingAeTitle: options.callingAeTitle,
    applicationContextName: DICOM_APPLICATION_CONTEXT,
    presentationContexts,
    userInformation: {
      maxLength: options.maxPduLength ?? DEFAULT_MAX_PDU_LENGTH,
      implementationClassUid: options.implementationClassUid ?? IMPLEMENTATION_CLASS_UID,
      ...(options.asyncOperationsWindow !== undefined
        ? { asyncOperationsWindow: options.asyncOperationsWindow }
        : {}),
      ...(roleSelections.length > 0 ? { roleSelections } : {}),
      implementationVersionName: options.implementationVersionName ?? IMPLEMENTATION_VERSION_NAME,
      ...(options.sopClassExtendedNegotiations?.length
        ? { sopClassExtendedNegotiations: options.sopClassExtendedNegotiations }
        : {}),
      ...(options.sopClassCommonExtendedNegotiations?.length
        ? { sopClassCommonExtendedNegotiations: options.sopClassCommonExtendedNegotiations }
        : {}),
      ...(options.userIdentity !== undefined ? { userIdentity: options.userIdentity } : {}),
    },
  };
}

/**
 * Opens an association as requestor. Expected failures are values: a refused association
 * (ERR_ASSOCIATION_REJECTED with the RJ fields), a connection failure (ERR_CONNECT), a timeout
 * (ERR_TIMEOUT), an abort during negotiation (ERR_ASSOCIATION_ABORTED).
 */
export function requestAssociation(options: RequestorOptions): Promise<Result<Association, NetworkError>> {
  let rq: AssociateRqPdu;
  try {
    rq = buildAssociateRq(options);
  } catch (e) {
    return Promise.resolve(
      err(e instanceof NetworkError ? e : new NetworkError('ERR_PDU_ENCODE', String(e))),
    );
  }
  const ul = new UpperLayer(true, rq.userInformation.maxLength ?? DEFAULT_MAX_PDU_LENGTH, options);
  ul.rq = rq;
  ul.connectTransport = () =>
    openTransport({
      host: options.host,
      port: options.port,
      tls: options.tls,
      timeoutMs: options.timeouts?.connectMs,
    });
  return new Promise((resolve) => {
    ul.onOutcome = (outcome) => {
      if (outcome.kind === 'established') resolve(ok(new Association(ul)));
      else resolve(err(outcome.error));
    };
    ul.dispatch({ name: 'Evt1', rq });
  });
}
