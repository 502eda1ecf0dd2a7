/**
 * Verification SCU: C-ECHO on an open association.
 */
import { PacsError } from '../../core/errors.js';
import { err, ok, type Result } from '../../core/result.js';
import { EXPLICIT_VR_LE, IMPLICIT_VR_LE, UID } from '../../dicom/uid.js';
import type { ProposedPresentationContext } from '../../network/association.js';
import type { DimseAssociation } from '../../network/dimse.js';
import { CommandField } from '../../network/dimse-command.js';

/** The presentation context a Verification SCU proposes. */
export const VERIFICATION_CONTEXT: ProposedPresentationContext = {
  abstractSyntax: UID.Verification,
  transferSyntaxes: [IMPLICIT_VR_LE, EXPLICIT_VR_LE],
};

/** Sends C-ECHO-RQ; the value is the response status (0x0000 on success). */
export async function echo(association: DimseAssociation): Promise<Result<number, PacsError>> {
  const pc = association.presentationContexts.find((c) => c.abstractSyntax === UID.Verification && c.scu);
  if (!pc) return err(new PacsError('ERR_NO_CONTEXT', 'the peer did not accept the Verification SOP Class'));
  try {
    const r = await association.requestOne(pc.id, {
      commandField: CommandField.C_ECHO_RQ,
      affectedSopClassUid: UID.Verification,
      hasDataSet: false,
    });
    return ok(r.command.status ?? 0);
  } catch (e) {
    return err(e instanceof PacsError ? e : new PacsError('ERR_DIMSE', String(e)));
  }
}
