/**
 * The one progress display of the CLI (`pacs store`, `pacs move`, `pacs get`, `pacs archive
 * reindex`): a cli-progress bar on standard error, redrawn in place at most 10 times a second,
 * cleared when the work ends. Quiet when standard error is not a terminal (a pipe, a file, CI):
 * cli-progress then draws nothing and updates cost a check.
 */
import cliProgress from 'cli-progress';

/** What a line shows besides its bar: the caller's counts, turned into words by `describe`. */
export interface ProgressLine<P> {
  /** Words before the bar (may be empty). */
  readonly head: (payload: P, state: ProgressState) => string;
  /** Words after the bar. */
  readonly tail: (payload: P, state: ProgressState) => string;
  /** No bar while this holds (nothing known yet to measure against). */
  readonly barless?: (payload: P) => boolean;
  /** How full the bar is, 0 to 1 (default value / total). */
  readonly fraction?: (payload: P, state: ProgressState) => number;
}

export interface ProgressState {
  readonly value: number;
  readonly total: number;
  /** Seconds since start. */
  readonly seconds: number;
  /** Seconds left at the current rate (NaN while unknown). */
  readonly eta: number;
}

const BAR_WIDTH = 30;

export class Progress<P> {
  private readonly bar: cliProgress.SingleBar;
  private readonly stream: NodeJS.WriteStream;
  private started = false;
  private payload: P;

  constructor(line: ProgressLine<P>, initial: P, stream: NodeJS.WriteStream = process.stderr) {
    this.stream = stream;
    this.payload = initial;
    this.bar = new cliProgress.SingleBar({
      stream,
      fps: 10,
      barsize: BAR_WIDTH,
      barCompleteChar: '#',
      barIncompleteChar: '.',
      barGlue: '',
      clearOnComplete: true,
      hideCursor: false,
      etaBuffer: 50,
      // Each line starts with CR and erase-line, so it redraws in place wherever CSI G is ignored.
      format: (options, params, wrapped: { line: P }) => {
        const payload = wrapped.line;
        const state: ProgressState = {
          value: params.value,
          total: params.total,
          seconds: (Date.now() - params.startTime) / 1000,
          eta: params.value > 0 && Number.isFinite(params.eta) ? params.eta : Number.NaN,
        };
        const head = line.head(payload, state);
        const tail = line.tail(payload, state);
        const fixed = head.length + tail.length + 4;
        const room = Math.max(0, Math.min(BAR_WIDTH, (this.stream.columns || 80) - fixed));
        const fraction = Math.max(
          0,
          Math.min(
            1,
            line.fraction?.(payload, state) ?? (params.total > 0 ? params.value / params.total : 0),
          ),
        );
        const showBar = room > 0 && !(line.barless?.(payload) ?? false);
        const bar = showBar
          ? ` [${cliProgress.Format.BarFormat(fraction, { ...options, barsize: room })}]`
          : '';
        return `\r\x1b[K${head}${bar}${tail === '' ? '' : ` ${tail}`}`;
      },
    });
  }

  /** True when a bar is drawn (standard error is a terminal and start() was called). */
  get drawing(): boolean {
    return this.started && this.stream.isTTY === true;
  }

  start(total: number, value = 0): void {
    this.started = true;
    this.bar.start(total, value, { line: this.payload });
  }

  update(value: number, payload?: P, total?: number): void {
    if (payload !== undefined) this.payload = payload;
    if (total !== undefined) this.bar.setTotal(total);
    this.bar.update(value, { line: this.payload });
  }

  /** A message line above the bar: the bar is cleared, the line written, the bar drawn again. */
  print(line: string): void {
    if (!this.drawing) {
      this.stream.write(`${line}\n`);
      return;
    }
    this.stream.write(`\r\x1b[K${line}\n`);
    this.bar.render();
  }

  /** Clears the bar (drawn one last time with the final counts first). */
  stop(): void {
    if (!this.started) return;
    const drawn = this.drawing;
    this.started = false;
    this.bar.stop();
    // CR and erase-line as each drawn line starts, for what ignores cli-progress's CSI G.
    if (drawn) this.stream.write('\r\x1b[K');
  }
}

export function formatMB(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}
