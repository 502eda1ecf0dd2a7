/**
 * The composition root of `pacs server`: configuration in, running listeners out. It builds the
 * application entity with the registered services (services.ts), listens on the DICOM port and,
 * when configured, on a TLS port, and logs one line per association. Nothing here speaks DICOM;
 * it wires the layers below together.
 */
import { constants } from 'node:fs';
import { access, mkdir, readFile } from 'node:fs/promises';
import { type Archive, openArchive } from '../archive/archive.js';
import { type Config, splitCallingAet } from '../core/config.js';
import { PacsError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { err, ok, type Result } from '../core/result.js';
import { lookupUid } from '../dicom/uid.js';
import { ApplicationEntity, type AssociationSummary, type DicomServer } from '../network/ae.js';
import type { AssociationTimeouts } from '../network/association.js';
import type { NetworkError } from '../network/errors.js';
import type { NetworkLogger } from '../network/logger.js';
import type { AllowedCaller } from '../network/negotiation.js';
import type { DimseService } from '../network/service.js';
import type { TlsServerOptions } from '../network/transport.js';
import { type ServiceFactory, servicesNamed } from './services.js';

export interface StartServerOptions {
  /** The services to run; default SERVER_SERVICES (tests and embedders pass their own). */
  readonly services?: readonly ServiceFactory[];
  /**
   * Run the start-up reconcile (default true; only where the storage service runs). The --workers
   * primary reconciles once before forking, so its workers pass false.
   */
  readonly reconcile?: boolean;
}

/** Reconcile grace when other processes may share the data folder: longer than any one C-STORE. */
const SHARED_RECONCILE_GRACE_MS = 10 * 60 * 1000;

export interface ListenerInfo {
  readonly kind: 'tcp' | 'tls';
  readonly host: string;
  readonly port: number;
}

/** A running server. */
export interface ServerHandle {
  readonly aeTitle: string;
  /** The bound addresses: the DICOM port, then the TLS port when configured. */
  readonly listeners: readonly ListenerInfo[];
  /** Connections being negotiated, established or closing, over all listeners. */
  readonly activeAssociations: number;
  /**
   * Graceful shutdown: stops accepting at once; running associations get
   * `server.shutdownTimeoutSeconds` to finish, then are aborted; then the services stop.
   * Resolves when everything is closed. Calling it again returns the same promise.
   */
  close(): Promise<void>;
  /** Aborts every running association now (a second Ctrl-C); resolves like close(). */
  abort(): Promise<void>;
}

/** Longest timer Node accepts (about 24.8 days): "0 seconds = no limit" in the config. */
const NO_LIMIT_MS = 0x7fffffff;

/** Config seconds to timer milliseconds; 0 means no limit (the network layer's undefined). */
function ms(seconds: number): number | undefined {
  return seconds === 0 ? undefined : Math.round(seconds * 1000);
}

/**
 * Starts the server described by `config`. Expected failures (an unreadable certificate, a port in
 * use, a data folder that cannot be created) are values with a one-line message.
 */
export async function startServer(
  config: Config,
  logger: Logger,
  options: StartServerOptions = {},
): Promise<Result<ServerHandle, PacsError>> {
  const server = config.server;

  const dataDir = await prepareDataDir(config.data.dir);
  if (!dataDir.ok) return dataDir;

  let tls: TlsServerOptions | undefined;
  if (server.tls.port !== undefined) {
    const loaded = await loadTlsFiles(config);
    if (!loaded.ok) return loaded;
    tls = loaded.value;
  } else if (server.tls.cert !== undefined) {
    logger.warn('server.tls.cert is set but server.tls.port is not: no TLS listener');
  }
  if (server.tls.ca !== undefined && !server.tls.requireClientCert) {
    logger.warn(
      'server.tls.ca is set but server.tls.requireClientCert is false: client certificates are not checked',
    );
  }

  const selected = options.services ?? servicesNamed(server.services);
  const runsStorage = options.services !== undefined || server.services.includes('storage');
  const opened = await openServerArchive(config, logger, {
    reconcile: runsStorage && options.reconcile !== false,
    // Another process sharing the data folder (PostgreSQL index, or --workers) may have objects
    // in flight: its young temp and unindexed files are not a crash's leftovers.
    graceMs: config.db.url !== undefined || server.workers > 1 ? SHARED_RECONCILE_GRACE_MS : 0,
  });
  if (!opened.ok) return opened;
  const archive = opened.value;

  const services: DimseService[] = [];
  for (const factory of selected) {
    const service = factory({ config, logger, archive });
    try {
      await service.start?.();
    } catch (e) {
      await stopServices(services, logger);
      await archive.close();
      return err(new PacsError('ERR_SERVER_START', `service ${service.name} failed to start: ${message(e)}`));
    }
    services.push(service);
  }

  // The DIMSE timeout covers a peer that stalls inside a message or stops reading what we send
  // (the DIMSE layer arms it only then); the idle timeout covers silence between messages.
  const timeouts: AssociationTimeouts = {
    ...(ms(server.acseTimeoutSeconds) !== undefined ? { acseMs: ms(server.acseTimeoutSeconds) } : {}),
    ...(ms(server.dimseTimeoutSeconds) !== undefined ? { dimseMs: ms(server.dimseTimeoutSeconds) } : {}),
    ...(ms(server.idleTimeoutSeconds) !== undefined ? { idleMs: ms(server.idleTimeoutSeconds) } : {}),
  };
  const ae = new ApplicationEntity({
    aeTitle: server.aet,
    maxPduLength: server.maxPduLength,
    logger: networkLogger(logger),
    timeouts,
  });
  for (const service of services) ae.addService(service);

  const allowedCallers: AllowedCaller[] = server.allowedCallingAets.map((entry) => {
    const { aet, host } = splitCallingAet(entry);
    return host === undefined ? { aeTitle: aet.trim() } : { aeTitle: aet.trim(), host };
  });
  const listenOptions = {
    host: server.host,
    maxAssociations: server.maxAssociations,
    promiscuous: server.promiscuous,
    ...(allowedCallers.length > 0 ? { allowedCallers } : {}),
  };

  const listening: Array<{ kind: 'tcp' | 'tls'; dicom: DicomServer }> = [];
  const plan: Array<{ kind: 'tcp' | 'tls'; port: number; tls?: TlsServerOptions }> = [
    { kind: 'tcp', port: server.port },
    ...(tls !== undefined && server.tls.port !== undefined
      ? [{ kind: 'tls' as const, port: server.tls.port, tls }]
      : []),
  ];
  for (const item of plan) {
    try {
      const dicom = await ae.listen({
        ...listenOptions,
        port: item.port,
        ...(item.tls !== undefined ? { tls: item.tls } : {}),
      });
      listening.push({ kind: item.kind, dicom });
    } catch (e) {
      await Promise.all(listening.map((l) => l.dicom.close(0)));
      await stopServices(services, logger);
      await archive.close();
      const where = `${server.host}:${item.port}`;
      return err(new PacsError('ERR_SERVER_START', `cannot listen on ${where}: ${describeListenError(e)}`));
    }
  }

  for (const { kind, dicom } of listening) {
    dicom.onAssociationEnd = (summary) => logAssociationEnd(logger, summary, kind);
    dicom.onFailedAssociation = (error, remoteAddress) =>
      logFailedAssociation(logger, error, remoteAddress, kind);
  }

  const listeners: ListenerInfo[] = listening.map(({ kind, dicom }) => ({
    kind,
    host: dicom.address?.address ?? server.host,
    port: dicom.address?.port ?? 0,
  }));
  logger.info(
    {
      aet: server.aet,
      listeners: listeners.map((l) => `${l.host}:${l.port}${l.kind === 'tls' ? ' (TLS)' : ''}`),
      services: services.map((s) => s.name),
      maxAssociations: server.maxAssociations,
      maxPduLength: server.maxPduLength,
    },
    'server started',
  );

  const graceMs = ms(server.shutdownTimeoutSeconds) ?? NO_LIMIT_MS;
  let closing: Promise<void> | undefined;
  const shutDown = async (wait: number): Promise<void> => {
    await Promise.all(listening.map((l) => l.dicom.close(wait)));
    // Association end lines are logged from promise callbacks; let them run before "stopped".
    await new Promise((resolve) => setImmediate(resolve));
    await stopServices(services, logger);
    await archive.close();
    logger.info('server stopped');
  };
  return ok({
    aeTitle: server.aet,
    listeners,
    get activeAssociations() {
      return listening.reduce((n, l) => n + l.dicom.activeAssociations, 0);
    },
    close() {
      if (closing === undefined) {
        const active = listening.reduce((n, l) => n + l.dicom.activeAssociations, 0);
        logger.info(
          { active, graceSeconds: server.shutdownTimeoutSeconds },
          active === 0 ? 'shutting down' : `shutting down: waiting for ${active} association(s) to finish`,
        );
        closing = shutDown(graceMs);
      }
      return closing;
    },
    abort() {
      logger.warn({ active: this.activeAssociations }, 'aborting every running association');
      if (closing === undefined) {
        closing = shutDown(0);
        return closing;
      }
      // A graceful close is waiting: abort what it waits for, then finish it.
      const pending = closing;
      return Promise.all(listening.map((l) => l.dicom.close(0))).then(() => pending);
    },
  });
}

/**
 * Opens the archive of the data folder (the index: `db.url`, else SQLite in the folder) and
 * repairs what a crash may have left before any association is accepted (ISSUE 4: start-up reconcile).
 */
export async function openServerArchive(
  config: Config,
  logger: Logger,
  options: { reconcile: boolean; graceMs: number } = { reconcile: true, graceMs: 0 },
): Promise<Result<Archive, PacsError>> {
  let archive: Archive;
  try {
    archive = await openArchive({
      dataDir: config.data.dir,
      ...(config.db.url !== undefined ? { dbUrl: config.db.url } : {}),
      durability: config.storage.durability,
      minFreeBytes: config.storage.minFreeMegabytes * 1024 * 1024,
      duplicatePolicy: config.storage.duplicatePolicy,
      logger,
    });
  } catch (e) {
    return err(new PacsError('ERR_SERVER_START', `cannot open the archive: ${message(e)}`));
  }
  if (!options.reconcile) return ok(archive);
  try {
    const report = await archive.reconcile({ graceMs: options.graceMs });
    const repaired =
      report.tempFilesRemoved + report.filesIndexed + report.duplicateFilesRemoved + report.rowsRemoved;
    if (repaired > 0 || report.unreadableFiles.length > 0)
      logger.warn({ reconcile: report }, 'archive repaired at start-up');
    else logger.debug({ reconcile: report }, 'archive checked');
  } catch (e) {
    await archive.close();
    return err(new PacsError('ERR_SERVER_START', `archive start-up check failed: ${message(e)}`));
  }
  return ok(archive);
}

async function prepareDataDir(dir: string): Promise<Result<void, PacsError>> {
  try {
    await mkdir(dir, { recursive: true });
    await access(dir, constants.W_OK);
    return ok();
  } catch (e) {
    return err(new PacsError('ERR_SERVER_START', `data folder ${dir}: ${describeFsError(e)}`));
  }
}

async function loadTlsFiles(config: Config): Promise<Result<TlsServerOptions, PacsError>> {
  const t = config.server.tls;
  const read = async (
    what: string,
    file: string | undefined,
  ): Promise<Result<Buffer | undefined, PacsError>> => {
    if (file === undefined) return ok(undefined);
    try {
      return ok(await readFile(file));
    } catch (e) {
      return err(new PacsError('ERR_SERVER_START', `server.tls.${what} ${file}: ${describeFsError(e)}`));
    }
  };
  const cert = await read('cert', t.cert);
  if (!cert.ok) return cert;
  const key = await read('key', t.key);
  if (!key.ok) return key;
  const ca = await read('ca', t.ca);
  if (!ca.ok) return ca;
  if (cert.value === undefined || key.value === undefined) {
    // The config schema requires both with a TLS port; this guards against a caller that skipped it.
    return err(new PacsError('ERR_SERVER_START', 'server.tls.cert and server.tls.key are required for TLS'));
  }
  return ok({
    cert: cert.value,
    key: key.value,
    ...(ca.value !== undefined ? { ca: ca.value } : {}),
    requireClientCertificate: t.requireClientCert,
  });
}

async function stopServices(services: readonly DimseService[], logger: Logger): Promise<void> {
  for (const service of [...services].reverse()) {
    try {
      await service.stop?.();
    } catch (e) {
      logger.error({ service: service.name, err: message(e) }, 'service failed to stop');
    }
  }
}

/**
 * The network layer logs each step of each association; the server's own lines (one per
 * association at its end, one warning per failed one) replace its info lines and the warnings
 * those lines repeat, which go to debug. Other warnings and errors (TLS handshake failures, DIMSE
 * protocol errors, internal errors) stay as they are.
 */
const REPORTED_BY_SERVER = new Set(['association aborted', 'invalid PDU received']);

function networkLogger(logger: Logger): NetworkLogger {
  const child = logger.child({ layer: 'network' });
  return {
    debug: (obj, msg) => child.debug(obj, msg),
    info: (obj, msg) => child.debug(obj, msg),
    warn: (obj, msg) =>
      msg !== undefined && REPORTED_BY_SERVER.has(msg) ? child.debug(obj, msg) : child.warn(obj, msg),
    error: (obj, msg) => child.error(obj, msg),
  };
}

/** IPv4 peers on a dual-stack socket show as ::ffff:a.b.c.d. */
function plainAddress(address: string | undefined): string {
  if (address === undefined) return '?';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

/** "Verification SOP Class" or "CT Image Storage x3"; unknown UIDs as they are. */
function contextNames(uids: readonly string[]): string[] {
  const counts = new Map<string, number>();
  for (const uid of uids) {
    const name = lookupUid(uid)?.name ?? uid;
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  return [...counts].map(([name, n]) => (n === 1 ? name : `${name} x${n}`));
}

function logAssociationEnd(logger: Logger, s: AssociationSummary, kind: 'tcp' | 'tls'): void {
  const remote = plainAddress(s.remoteAddress);
  const contexts = contextNames(s.contexts);
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  logger.info(
    {
      calling: s.callingAeTitle,
      called: s.calledAeTitle,
      remote,
      tls: kind === 'tls',
      contexts,
      durationMs: s.durationMs,
      outcome: s.outcome,
      requests: s.requests,
      failures: s.failures,
      bytesReceived: s.bytesReceived,
    },
    `association ${s.callingAeTitle}@${remote} -> ${s.calledAeTitle} ${s.outcome} after ${s.durationMs} ms: ` +
      `${plural(s.requests, 'request')}, ${plural(s.failures, 'failure')}; ${contexts.join(', ')}`,
  );
}

function logFailedAssociation(
  logger: Logger,
  error: NetworkError,
  remoteAddress: string | undefined,
  kind: 'tcp' | 'tls',
): void {
  const remote = plainAddress(remoteAddress);
  logger.warn(
    {
      remote,
      tls: kind === 'tls',
      code: error.code,
      ...(error.reject !== undefined ? { reject: error.reject } : {}),
      ...(error.abort !== undefined ? { abort: error.abort } : {}),
    },
    `association from ${remote} failed: ${error.message}`,
  );
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function describeFsError(e: unknown): string {
  const code = typeof e === 'object' && e !== null ? Reflect.get(e, 'code') : undefined;
  if (code === 'ENOENT') return 'no such file or folder';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'is a folder';
  if (code === 'ENOTDIR' || code === 'EEXIST') return 'not a folder';
  if (code === 'EROFS') return 'read-only file system';
  return message(e);
}

function describeListenError(e: unknown): string {
  const code = typeof e === 'object' && e !== null ? Reflect.get(e, 'code') : undefined;
  if (code === 'EADDRINUSE') return 'address already in use';
  if (code === 'EACCES') return 'permission denied (ports under 1024 need privileges)';
  if (code === 'EADDRNOTAVAIL') return 'address not available on this host';
  return message(e);
}
