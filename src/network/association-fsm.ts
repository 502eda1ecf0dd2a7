/**
 * The DICOM Upper Layer state machine, a literal transcription of PS3.8 9.2: states Sta1..Sta13
 * (9.2.1), actions AE-1..AA-8 (9.2.2), events Evt1..Evt19 and the transition table (9.2.3, Table 9-10).
 * Pure: `transition` returns the action taken, the next state and the outputs (send a PDU, start or
 * stop ARTIM, open or close the transport, indicate a primitive to the user) for an adapter to perform.
 */
import type { NetworkError } from './errors.js';
import {
  AbortReason,
  AbortSource,
  type AssociateAcPdu,
  type AssociateRjPdu,
  type AssociateRqPdu,
  type OutgoingPdv,
  type PDataTfPdu,
  type Pdu,
} from './pdu.js';

export type State =
  | 'Sta1'
  | 'Sta2'
  | 'Sta3'
  | 'Sta4'
  | 'Sta5'
  | 'Sta6'
  | 'Sta7'
  | 'Sta8'
  | 'Sta9'
  | 'Sta10'
  | 'Sta11'
  | 'Sta12'
  | 'Sta13';

/** PS3.8 Tables 9-1..9-5. */
export const STATES: Readonly<Record<State, string>> = {
  Sta1: 'Idle',
  Sta2: 'Transport connection open (awaiting A-ASSOCIATE-RQ PDU)',
  Sta3: 'Awaiting local A-ASSOCIATE response primitive (from local user)',
  Sta4: 'Awaiting transport connection opening to complete (from local transport service)',
  Sta5: 'Awaiting A-ASSOCIATE-AC or A-ASSOCIATE-RJ PDU',
  Sta6: 'Association established and ready for data transfer',
  Sta7: 'Awaiting A-RELEASE-RP PDU',
  Sta8: 'Awaiting local A-RELEASE response primitive (from local user)',
  Sta9: 'Release collision requestor side; awaiting A-RELEASE response (from local user)',
  Sta10: 'Release collision acceptor side; awaiting A-RELEASE-RP PDU',
  Sta11: 'Release collision requestor side; awaiting A-RELEASE-RP PDU',
  Sta12: 'Release collision acceptor side; awaiting A-RELEASE response primitive (from local user)',
  Sta13: 'Awaiting transport connection close indication (association no longer exists)',
};

export type EventName =
  | 'Evt1'
  | 'Evt2'
  | 'Evt3'
  | 'Evt4'
  | 'Evt5'
  | 'Evt6'
  | 'Evt7'
  | 'Evt8'
  | 'Evt9'
  | 'Evt10'
  | 'Evt11'
  | 'Evt12'
  | 'Evt13'
  | 'Evt14'
  | 'Evt15'
  | 'Evt16'
  | 'Evt17'
  | 'Evt18'
  | 'Evt19';

/** PS3.8 Table 9-10, first column. */
export const EVENTS: Readonly<Record<EventName, string>> = {
  Evt1: 'A-ASSOCIATE request (local user)',
  Evt2: 'Transport connect confirmation (local transport service)',
  Evt3: 'A-ASSOCIATE-AC PDU (received on transport connection)',
  Evt4: 'A-ASSOCIATE-RJ PDU (received on transport connection)',
  Evt5: 'Transport connection indication (local transport service)',
  Evt6: 'A-ASSOCIATE-RQ PDU (received on transport connection)',
  Evt7: 'A-ASSOCIATE response primitive (accept)',
  Evt8: 'A-ASSOCIATE response primitive (reject)',
  Evt9: 'P-DATA request primitive',
  Evt10: 'P-DATA-TF PDU (received on transport connection)',
  Evt11: 'A-RELEASE request primitive',
  Evt12: 'A-RELEASE-RQ PDU (received on transport connection)',
  Evt13: 'A-RELEASE-RP PDU (received on transport connection)',
  Evt14: 'A-RELEASE response primitive',
  Evt15: 'A-ABORT request primitive',
  Evt16: 'A-ABORT PDU (received on transport connection)',
  Evt17: 'Transport connection closed indication (local transport service)',
  Evt18: 'ARTIM timer expired (association reject/release timer)',
  Evt19: 'Unrecognized or invalid PDU received',
};

