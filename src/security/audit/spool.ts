/**
 * The durable local spool of audit records (PS3.15 A.5 messages must not be lost when a repository
 * is down): DATA/audit/spool.
 *
 *   incoming/NAME   a record as written: temp file, fsync, rename, folder fsync; then linked into
 *   DEST/NAME       the queue of each destination (the index, each Audit Record Repository), and
 *                   unlinked from incoming/. A crash between the two is repaired at open: whatever is
 *                   left in incoming/ is linked again (an existing link is fine).
 *
 * Each destination sends its queue in name order (names begin with the time and a sequence number)
 * in batches: a process first claims a file by renaming it into DEST/.claim-PID/ (so the processes
 * of `--workers` sharing a spool never send a record twice), and unlinks it only after that
 * destination has it (back into the queue when the send failed; claims of a process that is gone
 * are put back at the next open); the record has left the spool
 * when its last link is gone, i.e. once every destination has it. A destination that fails is
 * retried with exponential backoff (1 s doubling to 60 s) while the others go on. Delivery is at
 * least once: a crash after a send and before the unlink sends the record again (the index keeps
 * one row per message id).
 */
import { randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { link, mkdir, open, readdir, readFile, rename, rmdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { AuditRecord } from './record.js';

/** Somewhere records go: the index, a syslog repository. */
export interface AuditDestination {
  /** A folder name: letters, digits, '.', '-' and '_'. */
  readonly name: string;
  /** Resolves once the destination has every record of the batch; rejects to be retried later. */
  deliver(records: readonly AuditRecord[]): Promise<void>;
  close(): Promise<void>;
}

export interface SpoolLogger {
  warn(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
}

const INCOMING = 'incoming';
const CLAIM = '.claim-';
const BATCH = 500;
const FIRST_BACKOFF_MS = 1_000;
const MAX_BACKOFF_MS = 60_000;

/** The spooled form: the record with its time as text. */
type Stored = Omit<AuditRecord, 'eventTime'> & { eventTime: string };

async function syncFolder(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** True when a process with this id runs (signal 0 checks without sending anything). */
function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

class Queue {
  private running = false;
  private again = false;
  private backoffMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Resolves when the current pass ends. */
  private pass: Promise<void> = Promise.resolve();
  failing: string | undefined;
  readonly claimDir: string;

  constructor(
    readonly dir: string,
    readonly destination: AuditDestination,
    private readonly logger: SpoolLogger | undefined,
  ) {
    this.claimDir = join(dir, `${CLAIM}${process.pid}`);
  }

  /** Starts a pass now (or right after the running one) unless backing off. */
  kick(): void {
    if (this.closed || this.timer !== undefined) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    this.pass = this.drain().finally(() => {
      this.running = false;
      if (this.again && !this.closed && this.timer === undefined) {
        this.again = false;
        this.kick();
      }
    });
  }

  private async drain(): Promise<void> {
    for (;;) {
      if (this.closed) return;
      const names = (await readdir(this.dir)).filter((n) => n.endsWith('.json')).sort();
      if (names.length === 0) return;
      const batch: string[] = [];
      const records: AuditRecord[] = [];
      for (const name of names.slice(0, BATCH)) {
        try {
          // Claimed: another process sharing the spool cannot take it now (it gets ENOENT).
          await rename(join(this.dir, name), join(this.claimDir, name));
        } catch {
          continue;
        }
        try {
          const stored = JSON.parse(await readFile(join(this.claimDir, name), 'utf8')) as Stored;
          records.push({ ...stored, eventTime: new Date(stored.eventTime) });
          batch.push(name);
        } catch (e) {
          // Damaged beyond reading: set aside rather than block the queue.
          this.logger?.warn(
            { file: name, err: (e as Error).message },
            'audit spool: unreadable record set aside',
          );
          await rename(join(this.claimDir, name), join(this.dir, `${name}.bad`)).catch(() => undefined);
        }
      }
      try {
        if (records.length > 0) await this.destination.deliver(records);
      } catch (e) {
        for (const name of batch)
          await rename(join(this.claimDir, name), join(this.dir, name)).catch(() => undefined);
        this.backoffMs = Math.min(
          MAX_BACKOFF_MS,
          this.backoffMs === 0 ? FIRST_BACKOFF_MS : this.backoffMs * 2,
        );
        const reason = (e as Error).message;
        if (this.failing !== reason)
          this.logger?.warn(
            {
              destination: this.destination.name,
              err: reason,
              retryMs: this.backoffMs,
              spooled: names.length,
            },
            'audit: destination unavailable, keeping messages in the spool',
          );
        this.failing = reason;
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.kick();
        }, this.backoffMs);
        this.timer.unref();
        return;
      }
      if (this.failing !== undefined)
        this.logger?.info({ destination: this.destination.name }, 'audit: destination reachable again');
      this.failing = undefined;
      this.backoffMs = 0;
      for (const name of batch) await unlink(join(this.claimDir, name)).catch(() => undefined);
    }
  }

  /** Puts back what a process that is gone (or an earlier one with our pid) had claimed. */
  async recoverClaims(): Promise<void> {
    await mkdir(this.claimDir, { recursive: true, mode: 0o700 });
    for (const entry of await readdir(this.dir)) {
      if (!entry.startsWith(CLAIM)) continue;
      const pid = Number(entry.slice(CLAIM.length));
      if (pid !== process.pid && alive(pid)) continue;
      const claimed = join(this.dir, entry);
      for (const name of await readdir(claimed))
        await rename(join(claimed, name), join(this.dir, name)).catch(() => undefined);
      if (pid !== process.pid) await rmdir(claimed).catch(() => undefined);
    }
  }

  /** Waits for the running pass; then no new one starts. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.pass.catch(() => undefined);
  }

  /** Resolves when the queue is empty or the destination is failing (for shutdown and tests). */
  async settled(): Promise<void> {
    for (;;) {
      await this.pass.catch(() => undefined);
      if (this.failing !== undefined || this.closed) return;
      const left = [...(await readdir(this.dir)), ...(await readdir(this.claimDir))].filter((n) =>
        n.endsWith('.json'),
      );
      if (left.length === 0) return;
      if (!this.running && this.timer === undefined) this.kick();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

export class AuditSpool {
  private readonly queues: Queue[];
  private writing: Promise<void> = Promise.resolve();
  private seq = 0;

  private constructor(
    readonly dir: string,
    destinations: readonly AuditDestination[],
    logger: SpoolLogger | undefined,
  ) {
    this.queues = destinations.map((d) => new Queue(join(dir, d.name), d, logger));
  }

  /** Opens (creates) the spool, repairs an interrupted fan-out and starts sending what is queued. */
  static async open(
    dir: string,
    destinations: readonly AuditDestination[],
    logger?: SpoolLogger,
  ): Promise<AuditSpool> {
    const spool = new AuditSpool(dir, destinations, logger);
    // Records name patients and users: readable by the server's user only.
    await mkdir(join(dir, INCOMING), { recursive: true, mode: 0o700 });
    for (const q of spool.queues) {
      await mkdir(q.dir, { recursive: true, mode: 0o700 });
      await q.recoverClaims();
    }
    const left = (await readdir(join(dir, INCOMING))).filter((n) => n.endsWith('.json'));
    await spool.fanOut(left);
    for (const q of spool.queues) q.kick();
    return spool;
  }

  /** Writes records durably; resolves once they are on disk in every destination's queue. */
  append(records: readonly AuditRecord[]): Promise<void> {
    const run = this.writing.then(() => this.write(records));
    this.writing = run.catch(() => undefined);
    return run;
  }

  private async write(records: readonly AuditRecord[]): Promise<void> {
    if (records.length === 0) return;
    const incoming = join(this.dir, INCOMING);
    const names: string[] = [];
    for (const record of records) {
      const stamp = record.eventTime.getTime().toString().padStart(15, '0');
      const name = `${stamp}-${process.pid}-${(this.seq++).toString().padStart(9, '0')}-${record.messageId}.json`;
      const temp = join(incoming, `.${randomUUID()}.tmp`);
      const handle = await open(temp, 'wx', 0o600);
      try {
        await handle.writeFile(JSON.stringify({ ...record, eventTime: record.eventTime.toISOString() }));
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, join(incoming, name));
      names.push(name);
    }
    await syncFolder(incoming);
    await this.fanOut(names);
    for (const q of this.queues) q.kick();
  }

  private async fanOut(names: readonly string[]): Promise<void> {
    if (names.length === 0) return;
    const incoming = join(this.dir, INCOMING);
    for (const q of this.queues)
      for (const name of names)
        await link(join(incoming, name), join(q.dir, name)).catch((e: NodeJS.ErrnoException) => {
          if (e.code !== 'EEXIST') throw e;
        });
    for (const q of this.queues) await syncFolder(q.dir);
    for (const name of names) await unlink(join(incoming, name));
  }

  /** Resolves when every queue is empty, or its destination is failing. */
  async settled(): Promise<void> {
    await this.writing;
    await Promise.all(this.queues.map((q) => q.settled()));
  }

  /** The destinations that are failing now, with why. */
  failing(): { destination: string; reason: string }[] {
    return this.queues.flatMap((q) =>
      q.failing !== undefined ? [{ destination: q.destination.name, reason: q.failing }] : [],
    );
  }

  async close(): Promise<void> {
    await this.writing;
    await Promise.all(this.queues.map((q) => q.close()));
    await Promise.all(this.queues.map((q) => q.destination.close()));
  }
}
