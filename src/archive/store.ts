/**
 * The object store: Part-10 files under DATA/objects, named by an internal random id (never by a
 * UID or other text a peer sent): objects/ab/cd/abcd....dcm for the 128-bit hex id abcd.....
 *
 * Durable write protocol (ARCHITECTURE.md decision 3): an object is written as a stream to
 * DATA/tmp/<id>.part; commit() fsyncs it, renames it into place and fsyncs the folder, so after a
 * crash an object file is either complete or absent. Concurrent commits into one folder share its
 * fsync. abort() removes the temporary file. Below a free-space floor no object is begun.
 *
 * Encryption at rest (issue 14, security/envelope.ts): with a keyring, new objects are written as
 * envelopes (AES-256-GCM segments under a per-object data key wrapped by the current KEK) as they
 * stream, and openObject() decrypts only the segments a read needs. Files are told apart by their
 * first bytes, so a store with a key reads the plain objects stored before it had one.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { type FileHandle, mkdir, open, readdir, rename, stat, statfs, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { err, ok, type Result } from '../core/result.js';
import {
  EnvelopeError,
  EnvelopeWriter,
  HEADER_SIZE,
  isEnvelope,
  type Keyring,
  type OpenedHeader,
  openHeader,
  openSegment,
  rewrapSlots,
  segmentCount,
  segmentPlace,
  TAG_SIZE,
} from '../security/envelope.js';
import { ArchiveError, fileError } from './errors.js';
import { FolderSyncer, fsyncFolder } from './fsync.js';

export type Durability = 'fsync' | 'none';

export interface ObjectStoreOptions {
  /** The data folder: objects go to DATA/objects, temporary files to DATA/tmp (same file system, so rename is atomic). */
  readonly dataDir: string;
  /** 'fsync' (default) makes each commit survive a power loss; 'none' is for test rigs. */
  readonly durability?: Durability;
  /** beginObject fails with ERR_ARCHIVE_OUT_OF_SPACE while less than this is free (default 64 MiB). */
  readonly minFreeBytes?: number;
  /** Bytes queued per object before write() returns false and the writer should await drain() (default 1 MiB). */
  readonly highWaterMark?: number;
  /** Encrypts new objects under `keyring.current` and opens objects sealed under any of its keys. */
  readonly keyring?: Keyring;
  /** Plaintext bytes per encrypted segment (default 64 KiB). */
  readonly segmentSize?: number;
  /** Told of every object found tampered with (before the ERR_ARCHIVE_INTEGRITY is thrown). */
  readonly onIntegrityFailure?: (path: string, detail: string) => void;
}

export const DEFAULT_MIN_FREE_BYTES = 64 * 1024 * 1024;

/**
 * How old a free-space figure may be before beginObject asks the file system again. Between two
 * statfs calls the bytes we committed are taken off the figure, and a figure below the floor is
 * always checked again, so the floor holds as it did with a statfs per object (which cost a
 * system call on every C-STORE).
 */
const FREE_SPACE_TTL_MS = 1000;

/** A committed object file. */
export interface StoredFile {
  readonly id: string;
  /** Relative to the data folder, '/' separated: what the index keeps. */
  readonly path: string;
  /** Bytes of the Part-10 object (what the index keeps; an encrypted file is larger on disk). */
  readonly size: number;
}

/** An object file found by walkObjects. */
export interface ObjectFileEntry {
  readonly path: string;
  readonly absolutePath: string;
  /** How far the walk has come, 0 to 1 (by first-level folder), for progress bars. */
  readonly fraction: number;
}

const OBJECTS = 'objects';
const TMP = 'tmp';
const HEX2 = /^[0-9a-f]{2}$/;
const PART = '.part';
/** Objects in a row that go to one folder (see nextId). */
const FOLDER_RUN = 1000;

