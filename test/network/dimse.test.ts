/**
 * DIMSE over a real TCP loopback, our ApplicationEntity on both sides: fragmentation into PDVs and
 * reassembly, streamed C-STORE with backpressure, multi-response handlers and C-CANCEL, handler
 * failures, requests the dispatcher refuses (statuses listed at the top of src/network/dimse.ts),
 * protocol errors (A-ABORT) and the response timeout.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { PacsError } from '../../src/core/errors.js';
import { DataSet } from '../../src/dicom/dataset.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { EXPLICIT_VR_LE, IMPLICIT_VR_LE, UID } from '../../src/dicom/uid.js';
import { ApplicationEntity, type AssociationSummary, type DicomServer } from '../../src/network/ae.js';
import type { AssociationTimeouts, ProposedPresentationContext } from '../../src/network/association.js';
import type { DimseAssociation } from '../../src/network/dimse.js';
import { CommandField, type DimseCommand, encodeCommand, Priority } from '../../src/network/dimse-command.js';
import { Status } from '../../src/network/dimse-status.js';
import { NetworkError } from '../../src/network/errors.js';
import { type OutgoingPdv, pDataTfLength } from '../../src/network/pdu.js';
import type {
  DimseResponse,
  DimseService,
  MultiHandler,
  ResponseMessage,
  SingleHandler,
  StoreHandler,
} from '../../src/network/service.js';
import { verificationService } from '../../src/services/verification/scp.js';
import { echo } from '../../src/services/verification/scu.js';
import { h } from './bytes-helpers.js';
import { rawAssociateRq, unwrapOk, waitFor } from './loopback-helpers.js';

const CT = UID.CTImageStorage;
const MR = UID.MRImageStorage;
const FIND = '1.2.840.10008.5.1.4.1.2.2.1';
const GET = '1.2.840.10008.5.1.4.1.2.2.3';
const MPPS = UID.ModalityPerformedProcedureStep;
const INSTANCE = '1.2.3.4.5.6.7.8.9';

/** Handlers the tests swap in; each defaults to a plain success. */
interface Hooks {
  store?: StoreHandler;
  find?: MultiHandler;
  get?: MultiHandler;
  nCreate?: SingleHandler;
  nSet?: SingleHandler;
  nGet?: SingleHandler;
  nAction?: SingleHandler;
  nEventReport?: SingleHandler;
}

function testService(hooks: Hooks): DimseService {
  const success: DimseResponse = { status: Status.Success };
  return {
    name: 'test',
    sopClasses: [{ uid: CT }, { uid: FIND }, { uid: GET }, { uid: MPPS }],
    transferSyntaxes: [EXPLICIT_VR_LE, IMPLICIT_VR_LE],
    requestorRoles: { scu: true, scp: true },
    handlers: {
      'C-STORE': async (ctx, data) => {
        if (hooks.store) return hooks.store(ctx, data);
        for await (const _ of data) {
          // discard
        }
        return success;
      },
      'C-FIND': (ctx, identifier) => (hooks.find ?? async function* () {})(ctx, identifier),
      'C-GET': (ctx, identifier) => (hooks.get ?? async function* () {})(ctx, identifier),
      'N-CREATE': (ctx, ds) => (hooks.nCreate ? hooks.nCreate(ctx, ds) : success),
      'N-SET': (ctx, ds) => (hooks.nSet ? hooks.nSet(ctx, ds) : success),
      'N-GET': (ctx, ds) => (hooks.nGet ? hooks.nGet(ctx, ds) : success),
      'N-ACTION': (ctx, ds) => (hooks.nAction ? hooks.nAction(ctx, ds) : success),
      'N-EVENT-REPORT': (ctx, ds) => (hooks.nEventReport ? hooks.nEventReport(ctx, ds) : success),
    },
  };
}

const ALL_CONTEXTS: readonly ProposedPresentationContext[] = [
  { abstractSyntax: UID.Verification, transferSyntaxes: [IMPLICIT_VR_LE] },
  { abstractSyntax: CT, transferSyntaxes: [EXPLICIT_VR_LE], roles: { scu: true, scp: true } },
  { abstractSyntax: FIND, transferSyntaxes: [EXPLICIT_VR_LE] },
  { abstractSyntax: GET, transferSyntaxes: [EXPLICIT_VR_LE] },
  { abstractSyntax: MPPS, transferSyntaxes: [EXPLICIT_VR_LE] },
];

interface Setup {
  server: DicomServer;
  port: number;
  hooks: Hooks;
  ended: AssociationSummary[];
  connect(options?: {
    maxPduLength?: number;
    responseTimeoutMs?: number;
    services?: DimseService[];
  }): Promise<DimseAssociation>;
}

