/**
 * The composition root of `pacs server`: configuration in, running listeners out. It builds the
 * application entity with the registered services (services.ts), listens on the DICOM port and,
 * when configured, on a TLS port, and logs one line per association. Nothing here speaks DICOM;
 * it wires the layers below together.
 */
import { constants } from 'node:fs';
import { access, mkdir, readFile } from 'node:fs/promises';
import { type Archive, openArchive } from '../archive/archive.js';
import { type CompressionService, startCompression } from '../archive/compression/service.js';
import { aeRegistryOf } from '../archive/security/ae-registry.js';
import { PacsError } from '../core/errors.js';
import { EventBus } from '../core/events.js';
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
import type { IdentityService } from '../security/authentication.js';
import type { Keyring } from '../security/envelope.js';
import { keyringOf } from '../security/key-file.js';
import { TLS_POLICY } from '../security/tls-policy.js';
import type { HealthResult } from '../web/app.js';
import { startWebServer, type WebServerHandle } from '../web/listen.js';
import { type ServerAudit, startServerAudit } from './audit-trail.js';
import { type Config, splitCallingAet } from './config.js';
import { dicomAccess } from './dicom-access.js';
import { serverIdentity } from './identity.js';
import { type MetricsJson, type ServerMetrics, serverMetrics } from './metrics.js';
import { type ServiceFactory, servicesNamed } from './services.js';

export interface StartServerOptions {
  /** The services to run; default SERVER_SERVICES (tests and embedders pass their own). */
  readonly services?: readonly ServiceFactory[];
  /**
   * Run the start-up reconcile (default true; only where the storage service runs). The --workers
   * primary reconciles once before forking, so its workers pass false.
   */
  readonly reconcile?: boolean;
  /** The event stream to report on (an embedder's audit trail may subscribe); default a new one. */
  readonly events?: EventBus;
  /** Checks user identities negotiated on DICOM associations (PS3.7 D.3.3.7); default: ignored. */
  readonly identityService?: IdentityService;
}

/** Reconcile grace when other processes may share the data folder: longer than any one C-STORE. */
export const SHARED_RECONCILE_GRACE_MS = 10 * 60 * 1000;

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
  /** The HTTP port (DICOMweb, /healthz, /metrics), when `server.http.port` is set. */
  readonly httpPort: number | undefined;
  /** The event stream the server reports on (StartServerOptions.events, or its own). */
  readonly events: EventBus;
  /** The Prometheus text of /metrics (also without an HTTP port). */
  metrics(): Promise<string>;
  /** The same metrics as prom-client JSON (what a --workers worker hands the primary). */
  metricsJson(): Promise<MetricsJson>;
  /** What /healthz answers (also without an HTTP port). */
  health(): Promise<HealthResult>;
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

/** What startServer has started so far, stopped by the one shutdown sequence (stopRunning). */
interface Running {
  readonly listening: Array<{ readonly kind: 'tcp' | 'tls'; readonly dicom: DicomServer }>;
  readonly services: DimseService[];
  archive?: Archive;
  compression?: CompressionService | undefined;
  metrics?: ServerMetrics;
  http?: WebServerHandle;
  audit?: ServerAudit;
}

/**
 * The one shutdown sequence, for a start-up that failed half-way and for close() and abort()
 * alike: stop accepting and give running associations `waitMs` (then abort them), close the HTTP
 * port, stop the services in reverse order, close the archive.
 */
