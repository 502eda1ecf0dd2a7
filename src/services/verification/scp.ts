/**
 * Verification SCP (PS3.4 Annex A): C-ECHO answered with Success. Always on.
 */
import { EXPLICIT_VR_BE, EXPLICIT_VR_LE, IMPLICIT_VR_LE, UID } from '../../dicom/uid.js';
import { Status } from '../../network/dimse-status.js';
import type { DimseService } from '../../network/service.js';

export function verificationService(): DimseService {
  return {
    name: 'verification',
    sopClasses: [{ uid: UID.Verification }],
    transferSyntaxes: [EXPLICIT_VR_LE, IMPLICIT_VR_LE, EXPLICIT_VR_BE],
    handlers: {
      'C-ECHO': () => ({ status: Status.Success }),
    },
    health: async () => ({ ok: true }),
  };
}
