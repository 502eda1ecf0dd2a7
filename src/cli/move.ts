/**
 * `pacs move`: C-MOVE (Query/Retrieve, PS3.4 C.4.2) like DCMTK's movescu: asks HOST PORT to send
 * what the keys name to the AE `--dest`. `-k KEY=VALUE` gives the unique keys (keyword or
 * gggg,eeee; a UID list as `A\B`), `--level` the retrieve level. Progress comes from the pending
 * responses' counts (a bar on a terminal); a summary (or --json the outcome) follows. Exit 0 only
 * when every sub-operation succeeded; otherwise the status and the peer's Error Comment. Ctrl-C
 * sends C-CANCEL. What `pacs get` shares with it is here too.
 *
 * `--timeout` bounds connecting and negotiating; the retrieve itself waits for its responses as
 * long as the peer keeps the association (one object can take long to move), as movescu does.
 */
import { performance } from 'node:perf_hooks';
import type { Command } from 'commander';
import {
  ApplicationEntity,
  buildIdentifier,
  DataSet,
  describeStatus,
  isAeTitle,
  move,
  PacsError,
  retrieveContext,
  Status,
  statusCategory,
  TAG,
  UsageError,
} from '../client.js';
import type {
  DimseAssociation,
  InformationModel,
  ProposedPresentationContext,
  QueryRetrieveLevel,
  Result,
  RetrieveError,
  RetrieveOutcome,
  RetrieveProgress,
} from '../index.js';
import {
  addConnectionOptions,
  type Connection,
  type ConnectionFlags,
  connectTo,
  describeNetworkFailure,
  informationModelFlag,
  keyAssignments,
  levelAndKeys,
  parseConnection,
} from './common.js';
import { formatMB, Progress } from './progress.js';

export interface RetrieveFlags extends ConnectionFlags {
  root: string;
  level: string;
  key: string[];
  json?: boolean;
}

interface MoveFlags extends RetrieveFlags {
  dest: string;
}

