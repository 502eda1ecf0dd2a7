/**
 * Compression at rest in a running server: each object stored (the 'object-received' event of
 * the one ingest entry point) that the policy may compress becomes a 'compress' job of the job
 * queue at background priority, so ingest, retrieves and viewers go first; a runner of this
 * process runs it (compress.ts) one at a time. The job's result says what was done and the disk
 * saved; each outcome is an 'object-compressed' event (metrics) and a log line.
 *
 * The original file of a compressed object is removed `removeDelayMs` after the index switched
 * to the copy, not at once: a retrieve that looked the row up just before the switch (a C-MOVE
 * or C-GET reads its instances a page at a time, a WADO-RS request looks its row up and then
 * opens the file) still finds the original; one that already opened it reads on regardless (an
 * open file outlives its unlink). A crash before the removal leaves the original unindexed
 * beside the copy the row names: the start-up reconcile removes it.
 */
import type { EventBus, EventOf } from '../../core/events.js';
import { transferSyntax } from '../../dicom/uid.js';
import type { JobStore } from '../jobs/job.js';
import { JobPriority, RetryableJobError } from '../jobs/job.js';
import { type JobContext, type JobLogger, JobRunner, type JobRunnerOptions } from '../jobs/runner.js';
import {
  type CompressionArchive,
  type CompressOutcome,
  compressInstance,
  type ObjectTranscoder,
  pooledDecoder,
  storeTranscoder,
} from './compress.js';
import { type CompressionPolicy, type CompressionTarget, policyCompresses, targetFor } from './policy.js';
import type { FrameDecoder } from './verify.js';

export const COMPRESS_JOB = 'compress';

/** Default delay between the switch to a compressed copy and the removal of the original. */
export const DEFAULT_REMOVE_DELAY_MS = 10 * 60 * 1000;

/** What a compress job is given. */
export interface CompressPayload {
  readonly sopInstanceUid: string;
}

/** A compress job's result: the outcome, and the disk it saved. */
export interface CompressJobResult {
  readonly status: CompressOutcome['status'];
  readonly sopInstanceUid: string;
  readonly reason?: string;
  readonly fromTransferSyntaxUid?: string;
  readonly toTransferSyntaxUid?: string;
  readonly bytesBefore?: number;
  readonly bytesAfter?: number;
  readonly bytesSaved: number;
}

export interface CompressionServiceOptions {
  readonly archive: CompressionArchive & { readonly jobs: JobStore };
  readonly policy: CompressionPolicy;
  readonly transcode: ObjectTranscoder;
  readonly decode?: FrameDecoder;
  /** Where objects stored are heard of, and compression outcomes reported. */
  readonly events?: EventBus;
  readonly logger?: JobLogger;
  /** See the module comment (default 10 minutes). */
  readonly removeDelayMs?: number;
  /** Settings of the runner (default: one job at a time). */
  readonly runner?: JobRunnerOptions;
}

export interface CompressionService {
  readonly runner: JobRunner;
  /** Queues a compress job for an archived object. */
  enqueue(sopInstanceUid: string): Promise<void>;
  start(): void;
  /** Stops the runner (running jobs go back to the queue) and removes the originals still waiting. */
  stop(): Promise<void>;
}

/** The service of a server whose policy compresses (see policyCompresses). */
export function compressionService(options: CompressionServiceOptions): CompressionService {
  const { archive, policy, events } = options;
  const log = options.logger;
  const removals = new DelayedRemovals(archive, options.removeDelayMs ?? DEFAULT_REMOVE_DELAY_MS, log);
  const runner = new JobRunner(archive.jobs, {
    concurrency: 1,
    ...(log ? { logger: log } : {}),
    ...options.runner,
  });
  runner.register(COMPRESS_JOB, (ctx) => runCompressJob(options, removals, ctx));

  const enqueue = async (sopInstanceUid: string): Promise<void> => {
    const payload: CompressPayload = { sopInstanceUid };
    await archive.jobs.enqueue({
      kind: COMPRESS_JOB,
      payload,
      priority: JobPriority.background,
      maxAttempts: 3,
    });
  };
  const onReceived = (e: EventOf<'object-received'>): void => {
    if (!worthAJob(policy, e)) return;
    enqueue(e.sopInstanceUid).catch((error: unknown) =>
      log?.warn(
        { err: error, sopInstanceUid: e.sopInstanceUid },
        'could not queue the compression of an object',
      ),
    );
  };
  let unsubscribe: (() => void) | undefined;
  return {
    runner,
    enqueue,
    start() {
      if (unsubscribe || !policyCompresses(policy)) return;
      unsubscribe = events?.on('object-received', onReceived);
      runner.start();
    },
    async stop() {
      unsubscribe?.();
      unsubscribe = undefined;
      await runner.stop();
      await removals.flush();
    },
  };
}

/** Allowance for the file meta the store adds to a data set (minBytes counts the file). */
const FILE_META_ALLOWANCE = 2048;

/** Whether an object just stored may be compressed, from what the event tells (the job decides). */
function worthAJob(policy: CompressionPolicy, e: EventOf<'object-received'>): boolean {
  if (e.outcome === 'duplicate') return false;
  if (e.transferSyntaxUid !== undefined && transferSyntax(e.transferSyntaxUid)?.encapsulated) return false;
  if (e.modality !== undefined && targetFor(policy, e.modality) === 'none') return false;
  return e.bytes + FILE_META_ALLOWANCE >= (policy.minBytes ?? 0);
}

