/**
 * The worklist store on the index's SQL database (SQLite or PostgreSQL, the tables of the worklist
 * migration). It shares the index's connections: on SQLite there is one connection per file and
 * process, so a transaction here waits for the index's writes and the other way round. Each change
 * is one transaction that starts by taking the write lock (SQLite: BEGIN IMMEDIATE) or locks the
 * rows it changes (PostgreSQL: SELECT ... FOR UPDATE); a lost race between processes (a unique
 * violation, a deadlock, a busy database) runs the transaction again.
 *
 * Queries read committed data only and per request, so items imported by another process (`pacs
 * worklist import` while the server runs) are served at once.
 */
import type { Expression, ExpressionBuilder, Kysely, Selectable, SqlBool } from 'kysely';
import type { Result } from '../../core/result.js';
import type { DicomJsonObject } from '../../dicom/json.js';
import { normalizePersonName } from '../../dicom/matching/person-name.js';
import type { MatchCondition } from '../../dicom/matching.js';
import { retryingTransaction, type SqlEngine } from '../database.js';
import { ArchiveError } from '../errors.js';
import type { IndexDatabase } from '../index/schema.js';
import { itemsWithColumns, requireSelective, stationAeTitlesOf, withStepStatus } from './columns.js';
import type { MppsInstanceTable, WorklistDatabase, WorklistItemTable } from './schema.js';
import { candidateFilter } from './sql-conditions.js';
import {
  type CandidateOptions,
  type CreateMppsResult,
  type ItemSelector,
  type MppsChange,
  type MppsRecord,
  type NewMpps,
  type PutItemsReport,
  refersTo,
  type UpdateMppsResult,
  type WorklistColumns,
  type WorklistItem,
  type WorklistStore,
} from './worklist-store.js';

type Db = Kysely<IndexDatabase & WorklistDatabase>;

/** What the store needs of the index: its database and engine (SqlArchiveIndex has both). */
export interface SqlIndexHandle {
  readonly db: Kysely<IndexDatabase>;
  readonly engine: SqlEngine;
}

const PAGE = 500;
const ATTEMPTS = 5;

export class SqlWorklistStore implements WorklistStore {
  readonly engine: SqlEngine;
  private readonly db: Db;

  constructor(index: SqlIndexHandle) {
    this.engine = index.engine;
    this.db = index.db.withTables<WorklistDatabase>();
  }

  // --- items -------------------------------------------------------------------------------------

  async putItems(items: readonly DicomJsonObject[]): Promise<PutItemsReport> {
    const prepared = itemsWithColumns(items);
    return this.transaction(async (conn) => {
      const now = new Date().toISOString();
      const ids: number[] = [];
      let replaced = 0;
      for (const { item, columns } of prepared) {
        const existing = await conn
          .selectFrom('worklist_item')
          .select(['id', 'created_at'])
          .where('study_instance_uid', '=', columns.studyInstanceUid)
          .where('sps_id', '=', columns.scheduledProcedureStepId)
          .executeTakeFirst();
        const values = { ...rowValues(columns), header: JSON.stringify(item), updated_at: now };
        let id: number;
        if (existing) {
          // Updated in place: the MPPS instances that perform it stay linked.
          id = Number(existing.id);
          await conn.updateTable('worklist_item').set(values).where('id', '=', id).execute();
          await conn.deleteFrom('worklist_item_aet').where('item_fk', '=', id).execute();
          replaced++;
        } else {
          const row = await conn
            .insertInto('worklist_item')
            .values({ ...values, created_at: now })
            .returning('id')
            .executeTakeFirstOrThrow();
          id = Number(row.id);
        }
        if (columns.stationAeTitles.length > 0)
          await conn
            .insertInto('worklist_item_aet')
            .values(columns.stationAeTitles.map((aet) => ({ item_fk: id, aet })))
            .execute();
        ids.push(id);
      }
      return { ids, added: ids.length - replaced, replaced };
    });
  }

  async removeItems(selector: ItemSelector): Promise<number> {
    requireSelective(selector);
    return this.transaction(async (conn) => {
      const result = await conn
        .deleteFrom('worklist_item')
        .where((eb) => selectorFilter(eb, selector) ?? eb.lit(true))
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    });
  }

