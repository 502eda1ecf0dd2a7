/**
 * C-GET SCP of the Query/Retrieve service (PS3.4 C.4.3), and what the C-MOVE SCP shares with it:
 * the Identifier's unique keys, the sub-operation counts and the final status, and sending one
 * archived object with C-STORE.
 *
 * C-GET sends its C-STORE sub-operations on the requestor's own association: the requestor takes
 * the Storage SCP role by SCP/SCU role selection (PS3.7 D.3.3.4) on the storage SOP classes it
 * proposes, and the acceptor must allow that role (requestorRoles { scu: true, scp: true } on its
 * storage service). An object whose SOP class (or transfer syntax) has no such context is a failed
 * sub-operation, counted and named in the Failed SOP Instance UID List; the others still go.
 * Each object streams from its file to the socket (ARCHITECTURE.md decision 2).
 *
 * Statuses (PS3.4 C.4.3.1.3, C.4.2.1.5 and C.4.3.3), each failure with an Error Comment:
 *   0xFF00 Pending after each sub-operation: remaining, completed, failed and warning counts.
 *   0x0000 every sub-operation succeeded (or nothing matched): completed, failed, warning counts.
 *   0xB000 some failed or had a warning, some succeeded: counts and the Failed SOP Instance UID List.
 *   0xA702 every sub-operation failed: counts and the list.
 *   0xFE00 after C-CANCEL: counts, the remaining ones not started, and the list of failures so far.
 *   0xA900 Identifier does not match SOP Class: no or unknown Query/Retrieve Level, the unique key
 *          of the level missing, or (hierarchical retrieve) a level above not named by one value.
 */
import type { Archive } from '../../archive/archive.js';
import {
  type RetrieveInstance,
  type RetrieveKeys,
  type RetrieveSource,
  retrieveSource,
} from '../../archive/index/retrieve.js';
import type { ObjectStore } from '../../archive/store.js';
import { err, type Result } from '../../core/result.js';
import { DataSet } from '../../dicom/dataset.js';
import { keywordOf, TAG } from '../../dicom/dictionary.js';
import { valuesOf } from '../../dicom/matching.js';
import { formatTag, type Tag } from '../../dicom/tag.js';
import { UNCOMPRESSED_TRANSFER_SYNTAXES } from '../../dicom/uid.js';
import type { ProposedPresentationContext } from '../../network/association.js';
import { DimseAssociation } from '../../network/dimse.js';
import { describeStatus, Status, statusCategory } from '../../network/dimse-status.js';
import type { DimseResponse, DimseService, RequestContext } from '../../network/service.js';
import { failure } from '../../network/service-error.js';
import {
  type FileInfo,
  FileInfoError,
  type OpenFile,
  openFile,
  planAssociations,
  type StoreOptions,
  storeFile,
} from '../storage/scu.js';
import {
  INFORMATION_MODELS,
  type InformationModel,
  modelOfSopClass,
  parseLevel,
  parseRetrieveExtendedNegotiation,
  type QueryRetrieveOperation,
  UNIQUE_KEY,
} from './models.js';

// --- the Identifier ------------------------------------------------------------------------------

function attributeName(tag: Tag): string {
  return keywordOf(tag) || formatTag(tag);
}

/**
 * The unique keys of a C-MOVE or C-GET Identifier (PS3.4 C.4.2.2.1, C.4.3.2.1): the key of the
 * retrieve level (one Patient ID; one UID or a list at STUDY, SERIES, IMAGE) and, above it, one
 * value per level. With relational retrieval (C.4.2.3.2) the levels above may be left out. Keys
 * of levels below the retrieve level are ignored. A failure is the response to answer.
 */
