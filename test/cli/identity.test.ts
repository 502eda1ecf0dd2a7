/**
 * `pacs user`, `pacs role` and `pacs token` end to end through bin/pacs on a data folder (and on
 * PostgreSQL with --db), their one-line errors for bad input, and the first start of `pacs server`
 * making the admin once (printed, or from --admin-password-file; with --workers only the primary).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openIdentityStore } from '../../src/archive/security/open.js';
import { StoredIdentityService } from '../../src/security/identity-service.js';
import { verifyPassword } from '../../src/security/passwords.js';
import { dropSchema, PG_URL, pgAdmin } from '../archive/helpers.js';
import { type RunResult, runPacs } from '../helpers/cli.js';
import { startPacsServer } from '../server/helpers.js';

const PASSWORD = 'correct horse battery staple';

/** A failure: the exit code and exactly one line on standard error matching `pattern`. */
function failsWith(r: RunResult, code: number, pattern: RegExp): void {
  assert.equal(r.code, code, `exit code (stderr: ${r.stderr})`);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `one line: ${r.stderr}`);
  assert.match(lines[0] ?? '', pattern);
}

function succeeds(r: RunResult): RunResult {
  assert.equal(r.code, 0, `exit code (stderr: ${r.stderr})`);
  return r;
}

async function passwordOf(dataDir: string, name: string): Promise<string | null | undefined> {
  const opened = await openIdentityStore(`sqlite:${join(dataDir, 'index.sqlite')}`);
  try {
    return (await opened.store.getUser(name))?.passwordHash;
  } finally {
    await opened.close();
  }
}

