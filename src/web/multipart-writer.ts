/**
 * A streaming multipart/related writer (RFC 2387 over the RFC 2046 5.1 framing): parts go out one
 * after the other, each with its own headers, their bodies streamed (file ranges read chunk by
 * chunk), never a whole body in memory. The output is a pull stream: nothing is read from a file
 * before the client's connection asks for more (backpressure), and when the client goes away the
 * stream is destroyed, the part being sent stops reading and its file is closed.
 *
 * Used by WADO-RS retrieve (application/dicom parts) and meant for frames and bulk data as well.
 */
import { randomBytes } from 'node:crypto';
import { type FileHandle, open } from 'node:fs/promises';
import { Readable, type Writable } from 'node:stream';
import type { FastifyReply } from 'fastify';

/** One part of a multipart body. */
export interface MultipartPart {
  /** The part's Content-Type (`application/dicom; transfer-syntax=1.2.840.10008.1.2.1`). */
  readonly contentType: string;
  /** An optional Content-Location (PS3.18 8.6.1.2.1: the part's resource URL). */
  readonly contentLocation?: string;
  /** The body's length when it is known before it is sent (Content-Length of the part). */
  readonly contentLength?: number;
  /** Further part headers (name: value), written as given. */
  readonly headers?: Readonly<Record<string, string>>;
  /** The body: bytes, or a stream of chunks (read only as the receiver takes them). */
  readonly body: Uint8Array | AsyncIterable<Uint8Array>;
}

/** A fresh boundary: 32 random hex characters (RFC 2046 5.1.1 allows 1 to 70), never found by chance in a body. */
export function newBoundary(): string {
  return randomBytes(16).toString('hex');
}

/** The Content-Type of a multipart/related answer: `multipart/related; type="application/dicom"; boundary=...`. */
export function multipartContentType(
  type: string,
  boundary: string,
  params: Readonly<Record<string, string>> = {},
): string {
  const extra = Object.entries(params)
    .map(([k, v]) => `; ${k}=${quoteIfNeeded(v)}`)
    .join('');
  return `multipart/related; type="${type}"${extra}; boundary=${boundary}`;
}

function quoteIfNeeded(value: string): string {
  return /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(value) ? value : `"${value.replace(/(["\\])/g, '\\$1')}"`;
}

/** Header values must stay on one line (no CR/LF injection from a value). */
function headerValue(value: string): string {
  return value.replace(/[\r\n]+/g, ' ');
}

/** The delimiter and headers of one part (preceded by CRLF after the first part). */
export function partHead(boundary: string, part: Omit<MultipartPart, 'body'>, first: boolean): Buffer {
  let head = `${first ? '' : '\r\n'}--${boundary}\r\nContent-Type: ${headerValue(part.contentType)}\r\n`;
  if (part.contentLocation !== undefined)
    head += `Content-Location: ${headerValue(part.contentLocation)}\r\n`;
  if (part.contentLength !== undefined) head += `Content-Length: ${part.contentLength}\r\n`;
  for (const [k, v] of Object.entries(part.headers ?? {})) head += `${k}: ${headerValue(v)}\r\n`;
  return Buffer.from(`${head}\r\n`, 'latin1');
}

/** The close delimiter after the last part (`first`: no part was written). */
export function closeDelimiter(boundary: string, first = false): Buffer {
  return Buffer.from(`${first ? '' : '\r\n'}--${boundary}--\r\n`, 'latin1');
}

/**
 * The bytes of a multipart body, part after part: each part's delimiter and headers, its body,
 * then the close delimiter. A body of announced length that yields another length is an error
 * (the answer would be corrupt): the generator throws and the caller cuts the connection.
 * Stopping the iteration (return/throw) stops the part being read and lets it close its file.
 */
export async function* multipartChunks(
  parts: AsyncIterable<MultipartPart> | Iterable<MultipartPart>,
  boundary: string,
): AsyncGenerator<Uint8Array> {
  let first = true;
  for await (const part of parts) {
    yield partHead(boundary, part, first);
    first = false;
    let sent = 0;
    if (part.body instanceof Uint8Array) {
      sent = part.body.length;
      if (sent > 0) yield part.body;
    } else {
      for await (const chunk of part.body) {
        if (chunk.length === 0) continue;
        sent += chunk.length;
        yield chunk;
      }
    }
    if (part.contentLength !== undefined && sent !== part.contentLength)
      throw new Error(`a multipart part announced ${part.contentLength} bytes and had ${sent}`);
  }
  // RFC 2046 5.1.1: the close delimiter; with no part at all, just the delimiter line.
  yield closeDelimiter(boundary, first);
}

/** Default read size of file bodies: large reads keep the syscall count (and the CPU) low. */
export const FILE_CHUNK = 512 * 1024;

/**
 * The bytes of a file from `start` (default 0) to `end` (exclusive, default its end), read
 * `chunkSize` at a time into fresh buffers (the socket may still hold the previous ones). The file
 * is opened when the first chunk is asked for and closed when the range is done, or when the
 * reader stops early (return/throw: a client gone away). A file shorter than the range is an
 * error, never a silently short part.
 */
