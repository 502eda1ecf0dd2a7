/**
 * A streaming reader of multipart bodies (RFC 2046 5.1, multipart/related RFC 2387) for STOW-RS
 * (PS3.18 10.5). Parts come one at a time as `{ headers, body }` where `body` is a Readable that
 * streams the part's bytes: the source is read only as fast as the current body is consumed
 * (backpressure end to end), and memory stays bounded whatever the part size: body bytes are
 * passed on as views of the source's chunks, only a possible start of the delimiter at a chunk's
 * end is kept back. Asking for the next part drops what is left of the current body.
 *
 * RFC 2046 5.1.1: the body is `preamble CRLF--boundary padding CRLF part (CRLF--boundary padding
 * CRLF part)* CRLF--boundary-- epilogue`; the CRLF before a delimiter belongs to the delimiter,
 * transport padding (spaces and tabs) may follow a boundary, preamble and epilogue are ignored.
 * A first delimiter at the very start of the body has no CRLF before it.
 */
import { Readable } from 'node:stream';
import { PacsError } from '../core/errors.js';
import { parseMediaType } from './media-type.js';

/** Why a multipart body was refused (the `reason` of a MultipartError). */
export type MultipartErrorReason =
  /** The Content-Type is not multipart or has no usable boundary parameter. */
  | 'no-boundary'
  /** The body ended before the first delimiter. */
  | 'no-opening-delimiter'
  /** The body ended before the closing delimiter (inside a part, its headers or after a boundary). */
  | 'truncated'
  /** A boundary line is followed by something other than padding and CRLF, or "--". */
  | 'bad-delimiter'
  /** A part's header block is longer than the limit. */
  | 'header-too-large'
  /** A header line is not `name: value`. */
  | 'bad-header'
  /** The source failed (a client that went away). */
  | 'source-error';

/** A malformed multipart body (or a failed source); `reason` says which rule was broken. */
export class MultipartError extends PacsError {
  readonly reason: MultipartErrorReason;
  constructor(reason: MultipartErrorReason, message: string, options?: { cause?: unknown }) {
    super('ERR_HTTP_MULTIPART', message, options);
    this.reason = reason;
  }
}

/** One part: its headers (names in lower case, repeated headers joined by ", ") and its streaming body. */
export interface MultipartPart {
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Readable;
  /** The part's position, 0 first. */
  readonly index: number;
}

/** Limits of a MultipartReader. */
export interface MultipartReaderOptions {
  /** The longest header block of a part (default 16 KiB). */
  readonly maxHeaderBytes?: number;
  /** The longest transport padding after a boundary (default 1 KiB). */
  readonly maxPaddingBytes?: number;
  /** highWaterMark of each part's body stream (default 256 KiB). */
  readonly highWaterMark?: number;
}

/**
 * RFC 2046 5.1.1: bchars, not ending with a space, at most 70 characters. Longer ones are
 * accepted up to 256: Orthanc's DICOMweb client sends two UUIDs joined (73 characters).
 */
const BOUNDARY_RE = /^[0-9A-Za-z'()+_,\-./:=? ]{0,255}[0-9A-Za-z'()+_,\-./:=?]$/;

/** The boundary of a multipart Content-Type (quoted or not); MultipartError 'no-boundary' when there is none. */
export function boundaryOf(contentType: string | undefined): string {
  const media = contentType === undefined ? undefined : parseMediaType(contentType);
  if (media === undefined || !media.type.startsWith('multipart/'))
    throw new MultipartError('no-boundary', `not a multipart media type: ${contentType ?? '(none)'}`);
  const boundary = media.params['boundary'];
  if (boundary === undefined || boundary === '')
    throw new MultipartError('no-boundary', 'the multipart Content-Type has no boundary parameter');
  if (!BOUNDARY_RE.test(boundary))
    throw new MultipartError(
      'no-boundary',
      'the boundary is not 1 to 256 characters of those RFC 2046 5.1.1 allows',
    );
  return boundary;
}

