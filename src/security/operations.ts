/**
 * Every operation the archive performs for someone, and what it requires (issue 14,
 * ARCHITECTURE.md decision 10). An HTTP route declares one of these (`config.operation`), the
 * DIMSE dispatcher maps each request to one; policy.ts decides. Adding an operation is adding a
 * line here: the build then asks for its requirement.
 */
import type { AePermission, Permission } from './permissions.js';

/** What an operation needs from the identity that asks. */
export type Requirement =
  /** Anyone, even without credentials (/healthz, the web application's files, the login form). */
  | { readonly kind: 'public' }
  /** Any authenticated user, whatever their role (logout, who am I, the Capabilities document). */
  | { readonly kind: 'authenticated' }
  /** A user whose role grants this permission. */
  | { readonly kind: 'permission'; readonly permission: Permission }
  /**
   * A DICOM request: the calling AE needs `ae`; when the association carries a user identity, the
   * user's role also needs `user` (when given).
   */
  | { readonly kind: 'dimse'; readonly ae: AePermission; readonly user?: Permission };

const publicOp = { kind: 'public' } as const;
const authenticated = { kind: 'authenticated' } as const;
const needs = (permission: Permission) => ({ kind: 'permission', permission }) as const;
const dimse = (ae: AePermission, user?: Permission) =>
  (user !== undefined ? { kind: 'dimse', ae, user } : { kind: 'dimse', ae }) as Requirement;

export const OPERATIONS = {
  // --- DICOM (DIMSE) -------------------------------------------------------------------------
  'dimse:echo': dimse('echo'),
  'dimse:store': dimse('store', 'upload'),
  'dimse:find': dimse('find', 'view'),
  'dimse:move': dimse('move', 'download'),
  'dimse:get': dimse('get', 'download'),
  'dimse:worklist': dimse('worklist', 'view'),
  'dimse:mpps': dimse('mpps', 'worklist'),
  'dimse:commit': dimse('commit', 'upload'),

  // --- DICOMweb ------------------------------------------------------------------------------
  /** QIDO-RS searches. */
  'dicomweb:search': needs('view'),
  /** What a viewer reads: metadata, frames, bulk data, rendered images and thumbnails. */
  'dicomweb:view': needs('view'),
  /** Objects taken away: WADO-RS study/series/instance retrieve, ZIP, WADO-URI application/dicom. */
  'dicomweb:retrieve': needs('download'),
  /** STOW-RS. */
  'dicomweb:store': needs('upload'),
  /** The Capabilities document (OPTIONS). */
  'dicomweb:capabilities': authenticated,

  // --- system --------------------------------------------------------------------------------
  'system:health': publicOp,
  'system:metrics': needs('admin'),

  // --- authentication and the web application --------------------------------------------------
  /** The login endpoint (it authenticates the credentials it is given). */
  'auth:login': publicOp,
  'auth:logout': authenticated,
  /** Who am I, with my permissions (the UI hides what a user may not do). */
  'auth:whoami': authenticated,
  /** The web application's static files. */
  'web:static': publicOp,

  // --- administration ------------------------------------------------------------------------
  'admin:users': needs('admin'),
  'admin:tokens': needs('admin'),
  'admin:ae': needs('admin'),
  'audit:read': needs('audit'),
} as const satisfies Record<string, Requirement>;

export type Operation = keyof typeof OPERATIONS;

export const OPERATION_NAMES = Object.keys(OPERATIONS) as Operation[];

/** The DIMSE operations, by the command that asks for them (a C-FIND on a worklist model is 'dimse:worklist'). */
export type DimseOperation = Extract<Operation, `dimse:${string}`>;

export function requirementOf(operation: Operation): Requirement {
  return OPERATIONS[operation];
}