export class ObjectStore {
  readonly dataDir: string;
  readonly durability: Durability;
  readonly minFreeBytes: number;
  private readonly highWaterMark: number;
  readonly keyring: Keyring | undefined;
  private readonly segmentSize: number | undefined;
  private readonly onIntegrityFailure: ((path: string, detail: string) => void) | undefined;
  private readonly objectsDir: string;
  private readonly tmpDir: string;
  private readonly dirSync = new FolderSyncer();
  private readonly knownDirs = new Set<string>();
  private readonly creating = new Map<string, Promise<void>>();
  /** Temporary files being written by this process (cleanTemp leaves them alone). */
  private readonly active = new Set<string>();
  /** The folder (first 4 hex digits of the id) new objects go to, and how many more go there. */
  private folderPrefix = '';
  private folderLeft = 0;
  /** The last statfs figure, when it was taken, and the bytes committed since. */
  private free: { bytes: number; at: number; since: number } | undefined;

  private constructor(options: ObjectStoreOptions) {
    this.dataDir = resolve(options.dataDir);
    this.durability = options.durability ?? 'fsync';
    this.minFreeBytes = options.minFreeBytes ?? DEFAULT_MIN_FREE_BYTES;
    this.highWaterMark = options.highWaterMark ?? 1024 * 1024;
    this.keyring = options.keyring;
    this.segmentSize = options.segmentSize;
    this.onIntegrityFailure = options.onIntegrityFailure;
    this.objectsDir = join(this.dataDir, OBJECTS);
    this.tmpDir = join(this.dataDir, TMP);
  }

  /** Creates the folders if needed. */
  static async open(options: ObjectStoreOptions): Promise<ObjectStore> {
    const store = new ObjectStore(options);
    try {
      const created = [
        await mkdir(store.objectsDir, { recursive: true }),
        await mkdir(store.tmpDir, { recursive: true }),
      ];
      // A new data folder: make its entries (and its own, in its parent) durable once.
      if (store.durability === 'fsync' && created.some((c) => c !== undefined)) {
        await fsyncFolder(store.dataDir);
        await fsyncFolder(resolve(store.dataDir, '..'));
      }
    } catch (e) {
      throw fileError(`cannot create the data folder ${store.dataDir}`, e);
    }
    return store;
  }

  /** Bytes available to us on the data folder's file system. */
  async freeBytes(): Promise<number> {
    const s = await statfs(this.dataDir);
    return s.bavail * s.bsize;
  }

