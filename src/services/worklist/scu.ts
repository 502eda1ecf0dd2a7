/**
 * Modality Worklist SCU (PS3.4 K.4.1): a modality's query for its scheduled procedure steps. The
 * identifier carries no Query/Retrieve Level (K.6); keys inside the Scheduled Procedure Step
 * Sequence go into its single item (C.2.2.2.6). The query is the C-FIND SCU's (an async iterator
 * of matches; aborting the signal or leaving the loop sends C-CANCEL).
 */
import { PacsError } from '../../core/errors.js';
import { err, ok, type Result } from '../../core/result.js';
import { DataSet } from '../../dicom/dataset.js';
import { TAG } from '../../dicom/dictionary.js';
import type { Tag } from '../../dicom/tag.js';
import { EXPLICIT_VR_LE, IMPLICIT_VR_LE } from '../../dicom/uid.js';
import type { ProposedPresentationContext } from '../../network/association.js';
import type { DimseAssociation } from '../../network/dimse.js';
import { statusCategory } from '../../network/dimse-status.js';
import { type FindQuery, find } from '../query-retrieve/find-scu.js';
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
  /** Aborting sends C-CANCEL; the SCP then ends with 0xFE00 (or its last status if it was done). */
  readonly signal?: AbortSignal;
  /** Default MEDIUM. */
  readonly priority?: number;
}

/**
 * One worklist C-FIND-RQ: the C-FIND SCU's query (find-scu.ts) on the Modality Worklist SOP
 * class, with the keys sent as they are (no Query/Retrieve Level, K.6). Iterate it for the
 * matches, then read `outcome` (ERR_NO_CONTEXT, a broken exchange, or the final status).
 */
export function queryWorklist(
  association: DimseAssociation,
  keys: DataSet,
  options: WorklistQueryOptions = {},
): FindQuery {
  return find(association, keys, { ...options, sopClassUid: WORKLIST_FIND_SOP_CLASS });
}

/** queryWorklist collecting the matches; a non-success final status is an ERR_WORKLIST_STATUS error. */
export async function fetchWorklist(
  association: DimseAssociation,
  keys: DataSet,
): Promise<Result<DataSet[], PacsError>> {
  const items: DataSet[] = [];
  const query = queryWorklist(association, keys);
  for await (const item of query) items.push(item);
  const result = await query.outcome;
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
