/**
 * C-MOVE SCP of the Query/Retrieve service (PS3.4 C.4.2). The destination must be a known peer
 * (the config's `peers`, `--peer AET=HOST:PORT`); its C-STORE sub-operations go over a new
 * association to it, proposing each object's stored transfer syntax (and Explicit/Implicit VR LE
 * for uncompressed ones), with the Move Originator AE Title and Message ID set.
 *
 * The sub-operations run as a job of the queue (kind 'move', interactive priority, the
 * destination's concurrency limit; ARCHITECTURE.md decision 6): the C-MOVE handler enqueues it and
 * follows it, turning its progress into pending responses and its end into the final one. The job
 * keeps its counts and the position of the last object it handled, so a run taken again after a
 * crash resumes there. A destination that refuses the association or is down is tried again with
 * backoff while attempts are left (the C-MOVE keeps waiting); then every remaining sub-operation
 * fails. C-CANCEL cancels the job: it stops after the object being sent. When the requestor's
 * association ends otherwise, the job goes on (PS3.4 C.4.2.3.1 note 2 leaves it undefined):
 * the destination still gets the objects.
 *
 * Statuses (PS3.4 C.4.2.1.5), besides those of C-GET (get-scp.ts):
 *   0xA801 Move destination unknown: not a known peer.
 *   0xA702 every sub-operation failed (the destination stayed down, refused every object...), with
 *          the counts, the Failed SOP Instance UID List and the reason as Error Comment.
 */

import { isDeepStrictEqual } from 'node:util';
import type { Archive } from '../../archive/archive.js';
import {
  type RetrieveInstance,
  type RetrieveKeys,
  type RetrieveSource,
  retrieveSource,
} from '../../archive/index/retrieve.js';
import {
  CANCELLED,
  type Job,
  JobPriority,
  type JobStore,
  RetryableJobError,
} from '../../archive/jobs/job.js';
import { jobStoreFor } from '../../archive/jobs/open.js';
import { type JobContext, JobRunner, type JobRunnerOptions } from '../../archive/jobs/runner.js';
import type { ObjectStore } from '../../archive/store.js';
import type { EventBus } from '../../core/events.js';
import { err, ok, type Result } from '../../core/result.js';
import type { DataSet } from '../../dicom/dataset.js';
import { UNCOMPRESSED_TRANSFER_SYNTAXES } from '../../dicom/uid.js';
import { ApplicationEntity } from '../../network/ae.js';
import type { ProposedPresentationContext } from '../../network/association.js';
import type { DimseAssociation } from '../../network/dimse.js';
import { Priority } from '../../network/dimse-command.js';
import { Status } from '../../network/dimse-status.js';
import type { NetworkError } from '../../network/errors.js';
import type { NetworkLogger } from '../../network/logger.js';
import { describeReject } from '../../network/negotiation.js';
import { RejectResult } from '../../network/pdu.js';
import type { DimseResponse, DimseService, RequestContext } from '../../network/service.js';
import { failure } from '../../network/service-error.js';
import type { TlsClientOptions } from '../../network/transport.js';
import { TLS_POLICY } from '../../security/tls-policy.js';
import type { TranscodePolicy } from '../storage/transcoding.js';
import {
  cancelledByPeer,
  prepared,
  relationalRetrievalAgreed,
  retrieveKeys,
  retrieveModel,
  retrieveNegotiation,
  type SubOperationCounts,
  SubOperations,
  sendInstance,
  storageContextGroups,
  syntaxKey,
} from './get-scp.js';
import { INFORMATION_MODELS, type InformationModel } from './models.js';

/** The job kind of C-MOVE sub-operations. */
export const MOVE_JOB = 'move';

/** A C-MOVE destination. */
export interface MovePeer {
  readonly aet: string;
  readonly host: string;
  readonly port: number;
  /** Connect with TLS (MoveServiceOptions.tls). */
  readonly tls?: boolean;
}

