/**
 * Opening the index from its URL: `sqlite:PATH` (the embedded default: one file, WAL mode) or
 * `postgres://user@host:port/db` (`?schema=NAME` puts the tables in that schema, created if
 * missing). Migrations run before the index is returned.
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import {
  Kysely,
  PostgresDialect,
  type SqliteDatabase,
  SqliteDialect,
  type SqliteStatement,
  sql,
} from 'kysely';
import pg from 'pg';
import type { Logger } from '../../core/logger.js';
import { inTransaction, type SqlEngine } from '../database.js';
import { ArchiveError } from '../errors.js';
import type { GroupCommitOptions } from './group-commit.js';
import { type MigrationReport, migrate } from './migrations.js';
import type { IndexDatabase } from './schema.js';
import { SqlArchiveIndex } from './sql-index.js';

export interface OpenIndexOptions {
  /**
   * 'fsync' (default): a commit is on disk when it resolves (SQLite synchronous=FULL,
   * PostgreSQL synchronous_commit on). 'none' is for test rigs only.
   */
  readonly durability?: 'fsync' | 'none';
  /** Folder a relative SQLite path is taken from (default: the working directory). */
  readonly baseDir?: string;
  /** SQLite: how long to wait for another process's write lock (default 10 s). */
  readonly busyTimeoutMs?: number;
  /** PostgreSQL: connections in the pool (default 10). */
  readonly poolSize?: number;
  /** PostgreSQL: the schema to use (overrides `?schema=` of the URL). */
  readonly schema?: string;
  readonly groupCommit?: GroupCommitOptions;
  readonly logger?: Logger;
}

export interface OpenedIndex {
  readonly index: SqlArchiveIndex;
  readonly migrations: MigrationReport;
}

/** Which engine a URL names, with what the engine needs from it; an ERR_ARCHIVE_SCHEMA error when it names none. */
export function parseIndexUrl(
  url: string,
):
  | { engine: 'sqlite'; path: string }
  | { engine: 'postgres'; connectionString: string; schema: string | undefined } {
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    if (path === '') throw new ArchiveError('ERR_ARCHIVE_SCHEMA', 'sqlite: URL without a path');
    return { engine: 'sqlite', path };
  }
  if (/^postgres(ql)?:\/\//.test(url) && URL.canParse(url)) {
    const u = new URL(url);
    const schema = u.searchParams.get('schema') ?? undefined;
    u.searchParams.delete('schema');
    return { engine: 'postgres', connectionString: u.toString(), schema };
  }
  throw new ArchiveError(
    'ERR_ARCHIVE_SCHEMA',
    `index URL ${JSON.stringify(url)} is neither sqlite:PATH nor postgres://...`,
  );
}

