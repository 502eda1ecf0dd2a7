/**
 * Modality Worklist SCU (PS3.4 K.4.1): a modality's query for its scheduled procedure steps. The
 * identifier carries no Query/Retrieve Level (K.6); keys inside the Scheduled Procedure Step
 * Sequence go into its single item (C.2.2.2.6). Matches are streamed to a callback; aborting the
 * signal sends C-CANCEL.
 */
import { PacsError } from '../../core/errors.js';
import { err, ok, type Result } from '../../core/result.js';
import { DataSet } from '../../dicom/dataset.js';
import { TAG } from '../../dicom/dictionary.js';
import type { Tag } from '../../dicom/tag.js';
import { EXPLICIT_VR_LE, IMPLICIT_VR_LE } from '../../dicom/uid.js';
import type { ProposedPresentationContext } from '../../network/association.js';
import type { DimseAssociation } from '../../network/dimse.js';
import { CommandField, Priority } from '../../network/dimse-command.js';
import { Status, statusCategory } from '../../network/dimse-status.js';
import { WORKLIST_FIND_SOP_CLASS } from './model.js';

export const WORKLIST_FIND_CONTEXT: ProposedPresentationContext = {
  abstractSyntax: WORKLIST_FIND_SOP_CLASS,
  transferSyntaxes: [EXPLICIT_VR_LE, IMPLICIT_VR_LE],
};

/** The top-level return keys a modality asks for (Table K.6-1), in the order `pacs worklist` shows them. */
export const WORKLIST_ITEM_KEYS: readonly Tag[] = [
  TAG.AccessionNumber,
  TAG.PatientName,
  TAG.PatientID,
  TAG.PatientBirthDate,
  TAG.PatientSex,
  TAG.StudyInstanceUID,
  TAG.RequestedProcedureDescription,
  TAG.RequestedProcedureID,
];

/** The return keys of the Scheduled Procedure Step item a modality asks for. */
export const WORKLIST_STEP_KEYS: readonly Tag[] = [
  TAG.Modality,
  TAG.ScheduledStationAETitle,
  TAG.ScheduledProcedureStepStartDate,
  TAG.ScheduledProcedureStepStartTime,
  TAG.ScheduledPerformingPhysicianName,
  TAG.ScheduledProcedureStepDescription,
  TAG.ScheduledProcedureStepID,
  TAG.ScheduledStationName,
  TAG.ScheduledProcedureStepStatus,
];

/**
 * Adds the return keys a modality asks for (WORKLIST_ITEM_KEYS, WORKLIST_STEP_KEYS) to `keys`
 * where it has none, so that answers say what a worklist screen shows. Returns `keys`.
 */
export function withModalityReturnKeys(keys: DataSet): DataSet {
  for (const tag of WORKLIST_ITEM_KEYS) if (!keys.has(tag)) keys.setBytes(tag, new Uint8Array(0));
  let step = keys.sequence(TAG.ScheduledProcedureStepSequence)?.[0];
  if (step === undefined) {
    step = new DataSet(keys);
    keys.setSequence(TAG.ScheduledProcedureStepSequence, [step]);
  }
  for (const tag of WORKLIST_STEP_KEYS) if (!step.has(tag)) step.setBytes(tag, new Uint8Array(0));
  return keys;
}

export interface WorklistQueryOptions {
  /** Called with each match, in order; the next response is read once it resolves. */
  readonly onMatch?: (item: DataSet) => void | Promise<void>;
  /** Aborting sends C-CANCEL; the SCP then ends with 0xFE00 (or its last status if it was done). */
  readonly signal?: AbortSignal;
}

/** How the query ended: any final status, failures included (check statusCategory). */
export interface WorklistQueryOutcome {
  readonly status: number;
  readonly errorComment?: string;
  readonly offendingElements?: readonly number[];
  readonly matches: number;
  /** Some pending responses were 0xFF01: the SCP did not support some optional keys. */
  readonly optionalKeysUnsupported: boolean;
}

/**
 * Sends one worklist C-FIND-RQ and reads its responses to the end. Errors are the exchange's: no
 * accepted context (ERR_NO_CONTEXT), a broken exchange (ERR_DIMSE or the network error).
 */
export async function queryWorklist(
  association: DimseAssociation,
  keys: DataSet,
  options: WorklistQueryOptions = {},
): Promise<Result<WorklistQueryOutcome, PacsError>> {
  const pc = association.presentationContexts.find(
    (c) => c.abstractSyntax === WORKLIST_FIND_SOP_CLASS && c.scu,
  );
  if (!pc) return err(new PacsError('ERR_NO_CONTEXT', 'the peer did not accept Modality Worklist C-FIND'));
  const responses = association.request(
    pc.id,
    {
      commandField: CommandField.C_FIND_RQ,
      affectedSopClassUid: WORKLIST_FIND_SOP_CLASS,
      priority: Priority.Medium,
      hasDataSet: true,
    },
    keys,
  );
  const iterator = responses[Symbol.asyncIterator]();
  // The request takes its message ID when first resumed: read it then, for C-CANCEL.
  let next = iterator.next();
  const messageId = association.lastMessageId;
  let cancelled = false;
  const onAbort = (): void => {
    if (cancelled) return;
    cancelled = true;
    association.cancel(pc.id, messageId).catch(() => undefined);
  };
  if (options.signal?.aborted) onAbort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  let matches = 0;
  let warned = false;
  try {
    for (;;) {
      const r = await next;
      if (r.done) return err(new PacsError('ERR_DIMSE', 'the C-FIND ended without a final response'));
      const { command, dataSet } = r.value;
      const status = command.status ?? 0;
      if (statusCategory(status) === 'pending') {
        if (dataSet === undefined)
          return err(new PacsError('ERR_DIMSE', 'a pending C-FIND response without an Identifier'));
        matches++;
        if (status === Status.PendingWarning) warned = true;
        await options.onMatch?.(dataSet);
        next = iterator.next();
        continue;
      }
      return ok({
        status,
        ...(command.errorComment !== undefined ? { errorComment: command.errorComment } : {}),
        ...(command.offendingElements !== undefined ? { offendingElements: command.offendingElements } : {}),
        matches,
        optionalKeysUnsupported: warned,
      });
    }
  } catch (e) {
    return err(e instanceof PacsError ? e : new PacsError('ERR_DIMSE', String(e), { cause: e }));
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    await iterator.return?.(undefined);
  }
}

/** queryWorklist collecting the matches; a non-success final status is an ERR_WORKLIST_STATUS error. */
export async function fetchWorklist(
  association: DimseAssociation,
  keys: DataSet,
): Promise<Result<DataSet[], PacsError>> {
  const items: DataSet[] = [];
  const result = await queryWorklist(association, keys, { onMatch: (item) => void items.push(item) });
  if (!result.ok) return result;
  if (statusCategory(result.value.status) !== 'success')
    return err(
      new PacsError(
        'ERR_WORKLIST_STATUS',
        `worklist C-FIND status 0x${result.value.status.toString(16).padStart(4, '0')}` +
          (result.value.errorComment !== undefined ? `: ${result.value.errorComment}` : ''),
      ),
    );
  return ok(items);
}