export interface MoveServiceOptions {
  /** Where the objects come from: its index names them, its store holds them. */
  readonly archive: Pick<Archive, 'index' | 'store'>;
  /** The known destinations (the config's peers and --peer); a function is asked at each C-MOVE. */
  readonly peers: readonly MovePeer[] | (() => readonly MovePeer[]);
  /**
   * The runner of the job queue: 'move' jobs are registered on it, and whoever made it starts and
   * stops it. Without it the service runs a runner of its own on the archive's job store, started
   * and stopped with the service.
   */
  readonly jobs?: JobRunner;
  /** Settings of the runner made when `jobs` is not given. */
  readonly runner?: JobRunnerOptions;
  /** The information models served (default all three). */
  readonly models?: readonly InformationModel[];
  /** When a destination does not accept an object's compressed syntax: may it be sent lossy (config `transcode.lossy`)? */
  readonly transcode?: TranscodePolicy;
  /** Agree to relational retrieval when an SCU asks (default true). */
  readonly relationalRetrieval?: boolean;
  /** Runs of a move whose destination refuses or is down, before its objects count as failed (default 3). */
  readonly attempts?: number;
  /** Our AE title toward destinations (default: the AE title the C-MOVE was addressed to). */
  readonly aeTitle?: string;
  /** Connecting and negotiating with a destination (default 30 s). */
  readonly connectTimeoutMs?: number;
  /** Waiting for each C-STORE response (default 120 s). */
  readonly responseTimeoutMs?: number;
  readonly maxPduLength?: number;
  /** TLS settings for peers marked `tls`. */
  readonly tls?: TlsClientOptions;
  /** How often a C-MOVE whose job runs in another process reads the job's row (default 500 ms). */
  readonly pollMs?: number;
  readonly logger?: NetworkLogger;
  /**
   * The event stream: one 'object-sent' per sub-operation the destination answered. The job runs
   * apart from the C-MOVE request (it may outlive it, or run after a restart), so the bus is the
   * service's rather than the request's.
   */
  readonly events?: EventBus;
}

/** What a move job is given. */
export interface MovePayload {
  readonly destination: {
    readonly aet: string;
    readonly host: string;
    readonly port: number;
    readonly tls: boolean;
  };
  /** Our AE title toward the destination. */
  readonly callingAeTitle: string;
  /** The C-MOVE it serves (PS3.7 9.3.1.1: Move Originator AE Title and Message ID). */
  readonly originator: { readonly aeTitle: string; readonly messageId: number };
  readonly priority: number;
  readonly keys: RetrieveKeys;
  /** Counted when the C-MOVE arrived: the instances up to `lastPosition` are the ones moved. */
  readonly total: number;
  readonly lastPosition: number;
  readonly syntaxes: readonly { readonly sopClassUid: string; readonly transferSyntaxUid: string }[];
}

/** A move job's result: the counts, and where it is (context group, position of the last object handled). */
export interface MoveProgress extends SubOperationCounts {
  readonly group: number;
  readonly after: number;
}

function isMoveProgress(value: unknown): value is MoveProgress {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    ['remaining', 'completed', 'failed', 'warning', 'group', 'after'].every(
      (k) => typeof v[k] === 'number',
    ) && Array.isArray(v['failedUids'])
  );
}

function isMovePayload(value: unknown): value is MovePayload {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v['destination'] === 'object' &&
    typeof v['callingAeTitle'] === 'string' &&
    typeof v['keys'] === 'object' &&
    typeof v['total'] === 'number' &&
    Array.isArray(v['syntaxes'])
  );
}

function peersOf(options: MoveServiceOptions): readonly MovePeer[] {
  return typeof options.peers === 'function' ? options.peers() : options.peers;
}

