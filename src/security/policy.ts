/**
 * The one authorization question (ARCHITECTURE.md decision 10): "may this identity do this
 * operation on this resource?". Every HTTP route (web/app.ts's onRequest hook) and every DIMSE
 * request (the dispatcher's authorize hook, wired by server/) asks `authorize`, and nothing else
 * decides. It is pure and synchronous: who the identity is was settled by authentication.
 */
import type { Identity, NodeIdentity } from './identity.js';
import { type Operation, requirementOf } from './operations.js';

/** What the operation is about, when it names something. */
export interface AccessResource {
  readonly studyInstanceUid?: string;
  readonly seriesInstanceUid?: string;
  readonly sopInstanceUid?: string;
  /** C-MOVE: the destination AE title named by the request. */
  readonly moveDestination?: string;
  /** Operations on a user's own things (their tokens, their password): that user's name. */
  readonly ownerName?: string;
}

export interface AccessRequest {
  readonly identity: Identity;
  readonly operation: Operation;
  readonly resource?: AccessResource;
}

export type AccessDecision =
  | { readonly allowed: true }
  | {
      readonly allowed: false;
      /** HTTP: 401 when the identity should authenticate, 403 when it may not do this. */
      readonly status: 401 | 403;
      /**
       * DIMSE: 0x0124 Refused: Not Authorized (PS3.7 C.5.x), or 0xA801 Move Destination Unknown
       * for a C-MOVE destination the caller may not name.
       */
      readonly dimseStatus: number;
      readonly reason: string;
    };

export const ALLOWED: AccessDecision = { allowed: true };
export const STATUS_NOT_AUTHORIZED = 0x0124;
export const STATUS_MOVE_DESTINATION_UNKNOWN = 0xa801;

function refused(status: 401 | 403, reason: string, dimseStatus = STATUS_NOT_AUTHORIZED): AccessDecision {
  return { allowed: false, status, dimseStatus, reason };
}

/** The decision. */
export function authorize(request: AccessRequest): AccessDecision {
  const { identity, operation } = request;
  const requirement = requirementOf(operation);
  if (requirement.kind === 'public') return ALLOWED;
  if (identity.kind === 'system') return ALLOWED;

  if (requirement.kind === 'dimse') {
    if (identity.kind !== 'ae') return refused(403, `${operation} is a DICOM operation`);
    if (!identity.permissions.has(requirement.ae))
      return refused(
        403,
        `${identity.registered ? 'AE' : 'unknown AE'} ${identity.aeTitle} may not ${requirement.ae}`,
      );
    if (
      identity.user !== undefined &&
      requirement.user !== undefined &&
      !identity.user.permissions.has(requirement.user)
    )
      return refused(
        403,
        `user ${identity.user.name} (role ${identity.user.role}) lacks ${requirement.user}`,
      );
    if (operation === 'dimse:move')
      return moveDestinationAllowed(identity, request.resource?.moveDestination);
    return ALLOWED;
  }

  // HTTP operations need a user.
  if (identity.kind === 'anonymous') return refused(401, 'authentication required');
  if (identity.kind === 'ae') return refused(403, `${operation} is not a DICOM operation`);
  if (requirement.kind === 'authenticated') return ALLOWED;
  if (!identity.permissions.has(requirement.permission))
    return refused(403, `user ${identity.name} (role ${identity.role}) lacks ${requirement.permission}`);
  return ALLOWED;
}

function moveDestinationAllowed(identity: NodeIdentity, destination: string | undefined): AccessDecision {
  if (identity.moveDestinations === 'any') return ALLOWED;
  if (destination !== undefined && identity.moveDestinations.includes(destination.trim())) return ALLOWED;
  return refused(
    403,
    `AE ${identity.aeTitle} may not move to ${destination === undefined ? 'an unnamed destination' : destination}`,
    STATUS_MOVE_DESTINATION_UNKNOWN,
  );
}
