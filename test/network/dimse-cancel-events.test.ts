/**
 * Cancel on the SCU side and the event stream, over a real TCP loopback with our ApplicationEntity
 * on both sides: request() sends C-CANCEL itself when its AbortSignal is aborted (PS3.7 9.3.2.3),
 * find() is an async iterator whose early exit cancels, and the dispatcher reports one 'request'
 * event per request it serves, with the final status, on AeOptions.events (core/events.ts).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { EventBus, type PacsEvent } from '../../src/core/events.js';
import { DataSet } from '../../src/dicom/dataset.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { EXPLICIT_VR_LE, UID } from '../../src/dicom/uid.js';
import { ApplicationEntity, type DicomServer } from '../../src/network/ae.js';
import type { DimseAssociation } from '../../src/network/dimse.js';
import { CommandField, decodeCommand } from '../../src/network/dimse-command.js';
import { Status } from '../../src/network/dimse-status.js';
import type { OutgoingPdv, Pdv } from '../../src/network/pdu.js';
import type { DimseService, MultiHandler, RequestContext } from '../../src/network/service.js';
import { ServiceError } from '../../src/network/service-error.js';
import { find } from '../../src/services/query-retrieve/find-scu.js';
import { STUDY_ROOT } from '../../src/services/query-retrieve/models.js';
import { verificationService } from '../../src/services/verification/scp.js';
import { echo, VERIFICATION_CONTEXT } from '../../src/services/verification/scu.js';
import { unwrapOk, waitFor } from './loopback-helpers.js';

const FIND = STUDY_ROOT.sopClasses.find;
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

interface Rig {
  readonly server: DicomServer;
  readonly events: PacsEvent[];
  /** What the C-FIND handler does; default: pending answers until cancelled. */
  handler: MultiHandler;
  /** Contexts of the C-FIND requests the handler saw, to look at their signals. */
  readonly seen: RequestContext[];
  connect(): Promise<DimseAssociation>;
}

const servers: DicomServer[] = [];
after(async () => {
  for (const s of servers) await s.close(0);
});

/** Pending answers (PatientID P0, P1...) until the request is cancelled. */
const endless: MultiHandler = async function* () {
  for (let i = 0; ; i++) {
    const ds = new DataSet();
    ds.setString(TAG.PatientID, `P${i}`);
    yield { status: Status.Pending, dataSet: ds };
    await tick();
  }
};

async function rig(): Promise<Rig> {
  const bus = new EventBus();
  const events: PacsEvent[] = [];
  bus.subscribe((e) => events.push(e));
  const seen: RequestContext[] = [];
  const r = {
    events,
    seen,
    handler: endless,
  } as { events: PacsEvent[]; seen: RequestContext[]; handler: MultiHandler };
  const service: DimseService = {
    name: 'test-find',
    sopClasses: [{ uid: FIND }],
    transferSyntaxes: [EXPLICIT_VR_LE],
    handlers: {
      'C-FIND': (ctx, identifier) => {
        seen.push(ctx);
        return r.handler(ctx, identifier);
      },
    },
  };
  const server = await new ApplicationEntity({ aeTitle: 'PACS', events: bus })
    .addService(verificationService())
    .addService(service)
    .listen({ port: 0, host: '127.0.0.1' });
  servers.push(server);
  const port = server.address?.port ?? 0;
  return Object.assign(r, {
    server,
    connect: async () =>
      unwrapOk(
        await new ApplicationEntity({ aeTitle: 'SCU' }).connect({
          host: '127.0.0.1',
          port,
          calledAeTitle: 'PACS',
          contexts: [VERIFICATION_CONTEXT, { abstractSyntax: FIND, transferSyntaxes: [EXPLICIT_VR_LE] }],
        }),
      ),
  });
}