export async function* fileRange(
  path: string,
  options: { readonly start?: number; readonly end?: number; readonly chunkSize?: number } = {},
): AsyncGenerator<Buffer> {
  const fh = await open(path, 'r');
  try {
    yield* handleRange(fh, options);
  } finally {
    await fh.close();
  }
}

/** Like fileRange() on a handle the caller opened (and closes). */
export async function* handleRange(
  fh: FileHandle,
  options: { readonly start?: number; readonly end?: number; readonly chunkSize?: number } = {},
): AsyncGenerator<Buffer> {
  const chunkSize = options.chunkSize ?? FILE_CHUNK;
  let position = options.start ?? 0;
  const end = options.end;
  for (;;) {
    const want = end === undefined ? chunkSize : Math.min(chunkSize, end - position);
    if (want <= 0) return;
    const buf = Buffer.allocUnsafe(want);
    const { bytesRead } = await fh.read(buf, 0, want, position);
    if (bytesRead === 0) {
      if (end !== undefined) throw new Error(`the file ended at ${position}, before ${end}`);
      return;
    }
    position += bytesRead;
    yield bytesRead === want ? buf : buf.subarray(0, bytesRead);
  }
}

/**
 * `source` with its first item read now: a body whose object fails to open or to decrypt fails
 * here, before the answer's headers are out (a 500 with its reason rather than a cut connection).
 */
export async function primed<T>(source: AsyncIterable<T>): Promise<AsyncIterable<T>> {
  const it = source[Symbol.asyncIterator]();
  const first = await it.next();
  return (async function* () {
    try {
      if (first.done) return;
      yield first.value;
      for (;;) {
        const n = await it.next();
        if (n.done) return;
        yield n.value;
      }
    } finally {
      await it.return?.();
    }
  })();
}

/** `parts` with the first part's body primed (primed()): a first object that fails is a 500, not a cut answer. */
export async function primedFirstPart(
  parts: AsyncIterable<MultipartPart>,
): Promise<AsyncIterable<MultipartPart>> {
  const it = parts[Symbol.asyncIterator]();
  const first = await it.next();
  const part = first.done ? undefined : first.value;
  const head =
    part === undefined || part.body instanceof Uint8Array ? part : { ...part, body: await primed(part.body) };
  return (async function* () {
    try {
      if (head === undefined) return;
      yield head;
      for (;;) {
        const n = await it.next();
        if (n.done) return;
        yield n.value;
      }
    } finally {
      await it.return?.();
    }
  })();
}

/**
 * A byte stream of the multipart body, pulled as its reader asks (highWaterMark of one chunk).
 * Destroying it (fastify does when the client goes away) ends the parts' iteration.
 */
export function multipartStream(
  parts: AsyncIterable<MultipartPart> | Iterable<MultipartPart>,
  boundary: string,
): Readable {
  return Readable.from(multipartChunks(parts, boundary), { objectMode: false, highWaterMark: 64 * 1024 });
}

/**
 * Sends a multipart/related answer on a fastify reply: its Content-Type, then the parts streamed.
 * `type` is the media type of the parts (`application/dicom`); `params` more parameters of the
 * answer's type (`transfer-syntax`...). Headers go out with the first bytes; a failure after that
 * cuts the connection (app.ts), so the client never sees a cut answer as complete.
 */
export function sendMultipart(
  reply: FastifyReply,
  type: string,
  parts: AsyncIterable<MultipartPart> | Iterable<MultipartPart>,
  params: Readonly<Record<string, string>> = {},
): FastifyReply {
  const boundary = newBoundary();
  reply.header('content-type', multipartContentType(type, boundary, params));
  return reply.send(multipartStream(parts, boundary));
}

/**
 * Writes a multipart body onto any Writable, honouring its backpressure (waits for 'drain'), and
 * stops (closing the part being read) when `out` closes or errors first or `signal` aborts.
 * Resolves when everything is written (the Writable is not ended: the caller decides).
 */
export async function writeMultipart(
  out: Writable,
  parts: AsyncIterable<MultipartPart> | Iterable<MultipartPart>,
  boundary: string,
  signal?: AbortSignal,
): Promise<void> {
  const chunks = multipartChunks(parts, boundary);
  let gone: Error | undefined;
  let wake: (() => void) | undefined;
  const onGone = (e?: unknown) => {
    gone ??= e instanceof Error ? e : new Error('the receiver went away');
    wake?.();
  };
  const onDrain = () => wake?.();
  out.on('close', onGone);
  out.on('error', onGone);
  out.on('drain', onDrain);
  const onAbort = () => onGone(new Error('aborted'));
  signal?.addEventListener('abort', onAbort);
  try {
    if (signal?.aborted) throw new Error('aborted');
    for await (const chunk of chunks) {
      if (gone !== undefined) throw gone;
      if (!out.write(chunk)) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          if (gone !== undefined || !out.writableNeedDrain) resolve();
        });
        wake = undefined;
        if (gone !== undefined) throw gone;
      }
    }
  } finally {
    out.off('close', onGone);
    out.off('error', onGone);
    out.off('drain', onDrain);
    signal?.removeEventListener('abort', onAbort);
  }
}
