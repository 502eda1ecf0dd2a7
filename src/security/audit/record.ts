/**
 * An audit record: one DICOM audit message as it is spooled, kept in the index and listed by
 * `pacs audit`: its XML (what repositories receive) with the fields searched on and a JSON summary
 * (EventID, outcome, participants, objects) so that readers never parse the XML.
 */
import { randomUUID } from 'node:crypto';
import { type AuditMessage, auditMessageXml, plainAddress } from './message.js';

export interface AuditSummary {
  readonly eventId: { readonly code: string; readonly meaning: string };
  readonly eventTypes: readonly { readonly code: string; readonly meaning: string }[];
  readonly action?: string;
  readonly outcome: number;
  readonly outcomeDescription?: string;
  readonly participants: readonly {
    readonly userId: string;
    readonly requestor: boolean;
    readonly roles: readonly string[];
    readonly address?: string;
  }[];
  readonly objects: readonly {
    readonly id: string;
    readonly type: string;
    readonly name?: string;
    readonly instances?: number;
    readonly sopClasses?: readonly { readonly uid?: string; readonly instances: number }[];
  }[];
}

export interface AuditRecord {
  /** A UUID: the same message delivered twice (after a crash) is kept once. */
  readonly messageId: string;
  readonly eventTime: Date;
  /** The EventID code (110100 ...). */
  readonly eventId: string;
  readonly eventAction: string | null;
  readonly outcome: number;
  /** The requesting participant's UserID, when one is the requestor. */
  readonly userName: string | null;
  readonly patientId: string | null;
  readonly studyInstanceUid: string | null;
  readonly remoteAddress: string | null;
  readonly summary: AuditSummary;
  /** The XML of PS3.15 A.5.1. */
  readonly message: string;
}

/** The record of a message (a new message id). */
export function auditRecordOf(m: AuditMessage): AuditRecord {
  const requestor = m.participants.find((p) => p.requestor);
  const patient = m.objects.find((o) => o.idType.code === '2' && o.idType.system === 'RFC-3881');
  const study = m.objects.find((o) => o.idType.code === '110180');
  const address = m.participants.map((p) => plainAddress(p.networkAccessPoint)).find((a) => a !== undefined);
  const remote = requestor !== undefined ? plainAddress(requestor.networkAccessPoint) : address;
  return {
    messageId: randomUUID(),
    eventTime: m.dateTime,
    eventId: m.eventId.code,
    eventAction: m.action ?? null,
    outcome: m.outcome,
    userName: requestor?.userId ?? null,
    patientId: patient?.id ?? null,
    studyInstanceUid: study?.id ?? null,
    remoteAddress: remote ?? null,
    summary: {
      eventId: { code: m.eventId.code, meaning: m.eventId.meaning },
      eventTypes: m.eventTypes.map((t) => ({ code: t.code, meaning: t.meaning })),
      ...(m.action !== undefined ? { action: m.action } : {}),
      outcome: m.outcome,
      ...(m.outcomeDescription !== undefined ? { outcomeDescription: m.outcomeDescription } : {}),
      participants: m.participants.map((p) => {
        const a = plainAddress(p.networkAccessPoint);
        return {
          userId: p.userId,
          requestor: p.requestor,
          roles: p.roles.map((r) => r.meaning),
          ...(a !== undefined ? { address: a } : {}),
        };
      }),
      objects: m.objects.map((o) => {
        const classes = o.description?.sopClasses;
        return {
          id: o.id,
          type: o.idType.meaning,
          ...(o.name !== undefined ? { name: o.name } : {}),
          ...(classes !== undefined
            ? {
                instances: classes.reduce((n, c) => n + c.instances, 0),
                sopClasses: classes.map((c) => ({
                  ...(c.uid !== '' ? { uid: c.uid } : {}),
                  instances: c.instances,
                })),
              }
            : {}),
        };
      }),
    },
    message: auditMessageXml(m),
  };
}

/** What readers (`pacs audit`, the API of issue 15) ask the store for; every field narrows. */
export interface AuditQuery {
  readonly since?: Date;
  readonly until?: Date;
  readonly user?: string;
  readonly patientId?: string;
  readonly eventId?: string;
  /** Newest first, at most this many (default 100). */
  readonly limit?: number;
}

/** Where records are kept and read (archive/security/audit-store.ts implements it on the index). */
export interface AuditRecordStore {
  /** Adds records; one whose messageId is already kept is skipped (a redelivery after a crash). */
  add(records: readonly AuditRecord[]): Promise<void>;
  query(query: AuditQuery): Promise<AuditRecord[]>;
}