export function retrieveKeys(
  model: InformationModel,
  identifier: DataSet,
  relational: boolean,
):
  | { readonly ok: true; readonly keys: RetrieveKeys }
  | { readonly ok: false; readonly response: DimseResponse } {
  const bad = (text: string, tag: Tag) => ({
    ok: false as const,
    response: failure(Status.IdentifierDoesNotMatchSopClass, text, { offendingElements: [tag] }),
  });
  const levelText = valuesOf(identifier, TAG.QueryRetrieveLevel)[0];
  if (levelText === undefined || levelText === '')
    return bad('Query/Retrieve Level (0008,0052) is missing', TAG.QueryRetrieveLevel);
  const level = parseLevel(levelText);
  if (level === undefined || !model.levels.includes(level))
    return bad(
      `no level ${JSON.stringify(levelText)} in ${model.title}: ${model.levels.join(', ')}`,
      TAG.QueryRetrieveLevel,
    );
  const keys: {
    level: typeof level;
    patientId?: string;
    studyInstanceUids?: string[];
    seriesInstanceUids?: string[];
    sopInstanceUids?: string[];
  } = { level };
  for (const at of model.levels.slice(0, model.levels.indexOf(level) + 1)) {
    const tag = UNIQUE_KEY[at];
    const values = valuesOf(identifier, tag).filter((v) => v !== '');
    const isRetrieveLevel = at === level;
    if (values.length === 0) {
      if (isRetrieveLevel) return bad(`${level} retrieve needs ${attributeName(tag)} ${formatTag(tag)}`, tag);
      if (!relational) return bad(`${level} retrieve needs one ${attributeName(tag)} ${formatTag(tag)}`, tag);
      continue;
    }
    // One value above the level (and for a patient); a list of UIDs at the level (C.4.2.2.1).
    if (values.length > 1 && (!isRetrieveLevel || at === 'PATIENT'))
      return bad(`${level} retrieve needs one ${attributeName(tag)}, not a list`, tag);
    if (at === 'PATIENT') keys.patientId = values[0];
    else if (at === 'STUDY') keys.studyInstanceUids = values;
    else if (at === 'SERIES') keys.seriesInstanceUids = values;
    else keys.sopInstanceUids = values;
  }
  return { ok: true, keys };
}

/** The model of a retrieve SOP class, checked against the operation (the dispatcher routes by class). */
export function retrieveModel(
  ctx: RequestContext,
  operation: QueryRetrieveOperation,
): InformationModel | undefined {
  const found = modelOfSopClass(ctx.abstractSyntax);
  return found?.operation === operation ? found.model : undefined;
}

/** Whether relational retrieval was agreed for this association and SOP class (PS3.4 C.5.2.1). */
export function relationalRetrievalAgreed(ctx: RequestContext): boolean {
  const sender = ctx.association;
  if (!(sender instanceof DimseAssociation)) return false;
  // The A-ASSOCIATE-AC holds what was agreed.
  const items = sender.association.ac.userInformation.sopClassExtendedNegotiations ?? [];
  const item = items.find((e) => e.sopClassUid === ctx.abstractSyntax);
  return parseRetrieveExtendedNegotiation(item?.applicationInformation).relationalRetrieval;
}

/** Our answer to a C-MOVE/C-GET 0x56 sub-item: relational retrieval when asked and allowed. */
export function retrieveNegotiation(
  classes: ReadonlySet<string>,
  allowRelational: boolean,
): (sopClassUid: string, requested: Uint8Array) => Uint8Array | undefined {
  return (sopClassUid, requested) => {
    if (!classes.has(sopClassUid) || requested.length === 0) return undefined;
    // PS3.4 C.5.2.1: the reply has the request's length (at most 2 bytes); options we refuse are 0.
    const reply = new Uint8Array(Math.min(requested.length, 2));
    if (allowRelational && parseRetrieveExtendedNegotiation(requested).relationalRetrieval) reply[0] = 1;
    return reply;
  };
}

// --- counts and statuses -------------------------------------------------------------------------

export type SubOperationOutcome = 'completed' | 'warning' | 'failed';

/** The counts of a retrieve as JSON (a C-MOVE job keeps them in its result). */
export interface SubOperationCounts {
  readonly remaining: number;
  readonly completed: number;
  readonly failed: number;
  readonly warning: number;
  /** SOP Instance UIDs of failed sub-operations (at most what fits one UI value). */
  readonly failedUids: readonly string[];
  /** Why the last failed sub-operation failed, for the Error Comment. */
  readonly lastFailure?: string;
}

/** Command set numbers are US: counts over 65535 are sent as 65535. */
const US_MAX = 0xffff;
/** A UI value holds at most 65534 bytes in explicit VR (2-byte length): the list is cut there. */
const MAX_FAILED_LIST_BYTES = 65534;

export class SubOperations {
  remaining: number;
  completed: number;
  failed: number;
  warning: number;
  readonly failedUids: string[];
  lastFailure: string | undefined;
  private failedListBytes: number;