export type ActionName =
  | 'AE-1'
  | 'AE-2'
  | 'AE-3'
  | 'AE-4'
  | 'AE-5'
  | 'AE-6'
  | 'AE-7'
  | 'AE-8'
  | 'DT-1'
  | 'DT-2'
  | 'AR-1'
  | 'AR-2'
  | 'AR-3'
  | 'AR-4'
  | 'AR-5'
  | 'AR-6'
  | 'AR-7'
  | 'AR-8'
  | 'AR-9'
  | 'AR-10'
  | 'AA-1'
  | 'AA-2'
  | 'AA-3'
  | 'AA-4'
  | 'AA-5'
  | 'AA-6'
  | 'AA-7'
  | 'AA-8';

/** PS3.8 Tables 9-6..9-9. */
export const ACTIONS: Readonly<Record<ActionName, string>> = {
  'AE-1': 'Issue TRANSPORT CONNECT request primitive to local transport service',
  'AE-2': 'Send A-ASSOCIATE-RQ PDU',
  'AE-3': 'Issue A-ASSOCIATE confirmation (accept) primitive',
  'AE-4': 'Issue A-ASSOCIATE confirmation (reject) primitive and close transport connection',
  'AE-5': 'Issue transport connection response primitive; start ARTIM timer',
  'AE-6':
    'Stop ARTIM timer and if A-ASSOCIATE-RQ acceptable by service-provider issue A-ASSOCIATE indication primitive, otherwise issue A-ASSOCIATE-RJ PDU and start ARTIM timer',
  'AE-7': 'Send A-ASSOCIATE-AC PDU',
  'AE-8': 'Send A-ASSOCIATE-RJ PDU and start ARTIM timer',
  'DT-1': 'Send P-DATA-TF PDU',
  'DT-2': 'Send P-DATA indication primitive',
  'AR-1': 'Send A-RELEASE-RQ PDU',
  'AR-2': 'Issue A-RELEASE indication primitive',
  'AR-3': 'Issue A-RELEASE confirmation primitive, and close transport connection',
  'AR-4': 'Issue A-RELEASE-RP PDU and start ARTIM timer',
  'AR-5': 'Stop ARTIM timer',
  'AR-6': 'Issue P-DATA indication',
  'AR-7': 'Issue P-DATA-TF PDU',
  'AR-8': 'Issue A-RELEASE indication (release collision)',
  'AR-9': 'Send A-RELEASE-RP PDU',
  'AR-10': 'Issue A-RELEASE confirmation primitive',
  'AA-1': 'Send A-ABORT PDU (service-user source) and start (or restart if already started) ARTIM timer',
  'AA-2': 'Stop ARTIM timer if running. Close transport connection',
  'AA-3':
    'Issue A-ABORT (service-user initiated) or A-P-ABORT (service-provider initiated) indication and close transport connection',
  'AA-4': 'Issue A-P-ABORT indication primitive',
  'AA-5': 'Stop ARTIM timer',
  'AA-6': 'Ignore PDU',
  'AA-7': 'Send A-ABORT PDU',
  'AA-8': 'Send A-ABORT PDU (service-provider source), issue an A-P-ABORT indication, and start ARTIM timer',
};

type Row = Readonly<Partial<Record<State, ActionName>>>;

/** Every Sta3..Sta12 cell but Sta4 (no transport yet): the rows of PDUs unexpected in those states. */
function unexpectedPduRow(overrides: Row, sta2: ActionName, sta13: ActionName): Row {
  return {
    Sta2: sta2,
    Sta3: 'AA-8',
    Sta5: 'AA-8',
    Sta6: 'AA-8',
    Sta7: 'AA-8',
    Sta8: 'AA-8',
    Sta9: 'AA-8',
    Sta10: 'AA-8',
    Sta11: 'AA-8',
    Sta12: 'AA-8',
    Sta13: sta13,
    ...overrides,
  };
}

