/**
 * The config of `pacs server`, composed from the part each layer and service contributes beside its
 * own code (core/config.ts has the machinery: helpers, merging, one line per error):
 *
 *   server   this file: listeners, TLS, limits, timeouts, which services run, --workers, HTTP (server.http)
 *   storage  services/storage/config.ts
 *   data, db this file: the data folder and the index database the archive opens
 *   peers    services/query-retrieve/config.ts (C-MOVE destinations)
 *   security security/config.ts (the OpenID provider)
 *   identity security/identity-config.ts (the first admin's password file, session limits)
 *   audit    security/audit/config.ts (the audit trail: spool, Audit Record Repositories)
 *   log      core/logger-config.ts
 *
 * Worklist and MPPS have no settings yet; a service that gets some adds a config.ts beside its
 * scp.ts and one line below. The order of the parts is the order of the error lines.
 */
import { z } from 'zod';
import { parseIndexUrl } from '../archive/index/open.js';
import {
  addRule,
  aeTitle,
  boolean,
  type DeepPartial,
  expecting,
  filePath,
  formatPath,
  host,
  integer,
  isAeTitle,
  isHost,
  type LoadConfigOptions,
  list,
  loadConfigWith,
  nonEmpty,
  oneOf,
  port,
  seconds,
  section,
} from '../core/config.js';
import type { ConfigError } from '../core/errors.js';
import { logConfig } from '../core/logger-config.js';
import type { Result } from '../core/result.js';
import { auditConfig } from '../security/audit/config.js';
import { securityConfig } from '../security/config.js';
import { identityConfig } from '../security/identity-config.js';
import { queryRetrieveConfig } from '../services/query-retrieve/config.js';
import { storageConfig } from '../services/storage/config.js';
import { transcodeConfig } from '../services/storage/transcode-config.js';
import { dicomAccessSchema } from './dicom-access-config.js';

/** The services `server.services` selects by (services.ts maps them to factories). */
export const SERVICE_NAMES = ['verification', 'storage', 'query-retrieve', 'worklist', 'mpps'] as const;

/** Splits an allowed-calling-AE entry `AET` or `AET@host` (host names never contain `@`). */
export function splitCallingAet(entry: string): { aet: string; host: string | undefined } {
  const at = entry.lastIndexOf('@');
  if (at < 0) return { aet: entry, host: undefined };
  return { aet: entry.slice(0, at), host: entry.slice(at + 1) };
}

const PDU_LENGTH_EXPECTED = 'an integer from 4096 to 16777216, or 0 for unlimited';

const callingAetExpected = 'an AE title, or AET@host to accept it only from that host';
const callingAet = z.string(expecting(callingAetExpected)).refine(
  (entry) => {
    const { aet, host: from } = splitCallingAet(entry);
    return isAeTitle(aet) && (from === undefined || isHost(from));
  },
  { message: callingAetExpected },
);

/**
 * The one check of an index URL (`db.url`, every command's `--db`): what the archive's opener
 * accepts, so nothing passes here that fails there.
 */
export function isIndexUrl(value: string): boolean {
  try {
    parseIndexUrl(value);
    return true;
  } catch {
    return false;
  }
}

/** What a bad index URL is told: `expected "sqlite:PATH" or a "postgres://" URL`. */
export const INDEX_URL_EXPECTED = '"sqlite:PATH" or a "postgres://" URL';
const dbUrl = z.string(expecting(INDEX_URL_EXPECTED)).refine(isIndexUrl, { message: INDEX_URL_EXPECTED });

const tlsSchema = section({
  port: port.optional(),
  cert: filePath.optional(),
  key: filePath.optional(),
  ca: filePath.optional(),
  requireClientCert: boolean().default(false),
}).superRefine((tls, ctx) => {
  const at = (key: string) => formatPath([...ctx.path, key]);
  if (tls.cert !== undefined && tls.key === undefined) {
    addRule(ctx, ['key'], `required when ${at('cert')} is set`);
  } else if (tls.key !== undefined && tls.cert === undefined) {
    addRule(ctx, ['cert'], `required when ${at('key')} is set`);
  } else if (tls.port !== undefined && tls.cert === undefined) {
    addRule(ctx, ['cert'], `required when ${at('port')} is set`);
    addRule(ctx, ['key'], `required when ${at('port')} is set`);
  }
});

const CORS_ORIGIN_EXPECTED =
  'an origin such as "https://viewer.example.org" (scheme, host, optional port), or "*"';
const corsOrigin = z
  .string(expecting(CORS_ORIGIN_EXPECTED))
  .refine(
    (o) =>
      o === '*' ||
      /^https?:\/\/[A-Za-z0-9.-]+(:[0-9]{1,5})?$/.test(o) ||
      /^https?:\/\/\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$/.test(o),
    { message: CORS_ORIGIN_EXPECTED },
  );
