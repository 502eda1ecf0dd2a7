/**
 * Logger factory: one pino logger writing to several targets at once (stdout, stderr, plain
 * files, rotating files).
 *
 * Exit safety, the simple way: console targets and plain files are written synchronously on the
 * main thread (a log call is one write(2)), so nothing is ever buffered. Only rotating files go
 * through a pino transport (pino-roll needs an async set-up, so it runs in a worker thread); pino
 * ends that worker synchronously on process exit, which waits until the worker has written and
 * closed its files. `flushLogger` and `closeLogger` exist for callers that need the bytes on disk
 * before going on (tests, graceful shutdown).
 */
import { accessSync, constants, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname } from 'node:path';
import { isatty } from 'node:tty';
import pino, { type DestinationStream, type Logger as PinoLogger } from 'pino';
import { isColorSupported, prettyFactory } from 'pino-pretty';

export type Logger = PinoLogger;

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** `auto` is pretty when the stream is a terminal, JSON lines otherwise. */
export type ConsoleFormat = 'json' | 'pretty' | 'auto';

export interface ConsoleTarget {
  type: 'stdout' | 'stderr';
  format?: ConsoleFormat;
}

export interface FileRotation {
  /** Rotate when the file reaches this size: a number with a unit k, m or g ("10m"). */
  size?: string;
  /** Rotate at the start of every day or hour (local time). */
  frequency?: 'daily' | 'hourly';
  /** How many rotated files to keep besides the current one; older ones are deleted. */
  limit?: number;
}

export interface FileTarget {
  type: 'file';
  path: string;
  /** When set, the log rotates through numbered files: `pacs.log` becomes `pacs.1.log`, `pacs.2.log`... */
  rotate?: FileRotation;
}

export type LogTarget = ConsoleTarget | FileTarget;

export interface LoggerOptions {
  level?: LogLevel;
  /** Default: one stdout target in `auto` format. An empty list logs nothing. */
  targets?: readonly LogTarget[];
}

/** A logger that discards everything: the default for library users and tests that pass none. */
export const silentLogger: Logger = pino({ enabled: false });

/** Threads (pino transports) owned by each root stream, so flush/close can reach them from any child. */
interface ThreadStreamLike {
  flushSync(): void;
  end(): void;
  ref(): void;
  readonly ready: boolean;
  readonly closed: boolean;
  once(event: 'ready' | 'close', listener: () => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
}
const ownedThreads = new WeakMap<object, ThreadStreamLike>();

export function createLogger(options: LoggerOptions = {}): Logger {
  const level: LogLevel = options.level ?? 'info';
  const targets = options.targets ?? [{ type: 'stdout', format: 'auto' }];
  if (targets.length === 0) return silentLogger;

  const streams: DestinationStream[] = [];
  const rotating: FileTarget[] = [];
  for (const target of targets) {
    if (target.type === 'file' && target.rotate) {
      // Fail here, synchronously and clearly, rather than in the worker later.
      mkdirSync(dirname(target.path), { recursive: true });
      accessSync(dirname(target.path), constants.W_OK);
      rotating.push(target);
    } else if (target.type === 'file') {
      const file = pino.destination({ dest: target.path, sync: true, mkdir: true, append: true });
      streams.push(reportErrors(file, target.path));
    } else {
      streams.push(consoleStream(target.type === 'stdout' ? 1 : 2, target.format ?? 'auto'));
    }
  }
  let thread: ThreadStreamLike | undefined;
  if (rotating.length > 0) {
    const transport = pino.transport({
      // Destinations take every level; the logger filters, so changing logger.level later works.
      targets: rotating.map((t) => ({ target: pinoRollPath(), level: 'trace', options: pinoRollOptions(t) })),
    });
    thread = reportErrors(transport, rotating.map((t) => t.path).join(', '));
    streams.push(transport);
  }

  const first = streams[0];
  const root =
    streams.length === 1 && first !== undefined
      ? first
      : pino.multistream(
          streams.map((stream) => ({ level: 'trace' as const, stream })),
          { dedupe: false },
        );
  if (thread) ownedThreads.set(root, thread);
  return pino({ level }, root);
}

/**
 * A failing log destination (disk full, file removed) must not take the server down: pino would
 * re-emit the error unhandled. Say it once on stderr and carry on.
 */
function reportErrors<T extends { on(event: 'error', listener: (error: Error) => void): unknown }>(
  stream: T,
  what: string,
): T {
  let reported = false;
  stream.on('error', (error) => {
    if (reported) return;
    reported = true;
    process.emitWarning(`logging to ${what} failed, later lines are lost: ${error.message}`);
  });
  return stream;
}

/**
 * Resolves once every line logged so far has been written to its file or console. Console and
 * plain-file targets are synchronous already; a rotating-file worker is waited for (it writes
 * synchronously, so "read by the worker" means "written").
 */
export async function flushLogger(logger: Logger): Promise<void> {
  const thread = threadOf(logger);
  if (thread && !thread.closed) thread.flushSync();
}

/**
 * Flushes and ends the logger's worker threads, resolving when their files are closed. Use it at
 * graceful shutdown; logging after it is lost. Console and plain-file targets need no closing.
 */
export async function closeLogger(logger: Logger): Promise<void> {
  const thread = threadOf(logger);
  if (thread === undefined) return;
  // pino unrefs the worker when it reports ready; wait for that so our ref() below is not undone.
  if (!thread.ready && !thread.closed) {
    await new Promise<void>((resolve) => {
      thread.once('ready', resolve);
      thread.once('close', resolve);
    });
  }
  if (thread.closed) return;
  await new Promise<void>((resolve) => {
    thread.once('close', resolve);
    thread.ref(); // keep the process alive until the worker has closed its files
    thread.end();
  });
}

function threadOf(logger: Logger): ThreadStreamLike | undefined {
  // Children share their parent's stream, so this works from any child logger.
  const stream: unknown = Reflect.get(logger, pino.symbols.streamSym);
  return typeof stream === 'object' && stream !== null ? ownedThreads.get(stream) : undefined;
}

function consoleStream(fd: 1 | 2, format: ConsoleFormat): DestinationStream {
  const tty = isatty(fd);
  const destination = reportErrors(
    pino.destination({ dest: fd, sync: true }),
    fd === 1 ? 'stdout' : 'stderr',
  );
  const pretty = format === 'pretty' || (format === 'auto' && tty);
  if (!pretty) return destination;
  // pino-pretty used in-process as a formatting function, not as a transport: stays synchronous.
  const render = prettyFactory({
    colorize: tty && isColorSupported,
    translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l',
    ignore: 'pid,hostname',
  });
  return { write: (line: string) => destination.write(render(line)) };
}

function pinoRollPath(): string {
  // Resolved here rather than by name so the worker finds it wherever this module is loaded from.
  return createRequire(import.meta.url).resolve('pino-roll');
}

function pinoRollOptions(target: FileTarget): Record<string, unknown> {
  const rotate = target.rotate ?? {};
  // pino-roll numbers files after `file`; keep the extension last (pacs.1.log, not pacs.log.1).
  const extension = extname(target.path);
  const file = extension === '' ? target.path : target.path.slice(0, -extension.length);
  return {
    file,
    ...(extension === '' ? {} : { extension }),
    ...(rotate.size === undefined ? {} : { size: rotate.size }),
    ...(rotate.frequency === undefined ? {} : { frequency: rotate.frequency }),
    ...(rotate.limit === undefined ? {} : { limit: { count: rotate.limit } }),
    mkdir: true,
    // Synchronous inside the worker: once the worker has read a line, it is in the file.
    sync: true,
  };
}
