/**
 * Shared fsync (the group commit of the file system): a sync requested while one of the same
 * file or folder is running waits for the next one, which every such request shares. N writers
 * committing at once cost two fsyncs, not N.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';

export class SharedSync {
  private running: Promise<void> | undefined;
  private next: Promise<void> | undefined;

  constructor(private readonly run: () => Promise<void>) {}

  /** True when no sync is running or waiting. */
  get idle(): boolean {
    return this.running === undefined && this.next === undefined;
  }

  /** Resolves after a sync that started after this call. */
  sync(): Promise<void> {
    if (this.next) return this.next;
    if (this.running) {
      this.next = this.running
        .catch(() => undefined)
        .then(() => {
          this.next = undefined;
          return this.start();
        });
      return this.next;
    }
    return this.start();
  }

  private start(): Promise<void> {
    const running = this.run().finally(() => {
      if (this.running === running) this.running = undefined;
    });
    this.running = running;
    return running;
  }
}

/** fsync of folders by path, each shared (see SharedSync). */
export class FolderSyncer {
  private readonly folders = new Map<string, SharedSync>();

  sync(dir: string): Promise<void> {
    let s = this.folders.get(dir);
    if (!s) {
      s = new SharedSync(() => fsyncFolder(dir));
      this.folders.set(dir, s);
    }
    const shared = s;
    return shared.sync().finally(() => {
      if (shared.idle && this.folders.get(dir) === shared) this.folders.delete(dir);
    });
  }
}

/** Makes a folder's entries (names created, renamed, removed) durable. */
export async function fsyncFolder(dir: string): Promise<void> {
  const fh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
