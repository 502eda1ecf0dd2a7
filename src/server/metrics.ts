/**
 * What /metrics shows, in the Prometheus text format through prom-client: the server's counters
 * observe the one event stream (core/events.ts, ARCHITECTURE.md decision 9) and nothing wraps a
 * handler; a few gauges are read when scraped; prom-client's default process and Node.js metrics
 * come with them. With --workers, each worker hands its metrics to the primary as JSON and the
 * primary adds them up with prom-client's AggregatorRegistry (mergeWorkerMetrics).
 */
import {
  AggregatorRegistry,
  Counter,
  collectDefaultMetrics,
  Gauge,
  Histogram,
  type MetricObjectWithValues,
  type MetricValue,
  Registry,
} from 'prom-client';
import type { EventBus } from '../core/events.js';
import { statusCategory } from '../network/dimse-status.js';

/** The content type of the text exposition format (version 0.0.4). */
export const PROMETHEUS_CONTENT_TYPE: string = Registry.PROMETHEUS_CONTENT_TYPE;

/** One process's metrics as prom-client's JSON, what a worker sends the primary. */
export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

/** What the server reads when scraped, besides what the events count. */
export interface ScrapedGauges {
  /** Connections being negotiated, established or closing, over all listeners. */
  readonly associationsOpen: () => number;
  /** Jobs queued or running in the shared queue; undefined leaves the sample out. */
  readonly jobQueueDepth: () => Promise<number | undefined>;
}

export interface ServerMetrics {
  readonly registry: Registry;
  /** The text exposition. */
  render(): Promise<string>;
  /** The same as JSON, for the --workers primary to aggregate. */
  json(): Promise<MetricsJson>;
  /** Stops counting the events. */
  close(): void;
}

/** PS3.7 C.4: the status as the label value `0xA700`. */
function hex(status: number): string {
  return `0x${status.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** The metrics of one server process, counting what `events` reports from now on. */
export function serverMetrics(events: EventBus, gauges: ScrapedGauges): ServerMetrics {
  const registry = new Registry();
  const registers = [registry];
  const counter = (name: string, help: string, labelNames: readonly string[] = []) =>
    new Counter({ name, help, labelNames, registers });
  const associations = counter('pacs_associations_total', 'Associations ended, by outcome', ['outcome']);
  const requests = counter('pacs_dimse_requests_total', 'DIMSE requests answered, by command', ['command']);
  const failures = counter(
    'pacs_dimse_failures_total',
    'DIMSE requests answered with a failure status, by command and status',
    ['command', 'status'],
  );
  const objectsReceived = counter(
    'pacs_objects_received_total',
    'Objects stored (C-STORE success or warning)',
  );
  const bytesReceived = counter('pacs_bytes_received_total', 'Data set bytes of the objects stored');
  const objectsSent = counter(
    'pacs_objects_sent_total',
    'Objects sent by C-GET and C-MOVE (completed sub-operations)',
  );
  const bytesSent = counter(
    'pacs_bytes_sent_total',
    'Data set bytes sent on C-GET and C-MOVE sub-operations',
  );
  const compressions = counter(
    'pacs_compression_objects_total',
    'Objects handled by compression at rest, by outcome (compressed, skipped, failed)',
    ['outcome'],
  );
  const compressionSaved = counter(
    'pacs_compression_saved_bytes_total',
    'Disk bytes saved by compression at rest (file sizes before minus after)',
  );
  const findSeconds = new Histogram({
    name: 'pacs_cfind_duration_seconds',
    help: 'C-FIND time from request to final response',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  new Gauge({
    name: 'pacs_associations_open',
    help: 'Associations being negotiated, established or closing',
    registers,
    collect() {
      this.set(gauges.associationsOpen());
    },
  });
  new Gauge({
    name: 'pacs_jobs_queue_depth',
    help: 'Jobs queued or running in the shared job queue',
    registers,
    // Every worker reads the one shared queue: the largest, not the sum.
    aggregator: 'max',
    async collect() {
      let depth: number | undefined;
      try {
        depth = await gauges.jobQueueDepth();
      } catch {
        depth = undefined; // the index does not answer: no sample rather than a wrong one
      }
      if (depth === undefined) this.remove();
      else this.set(depth);
    },
  });
  new Gauge({
    name: 'pacs_process_resident_memory_bytes',
    help: 'Resident set size of this process',
    registers,
    collect() {
      this.set(process.memoryUsage.rss());
    },
  });
  collectDefaultMetrics({ register: registry });

  // Only what we serve: associations we opened ourselves (C-MOVE sub-operations) are not counted.
  const unsubscribe = [
    events.on('association-closed', (e) => {
      if (e.role === 'acceptor') associations.inc({ outcome: e.outcome });
    }),
    events.on('association-failed', () => associations.inc({ outcome: 'failed' })),
    events.on('request', (e) => {
      requests.inc({ command: e.command });
      if (statusCategory(e.status) === 'failure') failures.inc({ command: e.command, status: hex(e.status) });
      if (e.command === 'C-FIND') findSeconds.observe(e.durationMs / 1000);
    }),
    events.on('object-received', (e) => {
      objectsReceived.inc();
      bytesReceived.inc(e.bytes);
    }),
    events.on('object-compressed', (e) => {
      compressions.inc({ outcome: e.outcome });
      if (e.outcome === 'compressed' && e.bytesAfter !== undefined)
        compressionSaved.inc(Math.max(0, e.bytesBefore - e.bytesAfter));
    }),
    events.on('object-sent', (e) => {
      if (e.via === 'C-STORE') return; // pacs store's own sends; the server counts retrieves
      const category = statusCategory(e.status);
      if (category !== 'success' && category !== 'warning') return;
      objectsSent.inc();
      bytesSent.inc(e.bytes);
    }),
  ];

  return {
    registry,
    render: () => registry.metrics(),
    json: () => registry.getMetricsAsJSON() as Promise<MetricsJson>,
    close: () => {
      for (const off of unsubscribe) off();
    },
  };
}

/**
 * The workers' metrics as one exposition (the primary's /metrics): samples with the same name
 * and labels are added up, except where a metric says otherwise (its `aggregator`: the queue depth
 * takes the largest; prom-client's process start time is left out). `workers` is the number that
 * answered, shown as `pacs_workers`.
 */
export async function mergeWorkerMetrics(answers: readonly MetricsJson[]): Promise<string> {
  const own = new Registry();
  new Gauge({ name: 'pacs_workers', help: 'Workers listening', registers: [own] }).set(answers.length);
  const merged = AggregatorRegistry.aggregate([(await own.getMetricsAsJSON()) as MetricsJson, ...answers]);
  return merged.metrics();
}
