/**
 * The acceptor side (PS3.8 7.1.1, 9.2 AE-5..AE-8): listens for requestors, negotiates each
 * A-ASSOCIATE-RQ under the policy (negotiation.ts), and emits an Association once accepted. The
 * association limit counts established associations only (PS3.8 9.3.4, reject reason 2).
 */
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { TLSSocket } from 'node:tls';
import { Association } from './association.js';
import type { NetworkError } from './errors.js';
import { type NetworkLogger, silentLogger } from './logger.js';
import { applyAdmission, type NegotiationPolicy, negotiateAsAcceptor, normalizeHost } from './negotiation.js';
import { AbortReason, AbortSource } from './pdu.js';
import { createTransportServer, type TlsServerOptions } from './transport.js';
import { UpperLayer, type UpperLayerOptions } from './upper-layer.js';

export interface AcceptorOptions extends UpperLayerOptions {
  readonly policy: NegotiationPolicy;
  readonly tls?: TlsServerOptions;
}

export interface AcceptorEventMap {
  /** A new established association. */
  association: [Association];
  /** A connection that ended before an association was established (rejected, aborted, bad PDU...). */
  failed: [NetworkError, { remoteAddress: string | undefined }];
}

/** Listens for requestors and negotiates with each under the policy. */
export class AssociationAcceptor extends EventEmitter<AcceptorEventMap> {
  private readonly live = new Set<UpperLayer>();
  /** Established associations not yet closed: what the association limit counts (PS3.8 9.3.4 reason 2). */
  private established = 0;
  private server: net.Server | undefined;
  private readonly log: NetworkLogger;

  constructor(private readonly options: AcceptorOptions) {
    super();
    this.log = options.logger ?? silentLogger;
  }

  /** Transport connections currently open (negotiating, established or closing). */
  get activeAssociations(): number {
    return this.live.size;
  }

  /** Starts listening; resolves with the bound address (port 0 picks a free port). */
  listen(port: number, host?: string): Promise<net.AddressInfo> {
    const server = createTransportServer(
      (socket) => this.handle(socket),
      this.options.tls,
      (error, socket) =>
        this.log.warn({ err: error.message, remote: socket.remoteAddress }, 'TLS handshake failed'),
    );
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve(server.address() as net.AddressInfo);
      });
    });
  }

  /** Runs the acceptor side on an already connected socket (Evt5). */
  handle(socket: net.Socket): void {
    const ul = new UpperLayer(false, this.options.policy.maxPduLength, this.options);
    this.live.add(ul);
    const remoteAddress = socket.remoteAddress;
    ul.negotiate = (rq) => {
      const policy = this.options.policy;
      const outcome = negotiateAsAcceptor(rq, policy, {
        // Only established associations count: connections still negotiating or being closed
        // after a rejection must not take the places of the associations being served.
        activeAssociations: this.established,
        peerHost: remoteAddress,
      });
      const admit = policy.admit;
      if (outcome.kind !== 'accept' || admit === undefined) return outcome;
      const verdict = admit({
        callingAeTitle: rq.callingAeTitle,
        calledAeTitle: rq.calledAeTitle,
        peerHost: normalizeHost(remoteAddress),
        peerCertificateSubject: verifiedSubject(socket),
        userIdentity: rq.userInformation.userIdentity,
      });
      return verdict instanceof Promise
        ? verdict.then((v) => applyAdmission(outcome, v, rq))
        : applyAdmission(outcome, verdict, rq);
    };
    ul.onOutcome = (outcome) => {
      if (outcome.kind === 'established') {
        this.established++;
        void ul.closed.then(() => {
          this.established--;
        });
        const association = new Association(ul);
        this.log.info(
          {
            calling: association.callingAeTitle,
            called: association.calledAeTitle,
            remote: remoteAddress,
            contexts: association.presentationContexts.length,
          },
          'association accepted',
        );
        this.emit('association', association);
      } else {
        this.emit('failed', outcome.error, { remoteAddress });
      }
    };
    void ul.closed.then(() => this.live.delete(ul));
    ul.attach(socket);
    ul.dispatch({ name: 'Evt5' });
  }

  /** Stops listening. With `abort`, also aborts every live association; resolves when all are closed. */
  async close(options: { abort?: boolean } = {}): Promise<void> {
    const server = this.server;
    this.server = undefined;
    const stopped = new Promise<void>((resolve) =>
      server === undefined ? resolve() : server.close(() => resolve()),
    );
    if (options.abort) {
      for (const ul of this.live)
        ul.abortLocally(AbortSource.ServiceUser, AbortReason.NotSpecified, 'acceptor closing');
    }
    await Promise.all([...this.live].map((ul) => ul.closed));
    await stopped;
  }
}

/** The subject of a client certificate that verified against our CA (TLS only). */
function verifiedSubject(socket: net.Socket): Readonly<Record<string, string>> | undefined {
  if (!(socket instanceof TLSSocket) || !socket.authorized) return undefined;
  const subject: unknown = socket.getPeerCertificate().subject;
  if (typeof subject !== 'object' || subject === null) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(subject)) out[k] = Array.isArray(v) ? v.join('+') : String(v);
  return out;
}