  /**
   * Starts a new object: a temporary file to write the Part-10 bytes into. Fails with
   * ERR_ARCHIVE_OUT_OF_SPACE below the free-space floor (and writes nothing).
   */
  async beginObject(): Promise<Result<ObjectWriter, ArchiveError>> {
    try {
      if (this.minFreeBytes > 0) {
        const free = await this.estimatedFreeBytes();
        if (free < this.minFreeBytes)
          return err(
            new ArchiveError(
              'ERR_ARCHIVE_OUT_OF_SPACE',
              `only ${free} bytes free in ${this.dataDir}, below the floor of ${this.minFreeBytes}`,
            ),
          );
      }
      const id = this.nextId();
      const tmpPath = join(this.tmpDir, id + PART);
      const fh = await open(tmpPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
      this.active.add(tmpPath);
      const envelope = this.keyring
        ? new EnvelopeWriter(Buffer.from(id, 'hex'), this.keyring.current, this.segmentSize)
        : undefined;
      return ok(new ObjectWriter(this, id, tmpPath, fh, this.highWaterMark, envelope));
    } catch (e) {
      return err(fileError('cannot begin an object file', e));
    }
  }

  /** Free bytes from the last statfs less what was committed since; asks again when old or below the floor. */
  private async estimatedFreeBytes(): Promise<number> {
    const f = this.free;
    if (f !== undefined && Date.now() - f.at < FREE_SPACE_TTL_MS && f.bytes - f.since >= this.minFreeBytes)
      return f.bytes - f.since;
    const bytes = await this.freeBytes();
    this.free = { bytes, at: Date.now(), since: 0 };
    return bytes;
  }

  /**
   * A new object id: 128 bits, random but for the first 16 (its folder), which are kept for runs
   * of FOLDER_RUN objects. Fully random ids put nearly every object in a folder of its own (65,536
   * leaves), so each commit also paid a mkdir and an fsync of the parent folder; in runs, objects
   * share their folder's fsync too. Folders still fill evenly over time.
   */
  private nextId(): string {
    if (this.folderLeft <= 0) {
      this.folderPrefix = randomBytes(2).toString('hex');
      this.folderLeft = FOLDER_RUN;
    }
    this.folderLeft--;
    return this.folderPrefix + randomBytes(14).toString('hex');
  }

  /** The path an object id is stored at, relative to the data folder. */
  static pathOf(id: string): string {
    return `${OBJECTS}/${id.slice(0, 2)}/${id.slice(2, 4)}/${id}.dcm`;
  }

  /** The absolute path of a stored object; throws for a path outside the objects folder (a bug or a tampered row). */
  absolutePath(path: string): string {
    if (!path.startsWith(`${OBJECTS}/`) || path.split('/').some((p) => p === '..' || p === '' || p === '.'))
      throw new ArchiveError('ERR_ARCHIVE_IO', `${JSON.stringify(path)} is not an object path`);
    return join(this.dataDir, ...path.split('/'));
  }

  /**
   * Opens a stored object for reading, by its index path. Every reader of archived objects goes
   * through here (never fs.open on absolutePath), so that the store decides how bytes are kept
   * on disk (encryption at rest, issue 14): positions and sizes are those of the Part-10 bytes.
   */
  async openObject(path: string): Promise<ObjectHandle> {
    const fh = await open(this.absolutePath(path), 'r');
    try {
      const { size } = await fh.stat();
      const head = Buffer.allocUnsafe(Math.min(size, HEADER_SIZE));
      const { bytesRead } = await fh.read(head, 0, head.length, 0);
      if (!isEnvelope(head.subarray(0, bytesRead))) return new PlainObjectHandle(fh, size);
      const opened = this.openEnvelope(path, head.subarray(0, bytesRead), size);
      return new EncryptedObjectHandle(fh, opened, (detail) => this.integrityFailure(path, detail));
    } catch (e) {
      await fh.close().catch(() => undefined);
      throw e;
    }
  }

  /** Authenticates an envelope header and unwraps its data key, or throws the ArchiveError that says why not. */
  private openEnvelope(
    path: string,
    head: Uint8Array,
    fileSize: number,
    keyring = this.keyring,
  ): OpenedHeader {
    if (!keyring)
      throw new ArchiveError(
        'ERR_ARCHIVE_KEY',
        `${path} is encrypted and no storage.encryption.keyFile is configured`,
      );
    try {
      return openHeader(head, objectIdOf(path), fileSize, keyring);
    } catch (e) {
      if (!(e instanceof EnvelopeError)) throw e;
      if (e.code === 'ERR_ENVELOPE_NO_KEY')
        throw new ArchiveError('ERR_ARCHIVE_KEY', `${path}: ${e.message}`);
      throw this.integrityFailure(path, e.message);
    }
  }

  /** Reports a tampered object and returns the error to throw. */
  private integrityFailure(path: string, detail: string): ArchiveError {
    try {
      this.onIntegrityFailure?.(path, detail);
    } catch {
      // An observer's failure never hides the integrity error.
    }
    return new ArchiveError('ERR_ARCHIVE_INTEGRITY', `object ${path} failed its integrity check: ${detail}`);
  }

  /**
   * Rewraps an encrypted object's data key under `keyring.current` without rewriting the object
   * (security/envelope.ts rewrapSlots: two slot writes, each made durable before the next, so a
   * crash leaves it readable under the old or the new key). `keyring` holds the new key and the
   * old ones. 'plain' for an object not encrypted, 'current' when nothing was left to do.
   */
  async rewrapKey(path: string, keyring: Keyring): Promise<'rewrapped' | 'current' | 'plain'> {
    const fh = await open(this.absolutePath(path), 'r+');
    try {
      const { size } = await fh.stat();
      const head = Buffer.alloc(Math.min(size, HEADER_SIZE));
      const { bytesRead } = await fh.read(head, 0, head.length, 0);
      if (!isEnvelope(head.subarray(0, bytesRead))) return 'plain';
      const opened = this.openEnvelope(path, head.subarray(0, bytesRead), size, keyring);
      const writes = rewrapSlots(head, opened, keyring.current);
      for (const w of writes) {
        await fh.write(w.bytes, 0, w.bytes.length, w.offset);
        await fh.datasync();
      }
      return writes.length === 0 ? 'current' : 'rewrapped';
    } finally {
      await fh.close();
    }
  }

  /** The Part-10 bytes of a stored object from `start` to `end` (exclusive; default all), in chunks. */
  async *readObject(
    path: string,
    options: { readonly start?: number; readonly end?: number; readonly chunkSize?: number } = {},
  ): AsyncGenerator<Uint8Array, void, undefined> {
    const handle = await this.openObject(path);
    try {
      yield* handle.chunks(options);
    } finally {
      await handle.close();
    }
  }

  /**
   * Encrypts a plain stored object in place under `keyring.current` (`pacs archive encrypt`): the
   * envelope is written to a temporary file as the object is read, made durable, then renamed over
   * the plain file, so the object at `path` is whole, plain or encrypted, at every moment. Same
   * path, same Part-10 bytes (the index needs no change). 'already' for an encrypted object.
   * Not for a store a server is using: an object it removes meanwhile would be renamed back.
   */
  async encryptObject(path: string): Promise<'encrypted' | 'already'> {
    if (!this.keyring) throw new ArchiveError('ERR_ARCHIVE_KEY', 'no key-encryption key to encrypt with');
    const source = await this.openObject(path);
    let writer: ObjectWriter | undefined;
    try {
      if (!(source instanceof PlainObjectHandle)) return 'already';
      const id = objectIdOf(path).toString('hex');
      const tmpPath = join(this.tmpDir, `${id}.${randomBytes(4).toString('hex')}${PART}`);
      const fh = await open(tmpPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
      this.active.add(tmpPath);
      const envelope = new EnvelopeWriter(Buffer.from(id, 'hex'), this.keyring.current, this.segmentSize);
      writer = new ObjectWriter(this, id, tmpPath, fh, this.highWaterMark, envelope, true);
      for await (const chunk of source.chunks()) if (!writer.write(chunk)) await writer.drain();
      const done = await writer.commit();
      if (!done.ok) throw done.error;
      return 'encrypted';
    } finally {
      await writer?.abort();
      await source.close();
    }
  }

  /** Removes a stored object; false when it was not there. */
  async remove(path: string): Promise<boolean> {
    try {
      await unlink(this.absolutePath(path));
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw fileError(`cannot remove ${path}`, e);
    }
  }

  async exists(path: string): Promise<boolean> {
    try {
      return (await stat(this.absolutePath(path))).isFile();
    } catch {
      return false;
    }
  }

  /**
   * Removes leftover temporary files (of a crash or a killed process) and returns how many.
   * Files this process is writing are kept, and with `olderThanMs` so are recent ones (other
   * processes sharing the data folder may be writing them).
   */
  async cleanTemp(options: { readonly olderThanMs?: number } = {}): Promise<number> {
    const olderThan = options.olderThanMs ?? 0;
    let removed = 0;
    for (const name of await readdir(this.tmpDir)) {
      const p = join(this.tmpDir, name);
      if (this.active.has(p)) continue;
      try {
        if (olderThan > 0 && Date.now() - (await stat(p)).mtimeMs < olderThan) continue;
        await unlink(p);
        removed++;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fileError(`cannot remove ${p}`, e);
      }
    }
    return removed;
  }

  /**
   * Every file under objects/, in path order (the order of ArchiveIndex.listInstanceFiles),
   * one folder in memory at a time.
   */
  async *walkObjects(): AsyncIterable<ObjectFileEntry> {
    const tops = (await readdir(this.objectsDir)).filter((n) => HEX2.test(n)).sort();
    for (let i = 0; i < tops.length; i++) {
      const top = tops[i] as string;
      const subs = (await readdirOrEmpty(join(this.objectsDir, top))).filter((n) => HEX2.test(n)).sort();
      for (const sub of subs) {
        const dir = join(this.objectsDir, top, sub);
        const files = (await readdirOrEmpty(dir)).sort();
        for (const name of files)
          yield {
            path: `${OBJECTS}/${top}/${sub}/${name}`,
            absolutePath: join(dir, name),
            fraction: (i + 1) / tops.length,
          };
      }
    }
  }

  // --- used by ObjectWriter ------------------------------------------------------------------

  /** @internal Moves a complete, synced temporary file into place. */
  async install(id: string, tmpPath: string): Promise<string> {
    const path = ObjectStore.pathOf(id);
    const target = this.absolutePath(path);
    const dir = join(this.objectsDir, id.slice(0, 2), id.slice(2, 4));
    await this.ensureDir(dir);
    try {
      await rename(tmpPath, target);
    } catch (e) {
      // The folder may have been removed behind our back: make it again, once.
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      this.knownDirs.delete(dir);
      await this.ensureDir(dir);
      await rename(tmpPath, target);
    }
    this.active.delete(tmpPath);
    if (this.durability === 'fsync') await this.dirSync.sync(dir);
    return path;
  }

  /** @internal Bytes committed, for the free-space estimate. */
  committed(bytes: number): void {
    if (this.free) this.free.since += bytes;
  }

  /** @internal */
  released(tmpPath: string): void {
    this.active.delete(tmpPath);
  }

  /** The folder exists, and (with fsync) its entry in its parent is durable. */
  private ensureDir(dir: string): Promise<void> {
    if (this.knownDirs.has(dir)) return Promise.resolve();
    // Concurrent commits into a new folder wait for the same creation (and parent syncs).
    let creating = this.creating.get(dir);
    if (!creating) {
      creating = this.createDir(dir).finally(() => this.creating.delete(dir));
      this.creating.set(dir, creating);
    }
    return creating;
  }

  private async createDir(dir: string): Promise<void> {
    const first = await mkdir(dir, { recursive: true });
    // A new folder is an entry in its parent: sync the parents of what was created.
    if (first !== undefined && this.durability === 'fsync') {
      const parents: string[] = [];
      for (let d = dir; d.length >= first.length; d = resolve(d, '..')) parents.push(resolve(d, '..'));
      await Promise.all(parents.map((p) => this.dirSync.sync(p)));
    }
    this.knownDirs.add(dir);
  }
}

/** The 16-byte object id of an object path (objects/ab/cd/<32 hex>.dcm). */
function objectIdOf(path: string): Buffer {
  const m = /([0-9a-f]{32})\.dcm$/.exec(path);
  if (!m?.[1])
    throw new ArchiveError('ERR_ARCHIVE_INTEGRITY', `${JSON.stringify(path)} does not name an object id`);
  return Buffer.from(m[1], 'hex');
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR')
      return [];
    throw e;
  }
}

/** A stored object open for reading: random access and chunked reads over its Part-10 bytes. */
export interface ObjectHandle {
  /** Bytes of the Part-10 object. */
  readonly size: number;
  /** Like FileHandle.read: up to `length` bytes at `position` into `buffer` at `offset`. */
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  /** The bytes from `start` to `end` (exclusive; default to the end), in chunks of about `chunkSize` (default 256 KiB). */
  chunks(options?: {
    readonly start?: number;
    readonly end?: number;
    readonly chunkSize?: number;
  }): AsyncGenerator<Uint8Array, void, undefined>;
  close(): Promise<void>;
}

class PlainObjectHandle implements ObjectHandle {
  constructor(
    private readonly fh: FileHandle,
    readonly size: number,
  ) {}