async function stopRunning(running: Running, waitMs: number, logger: Logger): Promise<void> {
  await Promise.all(running.listening.map((l) => l.dicom.close(waitMs)));
  await running.http?.close();
  await running.compression?.stop();
  // Association end lines are logged from promise callbacks; let them run before "stopped".
  await new Promise((resolve) => setImmediate(resolve));
  running.metrics?.close();
  await stopServices(running.services, logger);
  await running.audit?.stop();
  await running.archive?.close();
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

  const events = options.events ?? new EventBus();
  events.onListenerError ??= (e, event) =>
    logger.error({ err: message(e), event: event.type }, 'event listener failed');
  const running: Running = { listening: [], services: [] };
  const fail = async (text: string): Promise<Result<never, PacsError>> => {
    await stopRunning(running, 0, logger);
    return err(new PacsError('ERR_SERVER_START', text));
  };

  const selected = options.services ?? servicesNamed(server.services);
  const runsStorage = options.services !== undefined || server.services.includes('storage');
  const opened = await openServerArchive(config, logger, {
    reconcile: runsStorage && options.reconcile !== false,
    // Another process sharing the data folder (PostgreSQL index, or --workers) may have objects
    // in flight: its young temp and unindexed files are not a crash's leftovers.
    graceMs: config.db.url !== undefined || server.workers > 1 ? SHARED_RECONCILE_GRACE_MS : 0,
    events,
  });
  if (!opened.ok) return opened;
  const archive = opened.value;
  running.archive = archive;

  const activeAssociations = (): number =>
    running.listening.reduce((n, l) => n + l.dicom.activeAssociations, 0);
  const metrics = serverMetrics(events, {
    associationsOpen: activeAssociations,
    jobQueueDepth: () => archive.jobQueueDepth(),
  });
  running.metrics = metrics;
  try {
    running.audit = await startServerAudit(config, archive, events, logger);
  } catch (e) {
    return fail(`cannot start the audit trail: ${message(e)}`);
  }

  // Compression at rest (archive/compression/): jobs after ingest, where objects are stored.
  if (runsStorage)
    running.compression = startCompression({
      settings: config.storage,
      archive,
      events,
      logger: logger.child({ service: 'compression' }),
    });

  // One per process, for every way in (HTTP and DICOM user identity): one failure count.
  const identity = options.identityService ?? serverIdentity(config, archive, logger, events);
  const access = dicomAccess({
    config,
    registry: aeRegistryOf(archive.index),
    logger,
    events,
    identityService: identity,
  });
  try {
    await access.refresh();
  } catch (e) {
    return fail(`cannot read the AE registry: ${message(e)}`);
  }

  for (const factory of selected) {
    const service = factory({ config, logger, archive, events, knownAes: access.knownAes });
    try {
      await service.start?.();
    } catch (e) {
      return fail(`service ${service.name} failed to start: ${message(e)}`);
    }
    running.services.push(service);
  }
  const services = running.services;

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
    events,
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
    admit: access.admit,
    authorize: access.authorize,
  };

  const listening = running.listening;
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
      return fail(`cannot listen on ${server.host}:${item.port}: ${describeListenError(e)}`);
    }
  }

  // One line per association (the counting is the metrics' subscription to the events).
  for (const { kind, dicom } of listening) {
    dicom.onAssociationEnd = (summary) => logAssociationEnd(logger, summary, kind);
    dicom.onFailedAssociation = (error, remoteAddress) =>
      logFailedAssociation(logger, error, remoteAddress, kind);
  }

  let closing: Promise<void> | undefined;
  const health = async (): Promise<HealthResult> => {
    if (closing !== undefined) return { ok: false, reason: 'shutting down' };
    if (listening.some((l) => l.dicom.address === undefined))
      return { ok: false, reason: 'the DICOM listener is not listening' };
    if (listening.some((l) => l.dicom.activeAssociations >= server.maxAssociations))
      return { ok: false, reason: `association limit reached (${server.maxAssociations})` };
    try {
      // A trivial indexed lookup: the index answers (and the connection pool is not stuck).
      await archive.index.findInstance('0');
    } catch (e) {
      return { ok: false, reason: `the index does not answer: ${message(e)}` };
    }
    return { ok: true };
  };
  const web = server.http;
  if (web.port !== undefined) {
    try {
      running.http = await startWebServer({
        host: web.host,
        port: web.port,
        logger,
        identity,
        metrics: () => metrics.render(),
        health,
        cors: web.cors,
        ...(web.cert !== undefined && web.key !== undefined ? { tls: { cert: web.cert, key: web.key } } : {}),
        dicomweb: {
          archive,
          logger,
          events,
          aeTitle: server.aet,
          ...(web.publicUrl !== undefined ? { publicUrl: web.publicUrl } : {}),
        },
      });
    } catch (e) {
      return fail(`cannot listen on ${web.host}:${web.port} (HTTP): ${describeListenError(e)}`);
    }
  }
  const http = running.http;

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
      ...(http !== undefined ? { httpPort: http.port } : {}),
      maxAssociations: server.maxAssociations,
      maxPduLength: server.maxPduLength,
    },
    'server started',
  );
  running.audit?.started();

  const graceMs = ms(server.shutdownTimeoutSeconds) ?? NO_LIMIT_MS;
  const shutDown = async (wait: number): Promise<void> => {
    await stopRunning(running, wait, logger);
    logger.info('server stopped');
  };
  return ok({
    aeTitle: server.aet,
    listeners,
    httpPort: http?.port,
    events,
    metrics: () => metrics.render(),
    metricsJson: () => metrics.json(),
    health,
    get activeAssociations() {
      return activeAssociations();
    },
    close() {
      if (closing === undefined) {
        const active = activeAssociations();
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
  options: { reconcile: boolean; graceMs: number; events?: EventBus } = { reconcile: true, graceMs: 0 },
): Promise<Result<Archive, PacsError>> {
  const keyring = await configuredKeyring(config);
  if (!keyring.ok) return keyring;
  let archive: Archive;
  try {
    archive = await openArchive({
      dataDir: config.data.dir,
      ...(keyring.value ? { keyring: keyring.value } : {}),
      ...(config.db.url !== undefined ? { dbUrl: config.db.url } : {}),
      durability: config.storage.durability,
      minFreeBytes: config.storage.minFreeMegabytes * 1024 * 1024,
      duplicatePolicy: config.storage.duplicatePolicy,
      logger,
      ...(options.events !== undefined ? { events: options.events } : {}),
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

/** The keys of `storage.encryption`: a missing, unreadable, world-readable or malformed key file stops the start. */
async function configuredKeyring(config: Config): Promise<Result<Keyring | undefined, PacsError>> {
  try {
    return ok(await keyringOf(config.storage.encryption));
  } catch (e) {
    return err(new PacsError('ERR_SERVER_START', `storage.encryption: ${message(e)}`));
  }
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
    parameters: TLS_POLICY,
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
