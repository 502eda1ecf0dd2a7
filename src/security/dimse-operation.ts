/**
 * Which operation a DIMSE request is (issue 14): its command and the SOP class of its presentation
 * context. A C-FIND on the Modality Worklist model is 'dimse:worklist'; N-CREATE / N-SET / N-GET on
 * MPPS are 'dimse:mpps'; N-ACTION / N-EVENT-REPORT on Storage Commitment are 'dimse:commit'. A
 * request that maps to nothing is refused (nothing runs without a stated permission).
 */
import { UID } from '../dicom/uid.js';
import type { DimseOperation } from './operations.js';

/** The DIMSE request commands (network/service.ts DimseHandlers keys). */
export type DimseCommandName =
  | 'C-ECHO'
  | 'C-STORE'
  | 'C-FIND'
  | 'C-GET'
  | 'C-MOVE'
  | 'N-CREATE'
  | 'N-SET'
  | 'N-GET'
  | 'N-ACTION'
  | 'N-DELETE'
  | 'N-EVENT-REPORT';

const WORKLIST_MODELS: ReadonlySet<string> = new Set([UID.ModalityWorklistInformationModelFind]);
const MPPS_CLASSES: ReadonlySet<string> = new Set([UID.ModalityPerformedProcedureStep]);
const COMMITMENT_CLASSES: ReadonlySet<string> = new Set([UID.StorageCommitmentPushModel]);

export function dimseOperationOf(command: string, sopClassUid: string): DimseOperation | undefined {
  switch (command) {
    case 'C-ECHO':
      return 'dimse:echo';
    case 'C-STORE':
      return 'dimse:store';
    case 'C-FIND':
      return WORKLIST_MODELS.has(sopClassUid) ? 'dimse:worklist' : 'dimse:find';
    case 'C-GET':
      return 'dimse:get';
    case 'C-MOVE':
      return 'dimse:move';
    case 'N-CREATE':
    case 'N-SET':
    case 'N-GET':
      return MPPS_CLASSES.has(sopClassUid) ? 'dimse:mpps' : undefined;
    case 'N-ACTION':
    case 'N-EVENT-REPORT':
      return COMMITMENT_CLASSES.has(sopClassUid) ? 'dimse:commit' : undefined;
    default:
      return undefined;
  }
}
