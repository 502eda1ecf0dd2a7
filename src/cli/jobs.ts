/**
 * `pacs jobs ls`: the jobs of the queue kept in the index (C-MOVE sub-operations, later forwarding
 * and re-indexing), newest first: state, kind, priority, destination, attempts, progress, last
 * error. Reads the index of a data folder (`--data`, SQLite) or `--db` (SQLite or PostgreSQL),
 * alongside a running server.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { JOB_STATES, PacsError, UsageError } from '../client.js';
import type { Job, JobState } from '../index.js';
import { indexUrlFlag, integerFlag } from './common.js';

interface JobsLsFlags {
  data?: string;
  db?: string;
  json?: boolean;
  state: string[];
  kind?: string;
  limit: string;
}

export function registerJobsCommand(program: Command): void {
  const jobs = program.command('jobs').description('the job queue of an archive');
  jobs
    .command('ls')
    .description('list jobs, newest first')
    .option('--data <dir>', 'data folder whose SQLite index holds the jobs (default ./data)')
    .option('--db <url>', 'index database: sqlite:PATH or postgres://... (instead of --data)')
    .option(
      '--state <state>',
      `only jobs in this state (${JOB_STATES.join(', ')}); repeatable`,
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .option('--kind <kind>', 'only jobs of this kind (e.g. move)')
    .option('--limit <n>', 'at most this many jobs', '100')
    .option('--json', 'print the jobs as JSON')
    .action(async (flags: JobsLsFlags) => {
      await listJobs(flags);
    });
}

async function indexUrl(flags: JobsLsFlags): Promise<string> {
  if (flags.db !== undefined && flags.data !== undefined) throw new UsageError('--data and --db go alone');
  if (flags.db !== undefined) return indexUrlFlag(flags.db);
  const file = join(flags.data ?? './data', 'index.sqlite');
  // Listing must not create an empty archive where there is none.
  if (!existsSync(file)) throw new PacsError('ERR_JOBS', `no index at ${file} (give --data DIR or --db URL)`);
  return `sqlite:${file}`;
}

async function listJobs(flags: JobsLsFlags): Promise<void> {
  for (const s of flags.state)
    if (!JOB_STATES.includes(s as JobState))
      throw new UsageError(`--state: expected one of ${JOB_STATES.join(', ')}, got ${JSON.stringify(s)}`);
  const limit = integerFlag('--limit', flags.limit, 1, 100_000);
  const url = await indexUrl(flags);
  // The index layer loads only now (src/client.ts says why).
  const { jobStoreFor, openIndex } = await import('../index.js');
  let opened: Awaited<ReturnType<typeof openIndex>>;
  try {
    opened = await openIndex(url);
  } catch (e) {
    throw new PacsError('ERR_JOBS', (e as Error).message);
  }
  try {
    const store = jobStoreFor(opened.index);
    const jobs = await store.list({
      limit,
      ...(flags.state.length > 0 ? { states: flags.state as JobState[] } : {}),
      ...(flags.kind !== undefined ? { kind: flags.kind } : {}),
    });
    if (flags.json) process.stdout.write(`${JSON.stringify(jobs, null, 2)}\n`);
    else process.stdout.write(table(jobs));
  } finally {
    await opened.index.close();
  }
}

/** "45/100, 2 failed" from a result that has sub-operation counts; "" otherwise. */
function progressOf(result: unknown): string {
  if (typeof result !== 'object' || result === null) return '';
  const r = result as Record<string, unknown>;
  const n = (k: string) => (typeof r[k] === 'number' ? (r[k] as number) : undefined);
  const completed = n('completed');
  if (completed === undefined) return '';
  const failed = n('failed') ?? 0;
  const warning = n('warning') ?? 0;
  const done = completed + failed + warning;
  const total = done + (n('remaining') ?? 0);
  return `${done}/${total}${failed > 0 ? `, ${failed} failed` : ''}${warning > 0 ? `, ${warning} warning` : ''}`;
}

function time(d: Date | null): string {
  return d === null ? '' : d.toISOString().replace('T', ' ').slice(0, 19);
}

function table(jobs: readonly Job[]): string {
  if (jobs.length === 0) return 'no jobs\n';
  const heads = [
    'ID',
    'STATE',
    'KIND',
    'PRIORITY',
    'DESTINATION',
    'ATTEMPTS',
    'UPDATED',
    'PROGRESS',
    'ERROR',
  ];
  const rows = jobs.map((j) => [
    String(j.id),
    j.state === 'queued' && j.attempts > 0 ? `queued (retry ${time(j.nextRunAt)})` : j.state,
    j.kind,
    String(j.priority),
    j.destination ?? '',
    `${j.attempts}/${j.maxAttempts}`,
    time(j.updatedAt),
    progressOf(j.result),
    (j.lastError ?? '').replace(/\s+/g, ' ').slice(0, 60),
  ]);
  const widths = heads.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return `${[line(heads), ...rows.map(line)].join('\n')}\n`;
}
