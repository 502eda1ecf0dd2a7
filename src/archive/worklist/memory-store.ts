/**
 * A WorklistStore in memory, for testing services without a database. Same rules as the SQL store
 * (columns.ts, refersTo); candidates() narrows nothing (every item is a candidate), which is the
 * superset the port allows. Changes run one at a time and are all-or-nothing.
 */
import type { Result } from '../../core/result.js';
import type { DicomJsonObject } from '../../dicom/json.js';
import type { MatchCondition } from '../../dicom/matching.js';
import { itemsWithColumns, requireSelective, withStepStatus } from './columns.js';
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
  type WorklistItem,
  type WorklistStore,
} from './worklist-store.js';

interface MppsRow {
  readonly record: Omit<MppsRecord, 'itemIds'>;
  readonly itemIds: Set<number>;
}

export class MemoryWorklistStore implements WorklistStore {
  readonly engine = 'memory' as const;
  private readonly items = new Map<number, WorklistItem>();
  private readonly mpps = new Map<string, MppsRow>();
  private nextId = 1;

  async putItems(items: readonly DicomJsonObject[]): Promise<PutItemsReport> {
    const prepared = itemsWithColumns(items);
    const now = new Date();
    const ids: number[] = [];
    let replaced = 0;
    for (const { item, columns } of prepared) {
      const existing = [...this.items.values()].find(
        (x) =>
          x.studyInstanceUid === columns.studyInstanceUid &&
          x.scheduledProcedureStepId === columns.scheduledProcedureStepId,
      );
      const id = existing?.id ?? this.nextId++;
      if (existing) replaced++;
      this.items.set(id, {
        ...columns,
        id,
        dataSet: structuredClone(item),
        createdAt: existing?.createdAt ?? now,
        updatedAt: now,
      });
      ids.push(id);
    }
    return { ids, added: ids.length - replaced, replaced };
  }

  async removeItems(selector: ItemSelector): Promise<number> {
    requireSelective(selector);
    let n = 0;
    for (const item of [...this.items.values()]) {
      if (!selects(selector, item)) continue;
      this.items.delete(item.id);
      for (const row of this.mpps.values()) row.itemIds.delete(item.id);
      n++;
    }
    return n;
  }

  async getItem(id: number): Promise<WorklistItem | undefined> {
    const item = this.items.get(id);
    return item === undefined ? undefined : copy(item);
  }

  async *listItems(selector: ItemSelector = { all: true }): AsyncIterable<WorklistItem> {
    for (const item of this.sorted()) if (selects(selector, item)) yield copy(item);
  }

  async countItems(): Promise<number> {
    return this.items.size;
  }

  async *candidates(
    _conditions: readonly MatchCondition[],
    options: CandidateOptions = {},
  ): AsyncIterable<WorklistItem> {
    for (const item of this.sorted()) {
      if (options.signal?.aborted) return;
      yield copy(item);
    }
  }

  async createMpps(mpps: NewMpps): Promise<CreateMppsResult> {
    const existing = this.mpps.get(mpps.sopInstanceUid);
    if (existing) return { status: 'duplicate', existing: recordOf(existing) };
    const now = new Date();
    const itemIds = new Set<number>();
    for (const ref of mpps.scheduledSteps)
      for (const item of this.items.values()) if (refersTo(ref, item)) itemIds.add(item.id);
    const row: MppsRow = {
      record: {
        sopInstanceUid: mpps.sopInstanceUid,
        status: mpps.status,
        dataSet: structuredClone(mpps.dataSet),
        callingAet: mpps.callingAet,
        createdAt: now,
        updatedAt: now,
      },
      itemIds,
    };
    this.mpps.set(mpps.sopInstanceUid, row);
    this.setItemStatus(itemIds, mpps.itemStatus, now);
    return { status: 'created', record: recordOf(row) };
  }

  async updateMpps<E>(
    sopInstanceUid: string,
    decide: (current: MppsRecord) => Result<MppsChange, E>,
  ): Promise<UpdateMppsResult<E>> {
    const row = this.mpps.get(sopInstanceUid);
    if (!row) return { status: 'not-found' };
    const change = decide(recordOf(row));
    if (!change.ok) return { status: 'refused', error: change.error };
    const now = new Date();
    const updated: MppsRow = {
      record: {
        ...row.record,
        status: change.value.status,
        dataSet: structuredClone(change.value.dataSet),
        updatedAt: now,
      },
      itemIds: row.itemIds,
    };
    this.mpps.set(sopInstanceUid, updated);
    if (change.value.itemStatus !== undefined) this.setItemStatus(row.itemIds, change.value.itemStatus, now);
    return { status: 'updated', record: recordOf(updated) };
  }

  async findMpps(sopInstanceUid: string): Promise<MppsRecord | undefined> {
    const row = this.mpps.get(sopInstanceUid);
    return row === undefined ? undefined : recordOf(row);
  }

  async mppsOfItem(id: number): Promise<MppsRecord[]> {
    return [...this.mpps.values()].filter((row) => row.itemIds.has(id)).map(recordOf);
  }

  private sorted(): WorklistItem[] {
    return [...this.items.values()].sort((a, b) => a.id - b.id);
  }

  private setItemStatus(ids: Iterable<number>, status: string, now: Date): void {
    for (const id of ids) {
      const item = this.items.get(id);
      if (!item) continue;
      this.items.set(id, { ...item, status, dataSet: withStepStatus(item.dataSet, status), updatedAt: now });
    }
  }
}

function selects(selector: ItemSelector, item: WorklistItem): boolean {
  return (
    (selector.ids === undefined || selector.ids.includes(item.id)) &&
    (selector.accessionNumber === undefined || selector.accessionNumber === item.accessionNumber) &&
    (selector.studyInstanceUid === undefined || selector.studyInstanceUid === item.studyInstanceUid) &&
    (selector.patientId === undefined || selector.patientId === item.patientId) &&
    (selector.status === undefined || selector.status === item.status)
  );
}

function copy(item: WorklistItem): WorklistItem {
  return { ...item, dataSet: structuredClone(item.dataSet) };
}

function recordOf(row: MppsRow): MppsRecord {
  return {
    ...row.record,
    dataSet: structuredClone(row.record.dataSet),
    itemIds: [...row.itemIds].sort((a, b) => a - b),
  };
}
