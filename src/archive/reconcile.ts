/**
 * Start-up reconcile: brings the index and the object files back in agreement after a crash.
 * A crash can leave a temporary file (removed), an object file renamed into place but not yet
 * indexed (indexed now), or a file that was a duplicate or a replaced object not yet removed
 * (its SOP Instance UID is indexed under another file: removed). An index row whose file is
 * missing (lost or removed by hand) is removed and logged.
 *
 * The files (walked in path order) and the index rows (read in path order, a page at a time)
 * are merged like two sorted lists, so memory stays bounded whatever the archive's size.
 */
import { stat } from 'node:fs/promises';
import type { Logger } from '../core/logger.js';
import type { DataSet } from '../dicom/dataset.js';
import { TAG } from '../dicom/dictionary.js';
import { DicomParser } from '../dicom/parser.js';
import { readChunks } from '../io/dicom-file.js';
import type { ArchiveIndex, InstanceFile } from './index/archive-index.js';
import { type InstanceMetadataDocs, MetadataCapture } from './index/capture.js';
import { describeInstance } from './index/extract.js';
import type { ObjectFileEntry, ObjectStore } from './store.js';

export interface ReconcileProgress {
  readonly phase: 'temp' | 'scan' | 'done';
  /** 0 to 1, for a progress bar. */
  readonly fraction: number;
  readonly filesChecked: number;
  readonly rowsChecked: number;
}

export interface ReconcileOptions {
  readonly onProgress?: (progress: ReconcileProgress) => void;
  /**
   * Leave temporary and unindexed files younger than this alone (default 0). Set it when other
   * processes share the data folder: their objects in flight look like a crash's leftovers.
   */
  readonly graceMs?: number;
  /** Files indexed at once (default 8; their inserts share commits). */
  readonly concurrency?: number;
  readonly logger?: Logger | undefined;
}

export interface ReconcileReport {
  readonly tempFilesRemoved: number;
  /** Object files found without an index row, now indexed. */
  readonly filesIndexed: number;
  /** Object files whose SOP Instance UID is indexed under another file (an unfinished duplicate or replace), removed. */
  readonly duplicateFilesRemoved: number;
  /** Index rows whose file was missing, removed. */
  readonly rowsRemoved: number;
  /** Files under objects/ that could not be read as DICOM: left in place, listed here. */
  readonly unreadableFiles: readonly string[];
  readonly filesChecked: number;
  readonly rowsChecked: number;
}

/** An object file read as ingest reads it: its header, syntax and WADO-RS documents (capture.ts). */
export interface CapturedFile {
  readonly meta: DataSet | undefined;
  readonly dataSet: DataSet;
  readonly transferSyntax: string;
  /** Bytes of the Part-10 object (an encrypted file is larger on disk). */
  readonly size: number;
  /** The WADO-RS documents with file offsets. */
  readonly metadata: () => InstanceMetadataDocs;
}

/**
 * Reads a whole object file through the capture of the ingest path: values over the header limits
 * are not held, only their offsets. Throws DicomParseError for a file that is not DICOM.
 */
export async function captureObjectFile(store: ObjectStore, path: string): Promise<CapturedFile> {
  const capture = new MetadataCapture();
  const parser = new DicomParser(capture, { format: 'part10' });
  capture.track(() => parser.offset);
  const fh = await store.openObject(path);
  const size = fh.size;
  try {
    for await (const chunk of readChunks(fh, 0, 64 * 1024)) parser.write(chunk);
    parser.end();
  } finally {
    await fh.close();
  }
  return {
    meta: capture.fileMeta,
    dataSet: capture.root,
    transferSyntax: parser.transferSyntaxUid || capture.transferSyntax,
    size,
    // The parser read the file itself: its offsets are file offsets.
    metadata: () => capture.finish(0),
  };
}