async function runCompressJob(
  options: CompressionServiceOptions,
  removals: DelayedRemovals,
  ctx: JobContext,
): Promise<CompressJobResult> {
  const payload = ctx.job.payload as Partial<CompressPayload> | null;
  const uid = payload?.sopInstanceUid;
  if (typeof uid !== 'string') throw new Error('a compress job without a SOP Instance UID');
  let outcome: CompressOutcome;
  try {
    outcome = await compressInstance(options.archive, uid, {
      policy: options.policy,
      transcode: options.transcode,
      ...(options.decode ? { decode: options.decode } : {}),
      removeOriginal: async (path) => removals.schedule(path),
      signal: ctx.signal,
    });
  } catch (e) {
    if (ctx.signal.aborted) throw e;
    // Not a verdict on the object (the index or the disk failed): worth another attempt.
    throw new RetryableJobError(`compressing ${uid} failed: ${e instanceof Error ? e.message : String(e)}`, {
      cause: e,
    });
  }
  const result = jobResult(outcome);
  options.events?.emit({
    type: 'object-compressed',
    outcome: outcome.status === 'eligible' ? 'skipped' : outcome.status,
    sopInstanceUid: uid,
    fromTransferSyntaxUid: outcome.before?.transferSyntaxUid ?? '',
    ...(result.toTransferSyntaxUid !== undefined ? { toTransferSyntaxUid: result.toTransferSyntaxUid } : {}),
    bytesBefore: outcome.before?.size ?? 0,
    ...(result.bytesAfter !== undefined ? { bytesAfter: result.bytesAfter } : {}),
    ...(result.reason !== undefined ? { reason: result.reason } : {}),
  });
  const fields = { job: ctx.job.id, ...result };
  switch (outcome.status) {
    case 'compressed':
      ctx.log.info(fields, 'object compressed');
      return result;
    case 'failed':
      ctx.log.warn(fields, 'object not compressed: it stays as it was');
      // Recorded as the job's result, and the job fails with the reason.
      ctx.report(result, { save: true });
      throw new Error(outcome.reason);
    default:
      ctx.log.debug(fields, 'object left as it is');
      return result;
  }
}

/** The job result of an outcome: what was done and the disk saved. */
export function jobResult(outcome: CompressOutcome): CompressJobResult {
  const before = outcome.before;
  const base = {
    status: outcome.status,
    sopInstanceUid: outcome.sopInstanceUid,
    ...(before ? { fromTransferSyntaxUid: before.transferSyntaxUid, bytesBefore: before.size } : {}),
  };
  switch (outcome.status) {
    case 'compressed':
      return {
        ...base,
        toTransferSyntaxUid: outcome.after.transferSyntaxUid,
        bytesAfter: outcome.after.size,
        bytesSaved: outcome.before.size - outcome.after.size,
      };
    case 'eligible':
      return { ...base, toTransferSyntaxUid: outcome.target, bytesSaved: 0 };
    default:
      return { ...base, reason: outcome.reason, bytesSaved: 0 };
  }
}

/**
 * Originals waiting for their removal (see the module comment). Timers only: a crash forgets
 * them, and the start-up reconcile removes those files instead (their UID is indexed under the copy).
 */
export class DelayedRemovals {
  private readonly waiting = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly archive: CompressionArchive,
    private readonly delayMs: number,
    private readonly log?: JobLogger,
  ) {}

  /** Removes the file after the delay (at once with a delay of 0). */
  async schedule(path: string): Promise<void> {
    if (this.delayMs <= 0) {
      await this.remove(path);
      return;
    }
    const timer = setTimeout(() => {
      this.waiting.delete(path);
      void this.remove(path);
    }, this.delayMs);
    timer.unref();
    this.waiting.set(path, timer);
  }

  /** Files still waiting. */
  get pending(): number {
    return this.waiting.size;
  }

  /** Removes every waiting file now (at shutdown: this process's retrieves are over). */
  async flush(): Promise<void> {
    const paths = [...this.waiting.keys()];
    for (const t of this.waiting.values()) clearTimeout(t);
    this.waiting.clear();
    for (const p of paths) await this.remove(p);
  }

  private async remove(path: string): Promise<void> {
    try {
      // Only a file no row names (an object re-sent meanwhile could not take this path: paths are random ids).
      await this.archive.store.remove(path);
    } catch (e) {
      // Left behind, it is removed by the next reconcile (its UID is indexed under the copy).
      this.log?.warn(
        { err: e instanceof Error ? e.message : String(e), path },
        'could not remove a compressed original',
      );
    }
  }
}

/** The `storage.compression*` settings of the server config. */
export interface CompressionSettings {
  readonly compression: CompressionTarget;
  readonly compressionByModality: Readonly<Record<string, CompressionTarget>>;
  readonly compressionMinBytes: number;
}

export function policyOf(settings: CompressionSettings): CompressionPolicy {
  return {
    target: settings.compression,
    byModality: settings.compressionByModality,
    minBytes: settings.compressionMinBytes,
  };
}

/**
 * The server's compression at rest, started: undefined when the settings compress nothing.
 * Frames are encoded and checked on the shared transcoding pool at background priority.
 */
export function startCompression(context: {
  readonly settings: CompressionSettings;
  readonly archive: CompressionArchive & { readonly jobs: JobStore };
  readonly events: EventBus;
  readonly logger: JobLogger;
}): CompressionService | undefined {
  const policy = policyOf(context.settings);
  if (!policyCompresses(policy)) return undefined;
  const service = compressionService({
    archive: context.archive,
    policy,
    transcode: storeTranscoder(),
    decode: pooledDecoder(),
    events: context.events,
    logger: context.logger,
  });
  service.start();
  return service;
}
