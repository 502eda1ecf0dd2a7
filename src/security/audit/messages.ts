/**
 * The DICOM audit messages of PS3.15 A.5.3, one builder per message, from what happened (the
 * events of core/events.ts, or a transfer aggregated by transfers.ts). Each follows its A.5.3
 * table: which active participants (with UserIsRequestor and RoleIDCode), which participant
 * objects (patient, study with its SOP classes, query), EventActionCode and outcome.
 */
import type { EventOf } from '../../core/events.js';
import { EVENT_ID, EVENT_TYPE, OBJECT_ID_TYPE, ROLE } from './codes.js';
import type {
  ActionCode,
  ActiveParticipant,
  AuditMessage,
  Outcome,
  ParticipantObject,
  SopClassCount,
} from './message.js';

/** Who reports: this archive (the AuditSourceIdentification and its own ActiveParticipant). */
export interface AuditSource {
  /** The AE title: UserID of the archive's participant. */
  readonly aeTitle: string;
  /** AuditSourceID (default: the AE title). */
  readonly sourceId: string;
  /** AuditEnterpriseSiteID, when configured. */
  readonly siteId?: string;
  /** The host name: NetworkAccessPointID of the archive's participant. */
  readonly hostName: string;
  /** AlternativeUserID of the archive's participant (PS3.15 A.5.2.2: the process id). */
  readonly processId: string;
}

/** PS3.15 A.5.1.2.1: 4 = application server process tier. */
const SOURCE_TYPE = '4';

function archive(
  source: AuditSource,
  roles: ActiveParticipant['roles'],
  requestor = false,
): ActiveParticipant {
  return {
    userId: source.aeTitle,
    alternativeUserId: source.processId,
    requestor,
    roles,
    networkAccessPoint: source.hostName,
  };
}

function message(
  source: AuditSource,
  fields: Omit<AuditMessage, 'source' | 'dateTime'> & { dateTime?: Date },
): AuditMessage {
  return {
    ...fields,
    dateTime: fields.dateTime ?? new Date(),
    source: {
      id: source.sourceId,
      ...(source.siteId !== undefined ? { siteId: source.siteId } : {}),
      typeCodes: [SOURCE_TYPE],
    },
  };
}

export function patientObject(patientId: string, patientName?: string): ParticipantObject {
  return {
    id: patientId,
    idType: OBJECT_ID_TYPE.patientNumber,
    typeCode: 1,
    role: 1,
    ...(patientName !== undefined && patientName !== '' ? { name: patientName } : {}),
  };
}

export function studyObject(
  studyInstanceUid: string,
  sopClasses: readonly SopClassCount[] | undefined,
  extra: { lifeCycle?: number; accessions?: readonly string[] } = {},
): ParticipantObject {
  const description =
    sopClasses !== undefined || extra.accessions !== undefined
      ? {
          ...(sopClasses !== undefined ? { sopClasses } : {}),
          ...(extra.accessions !== undefined ? { accessions: extra.accessions } : {}),
        }
      : undefined;
  return {
    id: studyInstanceUid,
    idType: OBJECT_ID_TYPE.studyInstanceUid,
    typeCode: 2,
    role: 3,
    ...(extra.lifeCycle !== undefined ? { lifeCycle: extra.lifeCycle } : {}),
    ...(description !== undefined ? { description } : {}),
  };
}

/** Patient and study objects, patient left out when unknown (A.5.3: one patient per message). */
function studyAndPatient(
  study: string,
  sopClasses: readonly SopClassCount[] | undefined,
  patientId: string | undefined,
  patientName: string | undefined,
  lifeCycle?: number,
): ParticipantObject[] {
  const objects = [studyObject(study, sopClasses, lifeCycle !== undefined ? { lifeCycle } : {})];
  if (patientId !== undefined) objects.push(patientObject(patientId, patientName));
  return objects;
}

