/**
 * C-GET SCU of the Query/Retrieve service (PS3.4 C.4.3.2): asks an SCP to send the objects an
 * Identifier names back on the same association. We propose the GET SOP class and, with SCP/SCU
 * role selection (PS3.7 D.3.3.4), the storage SOP classes we take as Storage SCP; the C-STORE
 * sub-operations that come back are written as Part-10 files by folderReceiver(), streamed from
 * the socket to the file.
 *
 * Files are named by a hash of the data set (`<sha-256 prefix>.dcm`), never by a UID (ARCHITECTURE.md:
 * no peer-controlled text as a path); the same object retrieved twice lands on the same name.
 */
import { createHash, randomBytes } from 'node:crypto';
import { type FileHandle, open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Result } from '../../core/result.js';
import type { DataSet } from '../../dicom/dataset.js';
import {
  allStorageSopClasses,
  DEFLATED_EXPLICIT_VR_LE,
  EXPLICIT_VR_BE,
  EXPLICIT_VR_LE,
  IMPLICIT_VR_LE,
  UID,
} from '../../dicom/uid.js';
import { encodeFileMeta } from '../../dicom/writer.js';
import type { ProposedPresentationContext } from '../../network/association.js';
import type { DimseAssociation } from '../../network/dimse.js';
import { CommandField, Priority } from '../../network/dimse-command.js';
import { Status } from '../../network/dimse-status.js';
import type { DimseResponse, DimseService, RequestContext } from '../../network/service.js';
import { failure } from '../../network/service-error.js';
import type { InformationModel } from './models.js';
import {
  type RetrieveError,
  type RetrieveOutcome,
  type RetrieveRequestOptions,
  retrieveContext,
  runRetrieve,
} from './move-scu.js';

/** Bytes gathered before a file write of received data. */
const WRITE_BATCH = 512 * 1024;

/** PS3.8 9.3.2.2: at most 128 presentation contexts per association. */
const MAX_CONTEXTS = 128;

/**
 * The storage SOP classes proposed by default (the GET context takes one of the 128 slots): the
 * image, structured report, presentation state and RT classes archives hold most.
 */
export const DEFAULT_GET_STORAGE_CLASSES: readonly string[] = [
  UID.CTImageStorage,
  UID.EnhancedCTImageStorage,
  UID.MRImageStorage,
  UID.EnhancedMRImageStorage,
  UID.MRSpectroscopyStorage,
  UID.ComputedRadiographyImageStorage,
  UID.DigitalXRayImageStorageForPresentation,
  UID.DigitalXRayImageStorageForProcessing,
  UID.DigitalMammographyXRayImageStorageForPresentation,
  UID.DigitalMammographyXRayImageStorageForProcessing,
  UID.BreastTomosynthesisImageStorage,
  UID.UltrasoundImageStorage,
  UID.UltrasoundMultiFrameImageStorage,
  UID.EnhancedUSVolumeStorage,
  UID.SecondaryCaptureImageStorage,
  UID.MultiFrameSingleBitSecondaryCaptureImageStorage,
  UID.MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
  UID.MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
  UID.MultiFrameTrueColorSecondaryCaptureImageStorage,
  UID.XRayAngiographicImageStorage,
  UID.EnhancedXAImageStorage,
  UID.XRayRadiofluoroscopicImageStorage,
  UID.XRay3DAngiographicImageStorage,
  UID.NuclearMedicineImageStorage,
  UID.PositronEmissionTomographyImageStorage,
  UID.EnhancedPETImageStorage,
  UID.RTImageStorage,
  UID.RTDoseStorage,
  UID.RTStructureSetStorage,
  UID.RTPlanStorage,
  UID.SegmentationStorage,
  UID.SpatialRegistrationStorage,
  UID.RawDataStorage,
  UID.VLPhotographicImageStorage,
  UID.VLEndoscopicImageStorage,
  UID.VideoEndoscopicImageStorage,
  UID.OphthalmicPhotography8BitImageStorage,
  UID.BasicTextSRStorage,
  UID.EnhancedSRStorage,
  UID.ComprehensiveSRStorage,
  UID.KeyObjectSelectionDocumentStorage,
  UID.GrayscaleSoftcopyPresentationStateStorage,
  UID.EncapsulatedPDFStorage,
];

/**
 * The syntaxes proposed for each storage class, each in a context of its own, so that the SCP
 * finds the one an object is stored in and sends it unchanged (an acceptor picks one syntax per
 * context by its own preference). Objects in other syntaxes come re-encoded, or fail when they
 * are compressed.
 */
export const DEFAULT_GET_TRANSFER_SYNTAXES: readonly string[] = [EXPLICIT_VR_LE, IMPLICIT_VR_LE];

/** What the receiver accepts (a requestor does not choose, but the dispatcher needs a list). */
const RECEIVABLE_TRANSFER_SYNTAXES: readonly string[] = [
  EXPLICIT_VR_LE,
  IMPLICIT_VR_LE,
  DEFLATED_EXPLICIT_VR_LE,
  EXPLICIT_VR_BE,
];

export interface GetContextOptions {
  /** Default DEFAULT_GET_STORAGE_CLASSES (cut to what fits beside the GET context). */
  readonly storageSopClasses?: readonly string[];
  /** Syntaxes proposed for each storage class, in our order of preference. */
  readonly transferSyntaxes?: readonly string[];
}

