/**
 * The public API of the package: what `import ... from 'pacs'` gives, and the only module that
 * examples/ and src/cli/ import (test/package/deep-imports.test.ts fails on a deep import). An SCP
 * or an SCU in a few lines (see examples/ and docs/library.md):
 *
 *   const ae = new ApplicationEntity({ aeTitle: 'PACS' }).addService(verificationService());
 *   const server = await ae.listen({ port: 11112 });
 *
 *   const assoc = unwrap(await new ApplicationEntity({ aeTitle: 'ME' }).connect({
 *     host, port, calledAeTitle: 'PACS', contexts: [VERIFICATION_CONTEXT] }));
 *   await echo(assoc);
 *   await assoc.release();
 *
 * Anything not exported here is internal and may change without notice. Groups, bottom layer
 * first: core, DICOM data, network, services (each SCU and SCP factory), archive, server.
 */

// --- core: results, errors, logging, configuration, events ---------------------------------------

/** The config machinery's value checks and loader options. */
export { isAeTitle, isHost, type LoadConfigOptions } from './core/config.js';
/** The error classes thrown for bugs and misuse, each with a stable `code`. */
export { ConfigError, DicomEncodeError, DicomParseError, PacsError, UsageError } from './core/errors.js';
/** The one event stream (associations, requests, objects stored and sent, failures) metrics and audit observe. */
export {
  type AssociationOutcome,
  EventBus,
  type EventListener,
  type EventOf,
  type PacsEvent,
  type PacsEventType,
} from './core/events.js';
/** The structured logger (pino) the server and the services write to. */
export {
  type ConsoleFormat,
  type ConsoleTarget,
  closeLogger,
  createLogger,
  type FileRotation,
  type FileTarget,
  flushLogger,
  LOG_LEVELS,
  type Logger,
  type LoggerOptions,
  type LogLevel,
  type LogTarget,
  silentLogger,
} from './core/logger.js';
/** Result values for expected failures (ARCHITECTURE.md "Result pattern"). */
export { type Err, err, type Ok, ok, type Result, unwrap } from './core/result.js';
/** The server configuration: defaults, the validated schema composed of each service's part, the file loader. */
export {
  type Config,
  type DeepPartial,
  defaultConfig,
  INDEX_URL_EXPECTED,
  isIndexUrl,
  loadConfig,
  SERVICE_NAMES,
  type ServerConfig,
  splitCallingAet,
} from './server/config.js';
/** A known remote AE (`--peer AET=HOST:PORT`): C-MOVE destinations. */
export { type Peer, parsePeer } from './services/query-retrieve/config.js';

// --- DICOM data: data sets, parsing and writing, DICOM JSON, dictionary, UIDs, tags, VRs ----------

