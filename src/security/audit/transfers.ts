/**
 * Per-object transfer events ('object-received' for each C-STORE or STOW-RS instance,
 * 'object-sent' for each C-STORE sub-operation) become one DICOM Instances Transferred message per
 * study, per peer and per outcome (PS3.15 A.5.3.4 describes a study's instances with SOPClass counts;
 * A.5.2: successes and failures are never mixed in one message), as ATNA repositories expect.
 *
 * An aggregate is written when the association it came on ends (the 'association-closed' event of
 * the same peer), when nothing was added to it for `idleMs`, or at the latest `maxDelayMs` after
 * its first instance (a long association still audits what it moved), or when it holds
 * `maxInstances`; and at close(). So a message is never later than `maxDelayMs`.
 */
import type { EventOf } from '../../core/events.js';
import type { ActionCode, AuditMessage, Outcome } from './message.js';
import { type AuditSource, beginTransferring, instancesTransferred, type Transfer } from './messages.js';

export interface TransferAggregationOptions {
  /** Written after this long without a new instance (default 2 s). */
  readonly idleMs?: number;
  /** Written at the latest this long after its first instance (default 30 s). */
  readonly maxDelayMs?: number;
  /** Written when it holds this many instances (default 10,000). */
  readonly maxInstances?: number;
}

interface Pending {
  /** The transfer without its outcome: one Begin Transferring for all its aggregates. */
  readonly begin: string;
  readonly transfer: Omit<Transfer, 'sopClasses'>;
  readonly classes: Map<string, number>;
  count: number;
  failures: number;
  idle: NodeJS.Timeout | undefined;
  readonly max: NodeJS.Timeout;
}

/** DIMSE success and warning statuses (PS3.7 C: 0000, 0001, Bxxx) count as transferred. */
const succeeded = (status: number): boolean => status === 0 || status === 1 || (status & 0xf000) === 0xb000;

export class TransferAggregator {
  private readonly pending = new Map<string, Pending>();
  /** Begun transfers (Pending.begin) with how many aggregates of theirs are pending. */
  private readonly begun = new Map<string, number>();
  private readonly idleMs: number;
  private readonly maxDelayMs: number;
  private readonly maxInstances: number;

  constructor(
    private readonly source: AuditSource,
    private readonly write: (m: AuditMessage) => void,
    options: TransferAggregationOptions = {},
  ) {
    this.idleMs = options.idleMs ?? 2_000;
    this.maxDelayMs = options.maxDelayMs ?? 30_000;
    this.maxInstances = options.maxInstances ?? 10_000;
  }

  received(e: EventOf<'object-received'>): void {
    const action: ActionCode = e.outcome === 'replaced' ? 'U' : 'C';
    const peer = e.user ?? e.source ?? 'unknown';
    this.add(
      ['in', e.via, peer, e.remoteAddress ?? '', e.studyInstanceUid, action].join('\u0000'),
      {
        direction: 'in',
        via: e.via,
        peer,
        ...(e.remoteAddress !== undefined ? { peerAddress: e.remoteAddress } : {}),
        ...(e.source !== null && e.source !== peer ? { requestor: e.source } : {}),
        studyInstanceUid: e.studyInstanceUid,
        ...(e.patientId !== '' ? { patientId: e.patientId } : {}),
        ...(e.patientName !== undefined ? { patientName: e.patientName } : {}),
        action,
        outcome: 0,
      },
      e.sopClassUid,
      e.source ?? peer,
      true,
    );
  }

  sent(e: EventOf<'object-sent'>): void {
    const ok = succeeded(e.status);
    const outcome: Outcome = ok ? 0 : 4;
    const study = e.studyInstanceUid ?? 'unknown';
    this.add(
      ['out', e.via, e.destination, e.user ?? '', study, String(outcome)].join('\u0000'),
      {
        direction: 'out',
        via: e.via,
        peer: e.destination,
        ...(e.user !== undefined ? { requestor: e.user } : {}),
        studyInstanceUid: study,
        ...(e.patientId !== undefined && e.patientId !== '' ? { patientId: e.patientId } : {}),
        ...(e.patientName !== undefined ? { patientName: e.patientName } : {}),
        action: 'R',
        outcome,
      },
      e.sopClassUid ?? '',
      e.destination,
      ok,
    );
  }

  /** The association of a peer ended: what it transferred is complete. */
  associationClosed(e: EventOf<'association-closed'>): void {
    for (const key of [...this.pending.keys()]) {
      const ae = peerAe(key);
      if (ae === e.callingAeTitle || ae === e.calledAeTitle) this.flush(key);
    }
  }

  /** Writes every aggregate now (at shutdown). */
  flushAll(): void {
    for (const key of [...this.pending.keys()]) this.flush(key);
  }

  private add(
    key: string,
    transfer: Omit<Transfer, 'sopClasses'>,
    sopClassUid: string,
    ae: string,
    ok: boolean,
  ): void {
    const fullKey = `${key}\u0000${ae}`;
    let p = this.pending.get(fullKey);
    if (p === undefined) {
      const max = setTimeout(() => this.flush(fullKey), this.maxDelayMs);
      max.unref();
      const begin = [
        transfer.direction,
        transfer.via,
        transfer.peer,
        transfer.requestor ?? '',
        transfer.studyInstanceUid,
      ].join('\u0000');
      p = { begin, transfer, classes: new Map(), count: 0, failures: 0, idle: undefined, max };
      this.pending.set(fullKey, p);
      const open = this.begun.get(begin) ?? 0;
      this.begun.set(begin, open + 1);
      // A.5.3.2: a retrieve (C-MOVE, C-GET) announces the study it starts sending, once.
      if (open === 0 && transfer.direction === 'out' && transfer.via !== 'C-STORE')
        this.write(beginTransferring(this.source, { ...transfer, sopClasses: [] }));
    }
    p.classes.set(sopClassUid, (p.classes.get(sopClassUid) ?? 0) + 1);
    p.count++;
    if (!ok) p.failures++;
    if (p.idle !== undefined) clearTimeout(p.idle);
    if (p.count >= this.maxInstances) {
      this.flush(fullKey);
      return;
    }
    p.idle = setTimeout(() => this.flush(fullKey), this.idleMs);
    p.idle.unref();
  }

  private flush(key: string): void {
    const p = this.pending.get(key);
    if (p === undefined) return;
    this.pending.delete(key);
    const open = (this.begun.get(p.begin) ?? 1) - 1;
    if (open === 0) this.begun.delete(p.begin);
    else this.begun.set(p.begin, open);
    clearTimeout(p.max);
    if (p.idle !== undefined) clearTimeout(p.idle);
    const sopClasses = [...p.classes].map(([uid, instances]) => ({ uid, instances }));
    this.write(
      instancesTransferred(this.source, {
        ...p.transfer,
        sopClasses,
        ...(p.failures > 0
          ? { outcomeDescription: `${p.transfer.via}: ${p.failures} instance(s) failed` }
          : {}),
      }),
    );
  }
}

/** The AE title the key was filed under (its last part). */
function peerAe(key: string): string {
  return key.slice(key.lastIndexOf('\u0000') + 1);
}
