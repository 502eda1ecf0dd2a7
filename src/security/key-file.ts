/**
 * Key-encryption key files (`pacs archive new-key FILE`, `storage.encryption.keyFile`): one JSON
 * object `{"type":"pacs-kek","version":1,"id":"<32 hex>","key":"<base64 of 32 bytes>"}`, mode 0600.
 * A key file that is missing, unreadable, readable by others or malformed is refused with a
 * one-line reason (KeyFileError), never half-used.
 */
import { constants } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { PacsError } from '../core/errors.js';
import {
  KEK_ID_SIZE,
  KEY_SIZE,
  type KeyEncryptionKey,
  type Keyring,
  makeKeyring,
  newKeyEncryptionKey,
} from './envelope.js';

export class KeyFileError extends PacsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_KEY_FILE', message, options);
  }
}

const HEX_ID = /^[0-9a-f]{32}$/;
const BASE64 = /^[A-Za-z0-9+/]{43}=$/;

export function formatKeyFile(kek: KeyEncryptionKey): string {
  return `${JSON.stringify({ type: 'pacs-kek', version: 1, id: kek.id.toString('hex'), key: kek.key.toString('base64') })}\n`;
}

/** Parses a key file's text; `where` names it in the error. */
export function parseKeyFile(text: string, where: string): KeyEncryptionKey {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new KeyFileError(`key file ${where} is malformed: not JSON`);
  }
  const o = v as { type?: unknown; version?: unknown; id?: unknown; key?: unknown } | null;
  if (o === null || typeof o !== 'object' || o.type !== 'pacs-kek')
    throw new KeyFileError(`key file ${where} is malformed: not a pacs key-encryption key`);
  if (o.version !== 1)
    throw new KeyFileError(`key file ${where} has version ${String(o.version)}, expected 1`);
  if (typeof o.id !== 'string' || !HEX_ID.test(o.id))
    throw new KeyFileError(`key file ${where} is malformed: "id" is not 32 hex digits`);
  if (typeof o.key !== 'string' || !BASE64.test(o.key))
    throw new KeyFileError(`key file ${where} is malformed: "key" is not the base64 of ${KEY_SIZE} bytes`);
  const id = Buffer.from(o.id, 'hex');
  const key = Buffer.from(o.key, 'base64');
  if (id.length !== KEK_ID_SIZE || key.length !== KEY_SIZE)
    throw new KeyFileError(`key file ${where} is malformed: wrong key length`);
  return { id, key };
}

/** Reads a key file, refusing one that others may read or write (any group or other permission bit). */
export async function readKeyFile(path: string): Promise<KeyEncryptionKey> {
  let text: string;
  try {
    const s = await stat(path);
    if (!s.isFile()) throw new KeyFileError(`key file ${path} is not a regular file`);
    if ((s.mode & 0o077) !== 0)
      throw new KeyFileError(
        `key file ${path} is readable by others (mode ${(s.mode & 0o777).toString(8).padStart(4, '0')}): chmod 600 it`,
      );
    text = await readFile(path, 'utf8');
  } catch (e) {
    if (e instanceof KeyFileError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new KeyFileError(`key file ${path} does not exist`, { cause: e });
    throw new KeyFileError(`key file ${path} cannot be read: ${(e as Error).message}`, { cause: e });
  }
  return parseKeyFile(text, path);
}

/** Writes a new random key to `path` (mode 0600); refuses to overwrite a file that exists. */
export async function writeNewKeyFile(path: string): Promise<KeyEncryptionKey> {
  const kek = newKeyEncryptionKey();
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST')
      throw new KeyFileError(`${path} exists: a key file is never overwritten`, { cause: e });
    throw new KeyFileError(`cannot create ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    await fh.chmod(0o600);
    await fh.writeFile(formatKeyFile(kek));
    await fh.sync();
  } finally {
    await fh.close();
  }
  return kek;
}

/** The keyring of a config: the current key file and the previous ones (for objects not yet rotated). */
export async function loadKeyring(
  keyFile: string,
  previousKeyFiles: readonly string[] = [],
): Promise<Keyring> {
  const current = await readKeyFile(keyFile);
  const previous: KeyEncryptionKey[] = [];
  for (const p of previousKeyFiles) previous.push(await readKeyFile(p));
  return makeKeyring(current, previous);
}

/** The keyring of a `storage.encryption` config section, or undefined when it names no key file. */
export async function keyringOf(encryption: {
  readonly keyFile?: string | undefined;
  readonly previousKeyFiles?: readonly string[];
}): Promise<Keyring | undefined> {
  if (encryption.keyFile === undefined) {
    if ((encryption.previousKeyFiles ?? []).length > 0)
      throw new KeyFileError('storage.encryption.previousKeyFiles is set without storage.encryption.keyFile');
    return undefined;
  }
  return loadKeyring(encryption.keyFile, encryption.previousKeyFiles);
}