/** The C-MOVE SCP for the Query/Retrieve information models; registers the 'move' job kind on `jobs`. */
export function moveService(options: MoveServiceOptions): DimseService {
  const models = options.models ?? INFORMATION_MODELS;
  const classes = new Set(models.map((m) => m.sopClasses.move));
  const source = retrieveSource(options.archive.index);
  const own = options.jobs === undefined;
  const jobs =
    options.jobs ??
    new JobRunner(jobStoreFor(options.archive.index), {
      ...(options.logger ? { logger: options.logger } : {}),
      ...options.runner,
    });
  jobs.register(MOVE_JOB, (ctx) => runMoveJob(options, source, ctx));
  return {
    name: 'query-retrieve-move',
    sopClasses: models.map((m) => ({ uid: m.sopClasses.move })),
    transferSyntaxes: UNCOMPRESSED_TRANSFER_SYNTAXES,
    handlers: {
      'C-MOVE': (ctx, identifier) => answerMove(options, jobs.store, source, ctx, identifier),
    },
    extendedNegotiation: retrieveNegotiation(classes, options.relationalRetrieval ?? true),
    ...(own
      ? {
          start: async () => {
            jobs.start();
          },
          // Moves still running go back to the queue: the next start resumes them.
          stop: () => jobs.stop(),
        }
      : {}),
    health: async () => ({ ok: true }),
  };
}

// --- the C-MOVE request --------------------------------------------------------------------------

async function* answerMove(
  options: MoveServiceOptions,
  store: JobStore,
  source: RetrieveSource,
  ctx: RequestContext,
  identifier: DataSet,
): AsyncGenerator<DimseResponse, void, undefined> {
  const model = retrieveModel(ctx, 'move');
  if (model === undefined) {
    yield failure(Status.SopClassNotSupported, 'not a C-MOVE SOP Class');
    return;
  }
  const destinationAet = ctx.command.moveDestination?.trim() ?? '';
  const peer = peersOf(options).find((p) => p.aet.trim() === destinationAet);
  if (peer === undefined) {
    ctx.log.info({ peer: ctx.peerAeTitle, destination: destinationAet }, 'C-MOVE to an unknown destination');
    yield failure(
      Status.MoveDestinationUnknown,
      destinationAet === '' ? 'no Move Destination' : `unknown move destination ${destinationAet}`,
    );
    return;
  }
  const relational = (options.relationalRetrieval ?? true) && relationalRetrievalAgreed(ctx);
  const checked = retrieveKeys(model, identifier, relational);
  if (!checked.ok) {
    ctx.log.info({ peer: ctx.peerAeTitle, comment: checked.response.errorComment }, 'C-MOVE refused');
    yield checked.response;
    return;
  }
  const summary = await source.summarize(checked.keys);
  if (summary.instances === 0) {
    yield SubOperations.of(0).final();
    return;
  }
  const payload: MovePayload = {
    destination: { aet: peer.aet.trim(), host: peer.host, port: peer.port, tls: peer.tls === true },
    callingAeTitle: options.aeTitle ?? ctx.localAeTitle,
    originator: { aeTitle: ctx.peerAeTitle, messageId: ctx.command.messageId ?? 0 },
    priority: ctx.command.priority ?? Priority.Medium,
    keys: checked.keys,
    total: summary.instances,
    lastPosition: summary.lastPosition,
    syntaxes: summary.syntaxes,
  };
  const job = await store.enqueue({
    kind: MOVE_JOB,
    payload,
    priority: JobPriority.interactive,
    destination: payload.destination.aet,
    maxAttempts: Math.max(1, options.attempts ?? 3),
  });
  ctx.log.info(
    {
      peer: ctx.peerAeTitle,
      destination: payload.destination.aet,
      level: checked.keys.level,
      instances: summary.instances,
      bytes: summary.bytes,
      job: job.id,
    },
    'C-MOVE queued',
  );
  yield* follow(store, job.id, summary.instances, ctx, options.pollMs ?? 500);
}

/**
 * Pending responses from the job's progress, then the final response from its end. Progress
 * comes as events from a runner of this process; the job's row is read as well, for a runner in
 * another process (PostgreSQL).
 */
