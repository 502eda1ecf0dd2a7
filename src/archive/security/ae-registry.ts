/**
 * The AE registry (security/ae-registry.ts port) on the index's SQL database, the
 * application_entity table of the security migration (SQLite or PostgreSQL), and in memory for
 * tests and the in-memory index. Read per association, so an AE added by `pacs ae add` while the
 * server runs is known at its next association.
 */
import type { Kysely, Selectable } from 'kysely';
import type { AeEntry, AeRegistry } from '../../security/ae-registry.js';
import { type AePermission, isAePermission } from '../../security/permissions.js';
import type { SqlEngine } from '../database.js';
import type { ArchiveIndex } from '../index/archive-index.js';
import { type OpenIndexOptions, openIndex } from '../index/open.js';
import type { IndexDatabase } from '../index/schema.js';
import { SqlArchiveIndex } from '../index/sql-index.js';

export interface ApplicationEntityTable {
  ae_title: string;
  host: string | null;
  port: number | null;
  permissions: string;
  move_destinations: string | null;
  tls_subject: string | null;
  bind_address: number;
  tls: number;
  description: string | null;
  created_at: string;
  updated_at: string;
}

type AeDatabase = {
  application_entity: ApplicationEntityTable;
};

/** What the store needs of the index: its database and engine (SqlArchiveIndex has both). */
export interface SqlIndexHandle {
  readonly db: Kysely<IndexDatabase>;
  readonly engine: SqlEngine;
}

/** '*' in move_destinations: any known AE. */
const ANY = '*';

function rowToEntry(row: Selectable<ApplicationEntityTable>): AeEntry {
  const permissions = row.permissions
    .split(',')
    .map((p) => p.trim())
    .filter((p): p is AePermission => isAePermission(p));
  const moves = row.move_destinations;
  return {
    aeTitle: row.ae_title,
    ...(row.host !== null ? { host: row.host } : {}),
    ...(row.port !== null ? { port: row.port } : {}),
    permissions,
    ...(moves === null
      ? {}
      : { moveDestinations: moves === ANY ? 'any' : moves.split(',').filter((m) => m !== '') }),
    ...(row.tls_subject !== null ? { tlsSubject: row.tls_subject } : {}),
    bindAddress: row.bind_address !== 0,
    tls: row.tls !== 0,
    ...(row.description !== null ? { description: row.description } : {}),
  };
}

function entryToRow(entry: AeEntry, now: string): ApplicationEntityTable {
  const moves = entry.moveDestinations;
  return {
    ae_title: entry.aeTitle.trim(),
    host: entry.host ?? null,
    port: entry.port ?? null,
    permissions: entry.permissions.join(','),
    move_destinations: moves === undefined ? null : moves === 'any' ? ANY : moves.join(','),
    tls_subject: entry.tlsSubject ?? null,
    bind_address: entry.bindAddress ? 1 : 0,
    tls: entry.tls === true ? 1 : 0,
    description: entry.description ?? null,
    created_at: now,
    updated_at: now,
  };
}

export class SqlAeRegistry implements AeRegistry {
  private readonly db: Kysely<IndexDatabase & AeDatabase>;

  constructor(index: SqlIndexHandle) {
    this.db = index.db.withTables<AeDatabase>();
  }

  async get(aeTitle: string): Promise<AeEntry | undefined> {
    const row = await this.db
      .selectFrom('application_entity')
      .selectAll()
      .where('ae_title', '=', aeTitle.trim())
      .executeTakeFirst();
    return row === undefined ? undefined : rowToEntry(row);
  }

  async list(): Promise<AeEntry[]> {
    const rows = await this.db.selectFrom('application_entity').selectAll().orderBy('ae_title').execute();
    return rows.map(rowToEntry);
  }

  async put(entry: AeEntry): Promise<void> {
    const row = entryToRow(entry, new Date().toISOString());
    const { ae_title: _key, created_at: _created, ...changes } = row;
    await this.db
      .insertInto('application_entity')
      .values(row)
      .onConflict((oc) => oc.column('ae_title').doUpdateSet(changes))
      .execute();
  }

  async remove(aeTitle: string): Promise<boolean> {
    const result = await this.db
      .deleteFrom('application_entity')
      .where('ae_title', '=', aeTitle.trim())
      .executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }
}

export class MemoryAeRegistry implements AeRegistry {
  private readonly entries = new Map<string, AeEntry>();

  constructor(entries: readonly AeEntry[] = []) {
    for (const e of entries) this.entries.set(e.aeTitle.trim(), e);
  }

  async get(aeTitle: string): Promise<AeEntry | undefined> {
    return this.entries.get(aeTitle.trim());
  }

  async list(): Promise<AeEntry[]> {
    return [...this.entries.values()].sort((a, b) =>
      a.aeTitle < b.aeTitle ? -1 : a.aeTitle > b.aeTitle ? 1 : 0,
    );
  }

  async put(entry: AeEntry): Promise<void> {
    this.entries.set(entry.aeTitle.trim(), { ...entry, aeTitle: entry.aeTitle.trim() });
  }

  async remove(aeTitle: string): Promise<boolean> {
    return this.entries.delete(aeTitle.trim());
  }
}

const shared = new WeakMap<ArchiveIndex, AeRegistry>();

/** The AE registry of an opened index: on its SQL database, or in memory for the in-memory index. */
export function aeRegistryOf(index: ArchiveIndex): AeRegistry {
  let registry = shared.get(index);
  if (registry === undefined) {
    registry = index instanceof SqlArchiveIndex ? new SqlAeRegistry(index) : new MemoryAeRegistry();
    shared.set(index, registry);
  }
  return registry;
}

export interface OpenedAeRegistry {
  readonly registry: SqlAeRegistry;
  close(): Promise<void>;
}

/** The registry of an index URL (`pacs ae`), migrations run first. */
export async function openAeRegistry(url: string, options: OpenIndexOptions = {}): Promise<OpenedAeRegistry> {
  const { index } = await openIndex(url, options);
  return { registry: new SqlAeRegistry(index), close: () => index.close() };
}
