/**
 * The web application's authentication endpoints (issue 14), under /api/auth:
 *
 * - POST /api/auth/login  {user, password}: checks the password (rate limited by the identity
 *   service like every attempt), starts a session, sets its cookie and answers
 *   {user, role, permissions, csrfToken}. The body must be application/json (a cross-site HTML
 *   form cannot send that without a CORS preflight, so login CSRF needs more than a form).
 * - POST /api/auth/logout: ends the session of the cookie (CSRF-checked like every unsafe
 *   request with a cookie) and clears the cookie; 204.
 * - GET /api/auth/whoami: {user, role, permissions, method} and, for a session, its csrfToken (the
 *   page may have been reloaded: the cookie is HttpOnly).
 */
import type { FastifyInstance } from 'fastify';
import type { UserIdentity } from '../../security/identity.js';
import { httpError } from '../errors.js';
import { clearedCookie, refuseCredentials, sessionCookie, type WebAuthentication } from './authenticate.js';

export const AUTH_PREFIX = '/api/auth';

interface LoginBody {
  readonly user: string;
  readonly password: string;
}

const loginSchema = {
  body: {
    type: 'object',
    required: ['user', 'password'],
    additionalProperties: false,
    properties: {
      user: { type: 'string', minLength: 1, maxLength: 256 },
      password: { type: 'string', maxLength: 4096 },
    },
  },
} as const;

function describe(identity: UserIdentity) {
  return {
    user: identity.name,
    role: identity.role,
    permissions: [...identity.permissions].sort(),
  };
}

export async function registerAuthRoutes(app: FastifyInstance, auth: WebAuthentication): Promise<void> {
  await app.register(
    async (scope) => {
      scope.route<{ Body: LoginBody }>({
        method: 'POST',
        url: '/login',
        config: { operation: 'auth:login' },
        schema: loginSchema,
        handler: async (request, reply) => {
          const service = auth.identity;
          if (service === undefined)
            throw httpError(
              503,
              'ERR_HTTP_AUTH_UNAVAILABLE',
              'authentication is not configured on this server',
            );
          const context = { remoteAddress: request.ip };
          const result = await service.authenticatePassword(
            request.body.user,
            request.body.password,
            context,
          );
          if (!result.ok) {
            refuseCredentials(auth, request, reply, result, 'password', request.body.user);
            return reply;
          }
          const session = await service.createSession(result.identity, context);
          return reply
            .header('set-cookie', sessionCookie(auth, session.sessionId, session.expiresAt))
            .header('cache-control', 'no-store')
            .type('application/json')
            .send({ ...describe(result.identity), csrfToken: session.csrfToken });
        },
      });
      scope.route({
        method: 'POST',
        url: '/logout',
        config: { operation: 'auth:logout' },
        handler: async (request, reply) => {
          const session = request.authSession;
          if (session !== undefined && auth.identity !== undefined) {
            await auth.identity.endSession(session.id);
            reply.header('set-cookie', clearedCookie(auth));
          }
          return reply.code(204).send();
        },
      });
      scope.route({
        method: 'GET',
        url: '/whoami',
        config: { operation: 'auth:whoami' },
        handler: async (request, reply) => {
          const identity = request.identity;
          if (identity.kind !== 'user')
            throw httpError(403, 'ERR_HTTP_FORBIDDEN', 'only a user has a who-am-I answer');
          return reply
            .header('cache-control', 'no-store')
            .type('application/json')
            .send({
              ...describe(identity),
              method: identity.method,
              ...(request.authSession !== undefined ? { csrfToken: request.authSession.csrfToken } : {}),
            });
        },
      });
    },
    { prefix: AUTH_PREFIX },
  );
}