export async function reconcile(
  store: ObjectStore,
  index: ArchiveIndex,
  options: ReconcileOptions = {},
): Promise<ReconcileReport> {
  const log = options.logger;
  const grace = options.graceMs ?? 0;
  const progress = options.onProgress;
  const counts = {
    tempFilesRemoved: 0,
    filesIndexed: 0,
    duplicateFilesRemoved: 0,
    rowsRemoved: 0,
    filesChecked: 0,
    rowsChecked: 0,
  };
  const unreadableFiles: string[] = [];
  let fraction = 0;
  const report = (phase: ReconcileProgress['phase']) =>
    progress?.({ phase, fraction, filesChecked: counts.filesChecked, rowsChecked: counts.rowsChecked });

  report('temp');
  counts.tempFilesRemoved = await store.cleanTemp({ olderThanMs: grace });
  if (counts.tempFilesRemoved > 0)
    log?.info({ count: counts.tempFilesRemoved }, 'removed leftover temporary files');

  const limit = new Limiter(options.concurrency ?? 8);

  const indexFile = async (file: ObjectFileEntry): Promise<void> => {
    let info: Awaited<ReturnType<typeof stat>>;
    try {
      info = await stat(file.absolutePath);
    } catch {
      return; // gone meanwhile
    }
    // (Only with a grace: Date.now() has whole milliseconds, mtimeMs finer, so a fresh file can look newer than now.)
    if (!info.isFile() || (grace > 0 && Date.now() - info.mtimeMs < grace)) return;
    let header: CapturedFile;
    try {
      // The whole file: the frame layout and the attributes after Pixel Data are kept too.
      header = await captureObjectFile(store, file.path);
    } catch (e) {
      unreadableFiles.push(file.path);
      log?.warn({ err: e, path: file.path }, 'object file is not readable DICOM: left in place');
      return;
    }
    const meta = header.meta;
    const described = describeInstance(
      header.dataSet,
      {
        transferSyntaxUid: header.transferSyntax,
        path: file.path,
        size: header.size,
        receivedAt: info.mtime,
        callingAet:
          meta?.string(TAG.SendingApplicationEntityTitle) ??
          meta?.string(TAG.SourceApplicationEntityTitle) ??
          null,
      },
      header.metadata,
    );
    if (!described.ok) {
      unreadableFiles.push(file.path);
      log?.warn(
        { path: file.path, reason: described.error.message },
        'object file cannot be indexed: left in place',
      );
      return;
    }
    const { record, headers } = described.value;
    let result = await index.insertInstance(record, headers, { onDuplicate: 'keep' });
    if (result.status === 'duplicate') {
      if (await store.exists(result.existing.path)) {
        // Never acknowledged (an unfinished duplicate or replace): the indexed object is the one that was.
        await store.remove(file.path);
        counts.duplicateFilesRemoved++;
        log?.warn(
          {
            path: file.path,
            sopInstanceUid: result.existing.sopInstanceUid,
            indexedPath: result.existing.path,
          },
          'removed an object file whose SOP Instance UID is indexed under another file',
        );
        return;
      }
      // The indexed file is gone: this copy takes its place (the lost row counts as removed,
      // here or by dropRow, whichever ran first).
      result = await index.insertInstance(record, headers, { onDuplicate: 'replace' });
      if (result.status === 'replaced') {
        counts.rowsRemoved++;
        log?.warn(
          {
            path: file.path,
            sopInstanceUid: record.instance.sopInstanceUid,
            missingPath: result.previous.path,
          },
          'object file missing: its index row now names another copy of the object',
        );
      }
    }
    counts.filesIndexed++;
    log?.info(
      { path: file.path, sopInstanceUid: record.instance.sopInstanceUid },
      'indexed an unindexed object file',
    );
    if (result.status !== 'duplicate') for (const w of result.warnings) log?.warn({ warning: w }, w.message);
  };

  const dropRow = async (row: InstanceFile): Promise<void> => {
    // Walk order and row order agree for the store's paths; a row elsewhere is checked directly.
    if (await store.exists(row.path)) return;
    // Only if the row still names that file: a concurrent task may have pointed it at another copy.
    const removed = await index.withTransaction(async (tx) => {
      const current = await tx.findInstance(row.sopInstanceUid);
      return current?.path === row.path ? tx.deleteInstance(row.sopInstanceUid) : undefined;
    });
    if (removed) {
      counts.rowsRemoved++;
      log?.warn(
        { path: row.path, sopInstanceUid: row.sopInstanceUid },
        'object file missing: removed its index row',
      );
    }
  };

  report('scan');
  const rows = index.listInstanceFiles()[Symbol.asyncIterator]();
  let row = await rows.next();
  const nextRow = async () => {
    counts.rowsChecked++;
    row = await rows.next();
  };
  for await (const file of store.walkObjects()) {
    counts.filesChecked++;
    while (!row.done && row.value.path < file.path) {
      const missing = row.value;
      await limit.run(() => dropRow(missing));
      await nextRow();
    }
    if (!row.done && row.value.path === file.path) await nextRow();
    else await limit.run(() => indexFile(file));
    if (file.fraction !== fraction) {
      fraction = file.fraction;
      report('scan');
    }
  }
  while (!row.done) {
    const missing = row.value;
    await limit.run(() => dropRow(missing));
    await nextRow();
  }
  await limit.idle();
  fraction = 1;
  report('done');
  return { ...counts, unreadableFiles };
}

/** Runs at most `size` tasks at once; run() waits for a free slot. The first failure is rethrown by idle(). */
class Limiter {
  private readonly running = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;

  constructor(private readonly size: number) {}

  async run(task: () => Promise<void>): Promise<void> {
    if (this.failure) throw this.failure.error;
    while (this.running.size >= this.size) await Promise.race(this.running);
    const p: Promise<void> = task()
      .catch((error) => {
        this.failure ??= { error };
      })
      .finally(() => this.running.delete(p));
    this.running.add(p);
  }

  async idle(): Promise<void> {
    await Promise.all(this.running);
    if (this.failure) throw this.failure.error;
  }
}
