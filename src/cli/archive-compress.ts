/**
 * `pacs archive compress`: compression at rest applied to what is already stored (the work of the
 * server's 'compress' jobs, archive/compression/compress.ts, object by object): each native
 * object the policy names is transcoded into a lossless syntax, verified (decoded back and
 * compared, every other attribute unchanged), switched in the index, and only then its original
 * removed. Reports the objects compressed, skipped (with why) and failed, and the disk saved.
 *
 * The policy is `--ts` (for every modality, or those of `--modality`), else the config file's
 * `storage.compression*` settings. Beside a running server that serves the same archive, give
 * `--remove-delay` so that its retrieves in flight keep finding the originals a while.
 */
import { performance } from 'node:perf_hooks';
import type { Command } from 'commander';
import { PacsError, UsageError } from '../client.js';
import type { CompressionPolicy, CompressionTarget, CompressOutcome, SkipCode } from '../index.js';
import { indexUrlFlag, integerFlag } from './common.js';
import { openMaintenanceArchive } from './maintenance.js';
import { formatMB, Progress } from './progress.js';

interface CompressFlags {
  ts?: string;
  modality?: string;
  minBytes?: string;
  config?: string;
  data?: string;
  db?: string;
  json?: boolean;
  dryRun?: boolean;
  removeDelay: string;
  verbose?: boolean;
}

/** The --json report. */
export interface CompressReport {
  readonly dataDir: string;
  readonly dryRun: boolean;
  readonly policy: CompressionPolicy;
  readonly objects: number;
  readonly compressed: number;
  /** Dry run: the objects that would be compressed. */
  readonly eligible: number;
  readonly skipped: number;
  readonly skippedBy: Partial<Record<SkipCode, number>>;
  readonly failed: number;
  readonly failures: ReadonlyArray<{ readonly sopInstanceUid: string; readonly reason: string }>;
  /** File sizes of the objects compressed (dry run: of those that would be), before and after. */
  readonly bytesBefore: number;
  readonly bytesAfter: number;
  readonly bytesSaved: number;
  /** bytesBefore / bytesAfter (0 when nothing was compressed). */
  readonly ratio: number;
  readonly seconds: number;
}

const TARGETS = ['jpeg-ls-lossless', 'j2k-lossless', 'htj2k-lossless'];

export function registerCompressCommand(archive: Command): void {
  archive
    .command('compress')
    .description(
      'compress the stored native objects losslessly (verified before they replace the originals) and report the disk saved',
    )
    .option('--ts <syntax>', `target: ${TARGETS.join(', ')} (default: the config's storage.compression)`)
    .option('--modality <list>', 'only objects of these modalities, comma separated (e.g. CT,MR)')
    .option('--min-bytes <n>', 'leave objects whose file is smaller than this')
    .option(
      '--config <file>',
      'take the policy (storage.compression*), data folder and index from this config',
    )
    .option('--data <dir>', 'the data folder (default ./data)')
    .option(
      '--db <url>',
      'index database: sqlite:PATH or postgres://... (default: SQLite in the data folder)',
    )
    .option('--json', 'print the report as JSON on standard output')
    .option('--dry-run', 'only tell what would be compressed')
    .option(
      '--remove-delay <seconds>',
      'keep each original this long after the switch (a server serving this archive may be retrieving it)',
      '0',
    )
    .option('--verbose', 'also print one line per object compressed')
    .action(async (flags: CompressFlags) => {
      await compress(flags);
    });
}

