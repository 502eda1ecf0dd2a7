/**
 * The identity store on the index's SQL database (SQLite or PostgreSQL; the tables of the
 * security migration). It shares the index's connections. Each change is one statement (the
 * engine makes it atomic); a name taken by another process at the same moment is a unique
 * violation, answered as 'exists'. Reads are per call, so a user added by `pacs user add` while
 * the server runs can log in at once.
 */
import type { Kysely, Selectable, Updateable } from 'kysely';
import type {
  IdentityStore,
  NewRole,
  NewSessionRecord,
  NewToken,
  NewUser,
  RoleRecord,
  SessionRecord,
  TokenRecord,
  UserChange,
  UserRecord,
} from '../../security/identity-store.js';
import { isPermission, type Permission } from '../../security/permissions.js';
import type { SqlEngine } from '../database.js';
import { ArchiveError } from '../errors.js';
import type { IndexDatabase } from '../index/schema.js';
import type {
  ApiTokenTable,
  AppRoleTable,
  AppUserTable,
  IdentityDatabase,
  WebSessionTable,
} from './schema.js';

type Db = Kysely<IdentityDatabase>;

/** What the store needs of the index: its database and engine (SqlArchiveIndex has both). */
export interface SqlIndexHandle {
  readonly db: Kysely<IndexDatabase>;
  readonly engine: SqlEngine;
}

export class SqlIdentityStore implements IdentityStore {
  readonly engine: SqlEngine;
  private readonly db: Db;

  constructor(index: SqlIndexHandle) {
    this.engine = index.engine;
    this.db = index.db.withTables<IdentityDatabase>() as unknown as Db;
  }

  // --- users ---------------------------------------------------------------------------------------

