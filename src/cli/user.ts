/**
 * `pacs user add|ls|rm|passwd|role|disable|enable` (issue 14): the users of an archive, kept in its
 * index (`--data DIR`: the SQLite index of a data folder; `--db URL`: SQLite or PostgreSQL), beside
 * a running server (it reads users per request). A password comes from standard input
 * (`--password-stdin`, one line) or is generated and printed once. Also the index helpers of
 * `pacs role` and `pacs token`.
 *
 * These commands have no event bus: what they change is visible in the rows' created/updated/
 * revoked times, not as 'security-alert' events (see the report of issue 14).
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { PacsError, UsageError } from '../client.js';
import type { IdentityStore, Result, UserRecord } from '../index.js';
import { indexUrlFlag } from './common.js';
import { renderTable } from './table.js';

export interface IndexFlags {
  data?: string;
  db?: string;
  json?: boolean;
}

/** Adds `--data`, `--db` and `--json` to a command. */
export function addIndexOptions(command: Command, json = true): Command {
  command
    .option('--data <dir>', 'data folder whose SQLite index holds the users (default ./data)')
    .option('--db <url>', 'index database: sqlite:PATH or postgres://... (instead of --data)');
  return json ? command.option('--json', 'print the result as JSON') : command;
}

/**
 * Runs `fn` on the identity store of the index the flags name. `write`: the command changes
 * something, so a data folder without an index yet gets one (a user may be added before the
 * first start); a read never creates an archive where there is none.
 */
export async function withIdentityStore<T>(
  flags: IndexFlags,
  write: boolean,
  fn: (store: IdentityStore) => Promise<T>,
): Promise<T> {
  if (flags.db !== undefined && flags.data !== undefined) throw new UsageError('--data and --db go alone');
  let url: string;
  if (flags.db !== undefined) url = await indexUrlFlag(flags.db);
  else {
    const dir = flags.data ?? './data';
    const file = join(dir, 'index.sqlite');
    if (!existsSync(file) && !(write && isDirectory(dir)))
      throw new PacsError('ERR_IDENTITY', `no index at ${file} (give --data DIR or --db URL)`);
    url = `sqlite:${file}`;
  }
  // The index layer loads only now (src/client.ts says why).
  const { openIdentityStore } = await import('../index.js');
  let opened: Awaited<ReturnType<typeof openIdentityStore>>;
  try {
    opened = await openIdentityStore(url);
  } catch (e) {
    throw new PacsError('ERR_IDENTITY', (e as Error).message);
  }
  try {
    return await fn(opened.store);
  } finally {
    await opened.close();
  }
}

/** The value of a change, or its reason as the command's one-line error. */
export function orFail<T>(result: Result<T, string>): T {
  if (!result.ok) throw new PacsError('ERR_IDENTITY', result.error);
  return result.value;
}

/** One line of standard input (`--password-stdin`): the password, its line end removed. */
export async function readPasswordStdin(): Promise<string> {
  if (process.stdin.isTTY)
    throw new UsageError('--password-stdin: standard input is a terminal; pipe the password in');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > 64 * 1024) throw new UsageError('--password-stdin: more than 64 KiB on standard input');
    chunks.push(b);
  }
  const text = Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
  if (text.includes('\n')) throw new UsageError('--password-stdin: expected one line');
  return text;
}

