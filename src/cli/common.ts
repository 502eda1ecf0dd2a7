/**
 * What the network commands (`pacs echo`, `pacs store`, later find/move/get...) share: the
 * DCMTK-style connection options (`--aet`, `--aec`, TLS, `--timeout`, `--max-pdu`, HOST PORT),
 * their validation into usage errors, and one wording for network failures, so that every
 * command says "connection refused" or "association rejected (...)" the same way.
 */

import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import {
  ApplicationEntity,
  describeAbort,
  describeReject,
  describeStatus,
  err,
  formatTag,
  isAeTitle,
  isHost,
  keywordOf,
  PATIENT_ROOT,
  parseKeyAssignment,
  parseLevel,
  STUDY_ROOT,
  TAG,
  TLS_POLICY,
  toDicomJson,
  UsageError,
} from '../client.js';
import type {
  DataSet,
  DimseAssociation,
  FindQuery,
  InformationModel,
  KeyAssignment,
  NetworkError,
  PacsError,
  ProposedPresentationContext,
  QueryRetrieveLevel,
  Result,
  Tag,
  TlsClientOptions,
} from '../index.js';

/** The flags addConnectionOptions() declares, as commander hands them over. */
export interface ConnectionFlags {
  aet: string;
  aec: string;
  tls?: boolean;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  timeout: string;
  maxPdu?: string;
}

/** A validated peer to connect to. */
export interface Connection {
  readonly host: string;
  readonly port: number;
  readonly callingAeTitle: string;
  readonly calledAeTitle: string;
  readonly useTls: boolean;
  readonly tls: TlsClientOptions | undefined;
  readonly timeoutSeconds: number;
  readonly maxPduLength: number | undefined;
  /** "AEC@host:port" for messages. */
  readonly target: string;
}

/** Declares HOST PORT and the connection options on a command (DCMTK's names and defaults). */
export function addConnectionOptions(command: Command): Command {
  return command
    .argument('<host>', 'peer host name or address')
    .argument('<port>', 'peer port')
    .option('--aet <title>', 'our (calling) AE title', 'PACSSCU')
    .option('--aec <title>', 'the peer (called) AE title', 'PACS')
    .option('--tls', 'connect with TLS (implied by the other --tls-* options)')
    .option('--tls-ca <file>', 'CA certificates (PEM) the server certificate is verified against')
    .option('--tls-cert <file>', 'our client certificate (PEM), for servers that require one')
    .option('--tls-key <file>', 'the private key (PEM) of --tls-cert')
    .option('--timeout <seconds>', 'limit for connecting, negotiating and each response', '30')
    .option('--max-pdu <n>', 'largest PDU we receive, 4096..16777216 or 0 for unlimited (default 262144)');
}

export function integerFlag(name: string, text: string, min: number, max: number): number {
  const n = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw new UsageError(`${name}: expected an integer from ${min} to ${max}, got ${JSON.stringify(text)}`);
  return n;
}

/** `--db URL` of every command: the config's one check of an index URL, in the config's words. */
export async function indexUrlFlag(url: string): Promise<string> {
  // The index layer (kysely, the engines' drivers) loads only for the commands that open an index.
  const { INDEX_URL_EXPECTED, isIndexUrl } = await import('../index.js');
  if (!isIndexUrl(url))
    throw new UsageError(`--db: expected ${INDEX_URL_EXPECTED}, got ${JSON.stringify(url)}`);
  return url;
}

