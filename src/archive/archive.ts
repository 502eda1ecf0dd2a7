/**
 * The archive: the object store and the index together, with the duplicate policy. Every object
 * comes in through createIngestStream()/ingest() (see ingest.ts), which commits the object file (fsync, rename, folder fsync), then indexes it, and only then
 * resolves, so an object reported stored survives a crash; when indexing fails the file is
 * removed again. reconcile() repairs what a crash can leave (see reconcile.ts).
 */
import { join } from 'node:path';
import type { EventBus } from '../core/events.js';
import type { Logger } from '../core/logger.js';
import { err, ok, type Result } from '../core/result.js';
import { ArchiveError } from './errors.js';
import type { ArchiveIndex, IndexedInstance, IndexWarning } from './index/archive-index.js';
import { describeInstance } from './index/extract.js';
import type { GroupCommitOptions } from './index/group-commit.js';
import { openIndex } from './index/open.js';
import { type DuplicatePolicy, type IngestRequest, IngestStream, type ReceivedObject } from './ingest.js';
import type { JobStore } from './jobs/job.js';
import { jobStoreFor } from './jobs/open.js';
import { SqlJobStore } from './jobs/sql-store.js';
import { type ReconcileOptions, type ReconcileReport, reconcile } from './reconcile.js';
import { type Durability, ObjectStore, type StoredFile } from './store.js';
import { worklistStoreOf } from './worklist/open.js';
import type { WorklistStore } from './worklist/worklist-store.js';

export type { DuplicatePolicy, IngestRequest, IngestVia } from './ingest.js';

export type IngestOutcome =
  | {
      readonly status: 'stored';
      readonly file: StoredFile;
      /** Data the index did not merge (a patient ID shared by two patients...): for the caller to log. */
      readonly warnings: readonly IndexWarning[];
    }
  | {
      /** Policy keep: the archived object stays, the new one was dropped. */
      readonly status: 'duplicate';
      readonly existing: IndexedInstance;
    }
  | {
      /** Policy replace: the new object is archived, the old file removed. */
      readonly status: 'replaced';
      readonly file: StoredFile;
      readonly previous: IndexedInstance;
      readonly warnings: readonly IndexWarning[];
    };

export interface ArchiveOptions {
  readonly duplicatePolicy?: DuplicatePolicy;
  readonly logger?: Logger;
  /** Where ingested objects are reported ('object-received', core/events.ts); default: nowhere. */
  readonly events?: EventBus;
}

export interface OpenArchiveOptions extends ArchiveOptions {
  /** The data folder (objects/, tmp/ and, by default, the SQLite index file). */
  readonly dataDir: string;
  /** `sqlite:PATH` or `postgres://...`; default: sqlite:DATA/index.sqlite. */
  readonly dbUrl?: string;
  /** For the store and the index alike (default 'fsync'). */
  readonly durability?: Durability;
  readonly minFreeBytes?: number;
  readonly groupCommit?: GroupCommitOptions;
}

export class Archive {
  readonly store: ObjectStore;
  readonly index: ArchiveIndex;
  readonly duplicatePolicy: DuplicatePolicy;
  private readonly logger: Logger | undefined;
  private readonly events: EventBus | undefined;
  private jobStore: JobStore | undefined;

  constructor(store: ObjectStore, index: ArchiveIndex, options: ArchiveOptions = {}) {
    this.store = store;
    this.index = index;
    this.duplicatePolicy = options.duplicatePolicy ?? 'keep';
    this.logger = options.logger;
    this.events = options.events;
  }

  /**
   * The one ingest entry point, as a Writable: write the object's bytes (a data set in
   * `request.transferSyntaxUid`, or a Part-10 file with `format: 'part10'`) and end it, or
   * pipeline() into it; `outcome` resolves once the object is durable and indexed, or was dropped
   * (see ArchiveErrorCode). The stream emits 'finish' after `outcome` is settled and never errors
   * for an expected failure; destroying it before its end drops the object (ERR_ARCHIVE_ABORTED).
   */
  createIngestStream(request: IngestRequest): IngestStream<IngestOutcome> {
    return new IngestStream<IngestOutcome>(
      {
        begin: () => this.store.beginObject(),
        settle: (received) => this.settle(received, request),
      },
      request,
    );
  }

