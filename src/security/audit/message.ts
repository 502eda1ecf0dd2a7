/**
 * A DICOM audit message (PS3.15 A.5.1) as data, and its XML. The element order is the schema's
 * (audit-message.rng beside this file): EventIdentification, ActiveParticipant+,
 * AuditSourceIdentification, ParticipantObjectIdentification*; inside each, child elements in the
 * schema's order. Every text and attribute value is escaped (dicom/xml.ts escapeXml): patient
 * names and user names are peer-controlled.
 */
import { escapeXml } from '../../dicom/xml.js';
import type { CodedValue } from './codes.js';

/** PS3.15 A.5.1 EventOutcomeIndicator: 0 success, 4 minor failure, 8 serious failure, 12 major failure. */
export type Outcome = 0 | 4 | 8 | 12;
/** EventActionCode: Create, Read, Update, Delete, Execute. */
export type ActionCode = 'C' | 'R' | 'U' | 'D' | 'E';

export interface ActiveParticipant {
  readonly userId: string;
  readonly alternativeUserId?: string;
  readonly userName?: string;
  readonly requestor: boolean;
  readonly roles: readonly CodedValue[];
  /** An IP address (type 2) or host name (type 1). */
  readonly networkAccessPoint?: string;
}

export interface SopClassCount {
  /** '' when the class is not known (the schema's UID is optional, NumberOfInstances is not). */
  readonly uid: string;
  readonly instances: number;
}

export interface ParticipantObject {
  readonly id: string;
  readonly idType: CodedValue;
  /** ParticipantObjectTypeCode: 1 person, 2 system object, 3 organization, 4 other. */
  readonly typeCode?: 1 | 2 | 3 | 4;
  /** ParticipantObjectTypeCodeRole: 1 patient, 3 report, 6 user, 24 query, ... */
  readonly role?: number;
  /** ParticipantObjectDataLifeCycle (1 origination, 6 access/use, 14 logical deletion, ...). */
  readonly lifeCycle?: number;
  readonly name?: string;
  /** ParticipantObjectQuery: the query's bytes, written base64. */
  readonly query?: Uint8Array;
  /** ParticipantObjectDetail type/value pairs; values written base64. */
  readonly details?: readonly { readonly type: string; readonly value: string | Uint8Array }[];
  /** ParticipantObjectDescription (DICOMObjectDescriptionContents). */
  readonly description?: {
    readonly mpps?: readonly string[];
    readonly accessions?: readonly string[];
    readonly sopClasses?: readonly SopClassCount[];
  };
}

export interface AuditMessage {
  readonly eventId: CodedValue;
  readonly eventTypes: readonly CodedValue[];
  readonly action?: ActionCode;
  readonly dateTime: Date;
  readonly outcome: Outcome;
  readonly outcomeDescription?: string;
  readonly participants: readonly ActiveParticipant[];
  readonly source: { readonly id: string; readonly siteId?: string; readonly typeCodes: readonly string[] };
  readonly objects: readonly ParticipantObject[];
}

/** Escaped, and on one line: line breaks as character references (they survive a syslog line). */
const esc = (text: string): string => escapeXml(text).replace(/\n/g, '&#10;').replace(/\r/g, '&#13;');

const attr = (name: string, value: string | number | undefined): string =>
  value === undefined ? '' : ` ${name}="${esc(String(value))}"`;

function coded(element: string, c: CodedValue): string {
  return `<${element}${attr('csd-code', c.code)}${attr('codeSystemName', c.system)}${attr('originalText', c.meaning)}/>`;
}

const base64 = (value: string | Uint8Array): string =>
  Buffer.from(typeof value === 'string' ? Buffer.from(value, 'utf8') : value).toString('base64');

/** PS3.15 A.5.2.4: an IP address is type 2, anything else a machine name (type 1). */
function napType(address: string): 1 | 2 {
  return /^[0-9.]+$/.test(address) || address.includes(':') ? 2 : 1;
}

/** The address without the IPv4-mapped prefix Node gives (::ffff:127.0.0.1). */
export function plainAddress(address: string | undefined): string | undefined {
  if (address === undefined || address === '') return undefined;
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

function participantXml(p: ActiveParticipant): string {
  const nap = plainAddress(p.networkAccessPoint);
  let s = `<ActiveParticipant${attr('UserID', p.userId)}${attr('AlternativeUserID', p.alternativeUserId)}${attr(
    'UserName',
    p.userName,
  )}${attr('UserIsRequestor', p.requestor ? 'true' : 'false')}`;
  if (nap !== undefined)
    s += `${attr('NetworkAccessPointID', nap)}${attr('NetworkAccessPointTypeCode', napType(nap))}`;
  if (p.roles.length === 0) return `${s}/>`;
  return `${s}>${p.roles.map((r) => coded('RoleIDCode', r)).join('')}</ActiveParticipant>`;
}

function objectXml(o: ParticipantObject): string {
  let s = `<ParticipantObjectIdentification${attr('ParticipantObjectID', o.id)}${attr(
    'ParticipantObjectTypeCode',
    o.typeCode,
  )}${attr('ParticipantObjectTypeCodeRole', o.role)}${attr('ParticipantObjectDataLifeCycle', o.lifeCycle)}>`;
  s += coded('ParticipantObjectIDTypeCode', o.idType);
  if (o.name !== undefined) s += `<ParticipantObjectName>${esc(o.name)}</ParticipantObjectName>`;
  else if (o.query !== undefined) s += `<ParticipantObjectQuery>${base64(o.query)}</ParticipantObjectQuery>`;
  for (const d of o.details ?? [])
    s += `<ParticipantObjectDetail${attr('type', d.type)}${attr('value', base64(d.value))}/>`;
  const desc = o.description;
  if (desc !== undefined) {
    s += '<ParticipantObjectDescription>';
    for (const uid of desc.mpps ?? []) s += `<MPPS${attr('UID', uid)}/>`;
    for (const n of desc.accessions ?? []) s += `<Accession${attr('Number', n)}/>`;
    for (const c of desc.sopClasses ?? [])
      s += `<SOPClass${attr('UID', c.uid === '' ? undefined : c.uid)}${attr('NumberOfInstances', c.instances)}/>`;
    s += '</ParticipantObjectDescription>';
  }
  return `${s}</ParticipantObjectIdentification>`;
}

/** The message as the XML document sent to repositories and kept in the index. */
export function auditMessageXml(m: AuditMessage): string {
  // One line: a syslog MSG (RFC 5424) carries it as it is, and repositories store messages by line.
  let s = '<?xml version="1.0" encoding="UTF-8"?><AuditMessage>';
  s += `<EventIdentification${attr('EventActionCode', m.action)}${attr('EventDateTime', m.dateTime.toISOString())}${attr(
    'EventOutcomeIndicator',
    m.outcome,
  )}>`;
  s += coded('EventID', m.eventId);
  for (const t of m.eventTypes) s += coded('EventTypeCode', t);
  if (m.outcomeDescription !== undefined)
    s += `<EventOutcomeDescription>${esc(m.outcomeDescription)}</EventOutcomeDescription>`;
  s += '</EventIdentification>';
  for (const p of m.participants) s += participantXml(p);
  s += `<AuditSourceIdentification${attr('AuditEnterpriseSiteID', m.source.siteId)}${attr('AuditSourceID', m.source.id)}>`;
  for (const t of m.source.typeCodes) s += `<AuditSourceTypeCode${attr('csd-code', t)}/>`;
  s += '</AuditSourceIdentification>';
  for (const o of m.objects) s += objectXml(o);
  return `${s}</AuditMessage>`;
}