const servers: DicomServer[] = [];
after(async () => {
  for (const s of servers) await s.close(0);
});

async function setup(
  options: { maxPduLength?: number; timeouts?: AssociationTimeouts } = {},
): Promise<Setup> {
  const hooks: Hooks = {};
  const ae = new ApplicationEntity({
    aeTitle: 'PACS',
    maxPduLength: options.maxPduLength ?? 16384,
    ...(options.timeouts ? { timeouts: options.timeouts } : {}),
  })
    .addService(verificationService())
    .addService(testService(hooks));
  const server = await ae.listen({ port: 0, host: '127.0.0.1' });
  servers.push(server);
  const ended: AssociationSummary[] = [];
  server.onAssociationEnd = (s) => ended.push(s);
  const port = server.address?.port ?? 0;
  return {
    server,
    port,
    hooks,
    ended,
    connect: async (o = {}) => {
      const scu = new ApplicationEntity({
        aeTitle: 'SCU',
        maxPduLength: o.maxPduLength ?? 16384,
        ...(o.responseTimeoutMs !== undefined ? { responseTimeoutMs: o.responseTimeoutMs } : {}),
      });
      for (const s of o.services ?? []) scu.addService(s);
      return unwrapOk(
        await scu.connect({ host: '127.0.0.1', port, calledAeTitle: 'PACS', contexts: ALL_CONTEXTS }),
      );
    },
  };
}

function contextFor(assoc: DimseAssociation, sopClass: string): number {
  const pc = assoc.presentationContexts.find((c) => c.abstractSyntax === sopClass);
  assert.ok(pc, `context for ${sopClass} accepted`);
  return pc.id;
}

function storeRq(sopClass: string = CT): Omit<DimseCommand, 'messageId'> {
  return {
    commandField: CommandField.C_STORE_RQ,
    affectedSopClassUid: sopClass,
    affectedSopInstanceUid: INSTANCE,
    priority: Priority.Medium,
    hasDataSet: true,
  };
}

function pattern(length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + (i >>> 8)) & 0xff;
  return out;
}

/** A data set with one OB value of `length` bytes (Explicit VR LE adds a 12-byte header). */
function bigDataSet(length: number): DataSet {
  const ds = new DataSet();
  ds.setString(TAG.SOPInstanceUID, INSTANCE);
  ds.set({ tag: 0x00091010, vr: 'OB', value: pattern(length) });
  return ds;
}

/** Records the P-DATA-TF lengths an association sends (by wrapping its sendPData). */
function recordPduLengths(dimse: DimseAssociation): number[] {
  const lengths: number[] = [];
  const assoc = dimse.association;
  const original = assoc.sendPData.bind(assoc);
  assoc.sendPData = (pdvs: readonly OutgoingPdv[]) => {
    lengths.push(pDataTfLength(pdvs) - 6);
    return original(pdvs);
  };
  return lengths;
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Resolves once `value()` has not changed for `quietMs` (the stream is stalled). */
async function stalled(value: () => number, quietMs = 300): Promise<void> {
  let last = value();
  let since = Date.now();
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    const now = value();
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) return;
  }
}

