/**
 * The DICOM services the server runs (ARCHITECTURE.md "Service interfaces": adding a service is
 * adding a folder and one registration line). Each entry builds its service from what the
 * composition root hands it; services that need the archive get it through this context once the
 * archive is opened here.
 */
import type { Archive } from '../archive/archive.js';
import { worklistStoreOf } from '../archive/worklist/open.js';
import type { Config } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import type { DimseService } from '../network/service.js';
import { mppsService } from '../services/mpps/scp.js';
import { findService } from '../services/query-retrieve/find-scp.js';
import { getService } from '../services/query-retrieve/get-scp.js';
import { moveService } from '../services/query-retrieve/move-scp.js';
import { storageService } from '../services/storage/scp.js';
import { verificationService } from '../services/verification/scp.js';
import { worklistService } from '../services/worklist/scp.js';

/** What a service factory may use: the validated configuration, the server's logger, the archive. */
export interface ServiceContext {
  readonly config: Config;
  readonly logger: Logger;
  readonly archive: Archive;
}

export type ServiceFactory = (context: ServiceContext) => DimseService;

/** Every service of `pacs server`, in registration order (a later one wins a shared SOP class). */
export const SERVER_SERVICES: readonly ServiceFactory[] = [
  // Verification (C-ECHO) is always on.
  () => verificationService(),
  ({ archive, config }) => storageService({ archive, extraSopClasses: config.storage.extraSopClasses }),
  ({ archive }) => worklistService({ worklist: worklistStoreOf(archive.index) }),
  ({ archive }) => mppsService({ worklist: worklistStoreOf(archive.index) }),
  ({ archive, config, logger }) =>
    moveService({ archive, peers: config.peers, logger: logger.child({ service: 'move' }) }),
  ({ archive }) => getService({ archive }),
  ({ archive, logger }) => findService({ archive, logger: logger.child({ service: 'find' }) }),
];
