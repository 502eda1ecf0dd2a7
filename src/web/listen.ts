/**
 * Binds the web application to a port. Without a certificate the port speaks HTTP/1.1 and h2c
 * (HTTP/2 with prior knowledge: a connection that opens with the HTTP/2 preface is handed to an
 * HTTP/2 server, every other one to the HTTP/1.1 server), so a viewer's hundreds of frame requests
 * share one connection instead of six. With a certificate it is HTTPS with ALPN: h2 or http/1.1.
 */

import { readFile } from 'node:fs/promises';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import type { FastifyInstance, FastifyServerFactory } from 'fastify';
import { TLS_POLICY } from '../security/tls-policy.js';
import { createWebApp, type WebAppOptions } from './app.js';

export interface WebTlsOptions {
  readonly cert: string;
  readonly key: string;
  /** Client certificates are not asked for on the HTTP port (authentication is the security layer's). */
  readonly ca?: string;
}

export interface WebServerOptions extends Omit<WebAppOptions, 'serverFactory' | 'http2'> {
  readonly host: string;
  readonly port: number;
  /** File paths of the certificate and key (PEM): HTTPS with h2. */
  readonly tls?: WebTlsOptions;
}

export interface WebServerHandle {
  readonly port: number;
  readonly app: FastifyInstance;
  /** Stops accepting, ends idle keep-alive connections, waits for running requests, then closes. */
  close(): Promise<void>;
}

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
/** A connection that sends nothing for this long is closed (as http's headersTimeout would). */
const FIRST_BYTE_TIMEOUT_MS = 60_000;

/** HTTP/1.1 and h2c on one plain port: the first bytes of each connection decide. */
const plainServerFactory: FastifyServerFactory = (handler) => {
  const h1 = http.createServer(handler as http.RequestListener);
  // Viewers keep one connection for many requests; longer than common proxies' 60 s.
  h1.keepAliveTimeout = 65_000;
  const h2 = http2.createServer(
    {},
    handler as unknown as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void,
  );
  const h1Listeners = h1.listeners('connection') as Array<(socket: Socket) => void>;
  h1.removeAllListeners('connection');
  // Connections that have not sent a byte yet (browsers open spare ones) belong to neither server:
  // they are ended here when the peer leaves, stays silent too long, or the server closes.
  const waiting = new Set<Socket>();
  const close = h1.close.bind(h1);
  h1.close = ((callback?: (err?: Error) => void) => {
    for (const socket of waiting) socket.destroy();
    return close(callback);
  }) as typeof h1.close;
  h1.on('connection', (socket: Socket) => {
    waiting.add(socket);
    const leave = () => socket.destroy();
    socket.once('end', leave);
    socket.once('close', () => waiting.delete(socket));
    socket.setTimeout(FIRST_BYTE_TIMEOUT_MS, leave);
    socket.once('data', (first: Buffer) => {
      waiting.delete(socket);
      socket.off('end', leave);
      socket.setTimeout(0);
      socket.off('timeout', leave);
      socket.pause();
      socket.unshift(first);
      const isH2 =
        first.length >= 3 &&
        first
          .subarray(0, Math.min(first.length, H2_PREFACE.length))
          .equals(H2_PREFACE.subarray(0, Math.min(first.length, H2_PREFACE.length)));
      if (isH2) h2.emit('connection', socket);
      else for (const l of h1Listeners) l.call(h1, socket);
      process.nextTick(() => socket.resume());
    });
  });
  h1.on('close', () => h2.close());
  return h1;
};

export async function startWebServer(options: WebServerOptions): Promise<WebServerHandle> {
  let app: FastifyInstance;
  if (options.tls !== undefined) {
    const [cert, key, ca] = await Promise.all([
      readFile(options.tls.cert),
      readFile(options.tls.key),
      options.tls.ca !== undefined ? readFile(options.tls.ca) : Promise.resolve(undefined),
    ]);
    const serverFactory: FastifyServerFactory = (handler) =>
      http2.createSecureServer(
        { ...TLS_POLICY, cert, key, ...(ca !== undefined ? { ca } : {}), allowHTTP1: true },
        handler as unknown as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void,
      ) as unknown as http.Server;
    app = await createWebApp({ ...options, serverFactory, http2: true });
  } else {
    app = await createWebApp({ ...options, serverFactory: plainServerFactory });
  }
  await app.listen({ host: options.host, port: options.port });
  const address = app.server.address() as AddressInfo;
  return {
    port: address.port,
    app,
    close: () => app.close(),
  };
}
