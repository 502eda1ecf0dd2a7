/**
 * DICOM access control of `pacs server` (issue 14): the network layer's two hooks wired to
 * security/. At A-ASSOCIATE-RQ `admit` looks the calling AE up in the AE directory and checks its
 * bindings and user identity (security/dicom-admission.ts); before every request `authorize` maps
 * the command and SOP class to its operation (security/dimse-operation.ts) and asks the one policy
 * (security/policy.ts). Refusals are logged as warnings and reported as 'security-alert' events.
 *
 * The AE directory is the one source of truth for "a known AE, with its host and port": the
 * index's registry (`pacs ae add`), then the `peers` (`--peer AET=HOST:PORT`, which only say where
 * an AE listens), then `server.dicom.aes` (which say everything), later ones winning. The C-MOVE
 * SCP's destinations are the directory's AEs with a host and port.
 */

import type { EventBus } from '../core/events.js';
import type { Logger } from '../core/logger.js';
import type { AuthorizationQuery, AuthorizationRefusal, AuthorizeHook } from '../network/dimse.js';
import type { AdmissionRequest, AdmissionVerdict } from '../network/negotiation.js';
import type { AeEntry, AeRegistry } from '../security/ae-registry.js';
import type { IdentityService } from '../security/authentication.js';
import { admitNode } from '../security/dicom-admission.js';
import { dimseOperationOf } from '../security/dimse-operation.js';
import { identityName, type NodeIdentity } from '../security/identity.js';
import { UNKNOWN_AE_DEFAULT } from '../security/permissions.js';
import { authorize } from '../security/policy.js';
import type { MovePeer } from '../services/query-retrieve/move-scp.js';
import type { Config } from './config.js';

export interface DicomAccessOptions {
  readonly config: Config;
  /** The index's AE registry (archive/security/ae-registry.ts aeRegistryOf). */
  readonly registry: AeRegistry;
  readonly logger: Logger;
  readonly events: EventBus;
  /** Checks user identities negotiated on associations; without it they are ignored. */
  readonly identityService?: IdentityService;
}

export interface DicomAccess {
  readonly admit: (request: AdmissionRequest) => Promise<AdmissionVerdict>;
  readonly authorize: AuthorizeHook;
  /** The known AEs with a host and port (the C-MOVE destinations), as of the last refresh. */
  readonly knownAes: () => readonly MovePeer[];
  /** Reloads the index's registry into the directory. */
  refresh(): Promise<void>;
}

/** The config file's AEs (`peers`, then `server.dicom.aes`), as registry entries. */
export function configuredAes(config: Config): AeEntry[] {
  const out = new Map<string, AeEntry>();
  for (const p of config.peers) {
    out.set(p.aet, {
      aeTitle: p.aet,
      host: p.host,
      port: p.port,
      tls: p.tls,
      permissions: UNKNOWN_AE_DEFAULT,
      bindAddress: false,
    });
  }
  for (const a of config.server.dicom.aes) {
    out.set(a.aeTitle, {
      aeTitle: a.aeTitle,
      ...(a.host !== undefined ? { host: a.host } : {}),
      ...(a.port !== undefined ? { port: a.port } : {}),
      permissions: a.permissions,
      ...(a.moveDestinations !== undefined
        ? { moveDestinations: a.moveDestinations === '*' ? 'any' : a.moveDestinations }
        : {}),
      ...(a.tlsSubject !== undefined ? { tlsSubject: a.tlsSubject } : {}),
      bindAddress: a.bindAddress,
      tls: a.tls,
      ...(a.description !== undefined ? { description: a.description } : {}),
    });
  }
  return [...out.values()];
}

/** Index entries, then the config's (a `peers` entry only changes where an indexed AE listens). */
function mergeDirectory(indexed: readonly AeEntry[], config: Config): Map<string, AeEntry> {
  const out = new Map<string, AeEntry>();
  for (const e of indexed) out.set(e.aeTitle, e);
  const fromAes = new Set(config.server.dicom.aes.map((a) => a.aeTitle));
  for (const e of configuredAes(config)) {
    const known = out.get(e.aeTitle);
    if (known !== undefined && !fromAes.has(e.aeTitle)) {
      // A --peer over an indexed AE: where it listens from the flag, the rest from the index.
      out.set(e.aeTitle, {
        ...known,
        ...(e.host !== undefined ? { host: e.host } : {}),
        ...(e.port !== undefined ? { port: e.port } : {}),
        tls: e.tls === true,
      });
    } else {
      out.set(e.aeTitle, e);
    }
  }
  return out;
}

