/**
 * Modality Performed Procedure Step SCP (PS3.4 F.7: N-CREATE and N-SET of the MPPS SOP Class).
 * Instances are kept in the index and linked to the worklist items their Scheduled Step
 * Attributes Sequence names; the items' Scheduled Procedure Step Status follows the step: STARTED
 * on N-CREATE (IN PROGRESS), COMPLETED or DISCONTINUED on the final N-SET. A step that names no
 * item (an unscheduled procedure) is accepted and kept all the same. Validation and the state
 * machine are in model.ts; each N-SET is decided on the stored instance inside the store's
 * transaction, so two N-SETs of one instance cannot both win.
 */
import type { WorklistStore } from '../../archive/worklist/worklist-store.js';
import { err, ok } from '../../core/result.js';
import type { DataSet } from '../../dicom/dataset.js';
import { fromDicomJson, toDicomJson } from '../../dicom/json.js';
import { EXPLICIT_VR_BE, EXPLICIT_VR_LE, generateUid, IMPLICIT_VR_LE, isValidUid } from '../../dicom/uid.js';
import { Status } from '../../network/dimse-status.js';
import type { DimseResponse, DimseService, RequestContext } from '../../network/service.js';
import { failure, ServiceError } from '../../network/service-error.js';
import {
  createFailure,
  decideSet,
  itemStatusFor,
  MPPS_SOP_CLASS,
  PPS_STATUS,
  scheduledStepsOf,
} from './model.js';
import { emitProcedureRecord } from './record-event.js';

export interface MppsServiceOptions {
  readonly worklist: WorklistStore;
}

export function mppsService(options: MppsServiceOptions): DimseService {
  const { worklist } = options;
  return {
    name: 'mpps',
    sopClasses: [{ uid: MPPS_SOP_CLASS }],
    transferSyntaxes: [EXPLICIT_VR_LE, IMPLICIT_VR_LE, EXPLICIT_VR_BE],
    handlers: {
      'N-CREATE': (ctx, dataSet) => createMpps(worklist, ctx, dataSet),
      'N-SET': (ctx, dataSet) => setMpps(worklist, ctx, dataSet),
    },
    health: async () => ({ ok: true }),
  };
}

/** The failure response, naming the instance when its UID is known (PS3.7 10.1.5.1.2, 10.1.3.1.2). */
function refusal(f: ServiceError, affectedSopInstanceUid?: string): DimseResponse {
  return { ...f.response(), ...(affectedSopInstanceUid !== undefined ? { affectedSopInstanceUid } : {}) };
}

/** N-CREATE (F.7.2.1): validated, kept, linked; the SCP assigns the UID when the SCU gave none (PS3.7 10.1.5.1.3). */
export async function createMpps(
  worklist: WorklistStore,
  ctx: RequestContext,
  dataSet: DataSet | undefined,
): Promise<DimseResponse> {
  const given = ctx.command.affectedSopInstanceUid;
  if (given !== undefined && given !== '' && !isValidUid(given))
    return failure(Status.InvalidArgumentValue, 'Affected SOP Instance UID is not a valid UID');
  const uid = given !== undefined && given !== '' ? given : generateUid();
  if (dataSet === undefined)
    return refusal(new ServiceError(Status.MissingAttribute, 'N-CREATE without attribute list'), uid);
  const refused = createFailure(dataSet);
  if (refused !== undefined) {
    ctx.log.info(
      { peer: ctx.peerAeTitle, uid, status: refused.status },
      `MPPS N-CREATE refused: ${refused.errorComment}`,
    );
    return refusal(refused, uid);
  }
  const result = await worklist.createMpps({
    sopInstanceUid: uid,
    status: PPS_STATUS.InProgress,
    dataSet: toDicomJson(dataSet),
    callingAet: ctx.peerAeTitle,
    scheduledSteps: scheduledStepsOf(dataSet),
    itemStatus: 'STARTED',
  });
  if (result.status === 'duplicate') {
    ctx.log.info({ peer: ctx.peerAeTitle, uid }, 'MPPS N-CREATE refused: the instance exists');
    return refusal(
      new ServiceError(Status.DuplicateSopInstance, 'an MPPS instance with this UID exists'),
      uid,
    );
  }
  ctx.log.info(
    { peer: ctx.peerAeTitle, uid, items: result.record.itemIds },
    result.record.itemIds.length > 0 ? 'MPPS created: worklist items STARTED' : 'MPPS created: unscheduled',
  );
  emitProcedureRecord(ctx, 'create', dataSet);
  return { status: Status.Success, affectedSopInstanceUid: uid };
}

/** N-SET (F.7.2.2): decided on the stored instance (model.ts decideSet). */
export async function setMpps(
  worklist: WorklistStore,
  ctx: RequestContext,
  dataSet: DataSet | undefined,
): Promise<DimseResponse> {
  const uid = ctx.command.requestedSopInstanceUid ?? ctx.command.affectedSopInstanceUid;
  if (uid === undefined || uid === '')
    return failure(Status.NoSuchSopInstance, 'N-SET without Requested SOP Instance UID');
  if (dataSet === undefined)
    return refusal(new ServiceError(Status.MissingAttribute, 'N-SET without modification list'), uid);
  const result = await worklist.updateMpps(uid, (current) => {
    const decided = decideSet(current.status, current.dataSet, dataSet, (json) => {
      const parsed = fromDicomJson(json);
      if (!parsed.ok) throw new Error(`stored MPPS ${uid} does not parse: ${parsed.error}`);
      return parsed.value;
    });
    if (!decided.ok) return err(decided.error);
    const itemStatus =
      decided.value.status !== current.status ? itemStatusFor(decided.value.status) : undefined;
    return ok({ ...decided.value, ...(itemStatus !== undefined ? { itemStatus } : {}) });
  });
  switch (result.status) {
    case 'not-found':
      return refusal(new ServiceError(Status.NoSuchSopInstance, 'no MPPS instance with this UID'), uid);
    case 'refused':
      ctx.log.info(
        { peer: ctx.peerAeTitle, uid, status: result.error.status },
        `MPPS N-SET refused: ${result.error.errorComment}`,
      );
      return refusal(result.error, uid);
    case 'updated':
      ctx.log.info({ peer: ctx.peerAeTitle, uid, status: result.record.status }, 'MPPS updated');
      {
        const stored = fromDicomJson(result.record.dataSet);
        emitProcedureRecord(ctx, 'update', stored.ok ? stored.value : dataSet);
      }
      return { status: Status.Success, affectedSopInstanceUid: uid };
  }
}