  constructor(counts: SubOperationCounts) {
    this.remaining = counts.remaining;
    this.completed = counts.completed;
    this.failed = counts.failed;
    this.warning = counts.warning;
    this.failedUids = [...counts.failedUids];
    this.lastFailure = counts.lastFailure;
    this.failedListBytes = this.failedUids.reduce((n, u) => n + u.length + 1, 0);
  }

  static of(total: number): SubOperations {
    return new SubOperations({ remaining: total, completed: 0, failed: 0, warning: 0, failedUids: [] });
  }

  record(sopInstanceUid: string, outcome: SubOperationOutcome, reason?: string): void {
    this.remaining = Math.max(0, this.remaining - 1);
    if (outcome === 'completed') this.completed++;
    else if (outcome === 'warning') this.warning++;
    else {
      this.failed++;
      if (reason !== undefined) this.lastFailure = reason;
      if (this.failedListBytes + sopInstanceUid.length + 1 <= MAX_FAILED_LIST_BYTES) {
        this.failedUids.push(sopInstanceUid);
        this.failedListBytes += sopInstanceUid.length + 1;
      }
    }
  }

  toJSON(): SubOperationCounts {
    return {
      remaining: this.remaining,
      completed: this.completed,
      failed: this.failed,
      warning: this.warning,
      failedUids: this.failedUids,
      ...(this.lastFailure !== undefined ? { lastFailure: this.lastFailure } : {}),
    };
  }

  private counts(withRemaining: boolean) {
    return {
      ...(withRemaining ? { remainingSubOperations: Math.min(this.remaining, US_MAX) } : {}),
      completedSubOperations: Math.min(this.completed, US_MAX),
      failedSubOperations: Math.min(this.failed, US_MAX),
      warningSubOperations: Math.min(this.warning, US_MAX),
    };
  }

  /** The Identifier of a final response with failures: Failed SOP Instance UID List (PS3.4 C.4.2.1.4.2). */
  private failedList(): { dataSet?: DataSet } {
    if (this.failedUids.length === 0) return {};
    const ds = new DataSet();
    ds.setString(TAG.FailedSOPInstanceUIDList, this.failedUids);
    return { dataSet: ds };
  }

  pending(): DimseResponse {
    return { status: Status.Pending, ...this.counts(true) };
  }

  /**
   * The final response once nothing remains (PS3.4 C.4.2.2.1): Success when every sub-operation
   * succeeded, Warning (B000) when some failed or had a warning, Failure (A702) when all failed.
   */
  final(): DimseResponse {
    if (this.failed === 0 && this.warning === 0) return { status: Status.Success, ...this.counts(false) };
    if (this.completed === 0 && this.warning === 0)
      return {
        ...failure(Status.OutOfResourcesSubOperations, this.lastFailure ?? 'every sub-operation failed'),
        ...this.counts(false),
        ...this.failedList(),
      };
    return {
      status: Status.SubOperationsCompleteWithFailures,
      ...this.counts(false),
      ...this.failedList(),
      ...(this.lastFailure !== undefined ? { errorComment: this.lastFailure } : {}),
    };
  }

  /** After C-CANCEL: the counts, the remaining ones (not started), and the failures so far. */
  cancelled(): DimseResponse {
    return { status: Status.Cancel, ...this.counts(true), ...this.failedList() };
  }
}

// --- sending archived objects --------------------------------------------------------------------

/**
 * An instance of a retrieve with its file opened and its header read (or why it could not be).
 * sendInstance() closes the file; one the consumer leaves out is closed by prepared() when it asks
 * for the next.
 */
export interface PreparedInstance {
  readonly instance: RetrieveInstance;
  readonly file: Result<OpenFile, FileInfoError>;
}

async function prepare(store: ObjectStore, instance: RetrieveInstance): Promise<PreparedInstance> {
  let path: string;
  try {
    path = store.absolutePath(instance.path);
  } catch (e) {
    return { instance, file: err(new FileInfoError('ERR_FILE', (e as Error).message)) };
  }
  return { instance, file: await openFile(path) };
}

async function closeUnsent(item: PreparedInstance | undefined): Promise<void> {
  if (item?.file.ok) await item.file.value.close().catch(() => undefined);
}

/**
 * The instances with their files opened one ahead: the next file's header is read while the
 * current one is sent, and the send reads on from that open (one open per file). Stopping the
 * iteration stops the index read and closes what was opened ahead.
 */
