/**
 * Roles as authentication sees them: the built-in ones (permissions.ts) and the custom ones of the
 * role table, resolved by name when a user authenticates, so a change to a role applies from the
 * next request on. Names of users and roles are checked here, once, for every way they come in.
 */
import type { IdentityStore } from './identity-store.js';
import { BUILTIN_ROLES, type RoleDefinition } from './permissions.js';

export function builtinRole(name: string): RoleDefinition | undefined {
  return BUILTIN_ROLES.find((r) => r.name === name);
}

/** The role of that name, built in or custom; undefined when there is none. */
export async function resolveRole(store: IdentityStore, name: string): Promise<RoleDefinition | undefined> {
  const builtin = builtinRole(name);
  if (builtin !== undefined) return builtin;
  const row = await store.getRole(name);
  if (row === undefined) return undefined;
  return { name: row.name, description: row.description, permissions: row.permissions };
}

/** Every role: the built-in ones first, then the custom ones by name. */
export async function allRoles(
  store: IdentityStore,
): Promise<Array<RoleDefinition & { readonly builtin: boolean }>> {
  const custom = await store.listRoles();
  return [
    ...BUILTIN_ROLES.map((r) => ({ ...r, builtin: true })),
    ...custom.map((r) => ({
      name: r.name,
      description: r.description,
      permissions: r.permissions,
      builtin: false,
    })),
  ];
}

/**
 * User names: 1 to 64 letters, digits and `. _ @ + -`. No colon (HTTP Basic splits on the first),
 * no space or control character (logs, audit messages, DICOM user identity's username).
 */
export function userNameProblem(name: string): string | undefined {
  if (!/^[A-Za-z0-9._@+-]{1,64}$/.test(name))
    return `user name ${JSON.stringify(name)}: expected 1 to 64 letters, digits and . _ @ + -`;
  return undefined;
}

/** Role names: a lower-case letter, then up to 63 lower-case letters, digits, _ and -. */
export function roleNameProblem(name: string): string | undefined {
  if (!/^[a-z][a-z0-9_-]{0,63}$/.test(name))
    return `role name ${JSON.stringify(name)}: expected a lower-case letter, then lower-case letters, digits, _ and - (64 at most)`;
  return undefined;
}