describe('DIMSE data sets cut into PDVs and reassembled', () => {
  for (const maxPdu of [4096, 131072]) {
    it(`sends a data set larger than the peer's maximum PDU ${maxPdu} as PDVs and reassembles it`, async () => {
      const s = await setup({ maxPduLength: maxPdu });
      const dataLength = 3 * maxPdu + 1234;
      // Client to server: a C-STORE data set; the handler sees each PDV value as one chunk.
      const chunks: number[] = [];
      let received = Buffer.alloc(0);
      s.hooks.store = async (_ctx, data) => {
        const parts: Uint8Array[] = [];
        for await (const c of data) {
          chunks.push(c.length);
          parts.push(c);
        }
        received = Buffer.concat(parts);
        return { status: Status.Success };
      };
      // Server to client: an N-GET answer larger than the client's maximum.
      const answer = bigDataSet(dataLength);
      let serverPdus: number[] = [];
      s.hooks.nGet = (ctx) => {
        serverPdus = recordPduLengths(ctx.association as DimseAssociation);
        return { status: Status.Success, dataSet: answer };
      };
      const client = await s.connect({ maxPduLength: maxPdu });
      const clientPdus = recordPduLengths(client);
      const data = pattern(dataLength);
      const stored = await client.requestOne(contextFor(client, CT), storeRq(), data);
      assert.equal(stored.command.status, Status.Success);
      assert.ok(received.equals(data), 'the store handler got every byte in order');
      assert.ok(chunks.length >= 4, `cut into ${chunks.length} PDVs`);
      assert.ok(chunks.every((n) => n <= maxPdu - 6));
      assert.ok(
        clientPdus.every((n) => n <= maxPdu),
        `client PDUs within ${maxPdu}: ${clientPdus}`,
      );

      const got = await client.requestOne(contextFor(client, MPPS), {
        commandField: CommandField.N_GET_RQ,
        requestedSopClassUid: MPPS,
        requestedSopInstanceUid: INSTANCE,
        hasDataSet: false,
      });
      assert.equal(got.command.status, Status.Success);
      assert.equal(got.command.affectedSopInstanceUid, INSTANCE);
      assert.ok(Buffer.from(got.dataSet?.bytes(0x00091010) ?? []).equals(pattern(dataLength)));
      assert.ok(serverPdus.length >= 4);
      assert.ok(
        serverPdus.every((n) => n <= maxPdu),
        `server PDUs within ${maxPdu}: ${serverPdus}`,
      );
      await client.release();
    });
  }

  it('sends a command and a data set that fit one PDU in one P-DATA-TF of two PDVs (PS3.8 9.3.5)', async () => {
    const s = await setup({ maxPduLength: 4096 });
    let serverPdus: OutgoingPdv[][] = [];
    const small = bigDataSet(100);
    const large = bigDataSet(5000);
    let wrapped = false;
    s.hooks.nGet = (ctx) => {
      const assoc = (ctx.association as DimseAssociation).association;
      if (!wrapped) {
        wrapped = true;
        const original = assoc.sendPData.bind(assoc);
        assoc.sendPData = (pdvs: readonly OutgoingPdv[]) => {
          serverPdus.push([...pdvs]);
          return original(pdvs);
        };
      }
      return {
        status: Status.Success,
        dataSet: ctx.command.requestedSopInstanceUid === INSTANCE ? small : large,
      };
    };
    const client = await s.connect({ maxPduLength: 4096 });
    const nGet = (uid: string) =>
      client.requestOne(contextFor(client, MPPS), {
        commandField: CommandField.N_GET_RQ,
        requestedSopClassUid: MPPS,
        requestedSopInstanceUid: uid,
        hasDataSet: false,
      });
    const got = await nGet(INSTANCE);
    assert.ok(Buffer.from(got.dataSet?.bytes(0x00091010) ?? []).equals(pattern(100)));
    assert.deepEqual(
      serverPdus.map((pdu) => pdu.map((p) => [p.isCommand, p.isLast])),
      [
        [
          [true, true],
          [false, true],
        ],
      ],
      'one PDU: the whole command, then the whole data set',
    );
    // Larger than one PDU: the command shares the first with the data set's first fragment.
    serverPdus = [];
    const big = await nGet('1.2.3.4');
    assert.ok(Buffer.from(big.dataSet?.bytes(0x00091010) ?? []).equals(pattern(5000)));
    assert.deepEqual(
      serverPdus.map((pdu) => pdu.map((p) => [p.isCommand, p.isLast])),
      [
        [
          [true, true],
          [false, false],
        ],
        [[false, true]],
      ],
    );
    assert.ok(serverPdus.every((pdu) => pDataTfLength(pdu) - 6 <= 4096));
    await client.release();
  });

  it('streams a data set from an async source of odd-sized chunks', async () => {
    const s = await setup();
    let total = 0;
    s.hooks.store = async (_ctx, data) => {
      for await (const c of data) total += c.length;
      return { status: Status.Success };
    };
    const client = await s.connect();
    async function* source(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 100; i++) yield pattern(1 + ((i * 7919) % 9000));
    }
    let expected = 0;
    for (let i = 0; i < 100; i++) expected += 1 + ((i * 7919) % 9000);
    const r = await client.requestOne(contextFor(client, CT), storeRq(), source());
    assert.equal(r.command.status, Status.Success);
    assert.equal(total, expected);
    await client.release();
  });
});

describe('C-STORE streaming with backpressure', () => {
  it('hands the data set to the handler in chunks and makes the read loop wait for a slow handler', async () => {
    const s = await setup({ maxPduLength: 65536 });
    let gate: () => void = () => {};
    const opened = new Promise<void>((resolve) => {
      gate = resolve;
    });
    let serverDimse: DimseAssociation | undefined;
    let consumed = 0;
    let chunkCount = 0;
    s.hooks.store = async (ctx, data) => {
      serverDimse = ctx.association as DimseAssociation;
      for await (const c of data) {
        consumed += c.length;
        chunkCount++;
        if (chunkCount === 1) await opened;
      }
      return { status: Status.Success };
    };
    const client = await s.connect({ maxPduLength: 65536 });
    const total = 64 * 1024 * 1024;
    let produced = 0;
    async function* source(): AsyncGenerator<Uint8Array> {
      while (produced < total) {
        const chunk = Buffer.alloc(Math.min(256 * 1024, total - produced), produced & 0xff);
        produced += chunk.length;
        yield chunk;
      }
    }
    const storing = client.requestOne(contextFor(client, CT), storeRq(), source());
    await waitFor(() => chunkCount === 1);
    await stalled(() => produced);
    // The handler holds its first chunk: the read loop stopped after its channel's high-water
    // mark (1 MiB) plus one PDV, so the sender stopped too (bounded by socket and receive buffers).
    const received = serverDimse?.stats.bytesReceived ?? Number.POSITIVE_INFINITY;
    assert.ok(received <= consumed + 1024 * 1024 + 2 * 65536, `server read ${received} bytes ahead`);
    assert.ok(produced < total / 2, `sender blocked after ${produced} of ${total} bytes`);
    gate();
    const r = await storing;
    assert.equal(r.command.status, Status.Success);
    assert.equal(consumed, total);
    assert.ok(chunkCount > 100, `${chunkCount} chunks`);
    await client.release();
  });
});

