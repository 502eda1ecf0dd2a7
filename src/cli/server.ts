/**
 * `pacs server`: flags override the config file, which overrides the defaults (server/config.ts
 * composes the schema, core/config.ts merges them). Runs until SIGINT or SIGTERM, then shuts down gracefully: no new associations,
 * running ones get `server.shutdownTimeoutSeconds` to finish. A second signal aborts them at once.
 */
import type { Command } from 'commander';
import { ConfigError, PacsError, parsePeer } from '../client.js';
import type { Config, DeepPartial, FirstAdmin, Logger, Peer, ServerHandle } from '../index.js';

interface ServerFlags {
  config?: string;
  aet?: string;
  port?: string;
  host?: string;
  data?: string;
  db?: string;
  peer: string[];
  tlsPort?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  tlsRequireClientCert?: boolean;
  maxAssociations?: string;
  maxPdu?: string;
  promiscuous?: boolean;
  logLevel?: string;
  services?: string;
  workers?: string;
  httpPort?: string;
  httpHost?: string;
  adminPasswordFile?: string;
}

/** Config path of each flag, so an error line names what the user typed. */
const FLAG_PATHS: ReadonlyArray<readonly [keyof ServerFlags, string, string]> = [
  ['aet', '--aet', 'server.aet'],
  ['port', '--port', 'server.port'],
  ['host', '--host', 'server.host'],
  ['data', '--data', 'data.dir'],
  ['db', '--db', 'db.url'],
  ['peer', '--peer', 'peers'],
  ['tlsPort', '--tls-port', 'server.tls.port'],
  ['tlsCert', '--tls-cert', 'server.tls.cert'],
  ['tlsKey', '--tls-key', 'server.tls.key'],
  ['tlsCa', '--tls-ca', 'server.tls.ca'],
  ['tlsRequireClientCert', '--tls-require-client-cert', 'server.tls.requireClientCert'],
  ['maxAssociations', '--max-associations', 'server.maxAssociations'],
  ['maxPdu', '--max-pdu', 'server.maxPduLength'],
  ['promiscuous', '--promiscuous', 'server.promiscuous'],
  ['logLevel', '--log-level', 'log.level'],
  ['services', '--services', 'server.services'],
  ['workers', '--workers', 'server.workers'],
  ['httpPort', '--http-port', 'server.http.port'],
  ['httpHost', '--http-host', 'server.http.host'],
  ['adminPasswordFile', '--admin-password-file', 'identity.adminPasswordFile'],
];

export function registerServerCommand(program: Command): void {
  program
    .command('server')
    .description('run the DICOM server until SIGINT or SIGTERM (flags override the config file)')
    .option('--config <file>', 'JSON config file (see README "Configuration")')
    .option('--aet <title>', 'our AE title (default PACS)')
    .option('--port <n>', 'DICOM port (default 11112)')
    .option('--host <address>', 'address to listen on (default 0.0.0.0)')
    .option('--data <dir>', 'data folder (default ./data)')
    .option(
      '--db <url>',
      'index database: sqlite:PATH or postgres://... (default: SQLite in the data folder)',
    )
    .option(
      '--peer <AET=HOST:PORT>',
      'a known remote AE, e.g. a C-MOVE destination (repeatable; replaces the config file list)',
      (value: string, previous: string[]) => [...previous, value],
      [],
    )
    .option('--tls-port <n>', 'also listen with TLS on this port (needs --tls-cert and --tls-key)')
    .option('--tls-cert <file>', 'server certificate (PEM)')
    .option('--tls-key <file>', 'server private key (PEM)')
    .option('--tls-ca <file>', 'CA certificates (PEM) that client certificates are verified against')
    .option('--tls-require-client-cert', 'refuse TLS clients without a certificate signed by --tls-ca')
    .option('--max-associations <n>', 'associations at once per listener; more are rejected (default 100)')
    .option('--max-pdu <n>', 'largest PDU we receive, 4096..16777216 or 0 for unlimited (default 262144)')
    .option('--promiscuous', 'accept any called AE title')
    .option('--log-level <level>', 'trace, debug, info, warn, error or fatal (default info)')
    .option(
      '--services <list>',
      'services to run, comma-separated: storage, query-retrieve, worklist, mpps, verification (default all; verification is always on)',
    )
    .option('--workers <n>', 'processes serving the DICOM port, 1 to 64 (default 1)')
    .option('--http-port <n>', 'HTTP port for DICOMweb (/dicom-web), /healthz and /metrics (default: none)')
    .option('--http-host <address>', 'address the HTTP port binds (default 127.0.0.1)')
    .option(
      '--admin-password-file <file>',
      'first start (no user yet): the password of the admin user made then',
    )
    .action(async (flags: ServerFlags) => {
      await runServer(flags);
    });
}

