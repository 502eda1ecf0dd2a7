/**
 * The identity store in memory: beside the in-memory index of tests and embedders. Same contract
 * as the SQL store (test/archive/security/identity-store.test.ts runs one body on both); records
 * are copied in and out, so a caller never changes what is stored by changing what it was given.
 */
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

type StoredToken = Omit<TokenRecord, 'userName'>;

export class MemoryIdentityStore implements IdentityStore {
  private readonly users = new Map<string, UserRecord>();
  private readonly roles = new Map<string, RoleRecord>();
  private readonly tokens = new Map<string, StoredToken>();
  private readonly sessions = new Map<string, SessionRecord>();
  private nextId = 1;

  async addUser(user: NewUser): Promise<UserRecord | 'exists'> {
    if (this.users.has(user.name)) return 'exists';
    const now = new Date();
    const record: UserRecord = {
      id: this.nextId++,
      name: user.name,
      role: user.role,
      passwordHash: user.passwordHash,
      disabled: user.disabled ?? false,
      createdAt: now,
      updatedAt: now,
    };
    this.users.set(user.name, record);
    return { ...record };
  }

  async getUser(name: string): Promise<UserRecord | undefined> {
    const user = this.users.get(name);
    return user === undefined ? undefined : { ...user };
  }

  async getUserById(id: number): Promise<UserRecord | undefined> {
    for (const user of this.users.values()) if (user.id === id) return { ...user };
    return undefined;
  }

  async listUsers(): Promise<UserRecord[]> {
    return [...this.users.values()].sort((a, b) => compare(a.name, b.name)).map((u) => ({ ...u }));
  }

  async countUsers(): Promise<number> {
    return this.users.size;
  }

  async updateUser(name: string, change: UserChange): Promise<UserRecord | undefined> {
    const user = this.users.get(name);
    if (user === undefined) return undefined;
    const changed: UserRecord = {
      ...user,
      ...(change.role !== undefined ? { role: change.role } : {}),
      ...(change.passwordHash !== undefined ? { passwordHash: change.passwordHash } : {}),
      ...(change.disabled !== undefined ? { disabled: change.disabled } : {}),
      updatedAt: new Date(),
    };
    this.users.set(name, changed);
    return { ...changed };
  }

  async removeUser(name: string): Promise<boolean> {
    const user = this.users.get(name);
    if (user === undefined) return false;
    this.users.delete(name);
    for (const [id, token] of this.tokens) if (token.userId === user.id) this.tokens.delete(id);
    for (const [hash, session] of this.sessions) if (session.userId === user.id) this.sessions.delete(hash);
    return true;
  }

  async countUsersWithRole(role: string): Promise<number> {
    return [...this.users.values()].filter((u) => u.role === role).length;
  }

  async addRole(role: NewRole): Promise<RoleRecord | 'exists'> {
    if (this.roles.has(role.name)) return 'exists';
    const now = new Date();
    const record: RoleRecord = {
      ...role,
      permissions: [...role.permissions],
      createdAt: now,
      updatedAt: now,
    };
    this.roles.set(role.name, record);
    return { ...record, permissions: [...record.permissions] };
  }

  async getRole(name: string): Promise<RoleRecord | undefined> {
    const role = this.roles.get(name);
    return role === undefined ? undefined : { ...role, permissions: [...role.permissions] };
  }

  async listRoles(): Promise<RoleRecord[]> {
    return [...this.roles.values()]
      .sort((a, b) => compare(a.name, b.name))
      .map((r) => ({ ...r, permissions: [...r.permissions] }));
  }

  async removeRole(name: string): Promise<boolean> {
    return this.roles.delete(name);
  }

  async addToken(token: NewToken): Promise<TokenRecord> {
    if (this.tokens.has(token.tokenId)) throw new Error(`API token ${token.tokenId} exists already`);
    if ((await this.getUserById(token.userId)) === undefined) throw new Error(`no user ${token.userId}`);
    this.tokens.set(token.tokenId, {
      ...token,
      createdAt: new Date(),
      revokedAt: null,
      lastUsedAt: null,
    });
    const added = await this.getToken(token.tokenId);
    if (added === undefined) throw new Error(`API token ${token.tokenId} vanished`);
    return added;
  }

  async getToken(tokenId: string): Promise<TokenRecord | undefined> {
    const token = this.tokens.get(tokenId);
    return token === undefined ? undefined : this.withUser(token);
  }

  async listTokens(userId?: number): Promise<TokenRecord[]> {
    const out: TokenRecord[] = [];
    for (const token of this.tokens.values())
      if (userId === undefined || token.userId === userId) {
        const t = await this.withUser(token);
        if (t !== undefined) out.push(t);
      }
    return out.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || compare(a.tokenId, b.tokenId));
  }

  async revokeToken(tokenId: string, at: Date): Promise<boolean> {
    const token = this.tokens.get(tokenId);
    if (token === undefined || token.revokedAt !== null) return false;
    this.tokens.set(tokenId, { ...token, revokedAt: new Date(at) });
    return true;
  }

  async touchToken(tokenId: string, at: Date): Promise<void> {
    const token = this.tokens.get(tokenId);
    if (token !== undefined) this.tokens.set(tokenId, { ...token, lastUsedAt: new Date(at) });
  }

  async countTokensWithRole(role: string): Promise<number> {
    return [...this.tokens.values()].filter((t) => t.role === role && t.revokedAt === null).length;
  }

  async addSession(session: NewSessionRecord): Promise<void> {
    if (this.sessions.has(session.sessionHash)) throw new Error('session exists already');
    this.sessions.set(session.sessionHash, { ...session, lastSeenAt: new Date(session.createdAt) });
  }

  async getSession(sessionHash: string): Promise<SessionRecord | undefined> {
    const session = this.sessions.get(sessionHash);
    return session === undefined ? undefined : { ...session };
  }

  async touchSession(sessionHash: string, at: Date): Promise<void> {
    const session = this.sessions.get(sessionHash);
    if (session !== undefined) this.sessions.set(sessionHash, { ...session, lastSeenAt: new Date(at) });
  }

  async removeSession(sessionHash: string): Promise<SessionRecord | undefined> {
    const session = this.sessions.get(sessionHash);
    this.sessions.delete(sessionHash);
    return session;
  }

  async removeUserSessions(userId: number): Promise<number> {
    let n = 0;
    for (const [hash, session] of this.sessions)
      if (session.userId === userId) {
        this.sessions.delete(hash);
        n++;
      }
    return n;
  }

  async removeExpiredSessions(before: Date): Promise<number> {
    let n = 0;
    for (const [hash, session] of this.sessions)
      if (session.expiresAt.getTime() < before.getTime()) {
        this.sessions.delete(hash);
        n++;
      }
    return n;
  }

  private async withUser(token: StoredToken): Promise<TokenRecord | undefined> {
    const user = await this.getUserById(token.userId);
    return user === undefined ? undefined : { ...token, userName: user.name };
  }
}

/** Code-unit order, as the SQL engines' C collation sorts names. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