enum State {
  /** Looking for the first delimiter (preamble dropped). */
  Preamble,
  /** Just after a boundary: "--", or padding then CRLF. */
  AfterBoundary,
  Headers,
  Body,
  /** After the closing delimiter: everything is dropped. */
  Epilogue,
  Failed,
}

const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');
const EMPTY = Buffer.alloc(0);

/**
 * Reads the parts of a multipart body from `source` (an HTTP request stream...). Iterate it with
 * `for await`; errors (malformed body, failed source) are MultipartError, thrown by the iterator
 * or destroying the current part's body stream.
 */
export class MultipartReader implements AsyncIterable<MultipartPart> {
  private readonly source: AsyncIterator<Uint8Array>;
  /** "\r\n--boundary" */
  private readonly delimiter: Buffer;
  private readonly maxHeaderBytes: number;
  private readonly maxPaddingBytes: number;
  private readonly highWaterMark: number;
  private state = State.Preamble;
  /** Bytes received and not yet processed (the CRLF that may open the first delimiter comes first). */
  private pending: Buffer = CRLF;
  private sourceDone = false;
  private failure: MultipartError | undefined;
  private current: Readable | undefined;
  /** Resolves when the current part's body has ended (or failed). */
  private currentDone: Promise<void> | undefined;
  private resolveCurrent: (() => void) | undefined;
  /** The body pump running now, if any (one source read at a time). */
  private pumpRun: Promise<void> | undefined;
  private count = 0;

  constructor(source: AsyncIterable<Uint8Array>, boundary: string, options: MultipartReaderOptions = {}) {
    this.source = source[Symbol.asyncIterator]();
    this.delimiter = Buffer.from(`\r\n--${boundary}`, 'latin1');
    this.maxHeaderBytes = options.maxHeaderBytes ?? 16 * 1024;
    this.maxPaddingBytes = options.maxPaddingBytes ?? 1024;
    this.highWaterMark = options.highWaterMark ?? 256 * 1024;
  }

