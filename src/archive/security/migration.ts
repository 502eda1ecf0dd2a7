/**
 * The security migration (issue 14): users, roles, API tokens, web sessions, the AE registry and
 * the audit trail. Listed in archive/index/migrations.ts like every migration; never edit it once
 * shipped, add another. Times are ISO 8601 UTC text like the other tables.
 */
import { type ColumnDataType, type ColumnDefinitionBuilder, type Expression, type Kysely, sql } from 'kysely';
import type { SqlEngine } from '../database.js';

type ColumnType = ColumnDataType | Expression<unknown>;

export const SECURITY_MIGRATION_NAME = 'users, roles, tokens, sessions, AE registry and audit trail';

export async function createSecurityTables(db: Kysely<unknown>, engine: SqlEngine): Promise<void> {
  const key: ColumnType = engine === 'sqlite' ? 'text' : sql`text collate "C"`;
  const id: ColumnType = engine === 'sqlite' ? 'integer' : 'bigint';
  const primary = (c: ColumnDefinitionBuilder) =>
    engine === 'postgres' ? c.primaryKey().generatedAlwaysAsIdentity() : c.primaryKey();

  // Roles beyond the built-in ones (security/permissions.ts BUILTIN_ROLES); permissions comma separated.
  await db.schema
    .createTable('app_role')
    .addColumn('name', key, (c) => c.primaryKey())
    .addColumn('description', 'text', (c) => c.notNull())
    .addColumn('permissions', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();

  // password_hash: the encoded memory-hard hash (algorithm and parameters in the string); NULL: no password login.
  await db.schema
    .createTable('app_user')
    .addColumn('id', id, primary)
    .addColumn('name', key, (c) => c.notNull().unique())
    .addColumn('role', key, (c) => c.notNull())
    .addColumn('password_hash', 'text')
    .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();

  // token_id: the public part of a token (shown in listings); secret_hash: SHA-256 of the secret part.
  await db.schema
    .createTable('api_token')
    .addColumn('token_id', key, (c) => c.primaryKey())
    .addColumn('user_id', id, (c) => c.notNull().references('app_user.id').onDelete('cascade'))
    .addColumn('role', key, (c) => c.notNull())
    .addColumn('secret_hash', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('expires_at', key)
    .addColumn('revoked_at', key)
    .addColumn('last_used_at', 'text')
    .execute();
  await db.schema.createIndex('api_token_user').on('api_token').column('user_id').execute();

  // session_hash: SHA-256 of the cookie's value (the cookie itself is never stored).
  await db.schema
    .createTable('web_session')
    .addColumn('session_hash', key, (c) => c.primaryKey())
    .addColumn('user_id', id, (c) => c.notNull().references('app_user.id').onDelete('cascade'))
    .addColumn('csrf_token', 'text', (c) => c.notNull())
    .addColumn('remote_address', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('expires_at', key, (c) => c.notNull())
    .addColumn('last_seen_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('web_session_expires').on('web_session').column('expires_at').execute();

  // The AE registry: permissions comma separated (security/permissions.ts AE_PERMISSIONS);
  // move_destinations: NULL for any known AE, else comma separated titles; tls_subject: a
  // client-certificate subject the association must present.
  await db.schema
    .createTable('application_entity')
    .addColumn('ae_title', key, (c) => c.primaryKey())
    .addColumn('host', 'text')
    .addColumn('port', 'integer')
    .addColumn('permissions', 'text', (c) => c.notNull())
    .addColumn('move_destinations', 'text')
    .addColumn('tls_subject', 'text')
    .addColumn('bind_address', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('description', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();

  // The audit trail as kept in the index (the spool and the syslog sender are separate): one row per
  // DICOM audit message; message: its XML (PS3.15 A.5); summary: its JSON digest (EventID, participants,
  // objects: security/audit/record.ts); message_id: the spool's id, so a redelivered message is kept once;
  // the other columns are what `pacs audit` filters on.
  await db.schema
    .createTable('audit_record')
    .addColumn('id', id, primary)
    .addColumn('message_id', key, (c) => c.notNull().unique())
    .addColumn('event_time', key, (c) => c.notNull())
    .addColumn('event_id', key, (c) => c.notNull())
    .addColumn('event_action', 'text')
    .addColumn('outcome', 'integer', (c) => c.notNull())
    .addColumn('user_name', key)
    .addColumn('patient_id', key)
    .addColumn('study_instance_uid', key)
    .addColumn('remote_address', 'text')
    .addColumn('summary', 'text', (c) => c.notNull())
    .addColumn('message', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('audit_record_time').on('audit_record').column('event_time').execute();
  await db.schema
    .createIndex('audit_record_user')
    .on('audit_record')
    .columns(['user_name', 'event_time'])
    .execute();
  await db.schema
    .createIndex('audit_record_patient')
    .on('audit_record')
    .columns(['patient_id', 'event_time'])
    .execute();
}