export async function* prepared(
  store: ObjectStore,
  instances: AsyncIterable<RetrieveInstance>,
): AsyncGenerator<PreparedInstance, void, undefined> {
  const it = instances[Symbol.asyncIterator]();
  const load = async (): Promise<PreparedInstance | undefined> => {
    const n = await it.next();
    return n.done ? undefined : prepare(store, n.value);
  };
  let next = load();
  let current: PreparedInstance | undefined;
  try {
    for (;;) {
      current = await next;
      if (current === undefined) return;
      next = load();
      // A read-ahead that fails after the consumer stopped must not become an unhandled rejection.
      next.catch(() => undefined);
      yield current;
      // Sent (and closed) or left out by the consumer: closed either way before the next.
      await closeUnsent(current);
      current = undefined;
    }
  } finally {
    // Stopped at a yield: the file handed out may not have been sent (sendInstance closes it when it was).
    await closeUnsent(current);
    await closeUnsent(await next.catch(() => undefined));
    await it.return?.();
  }
}

/** How one C-STORE sub-operation went. */
export interface SentInstance {
  readonly outcome: SubOperationOutcome;
  readonly status?: number;
  /** Why it failed (or its warning), in words. */
  readonly reason?: string;
  /**
   * 'peer': the association ended (refused, aborted, timed out): the sub-operation is in doubt.
   * 'reopen': the file turned out malformed part-way and the association was aborted for it.
   */
  readonly associationEnded?: 'peer' | 'reopen';
}

/**
 * Sends one archived object with C-STORE on `assoc`, streamed from its file. The data set is sent
 * as stored without parsing it again (verify off): the Storage SCP parsed it whole before the
 * object was archived, and the file is never written after. A file whose size is no longer the
 * indexed one (changed or cut on disk) fails instead of being sent.
 */
export async function sendInstance(
  assoc: DimseAssociation,
  item: PreparedInstance,
  options: StoreOptions = {},
): Promise<SentInstance> {
  const { instance, file } = item;
  // The reason first: the Error Comment keeps 64 characters.
  if (!file.ok) return { outcome: 'failed', reason: `${file.error.message} (${instance.sopInstanceUid})` };
  if (file.value.size !== instance.size) {
    await closeUnsent(item);
    return {
      outcome: 'failed',
      reason: `file changed on disk: ${file.value.size} bytes, indexed ${instance.size} (${instance.sopInstanceUid})`,
    };
  }
  const study =
    instance.studyInstanceUid !== undefined ? { studyInstanceUid: instance.studyInstanceUid } : {};
  const r = await storeFile(assoc, file.value, { verify: false, ...study, ...options });
  if (!r.ok) {
    const ended = !assoc.canSend;
    return {
      outcome: 'failed',
      reason: r.error.message,
      ...(ended ? { associationEnded: r.error.code === 'ERR_ASSOCIATION' ? 'peer' : 'reopen' } : {}),
    };
  }
  const { status, errorComment: comment } = r.value;
  const category = statusCategory(status);
  const reason = `C-STORE ${describeStatus(status)}${comment ? `: ${comment}` : ''}`;
  if (category === 'success') return { outcome: 'completed', status };
  if (category === 'warning') return { outcome: 'warning', status, reason };
  return { outcome: 'failed', status, reason };
}

/**
 * The presentation contexts to propose for objects of these SOP classes and stored syntaxes, as
 * the Storage SCU plans them (each stored syntax alone, plus Explicit/Implicit VR LE for
 * uncompressed ones), in groups that fit an association (128 contexts).
 */
export function storageContextGroups(
  syntaxes: readonly { readonly sopClassUid: string; readonly transferSyntaxUid: string }[],
): { readonly contexts: ProposedPresentationContext[]; readonly members: ReadonlySet<string> }[] {
  const files: FileInfo[] = syntaxes.map((s) => ({
    path: '',
    sopClassUid: s.sopClassUid,
    sopInstanceUid: '',
    transferSyntaxUid: s.transferSyntaxUid,
    dataSetOffset: 0,
    size: 0,
    encodingMatchesSyntax: true,
  }));
  return planAssociations(files).map((plan) => ({
    contexts: plan.contexts,
    members: new Set(plan.files.map((f) => syntaxKey(f))),
  }));
}

export function syntaxKey(o: { readonly sopClassUid: string; readonly transferSyntaxUid: string }): string {
  return `${o.sopClassUid} ${o.transferSyntaxUid}`;
}