/** Instance counts when the classes are not known (WADO, deletion): one SOPClass without UID. */
function countOnly(instances: number): SopClassCount[] {
  return [{ uid: '', instances }];
}

/** A.5.3.1 Application Activity. */
export function applicationActivity(source: AuditSource, e: EventOf<'application'>): AuditMessage {
  const participants: ActiveParticipant[] = [archive(source, [ROLE.application])];
  if (e.user !== undefined)
    participants.push({ userId: e.user, requestor: true, roles: [ROLE.applicationLauncher] });
  return message(source, {
    eventId: EVENT_ID.applicationActivity,
    eventTypes: [e.action === 'start' ? EVENT_TYPE.applicationStart : EVENT_TYPE.applicationStop],
    action: 'E',
    outcome: 0,
    participants,
    objects: [],
  });
}

/** A.5.3.12 User Authentication: the user (requestor) and the node that authenticated. */
export function userAuthentication(source: AuditSource, e: EventOf<'authentication'>): AuditMessage {
  const failed = e.outcome === 'failure';
  const description = [`method ${e.method}`, ...(e.reason !== undefined ? [e.reason] : [])].join(': ');
  return message(source, {
    eventId: EVENT_ID.userAuthentication,
    eventTypes: [e.action === 'login' ? EVENT_TYPE.login : EVENT_TYPE.logout],
    action: 'E',
    outcome: failed ? 4 : 0,
    outcomeDescription: description,
    participants: [
      {
        userId: e.user ?? '(none given)',
        requestor: true,
        roles: [],
        ...(e.remoteAddress !== undefined ? { networkAccessPoint: e.remoteAddress } : {}),
      },
      archive(source, []),
    ],
    objects: [],
  });
}

const ALERT_TYPE = {
  'association-rejected': EVENT_TYPE.nodeAuthentication,
  'node-authentication-failed': EVENT_TYPE.nodeAuthentication,
  'permission-denied': EVENT_TYPE.useOfRestrictedFunction,
  'configuration-changed': EVENT_TYPE.securityConfiguration,
  'integrity-failure': EVENT_TYPE.integrityFailure,
} as const;

/**
 * A.5.3.11 Security Alert: the archive reports (and is not the requestor); whoever caused it is the
 * requestor; the node or user it concerns is the alert's subject object.
 */
export function securityAlert(
  source: AuditSource,
  e: { kind: keyof typeof ALERT_TYPE; detail: string; user?: string; remoteAddress?: string | undefined },
): AuditMessage {
  const outcome: Outcome = e.kind === 'configuration-changed' ? 0 : e.kind === 'integrity-failure' ? 8 : 4;
  const participants: ActiveParticipant[] = [archive(source, [])];
  if (e.user !== undefined || e.remoteAddress !== undefined)
    participants.push({
      userId: e.user ?? e.remoteAddress ?? '',
      requestor: true,
      roles: [],
      ...(e.remoteAddress !== undefined ? { networkAccessPoint: e.remoteAddress } : {}),
    });
  const objects: ParticipantObject[] = [];
  if (e.user !== undefined)
    objects.push({
      id: e.user,
      idType: OBJECT_ID_TYPE.userIdentifier,
      typeCode: 1,
      role: 11,
      details: [{ type: 'Alert Description', value: e.detail }],
    });
  else if (e.remoteAddress !== undefined)
    objects.push({
      id: e.remoteAddress.startsWith('::ffff:') ? e.remoteAddress.slice(7) : e.remoteAddress,
      idType: OBJECT_ID_TYPE.nodeId,
      typeCode: 2,
      details: [{ type: 'Alert Description', value: e.detail }],
    });
  return message(source, {
    eventId: EVENT_ID.securityAlert,
    eventTypes: [ALERT_TYPE[e.kind]],
    action: 'E',
    outcome,
    outcomeDescription: e.detail,
    participants,
    objects,
  });
}