  async read(
    buffer: Uint8Array,
    offset: number,
    length: number,
    position: number,
  ): Promise<{ bytesRead: number }> {
    const { bytesRead } = await this.fh.read(buffer, offset, length, position);
    return { bytesRead };
  }

  async *chunks(
    options: { readonly start?: number; readonly end?: number; readonly chunkSize?: number } = {},
  ): AsyncGenerator<Uint8Array, void, undefined> {
    const end = Math.min(options.end ?? this.size, this.size);
    const chunkSize = options.chunkSize ?? 256 * 1024;
    let position = options.start ?? 0;
    while (position < end) {
      const buffer = Buffer.allocUnsafe(Math.min(chunkSize, end - position));
      const { bytesRead } = await this.fh.read(buffer, 0, buffer.length, position);
      if (bytesRead === 0)
        throw new ArchiveError('ERR_ARCHIVE_IO', `object file ended at ${position} of ${this.size}`);
      position += bytesRead;
      yield bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead);
    }
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

/**
 * An encrypted object open for reading: reads decrypt only the segments they cover, and each
 * segment's plaintext is handed out only after its tag checks. The last segment opened is kept
 * (readers go forward in small reads: a header, then PDV-sized pieces).
 */
class EncryptedObjectHandle implements ObjectHandle {
  readonly size: number;
  private cached: { index: number; plain: Buffer } | undefined;

