/**
 * Storage SCP (PS3.4 Annex B). The data set streams from the socket into a temporary object
 * file (file meta first, then the received bytes exactly as they arrived) while the parser reads
 * it to check it and to collect its header for the index; success is answered only once the
 * file is durable and indexed (ARCHITECTURE.md decisions 2 and 3).
 */

import type { Archive } from '../../archive/archive.js';
import type { ArchiveError } from '../../archive/errors.js';
import { DicomParseError } from '../../core/errors.js';
import { TAG } from '../../dicom/dictionary.js';
import { TRANSFER_SYNTAXES } from '../../dicom/generated/uids.js';
import { DicomParser } from '../../dicom/parser.js';
import { DataSetBuilder } from '../../dicom/reader.js';
import { allStorageSopClasses, EXPLICIT_VR_LE, IMPLICIT_VR_LE, UID } from '../../dicom/uid.js';
import { encodeFileMeta } from '../../dicom/writer.js';
import { Status } from '../../network/dimse-status.js';
import type { DimseResponse, DimseService, RequestContext } from '../../network/service.js';

/**
 * Values longer than this are not kept in memory while receiving: the index keeps text up to
 * 64 KiB and drops binary values over 1 KiB (as reconcile reads headers, so both paths agree).
 */
const HEADER_VALUE_LIMIT = 64 * 1024;

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
    await drain(data);
    return { status: Status.CannotUnderstand, errorComment: 'C-STORE-RQ without Affected SOP Instance UID' };
  }

  const begun = await archive.beginObject();
  if (!begun.ok) {
    await drain(data);
    log.warn({ sopInstance, err: begun.error.message }, 'C-STORE refused');
    return failureFor(begun.error);
  }
  const handle = begun.value;
  const builder = new DataSetBuilder({ bulkData: 'skip', bulkDataThreshold: HEADER_VALUE_LIMIT });
  const parser = new DicomParser(builder, { format: 'dataset', transferSyntax: ctx.transferSyntax });
  let parseError: DicomParseError | undefined;
  try {
    handle.write(
      encodeFileMeta({
        mediaStorageSopClassUid: sopClass,
        mediaStorageSopInstanceUid: sopInstance,
        transferSyntaxUid: ctx.transferSyntax,
        sourceApplicationEntityTitle: ctx.peerAeTitle,
      }),
    );
    for await (const chunk of data) {
      if (!handle.write(chunk)) await handle.drain();
      if (parseError) continue;
      try {
        parser.write(chunk);
      } catch (e) {
        if (!(e instanceof DicomParseError)) throw e;
        parseError = e;
      }
    }
    if (!parseError) {
      try {
        parser.end();
      } catch (e) {
        if (!(e instanceof DicomParseError)) throw e;
        parseError = e;
      }
    }
  } catch (e) {
    // The association ended mid-transfer (or a bug): nothing is kept.
    await handle.abort();
    throw e;
  }

  if (parseError) {
    await handle.abort();
    log.warn({ sopInstance, err: parseError.message }, 'C-STORE data set does not parse: nothing stored');
    return {
      status: Status.CannotUnderstand,
      errorComment: `data set does not parse: ${parseError.message}`,
    };
  }
  const header = builder.root;
  const dsClass = header.string(TAG.SOPClassUID);
  const dsInstance = header.string(TAG.SOPInstanceUID);
  if (dsClass !== sopClass || dsInstance !== sopInstance) {
    await handle.abort();
    const which = dsClass !== sopClass ? 'SOP Class' : 'SOP Instance';
    log.warn(
      { sopInstance, dsInstance, sopClass, dsClass },
      `C-STORE ${which} UID of command and data set differ: nothing stored`,
    );
    return {
      status: Status.DataSetDoesNotMatchSopClass,
      errorComment: `${which} UID of the data set differs from the command`,
    };
  }
  if (handle.error) {
    await handle.abort();
    return failureFor(handle.error);
  }

  const result = await archive.ingest(handle, header, {
    transferSyntaxUid: ctx.transferSyntax,
    callingAet: ctx.peerAeTitle,
  });
  if (!result.ok) {
    log.warn({ sopInstance, err: result.error.message }, 'C-STORE failed');
    return failureFor(result.error);
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

/** The DIMSE status for an archive failure (PS3.4 B.2.3). */
function failureFor(error: ArchiveError): DimseResponse {
  switch (error.code) {
    case 'ERR_ARCHIVE_OUT_OF_SPACE':
      return { status: Status.OutOfResources, errorComment: 'out of storage space' };
    case 'ERR_ARCHIVE_DUPLICATE':
      return { status: Status.DuplicateSopInstance, errorComment: 'duplicate SOP Instance UID refused' };
    case 'ERR_ARCHIVE_INVALID_OBJECT':
      return { status: Status.DataSetDoesNotMatchSopClass, errorComment: error.message };
    default:
      return { status: Status.OutOfResources, errorComment: `archive failure: ${error.message}` };
  }
}

async function drain(data: AsyncIterable<Uint8Array>): Promise<void> {
  for await (const _ of data) {
    // discarded
  }
}