  /**
   * Ingests the bytes of `source` (see createIngestStream), honouring the file's backpressure.
   * When `source` throws, the object is dropped and the outcome is ERR_ARCHIVE_ABORTED with the
   * source's error as its cause.
   */
  async ingest(
    source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    request: IngestRequest,
  ): Promise<Result<IngestOutcome, ArchiveError>> {
    const stream = this.createIngestStream(request);
    // A failed source destroys the stream; its error is the outcome's cause, not an 'error' to throw.
    stream.on('error', () => undefined);
    try {
      for await (const chunk of source)
        if (!stream.write(chunk)) await new Promise<void>((resolve) => stream.once('drain', resolve));
      stream.end();
    } catch (e) {
      stream.destroy(e instanceof Error ? e : new Error(String(e)));
    }
    return stream.outcome;
  }

  /** A received object: checked against the index and the duplicate policy, committed, indexed. */
  private async settle(
    received: ReceivedObject,
    request: IngestRequest,
  ): Promise<Result<IngestOutcome, ArchiveError>> {
    const { handle, header } = received;
    const policy = request.duplicatePolicy ?? this.duplicatePolicy;
    const described = describeInstance(
      header,
      {
        transferSyntaxUid: received.transferSyntaxUid,
        path: '',
        size: 0,
        receivedAt: request.receivedAt ?? new Date(),
        callingAet: request.source,
      },
      received.metadata,
    );
    if (!described.ok) {
      await handle.abort();
      return described;
    }
    const { record, headers } = described.value;
    const uid = record.instance.sopInstanceUid;
    const report = (outcome: IngestOutcome): Result<IngestOutcome, ArchiveError> => {
      this.events?.emit({
        type: 'object-received',
        outcome: outcome.status,
        sopInstanceUid: uid,
        sopClassUid: record.instance.sopClassUid,
        studyInstanceUid: record.study.studyInstanceUid,
        patientId: record.patient.patientId ?? '',
        bytes: received.bytes,
        source: request.source,
        via: request.via,
        ...(record.patient.patientName !== null ? { patientName: record.patient.patientName } : {}),
        ...(request.remoteAddress !== undefined ? { remoteAddress: request.remoteAddress } : {}),
        ...(request.user !== undefined ? { user: request.user } : {}),
      });
      return ok(outcome);
    };

    // A duplicate known now costs no fsync; the insert below still decides (another writer may win the race).
    if (policy !== 'replace') {
      let existing: IndexedInstance | undefined;
      try {
        existing = await this.index.findInstance(uid);
      } catch (e) {
        await handle.abort();
        return err(indexFailure(uid, e));
      }
      if (existing) {
        await handle.abort();
        return this.duplicate(policy, existing, report);
      }
    }

    const committed = await handle.commit();
    if (!committed.ok) return committed;
    const file = committed.value;
    const complete = { ...record, instance: { ...record.instance, path: file.path, size: file.size } };

    let inserted: Awaited<ReturnType<ArchiveIndex['insertInstance']>>;
    try {
      inserted = await this.index.insertInstance(complete, headers, {
        onDuplicate: policy === 'replace' ? 'replace' : 'keep',
      });
    } catch (e) {
      const r = await this.afterIndexFailure(uid, file, e);
      return r.ok ? report(r.value) : r;
    }
    switch (inserted.status) {
      case 'inserted':
        return report({ status: 'stored', file, warnings: inserted.warnings });
      case 'duplicate':
        // Our own file indexed by someone else (a reconcile running in another process) is ours.
        if (inserted.existing.path === file.path) return report({ status: 'stored', file, warnings: [] });
        await this.removeFile(file.path, 'it is a duplicate');
        return this.duplicate(policy, inserted.existing, report);
      case 'replaced':
        if (inserted.previous.path !== file.path)
          await this.removeFile(inserted.previous.path, 'it was replaced');
        return report({ status: 'replaced', file, previous: inserted.previous, warnings: inserted.warnings });
    }
  }

