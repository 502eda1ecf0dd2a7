/**
 * Opening the worklist of an index by its URL (`sqlite:PATH` or `postgres://...`), for the
 * commands that work on the index directly (`pacs worklist import`, `ls`, `rm`). Migrations run
 * first, as when the server opens the index.
 */
import { type OpenIndexOptions, openIndex } from '../index/open.js';
import { SqlWorklistStore } from './sql-store.js';

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