export function time(d: Date | null): string {
  return d === null ? '' : d.toISOString().replace('T', ' ').slice(0, 19);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** A user as listings show it: never the hash. */
function userJson(u: UserRecord) {
  return {
    name: u.name,
    role: u.role,
    disabled: u.disabled,
    passwordSet: u.passwordHash !== null,
    createdAt: u.createdAt.toISOString(),
    updatedAt: u.updatedAt.toISOString(),
  };
}

interface AddFlags extends IndexFlags {
  role: string;
  passwordStdin?: boolean;
}

interface PasswordFlags extends IndexFlags {
  passwordStdin?: boolean;
}

export function registerUserCommand(program: Command): void {
  const user = program.command('user').description('the users of an archive (kept in its index)');

  addIndexOptions(
    user
      .command('add')
      .description('add a user; without --password-stdin a strong password is generated and printed once')
      .argument('<name>', 'user name: letters, digits and . _ @ + - (64 at most)')
      .requiredOption('--role <role>', 'the role (pacs role ls)')
      .option('--password-stdin', 'read the password (one line, 12 characters at least) from standard input'),
  ).action(async (name: string, flags: AddFlags) => {
    const password = flags.passwordStdin ? await readPasswordStdin() : undefined;
    const { identityAdmin } = await import('../index.js');
    const added = await withIdentityStore(flags, true, async (store) =>
      orFail(
        await identityAdmin.addUser(store, {
          name,
          role: flags.role,
          ...(password !== undefined ? { password } : {}),
        }),
      ),
    );
    if (flags.json)
      printJson({
        ...userJson(added.user),
        ...(added.generatedPassword !== undefined ? { password: added.generatedPassword } : {}),
      });
    else {
      process.stdout.write(`user ${added.user.name} added (role ${added.user.role})\n`);
      if (added.generatedPassword !== undefined)
        process.stdout.write(`password (shown only now): ${added.generatedPassword}\n`);
    }
  });

  addIndexOptions(user.command('ls').description('list the users')).action(async (flags: IndexFlags) => {
    const users = await withIdentityStore(flags, false, (store) => store.listUsers());
    if (flags.json) printJson(users.map(userJson));
    else
      process.stdout.write(
        renderTable(
          ['NAME', 'ROLE', 'STATE', 'CREATED', 'UPDATED'],
          users.map((u) => [
            u.name,
            u.role,
            u.disabled ? 'disabled' : 'active',
            time(u.createdAt),
            time(u.updatedAt),
          ]),
          `${users.length} user${users.length === 1 ? '' : 's'}`,
        ),
      );
  });

  addIndexOptions(
    user.command('rm').description('remove a user with their API tokens and sessions').argument('<name>'),
    false,
  ).action(async (name: string, flags: IndexFlags) => {
    const { identityAdmin } = await import('../index.js');
    await withIdentityStore(flags, true, async (store) =>
      orFail(await identityAdmin.removeUser(store, name)),
    );
    process.stdout.write(`user ${name} removed\n`);
  });

  addIndexOptions(
    user
      .command('passwd')
      .description(
        "set a user's password; without --password-stdin a strong one is generated and printed once",
      )
      .argument('<name>')
      .option('--password-stdin', 'read the password (one line, 12 characters at least) from standard input'),
  ).action(async (name: string, flags: PasswordFlags) => {
    const given = flags.passwordStdin ? await readPasswordStdin() : undefined;
    const { identityAdmin, generatePassword } = await import('../index.js');
    const password = given ?? generatePassword();
    await withIdentityStore(flags, true, async (store) =>
      orFail(await identityAdmin.setPassword(store, name, password)),
    );
    if (flags.json) printJson({ name, ...(given === undefined ? { password } : {}) });
    else {
      process.stdout.write(`password of ${name} changed\n`);
      if (given === undefined) process.stdout.write(`password (shown only now): ${password}\n`);
    }
  });

  addIndexOptions(
    user.command('role').description("change a user's role").argument('<name>').argument('<role>'),
    false,
  ).action(async (name: string, role: string, flags: IndexFlags) => {
    const { identityAdmin } = await import('../index.js');
    await withIdentityStore(flags, true, async (store) =>
      orFail(await identityAdmin.setRole(store, name, role)),
    );
    process.stdout.write(`user ${name} now has the role ${role}\n`);
  });

  for (const [verb, disabled] of [
    ['disable', true],
    ['enable', false],
  ] as const)
    addIndexOptions(
      user
        .command(verb)
        .description(
          disabled ? 'refuse every login of a user (their tokens too)' : 'allow a disabled user again',
        )
        .argument('<name>'),
      false,
    ).action(async (name: string, flags: IndexFlags) => {
      const { identityAdmin } = await import('../index.js');
      await withIdentityStore(flags, true, async (store) =>
        orFail(await identityAdmin.setDisabled(store, name, disabled)),
      );
      process.stdout.write(`user ${name} ${disabled ? 'disabled' : 'enabled'}\n`);
    });
}
