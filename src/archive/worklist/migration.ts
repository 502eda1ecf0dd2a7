/**
 * The worklist migration: the tables of worklist items and MPPS instances (schema.ts). Listed in
 * archive/index/migrations.ts like every migration; never edit it once shipped, add another.
 */
import { type ColumnDataType, type ColumnDefinitionBuilder, type Expression, type Kysely, sql } from 'kysely';
import type { SqlEngine } from '../database.js';

type ColumnType = ColumnDataType | Expression<unknown>;

export const WORKLIST_MIGRATION_NAME = 'worklist items and MPPS instances';

export async function createWorklistTables(db: Kysely<unknown>, engine: SqlEngine): Promise<void> {
  // As in the first migration: byte-order text on PostgreSQL, so that LIKE 'prefix%' uses the
  // btree index and ordering equals SQLite's.
  const key: ColumnType = engine === 'sqlite' ? 'text' : sql`text collate "C"`;
  const id: ColumnType = engine === 'sqlite' ? 'integer' : 'bigint';
  const primary = (c: ColumnDefinitionBuilder) =>
    engine === 'postgres' ? c.primaryKey().generatedAlwaysAsIdentity() : c.primaryKey();

  await db.schema
    .createTable('worklist_item')
    .addColumn('id', id, primary)
    .addColumn('study_instance_uid', key, (c) => c.notNull())
    .addColumn('sps_id', key, (c) => c.notNull())
    .addColumn('patient_id', key)
    .addColumn('patient_name', 'text')
    .addColumn('patient_name_norm', key)
    .addColumn('accession_number', key)
    .addColumn('requested_procedure_id', key)
    .addColumn('station_name', key)
    .addColumn('sps_start_date', key)
    .addColumn('sps_start_time', key)
    .addColumn('sps_start', key)
    .addColumn('modality', key)
    .addColumn('performing_physician_name', 'text')
    .addColumn('performing_physician_name_norm', key)
    .addColumn('sps_status', key)
    .addColumn('header', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addUniqueConstraint('worklist_item_step', ['study_instance_uid', 'sps_id'])
    .execute();
  for (const column of [
    'patient_id',
    'patient_name_norm',
    'accession_number',
    'requested_procedure_id',
    'sps_start',
    'sps_start_date',
    'modality',
    'sps_status',
  ])
    await db.schema.createIndex(`worklist_item_${column}`).on('worklist_item').column(column).execute();

  await db.schema
    .createTable('worklist_item_aet')
    .addColumn('item_fk', id, (c) => c.notNull().references('worklist_item.id').onDelete('cascade'))
    .addColumn('aet', key, (c) => c.notNull())
    .addPrimaryKeyConstraint('worklist_item_aet_pk', ['item_fk', 'aet'])
    .execute();
  await db.schema.createIndex('worklist_item_aet_aet').on('worklist_item_aet').column('aet').execute();

  await db.schema
    .createTable('mpps_instance')
    .addColumn('id', id, primary)
    .addColumn('sop_instance_uid', key, (c) => c.notNull().unique())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('calling_aet', 'text')
    .addColumn('header', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('mpps_worklist_item')
    .addColumn('mpps_fk', id, (c) => c.notNull().references('mpps_instance.id').onDelete('cascade'))
    .addColumn('item_fk', id, (c) => c.notNull().references('worklist_item.id').onDelete('cascade'))
    .addPrimaryKeyConstraint('mpps_worklist_item_pk', ['mpps_fk', 'item_fk'])
    .execute();
  await db.schema
    .createIndex('mpps_worklist_item_item_fk')
    .on('mpps_worklist_item')
    .column('item_fk')
    .execute();
}