/** PS3.8 Table 9-10, keyed by event then state. A missing cell is not in the table (see `transition`). */
export const TRANSITIONS: Readonly<Record<EventName, Row>> = {
  Evt1: { Sta1: 'AE-1' },
  Evt2: { Sta4: 'AE-2' },
  Evt3: unexpectedPduRow({ Sta5: 'AE-3' }, 'AA-1', 'AA-6'),
  Evt4: unexpectedPduRow({ Sta5: 'AE-4' }, 'AA-1', 'AA-6'),
  Evt5: { Sta1: 'AE-5' },
  Evt6: unexpectedPduRow({ Sta2: 'AE-6' }, 'AE-6', 'AA-7'),
  Evt7: { Sta3: 'AE-7' },
  Evt8: { Sta3: 'AE-8' },
  Evt9: { Sta6: 'DT-1', Sta8: 'AR-7' },
  Evt10: unexpectedPduRow({ Sta6: 'DT-2', Sta7: 'AR-6' }, 'AA-1', 'AA-6'),
  Evt11: { Sta6: 'AR-1' },
  Evt12: unexpectedPduRow({ Sta6: 'AR-2', Sta7: 'AR-8' }, 'AA-1', 'AA-6'),
  Evt13: unexpectedPduRow({ Sta7: 'AR-3', Sta10: 'AR-10', Sta11: 'AR-3' }, 'AA-1', 'AA-6'),
  Evt14: { Sta8: 'AR-4', Sta9: 'AR-9', Sta12: 'AR-4' },
  Evt15: {
    Sta3: 'AA-1',
    Sta4: 'AA-2',
    Sta5: 'AA-1',
    Sta6: 'AA-1',
    Sta7: 'AA-1',
    Sta8: 'AA-1',
    Sta9: 'AA-1',
    Sta10: 'AA-1',
    Sta11: 'AA-1',
    Sta12: 'AA-1',
  },
  Evt16: unexpectedPduRow(
    {
      Sta3: 'AA-3',
      Sta5: 'AA-3',
      Sta6: 'AA-3',
      Sta7: 'AA-3',
      Sta8: 'AA-3',
      Sta9: 'AA-3',
      Sta10: 'AA-3',
      Sta11: 'AA-3',
      Sta12: 'AA-3',
    },
    'AA-2',
    'AA-2',
  ),
  Evt17: {
    Sta2: 'AA-5',
    Sta3: 'AA-4',
    Sta4: 'AA-4',
    Sta5: 'AA-4',
    Sta6: 'AA-4',
    Sta7: 'AA-4',
    Sta8: 'AA-4',
    Sta9: 'AA-4',
    Sta10: 'AA-4',
    Sta11: 'AA-4',
    Sta12: 'AA-4',
    Sta13: 'AR-5',
  },
  Evt18: { Sta2: 'AA-2', Sta13: 'AA-2' },
  Evt19: unexpectedPduRow({}, 'AA-1', 'AA-7'),
};

export type FsmEvent =
  | { readonly name: 'Evt1'; readonly rq: AssociateRqPdu }
  | { readonly name: 'Evt2' }
  | { readonly name: 'Evt3'; readonly pdu: AssociateAcPdu }
  | { readonly name: 'Evt4'; readonly pdu: AssociateRjPdu }
  | { readonly name: 'Evt5' }
  /** `providerReject` set when the service-provider itself refuses the RQ (AE-6 "otherwise" branch). */
  | { readonly name: 'Evt6'; readonly pdu: AssociateRqPdu; readonly providerReject?: AssociateRjPdu }
  | { readonly name: 'Evt7'; readonly ac: AssociateAcPdu }
  | { readonly name: 'Evt8'; readonly rj: AssociateRjPdu }
  | { readonly name: 'Evt9'; readonly pdvs: readonly OutgoingPdv[] }
  | { readonly name: 'Evt10'; readonly pdu: PDataTfPdu }
  | { readonly name: 'Evt11' }
  | { readonly name: 'Evt12' }
  | { readonly name: 'Evt13' }
  | { readonly name: 'Evt14' }
  | { readonly name: 'Evt15'; readonly source: number; readonly reason: number }
  | { readonly name: 'Evt16'; readonly source: number; readonly reason: number }
  | { readonly name: 'Evt17' }
  | { readonly name: 'Evt18' }
  | { readonly name: 'Evt19'; readonly error: NetworkError };