function isNodeIdentity(value: unknown): value is NodeIdentity {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'ae';
}

export function dicomAccess(options: DicomAccessOptions): DicomAccess {
  const { config, registry, events } = options;
  const log = options.logger.child({ layer: 'access' });
  let directory = mergeDirectory([], config);
  let refreshing: Promise<void> | undefined;
  const refresh = (): Promise<void> => {
    // Associations arriving together share one read of the registry.
    refreshing ??= registry
      .list()
      .then((indexed) => {
        directory = mergeDirectory(indexed, config);
      })
      .finally(() => {
        refreshing = undefined;
      });
    return refreshing;
  };
  const unknownAe = config.server.dicom.unknownAe;

  const admit = async (request: AdmissionRequest): Promise<AdmissionVerdict> => {
    const admission = await admitNode(
      {
        callingAeTitle: request.callingAeTitle,
        peerHost: request.peerHost,
        peerCertificateSubject: request.peerCertificateSubject,
        userIdentity: request.userIdentity,
      },
      {
        lookup: async (aeTitle) => {
          await refresh();
          return directory.get(aeTitle);
        },
        unknownAe,
        ...(options.identityService !== undefined ? { identityService: options.identityService } : {}),
      },
    );
    if (!admission.accepted) {
      log.warn(
        {
          calling: request.callingAeTitle,
          remote: request.peerHost,
          ...(admission.user !== undefined ? { user: admission.user } : {}),
        },
        `association from ${request.callingAeTitle}@${request.peerHost ?? '?'} rejected: ${admission.why}`,
      );
      events.emit({
        type: 'security-alert',
        kind: admission.nodeAuthentication === true ? 'node-authentication-failed' : 'association-rejected',
        detail: admission.why,
        ...(admission.user !== undefined ? { user: admission.user } : {}),
        remoteAddress: request.peerHost,
      });
      return { accepted: false, reason: admission.reason, why: admission.why };
    }
    if (admission.note !== undefined) log.info({ calling: request.callingAeTitle }, admission.note);
    return {
      accepted: true,
      identity: admission.identity,
      ...(admission.userIdentityResponse !== undefined
        ? { userIdentityResponse: admission.userIdentityResponse }
        : {}),
    };
  };

  const refuse = (
    query: AuthorizationQuery,
    refusal: AuthorizationRefusal,
    who: string,
  ): AuthorizationRefusal => {
    log.warn(
      {
        calling: query.peerAeTitle,
        remote: query.remoteAddress,
        command: query.command,
        sopClass: query.abstractSyntax,
        status: refusal.status,
      },
      `${query.command} from ${who} refused: ${refusal.errorComment}`,
    );
    events.emit({
      type: 'security-alert',
      kind: 'permission-denied',
      detail: `${query.command}: ${refusal.errorComment}`,
      user: who,
      remoteAddress: query.remoteAddress,
    });
    // The command encoder cuts the Error Comment to its 64 characters (dimse-command.ts).
    return refusal;
  };

  const authorizeRequest: AuthorizeHook = (query) => {
    const identity = query.identity;
    if (!isNodeIdentity(identity))
      return refuse(
        query,
        { status: 0x0124, errorComment: 'association without an identity' },
        query.peerAeTitle,
      );
    const operation = dimseOperationOf(query.command, query.abstractSyntax);
    if (operation === undefined)
      return refuse(
        query,
        { status: 0x0124, errorComment: `${query.command} on ${query.abstractSyntax} is no known operation` },
        identityName(identity),
      );
    const decision = authorize({
      identity,
      operation,
      ...(query.moveDestination !== undefined
        ? { resource: { moveDestination: query.moveDestination } }
        : {}),
    });
    if (decision.allowed) return undefined;
    return refuse(
      query,
      { status: decision.dimseStatus, errorComment: decision.reason },
      identityName(identity),
    );
  };

  return {
    admit,
    authorize: authorizeRequest,
    knownAes: () => {
      const out: MovePeer[] = [];
      for (const e of directory.values())
        if (e.host !== undefined && e.port !== undefined)
          out.push({ aet: e.aeTitle, host: e.host, port: e.port, tls: e.tls === true });
      return out;
    },
    refresh,
  };
}
