/**
 * `--workers N` (ARCHITECTURE.md decision 6: several processes on one port). The primary process
 * repairs the archive once (start-up reconcile, migrations), then forks N workers (node:cluster)
 * that each run startServer on the same DICOM port; the primary hands incoming connections to
 * them in turn, and serves the HTTP port itself (DICOMweb on its own handle of the archive,
 * /healthz and /metrics gathered from the workers). A worker that dies is replaced; SIGTERM or SIGINT to the primary
 * shuts every worker down gracefully (a second one aborts their associations), then it exits 0.
 *
 * Workers share the index: on SQLite the one file in WAL mode with a busy timeout, on PostgreSQL
 * the server; jobs are claimed with row locks or SQLite's single writer, so none runs twice.
 */
import cluster, { type Worker } from 'node:cluster';
import type { PacsError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { ok, type Result } from '../core/result.js';
import type { HealthResult } from '../web/app.js';
import { startWebServer, type WebServerHandle } from '../web/listen.js';
import type { Config } from './config.js';
import { serverIdentity } from './identity.js';
import { type MetricsJson, mergeWorkerMetrics } from './metrics.js';
import { openServerArchive, SHARED_RECONCILE_GRACE_MS } from './server.js';

/** Marks a process forked by the primary (cluster.isWorker alone would also match an embedder's own cluster). */
const WORKER_ENV = 'PACS_CLUSTER_WORKER';

/** Messages between the primary and its workers. */
export type PrimaryMessage =
  | { readonly type: 'shutdown' }
  | { readonly type: 'abort' }
  /** Asks for the worker's metrics or /healthz answer, for the primary's HTTP port. */
  | { readonly type: 'metrics' | 'health'; readonly id: number };
export type WorkerMessage =
  | { readonly type: 'listening'; readonly where: string }
  /** prom-client's JSON of the worker's registry, which the primary aggregates. */
  | { readonly type: 'metrics'; readonly id: number; readonly metrics: MetricsJson }
  | { readonly type: 'health'; readonly id: number; readonly result: HealthResult };

export function isClusterWorker(): boolean {
  return cluster.isWorker && process.env[WORKER_ENV] === '1';
}

/** A worker tells the primary it listens (`where`: the addresses, as the listening line shows them). */
export function reportListening(where: string): void {
  const message: WorkerMessage = { type: 'listening', where };
  process.send?.(message);
}

/** Calls `onMessage` with each message of the primary. */
export function onPrimaryMessage(onMessage: (message: PrimaryMessage) => void): void {
  process.on('message', (m: unknown) => {
    const type = typeof m === 'object' && m !== null ? Reflect.get(m, 'type') : undefined;
    if (type === 'shutdown' || type === 'abort' || type === 'metrics' || type === 'health')
      onMessage(m as PrimaryMessage);
  });
}

/** A worker answers the primary's metrics or health question. */
export function answerPrimary(message: WorkerMessage): void {
  process.send?.(message);
}

/** How long the primary waits for a worker's answer. */
const ASK_TIMEOUT_MS = 3000;

/** A worker that dies sooner than this after it was forked is restarted after a pause, not at once. */
const QUICK_DEATH_MS = 5000;
const RESTART_PAUSE_MS = 1000;

export interface ClusterOptions {
  readonly config: Config;
  readonly logger: Logger;
  /** Called once, when every first-generation worker listens. */
  readonly onListening: (where: string) => void;
}

export interface ClusterHandle {
  /** First signal: graceful shutdown of every worker; later ones abort their associations. */
  shutdown(signal: NodeJS.Signals): void;
  /** Resolves with the exit code once every worker has exited after shutdown (or start-up failed). */
  readonly done: Promise<number>;
}

/**
 * Runs the primary: reconcile, fork, supervise. Fails (a value) when the archive cannot be opened;
 * a worker that fails before it ever listened (a port in use...) ends the whole cluster with 1.
 */
export async function runClusterPrimary(options: ClusterOptions): Promise<Result<ClusterHandle, PacsError>> {
  const { config, logger } = options;
  const n = config.server.workers;
  const runsStorage = config.server.services.includes('storage');
  // Reconcile (and migrate) once here, before any worker has objects in flight; the workers skip it.
  const opened = await openServerArchive(config, logger, {
    reconcile: runsStorage,
    graceMs: config.db.url !== undefined ? SHARED_RECONCILE_GRACE_MS : 0,
  });
  if (!opened.ok) return opened;
  // The primary keeps the archive open for the HTTP port (DICOMweb); the workers serve DICOM.
  const archive = opened.value;

  const live = new Map<number, { worker: Worker; forkedAt: number; listening: boolean }>();
  let everyoneListened = false;
  let stopping = 0;
  let exitCode = 0;
  let resolveDone: (code: number) => void = () => {};
  const done = new Promise<number>((resolve) => {
    resolveDone = resolve;
  });
  const send = (message: PrimaryMessage): void => {
    for (const { worker } of live.values()) {
      if (worker.isConnected()) worker.send(message);
      else worker.process.kill('SIGTERM');
    }
  };
  /**
   * The one shutdown sequence of the primary (a signal, a worker that never started, an HTTP port
   * in use): the first call stops the workers gracefully, later ones abort their associations;
   * `done` resolves once the last worker has exited.
   */
  const stop = (failed: boolean): void => {
    if (failed) exitCode = 1;
    if (failed && stopping > 0) return; // already stopping: a failure does not escalate to abort
    stopping++;
    send({ type: stopping === 1 ? 'shutdown' : 'abort' });
    if (live.size === 0) resolveDone(exitCode);
  };

  const fork = (): void => {
    const worker = cluster.fork({ [WORKER_ENV]: '1' });
    const entry = { worker, forkedAt: Date.now(), listening: false };
    live.set(worker.id, entry);
    worker.on('message', (m: unknown) => {
      if (typeof m !== 'object' || m === null || Reflect.get(m, 'type') !== 'listening') return;
      entry.listening = true;
      const where = String(Reflect.get(m, 'where'));
      logger.info({ worker: worker.id, workerPid: worker.process.pid }, 'worker listening');
      if (!everyoneListened && [...live.values()].every((e) => e.listening) && live.size === n) {
        everyoneListened = true;
        options.onListening(where);
      }
    });
    worker.on('exit', (code, signal) => {
      live.delete(worker.id);
      if (stopping > 0) {
        if (live.size === 0) resolveDone(exitCode);
        return;
      }
      if (!entry.listening && !everyoneListened) {
        // It never started (the port is taken, the data folder is unusable): no point retrying.
        logger.error({ worker: worker.id, code, signal }, 'a worker failed to start: stopping');
        stop(true);
        return;
      }
      const quick = Date.now() - entry.forkedAt < QUICK_DEATH_MS;
      logger.warn(
        { worker: worker.id, workerPid: worker.process.pid, code, signal },
        `worker ${worker.process.pid} exited (${signal ?? `code ${code}`}): starting another`,
      );
      if (quick) setTimeout(() => stopping === 0 && fork(), RESTART_PAUSE_MS);
      else fork();
    });
  };

  for (let i = 0; i < n; i++) fork();
  logger.info({ workers: n }, `started ${n} workers`);

  // The HTTP port is the primary's: /metrics aggregates the workers' metrics, /healthz asks each.
  let nextId = 1;
  const waiting = new Map<number, (m: WorkerMessage) => void>();
  cluster.on('message', (_worker, m: unknown) => {
    const id = typeof m === 'object' && m !== null ? Reflect.get(m, 'id') : undefined;
    if (typeof id === 'number') waiting.get(id)?.(m as WorkerMessage);
  });
  const ask = (worker: Worker, type: 'metrics' | 'health'): Promise<WorkerMessage | undefined> =>
    new Promise((resolve) => {
      const id = nextId++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        resolve(undefined);
      }, ASK_TIMEOUT_MS);
      waiting.set(id, (m) => {
        clearTimeout(timer);
        waiting.delete(id);
        resolve(m);
      });
      const message: PrimaryMessage = { type, id };
      if (worker.isConnected()) worker.send(message);
    });
  const listening = () => [...live.values()].filter((e) => e.listening).map((e) => e.worker);
  let http: WebServerHandle | undefined;
  if (config.server.http.port !== undefined) {
    try {
      const web = config.server.http;
      http = await startWebServer({
        host: web.host,
        port: web.port as number,
        logger,
        identity: serverIdentity(config, archive, logger, undefined),
        cors: web.cors,
        ...(web.cert !== undefined && web.key !== undefined ? { tls: { cert: web.cert, key: web.key } } : {}),
        dicomweb: {
          archive,
          logger,
          aeTitle: config.server.aet,
          ...(web.publicUrl !== undefined ? { publicUrl: web.publicUrl } : {}),
        },
        metrics: async () => {
          const answers = await Promise.all(listening().map((w) => ask(w, 'metrics')));
          return mergeWorkerMetrics(answers.flatMap((a) => (a?.type === 'metrics' ? [a.metrics] : [])));
        },
        health: async () => {
          if (stopping > 0) return { ok: false, reason: 'shutting down' };
          const workers = listening();
          if (workers.length === 0) return { ok: false, reason: 'no worker is listening' };
          const answers = await Promise.all(workers.map((w) => ask(w, 'health')));
          for (const a of answers) {
            if (a === undefined) return { ok: false, reason: 'a worker does not answer' };
            if (a.type === 'health' && !a.result.ok) return a.result;
          }
          return { ok: true };
        },
      });
    } catch (e) {
      logger.error({ err: e instanceof Error ? e.message : String(e) }, 'cannot listen on the HTTP port');
      stop(true);
    }
  }
  void done.then(async () => {
    await http?.close();
    await archive.close();
  });

  return ok({
    done,
    shutdown(signal) {
      logger.info(
        { signal, workers: live.size },
        stopping === 0 ? 'stopping the workers' : 'aborting the workers',
      );
      stop(false);
    },
  });
}
