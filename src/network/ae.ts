/**
 * The library API: an application entity that listens (SCP) or connects (SCU), with services
 * registered by SOP class. A few lines write an SCP or an SCU:
 *
 *   const ae = new ApplicationEntity({ aeTitle: 'PACS' }).addService(verificationService());
 *   const server = await ae.listen({ port: 11112 });
 *
 *   const assoc = unwrap(await new ApplicationEntity({ aeTitle: 'ME' }).connect({
 *     host, port, calledAeTitle: 'PACS', contexts: [{ abstractSyntax: UID.Verification, transferSyntaxes: [IMPLICIT_VR_LE] }] }));
 *   await echo(assoc);
 *   await assoc.release();
 */

import type { AddressInfo } from 'node:net';
import type { EventBus, EventOf } from '../core/events.js';
import { err, ok, type Result } from '../core/result.js';
import { AssociationAcceptor } from './acceptor.js';
import type { Association, AssociationTimeouts, CloseInfo } from './association.js';
import { type AuthorizeHook, DimseAssociation, type ServiceLookup } from './dimse.js';
import type { NetworkError } from './errors.js';
import { type NetworkLogger, silentLogger } from './logger.js';
import type {
  AllowedCaller,
  NegotiationPolicy,
  ProposedPresentationContext,
  SupportedAbstractSyntax,
} from './negotiation.js';
import { requestAssociation } from './requestor.js';
import type { DimseService } from './service.js';
import type { TlsClientOptions, TlsServerOptions } from './transport.js';

export interface AeOptions {
  readonly aeTitle: string;
  /** Largest P-DATA-TF we receive (our maximum length). Default 256 KiB. */
  readonly maxPduLength?: number;
  readonly logger?: NetworkLogger;
  readonly timeouts?: AssociationTimeouts;
  /** Longest wait for a response to a request we send (ms); default none. */
  readonly responseTimeoutMs?: number;
  /** Where associations and requests are reported (core/events.ts); default: nowhere. */
  readonly events?: EventBus;
}

export interface ListenOptions {
  readonly port: number;
  readonly host?: string;
  readonly tls?: TlsServerOptions;
  /** Live associations beyond which new ones are rejected (transient, local limit exceeded). */
  readonly maxAssociations?: number;
  /** Accept any called AE title. */
  readonly promiscuous?: boolean;
  /** When given, only these calling AE titles (optionally from one host) may associate. */
  readonly allowedCallers?: readonly AllowedCaller[];
  /** Admits each requestor and says who it is (NegotiationPolicy.admit). */
  readonly admit?: NegotiationPolicy['admit'];
  /** Asked before every request a peer sends is handled (DimseOptions.authorize). */
  readonly authorize?: AuthorizeHook;
}

export interface ConnectOptions {
  readonly host: string;
  readonly port: number;
  readonly calledAeTitle: string;
  readonly contexts: readonly ProposedPresentationContext[];
  readonly tls?: TlsClientOptions;
}

/** What the server reports when an association ends (one log line per association). */
export interface AssociationSummary {
  readonly callingAeTitle: string;
  readonly calledAeTitle: string;
  readonly remoteAddress: string | undefined;
  readonly contexts: readonly string[];
  readonly durationMs: number;
  readonly outcome: 'released' | 'aborted';
  readonly requests: number;
  readonly failures: number;
  readonly bytesReceived: number;
}

export const DEFAULT_AE_MAX_PDU_LENGTH = 256 * 1024;

export class ApplicationEntity implements ServiceLookup {
  readonly aeTitle: string;
  readonly maxPduLength: number;
  private readonly log: NetworkLogger;
  private readonly timeouts: AssociationTimeouts | undefined;
  private readonly responseTimeoutMs: number | undefined;
  private readonly events: EventBus | undefined;
  private readonly services: DimseService[] = [];
  private readonly bySopClass = new Map<string, DimseService>();

  constructor(options: AeOptions) {
    this.aeTitle = options.aeTitle;
    this.maxPduLength = options.maxPduLength ?? DEFAULT_AE_MAX_PDU_LENGTH;
    this.log = options.logger ?? silentLogger;
    this.timeouts = options.timeouts;
    this.responseTimeoutMs = options.responseTimeoutMs;
    this.events = options.events;
  }

