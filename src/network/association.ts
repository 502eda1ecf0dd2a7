/**
 * The Upper Layer adapter: drives the PS3.8 state machine (association-fsm.ts) over a socket, and
 * the typed API the DIMSE layer uses on an established association. The acceptor
 * (AssociationAcceptor) and the requestor (requestAssociation) hand out an Association only once
 * negotiation succeeded.
 *
 * Memory per association is bounded: received PDVs queue up to `receiveHighWaterMark` bytes, then
 * the socket is paused until the consumer catches up; the reader holds at most one PDU plus one chunk.
 * Sends wait for 'drain'. PDV values are views into socket chunks and caller buffers, never copied.
 */
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { Writable } from 'node:stream';
import { err, ok, type Result } from '../core/result.js';
import {
  AssociationFsm,
  eventForPdu,
  type FsmEvent,
  type FsmOutput,
  type Indication,
  type State,
  type Transition,
} from './association-fsm.js';
import { type AbortInfo, NetworkError } from './errors.js';
import { type NetworkLogger, silentLogger } from './logger.js';
import {
  type AcceptedPresentationContext,
  acceptedContextsForRequestor,
  DEFAULT_MAX_PDU_LENGTH,
  describeAbort,
  describeReject,
  IMPLEMENTATION_CLASS_UID,
  IMPLEMENTATION_VERSION_NAME,
  type NegotiationOutcome,
  type NegotiationPolicy,
  negotiateAsAcceptor,
} from './negotiation.js';
import {
  AbortReason,
  AbortSource,
  type AssociateAcPdu,
  type AssociateRjPdu,
  type AssociateRqPdu,
  DICOM_APPLICATION_CONTEXT,
  describePdu,
  encodePDataTfChunks,
  encodePdu,
  type OutgoingPdv,
  PDU_HEADER_LENGTH,
  PDV_HEADER_LENGTH,
  type Pdv,
  pDataTfLength,
  type RoleSelection,
  type SopClassCommonExtendedNegotiation,
  type SopClassExtendedNegotiation,
  type UserIdentityRq,
} from './pdu.js';
import { DEFAULT_MAX_ASSOCIATE_LENGTH, PduReader } from './pdu-reader.js';
import {
  createTransportServer,
  openTransport,
  type TlsClientOptions,
  type TlsServerOptions,
} from './transport.js';

export interface AssociationTimeouts {
  /** TCP/TLS connection set-up, requestor side. Default 30 s. */
  readonly connectMs?: number;
  /** ARTIM (PS3.8 9.1.5), and the wait for A-ASSOCIATE-AC/RJ or A-RELEASE-RP. Default 30 s. */
  readonly acseMs?: number;
  /** Longest wait for the next PDV while a consumer is waiting for one. Default: none. */
  readonly dimseMs?: number;
  /** No PDU either way for this long on an established association: abort. Default: none. */
  readonly idleMs?: number;
}

export interface UpperLayerOptions {
  readonly timeouts?: AssociationTimeouts;
  readonly logger?: NetworkLogger;
  /** Bytes of received PDVs queued for a slow consumer before the socket is paused. Default 1 MiB. */
  readonly receiveHighWaterMark?: number;
  /** Largest P-DATA-TF variable field we send; a smaller peer maximum wins, 0 (no limit) uses this. Default 256 KiB. */
  readonly maxSendPduLength?: number;
  /**
   * Bytes over our advertised maximum length still accepted in a P-DATA-TF. Default 6: tolerates
   * peers that fill the maximum length with PDV data and forget the 6-byte PDV item header.
   */
  readonly pduLengthSlack?: number;
  /** Largest A-ASSOCIATE-RQ/AC accepted. Default 1 MiB. */
  readonly maxAssociatePduLength?: number;
}

export type CloseInfo =
  | { readonly kind: 'released' }
  | { readonly kind: 'aborted'; readonly abort: AbortInfo };

export interface AssociationEventMap {
  /** The association was released (either side asked; A-RELEASE-RP sent or received). */
  released: [];
  /** The association was aborted: by us, by the peer, or by the provider (protocol error, transport). */
  aborted: [AbortInfo];
  /** The transport is closed and the state machine is idle: nothing more will happen. */
  closed: [CloseInfo];
}

const DEFAULT_ACSE_MS = 30_000;
const DEFAULT_HIGH_WATER_MARK = 1024 * 1024;
const DEFAULT_MAX_SEND_PDU = 256 * 1024;
const DEFAULT_SLACK = 6;
/** After we close our side, the peer gets this long to close its side before the socket is destroyed. */
const CLOSE_GRACE_MS = 2000;

type Outcome = { kind: 'established' } | { kind: 'failed'; error: NetworkError };

/**
 * One transport connection and its state machine. Internal: the public face is Association,
 * created once the association is established.
 */
class UpperLayer {
  readonly fsm: AssociationFsm;
  readonly log: NetworkLogger;
  socket: net.Socket | undefined;
  private readonly reader: PduReader;
  private readonly events: FsmEvent[] = [];
  private dispatching = false;
  private readonly timeouts: AssociationTimeouts;
  private artimTimer: NodeJS.Timeout | undefined;
  private acseTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private dimseTimer: NodeJS.Timeout | undefined;
  dimseTimeoutMs: number | undefined;