/** The command fields (and the message ID they answer) an association sends, by wrapping sendPData. */
function recordCommands(dimse: DimseAssociation): Array<{ field: number; respondingTo: number | undefined }> {
  const sent: Array<{ field: number; respondingTo: number | undefined }> = [];
  const assoc = dimse.association;
  const original = assoc.sendPData.bind(assoc);
  assoc.sendPData = (pdvs: readonly OutgoingPdv[]) => {
    for (const pdv of pdvs) {
      if (!pdv.isCommand || !pdv.isLast) continue;
      const bytes = pdv.data instanceof Uint8Array ? pdv.data : Buffer.concat([...pdv.data]);
      const command = decodeCommand(bytes);
      sent.push({ field: command.commandField, respondingTo: command.messageIdBeingRespondedTo });
    }
    return original(pdvs);
  };
  return sent;
}

const findRq = {
  commandField: CommandField.C_FIND_RQ,
  affectedSopClassUid: FIND,
  priority: 0,
  hasDataSet: true,
} as const;

function pcId(assoc: DimseAssociation): number {
  const pc = assoc.presentationContexts.find((c) => c.abstractSyntax === FIND);
  assert.ok(pc);
  return pc.id;
}

describe('request() with an AbortSignal', () => {
  it('sends C-CANCEL-RQ for the request when the signal is aborted, and yields the final Cancel', async () => {
    const r = await rig();
    const client = await r.connect();
    const sent = recordCommands(client);
    const controller = new AbortController();
    const statuses: number[] = [];
    for await (const response of client.request(pcId(client), findRq, new DataSet(), {
      signal: controller.signal,
    })) {
      statuses.push(response.command.status ?? -1);
      if (statuses.length === 3) controller.abort();
    }
    assert.equal(statuses.at(-1), Status.Cancel);
    assert.ok(statuses.slice(0, -1).every((s) => s === Status.Pending));
    const findId = client.lastMessageId;
    const cancels = sent.filter((c) => c.field === CommandField.C_CANCEL_RQ);
    assert.deepEqual(cancels, [{ field: CommandField.C_CANCEL_RQ, respondingTo: findId }], 'one C-CANCEL-RQ');
    const reason = r.seen[0]?.signal.reason as { code?: string } | undefined;
    assert.equal(reason?.code, 'ERR_CANCELLED', 'the SCP saw the C-CANCEL');
    assert.equal(unwrapOk(await echo(client)), Status.Success, 'the association goes on');
    await client.release();
  });

  it('sends C-CANCEL right after the request when the signal is already aborted', async () => {
    const r = await rig();
    const client = await r.connect();
    const sent = recordCommands(client);
    const statuses: number[] = [];
    for await (const response of client.request(pcId(client), findRq, new DataSet(), {
      signal: AbortSignal.abort(),
    }))
      statuses.push(response.command.status ?? -1);
    assert.equal(statuses.at(-1), Status.Cancel);
    assert.deepEqual(
      sent.map((c) => c.field),
      [CommandField.C_FIND_RQ, CommandField.C_CANCEL_RQ],
    );
    await client.release();
  });

  it('cancels and reads to the final response when the caller leaves the loop early', async () => {
    const r = await rig();
    const client = await r.connect();
    const sent = recordCommands(client);
    let n = 0;
    for await (const _ of client.request(pcId(client), findRq, new DataSet())) if (++n === 2) break;
    assert.ok(sent.some((c) => c.field === CommandField.C_CANCEL_RQ));
    // Every response of the cancelled request was read: the next request gets its own.
    assert.equal(unwrapOk(await echo(client)), Status.Success);
    await client.release();
  });
});