/** Primitives the FSM issues to its user (PS3.8 7). */
export type Indication =
  | { readonly type: 'A-ASSOCIATE-indication'; readonly rq: AssociateRqPdu }
  | { readonly type: 'A-ASSOCIATE-confirm-accept'; readonly ac: AssociateAcPdu }
  | { readonly type: 'A-ASSOCIATE-confirm-reject'; readonly rj: AssociateRjPdu }
  | { readonly type: 'P-DATA-indication'; readonly pdu: PDataTfPdu }
  | { readonly type: 'A-RELEASE-indication'; readonly collision: boolean }
  | { readonly type: 'A-RELEASE-confirm' }
  /** The peer's service-user aborted (A-ABORT PDU with source 0). */
  | { readonly type: 'A-ABORT-indication'; readonly source: number; readonly reason: number }
  /** The provider aborted: a peer provider A-ABORT, a protocol error here, or the transport closing. */
  | {
      readonly type: 'A-P-ABORT-indication';
      /** 'peer': an A-ABORT PDU with provider source arrived; 'local': our provider detected the problem. */
      readonly origin: 'peer' | 'local';
      readonly source: number;
      readonly reason: number;
      readonly detail: string;
    };

export type FsmOutput =
  | { readonly kind: 'transport-connect' }
  | { readonly kind: 'send'; readonly pdu: Pdu }
  | { readonly kind: 'send-pdata'; readonly pdvs: readonly OutgoingPdv[] }
  /** Start, or restart if running. */
  | { readonly kind: 'artim-start' }
  | { readonly kind: 'artim-stop' }
  | { readonly kind: 'transport-close' }
  | { readonly kind: 'indicate'; readonly indication: Indication };

export interface FsmContext {
  readonly state: State;
  /** Association-requestor (true after AE-1) or acceptor (after AE-5); decides AR-8's next state. */
  readonly isRequestor: boolean;
  /** The A-ASSOCIATE-RQ given with Evt1, sent by AE-2 once the transport is up. */
  readonly pendingRq?: AssociateRqPdu;
}

export interface Transition {
  readonly event: EventName;
  readonly from: State;
  readonly action: ActionName;
  /** False when the (event, state) cell is empty in Table 9-10 and AA-8 was applied. */
  readonly inTable: boolean;
  readonly next: FsmContext;
  readonly outputs: readonly FsmOutput[];
}

const indicate = (indication: Indication): FsmOutput => ({ kind: 'indicate', indication });
const send = (pdu: Pdu): FsmOutput => ({ kind: 'send', pdu });
const ARTIM_START: FsmOutput = { kind: 'artim-start' };
const ARTIM_STOP: FsmOutput = { kind: 'artim-stop' };
const CLOSE: FsmOutput = { kind: 'transport-close' };

/** Events that are PDUs received from the peer. */
const RECEIVED_PDU_EVENTS: ReadonlySet<EventName> = new Set([
  'Evt3',
  'Evt4',
  'Evt6',
  'Evt10',
  'Evt12',
  'Evt13',
  'Evt16',
]);

/** The A-ABORT reason a provider sends for this event: the PDU error's own, or unexpected-PDU. */
function providerReasonFor(event: FsmEvent): number {
  if (event.name === 'Evt19') return event.error.abort?.reason ?? AbortReason.InvalidPduParameterValue;
  return RECEIVED_PDU_EVENTS.has(event.name) ? AbortReason.UnexpectedPdu : AbortReason.NotSpecified;
}

function describeProviderAbort(event: FsmEvent, state: State): string {
  if (event.name === 'Evt19') return event.error.message;
  return `${EVENTS[event.name]} is not expected in ${state}`;
}

type ActionResult = {
  readonly state: State;
  readonly outputs: readonly FsmOutput[];
  readonly ctx?: Partial<FsmContext>;
};