async function compress(flags: CompressFlags): Promise<void> {
  const removeDelay = integerFlag('--remove-delay', flags.removeDelay, 0, 86400);
  const { policy, dataDir, dbUrl } = await policyAndArchive(flags);
  const lib = await import('../index.js');
  const bar = new Progress<{ done: number; saved: number } | undefined>(
    {
      head: () => (flags.dryRun ? 'compress (dry run)' : 'compress'),
      tail: (p, s) =>
        `${s.value}/${s.total} objects${p && p.saved > 0 ? `, ${formatMB(p.saved)} saved` : ''}`,
      barless: (p) => p === undefined,
    },
    undefined,
  );
  const { archive, logger } = await openMaintenanceArchive({ dataDir, dbUrl, verbose: flags.verbose }, bar);
  const removals = new lib.DelayedRemovals(archive, removeDelay * 1000, logger);
  const started = performance.now();
  const counts = {
    objects: 0,
    compressed: 0,
    eligible: 0,
    skipped: 0,
    failed: 0,
    bytesBefore: 0,
    bytesAfter: 0,
  };
  const skippedBy: Partial<Record<SkipCode, number>> = {};
  const failures: Array<{ sopInstanceUid: string; reason: string }> = [];
  try {
    const total = await archive.index.countInstances();
    bar.start(total);
    // Rows switched to a new file may come again later in path order: those are ours, not new work.
    const made = new Set<string>();
    const transcode = lib.storeTranscoder();
    const decode = lib.pooledDecoder();
    for await (const file of archive.index.listInstanceFiles()) {
      if (made.has(file.path)) continue;
      counts.objects++;
      let outcome: CompressOutcome;
      try {
        outcome = await lib.compressInstance(archive, file.sopInstanceUid, {
          policy,
          transcode,
          decode,
          removeOriginal: (p) => removals.schedule(p),
          ...(flags.dryRun ? { dryRun: true } : {}),
        });
      } catch (e) {
        throw new PacsError(
          'ERR_ARCHIVE',
          `compressing ${file.sopInstanceUid} failed: ${(e as Error).message}; the objects compressed so far stay compressed`,
        );
      }
      switch (outcome.status) {
        case 'compressed':
          made.add(outcome.after.path);
          counts.compressed++;
          counts.bytesBefore += outcome.before.size;
          counts.bytesAfter += outcome.after.size;
          logger.info(
            {
              sopInstanceUid: outcome.sopInstanceUid,
              path: outcome.after.path,
              reason: `${outcome.before.size} -> ${outcome.after.size} bytes`,
            },
            `compressed into ${outcome.after.transferSyntaxUid}`,
          );
          break;
        case 'eligible':
          counts.eligible++;
          counts.bytesBefore += outcome.before.size;
          break;
        case 'skipped':
          counts.skipped++;
          skippedBy[outcome.code] = (skippedBy[outcome.code] ?? 0) + 1;
          break;
        case 'failed':
          counts.failed++;
          failures.push({ sopInstanceUid: outcome.sopInstanceUid, reason: outcome.reason });
          logger.warn(
            { sopInstanceUid: outcome.sopInstanceUid, reason: outcome.reason },
            'not compressed, kept as it was',
          );
          break;
      }
      bar.update(counts.objects, { done: counts.objects, saved: counts.bytesBefore - counts.bytesAfter });
    }
    bar.stop();
    if (removals.pending > 0) {
      if (!flags.json) process.stderr.write(`pacs: removing the originals in ${removeDelay} s\n`);
      await new Promise((resolve) => setTimeout(resolve, removeDelay * 1000));
    }
    await removals.flush();
  } finally {
    bar.stop();
    await removals.flush();
    await archive.close();
    await lib.closeCompressionPools();
  }
  const seconds = (performance.now() - started) / 1000;
  const after = flags.dryRun ? 0 : counts.bytesAfter;
  const report: CompressReport = {
    dataDir,
    dryRun: flags.dryRun === true,
    policy,
    ...counts,
    bytesAfter: after,
    skippedBy,
    failures,
    bytesSaved: flags.dryRun ? 0 : counts.bytesBefore - after,
    ratio: after > 0 ? Number((counts.bytesBefore / after).toFixed(3)) : 0,
    seconds: Number(seconds.toFixed(3)),
  };
  if (flags.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else process.stdout.write(`${summary(report)}\n`);
  if (report.failed > 0)
    throw new PacsError(
      'ERR_ARCHIVE',
      `${report.failed} object${report.failed === 1 ? '' : 's'} could not be compressed (kept as they were): ${failures[0]?.reason ?? ''}`,
    );
}

/** The policy from the flags or the config, and where the archive is. */
async function policyAndArchive(
  flags: CompressFlags,
): Promise<{ policy: CompressionPolicy; dataDir: string; dbUrl: string | undefined }> {
  const { isCompressionTarget, loadConfig, policyCompresses, policyOf } = await import('../index.js');
  if (flags.ts !== undefined && (!isCompressionTarget(flags.ts) || flags.ts === 'none'))
    throw new UsageError(`--ts: expected one of ${TARGETS.join(', ')}, got ${JSON.stringify(flags.ts)}`);
  const modalities = flags.modality?.split(',').map((m) => m.trim());
  for (const m of modalities ?? [])
    if (!/^[A-Z0-9_ ]{1,16}$/.test(m))
      throw new UsageError(
        `--modality: ${JSON.stringify(m)} is not a Modality code (capitals, digits, underscore)`,
      );
  const minBytes =
    flags.minBytes !== undefined
      ? integerFlag('--min-bytes', flags.minBytes, 0, Number.MAX_SAFE_INTEGER)
      : undefined;
  let base: CompressionPolicy = { target: 'none' };
  let dataDir = flags.data;
  let dbUrl = flags.db;
  if (flags.config !== undefined) {
    const loaded = loadConfig({ file: flags.config });
    if (!loaded.ok) throw loaded.error;
    base = policyOf(loaded.value.storage);
    dataDir ??= loaded.value.data.dir;
    dbUrl ??= loaded.value.db.url;
  }
  if (dbUrl !== undefined) await indexUrlFlag(dbUrl);
  const target = flags.ts as CompressionTarget | undefined;
  let policy: CompressionPolicy = target !== undefined ? { target } : base;
  if (modalities) {
    const only: Record<string, CompressionTarget> = {};
    for (const m of modalities) only[m] = target ?? base.byModality?.[m] ?? base.target;
    policy = { target: 'none', byModality: only };
  }
  policy = { ...policy, minBytes: minBytes ?? base.minBytes ?? 0 };
  if (!policyCompresses(policy))
    throw new UsageError(
      flags.config !== undefined
        ? `nothing to compress: the config's storage.compression is "none" for ${modalities ? 'these modalities' : 'every modality'}; give --ts`
        : 'give --ts SYNTAX (or --config FILE with storage.compression set)',
    );
  return { policy, dataDir: dataDir ?? './data', dbUrl };
}

const REASONS: Record<SkipCode, string> = {
  'already-compressed': 'already compressed',
  'no-pixel-data': 'no pixel data',
  'float-pixel-data': 'float pixel data',
  'unsupported-pixels': 'unsupported pixel data',
  modality: 'modality not compressed',
  'too-small': 'under the minimum size',
  'not-smaller': 'not smaller compressed',
  changed: 'changed meanwhile',
  'not-archived': 'deleted meanwhile',
};

function summary(r: CompressReport): string {
  const n = (count: number, one: string, many = `${one}s`) => `${count} ${count === 1 ? one : many}`;
  const head = `compress of ${r.dataDir}${r.dryRun ? ' (dry run)' : ''}: ${n(r.objects, 'object')} checked in ${r.seconds.toFixed(1)} s`;
  const skipped = Object.entries(r.skippedBy)
    .map(([code, count]) => `${REASONS[code as SkipCode]} ${count}`)
    .join(', ');
  const done = r.dryRun
    ? `${r.eligible} would be compressed (${formatMB(r.bytesBefore)} now)`
    : r.compressed === 0
      ? '0 compressed'
      : `${r.compressed} compressed (${formatMB(r.bytesBefore)} -> ${formatMB(r.bytesAfter)}, ratio ${r.ratio.toFixed(2)}:1, ${formatMB(r.bytesSaved)} saved)`;
  return `${head}; ${done}, ${r.skipped} skipped${skipped ? ` (${skipped})` : ''}, ${r.failed} failed`;
}