  /** Registers a service for its SOP classes (a later registration of a SOP class wins). */
  addService(service: DimseService): this {
    this.services.push(service);
    for (const c of service.sopClasses) this.bySopClass.set(c.uid, service);
    return this;
  }

  serviceFor(sopClassUid: string): DimseService | undefined {
    return this.bySopClass.get(sopClassUid);
  }

  get registeredServices(): readonly DimseService[] {
    return this.services;
  }

  /** The acceptor's negotiation policy, built from the registered services. */
  policy(options: Omit<ListenOptions, 'port' | 'host' | 'tls' | 'authorize'> = {}): NegotiationPolicy {
    const abstractSyntaxes: SupportedAbstractSyntax[] = [];
    for (const [uid, service] of this.bySopClass) {
      const sc = service.sopClasses.find((c) => c.uid === uid);
      const negotiate = service.extendedNegotiation;
      abstractSyntaxes.push({
        abstractSyntax: uid,
        transferSyntaxes: sc?.transferSyntaxes ?? service.transferSyntaxes,
        ...(service.requestorRoles ? { requestorRoles: service.requestorRoles } : {}),
        ...(negotiate ? { extendedNegotiation: (requested: Uint8Array) => negotiate(uid, requested) } : {}),
      });
    }
    return {
      aeTitle: this.aeTitle,
      maxPduLength: this.maxPduLength,
      abstractSyntaxes,
      ...(options.promiscuous !== undefined ? { promiscuous: options.promiscuous } : {}),
      ...(options.allowedCallers?.length ? { allowedCallers: options.allowedCallers } : {}),
      ...(options.maxAssociations !== undefined ? { maxAssociations: options.maxAssociations } : {}),
      ...(options.admit !== undefined ? { admit: options.admit } : {}),
    };
  }

  /** Listens for associations; each is served by the registered services until it ends. */
  async listen(options: ListenOptions): Promise<DicomServer> {
    const acceptor = new AssociationAcceptor({
      policy: this.policy(options),
      logger: this.log,
      ...(options.tls ? { tls: options.tls } : {}),
      ...(this.timeouts ? { timeouts: this.timeouts } : {}),
    });
    const server = new DicomServer(acceptor, this.log, this.events, options.authorize);
    acceptor.on('association', (association) => server.serve(association, this));
    acceptor.on('failed', (error, info) => {
      server.emitFailed(error, info.remoteAddress);
    });
    const address = await acceptor.listen(options.port, options.host);
    server.address = address;
    return server;
  }

  /** Opens an association as SCU; the registered services answer requests the peer sends back (C-GET). */
  async connect(options: ConnectOptions): Promise<Result<DimseAssociation, NetworkError>> {
    const result = await requestAssociation({
      host: options.host,
      port: options.port,
      callingAeTitle: this.aeTitle,
      calledAeTitle: options.calledAeTitle,
      presentationContexts: options.contexts,
      maxPduLength: this.maxPduLength,
      logger: this.log,
      ...(options.tls ? { tls: options.tls } : {}),
      ...(this.timeouts ? { timeouts: this.timeouts } : {}),
    });
    if (!result.ok) return err(result.error);
    const events = this.events;
    const dimse = new DimseAssociation(result.value, {
      services: this,
      log: this.log,
      ...(this.responseTimeoutMs !== undefined ? { responseTimeoutMs: this.responseTimeoutMs } : {}),
      ...(events !== undefined ? { events } : {}),
    });
    const run = dimse.run();
    if (events !== undefined) {
      const started = Date.now();
      events.emit(openedEvent(result.value));
      void run.then(async () => events.emit(closedEvent(dimse, await result.value.closed, started)));
    }
    return ok(dimse);
  }
}

/** A listening acceptor and the associations it serves. */
export class DicomServer {
  address: AddressInfo | undefined;
  /** Called with a summary when an association ends. */
  onAssociationEnd: ((summary: AssociationSummary) => void) | undefined;
  /** Called when a connection ends before an association was established (rejected, bad PDU...). */
  onFailedAssociation: ((error: NetworkError, remoteAddress: string | undefined) => void) | undefined;
  private readonly live = new Set<DimseAssociation>();

  constructor(
    private readonly acceptor: AssociationAcceptor,
    private readonly log: NetworkLogger,
    private readonly events: EventBus | undefined = undefined,
    private readonly authorize: AuthorizeHook | undefined = undefined,
  ) {}

  get activeAssociations(): number {
    return this.acceptor.activeAssociations;
  }

