/**
 * CORS (Fetch standard, "CORS protocol"). Allowed origins come from the config; none by default,
 * so a browser page on another origin gets no access until the operator names it. `*` allows any
 * origin but never together with credentials (browsers refuse `Access-Control-Allow-Origin: *`
 * on a credentialed request, so the origin is echoed instead, and only a named one). Preflights
 * are answered here, before routing and authorization (they carry no credentials), with a Max-Age
 * so a viewer does not repeat them for every frame.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';

export interface CorsOptions {
  /** Exact origins (`https://viewer.example.org`), or `*` for any origin (without credentials). */
  readonly origins: readonly string[];
  /** Allow cookies and Authorization on cross-origin requests (named origins only). */
  readonly credentials: boolean;
  /** How long a browser may cache a preflight answer. */
  readonly maxAgeSeconds: number;
}

export const NO_CORS: CorsOptions = { origins: [], credentials: false, maxAgeSeconds: 600 };

/** Headers a page may read from our answers (PS3.18 uses Warning, Location and Content-Location). */
const EXPOSED = [
  'Warning',
  'Location',
  'Content-Location',
  'Content-Type',
  'Content-Length',
  'Content-Range',
  'Content-Encoding',
  'Accept-Ranges',
  'ETag',
].join(', ');

const METHODS = 'GET, HEAD, POST, PUT, DELETE, OPTIONS';

/** What to answer in Access-Control-Allow-Origin for `origin`, or undefined when it is not allowed. */
export function allowedOrigin(options: CorsOptions, origin: string): string | undefined {
  if (options.origins.includes(origin)) return origin;
  if (options.origins.includes('*')) return options.credentials ? undefined : '*';
  return undefined;
}

/**
 * Sets the CORS headers of an answer. Returns true when the request was a preflight and has been
 * answered (the caller stops there).
 */
export function applyCors(options: CorsOptions, request: FastifyRequest, reply: FastifyReply): boolean {
  const origin = request.headers.origin;
  if (typeof origin !== 'string' || options.origins.length === 0) return false;
  const allow = allowedOrigin(options, origin);
  reply.header('Vary', 'Origin');
  const preflight =
    request.method === 'OPTIONS' && typeof request.headers['access-control-request-method'] === 'string';
  if (allow === undefined) {
    if (preflight) {
      // No CORS headers: the browser refuses the real request. 204 says nothing more to others.
      void reply.code(204).send();
      return true;
    }
    return false;
  }
  reply.header('Access-Control-Allow-Origin', allow);
  if (options.credentials && allow !== '*') reply.header('Access-Control-Allow-Credentials', 'true');
  if (!preflight) {
    reply.header('Access-Control-Expose-Headers', EXPOSED);
    return false;
  }
  const asked = request.headers['access-control-request-headers'];
  reply.header('Access-Control-Allow-Methods', METHODS);
  if (typeof asked === 'string' && asked.trim() !== '') {
    reply.header('Access-Control-Allow-Headers', asked);
    reply.header('Vary', 'Origin, Access-Control-Request-Headers');
  }
  reply.header('Access-Control-Max-Age', String(options.maxAgeSeconds));
  void reply.code(204).send();
  return true;
}
