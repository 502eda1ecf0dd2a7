/**
 * An established association (PS3.8 7.1: after A-ASSOCIATE-AC): the typed API the DIMSE layer
 * uses. It exists only once negotiation succeeded: the requestor (requestor.ts) and the acceptor
 * (acceptor.ts) hand it out, over the Upper Layer machine of its connection (upper-layer.ts).
 *
 * Memory per association is bounded: received PDVs queue up to `receiveHighWaterMark` bytes, then
 * the socket is paused until the consumer catches up (receive-queue.ts); the reader holds at most
 * one PDU plus one chunk. Sends wait for 'drain'. PDV values are views into socket chunks and
 * caller buffers, never copied.
 */
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import type { State } from './association-fsm.js';
import type { AcceptedPresentationContext } from './negotiation.js';
import { maxPdvValueLength, PDataWriter } from './pdata-writer.js';
import {
  AbortReason,
  AbortSource,
  type AssociateAcPdu,
  type AssociateRqPdu,
  type OutgoingPdv,
  type Pdv,
} from './pdu.js';
import {
  type AssociationEventMap,
  type CloseInfo,
  DEFAULT_MAX_SEND_PDU,
  type UpperLayer,
} from './upper-layer.js';

export type { ProposedPresentationContext } from './negotiation.js';
export type {
  AssociationEventMap,
  AssociationTimeouts,
  CloseInfo,
  UpperLayerOptions,
} from './upper-layer.js';

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
  /** What the acceptor's admission hook said the requestor is (NegotiationPolicy.admit); opaque here. */
  readonly identity: unknown;
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
    this.identity = ul.identity;
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
    return maxPdvValueLength(this.peerMaxPduLength, this.maxSendPdu);
  }

  /** True while the socket holds more than its high-water mark: the next sendPData waits for 'drain'. */
  get congested(): boolean {
    return this.ul.congested;
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
   * A byte stream for one command or data set: what is written goes through the P-DATA writer
   * (pdata-writer.ts), cut into PDVs that fit the peer's maximum length (one PDV per P-DATA-TF, no
   * copy); `end()` sends the last fragment. Pipe a file into it to send a data set without holding
   * it. If it errors mid-message, abort the association.
   */
  createPdvWriter(contextId: number, kind: 'command' | 'data'): Writable {
    const writer = new PDataWriter((pdvs) => this.sendPData(pdvs), this.maxPdvDataLength).begin(
      contextId,
      kind === 'command',
    );
    return new Writable({
      write: (chunk: Buffer, _encoding, callback) => {
        writer.write(chunk).then(() => callback(), callback);
      },
      final: (callback) => {
        writer.end().then(() => callback(), callback);
      },
      destroy: (error, callback) => {
        writer.discard();
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
