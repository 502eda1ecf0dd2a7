/**
 * Changing users, roles and tokens (issue 14): the checks every way of administering shares
 * (`pacs user|role|token`, the first start's admin, later the REST admin routes). Each function
 * returns the change made or a one-line reason why not; none emits an event (the caller that has a
 * bus emits 'security-alert' configuration-changed).
 */
import { err, ok, type Result } from '../core/result.js';
import type { IdentityStore, RoleRecord, TokenRecord, UserRecord } from './identity-store.js';
import { generatePassword, hashPassword, passwordProblem } from './passwords.js';
import { BUILTIN_ROLES, PERMISSIONS, type Permission } from './permissions.js';
import { builtinRole, resolveRole, roleNameProblem, userNameProblem } from './roles.js';
import { generateToken, MAX_TOKEN_DAYS, permissionsBeyond, tokenExpiry } from './tokens.js';

export interface AddUserRequest {
  readonly name: string;
  readonly role: string;
  /** Undefined: a strong random one is made and returned. */
  readonly password?: string;
}

export interface AddedUser {
  readonly user: UserRecord;
  /** The generated password, when none was given (shown once, never stored). */
  readonly generatedPassword?: string;
}

export async function addUser(
  store: IdentityStore,
  request: AddUserRequest,
): Promise<Result<AddedUser, string>> {
  const bad = userNameProblem(request.name);
  if (bad !== undefined) return err(bad);
  const role = await knownRole(store, request.role);
  if (!role.ok) return role;
  const generated = request.password === undefined ? generatePassword() : undefined;
  const password = request.password ?? generated ?? '';
  const weak = passwordProblem(password);
  if (weak !== undefined) return err(weak);
  // A cheap look first, so a duplicate does not cost a hash; the insert decides.
  if ((await store.getUser(request.name)) !== undefined) return err(`user ${request.name} exists already`);
  const added = await store.addUser({
    name: request.name,
    role: request.role,
    passwordHash: await hashPassword(password),
  });
  if (added === 'exists') return err(`user ${request.name} exists already`);
  return ok(generated === undefined ? { user: added } : { user: added, generatedPassword: generated });
}

/** Sets a user's password; their browser sessions end (a password changed after a theft must lock the thief out). */
export async function setPassword(
  store: IdentityStore,
  name: string,
  password: string,
): Promise<Result<UserRecord, string>> {
  const weak = passwordProblem(password);
  if (weak !== undefined) return err(weak);
  if ((await store.getUser(name)) === undefined) return err(`no user ${name}`);
  const changed = await store.updateUser(name, { passwordHash: await hashPassword(password) });
  if (changed === undefined) return err(`no user ${name}`);
  await store.removeUserSessions(changed.id);
  return ok(changed);
}

export async function setRole(
  store: IdentityStore,
  name: string,
  roleName: string,
): Promise<Result<UserRecord, string>> {
  const role = await knownRole(store, roleName);
  if (!role.ok) return role;
  const changed = await store.updateUser(name, { role: roleName });
  return changed === undefined ? err(`no user ${name}`) : ok(changed);
}

export async function setDisabled(
  store: IdentityStore,
  name: string,
  disabled: boolean,
): Promise<Result<UserRecord, string>> {
  const changed = await store.updateUser(name, { disabled });
  return changed === undefined ? err(`no user ${name}`) : ok(changed);
}

export async function removeUser(store: IdentityStore, name: string): Promise<Result<void, string>> {
  return (await store.removeUser(name)) ? ok() : err(`no user ${name}`);
}

export async function addRole(
  store: IdentityStore,
  request: {
    readonly name: string;
    readonly permissions: readonly Permission[];
    readonly description?: string;
  },
): Promise<Result<RoleRecord, string>> {
  const bad = roleNameProblem(request.name);
  if (bad !== undefined) return err(bad);
  if (builtinRole(request.name) !== undefined) return err(`role ${request.name} is built in`);
  if (request.permissions.length === 0)
    return err(`a role needs at least one permission (${PERMISSIONS.join(', ')})`);
  const added = await store.addRole({
    name: request.name,
    description: request.description ?? '',
    permissions: request.permissions,
  });
  return added === 'exists' ? err(`role ${request.name} exists already`) : ok(added);
}

export async function removeRole(store: IdentityStore, name: string): Promise<Result<void, string>> {
  if (builtinRole(name) !== undefined) return err(`role ${name} is built in and cannot be removed`);
  if ((await store.getRole(name)) === undefined) return err(`no role ${name}`);
  const users = await store.countUsersWithRole(name);
  if (users > 0)
    return err(
      `role ${name} is held by ${users} user${users === 1 ? '' : 's'}: give them another role first`,
    );
  const tokens = await store.countTokensWithRole(name);
  if (tokens > 0)
    return err(`role ${name} is held by ${tokens} API token${tokens === 1 ? '' : 's'}: revoke them first`);
  return (await store.removeRole(name)) ? ok() : err(`no role ${name}`);
}

export interface CreateTokenRequest {
  readonly user: string;
  /** Default: the user's role. Its permissions must be within the user's role's. */
  readonly role?: string;
  /** Days until it expires (1 to 3650); undefined: it does not expire. */
  readonly expiresDays?: number;
  readonly description?: string;
}

export interface CreatedToken {
  /** The token, shown once. */
  readonly token: string;
  readonly record: TokenRecord;
}

export async function createToken(
  store: IdentityStore,
  request: CreateTokenRequest,
  now: Date = new Date(),
): Promise<Result<CreatedToken, string>> {
  const user = await store.getUser(request.user);
  if (user === undefined) return err(`no user ${request.user}`);
  const userRole = await resolveRole(store, user.role);
  if (userRole === undefined) return err(`the role ${user.role} of user ${user.name} no longer exists`);
  const roleName = request.role ?? user.role;
  const role = await knownRole(store, roleName);
  if (!role.ok) return role;
  const beyond = permissionsBeyond(role.value.permissions, userRole.permissions);
  if (beyond.length > 0)
    return err(
      `role ${roleName} grants ${beyond.join(', ')}, which user ${user.name} (role ${user.role}) does not have`,
    );
  const days = request.expiresDays;
  if (days !== undefined && !(Number.isInteger(days) && days >= 1 && days <= MAX_TOKEN_DAYS))
    return err(`expiry: expected a whole number of days from 1 to ${MAX_TOKEN_DAYS}`);
  const generated = generateToken();
  const record = await store.addToken({
    tokenId: generated.tokenId,
    userId: user.id,
    role: roleName,
    secretHash: generated.secretHash,
    description: request.description ?? null,
    expiresAt: days === undefined ? null : tokenExpiry(now, days),
  });
  return ok({ token: generated.token, record });
}

export async function revokeToken(
  store: IdentityStore,
  tokenId: string,
  now: Date = new Date(),
): Promise<Result<void, string>> {
  const token = await store.getToken(tokenId);
  if (token === undefined) return err(`no API token ${tokenId}`);
  if (token.revokedAt !== null) return err(`API token ${tokenId} was revoked already`);
  return (await store.revokeToken(tokenId, now)) ? ok() : err(`API token ${tokenId} was revoked already`);
}

async function knownRole(
  store: IdentityStore,
  name: string,
): Promise<Result<{ readonly permissions: readonly Permission[] }, string>> {
  const role = await resolveRole(store, name);
  if (role === undefined) {
    const custom = (await store.listRoles()).map((r) => r.name);
    const names = [...BUILTIN_ROLES.map((r) => r.name), ...custom];
    return err(`unknown role ${JSON.stringify(name)} (roles: ${names.join(', ')})`);
  }
  return ok(role);
}
