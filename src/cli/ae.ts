/**
 * `pacs ae add|ls|rm`: the AE registry kept in the index (issue 14): the DICOM nodes the archive
 * knows, what each may ask for (echo, store, find, move, get, worklist, mpps, commit), where it
 * listens (C-MOVE destinations), and how its associations are bound (address, TLS certificate
 * subject). Works on the index of a data folder (`--data`, SQLite) or `--db` (SQLite or
 * PostgreSQL), alongside a running server: the server reads the registry at each association.
 * AEs of the config file (`server.dicom.aes`, `peers`) are not listed here; they win over these.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { AE_PERMISSIONS, isAeTitle, isHost, PacsError, parseAePermissions, UsageError } from '../client.js';
import type { AeEntry, AeRegistry } from '../index.js';
import { indexUrlFlag, integerFlag } from './common.js';
import { renderTable } from './table.js';

interface IndexFlags {
  data?: string;
  db?: string;
}

interface AddFlags extends IndexFlags {
  host?: string;
  port?: string;
  permissions: string;
  moveDestinations?: string;
  tlsSubject?: string;
  bindAddress?: boolean;
  tls?: boolean;
  description?: string;
}

function indexOptions(command: Command): Command {
  return command
    .option('--data <dir>', 'data folder whose SQLite index holds the registry (default ./data)')
    .option('--db <url>', 'index database: sqlite:PATH or postgres://... (instead of --data)');
}

export function registerAeCommand(program: Command): void {
  const ae = program.command('ae').description('the AE registry: DICOM nodes and what they may do');
  indexOptions(
    ae
      .command('add <title>')
      .description('add an AE, or replace the one of that title')
      .option(
        '--host <host>',
        'where it listens (C-MOVE destinations), and the address --bind-address checks',
      )
      .option('--port <port>', 'the port it listens on')
      .requiredOption(
        '--permissions <list>',
        `what it may ask for, comma separated: ${AE_PERMISSIONS.join(',')}`,
      )
      .option(
        '--move-destinations <list>',
        'AE titles it may C-MOVE to, comma separated, or * for any (default: itself)',
      )
      .option(
        '--tls-subject <subject>',
        'its associations must present a TLS client certificate with this subject (CN=...)',
      )
      .option('--bind-address', 'its associations must come from --host')
      .option('--tls', 'C-MOVE connects to it with TLS')
      .option('--description <text>', 'a note for the listing'),
  ).action(async (title: string, flags: AddFlags) => {
    await addAe(title, flags);
  });
  indexOptions(
    ae.command('ls').description('list the AEs of the registry').option('--json', 'print them as JSON'),
  ).action(async (flags: IndexFlags & { json?: boolean }) => {
    await listAes(flags);
  });
  indexOptions(ae.command('rm <title>').description('remove an AE from the registry')).action(
    async (title: string, flags: IndexFlags) => {
      await removeAe(title, flags);
    },
  );
}

async function indexUrl(flags: IndexFlags, create: boolean): Promise<string> {
  if (flags.db !== undefined && flags.data !== undefined) throw new UsageError('--data and --db go alone');
  if (flags.db !== undefined) return indexUrlFlag(flags.db);
  const dir = flags.data ?? './data';
  const file = join(dir, 'index.sqlite');
  if (!existsSync(file)) {
    // Reading must not create an empty archive where there is none; adding may.
    if (!create) throw new PacsError('ERR_AE', `no index at ${file} (give --data DIR or --db URL)`);
    mkdirSync(dir, { recursive: true });
  }
  return `sqlite:${file}`;
}

function title(text: string): string {
  if (!isAeTitle(text))
    throw new UsageError(
      `${JSON.stringify(text)} is not an AE title (1 to 16 characters of ISO 646, no backslash)`,
    );
  return text.trim();
}

function entryOf(aeTitle: string, flags: AddFlags): AeEntry {
  const permissions = parseAePermissions(flags.permissions);
  if (!permissions.ok)
    throw new UsageError(
      `--permissions: ${JSON.stringify(permissions.bad)} is not one of ${AE_PERMISSIONS.join(', ')}`,
    );
  if (flags.host !== undefined && !isHost(flags.host))
    throw new UsageError(`--host: ${JSON.stringify(flags.host)} is not a host name or IP address`);
  if (flags.bindAddress && flags.host === undefined) throw new UsageError('--bind-address needs --host');
  if (flags.port !== undefined && flags.host === undefined) throw new UsageError('--port needs --host');
  const port = flags.port !== undefined ? integerFlag('--port', flags.port, 1, 65535) : undefined;
  let moveDestinations: AeEntry['moveDestinations'];
  if (flags.moveDestinations !== undefined) {
    const text = flags.moveDestinations.trim();
    moveDestinations =
      text === '*'
        ? 'any'
        : text
            .split(',')
            .filter((t) => t.trim() !== '')
            .map(title);
  }
  if (flags.tlsSubject !== undefined && flags.tlsSubject.trim() === '')
    throw new UsageError('--tls-subject is empty');
  return {
    aeTitle,
    ...(flags.host !== undefined ? { host: flags.host } : {}),
    ...(port !== undefined ? { port } : {}),
    permissions: permissions.value,
    ...(moveDestinations !== undefined ? { moveDestinations } : {}),
    ...(flags.tlsSubject !== undefined ? { tlsSubject: flags.tlsSubject.trim() } : {}),
    bindAddress: flags.bindAddress === true,
    tls: flags.tls === true,
    ...(flags.description !== undefined ? { description: flags.description } : {}),
  };
}

async function withRegistry<T>(
  flags: IndexFlags,
  create: boolean,
  body: (registry: AeRegistry) => Promise<T>,
): Promise<T> {
  const url = await indexUrl(flags, create);
  // The index layer loads only now (src/client.ts says why).
  const { openAeRegistry } = await import('../index.js');
  let opened: Awaited<ReturnType<typeof openAeRegistry>>;
  try {
    opened = await openAeRegistry(url);
  } catch (e) {
    throw new PacsError('ERR_AE', (e as Error).message);
  }
  try {
    return await body(opened.registry);
  } finally {
    await opened.close();
  }
}

async function addAe(text: string, flags: AddFlags): Promise<void> {
  const entry = entryOf(title(text), flags);
  await withRegistry(flags, true, (registry) => registry.put(entry));
  process.stdout.write(`${entry.aeTitle}: ${entry.permissions.join(',') || 'no permissions'}\n`);
}

async function removeAe(text: string, flags: IndexFlags): Promise<void> {
  const aeTitle = title(text);
  const removed = await withRegistry(flags, false, (registry) => registry.remove(aeTitle));
  if (!removed) throw new PacsError('ERR_AE', `no AE ${aeTitle} in the registry`);
  process.stdout.write(`${aeTitle} removed\n`);
}

async function listAes(flags: IndexFlags & { json?: boolean }): Promise<void> {
  const entries = await withRegistry(flags, false, (registry) => registry.list());
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(entries, null, 2)}\n`);
    return;
  }
  const rows = entries.map((e) => [
    e.aeTitle,
    e.host !== undefined ? `${e.host}${e.port !== undefined ? `:${e.port}` : ''}` : '',
    e.permissions.join(','),
    e.moveDestinations === undefined
      ? '(itself)'
      : e.moveDestinations === 'any'
        ? '*'
        : e.moveDestinations.join(','),
    [e.bindAddress ? 'address' : '', e.tlsSubject !== undefined ? `cert ${e.tlsSubject}` : '']
      .filter((b) => b !== '')
      .join(', '),
    e.description ?? '',
  ]);
  process.stdout.write(
    renderTable(
      ['AE TITLE', 'ADDRESS', 'PERMISSIONS', 'MOVE TO', 'BOUND TO', 'DESCRIPTION'],
      rows,
      entries.length === 0 ? 'no AEs' : `${entries.length} AE(s)`,
    ),
  );
}
