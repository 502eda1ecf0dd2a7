/**
 * `pacs store`: sends files and folders to a Storage SCP with C-STORE, like DCMTK's storescu.
 * Headers are read first (what to propose, how many objects and bytes); the files then go over as
 * few associations as the 128-context limit allows, each streamed from disk. A new association
 * is opened when the peer ends one. A progress bar is drawn on standard error when it is a
 * terminal; a summary (or with --json a report) follows. Exit 0 only when every object was
 * stored (warning statuses count as stored); files that are not DICOM are skipped with a warning.
 */
import { readdir, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Command } from 'commander';
import {
  describeStatus,
  PacsError,
  planAssociations,
  readFileInfo,
  statusCategory,
  storeFile,
} from '../client.js';
import type { AssociationPlan, DimseAssociation, FileInfo, StoreError } from '../index.js';
import {
  addConnectionOptions,
  type Connection,
  type ConnectionFlags,
  connectTo,
  describeNetworkFailure,
  parseConnection,
  requestorFor,
} from './common.js';
import { formatDuration, formatMB, Progress } from './progress.js';

interface StoreFlags extends ConnectionFlags {
  json?: boolean;
  transcode?: string;
}

/** One file of the --json report. */
export interface StoreFileReport {
  path: string;
  sopInstanceUid: string | null;
  /** The peer's DIMSE status; null when the file failed before the peer answered. */
  status: number | null;
  /** The status in words, or why there is none. */
  statusText: string;
  errorComment?: string;
  /** The transfer syntax it was sent in, and whether its data set was re-encoded for that. */
  transferSyntaxUid?: string;
  reencoded?: boolean;
}

/** The --json report. */
export interface StoreReport {
  /** Objects the peer stored: success or warning status. */
  sent: number;
  /** Of those, how many with a warning status. */
  warnings: number;
  /** Objects not stored. */
  failed: number;
  files: StoreFileReport[];
  /** Files that are not DICOM objects, left out. */
  skipped: { path: string; reason: string }[];
}

export function registerStoreCommand(program: Command): void {
  addConnectionOptions(
    program
      .command('store')
      .description(
        'send DICOM files to a Storage SCP (C-STORE), like storescu; folders are searched recursively',
      ),
  )
    .argument('<path...>', 'DICOM files and folders')
    .option('--json', 'print a machine-readable report on standard output')
    .option(
      '--transcode <mode>',
      "when the peer does not accept an object's compressed syntax: 'lossless' (default) or 'lossy' (JPEG baseline allowed)",
    )
    .action(async (host: string, port: string, paths: string[], flags: StoreFlags) => {
      await runStore(host, port, paths, flags);
    });
}

/** Header reads running at once while scanning. */
const SCAN_CONCURRENCY = 8;
/** Associations in a row that end without storing anything before the rest is given up. */
const MAX_FRUITLESS_ASSOCIATIONS = 3;