  // Receive side.
  private readonly received: Pdv[] = [];
  private receivedHead = 0;
  private queuedBytes = 0;
  private readonly highWaterMark: number;
  private paused = false;
  private pumping = false;
  private readerFailed = false;
  private waiter: { resolve: (r: IteratorResult<Pdv>) => void; reject: (e: Error) => void } | undefined;
  consumerAttached = false;
  /** The peer asked for release (Sta8); answered when the consumer has read everything. */
  private releaseRequested = false;
  private receiveEnd: { kind: 'done' } | { kind: 'error'; error: NetworkError } | undefined;

  // Send side.
  private congested = false;
  private drainWaiters: Array<() => void> = [];
  private pendingSenders = 0;

  // Lifecycle.
  rq: AssociateRqPdu | undefined;
  ac: AssociateAcPdu | undefined;
  contexts: readonly AcceptedPresentationContext[] = [];
  private end: CloseInfo | undefined;
  private connectError: NetworkError | undefined;
  private rejected: AssociateRjPdu | undefined;
  private established = false;
  private finalized = false;
  private releaseWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  readonly closed: Promise<CloseInfo>;
  private resolveClosed: (info: CloseInfo) => void = () => {};
  readonly emitter = new EventEmitter<AssociationEventMap>();

  /** Set by the requestor: opens the transport for AE-1. */
  connectTransport: (() => Promise<Result<net.Socket, NetworkError>>) | undefined;
  /** Set by the acceptor: the answer to an A-ASSOCIATE-RQ. */
  negotiate: ((rq: AssociateRqPdu) => NegotiationOutcome) | undefined;
  /** Called once: established, or failed before establishment. */
  onOutcome: (outcome: Outcome) => void = () => {};
  private pendingOutcome: NegotiationOutcome | undefined;
  /** The first error the socket reported, to say why the transport closed. */
  private transportError: string | undefined;
  /** The last PDU error, to say why we aborted. */
  private lastError: string | undefined;
  /** The consumer asked for a PDV after the peer's A-RELEASE-RQ: it has read everything. */
  private consumerReachedEnd = false;

  constructor(
    isRequestor: boolean,
    readonly ourMaxPduLength: number,
    readonly options: UpperLayerOptions,
  ) {
    this.fsm = new AssociationFsm(isRequestor);
    this.log = options.logger ?? silentLogger;
    this.timeouts = options.timeouts ?? {};
    this.dimseTimeoutMs = this.timeouts.dimseMs;
    this.highWaterMark = options.receiveHighWaterMark ?? DEFAULT_HIGH_WATER_MARK;
    this.reader = new PduReader({
      // PS3.8 D.1: a maximum length of 0 means no limit.
      maxPDataLength:
        ourMaxPduLength === 0 ? 0xffffffff : ourMaxPduLength + (options.pduLengthSlack ?? DEFAULT_SLACK),
      maxAssociateLength: options.maxAssociatePduLength ?? DEFAULT_MAX_ASSOCIATE_LENGTH,
    });
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
  }

  get state(): State {
    return this.fsm.state;
  }

