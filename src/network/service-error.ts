/**
 * The one service failure type (dcm4che's DicomServiceException, as STYLE.md asks): a DIMSE
 * status with its Error Comment, Offending Elements and Error ID, turned into the response in one
 * place. An SCP either returns `failure.response()` or throws the ServiceError from anywhere below
 * its handler: the dispatcher answers it as it is (logged as a warning, not as a bug), while any
 * other exception stays a 0x0110 Processing failure.
 */
import type { DimseResponse } from './service.js';

/** PS3.7 C.4.1.1.3.1: Error Comment is LO, at most 64 characters; the encoder cuts it, once. */
export const ERROR_COMMENT_MAX = 64;

export interface ServiceErrorOptions {
  /** Offending Element (0000,0901): the tags at fault. */
  readonly offendingElements?: readonly number[];
  /** Error ID (0000,0903). */
  readonly errorId?: number;
  /** The underlying error, for the log. */
  readonly cause?: unknown;
}

export class ServiceError extends Error {
  readonly status: number;
  readonly offendingElements: readonly number[] | undefined;
  readonly errorId: number | undefined;

  constructor(status: number, errorComment: string, options: ServiceErrorOptions = {}) {
    super(errorComment, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ServiceError';
    this.status = status;
    this.offendingElements = options.offendingElements;
    this.errorId = options.errorId;
  }

  /** The full comment; the DIMSE encoder cuts it to ERROR_COMMENT_MAX characters. */
  get errorComment(): string {
    return this.message;
  }

  /** The response that answers this failure. */
  response(): DimseResponse {
    return {
      status: this.status,
      errorComment: this.message,
      ...(this.offendingElements !== undefined && this.offendingElements.length > 0
        ? { offendingElements: this.offendingElements }
        : {}),
      ...(this.errorId !== undefined ? { errorId: this.errorId } : {}),
    };
  }
}

/** A failure response in one call: `return failure(Status.CannotUnderstand, 'no level', { offendingElements: [tag] })`. */
export function failure(
  status: number,
  errorComment: string,
  options: ServiceErrorOptions = {},
): DimseResponse {
  return new ServiceError(status, errorComment, options).response();
}