async function runStore(host: string, portText: string, paths: string[], flags: StoreFlags): Promise<void> {
  const conn = parseConnection(host, portText, flags);
  if (flags.transcode !== undefined && flags.transcode !== 'lossless' && flags.transcode !== 'lossy')
    throw new PacsError('ERR_USAGE', `--transcode: expected lossless or lossy, not ${flags.transcode}`);
  const transcode = { lossy: flags.transcode === 'lossy' };
  const warn = (line: string): void => {
    process.stderr.write(`pacs: warning: ${line}\n`);
  };

  // 1. Find the files and read their headers.
  const candidates: string[] = [];
  for (const p of paths) await collect(p, candidates);
  const reports = new Map<string, StoreFileReport>();
  const skipped: StoreReport['skipped'] = [];
  const infos: FileInfo[] = [];
  const results = await mapLimit(candidates, SCAN_CONCURRENCY, readFileInfo);
  for (const [i, r] of results.entries()) {
    const path = candidates[i] as string;
    if (r.ok) {
      infos.push(r.value);
      continue;
    }
    if (r.error.code === 'ERR_NOT_DICOM' || r.error.code === 'ERR_NOT_STORABLE') {
      skipped.push({ path, reason: r.error.message });
      warn(`skipped ${path}: ${r.error.message}`);
    } else {
      reports.set(path, { path, sopInstanceUid: null, status: null, statusText: r.error.message });
    }
  }
  if (infos.length === 0 && reports.size === 0)
    throw new PacsError('ERR_STORE', `no DICOM objects to send in ${paths.join(', ')}`);

  // 2. Send them, one association per plan (a new one when the peer ends it).
  const totalBytes = infos.reduce((n, f) => n + f.size, 0);
  const progress = new StoreProgress(infos.length, totalBytes);
  const started = performance.now();
  let stoppedBy: string | undefined;
  let connectedOnce = false;
  const plans = infos.length > 0 ? planAssociations(infos) : [];
  try {
    for (const plan of plans) {
      const outcome = await sendPlan(conn, plan, reports, progress, transcode);
      connectedOnce ||= outcome.connected;
      if (outcome.stoppedBy !== undefined) {
        stoppedBy = outcome.stoppedBy;
        break;
      }
    }
  } finally {
    progress.clear();
  }
  if (stoppedBy !== undefined && !connectedOnce)
    throw new PacsError('ERR_STORE', `C-STORE to ${conn.target}: ${stoppedBy}`);
  for (const f of infos) {
    if (!reports.has(f.path))
      reports.set(f.path, {
        path: f.path,
        sopInstanceUid: f.sopInstanceUid,
        status: null,
        statusText: `not sent: ${stoppedBy ?? 'stopped'}`,
      });
  }

  // 3. Report.
  const files = candidates.flatMap((p) => {
    const r = reports.get(p);
    return r ? [r] : [];
  });
  const stored = files.filter((f) => f.status !== null && isStored(f.status));
  const warnings = stored.filter((f) => statusCategory(f.status ?? 0) === 'warning');
  const failed = files.filter((f) => !stored.includes(f));
  const report: StoreReport = {
    sent: stored.length,
    warnings: warnings.length,
    failed: failed.length,
    files,
    skipped,
  };
  const seconds = (performance.now() - started) / 1000;
  if (flags.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else process.stdout.write(summary(conn, report, progress.bytesDone, seconds));
  if (failed.length > 0) {
    const why = stoppedBy !== undefined ? ` (${stoppedBy})` : '';
    throw new PacsError(
      'ERR_STORE',
      `C-STORE to ${conn.target}: ${failed.length} of ${files.length} objects not stored${why}`,
    );
  }
}

function isStored(status: number): boolean {
  const c = statusCategory(status);
  return c === 'success' || c === 'warning';
}

/** Sends one plan's files; reconnects when the peer ends the association part-way. */
async function sendPlan(
  conn: Connection,
  plan: AssociationPlan,
  reports: Map<string, StoreFileReport>,
  progress: StoreProgress,
  transcode: { lossy: boolean },
): Promise<{ connected: boolean; stoppedBy?: string }> {
  const ae = requestorFor(conn);
  const pending = [...plan.files];
  let connected = false;
  let fruitless = 0;
  while (pending.length > 0) {
    const opened = await connectTo(ae, conn, plan.contexts);
    if (!opened.ok) return { connected, stoppedBy: opened.error };
    connected = true;
    const assoc = opened.value;
    let storedHere = 0;
    let lastFailure: string | undefined;
    while (pending.length > 0 && assoc.canSend) {
      const file = pending.shift() as FileInfo;
      progress.startFile();
      const r = await storeFile(assoc, file, { onBytes: (n) => progress.addBytes(n), transcode });
      progress.fileDone(file.size);
      if (r.ok) {
        const { status, errorComment, transferSyntaxUid, reencoded } = r.value;
        reports.set(file.path, {
          path: file.path,
          sopInstanceUid: file.sopInstanceUid,
          status,
          statusText: describeStatus(status),
          ...(errorComment !== undefined ? { errorComment } : {}),
          transferSyntaxUid,
          reencoded,
        });
        if (isStored(status)) storedHere++;
        continue;
      }
      const reason = failureText(r.error, conn);
      lastFailure = reason;
      reports.set(file.path, {
        path: file.path,
        sopInstanceUid: file.sopInstanceUid,
        status: null,
        statusText: reason,
      });
    }
    await endAssociation(assoc);
    fruitless = storedHere > 0 ? 0 : fruitless + 1;
    if (pending.length > 0 && fruitless >= MAX_FRUITLESS_ASSOCIATIONS)
      return {
        connected,
        stoppedBy: `${MAX_FRUITLESS_ASSOCIATIONS} associations in a row ended without storing anything${lastFailure ? `; last: ${lastFailure}` : ''}`,
      };
  }
  return { connected };
}

function failureText(e: StoreError, conn: Connection): string {
  if (e.code === 'ERR_ASSOCIATION' && e.cause instanceof PacsError)
    return describeNetworkFailure(e.cause, conn.useTls, conn.timeoutSeconds);
  return e.message;
}

/** Releases an association still open; one that ended already is left as it is. */
async function endAssociation(assoc: DimseAssociation): Promise<void> {
  if (assoc.canSend) await assoc.release().catch(() => assoc.abort());
  else await assoc.run().catch(() => undefined);
}

/** Adds PATH to the list: a file as it is, a folder's files recursively (sorted, symlinked folders once). */
async function collect(path: string, out: string[], seen = new Set<string>()): Promise<void> {
  let s: Awaited<ReturnType<typeof stat>>;
  try {
    s = await stat(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new PacsError(
      'ERR_STORE',
      `${path}: ${code === 'ENOENT' ? 'no such file or directory' : (e as Error).message}`,
    );
  }
  if (!s.isDirectory()) {
    out.push(path);
    return;
  }
  const real = await realpath(path);
  if (seen.has(real)) return;
  seen.add(real);
  let names: string[];
  try {
    names = (await readdir(path)).sort();
  } catch (e) {
    throw new PacsError('ERR_STORE', `${path}: ${(e as Error).message}`);
  }
  for (const name of names) await collect(join(path, name), out, seen);
}

/** fn over items with at most `limit` running at once; results in the items' order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

function summary(conn: Connection, report: StoreReport, bytes: number, seconds: number): string {
  const lines: string[] = [];
  const warned = report.warnings > 0 ? ` (${report.warnings} with a warning)` : '';
  const skipped = report.skipped.length > 0 ? `, ${report.skipped.length} skipped` : '';
  lines.push(
    `C-STORE to ${conn.target}: ${report.sent} stored${warned}, ${report.failed} failed${skipped}; ` +
      `${formatSize(bytes)} in ${seconds.toFixed(1)} s (${formatMB(bytes / Math.max(seconds, 0.001))}/s)`,
  );
  for (const f of report.files) {
    const category = f.status === null ? 'failure' : statusCategory(f.status);
    if (category === 'success') continue;
    const label = category === 'warning' ? 'warning' : 'failed ';
    const comment = f.errorComment ? `: ${f.errorComment}` : '';
    lines.push(`  ${label} ${f.path}: ${f.statusText}${comment}`);
  }
  return `${lines.join('\n')}\n`;
}

function formatSize(bytes: number): string {
  return bytes < 1e6 ? `${(bytes / 1e3).toFixed(1)} kB` : formatMB(bytes);
}

/** Objects done/total, a bar by bytes, MB/s and time left, on the CLI's progress display. */
class StoreProgress {
  bytesDone = 0;
  private objectsDone = 0;
  /** Bytes of the file being sent, counted so far (to undo a partial count). */
  private fileBytes = 0;
  private readonly progress: Progress<null>;

  constructor(totalObjects: number, totalBytes: number) {
    this.progress = new Progress<null>(
      {
        head: () => `${this.objectsDone}/${totalObjects} objects`,
        tail: (_p, s) => {
          const rate = s.seconds > 0 ? s.value / s.seconds : 0;
          const left = Number.isFinite(s.eta) ? `${formatDuration(s.eta)} left` : '--:-- left';
          return ` ${formatMB(rate)}/s  ${left}`;
        },
      },
      null,
    );
    this.progress.start(totalBytes);
  }

  startFile(): void {
    this.fileBytes = 0;
  }

  addBytes(n: number): void {
    this.fileBytes += n;
    this.bytesDone += n;
    this.progress.update(this.bytesDone);
  }

  /** A file is over (sent or not): count it whole, so the total stays right. */
  fileDone(size: number): void {
    this.bytesDone += size - this.fileBytes;
    this.fileBytes = 0;
    this.objectsDone++;
    this.progress.update(this.bytesDone);
  }

  clear(): void {
    this.progress.stop();
  }
}
