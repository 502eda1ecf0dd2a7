/**
 * TCP and TLS transport for the Upper Layer (PS3.8 9.1; PS3.15 B.1 for TLS). Thin wrappers over
 * node:net and node:tls: Nagle off (a PDU is written whole), TLS 1.2 or later, optional client
 * certificate verification against a CA.
 */
import net from 'node:net';
import tls from 'node:tls';
import { err, ok, type Result } from '../core/result.js';
import { NetworkError } from './errors.js';

type Pem = string | Buffer | ReadonlyArray<string | Buffer>;

/**
 * The write high-water mark of our TCP sockets (Node's default is 16 KiB). P-DATA-TFs written in
 * one tick leave in one writev (upper-layer.ts); a socket that reports congestion after 16 KiB
 * cuts a 256 KiB read of a file into 16 system calls of one PDU each, and the loopback and NIC
 * paths cost per call. Senders that reuse buffers (storage/scu.ts ChunkReader) count on no socket
 * holding more than this (plus one PDU) unwritten. Only the sockets we connect take it (pacs store,
 * C-MOVE sub-associations): accepted sockets keep Node's 16 KiB, because the larger mark let a
 * peer that floods requests without reading the answers grow our memory past its bound
 * (test/network/bad-peers.test.ts, 'flow control').
 */
export const SEND_HIGH_WATER_MARK = 256 * 1024;

/**
 * Protocol versions and cipher suites of a TLS endpoint. security/tls-policy.ts holds the one
 * policy (BCP 195, PS3.15 B.12); the server and the clients pass it in (network/ does not import
 * security/). Without it: TLS 1.2 minimum and Node's default ciphers.
 */
export interface TlsParameters {
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
  readonly maxVersion: 'TLSv1.2' | 'TLSv1.3';
  /** OpenSSL cipher list: TLS 1.2 suites, then TLS_* TLS 1.3 suites. */
  readonly ciphers: string;
  readonly ecdhCurve: string;
  /** The server's order of ciphers wins over the client's. */
  readonly honorCipherOrder: boolean;
}

export interface TlsServerOptions {
  /** Versions and ciphers (security/tls-policy.ts TLS_POLICY). */
  readonly parameters?: TlsParameters;
  readonly cert: Pem;
  readonly key: Pem;
  /** CA certificates that client certificates are verified against. */
  readonly ca?: Pem;
  /** Refuse clients without a certificate signed by `ca` (default: true when `ca` is given). */
  readonly requireClientCertificate?: boolean;
  /** Default TLSv1.2. */
  readonly minVersion?: 'TLSv1.2' | 'TLSv1.3';
}

export interface TlsClientOptions {
  /** Versions and ciphers (security/tls-policy.ts TLS_POLICY). */
  readonly parameters?: TlsParameters;
  /** CA certificates the server certificate is verified against (default: Node's bundled roots). */
  readonly ca?: Pem;
  /** Our client certificate and key, for servers that ask for one. */
  readonly cert?: Pem;
  readonly key?: Pem;
  /** Name checked against the server certificate (default: the host). */
  readonly servername?: string;
  /** Default true. */
  readonly rejectUnauthorized?: boolean;
  readonly minVersion?: 'TLSv1.2' | 'TLSv1.3';
}

function mutable(pem: Pem | undefined): string | Buffer | Array<string | Buffer> | undefined {
  if (pem === undefined || typeof pem === 'string' || Buffer.isBuffer(pem))
    return pem as string | Buffer | undefined;
  return [...(pem as ReadonlyArray<string | Buffer>)];
}

/** A listening server handing each connected (and, for TLS, handshaken) socket to `onSocket`. */
export function createTransportServer(
  onSocket: (socket: net.Socket) => void,
  tlsOptions?: TlsServerOptions,
  onTlsError?: (error: Error, socket: net.Socket) => void,
): net.Server {
  const accept = (socket: net.Socket): void => {
    socket.setNoDelay(true);
    onSocket(socket);
  };
  if (tlsOptions === undefined) return net.createServer({ noDelay: true }, accept);
  const requireCert = tlsOptions.requireClientCertificate ?? tlsOptions.ca !== undefined;
  const server = tls.createServer(
    {
      cert: mutable(tlsOptions.cert),
      key: mutable(tlsOptions.key),
      ca: mutable(tlsOptions.ca),
      requestCert: requireCert,
      rejectUnauthorized: requireCert,
      minVersion: tlsOptions.minVersion ?? 'TLSv1.2',
      ...tlsOptions.parameters,
    },
    accept,
  );
  // A failed handshake never reaches the Upper Layer; report it and drop the socket.
  server.on('tlsClientError', (error, socket) => {
    onTlsError?.(error, socket);
    socket.destroy();
  });
  return server;
}

export interface ConnectOptions {
  readonly host: string;
  readonly port: number;
  readonly tls?: TlsClientOptions;
  /** Default 30 s. */
  readonly timeoutMs?: number;
}

/** Opens a TCP (or TLS) connection; resolves once it is usable (TLS handshake done). */
export function openTransport(options: ConnectOptions): Promise<Result<net.Socket, NetworkError>> {
  return new Promise((resolve) => {
    const t = options.tls;
    const socket =
      t === undefined
        ? net.connect({
            host: options.host,
            port: options.port,
            noDelay: true,
            // A net.Socket is a Duplex and takes the stream option; @types/node leaves it out.
            writableHighWaterMark: SEND_HIGH_WATER_MARK,
          } as net.NetConnectOpts)
        : tls.connect({
            host: options.host,
            port: options.port,
            ca: mutable(t.ca),
            cert: mutable(t.cert),
            key: mutable(t.key),
            servername: t.servername ?? (net.isIP(options.host) === 0 ? options.host : undefined),
            rejectUnauthorized: t.rejectUnauthorized ?? true,
            minVersion: t.minVersion ?? 'TLSv1.2',
            ...t.parameters,
          });
    const readyEvent = t === undefined ? 'connect' : 'secureConnect';
    const where = `${options.host}:${options.port}`;
    const timer = setTimeout(() => {
      finish(
        err(
          new NetworkError(
            'ERR_TIMEOUT',
            `connection to ${where} timed out after ${options.timeoutMs ?? 30000} ms`,
          ),
        ),
      );
      socket.destroy();
    }, options.timeoutMs ?? 30000);
    const onError = (e: Error): void => {
      finish(err(new NetworkError('ERR_CONNECT', `cannot connect to ${where}: ${e.message}`, { cause: e })));
    };
    const onReady = (): void => {
      socket.setNoDelay(true);
      finish(ok(socket));
    };
    function finish(result: Result<net.Socket, NetworkError>): void {
      clearTimeout(timer);
      socket.off('error', onError);
      socket.off(readyEvent, onReady);
      resolve(result);
    }
    socket.once('error', onError);
    socket.once(readyEvent, onReady);
  });
}
