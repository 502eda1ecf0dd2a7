import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type ActionName,
  AssociationFsm,
  EVENTS,
  type EventName,
  type FsmEvent,
  type FsmOutput,
  STATES,
  type State,
  TRANSITIONS,
  transition,
} from '../../src/network/association-fsm.js';
import { pduError } from '../../src/network/errors.js';
import type { AssociateAcPdu, AssociateRjPdu, AssociateRqPdu } from '../../src/network/pdu.js';

// PS3.8 Table 9-10 typed again, independently of the source, as a grid: one row per event, one
// column per state Sta1..Sta13; '.' is an empty cell.
const TABLE_9_10 = `
Evt1  AE-1 .    .    .    .    .    .    .    .    .     .    .     .
Evt2  .    .    .    AE-2 .    .    .    .    .    .     .    .     .
Evt3  .    AA-1 AA-8 .    AE-3 AA-8 AA-8 AA-8 AA-8 AA-8  AA-8 AA-8  AA-6
Evt4  .    AA-1 AA-8 .    AE-4 AA-8 AA-8 AA-8 AA-8 AA-8  AA-8 AA-8  AA-6
Evt5  AE-5 .    .    .    .    .    .    .    .    .     .    .     .
Evt6  .    AE-6 AA-8 .    AA-8 AA-8 AA-8 AA-8 AA-8 AA-8  AA-8 AA-8  AA-7
Evt7  .    .    AE-7 .    .    .    .    .    .    .     .    .     .
Evt8  .    .    AE-8 .    .    .    .    .    .    .     .    .     .
Evt9  .    .    .    .    .    DT-1 .    AR-7 .    .     .    .     .
Evt10 .    AA-1 AA-8 .    AA-8 DT-2 AR-6 AA-8 AA-8 AA-8  AA-8 AA-8  AA-6
Evt11 .    .    .    .    .    AR-1 .    .    .    .     .    .     .
Evt12 .    AA-1 AA-8 .    AA-8 AR-2 AR-8 AA-8 AA-8 AA-8  AA-8 AA-8  AA-6
Evt13 .    AA-1 AA-8 .    AA-8 AA-8 AR-3 AA-8 AA-8 AR-10 AR-3 AA-8  AA-6
Evt14 .    .    .    .    .    .    .    AR-4 AR-9 .     .    AR-4  .
Evt15 .    .    AA-1 AA-2 AA-1 AA-1 AA-1 AA-1 AA-1 AA-1  AA-1 AA-1  .
Evt16 .    AA-2 AA-3 .    AA-3 AA-3 AA-3 AA-3 AA-3 AA-3  AA-3 AA-3  AA-2
Evt17 .    AA-5 AA-4 AA-4 AA-4 AA-4 AA-4 AA-4 AA-4 AA-4  AA-4 AA-4  AR-5
Evt18 .    AA-2 .    .    .    .    .    .    .    .     .    .     AA-2
Evt19 .    AA-1 AA-8 .    AA-8 AA-8 AA-8 AA-8 AA-8 AA-8  AA-8 AA-8  AA-7
`;

const STATE_NAMES = Object.keys(STATES) as State[];
const EVENT_NAMES = Object.keys(EVENTS) as EventName[];

function parseTable(): Map<string, ActionName | undefined> {
  const cells = new Map<string, ActionName | undefined>();
  for (const line of TABLE_9_10.trim().split('\n')) {
    const [event, ...actions] = line.trim().split(/\s+/);
    assert.equal(actions.length, 13, `row ${event}`);
    actions.forEach((action, i) => {
      cells.set(`${event}/${STATE_NAMES[i]}`, action === '.' ? undefined : (action as ActionName));
    });
  }
  return cells;
}