describe('pacs user, role, token on a data folder', () => {
  let dir: string;
  let data: string[];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pacs-cli-identity-'));
    data = ['--data', dir];
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('user add (generated and from stdin), ls --json, passwd, role, rm', async () => {
    const generated = succeeds(await runPacs(['user', 'add', 'alice', '--role', 'viewer', ...data]));
    const m = /^user alice added \(role viewer\)\npassword \(shown only now\): (\S{24})\n$/.exec(
      generated.stdout,
    );
    assert.ok(m, generated.stdout);
    const hash = await passwordOf(dir, 'alice');
    assert.ok(hash && (await verifyPassword(m[1] ?? '', hash)), 'the printed password is the one stored');
    assert.ok(!(hash ?? '').includes(m[1] ?? ''), 'stored hashed');

    const piped = succeeds(
      await runPacs(['user', 'add', 'bob', '--role', 'clinician', '--password-stdin', ...data], {
        input: `${PASSWORD}\n`,
      }),
    );
    assert.equal(piped.stdout, 'user bob added (role clinician)\n', 'no password printed when one was given');

    const ls = JSON.parse(succeeds(await runPacs(['user', 'ls', '--json', ...data])).stdout) as Array<
      Record<string, unknown>
    >;
    assert.deepEqual(
      ls.map((u) => [u['name'], u['role'], u['disabled'], u['passwordSet']]),
      [
        ['alice', 'viewer', false, true],
        ['bob', 'clinician', false, true],
      ],
    );
    assert.ok(!JSON.stringify(ls).includes('scrypt'), 'never the hash');
    assert.match(
      succeeds(await runPacs(['user', 'ls', ...data])).stdout,
      /^NAME +ROLE +STATE .*\nalice +viewer +active .*\nbob +clinician +active .*\n2 users\n$/,
    );

    succeeds(
      await runPacs(['user', 'passwd', 'bob', '--password-stdin', ...data], {
        input: 'another fine password\n',
      }),
    );
    const bobHash = (await passwordOf(dir, 'bob')) ?? '';
    assert.equal(await verifyPassword('another fine password', bobHash), true);
    assert.equal(await verifyPassword(PASSWORD, bobHash), false);

    assert.equal(
      succeeds(await runPacs(['user', 'role', 'alice', 'technologist', ...data])).stdout,
      'user alice now has the role technologist\n',
    );
    succeeds(await runPacs(['user', 'add', 'carol', '--role', 'viewer', ...data]));
    assert.equal(succeeds(await runPacs(['user', 'rm', 'carol', ...data])).stdout, 'user carol removed\n');
    const after = JSON.parse(succeeds(await runPacs(['user', 'ls', '--json', ...data])).stdout) as Array<{
      name: string;
      role: string;
    }>;
    assert.deepEqual(
      after.map((u) => [u.name, u.role]),
      [
        ['alice', 'technologist'],
        ['bob', 'clinician'],
      ],
    );
  });

  test('user: bad input gets one line and a non-zero exit, and changes nothing', async () => {
    succeeds(await runPacs(['user', 'add', 'dave', '--role', 'viewer', ...data]));
    failsWith(
      await runPacs(['user', 'add', 'dave', '--role', 'viewer', ...data]),
      1,
      /^pacs: user dave exists already$/,
    );
    failsWith(
      await runPacs(['user', 'add', 'erin', '--role', 'wizard', ...data]),
      1,
      /^pacs: unknown role "wizard" \(roles: admin, clinician, .*auditor\)$/,
    );
    failsWith(
      await runPacs(['user', 'add', 'erin', '--role', 'viewer', '--password-stdin', ...data], {
        input: 'short\n',
      }),
      1,
      /^pacs: the password is too short \(5 characters; at least 12\)$/,
    );
    failsWith(
      await runPacs(['user', 'add', 'erin', '--role', 'viewer', '--password-stdin', ...data], { input: '' }),
      1,
      /^pacs: the password is empty$/,
    );
    failsWith(
      await runPacs(['user', 'add', 'bad:name', '--role', 'viewer', ...data]),
      1,
      /^pacs: user name "bad:name": expected/,
    );
    failsWith(await runPacs(['user', 'add', 'erin', ...data]), 2, /required option '--role <role>'/);
    failsWith(await runPacs(['user', 'rm', 'nobody', ...data]), 1, /^pacs: no user nobody$/);
    failsWith(
      await runPacs(['user', 'passwd', 'dave', '--password-stdin', ...data], { input: 'tooshort\n' }),
      1,
      /^pacs: the password is too short/,
    );
    failsWith(await runPacs(['user', 'role', 'dave', 'wizard', ...data]), 1, /^pacs: unknown role "wizard"/);
    failsWith(
      await runPacs(['user', 'ls', '--data', join(dir, 'missing')]),
      1,
      /^pacs: no index at .*missing\/index\.sqlite/,
    );
    failsWith(
      await runPacs(['user', 'ls', '--db', 'mysql://x']),
      2,
      /^pacs: --db: expected "sqlite:PATH" or a "postgres:\/\/" URL/,
    );
    const users = JSON.parse(succeeds(await runPacs(['user', 'ls', '--json', ...data])).stdout) as Array<{
      name: string;
    }>;
    assert.ok(!users.some((u) => u.name === 'erin'), 'nothing added by the refused commands');
  });

  test('role ls, add, rm; a role in use stays', async () => {
    const roles = JSON.parse(succeeds(await runPacs(['role', 'ls', '--json', ...data])).stdout) as Array<{
      name: string;
      builtin: boolean;
      permissions: string[];
    }>;
    assert.deepEqual(
      roles.map((r) => r.name),
      ['admin', 'clinician', 'technologist', 'viewer', 'uploader', 'auditor'],
    );
    assert.equal(
      succeeds(await runPacs(['role', 'add', 'reader', '--permissions', 'view,download', ...data])).stdout,
      'role reader added (view, download)\n',
    );
    failsWith(
      await runPacs(['role', 'add', 'reader', '--permissions', 'view', ...data]),
      1,
      /^pacs: role reader exists already$/,
    );
    failsWith(
      await runPacs(['role', 'add', 'viewer', '--permissions', 'view', ...data]),
      1,
      /^pacs: role viewer is built in$/,
    );
    failsWith(
      await runPacs(['role', 'add', 'flyer', '--permissions', 'view,fly', ...data]),
      2,
      /^pacs: --permissions: "fly" is not one of view, download/,
    );
    succeeds(await runPacs(['user', 'add', 'frank', '--role', 'reader', ...data]));
    failsWith(
      await runPacs(['role', 'rm', 'reader', ...data]),
      1,
      /^pacs: role reader is held by 1 user: give them another role first$/,
    );
    failsWith(
      await runPacs(['role', 'rm', 'admin', ...data]),
      1,
      /^pacs: role admin is built in and cannot be removed$/,
    );
    succeeds(await runPacs(['user', 'rm', 'frank', ...data]));
    succeeds(await runPacs(['role', 'rm', 'reader', ...data]));
    const left = JSON.parse(succeeds(await runPacs(['role', 'ls', '--json', ...data])).stdout) as Array<{
      name: string;
    }>;
    assert.ok(!left.some((r) => r.name === 'reader'));
  });

  test('token create (printed once), ls, revoke: the token works until revoked, then never again', async () => {
    succeeds(await runPacs(['user', 'add', 'gail', '--role', 'clinician', ...data]));
    const created = succeeds(
      await runPacs([
        'token',
        'create',
        '--user',
        'gail',
        '--role',
        'viewer',
        '--expires',
        '30',
        '--description',
        'nightly export',
        ...data,
      ]),
    );
    const token = created.stdout.trim();
    assert.match(token, /^pacs_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    const id = token.slice(5, 21);
    assert.match(
      created.stderr,
      new RegExp(
        `^pacs: API token ${id} for gail \\(role viewer\\), expires \\S+ \\S+ UTC; shown only now\\n$`,
      ),
    );

    const listed = JSON.parse(
      succeeds(await runPacs(['token', 'ls', '--user', 'gail', '--json', ...data])).stdout,
    ) as Array<Record<string, unknown>>;
    assert.equal(listed.length, 1);
    assert.equal(listed[0]?.['id'], id);
    assert.equal(listed[0]?.['role'], 'viewer');
    assert.equal(listed[0]?.['state'], 'active');
    assert.equal(listed[0]?.['description'], 'nightly export');
    const days = (Date.parse(String(listed[0]?.['expiresAt'])) - Date.now()) / 86_400_000;
    assert.ok(days > 29.9 && days <= 30, `expires in ${days} days`);
    assert.ok(!JSON.stringify(listed).includes(token.slice(22)), 'never the secret');

    const opened = await openIdentityStore(`sqlite:${join(dir, 'index.sqlite')}`);
    try {
      const service = new StoredIdentityService({ store: opened.store });
      const ok = await service.authenticateBearer(token, { remoteAddress: '127.0.0.1' });
      assert.ok(ok.ok && ok.identity.name === 'gail' && ok.identity.role === 'viewer');
    } finally {
      await opened.close();
    }
    assert.equal(
      succeeds(await runPacs(['token', 'revoke', id, ...data])).stdout,
      `API token ${id} revoked\n`,
    );
    failsWith(
      await runPacs(['token', 'revoke', id, ...data]),
      1,
      new RegExp(`^pacs: API token ${id} was revoked already$`),
    );
    const table = succeeds(await runPacs(['token', 'ls', ...data])).stdout;
    assert.match(table, new RegExp(`^ID .*\\n${id} +gail +viewer +revoked `));
    const again = await openIdentityStore(`sqlite:${join(dir, 'index.sqlite')}`);
    try {
      const service = new StoredIdentityService({ store: again.store });
      const replay = await service.authenticateBearer(token, { remoteAddress: '127.0.0.1' });
      assert.ok(!replay.ok && /revoked/.test(replay.reason), 'replay after revocation refused');
    } finally {
      await again.close();
    }
  });

  test('token: bad input gets one line and a non-zero exit', async () => {
    succeeds(await runPacs(['user', 'add', 'hank', '--role', 'viewer', ...data]));
    for (const bad of ['abc', '0', '-1', '3651', '1.5'])
      failsWith(
        await runPacs(['token', 'create', '--user', 'hank', '--expires', bad, ...data]),
        2,
        /^pacs: --expires: expected an integer from 1 to 3650, got /,
      );
    failsWith(await runPacs(['token', 'create', '--user', 'nobody', ...data]), 1, /^pacs: no user nobody$/);
    failsWith(
      await runPacs(['token', 'create', '--user', 'hank', '--role', 'admin', ...data]),
      1,
      /^pacs: role admin grants download, .*which user hank \(role viewer\) does not have$/,
    );
    failsWith(
      await runPacs(['token', 'create', '--user', 'hank', '--role', 'wizard', ...data]),
      1,
      /^pacs: unknown role "wizard"/,
    );
    failsWith(
      await runPacs(['token', 'revoke', 'ffffffffffffffff', ...data]),
      1,
      /^pacs: no API token ffffffffffffffff$/,
    );
    failsWith(await runPacs(['token', 'ls', '--user', 'nobody', ...data]), 1, /^pacs: no user nobody$/);
    const tokens = JSON.parse(
      succeeds(await runPacs(['token', 'ls', '--user', 'hank', '--json', ...data])).stdout,
    ) as unknown[];
    assert.equal(tokens.length, 0);
  });
});

describe('pacs user and token on PostgreSQL (--db)', () => {
  const schema = `identity_${randomBytes(6).toString('hex')}`;
  const url = `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}`;
  before(() => pgAdmin(async () => undefined));
  after(() => dropSchema(schema));

  test('add, ls --json, token create and ls', async () => {
    succeeds(
      await runPacs(['user', 'add', 'ivan', '--role', 'technologist', '--password-stdin', '--db', url], {
        input: PASSWORD,
      }),
    );
    const users = JSON.parse(succeeds(await runPacs(['user', 'ls', '--json', '--db', url])).stdout) as Array<{
      name: string;
      role: string;
    }>;
    assert.deepEqual(
      users.map((u) => [u.name, u.role]),
      [['ivan', 'technologist']],
    );
    const token = succeeds(await runPacs(['token', 'create', '--user', 'ivan', '--json', '--db', url]));
    const created = JSON.parse(token.stdout) as {
      token: string;
      id: string;
      role: string;
      expiresAt: string | null;
    };
    assert.equal(created.role, 'technologist');
    assert.equal(created.expiresAt, null);
    assert.ok(created.token.startsWith(`pacs_${created.id}_`));
    const listed = JSON.parse(
      succeeds(await runPacs(['token', 'ls', '--json', '--db', url])).stdout,
    ) as Array<{ id: string }>;
    assert.deepEqual(
      listed.map((t) => t.id),
      [created.id],
    );
  });
});

describe('pacs server: the first start makes the admin', () => {
  test('a random password printed once on stderr, never again at the next start', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pacs-bootstrap-'));
    try {
      const first = await startPacsServer(['--host', '127.0.0.1', '--data', dir]);
      await first.server.stop();
      const banner =
        /={72}\nNo user existed: created the user "admin" \(role admin\)\. Its password,\nshown only this once .*\n\n {4}(\S{24})\n\nChange it with: pacs user passwd admin --password-stdin\n={72}\n/.exec(
          first.server.stderr,
        );
      assert.ok(banner, first.server.stderr);
      assert.ok(!first.server.stdout.includes(banner[1] ?? ''), 'the password is on stderr only');
      const hash = (await passwordOf(dir, 'admin')) ?? '';
      assert.equal(await verifyPassword(banner[1] ?? '', hash), true);

      const second = await startPacsServer(['--host', '127.0.0.1', '--data', dir]);
      await second.server.stop();
      assert.doesNotMatch(second.server.output, /No user existed/);
      assert.equal(await passwordOf(dir, 'admin'), hash, 'the admin is left alone');
      const users = JSON.parse(
        succeeds(await runPacs(['user', 'ls', '--json', '--data', dir])).stdout,
      ) as Array<{ name: string; role: string }>;
      assert.deepEqual(
        users.map((u) => [u.name, u.role]),
        [['admin', 'admin']],
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('--admin-password-file: that password, nothing printed; a weak one stops the start with one line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pacs-bootstrap-'));
    try {
      const file = join(dir, 'admin-password');
      await writeFile(file, 'short\n');
      await chmod(file, 0o600);
      const weak = await runPacs([
        'server',
        '--host',
        '127.0.0.1',
        '--port',
        '1',
        '--data',
        join(dir, 'data'),
        '--admin-password-file',
        file,
      ]);
      failsWith(
        weak,
        1,
        /^pacs: --admin-password-file .*admin-password: cannot create the user admin: the password is too short/,
      );
      failsWith(
        await runPacs([
          'server',
          '--host',
          '127.0.0.1',
          '--data',
          join(dir, 'data'),
          '--admin-password-file',
          join(dir, 'none'),
        ]),
        1,
        /^pacs: --admin-password-file .*none: no such file$/,
      );
      await writeFile(file, `${PASSWORD}\n`);
      const started = await startPacsServer([
        '--host',
        '127.0.0.1',
        '--data',
        join(dir, 'data'),
        '--admin-password-file',
        file,
      ]);
      await started.server.stop();
      assert.doesNotMatch(started.server.output, /No user existed|correct horse/);
      assert.equal(
        await verifyPassword(PASSWORD, (await passwordOf(join(dir, 'data'), 'admin')) ?? ''),
        true,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a start that fails (port in use) says only why, and leaves no admin behind', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pacs-bootstrap-'));
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const r = await runPacs(['server', '--host', '127.0.0.1', '--port', String(port), '--data', dir]);
      failsWith(r, 1, /^pacs: cannot listen on 127\.0\.0\.1:\d+: address already in use$/);
      assert.equal(await passwordOf(dir, 'admin'), undefined, 'taken back');
      blocker.close();
      const started = await startPacsServer(['--host', '127.0.0.1', '--data', dir]);
      await started.server.stop();
      assert.match(started.server.stderr, /No user existed/);
    } finally {
      blocker.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('with --workers, only the primary makes the admin: one banner', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pacs-bootstrap-'));
    try {
      const started = await startPacsServer(['--host', '127.0.0.1', '--data', dir, '--workers', '2']);
      await started.server.stop();
      assert.equal(started.server.stderr.match(/No user existed/g)?.length, 1, started.server.stderr);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
