/**
 * The HTTP application (fastify): every route of the HTTP side is registered here or by a module
 * this file registers. Three things hold for every route, in one place each:
 *
 * - Authentication and authorization: a route declares `config.operation` (policy.ts); the
 *   onRoute hook refuses to build an app with a route that does not. The onRequest hook, before
 *   anything else of the request runs (before its body is read), settles who sent it
 *   (auth/authenticate.ts: Basic, Bearer, the session cookie with its CSRF check; public
 *   operations skip it) and asks the policy once. A handler whose answer decides a second
 *   operation (WADO-URI's application/dicom is a retrieve) asks `request.authorize(operation)`.
 *   The default policy is SECURITY_POLICY: nothing but the public operations answers without
 *   authentication.
 * - Errors: a handler throws an HttpError (errors.ts) or lets an unexpected error through; the
 *   error handler answers `{"code","reason"}` with the right status and logs one line (a warning
 *   for 4xx, an error for 5xx). A failure after the headers went out ends the connection so the
 *   client sees a cut answer, never a complete-looking one.
 * - CORS: answered in the first hook (cors.ts).
 *
 * The app knows nothing of sockets: listen.ts binds it (HTTP/1.1, h2c, TLS with h2).
 */
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerFactory,
} from 'fastify';
import FindMyWay from 'find-my-way';
import { PacsError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { IdentityService } from '../security/authentication.js';
import { requirementOf } from '../security/operations.js';
import { authenticate, challenges, type SessionSettings, webAuthentication } from './auth/authenticate.js';
import { registerAuthRoutes } from './auth/routes.js';
import { applyCors, type CorsOptions, NO_CORS } from './cors.js';
import { DICOMWEB_PREFIX } from './dicomweb/context.js';
import { type DicomwebContext, registerDicomweb, wadoUriRender } from './dicomweb/routes.js';
import { registerWadoUri } from './dicomweb/wado-uri.js';
import { type ErrorBody, HttpError } from './errors.js';
import {
  type AccessPolicy,
  SECURITY_POLICY,
  type WebIdentity,
  type WebOperation,
  type WebResource,
} from './policy.js';
import { type RegisteredRoute, routeTableOf } from './route-table.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The operation the route performs, for the policy (required: see the onRoute hook). */
    operation?: WebOperation;
  }
  interface FastifyRequest {
    /** Who sent the request (set before the policy is asked). */
    identity: WebIdentity;
    /** The authenticated user's name, for events (undefined for anonymous requests). */
    user: string | undefined;
    /**
     * Asks the policy for a second operation the answer turns out to perform (WADO-URI's
     * application/dicom is a retrieve); throws the 401/403 HttpError when refused.
     */
    authorize(operation: WebOperation): Promise<void>;
  }
}

/** Archive errors answered as 500 with their own code and reason (encryption at rest, issue 14). */
const STORED_OBJECT_FAILURES: ReadonlySet<string> = new Set(['ERR_ARCHIVE_INTEGRITY', 'ERR_ARCHIVE_KEY']);

