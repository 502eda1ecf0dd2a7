/**
 * The audit trail's events of the DICOMweb retrieve routes (core/events.ts, emitted once per
 * request when its answer has ended): 'objects-retrieved' for objects sent as objects (WADO-RS
 * instances, WADO-URI application/dicom), 'objects-accessed' for what was shown without sending
 * the objects (metadata, rendered images, frames). Only answers that succeeded are reported.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { PacsEvent } from '../../core/events.js';
import { identityName } from '../../security/identity.js';
import type { DicomwebContext } from './context.js';

/**
 * Emits the event with the study's patient (PS3.15 A.5.3: the patient is a participant object),
 * looked up in the index once the answer has ended; without it when the lookup fails.
 */
function emitWithPatient(
  context: DicomwebContext,
  studyInstanceUid: string,
  event: Extract<PacsEvent, { type: 'objects-retrieved' | 'objects-accessed' }>,
): void {
  const events = context.events;
  if (events === undefined) return;
  context.archive.index.findStudy(studyInstanceUid).then(
    (study) => {
      const id = study?.patient.patientId ?? null;
      const name = study?.patient.patientName ?? null;
      events.emit({
        ...event,
        ...(id !== null ? { patientId: id } : {}),
        ...(name !== null ? { patientName: name } : {}),
      });
    },
    () => events.emit(event),
  );
}

/** Counts the instances a retrieve sends; reports them when the answer ends. Returns the counter. */
export function reportRetrieved(
  context: DicomwebContext,
  request: FastifyRequest,
  reply: FastifyReply,
  via: 'WADO-RS' | 'WADO-URI',
  studyInstanceUid: string | undefined,
): (sopInstanceUid: string, study?: string) => void {
  const sent: string[] = [];
  let study = studyInstanceUid;
  reply.raw.once('close', () => {
    const events = context.events;
    if (events?.active !== true || sent.length === 0 || study === undefined || reply.statusCode >= 400)
      return;
    emitWithPatient(context, study, {
      type: 'objects-retrieved',
      via,
      user: identityName(request.identity),
      studyInstanceUid: study,
      sopInstanceUids: sent,
      remoteAddress: request.ip,
    });
  });
  return (uid, of) => {
    sent.push(uid);
    study ??= of;
  };
}

/** Reports one access (metadata, rendered, frames) to a study when the answer has ended well. */
export function reportAccessed(
  context: DicomwebContext,
  request: FastifyRequest,
  reply: FastifyReply,
  via: string,
  studyInstanceUid: string | undefined,
  sopInstanceUid?: string,
): void {
  if (studyInstanceUid === undefined) return;
  reply.raw.once('close', () => {
    const events = context.events;
    if (events?.active !== true || reply.statusCode >= 400) return;
    emitWithPatient(context, studyInstanceUid, {
      type: 'objects-accessed',
      action: 'read',
      via,
      user: identityName(request.identity),
      studyInstanceUid,
      ...(sopInstanceUid !== undefined ? { sopInstanceUids: [sopInstanceUid] } : {}),
      remoteAddress: request.ip,
    });
  });
}