function perform(action: ActionName, event: FsmEvent, ctx: FsmContext): ActionResult {
  switch (action) {
    case 'AE-1':
      return {
        state: 'Sta4',
        outputs: [{ kind: 'transport-connect' }],
        ctx: { isRequestor: true, ...(event.name === 'Evt1' ? { pendingRq: event.rq } : {}) },
      };
    case 'AE-2':
      return { state: 'Sta5', outputs: ctx.pendingRq === undefined ? [] : [send(ctx.pendingRq)] };
    case 'AE-3':
      return {
        state: 'Sta6',
        outputs:
          event.name === 'Evt3' ? [indicate({ type: 'A-ASSOCIATE-confirm-accept', ac: event.pdu })] : [],
      };
    case 'AE-4':
      return {
        state: 'Sta1',
        outputs: [
          ...(event.name === 'Evt4' ? [indicate({ type: 'A-ASSOCIATE-confirm-reject', rj: event.pdu })] : []),
          CLOSE,
        ],
      };
    case 'AE-5':
      return { state: 'Sta2', outputs: [ARTIM_START], ctx: { isRequestor: false } };
    case 'AE-6':
      if (event.name === 'Evt6' && event.providerReject !== undefined) {
        return { state: 'Sta13', outputs: [ARTIM_STOP, send(event.providerReject), ARTIM_START] };
      }
      return {
        state: 'Sta3',
        outputs: [
          ARTIM_STOP,
          ...(event.name === 'Evt6' ? [indicate({ type: 'A-ASSOCIATE-indication', rq: event.pdu })] : []),
        ],
      };
    case 'AE-7':
      return { state: 'Sta6', outputs: event.name === 'Evt7' ? [send(event.ac)] : [] };
    case 'AE-8':
      return { state: 'Sta13', outputs: [...(event.name === 'Evt8' ? [send(event.rj)] : []), ARTIM_START] };
    case 'DT-1':
      return {
        state: 'Sta6',
        outputs: event.name === 'Evt9' ? [{ kind: 'send-pdata', pdvs: event.pdvs }] : [],
      };
    case 'DT-2':
      return {
        state: 'Sta6',
        outputs: event.name === 'Evt10' ? [indicate({ type: 'P-DATA-indication', pdu: event.pdu })] : [],
      };
    case 'AR-1':
      return { state: 'Sta7', outputs: [send({ type: 'A-RELEASE-RQ' })] };
    case 'AR-2':
      return { state: 'Sta8', outputs: [indicate({ type: 'A-RELEASE-indication', collision: false })] };
    case 'AR-3':
      return { state: 'Sta1', outputs: [indicate({ type: 'A-RELEASE-confirm' }), CLOSE] };
    case 'AR-4':
      return { state: 'Sta13', outputs: [send({ type: 'A-RELEASE-RP' }), ARTIM_START] };
    case 'AR-5':
      return { state: 'Sta1', outputs: [ARTIM_STOP] };
    case 'AR-6':
      return {
        state: 'Sta7',
        outputs: event.name === 'Evt10' ? [indicate({ type: 'P-DATA-indication', pdu: event.pdu })] : [],
      };
    case 'AR-7':
      return {
        state: 'Sta8',
        outputs: event.name === 'Evt9' ? [{ kind: 'send-pdata', pdvs: event.pdvs }] : [],
      };
    case 'AR-8':
      return {
        state: ctx.isRequestor ? 'Sta9' : 'Sta10',
        outputs: [indicate({ type: 'A-RELEASE-indication', collision: true })],
      };
    case 'AR-9':
      return { state: 'Sta11', outputs: [send({ type: 'A-RELEASE-RP' })] };
    case 'AR-10':
      return { state: 'Sta12', outputs: [indicate({ type: 'A-RELEASE-confirm' })] };
    case 'AA-1': {
      // A local abort sends what the user asked (normally service-user, reason 0). When AA-1 answers a
      // bad PDU in Sta2 we say why, as service-provider: deviation from the literal "service-user
      // source" of Table 9-9, chosen because no service-user exists yet and the reason helps the peer.
      const abort =
        event.name === 'Evt15'
          ? { source: event.source, reason: event.reason }
          : { source: AbortSource.ServiceProvider, reason: providerReasonFor(event) };
      return { state: 'Sta13', outputs: [send({ type: 'A-ABORT', ...abort }), ARTIM_START] };
    }
    case 'AA-2':
      return { state: 'Sta1', outputs: [ARTIM_STOP, CLOSE] };
    case 'AA-3': {
      const source = event.name === 'Evt16' ? event.source : AbortSource.ServiceProvider;
      const reason = event.name === 'Evt16' ? event.reason : AbortReason.NotSpecified;
      const indication: Indication =
        source === AbortSource.ServiceUser
          ? { type: 'A-ABORT-indication', source, reason }
          : {
              type: 'A-P-ABORT-indication',
              origin: 'peer',
              source,
              reason,
              detail: 'A-ABORT PDU from the peer service-provider',
            };
      return { state: 'Sta1', outputs: [indicate(indication), CLOSE] };
    }
    case 'AA-4':
      return {
        state: 'Sta1',
        outputs: [
          indicate({
            type: 'A-P-ABORT-indication',
            origin: 'local',
            source: AbortSource.ServiceProvider,
            reason: AbortReason.NotSpecified,
            detail: 'transport connection closed',
          }),
        ],
      };
    case 'AA-5':
      return { state: 'Sta1', outputs: [ARTIM_STOP] };
    case 'AA-6':
      return { state: 'Sta13', outputs: [] };
    case 'AA-7':
      return {
        state: 'Sta13',
        outputs: [
          send({ type: 'A-ABORT', source: AbortSource.ServiceProvider, reason: providerReasonFor(event) }),
        ],
      };
    case 'AA-8': {
      const reason = providerReasonFor(event);
      return {
        state: 'Sta13',
        outputs: [
          send({ type: 'A-ABORT', source: AbortSource.ServiceProvider, reason }),
          indicate({
            type: 'A-P-ABORT-indication',
            origin: 'local',
            source: AbortSource.ServiceProvider,
            reason,
            detail: describeProviderAbort(event, ctx.state),
          }),
          ARTIM_START,
        ],
      };
    }
  }
}