const RQ: AssociateRqPdu = {
  type: 'A-ASSOCIATE-RQ',
  protocolVersion: 1,
  calledAeTitle: 'SCP',
  callingAeTitle: 'SCU',
  applicationContextName: '1.2.840.10008.3.1.1.1',
  presentationContexts: [],
  userInformation: { maxLength: 16384 },
};
const AC: AssociateAcPdu = { ...RQ, type: 'A-ASSOCIATE-AC', presentationContexts: [] };
const RJ: AssociateRjPdu = { type: 'A-ASSOCIATE-RJ', result: 1, source: 1, reason: 7 };

function eventFor(name: EventName): FsmEvent {
  switch (name) {
    case 'Evt1':
      return { name, rq: RQ };
    case 'Evt3':
      return { name, pdu: AC };
    case 'Evt4':
      return { name, pdu: RJ };
    case 'Evt6':
      return { name, pdu: RQ };
    case 'Evt7':
      return { name, ac: AC };
    case 'Evt8':
      return { name, rj: RJ };
    case 'Evt9':
      return { name, pdvs: [{ contextId: 1, isCommand: true, isLast: true, data: new Uint8Array(2) }] };
    case 'Evt10':
      return { name, pdu: { type: 'P-DATA-TF', pdvs: [] } };
    case 'Evt15':
      return { name, source: 0, reason: 0 };
    case 'Evt16':
      return { name, source: 0, reason: 0 };
    case 'Evt19':
      return { name, error: pduError('ERR_PDU_UNRECOGNIZED', 'unrecognized PDU type 0x09', 1) };
    default:
      return { name } as FsmEvent;
  }
}

function summary(outputs: readonly FsmOutput[]): string[] {
  return outputs.map((o) => {
    switch (o.kind) {
      case 'send':
        return `send:${o.pdu.type}`;
      case 'indicate':
        return `indicate:${o.indication.type}`;
      default:
        return o.kind;
    }
  });
}

/** PS3.8 Tables 9-6..9-9: the next state and outputs of each action (AE-6 as "acceptable", AR-8 per side). */
const EXPECTED_ACTION: Record<
  ActionName,
  { next: State | ((requestor: boolean) => State); outputs: string[] }
> = {
  'AE-1': { next: 'Sta4', outputs: ['transport-connect'] },
  'AE-2': { next: 'Sta5', outputs: ['send:A-ASSOCIATE-RQ'] },
  'AE-3': { next: 'Sta6', outputs: ['indicate:A-ASSOCIATE-confirm-accept'] },
  'AE-4': { next: 'Sta1', outputs: ['indicate:A-ASSOCIATE-confirm-reject', 'transport-close'] },
  'AE-5': { next: 'Sta2', outputs: ['artim-start'] },
  'AE-6': { next: 'Sta3', outputs: ['artim-stop', 'indicate:A-ASSOCIATE-indication'] },
  'AE-7': { next: 'Sta6', outputs: ['send:A-ASSOCIATE-AC'] },
  'AE-8': { next: 'Sta13', outputs: ['send:A-ASSOCIATE-RJ', 'artim-start'] },
  'DT-1': { next: 'Sta6', outputs: ['send-pdata'] },
  'DT-2': { next: 'Sta6', outputs: ['indicate:P-DATA-indication'] },
  'AR-1': { next: 'Sta7', outputs: ['send:A-RELEASE-RQ'] },
  'AR-2': { next: 'Sta8', outputs: ['indicate:A-RELEASE-indication'] },
  'AR-3': { next: 'Sta1', outputs: ['indicate:A-RELEASE-confirm', 'transport-close'] },
  'AR-4': { next: 'Sta13', outputs: ['send:A-RELEASE-RP', 'artim-start'] },
  'AR-5': { next: 'Sta1', outputs: ['artim-stop'] },
  'AR-6': { next: 'Sta7', outputs: ['indicate:P-DATA-indication'] },
  'AR-7': { next: 'Sta8', outputs: ['send-pdata'] },
  'AR-8': { next: (requestor) => (requestor ? 'Sta9' : 'Sta10'), outputs: ['indicate:A-RELEASE-indication'] },
  'AR-9': { next: 'Sta11', outputs: ['send:A-RELEASE-RP'] },
  'AR-10': { next: 'Sta12', outputs: ['indicate:A-RELEASE-confirm'] },
  'AA-1': { next: 'Sta13', outputs: ['send:A-ABORT', 'artim-start'] },
  'AA-2': { next: 'Sta1', outputs: ['artim-stop', 'transport-close'] },
  'AA-3': { next: 'Sta1', outputs: ['indicate:A-ABORT-indication', 'transport-close'] },
  'AA-4': { next: 'Sta1', outputs: ['indicate:A-P-ABORT-indication'] },
  'AA-5': { next: 'Sta1', outputs: ['artim-stop'] },
  'AA-6': { next: 'Sta13', outputs: [] },
  'AA-7': { next: 'Sta13', outputs: ['send:A-ABORT'] },
  'AA-8': { next: 'Sta13', outputs: ['send:A-ABORT', 'indicate:A-P-ABORT-indication', 'artim-start'] },
};

