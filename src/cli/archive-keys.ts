/**
 * Keys of encryption at rest (issue 14):
 *   pacs archive new-key FILE                 a new key-encryption key (mode 0600; never overwrites)
 *   pacs archive rotate-key --data DIR --new-key FILE [--old-key FILE]...
 *                                            every object's data key rewrapped under the new key
 *   pacs archive encrypt --data DIR --key-file FILE
 *                                            the plain objects of an archive encrypted in place
 * After a rotation, `storage.encryption.keyFile` names the new key; the old one may be kept in
 * `previousKeyFiles` until a rotation reports no failure, then removed.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Command } from 'commander';
import { PacsError } from '../client.js';
import type { RotationProgress } from '../index.js';
import { Progress } from './progress.js';

interface EncryptFlags {
  data?: string;
  keyFile: string;
  json?: boolean;
}

interface RotateFlags {
  data?: string;
  newKey: string;
  oldKey: string[];
  json?: boolean;
}

export function registerKeyCommands(archive: Command): void {
  archive
    .command('new-key <file>')
    .description(
      'write a new key-encryption key for storage.encryption.keyFile (mode 0600, never overwrites)',
    )
    .action(async (file: string) => {
      // The archive's modules load only now (src/client.ts says why).
      const { writeNewKeyFile } = await import('../index.js');
      const kek = await writeNewKeyFile(file);
      process.stdout.write(`wrote key ${kek.id.toString('hex')} to ${file}\n`);
    });
  archive
    .command('rotate-key')
    .description(
      "rewrap every encrypted object's data key under a new key (objects are not rewritten; resumable)",
    )
    .option('--data <dir>', 'the data folder (default ./data)')
    .requiredOption('--new-key <file>', 'the new key-encryption key (pacs archive new-key)')
    .option(
      '--old-key <file>',
      'a key the objects are encrypted under now (repeatable)',
      (v: string, all: string[]) => [...all, v],
      [] as string[],
    )
    .option('--json', 'print the report as JSON on standard output')
    .action(async (flags: RotateFlags) => {
      await rotate(flags);
    });
  archive
    .command('encrypt')
    .description(
      'encrypt in place the objects stored before encryption was turned on (server stopped; resumable)',
    )
    .option('--data <dir>', 'the data folder (default ./data)')
    .requiredOption('--key-file <file>', 'the key-encryption key (storage.encryption.keyFile)')
    .option('--json', 'print the report as JSON on standard output')
    .action(async (flags: EncryptFlags) => {
      await encrypt(flags);
    });
}

async function rotate(flags: RotateFlags): Promise<void> {
  const dataDir = archiveDir(flags.data);
  // The archive's modules load only now (src/client.ts says why).
  const { makeKeyring, ObjectStore, readKeyFile, rotateKeys } = await import('../index.js');
  const next = await readKeyFile(flags.newKey);
  const old = [];
  for (const f of flags.oldKey) old.push(await readKeyFile(f));
  const keyring = makeKeyring(next, old);
  const store = await ObjectStore.open({ dataDir, minFreeBytes: 0 });
  await objectPass(
    'rotate-key',
    flags.json,
    { dataDir, keyId: next.id.toString('hex') },
    (onProgress) => rotateKeys(store, keyring, { onProgress }),
    (r) =>
      `rotate-key of ${dataDir} to key ${next.id.toString('hex')}: ${r.checked} objects checked in SECONDS s; ${r.rewrapped} rewrapped, ${r.current} already under the new key, ${r.plain} not encrypted, ${r.failed.length} failed`,
  );
}

async function encrypt(flags: EncryptFlags): Promise<void> {
  const dataDir = archiveDir(flags.data);
  const { encryptObjects, makeKeyring, ObjectStore, readKeyFile } = await import('../index.js');
  const kek = await readKeyFile(flags.keyFile);
  const store = await ObjectStore.open({ dataDir, minFreeBytes: 0, keyring: makeKeyring(kek) });
  await objectPass(
    'encrypt',
    flags.json,
    { dataDir, keyId: kek.id.toString('hex') },
    (onProgress) => encryptObjects(store, { onProgress }),
    (r) =>
      `encrypt of ${dataDir} under key ${kek.id.toString('hex')}: ${r.checked} objects checked in SECONDS s; ${r.encrypted} encrypted, ${r.already} encrypted already, ${r.failed.length} failed`,
  );
}

function archiveDir(data: string | undefined): string {
  const dataDir = data ?? './data';
  if (!isDirectory(join(dataDir, 'objects')))
    throw new PacsError('ERR_ARCHIVE', `${dataDir} is not an archive's data folder (no objects/ in it)`);
  return dataDir;
}

/** Runs a pass over every object with a progress bar, prints its report, fails when an object failed. */
async function objectPass<R extends { readonly failed: readonly { path: string; reason: string }[] }>(
  name: string,
  json: boolean | undefined,
  about: Record<string, string>,
  pass: (onProgress: (p: RotationProgress) => void) => Promise<R>,
  summary: (report: R) => string,
): Promise<void> {
  const bar = new Progress<{ fraction: number }>(
    { head: () => name, tail: (_p, s) => `${s.value} objects`, fraction: (p) => p.fraction },
    { fraction: 0 },
  );
  bar.start(0);
  const started = performance.now();
  let report: R;
  try {
    report = await pass((p) => bar.update(p.checked, { fraction: p.fraction }, p.checked));
  } finally {
    bar.stop();
  }
  const seconds = (performance.now() - started) / 1000;
  if (json)
    process.stdout.write(
      `${JSON.stringify({ ...about, ...report, seconds: Number(seconds.toFixed(3)) }, null, 2)}\n`,
    );
  else {
    process.stdout.write(`${summary(report).replace('SECONDS', seconds.toFixed(1))}\n`);
    for (const f of report.failed) process.stderr.write(`  ${f.path}: ${f.reason}\n`);
  }
  if (report.failed.length > 0)
    throw new PacsError(
      'ERR_ARCHIVE',
      `${report.failed.length} objects failed (see above); run ${name} again once fixed`,
    );
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