describe('multi-response handlers', () => {
  it('streams pending responses as they come, then the final one', async () => {
    const s = await setup();
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    s.hooks.find = async function* () {
      for (let i = 0; i < 3; i++) {
        const ds = new DataSet();
        ds.setString(TAG.PatientID, `P${i}`);
        yield { status: Status.Pending, dataSet: ds };
        if (i === 0) await gate;
      }
    };
    const client = await s.connect();
    const identifier = new DataSet();
    identifier.setString(TAG.QueryRetrieveLevel, 'STUDY');
    const responses: ResponseMessage[] = [];
    for await (const r of client.request(
      contextFor(client, FIND),
      {
        commandField: CommandField.C_FIND_RQ,
        affectedSopClassUid: FIND,
        priority: Priority.Medium,
        hasDataSet: true,
      },
      identifier,
    )) {
      responses.push(r);
      // The first match arrives while the handler still waits for its gate.
      if (responses.length === 1) release();
    }
    assert.deepEqual(
      responses.map((r) => [r.command.status, r.dataSet?.string(TAG.PatientID)]),
      [
        [Status.Pending, 'P0'],
        [Status.Pending, 'P1'],
        [Status.Pending, 'P2'],
        [Status.Success, undefined],
      ],
    );
    await client.release();
  });

  it('gives requestOne the final response, past the pending ones', async () => {
    const s = await setup();
    s.hooks.find = async function* () {
      for (let i = 0; i < 5; i++) yield { status: Status.Pending, dataSet: new DataSet() };
      yield { status: Status.Success };
    };
    const client = await s.connect();
    const r = await client.requestOne(
      contextFor(client, FIND),
      { commandField: CommandField.C_FIND_RQ, affectedSopClassUid: FIND, priority: 0, hasDataSet: true },
      new DataSet(),
    );
    assert.equal(r.command.status, Status.Success);
    assert.equal(r.command.messageIdBeingRespondedTo, client.lastMessageId);
    assert.equal(unwrapOk(await echo(client)), Status.Success);
    await client.release();
  });

  it('stops a handler on C-CANCEL and answers 0xFE00', async () => {
    const s = await setup();
    let finished = false;
    let sawSignal = false;
    s.hooks.find = async function* (ctx) {
      try {
        for (let i = 0; ; i++) {
          if (ctx.signal.aborted) sawSignal = true;
          const ds = new DataSet();
          ds.setString(TAG.PatientID, `P${i}`);
          yield { status: Status.Pending, dataSet: ds };
          await tick();
        }
      } finally {
        finished = true;
      }
    };
    const client = await s.connect();
    const ctxId = contextFor(client, FIND);
    const statuses: number[] = [];
    let cancelled = false;
    for await (const r of client.request(
      ctxId,
      { commandField: CommandField.C_FIND_RQ, affectedSopClassUid: FIND, priority: 0, hasDataSet: true },
      new DataSet(),
    )) {
      statuses.push(r.command.status ?? -1);
      if (statuses.length === 3 && !cancelled) {
        cancelled = true;
        await client.cancel(ctxId, client.lastMessageId);
      }
    }
    assert.equal(statuses.at(-1), Status.Cancel);
    assert.ok(statuses.slice(0, -1).every((st) => st === Status.Pending));
    assert.ok(finished, "the handler's generator was closed");
    assert.ok(sawSignal, 'its signal was aborted');
    // The association goes on.
    assert.equal(unwrapOk(await echo(client)), Status.Success);
    await client.release();
  });

  it('lets a handler see the cancel through its signal while it waits', async () => {
    const s = await setup();
    let aborted = false;
    s.hooks.find = async function* (ctx) {
      yield { status: Status.Pending, dataSet: new DataSet() };
      await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
      aborted = true;
      yield { status: Status.Pending, dataSet: new DataSet() };
    };
    const client = await s.connect();
    const ctxId = contextFor(client, FIND);
    const statuses: number[] = [];
    for await (const r of client.request(
      ctxId,
      { commandField: CommandField.C_FIND_RQ, affectedSopClassUid: FIND, priority: 0, hasDataSet: true },
      new DataSet(),
    )) {
      statuses.push(r.command.status ?? -1);
      if (statuses.length === 1) await client.cancel(ctxId, client.lastMessageId);
    }
    assert.deepEqual(statuses, [Status.Pending, Status.Cancel]);
    assert.ok(aborted);
    await client.release();
  });

  it('sends sub-operation counts in C-GET responses, and a sub-operation C-STORE back to the requestor', async () => {
    const s = await setup();
    const stored: string[] = [];
    const scuStorage: DimseService = {
      name: 'storage-scp-on-requestor',
      sopClasses: [{ uid: CT }],
      transferSyntaxes: [EXPLICIT_VR_LE],
      handlers: {
        'C-STORE': async (ctx, data) => {
          let n = 0;
          for await (const c of data) n += c.length;
          stored.push(`${ctx.command.affectedSopInstanceUid}:${n}`);
          return { status: Status.Success };
        },
      },
    };
    s.hooks.get = async function* (ctx) {
      const pc = ctx.association.presentationContexts.find((c) => c.abstractSyntax === CT && c.scu);
      assert.ok(pc, 'the server may send C-STORE on the CT context');
      for (let i = 0; i < 2; i++) {
        for await (const r of ctx.association.request(
          pc.id,
          { ...storeRq(), affectedSopInstanceUid: `${INSTANCE}.${i}` },
          pattern(5000),
        )) {
          assert.equal(r.command.status, Status.Success);
        }
        yield {
          status: Status.Pending,
          remainingSubOperations: 1 - i,
          completedSubOperations: i + 1,
          failedSubOperations: 0,
          warningSubOperations: 0,
        };
      }
      yield {
        status: Status.Success,
        completedSubOperations: 2,
        failedSubOperations: 0,
        warningSubOperations: 0,
      };
    };
    const client = await s.connect({ services: [scuStorage] });
    const responses: ResponseMessage[] = [];
    for await (const r of client.request(
      contextFor(client, GET),
      { commandField: CommandField.C_GET_RQ, affectedSopClassUid: GET, priority: 0, hasDataSet: true },
      new DataSet(),
    )) {
      responses.push(r);
    }
    assert.deepEqual(stored, [`${INSTANCE}.0:5000`, `${INSTANCE}.1:5000`]);
    assert.deepEqual(
      responses.map((r) => [
        r.command.status,
        r.command.remainingSubOperations,
        r.command.completedSubOperations,
        r.command.failedSubOperations,
      ]),
      [
        [Status.Pending, 1, 1, 0],
        [Status.Pending, 0, 2, 0],
        [Status.Success, undefined, 2, 0],
      ],
    );
    await client.release();
  });
});

