/**
 * `pacs token create|ls|revoke` (issue 14): API tokens for scripts and DICOMweb clients (HTTP
 * `Authorization: Bearer pacs_...`). `create` prints the token once, alone on standard output
 * (`TOKEN=$(pacs token create --user NAME)`), what it is on standard error; the index keeps only a
 * hash of its secret.
 */
import type { Command } from 'commander';
import { PacsError } from '../client.js';
import type { TokenRecord } from '../index.js';
import { integerFlag } from './common.js';
import { renderTable } from './table.js';
import { addIndexOptions, type IndexFlags, orFail, printJson, time, withIdentityStore } from './user.js';

interface CreateFlags extends IndexFlags {
  user: string;
  role?: string;
  expires?: string;
  description?: string;
}

interface LsFlags extends IndexFlags {
  user?: string;
}

function stateOf(t: TokenRecord, now: number): 'active' | 'revoked' | 'expired' {
  if (t.revokedAt !== null) return 'revoked';
  if (t.expiresAt !== null && t.expiresAt.getTime() <= now) return 'expired';
  return 'active';
}

function tokenJson(t: TokenRecord, now: number) {
  return {
    id: t.tokenId,
    user: t.userName,
    role: t.role,
    state: stateOf(t, now),
    description: t.description,
    createdAt: t.createdAt.toISOString(),
    expiresAt: t.expiresAt?.toISOString() ?? null,
    revokedAt: t.revokedAt?.toISOString() ?? null,
    lastUsedAt: t.lastUsedAt?.toISOString() ?? null,
  };
}

export function registerTokenCommand(program: Command): void {
  const token = program.command('token').description('API tokens (HTTP Bearer) of the users of an archive');

  addIndexOptions(
    token
      .command('create')
      .description('make an API token for a user and print it once')
      .requiredOption('--user <name>', 'whose token it is')
      .option('--role <role>', "its role, within the user's (default: the user's role)")
      .option('--expires <days>', 'days until it expires, 1 to 3650 (default: never)')
      .option('--description <text>', 'what it is for'),
  ).action(async (flags: CreateFlags) => {
    const { identityAdmin, MAX_TOKEN_DAYS } = await import('../index.js');
    const days =
      flags.expires === undefined ? undefined : integerFlag('--expires', flags.expires, 1, MAX_TOKEN_DAYS);
    const created = await withIdentityStore(flags, true, async (store) =>
      orFail(
        await identityAdmin.createToken(store, {
          user: flags.user,
          ...(flags.role !== undefined ? { role: flags.role } : {}),
          ...(days !== undefined ? { expiresDays: days } : {}),
          ...(flags.description !== undefined ? { description: flags.description } : {}),
        }),
      ),
    );
    const r = created.record;
    if (flags.json) printJson({ token: created.token, ...tokenJson(r, Date.now()) });
    else {
      process.stdout.write(`${created.token}\n`);
      process.stderr.write(
        `pacs: API token ${r.tokenId} for ${r.userName} (role ${r.role}), ${r.expiresAt === null ? 'never expires' : `expires ${time(r.expiresAt)} UTC`}; shown only now\n`,
      );
    }
  });

  addIndexOptions(
    token
      .command('ls')
      .description('list API tokens, newest first (never their secrets)')
      .option('--user <name>', "only this user's"),
  ).action(async (flags: LsFlags) => {
    const tokens = await withIdentityStore(flags, false, async (store) => {
      if (flags.user === undefined) return store.listTokens();
      const user = await store.getUser(flags.user);
      if (user === undefined) throw new PacsError('ERR_IDENTITY', `no user ${flags.user}`);
      return store.listTokens(user.id);
    });
    const now = Date.now();
    if (flags.json) printJson(tokens.map((t) => tokenJson(t, now)));
    else
      process.stdout.write(
        renderTable(
          ['ID', 'USER', 'ROLE', 'STATE', 'CREATED', 'EXPIRES', 'LAST USED', 'DESCRIPTION'],
          tokens.map((t) => [
            t.tokenId,
            t.userName,
            t.role,
            stateOf(t, now),
            time(t.createdAt),
            t.expiresAt === null ? 'never' : time(t.expiresAt),
            time(t.lastUsedAt),
            (t.description ?? '').replace(/\s+/g, ' ').slice(0, 40),
          ]),
          `${tokens.length} token${tokens.length === 1 ? '' : 's'}`,
        ),
      );
  });

  addIndexOptions(
    token
      .command('revoke')
      .description('revoke an API token at once')
      .argument('<id>', 'the token id (pacs token ls)'),
    false,
  ).action(async (id: string, flags: IndexFlags) => {
    const { identityAdmin } = await import('../index.js');
    await withIdentityStore(flags, true, async (store) => orFail(await identityAdmin.revokeToken(store, id)));
    process.stdout.write(`API token ${id} revoked\n`);
  });
}
