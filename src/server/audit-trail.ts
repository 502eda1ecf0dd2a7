/**
 * The server's audit trail (security/audit/): started with the archive, observing the server's
 * event bus, keeping records in the archive's index and sending them to the configured Audit
 * Record Repositories. Application Activity (start, stop) is emitted here, once per process.
 */
import { join } from 'node:path';
import type { Archive } from '../archive/archive.js';
import { auditStoreOf } from '../archive/security/audit-store.js';
import type { EventBus } from '../core/events.js';
import type { Logger } from '../core/logger.js';
import { type AuditTrail, startAuditTrail } from '../security/audit/trail.js';
import type { Config } from './config.js';

export interface ServerAudit {
  /** Emits Application Activity: start (after the listeners are up). */
  started(): void;
  /** Emits Application Activity: stop, then writes what is pending and closes the trail. */
  stop(): Promise<void>;
  readonly trail: AuditTrail;
}

/** The spool folder of a config: `audit.spoolDir`, else DATA/audit/spool. */
export function auditSpoolDir(config: Config): string {
  return config.audit.spoolDir ?? join(config.data.dir, 'audit', 'spool');
}

/** Starts the trail of `config.audit` (undefined when `audit.enabled` is false). */
export async function startServerAudit(
  config: Config,
  archive: Archive,
  events: EventBus,
  logger: Logger,
): Promise<ServerAudit | undefined> {
  if (!config.audit.enabled) return undefined;
  const aeTitle = config.server.aet;
  const trail = await startAuditTrail({
    events,
    spoolDir: auditSpoolDir(config),
    aeTitle,
    store: auditStoreOf(archive.index),
    repositories: config.audit.repositories,
    logger: {
      info: (fields, message) => logger.info(fields, message),
      warn: (fields, message) => logger.warn(fields, message),
      error: (fields, message) => logger.error(fields, message),
    },
  });
  let stopping: Promise<void> | undefined;
  return {
    trail,
    started: () => events.emit({ type: 'application', action: 'start', aeTitle }),
    stop() {
      stopping ??= (async () => {
        events.emit({ type: 'application', action: 'stop', aeTitle });
        await trail.close();
      })();
      return stopping;
    },
  };
}