describe('handler failures', () => {
  it('turns an exception in a single-response handler into 0x0110 and serves the next request', async () => {
    const s = await setup();
    let calls = 0;
    s.hooks.nAction = () => {
      calls++;
      if (calls === 1) throw new Error('storage commitment database is down');
      return { status: Status.Success };
    };
    const client = await s.connect();
    const rq = {
      commandField: CommandField.N_ACTION_RQ,
      requestedSopClassUid: MPPS,
      requestedSopInstanceUid: INSTANCE,
      actionTypeId: 1,
      hasDataSet: false,
    };
    const failed = await client.requestOne(contextFor(client, MPPS), rq);
    assert.equal(failed.command.status, Status.ProcessingFailure);
    assert.match(failed.command.errorComment ?? '', /database is down/);
    assert.ok((failed.command.errorComment ?? '').length <= 64);
    const ok = await client.requestOne(contextFor(client, MPPS), rq);
    assert.equal(ok.command.status, Status.Success);
    assert.equal(ok.command.actionTypeId, 1, 'N-ACTION-RSP carries the Action Type ID (PS3.7 10.3.4: C(=))');
    await client.release();
  });

  it('answers 0x0110 when a C-STORE handler throws before reading its (large) data set', async () => {
    const s = await setup({ maxPduLength: 65536 });
    let calls = 0;
    s.hooks.store = async (_ctx, data) => {
      calls++;
      if (calls === 1) throw new Error('no space left on device');
      let n = 0;
      for await (const c of data) n += c.length;
      return { status: n === 4 * 1024 * 1024 ? Status.Success : Status.ProcessingFailure };
    };
    const client = await s.connect({ maxPduLength: 65536 });
    const big = pattern(4 * 1024 * 1024);
    const failed = await client.requestOne(contextFor(client, CT), storeRq(), big);
    assert.equal(failed.command.status, Status.ProcessingFailure);
    assert.match(failed.command.errorComment ?? '', /no space left/);
    const ok = await client.requestOne(contextFor(client, CT), storeRq(), big);
    assert.equal(ok.command.status, Status.Success);
    await client.release();
  });

  it('answers 0x0110 when a C-STORE handler throws half-way through its data set', async () => {
    const s = await setup({ maxPduLength: 65536 });
    let calls = 0;
    s.hooks.store = async (_ctx, data) => {
      calls++;
      let n = 0;
      for await (const c of data) {
        n += c.length;
        if (calls === 1 && n > 1024 * 1024) throw new Error('bad pixel data');
      }
      return { status: Status.Success };
    };
    const client = await s.connect({ maxPduLength: 65536 });
    const big = pattern(4 * 1024 * 1024);
    assert.equal(
      (await client.requestOne(contextFor(client, CT), storeRq(), big)).command.status,
      Status.ProcessingFailure,
    );
    assert.equal(
      (await client.requestOne(contextFor(client, CT), storeRq(), big)).command.status,
      Status.Success,
    );
    await client.release();
  });

  it('sends the failure after the data set was received, not in the middle of it', async () => {
    const s = await setup({ maxPduLength: 16384 });
    s.hooks.store = async () => ({ status: Status.OutOfResources, errorComment: 'quota exceeded' });
    const client = await s.connect();
    let produced = 0;
    async function* source(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 64; i++) {
        produced += 65536;
        yield pattern(65536);
      }
    }
    const r = await client.requestOne(contextFor(client, CT), storeRq(), source());
    assert.equal(r.command.status, Status.OutOfResources);
    assert.equal(produced, 64 * 65536);
    assert.equal(unwrapOk(await echo(client)), Status.Success);
    await client.release();
  });

  it('ends a multi-response handler that throws with 0x0110 after its pending responses', async () => {
    const s = await setup();
    s.hooks.find = async function* () {
      yield { status: Status.Pending, dataSet: new DataSet() };
      throw new Error('index unavailable');
    };
    const client = await s.connect();
    const statuses: number[] = [];
    for await (const r of client.request(
      contextFor(client, FIND),
      { commandField: CommandField.C_FIND_RQ, affectedSopClassUid: FIND, priority: 0, hasDataSet: true },
      new DataSet(),
    )) {
      statuses.push(r.command.status ?? -1);
    }
    assert.deepEqual(statuses, [Status.Pending, Status.ProcessingFailure]);
    assert.equal(unwrapOk(await echo(client)), Status.Success);
    await client.release();
  });

  it('survives an exception in the onAssociationEnd callback', async () => {
    const s = await setup();
    s.server.onAssociationEnd = () => {
      throw new Error('bug in a listener');
    };
    const client = await s.connect();
    await client.release();
    await waitFor(() => s.server.activeAssociations === 0);
    const again = await s.connect();
    assert.equal(unwrapOk(await echo(again)), Status.Success);
    await again.release();
  });
});