/** "123" as the number 123; anything else as it is, so the config check reports it with its range. */
function numeric(value: string | undefined): number | string | undefined {
  if (value === undefined) return undefined;
  return /^-?\d+(\.\d+)?$/.test(value.trim()) ? Number(value) : value;
}

function overridesFrom(flags: ServerFlags, peers: Peer[] | undefined): DeepPartial<Config> {
  return {
    server: {
      aet: flags.aet,
      host: flags.host,
      port: numeric(flags.port) as number | undefined,
      maxAssociations: numeric(flags.maxAssociations) as number | undefined,
      maxPduLength: numeric(flags.maxPdu) as number | undefined,
      promiscuous: flags.promiscuous,
      services:
        flags.services === undefined
          ? undefined
          : (flags.services
              .split(',')
              .map((x) => x.trim())
              .filter((x) => x !== '') as Config['server']['services']),
      workers: numeric(flags.workers) as number | undefined,
      http: { port: numeric(flags.httpPort) as number | undefined, host: flags.httpHost },
      tls: {
        port: numeric(flags.tlsPort) as number | undefined,
        cert: flags.tlsCert,
        key: flags.tlsKey,
        ca: flags.tlsCa,
        requireClientCert: flags.tlsRequireClientCert,
      },
    },
    data: { dir: flags.data },
    db: { url: flags.db },
    peers,
    identity: { adminPasswordFile: flags.adminPasswordFile },
    log: { level: flags.logLevel as Config['log']['level'] | undefined },
  };
}

/** Names the flag in an error line about a value the flag gave; the config path otherwise. */
function withFlagNames(issue: string, flags: ServerFlags): string {
  // One of the comma-separated names: `--services: expected one of ..., got "foo"`.
  let line = flags.services !== undefined ? issue.replace(/^server\.services\[\d+\]/, '--services') : issue;
  for (const [key, flag, path] of FLAG_PATHS) {
    const given = key === 'peer' ? flags.peer.length > 0 : flags[key] !== undefined;
    if (given) {
      const escaped = path.replace(/[.[\]]/g, '\\$&');
      line = line.replace(new RegExp(`(^|[\\s(])${escaped}(?=[:\\s,)]|$)`, 'g'), `$1${flag}`);
    } else if (line.startsWith(`${path}:`)) {
      // A setting that is wrong or missing: say which flag sets it too.
      line = `${path} (${flag})${line.slice(path.length)}`;
    }
  }
  return line;
}