/** Converting a data set to another transfer syntax (the pure part; files: convertFile). */
export { checkConversion } from './dicom/convert.js';
/** The in-memory data set and its elements (PS3.5 7). */
export {
  type BulkDataRef,
  type DataElement,
  DataSet,
  defaultVR,
  type ElementValue,
  type PixelFragments,
} from './dicom/dataset.js';
/** The data dictionary (PS3.6, generated): tags by keyword, keywords and VRs by tag. */
export {
  type DictionaryEntry,
  dictionaryVR,
  keywordOf,
  lookupTag,
  parseTagOrKeyword,
  TAG,
  tagForKeyword,
} from './dicom/dictionary.js';
/** The DICOM JSON model (PS3.18 F): a data set to and from JSON. */
export {
  type DicomJsonAttribute,
  type DicomJsonObject,
  type DicomJsonPersonName,
  type DicomJsonValue,
  type FromDicomJsonOptions,
  fromDicomJson,
  type ToDicomJsonOptions,
  toDicomJson,
} from './dicom/json.js';
/** The streaming parser: data-set bytes in, elements out, with bounded memory. */
export { type DataSetHandler, DicomParser, type ParserOptions } from './dicom/parser.js';
/** Reading a Part-10 file or its bytes into a data set with its file meta (PS3.10 7). */
export { type DicomObject, parseDicom, type ReadOptions, readDicomChunks } from './dicom/reader.js';
/** Tags as numbers (gggg,eeee): making, formatting, parsing, and the item delimiters (PS3.5 7.5). */
export {
  formatTag,
  ITEM,
  ITEM_DELIMITATION,
  isGroupLengthTag,
  isPrivateCreatorTag,
  isPrivateTag,
  makeTag,
  parseTagString,
  SEQUENCE_DELIMITATION,
  type Tag,
  tagElement,
  tagGroup,
  tagHex,
  UNDEFINED_LENGTH,
} from './dicom/tag.js';
/** Transcoding (issue 13): any syntax a codec decodes into any it encodes, frame by frame, streaming. */
export {
  checkTranscode,
  ENCODE_TARGETS,
  type FrameCoder,
  type FrameResult,
  type FrameTask,
  LOSSY_TARGETS,
  needsCodec,
  TranscodeError,
  type TranscodeOptions,
  Transcoder,
  type TranscodeSummary,
  transcodeChunks,
  transcodeFrame,
} from './dicom/transcode.js';
/** UIDs (PS3.6 A): the registry, transfer syntaxes, storage SOP classes, UID generation and checks. */
export {
  allStorageSopClasses,
  DEFLATED_EXPLICIT_VR_LE,
  describeUid,
  EXPLICIT_VR_BE,
  EXPLICIT_VR_LE,
  generateUid,
  IMPLEMENTATION_CLASS_UID,
  IMPLEMENTATION_VERSION_NAME,
  IMPLICIT_VR_LE,
  isStorageSopClass,
  isValidUid,
  lookupUid,
  type TransferSyntaxEntry,
  transferSyntax,
  UID,
  type UidEntry,
  UNCOMPRESSED_TRANSFER_SYNTAXES,
} from './dicom/uid.js';
/** Decoding and encoding element values (text, numbers, tags). */
export {
  decodeNumbers,
  decodeStrings,
  decodeTags,
  decodeText,
  encodeNumbers,
  encodeStrings,
} from './dicom/values.js';
/** Value representations (PS3.5 6.2) and their properties. */
export { isBinaryNumberVR, isBulkVR, isStringVR, isVR, type VR, VRS } from './dicom/vr.js';
/** Writing: a data set to bytes in a transfer syntax, the file meta, a whole Part-10 file. */
export {
  DataSetWriter,
  encodeDataSet,
  encodeFileMeta,
  encodePart10,
  type FileMetaFields,
  type WriterOptions,
} from './dicom/writer.js';
/** DICOM files: reading a Part-10 file into a data set, converting a file to another transfer syntax. */
export { convertFile, readDicomFile } from './io/dicom-file.js';
/** Transcoding files and streams, frames on the shared worker pool at a priority. */
export {
  closeTranscodePool,
  pooledFrameCoder,
  TranscodePriority,
  type TranscodeStreamOptions,
  transcodeFile,
  transcodeStream,
} from './io/transcode.js';

// --- network: application entities, associations, DIMSE -------------------------------------------

/** The application entity: `listen()` for an SCP, `connect()` for an SCU (PS3.8). */
export {
  type AeOptions,
  ApplicationEntity,
  type AssociationSummary,
  type ConnectOptions,
  DEFAULT_AE_MAX_PDU_LENGTH,
  DicomServer,
  type ListenOptions,
} from './network/ae.js';
/** The upper-layer association (PS3.8 9) and its options. */
export type {
  Association,
  AssociationTimeouts,
  CloseInfo,
  ProposedPresentationContext,
} from './network/association.js';
/** DIMSE messages over an established association (PS3.7). */
export { DimseAssociation, type DimseStats } from './network/dimse.js';
/** DIMSE command fields and priorities (PS3.7 E). */
export { CommandField, type DimseCommand, Priority } from './network/dimse-command.js';
/** DIMSE statuses (PS3.7 C) with their names and categories. */
export { describeStatus, Status, type StatusCategory, statusCategory } from './network/dimse-status.js';
/** Association rejections, aborts and transport failures as values. */
export { type AbortInfo, NetworkError, type NetworkErrorCode, type RejectInfo } from './network/errors.js';
/** The logger interface the network layer writes to. */
export type { NetworkLogger } from './network/logger.js';
/** Presentation-context negotiation results and the reject/abort wording (PS3.8 9.3). */
export {
  type AcceptedPresentationContext,
  type AllowedCaller,
  describeAbort,
  describeReject,
} from './network/negotiation.js';
/** The service interface an SCP implements and the request context its handlers get. */
export type {
  DimseHandlers,
  DimseResponse,
  DimseService,
  MultiHandler,
  OutgoingData,
  RequestContext,
  RequestSender,
  ResponseMessage,
  ServiceHealth,
  ServiceSopClass,
  SingleHandler,
  StoreHandler,
} from './network/service.js';
/** The one DIMSE service failure type (status, Error Comment, Offending Elements, Error ID). */
export {
  ERROR_COMMENT_MAX,
  failure,
  ServiceError,
  type ServiceErrorOptions,
} from './network/service-error.js';
/** TLS options for DICOM over TLS (PS3.15 B.1). */
export type { TlsClientOptions, TlsServerOptions } from './network/transport.js';

