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
      /** The patient's name as stored (the audit trail's patient participant object). */
      readonly patientName?: string;
      /** The authenticated user (STOW-RS, upload) or user@AE, when known. */
      readonly user?: string;
      readonly remoteAddress?: string | undefined;
    }
  /** An object was sent to a peer (C-STORE SCU: pacs store, C-MOVE and C-GET sub-operations). */
  | {
      readonly type: 'object-sent';
      readonly sopInstanceUid: string;
      readonly bytes: number;
      readonly destination: string;
      readonly status: number;
      readonly via: 'C-STORE' | 'C-MOVE' | 'C-GET';
      readonly studyInstanceUid?: string;
      readonly patientId?: string;
      readonly patientName?: string;
      readonly sopClassUid?: string;
      /** Who asked for the transfer (the C-MOVE/C-GET requestor, the user of a send job). */
      readonly user?: string;
    }
  /** A query answered (C-FIND, worklist, QIDO-RS), for the audit trail and latency metrics. */
  | {
      readonly type: 'query';
      readonly service: 'C-FIND' | 'worklist' | 'QIDO-RS';
      readonly level: string;
      readonly matches: number;
      readonly durationMs: number;
      readonly source: string;
      /** The identity's name (user, user@AE), when known: the audit trail's active participant. */
      readonly user?: string;
      /** The query as asked: the identifier's bytes (DIMSE) or the query string (QIDO-RS), for the audit trail. */
      readonly query?: Uint8Array | string;
      readonly remoteAddress?: string | undefined;
      /** The information model's SOP class (C-FIND, worklist) and the query's transfer syntax, for the audit trail. */
      readonly sopClassUid?: string;
      readonly transferSyntaxUid?: string;
    }
  // --- security and the audit trail (issue 14): each is emitted once, where it happens -------
  /** The server (or one of its processes) started or stopped: Application Activity. */
  | {
      readonly type: 'application';
      readonly action: 'start' | 'stop';
      readonly aeTitle: string;
      /** Who started it (the OS user) when known. */
      readonly user?: string;
    }
  /** A login, logout or failed authentication (HTTP or DICOM user identity): User Authentication. */
  | {
      readonly type: 'authentication';
      readonly action: 'login' | 'logout';
      readonly outcome: 'success' | 'failure';
      /** The user name given (also when it does not exist). */
      readonly user: string | null;
      /** 'password', 'token', 'session', 'oidc', 'dimse-password', 'dimse-jwt'. */
      readonly method: string;
      readonly remoteAddress: string | undefined;
      readonly reason?: string;
    }
  /** Something a security officer must see: Security Alert. */
  | {
      readonly type: 'security-alert';
      readonly kind: /** An association refused (calling AE unknown or not allowed, bad user identity). */
        | 'association-rejected'
        /** A TLS handshake or client certificate that failed. */
        | 'node-authentication-failed'
        /** An authenticated identity asked for something its permissions do not allow. */
        | 'permission-denied'
        /** Users, roles, tokens, the AE registry, keys or the configuration changed. */
        | 'configuration-changed'
        /** A stored object failed its integrity check (decryption, checksum). */
        | 'integrity-failure';
      readonly detail: string;
      readonly user?: string;
      readonly remoteAddress?: string | undefined;
    }
  /** Objects read or changed in place, not sent as objects: DICOM Instances Accessed. */
  | {
      readonly type: 'objects-accessed';
      readonly action: 'read' | 'update';
      /** 'WADO-RS metadata', 'rendered', 'frames', 'modify'... */
      readonly via: string;
      readonly user: string;
      readonly studyInstanceUid: string;
      readonly patientId?: string;
      readonly patientName?: string;
      readonly sopInstanceUids?: readonly string[];
      readonly remoteAddress?: string | undefined;
    }
  /** Objects that left over HTTP (WADO-RS, WADO-URI application/dicom, ZIP): DICOM Instances Transferred. */
  | {
      readonly type: 'objects-retrieved';
      readonly via: 'WADO-RS' | 'WADO-URI' | 'REST';
      readonly user: string;
      readonly studyInstanceUid: string;
      readonly patientId?: string;
      readonly patientName?: string;
      readonly sopInstanceUids: readonly string[];
      readonly remoteAddress?: string | undefined;
    }
  /** A study (or part of one) removed: DICOM Study Deleted. */
  | {
      readonly type: 'study-deleted';
      readonly studyInstanceUid: string;
      readonly patientId?: string;
      readonly patientName?: string;
      readonly sopInstanceUids: readonly string[];
      readonly user: string;
    }
  /** A worklist item or MPPS instance created, changed or removed: Order Record / Procedure Record. */
  | {
      readonly type: 'order-record';
      readonly record: 'worklist' | 'mpps';
      readonly action: 'create' | 'update' | 'delete';
      readonly user: string;
      readonly patientId?: string;
      readonly patientName?: string;
      readonly studyInstanceUid?: string;
      readonly accessionNumber?: string;
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
