/**
 * HTTP errors with a stable `code` and a human reason (ARCHITECTURE.md: JSON errors carry both).
 * A handler throws `httpError(status, code, reason)`; the app's error handler (app.ts) answers
 * `{"code": ..., "reason": ...}` with that status and logs one line saying why. Codes are
 * `ERR_HTTP_*` for the HTTP layer's own checks, or the archive's `ERR_ARCHIVE_*` passed through.
 */
import { PacsError } from '../core/errors.js';

export class HttpError extends PacsError {
  readonly status: number;
  /** Extra response headers (Allow for a 405, Retry-After for a 503...). */
  readonly headers: Readonly<Record<string, string>>;
  constructor(
    status: number,
    code: string,
    reason: string,
    options: { readonly cause?: unknown; readonly headers?: Readonly<Record<string, string>> } = {},
  ) {
    super(code, reason, options.cause === undefined ? undefined : { cause: options.cause });
    this.status = status;
    this.headers = options.headers ?? {};
  }
}

/** `throw httpError(400, 'ERR_HTTP_BAD_QUERY', 'limit must be a positive integer')`. */
export function httpError(
  status: number,
  code: string,
  reason: string,
  options: { readonly cause?: unknown; readonly headers?: Readonly<Record<string, string>> } = {},
): HttpError {
  return new HttpError(status, code, reason, options);
}

/** The JSON body of an error answer. */
export interface ErrorBody {
  readonly code: string;
  readonly reason: string;
}