/**
 * The GET context of the model, then Storage SCP contexts (role selection) for each storage SOP
 * class, one per transfer syntax; classes that do not fit in 128 contexts are left out.
 */
export function getContexts(
  model: InformationModel,
  options: GetContextOptions = {},
): ProposedPresentationContext[] {
  const syntaxes = options.transferSyntaxes ?? DEFAULT_GET_TRANSFER_SYNTAXES;
  const room = Math.floor((MAX_CONTEXTS - 1) / Math.max(1, syntaxes.length));
  const classes = (options.storageSopClasses ?? DEFAULT_GET_STORAGE_CLASSES).slice(0, room);
  return [
    retrieveContext(model, 'get'),
    // We are only the Storage SCP on these (PS3.4 C.4.3.2: the SCU of C-GET is an SCP of C-STORE).
    ...classes.flatMap((abstractSyntax) =>
      syntaxes.map((ts) => ({ abstractSyntax, transferSyntaxes: [ts], roles: { scu: false, scp: true } })),
    ),
  ];
}

/** An object written by folderReceiver(). */
export interface ReceivedObject {
  readonly path: string;
  readonly sopClassUid: string;
  readonly sopInstanceUid: string;
  readonly transferSyntaxUid: string;
  /** Bytes of the data set (file meta excluded). */
  readonly size: number;
}

export interface FolderReceiverOptions {
  /** An existing folder. */
  readonly dir: string;
  /** Called once each object's file is complete. */
  readonly onObject?: (object: ReceivedObject) => void;
  /** Called with the bytes of each chunk as it is written (progress). */
  readonly onBytes?: (bytes: number) => void;
  /** Called when an object could not be written (its C-STORE is answered 0xA700). */
  readonly onError?: (error: Error) => void;
}

/**
 * A Storage SCP service for C-GET sub-operations: each data set is written as it arrives, behind
 * a file meta header, into `dir` (a temporary name, then its final one once complete).
 */
export function folderReceiver(options: FolderReceiverOptions): DimseService {
  return {
    name: 'get-receiver',
    sopClasses: allStorageSopClasses().map((uid) => ({ uid })),
    transferSyntaxes: RECEIVABLE_TRANSFER_SYNTAXES,
    handlers: {
      'C-STORE': (ctx, data) => receive(options, ctx, data),
    },
  };
}

async function receive(
  options: FolderReceiverOptions,
  ctx: RequestContext,
  data: AsyncIterable<Uint8Array>,
): Promise<DimseResponse> {
  const sopClassUid = ctx.command.affectedSopClassUid ?? ctx.abstractSyntax;
  const sopInstanceUid = ctx.command.affectedSopInstanceUid ?? '';
  const temp = join(options.dir, `.get-${randomBytes(8).toString('hex')}.part`);
  let fh: FileHandle | undefined;
  let size = 0;
  const hash = createHash('sha256');
  let writing: Promise<unknown> = Promise.resolve();
  try {
    fh = await open(temp, 'wx');
    const meta = encodeFileMeta({
      mediaStorageSopClassUid: sopClassUid,
      mediaStorageSopInstanceUid: sopInstanceUid,
      transferSyntaxUid: ctx.transferSyntax,
      sourceApplicationEntityTitle: ctx.peerAeTitle,
    });
    // PDVs come in 16 KiB or so: gathered into writes of WRITE_BATCH bytes, one write in flight
    // while the next batch arrives (a write per PDV cost a thread-pool round trip each).
    const file = fh;
    let batch: Uint8Array[] = [meta];
    let batched = meta.length;
    const flush = async (): Promise<void> => {
      const out = batch;
      batch = [];
      batched = 0;
      await writing;
      writing = file.writev(out);
      // Seen by the next flush or the close; until then not an unhandled rejection.
      writing.catch(() => undefined);
    };
    for await (const chunk of data) {
      hash.update(chunk);
      size += chunk.length;
      batch.push(chunk);
      batched += chunk.length;
      if (batched >= WRITE_BATCH) await flush();
      options.onBytes?.(chunk.length);
    }
    await flush();
    await writing;
    await fh.close();
    fh = undefined;
    const path = join(options.dir, `${hash.digest('hex').slice(0, 24)}.dcm`);
    await rename(temp, path);
    options.onObject?.({ path, sopClassUid, sopInstanceUid, transferSyntaxUid: ctx.transferSyntax, size });
    return { status: Status.Success };
  } catch (e) {
    await writing.catch(() => undefined);
    await fh?.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    const error = e instanceof Error ? e : new Error(String(e));
    options.onError?.(error);
    // When the association ended mid-transfer the dispatcher sends nothing back.
    return failure(Status.OutOfResources, `cannot write the object: ${error.message}`);
  }
}

export interface GetRequest extends RetrieveRequestOptions {
  readonly model: InformationModel;
  readonly identifier: DataSet;
}

/**
 * C-GET on an open association proposed with getContexts(model) by an ApplicationEntity that has
 * a receiver (folderReceiver) registered: the objects arrive through it while this waits.
 */
export function get(
  assoc: DimseAssociation,
  request: GetRequest,
): Promise<Result<RetrieveOutcome, RetrieveError>> {
  return runRetrieve(
    assoc,
    {
      commandField: CommandField.C_GET_RQ,
      affectedSopClassUid: request.model.sopClasses.get,
      priority: request.priority ?? Priority.Medium,
      hasDataSet: true,
    },
    request.identifier,
    request,
  );
}
