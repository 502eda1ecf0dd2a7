/**
 * What the DICOMweb routes need from the rest of the server: the archive (index and object
 * files; STOW-RS stores through its one ingest entry point), the logger, the event bus, and the
 * AE title answered in Retrieve AE Title.
 */
import type { FastifyRequest } from 'fastify';
import type { Archive } from '../../archive/archive.js';
import type { EventBus } from '../../core/events.js';
import type { Logger } from '../../core/logger.js';

export interface DicomwebContext {
  readonly archive: Archive;
  readonly logger: Logger;
  readonly events?: EventBus;
  /** The archive's AE title (Retrieve AE Title in QIDO-RS answers). */
  readonly aeTitle: string;
  /**
   * The public base URL of the service (`https://pacs.example.org/dicom-web`) for Retrieve URLs
   * and BulkDataURIs; default: from the request (protocol and Host header).
   */
  readonly publicUrl?: string;
}

/** Where the DICOMweb routes live. */
export const DICOMWEB_PREFIX = '/dicom-web';

/** The absolute base URL of the DICOMweb service as the client reached it, without a trailing '/'. */
export function serviceUrl(context: DicomwebContext, request: FastifyRequest): string {
  if (context.publicUrl !== undefined) return context.publicUrl.replace(/\/+$/, '');
  return `${request.protocol}://${request.host}${DICOMWEB_PREFIX}`;
}
