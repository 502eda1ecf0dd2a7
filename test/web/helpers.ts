/**
 * Fixtures of the web tests: an archive in a temporary folder (SQLite, or PostgreSQL in a schema
 * of its own) with the web application in front of it, listening on a loopback port, and helpers
 * to fill the archive through its one ingest entry point.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { type Archive, openArchive } from '../../src/archive/archive.js';
import { EventBus } from '../../src/core/events.js';
import type { Logger } from '../../src/core/logger.js';
import type { DataSet } from '../../src/dicom/dataset.js';
import { EXPLICIT_VR_LE } from '../../src/dicom/uid.js';
import { encodeDataSet } from '../../src/dicom/writer.js';
import type { IdentityService } from '../../src/security/authentication.js';
import type { SessionSettings } from '../../src/web/auth/authenticate.js';
import type { CorsOptions } from '../../src/web/cors.js';
import { startWebServer, type WebServerHandle } from '../../src/web/listen.js';
import { type AccessPolicy, OPEN_POLICY } from '../../src/web/policy.js';
import { dropSchema, PG_URL, randomSchema } from '../archive/helpers.js';

export interface TestWeb {
  readonly archive: Archive;
  readonly server: WebServerHandle;
  /** `http://127.0.0.1:PORT` */
  readonly origin: string;
  /** `http://127.0.0.1:PORT/dicom-web` */
  readonly base: string;
  readonly dataDir: string;
  readonly events: EventBus;
  /** Log lines written by the server (JSON objects), for tests that check a reason was logged. */
  readonly logLines: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

export interface TestWebOptions {
  readonly engine?: 'sqlite' | 'postgres';
  readonly cors?: CorsOptions;
  /** Default OPEN_POLICY (tests of the routes themselves); the auth tests pass SECURITY_POLICY. */
  readonly policy?: AccessPolicy;
  /** The identity service, or how to make it on the test's archive (the real one sits on its index). */
  readonly identity?: IdentityService | ((archive: Archive, events: EventBus) => IdentityService);
  readonly session?: SessionSettings;
  readonly aeTitle?: string;
}

/** A logger that keeps its lines in memory (level debug). */
export function memoryLogger(lines: Array<Record<string, unknown>>): Logger {
  return pino(
    { level: 'debug' },
    {
      write(line: string) {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      },
    },
  );
}

export async function startTestWeb(options: TestWebOptions = {}): Promise<TestWeb> {
  const dataDir = mkdtempSync(join(tmpdir(), 'pacs-web-test-'));
  const schema = options.engine === 'postgres' ? randomSchema() : undefined;
  const dbUrl =
    schema !== undefined ? `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}` : undefined;
  const logLines: Array<Record<string, unknown>> = [];
  const logger = memoryLogger(logLines);
  const events = new EventBus();
  const archive = await openArchive({
    dataDir,
    ...(dbUrl !== undefined ? { dbUrl } : {}),
    durability: 'none',
    logger,
    events,
  });
  const server = await startWebServer({
    host: '127.0.0.1',
    port: 0,
    logger,
    health: async () => ({ ok: true }),
    metrics: async () => '',
    ...(options.cors !== undefined ? { cors: options.cors } : {}),
    policy: options.policy ?? OPEN_POLICY,
    ...(options.identity !== undefined
      ? {
          identity:
            typeof options.identity === 'function' ? options.identity(archive, events) : options.identity,
        }
      : {}),
    ...(options.session !== undefined ? { session: options.session } : {}),
    dicomweb: { archive, logger, events, aeTitle: options.aeTitle ?? 'PACS' },
  });
  const origin = `http://127.0.0.1:${server.port}`;
  return {
    archive,
    server,
    origin,
    base: `${origin}/dicom-web`,
    dataDir,
    events,
    logLines,
    async close() {
      await server.close();
      await archive.close();
      if (schema !== undefined) await dropSchema(schema);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Stores data sets through the archive's ingest entry point (as C-STORE would, Explicit VR LE). */
export async function ingestDataSets(archive: Archive, dataSets: readonly DataSet[]): Promise<void> {
  for (const ds of dataSets) {
    const bytes = encodeDataSet(ds, EXPLICIT_VR_LE);
    const outcome = await archive.ingest([bytes], {
      transferSyntaxUid: EXPLICIT_VR_LE,
      source: 'TEST',
      via: 'import',
    });
    if (!outcome.ok) throw outcome.error;
  }
}

/** Stores Part-10 files (the pydicom corpus...) through the ingest entry point. */
export async function ingestFiles(archive: Archive, paths: readonly string[]): Promise<void> {
  const { createReadStream } = await import('node:fs');
  for (const path of paths) {
    const outcome = await archive.ingest(createReadStream(path), {
      format: 'part10',
      source: 'TEST',
      via: 'import',
    });
    if (!outcome.ok) throw new Error(`${path}: ${outcome.error.message}`);
  }
}