describe('association FSM: PS3.8 Table 9-10', () => {
  it('the source table equals an independent transcription of Table 9-10', () => {
    const cells = parseTable();
    for (const event of EVENT_NAMES) {
      for (const state of STATE_NAMES) {
        assert.equal(TRANSITIONS[event][state], cells.get(`${event}/${state}`), `${event} in ${state}`);
      }
    }
  });

  for (const event of EVENT_NAMES) {
    for (const state of STATE_NAMES) {
      const expected = parseTable().get(`${event}/${state}`);
      const title = `${event} in ${state}: ${expected ?? 'not in the table, handled as AA-8'}`;
      it(title, () => {
        for (const isRequestor of [true, false]) {
          const t = transition({ state, isRequestor, pendingRq: RQ }, eventFor(event));
          const action = expected ?? 'AA-8';
          assert.equal(t.action, action);
          assert.equal(t.inTable, expected !== undefined);
          const spec = EXPECTED_ACTION[action];
          const next = typeof spec.next === 'function' ? spec.next(isRequestor) : spec.next;
          assert.equal(t.next.state, next);
          assert.deepEqual(summary(t.outputs), spec.outputs);
        }
      });
    }
  }
});

describe('association FSM: action details', () => {
  it('AE-6 sends the provider rejection and starts ARTIM when the RQ is not acceptable', () => {
    const t = transition(
      { state: 'Sta2', isRequestor: false },
      { name: 'Evt6', pdu: RQ, providerReject: RJ },
    );
    assert.equal(t.next.state, 'Sta13');
    assert.deepEqual(summary(t.outputs), ['artim-stop', 'send:A-ASSOCIATE-RJ', 'artim-start']);
  });

  it('AA-3 issues A-P-ABORT when the A-ABORT PDU comes from the peer provider', () => {
    const t = transition({ state: 'Sta6', isRequestor: true }, { name: 'Evt16', source: 2, reason: 6 });
    assert.deepEqual(t.outputs[0], {
      kind: 'indicate',
      indication: {
        type: 'A-P-ABORT-indication',
        origin: 'peer',
        source: 2,
        reason: 6,
        detail: 'A-ABORT PDU from the peer service-provider',
      },
    });
  });

  it('AA-8 sends unexpected-PDU for a PDU out of place and the PDU error reason for Evt19', () => {
    const unexpected = transition({ state: 'Sta6', isRequestor: true }, eventFor('Evt3'));
    assert.deepEqual(unexpected.outputs[0], { kind: 'send', pdu: { type: 'A-ABORT', source: 2, reason: 2 } });
    const invalid = transition(
      { state: 'Sta6', isRequestor: true },
      { name: 'Evt19', error: pduError('ERR_PDU_TOO_LARGE', 'too large', 6) },
    );
    assert.deepEqual(invalid.outputs[0], { kind: 'send', pdu: { type: 'A-ABORT', source: 2, reason: 6 } });
  });

  it('AA-1 sends the abort the user asked for, and the provider reason for a bad PDU in Sta2', () => {
    const user = transition({ state: 'Sta6', isRequestor: true }, { name: 'Evt15', source: 0, reason: 0 });
    assert.deepEqual(user.outputs[0], { kind: 'send', pdu: { type: 'A-ABORT', source: 0, reason: 0 } });
    const bad = transition({ state: 'Sta2', isRequestor: false }, eventFor('Evt19'));
    assert.deepEqual(bad.outputs[0], { kind: 'send', pdu: { type: 'A-ABORT', source: 2, reason: 1 } });
  });

  it('runs a requestor through associate, data, release', () => {
    const fsm = new AssociationFsm(true);
    const steps: Array<[FsmEvent, ActionName, State]> = [
      [eventFor('Evt1'), 'AE-1', 'Sta4'],
      [{ name: 'Evt2' }, 'AE-2', 'Sta5'],
      [eventFor('Evt3'), 'AE-3', 'Sta6'],
      [eventFor('Evt9'), 'DT-1', 'Sta6'],
      [eventFor('Evt10'), 'DT-2', 'Sta6'],
      [{ name: 'Evt11' }, 'AR-1', 'Sta7'],
      [eventFor('Evt10'), 'AR-6', 'Sta7'],
      [{ name: 'Evt13' }, 'AR-3', 'Sta1'],
    ];
    for (const [event, action, state] of steps) {
      const t = fsm.handle(event);
      assert.equal(t.action, action);
      assert.equal(fsm.state, state);
    }
  });

  it('runs an acceptor through associate, release requested by the peer, close', () => {
    const fsm = new AssociationFsm(false);
    const steps: Array<[FsmEvent, ActionName, State]> = [
      [{ name: 'Evt5' }, 'AE-5', 'Sta2'],
      [eventFor('Evt6'), 'AE-6', 'Sta3'],
      [eventFor('Evt7'), 'AE-7', 'Sta6'],
      [{ name: 'Evt12' }, 'AR-2', 'Sta8'],
      [eventFor('Evt9'), 'AR-7', 'Sta8'],
      [{ name: 'Evt14' }, 'AR-4', 'Sta13'],
      [{ name: 'Evt17' }, 'AR-5', 'Sta1'],
    ];
    for (const [event, action, state] of steps) {
      assert.equal(fsm.handle(event).action, action);
      assert.equal(fsm.state, state);
    }
  });

  it('resolves a release collision on the requestor side (Sta7 -> Sta9 -> Sta11 -> Sta1)', () => {
    const fsm = new AssociationFsm(true);
    for (const e of [
      eventFor('Evt1'),
      { name: 'Evt2' } as FsmEvent,
      eventFor('Evt3'),
      { name: 'Evt11' } as FsmEvent,
    ]) {
      fsm.handle(e);
    }
    assert.equal(fsm.handle({ name: 'Evt12' }).action, 'AR-8');
    assert.equal(fsm.state, 'Sta9');
    assert.equal(fsm.handle({ name: 'Evt14' }).action, 'AR-9');
    assert.equal(fsm.state, 'Sta11');
    assert.equal(fsm.handle({ name: 'Evt13' }).action, 'AR-3');
    assert.equal(fsm.state, 'Sta1');
  });

  it('resolves a release collision on the acceptor side (Sta7 -> Sta10 -> Sta12 -> Sta13)', () => {
    const fsm = new AssociationFsm(false);
    for (const e of [{ name: 'Evt5' }, eventFor('Evt6'), eventFor('Evt7'), { name: 'Evt11' }] as FsmEvent[])
      fsm.handle(e);
    assert.equal(fsm.handle({ name: 'Evt12' }).action, 'AR-8');
    assert.equal(fsm.state, 'Sta10');
    assert.equal(fsm.handle({ name: 'Evt13' }).action, 'AR-10');
    assert.equal(fsm.state, 'Sta12');
    assert.equal(fsm.handle({ name: 'Evt14' }).action, 'AR-4');
    assert.equal(fsm.state, 'Sta13');
  });
});