async function* follow(
  store: JobStore,
  jobId: number,
  total: number,
  ctx: RequestContext,
  pollMs: number,
): AsyncGenerator<DimseResponse, void, undefined> {
  let latest: SubOperationCounts | undefined;
  let sent: SubOperationCounts | undefined;
  let finished: Job | undefined;
  let wake: (() => void) | undefined;
  const poke = (): void => {
    wake?.();
  };
  const done = (c: SubOperationCounts) => c.completed + c.failed + c.warning;
  const offer = (result: unknown): void => {
    // Rows read by polling may be older than the events heard: keep the most advanced.
    if (isMoveProgress(result) && (latest === undefined || done(result) >= done(latest))) {
      latest = result;
      poke();
    }
  };
  const onProgress = (id: number, result: unknown): void => {
    if (id === jobId) offer(result);
  };
  const onFinished = (job: Job): void => {
    if (job.id !== jobId) return;
    finished = job;
    poke();
  };
  store.on('progress', onProgress);
  store.on('finished', onFinished);
  ctx.signal.addEventListener('abort', poke);
  const poll = setInterval(() => {
    store.get(jobId).then(
      (job) => {
        if (job === undefined) return;
        if (job.state === 'done' || job.state === 'failed') onFinished(job);
        else offer(job.result);
      },
      (e: unknown) => ctx.log.warn({ job: jobId, err: (e as Error)?.message }, 'reading a move job failed'),
    );
  }, pollMs);
  let cancelRequested = false;
  try {
    for (;;) {
      if (finished !== undefined) {
        yield finalResponse(finished, total);
        return;
      }
      if (ctx.signal.aborted && !cancelRequested) {
        if (!cancelledByPeer(ctx.signal)) {
          // The requestor went away: the job goes on without it.
          ctx.log.info({ job: jobId }, 'C-MOVE association ended: the move goes on as a job');
          return;
        }
        cancelRequested = true;
        await store.requestCancel(jobId);
        continue;
      }
      if (
        !ctx.signal.aborted &&
        latest !== undefined &&
        !isDeepStrictEqual(latest, sent) &&
        latest.remaining > 0
      ) {
        sent = latest;
        yield new SubOperations(latest).pending();
        continue;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = undefined;
    }
  } finally {
    clearInterval(poll);
    store.off('progress', onProgress);
    store.off('finished', onFinished);
    ctx.signal.removeEventListener('abort', poke);
    // Stopped by the dispatcher after a C-CANCEL that came between two responses: cancel the job.
    if (finished === undefined && cancelledByPeer(ctx.signal) && !cancelRequested)
      void store.requestCancel(jobId).catch(() => undefined);
  }
}

/** The final C-MOVE response of an ended job. */
function finalResponse(job: Job, total: number): DimseResponse {
  const subs = new SubOperations(isMoveProgress(job.result) ? job.result : SubOperations.of(total).toJSON());
  if (job.state === 'done') return subs.final();
  if (job.lastError === CANCELLED) return subs.cancelled();
  // The job failed as a whole (a bug, or every run's runner died): what was not done failed.
  subs.failed += subs.remaining;
  subs.remaining = 0;
  subs.lastFailure = job.lastError ?? 'the move failed';
  return subs.final();
}

// --- the job -------------------------------------------------------------------------------------

/** Failures of a destination association that are worth trying again later. */
function isTransient(e: NetworkError): boolean {
  if (e.code === 'ERR_ASSOCIATION_REJECTED') return e.reject?.result === RejectResult.Transient;
  return e.code === 'ERR_CONNECT' || e.code === 'ERR_TIMEOUT' || e.code === 'ERR_ASSOCIATION_ABORTED';
}

function describeFailure(e: NetworkError): string {
  if (e.code === 'ERR_ASSOCIATION_REJECTED' && e.reject !== undefined)
    return `association rejected (${describeReject(e.reject)})`;
  const cause = (e.cause as NodeJS.ErrnoException | undefined)?.code;
  if (cause === 'ECONNREFUSED') return 'connection refused';
  return e.message;
}

async function connect(
  options: MoveServiceOptions,
  payload: MovePayload,
  contexts: readonly ProposedPresentationContext[],
): Promise<Result<DimseAssociation, NetworkError>> {
  const connectMs = options.connectTimeoutMs ?? 30_000;
  const ae = new ApplicationEntity({
    aeTitle: payload.callingAeTitle,
    ...(options.maxPduLength !== undefined ? { maxPduLength: options.maxPduLength } : {}),
    timeouts: { connectMs, acseMs: connectMs },
    responseTimeoutMs: options.responseTimeoutMs ?? 120_000,
    ...(options.logger ? { logger: options.logger } : {}),
  });
  const d = payload.destination;
  const opened = await ae.connect({
    host: d.host,
    port: d.port,
    calledAeTitle: d.aet,
    contexts,
    ...(d.tls ? { tls: { parameters: TLS_POLICY, ...options.tls } } : {}),
  });
  return opened.ok ? ok(opened.value) : err(opened.error);
}

async function release(assoc: DimseAssociation): Promise<void> {
  if (assoc.canSend) await assoc.release().catch(() => assoc.abort());
  else await assoc.run().catch(() => undefined);
}

async function* only(
  instances: AsyncIterable<RetrieveInstance>,
  keep: (i: RetrieveInstance) => boolean,
): AsyncGenerator<RetrieveInstance, void, undefined> {
  for await (const i of instances) if (keep(i)) yield i;
}

/**
 * Runs a move job: the objects, in groups of presentation contexts that fit one association each
 * (one group unless a study mixes very many SOP classes and syntaxes), to the destination.
 */
async function runMoveJob(
  options: MoveServiceOptions,
  source: RetrieveSource,
  ctx: JobContext,
): Promise<MoveProgress> {
  const p = ctx.job.payload;
  if (!isMovePayload(p)) throw new Error('not a move job payload');
  const store: ObjectStore = options.archive.store;
  const start = isMoveProgress(ctx.job.result) ? ctx.job.result : undefined;
  const subs = new SubOperations(start ?? SubOperations.of(p.total).toJSON());
  let group = start?.group ?? 0;
  let after = start?.after ?? 0;
  const progress = (): MoveProgress => ({ ...subs.toJSON(), group, after });
  const lastAttempt = ctx.job.attempts >= ctx.job.maxAttempts;
  const where = `${p.destination.aet}@${p.destination.host}:${p.destination.port}`;
  const groups = storageContextGroups(p.syntaxes);
  /** Set once the destination is given up: every object left fails with this reason. */
  let givenUp: string | undefined;

  for (; group < groups.length; group++, after = 0) {
    const g = groups[group];
    if (g === undefined) break;
    const all = source.instances(p.keys, { after, upTo: p.lastPosition });
    const items = prepared(store, groups.length === 1 ? all : only(all, (i) => g.members.has(syntaxKey(i))));
    let assoc: DimseAssociation | undefined;
    try {
      for await (const item of items) {
        if (ctx.signal.aborted) break;
        const uid = item.instance.sopInstanceUid;
        if (givenUp === undefined && (assoc === undefined || !assoc.canSend)) {
          const opened = await connect(options, p, g.contexts);
          if (opened.ok) assoc = opened.value;
          else {
            const why = `${where}: ${describeFailure(opened.error)}`;
            if (isTransient(opened.error) && !lastAttempt) {
              ctx.report(progress(), { save: true });
              throw new RetryableJobError(why, { cause: opened.error });
            }
            ctx.log.warn({ job: ctx.job.id, err: why }, 'move destination given up');
            givenUp = why;
          }
        }
        if (givenUp !== undefined || assoc === undefined) {
          subs.record(uid, 'failed', givenUp);
        } else {
          const sent = await sendInstance(assoc, item, {
            moveOriginator: p.originator,
            priority: p.priority,
            ...(options.events !== undefined ? { events: options.events } : {}),
            via: 'C-MOVE',
            ...(options.transcode !== undefined ? { transcode: options.transcode } : {}),
          });
          if (sent.associationEnded === 'peer' && !lastAttempt && !ctx.signal.aborted) {
            // In doubt: sent again by the next run, which starts after the last object handled.
            ctx.report(progress(), { save: true });
            throw new RetryableJobError(`${where}: ${sent.reason ?? 'association ended'}`);
          }
          subs.record(uid, sent.outcome, sent.reason);
        }
        after = item.instance.position;
        ctx.report(progress());
      }
    } finally {
      await items.return();
      if (assoc !== undefined) await release(assoc);
    }
    if (ctx.signal.aborted) break;
  }
  return progress();
}