  constructor(
    private readonly fh: FileHandle,
    private readonly opened: OpenedHeader,
    private readonly failed: (detail: string) => ArchiveError,
  ) {
    this.size = opened.plaintextSize;
  }

  /** Opens segments `first`..`last` with one file read. */
  private async segments(first: number, last: number): Promise<Buffer[]> {
    const { plaintextSize, segmentSize } = this.opened;
    if (this.cached && first === last && this.cached.index === first) return [this.cached.plain];
    const from = segmentPlace(first, plaintextSize, segmentSize);
    const to = segmentPlace(last, plaintextSize, segmentSize);
    const total = to.offset + to.length + TAG_SIZE - from.offset;
    const sealed = Buffer.allocUnsafe(total);
    let got = 0;
    while (got < total) {
      const { bytesRead } = await this.fh.read(sealed, got, total - got, from.offset + got);
      if (bytesRead === 0) throw this.failed(`file ended at ${from.offset + got} (truncated)`);
      got += bytesRead;
    }
    const out: Buffer[] = [];
    for (let i = first, at = 0; i <= last; i++) {
      const place = segmentPlace(i, plaintextSize, segmentSize);
      const n = place.length + TAG_SIZE;
      try {
        out.push(openSegment(this.opened, i, sealed.subarray(at, at + n)));
      } catch (e) {
        if (e instanceof EnvelopeError) throw this.failed(e.message);
        throw e;
      }
      at += n;
    }
    const lastPlain = out[out.length - 1];
    if (lastPlain) this.cached = { index: last, plain: lastPlain };
    return out;
  }

