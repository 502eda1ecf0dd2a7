/**
 * The identity store that goes with an index (users, roles, API tokens, sessions): the tables of
 * an SQL index, or memory beside the in-memory index. One store per index, shared by whoever
 * authenticates in the process (the HTTP side, DICOM user identity), so they see the same state.
 */
import type { IdentityStore } from '../../security/identity-store.js';
import type { ArchiveIndex } from '../index/archive-index.js';
import { type OpenIndexOptions, openIndex } from '../index/open.js';
import { SqlArchiveIndex } from '../index/sql-index.js';
import { MemoryIdentityStore } from './memory-identity-store.js';
import { SqlIdentityStore } from './sql-identity-store.js';

const shared = new WeakMap<ArchiveIndex, IdentityStore>();

/** The identity store of an opened index (one per index). */
export function identityStoreOf(index: ArchiveIndex): IdentityStore {
  let store = shared.get(index);
  if (store === undefined) {
    store = index instanceof SqlArchiveIndex ? new SqlIdentityStore(index) : new MemoryIdentityStore();
    shared.set(index, store);
  }
  return store;
}

export interface OpenedIdentityStore {
  readonly store: IdentityStore;
  /** Closes the index the store works on. */
  close(): Promise<void>;
}

/** Opens the index of a URL (`sqlite:PATH` or `postgres://...`, migrations first) for its identity store (the CLI). */
export async function openIdentityStore(
  url: string,
  options: OpenIndexOptions = {},
): Promise<OpenedIdentityStore> {
  const { index } = await openIndex(url, options);
  return { store: identityStoreOf(index), close: () => index.close() };
}
