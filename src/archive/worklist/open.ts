/**
 * Opening the worklist of an index by its URL (`sqlite:PATH` or `postgres://...`), for the
 * commands that work on the index directly (`pacs worklist import`, `ls`, `rm`). Migrations run
 * first, as when the server opens the index.
 */
import type { ArchiveIndex } from '../index/archive-index.js';
import { type OpenIndexOptions, openIndex } from '../index/open.js';
import { SqlArchiveIndex } from '../index/sql-index.js';
import { MemoryWorklistStore } from './memory-store.js';
import { SqlWorklistStore } from './sql-store.js';
import type { WorklistStore } from './worklist-store.js';

export interface OpenedWorklist {
  readonly store: SqlWorklistStore;
  /** Closes the index the store works on. */
  close(): Promise<void>;
}

export async function openWorklistStore(
  url: string,
  options: OpenIndexOptions = {},
): Promise<OpenedWorklist> {
  const { index } = await openIndex(url, options);
  return { store: new SqlWorklistStore(index), close: () => index.close() };
}

const shared = new WeakMap<ArchiveIndex, WorklistStore>();

/**
 * The worklist store of an opened index, one per index so that the services sharing it (the
 * worklist and MPPS SCPs of `pacs server`) see the same items: on the index's SQL database, or in
 * memory for the in-memory index of tests.
 */
export function worklistStoreOf(index: ArchiveIndex): WorklistStore {
  let store = shared.get(index);
  if (store === undefined) {
    store = index instanceof SqlArchiveIndex ? new SqlWorklistStore(index) : new MemoryWorklistStore();
    shared.set(index, store);
  }
  return store;
}