/** True when the signal was aborted by C-CANCEL (rather than by the end of the association). */
export function cancelledByPeer(signal: AbortSignal): boolean {
  const reason: unknown = signal.reason;
  return (
    signal.aborted &&
    typeof reason === 'object' &&
    reason !== null &&
    (reason as { code?: unknown }).code === 'ERR_CANCELLED'
  );
}

// --- the C-GET service ---------------------------------------------------------------------------

export interface GetServiceOptions {
  /** Where the objects come from: its index names them, its store holds them. */
  readonly archive: Pick<Archive, 'index' | 'store'>;
  /** The information models served (default all three). */
  readonly models?: readonly InformationModel[];
  /** Agree to relational retrieval when an SCU asks (default true). */
  readonly relationalRetrieval?: boolean;
}

/** The C-GET SCP for the Query/Retrieve information models. */
export function getService(options: GetServiceOptions): DimseService {
  const models = options.models ?? INFORMATION_MODELS;
  const classes = new Set(models.map((m) => m.sopClasses.get));
  const source = retrieveSource(options.archive.index);
  return {
    name: 'query-retrieve-get',
    sopClasses: models.map((m) => ({ uid: m.sopClasses.get })),
    transferSyntaxes: UNCOMPRESSED_TRANSFER_SYNTAXES,
    handlers: {
      'C-GET': (ctx, identifier) => answerGet(options, source, ctx, identifier),
    },
    extendedNegotiation: retrieveNegotiation(classes, options.relationalRetrieval ?? true),
    health: async () => ({ ok: true }),
  };
}

async function* answerGet(
  options: GetServiceOptions,
  source: RetrieveSource,
  ctx: RequestContext,
  identifier: DataSet,
): AsyncGenerator<DimseResponse, void, undefined> {
  const model = retrieveModel(ctx, 'get');
  if (model === undefined) {
    yield failure(Status.SopClassNotSupported, `${ctx.abstractSyntax} is not a C-GET SOP Class`);
    return;
  }
  const relational = (options.relationalRetrieval ?? true) && relationalRetrievalAgreed(ctx);
  const checked = retrieveKeys(model, identifier, relational);
  if (!checked.ok) {
    ctx.log.info({ peer: ctx.peerAeTitle, comment: checked.response.errorComment }, 'C-GET refused');
    yield checked.response;
    return;
  }
  const assoc = ctx.association;
  if (!(assoc instanceof DimseAssociation)) {
    yield failure(Status.OutOfResourcesSubOperations, 'no association to send sub-operations on');
    return;
  }
  const summary = await source.summarize(checked.keys);
  const subs = SubOperations.of(summary.instances);
  const started = performance.now();
  ctx.log.info(
    { peer: ctx.peerAeTitle, level: checked.keys.level, instances: summary.instances, bytes: summary.bytes },
    'C-GET started',
  );
  const items = prepared(
    options.archive.store,
    source.instances(checked.keys, { upTo: summary.lastPosition }),
  );
  try {
    for await (const item of items) {
      if (ctx.signal.aborted) break;
      const sent = await sendInstance(assoc, item, {
        ...(ctx.events !== undefined ? { events: ctx.events } : {}),
        via: 'C-GET',
      });
      if (sent.associationEnded !== undefined) {
        // The requestor's own association is over (it went away, or a malformed file made us
        // abort it): nobody is left to answer.
        ctx.log.warn(
          { peer: ctx.peerAeTitle, err: sent.reason },
          'C-GET association ended during a sub-operation',
        );
        return;
      }
      subs.record(item.instance.sopInstanceUid, sent.outcome, sent.reason);
      // After C-CANCEL no pending response: the next one is the Cancel with these counts (a
      // pending one now would make the dispatcher answer the cancel itself, without counts).
      if (ctx.signal.aborted) break;
      if (subs.remaining > 0) yield subs.pending();
    }
  } finally {
    await items.return();
  }
  const seconds = (performance.now() - started) / 1000;
  ctx.log.info(
    { peer: ctx.peerAeTitle, ...subs.toJSON(), failedUids: undefined, seconds },
    ctx.signal.aborted ? 'C-GET cancelled' : 'C-GET done',
  );
  if (ctx.signal.aborted) {
    if (cancelledByPeer(ctx.signal)) yield subs.cancelled();
    return;
  }
  if (!assoc.canSend) return;
  yield subs.final();
}
