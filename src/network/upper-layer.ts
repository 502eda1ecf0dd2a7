/**
 * The Upper Layer protocol machine of one transport connection (PS3.8 9.2): it feeds the PS3.8
 * state table (association-fsm.ts, which decides) with events from the socket, the timers and the
 * local user, and performs the actions the table names: send a PDU, open or close the transport,
 * start or stop ARTIM (9.1.5), indicate a primitive. It holds the association's timers (ARTIM, ACSE,
 * DIMSE, idle), its send side (one P-DATA-TF at a time, waiting for 'drain') and its receive queue
 * (receive-queue.ts). Internal: users get an Association (association.ts) once it is established,
 * from the requestor (requestor.ts) or the acceptor (acceptor.ts).
 */
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import type { Result } from '../core/result.js';
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
  describeAbort,
  describeReject,
  type NegotiationOutcome,
} from './negotiation.js';
import {
  AbortReason,
  AbortSource,
  type AssociateAcPdu,
  type AssociateRjPdu,
  type AssociateRqPdu,
  describePdu,
  encodePDataTfChunks,
  encodePdu,
  type OutgoingPdv,
  PDU_HEADER_LENGTH,
  type Pdv,
  pDataTfLength,
} from './pdu.js';
import { DEFAULT_MAX_ASSOCIATE_LENGTH, PduReader } from './pdu-reader.js';
import { type ReceiveEnd, ReceiveQueue } from './receive-queue.js';

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
/** Largest P-DATA-TF value we send when the peer sets no limit (UpperLayerOptions.maxSendPduLength). */
export const DEFAULT_MAX_SEND_PDU = 256 * 1024;
const DEFAULT_SLACK = 6;
/** After we close our side, the peer gets this long to close its side before the socket is destroyed. */
const CLOSE_GRACE_MS = 2000;

export type Outcome = { kind: 'established' } | { kind: 'failed'; error: NetworkError };

/**
 * One transport connection and its state machine. Internal: the public face is Association,
 * created once the association is established.
 */
export class UpperLayer {
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
  /** performance.now() of the last PDU sent or received (the idle timer's reference). */
  private lastActive = 0;
  private dimseTimer: NodeJS.Timeout | undefined;
  dimseTimeoutMs: number | undefined;

  // Receive side.
  private readonly received: ReceiveQueue;
  private paused = false;
  private pumping = false;
  private readerFailed = false;
  /** The peer asked for release (Sta8); answered when the consumer has read everything. */
  private releaseRequested = false;

  // Send side.
  private isCongested = false;
  /** The socket is corked until the next tick: P-DATA-TFs written in this tick go out in one writev. */
  private corkedForTick = false;
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
  /**
   * Set by the acceptor: the answer to an A-ASSOCIATE-RQ. A promise (an asynchronous admission)
   * is awaited in Sta3, after the A-ASSOCIATE indication; the answer is dropped if the peer has
   * gone meanwhile.
   */
  negotiate: ((rq: AssociateRqPdu) => NegotiationOutcome | Promise<NegotiationOutcome>) | undefined;
  /** What the acceptor's admission said the requestor is (NegotiationOutcome.identity). */
  identity: unknown;
  private pendingAsync: Promise<NegotiationOutcome> | undefined;
  /** Called once: established, or failed before establishment. */
  onOutcome: (outcome: Outcome) => void = () => {};
  private pendingOutcome: NegotiationOutcome | undefined;
  /** The first error the socket reported, to say why the transport closed. */
  private transportError: string | undefined;
  /** The last PDU error, to say why we aborted. */
  private lastError: string | undefined;