  private duplicate(
    policy: DuplicatePolicy,
    existing: IndexedInstance,
    report: (o: IngestOutcome) => Result<IngestOutcome, ArchiveError>,
  ): Result<IngestOutcome, ArchiveError> {
    if (policy === 'reject')
      return err(
        new ArchiveError(
          'ERR_ARCHIVE_DUPLICATE',
          `SOP Instance ${existing.sopInstanceUid} is archived already`,
        ),
      );
    return report({ status: 'duplicate', existing });
  }

  /** The job queue kept in this archive's index (one store per archive, shared by the runner and the services). */
  get jobs(): JobStore {
    this.jobStore ??= jobStoreFor(this.index);
    return this.jobStore;
  }

  /** The modality worklist kept in this archive's index (one store per index). */
  get worklist(): WorklistStore {
    return worklistStoreOf(this.index);
  }

  /** Jobs queued or running in the shared queue; undefined when the index keeps none (the in-memory index). */
  jobQueueDepth(): Promise<number | undefined> {
    const jobs = this.jobs;
    return jobs instanceof SqlJobStore ? jobs.countActive() : Promise.resolve(undefined);
  }

  /** Removes an object from the index, then its file. False when it was not archived. */
  async delete(sopInstanceUid: string): Promise<boolean> {
    const removed = await this.index.deleteInstance(sopInstanceUid);
    if (!removed) return false;
    await this.removeFile(removed.path, 'it was deleted');
    return true;
  }

  /** Start-up (and `pacs archive reindex`) repair: see reconcile.ts. */
  reconcile(options: ReconcileOptions = {}): Promise<ReconcileReport> {
    return reconcile(this.store, this.index, { ...options, logger: options.logger ?? this.logger });
  }

  async close(): Promise<void> {
    await this.index.close();
  }

  /**
   * An insert that failed may still have committed (a connection lost during COMMIT). Only a
   * file known not to be indexed is removed: a file without a row is repaired by reconcile, a
   * row without its file must never be left.
   */
  private async afterIndexFailure(
    uid: string,
    file: StoredFile,
    cause: unknown,
  ): Promise<Result<IngestOutcome, ArchiveError>> {
    let indexed: IndexedInstance | undefined;
    try {
      indexed = await this.index.findInstance(uid);
    } catch (e) {
      this.logger?.warn(
        { err: e, path: file.path, sopInstanceUid: uid },
        'indexing failed and the index cannot say whether it committed: the file is kept for reconcile',
      );
      return err(indexFailure(uid, cause));
    }
    if (indexed?.path === file.path) return ok({ status: 'stored', file, warnings: [] });
    await this.removeFile(file.path, 'its indexing failed');
    return err(indexFailure(uid, cause));
  }

  private async removeFile(path: string, why: string): Promise<void> {
    try {
      await this.store.remove(path);
    } catch (e) {
      // Left behind, the file is found by the next reconcile (a duplicate of an indexed object: removed).
      this.logger?.warn({ err: e, path }, `could not remove an object file after ${why}`);
    }
  }
}

function indexFailure(uid: string, cause: unknown): ArchiveError {
  if (cause instanceof ArchiveError) return cause;
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new ArchiveError('ERR_ARCHIVE_INDEX', `indexing ${uid} failed: ${detail}`, { cause });
}

/** Opens the store and the index of a data folder (creating what is missing, running migrations). */
export async function openArchive(options: OpenArchiveOptions): Promise<Archive> {
  const durability = options.durability ?? 'fsync';
  const store = await ObjectStore.open({
    dataDir: options.dataDir,
    durability,
    ...(options.minFreeBytes === undefined ? {} : { minFreeBytes: options.minFreeBytes }),
  });
  const { index } = await openIndex(options.dbUrl ?? `sqlite:${join(store.dataDir, 'index.sqlite')}`, {
    durability,
    ...(options.groupCommit ? { groupCommit: options.groupCommit } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
  });
  return new Archive(store, index, options);
}
