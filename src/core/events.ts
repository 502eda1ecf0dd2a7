/**
 * The one event stream (ARCHITECTURE.md decision 9): each layer emits what happened once, on the
 * bus it was given; metrics and (later) the audit trail subscribe. Nothing counts or audits by
 * wrapping handlers. Emitting is synchronous and cheap when nobody listens; a subscriber that
 * throws is dropped from that event (logged by whoever owns the bus), never the emitter's problem.
 */

/** How an association ended. */
export type AssociationOutcome = 'released' | 'aborted';

export type PacsEvent =
  /** An association was established (after A-ASSOCIATE-AC). */
  | {
      readonly type: 'association-opened';
      readonly callingAeTitle: string;
      readonly calledAeTitle: string;
      readonly remoteAddress: string | undefined;
      /** Which side we are. */
      readonly role: 'acceptor' | 'requestor';
    }
  /** An established association ended. */
  | {
      readonly type: 'association-closed';
      readonly callingAeTitle: string;
      readonly calledAeTitle: string;
      readonly remoteAddress: string | undefined;
      readonly role: 'acceptor' | 'requestor';
      readonly outcome: AssociationOutcome;
      readonly durationMs: number;
      readonly requests: number;
      readonly failures: number;
      readonly bytesReceived: number;
    }
  /** A connection that never became an association (rejected, bad PDU, timeout). */
  | {
      readonly type: 'association-failed';
      readonly remoteAddress: string | undefined;
      readonly reason: string;
      /** 'rejected' for an A-ASSOCIATE-RJ we sent, 'limit' when the association limit refused it. */
      readonly kind: 'rejected' | 'limit' | 'protocol' | 'timeout' | 'closed';
    }
  /** A DIMSE request we served, once, when its final response was sent. */
  | {
      readonly type: 'request';
      /** 'C-STORE', 'C-FIND', 'N-CREATE', ... */
      readonly command: string;
      readonly sopClassUid: string;
      readonly status: number;
      readonly durationMs: number;
      readonly peerAeTitle: string;
      readonly remoteAddress: string | undefined;
    }
  /** An object came into the archive (any way in: C-STORE, STOW-RS, upload, import). */
  | {
      readonly type: 'object-received';
      readonly outcome: 'stored' | 'replaced' | 'duplicate';
      readonly sopInstanceUid: string;
      readonly sopClassUid: string;
      readonly studyInstanceUid: string;
      readonly patientId: string;
      /** Bytes of the data set as received (file meta not counted). */
      readonly bytes: number;
      /** The calling AE title, or the user, that sent it. */
      readonly source: string | null;
      readonly via: 'C-STORE' | 'STOW-RS' | 'upload' | 'import';
    }
  /** An object was sent to a peer (C-STORE SCU: pacs store, C-MOVE and C-GET sub-operations). */
  | {
      readonly type: 'object-sent';
      readonly sopInstanceUid: string;
      readonly bytes: number;
      readonly destination: string;
      readonly status: number;
      readonly via: 'C-STORE' | 'C-MOVE' | 'C-GET';
    }
  /** A query answered (C-FIND, worklist, QIDO-RS), for the audit trail and latency metrics. */
  | {
      readonly type: 'query';
      readonly service: 'C-FIND' | 'worklist' | 'QIDO-RS';
      readonly level: string;
      readonly matches: number;
      readonly durationMs: number;
      readonly source: string;
    };

export type PacsEventType = PacsEvent['type'];
export type EventOf<T extends PacsEventType> = Extract<PacsEvent, { type: T }>;
export type EventListener = (event: PacsEvent) => void;

export class EventBus {
  private readonly listeners = new Set<EventListener>();
  /** Called with a listener's exception; default: ignored. */
  onListenerError: ((error: unknown, event: PacsEvent) => void) | undefined;

  /** True when someone listens: emitters may skip building an event nobody reads. */
  get active(): boolean {
    return this.listeners.size > 0;
  }

  emit(event: PacsEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (e) {
        this.onListenerError?.(e, event);
      }
    }
  }

  /** Subscribes; returns the function that unsubscribes. */
  subscribe(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Subscribes to one event type. */
  on<T extends PacsEventType>(type: T, listener: (event: EventOf<T>) => void): () => void {
    return this.subscribe((e) => {
      if (e.type === type) listener(e as EventOf<T>);
    });
  }
}
