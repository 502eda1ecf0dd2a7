/**
 * The server's HTTP side (node:http): `/healthz` for load balancers and orchestrators (200 with
 * `{"status":"ok"}`, or 503 with `{"status":"unavailable","reason":...}`) and `/metrics` in
 * the Prometheus text format. Only GET and HEAD; anything else is 404 or 405. It answers from
 * callbacks, so it knows nothing of DICOM or of the archive.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PROMETHEUS_CONTENT_TYPE } from './metrics.js';

export type HealthResult = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export interface HttpServerOptions {
  readonly host: string;
  readonly port: number;
  readonly health: () => Promise<HealthResult>;
  readonly metrics: () => Promise<string>;
  /** A health check that takes longer than this answers 503 (default 5 s). */
  readonly healthTimeoutMs?: number;
  readonly onError?: (error: unknown) => void;
}

export interface HttpServerHandle {
  readonly port: number;
  close(): Promise<void>;
}

export async function startHttpServer(options: HttpServerOptions): Promise<HttpServerHandle> {
  const timeoutMs = options.healthTimeoutMs ?? 5000;
  const server = http.createServer((req, res) => {
    void answer(req, res).catch((e: unknown) => {
      options.onError?.(e);
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else res.destroy();
    });
  });

  const answer = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/healthz' && path !== '/metrics') {
      send(res, 404, 'text/plain; charset=utf-8', 'not found: try /healthz or /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
      return;
    }
    if (path === '/metrics') {
      send(res, 200, PROMETHEUS_CONTENT_TYPE, await options.metrics(), req.method === 'HEAD');
      return;
    }
    const result = await withTimeout(options.health(), timeoutMs);
    const body = result.ok ? { status: 'ok' } : { status: 'unavailable', reason: result.reason };
    send(res, result.ok ? 200 : 503, 'application/json', `${JSON.stringify(body)}\n`, req.method === 'HEAD');
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // Load balancers keep connections alive; they must not hold a shutdown.
  server.keepAliveTimeout = 5000;
  const address = server.address() as AddressInfo;
  return {
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function send(res: http.ServerResponse, status: number, type: string, body: string, headOnly = false): void {
  res.writeHead(status, {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
  });
  res.end(headOnly ? undefined : body);
}

async function withTimeout(check: Promise<HealthResult>, ms: number): Promise<HealthResult> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<HealthResult>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, reason: `health check took longer than ${ms} ms` }), ms);
  });
  try {
    return await Promise.race([
      check.catch(
        (e: unknown): HealthResult => ({ ok: false, reason: e instanceof Error ? e.message : String(e) }),
      ),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
