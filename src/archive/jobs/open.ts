/**
 * The job store that goes with an index: the `job` table of an SQL index, or memory beside the
 * in-memory index. Keep one store per index and share it between the runner and the services, so
 * that they hear each other's events without polling.
 */
import type { ArchiveIndex } from '../index/archive-index.js';
import { SqlArchiveIndex } from '../index/sql-index.js';
import type { JobStore } from './job.js';
import { MemoryJobStore } from './memory-store.js';
import { SqlJobStore } from './sql-store.js';

export function jobStoreFor(index: ArchiveIndex, options: { readonly now?: () => number } = {}): JobStore {
  if (index instanceof SqlArchiveIndex) return new SqlJobStore(index.db, index.engine, options);
  return new MemoryJobStore(options);
}