  /** The part of segment `index`'s plaintext that lies in [start, end) of the object. */
  private within(plain: Buffer, index: number, start: number, end: number): Buffer {
    const s = index * this.opened.segmentSize;
    const from = Math.max(start, s) - s;
    const to = Math.max(from, Math.min(end, s + plain.length) - s);
    return from === 0 && to === plain.length ? plain : plain.subarray(from, to);
  }

  async read(
    buffer: Uint8Array,
    offset: number,
    length: number,
    position: number,
  ): Promise<{ bytesRead: number }> {
    const end = Math.min(position + length, this.size);
    if (position >= end) return { bytesRead: 0 };
    const seg = this.opened.segmentSize;
    const first = Math.floor(position / seg);
    const last = Math.floor((end - 1) / seg);
    const plains = await this.segments(first, last);
    let at = offset;
    for (let i = first; i <= last; i++) {
      const part = this.within(plains[i - first] as Buffer, i, position, end);
      buffer.set(part, at);
      at += part.length;
    }
    return { bytesRead: at - offset };
  }

  async *chunks(
    options: { readonly start?: number; readonly end?: number; readonly chunkSize?: number } = {},
  ): AsyncGenerator<Uint8Array, void, undefined> {
    const end = Math.min(options.end ?? this.size, this.size);
    const start = options.start ?? 0;
    if (start >= end) return;
    const seg = this.opened.segmentSize;
    const perRead = Math.max(1, Math.floor((options.chunkSize ?? 256 * 1024) / seg));
    const lastSegment = Math.min(Math.floor((end - 1) / seg), segmentCount(this.size, seg) - 1);
    for (let first = Math.floor(start / seg); first <= lastSegment; first += perRead) {
      const last = Math.min(first + perRead - 1, lastSegment);
      const plains = await this.segments(first, last);
      for (let i = first; i <= last; i++) {
        const part = this.within(plains[i - first] as Buffer, i, start, end);
        if (part.length > 0) yield part;
      }
    }
  }

