/**
 * The 'order-record' event of MPPS (core/events.ts: the audit trail's Procedure Record, PS3.15
 * A.5.3.9), once per instance created or changed, with the patient and the study it performed.
 */
import type { DataSet } from '../../dicom/dataset.js';
import { TAG } from '../../dicom/dictionary.js';
import { valuesOf } from '../../dicom/matching.js';
import type { RequestContext } from '../../network/service.js';
import { scheduledStepsOf } from './model.js';

export function emitProcedureRecord(
  ctx: RequestContext,
  action: 'create' | 'update',
  dataSet: DataSet,
): void {
  if (ctx.events?.active !== true) return;
  const text = (tag: number): string | undefined => {
    const v = valuesOf(dataSet, tag)[0];
    return v === undefined || v === '' ? undefined : v;
  };
  const step = scheduledStepsOf(dataSet)[0];
  const patientId = text(TAG.PatientID);
  const patientName = text(TAG.PatientName);
  ctx.events.emit({
    type: 'order-record',
    record: 'mpps',
    action,
    user: ctx.peerAeTitle,
    ...(patientId !== undefined ? { patientId } : {}),
    ...(patientName !== undefined ? { patientName } : {}),
    ...(step !== undefined ? { studyInstanceUid: step.studyInstanceUid } : {}),
    ...(step?.accessionNumber != null ? { accessionNumber: step.accessionNumber } : {}),
  });
}
