/**
 * The DICOM services the server runs (ARCHITECTURE.md "Service interfaces": adding a service is
 * adding a folder and one registration line). Each entry builds its service from what the
 * composition root hands it; services that need the archive get it through this context once the
 * archive is opened here.
 */
import type { Archive } from '../archive/archive.js';
import type { EventBus } from '../core/events.js';
import type { Logger } from '../core/logger.js';
import type { DimseService } from '../network/service.js';
import { mppsService } from '../services/mpps/scp.js';
import { findService } from '../services/query-retrieve/find-scp.js';
import { getService } from '../services/query-retrieve/get-scp.js';
import { type MovePeer, moveService } from '../services/query-retrieve/move-scp.js';
import { storageService } from '../services/storage/scp.js';
import { verificationService } from '../services/verification/scp.js';
import { worklistService } from '../services/worklist/scp.js';
import { type Config, SERVICE_NAMES } from './config.js';

/**
 * What a service factory may use: the validated configuration, the server's logger, the archive,
 * and the server's event stream (for what a service does outside a request, such as C-MOVE jobs).
 */
export interface ServiceContext {
  readonly config: Config;
  readonly logger: Logger;
  readonly archive: Archive;
  readonly events: EventBus;
  /** The known AEs with a host and port (the AE directory of dicom-access.ts): C-MOVE destinations. */
  readonly knownAes: () => readonly MovePeer[];
}

export type ServiceFactory = (context: ServiceContext) => DimseService;

/** Every service of `pacs server`, in registration order (a later one wins a shared SOP class). */
export const SERVER_SERVICES: readonly ServiceFactory[] = [
  // Verification (C-ECHO) is always on.
  () => verificationService(),
  ({ archive, config }) => storageService({ archive, extraSopClasses: config.storage.extraSopClasses }),
  ({ archive }) => worklistService({ worklist: archive.worklist }),
  ({ archive }) => mppsService({ worklist: archive.worklist }),
  ({ archive, knownAes, config, logger, events }) =>
    moveService({
      archive,
      peers: knownAes,
      events,
      logger: logger.child({ service: 'move' }),
      transcode: config.transcode,
    }),
  ({ archive, config }) => getService({ archive, transcode: config.transcode }),
  ({ archive, logger }) => findService({ archive, logger: logger.child({ service: 'find' }) }),
];

/**
 * The names `--services` (config `server.services`) selects by, each with its entries of
 * SERVER_SERVICES. Several processes with different selections share one PostgreSQL index and
 * one data folder (README "Deployment").
 */
export type ServiceName = (typeof SERVICE_NAMES)[number];

const BY_NAME: Readonly<Record<ServiceName, readonly ServiceFactory[]>> = (() => {
  const [verification, storage, worklist, mpps, move, get, find] = SERVER_SERVICES;
  const one = (f: ServiceFactory | undefined): ServiceFactory[] => (f === undefined ? [] : [f]);
  return {
    verification: one(verification),
    storage: one(storage),
    worklist: one(worklist),
    mpps: one(mpps),
    'query-retrieve': [...one(move), ...one(get), ...one(find)],
  };
})();

/**
 * The factories of the named services, in registration order. Verification is always included:
 * a load balancer or an operator checks every process with C-ECHO.
 */
export function servicesNamed(names: readonly ServiceName[]): ServiceFactory[] {
  const wanted = new Set<ServiceName>(['verification', ...names]);
  return SERVICE_NAMES.filter((n) => wanted.has(n))
    .flatMap((n) => BY_NAME[n])
    .sort((a, b) => SERVER_SERVICES.indexOf(a) - SERVER_SERVICES.indexOf(b));
}
