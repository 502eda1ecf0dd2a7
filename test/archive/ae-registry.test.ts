/**
 * The AE registry contract (security/ae-registry.ts), one suite on SQLite, PostgreSQL (a schema of
 * this test's own) and the in-memory store; then `pacs ae add|ls|rm` as a user runs it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openIndex } from '../../src/archive/index/open.js';
import { aeRegistryOf, MemoryAeRegistry, openAeRegistry } from '../../src/archive/security/ae-registry.js';
import type { AeEntry, AeRegistry } from '../../src/security/ae-registry.js';
import { runPacs } from '../helpers/cli.js';
import { dropSchema, PG_URL } from './helpers.js';

interface Opened {
  readonly registry: AeRegistry;
  reopen(): Promise<AeRegistry>;
  cleanup(): Promise<void>;
}

const engines: Array<{ name: string; open(): Promise<Opened> }> = [
  {
    name: 'sqlite',
    async open() {
      const dir = mkdtempSync(join(tmpdir(), 'pacs-ae-registry-'));
      const url = `sqlite:${join(dir, 'index.sqlite')}`;
      let opened = await openAeRegistry(url);
      return {
        registry: opened.registry,
        async reopen() {
          // One process opens an SQLite index once: close, then open the file again.
          await opened.close();
          opened = await openAeRegistry(url);
          return opened.registry;
        },
        async cleanup() {
          await opened.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: 'postgres',
    async open() {
      const schema = `pacs_test_dicomac_${randomBytes(5).toString('hex')}`;
      const url = `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}`;
      const opened = [await openAeRegistry(url)];
      return {
        registry: opened[0]?.registry as AeRegistry,
        async reopen() {
          const again = await openAeRegistry(url);
          opened.push(again);
          return again.registry;
        },
        async cleanup() {
          for (const o of opened) await o.close();
          await dropSchema(schema);
        },
      };
    },
  },
  {
    name: 'memory',
    async open() {
      const registry = new MemoryAeRegistry();
      return { registry, reopen: async () => registry, cleanup: async () => {} };
    },
  },
];

const FULL: AeEntry = {
  aeTitle: 'VIEWER',
  host: '10.0.0.5',
  port: 104,
  permissions: ['echo', 'find', 'move', 'get'],
  moveDestinations: ['VIEWER', 'ARCHIVE2'],
  tlsSubject: 'CN=viewer,O=Hospital',
  bindAddress: true,
  tls: true,
  description: 'reading room',
};

for (const engine of engines) {
  describe(`AE registry (${engine.name})`, () => {
    it('keeps every field, replaces by AE title, lists by title, removes', async () => {
      const o = await engine.open();
      try {
        const r = o.registry;
        assert.deepEqual(await r.list(), []);
        await r.put(FULL);
        await r.put({ aeTitle: ' CT1 ', permissions: ['echo', 'store'], bindAddress: false });
        await r.put({ aeTitle: 'ANY', permissions: ['move'], moveDestinations: 'any', bindAddress: false });
        const again = await o.reopen();
        assert.deepEqual(await again.get('VIEWER'), FULL);
        assert.deepEqual(await again.get('CT1'), {
          aeTitle: 'CT1',
          permissions: ['echo', 'store'],
          bindAddress: false,
          ...(engine.name === 'memory' ? {} : { tls: false }),
        });
        assert.equal((await again.get('ANY'))?.moveDestinations, 'any');
        assert.deepEqual(
          (await again.list()).map((e) => e.aeTitle),
          ['ANY', 'CT1', 'VIEWER'],
        );
        await again.put({ ...FULL, permissions: ['echo'], moveDestinations: undefined } as AeEntry);
        const replaced = await again.get('VIEWER');
        assert.deepEqual(replaced?.permissions, ['echo']);
        assert.equal(replaced?.moveDestinations, undefined);
        assert.equal(await again.remove('CT1'), true);
        assert.equal(await again.remove('CT1'), false);
        assert.equal(await again.get('CT1'), undefined);
      } finally {
        await o.cleanup();
      }
    });
  });
}

describe('aeRegistryOf', () => {
  it('is one store per index', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pacs-ae-of-'));
    const { index } = await openIndex(`sqlite:${join(dir, 'index.sqlite')}`);
    try {
      assert.equal(aeRegistryOf(index), aeRegistryOf(index));
    } finally {
      await index.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('pacs ae', () => {
  it('adds, lists (table and --json), removes; bad input exits 2 with a reason', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pacs-ae-cli-'));
    try {
      const data = join(dir, 'data');
      const empty = await runPacs(['ae', 'ls', '--data', data]);
      assert.equal(empty.code, 1);
      assert.match(empty.stderr, /no index at/);
      const add = await runPacs([
        'ae',
        'add',
        'VIEWER',
        '--host',
        '10.0.0.5',
        '--port',
        '104',
        '--permissions',
        'echo,find,move',
        '--move-destinations',
        'VIEWER,ARCHIVE2',
        '--bind-address',
        '--data',
        data,
      ]);
      assert.equal(add.code, 0, add.stderr);
      assert.equal(add.stdout, 'VIEWER: echo,find,move\n');
      const any = await runPacs([
        'ae',
        'add',
        'ROUTER',
        '--permissions',
        'echo,store',
        '--move-destinations',
        '*',
        '--tls-subject',
        'CN=router',
        '--data',
        data,
      ]);
      assert.equal(any.code, 0, any.stderr);
      const ls = await runPacs(['ae', 'ls', '--data', data]);
      assert.equal(ls.code, 0);
      assert.match(ls.stdout, /^AE TITLE +ADDRESS +PERMISSIONS +MOVE TO +BOUND TO/);
      assert.match(ls.stdout, /ROUTER +echo,store +\* +cert CN=router/);
      assert.match(ls.stdout, /VIEWER +10\.0\.0\.5:104 +echo,find,move +VIEWER,ARCHIVE2 +address/);
      const json = await runPacs(['ae', 'ls', '--json', '--data', data]);
      const entries = JSON.parse(json.stdout) as AeEntry[];
      assert.deepEqual(entries.find((e) => e.aeTitle === 'VIEWER')?.moveDestinations, ['VIEWER', 'ARCHIVE2']);
      assert.equal(entries.find((e) => e.aeTitle === 'ROUTER')?.moveDestinations, 'any');
      for (const [args, reason] of [
        [['--permissions', 'echo,fly'], /"fly" is not one of echo, store/],
        [['--permissions', 'echo', '--bind-address'], /--bind-address needs --host/],
        [
          ['--permissions', 'echo', '--host', 'h', '--port', '70000'],
          /--port: expected an integer from 1 to 65535/,
        ],
      ] as const) {
        const bad = await runPacs(['ae', 'add', 'X', ...args, '--data', data]);
        assert.equal(bad.code, 2, bad.stderr);
        assert.match(bad.stderr, reason);
      }
      const badTitle = await runPacs(['ae', 'add', 'A\\B', '--permissions', 'echo', '--data', data]);
      assert.equal(badTitle.code, 2);
      assert.match(badTitle.stderr, /is not an AE title/);
      const rm = await runPacs(['ae', 'rm', 'VIEWER', '--data', data]);
      assert.equal(rm.code, 0);
      const rmAgain = await runPacs(['ae', 'rm', 'VIEWER', '--data', data]);
      assert.equal(rmAgain.code, 1);
      assert.match(rmAgain.stderr, /no AE VIEWER in the registry/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
