/**
 * `pacs role ls|add|rm` (issue 14): the built-in roles and the custom ones of an archive's index.
 * A custom role grants the permissions it lists; one held by a user or a live token is not removed.
 */
import type { Command } from 'commander';
import { UsageError } from '../client.js';
import { renderTable } from './table.js';
import { addIndexOptions, type IndexFlags, orFail, printJson, withIdentityStore } from './user.js';

interface AddFlags extends IndexFlags {
  permissions: string;
  description?: string;
}

export function registerRoleCommand(program: Command): void {
  const role = program.command('role').description('the roles users and API tokens hold');

  addIndexOptions(role.command('ls').description('list the built-in and custom roles')).action(
    async (flags: IndexFlags) => {
      const { allRoles } = await import('../index.js');
      const roles = await withIdentityStore(flags, false, (store) => allRoles(store));
      if (flags.json) printJson(roles);
      else
        process.stdout.write(
          renderTable(
            ['NAME', 'KIND', 'PERMISSIONS', 'DESCRIPTION'],
            roles.map((r) => [
              r.name,
              r.builtin ? 'built-in' : 'custom',
              r.permissions.join(','),
              r.description,
            ]),
            `${roles.length} roles`,
          ),
        );
    },
  );

  addIndexOptions(
    role
      .command('add')
      .description('add a custom role')
      .argument('<name>', 'role name: a lower-case letter, then lower-case letters, digits, _ and -')
      .requiredOption(
        '--permissions <list>',
        'comma-separated: view, download, upload, delete, modify, send, query-remote, worklist, admin, audit',
      )
      .option('--description <text>', 'what the role is for'),
    false,
  ).action(async (name: string, flags: AddFlags) => {
    const { identityAdmin, parsePermissions, PERMISSIONS } = await import('../index.js');
    const parsed = parsePermissions(flags.permissions);
    if (!parsed.ok)
      throw new UsageError(
        `--permissions: ${JSON.stringify(parsed.bad)} is not one of ${PERMISSIONS.join(', ')}`,
      );
    const added = await withIdentityStore(flags, true, async (store) =>
      orFail(
        await identityAdmin.addRole(store, {
          name,
          permissions: parsed.value,
          ...(flags.description !== undefined ? { description: flags.description } : {}),
        }),
      ),
    );
    process.stdout.write(`role ${added.name} added (${added.permissions.join(', ')})\n`);
  });

  addIndexOptions(
    role.command('rm').description('remove a custom role no user or token holds').argument('<name>'),
    false,
  ).action(async (name: string, flags: IndexFlags) => {
    const { identityAdmin } = await import('../index.js');
    await withIdentityStore(flags, true, async (store) =>
      orFail(await identityAdmin.removeRole(store, name)),
    );
    process.stdout.write(`role ${name} removed\n`);
  });
}