  /** @internal */
  serve(association: Association, services: ServiceLookup): void {
    const started = Date.now();
    const events = this.events;
    const dimse = new DimseAssociation(association, {
      services,
      log: this.log,
      ...(events !== undefined ? { events } : {}),
      ...(this.authorize !== undefined ? { authorize: this.authorize } : {}),
    });
    this.live.add(dimse);
    events?.emit(openedEvent(association));
    void dimse.run().finally(async () => {
      this.live.delete(dimse);
      const info = await association.closed;
      events?.emit(closedEvent(dimse, info, started));
      const summary: AssociationSummary = {
        callingAeTitle: association.callingAeTitle,
        calledAeTitle: association.calledAeTitle,
        remoteAddress: association.remoteAddress,
        contexts: association.presentationContexts.map((c) => c.abstractSyntax),
        durationMs: Date.now() - started,
        outcome: info.kind,
        requests: dimse.stats.requestsReceived,
        failures: dimse.stats.failures,
        bytesReceived: dimse.stats.bytesReceived,
      };
      // A listener's bug must not become an unhandled rejection, which would end the process.
      try {
        this.onAssociationEnd?.(summary);
      } catch (error) {
        this.log.error(
          { err: error instanceof Error ? error.stack : String(error) },
          'onAssociationEnd failed',
        );
      }
    });
  }

  /** @internal */
  emitFailed(error: NetworkError, remoteAddress: string | undefined): void {
    this.events?.emit({
      type: 'association-failed',
      remoteAddress,
      reason: error.message,
      kind: failureKind(error),
    });
    try {
      this.onFailedAssociation?.(error, remoteAddress);
    } catch (e) {
      this.log.error({ err: e instanceof Error ? e.stack : String(e) }, 'onFailedAssociation failed');
    }
  }

  /**
   * Stops accepting; running associations get `graceMs` to finish, then are aborted.
   * Resolves when every association is closed.
   */
  async close(graceMs = 30_000): Promise<void> {
    const closing = this.acceptor.close();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), graceMs);
    });
    const outcome = await Promise.race([closing.then(() => 'closed' as const), timeout]);
    if (timer) clearTimeout(timer);
    if (outcome === 'timeout') {
      this.log.warn(
        { live: this.live.size },
        `associations still running after ${graceMs} ms: aborting them`,
      );
      await this.acceptor.close({ abort: true });
    }
  }
}

function openedEvent(association: Association): EventOf<'association-opened'> {
  return {
    type: 'association-opened',
    callingAeTitle: association.callingAeTitle,
    calledAeTitle: association.calledAeTitle,
    remoteAddress: association.remoteAddress,
    role: association.role,
  };
}

/** The figures of AssociationSummary; `requests` counts what we served as acceptor, what we sent as requestor. */
function closedEvent(
  dimse: DimseAssociation,
  info: CloseInfo,
  started: number,
): EventOf<'association-closed'> {
  const association = dimse.association;
  const { stats } = dimse;
  return {
    type: 'association-closed',
    callingAeTitle: association.callingAeTitle,
    calledAeTitle: association.calledAeTitle,
    remoteAddress: association.remoteAddress,
    role: association.role,
    outcome: info.kind,
    durationMs: Date.now() - started,
    requests: association.role === 'acceptor' ? stats.requestsReceived : stats.requestsSent,
    failures: stats.failures,
    bytesReceived: stats.bytesReceived,
  };
}

/** What kind of failure ended a connection before its association was established. */
export function failureKind(error: NetworkError): EventOf<'association-failed'>['kind'] {
  switch (error.code) {
    case 'ERR_ASSOCIATION_REJECTED':
      // PS3.8 9.3.4: source 3 (service-provider, presentation), reason 2 local-limit-exceeded.
      return error.reject?.source === 3 && error.reject.reason === 2 ? 'limit' : 'rejected';
    case 'ERR_TIMEOUT':
      return 'timeout';
    case 'ERR_PDU_INVALID':
    case 'ERR_PDU_TOO_LARGE':
    case 'ERR_PDU_UNRECOGNIZED':
      return 'protocol';
    default:
      // A provider abort with a reason (PS3.8 9.3.8: unexpected PDU, invalid parameter...) is a protocol error.
      return error.abort?.initiator === 'provider' && error.abort.reason !== 0 ? 'protocol' : 'closed';
  }
}