describe('find() as an async iterator', () => {
  it('yields each match, then gives the final status in outcome', async () => {
    const r = await rig();
    r.handler = async function* () {
      for (const id of ['A', 'B', 'C']) {
        const ds = new DataSet();
        ds.setString(TAG.PatientID, id);
        yield { status: Status.Pending, dataSet: ds };
      }
    };
    const client = await r.connect();
    const query = find(client, new DataSet(), { level: 'STUDY' });
    const ids: string[] = [];
    for await (const match of query) ids.push(match.string(TAG.PatientID) ?? '');
    assert.deepEqual(ids, ['A', 'B', 'C']);
    const outcome = unwrapOk(await query.outcome);
    assert.equal(outcome.status, Status.Success);
    assert.equal(outcome.matches, 3);
    assert.equal(r.seen[0]?.command.commandField, CommandField.C_FIND_RQ);
    await client.release();
  });

  it('sets Query/Retrieve Level only when asked (a worklist identifier carries none)', async () => {
    const r = await rig();
    const levels: Array<string | undefined> = [];
    r.handler = (_ctx, identifier) => {
      levels.push(
        identifier.has(TAG.QueryRetrieveLevel) ? identifier.string(TAG.QueryRetrieveLevel) : undefined,
      );
      return (async function* () {})();
    };
    const client = await r.connect();
    const keys = new DataSet();
    keys.setString(TAG.PatientID, 'X');
    unwrapOk(await find(client, keys, { level: 'SERIES' }).outcome);
    unwrapOk(await find(client, keys).outcome);
    assert.deepEqual(levels, ['SERIES', undefined]);
    assert.equal(keys.has(TAG.QueryRetrieveLevel), false, "the caller's data set is left alone");
    await client.release();
  });

  it('sends C-CANCEL when the loop breaks early, ends with Cancel, and leaves the association usable', async () => {
    const r = await rig();
    const client = await r.connect();
    const sent = recordCommands(client);
    const query = find(client, new DataSet(), { level: 'STUDY' });
    let n = 0;
    for await (const _ of query) if (++n === 4) break;
    const outcome = unwrapOk(await query.outcome);
    assert.equal(outcome.status, Status.Cancel);
    assert.equal(sent.filter((c) => c.field === CommandField.C_CANCEL_RQ).length, 1);
    assert.equal((r.seen[0]?.signal.reason as { code?: string } | undefined)?.code, 'ERR_CANCELLED');
    assert.equal(unwrapOk(await echo(client)), Status.Success);
    await client.release();
  });

  it('says ERR_NO_CONTEXT in outcome, and yields nothing, when the SOP class was not accepted', async () => {
    const r = await rig();
    const client = await r.connect();
    const query = find(client, new DataSet(), {
      sopClassUid: '1.2.840.10008.5.1.4.1.2.1.1',
      level: 'PATIENT',
    });
    let n = 0;
    for await (const _ of query) n++;
    assert.equal(n, 0);
    const outcome = await query.outcome;
    assert.equal(!outcome.ok && outcome.error.code, 'ERR_NO_CONTEXT');
    await client.release();
  });
});

