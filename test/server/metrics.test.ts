/**
 * The server's metrics as subscribers of the event stream (core/events.ts): each event type moves
 * the counter it should, with the labels of today's /metrics, and nothing else; the gauges are
 * read when scraped; prom-client's default process metrics come along.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EventBus, type PacsEvent } from '../../src/core/events.js';
import { serverMetrics } from '../../src/server/metrics.js';

function sample(text: string, name: string): number | undefined {
  const m = new RegExp(`^${name.replace(/[{}"+]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
  return m === null ? undefined : Number(m[1]);
}

const CT = '1.2.840.10008.5.1.4.1.1.2';
const FIND = '1.2.840.10008.5.1.4.1.2.2.1';

function request(command: string, status: number, durationMs = 1): PacsEvent {
  return {
    type: 'request',
    command,
    sopClassUid: command === 'C-FIND' ? FIND : CT,
    status,
    durationMs,
    peerAeTitle: 'SCU',
    remoteAddress: '127.0.0.1',
  };
}

function closed(role: 'acceptor' | 'requestor', outcome: 'released' | 'aborted'): PacsEvent {
  return {
    type: 'association-closed',
    callingAeTitle: 'SCU',
    calledAeTitle: 'PACS',
    remoteAddress: '127.0.0.1',
    role,
    outcome,
    durationMs: 5,
    requests: 1,
    failures: 0,
    bytesReceived: 100,
  };
}

function received(bytes: number): PacsEvent {
  return {
    type: 'object-received',
    outcome: 'stored',
    sopInstanceUid: '1.2.3',
    sopClassUid: CT,
    studyInstanceUid: '1.2',
    patientId: 'P',
    bytes,
    source: 'SCU',
    via: 'C-STORE',
  };
}

function sent(via: 'C-STORE' | 'C-MOVE' | 'C-GET', status: number, bytes: number): PacsEvent {
  return { type: 'object-sent', sopInstanceUid: '1.2.3', bytes, destination: 'DEST', status, via };
}

describe('server metrics from the event stream', () => {
  it('counts associations, requests, failures, objects and bytes as the events report them', async () => {
    const events = new EventBus();
    let open = 3;
    const metrics = serverMetrics(events, { associationsOpen: () => open, jobQueueDepth: async () => 7 });
    try {
      events.emit({
        type: 'association-opened',
        callingAeTitle: 'SCU',
        calledAeTitle: 'PACS',
        remoteAddress: '127.0.0.1',
        role: 'acceptor',
      });
      events.emit(closed('acceptor', 'released'));
      events.emit(closed('acceptor', 'released'));
      events.emit(closed('acceptor', 'aborted'));
      // An association we opened (a C-MOVE destination) is not one we served.
      events.emit(closed('requestor', 'released'));
      events.emit({
        type: 'association-failed',
        remoteAddress: '10.0.0.1',
        reason: 'rejected',
        kind: 'rejected',
      });
      events.emit(request('C-STORE', 0x0000));
      events.emit(request('C-STORE', 0xb007));
      events.emit(request('C-STORE', 0xa700));
      events.emit(request('C-FIND', 0x0000, 30));
      events.emit(request('C-FIND', 0xfe00, 2000));
      events.emit(request('C-ECHO', 0x0000));
      events.emit(received(1000));
      events.emit(received(24));
      events.emit(sent('C-GET', 0x0000, 500));
      events.emit(sent('C-MOVE', 0xb000, 300));
      events.emit(sent('C-MOVE', 0xa702, 9999));
      events.emit(sent('C-STORE', 0x0000, 9999));
      events.emit({
        type: 'query',
        service: 'C-FIND',
        level: 'STUDY',
        matches: 3,
        durationMs: 30,
        source: 'SCU',
      });

      const text = await metrics.render();
      assert.equal(sample(text, 'pacs_associations_total{outcome="released"}'), 2);
      assert.equal(sample(text, 'pacs_associations_total{outcome="aborted"}'), 1);
      assert.equal(sample(text, 'pacs_associations_total{outcome="failed"}'), 1);
      assert.equal(sample(text, 'pacs_dimse_requests_total{command="C-STORE"}'), 3);
      assert.equal(sample(text, 'pacs_dimse_requests_total{command="C-FIND"}'), 2);
      assert.equal(sample(text, 'pacs_dimse_requests_total{command="C-ECHO"}'), 1);
      // Only the failure status: a warning (B007) and a cancel (FE00) are not failures.
      assert.equal(sample(text, 'pacs_dimse_failures_total{command="C-STORE",status="0xA700"}'), 1);
      assert.doesNotMatch(text, /^pacs_dimse_failures_total\{[^}]*status="0x(B007|FE00|0000)"/m);
      assert.equal(sample(text, 'pacs_objects_received_total'), 2);
      assert.equal(sample(text, 'pacs_bytes_received_total'), 1024);
      // Completed and warning sub-operations of C-GET and C-MOVE; not the failed one, not pacs store's.
      assert.equal(sample(text, 'pacs_objects_sent_total'), 2);
      assert.equal(sample(text, 'pacs_bytes_sent_total'), 800);
      assert.equal(sample(text, 'pacs_cfind_duration_seconds_count'), 2);
      assert.equal(sample(text, 'pacs_cfind_duration_seconds_bucket{le="0.05"}'), 1);
      assert.equal(sample(text, 'pacs_cfind_duration_seconds_bucket{le="+Inf"}'), 2);
      assert.equal(sample(text, 'pacs_cfind_duration_seconds_sum'), 2.03);
      assert.equal(sample(text, 'pacs_associations_open'), 3);
      assert.equal(sample(text, 'pacs_jobs_queue_depth'), 7);
      assert.ok((sample(text, 'pacs_process_resident_memory_bytes') ?? 0) > 0);
      // prom-client's default process metrics.
      assert.ok((sample(text, 'process_resident_memory_bytes') ?? 0) > 0);
      assert.match(text, /^# TYPE nodejs_eventloop_lag_seconds gauge$/m);

      open = 0;
      assert.equal(sample(await metrics.render(), 'pacs_associations_open'), 0);
    } finally {
      metrics.close();
    }
    // Closed: no longer counting.
    events.emit(received(1));
    assert.equal(sample(await metrics.render(), 'pacs_objects_received_total'), 2);
  });

  it('before any event every metric is there; a queue depth that cannot be read has no sample', async () => {
    const events = new EventBus();
    const metrics = serverMetrics(events, {
      associationsOpen: () => 0,
      jobQueueDepth: async () => {
        throw new Error('the index does not answer');
      },
    });
    try {
      const text = await metrics.render();
      for (const [name, type] of [
        ['pacs_associations_open', 'gauge'],
        ['pacs_associations_total', 'counter'],
        ['pacs_dimse_requests_total', 'counter'],
        ['pacs_dimse_failures_total', 'counter'],
        ['pacs_objects_received_total', 'counter'],
        ['pacs_bytes_received_total', 'counter'],
        ['pacs_objects_sent_total', 'counter'],
        ['pacs_bytes_sent_total', 'counter'],
        ['pacs_cfind_duration_seconds', 'histogram'],
        ['pacs_jobs_queue_depth', 'gauge'],
      ] as const) {
        assert.match(text, new RegExp(`^# TYPE ${name} ${type}$`, 'm'), name);
      }
      assert.equal(sample(text, 'pacs_objects_received_total'), 0);
      assert.equal(sample(text, 'pacs_cfind_duration_seconds_count'), 0);
      assert.doesNotMatch(text, /^pacs_jobs_queue_depth /m);
      // Two servers in one process have registries of their own.
      const other = serverMetrics(events, {
        associationsOpen: () => 1,
        jobQueueDepth: async () => undefined,
      });
      try {
        events.emit(received(10));
        assert.equal(sample(await other.render(), 'pacs_objects_received_total'), 1);
        assert.equal(sample(await metrics.render(), 'pacs_objects_received_total'), 1);
        assert.doesNotMatch(await other.render(), /^pacs_jobs_queue_depth /m);
      } finally {
        other.close();
      }
    } finally {
      metrics.close();
    }
  });
});