  close(): Promise<void> {
    this.cached = undefined;
    return this.fh.close();
  }
}

type WriterState = 'open' | 'committing' | 'committed' | 'aborted';

/**
 * A new object being written. write() queues a chunk (the writer owns it from then on: do not
 * modify it) and returns false when the queue is over the high-water mark: await drain() before
 * writing more. A write error (disk full) is kept, later writes are dropped, and commit() reports
 * it, so the caller can go on reading its input to the end and then answer.
 */
export class ObjectWriter {
  readonly id: string;
  private readonly store: ObjectStore;
  private readonly tmpPath: string;
  private readonly fh: FileHandle;
  private readonly highWaterMark: number;
  private state: WriterState = 'open';
  private queue: Uint8Array[] = [];
  private queued = 0;
  private written = 0;
  private accepted = 0;
  private pumping: Promise<void> | undefined;
  private failure: ArchiveError | undefined;
  private drainWaiters: (() => void)[] = [];
  private ending: Promise<unknown> | undefined;
  /** With encryption: the segments are sealed here, the header written at commit. */
  private readonly envelope: EnvelopeWriter | undefined;
  /** Rewrites an object that exists under this id (encryptObject): commit replaces it atomically. */
  private readonly replacing: boolean;

  /** @internal Made by ObjectStore.beginObject. */
  constructor(
    store: ObjectStore,
    id: string,
    tmpPath: string,
    fh: FileHandle,
    highWaterMark: number,
    envelope?: EnvelopeWriter,
    replacing = false,
  ) {
    this.store = store;
    this.id = id;
    this.tmpPath = tmpPath;
    this.fh = fh;
    this.highWaterMark = highWaterMark;
    this.envelope = envelope;
    this.replacing = replacing;
    // The header's place is left for commit(), which writes it last, before the fsync.
    if (envelope) this.written = HEADER_SIZE;
  }

  /** Bytes accepted by write() so far. */
  get bytesWritten(): number {
    return this.accepted;
  }

  /** The first write error, if any (the object cannot be committed then). */
  get error(): ArchiveError | undefined {
    return this.failure;
  }

  write(chunk: Uint8Array): boolean {
    if (this.state !== 'open')
      throw new ArchiveError('ERR_ARCHIVE_STATE', `object ${this.id} is ${this.state}: cannot write`);
    if (this.failure || chunk.length === 0) return true;
    this.accepted += chunk.length;
    if (this.envelope) for (const sealed of this.envelope.push(chunk)) this.enqueue(sealed);
    else this.enqueue(chunk);
    return this.queued < this.highWaterMark;
  }

  private enqueue(chunk: Uint8Array): boolean {
    this.queue.push(chunk);
    this.queued += chunk.length;
    this.pumping ??= this.pump();
    return this.queued < this.highWaterMark;
  }

