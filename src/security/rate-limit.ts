/**
 * Failed-attempt limiting (issue 14): per user name and per remote address, in this process's
 * memory (a restart forgets; with --workers or several hosts each process counts its own, so an
 * attacker gets at most that many times the budget). Each key may fail `freeFailures` times; every
 * further failure locks it for a doubling time (base, 2 x base, ... up to `maxLockMs`). While a key
 * is locked attempts are refused without checking the credential, so a brute force is slowed to a
 * few guesses an hour whatever the attacker's speed. Failures are forgotten `windowMs` after the
 * last one; a success clears the user's key (not the address's: one valid account must not reset a
 * scan of others).
 */

export interface RateLimitOptions {
  /** Failures a key may have before it is locked (default 5 per user, 20 per address). */
  readonly userFreeFailures?: number;
  readonly addressFreeFailures?: number;
  /** The first lock (default 1 s); each further failure doubles it. */
  readonly baseLockMs?: number;
  /** The longest lock (default 15 min). */
  readonly maxLockMs?: number;
  /** Failures older than this are forgotten (default 15 min after the last). */
  readonly windowMs?: number;
  /** Keys kept at most (the oldest are dropped): memory stays bounded under a spray of names. */
  readonly maxKeys?: number;
  readonly now?: () => number;
}

interface Entry {
  failures: number;
  lastFailure: number;
  lockedUntil: number;
}

/** How long a client refused for too many checks at once waits. */
export const BUSY_RETRY_MS = 1000;

export type LimitKey =
  | { readonly kind: 'user'; readonly value: string }
  | { readonly kind: 'address'; readonly value: string };

export class AttemptLimiter {
  private readonly entries = new Map<string, Entry>();
  /** Checks in flight per key (begin/end); only keys being checked now are here. */
  private readonly pending = new Map<string, number>();
  private readonly userFree: number;
  private readonly addressFree: number;
  private readonly baseLockMs: number;
  private readonly maxLockMs: number;
  private readonly windowMs: number;
  private readonly maxKeys: number;
  private readonly now: () => number;

  constructor(options: RateLimitOptions = {}) {
    this.userFree = options.userFreeFailures ?? 5;
    this.addressFree = options.addressFreeFailures ?? 20;
    this.baseLockMs = options.baseLockMs ?? 1000;
    this.maxLockMs = options.maxLockMs ?? 15 * 60_000;
    this.windowMs = options.windowMs ?? 15 * 60_000;
    this.maxKeys = options.maxKeys ?? 100_000;
    this.now = options.now ?? Date.now;
  }

  /** How long the first locked key of `keys` stays locked (ms), or 0 when none is. */
  retryAfter(keys: readonly LimitKey[]): number {
    const now = this.now();
    let wait = 0;
    for (const key of keys) {
      const e = this.live(key, now);
      if (e !== undefined && e.lockedUntil > now) wait = Math.max(wait, e.lockedUntil - now);
    }
    return wait;
  }

  /** Counts a failure on each key; the lock it caused (ms, the longest), or 0. */
  fail(keys: readonly LimitKey[]): number {
    const now = this.now();
    let lock = 0;
    for (const key of keys) {
      const id = idOf(key);
      const e = this.live(key, now) ?? { failures: 0, lastFailure: now, lockedUntil: 0 };
      e.failures++;
      e.lastFailure = now;
      const free = key.kind === 'user' ? this.userFree : this.addressFree;
      if (e.failures > free) {
        const ms = Math.min(this.maxLockMs, this.baseLockMs * 2 ** Math.min(30, e.failures - free - 1));
        e.lockedUntil = now + ms;
        lock = Math.max(lock, ms);
      }
      // Re-insert so the map's order is least recently failed first (the eviction order).
      this.entries.delete(id);
      this.entries.set(id, e);
    }
    while (this.entries.size > this.maxKeys) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
    return lock;
  }

  /**
   * Starts a check of a credential that costs work (a password hash): refused (the ms to wait)
   * when a key has as many checks in flight as it has free failures left (one once none is left),
   * so that guesses sent in parallel cannot outrun the count; else 0, and end() must follow.
   */
  begin(keys: readonly LimitKey[]): number {
    const now = this.now();
    for (const key of keys) {
      const e = this.live(key, now);
      const free = key.kind === 'user' ? this.userFree : this.addressFree;
      // In flight at most what is left of the free failures, and one when none is left (each failure then locks).
      if ((this.pending.get(idOf(key)) ?? 0) >= Math.max(1, free - (e?.failures ?? 0))) return BUSY_RETRY_MS;
    }
    for (const key of keys) this.pending.set(idOf(key), (this.pending.get(idOf(key)) ?? 0) + 1);
    return 0;
  }

  end(keys: readonly LimitKey[]): void {
    for (const key of keys) {
      const n = (this.pending.get(idOf(key)) ?? 0) - 1;
      if (n <= 0) this.pending.delete(idOf(key));
      else this.pending.set(idOf(key), n);
    }
  }

  /** Forgets the failures of a key (a good login). */
  succeed(key: LimitKey): void {
    this.entries.delete(idOf(key));
  }

  /** Failures counted on a key now. */
  failures(key: LimitKey): number {
    return this.live(key, this.now())?.failures ?? 0;
  }

  private live(key: LimitKey, now: number): Entry | undefined {
    const id = idOf(key);
    const e = this.entries.get(id);
    if (e === undefined) return undefined;
    if (e.lockedUntil <= now && now - e.lastFailure > this.windowMs) {
      this.entries.delete(id);
      return undefined;
    }
    return e;
  }
}

function idOf(key: LimitKey): string {
  return `${key.kind}\u0000${key.value}`;
}
