/**
 * The transcoder's drivers (dicom/transcode.ts is the sans-I/O part): frames transcoded on a
 * worker-thread pool with a priority (ARCHITECTURE.md decision 6: a viewer's frame before a
 * transfer, a transfer before background compression), a chunk stream transcoded as it is read,
 * and a file transcoded to a temporary file renamed into place (nothing partial left on failure).
 */
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { WorkerPool, WorkerTaskError } from '../core/worker-pool.js';
import { PixelCodecError } from '../dicom/codec/types.js';
import {
  type FrameCoder,
  type FrameResult,
  type FrameTask,
  TranscodeError,
  type TranscodeOptions,
  type TranscodeSummary,
  transcodeChunks,
} from '../dicom/transcode.js';

/** Priorities of transcoding work on the shared pool (higher first). */
export const TranscodePriority = {
  /** A viewer waits (WADO-RS frames, rendering). */
  interactive: 20,
  /** A peer waits (C-STORE SCU, C-MOVE / C-GET sub-operations, WADO-RS retrieve). */
  transfer: 10,
  /** Nobody waits (compression at rest, `pacs convert`). */
  background: 0,
} as const;

let pool: WorkerPool<FrameTask, FrameResult> | undefined;

function sharedPool(): WorkerPool<FrameTask, FrameResult> {
  pool ??= new WorkerPool<FrameTask, FrameResult>({
    script: new URL('./transcode-worker.js', import.meta.url),
  });
  return pool;
}

/** A FrameCoder that runs each frame on the shared worker pool at `priority`. */
export function pooledFrameCoder(priority: number = TranscodePriority.transfer): FrameCoder {
  return (task) => {
    const s = task.source;
    const whole = s.byteOffset === 0 && s.byteLength === s.buffer.byteLength;
    // The frame's buffer moves to the worker: the transcoder does not touch it after submitting.
    const source = whole ? s : new Uint8Array(s);
    return sharedPool()
      .run({ ...task, source }, [source.buffer as ArrayBuffer], priority)
      .catch((e: unknown) => {
        throw asTranscodeError(e);
      });
  };
}

/** A worker's failure as the error class the in-thread coder throws (the pool keeps only code and message). */
function asTranscodeError(e: unknown): unknown {
  if (!(e instanceof WorkerTaskError)) return e;
  if (e.code === 'ERR_PIXEL_CODEC') return new PixelCodecError(e.message, { cause: e });
  if (e.code === 'ERR_TRANSCODE_UNSUPPORTED') return new TranscodeError(e.message, { cause: e });
  return e;
}

/** Terminates the shared pool's threads (tests, shutdown); the next transcode starts a new pool. */
export async function closeTranscodePool(): Promise<void> {
  const p = pool;
  pool = undefined;
  await p?.close();
}

/** What a driver does: the transcode, and where frames run (default: the shared pool at `priority`). */
export interface TranscodeStreamOptions extends TranscodeOptions {
  /** Priority on the shared pool when no `coder` is given (default TranscodePriority.transfer). */
  readonly priority?: number;
}

function withCoder(options: TranscodeStreamOptions): TranscodeOptions {
  return options.coder !== undefined ? options : { ...options, coder: pooledFrameCoder(options.priority) };
}

/**
 * The source chunks (a Part-10 stream, or a raw data set with `sourceTransferSyntax`) transcoded,
 * yielded as they are final; returns the summary. Memory: a few frames (maxPendingFrames) and
 * the header elements from group 0028 to Pixel Data.
 */
export function transcodeStream(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: TranscodeStreamOptions,
): AsyncGenerator<Uint8Array, TranscodeSummary, undefined> {
  return transcodeChunks(source, withCoder(options));
}

/**
 * Transcodes the file IN into OUT (a Part-10 file in options.to). OUT is written to a temporary
 * file beside it and renamed into place, so a failure (malformed input, a corrupt frame, no codec)
 * leaves no partial output.
 */
export async function transcodeFile(
  input: string,
  output: string,
  options: TranscodeStreamOptions,
): Promise<TranscodeSummary> {
  const tmp = `${output}.${process.pid}.tmp`;
  const out = createWriteStream(tmp);
  try {
    const chunks = transcodeStream(createReadStream(input, { highWaterMark: 256 * 1024 }), {
      ...options,
      fileMeta: true,
    });
    let summary: TranscodeSummary | undefined;
    for (;;) {
      const n = await chunks.next();
      if (n.done) {
        summary = n.value;
        break;
      }
      if (!out.write(n.value)) await once(out, 'drain');
    }
    out.end();
    await once(out, 'finish');
    await rename(tmp, output);
    return summary;
  } catch (e) {
    out.destroy();
    await rm(tmp, { force: true });
    throw e;
  }
}
