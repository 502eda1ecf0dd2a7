/**
 * The first start of a server on an index without users (issue 14): it makes `admin` (role admin)
 * so that somebody can log in, with the password of `identity.adminPasswordFile`
 * (`--admin-password-file`) or a random one printed once on standard error. A later start finds a
 * user and does nothing. Several processes starting at once on one PostgreSQL: one insert wins,
 * the others find the name taken and print nothing. With --workers only the primary runs it.
 *
 * The admin is made before the server starts, its password shown once the server listens
 * (announce()); a start that fails (a port in use) removes it again (undo()), so the failure is its
 * one line and the next start makes and shows a new one.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PacsError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { addUser } from '../../security/identity-admin.js';
import { openIndex } from '../index/open.js';
import { identityStoreOf } from './open.js';

export const BOOTSTRAP_USER = 'admin';

export interface BootstrapOptions {
  /** The data folder (config data.dir). */
  readonly dir: string;
  /** Default: sqlite:DATA/index.sqlite, as the archive opens it. */
  readonly dbUrl?: string | undefined;
  /** config identity.adminPasswordFile (`--admin-password-file`). */
  readonly adminPasswordFile?: string | undefined;
  readonly logger?: Logger;
  /** Where the banner with a generated password goes (default standard error). */
  readonly write?: (text: string) => void;
}

/** The admin made by a first start: shown when the server is up, or taken back when it did not start. */
export interface FirstAdmin {
  /** Prints the banner (when the password was generated). Once. */
  announce(): void;
  /** The start failed: removes the admin (unless changed since), so the next start makes a new one. Prints the banner if it cannot. */
  undo(): Promise<void>;
}

/**
 * Makes the admin when the index has no user; undefined when there are users (nothing to do).
 * Throws a PacsError when it cannot (the index, the password file).
 */
export async function bootstrapAdmin(options: BootstrapOptions): Promise<FirstAdmin | undefined> {
  const password =
    options.adminPasswordFile === undefined
      ? undefined
      : await readPasswordFile(options.adminPasswordFile, options.logger);
  const url = options.dbUrl ?? `sqlite:${join(options.dir, 'index.sqlite')}`;
  const open = async () => {
    try {
      return await openIndex(url, { ...(options.logger ? { logger: options.logger } : {}) });
    } catch (e) {
      throw new PacsError('ERR_SERVER_START', `cannot open the archive: ${(e as Error).message}`);
    }
  };
  const opened = await open();
  let created: { readonly hash: string | null; readonly generated: string | undefined };
  try {
    const store = identityStoreOf(opened.index);
    if ((await store.countUsers()) > 0) return undefined;
    const added = await addUser(store, {
      name: BOOTSTRAP_USER,
      role: 'admin',
      ...(password !== undefined ? { password } : {}),
    });
    if (!added.ok) {
      // Another process made it first.
      if ((await store.getUser(BOOTSTRAP_USER)) !== undefined) return undefined;
      const from =
        options.adminPasswordFile === undefined ? '' : `--admin-password-file ${options.adminPasswordFile}: `;
      throw new PacsError(
        'ERR_SERVER_START',
        `${from}cannot create the user ${BOOTSTRAP_USER}: ${added.error}`,
      );
    }
    created = { hash: added.value.user.passwordHash, generated: added.value.generatedPassword };
  } finally {
    await opened.index.close();
  }
  options.logger?.info(
    { user: BOOTSTRAP_USER, role: 'admin' },
    'no user existed: created the first administrator',
  );
  let done = false;
  const announce = (): void => {
    if (done) return;
    done = true;
    if (created.generated !== undefined)
      (options.write ?? ((t: string) => process.stderr.write(t)))(banner(created.generated));
  };
  return {
    announce,
    async undo() {
      if (done) return;
      try {
        const again = await open();
        try {
          const store = identityStoreOf(again.index);
          if ((await store.getUser(BOOTSTRAP_USER))?.passwordHash === created.hash)
            await store.removeUser(BOOTSTRAP_USER);
          done = true;
        } finally {
          await again.index.close();
        }
      } catch (e) {
        options.logger?.warn(
          { err: e },
          'the first administrator could not be taken back after the failed start',
        );
        announce();
      }
    },
  };
}

function banner(password: string): string {
  const rule = '='.repeat(72);
  return [
    rule,
    `No user existed: created the user "${BOOTSTRAP_USER}" (role admin). Its password,`,
    'shown only this once (it is stored hashed and cannot be shown again):',
    '',
    `    ${password}`,
    '',
    `Change it with: pacs user passwd ${BOOTSTRAP_USER} --password-stdin`,
    rule,
    '',
  ].join('\n');
}

async function readPasswordFile(file: string, logger: Logger | undefined): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
    const mode = (await stat(file)).mode;
    if ((mode & 0o077) !== 0)
      logger?.warn(
        { file },
        'the admin password file can be read by other users: chmod 600 it, or remove it after the first start',
      );
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new PacsError(
      'ERR_SERVER_START',
      `--admin-password-file ${file}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`,
    );
  }
  // One line, as `echo PW > file` writes it.
  const password = text.replace(/\r?\n$/, '');
  if (password.includes('\n'))
    throw new PacsError('ERR_SERVER_START', `--admin-password-file ${file}: more than one line`);
  return password;
}