const PUBLIC_URL_EXPECTED = 'an http:// or https:// URL';
const publicUrl = z.string(expecting(PUBLIC_URL_EXPECTED)).refine(
  (u) => {
    try {
      const url = new URL(u);
      return (url.protocol === 'http:' || url.protocol === 'https:') && url.search === '' && url.hash === '';
    } catch {
      return false;
    }
  },
  { message: PUBLIC_URL_EXPECTED },
);

/** The HTTP listener: /dicom-web, /healthz, /metrics (web/). */
const httpSchema = section({
  /** Unset: no HTTP listener. */
  port: port.optional(),
  /** The address it binds: loopback unless configured (issue 14: secure defaults). */
  host: host.default('127.0.0.1'),
  /** PEM certificate and key: HTTPS (h2 and HTTP/1.1); unset: plain HTTP/1.1 and h2c. */
  cert: filePath.optional(),
  key: filePath.optional(),
  /** The DICOMweb base URL clients reach (behind a proxy); default: from each request's Host. */
  publicUrl: publicUrl.optional(),
  cors: section({
    /** Origins allowed to call from a browser page; none by default. */
    origins: list(corsOrigin).default([]),
    credentials: boolean().default(false),
    maxAgeSeconds: integer(0, 86400).default(600),
  })
    .superRefine((cors, ctx) => {
      if (cors.credentials && cors.origins.includes('*'))
        addRule(ctx, ['origins'], '"*" cannot be used with credentials: name the origins');
    })
    .default({}),
}).superRefine((h, ctx) => {
  const at = (key: string) => formatPath([...ctx.path, key]);
  if (h.cert !== undefined && h.key === undefined)
    addRule(ctx, ['key'], `required when ${at('cert')} is set`);
  else if (h.key !== undefined && h.cert === undefined)
    addRule(ctx, ['cert'], `required when ${at('key')} is set`);
});

const serverSchema = section({
  aet: aeTitle.default('PACS'),
  host: host.default('0.0.0.0'),
  port: port.default(11112),
  maxAssociations: integer(1, 10000).default(100),
  // PS3.8 D.1: a maximum length of 0 means unlimited.
  maxPduLength: z
    .number(expecting(PDU_LENGTH_EXPECTED))
    .int()
    .refine((n) => n === 0 || (n >= 4096 && n <= 16777216), { message: PDU_LENGTH_EXPECTED })
    .default(262144),
  acseTimeoutSeconds: seconds().default(30),
  dimseTimeoutSeconds: seconds().default(60),
  idleTimeoutSeconds: seconds().default(300),
  shutdownTimeoutSeconds: seconds().default(30),
  promiscuous: boolean().default(false),
  allowedCallingAets: list(callingAet).default([]),
  tls: tlsSchema.default({}),
  /** The DICOM services this process runs (verification is always on); default all. */
  services: list(oneOf(SERVICE_NAMES))
    .refine((names) => names.length > 0, { message: 'at least one service name' })
    .default([...SERVICE_NAMES]),
  /** Processes serving the DICOM port (node:cluster); 1 runs the server in this process. */
  workers: integer(1, 64).default(1),
  /** The HTTP listener (DICOMweb, /healthz, /metrics). */
  http: httpSchema.default({}),
  /** DICOM access control: the unknown-AE policy and the config file's AEs (dicom-access-config.ts). */
  dicom: dicomAccessSchema.default({}),
}).superRefine((server, ctx) => {
  if (server.tls.port !== undefined && server.tls.port === server.port) {
    addRule(ctx, ['tls', 'port'], `must differ from ${formatPath([...ctx.path, 'port'])} (${server.port})`);
  }
  if (
    server.http.port !== undefined &&
    (server.http.port === server.port || server.http.port === server.tls.port)
  ) {
    addRule(ctx, ['http', 'port'], 'must differ from the DICOM and TLS ports');
  }
});

const configSchema = section({
  server: serverSchema.default({}),
  ...storageConfig,
  data: section({ dir: nonEmpty('a folder path').default('./data') }).default({}),
  // Unset: an SQLite file in the data folder.
  db: section({ url: dbUrl.optional() }).default({}),
  ...queryRetrieveConfig,
  ...transcodeConfig,
  ...securityConfig,
  ...identityConfig,
  ...auditConfig,
  ...logConfig,
});

export type Config = z.infer<typeof configSchema>;
export type ServerConfig = Config['server'];
export type { DeepPartial };

export function defaultConfig(): Config {
  return configSchema.parse({});
}

/** The config of `pacs server`: defaults < the JSON file < the overrides (command-line flags). */
export function loadConfig(options: LoadConfigOptions<Config> = {}): Result<Config, ConfigError> {
  return loadConfigWith(configSchema, options);
}
