/**
 * `pacs archive reindex`: the start-up reconcile of `pacs server` on demand (ISSUE 4): removes
 * leftover temporary files, indexes object files that have no index row, removes files whose SOP
 * Instance UID is indexed under another file, and removes index rows whose file is missing.
 *
 * It may run beside a server that uses the same data folder and index: files younger than the
 * grace period (default 10 minutes) are left alone, as they may be objects in flight (a
 * temporary file being received, an object renamed into place and not yet indexed). Rows are only
 * removed when their file is missing, which a running server never causes for an acknowledged object.
 */
import { performance } from 'node:perf_hooks';
import type { Command } from 'commander';
import { PacsError } from '../client.js';
import type { ReconcileProgress, ReconcileReport } from '../index.js';
import { registerCompressCommand } from './archive-compress.js';
import { registerKeyCommands } from './archive-keys.js';
import { indexUrlFlag, integerFlag } from './common.js';
import { openMaintenanceArchive } from './maintenance.js';
import { Progress } from './progress.js';

interface ReindexFlags {
  data?: string;
  db?: string;
  grace: string;
  json?: boolean;
  verbose?: boolean;
  keyFile: string[];
}

/** The --json report: the reconcile report, where, and how long it took. */
export interface ReindexReport extends ReconcileReport {
  readonly dataDir: string;
  /** Repairs made: temporary files, files indexed, duplicate files and rows removed. */
  readonly repaired: number;
  readonly seconds: number;
}

/** Default grace: longer than the server's default idle timeout (300 s), so a stalled transfer's temp file survives. */
const DEFAULT_GRACE_SECONDS = 600;

export function registerArchiveCommand(program: Command): void {
  const archive = program.command('archive').description('maintenance of an archive (data folder and index)');
  archive
    .command('reindex')
    .description('bring the index and the object files back in agreement (what pacs server does at start-up)')
    .option('--data <dir>', 'the data folder (default ./data)')
    .option(
      '--db <url>',
      'index database: sqlite:PATH or postgres://... (default: SQLite in the data folder)',
    )
    .option(
      '--grace <seconds>',
      'leave temporary and unindexed files younger than this alone (a running server may be writing them); 0 when no server runs',
      String(DEFAULT_GRACE_SECONDS),
    )
    .option('--json', 'print the report as JSON on standard output')
    .option('--verbose', 'also print one line per object file indexed')
    .option(
      '--key-file <file>',
      'a key-encryption key of an encrypted archive (storage.encryption.keyFile; repeatable)',
      (v: string, all: string[]) => [...all, v],
      [] as string[],
    )
    .action(async (flags: ReindexFlags) => {
      await reindex(flags);
    });
  registerCompressCommand(archive);
  registerKeyCommands(archive);
}

async function reindex(flags: ReindexFlags): Promise<void> {
  const graceSeconds = integerFlag('--grace', flags.grace, 0, 10 * 365 * 86400);
  if (flags.db !== undefined) await indexUrlFlag(flags.db);
  const dataDir = flags.data ?? './data';
  const bar = new Progress<ReconcileProgress | undefined>(
    {
      head: () => 'reindex',
      tail: (p, s) =>
        p?.phase === 'temp' ? 'removing temporary files' : `${s.value}/${s.total} files checked`,
      barless: (p) => p === undefined,
      fraction: (p) => p?.fraction ?? 0,
    },
    undefined,
  );
  const [current, ...previous] = flags.keyFile;
  const { loadKeyring } = await import('../index.js');
  const keyring = current !== undefined ? await loadKeyring(current, previous) : undefined;
  // The floor only matters to new objects; reindex writes none.
  const { archive } = await openMaintenanceArchive(
    {
      dataDir,
      dbUrl: flags.db,
      verbose: flags.verbose,
      minFreeBytes: 0,
      ...(keyring ? { archive: { keyring } } : {}),
    },
    bar,
  );
  const started = performance.now();
  let report: ReconcileReport;
  try {
    let total = await archive.index.countInstances();
    bar.start(total);
    report = await archive.reconcile({
      graceMs: graceSeconds * 1000,
      onProgress: (p) => {
        total = Math.max(total, p.filesChecked);
        bar.update(p.filesChecked, p, total);
      },
    });
  } catch (e) {
    bar.stop();
    throw new PacsError('ERR_ARCHIVE', `reindex of ${dataDir} failed: ${(e as Error).message}`);
  } finally {
    await archive.close();
  }
  bar.stop();
  const repaired =
    report.tempFilesRemoved + report.filesIndexed + report.duplicateFilesRemoved + report.rowsRemoved;
  const seconds = (performance.now() - started) / 1000;
  if (flags.json) {
    const full: ReindexReport = { dataDir, ...report, repaired, seconds: Number(seconds.toFixed(3)) };
    process.stdout.write(`${JSON.stringify(full, null, 2)}\n`);
  } else process.stdout.write(`${summary(dataDir, report, repaired, seconds)}\n`);
}

function summary(dataDir: string, r: ReconcileReport, repaired: number, seconds: number): string {
  const n = (count: number, one: string, many = `${one}s`) => `${count} ${count === 1 ? one : many}`;
  const head = `reindex of ${dataDir}: ${n(r.filesChecked, 'file')} and ${n(r.rowsChecked, 'index row')} checked in ${seconds.toFixed(1)} s`;
  if (repaired === 0 && r.unreadableFiles.length === 0) return `${head}; nothing to repair`;
  const parts = [
    r.tempFilesRemoved > 0 ? `${n(r.tempFilesRemoved, 'temporary file')} removed` : '',
    r.filesIndexed > 0 ? `${n(r.filesIndexed, 'file')} indexed` : '',
    r.duplicateFilesRemoved > 0 ? `${n(r.duplicateFilesRemoved, 'duplicate file')} removed` : '',
    r.rowsRemoved > 0 ? `${n(r.rowsRemoved, 'row')} without a file removed` : '',
    r.unreadableFiles.length > 0 ? `${n(r.unreadableFiles.length, 'unreadable file')} left in place` : '',
  ].filter((p) => p !== '');
  return `${head}; ${parts.join(', ')}`;
}