  async getItem(id: number): Promise<WorklistItem | undefined> {
    const row = await this.db.selectFrom('worklist_item').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) return undefined;
    return this.itemsOf([row])[0];
  }

  async *listItems(selector: ItemSelector = { all: true }): AsyncIterable<WorklistItem> {
    let after = 0;
    for (;;) {
      const rows = await this.db
        .selectFrom('worklist_item')
        .selectAll()
        .where((eb) => {
          const next = eb('id', '>', after);
          const filter = selectorFilter(eb, selector);
          return filter === undefined ? next : eb.and([next, filter]);
        })
        .orderBy('id')
        .limit(PAGE)
        .execute();
      yield* this.itemsOf(rows);
      if (rows.length < PAGE) return;
      after = Number((rows[rows.length - 1] as Selectable<WorklistItemTable>).id);
    }
  }

  async countItems(): Promise<number> {
    const row = await this.db
      .selectFrom('worklist_item')
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async *candidates(
    conditions: readonly MatchCondition[],
    options: CandidateOptions = {},
  ): AsyncIterable<WorklistItem> {
    const page = options.pageSize ?? PAGE;
    let after = 0;
    for (;;) {
      if (options.signal?.aborted) return;
      const rows = await this.db
        .selectFrom('worklist_item')
        .selectAll()
        .where((eb) => {
          const filter = candidateFilter(eb, conditions);
          const next = eb('id', '>', after);
          return filter === undefined ? next : eb.and([next, filter]);
        })
        .orderBy('id')
        .limit(page)
        .execute();
      for (const item of this.itemsOf(rows)) {
        if (options.signal?.aborted) return;
        yield item;
      }
      if (rows.length < page) return;
      after = Number((rows[rows.length - 1] as Selectable<WorklistItemTable>).id);
    }
  }

  // --- MPPS --------------------------------------------------------------------------------------

  async createMpps(mpps: NewMpps): Promise<CreateMppsResult> {
    return this.transaction(async (conn) => {
      const existing = await findMpps(conn, mpps.sopInstanceUid);
      if (existing) return { status: 'duplicate', existing };
      const now = new Date().toISOString();
      const row = await conn
        .insertInto('mpps_instance')
        .values({
          sop_instance_uid: mpps.sopInstanceUid,
          status: mpps.status,
          calling_aet: mpps.callingAet,
          header: JSON.stringify(mpps.dataSet),
          created_at: now,
          updated_at: now,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      const mppsFk = Number(row.id);
      const items = await this.linkedItems(conn, mpps);
      if (items.length > 0)
        await conn
          .insertInto('mpps_worklist_item')
          .values(items.map((item) => ({ mpps_fk: mppsFk, item_fk: item.id })))
          .execute();
      await setItemStatus(conn, items, mpps.itemStatus, now);
      const record = await findMpps(conn, mpps.sopInstanceUid);
      if (!record) throw new Error('the MPPS instance just inserted is not there');
      return { status: 'created', record };
    });
  }

  async updateMpps<E>(
    sopInstanceUid: string,
    decide: (current: MppsRecord) => Result<MppsChange, E>,
  ): Promise<UpdateMppsResult<E>> {
    return this.transaction(async (conn): Promise<UpdateMppsResult<E>> => {
      const current = await findMpps(conn, sopInstanceUid, this.engine === 'postgres');
      if (!current) return { status: 'not-found' };
      const change = decide(current);
      if (!change.ok) return { status: 'refused', error: change.error };
      const now = new Date().toISOString();
      await conn
        .updateTable('mpps_instance')
        .set({ status: change.value.status, header: JSON.stringify(change.value.dataSet), updated_at: now })
        .where('sop_instance_uid', '=', sopInstanceUid)
        .execute();
      if (change.value.itemStatus !== undefined && current.itemIds.length > 0) {
        const rows = await conn
          .selectFrom('worklist_item')
          .select(['id', 'header'])
          .where('id', 'in', [...current.itemIds])
          .execute();
        await setItemStatus(
          conn,
          rows.map((r) => ({ id: Number(r.id), dataSet: JSON.parse(r.header) as DicomJsonObject })),
          change.value.itemStatus,
          now,
        );
      }
      const record = await findMpps(conn, sopInstanceUid);
      if (!record) throw new Error('the MPPS instance just updated is not there');
      return { status: 'updated', record };
    });
  }

  findMpps(sopInstanceUid: string): Promise<MppsRecord | undefined> {
    return findMpps(this.db, sopInstanceUid);
  }

  async mppsOfItem(id: number): Promise<MppsRecord[]> {
    const rows = await this.db
      .selectFrom('mpps_worklist_item')
      .innerJoin('mpps_instance', 'mpps_instance.id', 'mpps_worklist_item.mpps_fk')
      .select('mpps_instance.sop_instance_uid')
      .where('mpps_worklist_item.item_fk', '=', id)
      .orderBy('mpps_instance.id')
      .execute();
    const out: MppsRecord[] = [];
    for (const r of rows) {
      const record = await findMpps(this.db, r.sop_instance_uid);
      if (record) out.push(record);
    }
    return out;
  }

  // --- helpers -----------------------------------------------------------------------------------

  /** The items the scheduled steps of an MPPS name (see refersTo), each once. */
  private async linkedItems(conn: Db, mpps: NewMpps): Promise<{ id: number; dataSet: DicomJsonObject }[]> {
    const found = new Map<number, { id: number; dataSet: DicomJsonObject }>();
    for (const ref of mpps.scheduledSteps) {
      const rows = await conn
        .selectFrom('worklist_item')
        .selectAll()
        .where('study_instance_uid', '=', ref.studyInstanceUid)
        .execute();
      for (const row of rows) {
        if (refersTo(ref, columnsOf(row, []))) found.set(Number(row.id), itemRef(row));
      }
    }
    return [...found.values()];
  }

  /** The items of rows; the AE titles come from the data set (the AE title table is for matching). */
  private itemsOf(rows: readonly Selectable<WorklistItemTable>[]): WorklistItem[] {
    return rows.map((row) => {
      const dataSet = JSON.parse(row.header) as DicomJsonObject;
      return {
        ...columnsOf(row, stationAeTitlesOf(dataSet)),
        id: Number(row.id),
        dataSet,
        createdAt: new Date(row.created_at),
        updatedAt: new Date(row.updated_at),
      };
    });
  }

  /** Runs `fn` in one transaction, again when it lost a race with another writer. */
  private async transaction<T>(fn: (conn: Db) => Promise<T>): Promise<T> {
    try {
      return await retryingTransaction(this.db, this.engine, ATTEMPTS, fn);
    } catch (e) {
      throw wrap(e);
    }
  }
}

// --- rows ----------------------------------------------------------------------------------------

function rowValues(c: WorklistColumns) {
  return {
    study_instance_uid: c.studyInstanceUid,
    sps_id: c.scheduledProcedureStepId,
    patient_id: c.patientId,
    patient_name: c.patientName,
    patient_name_norm: normalizePersonName(c.patientName),
    accession_number: c.accessionNumber,
    requested_procedure_id: c.requestedProcedureId,
    station_name: c.stationName,
    sps_start_date: c.startDate,
    sps_start_time: c.startTime,
    sps_start: c.startDateTime,
    modality: c.modality,
    performing_physician_name: c.performingPhysicianName,
    performing_physician_name_norm: normalizePersonName(c.performingPhysicianName),
    sps_status: c.status,
  };
}

function columnsOf(row: Selectable<WorklistItemTable>, aets: readonly string[]): WorklistColumns {
  return {
    studyInstanceUid: row.study_instance_uid,
    scheduledProcedureStepId: row.sps_id,
    patientId: row.patient_id,
    patientName: row.patient_name,
    accessionNumber: row.accession_number,
    requestedProcedureId: row.requested_procedure_id,
    stationAeTitles: aets,
    stationName: row.station_name,
    startDate: row.sps_start_date,
    startTime: row.sps_start_time,
    startDateTime: row.sps_start,
    modality: row.modality,
    performingPhysicianName: row.performing_physician_name,
    status: row.sps_status,
  };
}

function itemRef(row: Selectable<WorklistItemTable>): { id: number; dataSet: DicomJsonObject } {
  return { id: Number(row.id), dataSet: JSON.parse(row.header) as DicomJsonObject };
}

async function setItemStatus(
  conn: Db,
  items: readonly { id: number; dataSet: DicomJsonObject }[],
  status: string,
  now: string,
): Promise<void> {
  for (const item of items) {
    await conn
      .updateTable('worklist_item')
      .set({
        sps_status: status,
        header: JSON.stringify(withStepStatus(item.dataSet, status)),
        updated_at: now,
      })
      .where('id', '=', item.id)
      .execute();
  }
}

async function findMpps(conn: Db, sopInstanceUid: string, lock = false): Promise<MppsRecord | undefined> {
  let q = conn.selectFrom('mpps_instance').selectAll().where('sop_instance_uid', '=', sopInstanceUid);
  if (lock) q = q.forUpdate();
  const row = await q.executeTakeFirst();
  if (!row) return undefined;
  const links = await conn
    .selectFrom('mpps_worklist_item')
    .select('item_fk')
    .where('mpps_fk', '=', row.id)
    .orderBy('item_fk')
    .execute();
  return mppsOf(
    row,
    links.map((l) => Number(l.item_fk)),
  );
}

function mppsOf(row: Selectable<MppsInstanceTable>, itemIds: readonly number[]): MppsRecord {
  return {
    sopInstanceUid: row.sop_instance_uid,
    status: row.status,
    dataSet: JSON.parse(row.header) as DicomJsonObject,
    callingAet: row.calling_aet,
    itemIds,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

/** The selector's criteria (AND) on worklist_item; undefined when it selects every item. */
function selectorFilter(
  eb: ExpressionBuilder<WorklistDatabase, 'worklist_item'>,
  selector: ItemSelector,
): Expression<SqlBool> | undefined {
  const parts: Expression<SqlBool>[] = [];
  if (selector.ids !== undefined)
    parts.push(eb('id', 'in', selector.ids.length > 0 ? [...selector.ids] : [-1]));
  if (selector.accessionNumber !== undefined)
    parts.push(eb('accession_number', '=', selector.accessionNumber));
  if (selector.studyInstanceUid !== undefined)
    parts.push(eb('study_instance_uid', '=', selector.studyInstanceUid));
  if (selector.patientId !== undefined) parts.push(eb('patient_id', '=', selector.patientId));
  if (selector.status !== undefined) parts.push(eb('sps_status', '=', selector.status));
  if (parts.length === 0) return undefined;
  return eb.and(parts);
}

// --- errors --------------------------------------------------------------------------------------

function wrap(e: unknown): unknown {
  if (e instanceof ArchiveError || !(e instanceof Error) || !('code' in e)) return e;
  return new ArchiveError('ERR_ARCHIVE_INDEX', `worklist: ${e.message}`, { cause: e });
}
