/**
 * Versioned schema migrations, applied in order at open. The schema_migrations table records
 * each applied version; all pending migrations run in one transaction (DDL is transactional on
 * both engines), under a lock so that several servers starting on one PostgreSQL database do not
 * race. A database newer than this program is refused rather than used.
 */
import { type ColumnDataType, type ColumnDefinitionBuilder, type Expression, type Kysely, sql } from 'kysely';
import { inTransaction, type SqlEngine } from '../database.js';
import { ArchiveError } from '../errors.js';
import { createSecurityTables, SECURITY_MIGRATION_NAME } from '../security/migration.js';
import { createWorklistTables, WORKLIST_MIGRATION_NAME } from '../worklist/migration.js';
import type { IndexDatabase } from './schema.js';

export interface Migration {
  /** 1, 2, 3... with no gaps; never renumber or edit one that has shipped: add the next. */
  readonly version: number;
  readonly name: string;
  up(db: Kysely<unknown>, engine: SqlEngine): Promise<void>;
}

type ColumnType = ColumnDataType | Expression<unknown>;

/** Column types that differ between the engines. */
function types(engine: SqlEngine): { id: ColumnType; ref: ColumnType; key: ColumnType; size: ColumnType } {
  if (engine === 'sqlite') return { id: 'integer', ref: 'integer', key: 'text', size: 'integer' };
  // Byte-order collation: LIKE 'prefix%' can use the btree index, and ordering is the same as SQLite's (BINARY).
  return { id: 'bigint', ref: 'bigint', key: sql`text collate "C"`, size: 'bigint' };
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'patient, study, series and instance levels',
    async up(db, engine) {
      const t = types(engine);
      const id = (c: ColumnDefinitionBuilder) =>
        engine === 'postgres' ? c.primaryKey().generatedAlwaysAsIdentity() : c.primaryKey();
      await db.schema
        .createTable('patient')
        .addColumn('id', t.id, id)
        .addColumn('patient_key', t.key, (c) => c.notNull().unique())
        .addColumn('patient_id', t.key)
        .addColumn('issuer_of_patient_id', t.key)
        .addColumn('patient_name', 'text')
        .addColumn('patient_name_norm', t.key)
        .addColumn('patient_birth_date', t.key)
        .addColumn('patient_sex', 'text')
        .addColumn('number_of_studies', 'integer', (c) => c.notNull())
        .addColumn('header', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('patient_patient_id').on('patient').column('patient_id').execute();
      await db.schema.createIndex('patient_name_norm').on('patient').column('patient_name_norm').execute();

      await db.schema
        .createTable('study')
        .addColumn('id', t.id, id)
        .addColumn('patient_fk', t.ref, (c) => c.notNull().references('patient.id'))
        .addColumn('study_instance_uid', t.key, (c) => c.notNull().unique())
        .addColumn('study_date', t.key)
        .addColumn('study_time', t.key)
        .addColumn('accession_number', t.key)
        .addColumn('study_id', t.key)
        .addColumn('referring_physician_name', 'text')
        .addColumn('referring_physician_name_norm', t.key)
        .addColumn('study_description', 'text')
        .addColumn('patient_id', t.key)
        .addColumn('issuer_of_patient_id', t.key)
        .addColumn('patient_name', 'text')
        .addColumn('patient_name_norm', t.key)
        .addColumn('patient_birth_date', t.key)
        .addColumn('patient_sex', 'text')
        .addColumn('number_of_series', 'integer', (c) => c.notNull())
        .addColumn('number_of_instances', 'integer', (c) => c.notNull())
        .addColumn('modalities_in_study', 'text')
        .addColumn('sop_classes_in_study', 'text')
        .addColumn('header', 'text', (c) => c.notNull())
        .addColumn('patient_header', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      for (const column of [
        'patient_fk',
        'study_date',
        'accession_number',
        'patient_id',
        'patient_name_norm',
      ])
        await db.schema.createIndex(`study_${column}`).on('study').column(column).execute();

      await db.schema
        .createTable('series')
        .addColumn('id', t.id, id)
        .addColumn('study_fk', t.ref, (c) => c.notNull().references('study.id'))
        .addColumn('series_instance_uid', t.key, (c) => c.notNull().unique())
        .addColumn('modality', t.key)
        .addColumn('series_number', 'integer')
        .addColumn('series_description', 'text')
        .addColumn('body_part_examined', t.key)
        .addColumn('number_of_instances', 'integer', (c) => c.notNull())
        .addColumn('header', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('series_study_fk').on('series').column('study_fk').execute();
      await db.schema.createIndex('series_modality').on('series').column('modality').execute();

      await db.schema
        .createTable('instance')
        .addColumn('id', t.id, id)
        .addColumn('series_fk', t.ref, (c) => c.notNull().references('series.id'))
        .addColumn('study_fk', t.ref, (c) => c.notNull().references('study.id'))
        .addColumn('sop_instance_uid', t.key, (c) => c.notNull().unique())
        .addColumn('sop_class_uid', t.key, (c) => c.notNull())
        .addColumn('instance_number', 'integer')
        .addColumn('transfer_syntax_uid', 'text', (c) => c.notNull())
        .addColumn('path', t.key, (c) => c.notNull().unique())
        .addColumn('size', t.size, (c) => c.notNull())
        .addColumn('received_at', 'text', (c) => c.notNull())
        .addColumn('calling_aet', 'text')
        .addColumn('header', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('instance_series_fk').on('instance').column('series_fk').execute();
      await db.schema.createIndex('instance_study_fk').on('instance').column('study_fk').execute();
    },
  },
  {
    version: 2,
    name: 'job queue',
    async up(db, engine) {
      const t = types(engine);
      const id = (c: ColumnDefinitionBuilder) =>
        engine === 'postgres' ? c.primaryKey().generatedAlwaysAsIdentity() : c.primaryKey();
      // Times are ISO 8601 UTC text like the other tables: fixed width, so they compare as text.
      await db.schema
        .createTable('job')
        .addColumn('id', t.id, id)
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('priority', 'integer', (c) => c.notNull())
        .addColumn('payload', 'text', (c) => c.notNull())
        .addColumn('state', t.key, (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull())
        .addColumn('max_attempts', 'integer', (c) => c.notNull())
        .addColumn('next_run_at', t.key, (c) => c.notNull())
        .addColumn('destination', t.key)
        .addColumn('locked_by', 'text')
        .addColumn('locked_at', 'text')
        .addColumn('lease_until', t.key)
        .addColumn('cancel_requested', 'integer', (c) => c.notNull())
        .addColumn('result', 'text')
        .addColumn('last_error', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addColumn('finished_at', 'text')
        .execute();
      // The claim scans runnable jobs in priority order; the limit counts running jobs per destination.
      await db.schema
        .createIndex('job_runnable')
        .on('job')
        .columns(['state', 'priority', 'next_run_at', 'id'])
        .execute();
      await db.schema.createIndex('job_destination').on('job').columns(['destination', 'state']).execute();
    },
  },
  {
    version: 3,
    name: WORKLIST_MIGRATION_NAME,
    up: createWorklistTables,
  },
  {
    version: 4,
    name: 'instance metadata and bulk layout for WADO-RS',
    async up(db) {
      // ARCHITECTURE.md decision 8: kept at ingest; rows indexed before stay NULL (read from the file on request).
      await db.schema.alterTable('instance').addColumn('metadata', 'text').execute();
      await db.schema.alterTable('instance').addColumn('bulk', 'text').execute();
    },
  },
  {
    version: 5,
    name: SECURITY_MIGRATION_NAME,
    up: createSecurityTables,
  },
];

export interface MigrationReport {
  /** The schema version before and after. */
  readonly from: number;
  readonly to: number;
  readonly applied: readonly number[];
}

/** Brings the schema to the latest version. Runs on one connection, in one transaction. */
export async function migrate(
  db: Kysely<IndexDatabase>,
  engine: SqlEngine,
  migrations: readonly Migration[] = MIGRATIONS,
): Promise<MigrationReport> {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1)
      throw new Error(`migration ${m.name} is numbered ${m.version}, expected ${i + 1}`);
  });
  const latest = migrations.length;
  // SQLite takes the write lock at once, so that a second process waits (busy timeout) instead of failing later.
  return inTransaction(db, engine, async (conn) => {
    if (engine === 'postgres')
      await sql`select pg_advisory_xact_lock(hashtext(current_schema() || '.pacs.schema_migrations'))`.execute(
        conn,
      );
    await conn.schema
      .createTable('schema_migrations')
      .ifNotExists()
      .addColumn('version', 'integer', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('applied_at', 'text', (c) => c.notNull())
      .execute();
    const row = await conn
      .selectFrom('schema_migrations')
      .select((eb) => eb.fn.max('version').as('version'))
      .executeTakeFirst();
    const from = Number(row?.version ?? 0);
    if (from > latest)
      throw new ArchiveError(
        'ERR_ARCHIVE_SCHEMA',
        `the index schema is at version ${from}, newer than this program knows (${latest}): upgrade the program`,
      );
    const applied: number[] = [];
    for (const m of migrations.slice(from)) {
      await m.up(conn as unknown as Kysely<unknown>, engine);
      await conn
        .insertInto('schema_migrations')
        .values({ version: m.version, name: m.name, applied_at: new Date().toISOString() })
        .execute();
      applied.push(m.version);
    }
    return { from, to: Math.max(from, latest), applied };
  });
}