  /** How many parts were begun so far. */
  get parts(): number {
    return this.count;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<MultipartPart> {
    for (;;) {
      const part = await this.next();
      if (part === undefined) return;
      yield part;
    }
  }

  /** The next part, or undefined after the closing delimiter. What is left of the current body is dropped. */
  async next(): Promise<MultipartPart | undefined> {
    if (this.current !== undefined) {
      const body = this.current;
      if (!body.readableEnded && !body.destroyed) body.resume(); // drop the rest
      await this.currentDone;
      this.current = undefined;
    }
    for (;;) {
      if (this.failure) throw this.failure;
      switch (this.state) {
        case State.Preamble:
          if (this.scanPreamble()) continue;
          break;
        case State.AfterBoundary:
          if (this.afterBoundary()) continue;
          break;
        case State.Headers: {
          const headers = this.readHeaders();
          if (this.failure) throw this.failure;
          if (headers !== undefined) return this.beginPart(headers);
          break;
        }
        case State.Epilogue:
          await this.drainEpilogue();
          return undefined;
        case State.Body:
        case State.Failed:
          throw this.failure ?? new MultipartError('truncated', 'multipart reader in a bad state');
      }
      if (!(await this.pull())) {
        if (this.failure) throw this.failure;
        throw this.fail(
          this.state === State.Preamble
            ? new MultipartError('no-opening-delimiter', 'the body has no multipart delimiter')
            : new MultipartError('truncated', 'the body ended before the closing multipart delimiter'),
        );
      }
    }
  }

  private fail(error: MultipartError): MultipartError {
    this.failure ??= error;
    this.state = State.Failed;
    this.pending = EMPTY;
    return this.failure;
  }

  /** Appends the next chunk of the source to `pending`; false at its end. */
  private async pull(): Promise<boolean> {
    if (this.sourceDone) return false;
    let r: IteratorResult<Uint8Array>;
    try {
      r = await this.source.next();
    } catch (e) {
      this.sourceDone = true;
      this.fail(
        new MultipartError(
          'source-error',
          `the request body failed: ${e instanceof Error ? e.message : String(e)}`,
          {
            cause: e,
          },
        ),
      );
      return false;
    }
    if (r.done) {
      this.sourceDone = true;
      return false;
    }
    const chunk = Buffer.isBuffer(r.value)
      ? r.value
      : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    return true;
  }

  /**
   * The length of the longest suffix of `data` that is a proper prefix of the delimiter: bytes
   * that may begin a delimiter completed by the next chunk.
   */
  private partialTail(data: Buffer): number {
    const d = this.delimiter;
    const max = Math.min(d.length - 1, data.length);
    for (let n = max; n > 0; n--) {
      // Cheap first test: the suffix must start with CR.
      if (data[data.length - n] !== 0x0d) continue;
      if (data.compare(d, 0, n, data.length - n) === 0) return n;
    }
    return 0;
  }

  /** Preamble: true when the first delimiter was found (state moved on). */
  private scanPreamble(): boolean {
    const i = this.pending.indexOf(this.delimiter);
    if (i >= 0) {
      this.pending = this.pending.subarray(i + this.delimiter.length);
      this.state = State.AfterBoundary;
      return true;
    }
    const keep = this.partialTail(this.pending);
    this.pending = Buffer.from(this.pending.subarray(this.pending.length - keep));
    return false;
  }

  /** After a boundary: "--" closes, padding + CRLF opens a part. True when decided. */
  private afterBoundary(): boolean {
    const p = this.pending;
    if (p.length < 2) return false;
    if (p[0] === 0x2d && p[1] === 0x2d) {
      this.state = State.Epilogue;
      this.pending = EMPTY;
      return true;
    }
    let i = 0;
    while (i < p.length && (p[i] === 0x20 || p[i] === 0x09)) i++;
    if (i > this.maxPaddingBytes) {
      this.fail(new MultipartError('bad-delimiter', 'too much transport padding after a boundary'));
      return true;
    }
    if (i === p.length || (p[i] === 0x0d && i + 1 === p.length)) return false;
    if (p[i] === 0x0d && p[i + 1] === 0x0a) {
      this.pending = p.subarray(i + 2);
      this.state = State.Headers;
      return true;
    }
    this.fail(
      new MultipartError(
        'bad-delimiter',
        'a multipart boundary is followed by something other than CRLF or "--"',
      ),
    );
    return true;
  }

  /** The header block of a part, once it is complete. */
  private readHeaders(): Record<string, string> | undefined {
    const p = this.pending;
    let blockEnd: number;
    let rest: number;
    if (p.length >= 2 && p[0] === 0x0d && p[1] === 0x0a) {
      // No headers: the blank line comes at once (RFC 2046 5.1.1: defaults apply).
      blockEnd = 0;
      rest = 2;
    } else {
      const i = p.indexOf(HEADER_END);
      if (i < 0) {
        if (p.length > this.maxHeaderBytes)
          this.fail(
            new MultipartError(
              'header-too-large',
              `a part's header block is over ${this.maxHeaderBytes} bytes`,
            ),
          );
        return undefined;
      }
      if (i > this.maxHeaderBytes) {
        this.fail(
          new MultipartError(
            'header-too-large',
            `a part's header block is over ${this.maxHeaderBytes} bytes`,
          ),
        );
        return undefined;
      }
      blockEnd = i;
      rest = i + 4;
    }
    const headers: Record<string, string> = {};
    // RFC 5322 2.2.3: a line that starts with white space continues the previous one.
    const text = p.toString('latin1', 0, blockEnd).replace(/\r\n[ \t]+/g, ' ');
    if (text.length > 0)
      for (const line of text.split('\r\n')) {
        const colon = line.indexOf(':');
        const name = colon > 0 ? line.slice(0, colon).trim().toLowerCase() : '';
        if (name === '' || !/^[!#$%&'*+\-.^_`|~0-9a-z]+$/.test(name)) {
          this.fail(
            new MultipartError('bad-header', `a part header line is not "name: value": ${line.slice(0, 80)}`),
          );
          return undefined;
        }
        const value = line.slice(colon + 1).trim();
        headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
      }
    this.pending = p.subarray(rest);
    this.state = State.Body;
    return headers;
  }

  private beginPart(headers: Record<string, string>): MultipartPart {
    this.currentDone = new Promise((resolve) => {
      this.resolveCurrent = resolve;
    });
    const body = new Readable({
      highWaterMark: this.highWaterMark,
      read: () => {
        this.pumpRun ??= this.pumpBody(body).finally(() => {
          this.pumpRun = undefined;
        });
      },
      destroy: (error, callback) => {
        // A consumer that gives up on a body (or fails): what is left of it is dropped, so the next part can be read.
        if (this.state === State.Body && this.failure === undefined) {
          this.skipRestOfBody().then(
            () => callback(error),
            () => callback(error),
          );
          return;
        }
        this.finishCurrent();
        callback(error);
      },
    });
    this.current = body;
    return { headers, body, index: this.count++ };
  }

  private finishCurrent(): void {
    const r = this.resolveCurrent;
    this.resolveCurrent = undefined;
    r?.();
  }

  /** Pushes body bytes until the body's buffer is full, the delimiter is found or the source ends. */
  private async pumpBody(body: Readable): Promise<void> {
    for (;;) {
      if (this.state !== State.Body) return;
      if (this.pending.length > 0) {
        const { ended, more } = this.bodyBytes((b) => body.push(b));
        if (ended) {
          body.push(null);
          body.once('end', () => this.finishCurrent());
          if (body.readableEnded) this.finishCurrent();
          return;
        }
        if (!more) return;
      }
      if (!(await this.pull())) {
        const error =
          this.failure ??
          this.fail(
            new MultipartError('truncated', 'the body ended inside a part (no closing multipart delimiter)'),
          );
        this.fail(error);
        body.destroy(error);
        return;
      }
    }
  }

  /**
   * Passes the body bytes in `pending` to `emit` up to the delimiter (kept back: a possible start
   * of it at the end). `ended` when the delimiter was found; `more` when emit wants more.
   */
  private bodyBytes(emit: (b: Buffer) => boolean): { ended: boolean; more: boolean } {
    const p = this.pending;
    const i = p.indexOf(this.delimiter);
    if (i >= 0) {
      if (i > 0) emit(p.subarray(0, i));
      this.pending = p.subarray(i + this.delimiter.length);
      this.state = State.AfterBoundary;
      return { ended: true, more: false };
    }
    const keep = this.partialTail(p);
    const out = p.subarray(0, p.length - keep);
    // The kept bytes are copied so that the chunk they came from is not retained.
    this.pending = keep > 0 ? Buffer.from(p.subarray(p.length - keep)) : EMPTY;
    const more = out.length > 0 ? emit(out) : true;
    return { ended: false, more };
  }

  /** Drops the rest of the current body (its consumer went away) up to the next delimiter. */
  private async skipRestOfBody(): Promise<void> {
    await this.pumpRun;
    while (this.state === State.Body) {
      if (this.pending.length > 0 && this.bodyBytes(() => true).ended) break;
      if (this.state === State.Body && !(await this.pull())) {
        this.fail(
          this.failure ??
            new MultipartError('truncated', 'the body ended inside a part (no closing multipart delimiter)'),
        );
        break;
      }
    }
    this.finishCurrent();
  }

  /** Reads the epilogue to the end of the source, dropping it (a keep-alive connection stays usable). */
  private async drainEpilogue(): Promise<void> {
    this.pending = EMPTY;
    while (!this.sourceDone) {
      await this.pull();
      this.pending = EMPTY;
    }
  }
}

/** Reads the parts of a multipart body: `for await (const part of readMultipart(request.raw, boundary))`. */
export function readMultipart(
  source: AsyncIterable<Uint8Array>,
  boundary: string,
  options: MultipartReaderOptions = {},
): MultipartReader {
  return new MultipartReader(source, boundary, options);
}