export async function openIndex(url: string, options: OpenIndexOptions = {}): Promise<OpenedIndex> {
  const target = parseIndexUrl(url);
  const durable = (options.durability ?? 'fsync') === 'fsync';
  let db: Kysely<IndexDatabase>;
  let engine: SqlEngine;
  if (target.engine === 'sqlite') {
    engine = 'sqlite';
    const memory = target.path === ':memory:';
    const file = memory ? target.path : resolve(options.baseDir ?? '.', target.path);
    if (!memory) mkdirSync(dirname(file), { recursive: true });
    // better-sqlite3 waits for a lock synchronously: a second connection in this process would
    // block the event loop while the first holds the lock it needs, so there is one per file.
    if (openSqliteFiles.has(file))
      throw new ArchiveError('ERR_ARCHIVE_INDEX', `the index ${file} is open in this process already`);
    const sqlite = new Database(file, { timeout: options.busyTimeoutMs ?? 10_000 });
    try {
      if (!memory) sqlite.pragma('journal_mode = WAL');
      // WAL + FULL: each commit fsyncs the log, so a committed row survives a power loss.
      sqlite.pragma(`synchronous = ${durable ? 'FULL' : 'OFF'}`);
      sqlite.pragma('foreign_keys = ON');
    } catch (e) {
      sqlite.close();
      throw indexError(`cannot open the index at ${file}`, e);
    }
    if (!memory) openSqliteFiles.add(file);
    db = new Kysely<IndexDatabase>({
      dialect: new SqliteDialect({ database: cachingDatabase(sqlite, () => openSqliteFiles.delete(file)) }),
    });
  } else {
    engine = 'postgres';
    const schema = options.schema ?? target.schema;
    if (schema !== undefined && !/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(schema))
      throw new ArchiveError(
        'ERR_ARCHIVE_SCHEMA',
        `schema name ${JSON.stringify(schema)} is not a plain identifier`,
      );
    const settings = [
      ...(schema === undefined ? [] : [`-c search_path=${schema}`]),
      ...(durable ? [] : ['-c synchronous_commit=off']),
    ];
    const pool = new pg.Pool({
      connectionString: target.connectionString,
      max: options.poolSize ?? 10,
      ...(settings.length > 0 ? { options: settings.join(' ') } : {}),
      types: { getTypeParser: int8AsNumber },
    });
    // An idle client losing its connection must not crash the process; the next query reconnects.
    pool.on('error', (e) => options.logger?.warn({ err: e }, 'index connection lost'));
    db = new Kysely<IndexDatabase>({ dialect: new PostgresDialect({ pool }) });
    if (schema !== undefined) {
      try {
        await createSchema(db, schema);
      } catch (e) {
        await db.destroy();
        throw indexError(`cannot open the index at ${redact(url)}`, e);
      }
    }
  }
  let migrations: MigrationReport;
  try {
    migrations = await migrate(db, engine);
  } catch (e) {
    await db.destroy();
    throw e instanceof ArchiveError ? e : indexError(`cannot open the index at ${redact(url)}`, e);
  }
  const index = new SqlArchiveIndex(db, engine, {
    ...(options.groupCommit ? { groupCommit: options.groupCommit } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
  });
  options.logger?.debug({ engine, migrations }, 'index opened');
  return { index, migrations };
}

/** CREATE SCHEMA IF NOT EXISTS races with itself on PostgreSQL: serialise it with an advisory lock. */
async function createSchema(db: Kysely<IndexDatabase>, schema: string): Promise<void> {
  await inTransaction(db, 'postgres', async (conn) => {
    await sql`select pg_advisory_xact_lock(hashtext(${`pacs.create-schema.${schema}`}))`.execute(conn);
    await sql.raw(`create schema if not exists ${schema}`).execute(conn);
  });
}

/** SQLite files open in this process (resolved paths). */
const openSqliteFiles = new Set<string>();

function indexError(what: string, cause: unknown): ArchiveError {
  const detail =
    cause instanceof Error ? cause.message || String((cause as { code?: unknown }).code) : String(cause);
  return new ArchiveError('ERR_ARCHIVE_INDEX', `${what}: ${detail}`, { cause });
}

/** The URL without its password, for messages. */
function redact(url: string): string {
  if (!URL.canParse(url)) return url;
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}

// Sizes and ids are BIGINT on PostgreSQL; pg returns those as strings unless told otherwise.
// Values stay far below 2^53, so numbers are exact.
const int8AsNumber = ((oid: number, format?: 'text' | 'binary') =>
  oid === pg.types.builtins.INT8 && format !== 'binary'
    ? (value: string) => Number(value)
    : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser;

/** better-sqlite3 with prepared statements cached: kysely prepares every query anew otherwise. */
function cachingDatabase(db: Database.Database, onClose: () => void): SqliteDatabase {
  const cache = new Map<string, SqliteStatement>();
  return {
    close: () => {
      cache.clear();
      db.close();
      onClose();
    },
    prepare(text: string): SqliteStatement {
      let stmt = cache.get(text);
      if (stmt === undefined) {
        stmt = db.prepare(text) as unknown as SqliteStatement;
        if (cache.size >= 1000) {
          const oldest = cache.keys().next();
          if (!oldest.done) cache.delete(oldest.value);
        }
        cache.set(text, stmt);
      }
      return stmt;
    },
  };
}
