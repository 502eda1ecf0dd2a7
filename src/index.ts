/**
 * The public API of the package: what `import ... from 'pacs'` gives. An SCP or an SCU in a few
 * lines (see examples/):
 *
 *   const ae = new ApplicationEntity({ aeTitle: 'PACS' }).addService(verificationService());
 *   const server = await ae.listen({ port: 11112 });
 *
 *   const assoc = unwrap(await new ApplicationEntity({ aeTitle: 'ME' }).connect({
 *     host, port, calledAeTitle: 'PACS', contexts: [VERIFICATION_CONTEXT] }));
 *   await echo(assoc);
 *   await assoc.release();
 *
 * Anything not exported here is internal and may change without notice.
 */

export { ConfigError, DicomEncodeError, DicomParseError, PacsError } from './core/errors.js';
export { createLogger, type Logger, type LoggerOptions } from './core/logger.js';
// Result and errors
export { type Err, err, type Ok, ok, type Result, unwrap } from './core/result.js';
// DICOM data
export { type DataElement, DataSet, type ElementValue, type PixelFragments } from './dicom/dataset.js';
export { keywordOf, lookupTag, parseTagOrKeyword, TAG, tagForKeyword } from './dicom/dictionary.js';
export { type DicomJsonObject, fromDicomJson, toDicomJson } from './dicom/json.js';
export { type DataSetHandler, DicomParser, type ParserOptions } from './dicom/parser.js';
export { type DicomObject, parseDicom, type ReadOptions } from './dicom/reader.js';
export { formatTag, makeTag, type Tag } from './dicom/tag.js';
export {
  DEFLATED_EXPLICIT_VR_LE,
  describeUid,
  EXPLICIT_VR_BE,
  EXPLICIT_VR_LE,
  generateUid,
  IMPLICIT_VR_LE,
  isStorageSopClass,
  lookupUid,
  transferSyntax,
  UID,
} from './dicom/uid.js';
export type { VR } from './dicom/vr.js';
export {
  DataSetWriter,
  encodeDataSet,
  encodeFileMeta,
  encodePart10,
  type WriterOptions,
} from './dicom/writer.js';
// DICOM files (the file side of the data layer)
export { readDicomFile } from './io/dicom-file.js';
// Network: application entities, associations, DIMSE
export {
  type AeOptions,
  ApplicationEntity,
  type AssociationSummary,
  type ConnectOptions,
  DicomServer,
  type ListenOptions,
} from './network/ae.js';
export type {
  Association,
  AssociationTimeouts,
  CloseInfo,
  ProposedPresentationContext,
} from './network/association.js';
export { DimseAssociation, type DimseStats } from './network/dimse.js';
export { CommandField, type DimseCommand, Priority } from './network/dimse-command.js';
export { describeStatus, Status, type StatusCategory, statusCategory } from './network/dimse-status.js';
export { type AbortInfo, NetworkError, type NetworkErrorCode, type RejectInfo } from './network/errors.js';
export type { NetworkLogger } from './network/logger.js';
export {
  type AcceptedPresentationContext,
  type AllowedCaller,
  describeAbort,
  describeReject,
} from './network/negotiation.js';
export type {
  DimseHandlers,
  DimseResponse,
  DimseService,
  MultiHandler,
  OutgoingData,
  RequestContext,
  ResponseMessage,
  ServiceSopClass,
  SingleHandler,
  StoreHandler,
} from './network/service.js';
export type { TlsClientOptions, TlsServerOptions } from './network/transport.js';
// The server as a library: configuration and the composition root
export { type Config, defaultConfig, loadConfig } from './server/config.js';
export {
  type ListenerInfo,
  type ServerHandle,
  type StartServerOptions,
  startServer,
} from './server/server.js';
export { SERVER_SERVICES, type ServiceContext, type ServiceFactory } from './server/services.js';
// Services
export { verificationService } from './services/verification/scp.js';
export { echo, VERIFICATION_CONTEXT } from './services/verification/scu.js';
