/**
 * Storage SCP (PS3.4 Annex B). The data set streams from the socket into the archive's one
 * ingest entry point (archive/ingest.ts), which writes, checks, commits and indexes it; this
 * service only maps the outcome to a DIMSE status. Success is answered only once the object is
 * durable and indexed (ARCHITECTURE.md decisions 2, 3 and 7).
 */

import type { Archive } from '../../archive/archive.js';
import type { ArchiveError } from '../../archive/errors.js';
import { TAG } from '../../dicom/dictionary.js';
import { TRANSFER_SYNTAXES } from '../../dicom/generated/uids.js';
import { allStorageSopClasses, EXPLICIT_VR_LE, IMPLICIT_VR_LE, UID } from '../../dicom/uid.js';
import { Status } from '../../network/dimse-status.js';
import type { DimseResponse, DimseService, RequestContext } from '../../network/service.js';
import { failure } from '../../network/service-error.js';

/**
 * Every transfer syntax we can keep as received: the native ones (Explicit VR LE preferred, as
 * the issue asks) and each encapsulated one, passed through untouched.
 */
export function storageTransferSyntaxes(): string[] {
  const preferred = [
    EXPLICIT_VR_LE,
    IMPLICIT_VR_LE,
    UID.DeflatedExplicitVRLittleEndian,
    UID.ExplicitVRBigEndian,
  ];
  const encapsulated = TRANSFER_SYNTAXES.filter((t) => t.encapsulated).map((t) => t.uid);
  return [...preferred, ...encapsulated];
}

export interface StorageServiceOptions {
  readonly archive: Archive;
  /** Extra SOP classes to accept (private ones), besides every storage SOP class of the registry. */
  readonly extraSopClasses?: readonly string[];
}

export function storageService(options: StorageServiceOptions): DimseService {
  const { archive } = options;
  const sopClasses = [...allStorageSopClasses(), ...(options.extraSopClasses ?? [])].map((uid) => ({ uid }));
  return {
    name: 'storage',
    sopClasses,
    transferSyntaxes: storageTransferSyntaxes(),
    handlers: {
      'C-STORE': (ctx, data) => storeObject(archive, ctx, data),
    },
    // A C-GET requestor takes the Storage SCP role by role selection (PS3.7 D.3.3.4) so that the
    // Query/Retrieve C-GET SCP can send it its sub-operations; a storage SCU keeps the default.
    requestorRoles: { scu: true, scp: true },
    health: async () => ({ ok: true }),
  };
}

/** Receives one C-STORE data set into the archive and answers its status. */
export async function storeObject(
  archive: Archive,
  ctx: RequestContext,
  data: AsyncIterable<Uint8Array>,
): Promise<DimseResponse> {
  const { command, log } = ctx;
  const sopClass = command.affectedSopClassUid ?? '';
  const sopInstance = command.affectedSopInstanceUid ?? '';
  const started = performance.now();
  if (!sopInstance) {
    for await (const _ of data) {
      // discarded
    }
    return failure(Status.CannotUnderstand, 'C-STORE-RQ without Affected SOP Instance UID');
  }

  const result = await archive.ingest(data, {
    transferSyntaxUid: ctx.transferSyntax,
    expected: { sopClassUid: sopClass, sopInstanceUid: sopInstance },
    source: ctx.peerAeTitle,
    via: 'C-STORE',
    remoteAddress: ctx.remoteAddress,
  });
  if (!result.ok) {
    const error = result.error;
    // The association ended mid-transfer: nothing was kept and nobody waits for an answer.
    if (error.code === 'ERR_ARCHIVE_ABORTED') throw error.cause ?? error;
    log.warn({ sopInstance, sopClass, err: error.message }, 'C-STORE failed: nothing stored');
    return failureFor(error);
  }
  const outcome = result.value;
  for (const w of outcome.status === 'duplicate' ? [] : outcome.warnings)
    log.warn({ sopInstance, warning: w }, 'index warning');
  log.debug(
    {
      sopInstance,
      sopClass,
      ts: ctx.transferSyntax,
      outcome: outcome.status,
      ms: Math.round(performance.now() - started),
    },
    'C-STORE',
  );
  if (outcome.status === 'duplicate') {
    // Policy "keep": the archived object stays and the new copy is discarded: a warning (PS3.4 B.2.3, B006).
    return {
      status: Status.ElementsDiscarded,
      errorComment: 'duplicate SOP Instance UID: the archived object was kept',
    };
  }
  return { status: Status.Success };
}

/** The DIMSE status of an archive failure (PS3.4 B.2.3). */
function failureFor(error: ArchiveError): DimseResponse {
  switch (error.code) {
    case 'ERR_ARCHIVE_OUT_OF_SPACE':
      return failure(Status.OutOfResources, 'out of storage space', { cause: error });
    case 'ERR_ARCHIVE_DUPLICATE':
      return failure(Status.DuplicateSopInstance, 'duplicate SOP Instance UID refused', { cause: error });
    case 'ERR_ARCHIVE_UNPARSABLE':
    case 'ERR_ARCHIVE_TRUNCATED':
      return failure(Status.CannotUnderstand, `data set does not parse: ${error.message}`, {
        cause: error,
      });
    case 'ERR_ARCHIVE_UID_MISMATCH': {
      const which = error.tag === TAG.SOPClassUID ? 'SOP Class' : 'SOP Instance';
      return failure(
        Status.DataSetDoesNotMatchSopClass,
        `${which} UID of the data set differs from the command`,
        { cause: error },
      );
    }
    case 'ERR_ARCHIVE_INVALID_OBJECT':
      return failure(Status.DataSetDoesNotMatchSopClass, error.message, { cause: error });
    default:
      return failure(Status.OutOfResources, `archive failure: ${error.message}`, { cause: error });
  }
}