// --- services: every SCU and every SCP factory ----------------------------------------------------

/** Modality Performed Procedure Step: the SOP class and the step statuses. */
export { MPPS_SOP_CLASS, PPS_STATUS, type PpsStatus } from './services/mpps/model.js';
/** Modality Performed Procedure Step (PS3.4 F.7): the SCP over the worklist store. */
export { type MppsServiceOptions, mppsService } from './services/mpps/scp.js';
/** Modality Performed Procedure Step (PS3.4 F.7): the N-CREATE / N-SET SCU and its data sets. */
export {
  createMpps,
  dateTime,
  MPPS_CONTEXT,
  type MppsEndOptions,
  type MppsResponse,
  type MppsStartOptions,
  mppsFromWorklistItem,
  mppsUpdate,
  type PerformedSeries,
  performedSeriesFromFiles,
  setMpps,
} from './services/mpps/scu.js';
/** Query/Retrieve (PS3.4 C.4.1): the C-FIND SCP over the archive index. */
export { type FindServiceOptions, findService } from './services/query-retrieve/find-scp.js';
/** Query/Retrieve (PS3.4 C.4.1): the C-FIND SCU and the query keys (`-k KEY=VALUE`) it is built from. */
export {
  buildIdentifier,
  type FindOptions,
  type FindOutcome,
  type FindQuery,
  find,
  findContexts,
  type KeyAssignment,
  type KeyPathStep,
  parseKeyAssignment,
  setKey,
} from './services/query-retrieve/find-scu.js';
/** Query/Retrieve (PS3.4 C.4.3): the C-GET SCP. */
export { type GetServiceOptions, getService } from './services/query-retrieve/get-scp.js';
/** Query/Retrieve (PS3.4 C.4.3): the C-GET SCU and a receiver that writes what arrives into a folder. */
export {
  DEFAULT_GET_STORAGE_CLASSES,
  DEFAULT_GET_TRANSFER_SYNTAXES,
  type FolderReceiverOptions,
  folderReceiver,
  type GetContextOptions,
  type GetRequest,
  get,
  getContexts,
  type ReceivedObject,
} from './services/query-retrieve/get-scu.js';
/** Query/Retrieve (PS3.4 C): information models, levels, unique keys, extended negotiation. */
export {
  encodeFindExtendedNegotiation,
  encodeRetrieveExtendedNegotiation,
  type FindExtendedNegotiation,
  INFORMATION_MODELS,
  type InformationModel,
  type InformationModelName,
  levelsAbove,
  modelOfSopClass,
  NO_FIND_EXTENDED_NEGOTIATION,
  PATIENT_ROOT,
  PATIENT_STUDY_ONLY,
  parseFindExtendedNegotiation,
  parseLevel,
  parseRetrieveExtendedNegotiation,
  QUERY_RETRIEVE_LEVELS,
  type QueryRetrieveLevel,
  type QueryRetrieveOperation,
  type RetrieveExtendedNegotiation,
  STUDY_ROOT,
  UNIQUE_KEY,
} from './services/query-retrieve/models.js';
/** Query/Retrieve (PS3.4 C.4.2): the C-MOVE SCP, its destinations and its job. */
export {
  type MovePayload,
  type MovePeer,
  type MoveProgress,
  type MoveServiceOptions,
  moveService,
} from './services/query-retrieve/move-scp.js';
/** Query/Retrieve (PS3.4 C.4.2): the C-MOVE SCU and its progress and outcome. */
export {
  type MoveRequest,
  move,
  RetrieveError,
  type RetrieveErrorCode,
  type RetrieveOutcome,
  type RetrieveProgress,
  type RetrieveRequestOptions,
  retrieveContext,
} from './services/query-retrieve/move-scu.js';
/** Storage (PS3.4 B): the C-STORE SCP and the transfer syntaxes it keeps as received. */
export {
  type StorageServiceOptions,
  storageService,
  storageTransferSyntaxes,
} from './services/storage/scp.js';
/** Storage (PS3.4 B): the C-STORE SCU, its file inspection and association planning. */
export {
  type AssociationPlan,
  type ContextChoice,
  chooseContext,
  FALLBACK_TRANSFER_SYNTAXES,
  type FileInfo,
  FileInfoError,
  type FileInfoErrorCode,
  isReencodable,
  MAX_PRESENTATION_CONTEXTS,
  planAssociations,
  planContexts,
  readFileInfo,
  StoreError,
  type StoreErrorCode,
  type StoreOptions,
  type StoreOutcome,
  storeFile,
} from './services/storage/scu.js';
/** Verification (PS3.4 A): the C-ECHO SCP. */
export { verificationService } from './services/verification/scp.js';
/** Verification (PS3.4 A): the C-ECHO SCU and its presentation context. */
export { echo, VERIFICATION_CONTEXT } from './services/verification/scu.js';
/** Modality Worklist: reading worklist items from DICOM and JSON files. */
export {
  readDataSets,
  readWorklistFiles,
  type WorklistFileItems,
  worklistFiles,
} from './services/worklist/import.js';
/** Modality Worklist: building and checking worklist items. */
export {
  buildWorklistItem,
  prepareWorklistItem,
  WORKLIST_FIND_SOP_CLASS,
  type WorklistItemFields,
  worklistItemProblems,
} from './services/worklist/model.js';
/** Modality Worklist (PS3.4 K): the MWL C-FIND SCP over the worklist store. */
export { type WorklistServiceOptions, worklistService } from './services/worklist/scp.js';
/** Modality Worklist (PS3.4 K): the MWL C-FIND SCU. */
export {
  fetchWorklist,
  queryWorklist,
  WORKLIST_FIND_CONTEXT,
  WORKLIST_ITEM_KEYS,
  WORKLIST_STEP_KEYS,
  type WorklistQueryOptions,
  withModalityReturnKeys,
} from './services/worklist/scu.js';