  constructor(
    isRequestor: boolean,
    readonly ourMaxPduLength: number,
    readonly options: UpperLayerOptions,
  ) {
    this.fsm = new AssociationFsm(isRequestor);
    this.log = options.logger ?? silentLogger;
    this.timeouts = options.timeouts ?? {};
    this.dimseTimeoutMs = this.timeouts.dimseMs;
    this.received = new ReceiveQueue(
      {
        pause: () => {
          this.paused = true;
          this.socket?.pause();
        },
        resume: () => {
          this.paused = false;
          this.socket?.resume();
          queueMicrotask(() => this.pump());
        },
        readerWaiting: (waiting) => (waiting ? this.startDimseTimer() : this.stopDimseTimer()),
        readerIdle: () => this.maybeAnswerRelease(),
      },
      options.receiveHighWaterMark ?? DEFAULT_HIGH_WATER_MARK,
    );
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
          let answer: NegotiationOutcome | Promise<NegotiationOutcome>;
          try {
            answer = this.negotiate(pdu);
          } catch (error) {
            answer = this.internalReject(error);
          }
          if (answer instanceof Promise) {
            // The provider has nothing to refuse: indicate, and answer when the admission settles.
            this.pendingAsync = answer.catch((error: unknown) => this.internalReject(error));
            this.dispatch({ name: 'Evt6', pdu });
            continue;
          }
          const outcome = answer;
          this.pendingOutcome = outcome;
          const providerReject =
            outcome.kind === 'reject' && outcome.by === 'provider' ? outcome.rj : undefined;
          if (providerReject !== undefined && outcome.kind === 'reject') {
            // The provider answers by itself (AE-8 without an indication): record why, as for a user reject.
            this.rejected = providerReject;
            this.log.info(
              { why: outcome.why, reject: describeReject(providerReject) },
              'association rejected',
            );
          }
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

  /** A negotiation hook that threw (a bug): rejected, with the stack at error level. */
  private internalReject(error: unknown): NegotiationOutcome {
    this.log.error(
      { err: error instanceof Error ? error.stack : String(error) },
      'negotiation failed: rejecting',
    );
    const rj: AssociateRjPdu = { type: 'A-ASSOCIATE-RJ', result: 1, source: 1, reason: 1 };
    return { kind: 'reject', rj, by: 'user', why: `internal error: ${String(error)}` };
  }

  /** The local user's A-ASSOCIATE response (Evt7 or Evt8) in Sta3. */
  private answerAssociate(outcome: NegotiationOutcome | undefined): void {
    if (outcome?.kind === 'accept') {
      this.ac = outcome.ac;
      this.contexts = outcome.contexts;
      this.identity = outcome.identity;
      this.dispatch({ name: 'Evt7', ac: outcome.ac });
      return;
    }
    const rj: AssociateRjPdu = outcome?.rj ?? { type: 'A-ASSOCIATE-RJ', result: 1, source: 1, reason: 1 };
    this.rejected = rj;
    if (outcome !== undefined)
      this.log.info({ why: outcome.why, reject: describeReject(rj) }, 'association rejected');
    this.dispatch({ name: 'Evt8', rj });
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
        this.write(encodePDataTfChunks(output.pdvs), true);
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
        const pending = this.pendingAsync;
        this.pendingAsync = undefined;
        if (pending !== undefined) {
          void pending.then((outcome) => {
            // The peer may have aborted or vanished while we decided.
            if (this.fsm.state === 'Sta3') this.answerAssociate(outcome);
          });
          return;
        }
        const outcome = this.pendingOutcome;
        this.pendingOutcome = undefined;
        this.answerAssociate(outcome);
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
        for (const pdv of ind.pdu.pdvs) {
          this.touchIdle();
          this.received.push(pdv);
        }
        return;
      case 'A-RELEASE-indication':
        if (ind.collision) {
          // We asked for release too; answer at once (PS3.8 9.2.3 release collision).
          if (this.fsm.state === 'Sta9') this.dispatch({ name: 'Evt14' });
        } else {
          this.releaseRequested = true;
          this.received.releaseRequested();
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
      while (this.isCongested && this.socket !== undefined) {
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

  /** True while the socket holds more than its high-water mark: the next sendPData waits for 'drain'. */
  get congested(): boolean {
    return this.isCongested;
  }

  /**
   * Writes one PDU. P-DATA-TFs (`batch`) are gathered until the end of the tick: the PDUs of every
   * message sent in one turn of the event loop (a page of C-FIND answers, a C-STORE response)
   * leave in one writev, not one system call each. Any other PDU flushes at once, after what is
   * gathered (an A-ABORT or A-RELEASE is never stuck behind the cork, nor sent ahead of P-DATA).
   */
  private write(chunks: readonly Uint8Array[], batch = false): void {
    const socket = this.socket;
    if (socket === undefined || socket.destroyed) return;
    if (!this.corkedForTick) {
      socket.cork();
      this.corkedForTick = true;
      if (batch) process.nextTick(this.uncorkTick);
    }
    let ok = true;
    for (const chunk of chunks) ok = socket.write(chunk);
    if (!batch) this.uncorkTick();
    if (!ok) this.isCongested = true;
  }

  private readonly uncorkTick = (): void => {
    if (!this.corkedForTick) return;
    this.corkedForTick = false;
    this.socket?.uncork();
  };

  private wakeSenders(): void {
    this.isCongested = false;
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

  nextPdv(): Promise<IteratorResult<Pdv>> {
    return this.received.next();
  }

  detachConsumer(): void {
    this.received.detach();
  }

  /** PS3.8 Sta8: answer the peer's A-RELEASE-RQ once what it sent has been read and our sends are out. */
  private maybeAnswerRelease(): void {
    if (!this.releaseRequested || this.fsm.state !== 'Sta8' || this.pendingSenders > 0) return;
    // A consumer that is still handling the last request may yet answer it: wait until it asks for more.
    if (!this.received.readerIdle) return;
    this.releaseRequested = false;
    this.dispatch({ name: 'Evt14' });
    this.endReceive({ kind: 'done' });
  }

  private endReceive(end: ReceiveEnd): void {
    this.stopDimseTimer();
    this.received.end(end);
  }

  // ------------------------------------------------------------------------------------------
  // Timers and the end

  /**
   * Notes activity for the idle timer. This runs for every PDU sent and received: it only records
   * the time, and the one timer, when it fires, waits on for what is left of the idle time.
   */
  private touchIdle(): void {
    const ms = this.timeouts.idleMs;
    if (ms === undefined) return;
    this.lastActive = performance.now();
    if (this.idleTimer === undefined) this.armIdleTimer(ms);
  }

  private armIdleTimer(delay: number): void {
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      const ms = this.timeouts.idleMs ?? 0;
      const left = this.lastActive + ms - performance.now();
      if (left >= 1) {
        this.armIdleTimer(left);
        return;
      }
      if (this.fsm.state === 'Sta6') {
        this.abortLocally(
          AbortSource.ServiceUser,
          AbortReason.NotSpecified,
          `idle for ${ms} ms`,
          'ERR_TIMEOUT',
        );
      }
    }, delay);
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
