/**
 * Keys of encryption at rest (issue 14):
 *   pacs archive new-key FILE                 a new key-encryption key (mode 0600; never overwrites)
 *   pacs archive rotate-key --data DIR --new-key FILE [--old-key FILE]...
 *                                            every object's data key rewrapped under the new key
 * After a rotation, `storage.encryption.keyFile` names the new key; the old one may be kept in
 * `previousKeyFiles` until a rotation reports no failure, then removed.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Command } from 'commander';
import type { RotationReport } from '../archive/key-rotation.js';
import { PacsError } from '../core/errors.js';
import { makeKeyring } from '../security/envelope.js';
import { readKeyFile, writeNewKeyFile } from '../security/key-file.js';
import { Progress } from './progress.js';

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
}

async function rotate(flags: RotateFlags): Promise<void> {
  const dataDir = flags.data ?? './data';
  if (!isDirectory(join(dataDir, 'objects')))
    throw new PacsError('ERR_ARCHIVE', `${dataDir} is not an archive's data folder (no objects/ in it)`);
  const next = await readKeyFile(flags.newKey);
  const old = [];
  for (const f of flags.oldKey) old.push(await readKeyFile(f));
  const keyring = makeKeyring(next, old);
  // The archive's modules load only now (src/client.ts says why).
  const { ObjectStore } = await import('../archive/store.js');
  const { rotateKeys } = await import('../archive/key-rotation.js');
  const store = await ObjectStore.open({ dataDir, minFreeBytes: 0 });
  const bar = new Progress<{ fraction: number }>(
    {
      head: () => 'rotate-key',
      tail: (_p, s) => `${s.value} objects`,
      fraction: (p) => p.fraction,
    },
    { fraction: 0 },
  );
  bar.start(0);
  const started = performance.now();
  let report: RotationReport;
  try {
    report = await rotateKeys(store, keyring, {
      onProgress: (p) => bar.update(p.checked, { fraction: p.fraction }, p.checked),
    });
  } finally {
    bar.stop();
  }
  const seconds = (performance.now() - started) / 1000;
  if (flags.json) {
    process.stdout.write(
      `${JSON.stringify({ dataDir, keyId: next.id.toString('hex'), ...report, seconds: Number(seconds.toFixed(3)) }, null, 2)}\n`,
    );
  } else {
    process.stdout.write(
      `rotate-key of ${dataDir} to key ${next.id.toString('hex')}: ${report.checked} objects checked in ${seconds.toFixed(1)} s; ${report.rewrapped} rewrapped, ${report.current} already under the new key, ${report.plain} not encrypted, ${report.failed.length} failed\n`,
    );
    for (const f of report.failed) process.stderr.write(`  ${f.path}: ${f.reason}\n`);
  }
  if (report.failed.length > 0)
    throw new PacsError(
      'ERR_ARCHIVE',
      `${report.failed.length} objects could not be rewrapped (see above); run again once fixed`,
    );
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
