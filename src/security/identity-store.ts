/**
 * The port of the identity stores (issue 14): users, custom roles, API tokens and browser
 * sessions, kept in the index by archive/security/ (SQL on SQLite and PostgreSQL, or memory).
 * Stores keep what they are given: hashing, policy and expiry checks belong to the identity
 * service (identity-service.ts), tokens.ts and passwords.ts, never to a store.
 */
import type { Permission } from './permissions.js';

export interface UserRecord {
  readonly id: number;
  readonly name: string;
  readonly role: string;
  /** The encoded hash (passwords.ts); null: this user cannot log in with a password. */
  readonly passwordHash: string | null;
  readonly disabled: boolean;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface NewUser {
  readonly name: string;
  readonly role: string;
  readonly passwordHash: string | null;
  readonly disabled?: boolean;
}

export interface UserChange {
  readonly role?: string;
  readonly passwordHash?: string | null;
  readonly disabled?: boolean;
}

/** A role of the role table (the built-in ones are in permissions.ts and not stored). */
export interface RoleRecord {
  readonly name: string;
  readonly description: string;
  readonly permissions: readonly Permission[];
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface NewRole {
  readonly name: string;
  readonly description: string;
  readonly permissions: readonly Permission[];
}

export interface TokenRecord {
  /** The public part of the token (`pacs_<tokenId>_<secret>`). */
  readonly tokenId: string;
  readonly userId: number;
  /** The owner's name (joined on read). */
  readonly userName: string;
  readonly role: string;
  /** SHA-256 of the secret part, hex. */
  readonly secretHash: string;
  readonly description: string | null;
  readonly createdAt: Date;
  readonly expiresAt: Date | null;
  readonly revokedAt: Date | null;
  readonly lastUsedAt: Date | null;
}

export interface NewToken {
  readonly tokenId: string;
  readonly userId: number;
  readonly role: string;
  readonly secretHash: string;
  readonly description: string | null;
  readonly expiresAt: Date | null;
}

export interface SessionRecord {
  /** SHA-256 of the cookie's value, hex. */
  readonly sessionHash: string;
  readonly userId: number;
  readonly csrfToken: string;
  readonly remoteAddress: string | null;
  readonly createdAt: Date;
  /** The absolute end of the session; the idle limit is counted from lastSeenAt. */
  readonly expiresAt: Date;
  readonly lastSeenAt: Date;
}

export type NewSessionRecord = Omit<SessionRecord, 'lastSeenAt'>;

export interface IdentityStore {
  /** Adds a user; 'exists' when the name is taken. */
  addUser(user: NewUser): Promise<UserRecord | 'exists'>;
  getUser(name: string): Promise<UserRecord | undefined>;
  getUserById(id: number): Promise<UserRecord | undefined>;
  /** Every user, by name. */
  listUsers(): Promise<UserRecord[]>;
  countUsers(): Promise<number>;
  /** The changed user, or undefined when there is none of that name. */
  updateUser(name: string, change: UserChange): Promise<UserRecord | undefined>;
  /** Removes a user with their tokens and sessions; false when there was none. */
  removeUser(name: string): Promise<boolean>;
  /** How many users hold a role (a role in use is not removed). */
  countUsersWithRole(role: string): Promise<number>;

  addRole(role: NewRole): Promise<RoleRecord | 'exists'>;
  getRole(name: string): Promise<RoleRecord | undefined>;
  listRoles(): Promise<RoleRecord[]>;
  removeRole(name: string): Promise<boolean>;

  addToken(token: NewToken): Promise<TokenRecord>;
  getToken(tokenId: string): Promise<TokenRecord | undefined>;
  /** Tokens, newest first; of one user when `userId` is given. */
  listTokens(userId?: number): Promise<TokenRecord[]>;
  /** Marks a token revoked at `at`; false when there is none or it was revoked already. */
  revokeToken(tokenId: string, at: Date): Promise<boolean>;
  /** Records a use of the token. */
  touchToken(tokenId: string, at: Date): Promise<void>;
  /** How many tokens hold a role. */
  countTokensWithRole(role: string): Promise<number>;

  addSession(session: NewSessionRecord): Promise<void>;
  getSession(sessionHash: string): Promise<SessionRecord | undefined>;
  touchSession(sessionHash: string, at: Date): Promise<void>;
  removeSession(sessionHash: string): Promise<SessionRecord | undefined>;
  /** Removes every session of a user (a new password ends them); how many. */
  removeUserSessions(userId: number): Promise<number>;
  /** Removes sessions whose absolute end is before `before`; how many. */
  removeExpiredSessions(before: Date): Promise<number>;
}