async function runServer(flags: ServerFlags): Promise<void> {
  // The server side (the archive, kysely, the engines' drivers, metrics) loads only now (src/client.ts).
  const {
    answerPrimary,
    bootstrapAdmin,
    closeLogger,
    createLogger,
    isClusterWorker,
    loadConfig,
    onPrimaryMessage,
    reportListening,
    startServer,
  } = await import('../index.js');
  const problems: string[] = [];
  const peers: Peer[] = [];
  for (const text of flags.peer) {
    const parsed = parsePeer(text);
    if (parsed.ok) peers.push(parsed.value);
    else problems.push(`--peer ${parsed.error}`);
  }
  const loaded = loadConfig({
    ...(flags.config !== undefined ? { file: flags.config } : {}),
    overrides: overridesFrom(flags, flags.peer.length > 0 ? peers : undefined),
  });
  if (!loaded.ok) problems.push(...loaded.error.issues.map((i) => withFlagNames(i, flags)));
  if (problems.length > 0 || !loaded.ok) throw new ConfigError(problems);
  const config = loaded.value;

  // Signals are caught from here on, so one that comes during start-up (or right after the
  // "listening" line) still shuts down cleanly; a second one aborts running associations.
  let received: NodeJS.Signals | undefined;
  let handle: ServerHandle | undefined;
  let onFirstSignal: ((name: NodeJS.Signals) => void) | undefined;
  let abortNow: (() => void) | undefined;
  const onSignal = (name: NodeJS.Signals): void => {
    if (received !== undefined) {
      abortNow?.();
      return;
    }
    received = name;
    onFirstSignal?.(name);
  };
  const logger = createLogger(config.log);
  const worker = isClusterWorker();
  // The first start on an index without users makes the admin (archive/security/bootstrap.ts); workers never.
  const admin = worker
    ? undefined
    : await bootstrapAdmin({ ...config.data, dbUrl: config.db.url, ...config.identity, logger });
  if (config.server.workers > 1 && !worker) {
    await runPrimary(config, logger, admin);
    return;
  }
  if (worker) {
    // The primary forwards signals as messages; a terminal's Ctrl-C reaches the whole process
    // group, so SIGINT is the primary's to handle (else one Ctrl-C would count twice here).
    process.on('SIGINT', () => {});
    onPrimaryMessage((m) => {
      if (m.type === 'metrics') {
        void (async () =>
          answerPrimary({ type: 'metrics', id: m.id, metrics: (await handle?.metricsJson()) ?? [] }))();
        return;
      }
      if (m.type === 'health') {
        void (async () =>
          answerPrimary({
            type: 'health',
            id: m.id,
            result: (await handle?.health()) ?? { ok: false, reason: 'starting' },
          }))();
        return;
      }
      if (m.type === 'abort' && received === undefined) onSignal('SIGTERM');
      onSignal('SIGTERM');
    });
  } else {
    process.on('SIGINT', onSignal);
  }
  process.on('SIGTERM', onSignal);

  // A worker's HTTP port is the primary's (it adds up the workers' metrics).
  const serverConfig = worker
    ? { ...config, server: { ...config.server, http: { ...config.server.http, port: undefined } } }
    : config;
  const started = await startServer(serverConfig, logger, { reconcile: !worker });
  if (!started.ok) {
    await admin?.undo();
    await closeLogger(logger);
    throw started.error;
  }
  const server = started.value;
  handle = server;
  abortNow = () => void server.abort();
  const where = server.listeners
    .map((l) => `${l.host}:${l.port}${l.kind === 'tls' ? ' (TLS)' : ''}`)
    .join(' and ');
  if (worker) reportListening(`${server.aeTitle} on ${where}`);
  else process.stdout.write(`pacs: listening as ${server.aeTitle} on ${where}\n`);
  admin?.announce();

  const signal =
    received ??
    (await new Promise<NodeJS.Signals>((resolve) => {
      onFirstSignal = resolve;
    }));
  logger.info({ signal }, `${signal} received`);
  await server.close();
  await closeLogger(logger);
  if (worker) process.disconnect?.();
  // Nothing should be left running; if something is, it must not keep a stopped server alive.
  setTimeout(() => process.exit(process.exitCode ?? 0), 2000).unref();
}

/** `--workers N`: this process supervises N workers on one port (server/cluster.ts). */
async function runPrimary(config: Config, logger: Logger, admin: FirstAdmin | undefined): Promise<void> {
  const { closeLogger, runClusterPrimary } = await import('../index.js');
  const workers = config.server.workers;
  let handle: { shutdown(signal: NodeJS.Signals): void } | undefined;
  const pending: NodeJS.Signals[] = [];
  const onSignal = (name: NodeJS.Signals): void => {
    if (handle === undefined) pending.push(name);
    else handle.shutdown(name);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const started = await runClusterPrimary({
    config,
    logger,
    onListening: (where) => {
      process.stdout.write(`pacs: listening as ${where} (${workers} workers)\n`);
      admin?.announce();
    },
  });
  if (!started.ok) {
    await admin?.undo();
    await closeLogger(logger);
    throw started.error;
  }
  handle = started.value;
  for (const name of pending) handle.shutdown(name);
  const code = await started.value.done;
  logger.info('server stopped');
  await closeLogger(logger);
  if (code !== 0) {
    await admin?.undo();
    throw new PacsError('ERR_SERVER_START', 'a worker failed to start (see its message above)');
  }
  setTimeout(() => process.exit(process.exitCode ?? 0), 2000).unref();
}
