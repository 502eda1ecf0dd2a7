/**
 * The identity store contract, one body on SQLite, PostgreSQL (a schema of its own, named after
 * this work: identity_*) and in memory: users (unique names, changes, cascading removal), custom
 * roles, API tokens (revocation once, last use, per-user listing), sessions (touch, removal,
 * sweep of expired ones).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { MemoryArchiveIndex } from '../../../src/archive/index/memory-index.js';
import { openIndex } from '../../../src/archive/index/open.js';
import { MemoryIdentityStore } from '../../../src/archive/security/memory-identity-store.js';
import {
  identityServiceFor,
  identityStoreOf,
  openIdentityStore,
} from '../../../src/archive/security/open.js';
import { SqlIdentityStore } from '../../../src/archive/security/sql-identity-store.js';
import { addUser } from '../../../src/security/identity-admin.js';
import type { IdentityStore } from '../../../src/security/identity-store.js';
import { dropSchema, PG_URL, pgAdmin, sqliteEngine } from '../helpers.js';

interface Engine {
  readonly name: string;
  open(): Promise<{ store: IdentityStore; cleanup: () => Promise<void> }>;
}

const ENGINES: readonly Engine[] = [
  {
    name: 'sqlite',
    async open() {
      const opened = await sqliteEngine.open({ durability: 'none' });
      return { store: identityStoreOf(opened.index), cleanup: () => opened.cleanup() };
    },
  },
  {
    name: 'postgres',
    async open() {
      const schema = `identity_${randomBytes(6).toString('hex')}`;
      await pgAdmin(async () => undefined); // a clear message when PostgreSQL is not there
      const url = `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}`;
      const { index } = await openIndex(url, { durability: 'none' });
      return {
        store: identityStoreOf(index),
        async cleanup() {
          await index.close();
          await dropSchema(schema);
        },
      };
    },
  },
  { name: 'memory', open: async () => ({ store: new MemoryIdentityStore(), cleanup: async () => {} }) },
];

async function withStore(engine: Engine, fn: (store: IdentityStore) => Promise<void>): Promise<void> {
  const { store, cleanup } = await engine.open();
  try {
    await fn(store);
  } finally {
    await cleanup();
  }
}

const HASH = '$scrypt$ln=15,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA==$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g=';
const DAY = 86_400_000;

for (const engine of ENGINES) {
  describe(`identity store on ${engine.name}`, () => {
    test('users: added once, read by name and id, listed by name, changed, counted by role', () =>
      withStore(engine, async (store) => {
        assert.equal(await store.countUsers(), 0);
        const bob = await store.addUser({ name: 'bob', role: 'viewer', passwordHash: HASH });
        assert.ok(bob !== 'exists');
        assert.equal(await store.addUser({ name: 'bob', role: 'admin', passwordHash: null }), 'exists');
        const alice = await store.addUser({ name: 'alice', role: 'viewer', passwordHash: null });
        assert.ok(alice !== 'exists');
        assert.notEqual(alice.id, bob.id);
        // Names are case sensitive (C collation on both engines).
        assert.ok((await store.addUser({ name: 'Bob', role: 'viewer', passwordHash: null })) !== 'exists');
        assert.deepEqual(
          (await store.listUsers()).map((u) => u.name),
          ['Bob', 'alice', 'bob'],
        );
        assert.equal(await store.countUsers(), 3);
        const read = await store.getUser('bob');
        assert.equal(read?.passwordHash, HASH);
        assert.equal(read?.disabled, false);
        assert.equal(read?.role, 'viewer');
        assert.ok(read?.createdAt instanceof Date && !Number.isNaN(read.createdAt.getTime()));
        assert.equal((await store.getUserById(bob.id))?.name, 'bob');
        assert.equal(await store.getUser('nobody'), undefined);
        assert.equal(await store.getUserById(999_999), undefined);
        const changed = await store.updateUser('bob', { role: 'admin', disabled: true });
        assert.equal(changed?.role, 'admin');
        assert.equal(changed?.disabled, true);
        assert.equal(changed?.passwordHash, HASH, 'what was not changed stays');
        assert.equal((await store.updateUser('bob', { passwordHash: null }))?.passwordHash, null);
        assert.equal(await store.updateUser('nobody', { role: 'admin' }), undefined);
        assert.equal(await store.countUsersWithRole('viewer'), 2);
        assert.equal(await store.countUsersWithRole('admin'), 1);
      }));

    test('roles: added once, listed by name, removed', () =>
      withStore(engine, async (store) => {
        const added = await store.addRole({
          name: 'reader',
          description: 'reads',
          permissions: ['view', 'download'],
        });
        assert.ok(added !== 'exists');
        assert.deepEqual(added.permissions, ['view', 'download']);
        assert.equal(
          await store.addRole({ name: 'reader', description: '', permissions: ['view'] }),
          'exists',
        );
        await store.addRole({ name: 'auditing', description: '', permissions: ['audit'] });
        assert.deepEqual(
          (await store.listRoles()).map((r) => [r.name, r.permissions]),
          [
            ['auditing', ['audit']],
            ['reader', ['view', 'download']],
          ],
        );
        assert.equal((await store.getRole('reader'))?.description, 'reads');
        assert.equal(await store.removeRole('reader'), true);
        assert.equal(await store.removeRole('reader'), false);
        assert.equal(await store.getRole('reader'), undefined);
      }));

    test('tokens: read with their user, listed newest first, revoked once, used, removed with the user', () =>
      withStore(engine, async (store) => {
        const erin = await store.addUser({ name: 'erin', role: 'clinician', passwordHash: null });
        const finn = await store.addUser({ name: 'finn', role: 'viewer', passwordHash: null });
        assert.ok(erin !== 'exists' && finn !== 'exists');
        const expires = new Date(Date.now() + 30 * DAY);
        const t1 = await store.addToken({
          tokenId: '0000000000000001',
          userId: erin.id,
          role: 'viewer',
          secretHash: 'a'.repeat(64),
          description: 'backup script',
          expiresAt: expires,
        });
        assert.equal(t1.userName, 'erin');
        assert.equal(t1.expiresAt?.getTime(), expires.getTime());
        assert.equal(t1.revokedAt, null);
        assert.equal(t1.lastUsedAt, null);
        await new Promise((resolve) => setTimeout(resolve, 5));
        await store.addToken({
          tokenId: '0000000000000002',
          userId: erin.id,
          role: 'clinician',
          secretHash: 'b'.repeat(64),
          description: null,
          expiresAt: null,
        });
        await store.addToken({
          tokenId: '0000000000000003',
          userId: finn.id,
          role: 'viewer',
          secretHash: 'c'.repeat(64),
          description: null,
          expiresAt: null,
        });
        assert.deepEqual(
          (await store.listTokens(erin.id)).map((t) => t.tokenId),
          ['0000000000000002', '0000000000000001'],
        );
        assert.equal((await store.listTokens()).length, 3);
        assert.equal(await store.countTokensWithRole('viewer'), 2);
        const used = new Date(Date.now() + 1000);
        await store.touchToken('0000000000000001', used);
        assert.equal((await store.getToken('0000000000000001'))?.lastUsedAt?.getTime(), used.getTime());
        const revokedAt = new Date();
        assert.equal(await store.revokeToken('0000000000000001', revokedAt), true);
        assert.equal(await store.revokeToken('0000000000000001', new Date()), false, 'once');
        assert.equal(await store.revokeToken('ffffffffffffffff', new Date()), false);
        assert.equal((await store.getToken('0000000000000001'))?.revokedAt?.getTime(), revokedAt.getTime());
        assert.equal(await store.countTokensWithRole('viewer'), 1, 'a revoked token holds no role');
        assert.equal(await store.removeUser('erin'), true);
        assert.equal(await store.getToken('0000000000000002'), undefined);
        assert.deepEqual(
          (await store.listTokens()).map((t) => t.tokenId),
          ['0000000000000003'],
        );
        assert.equal(await store.removeUser('erin'), false);
      }));

    test('sessions: added, read, touched, removed (returning it), swept when expired, removed with the user', () =>
      withStore(engine, async (store) => {
        const gail = await store.addUser({ name: 'gail', role: 'viewer', passwordHash: null });
        assert.ok(gail !== 'exists');
        const now = Date.now();
        const session = (hash: string, expiresIn: number) =>
          store.addSession({
            sessionHash: hash,
            userId: gail.id,
            csrfToken: `csrf-${hash}`,
            remoteAddress: '10.0.0.9',
            createdAt: new Date(now),
            expiresAt: new Date(now + expiresIn),
          });
        await session('s1', DAY);
        await session('s2', -1000);
        await session('s3', DAY);
        const s1 = await store.getSession('s1');
        assert.equal(s1?.csrfToken, 'csrf-s1');
        assert.equal(s1?.remoteAddress, '10.0.0.9');
        assert.equal(s1?.lastSeenAt.getTime(), now);
        assert.equal(s1?.expiresAt.getTime(), now + DAY);
        await store.touchSession('s1', new Date(now + 5000));
        assert.equal((await store.getSession('s1'))?.lastSeenAt.getTime(), now + 5000);
        assert.equal(await store.removeExpiredSessions(new Date(now)), 1);
        assert.equal(await store.getSession('s2'), undefined);
        await session('s4', DAY);
        assert.equal(await store.removeUserSessions(gail.id + 1000), 0);
        assert.equal(await store.removeUserSessions(gail.id), 1 + 1 + 1, 's1, s3, s4');
        assert.equal(await store.getSession('s4'), undefined);
        await session('s1', DAY);
        await session('s3', DAY);
        const removed = await store.removeSession('s1');
        assert.equal(removed?.userId, gail.id);
        assert.equal(await store.removeSession('s1'), undefined);
        await store.removeUser('gail');
        assert.equal(await store.getSession('s3'), undefined);
      }));
  });
}

describe('identity store of an index', () => {
  test('one store per index; by URL, users outlive the process that added them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pacs-identity-'));
    try {
      const url = `sqlite:${join(dir, 'index.sqlite')}`;
      const first = await openIdentityStore(url, { durability: 'none' });
      assert.ok(first.store instanceof SqlIdentityStore);
      await first.store.addUser({ name: 'henry', role: 'viewer', passwordHash: null });
      await first.close();
      const second = await openIdentityStore(url, { durability: 'none' });
      assert.equal((await second.store.getUser('henry'))?.role, 'viewer');
      await second.close();
      const { index } = await openIndex(url, { durability: 'none' });
      assert.equal(identityStoreOf(index), identityStoreOf(index));
      await index.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('identity service of an index', () => {
  test("on the index's store, with the config's session limits", async () => {
    const index = new MemoryArchiveIndex();
    let clock = Date.parse('2026-03-01T08:00:00Z');
    const service = identityServiceFor(
      index,
      { sessionIdleMinutes: 1, sessionMaxHours: 1 },
      { now: () => clock },
    );
    const store = identityStoreOf(index);
    const added = await addUser(store, { name: 'iris', role: 'viewer', password: 'a long enough password' });
    assert.ok(added.ok);
    const login = await service.authenticatePassword('iris', 'a long enough password', {
      remoteAddress: undefined,
    });
    assert.ok(login.ok);
    const session = await service.createSession(login.identity, { remoteAddress: undefined });
    assert.equal(session.expiresAt.getTime(), clock + 3600_000);
    clock += 59_000;
    assert.ok(await service.resumeSession(session.sessionId));
    clock += 60_000;
    assert.equal(await service.resumeSession(session.sessionId), undefined, 'idle for a minute');
    const long = await service.authenticatePassword('iris', 'x'.repeat(100_000), {
      remoteAddress: undefined,
    });
    assert.ok(!long.ok && long.reason === 'password too long');
  });
});
