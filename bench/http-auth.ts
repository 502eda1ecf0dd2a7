/**
 * What authentication and authorization add to an HTTP request (issue 14 target: under 0.1 ms).
 * The same app (createWebApp, requests by fastify's inject: no sockets, so the figures are the
 * hook's own cost) answers GET /metrics (a handler that does nothing) N times each way, serially,
 * several rounds, the median round reported:
 *
 *   open      OPEN_POLICY, no credentials: the hook asks a policy that allows everything;
 *   bearer    SECURITY_POLICY, `Authorization: Bearer` with an API token;
 *   basic     SECURITY_POLICY, `Authorization: Basic`;
 *   session   SECURITY_POLICY, the session cookie (GET: no CSRF check).
 *
 * The identity service is an in-memory one that answers at once (a Map lookup): the web layer's
 * cost is measured, not the stores' (a password hash takes milliseconds on purpose; the real
 * service's token and session lookups are the index's, measured by its own benchmarks).
 * Also: one call of security/policy.ts authorize() alone.
 *
 * Run: npm run build && node dist/bench/http-auth.js [--requests N] [--rounds N]
 */
import pino from 'pino';
import type { IdentityService } from '../src/security/authentication.js';
import type { UserIdentity } from '../src/security/identity.js';
import { BUILTIN_ROLES } from '../src/security/permissions.js';
import { authorize } from '../src/security/policy.js';
import { createWebApp } from '../src/web/app.js';
import { type AccessPolicy, OPEN_POLICY, SECURITY_POLICY } from '../src/web/policy.js';
import { median, numberArg, runMain } from './common.js';

const admin: UserIdentity = {
  kind: 'user',
  name: 'ada',
  role: 'admin',
  permissions: new Set(BUILTIN_ROLES.find((r) => r.name === 'admin')?.permissions ?? []),
  method: 'token',
};

const instant: IdentityService = {
  authenticatePassword: async (name, password) =>
    name === 'ada' && password === 'pw'
      ? { ok: true, identity: { ...admin, method: 'password' } }
      : { ok: false, reason: 'no' },
  authenticateBearer: async (token) =>
    token === 'tok' ? { ok: true, identity: admin } : { ok: false, reason: 'no' },
  authenticateJwt: async () => ({ ok: false, reason: 'no' }),
  createSession: async () => ({
    sessionId: 's',
    csrfToken: 'c',
    expiresAt: new Date(Date.now() + 3_600_000),
  }),
  resumeSession: async (id) =>
    id === 'sid' ? { identity: { ...admin, method: 'session' }, csrfToken: 'c' } : undefined,
  endSession: async () => undefined,
};

async function perRequestMicros(
  policy: AccessPolicy,
  headers: Record<string, string>,
  n: number,
): Promise<number> {
  const app = await createWebApp({
    logger: pino({ level: 'warn' }),
    policy,
    identity: instant,
    health: async () => ({ ok: true }),
    metrics: async () => '',
  });
  try {
    for (let i = 0; i < 500; i++) await app.inject({ method: 'GET', url: '/metrics', headers });
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const r = await app.inject({ method: 'GET', url: '/metrics', headers });
      if (r.statusCode !== 200) throw new Error(`status ${r.statusCode}`);
    }
    return Number(process.hrtime.bigint() - t0) / 1000 / n;
  } finally {
    await app.close();
  }
}

runMain('http-auth', async () => {
  const argv = process.argv.slice(2);
  const n = numberArg(argv, '--requests', 5000);
  const rounds = numberArg(argv, '--rounds', 5);
  const ways: Array<[string, AccessPolicy, Record<string, string>]> = [
    ['open', OPEN_POLICY, {}],
    ['bearer', SECURITY_POLICY, { authorization: 'Bearer tok' }],
    ['basic', SECURITY_POLICY, { authorization: `Basic ${Buffer.from('ada:pw').toString('base64')}` }],
    ['session', SECURITY_POLICY, { cookie: '__Host-pacs_session=sid' }],
  ];
  const figures = new Map<string, number[]>(ways.map(([name]) => [name, []]));
  for (let r = 0; r < rounds; r++)
    for (const [name, policy, headers] of ways)
      figures.get(name)?.push(await perRequestMicros(policy, headers, n));
  const open = median(figures.get('open') ?? []);
  console.log(`requests: ${n} per way and round, ${rounds} rounds (median round), fastify inject, serial`);
  for (const [name] of ways) {
    const us = median(figures.get(name) ?? []);
    console.log(
      `${name.padEnd(8)} ${us.toFixed(1)} us/request${name === 'open' ? '' : `  (+${(us - open).toFixed(1)} us over open)`}`,
    );
  }
  const calls = 1_000_000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) authorize({ identity: admin, operation: 'dicomweb:view' });
  console.log(`authorize() alone: ${(Number(process.hrtime.bigint() - t0) / calls).toFixed(0)} ns/call`);
});