/** One aggregated transfer: the instances of one study between the same two parties (transfers.ts). */
export interface Transfer {
  readonly direction: 'in' | 'out';
  readonly via: string;
  /** The peer: the sending AE or user (in), the destination (out). */
  readonly peer: string;
  readonly peerAddress?: string | undefined;
  /** Who asked for an outgoing transfer when it is not the destination (C-MOVE requestor, a user). */
  readonly requestor?: string;
  readonly studyInstanceUid: string;
  readonly patientId?: string;
  readonly patientName?: string;
  readonly sopClasses: readonly SopClassCount[];
  readonly action: ActionCode;
  readonly outcome: Outcome;
  readonly outcomeDescription?: string;
  readonly dateTime?: Date;
}

/** The active participants of a transfer (A.5.3.2 and A.5.3.4): Source, Destination and the requestor. */
function transferParticipants(source: AuditSource, t: Transfer): ActiveParticipant[] {
  const peer = (roles: ActiveParticipant['roles'], requestor: boolean): ActiveParticipant => ({
    userId: t.peer,
    requestor,
    roles,
    ...(t.peerAddress !== undefined ? { networkAccessPoint: t.peerAddress } : {}),
  });
  if (t.direction === 'in') return [peer([ROLE.source], true), archive(source, [ROLE.destination])];
  // Out: the destination asked for it itself (C-GET, WADO) unless a requestor is named (C-MOVE).
  const other = t.requestor !== undefined && t.requestor !== t.peer;
  const list = [archive(source, [ROLE.source], false), peer([ROLE.destination], !other)];
  if (other && t.requestor !== undefined) list.push({ userId: t.requestor, requestor: true, roles: [] });
  return list;
}

/** A.5.3.4 DICOM Instances Transferred. */
export function instancesTransferred(source: AuditSource, t: Transfer): AuditMessage {
  const count = t.sopClasses.reduce((n, c) => n + c.instances, 0);
  return message(source, {
    eventId: EVENT_ID.instancesTransferred,
    eventTypes: [],
    action: t.action,
    outcome: t.outcome,
    outcomeDescription: t.outcomeDescription ?? `${t.via}: ${count} instance(s)`,
    participants: transferParticipants(source, t),
    objects: studyAndPatient(t.studyInstanceUid, t.sopClasses, t.patientId, t.patientName),
    ...(t.dateTime !== undefined ? { dateTime: t.dateTime } : {}),
  });
}

/** A.5.3.2 Begin Transferring DICOM Instances: sent when an outgoing transfer of a study starts. */
export function beginTransferring(source: AuditSource, t: Transfer): AuditMessage {
  return message(source, {
    eventId: EVENT_ID.beginTransferring,
    eventTypes: [],
    action: 'E',
    outcome: 0,
    outcomeDescription: t.via,
    participants: transferParticipants(source, t),
    objects: studyAndPatient(t.studyInstanceUid, undefined, t.patientId, t.patientName),
  });
}

/** WADO-RS / WADO-URI / REST downloads: a transfer out to the user who asked (per request). */
export function retrieved(source: AuditSource, e: EventOf<'objects-retrieved'>): AuditMessage {
  return instancesTransferred(source, {
    direction: 'out',
    via: e.via,
    peer: e.user,
    peerAddress: e.remoteAddress,
    studyInstanceUid: e.studyInstanceUid,
    ...(e.patientId !== undefined ? { patientId: e.patientId } : {}),
    ...(e.patientName !== undefined ? { patientName: e.patientName } : {}),
    sopClasses: countOnly(e.sopInstanceUids.length),
    action: 'R',
    outcome: 0,
  });
}