  async addUser(user: NewUser): Promise<UserRecord | 'exists'> {
    const now = new Date().toISOString();
    try {
      const row = await this.db
        .insertInto('app_user')
        .values({
          name: user.name,
          role: user.role,
          password_hash: user.passwordHash,
          disabled: user.disabled ? 1 : 0,
          created_at: now,
          updated_at: now,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      return userOf(row);
    } catch (e) {
      if (isUniqueViolation(e)) return 'exists';
      throw wrap(e);
    }
  }

  async getUser(name: string): Promise<UserRecord | undefined> {
    const row = await this.run(() =>
      this.db.selectFrom('app_user').selectAll().where('name', '=', name).executeTakeFirst(),
    );
    return row === undefined ? undefined : userOf(row);
  }

  async getUserById(id: number): Promise<UserRecord | undefined> {
    const row = await this.run(() =>
      this.db.selectFrom('app_user').selectAll().where('id', '=', id).executeTakeFirst(),
    );
    return row === undefined ? undefined : userOf(row);
  }

  async listUsers(): Promise<UserRecord[]> {
    const rows = await this.run(() => this.db.selectFrom('app_user').selectAll().orderBy('name').execute());
    return rows.map(userOf);
  }

  async countUsers(): Promise<number> {
    const row = await this.run(() =>
      this.db
        .selectFrom('app_user')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirstOrThrow(),
    );
    return Number(row.n);
  }

  async updateUser(name: string, change: UserChange): Promise<UserRecord | undefined> {
    const values: Updateable<AppUserTable> = { updated_at: new Date().toISOString() };
    if (change.role !== undefined) values.role = change.role;
    if (change.passwordHash !== undefined) values.password_hash = change.passwordHash;
    if (change.disabled !== undefined) values.disabled = change.disabled ? 1 : 0;
    const row = await this.run(() =>
      this.db.updateTable('app_user').set(values).where('name', '=', name).returningAll().executeTakeFirst(),
    );
    return row === undefined ? undefined : userOf(row);
  }

  async removeUser(name: string): Promise<boolean> {
    // The foreign keys cascade to the user's tokens and sessions (SQLite: foreign_keys = ON at open).
    const result = await this.run(() =>
      this.db.deleteFrom('app_user').where('name', '=', name).executeTakeFirst(),
    );
    return Number(result.numDeletedRows) > 0;
  }

  async countUsersWithRole(role: string): Promise<number> {
    const row = await this.run(() =>
      this.db
        .selectFrom('app_user')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('role', '=', role)
        .executeTakeFirstOrThrow(),
    );
    return Number(row.n);
  }

  // --- roles ---------------------------------------------------------------------------------------

  async addRole(role: NewRole): Promise<RoleRecord | 'exists'> {
    const now = new Date().toISOString();
    try {
      const row = await this.db
        .insertInto('app_role')
        .values({
          name: role.name,
          description: role.description,
          permissions: role.permissions.join(','),
          created_at: now,
          updated_at: now,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      return roleOf(row);
    } catch (e) {
      if (isUniqueViolation(e)) return 'exists';
      throw wrap(e);
    }
  }

  async getRole(name: string): Promise<RoleRecord | undefined> {
    const row = await this.run(() =>
      this.db.selectFrom('app_role').selectAll().where('name', '=', name).executeTakeFirst(),
    );
    return row === undefined ? undefined : roleOf(row);
  }

  async listRoles(): Promise<RoleRecord[]> {
    const rows = await this.run(() => this.db.selectFrom('app_role').selectAll().orderBy('name').execute());
    return rows.map(roleOf);
  }

  async removeRole(name: string): Promise<boolean> {
    const result = await this.run(() =>
      this.db.deleteFrom('app_role').where('name', '=', name).executeTakeFirst(),
    );
    return Number(result.numDeletedRows) > 0;
  }

  // --- tokens --------------------------------------------------------------------------------------

  async addToken(token: NewToken): Promise<TokenRecord> {
    await this.run(() =>
      this.db
        .insertInto('api_token')
        .values({
          token_id: token.tokenId,
          user_id: token.userId,
          role: token.role,
          secret_hash: token.secretHash,
          description: token.description,
          created_at: new Date().toISOString(),
          expires_at: token.expiresAt?.toISOString() ?? null,
          revoked_at: null,
          last_used_at: null,
        })
        .execute(),
    );
    const added = await this.getToken(token.tokenId);
    if (added === undefined)
      throw new ArchiveError('ERR_ARCHIVE_INDEX', `API token ${token.tokenId} vanished after its insert`);
    return added;
  }

  async getToken(tokenId: string): Promise<TokenRecord | undefined> {
    const row = await this.run(() =>
      this.tokens().where('api_token.token_id', '=', tokenId).executeTakeFirst(),
    );
    return row === undefined ? undefined : tokenOf(row);
  }

  async listTokens(userId?: number): Promise<TokenRecord[]> {
    const rows = await this.run(() => {
      let q = this.tokens();
      if (userId !== undefined) q = q.where('api_token.user_id', '=', userId);
      return q.orderBy('api_token.created_at', 'desc').orderBy('api_token.token_id').execute();
    });
    return rows.map(tokenOf);
  }

  async revokeToken(tokenId: string, at: Date): Promise<boolean> {
    const result = await this.run(() =>
      this.db
        .updateTable('api_token')
        .set({ revoked_at: at.toISOString() })
        .where('token_id', '=', tokenId)
        .where('revoked_at', 'is', null)
        .executeTakeFirst(),
    );
    return Number(result.numUpdatedRows) > 0;
  }

  async touchToken(tokenId: string, at: Date): Promise<void> {
    await this.run(() =>
      this.db
        .updateTable('api_token')
        .set({ last_used_at: at.toISOString() })
        .where('token_id', '=', tokenId)
        .execute(),
    );
  }

  async countTokensWithRole(role: string): Promise<number> {
    const row = await this.run(() =>
      this.db
        .selectFrom('api_token')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('role', '=', role)
        .where('revoked_at', 'is', null)
        .executeTakeFirstOrThrow(),
    );
    return Number(row.n);
  }

  // --- sessions ------------------------------------------------------------------------------------

  async addSession(session: NewSessionRecord): Promise<void> {
    await this.run(() =>
      this.db
        .insertInto('web_session')
        .values({
          session_hash: session.sessionHash,
          user_id: session.userId,
          csrf_token: session.csrfToken,
          remote_address: session.remoteAddress,
          created_at: session.createdAt.toISOString(),
          expires_at: session.expiresAt.toISOString(),
          last_seen_at: session.createdAt.toISOString(),
        })
        .execute(),
    );
  }

  async getSession(sessionHash: string): Promise<SessionRecord | undefined> {
    const row = await this.run(() =>
      this.db
        .selectFrom('web_session')
        .selectAll()
        .where('session_hash', '=', sessionHash)
        .executeTakeFirst(),
    );
    return row === undefined ? undefined : sessionOf(row);
  }

  async touchSession(sessionHash: string, at: Date): Promise<void> {
    await this.run(() =>
      this.db
        .updateTable('web_session')
        .set({ last_seen_at: at.toISOString() })
        .where('session_hash', '=', sessionHash)
        .execute(),
    );
  }

  async removeSession(sessionHash: string): Promise<SessionRecord | undefined> {
    const row = await this.run(() =>
      this.db
        .deleteFrom('web_session')
        .where('session_hash', '=', sessionHash)
        .returningAll()
        .executeTakeFirst(),
    );
    return row === undefined ? undefined : sessionOf(row);
  }

  async removeUserSessions(userId: number): Promise<number> {
    const result = await this.run(() =>
      this.db.deleteFrom('web_session').where('user_id', '=', userId).executeTakeFirst(),
    );
    return Number(result.numDeletedRows);
  }

  async removeExpiredSessions(before: Date): Promise<number> {
    const result = await this.run(() =>
      this.db.deleteFrom('web_session').where('expires_at', '<', before.toISOString()).executeTakeFirst(),
    );
    return Number(result.numDeletedRows);
  }

  // --- helpers -------------------------------------------------------------------------------------

  private tokens() {
    return this.db
      .selectFrom('api_token')
      .innerJoin('app_user', 'app_user.id', 'api_token.user_id')
      .selectAll('api_token')
      .select('app_user.name as user_name');
  }

  private async run<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw wrap(e);
    }
  }
}

// --- rows ----------------------------------------------------------------------------------------

function userOf(row: Selectable<AppUserTable>): UserRecord {
  return {
    id: Number(row.id),
    name: row.name,
    role: row.role,
    passwordHash: row.password_hash,
    disabled: Number(row.disabled) !== 0,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

function roleOf(row: Selectable<AppRoleTable>): RoleRecord {
  return {
    name: row.name,
    description: row.description,
    permissions: permissionsOf(row.permissions),
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

/** A stored list; a word this version does not know (written by a newer one) grants nothing. */
export function permissionsOf(text: string): Permission[] {
  return text.split(',').filter((w): w is Permission => isPermission(w));
}

function tokenOf(row: Selectable<ApiTokenTable> & { user_name: string }): TokenRecord {
  const date = (t: string | null) => (t === null ? null : new Date(t));
  return {
    tokenId: row.token_id,
    userId: Number(row.user_id),
    userName: row.user_name,
    role: row.role,
    secretHash: row.secret_hash,
    description: row.description,
    createdAt: new Date(row.created_at),
    expiresAt: date(row.expires_at),
    revokedAt: date(row.revoked_at),
    lastUsedAt: date(row.last_used_at),
  };
}

function sessionOf(row: Selectable<WebSessionTable>): SessionRecord {
  return {
    sessionHash: row.session_hash,
    userId: Number(row.user_id),
    csrfToken: row.csrf_token,
    remoteAddress: row.remote_address,
    createdAt: new Date(row.created_at),
    expiresAt: new Date(row.expires_at),
    lastSeenAt: new Date(row.last_seen_at),
  };
}

function isUniqueViolation(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

function wrap(e: unknown): unknown {
  if (e instanceof ArchiveError || !(e instanceof Error) || !('code' in e)) return e;
  return new ArchiveError('ERR_ARCHIVE_INDEX', `identity store: ${e.message}`, { cause: e });
}
