/**
 * DIMSE message exchange over an established association (PS3.7 and PS3.8 annex E): commands and
 * data sets assembled from PDVs and cut into PDVs, requests dispatched to service handlers by SOP
 * class and command, responses matched to the requests we sent, C-CANCEL.
 *
 * Data sets stream: a C-STORE data set goes from the socket to its handler chunk by chunk (with
 * backpressure: the read loop waits while the handler is behind), and outgoing data sets are cut
 * into PDVs as they are read from their source. Other data sets (identifiers, N- attributes) are
 * small by nature and are collected, up to a limit.
 *
 * What the dispatcher answers by itself, always after the request's data set has arrived:
 *   a command field that is no DIMSE request                       0x0211 Unrecognized operation
 *   no service for the context's SOP class                         0x0122 (C-) / 0x0118 (N-)
 *   a command's SOP class other than the context's abstract syntax  0x0122 (C-) / 0x0118 (N-)
 *   a service without a handler for the command, or we are not SCP 0x0211
 *   a data set that does not parse                                 0xC000 (C-) / 0x0110 (N-)
 *   a handler that throws                                          0x0110 Processing failure
 * A malformed command set, a PDV on a context that was not accepted, a data set fragment without
 * its command, or a command inside a data set is a protocol error: A-ABORT (service-provider).
 */
import { DicomParseError, PacsError } from '../core/errors.js';
import type { EventBus } from '../core/events.js';
import { DataSet } from '../dicom/dataset.js';
import { parseDicom } from '../dicom/reader.js';
import { encodeDataSet } from '../dicom/writer.js';
import type { Association } from './association.js';
import {
  CommandField,
  commandName,
  type DimseCommand,
  decodeCommand,
  encodeCommand,
  isResponse,
} from './dimse-command.js';
import { Status, statusCategory } from './dimse-status.js';
import { type NetworkLogger, silentLogger } from './logger.js';
import { PDataWriter } from './pdata-writer.js';
import { AbortReason, AbortSource, type OutgoingPdv, type Pdv } from './pdu.js';
import type {
  DimseHandlers,
  DimseResponse,
  DimseService,
  OutgoingData,
  RequestContext,
  RequestOptions,
  RequestSender,
  ResponseMessage,
} from './service.js';
import { ServiceError } from './service-error.js';

/** Identifiers and N- data sets larger than this are refused (they are small by nature). */
const MAX_COLLECTED_DATA_SET = 64 * 1024 * 1024;
/** Bytes of a streamed data set queued for a slow handler before the read loop waits. */
const STREAM_HIGH_WATER_MARK = 1024 * 1024;
/**
 * Requests being handled (or whose responses wait to be written) beyond which the read loop stops
 * taking new ones. We answer the asynchronous operations window with 1/1, so a peer over this
 * limit ignores the negotiation; waiting bounds our memory when a peer sends requests without
 * reading the responses. C-CANCEL still gets through while fewer are in flight.
 */
const MAX_REQUESTS_IN_FLIGHT = 16;

/** Finds the service for a SOP class (the dispatcher's registry). */
export interface ServiceLookup {
  serviceFor(sopClassUid: string): DimseService | undefined;
}

export interface DimseOptions {
  readonly services?: ServiceLookup;
  readonly log?: NetworkLogger;
  /** Longest wait for a response to a request we sent (ms); default none. */
  readonly responseTimeoutMs?: number;
  /**
   * Longest silence of the peer inside a message (between fragments of one command or data set),
   * and longest wait for the peer to take what we send (ms). Default: the association's timeouts.dimseMs.
   */
  readonly dimseTimeoutMs?: number;
  /** Where each request served is reported ('request', core/events.ts); handlers get it as ctx.events. */
  readonly events?: EventBus;
  /**
   * Asked once for every request the peer sends, before its handler runs (ARCHITECTURE.md
   * decision 10: the one policy, asked in one place). Undefined (the library default): every
   * request may run.
   */
  readonly authorize?: AuthorizeHook;
}

/** What the authorize hook is told about a request. */
export interface AuthorizationQuery {
  readonly command: keyof DimseHandlers;
  /** The presentation context's abstract syntax (the SOP class the request is on). */
  readonly abstractSyntax: string;
  /** C-MOVE: the Move Destination (0000,0600). */
  readonly moveDestination: string | undefined;
  /** The association's identity (NegotiationPolicy.admit), opaque here. */
  readonly identity: unknown;
  readonly peerAeTitle: string;
  readonly remoteAddress: string | undefined;
}

/** A refusal: its DIMSE status (0x0124 Refused: Not Authorized, 0xA801...) and Error Comment. */
export interface AuthorizationRefusal {
  readonly status: number;
  readonly errorComment: string;
}

