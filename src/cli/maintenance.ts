/**
 * What the maintenance commands (`pacs archive reindex`, `pacs archive compress`) share: the
 * archive of a data folder opened for them, and their log lines written above the progress bar.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PacsError } from '../client.js';
import type { Archive, Logger, OpenArchiveOptions } from '../index.js';

/**
 * The archive of a maintenance command (reindex, compress): refused where there is no archive (a
 * mistyped --data must not create an empty one), its log lines printed above the progress bar.
 */
export async function openMaintenanceArchive(
  options: {
    readonly dataDir: string;
    readonly dbUrl: string | undefined;
    readonly verbose: boolean | undefined;
    readonly minFreeBytes?: number;
    /** More of openArchive's options (a keyring of an encrypted archive...). */
    readonly archive?: Partial<OpenArchiveOptions>;
  },
  bar: { print(line: string): void },
): Promise<{ archive: Archive; logger: Logger }> {
  const { dataDir } = options;
  if (!isDirectory(dataDir)) throw new PacsError('ERR_ARCHIVE', `no data folder at ${dataDir}`);
  if (!isDirectory(join(dataDir, 'objects')) && !existsSync(join(dataDir, 'index.sqlite')))
    throw new PacsError('ERR_ARCHIVE', `${dataDir} is not an archive's data folder (no objects/ in it)`);
  const { default: pino } = await import('pino');
  const logger = pino(
    { level: options.verbose ? 'info' : 'warn', base: null, timestamp: false },
    { write: (line: string) => bar.print(describeLogLine(line)) },
  );
  // The archive (index engines, kysely) loads only now (src/client.ts says why).
  const { openArchive } = await import('../index.js');
  try {
    const archive = await openArchive({
      ...options.archive,
      dataDir,
      ...(options.dbUrl !== undefined ? { dbUrl: options.dbUrl } : {}),
      ...(options.minFreeBytes !== undefined ? { minFreeBytes: options.minFreeBytes } : {}),
      logger,
    });
    return { archive, logger };
  } catch (e) {
    throw new PacsError('ERR_ARCHIVE', `cannot open the archive: ${(e as Error).message}`);
  }
}

export function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** A pino JSON line as "pacs: warning: message (path, SOP Instance UID)". */
function describeLogLine(line: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return `pacs: ${line.trimEnd()}`;
  }
  const level = typeof entry['level'] === 'number' ? entry['level'] : 30;
  const label = level >= 50 ? 'error: ' : level >= 40 ? 'warning: ' : '';
  const details = ['path', 'sopInstanceUid', 'indexedPath', 'missingPath', 'reason', 'count']
    .filter((k) => entry[k] !== undefined)
    .map((k) => `${k} ${String(entry[k])}`);
  const err = entry['err'] as { message?: unknown } | undefined;
  if (typeof err?.message === 'string') details.push(err.message);
  return `pacs: ${label}${String(entry['msg'] ?? '')}${details.length > 0 ? ` (${details.join(', ')})` : ''}`;
}