export type HealthResult = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export interface WebAppOptions {
  readonly logger: Logger;
  /** Default SECURITY_POLICY (security/policy.ts); tests of routes may pass OPEN_POLICY. */
  readonly policy?: AccessPolicy;
  /** Checks passwords, tokens and sessions; absent: no request can authenticate. */
  readonly identity?: IdentityService;
  readonly session?: SessionSettings;
  /** Default: no cross-origin access. */
  readonly cors?: CorsOptions;
  readonly health: () => Promise<HealthResult>;
  readonly metrics: () => Promise<string>;
  /** A health check that takes longer than this answers 503 (default 5 s). */
  readonly healthTimeoutMs?: number;
  /** Serves /dicom-web when given. */
  readonly dicomweb?: DicomwebContext;
  /** How listen.ts binds the app (HTTP/1.1 + h2c, or TLS); default fastify's own http server. */
  readonly serverFactory?: FastifyServerFactory;
  /** More routes, registered after the built-in ones under the same hooks (each declares its operation). */
  readonly register?: (app: FastifyInstance) => Promise<void>;
  readonly http2?: boolean;
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Builds the application with all its routes; the caller listens (listen.ts) or injects (tests). */
export async function createWebApp(options: WebAppOptions): Promise<FastifyInstance> {
  const logger = options.logger;
  const policy = options.policy ?? SECURITY_POLICY;
  const auth = webAuthentication({ identity: options.identity, session: options.session, logger });
  const cors = options.cors ?? NO_CORS;
  const app = Fastify({
    logger: false,
    // Bodies stream into their handlers (STOW-RS); JSON bodies of small requests only.
    bodyLimit: 1024 * 1024,
    // Query values stay as sent, percent-decoded once; repeated keys become arrays.
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 1024 },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    keepAliveTimeout: 65_000,
    ...(options.serverFactory !== undefined ? { serverFactory: options.serverFactory } : {}),
    ...(options.http2 === true ? { http2: true as const } : {}),
  } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance;

  app.decorateRequest('identity', null as unknown as never);
  app.decorateRequest('user', undefined);
  app.decorateRequest('authSession', undefined);
  app.decorateRequest('authorize', async function (this: FastifyRequest, operation: WebOperation) {
    const decision = await policy.authorize({
      identity: this.identity,
      operation,
      resource: resourceOf(this),
    });
    if (decision.allowed) return;
    throw new HttpError(
      decision.status,
      decision.status === 401 ? 'ERR_HTTP_UNAUTHENTICATED' : 'ERR_HTTP_FORBIDDEN',
      decision.reason,
      decision.status === 401 ? { headers: { 'www-authenticate': challenges(auth, this) } } : {},
    );
  });

  // Every path and its methods, so that a known path asked with another method answers 405 with Allow.
  const known = FindMyWay({ ignoreTrailingSlash: true, maxParamLength: 1024 });
  const routes: RegisteredRoute[] = routeTableOf(app);
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) {
      if (!known.hasRoute(method as 'GET', route.url)) known.on(method as 'GET', route.url, () => undefined);
    }
    // HEAD routes fastify adds for GET inherit the GET's config.
    const operation = operationOf(route);
    for (const method of [route.method].flat())
      routes.push({ method: String(method), url: route.url, operation });
  });

  app.addHook('onRequest', async (request, reply) => {
    if (applyCors(cors, request, reply)) return reply;
    request.identity = { kind: 'anonymous', remoteAddress: request.ip };
    const operation = request.routeOptions.config.operation;
    if (operation === undefined) return; // no route: the 404 handler answers
    // Public operations (/healthz, static files, the login form) need no credentials: none are checked.
    if (requirementOf(operation).kind !== 'public' && !(await authenticate(auth, request, reply)))
      return reply;
    await request.authorize(operation);
    // No body is inflated: a few KB of gzip can stand for gigabytes (RFC 7694: say what we take).
    const encoding = request.headers['content-encoding'];
    if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity')
      throw new HttpError(
        415,
        'ERR_HTTP_UNSUPPORTED_MEDIA_TYPE',
        `Content-Encoding ${encoding} is not supported: send the body unencoded`,
        { headers: { 'accept-encoding': 'identity' } },
      );
  });

  app.addHook('onResponse', async (request, reply) => {
    logger.debug(
      {
        method: request.method,
        url: request.url,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 10) / 10,
        remoteAddress: request.ip,
      },
      'HTTP request',
    );
  });

  app.setErrorHandler((error: FastifyError | HttpError | Error, request, reply) =>
    answerError(logger, error, request, reply),
  );
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '/';
    // OPTIONS (Capabilities) answers on every DICOMweb path: it alone does not make a path known.
    const allowed = (['GET', 'HEAD', 'POST', 'PUT', 'DELETE'] as const).filter(
      (m) => known.find(m, path) !== null,
    );
    if (allowed.length > 0) {
      const body: ErrorBody = {
        code: 'ERR_HTTP_METHOD_NOT_ALLOWED',
        reason: `${request.method} is not allowed on ${path} (allowed: ${allowed.join(', ')})`,
      };
      logger.debug({ method: request.method, url: request.url }, 'HTTP 405');
      void reply.code(405).header('Allow', allowed.join(', ')).type('application/json').send(body);
      return;
    }
    const body: ErrorBody = {
      code: 'ERR_HTTP_NOT_FOUND',
      reason: `no resource at ${request.method} ${request.url.split('?')[0]}`,
    };
    logger.debug({ method: request.method, url: request.url }, 'HTTP 404');
    void reply.code(404).type('application/json').send(body);
  });

  const timeoutMs = options.healthTimeoutMs ?? 5000;
  app.route({
    method: 'GET',
    url: '/healthz',
    config: { operation: 'system:health' },
    handler: async (_request, reply) => {
      const result = await withTimeout(options.health(), timeoutMs);
      const body = result.ok ? { status: 'ok' } : { status: 'unavailable', reason: result.reason };
      return reply
        .code(result.ok ? 200 : 503)
        .type('application/json')
        .send(body);
    },
  });
  app.route({
    method: 'GET',
    url: '/metrics',
    config: { operation: 'system:metrics' },
    handler: async (_request, reply) => reply.type(PROMETHEUS_CONTENT_TYPE).send(await options.metrics()),
  });

  await registerAuthRoutes(app, auth);

  if (options.dicomweb !== undefined) {
    const dicomweb = options.dicomweb;
    await app.register(registerDicomweb, {
      context: dicomweb,
      prefix: DICOMWEB_PREFIX,
      routes: () => routes,
    });
    // WADO-URI also at /wado, where older viewers look (PS3.18 9 names no path).
    await app.register(async (root) => registerWadoUri(root, dicomweb, { render: wadoUriRender(dicomweb) }));
  }
  if (options.register !== undefined) await app.register(options.register);
  await app.ready();
  return app;
}