/** A.5.3.3 DICOM Instances Accessed. */
export function instancesAccessed(source: AuditSource, e: EventOf<'objects-accessed'>): AuditMessage {
  return message(source, {
    eventId: EVENT_ID.instancesAccessed,
    eventTypes: [],
    action: e.action === 'update' ? 'U' : 'R',
    outcome: 0,
    outcomeDescription: e.via,
    participants: [
      {
        userId: e.user,
        requestor: true,
        roles: [],
        ...(e.remoteAddress !== undefined ? { networkAccessPoint: e.remoteAddress } : {}),
      },
      archive(source, []),
    ],
    objects: studyAndPatient(
      e.studyInstanceUid,
      e.sopInstanceUids !== undefined ? countOnly(e.sopInstanceUids.length) : undefined,
      e.patientId,
      e.patientName,
      6,
    ),
  });
}

/** A.5.3.5 DICOM Study Deleted. */
export function studyDeleted(source: AuditSource, e: EventOf<'study-deleted'>): AuditMessage {
  return message(source, {
    eventId: EVENT_ID.studyDeleted,
    eventTypes: [],
    action: 'D',
    outcome: 0,
    participants: [{ userId: e.user, requestor: true, roles: [] }, archive(source, [])],
    objects: studyAndPatient(
      e.studyInstanceUid,
      countOnly(e.sopInstanceUids.length),
      e.patientId,
      e.patientName,
      14,
    ),
  });
}

/** PS3.18 10.6: QIDO-RS is a query of the Study Root information model. */
const STUDY_ROOT_FIND = '1.2.840.10008.5.1.4.1.2.2.1';

/** A.5.3.10 Query: the querying node/user (requestor, Source), the archive (Destination), the query. */
export function query(source: AuditSource, e: EventOf<'query'>): AuditMessage {
  const bytes =
    e.query === undefined
      ? new Uint8Array(0)
      : typeof e.query === 'string'
        ? Buffer.from(e.query, 'utf8')
        : e.query;
  const details: { type: string; value: string }[] = [];
  if (e.transferSyntaxUid !== undefined) details.push({ type: 'TransferSyntax', value: e.transferSyntaxUid });
  const requestor = e.user ?? e.source;
  return message(source, {
    eventId: EVENT_ID.query,
    eventTypes: [],
    action: 'E',
    outcome: 0,
    outcomeDescription: `${e.service} ${e.level}: ${e.matches} match(es)`,
    participants: [
      {
        userId: requestor,
        ...(e.user !== undefined && e.user !== e.source ? { alternativeUserId: e.source } : {}),
        requestor: true,
        roles: [ROLE.source],
        ...(e.remoteAddress !== undefined ? { networkAccessPoint: e.remoteAddress } : {}),
      },
      archive(source, [ROLE.destination]),
    ],
    objects: [
      {
        id: e.sopClassUid ?? STUDY_ROOT_FIND,
        idType: OBJECT_ID_TYPE.sopClassUid,
        typeCode: 2,
        role: 24,
        query: bytes,
        details,
      },
    ],
  });
}

/** A.5.3.6 Order Record (worklist items) and A.5.3.9 Procedure Record (MPPS). */
export function orderRecord(source: AuditSource, e: EventOf<'order-record'>): AuditMessage {
  const action: ActionCode = e.action === 'create' ? 'C' : e.action === 'update' ? 'U' : 'D';
  const objects: ParticipantObject[] = [];
  if (e.studyInstanceUid !== undefined)
    objects.push(
      studyObject(
        e.studyInstanceUid,
        undefined,
        e.accessionNumber !== undefined ? { accessions: [e.accessionNumber] } : {},
      ),
    );
  if (e.patientId !== undefined) objects.push(patientObject(e.patientId, e.patientName));
  return message(source, {
    eventId: e.record === 'mpps' ? EVENT_ID.procedureRecord : EVENT_ID.orderRecord,
    eventTypes: [],
    action,
    outcome: 0,
    outcomeDescription: `${e.record} ${e.action}`,
    participants: [{ userId: e.user, requestor: true, roles: [] }, archive(source, [])],
    objects,
  });
}