/** Declares --root, --level, -k and --json (shared by `pacs move` and `pacs get`). */
export function addRetrieveOptions(command: Command): Command {
  return command
    .option('--root <model>', 'information model: patient or study', 'study')
    .option('--level <level>', 'retrieve level: PATIENT, STUDY, SERIES or IMAGE', 'STUDY')
    .option(
      '-k, --key <key=value>',
      'a unique key, repeatable: keyword or gggg,eeee = value (a UID list as A\\B)',
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .option('--json', 'print the outcome as JSON');
}

export function registerMoveCommand(program: Command): void {
  addRetrieveOptions(
    addConnectionOptions(
      program
        .command('move')
        .description('ask a DICOM peer to send objects to an AE with C-MOVE (Query/Retrieve), like movescu'),
    ),
  )
    .requiredOption('--dest <aet>', 'the move destination: an AE title the peer knows')
    .action(async (host: string, port: string, flags: MoveFlags) => {
      await runMove(host, port, flags);
    });
}

/** The model, level and Identifier of a retrieve from its flags; usage errors name the flag. */
export function retrieveRequest(flags: RetrieveFlags): {
  model: InformationModel;
  level: QueryRetrieveLevel;
  identifier: DataSet;
} {
  const model = informationModelFlag(flags.root);
  const { level, keys } = levelAndKeys(model, keyAssignments(flags.key), flags.level);
  const identifier = buildIdentifier(keys, new DataSet());
  identifier.setString(TAG.QueryRetrieveLevel, level);
  return { model, level, identifier };
}

/** Our AE for a retrieve: --timeout for connecting and negotiating, no limit on the responses. */
export function retrieveRequestor(c: Connection): ApplicationEntity {
  const timeoutMs = Math.round(c.timeoutSeconds * 1000);
  return new ApplicationEntity({
    aeTitle: c.callingAeTitle,
    ...(c.maxPduLength !== undefined ? { maxPduLength: c.maxPduLength } : {}),
    timeouts: { connectMs: timeoutMs, acseMs: timeoutMs },
  });
}

/** The --json form of an outcome. */
export function outcomeJson(o: RetrieveOutcome, extra: Record<string, unknown> = {}): string {
  return `${JSON.stringify(
    {
      status: o.status,
      statusText: describeStatus(o.status),
      ...(o.errorComment !== undefined ? { errorComment: o.errorComment } : {}),
      completed: o.completed ?? null,
      failed: o.failed ?? null,
      warning: o.warning ?? null,
      ...(o.remaining !== undefined ? { remaining: o.remaining } : {}),
      failedSopInstanceUids: o.failedSopInstanceUids,
      cancelled: o.cancelled,
      ...extra,
    },
    null,
    2,
  )}\n`;
}

/** Throws the one-line failure of a retrieve that did not fully succeed. */
export function checkOutcome(what: string, o: RetrieveOutcome): void {
  const category = statusCategory(o.status);
  if (category === 'success') return;
  const why = o.errorComment !== undefined && o.errorComment !== '' ? `: ${o.errorComment}` : '';
  const counts =
    o.completed !== undefined || o.failed !== undefined
      ? ` (${o.completed ?? 0} completed, ${o.failed ?? 0} failed, ${o.warning ?? 0} warning)`
      : '';
  if (o.status === Status.Cancel) throw new PacsError('ERR_RETRIEVE', `${what}: cancelled${counts}`);
  throw new PacsError('ERR_RETRIEVE', `${what}: status ${describeStatus(o.status)}${why}${counts}`);
}

export function failureOf(
  what: string,
  e: RetrieveError,
  conn: Connection,
  model: InformationModel,
): PacsError {
  if (e.code === 'ERR_NO_CONTEXT')
    return new PacsError(
      'ERR_RETRIEVE',
      `${what}: the peer does not serve ${model.title} ${what.split(' ')[0]}`,
    );
  const cause = e.cause instanceof PacsError ? e.cause : e;
  return new PacsError(
    'ERR_RETRIEVE',
    `${what}: ${describeNetworkFailure(cause, conn.useTls, conn.timeoutSeconds)}`,
  );
}

/**
 * Runs one retrieve on a new association with the progress bar: Ctrl-C sends C-CANCEL. Returns the
 * outcome and the seconds it took; a failure to connect or to retrieve is thrown in the CLI's words.
 */
export async function performRetrieve(
  ae: ApplicationEntity,
  conn: Connection,
  contexts: readonly ProposedPresentationContext[],
  what: string,
  model: InformationModel,
  progress: RetrieveProgressBar,
  retrieve: (
    assoc: DimseAssociation,
    signal: AbortSignal,
    onProgress: (p: RetrieveProgress) => void,
  ) => Promise<Result<RetrieveOutcome, RetrieveError>>,
): Promise<{ outcome: RetrieveOutcome; seconds: number }> {
  const opened = await connectTo(ae, conn, contexts);
  if (!opened.ok) throw new PacsError('ERR_RETRIEVE', `${what}: ${opened.error}`);
  const assoc = opened.value;
  const cancel = new AbortController();
  const onSigint = (): void => cancel.abort();
  process.once('SIGINT', onSigint);
  const started = performance.now();
  progress.start();
  let result: Result<RetrieveOutcome, RetrieveError>;
  try {
    result = await retrieve(assoc, cancel.signal, (p) => progress.update(p));
  } finally {
    process.removeListener('SIGINT', onSigint);
    progress.clear();
  }
  if (assoc.canSend) await assoc.release().catch(() => assoc.abort());
  if (!result.ok) throw failureOf(what, result.error, conn, model);
  return { outcome: result.value, seconds: (performance.now() - started) / 1000 };
}

/** Sub-operations done/total from the pending counts (and bytes, for C-GET), on the CLI's progress display. */
export class RetrieveProgressBar {
  private readonly progress = new Progress<RetrieveProgress | undefined>(
    {
      head: (c) => {
        if (c === undefined) return 'waiting for the first response';
        const failed = c.failed ? `, ${c.failed} failed` : '';
        return `${done(c)}/${done(c) + (c.remaining ?? 0)} sub-operations${failed}`;
      },
      tail: (_c, s) => (this.bytes > 0 && s.seconds > 0 ? ` ${formatMB(this.bytes / s.seconds)}/s` : ''),
      barless: (c) => c === undefined,
    },
    undefined,
  );
  bytes = 0;

  /** Draws the line (waiting for the first response) until clear(). */
  start(): void {
    this.progress.start(0);
  }

  update(p: RetrieveProgress): void {
    this.progress.update(done(p), p, done(p) + (p.remaining ?? 0));
  }

  addBytes(n: number): void {
    this.bytes += n;
  }

  clear(): void {
    this.progress.stop();
  }
}

function done(c: RetrieveProgress): number {
  return (c.completed ?? 0) + (c.failed ?? 0) + (c.warning ?? 0);
}

async function runMove(host: string, portText: string, flags: MoveFlags): Promise<void> {
  const conn = parseConnection(host, portText, flags);
  if (!isAeTitle(flags.dest))
    throw new UsageError(
      `--dest: expected an AE title (1 to 16 characters), got ${JSON.stringify(flags.dest)}`,
    );
  const destination = flags.dest.trim();
  const { model, identifier } = retrieveRequest(flags);
  const what = `C-MOVE on ${conn.target} to ${destination}`;
  const { outcome: o, seconds } = await performRetrieve(
    retrieveRequestor(conn),
    conn,
    [retrieveContext(model, 'move')],
    what,
    model,
    new RetrieveProgressBar(),
    (assoc, signal, onProgress) => move(assoc, { model, destination, identifier, signal, onProgress }),
  );
  if (flags.json) process.stdout.write(outcomeJson(o, { destination, seconds }));
  else if (hasCounts(o)) process.stdout.write(summary(what, o, seconds));
  checkOutcome(what, o);
}

/** A refusal before any sub-operation (0xA801, 0xA900...) has no counts to summarise. */
export function hasCounts(o: RetrieveOutcome): boolean {
  return o.completed !== undefined || o.failed !== undefined || o.warning !== undefined;
}

function summary(what: string, o: RetrieveOutcome, seconds: number): string {
  const lines = [
    `${what}: ${o.completed ?? 0} completed, ${o.failed ?? 0} failed, ${o.warning ?? 0} warning ` +
      `in ${seconds.toFixed(1)} s; ${describeStatus(o.status)}`,
  ];
  for (const uid of o.failedSopInstanceUids) lines.push(`  failed ${uid}`);
  return `${lines.join('\n')}\n`;
}