/** The operation a route declares; a route without one is a bug that stops the app from building. */
function operationOf(route: {
  readonly method: string | readonly string[];
  readonly url: string;
  readonly config?: { readonly operation?: WebOperation } | undefined;
}): WebOperation {
  const operation = route.config?.operation;
  if (operation === undefined)
    throw new Error(
      `route ${String(route.method)} ${route.url} declares no config.operation (web/policy.ts)`,
    );
  return operation;
}

/** The UIDs of the route's path, for the policy. */
function resourceOf(request: FastifyRequest): WebResource {
  const p = (request.params ?? {}) as Record<string, unknown>;
  const s = (k: string) => (typeof p[k] === 'string' ? (p[k] as string) : undefined);
  const study = s('study');
  const series = s('series');
  const instance = s('instance');
  return {
    ...(study !== undefined ? { studyInstanceUid: study } : {}),
    ...(series !== undefined ? { seriesInstanceUid: series } : {}),
    ...(instance !== undefined ? { sopInstanceUid: instance } : {}),
  };
}

function answerError(
  logger: Logger,
  error: FastifyError | HttpError | Error,
  request: FastifyRequest,
  reply: FastifyReply,
): void {
  let status: number;
  let code: string;
  let reason: string;
  let headers: Readonly<Record<string, string>> = {};
  if (error instanceof HttpError) {
    status = error.status;
    code = error.code;
    reason = error.message;
    headers = error.headers;
  } else if ('validation' in error && error.validation !== undefined) {
    status = 400;
    code = 'ERR_HTTP_BAD_REQUEST';
    reason =
      `${(error as FastifyError).validationContext ?? 'request'} ${error.message.replace(/^(params|querystring|body|headers)\/?/, '')}`.trim();
  } else if (error instanceof PacsError && STORED_OBJECT_FAILURES.has(error.code)) {
    // A stored object that fails its integrity check (or whose key is missing) is never served.
    status = 500;
    code = error.code;
    reason = error.message;
  } else if (
    typeof (error as FastifyError).statusCode === 'number' &&
    ((error as FastifyError).statusCode as number) < 500
  ) {
    status = (error as FastifyError).statusCode as number;
    code = (error as FastifyError).code ?? 'ERR_HTTP_BAD_REQUEST';
    reason = error.message;
  } else {
    status = 500;
    code = 'ERR_HTTP_INTERNAL';
    reason = 'internal error';
  }
  const line = {
    method: request.method,
    url: request.url,
    status,
    code,
    reason: status === 500 ? error.message : reason,
  };
  if (status >= 500) logger.error({ ...line, stack: error.stack }, 'HTTP request failed');
  else logger.warn(line, 'HTTP request refused');
  if (reply.sent || reply.raw.headersSent) {
    // Headers (and maybe part of the body) are out: cut the connection, never end it cleanly.
    reply.raw.destroy(error);
    return;
  }
  for (const [k, v] of Object.entries(headers)) reply.header(k, v);
  const body: ErrorBody = { code, reason };
  void reply.code(status).type('application/json').send(body);
}

function withTimeout(check: Promise<HealthResult>, ms: number): Promise<HealthResult> {
  return new Promise((resolve) => {
    const timer = setTimeout(
      () => resolve({ ok: false, reason: `the health check took longer than ${ms} ms` }),
      ms,
    );
    check.then(
      (r) => {
        clearTimeout(timer);
        resolve(r);
      },
      (e: unknown) => {
        clearTimeout(timer);
        resolve({ ok: false, reason: e instanceof Error ? e.message : String(e) });
      },
    );
  });
}