// --- archive: for embedding (object files, index, jobs, worklist) ---------------------------------

/** The archive: one ingest entry point, durable object files and the index behind them. */
export {
  Archive,
  type ArchiveOptions,
  type DuplicatePolicy,
  type IngestOutcome,
  type OpenArchiveOptions,
  openArchive,
} from './archive/archive.js';
/** Compressing one archived object (the work of `pacs archive compress` and of the 'compress' job). */
export {
  type CompressOptions,
  type CompressOutcome,
  closeCompressionPools,
  compressInstance,
  pooledDecoder,
  storeTranscoder,
} from './archive/compression/compress.js';
/** Compression at rest: the policy, one object compressed (verified before it replaces its original), the server's jobs. */
export {
  COMPRESSION_TARGETS,
  type CompressionPolicy,
  type CompressionTarget,
  isCompressionTarget,
  policyCompresses,
  type SkipCode,
  TARGET_SYNTAX,
} from './archive/compression/policy.js';
/** The server's compression jobs and the delayed removal of compressed originals. */
export {
  COMPRESS_JOB,
  type CompressJobResult,
  compressionService,
  DelayedRemovals,
  policyOf,
} from './archive/compression/service.js';
/** Archive failures (disk full, missing file, ...) with a stable code. */
export { ArchiveError, type ArchiveErrorCode } from './archive/errors.js';
/** The index port the query, retrieve and storage services use. */
export type { ArchiveIndex, IndexEngine } from './archive/index/archive-index.js';
/** The in-memory index (tests, embedding without a database). */
export { MemoryArchiveIndex } from './archive/index/memory-index.js';
/** Opening the index from a `--db` URL (`sqlite:PATH` or `postgres://...`). */
export { type OpenedIndex, type OpenIndexOptions, openIndex, parseIndexUrl } from './archive/index/open.js';
/** The ingest entry point's request, its streaming sink and how an object came in. */
export { type IngestRequest, IngestStream, type IngestVia } from './archive/ingest.js';
/** The persistent priority job queue (C-MOVE sub-operations and other long work). */
export { JOB_STATES, type Job, JobPriority, type JobState, type JobStore } from './archive/jobs/job.js';
/** The job store of an opened index. */
export { jobStoreFor } from './archive/jobs/open.js';
/** Rewrapping every object's data key under a new key; encrypting the plain objects in place. */
export {
  type EncryptionReport,
  encryptObjects,
  type RotationProgress,
  type RotationReport,
  rotateKeys,
} from './archive/key-rotation.js';
/** Reconciling the index with the object files on disk. */
export {
  type ReconcileOptions,
  type ReconcileProgress,
  type ReconcileReport,
  reconcile,
} from './archive/reconcile.js';
/** The object files of an archive's data folder (key rotation and encryption work on it). */
export { ObjectStore, type ObjectStoreOptions } from './archive/store.js';
/** The in-memory worklist store (tests, embedding without a database). */
export { MemoryWorklistStore } from './archive/worklist/memory-store.js';
/** Opening the worklist store of an index. */
export { type OpenedWorklist, openWorklistStore } from './archive/worklist/open.js';
/** The worklist and MPPS store: its port, its items and its selectors. */
export type {
  ItemSelector,
  MppsRecord,
  WorklistItem,
  WorklistStore,
} from './archive/worklist/worklist-store.js';
/** Encryption at rest: key-encryption keys and key files (openArchive's `keyring`). */
export {
  type KeyEncryptionKey,
  type Keyring,
  makeKeyring,
  newKeyEncryptionKey,
} from './security/envelope.js';
/** Key files of encryption at rest: reading, writing a new one, the keyring of a config. */
export { KeyFileError, keyringOf, loadKeyring, readKeyFile, writeNewKeyFile } from './security/key-file.js';

