/**
 * The archive's SQL database: what differs between its two engines (ARCHITECTURE.md decision 4)
 * and the one way to run a transaction, a savepoint and a retry on them. The index, the job
 * store, the worklist store and the migrations all go through here.
 */
import { type Kysely, sql } from 'kysely';

export type SqlEngine = 'sqlite' | 'postgres';

/**
 * Runs `body` in one transaction on one connection: commit when it resolves, roll back when it
 * throws. SQLite takes the write lock at the start (`begin immediate`: a deferred transaction
 * could fail to upgrade its lock later, after work was done).
 */
export function inTransaction<DB, R>(
  db: Kysely<DB>,
  engine: SqlEngine,
  body: (conn: Kysely<DB>) => Promise<R>,
): Promise<R> {
  return db.connection().execute(async (conn) => {
    await sql.raw(engine === 'sqlite' ? 'begin immediate' : 'begin').execute(conn);
    let result: R;
    try {
      result = await body(conn);
      await sql.raw('commit').execute(conn);
    } catch (e) {
      // After a failed commit SQLite may still be in the transaction; PostgreSQL has ended it (a no-op then).
      await sql
        .raw('rollback')
        .execute(conn)
        .catch(() => undefined);
      throw e;
    }
    return result;
  });
}

/** Runs `body` in a savepoint of the current transaction; on a throw, rolls back to it and rethrows. */
export async function inSavepoint<DB, R>(conn: Kysely<DB>, name: string, body: () => Promise<R>): Promise<R> {
  if (!/^[a-z][a-z0-9_]*$/.test(name)) throw new TypeError(`savepoint name ${JSON.stringify(name)}`);
  await sql.raw(`savepoint ${name}`).execute(conn);
  try {
    const result = await body();
    await sql.raw(`release savepoint ${name}`).execute(conn);
    return result;
  } catch (e) {
    await sql.raw(`rollback to savepoint ${name}`).execute(conn);
    await sql.raw(`release savepoint ${name}`).execute(conn);
    throw e;
  }
}

const PG_RETRYABLE = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '23505', // unique_violation: another process created the same row first
]);
/** foreign_key_violation: another process removed a parent row we were joining (index rows only). */
export const PG_FOREIGN_KEY_VIOLATION = '23503';
const SQLITE_RETRYABLE = new Set(['SQLITE_BUSY', 'SQLITE_BUSY_SNAPSHOT', 'SQLITE_LOCKED']);

/**
 * True for failures worth trying again in a new transaction: a deadlock, a serialization failure,
 * a lost race with another writer (`alsoPostgres` adds codes, e.g. PG_FOREIGN_KEY_VIOLATION).
 */
export function isRetryable(
  engine: SqlEngine,
  error: unknown,
  alsoPostgres: readonly string[] = [],
): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return false;
  return engine === 'postgres'
    ? PG_RETRYABLE.has(code) || alsoPostgres.includes(code)
    : SQLITE_RETRYABLE.has(code);
}

/** inTransaction, again (after a short random wait) while it fails with a retryable error, `attempts` times at most. */
export async function retryingTransaction<DB, R>(
  db: Kysely<DB>,
  engine: SqlEngine,
  attempts: number,
  body: (conn: Kysely<DB>) => Promise<R>,
): Promise<R> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await inTransaction(db, engine, body);
    } catch (e) {
      if (attempt >= attempts || !isRetryable(engine, e)) throw e;
      await new Promise((resolve) => setTimeout(resolve, 5 * attempt + Math.random() * 20));
    }
  }
}
