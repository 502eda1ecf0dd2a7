/**
 * The 'query' event (core/events.ts): the C-FIND and worklist SCPs emit it once per query, with
 * the service, level, number of matches, duration and the calling AE title.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MemoryArchiveIndex } from '../../src/archive/index/memory-index.js';
import { MemoryWorklistStore } from '../../src/archive/worklist/memory-store.js';
import { EventBus, type EventOf } from '../../src/core/events.js';
import { DataSet } from '../../src/dicom/dataset.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { toDicomJson } from '../../src/dicom/json.js';
import { EXPLICIT_VR_LE, UID } from '../../src/dicom/uid.js';
import { silentLogger } from '../../src/network/logger.js';
import type { DimseResponse, RequestContext, RequestSender } from '../../src/network/service.js';
import { findService } from '../../src/services/query-retrieve/find-scp.js';
import { buildWorklistItem, WORKLIST_FIND_SOP_CLASS } from '../../src/services/worklist/model.js';
import { findWorklistItems } from '../../src/services/worklist/scp.js';
import { entryOf, makeDataSet } from '../archive/helpers.js';

const NO_SENDER: RequestSender = {
  presentationContexts: [],
  request: () => {
    throw new Error('not used');
  },
};

function context(abstractSyntax: string, events: EventBus): RequestContext {
  return {
    contextId: 1,
    abstractSyntax,
    transferSyntax: EXPLICIT_VR_LE,
    command: { commandField: 0x0020, messageId: 1, hasDataSet: true },
    peerAeTitle: 'MODALITY',
    localAeTitle: 'PACS',
    remoteAddress: '127.0.0.1',
    signal: new AbortController().signal,
    log: silentLogger,
    events,
    association: NO_SENDER,
  };
}

async function drain(responses: AsyncIterable<DimseResponse>): Promise<DimseResponse[]> {
  const out: DimseResponse[] = [];
  for await (const r of responses) out.push(r);
  return out;
}

function listen(events: EventBus): EventOf<'query'>[] {
  const seen: EventOf<'query'>[] = [];
  events.on('query', (e) => seen.push(e));
  return seen;
}

describe("the 'query' event", () => {
  test('C-FIND emits one per query, with its level, matches and source', async () => {
    const index = new MemoryArchiveIndex();
    for (const [i, id] of ['P1', 'P1', 'P2'].entries()) {
      const e = entryOf(
        makeDataSet({ patientId: id, studyUid: `2.${i}`, seriesUid: `2.${i}.1`, sopUid: `2.${i}.1.1` }),
      );
      await index.insertInstance(e.record, e.headers);
    }
    const handler = findService({ archive: { index } }).handlers['C-FIND'];
    assert.ok(handler);
    const events = new EventBus();
    const seen = listen(events);
    const q = new DataSet();
    q.setString(TAG.QueryRetrieveLevel, 'STUDY');
    q.setString(TAG.PatientID, 'P1');
    q.setString(TAG.StudyInstanceUID, '');
    const ctx = context(UID.StudyRootQueryRetrieveInformationModelFind, events);
    const responses = await drain(handler(ctx, q));
    assert.equal(responses.length, 2);
    // The answers are bytes encoded in the context's syntax, straight from the index.
    assert.ok(responses.every((r) => r.dataSet instanceof Uint8Array));
    assert.equal(seen.length, 1);
    const [e] = seen;
    assert.equal(e?.service, 'C-FIND');
    assert.equal(e?.level, 'STUDY');
    assert.equal(e?.matches, 2);
    assert.equal(e?.source, 'MODALITY');
    assert.ok((e?.durationMs ?? -1) >= 0);
    // A refused query (no level) runs nothing: no event.
    const bad = new DataSet();
    bad.setString(TAG.PatientID, 'P1');
    const refused = await drain(handler(ctx, bad));
    assert.equal(refused[0]?.status, 0xa900);
    assert.equal(seen.length, 1);
  });

  test('the worklist emits one per query', async () => {
    const store = new MemoryWorklistStore();
    const item = buildWorklistItem({
      patientName: 'Doe^Jane',
      patientId: 'W1',
      accessionNumber: 'A1',
      requestedProcedureId: 'RP1',
      requestedProcedureDescription: 'CT head',
      modality: 'CT',
      stationAeTitle: 'CT1',
      startDate: '20240101',
      startTime: '080000',
      stepId: 'S1',
      stepDescription: 'head',
    });
    await store.putItems([toDicomJson(item)]);
    const events = new EventBus();
    const seen = listen(events);
    const q = new DataSet();
    q.setString(TAG.PatientID, 'W1');
    q.setString(TAG.PatientName, '');
    const responses = await drain(findWorklistItems(store, context(WORKLIST_FIND_SOP_CLASS, events), q));
    assert.equal(responses.length, 1);
    assert.deepEqual(
      seen.map((e) => [e.service, e.level, e.matches, e.source]),
      [['worklist', 'WORKLIST', 1, 'MODALITY']],
    );
  });
});