  attach(socket: net.Socket): void {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      if (this.readerFailed) return;
      this.reader.push(chunk);
      this.pump();
    });
    socket.on('error', (e) => {
      // The close that follows says only "transport connection closed": keep why (a TLS alert...).
      this.transportError ??= e.message;
      this.log.debug({ err: e.message }, 'transport error');
    });
    socket.on('close', () => {
      this.socket = undefined;
      this.wakeSenders();
      if (this.fsm.state !== 'Sta1') this.dispatch({ name: 'Evt17' });
    });
    socket.on('drain', () => this.wakeSenders());
  }

  // ------------------------------------------------------------------------------------------
  // Events in

  /** Decodes buffered PDUs into events until the consumer is too far behind. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.paused && !this.readerFailed && this.fsm.state !== 'Sta1') {
        let pdu: ReturnType<PduReader['next']>;
        try {
          pdu = this.reader.next();
        } catch (e) {
          this.readerFailed = true;
          const error = e instanceof NetworkError ? e : new NetworkError('ERR_PDU_INVALID', String(e));
          this.log.warn({ code: error.code, err: error.message }, 'invalid PDU received');
          this.lastError = error.message;
          this.dispatch({ name: 'Evt19', error });
          return;
        }
        if (pdu === null) return;
        this.touchIdle();
        if (pdu.type !== 'P-DATA-TF') this.log.debug({ pdu: describePdu(pdu) }, 'PDU received');
        if (pdu.type === 'A-ASSOCIATE-RQ' && this.fsm.state === 'Sta2' && this.negotiate !== undefined) {
          this.rq = pdu;
          let outcome: NegotiationOutcome;
          try {
            outcome = this.negotiate(pdu);
          } catch (error) {
            this.log.error(
              { err: error instanceof Error ? error.stack : String(error) },
              'negotiation failed: rejecting',
            );
            const rj: AssociateRjPdu = { type: 'A-ASSOCIATE-RJ', result: 1, source: 1, reason: 1 };
            outcome = { kind: 'reject', rj, by: 'user', why: `internal error: ${String(error)}` };
          }
          this.pendingOutcome = outcome;
          const providerReject =
            outcome.kind === 'reject' && outcome.by === 'provider' ? outcome.rj : undefined;
          this.dispatch(
            providerReject === undefined ? { name: 'Evt6', pdu } : { name: 'Evt6', pdu, providerReject },
          );
        } else {
          this.dispatch(eventForPdu(pdu));
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  /** Applies events one at a time; events raised while applying one are queued behind it. */
  dispatch(event: FsmEvent): void {
    this.events.push(event);
    if (this.dispatching) return;
    this.dispatching = true;
    try {
      for (let e = this.events.shift(); e !== undefined; e = this.events.shift()) {
        const t = this.fsm.handle(e);
        if (t.event !== 'Evt9' && t.event !== 'Evt10') {
          this.log.debug(
            { event: t.event, from: t.from, action: t.action, to: t.next.state },
            'upper layer transition',
          );
        }
        if (!t.inTable)
          this.log.warn({ event: t.event, state: t.from }, 'event not valid in this state: aborting');
        try {
          for (const output of t.outputs) this.perform(output, t);
          this.afterTransition(t);
        } catch (error) {
          // A bug (ours, a policy hook's, a listener's) ends this association only (ARCHITECTURE.md).
          this.log.error(
            { err: error instanceof Error ? error.stack : String(error) },
            'internal error: aborting association',
          );
          this.abortLocally(
            AbortSource.ServiceProvider,
            AbortReason.NotSpecified,
            `internal error: ${String(error)}`,
          );
        }
      }
    } finally {
      this.dispatching = false;
    }
  }

  private perform(output: FsmOutput, t: Transition): void {
    switch (output.kind) {
      case 'transport-connect':
        this.openTransport();
        return;
      case 'send':
        this.log.debug({ pdu: describePdu(output.pdu) }, 'PDU sent');
        this.write([encodePdu(output.pdu)]);
        // AA-8 says why in the A-P-ABORT indication that follows; AA-1 for Evt15 was recorded by abortLocally.
        if (output.pdu.type === 'A-ABORT' && t.action !== 'AA-8' && t.event !== 'Evt15') {
          this.setEnd({
            kind: 'aborted',
            abort: {
              initiator: 'provider',
              source: output.pdu.source,
              reason: output.pdu.reason,
              detail: this.lastError ?? `${t.event} in ${t.from}`,
            },
          });
        }
        if (output.pdu.type === 'A-RELEASE-RP') this.setEnd({ kind: 'released' });
        return;
      case 'send-pdata':
        this.write(encodePDataTfChunks(output.pdvs));
        return;
      case 'artim-start':
        clearTimeout(this.artimTimer);
        this.artimTimer = setTimeout(() => {
          this.artimTimer = undefined;
          this.dispatch({ name: 'Evt18' });
        }, this.timeouts.acseMs ?? DEFAULT_ACSE_MS);
        return;
      case 'artim-stop':
        clearTimeout(this.artimTimer);
        this.artimTimer = undefined;
        return;
      case 'transport-close':
        this.closeTransport();
        return;
      case 'indicate':
        this.indicate(output.indication);
        return;
    }
  }

  private openTransport(): void {
    const connect = this.connectTransport;
    if (connect === undefined) return;
    void connect().then((result) => {
      if (!result.ok) {
        this.connectError = result.error;
        if (this.fsm.state === 'Sta4') this.dispatch({ name: 'Evt17' });
        return;
      }
      if (this.fsm.state !== 'Sta4') {
        // Aborted while connecting (AA-2 closed nothing yet): drop the late connection.
        result.value.destroy();
        return;
      }
      this.attach(result.value);
      this.dispatch({ name: 'Evt2' });
    });
  }

  private indicate(ind: Indication): void {
    switch (ind.type) {
      case 'A-ASSOCIATE-indication': {
        const outcome = this.pendingOutcome;
        this.pendingOutcome = undefined;
        if (outcome?.kind === 'accept') {
          this.ac = outcome.ac;
          this.contexts = outcome.contexts;
          this.dispatch({ name: 'Evt7', ac: outcome.ac });
        } else {
          const rj: AssociateRjPdu = outcome?.rj ?? {
            type: 'A-ASSOCIATE-RJ',
            result: 1,
            source: 1,
            reason: 1,
          };
          this.rejected = rj;
          if (outcome !== undefined)
            this.log.info({ why: outcome.why, reject: describeReject(rj) }, 'association rejected');
          this.dispatch({ name: 'Evt8', rj });
        }
        return;
      }
      case 'A-ASSOCIATE-confirm-accept':
        if (this.rq !== undefined) {
          this.ac = ind.ac;
          this.contexts = acceptedContextsForRequestor(this.rq, ind.ac);
        }
        return;
      case 'A-ASSOCIATE-confirm-reject':
        this.rejected = ind.rj;
        return;
      case 'P-DATA-indication':
        for (const pdv of ind.pdu.pdvs) this.deliver(pdv);
        return;
      case 'A-RELEASE-indication':
        if (ind.collision) {
          // We asked for release too; answer at once (PS3.8 9.2.3 release collision).
          if (this.fsm.state === 'Sta9') this.dispatch({ name: 'Evt14' });
        } else {
          this.releaseRequested = true;
          this.maybeAnswerRelease();
        }
        return;
      case 'A-RELEASE-confirm':
        this.setEnd({ kind: 'released' });
        if (this.fsm.state === 'Sta12') this.dispatch({ name: 'Evt14' });
        return;
      case 'A-ABORT-indication':
        this.setEnd({
          kind: 'aborted',
          abort: {
            initiator: 'peer',
            source: ind.source,
            reason: ind.reason,
            detail: 'A-ABORT from the peer',
          },
        });
        return;
      case 'A-P-ABORT-indication': {
        const transport = this.transportError === undefined ? '' : ` (${this.transportError})`;
        const detail = this.connectError?.message ?? `${ind.detail}${transport}`;
        const initiator = ind.origin === 'peer' ? 'peer' : 'provider';
        this.setEnd({
          kind: 'aborted',
          abort: { initiator, source: ind.source, reason: ind.reason, detail },
        });
        return;
      }
    }
  }

  private afterTransition(t: Transition): void {
    const state = t.next.state;
    if (state === 'Sta6' && !this.established) {
      this.established = true;
      this.touchIdle();
      this.onOutcome({ kind: 'established' });
    }
    // ACSE timer: waiting for the peer's answer to our A-ASSOCIATE-RQ or A-RELEASE-RQ.
    const awaitingPeer = state === 'Sta5' || state === 'Sta7' || state === 'Sta10' || state === 'Sta11';
    if (awaitingPeer && this.acseTimer === undefined) {
      this.acseTimer = setTimeout(() => {
        this.acseTimer = undefined;
        this.abortLocally(AbortSource.ServiceUser, AbortReason.NotSpecified, 'ACSE timeout', 'ERR_TIMEOUT');
      }, this.timeouts.acseMs ?? DEFAULT_ACSE_MS);
    } else if (!awaitingPeer && this.acseTimer !== undefined) {
      clearTimeout(this.acseTimer);
      this.acseTimer = undefined;
    }
    if (state === 'Sta1') this.finalize();
  }

  // ------------------------------------------------------------------------------------------
  // Local primitives

  /** A-ABORT request (Evt15) from us; `detail` says why (a timer, the user...). */
  abortLocally(
    source: number,
    reason: number,
    detail: string,
    code: 'ERR_ASSOCIATION_ABORTED' | 'ERR_TIMEOUT' = 'ERR_ASSOCIATION_ABORTED',
  ): void {
    const state = this.fsm.state;
    if (state === 'Sta1' || state === 'Sta13') return;
    const abort: AbortInfo = { initiator: 'local', source, reason, detail };
    this.setEnd({ kind: 'aborted', abort }, code);
    if (state === 'Sta2') {
      // Evt15 has no cell in Sta2 (no association yet): just drop the connection (AA-5 follows).
      this.socket?.destroy();
      return;
    }
    this.dispatch({ name: 'Evt15', source, reason });
  }

  release(): Promise<void> {
    if (this.fsm.state !== 'Sta6') {
      return Promise.reject(new NetworkError('ERR_ASSOCIATION_STATE', `cannot release in ${this.fsm.state}`));
    }
    const done = new Promise<void>((resolve, reject) => this.releaseWaiters.push({ resolve, reject }));
    this.dispatch({ name: 'Evt11' });
    return done;
  }

  async sendPData(pdvs: readonly OutgoingPdv[], peerMaxPduLength: number): Promise<void> {
    if (peerMaxPduLength > 0 && pDataTfLength(pdvs) - PDU_HEADER_LENGTH > peerMaxPduLength) {
      throw new NetworkError(
        'ERR_PDU_ENCODE',
        `P-DATA-TF over the peer's maximum length ${peerMaxPduLength}`,
      );
    }
    for (const pdv of pdvs) {
      if (!this.contexts.some((c) => c.id === pdv.contextId)) {
        throw new NetworkError('ERR_PDU_ENCODE', `presentation context ${pdv.contextId} was not accepted`);
      }
    }
    this.pendingSenders++;
    try {
      while (this.congested && this.socket !== undefined) {
        await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
      }
      const state = this.fsm.state;
      if (state !== 'Sta6' && state !== 'Sta8') {
        throw (
          this.closedError() ?? new NetworkError('ERR_ASSOCIATION_STATE', `cannot send P-DATA in ${state}`)
        );
      }
      this.touchIdle();
      this.dispatch({ name: 'Evt9', pdvs });
    } finally {
      this.pendingSenders--;
      if (this.pendingSenders === 0) this.maybeAnswerRelease();
    }
  }

  private write(chunks: readonly Uint8Array[]): void {
    const socket = this.socket;
    if (socket === undefined || socket.destroyed) return;
    socket.cork();
    let ok = true;
    for (const chunk of chunks) ok = socket.write(chunk);
    socket.uncork();
    if (!ok) this.congested = true;
  }

  private wakeSenders(): void {
    this.congested = false;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  private closeTransport(): void {
    const socket = this.socket;
    if (socket === undefined) return;
    socket.end();
    setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
  }

  // ------------------------------------------------------------------------------------------
  // Receive queue

  private deliver(pdv: Pdv): void {
    this.touchIdle();
    if (this.waiter !== undefined) {
      const w = this.waiter;
      this.waiter = undefined;
      this.stopDimseTimer();
      w.resolve({ value: pdv, done: false });
      return;
    }
    this.received.push(pdv);
    this.queuedBytes += pdv.data.length;
    if (this.queuedBytes >= this.highWaterMark && !this.paused) {
      this.paused = true;
      this.socket?.pause();
    }
  }

  nextPdv(): Promise<IteratorResult<Pdv>> {
    this.consumerAttached = true;
    const pdv = this.received[this.receivedHead];
    if (pdv !== undefined) {
      this.received[this.receivedHead] = undefined as unknown as Pdv;
      this.receivedHead++;
      if (this.receivedHead === this.received.length) {
        this.received.length = 0;
        this.receivedHead = 0;
      }
      this.queuedBytes -= pdv.data.length;
      if (this.paused && this.queuedBytes <= this.highWaterMark / 2) {
        this.paused = false;
        this.socket?.resume();
        queueMicrotask(() => this.pump());
      }
      return Promise.resolve({ value: pdv, done: false });
    }
    if (this.receiveEnd !== undefined) {
      return this.receiveEnd.kind === 'error'
        ? Promise.reject(this.receiveEnd.error)
        : Promise.resolve({ value: undefined, done: true });
    }
    if (this.releaseRequested) {
      this.consumerReachedEnd = true;
      this.maybeAnswerRelease();
      return Promise.resolve({ value: undefined, done: true });
    }
    if (this.waiter !== undefined)
      return Promise.reject(new NetworkError('ERR_ASSOCIATION_STATE', 'PDVs have one reader at a time'));
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.startDimseTimer();
    });
  }

  detachConsumer(): void {
    this.consumerAttached = false;
    this.maybeAnswerRelease();
  }

  /** PS3.8 Sta8: answer the peer's A-RELEASE-RQ once what it sent has been read and our sends are out. */
  private maybeAnswerRelease(): void {
    if (!this.releaseRequested || this.fsm.state !== 'Sta8' || this.pendingSenders > 0) return;
    // A consumer that is still handling the last request may yet answer it: wait until it asks for more.
    const drained = this.receivedHead === this.received.length;
    const consumerIdle = this.waiter !== undefined || this.consumerReachedEnd || !this.consumerAttached;
    if (!drained || !consumerIdle) return;
    this.releaseRequested = false;
    this.dispatch({ name: 'Evt14' });
    this.endReceive({ kind: 'done' });
  }

  private endReceive(end: { kind: 'done' } | { kind: 'error'; error: NetworkError }): void {
    if (this.receiveEnd !== undefined) return;
    this.receiveEnd = end;
    this.stopDimseTimer();
    const w = this.waiter;
    this.waiter = undefined;
    if (w === undefined) return;
    if (end.kind === 'error') w.reject(end.error);
    else w.resolve({ value: undefined, done: true });
  }

  // ------------------------------------------------------------------------------------------
  // Timers and the end

  private touchIdle(): void {
    const ms = this.timeouts.idleMs;
    if (ms === undefined) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.fsm.state === 'Sta6') {
        this.abortLocally(
          AbortSource.ServiceUser,
          AbortReason.NotSpecified,
          `idle for ${ms} ms`,
          'ERR_TIMEOUT',
        );
      }
    }, ms);
  }

  private startDimseTimer(): void {
    const ms = this.dimseTimeoutMs;
    if (ms === undefined || (this.fsm.state !== 'Sta6' && this.fsm.state !== 'Sta7')) return;
    this.stopDimseTimer();
    this.dimseTimer = setTimeout(() => {
      this.dimseTimer = undefined;
      this.abortLocally(
        AbortSource.ServiceUser,
        AbortReason.NotSpecified,
        `no data from the peer for ${ms} ms (DIMSE timeout)`,
        'ERR_TIMEOUT',
      );
    }, ms);
  }

  private stopDimseTimer(): void {
    clearTimeout(this.dimseTimer);
    this.dimseTimer = undefined;
  }

  private endCode: 'ERR_ASSOCIATION_ABORTED' | 'ERR_TIMEOUT' = 'ERR_ASSOCIATION_ABORTED';

  /** Records how the association ended (first cause wins) and tells the user at once. */
  private setEnd(
    end: CloseInfo,
    code: 'ERR_ASSOCIATION_ABORTED' | 'ERR_TIMEOUT' = 'ERR_ASSOCIATION_ABORTED',
  ): void {
    if (this.end !== undefined) return;
    this.end = end;
    this.endCode = code;
    if (end.kind === 'released') {
      this.endReceive({ kind: 'done' });
      if (this.established) process.nextTick(() => this.emitter.emit('released'));
    } else {
      const error = this.closedError();
      if (error !== undefined) {
        this.endReceive({ kind: 'error', error });
        this.rejectReleaseWaiters(error);
      }
      // A requestor waiting for its association learns at once, not after the ARTIM wait in Sta13.
      if (!this.established) this.reportFailure();
      // A rejected association is not an aborted one: its rejection was reported already.
      if (this.rejected === undefined || this.established) {
        const level = end.abort.initiator === 'local' ? 'info' : 'warn';
        this.log[level](
          { ...end.abort, abort: describeAbort(end.abort.source, end.abort.reason) },
          'association aborted',
        );
      }
      if (this.established) process.nextTick(() => this.emitter.emit('aborted', end.abort));
    }
  }

  /** The error that ended the association, when it did not end by release. */
  closedError(): NetworkError | undefined {
    if (this.end === undefined || this.end.kind === 'released') return undefined;
    const a = this.end.abort;
    const code = this.endCode;
    return new NetworkError(
      code,
      `association aborted (${a.initiator}, ${describeAbort(a.source, a.reason)}${a.detail ? `: ${a.detail}` : ''})`,
      { abort: a },
    );
  }

  private rejectReleaseWaiters(error: Error): void {
    const waiters = this.releaseWaiters;
    this.releaseWaiters = [];
    for (const w of waiters) w.reject(error);
  }

  private finalize(): void {
    if (this.finalized) return;
    this.finalized = true;
    for (const t of [this.artimTimer, this.acseTimer, this.idleTimer, this.dimseTimer]) clearTimeout(t);
    this.socket?.destroy();
    if (this.end === undefined) {
      this.setEnd({
        kind: 'aborted',
        abort: {
          initiator: 'provider',
          source: AbortSource.ServiceProvider,
          reason: AbortReason.NotSpecified,
          detail: 'association ended',
        },
      });
    }
    const end = this.end ?? { kind: 'released' };
    if (end.kind === 'released') {
      const waiters = this.releaseWaiters;
      this.releaseWaiters = [];
      for (const w of waiters) w.resolve();
    }
    this.wakeSenders();
    if (!this.established) this.reportFailure();
    this.resolveClosed(end);
    if (this.established) process.nextTick(() => this.emitter.emit('closed', end));
  }

  private failureReported = false;

  private reportFailure(): void {
    if (this.failureReported) return;
    this.failureReported = true;
    this.onOutcome({ kind: 'failed', error: this.failureBeforeEstablished() });
  }

  private failureBeforeEstablished(): NetworkError {
    if (this.rejected !== undefined) {
      const rj = this.rejected;
      return new NetworkError('ERR_ASSOCIATION_REJECTED', `association rejected: ${describeReject(rj)}`, {
        reject: { result: rj.result, source: rj.source, reason: rj.reason },
      });
    }
    if (this.connectError !== undefined) return this.connectError;
    return (
      this.closedError() ??
      new NetworkError('ERR_ASSOCIATION_ABORTED', 'association ended before it was established')
    );
  }
}