describe('requests the dispatcher answers itself', () => {
  it('answers several requests in flight on one association', async () => {
    const s = await setup();
    const client = await s.connect();
    const results = await Promise.all(Array.from({ length: 20 }, () => echo(client)));
    assert.ok(results.every((r) => r.ok && r.value === Status.Success));
    await client.release();
  });

  it('answers an unknown command with 0x0211', async () => {
    const s = await setup();
    const client = await s.connect();
    const r = await client.requestOne(contextFor(client, UID.Verification), {
      commandField: 0x0042,
      affectedSopClassUid: UID.Verification,
      hasDataSet: false,
    });
    assert.equal(r.command.commandField, 0x8042);
    assert.equal(r.command.status, Status.UnrecognizedOperation);
    assert.equal(unwrapOk(await echo(client)), Status.Success);
    await client.release();
  });

  it('answers a command the service has no handler for with 0x0211 (C-FIND on Verification)', async () => {
    const s = await setup();
    const client = await s.connect();
    const r = await client.requestOne(
      contextFor(client, UID.Verification),
      {
        commandField: CommandField.C_FIND_RQ,
        affectedSopClassUid: UID.Verification,
        priority: 0,
        hasDataSet: true,
      },
      new DataSet(),
    );
    assert.equal(r.command.status, Status.UnrecognizedOperation);
    await client.release();
  });

  it('answers a SOP class other than the context with 0x0122 (C-) and 0x0118 (N-), data set drained', async () => {
    const s = await setup();
    const client = await s.connect();
    const store = await client.requestOne(contextFor(client, CT), storeRq(MR), pattern(100_000));
    assert.equal(store.command.status, Status.SopClassNotSupported);
    const nset = await client.requestOne(
      contextFor(client, MPPS),
      {
        commandField: CommandField.N_SET_RQ,
        requestedSopClassUid: CT,
        requestedSopInstanceUid: INSTANCE,
        hasDataSet: true,
      },
      new DataSet(),
    );
    assert.equal(nset.command.status, Status.NoSuchSopClass);
    assert.equal(unwrapOk(await echo(client)), Status.Success);
    await client.release();
  });

  it('answers a C-STORE sub-operation with 0x0122 on a requestor that serves no storage', async () => {
    const s = await setup();
    let subStatus: number | undefined;
    s.hooks.get = async function* (ctx) {
      const pc = ctx.association.presentationContexts.find((c) => c.abstractSyntax === CT && c.scu);
      assert.ok(pc);
      for await (const r of ctx.association.request(pc.id, storeRq(), pattern(10)))
        subStatus = r.command.status;
      yield { status: Status.SubOperationsCompleteWithFailures, failedSubOperations: 1 };
    };
    const client = await s.connect();
    const statuses: number[] = [];
    for await (const r of client.request(
      contextFor(client, GET),
      { commandField: CommandField.C_GET_RQ, affectedSopClassUid: GET, priority: 0, hasDataSet: true },
      new DataSet(),
    )) {
      statuses.push(r.command.status ?? -1);
    }
    assert.equal(subStatus, Status.SopClassNotSupported);
    assert.deepEqual(statuses, [Status.SubOperationsCompleteWithFailures]);
    await client.release();
  });

  it('answers a data set that does not parse with 0xC000 (C-FIND) and 0x0110 (N-)', async () => {
    const s = await setup();
    const client = await s.connect();
    // An explicit VR element header announcing 0x7fff bytes, then 2 bytes: truncated.
    const broken = h('10001000 504e ff7f 4142');
    const find = await client.requestOne(
      contextFor(client, FIND),
      { commandField: CommandField.C_FIND_RQ, affectedSopClassUid: FIND, priority: 0, hasDataSet: true },
      broken,
    );
    assert.equal(find.command.status, Status.CannotUnderstand);
    const ncreate = await client.requestOne(
      contextFor(client, MPPS),
      {
        commandField: CommandField.N_CREATE_RQ,
        affectedSopClassUid: MPPS,
        affectedSopInstanceUid: INSTANCE,
        hasDataSet: true,
      },
      broken,
    );
    assert.equal(ncreate.command.status, Status.ProcessingFailure);
    await client.release();
  });

  it('answers N-EVENT-REPORT with its Event Type ID', async () => {
    const s = await setup();
    const client = await s.connect();
    const r = await client.requestOne(contextFor(client, MPPS), {
      commandField: CommandField.N_EVENT_REPORT_RQ,
      affectedSopClassUid: MPPS,
      affectedSopInstanceUid: INSTANCE,
      eventTypeId: 2,
      hasDataSet: false,
    });
    assert.equal(r.command.status, Status.Success);
    assert.equal(r.command.eventTypeId, 2);
    assert.equal(r.command.affectedSopInstanceUid, INSTANCE);
    await client.release();
  });
});