export function readPem(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`${flag} ${file}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
}

/** Validates HOST, PORT and the connection flags; throws UsageError naming the bad one. */
export function parseConnection(host: string, portText: string, flags: ConnectionFlags): Connection {
  if (!isHost(host))
    throw new UsageError(`HOST: expected a host name or IP address, got ${JSON.stringify(host)}`);
  const port = integerFlag('PORT', portText, 1, 65535);
  for (const [flag, value] of [
    ['--aet', flags.aet],
    ['--aec', flags.aec],
  ] as const) {
    if (!isAeTitle(value))
      throw new UsageError(
        `${flag}: expected an AE title (1 to 16 characters), got ${JSON.stringify(value)}`,
      );
  }
  const seconds = Number(flags.timeout);
  if (!/^\d+(\.\d+)?$/.test(flags.timeout) || seconds <= 0 || seconds > 86400)
    throw new UsageError(
      `--timeout: expected a number of seconds from 0 to 86400, got ${JSON.stringify(flags.timeout)}`,
    );
  let maxPduLength: number | undefined;
  if (flags.maxPdu !== undefined) {
    maxPduLength = integerFlag('--max-pdu', flags.maxPdu, 0, 16777216);
    if (maxPduLength !== 0 && maxPduLength < 4096)
      throw new UsageError(
        `--max-pdu: expected an integer from 4096 to 16777216, or 0 for unlimited, got ${maxPduLength}`,
      );
  }
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined))
    throw new UsageError('--tls-cert and --tls-key go together');
  const useTls = Boolean(flags.tls || flags.tlsCa || flags.tlsCert);
  const tls: TlsClientOptions | undefined = useTls
    ? {
        parameters: TLS_POLICY,
        ...(flags.tlsCa !== undefined ? { ca: readPem('--tls-ca', flags.tlsCa) } : {}),
        ...(flags.tlsCert !== undefined ? { cert: readPem('--tls-cert', flags.tlsCert) } : {}),
        ...(flags.tlsKey !== undefined ? { key: readPem('--tls-key', flags.tlsKey) } : {}),
      }
    : undefined;
  const calledAeTitle = flags.aec.trim();
  return {
    host,
    port,
    callingAeTitle: flags.aet.trim(),
    calledAeTitle,
    useTls,
    tls,
    timeoutSeconds: seconds,
    maxPduLength,
    target: `${calledAeTitle}@${host.includes(':') ? `[${host}]` : host}:${port}`,
  };
}

/** Our application entity for a connection: its AE title, maximum PDU and timeouts. */
export function requestorFor(c: Connection): ApplicationEntity {
  const timeoutMs = Math.round(c.timeoutSeconds * 1000);
  return new ApplicationEntity({
    aeTitle: c.callingAeTitle,
    ...(c.maxPduLength !== undefined ? { maxPduLength: c.maxPduLength } : {}),
    timeouts: { connectMs: timeoutMs, acseMs: timeoutMs },
    responseTimeoutMs: timeoutMs,
  });
}

/** Opens an association with the connection's peer; a failure comes back in describeNetworkFailure()'s words. */
export async function connectTo(
  ae: ApplicationEntity,
  c: Connection,
  contexts: readonly ProposedPresentationContext[],
): Promise<Result<DimseAssociation, string>> {
  const opened = await ae.connect({
    host: c.host,
    port: c.port,
    calledAeTitle: c.calledAeTitle,
    contexts,
    ...(c.tls !== undefined ? { tls: c.tls } : {}),
  });
  return opened.ok ? opened : err(describeNetworkFailure(opened.error, c.useTls, c.timeoutSeconds));
}

// --- the keys of find, move, get and the worklist query ---------------------------------------

/** `--root`: the Query/Retrieve information model. */
export function informationModelFlag(text: string): InformationModel {
  if (text === 'patient') return PATIENT_ROOT;
  if (text === 'study') return STUDY_ROOT;
  throw new UsageError(`--root: expected patient or study, got ${JSON.stringify(text)}`);
}

/** The `-k KEY=VALUE` flags (keyword or gggg,eeee); a bad one is a usage error. */
export function keyAssignments(texts: readonly string[]): KeyAssignment[] {
  const assignments: KeyAssignment[] = [];
  for (const k of texts) {
    const parsed = parseKeyAssignment(k);
    if (!parsed.ok) throw new UsageError(`-k ${parsed.error}`);
    assignments.push(parsed.value);
  }
  return assignments;
}

/** The level from a Query/Retrieve Level key (as findscu and movescu users write it) or `--level`, and the other keys. */
export function levelAndKeys(
  model: InformationModel,
  assignments: readonly KeyAssignment[],
  levelFlag: string,
): { level: QueryRetrieveLevel; keys: KeyAssignment[] } {
  const levelKey = assignments.find((a) => a.path.length === 1 && a.path[0]?.tag === TAG.QueryRetrieveLevel);
  const levelText = levelKey?.value ?? levelFlag;
  const level = parseLevel(levelText.toUpperCase());
  if (level === undefined)
    throw new UsageError(
      `--level: expected PATIENT, STUDY, SERIES or IMAGE, got ${JSON.stringify(levelText)}`,
    );
  if (!model.levels.includes(level))
    throw new UsageError(`--level: ${model.title} has no ${level} level (${model.levels.join(', ')})`);
  return { level, keys: assignments.filter((a) => a !== levelKey) };
}

/** A non-success status as one line: the status in words, the peer's Error Comment, the Offending Elements named. */
export function describeRefusal(
  status: number,
  errorComment: string | undefined,
  offendingElements: readonly Tag[] | undefined,
): string {
  const why = errorComment !== undefined ? `: ${errorComment}` : '';
  const offending =
    offendingElements !== undefined && offendingElements.length > 0
      ? ` [${offendingElements.map((t) => keywordOf(t) || formatTag(t)).join(', ')}]`
      : '';
  return `status ${describeStatus(status)}${why}${offending}`;
}

/** Transport errors that are about the network, not about TLS. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
]);

/** A failure to connect, negotiate or exchange, in words: "connection refused", "association rejected (...)". */
export function describeNetworkFailure(e: PacsError, tls: boolean, seconds: number): string {
  const error = e as NetworkError;
  const cause = (error.cause ?? undefined) as NodeJS.ErrnoException | undefined;
  switch (e.code) {
    case 'ERR_CONNECT': {
      if (cause?.code === 'ECONNREFUSED') return 'connection refused';
      if (cause?.code === 'ENOTFOUND' || cause?.code === 'EAI_AGAIN') return 'unknown host';
      if (cause?.code === 'EHOSTUNREACH' || cause?.code === 'ENETUNREACH') return 'host unreachable';
      if (tls && !NETWORK_CODES.has(cause?.code ?? ''))
        return `TLS failure: ${tlsReason(cause?.message ?? error.message)}`;
      return error.message;
    }
    case 'ERR_ASSOCIATION_REJECTED':
      return error.reject !== undefined
        ? `association rejected (${describeReject(error.reject)})`
        : error.message;
    case 'ERR_TIMEOUT':
    case 'ERR_DIMSE_TIMEOUT':
      return `timeout after ${seconds} s (${error.abort?.detail ?? error.message})`;
    case 'ERR_ASSOCIATION_ABORTED': {
      const a = error.abort;
      if (a === undefined) return error.message;
      const by =
        a.initiator === 'peer' ? 'by the peer' : a.initiator === 'local' ? 'by us' : 'by the network';
      const detail = a.detail !== undefined && a.initiator !== 'peer' ? `: ${a.detail}` : '';
      if (tls && a.initiator === 'provider' && /tls|ssl|alert|certificate/i.test(a.detail ?? ''))
        return `TLS failure: ${tlsReason(a.detail ?? '')}`;
      return `association aborted ${by} (${describeAbort(a.source, a.reason)}${detail})`;
    }
    default:
      return error.message;
  }
}

/** OpenSSL's "80AC...:error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:..." in words. */
export function tlsReason(text: string): string {
  const reason = /SSL routines:[^:]*:([^:]+)/.exec(text)?.[1]?.trim() ?? text;
  if (/certificate required/.test(reason))
    return `${reason} (the server wants a client certificate: --tls-cert and --tls-key)`;
  if (/wrong version number|packet length too long|record layer failure/.test(reason))
    return `${reason} (is this a TLS port?)`;
  return reason;
}

/** What streamMatches gives back: the rows kept for a table, the query's outcome, and whether the reader left. */
export interface StreamedMatches {
  readonly rows: DataSet[];
  readonly outcome: Awaited<FindQuery['outcome']>;
  /** Standard output was closed by its reader (`| head`): the query was cancelled, print nothing more. */
  readonly outputClosed: boolean;
}

/**
 * Runs a C-FIND (pacs find, pacs worklist): with `json` each match is written to standard output
 * as it arrives, as one JSON array; otherwise the matches are kept for a table. Ctrl-C, and a
 * reader that goes away (`pacs find ... | head`), cancel the query (C-CANCEL) without an error.
 */
export async function streamMatches(
  start: (signal: AbortSignal) => FindQuery,
  json: boolean,
): Promise<StreamedMatches> {
  const cancel = new AbortController();
  const onSigint = (): void => cancel.abort();
  process.once('SIGINT', onSigint);
  const rows: DataSet[] = [];
  let first = true;
  const out = process.stdout;
  let outputClosed = false;
  const onOutputError = (e: NodeJS.ErrnoException): void => {
    if (e.code !== 'EPIPE') throw e;
    outputClosed = true;
    cancel.abort();
  };
  out.on('error', onOutputError);
  if (json) out.write('[');
  const query = start(cancel.signal);
  try {
    for await (const ds of query) {
      if (outputClosed) continue;
      if (!json) {
        rows.push(ds);
        continue;
      }
      out.write(`${first ? '\n' : ',\n'}${JSON.stringify(toDicomJson(ds))}`);
      first = false;
    }
  } finally {
    process.removeListener('SIGINT', onSigint);
    if (json && !outputClosed) out.write(first ? ']\n' : '\n]\n');
  }
  return { rows, outcome: await query.outcome, outputClosed };
}
