/**
 * The coded values of DICOM audit messages (PS3.15 A.5.3, PS3.16 CID 400 Audit Event ID, CID 401
 * Audit Event Type Code, CID 402 Audit Active Participant Role ID Code, CID 404 Audit Participant
 * Object ID Type Code), with the RFC 3881 ones the messages also use. Code meanings are the
 * standard's, written as the `originalText` of the schema's CodedValueType.
 */

/** A coded value (PS3.15 A.5.1 CodedValueType): csd-code, codeSystemName, originalText. */
export interface CodedValue {
  readonly code: string;
  readonly system: string;
  readonly meaning: string;
}

const dcm = (code: string, meaning: string): CodedValue => ({ code, system: 'DCM', meaning });

/** CID 400: the EventID of each message this archive writes. */
export const EVENT_ID = {
  applicationActivity: dcm('110100', 'Application Activity'),
  beginTransferring: dcm('110102', 'Begin Transferring DICOM Instances'),
  instancesAccessed: dcm('110103', 'DICOM Instances Accessed'),
  instancesTransferred: dcm('110104', 'DICOM Instances Transferred'),
  studyDeleted: dcm('110105', 'DICOM Study Deleted'),
  orderRecord: dcm('110109', 'Order Record'),
  procedureRecord: dcm('110111', 'Procedure Record'),
  query: dcm('110112', 'Query'),
  securityAlert: dcm('110113', 'Security Alert'),
  userAuthentication: dcm('110114', 'User Authentication'),
} as const;

/** CID 401: EventTypeCode. */
export const EVENT_TYPE = {
  applicationStart: dcm('110120', 'Application Start'),
  applicationStop: dcm('110121', 'Application Stop'),
  login: dcm('110122', 'Login'),
  logout: dcm('110123', 'Logout'),
  nodeAuthentication: dcm('110126', 'Node Authentication'),
  securityConfiguration: dcm('110129', 'Security Configuration'),
  useOfRestrictedFunction: dcm('110132', 'Use of Restricted Function'),
  /** Not in CID 401: a stored object that failed its integrity check (a private code, PS3.16 8.2 "99" designator). */
  integrityFailure: { code: 'INTEGRITY', system: '99PACS', meaning: 'Object Integrity Failure' },
} as const;

/** CID 402: RoleIDCode of an ActiveParticipant. */
export const ROLE = {
  application: dcm('110150', 'Application'),
  applicationLauncher: dcm('110151', 'Application Launcher'),
  destination: dcm('110152', 'Destination Role ID'),
  source: dcm('110153', 'Source Role ID'),
} as const;

/** ParticipantObjectIDTypeCode: CID 404 and RFC 3881. */
export const OBJECT_ID_TYPE = {
  patientNumber: { code: '2', system: 'RFC-3881', meaning: 'Patient Number' },
  userIdentifier: { code: '11', system: 'RFC-3881', meaning: 'User Identifier' },
  studyInstanceUid: dcm('110180', 'Study Instance UID'),
  sopClassUid: dcm('110181', 'SOP Class UID'),
  nodeId: dcm('110182', 'Node ID'),
} as const;

/** The EventIDs by code, for parsing a stored message's summary back. */
export const EVENT_ID_BY_CODE: ReadonlyMap<string, CodedValue> = new Map(
  Object.values(EVENT_ID).map((c) => [c.code, c]),
);
