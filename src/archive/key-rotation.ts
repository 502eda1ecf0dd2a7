/**
 * Passes over every object of a store for encryption at rest (issue 14):
 *   rotateKeys (`pacs archive rotate-key`): every encrypted object's data key rewrapped under a new
 *     key-encryption key, without rewriting the objects (store.rewrapKey: two slot writes, each
 *     made durable before the next). Every object stays readable with the old or the new key
 *     whenever it stops.
 *   encryptObjects (`pacs archive encrypt`): the plain objects of an archive encrypted in place
 *     (store.encryptObject: a temporary file renamed over the plain one).
 * Both are resumable: run again after a crash, they finish what is left (objects already done
 * cost a header read).
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
  options: ObjectPassOptions = {},
): Promise<RotationReport> {
  const counts = { checked: 0, rewrapped: 0, current: 0, plain: 0 };
  const failed = await eachObject(store, options, async (path) => {
    counts[await store.rewrapKey(path, keyring)]++;
    counts.checked++;
  });
  return { ...counts, checked: counts.checked + failed.length, failed };
}

export interface EncryptionReport {
  readonly checked: number;
  /** Plain objects encrypted in place. */
  readonly encrypted: number;
  /** Encrypted already. */
  readonly already: number;
  readonly failed: readonly { readonly path: string; readonly reason: string }[];
}

/** Encrypts every plain object of the store in place (`pacs archive encrypt`), under its keyring's current key. */
export async function encryptObjects(
  store: ObjectStore,
  options: ObjectPassOptions = {},
): Promise<EncryptionReport> {
  const counts = { checked: 0, encrypted: 0, already: 0 };
  const failed = await eachObject(store, options, async (path) => {
    counts[await store.encryptObject(path)]++;
    counts.checked++;
  });
  return { ...counts, checked: counts.checked + failed.length, failed };
}

export interface ObjectPassOptions {
  readonly onProgress?: (p: RotationProgress) => void;
  readonly concurrency?: number;
}

/** Runs `work` on every object file, `concurrency` at a time; returns the failures (path, reason). */
async function eachObject(
  store: ObjectStore,
  options: ObjectPassOptions,
  work: (path: string) => Promise<void>,
): Promise<{ path: string; reason: string }[]> {
  const failed: { path: string; reason: string }[] = [];
  const running = new Set<Promise<void>>();
  const limit = options.concurrency ?? 4;
  let checked = 0;
  for await (const file of store.walkObjects()) {
    const job = (async () => {
      try {
        await work(file.path);
      } catch (e) {
        failed.push({ path: file.path, reason: e instanceof Error ? e.message : String(e) });
      }
      checked++;
      options.onProgress?.({ fraction: file.fraction, checked });
    })();
    running.add(job);
    void job.finally(() => running.delete(job));
    if (running.size >= limit) await Promise.race(running);
  }
  await Promise.all(running);
  return failed;
}
