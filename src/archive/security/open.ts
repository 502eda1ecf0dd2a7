/**
 * The identity store that goes with an index (users, roles, API tokens, sessions): the tables of
 * an SQL index, or memory beside the in-memory index. One store per index, shared by whoever
 * authenticates in the process (the HTTP side, DICOM user identity), so they see the same state.
 */
import { type IdentityConfig, sessionLimits } from '../../security/identity-config.js';
import { type IdentityServiceOptions, StoredIdentityService } from '../../security/identity-service.js';
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

/**
 * The identity service of a server: on the identity store of its index, with the config's
 * session limits. Build one per process and give the same one to every way in (HTTP and DICOM
 * user identity), so that they share the failed-attempt counts.
 */
export function identityServiceFor(
  index: ArchiveIndex,
  config: IdentityConfig,
  options: Omit<IdentityServiceOptions, 'store' | 'sessionIdleMs' | 'sessionAbsoluteMs'> = {},
): StoredIdentityService {
  return new StoredIdentityService({ ...options, store: identityStoreOf(index), ...sessionLimits(config) });
}
