/**
 * What a user or a DICOM node may be allowed to do (issue 14, ARCHITECTURE.md decision 10).
 *
 * Users (people, scripts, DICOMweb clients) hold one role; a role grants permissions. DICOM
 * application entities hold AE permissions of their own (what their associations may ask for);
 * an association that also negotiated a user identity (PS3.7 D.3.3.7) is limited by both.
 */

/** What a role may grant. */
export const PERMISSIONS = [
  /** Search and look: QIDO-RS, metadata, rendered images, the study browser. */
  'view',
  /** Take objects away: WADO-RS objects and bulk data, ZIP, WADO-URI application/dicom. */
  'download',
  /** Bring objects in: STOW-RS, REST upload. */
  'upload',
  /** Delete patients, studies, series, instances. */
  'delete',
  /** Modify or de-identify stored objects. */
  'modify',
  /** Send objects to another node (C-STORE SCU, STOW-RS client jobs). */
  'send',
  /** Query and retrieve from remote nodes (C-FIND, C-MOVE, C-GET as SCU). */
  'query-remote',
  /** Create, edit and delete worklist items; see MPPS. */
  'worklist',
  /** Users, roles, tokens, the AE registry, configuration, jobs. */
  'admin',
  /** Read the audit trail. */
  'audit',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

/** What an application entity's associations may ask for. */
export const AE_PERMISSIONS = ['echo', 'store', 'find', 'move', 'get', 'worklist', 'mpps', 'commit'] as const;
export type AePermission = (typeof AE_PERMISSIONS)[number];

export interface RoleDefinition {
  readonly name: string;
  readonly description: string;
  readonly permissions: readonly Permission[];
}

/**
 * The roles every archive has (the role table may add more). `admin` holds every permission but
 * `audit`: who administers is not who checks the administrators (HIPAA separation of duties);
 * `auditor` reads the trail and nothing else.
 */
export const BUILTIN_ROLES: readonly RoleDefinition[] = [
  {
    name: 'admin',
    description: 'everything but reading the audit trail',
    permissions: PERMISSIONS.filter((p) => p !== 'audit'),
  },
  {
    name: 'clinician',
    description: 'view, download, send, and query/retrieve from other nodes',
    permissions: ['view', 'download', 'send', 'query-remote'],
  },
  {
    name: 'technologist',
    description: 'view, download, upload, modify, send, query/retrieve and the worklist',
    permissions: ['view', 'download', 'upload', 'modify', 'send', 'query-remote', 'worklist'],
  },
  { name: 'viewer', description: 'view only', permissions: ['view'] },
  { name: 'uploader', description: 'upload only (modalities and import scripts)', permissions: ['upload'] },
  { name: 'auditor', description: 'read the audit trail', permissions: ['audit'] },
];

export function isPermission(value: string): value is Permission {
  return (PERMISSIONS as readonly string[]).includes(value);
}

export function isAePermission(value: string): value is AePermission {
  return (AE_PERMISSIONS as readonly string[]).includes(value);
}

/** Parses `echo,store,find`: the permissions, or the first word that is not one. */
export function parseAePermissions(list: string): ParsedList<AePermission> {
  return parseWords(list, isAePermission);
}

/** Parses `view,download`: the permissions, or the first word that is not one. */
export function parsePermissions(list: string): ParsedList<Permission> {
  return parseWords(list, isPermission);
}

export type ParsedList<T> =
  | { readonly ok: true; readonly value: T[] }
  | { readonly ok: false; readonly bad: string };

/** Comma-separated words, each `is` one, without repeats (in their first order). */
function parseWords<T extends string>(list: string, is: (word: string) => word is T): ParsedList<T> {
  const out: T[] = [];
  for (const word of list.split(',').map((w) => w.trim())) {
    if (word === '') continue;
    if (!is(word)) return { ok: false, bad: word };
    if (!out.includes(word)) out.push(word);
  }
  return { ok: true, value: out };
}

/** What an AE that is not in the registry may do by default (issue 14: a quick start works). */
export const UNKNOWN_AE_DEFAULT: readonly AePermission[] = ['echo', 'store'];
