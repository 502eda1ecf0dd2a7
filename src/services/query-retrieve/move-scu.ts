/**
 * C-MOVE SCU of the Query/Retrieve service (PS3.4 C.4.2.2): asks an SCP to send the objects an
 * Identifier names to a destination AE, and follows the sub-operation counts of its pending
 * responses to the final one. Aborting `signal` sends C-CANCEL (the SCP answers Cancel with its
 * counts). Also what the C-GET SCU shares with it: reading the responses of a retrieve. The
 * Identifier is built as for C-FIND (find-scu.ts buildIdentifier) with the level and unique keys.
 */
import { PacsError } from '../../core/errors.js';
import { err, ok, type Result } from '../../core/result.js';
import type { DataSet } from '../../dicom/dataset.js';
import { TAG } from '../../dicom/dictionary.js';
import { EXPLICIT_VR_LE, IMPLICIT_VR_LE } from '../../dicom/uid.js';
import type { ProposedPresentationContext } from '../../network/association.js';
import type { DimseAssociation } from '../../network/dimse.js';
import { CommandField, type DimseCommand, Priority } from '../../network/dimse-command.js';
import { Status, statusCategory } from '../../network/dimse-status.js';
import type { ResponseMessage } from '../../network/service.js';
import type { InformationModel, QueryRetrieveOperation } from './models.js';

/** Counts of a pending or final C-MOVE/C-GET response (absent ones are undefined). */
export interface RetrieveProgress {
  readonly status: number;
  readonly remaining: number | undefined;
  readonly completed: number | undefined;
  readonly failed: number | undefined;
  readonly warning: number | undefined;
}

/** The final response of a retrieve. */
export interface RetrieveOutcome extends RetrieveProgress {
  readonly errorComment: string | undefined;
  /** Failed SOP Instance UID List (0008,0058) of the final response. */
  readonly failedSopInstanceUids: readonly string[];
  /** Pending responses received. */
  readonly pendingResponses: number;
  /** True when the final status is Cancel after we sent C-CANCEL. */
  readonly cancelled: boolean;
}

export type RetrieveErrorCode =
  /** The peer accepted no context for the retrieve SOP class. */
  | 'ERR_NO_CONTEXT'
  /** The association ended (or timed out) before the final response. */
  | 'ERR_ASSOCIATION';

export class RetrieveError extends PacsError {
  override readonly code: RetrieveErrorCode;
  constructor(code: RetrieveErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.code = code;
  }
}

/** The presentation context of a retrieve SOP class (Explicit, then Implicit VR LE). */
export function retrieveContext(
  model: InformationModel,
  operation: Extract<QueryRetrieveOperation, 'move' | 'get'>,
): ProposedPresentationContext {
  return { abstractSyntax: model.sopClasses[operation], transferSyntaxes: [EXPLICIT_VR_LE, IMPLICIT_VR_LE] };
}

function progressOf(command: DimseCommand): RetrieveProgress {
  return {
    status: command.status ?? Status.ProcessingFailure,
    remaining: command.remainingSubOperations,
    completed: command.completedSubOperations,
    failed: command.failedSubOperations,
    warning: command.warningSubOperations,
  };
}

export interface RetrieveRequestOptions {
  /** PS3.7 9.3.1.1 (default medium). */
  readonly priority?: number;
  /** Aborting it sends C-CANCEL; the final response then normally has status Cancel. */
  readonly signal?: AbortSignal;
  /** Called with each pending response. */
  readonly onProgress?: (progress: RetrieveProgress) => void;
}

/**
 * Sends a C-MOVE-RQ or C-GET-RQ and reads its responses to the final one. Expected failures are
 * values: no context for the SOP class, or the association ending first (RetrieveError). A final
 * failure status is an outcome, not an error.
 */
export async function runRetrieve(
  assoc: DimseAssociation,
  command: Omit<DimseCommand, 'messageId'>,
  identifier: DataSet,
  options: RetrieveRequestOptions = {},
): Promise<Result<RetrieveOutcome, RetrieveError>> {
  const sopClass = command.affectedSopClassUid ?? '';
  const pc = assoc.presentationContexts.find((c) => c.abstractSyntax === sopClass && c.scu);
  if (pc === undefined)
    return err(
      new RetrieveError('ERR_NO_CONTEXT', `the peer accepted no presentation context for ${sopClass}`),
    );
  const signal = options.signal;
  let pending = 0;
  // request() sends C-CANCEL when the signal is aborted (PS3.7 9.3.3.3, 9.3.4.3).
  const responses = assoc.request(pc.id, command, identifier, signal === undefined ? {} : { signal });
  try {
    let final: ResponseMessage | undefined;
    for await (const r of responses) {
      if (statusCategory(r.command.status ?? 0) === 'pending') {
        pending++;
        options.onProgress?.(progressOf(r.command));
        continue;
      }
      final = r;
    }
    if (final === undefined) return err(new RetrieveError('ERR_ASSOCIATION', 'no final response'));
    const failedSopInstanceUids = final.dataSet?.strings(TAG.FailedSOPInstanceUIDList) ?? [];
    return ok({
      ...progressOf(final.command),
      errorComment: final.command.errorComment,
      failedSopInstanceUids,
      pendingResponses: pending,
      cancelled: signal?.aborted === true && final.command.status === Status.Cancel,
    });
  } catch (e) {
    return err(new RetrieveError('ERR_ASSOCIATION', (e as Error)?.message ?? String(e), { cause: e }));
  }
}

export interface MoveRequest extends RetrieveRequestOptions {
  readonly model: InformationModel;
  /** The AE title the SCP sends the objects to. */
  readonly destination: string;
  readonly identifier: DataSet;
}

/** C-MOVE on an open association (propose retrieveContext(model, 'move')). */
export function move(
  assoc: DimseAssociation,
  request: MoveRequest,
): Promise<Result<RetrieveOutcome, RetrieveError>> {
  return runRetrieve(
    assoc,
    {
      commandField: CommandField.C_MOVE_RQ,
      affectedSopClassUid: request.model.sopClasses.move,
      priority: request.priority ?? Priority.Medium,
      moveDestination: request.destination,
      hasDataSet: true,
    },
    request.identifier,
    request,
  );
}
