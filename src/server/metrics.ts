/**
 * A small Prometheus registry: counters, gauges and histograms with labels, rendered in the text
 * exposition format (version 0.0.4). It knows nothing of DICOM; the server decides what to count.
 * Values are per process: with --workers, each worker serves its own /metrics on its own port.
 */

export type Labels = Readonly<Record<string, string>>;

interface Metric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  render(): Promise<string[]> | string[];
}

/** `{a="x",b="y"}`; label values escaped as the exposition format says (backslash, quote, newline). */
function labelText(labels: Labels, extra?: readonly [string, string]): string {
  const pairs = Object.entries(labels);
  if (extra !== undefined) pairs.push([extra[0], extra[1]]);
  if (pairs.length === 0) return '';
  const quote = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
  return `{${pairs.map(([k, v]) => `${k}="${quote(v)}"`).join(',')}}`;
}

function keyOf(labels: Labels): string {
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function num(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

export class Counter implements Metric {
  readonly type = 'counter';
  private readonly values = new Map<string, { labels: Labels; value: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  inc(labels: Labels = {}, by = 1): void {
    const key = keyOf(labels);
    const entry = this.values.get(key);
    if (entry === undefined) this.values.set(key, { labels, value: by });
    else entry.value += by;
  }

  get(labels: Labels = {}): number {
    return this.values.get(keyOf(labels))?.value ?? 0;
  }

  render(): string[] {
    // A counter without labels is shown at 0 before its first increment, so a scrape sees it.
    if (this.values.size === 0) return [`${this.name} 0`];
    return [...this.values.values()].map((e) => `${this.name}${labelText(e.labels)} ${num(e.value)}`);
  }
}

/** A gauge read when scraped; `undefined` leaves it out (e.g. the index could not answer). */
export class Gauge implements Metric {
  readonly type = 'gauge';

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly read: () => number | undefined | Promise<number | undefined>,
  ) {}

  async render(): Promise<string[]> {
    let value: number | undefined;
    try {
      value = await this.read();
    } catch {
      value = undefined;
    }
    return value === undefined ? [] : [`${this.name} ${num(value)}`];
  }
}

export class Histogram implements Metric {
  readonly type = 'histogram';
  private readonly series = new Map<
    string,
    { labels: Labels; counts: number[]; sum: number; count: number }
  >();

  /** `buckets`: upper bounds, ascending (the +Inf bucket is implied). */
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly buckets: readonly number[],
  ) {}

  observe(value: number, labels: Labels = {}): void {
    const key = keyOf(labels);
    let s = this.series.get(key);
    if (s === undefined) {
      s = { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    for (let i = 0; i < this.buckets.length; i++) {
      if (value <= (this.buckets[i] ?? Number.POSITIVE_INFINITY)) s.counts[i] = (s.counts[i] ?? 0) + 1;
    }
    s.sum += value;
    s.count++;
  }

  render(): string[] {
    const all =
      this.series.size === 0
        ? [{ labels: {}, counts: this.buckets.map(() => 0), sum: 0, count: 0 }]
        : [...this.series.values()];
    const lines: string[] = [];
    for (const s of all) {
      this.buckets.forEach((le, i) => {
        lines.push(`${this.name}_bucket${labelText(s.labels, ['le', num(le)])} ${s.counts[i] ?? 0}`);
      });
      lines.push(`${this.name}_bucket${labelText(s.labels, ['le', '+Inf'])} ${s.count}`);
      lines.push(`${this.name}_sum${labelText(s.labels)} ${num(s.sum)}`);
      lines.push(`${this.name}_count${labelText(s.labels)} ${s.count}`);
    }
    return lines;
  }
}

export class MetricsRegistry {
  private readonly metrics: Metric[] = [];

  counter(name: string, help: string): Counter {
    return this.add(new Counter(name, help));
  }

  gauge(name: string, help: string, read: () => number | undefined | Promise<number | undefined>): Gauge {
    return this.add(new Gauge(name, help, read));
  }

  histogram(name: string, help: string, buckets: readonly number[]): Histogram {
    return this.add(new Histogram(name, help, buckets));
  }

  /** The text exposition format: HELP and TYPE lines, then the samples of each metric. */
  async render(): Promise<string> {
    const out: string[] = [];
    for (const m of this.metrics) {
      const samples = await m.render();
      if (samples.length === 0) continue;
      out.push(`# HELP ${m.name} ${m.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`);
      out.push(`# TYPE ${m.name} ${m.type}`);
      out.push(...samples);
    }
    return `${out.join('\n')}\n`;
  }

  private add<T extends Metric>(metric: T): T {
    if (this.metrics.some((m) => m.name === metric.name))
      throw new Error(`metric ${metric.name} registered twice`);
    this.metrics.push(metric);
    return metric;
  }
}

/**
 * Merges the expositions of several processes (the workers of one port) into one: samples with
 * the same name and labels are added up, except those named in `maxOf` (values every process
 * reads from a shared source, such as a queue depth), which take the largest. HELP and TYPE
 * lines are kept once, in first-seen order.
 */
export function mergeExpositions(texts: readonly string[], maxOf: ReadonlySet<string> = new Set()): string {
  const order: string[] = [];
  const meta = new Map<string, string[]>();
  const samples = new Map<string, Map<string, number>>();
  const family = (sampleName: string): string => {
    for (const f of meta.keys())
      if (
        sampleName === f ||
        (/^_(bucket|sum|count)$/.test(sampleName.slice(f.length)) && sampleName.startsWith(f))
      )
        return f;
    return sampleName;
  };
  for (const text of texts) {
    for (const line of text.split('\n')) {
      if (line === '') continue;
      const m = /^# (HELP|TYPE) (\S+)/.exec(line);
      if (m !== null) {
        const name = m[2] ?? '';
        if (!meta.has(name)) {
          meta.set(name, []);
          order.push(name);
        }
        const lines = meta.get(name) ?? [];
        if (!lines.some((l) => l.startsWith(`# ${m[1]} `))) lines.push(line);
        continue;
      }
      const space = line.lastIndexOf(' ');
      const key = line.slice(0, space);
      const value = Number(line.slice(space + 1));
      const name = key.split('{')[0] ?? key;
      const f = family(name);
      if (!samples.has(f)) {
        samples.set(f, new Map());
        if (!meta.has(f)) order.push(f);
      }
      const series = samples.get(f) ?? new Map<string, number>();
      const before = series.get(key);
      series.set(key, before === undefined ? value : maxOf.has(f) ? Math.max(before, value) : before + value);
    }
  }
  const out: string[] = [];
  for (const f of order) {
    out.push(...(meta.get(f) ?? []));
    for (const [key, value] of samples.get(f) ?? []) out.push(`${key} ${num(value)}`);
  }
  return `${out.join('\n')}\n`;
}

/** The content type of the text exposition format. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