/**
 * Applies one event. An (event, state) cell that Table 9-10 leaves empty is handled one way: as a
 * protocol error, with AA-8 (A-ABORT from the provider, A-P-ABORT indication, ARTIM, Sta13).
 * Adapters refuse local primitives that are invalid in the current state before they get here.
 */
export function transition(ctx: FsmContext, event: FsmEvent): Transition {
  const cell = TRANSITIONS[event.name][ctx.state];
  const action: ActionName = cell ?? 'AA-8';
  const result = perform(action, event, ctx);
  return {
    event: event.name,
    from: ctx.state,
    action,
    inTable: cell !== undefined,
    next: { ...ctx, ...result.ctx, state: result.state },
    outputs: result.outputs,
  };
}

/** The event a received PDU raises (Evt6 without a provider verdict; the acceptor adds it). */
export function eventForPdu(pdu: Pdu): FsmEvent {
  switch (pdu.type) {
    case 'A-ASSOCIATE-RQ':
      return { name: 'Evt6', pdu };
    case 'A-ASSOCIATE-AC':
      return { name: 'Evt3', pdu };
    case 'A-ASSOCIATE-RJ':
      return { name: 'Evt4', pdu };
    case 'P-DATA-TF':
      return { name: 'Evt10', pdu };
    case 'A-RELEASE-RQ':
      return { name: 'Evt12' };
    case 'A-RELEASE-RP':
      return { name: 'Evt13' };
    case 'A-ABORT':
      return { name: 'Evt16', source: pdu.source, reason: pdu.reason };
  }
}

/** A stateful wrapper for adapters: holds the context, applies events one at a time. */
export class AssociationFsm {
  private ctx: FsmContext;

  constructor(isRequestor: boolean) {
    this.ctx = { state: 'Sta1', isRequestor };
  }

  get state(): State {
    return this.ctx.state;
  }

  get isRequestor(): boolean {
    return this.ctx.isRequestor;
  }

  handle(event: FsmEvent): Transition {
    const t = transition(this.ctx, event);
    this.ctx = t.next;
    return t;
  }
}