/** A raw association (Verification on context 1) whose PDVs we write by hand. */
async function rawEstablished(port: number): Promise<{ socket: net.Socket; received: () => Buffer }> {
  const socket = net.connect({ host: '127.0.0.1', port });
  await once(socket, 'connect');
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => {});
  socket.write(rawAssociateRq());
  await waitFor(() => Buffer.concat(chunks)[0] === 0x02);
  chunks.length = 0;
  return { socket, received: () => Buffer.concat(chunks) };
}

function pData(contextId: number, control: number, data: Uint8Array): Buffer {
  const pdv = Buffer.alloc(6);
  pdv.writeUInt32BE(data.length + 2, 0);
  pdv[4] = contextId;
  pdv[5] = control;
  const head = Buffer.alloc(6);
  head[0] = 0x04;
  head.writeUInt32BE(6 + data.length, 2);
  return Buffer.concat([head, pdv, data]);
}

const ECHO_RQ = encodeCommand({
  commandField: CommandField.C_ECHO_RQ,
  messageId: 1,
  affectedSopClassUid: UID.Verification,
  hasDataSet: false,
});

describe('protocol errors end the association, never the server', () => {
  const cases: ReadonlyArray<[string, Buffer]> = [
    ['a command on a presentation context that was not accepted', pData(3, 0x03, ECHO_RQ)],
    ['a malformed command set', pData(1, 0x03, h('00000000 04000000 ffff0000 0001'))],
    ['a command set without a Command Field', pData(1, 0x03, h('00001001 02000000 0100'))],
    ['a data set fragment without a command', pData(1, 0x02, h('08001800 04000000 31323334'))],
  ];
  for (const [what, bytes] of cases) {
    it(`aborts on ${what}`, async () => {
      const s = await setup();
      const raw = await rawEstablished(s.port);
      raw.socket.write(bytes);
      await waitFor(() => raw.received().length >= 10);
      const answer = raw.received();
      // A-ABORT, source service-provider (2); then the server waits (ARTIM) for us to close.
      assert.equal(answer[0], 0x07, `A-ABORT expected, got ${answer.subarray(0, 10).toString('hex')}`);
      assert.equal(answer[8], 2);
      raw.socket.destroy();
      await waitFor(() => s.ended.length === 1);
      assert.equal(s.ended[0]?.outcome, 'aborted');
      const client = await s.connect();
      assert.equal(unwrapOk(await echo(client)), Status.Success);
      await client.release();
    });
  }

  it('answers a command split across PDVs (and fragments of another PDU) like a whole one', async () => {
    const s = await setup();
    const raw = await rawEstablished(s.port);
    raw.socket.write(
      Buffer.concat([pData(1, 0x01, ECHO_RQ.subarray(0, 20)), pData(1, 0x03, ECHO_RQ.subarray(20))]),
    );
    await waitFor(() => raw.received().length >= 12);
    const pdu = raw.received();
    assert.equal(pdu[0], 0x04, 'P-DATA-TF');
    assert.equal(pdu[11], 0x03, 'a last command fragment');
    raw.socket.destroy();
  });
});