/** Undefined: the request may run. */
export type AuthorizeHook = (query: AuthorizationQuery) => AuthorizationRefusal | undefined;

/** Counts kept per association for the log line and metrics. */
export interface DimseStats {
  requestsReceived: number;
  requestsSent: number;
  failures: number;
  bytesReceived: number;
}

/** The requests C-CANCEL applies to (PS3.7 9.3.2.3, 9.3.3.3, 9.3.4.3). */
const CANCELLABLE: ReadonlySet<number> = new Set([
  CommandField.C_FIND_RQ,
  CommandField.C_GET_RQ,
  CommandField.C_MOVE_RQ,
]);

const REQUEST_NAMES: Readonly<Record<number, keyof DimseHandlers>> = {
  [CommandField.C_ECHO_RQ]: 'C-ECHO',
  [CommandField.C_STORE_RQ]: 'C-STORE',
  [CommandField.C_FIND_RQ]: 'C-FIND',
  [CommandField.C_GET_RQ]: 'C-GET',
  [CommandField.C_MOVE_RQ]: 'C-MOVE',
  [CommandField.N_CREATE_RQ]: 'N-CREATE',
  [CommandField.N_SET_RQ]: 'N-SET',
  [CommandField.N_GET_RQ]: 'N-GET',
  [CommandField.N_ACTION_RQ]: 'N-ACTION',
  [CommandField.N_DELETE_RQ]: 'N-DELETE',
  [CommandField.N_EVENT_REPORT_RQ]: 'N-EVENT-REPORT',
};

/** A byte channel from the read loop to a streaming handler, with backpressure. */
class ByteChannel implements AsyncIterable<Uint8Array> {
  private readonly queue: Uint8Array[] = [];
  private queued = 0;
  private done = false;
  private error: Error | undefined;
  private wakeReader: (() => void) | undefined;
  private wakeWriter: (() => void) | undefined;
  /** Set when the consumer stopped reading: further data is dropped. */
  private abandoned = false;
  private resolveFinished: () => void = () => {};
  /** Resolves when the whole data set has arrived (or the association ended): the response may follow. */
  readonly finished: Promise<void> = new Promise((resolve) => {
    this.resolveFinished = resolve;
  });

  /** Resolves when the consumer has room again. */
  async push(chunk: Uint8Array): Promise<void> {
    if (this.abandoned) return;
    this.queue.push(chunk);
    this.queued += chunk.length;
    this.wakeReader?.();
    while (this.queued > STREAM_HIGH_WATER_MARK && !this.abandoned && !this.error) {
      await new Promise<void>((resolve) => {
        this.wakeWriter = resolve;
      });
    }
  }

  end(): void {
    this.done = true;
    this.wakeReader?.();
    this.resolveFinished();
  }

  fail(error: Error): void {
    if (this.error) return;
    this.error = error;
    this.wakeReader?.();
    this.wakeWriter?.();
    this.resolveFinished();
  }

  /** The consumer is done (or never started): drop what is queued and what still arrives. */
  abandon(): void {
    this.abandoned = true;
    this.queue.length = 0;
    this.queued = 0;
    this.wakeWriter?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    try {
      for (;;) {
        const chunk = this.queue.shift();
        if (chunk) {
          this.queued -= chunk.length;
          if (this.queued <= STREAM_HIGH_WATER_MARK) this.wakeWriter?.();
          yield chunk;
          continue;
        }
        if (this.error) throw this.error;
        if (this.done) return;
        await new Promise<void>((resolve) => {
          this.wakeReader = resolve;
        });
        this.wakeReader = undefined;
      }
    } finally {
      this.abandoned = this.queue.length > 0 || !this.done;
      this.queue.length = 0;
      this.queued = 0;
      this.wakeWriter?.();
    }
  }
}

/** Responses to one request we sent, in arrival order. */
class ResponseQueue {
  private readonly items: ResponseMessage[] = [];
  private error: Error | undefined;
  private wake: (() => void) | undefined;

  put(msg: ResponseMessage): void {
    this.items.push(msg);
    this.wake?.();
  }

  fail(error: Error): void {
    this.error = error;
    this.wake?.();
  }

