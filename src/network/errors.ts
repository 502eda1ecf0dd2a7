/**
 * The one error type of the network layer. Callers switch on `code`; an error that must end the
 * association carries the A-ABORT reason (PS3.8 9.3.8) to send or that was received, a refused
 * association carries the A-ASSOCIATE-RJ fields (PS3.8 9.3.4).
 */
import { PacsError } from '../core/errors.js';

export type NetworkErrorCode =
  /** PDU type byte unknown (A-ABORT reason 1, unrecognized-PDU). */
  | 'ERR_PDU_UNRECOGNIZED'
  /** PDU announces a length over our limit; refused before its body is read (reason 6). */
  | 'ERR_PDU_TOO_LARGE'
  /** PDU or item structure inconsistent (reason 6, invalid-PDU-parameter value). */
  | 'ERR_PDU_INVALID'
  /** A value given to an encoder cannot be encoded (a bug or a bad configuration value). */
  | 'ERR_PDU_ENCODE'
  /** The peer (or its provider) answered A-ASSOCIATE-RJ. */
  | 'ERR_ASSOCIATION_REJECTED'
  /** The association was aborted (by us, by the peer, or by the provider). */
  | 'ERR_ASSOCIATION_ABORTED'
  /** A local primitive was asked in a state that does not allow it (send after release...). */
  | 'ERR_ASSOCIATION_STATE'
  /** TCP/TLS connection could not be made. */
  | 'ERR_CONNECT'
  /** A timer ran out: connect, ACSE (ARTIM), DIMSE or idle. */
  | 'ERR_TIMEOUT';

export interface RejectInfo {
  readonly result: number;
  readonly source: number;
  readonly reason: number;
}

export interface AbortInfo {
  /** Who ended the association: we did, the peer sent A-ABORT, or the provider (transport, protocol error). */
  readonly initiator: 'local' | 'peer' | 'provider';
  /** PS3.8 9.3.8 source: 0 service-user, 2 service-provider. */
  readonly source: number;
  /** PS3.8 9.3.8 reason (0 when the source is the service-user). */
  readonly reason: number;
  /** Human-readable detail: the timer that expired, the PDU error, 'transport closed'... */
  readonly detail?: string;
}

export class NetworkError extends PacsError {
  override readonly code: NetworkErrorCode;
  /** For PDU errors: the A-ABORT reason to send. For aborts: what was sent or received. */
  readonly abort: AbortInfo | undefined;
  readonly reject: RejectInfo | undefined;
  constructor(
    code: NetworkErrorCode,
    message: string,
    details: { abort?: AbortInfo; reject?: RejectInfo; cause?: unknown } = {},
  ) {
    super(code, message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.abort = details.abort;
    this.reject = details.reject;
  }
}

/** A malformed or unacceptable PDU received from the peer; `reason` is the A-ABORT reason to answer with. */
export function pduError(
  code: 'ERR_PDU_UNRECOGNIZED' | 'ERR_PDU_TOO_LARGE' | 'ERR_PDU_INVALID',
  message: string,
  reason: number,
): NetworkError {
  return new NetworkError(code, message, {
    abort: { initiator: 'provider', source: 2, reason, detail: message },
  });
}