  /** Resolves when the queue is below the high-water mark again (at once after a write error). */
  drain(): Promise<void> {
    if (this.queued < this.highWaterMark || this.failure) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private async pump(): Promise<void> {
    try {
      while (this.queue.length > 0 && !this.failure) {
        // At most 1024 buffers per writev (IOV_MAX on Linux).
        const batch = this.queue.splice(0, 1024);
        let bytes = batch.reduce((n, c) => n + c.length, 0);
        let pending = batch;
        while (bytes > 0) {
          const { bytesWritten } = await this.fh.writev(pending, this.written);
          this.written += bytesWritten;
          this.queued -= bytesWritten;
          bytes -= bytesWritten;
          if (bytes > 0) pending = rest(pending, bytesWritten);
        }
        this.wakeDrain();
      }
    } catch (e) {
      this.failure = fileError(`writing object ${this.id}`, e);
      this.queue = [];
      this.queued = 0;
      this.wakeDrain();
    } finally {
      this.pumping = undefined;
    }
  }

  private wakeDrain(): void {
    if (this.queued >= this.highWaterMark && !this.failure) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  /**
   * Finishes the object: waits for queued bytes, fsyncs the file, renames it into place and
   * fsyncs its folder. On failure the temporary file is removed and the error returned.
   */
  commit(): Promise<Result<StoredFile, ArchiveError>> {
    if (this.state !== 'open')
      return Promise.resolve(
        err(new ArchiveError('ERR_ARCHIVE_STATE', `object ${this.id} is ${this.state}: cannot commit`)),
      );
    this.state = 'committing';
    const done = this.finish();
    this.ending = done;
    return done;
  }

  private async finish(): Promise<Result<StoredFile, ArchiveError>> {
    let closed = false;
    try {
      if (this.envelope && !this.failure) {
        const { tail, header } = this.envelope.end();
        for (const t of tail) this.enqueue(t);
        while (this.pumping) await this.pumping;
        if (this.failure) throw this.failure;
        await this.fh.write(header, 0, header.length, 0);
      }
      while (this.pumping) await this.pumping;
      if (this.failure) throw this.failure;
      if (this.store.durability === 'fsync') await this.fh.datasync();
      await this.fh.close();
      closed = true;
      const path = await this.store.install(this.id, this.tmpPath);
      this.store.committed(this.written);
      this.state = 'committed';
      return ok({ id: this.id, path, size: this.accepted });
    } catch (e) {
      const error = fileError(`committing object ${this.id}`, e);
      if (!closed) await this.fh.close().catch(() => undefined);
      await this.removeTemp();
      // If the rename happened and the folder sync failed, the object is not known durable: take it
      // back (not when it replaced an object in place: the file there is then the old or the new one).
      if (!this.replacing) await this.store.remove(ObjectStore.pathOf(this.id)).catch(() => undefined);
      this.state = 'aborted';
      return err(error);
    }
  }

  /** Drops the object: closes and removes the temporary file. Does nothing after a commit. */
  abort(): Promise<void> {
    if (this.state === 'open') {
      this.state = 'aborted';
      this.ending = (async () => {
        this.queue = [];
        this.queued = 0;
        this.wakeDrain();
        while (this.pumping) await this.pumping;
        await this.fh.close().catch(() => undefined);
        await this.removeTemp();
      })();
    }
    return this.ending ? this.ending.then(() => undefined) : Promise.resolve();
  }

  private async removeTemp(): Promise<void> {
    await unlink(this.tmpPath).catch(() => undefined);
    this.store.released(this.tmpPath);
  }
}

/** The buffers left after the first `skip` bytes of them. */
function rest(buffers: Uint8Array[], skip: number): Uint8Array[] {
  let i = 0;
  let n = skip;
  while (i < buffers.length && n >= (buffers[i] as Uint8Array).length) {
    n -= (buffers[i] as Uint8Array).length;
    i++;
  }
  const out = buffers.slice(i);
  if (n > 0 && out.length > 0) out[0] = (out[0] as Uint8Array).subarray(n);
  return out;
}
