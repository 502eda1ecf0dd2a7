/**
 * The audit trail (PS3.15 A.5, IHE ATNA): a subscriber of the one event bus (core/events.ts) that
 * turns what happened into DICOM audit messages (messages.ts, transfers.ts for per-object events),
 * writes each to the durable spool (spool.ts) and from there to the index (an AuditRecordStore)
 * and to every configured Audit Record Repository (syslog.ts). Metrics observe the same bus.
 */
import { hostname, userInfo } from 'node:os';
import type { EventBus, PacsEvent } from '../../core/events.js';
import type { AuditMessage } from './message.js';
import {
  type AuditSource,
  applicationActivity,
  instancesAccessed,
  orderRecord,
  query,
  retrieved,
  securityAlert,
  studyDeleted,
  userAuthentication,
} from './messages.js';
import { type AuditRecord, type AuditRecordStore, auditRecordOf } from './record.js';
import { type AuditDestination, AuditSpool, type SpoolLogger } from './spool.js';
import { type RepositoryConfig, SyslogTlsDestination } from './syslog.js';
import { type TransferAggregationOptions, TransferAggregator } from './transfers.js';

/** How long close() lets destinations take what is spooled before it stops (the rest is sent at the next start). */
const CLOSE_WAIT_MS = 5_000;

export interface AuditTrailOptions {
  readonly events: EventBus;
  readonly spoolDir: string;
  readonly aeTitle: string;
  /** Where records are kept in the index (omitted: only the repositories). */
  readonly store?: AuditRecordStore;
  readonly repositories?: readonly RepositoryConfig[];
  readonly logger?: SpoolLogger & { error(fields: Record<string, unknown>, message: string): void };
  readonly aggregation?: TransferAggregationOptions;
  readonly hostName?: string;
}

export interface AuditTrail {
  /** Writes a message built elsewhere (e.g. a command's own Security Alert). */
  record(message: AuditMessage): void;
  /** Resolves when what was recorded so far is spooled and every reachable destination has it. */
  settled(): Promise<void>;
  /** The destinations failing now. */
  failing(): { destination: string; reason: string }[];
  /** Stops observing, writes pending aggregates, gives destinations what they can take, closes. */
  close(): Promise<void>;
}

/** The OS user that started the process, for Application Activity's launcher. */
function osUser(): string | undefined {
  try {
    return userInfo().username;
  } catch {
    return undefined;
  }
}

export async function startAuditTrail(options: AuditTrailOptions): Promise<AuditTrail> {
  const hostName = options.hostName ?? hostname();
  const source: AuditSource = {
    aeTitle: options.aeTitle,
    sourceId: options.aeTitle,
    hostName,
    processId: String(process.pid),
  };
  const destinations: AuditDestination[] = [];
  const store = options.store;
  if (store !== undefined)
    destinations.push({ name: 'index', deliver: (records) => store.add(records), close: async () => {} });
  for (const r of options.repositories ?? []) destinations.push(new SyslogTlsDestination(r, hostName));
  const spool = await AuditSpool.open(options.spoolDir, destinations, options.logger);

  // Records of one turn of the event loop are spooled together (one folder fsync for all).
  let batch: AuditRecord[] = [];
  let writing: Promise<void> = Promise.resolve();
  const flushBatch = (): void => {
    if (batch.length === 0) return;
    const records = batch;
    batch = [];
    writing = spool.append(records).catch((e: unknown) => {
      options.logger?.error(
        { err: (e as Error).message, messages: records.length },
        'audit: cannot write the spool',
      );
    });
  };
  const write = (message: AuditMessage): void => {
    if (batch.length === 0) setImmediate(flushBatch);
    batch.push(auditRecordOf(message));
  };
  const transfers = new TransferAggregator(source, write, options.aggregation);
  const launcher = osUser();

  const observe = (e: PacsEvent): void => {
    switch (e.type) {
      case 'application':
        write(
          applicationActivity(
            source,
            e.user === undefined && launcher !== undefined ? { ...e, user: launcher } : e,
          ),
        );
        return;
      case 'authentication':
        write(userAuthentication(source, e));
        return;
      case 'security-alert':
        write(securityAlert(source, e));
        return;
      case 'association-failed':
        // An association we refused (A-ASSOCIATE-RJ): a node that failed to authenticate.
        if (e.kind === 'rejected')
          write(
            securityAlert(source, {
              kind: 'association-rejected',
              detail: e.reason,
              remoteAddress: e.remoteAddress,
            }),
          );
        return;
      case 'object-received':
        transfers.received(e);
        return;
      case 'object-sent':
        transfers.sent(e);
        return;
      case 'association-closed':
        transfers.associationClosed(e);
        return;
      case 'objects-retrieved':
        write(retrieved(source, e));
        return;
      case 'objects-accessed':
        write(instancesAccessed(source, e));
        return;
      case 'study-deleted':
        write(studyDeleted(source, e));
        return;
      case 'query':
        write(query(source, e));
        return;
      case 'order-record':
        write(orderRecord(source, e));
        return;
      default:
        return;
    }
  };
  const unsubscribe = options.events.subscribe(observe);
  let closing: Promise<void> | undefined;

  const settled = async (): Promise<void> => {
    await new Promise((resolve) => setImmediate(resolve));
    await writing;
    await spool.settled();
  };
  return {
    record: write,
    settled,
    failing: () => spool.failing(),
    close() {
      closing ??= (async () => {
        unsubscribe();
        transfers.flushAll();
        flushBatch();
        // Everything is in the spool now; a slow repository gets a few seconds, the spool keeps the rest.
        await writing;
        await Promise.race([settled(), new Promise((resolve) => setTimeout(resolve, CLOSE_WAIT_MS).unref())]);
        await spool.close();
      })();
      return closing;
    },
  };
}