describe('timeouts', () => {
  it('fails a request with ERR_DIMSE_TIMEOUT when no response comes in responseTimeoutMs', async () => {
    const s = await setup();
    s.hooks.nAction = (ctx) =>
      new Promise((resolve) =>
        ctx.signal.addEventListener('abort', () => resolve({ status: Status.ProcessingFailure })),
      );
    const client = await s.connect({ responseTimeoutMs: 150 });
    await assert.rejects(
      client.requestOne(contextFor(client, MPPS), {
        commandField: CommandField.N_ACTION_RQ,
        requestedSopClassUid: MPPS,
        requestedSopInstanceUid: INSTANCE,
        actionTypeId: 1,
        hasDataSet: false,
      }),
      (e: unknown) => e instanceof PacsError && e.code === 'ERR_DIMSE_TIMEOUT',
    );
    // The association is still usable; the late response, if any, is ignored.
    assert.equal(unwrapOk(await echo(client)), Status.Success);
    client.abort();
    await waitFor(() => s.server.activeAssociations === 0);
  });
});

describe('the end of an association reaches its handlers', () => {
  it('aborts the handler signal when the association ends while the read loop waits for a slow handler', async () => {
    // The handler reads nothing, so the Upper Layer has paused the socket: the idle timeout ends it.
    const s = await setup({ maxPduLength: 65536, timeouts: { idleMs: 500 } });
    let serverDimse: DimseAssociation | undefined;
    let signalled = false;
    s.hooks.store = async (ctx) => {
      serverDimse = ctx.association as DimseAssociation;
      // Reads nothing: the read loop fills the channel and waits.
      await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
      signalled = true;
      return { status: Status.Cancel };
    };
    const client = await s.connect({ maxPduLength: 65536 });
    const storing = client.requestOne(contextFor(client, CT), storeRq(), pattern(8 * 1024 * 1024));
    storing.catch(() => {});
    await waitFor(() => serverDimse !== undefined);
    await assert.rejects(storing, NetworkError);
    await waitFor(() => signalled && s.ended.length === 1);
    assert.equal(s.ended[0]?.outcome, 'aborted');
    assert.equal(s.server.activeAssociations, 0);
  });

  it('fails the requests we are waiting on when the association is aborted', async () => {
    const s = await setup();
    s.hooks.nAction = () => new Promise<DimseResponse>(() => {});
    const client = await s.connect();
    const pending = client.requestOne(contextFor(client, MPPS), {
      commandField: CommandField.N_ACTION_RQ,
      requestedSopClassUid: MPPS,
      requestedSopInstanceUid: INSTANCE,
      actionTypeId: 1,
      hasDataSet: false,
    });
    pending.catch(() => {});
    await waitFor(() => client.stats.requestsSent === 1);
    client.abort();
    await assert.rejects(pending, (e: unknown) => e instanceof PacsError);
  });

  it('reports the requests of a released association in its summary', async () => {
    const s = await setup();
    const client = await s.connect();
    for (let i = 0; i < 3; i++) unwrapOk(await echo(client));
    await client.release();
    await waitFor(() => s.ended.length === 1);
    assert.equal(s.ended[0]?.outcome, 'released');
    assert.equal(s.ended[0]?.requests, 3);
    assert.equal(s.ended[0]?.callingAeTitle, 'SCU');
  });
});
