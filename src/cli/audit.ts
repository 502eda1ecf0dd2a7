/**
 * `pacs audit`: the audit trail kept in the index (security/audit/, PS3.15 A.5 messages), newest
 * first, filtered by time, user, patient and EventID; `--json` prints one JSON object per message
 * (EventID code, action, outcome, participants, objects). Reads the index of a data folder
 * (`--data`, SQLite) or `--db` (SQLite or PostgreSQL), alongside a running server.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { PacsError, UsageError } from '../client.js';
import { indexUrlFlag, integerFlag } from './common.js';
import { renderTable } from './table.js';

interface AuditFlags {
  data?: string;
  db?: string;
  since?: string;
  user?: string;
  patient?: string;
  event?: string;
  limit: string;
  json?: boolean;
}

export function registerAuditCommand(program: Command): void {
  program
    .command('audit')
    .description('list the audit trail (DICOM audit messages), newest first')
    .option('--data <dir>', 'data folder whose SQLite index holds the trail (default ./data)')
    .option('--db <url>', 'index database: sqlite:PATH or postgres://... (instead of --data)')
    .option(
      '--since <when>',
      'only messages since this time: ISO 8601, or a duration back from now (30m, 12h, 7d)',
    )
    .option('--user <name>', 'only messages whose requesting participant is this user or AE')
    .option('--patient <id>', 'only messages about this Patient ID')
    .option('--event <code>', 'only messages with this EventID code (e.g. 110112 for queries)')
    .option('--limit <n>', 'at most this many messages', '100')
    .option('--json', 'one JSON object per message')
    .action(async (flags: AuditFlags) => {
      await listAudit(flags);
    });
}

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `--since`: an ISO 8601 time, or a duration (`90s`, `30m`, `12h`, `7d`, `2w`) back from now. */
export function parseSince(text: string, now = new Date()): Date {
  const d = /^(\d+)([smhdw])$/.exec(text.trim());
  if (d !== null) return new Date(now.getTime() - Number(d[1]) * (UNITS[d[2] as string] as number));
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const t = new Date(text);
    if (!Number.isNaN(t.getTime())) return t;
  }
  throw new UsageError(
    `--since: expected an ISO 8601 time or a duration such as 30m, 12h, 7d, got ${JSON.stringify(text)}`,
  );
}

async function indexUrl(flags: AuditFlags): Promise<string> {
  if (flags.db !== undefined && flags.data !== undefined) throw new UsageError('--data and --db go alone');
  if (flags.db !== undefined) return indexUrlFlag(flags.db);
  const file = join(flags.data ?? './data', 'index.sqlite');
  if (!existsSync(file))
    throw new PacsError('ERR_AUDIT', `no index at ${file} (give --data DIR or --db URL)`);
  return `sqlite:${file}`;
}

async function listAudit(flags: AuditFlags): Promise<void> {
  const limit = integerFlag('--limit', flags.limit, 1, 1_000_000);
  if (flags.event !== undefined && !/^[A-Za-z0-9-]+$/.test(flags.event))
    throw new UsageError(
      `--event: expected an EventID code such as 110112, got ${JSON.stringify(flags.event)}`,
    );
  const since = flags.since !== undefined ? parseSince(flags.since) : undefined;
  const url = await indexUrl(flags);
  // The index layer loads only now (src/client.ts says why).
  const { openIndex, queryAudit } = await import('../index.js');
  let opened: Awaited<ReturnType<typeof openIndex>>;
  try {
    opened = await openIndex(url);
  } catch (e) {
    throw new PacsError('ERR_AUDIT', (e as Error).message);
  }
  try {
    const records = await queryAudit(opened.index, {
      limit,
      ...(since !== undefined ? { since } : {}),
      ...(flags.user !== undefined ? { user: flags.user } : {}),
      ...(flags.patient !== undefined ? { patientId: flags.patient } : {}),
      ...(flags.event !== undefined ? { eventId: flags.event } : {}),
    });
    if (flags.json) {
      for (const r of records)
        process.stdout.write(
          `${JSON.stringify({
            time: r.eventTime.toISOString(),
            ...r.summary,
            user: r.userName,
            patientId: r.patientId,
            studyInstanceUid: r.studyInstanceUid,
            remoteAddress: r.remoteAddress,
          })}\n`,
        );
      return;
    }
    const rows = records.map((r) => [
      r.eventTime.toISOString().replace('T', ' ').slice(0, 19),
      `${r.eventId} ${r.summary.eventId.meaning}${r.summary.eventTypes[0] !== undefined ? ` (${r.summary.eventTypes[0].meaning})` : ''}`,
      String(r.outcome),
      r.userName ?? '',
      r.patientId ?? '',
      r.studyInstanceUid ?? '',
    ]);
    const heads = ['TIME', 'EVENT', 'OUTCOME', 'USER', 'PATIENT', 'STUDY'];
    process.stdout.write(renderTable(heads, rows, `${records.length} audit message(s)`));
  } finally {
    await opened.index.close();
  }
}

/** A worklist item created, replaced or removed by a command (`pacs worklist import|rm`). */
export interface OrderChange {
  readonly action: 'create' | 'update' | 'delete';
  readonly patientId?: string;
  readonly patientName?: string;
  readonly studyInstanceUid?: string;
  readonly accessionNumber?: string;
}

/**
 * Order Records (PS3.15 A.5.3.6) of worklist changes a command made on the index directly: kept
 * in the index's audit trail, the command's OS user as the requestor. (Only the server sends to
 * the Audit Record Repositories; these are read with `pacs audit`.)
 */
export async function recordOrderChanges(url: string, changes: readonly OrderChange[]): Promise<void> {
  if (changes.length === 0) return;
  const { hostname, userInfo } = await import('node:os');
  const { auditRecordOf, auditStoreOf, openIndex, orderRecord } = await import('../index.js');
  const host = hostname();
  const source = {
    aeTitle: 'pacs',
    sourceId: `pacs@${host}`,
    hostName: host,
    processId: String(process.pid),
  };
  const user = userInfo().username;
  const records = changes.map((c) =>
    auditRecordOf(orderRecord(source, { type: 'order-record', record: 'worklist', user, ...c })),
  );
  const { index } = await openIndex(url);
  try {
    await auditStoreOf(index).add(records);
  } finally {
    await index.close();
  }
}

/** The audit fields of a worklist item (DICOM JSON). */
export function orderFieldsOf(
  item: Record<string, { Value?: unknown[] } | undefined>,
): Omit<OrderChange, 'action'> {
  const first = (tag: string): unknown => item[tag]?.Value?.[0];
  const text = (tag: string): string | undefined => {
    const v = first(tag);
    return typeof v === 'string' && v !== '' ? v : undefined;
  };
  const pn = first('00100010') as { Alphabetic?: string } | undefined;
  const patientId = text('00100020');
  const studyInstanceUid = text('0020000D');
  const accessionNumber = text('00080050');
  return {
    ...(patientId !== undefined ? { patientId } : {}),
    ...(pn?.Alphabetic !== undefined ? { patientName: pn.Alphabetic } : {}),
    ...(studyInstanceUid !== undefined ? { studyInstanceUid } : {}),
    ...(accessionNumber !== undefined ? { accessionNumber } : {}),
  };
}