describe('the event stream', () => {
  it("reports one 'request' per request served, with its final status, and the association's life", async () => {
    const r = await rig();
    r.handler = async function* (_ctx, identifier) {
      if (identifier.string(TAG.PatientID) === 'BAD')
        throw new ServiceError(Status.IdentifierDoesNotMatchSopClass, 'no');
      yield { status: Status.Pending, dataSet: new DataSet() };
    };
    const client = await r.connect();
    for (let i = 0; i < 3; i++) unwrapOk(await echo(client));
    unwrapOk(await find(client, new DataSet(), { level: 'STUDY' }).outcome);
    const bad = new DataSet();
    bad.setString(TAG.PatientID, 'BAD');
    unwrapOk(await find(client, bad, { level: 'STUDY' }).outcome);
    await client.release();
    await waitFor(() => r.events.some((e) => e.type === 'association-closed'));
    const requests = r.events.filter((e) => e.type === 'request');
    assert.deepEqual(
      requests.map((e) => [e.command, e.sopClassUid, e.status, e.peerAeTitle]),
      [
        ['C-ECHO', UID.Verification, Status.Success, 'SCU'],
        ['C-ECHO', UID.Verification, Status.Success, 'SCU'],
        ['C-ECHO', UID.Verification, Status.Success, 'SCU'],
        ['C-FIND', FIND, Status.Success, 'SCU'],
        ['C-FIND', FIND, Status.IdentifierDoesNotMatchSopClass, 'SCU'],
      ],
    );
    for (const e of requests) {
      assert.ok(e.durationMs >= 0);
      assert.equal(e.remoteAddress, '127.0.0.1');
    }
    const opened = r.events.filter((e) => e.type === 'association-opened');
    assert.deepEqual(opened, [
      {
        type: 'association-opened',
        callingAeTitle: 'SCU',
        calledAeTitle: 'PACS',
        remoteAddress: '127.0.0.1',
        role: 'acceptor',
      },
    ]);
    const closed = r.events.find((e) => e.type === 'association-closed');
    assert.ok(closed?.type === 'association-closed');
    assert.equal(closed.outcome, 'released');
    assert.equal(closed.requests, 5);
    assert.equal(closed.failures, 1);
    assert.ok(closed.bytesReceived > 0);
    assert.equal(r.events.at(-1)?.type, 'association-closed', 'closed comes last');
  });

  it('hands the bus to handlers as ctx.events', async () => {
    const r = await rig();
    r.handler = (ctx) => {
      ctx.events?.emit({
        type: 'query',
        service: 'C-FIND',
        level: 'STUDY',
        matches: 0,
        durationMs: 0,
        source: ctx.peerAeTitle,
      });
      return (async function* () {})();
    };
    const client = await r.connect();
    unwrapOk(await find(client, new DataSet(), { level: 'STUDY' }).outcome);
    await client.release();
    assert.ok(r.events.some((e) => e.type === 'query' && e.source === 'SCU'));
  });

  it("reports 'association-failed' for a rejected association and for the association limit", async () => {
    const bus = new EventBus();
    const events: PacsEvent[] = [];
    bus.on('association-failed', (e) => events.push(e));
    const server = await new ApplicationEntity({ aeTitle: 'PACS', events: bus })
      .addService(verificationService())
      .listen({ port: 0, host: '127.0.0.1', maxAssociations: 1 });
    servers.push(server);
    const port = server.address?.port ?? 0;
    const scu = new ApplicationEntity({ aeTitle: 'SCU' });
    const connect = (calledAeTitle: string) =>
      scu.connect({ host: '127.0.0.1', port, calledAeTitle, contexts: [VERIFICATION_CONTEXT] });
    const wrongTitle = await connect('NOT-PACS');
    assert.equal(wrongTitle.ok, false);
    const first = unwrapOk(await connect('PACS'));
    const second = await connect('PACS');
    assert.equal(second.ok, false);
    await first.release();
    await waitFor(() => events.length >= 2);
    assert.deepEqual(
      events.map((e) => e.type === 'association-failed' && [e.kind, e.remoteAddress]),
      [
        ['rejected', '127.0.0.1'],
        ['limit', '127.0.0.1'],
      ],
    );
  });
});

describe('reassembly without copying', () => {
  it('parses a data set that arrived in one PDV from the received bytes themselves', async () => {
    const r = await rig();
    r.handler = async function* () {
      const ds = new DataSet();
      ds.setString(TAG.PatientID, 'VIEW-NOT-COPY');
      yield { status: Status.Pending, dataSet: ds };
    };
    const client = await r.connect();
    // Record the PDVs the client's read loop takes from its Upper Layer.
    const ul = (client.association as unknown as { ul: { nextPdv(): Promise<IteratorResult<Pdv>> } }).ul;
    const received: Pdv[] = [];
    const original = ul.nextPdv.bind(ul);
    ul.nextPdv = async () => {
      const next = await original();
      if (!next.done) received.push(next.value);
      return next;
    };
    const query = find(client, new DataSet(), { level: 'STUDY' });
    const matches: DataSet[] = [];
    for await (const m of query) matches.push(m);
    unwrapOk(await query.outcome);
    const identifierPdv = received.find((p) => !p.isCommand);
    assert.ok(identifierPdv?.isLast, 'the identifier came in one PDV');
    const value = matches[0]?.get(TAG.PatientID)?.value;
    assert.ok(value instanceof Uint8Array);
    assert.equal(value.buffer, identifierPdv.data.buffer, 'the value is a view of the received chunk');
    await client.release();
  });
});
