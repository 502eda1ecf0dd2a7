/**
 * The light part of the public API that the network tools of the command line (`pacs echo`,
 * `store`, `find`, `move`, `get`, `worklist`, `mpps`, `dump`) load at start: the DICOM data model,
 * the network stack and the SCUs, and nothing that pulls in an index engine (kysely, pg,
 * better-sqlite3), metrics (prom-client), the HTTP side or the server. Loading src/index.ts costs
 * a `pacs echo` about half a second of module loading; the commands that need the archive or the
 * server (`pacs server`, `archive`, `jobs`, the worklist store) import '../index.js' lazily, when
 * they run. Every symbol here is exported by src/index.ts too, which stays the package's one
 * documented entry point.
 */

/** Jobs' states (for `pacs jobs` help text). */
export { JOB_STATES } from './archive/jobs/job.js';
/** Value checks of the config machinery (AE titles, host names). */
export { isAeTitle, isHost } from './core/config.js';
/** The error classes, each with a stable `code`. */
export { ConfigError, DicomEncodeError, DicomParseError, PacsError, UsageError } from './core/errors.js';
/** Result values for expected failures. */
export { err, ok, unwrap } from './core/result.js';
/** The in-memory data set. */
export { DataSet } from './dicom/dataset.js';
/** The data dictionary. */
export { keywordOf, lookupTag, TAG } from './dicom/dictionary.js';
/** DICOM JSON (PS3.18 F.2). */
export { toDicomJson } from './dicom/json.js';
/** Tags. */
export { formatTag } from './dicom/tag.js';
/** UIDs and transfer syntaxes (`pacs convert`'s --ts names). */
export { isValidUid, lookupUid, transferSyntax, UID } from './dicom/uid.js';
/** Binary values. */
export { decodeNumbers, decodeTags } from './dicom/values.js';
/** VRs. */
export { isBinaryNumberVR, isStringVR } from './dicom/vr.js';
/** DICOM files: reading and converting. */
export { convertFile, readDicomFile } from './io/dicom-file.js';
/** The Application Entity: listen and connect. */
export { ApplicationEntity } from './network/ae.js';
/** DIMSE statuses. */
export { describeStatus, Status, statusCategory } from './network/dimse-status.js';
/** Why an association was rejected or aborted, in words. */
export { describeAbort, describeReject } from './network/negotiation.js';
/** AE permissions (for `pacs ae` help text and flag parsing). */
export { AE_PERMISSIONS, parseAePermissions } from './security/permissions.js';
/** The TLS versions and cipher suites of every TLS listener and connection (`--tls` flags). */
export { TLS_POLICY } from './security/tls-policy.js';
/** MPPS SCU. */
export { PPS_STATUS } from './services/mpps/model.js';
/** MPPS SCU. */
export {
  createMpps,
  MPPS_CONTEXT,
  mppsFromWorklistItem,
  mppsUpdate,
  performedSeriesFromFiles,
  setMpps,
} from './services/mpps/scu.js';
/** Known remote AEs. */
export { parsePeer } from './services/query-retrieve/config.js';
/** C-FIND SCU. */
export {
  buildIdentifier,
  find,
  findContexts,
  parseKeyAssignment,
} from './services/query-retrieve/find-scu.js';
/** C-GET SCU. */
export { folderReceiver, get, getContexts } from './services/query-retrieve/get-scu.js';
/** Query/Retrieve information models. */
export { PATIENT_ROOT, parseLevel, STUDY_ROOT } from './services/query-retrieve/models.js';
/** C-MOVE SCU. */
export { move, retrieveContext } from './services/query-retrieve/move-scu.js';
/** C-STORE SCU. */
export { planAssociations, readFileInfo, storeFile } from './services/storage/scu.js';
/** C-ECHO SCU. */
export { echo, VERIFICATION_CONTEXT } from './services/verification/scu.js';
/** Worklist files. */
export { readDataSets, readWorklistFiles } from './services/worklist/import.js';
/** MWL C-FIND SCU. */
export {
  fetchWorklist,
  queryWorklist,
  WORKLIST_FIND_CONTEXT,
  withModalityReturnKeys,
} from './services/worklist/scu.js';
