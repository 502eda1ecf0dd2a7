/**
 * `pacs archive rotate-key`: every encrypted object's data key rewrapped under a new
 * key-encryption key, without rewriting the objects (store.rewrapKey: two slot writes, each
 * made durable before the next). Resumable: run again after a crash, it finishes what is left
 * (objects already under the new key cost a header read); every object stays readable with the
 * old or the new key whenever it stops.
 */
import type { Keyring } from '../security/envelope.js';
import type { ObjectStore } from './store.js';

export interface RotationProgress {
  /** 0 to 1, by object folder. */
  readonly fraction: number;
  readonly checked: number;
}

export interface RotationReport {
  /** Objects checked. */
  readonly checked: number;
  /** Data keys rewrapped (or finished rewrapping) under the new key. */
  readonly rewrapped: number;
  /** Already under the new key only. */
  readonly current: number;
  /** Not encrypted (stored before encryption was turned on): left as they are. */
  readonly plain: number;
  /** Objects that could not be rewrapped: their path and why (left as they were). */
  readonly failed: readonly { readonly path: string; readonly reason: string }[];
}

/**
 * Rewraps every object of the store under `keyring.current`; `keyring` also holds the keys the
 * objects are sealed under now. Objects are done `concurrency` at a time (default 4).
 */
export async function rotateKeys(
  store: ObjectStore,
  keyring: Keyring,
  options: { readonly onProgress?: (p: RotationProgress) => void; readonly concurrency?: number } = {},
): Promise<RotationReport> {
  const counts = { checked: 0, rewrapped: 0, current: 0, plain: 0 };
  const failed: { path: string; reason: string }[] = [];
  const running = new Set<Promise<void>>();
  const limit = options.concurrency ?? 4;
  for await (const file of store.walkObjects()) {
    const job = (async () => {
      try {
        counts[await store.rewrapKey(file.path, keyring)]++;
      } catch (e) {
        failed.push({ path: file.path, reason: e instanceof Error ? e.message : String(e) });
      }
      counts.checked++;
      options.onProgress?.({ fraction: file.fraction, checked: counts.checked });
    })();
    running.add(job);
    void job.finally(() => running.delete(job));
    if (running.size >= limit) await Promise.race(running);
  }
  await Promise.all(running);
  return { ...counts, failed };
}
