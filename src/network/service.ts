/**
 * The service interface (ARCHITECTURE.md "Service interfaces"): every DICOM service declares the
 * SOP classes it serves and registers handlers by command. Handlers return DIMSE statuses as
 * values; an exception in a handler becomes a failure status, never a dead association.
 */
import type { EventBus } from '../core/events.js';
import type { DataSet } from '../dicom/dataset.js';
import type { DimseCommand } from './dimse-command.js';
import type { NetworkLogger } from './logger.js';

/** What the dispatcher passes to a handler with each request. */
export interface RequestContext {
  readonly contextId: number;
  readonly abstractSyntax: string;
  readonly transferSyntax: string;
  readonly command: DimseCommand;
  /** The peer (calling AE title on an acceptor, called on a requestor) and its address. */
  readonly peerAeTitle: string;
  readonly localAeTitle: string;
  readonly remoteAddress: string | undefined;
  /** Aborted by C-CANCEL, or when the association ends. */
  readonly signal: AbortSignal;
  readonly log: NetworkLogger;
  /**
   * Who the peer is, as the acceptor's admission hook said (NegotiationPolicy.admit; the server's
   * is a security/ NodeIdentity); undefined without one. Opaque to network/.
   */
  readonly identity?: unknown;
  /** The server's event stream, when it has one (core/events.ts): services emit what they did on it. */
  readonly events?: EventBus;
  /** The association, to send requests on it (C-GET sub-operations). */
  readonly association: RequestSender;
}

/** The part of a DIMSE association a handler may use to send its own requests. */
export interface RequestSender {
  /** Accepted contexts (with our roles) to choose one for a sub-operation. */
  readonly presentationContexts: readonly {
    readonly id: number;
    readonly abstractSyntax: string;
    readonly transferSyntax: string;
    readonly scu: boolean;
    readonly scp: boolean;
  }[];
  request(
    contextId: number,
    command: Omit<DimseCommand, 'messageId'>,
    data?: OutgoingData,
    options?: RequestOptions,
  ): AsyncGenerator<ResponseMessage, void, undefined>;
}

/** Options of a request we send. */
export interface RequestOptions {
  /** Aborting it sends C-CANCEL for a C-FIND, C-GET or C-MOVE (PS3.7 9.3.2.3); the final response follows. */
  readonly signal?: AbortSignal;
}

/** A data set to send: encoded bytes, a data set (encoded in the context's syntax) or a byte stream. */
export type OutgoingData = Uint8Array | DataSet | AsyncIterable<Uint8Array>;

/** A response as a handler gives it; the dispatcher fills in the message IDs and SOP class. */
export interface DimseResponse {
  readonly status: number;
  /** A data set, or its bytes already encoded in the context's transfer syntax (C-FIND answers built from the index). */
  readonly dataSet?: DataSet | Uint8Array;
  readonly errorComment?: string;
  readonly errorId?: number;
  readonly offendingElements?: readonly number[];
  readonly affectedSopInstanceUid?: string;
  readonly remainingSubOperations?: number;
  readonly completedSubOperations?: number;
  readonly failedSubOperations?: number;
  readonly warningSubOperations?: number;
}

/** A response received by a requestor. */
export interface ResponseMessage {
  readonly command: DimseCommand;
  readonly dataSet: DataSet | undefined;
}

/** C-ECHO, N-CREATE, N-SET, N-GET, N-ACTION, N-DELETE, N-EVENT-REPORT: one response. */
export type SingleHandler = (
  ctx: RequestContext,
  dataSet: DataSet | undefined,
) => Promise<DimseResponse> | DimseResponse;
/** C-STORE: the data set's bytes as they arrive, in the context's transfer syntax. */
export type StoreHandler = (ctx: RequestContext, data: AsyncIterable<Uint8Array>) => Promise<DimseResponse>;
/**
 * C-FIND, C-GET, C-MOVE: pending responses as they come, then the final one. Ending without a
 * final response means success; the dispatcher checks for cancel between responses.
 */
export type MultiHandler = (ctx: RequestContext, identifier: DataSet) => AsyncIterable<DimseResponse>;

export interface DimseHandlers {
  readonly 'C-ECHO'?: SingleHandler;
  readonly 'C-STORE'?: StoreHandler;
  readonly 'C-FIND'?: MultiHandler;
  readonly 'C-GET'?: MultiHandler;
  readonly 'C-MOVE'?: MultiHandler;
  readonly 'N-CREATE'?: SingleHandler;
  readonly 'N-SET'?: SingleHandler;
  readonly 'N-GET'?: SingleHandler;
  readonly 'N-ACTION'?: SingleHandler;
  readonly 'N-DELETE'?: SingleHandler;
  readonly 'N-EVENT-REPORT'?: SingleHandler;
}

export interface ServiceSopClass {
  readonly uid: string;
  /** Accepted transfer syntaxes in order of preference; default: the service's. */
  readonly transferSyntaxes?: readonly string[];
}

export interface ServiceHealth {
  readonly ok: boolean;
  readonly detail?: string;
}

/** One DICOM service: its name, its SOP classes, its handlers, and its life cycle. */
export interface DimseService {
  readonly name: string;
  readonly sopClasses: readonly ServiceSopClass[];
  /** Default transfer syntaxes for its SOP classes, in order of preference. */
  readonly transferSyntaxes: readonly string[];
  readonly handlers: DimseHandlers;
  /** Roles a requestor may take (PS3.7 D.3.3.4); default SCU only. */
  readonly requestorRoles?: { readonly scu: boolean; readonly scp: boolean };
  /** Our answer to SOP class extended negotiation (0x56). */
  readonly extendedNegotiation?: (sopClassUid: string, requested: Uint8Array) => Uint8Array | undefined;
  start?(): Promise<void>;
  stop?(): Promise<void>;
  health?(): Promise<ServiceHealth>;
}