// --- identity: users, roles, API tokens, sessions (issue 14) ----------------------------------------

/** The AE registry kept in an index, opened from an index URL. */
export { type OpenedAeRegistry, openAeRegistry } from './archive/security/ae-registry.js';
/** The audit trail kept in the index: adding and querying records. */
export { auditStoreOf, queryAudit } from './archive/security/audit-store.js';
/** The first start's admin user. */
export { type BootstrapOptions, bootstrapAdmin, type FirstAdmin } from './archive/security/bootstrap.js';
/** The in-memory identity store (tests, embedding without a database). */
export { MemoryIdentityStore } from './archive/security/memory-identity-store.js';
/** The identity store of an index, or of an index URL; the first start's admin. */
export {
  identityServiceFor,
  identityStoreOf,
  type OpenedIdentityStore,
  openIdentityStore,
} from './archive/security/open.js';
/** The AE registry: the DICOM nodes the archive knows and what each may ask for. */
export type { AeEntry, AeRegistry } from './security/ae-registry.js';
/** Audit messages (DICOM PS3.15 A.5): the Order Record of worklist changes. */
export { type AuditSource, orderRecord } from './security/audit/messages.js';
/** Audit records as the index keeps them, and how they are queried. */
export {
  type AuditQuery,
  type AuditRecord,
  type AuditRecordStore,
  auditRecordOf,
} from './security/audit/record.js';
/** The checks of administering users, roles and tokens (the CLI, the first admin, REST admin routes). */
export * as identityAdmin from './security/identity-admin.js';
/** The identity config part and its session limits. */
export { type IdentityConfig, sessionLimits } from './security/identity-config.js';
/** The identity service every way in authenticates through, and its options. */
export {
  csrfTokenMatches,
  type IdentityServiceOptions,
  StoredIdentityService,
} from './security/identity-service.js';
/** The identity store port (users, custom roles, API tokens, browser sessions). */
export type {
  IdentityStore,
  RoleRecord,
  SessionRecord,
  TokenRecord,
  UserRecord,
} from './security/identity-store.js';
/** Generated passwords (`pacs user add` without --password, password resets). */
export { generatePassword } from './security/passwords.js';
/** Permissions: what a role may grant, what a DICOM node may ask for. */
export {
  AE_PERMISSIONS,
  type AePermission,
  PERMISSIONS,
  type Permission,
  parseAePermissions,
  parsePermissions,
} from './security/permissions.js';
/** Roles: built-in and custom. */
export { allRoles, resolveRole } from './security/roles.js';
/** The TLS versions and cipher suites of every TLS endpoint (PS3.15 B.12, RFC 9325). */
export { TLS_POLICY, type TlsPolicy } from './security/tls-policy.js';
/** API tokens: the longest lifetime a token may be given. */
export { MAX_TOKEN_DAYS } from './security/tokens.js';

// --- server: the composition root -----------------------------------------------------------------

/** Running the server as several processes on one port (Node cluster). */
export {
  answerPrimary,
  type ClusterHandle,
  type ClusterOptions,
  isClusterWorker,
  onPrimaryMessage,
  type PrimaryMessage,
  reportListening,
  runClusterPrimary,
  type WorkerMessage,
} from './server/cluster.js';
/** Starting the whole server (archive, services, DICOM and HTTP listeners) from a configuration. */
export {
  type ListenerInfo,
  type ServerHandle,
  type StartServerOptions,
  startServer,
} from './server/server.js';
/** The services the server composes, by name. */
export {
  SERVER_SERVICES,
  type ServiceContext,
  type ServiceFactory,
  type ServiceName,
} from './server/services.js';
