/**
 * The one error type of the archive layer. Callers switch on `code`; the Storage SCP maps each
 * code to its DIMSE status (ERR_ARCHIVE_OUT_OF_SPACE is PS3.4 B.2.3 "Refused: Out of Resources", A700).
 */
import { PacsError } from '../core/errors.js';

export type ArchiveErrorCode =
  /** Free space is below the floor, or the disk filled up while writing (ENOSPC, EDQUOT). */
  | 'ERR_ARCHIVE_OUT_OF_SPACE'
  /** The duplicate policy is `reject` and the SOP Instance UID is already archived. */
  | 'ERR_ARCHIVE_DUPLICATE'
  /** The header lacks what the index needs (SOP Class/Instance, Study and Series Instance UIDs). */
  | 'ERR_ARCHIVE_INVALID_OBJECT'
  /** The bytes are not a data set in the transfer syntax given (or not a Part-10 file). */
  | 'ERR_ARCHIVE_UNPARSABLE'
  /** The data set ended inside an element, item or sequence: a cut stream. */
  | 'ERR_ARCHIVE_TRUNCATED'
  /** The SOP Class or Instance UID of the data set is not the one the caller expected (`tag` says which). */
  | 'ERR_ARCHIVE_UID_MISMATCH'
  /** The input failed or was destroyed before its end (an aborted association): nothing is kept. */
  | 'ERR_ARCHIVE_ABORTED'
  /** A file operation failed for another reason (permissions, I/O error). */
  | 'ERR_ARCHIVE_IO'
  /** The index (SQL) failed: the database is unreachable, a constraint failed... */
  | 'ERR_ARCHIVE_INDEX'
  /** The index schema is newer than this program knows, or its URL is not one we open. */
  | 'ERR_ARCHIVE_SCHEMA'
  /** An object handle was used after commit or abort, or the archive is closed. */
  | 'ERR_ARCHIVE_STATE'
  /** An encrypted object file fails its authentication: tampered, truncated, swapped. Never served. */
  | 'ERR_ARCHIVE_INTEGRITY'
  /** An object is encrypted under a key-encryption key that is not configured. */
  | 'ERR_ARCHIVE_KEY';

export class ArchiveError extends PacsError {
  override readonly code: ArchiveErrorCode;
  /** The attribute at fault, when there is one (ERR_ARCHIVE_UID_MISMATCH). */
  readonly tag: number | undefined;
  constructor(code: ArchiveErrorCode, message: string, options?: { cause?: unknown; tag?: number }) {
    super(code, message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.tag = options?.tag;
  }
}

const NO_SPACE = new Set(['ENOSPC', 'EDQUOT']);

/** Wraps a failed file operation: a full disk becomes ERR_ARCHIVE_OUT_OF_SPACE, anything else ERR_ARCHIVE_IO. */
export function fileError(what: string, cause: unknown): ArchiveError {
  if (cause instanceof ArchiveError) return cause;
  const code = (cause as { code?: unknown } | null)?.code;
  const detail = cause instanceof Error ? cause.message : String(cause);
  if (typeof code === 'string' && NO_SPACE.has(code))
    return new ArchiveError('ERR_ARCHIVE_OUT_OF_SPACE', `${what}: disk full (${detail})`, { cause });
  return new ArchiveError('ERR_ARCHIVE_IO', `${what}: ${detail}`, { cause });
}