  async take(timeoutMs: number | undefined): Promise<ResponseMessage> {
    for (;;) {
      const item = this.items.shift();
      if (item) return item;
      if (this.error) throw this.error;
      await new Promise<void>((resolve, reject) => {
        const timer =
          timeoutMs === undefined
            ? undefined
            : setTimeout(
                () => reject(new PacsError('ERR_DIMSE_TIMEOUT', `no response within ${timeoutMs} ms`)),
                timeoutMs,
              );
        this.wake = () => {
          if (timer) clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }
}

/**
 * A request being handled; C-CANCEL or the end of the association cancels it. Its AbortSignal is
 * made only when a handler asks for it: an AbortController costs more than the rest of a C-ECHO.
 */
class RequestState {
  cancelled = false;
  private reason: unknown;
  private controller: AbortController | undefined;

  cancel(reason: unknown): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.reason = reason;
    this.controller?.abort(reason);
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.cancelled) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }
}

/** What a handler gets with a request (a class: an object literal with a getter is slow to make). */
class HandlerContext implements RequestContext {
  readonly contextId: number;
  readonly abstractSyntax: string;
  readonly transferSyntax: string;
  readonly peerAeTitle: string;
  readonly localAeTitle: string;
  readonly remoteAddress: string | undefined;
  readonly identity: unknown;

  constructor(
    readonly association: DimseAssociation,
    pc: { readonly id: number; readonly abstractSyntax: string; readonly transferSyntax: string },
    readonly command: DimseCommand,
    private readonly state: RequestState,
    readonly log: NetworkLogger,
    readonly events: EventBus | undefined,
  ) {
    const assoc = association.association;
    const acceptor = assoc.role === 'acceptor';
    this.contextId = pc.id;
    this.abstractSyntax = pc.abstractSyntax;
    this.transferSyntax = pc.transferSyntax;
    this.peerAeTitle = acceptor ? assoc.callingAeTitle : assoc.calledAeTitle;
    this.localAeTitle = acceptor ? assoc.calledAeTitle : assoc.callingAeTitle;
    this.remoteAddress = assoc.remoteAddress;
    this.identity = assoc.identity;
  }

  get signal(): AbortSignal {
    return this.state.signal;
  }
}

interface InboundMessage {
  readonly contextId: number;
  readonly command: DimseCommand;
  /** For a streamed C-STORE data set. */
  channel?: ByteChannel;
  /** For a collected data set. */
  chunks?: Uint8Array[];
  size: number;
}

/**
 * DIMSE on one association: the read loop, the dispatcher for requests the peer sends us, and
 * the requests we send. Create it once the association is established, then call run().
 */
export class DimseAssociation implements RequestSender {
  readonly association: Association;
  readonly stats: DimseStats = { requestsReceived: 0, requestsSent: 0, failures: 0, bytesReceived: 0 };
  private readonly services: ServiceLookup | undefined;
  private readonly log: NetworkLogger;
  private readonly events: EventBus | undefined;
  private readonly authorize: AuthorizeHook | undefined;
  private readonly responseTimeoutMs: number | undefined;
  private readonly dimseMs: number | undefined;
  private nextMessageId = 1;
  private readonly waiting = new Map<number, ResponseQueue>();
  /** Requests being handled, by message ID: C-CANCEL aborts them. */
  private readonly active = new Map<number, RequestState>();
  private readonly handlers = new Set<Promise<void>>();
  private sendChain: Promise<void> = Promise.resolve();
  /** Messages being sent or waiting their turn. */
  private queuedSends = 0;
  private loop: Promise<void> | undefined;
  private closedError: Error | undefined;
  /** The C-STORE data set being received, while its fragments arrive. */
  private receiving: ByteChannel | undefined;
  /** Cuts what we send into PDVs (one sender at a time: the send chain). */
  private pdataWriter: PDataWriter | undefined;
  /** Wakes the read loop when a request in flight finishes. */
  private wakeReadLoop: (() => void) | undefined;

  constructor(association: Association, options: DimseOptions = {}) {
    this.association = association;
    this.services = options.services;
    this.log = options.log ?? silentLogger;
    this.events = options.events;
    this.authorize = options.authorize;
    this.responseTimeoutMs = options.responseTimeoutMs;
    // The configured DIMSE timeout; the read loop arms the Upper Layer's timer with it mid-message.
    this.dimseMs = options.dimseTimeoutMs ?? association.dimseTimeoutMs;
    association.dimseTimeoutMs = undefined;
    // The read loop may be waiting for a slow handler rather than for the socket: tell handlers,
    // waiters and the channel at once that the association is gone.
    association.on('aborted', () => {
      const error =
        this.closedError ?? new PacsError('ERR_ASSOCIATION_CLOSED', 'the association was aborted');
      this.receiving?.fail(error);
      for (const q of this.waiting.values()) q.fail(error);
      for (const c of this.active.values()) c.cancel(error);
      this.wakeReadLoop?.();
    });
  }

  get presentationContexts(): Association['presentationContexts'] {
    return this.association.presentationContexts;
  }

  /** True while messages can be sent: the association is established (or the peer asked for release). */
  get canSend(): boolean {
    return this.association.canSend;
  }

  /** Starts the read loop (idempotent); resolves when the association is over and handlers have finished. */
  run(): Promise<void> {
    if (!this.loop) this.loop = this.readLoop();
    return this.loop;
  }

  // --- receiving -----------------------------------------------------------------------------

  private async readLoop(): Promise<void> {
    let commandParts: Uint8Array[] = [];
    let commandSize = 0;
    let commandContext = 0;
    let current: InboundMessage | undefined;
    try {
      // The DIMSE timeout covers a peer that stalls inside a message, not the wait between
      // messages (that is the idle timeout): the Upper Layer's timer is armed only mid-message.
      const source = this.association.pdvs();
      const midMessage = (): boolean => commandParts.length > 0 || current !== undefined;
      const timed: AsyncIterable<Pdv> = {
        [Symbol.asyncIterator]: () => ({
          next: () => {
            this.association.dimseTimeoutMs = midMessage() ? this.dimseMs : undefined;
            return source.next();
          },
          return: (value?: unknown) =>
            source.return?.(value) ?? Promise.resolve({ value: undefined, done: true }),
        }),
      };
      for await (const pdv of timed) {
        this.stats.bytesReceived += pdv.data.length;
        if (pdv.isCommand) {
          if (current)
            return this.protocolError('a command arrived before the previous data set was complete');
          if (commandParts.length > 0 && pdv.contextId !== commandContext)
            return this.protocolError('command fragments on different presentation contexts');
          if (!this.association.context(pdv.contextId))
            return this.protocolError(`PDV on presentation context ${pdv.contextId}, which was not accepted`);
          commandContext = pdv.contextId;
          commandParts.push(pdv.data);
          commandSize += pdv.data.length;
          if (commandSize > 64 * 1024) return this.protocolError('command set larger than 64 KiB');
          if (!pdv.isLast) continue;
          let command: DimseCommand;
          try {
            command = decodeCommand(
              commandParts.length === 1 ? (commandParts[0] as Uint8Array) : Buffer.concat(commandParts),
            );
          } catch (e) {
            return this.protocolError(`malformed command set: ${(e as Error).message}`);
          }
          commandParts = [];
          commandSize = 0;
          const msg: InboundMessage = { contextId: pdv.contextId, command, size: 0 };
          if (!command.hasDataSet) {
            this.deliver(msg, undefined);
            if (this.handlers.size >= MAX_REQUESTS_IN_FLIGHT) await this.roomForRequests();
            continue;
          }
          if (command.commandField === CommandField.C_STORE_RQ) {
            msg.channel = new ByteChannel();
            this.receiving = msg.channel;
            this.deliver(msg, undefined);
          } else msg.chunks = [];
          current = msg;
          continue;
        }
        // A data set fragment.
        if (!current) return this.protocolError('data set fragment without a command');
        if (pdv.contextId !== current.contextId)
          return this.protocolError('data set fragment on another presentation context than its command');
        current.size += pdv.data.length;
        if (current.channel) {
          if (pdv.data.length > 0) await current.channel.push(pdv.data);
          if (pdv.isLast) {
            current.channel.end();
            this.receiving = undefined;
          }
        } else if (current.chunks) {
          if (current.size > MAX_COLLECTED_DATA_SET)
            return this.protocolError('data set larger than the limit for its kind');
          current.chunks.push(pdv.data);
          // A data set in one PDV (the usual identifier) is used as the view it is, not copied.
          if (pdv.isLast)
            this.deliver(
              current,
              current.chunks.length === 1 ? (current.chunks[0] as Uint8Array) : Buffer.concat(current.chunks),
            );
        }
        if (pdv.isLast) {
          current = undefined;
          if (this.handlers.size >= MAX_REQUESTS_IN_FLIGHT) await this.roomForRequests();
        }
      }
    } catch (e) {
      this.closedError = e as Error;
      current?.channel?.fail(e as Error);
    } finally {
      // Made only when someone is left to tell: an Error's stack trace costs more than a C-ECHO.
      if (current?.channel || this.waiting.size > 0 || this.active.size > 0) {
        const error = this.closedError ?? new PacsError('ERR_ASSOCIATION_CLOSED', 'the association ended');
        current?.channel?.fail(error);
        for (const q of this.waiting.values()) q.fail(error);
        this.waiting.clear();
        for (const c of this.active.values()) c.cancel(error);
      }
      if (this.handlers.size > 0) await Promise.allSettled([...this.handlers]);
    }
  }

  /** Flow control: waits while too many requests are in flight (see MAX_REQUESTS_IN_FLIGHT). */
  private async roomForRequests(): Promise<void> {
    while (this.handlers.size >= MAX_REQUESTS_IN_FLIGHT && this.association.canSend) {
      await new Promise<void>((resolve) => {
        this.wakeReadLoop = resolve;
      });
      this.wakeReadLoop = undefined;
    }
  }

  private protocolError(message: string): void {
    this.log.warn({ peer: this.association.callingAeTitle }, `DIMSE protocol error, aborting: ${message}`);
    this.closedError = new PacsError('ERR_DIMSE_PROTOCOL', message);
    this.association.abort(AbortSource.ServiceProvider, AbortReason.UnexpectedPdu, message);
  }

  /** A complete inbound message: a response for a waiter, a C-CANCEL, or a request for a handler. */
  private deliver(msg: InboundMessage, data: Uint8Array | undefined): void {
    const { command } = msg;
    if (isResponse(command.commandField)) {
      const id = command.messageIdBeingRespondedTo ?? -1;
      const queue = this.waiting.get(id);
      if (!queue) {
        this.log.warn(
          { messageId: id },
          `unexpected ${commandName(command.commandField)} for no outstanding request: ignored`,
        );
        return;
      }
      let dataSet: DataSet | undefined;
      if (data) {
        try {
          dataSet = this.parse(msg.contextId, data);
        } catch (e) {
          queue.fail(e as Error);
          return;
        }
      }
      queue.put({ command, dataSet });
      return;
    }
    if (command.commandField === CommandField.C_CANCEL_RQ) {
      const id = command.messageIdBeingRespondedTo ?? -1;
      this.active.get(id)?.cancel(new PacsError('ERR_CANCELLED', 'C-CANCEL received'));
      return;
    }
    this.stats.requestsReceived++;
    const running = this.handle(msg, data).catch((e: unknown) => {
      this.log.error({ err: e }, 'DIMSE dispatch failed');
    });
    this.handlers.add(running);
    void running.then(() => {
      this.handlers.delete(running);
      this.wakeReadLoop?.();
    });
  }

  private parse(contextId: number, data: Uint8Array): DataSet {
    const ts = this.association.context(contextId)?.transferSyntax ?? '';
    return parseDicom(data, { format: 'dataset', transferSyntax: ts }).dataSet;
  }

  /** Runs the handler for a request and sends its response(s). */
  private async handle(msg: InboundMessage, data: Uint8Array | undefined): Promise<void> {
    const { command, contextId } = msg;
    const pc = this.association.context(contextId);
    const name = REQUEST_NAMES[command.commandField];
    const messageId = command.messageId ?? 0;
    const events = this.events?.active ? this.events : undefined;
    const respond =
      events === undefined
        ? (r: DimseResponse) => this.sendResponse(contextId, command, r)
        : this.reportingResponder(events, msg, name ?? commandName(command.commandField), pc?.abstractSyntax);
    /** A refusal: answered once the request's data set (if any) has arrived, and dropped. */
    const refuse = async (status: number, errorComment: string): Promise<void> => {
      msg.channel?.abandon();
      await msg.channel?.finished;
      return respond({ status, errorComment });
    };
    if (!pc || name === undefined)
      return refuse(Status.UnrecognizedOperation, `${commandName(command.commandField)} is not supported`);
    // dcm4che's mapping: a SOP class we do not serve is 0x0122 for C- services and 0x0118 for N-
    // services (PS3.7 C.5.x, 10.1.x); a command the service does not handle is 0x0211.
    const noSuchClass = name.startsWith('N-') ? Status.NoSuchSopClass : Status.SopClassNotSupported;
    const service = this.services?.serviceFor(pc.abstractSyntax);
    if (!service) return refuse(noSuchClass, `SOP Class ${pc.abstractSyntax} is not served`);
    const handler = service.handlers[name];
    if (!handler || !pc.scp)
      return refuse(Status.UnrecognizedOperation, `${name} is not served for this SOP class`);
    // The SOP class of the request must be the context's abstract syntax (PS3.7 9.1.1.1).
    const sopClass = command.affectedSopClassUid ?? command.requestedSopClassUid;
    if (sopClass !== undefined && sopClass !== pc.abstractSyntax && name !== 'C-ECHO')
      return refuse(noSuchClass, 'SOP Class UID of the command differs from the presentation context');
    if (this.authorize !== undefined) {
      const assoc = this.association;
      const refusal = this.authorize({
        command: name,
        abstractSyntax: pc.abstractSyntax,
        moveDestination: command.moveDestination,
        identity: assoc.identity,
        peerAeTitle: assoc.role === 'acceptor' ? assoc.callingAeTitle : assoc.calledAeTitle,
        remoteAddress: assoc.remoteAddress,
      });
      if (refusal !== undefined) return refuse(refusal.status, refusal.errorComment);
    }
    const state = new RequestState();
    this.active.set(messageId, state);
    const ctx = new HandlerContext(this, pc, command, state, this.log, this.events);
    try {
      if (name === 'C-STORE') {
        const store = handler as NonNullable<DimseHandlers['C-STORE']>;
        const channel = msg.channel ?? new ByteChannel();
        if (!msg.channel) channel.end();
        const response = await this.guard(name, () => store(ctx, channel));
        // A handler may answer without reading everything (or throw): what is left is dropped,
        // and the response follows the whole request, as the peer expects.
        channel.abandon();
        await channel.finished;
        await respond(response);
        return;
      }
      let dataSet: DataSet | undefined;
      if (data) {
        try {
          dataSet = this.parse(contextId, data);
        } catch (e) {
          const comment = e instanceof DicomParseError ? e.message : 'data set does not parse';
          return respond({
            status: name.startsWith('N-') ? Status.ProcessingFailure : Status.CannotUnderstand,
            errorComment: comment,
          });
        }
      }
      if (name === 'C-FIND' || name === 'C-GET' || name === 'C-MOVE') {
        const multi = handler as NonNullable<DimseHandlers['C-FIND']>;
        await this.runMulti(state, respond, () => multi(ctx, dataSet ?? new DataSet()));
        return;
      }
      const single = handler as NonNullable<DimseHandlers['C-ECHO']>;
      // No await for a handler that answers synchronously (C-ECHO): each await costs a turn.
      let response: DimseResponse | Promise<DimseResponse>;
      try {
        response = single(ctx, dataSet);
        if (response instanceof Promise) response = await response;
      } catch (e) {
        response = this.failure(name, e);
      }
      await respond(response);
    } finally {
      this.active.delete(messageId);
    }
  }

  /** sendResponse, and once the final response is sent the 'request' event (core/events.ts). */
  private reportingResponder(
    events: EventBus,
    msg: InboundMessage,
    name: string,
    abstractSyntax: string | undefined,
  ): (r: DimseResponse) => Promise<void> {
    const started = performance.now();
    const { command, contextId } = msg;
    return async (r) => {
      await this.sendResponse(contextId, command, r);
      if (statusCategory(r.status) === 'pending') return;
      const assoc = this.association;
      const acceptor = assoc.role === 'acceptor';
      events.emit({
        type: 'request',
        command: name,
        sopClassUid: command.affectedSopClassUid ?? command.requestedSopClassUid ?? abstractSyntax ?? '',
        status: r.status,
        durationMs: performance.now() - started,
        peerAeTitle: acceptor ? assoc.callingAeTitle : assoc.calledAeTitle,
        remoteAddress: assoc.remoteAddress,
      });
    };
  }

  /** Runs a handler; an exception becomes a failure status (Processing failure) and a log line. */
  private async guard(name: string, fn: () => Promise<DimseResponse>): Promise<DimseResponse> {
    try {
      return await fn();
    } catch (e) {
      return this.failure(name, e);
    }
  }

  private failure(name: string, e: unknown): DimseResponse {
    if (e instanceof ServiceError) {
      this.log.warn({ op: name, status: e.status, err: e.message }, `${name} failed`);
      return e.response();
    }
    this.log.error({ err: e, op: name }, `${name} handler failed`);
    return {
      status: Status.ProcessingFailure,
      errorComment: `${name} failed: ${(e as Error)?.message ?? String(e)}`,
    };
  }

  /** Streams a multi-response handler's responses; checks for C-CANCEL between them. */
  private async runMulti(
    state: RequestState,
    respond: (r: DimseResponse) => Promise<void>,
    start: () => AsyncIterable<DimseResponse>,
  ): Promise<void> {
    let iterator: AsyncIterator<DimseResponse> | undefined;
    let final: DimseResponse | undefined;
    try {
      iterator = start()[Symbol.asyncIterator]();
      for (;;) {
        if (state.cancelled) {
          await iterator.return?.();
          final = { status: Status.Cancel };
          break;
        }
        const next = await iterator.next();
        if (next.done) break;
        const r = next.value;
        if (statusCategory(r.status) === 'pending') {
          if (state.cancelled) continue;
          await respond(r);
          continue;
        }
        final = r;
        await iterator.return?.();
        break;
      }
    } catch (e) {
      if (e instanceof ServiceError) {
        this.log.warn({ status: e.status, err: e.message }, 'multi-response request failed');
        final = e.response();
      } else {
        this.log.error({ err: e }, 'multi-response handler failed');
        final = {
          status: Status.ProcessingFailure,
          errorComment: `failed: ${(e as Error)?.message ?? String(e)}`,
        };
      }
    }
    await respond(final ?? { status: Status.Success });
  }

  private async sendResponse(contextId: number, request: DimseCommand, r: DimseResponse): Promise<void> {
    if (statusCategory(r.status) === 'failure') this.stats.failures++;
    const pc = this.association.context(contextId);
    const responseField = request.commandField | 0x8000;
    const isN = request.commandField >= 0x0100 && request.commandField <= 0x0150;
    // Built flat (absent fields are undefined, which the encoder skips): this runs for every response.
    const command: DimseCommand = {
      commandField: responseField,
      messageIdBeingRespondedTo: request.messageId ?? 0,
      affectedSopClassUid: request.affectedSopClassUid ?? request.requestedSopClassUid ?? pc?.abstractSyntax,
      hasDataSet: r.dataSet !== undefined,
      status: r.status,
      affectedSopInstanceUid:
        r.affectedSopInstanceUid ??
        request.affectedSopInstanceUid ??
        (isN ? request.requestedSopInstanceUid : undefined),
      errorComment: r.errorComment,
      errorId: r.errorId,
      offendingElements: r.offendingElements,
      remainingSubOperations: r.remainingSubOperations,
      completedSubOperations: r.completedSubOperations,
      failedSubOperations: r.failedSubOperations,
      warningSubOperations: r.warningSubOperations,
      // PS3.7 10.3.1 and 10.3.4: the Event Type ID and Action Type ID of the response equal the request's.
      eventTypeId: request.commandField === CommandField.N_EVENT_REPORT_RQ ? request.eventTypeId : undefined,
      actionTypeId: request.commandField === CommandField.N_ACTION_RQ ? request.actionTypeId : undefined,
    };
    if (!this.association.canSend) return;
    await this.sendMessage(contextId, command, r.dataSet);
  }

  // --- sending -------------------------------------------------------------------------------

  /**
   * Sends one message: the command, then its data set cut into PDVs within the peer's maximum
   * length. Messages never interleave (one sender at a time).
   */
  sendMessage(contextId: number, command: DimseCommand, data?: OutgoingData): Promise<void> {
    return this.send(contextId, command, data, command.messageId);
  }

  /** sendMessage, with the message ID given apart (a request's command is not copied to add it). */
  private send(
    contextId: number,
    command: DimseCommand,
    data: OutgoingData | undefined,
    messageId: number | undefined,
  ): Promise<void> {
    const run = async (): Promise<void> => {
      try {
        // After an abort, messages queued behind a blocked one fail at once rather than wait for the socket.
        if (!this.association.canSend)
          throw this.closedError ?? new PacsError('ERR_ASSOCIATION_CLOSED', 'the association is over');
        const writer = this.writer();
        // The command rides in the P-DATA-TF of the data set's first PDV (pdata-writer.ts).
        await writer.holdCommand(contextId, encodeCommand(command, messageId));
        if (data === undefined) {
          await writer.sendHeld();
          return;
        }
        if (data instanceof DataSet) {
          const ts = this.association.context(contextId)?.transferSyntax ?? '';
          await writer.writeAll(contextId, false, encodeDataSet(data, ts));
        } else if (data instanceof Uint8Array) await writer.writeAll(contextId, false, data);
        else {
          // A byte stream (a file being read): cut into PDVs as it is read.
          writer.begin(contextId, false);
          for await (const chunk of data) await writer.write(chunk);
          await writer.end();
        }
      } catch (e) {
        // A message given up part-way (a file that fails, an abort) leaves nothing for the next one.
        this.pdataWriter?.discard();
        throw e;
      } finally {
        this.queuedSends--;
      }
    };
    // Nothing being sent: start at once (the usual case, one microtask less per message).
    const next = this.queuedSends++ === 0 ? run() : this.sendChain.then(run, run);
    this.sendChain = next.catch(() => undefined);
    return next;
  }

  /** The association's one P-DATA writer (messages never interleave), made on the first send. */
  private writer(): PDataWriter {
    this.pdataWriter ??= new PDataWriter((pdvs) => this.sendPdv(pdvs), this.association.maxPdvDataLength);
    return this.pdataWriter;
  }

  /**
   * One P-DATA-TF. It waits while the socket is congested; a peer that reads nothing for the DIMSE
   * timeout gets the association aborted, so a peer that stops reading cannot hold it for ever.
   */
  private sendPdv(pdvs: readonly OutgoingPdv[]): Promise<void> {
    // Not congested, the P-DATA-TF is written before sendPData returns: no timer to arm.
    const waits = this.association.congested;
    const sending = this.association.sendPData(pdvs);
    const ms = this.dimseMs;
    if (ms === undefined || !waits) return sending;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const detail = `the peer read nothing for ${ms} ms (DIMSE timeout)`;
        this.log.warn({ peer: this.association.callingAeTitle }, `${detail}: aborting`);
        this.association.abort(AbortSource.ServiceUser, AbortReason.NotSpecified, detail);
        reject(new PacsError('ERR_DIMSE_TIMEOUT', detail));
      }, ms);
      sending.then(
        () => {
          clearTimeout(timer);
          resolve();
        },
        (e: unknown) => {
          clearTimeout(timer);
          reject(e);
        },
      );
    });
  }

  /**
   * Sends a request and yields its responses until the final one (pending responses of C-FIND,
   * C-GET and C-MOVE included). Throws when the association ends first or no response comes in time.
   * Aborting `options.signal` sends C-CANCEL-RQ for a C-FIND, C-GET or C-MOVE (PS3.7 9.3.2.3,
   * 9.3.3.3, 9.3.4.3) and the responses go on to the final one (normally Cancel, 0xFE00). Leaving
   * the loop before the final response does the same: C-CANCEL, then the remaining responses are
   * read and dropped, so the association stays usable.
   */
  async *request(
    contextId: number,
    command: Omit<DimseCommand, 'messageId'>,
    data?: OutgoingData,
    options: RequestOptions = {},
  ): AsyncGenerator<ResponseMessage, void, undefined> {
    const [messageId, queue] = this.openRequest();
    const cancellable = CANCELLABLE.has(command.commandField);
    const signal = cancellable ? options.signal : undefined;
    let cancelSent = false;
    const cancel = (): void => {
      if (cancelSent || !this.canSend) return;
      cancelSent = true;
      this.cancel(contextId, messageId).catch(() => undefined);
    };
    /** Suspended at a pending response: a return() now is the consumer leaving early. */
    let atPending = false;
    try {
      await this.send(contextId, command as DimseCommand, data, messageId);
      if (signal?.aborted) cancel();
      signal?.addEventListener('abort', cancel);
      for (;;) {
        const response = await queue.take(this.responseTimeoutMs);
        if (statusCategory(response.command.status ?? 0) !== 'pending') {
          yield response;
          return;
        }
        atPending = true;
        yield response;
        atPending = false;
      }
    } finally {
      signal?.removeEventListener('abort', cancel);
      // The consumer left early (break, or its own exception): cancel and read to the final response.
      if (atPending && cancellable && this.canSend) {
        cancel();
        try {
          while (
            statusCategory((await queue.take(this.responseTimeoutMs)).command.status ?? 0) === 'pending'
          );
        } catch {
          // The association ended or timed out first: nothing left to read.
        }
      }
      this.waiting.delete(messageId);
    }
  }

  /**
   * Sends a request with one response (C-ECHO, C-STORE, N-*); pending responses, if any, are
   * skipped. The same as the last response of request(), without an async generator per call.
   */
  async requestOne(
    contextId: number,
    command: Omit<DimseCommand, 'messageId'>,
    data?: OutgoingData,
  ): Promise<ResponseMessage> {
    const [messageId, queue] = this.openRequest();
    try {
      await this.send(contextId, command as DimseCommand, data, messageId);
      for (;;) {
        const response = await queue.take(this.responseTimeoutMs);
        if (statusCategory(response.command.status ?? 0) !== 'pending') return response;
      }
    } finally {
      this.waiting.delete(messageId);
    }
  }

  /** A new message ID and the queue its responses will arrive in. */
  private openRequest(): [number, ResponseQueue] {
    this.run();
    if (this.closedError) throw this.closedError;
    const messageId = this.allocateMessageId();
    const queue = new ResponseQueue();
    this.waiting.set(messageId, queue);
    this.stats.requestsSent++;
    return [messageId, queue];
  }

  /** C-CANCEL-RQ for a request we sent (PS3.7 9.3.2.3). */
  cancel(contextId: number, messageId: number): Promise<void> {
    return this.sendMessage(contextId, {
      commandField: CommandField.C_CANCEL_RQ,
      messageIdBeingRespondedTo: messageId,
      hasDataSet: false,
    });
  }

  /** The message ID of the last request sent (for C-CANCEL). */
  get lastMessageId(): number {
    return this.nextMessageId - 1;
  }

  private allocateMessageId(): number {
    const id = this.nextMessageId;
    this.nextMessageId = id >= 0xffff ? 1 : id + 1;
    return id;
  }

  /** Releases the association once our sends are done; resolves when released. */
  async release(): Promise<void> {
    await this.sendChain;
    await this.association.release();
    await this.run();
  }

  abort(): void {
    this.association.abort();
  }
}