/**
 * An established association: what the DIMSE layer uses. Created by `requestAssociation` and by
 * `AssociationAcceptor` only after a successful negotiation.
 */
export class Association extends EventEmitter<AssociationEventMap> {
  readonly role: 'requestor' | 'acceptor';
  readonly rq: AssociateRqPdu;
  readonly ac: AssociateAcPdu;
  /** Accepted presentation contexts, with the local AE's roles on each. */
  readonly presentationContexts: readonly AcceptedPresentationContext[];
  /** The peer's maximum P-DATA-TF variable field length (0 = no limit). */
  readonly peerMaxPduLength: number;
  /** Our maximum P-DATA-TF variable field length, as we announced it. */
  readonly maxPduLength: number;
  readonly callingAeTitle: string;
  readonly calledAeTitle: string;
  readonly peerImplementationClassUid: string | undefined;
  readonly peerImplementationVersionName: string | undefined;
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  /** Resolves when the association is over and the transport closed. */
  readonly closed: Promise<CloseInfo>;
  private readonly ul: UpperLayer;
  private readonly maxSendPdu: number;
  private readonly iterator: AsyncIterableIterator<Pdv>;

  /** @internal Use requestAssociation or AssociationAcceptor. */
  constructor(ul: UpperLayer) {
    super();
    if (ul.rq === undefined || ul.ac === undefined)
      throw new Error('Association needs a negotiated RQ and AC');
    this.ul = ul;
    this.role = ul.fsm.isRequestor ? 'requestor' : 'acceptor';
    this.rq = ul.rq;
    this.ac = ul.ac;
    this.presentationContexts = ul.contexts;
    const peerInfo = this.role === 'requestor' ? ul.ac.userInformation : ul.rq.userInformation;
    this.peerMaxPduLength = peerInfo.maxLength ?? 0;
    this.maxPduLength = ul.ourMaxPduLength;
    this.peerImplementationClassUid = peerInfo.implementationClassUid;
    this.peerImplementationVersionName = peerInfo.implementationVersionName;
    this.callingAeTitle = ul.rq.callingAeTitle;
    this.calledAeTitle = ul.rq.calledAeTitle;
    this.remoteAddress = ul.socket?.remoteAddress;
    this.remotePort = ul.socket?.remotePort;
    this.closed = ul.closed;
    this.maxSendPdu = ul.options.maxSendPduLength ?? DEFAULT_MAX_SEND_PDU;
    for (const name of ['released', 'aborted', 'closed'] as const) {
      ul.emitter.on(name, (...args: unknown[]) =>
        (this.emit as (n: string, ...a: unknown[]) => boolean)(name, ...args),
      );
    }
    this.iterator = {
      next: () => ul.nextPdv(),
      // Leaving a for-await loop detaches the reader (a pending A-RELEASE-RQ may then be answered).
      return: (value?: unknown) => {
        ul.detachConsumer();
        return Promise.resolve({ value: value as Pdv, done: true });
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  /** The Upper Layer state (Sta6 while established). */
  get state(): State {
    return this.ul.state;
  }

  /** True while P-DATA can be sent (Sta6, or Sta8 after the peer asked for release). */
  get canSend(): boolean {
    return this.ul.state === 'Sta6' || this.ul.state === 'Sta8';
  }

  /** Longest wait for the next PDV while a consumer waits for one; undefined = none. */
  get dimseTimeoutMs(): number | undefined {
    return this.ul.dimseTimeoutMs;
  }

  set dimseTimeoutMs(ms: number | undefined) {
    this.ul.dimseTimeoutMs = ms;
  }

  context(id: number): AcceptedPresentationContext | undefined {
    return this.presentationContexts.find((c) => c.id === id);
  }

  /** The first accepted context for an abstract syntax (and transfer syntax, if given). */
  findContext(abstractSyntax: string, transferSyntax?: string): AcceptedPresentationContext | undefined {
    return this.presentationContexts.find(
      (c) =>
        c.abstractSyntax === abstractSyntax &&
        (transferSyntax === undefined || c.transferSyntax === transferSyntax),
    );
  }

  /** Largest PDV value we send in one P-DATA-TF: the peer's maximum less the PDV header, kept even. */
  get maxPdvDataLength(): number {
    const limit =
      this.peerMaxPduLength === 0 ? this.maxSendPdu : Math.min(this.peerMaxPduLength, this.maxSendPdu);
    const room = limit - PDV_HEADER_LENGTH;
    return Math.max(2, room - (room % 2));
  }

  /**
   * Sends one P-DATA-TF with these PDVs (P-DATA request, Evt9). Resolves once written to the socket;
   * waits for 'drain' first when the socket is congested. The PDVs must fit the peer's maximum
   * length; buffers must not be changed after the call. Rejects when the association is over.
   */
  sendPData(pdvs: readonly OutgoingPdv[]): Promise<void> {
    return this.ul.sendPData(pdvs, this.peerMaxPduLength);
  }

  /**
   * A byte stream for one command or data set: what is written is cut into PDVs that fit the
   * peer's maximum length (one PDV per P-DATA-TF, no copy), `end()` sends the last fragment. Pipe a
   * file into it to send a data set without holding it. If it errors mid-message, abort the association.
   */
  createPdvWriter(contextId: number, kind: 'command' | 'data'): Writable {
    const maxData = this.maxPdvDataLength;
    const isCommand = kind === 'command';
    let parts: Uint8Array[] = [];
    let pending = 0;
    const take = (n: number): Uint8Array[] => {
      const out: Uint8Array[] = [];
      let need = n;
      while (need > 0) {
        const first = parts[0];
        if (first === undefined) break;
        if (first.length <= need) {
          out.push(first);
          parts.shift();
          need -= first.length;
        } else {
          out.push(first.subarray(0, need));
          parts[0] = first.subarray(need);
          need = 0;
        }
      }
      pending -= n - need;
      return out;
    };
    const send = (isLast: boolean, data: Uint8Array[]): Promise<void> =>
      this.sendPData([{ contextId, isCommand, isLast, data }]);
    return new Writable({
      write: (chunk: Buffer, _encoding, callback) => {
        parts.push(chunk);
        pending += chunk.length;
        // Keep what might be the last fragment: only `end()` knows it is last.
        const sendFull = async (): Promise<void> => {
          while (pending > maxData) await send(false, take(maxData));
        };
        sendFull().then(() => callback(), callback);
      },
      final: (callback) => {
        send(true, take(pending)).then(() => callback(), callback);
      },
      destroy: (error, callback) => {
        parts = [];
        pending = 0;
        callback(error);
      },
    });
  }

  /**
   * Received PDVs in order, one reader at a time (P-DATA indications). Each `data` is a view into
   * received bytes. The socket is paused while unread PDVs exceed the high-water mark. Ends when
   * the association is released; throws a NetworkError when it is aborted or a timer runs out.
   * A peer's A-RELEASE-RQ is answered once everything was read and the reader asks for more (or
   * has left its for-await loop, or never read), so a response still being prepared is not cut off:
   * a DIMSE loop should keep calling `next()` rather than break out between messages.
   */
  pdvs(): AsyncIterableIterator<Pdv> {
    return this.iterator;
  }

  /** A-RELEASE request; resolves when released (collisions included), rejects if aborted instead. */
  release(): Promise<void> {
    return this.ul.release();
  }

  /** A-ABORT request. Default: service-user source, reason 0. No effect once the association is over. */
  abort(
    source: number = AbortSource.ServiceUser,
    reason: number = AbortReason.NotSpecified,
    detail = 'aborted by the local user',
  ): void {
    this.ul.abortLocally(source, reason, detail);
  }
}

// ---------------------------------------------------------------------------------------------
// Requestor

export interface ProposedPresentationContext {
  /** Odd, 1..255; assigned in order (1, 3, 5...) when absent. */
  readonly id?: number;
  readonly abstractSyntax: string;
  readonly transferSyntaxes: readonly string[];
  /** Propose SCP/SCU role selection (PS3.7 D.3.3.4) with the roles we want on this SOP class. */
  readonly roles?: { readonly scu: boolean; readonly scp: boolean };
}

export interface RequestorOptions extends UpperLayerOptions {
  readonly host: string;
  readonly port: number;
  readonly callingAeTitle: string;
  readonly calledAeTitle: string;
  readonly presentationContexts: readonly ProposedPresentationContext[];
  /** Our maximum length (0x51). Default 64 KiB. */
  readonly maxPduLength?: number;
  readonly tls?: TlsClientOptions;
  readonly userIdentity?: UserIdentityRq;
  readonly asyncOperationsWindow?: {
    readonly maxOperationsInvoked: number;
    readonly maxOperationsPerformed: number;
  };
  readonly sopClassExtendedNegotiations?: readonly SopClassExtendedNegotiation[];
  readonly sopClassCommonExtendedNegotiations?: readonly SopClassCommonExtendedNegotiation[];
  readonly implementationClassUid?: string;
  readonly implementationVersionName?: string;
}

/** The A-ASSOCIATE-RQ these options describe. */
export function buildAssociateRq(options: RequestorOptions): AssociateRqPdu {
  let nextId = 1;
  const used = new Set(options.presentationContexts.map((pc) => pc.id).filter((id) => id !== undefined));
  const presentationContexts = options.presentationContexts.map((pc) => {
    let id = pc.id;
    if (id === undefined) {
      while (used.has(nextId)) nextId += 2;
      id = nextId;
      used.add(id);
    }
    return { id, abstractSyntax: pc.abstractSyntax, transferSyntaxes: pc.transferSyntaxes };
  });
  const roleSelections: RoleSelection[] = [];
  for (const pc of options.presentationContexts) {
    if (pc.roles !== undefined && !roleSelections.some((r) => r.sopClassUid === pc.abstractSyntax)) {
      roleSelections.push({ sopClassUid: pc.abstractSyntax, scuRole: pc.roles.scu, scpRole: pc.roles.scp });
    }
  }
  return {
    type: 'A-ASSOCIATE-RQ',
    protocolVersion: 1,
    calledAeTitle: options.calledAeTitle,
    callingAeTitle: options.callingAeTitle,
    applicationContextName: DICOM_APPLICATION_CONTEXT,
    presentationContexts,
    userInformation: {
      maxLength: options.maxPduLength ?? DEFAULT_MAX_PDU_LENGTH,
      implementationClassUid: options.implementationClassUid ?? IMPLEMENTATION_CLASS_UID,
      ...(options.asyncOperationsWindow !== undefined
        ? { asyncOperationsWindow: options.asyncOperationsWindow }
        : {}),
      ...(roleSelections.length > 0 ? { roleSelections } : {}),
      implementationVersionName: options.implementationVersionName ?? IMPLEMENTATION_VERSION_NAME,
      ...(options.sopClassExtendedNegotiations?.length
        ? { sopClassExtendedNegotiations: options.sopClassExtendedNegotiations }
        : {}),
      ...(options.sopClassCommonExtendedNegotiations?.length
        ? { sopClassCommonExtendedNegotiations: options.sopClassCommonExtendedNegotiations }
        : {}),
      ...(options.userIdentity !== undefined ? { userIdentity: options.userIdentity } : {}),
    },
  };
}

/**
 * Opens an association as requestor. Expected failures are values: a refused association
 * (ERR_ASSOCIATION_REJECTED with the RJ fields), a connection failure (ERR_CONNECT), a timeout
 * (ERR_TIMEOUT), an abort during negotiation (ERR_ASSOCIATION_ABORTED).
 */
export function requestAssociation(options: RequestorOptions): Promise<Result<Association, NetworkError>> {
  let rq: AssociateRqPdu;
  try {
    rq = buildAssociateRq(options);
  } catch (e) {
    return Promise.resolve(
      err(e instanceof NetworkError ? e : new NetworkError('ERR_PDU_ENCODE', String(e))),
    );
  }
  const ul = new UpperLayer(true, rq.userInformation.maxLength ?? DEFAULT_MAX_PDU_LENGTH, options);
  ul.rq = rq;
  ul.connectTransport = () =>
    openTransport({
      host: options.host,
      port: options.port,
      tls: options.tls,
      timeoutMs: options.timeouts?.connectMs,
    });
  return new Promise((resolve) => {
    ul.onOutcome = (outcome) => {
      if (outcome.kind === 'established') resolve(ok(new Association(ul)));
      else resolve(err(outcome.error));
    };
    ul.dispatch({ name: 'Evt1', rq });
  });
}

// ---------------------------------------------------------------------------------------------
// Acceptor

export interface AcceptorOptions extends UpperLayerOptions {
  readonly policy: NegotiationPolicy;
  readonly tls?: TlsServerOptions;
}

export interface AcceptorEventMap {
  /** A new established association. */
  association: [Association];
  /** A connection that ended before an association was established (rejected, aborted, bad PDU...). */
  failed: [NetworkError, { remoteAddress: string | undefined }];
}

/** Listens for requestors and negotiates with each under the policy. */
export class AssociationAcceptor extends EventEmitter<AcceptorEventMap> {
  private readonly live = new Set<UpperLayer>();
  /** Established associations not yet closed: what the association limit counts (PS3.8 9.3.4 reason 2). */
  private established = 0;
  private server: net.Server | undefined;
  private readonly log: NetworkLogger;

  constructor(private readonly options: AcceptorOptions) {
    super();
    this.log = options.logger ?? silentLogger;
  }

  /** Transport connections currently open (negotiating, established or closing). */
  get activeAssociations(): number {
    return this.live.size;
  }

  /** Starts listening; resolves with the bound address (port 0 picks a free port). */
  listen(port: number, host?: string): Promise<net.AddressInfo> {
    const server = createTransportServer(
      (socket) => this.handle(socket),
      this.options.tls,
      (error, socket) =>
        this.log.warn({ err: error.message, remote: socket.remoteAddress }, 'TLS handshake failed'),
    );
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve(server.address() as net.AddressInfo);
      });
    });
  }

  /** Runs the acceptor side on an already connected socket (Evt5). */
  handle(socket: net.Socket): void {
    const ul = new UpperLayer(false, this.options.policy.maxPduLength, this.options);
    this.live.add(ul);
    const remoteAddress = socket.remoteAddress;
    ul.negotiate = (rq) =>
      negotiateAsAcceptor(rq, this.options.policy, {
        // Only established associations count: connections still negotiating or being closed
        // after a rejection must not take the places of the associations being served.
        activeAssociations: this.established,
        peerHost: remoteAddress,
      });
    ul.onOutcome = (outcome) => {
      if (outcome.kind === 'established') {
        this.established++;
        void ul.closed.then(() => {
          this.established--;
        });
        const association = new Association(ul);
        this.log.info(
          {
            calling: association.callingAeTitle,
            called: association.calledAeTitle,
            remote: remoteAddress,
            contexts: association.presentationContexts.length,
          },
          'association accepted',
        );
        this.emit('association', association);
      } else {
        this.emit('failed', outcome.error, { remoteAddress });
      }
    };
    void ul.closed.then(() => this.live.delete(ul));
    ul.attach(socket);
    ul.dispatch({ name: 'Evt5' });
  }

  /** Stops listening. With `abort`, also aborts every live association; resolves when all are closed. */
  async close(options: { abort?: boolean } = {}): Promise<void> {
    const server = this.server;
    this.server = undefined;
    const stopped = new Promise<void>((resolve) =>
      server === undefined ? resolve() : server.close(() => resolve()),
    );
    if (options.abort) {
      for (const ul of this.live)
        ul.abortLocally(AbortSource.ServiceUser, AbortReason.NotSpecified, 'acceptor closing');
    }
    await Promise.all([...this.live].map((ul) => ul.closed));
    await stopped;
  }
}
