/**
 * Every route is protected in one place (issue 14): an app built with the DICOMweb context and
 * the real policy (SECURITY_POLICY) answers 401 with the challenges on each registered route that
 * is not public, before its handler runs (the archive and the metrics are never touched); public
 * routes answer without credentials; a `viewer` gets 403 on STOW, retrieve (download) and the
 * admin routes and 2xx on search and view; a route without an operation stops the app from
 * building.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { Archive } from '../../src/archive/archive.js';
import { requirementOf } from '../../src/security/operations.js';
import { createWebApp } from '../../src/web/app.js';
import { SECURITY_POLICY } from '../../src/web/policy.js';
import { registeredRoutes } from '../../src/web/route-table.js';
import { TEST_FILES } from '../helpers/corpus.js';
import { basic, FakeIdentityService } from './auth-helpers.js';
import { ingestFiles, memoryLogger, startTestWeb, type TestWeb } from './helpers.js';

const CT = join(TEST_FILES, 'CT_small.dcm');

/** A concrete URL for a route pattern, with the UIDs of the archived CT when given. */
function concrete(
  url: string,
  uids: { study: string; series: string; instance: string },
  bulk = '7FE00010',
): string {
  return url
    .replace(/:study\b/, uids.study)
    .replace(/:series\b/, uids.series)
    .replace(/:instance\b/, uids.instance)
    .replace(/:frames\b/, '1')
    .replace(/:path\b/, bulk)
    .replace(/\*$/, 'studies');
}

const NO_UIDS = { study: '1.2.3', series: '1.2.3.4', instance: '1.2.3.4.5' };

describe('HTTP authentication: every route', () => {
  let app: FastifyInstance;
  let touched: string[] = [];
  const lines: Array<Record<string, unknown>> = [];
  let web: TestWeb;

  before(async () => {
    // The archive is behind a proxy that records every use: a handler that ran would use it.
    web = await startTestWeb();
    const spy = new Proxy(web.archive, {
      get(target, key, receiver) {
        touched.push(String(key));
        return Reflect.get(target, key, receiver);
      },
    }) as Archive;
    const logger = memoryLogger(lines);
    app = await createWebApp({
      logger,
      policy: SECURITY_POLICY,
      identity: new FakeIdentityService(),
      health: async () => ({ ok: true }),
      metrics: async () => {
        touched.push('metrics');
        return '';
      },
      dicomweb: { archive: spy, logger, aeTitle: 'PACS' },
    });
  });
  after(async () => {
    await app.close();
    await web.close();
  });

  it('answers 401 with the challenges on every non-public route before its handler, and public ones without credentials', async () => {
    const routes = registeredRoutes(app);
    const operations = new Set(routes.map((r) => r.operation));
    for (const op of [
      'dicomweb:search',
      'dicomweb:view',
      'dicomweb:retrieve',
      'dicomweb:store',
      'system:metrics',
    ] as const)
      assert.ok(operations.has(op), `a route performs ${op}`);
    let publicCount = 0;
    for (const route of routes) {
      touched = [];
      const isPublic = requirementOf(route.operation).kind === 'public';
      const r = await app.inject({
        method: route.method as 'GET',
        url: concrete(route.url, NO_UIDS),
        ...(route.method === 'POST'
          ? {
              payload: '--b\r\n\r\nx\r\n--b--\r\n',
              headers: { 'content-type': 'multipart/related; boundary=b' },
            }
          : {}),
      });
      const what = `${route.method} ${route.url} (${route.operation})`;
      if (isPublic) {
        publicCount++;
        assert.notEqual(r.statusCode, 401, what);
        continue;
      }
      assert.equal(r.statusCode, 401, what);
      if (route.method !== 'HEAD')
        assert.deepEqual(
          r.json(),
          { code: 'ERR_HTTP_UNAUTHENTICATED', reason: 'authentication required' },
          what,
        );
      assert.equal(
        r.headers['www-authenticate'],
        'Basic realm="PACS", charset="UTF-8", Bearer realm="PACS"',
        what,
      );
      assert.deepEqual(touched, [], `${what}: the handler did not run`);
    }
    assert.ok(publicCount >= 2, 'healthz and the login endpoint are public');
    assert.ok(routes.length - publicCount >= 30, `${routes.length} routes`);
  });

  it('each DICOMweb route declares the operation of what it does', async () => {
    const expected = (method: string, url: string): string => {
      if (url === '/healthz') return 'system:health';
      if (url === '/metrics') return 'system:metrics';
      if (url.startsWith('/api/auth/')) return `auth:${url.slice('/api/auth/'.length)}`;
      if (method === 'OPTIONS') return 'dicomweb:capabilities';
      if (method === 'POST') return 'dicomweb:store';
      if (/\/(metadata|rendered|thumbnail)$|\/frames\/:frames$|\/bulk\/:path$|\/wado$/.test(url))
        return 'dicomweb:view';
      if (/\/(studies|series|instances)$/.test(url)) return 'dicomweb:search';
      if (/\/studies\/:study(\/series\/:series(\/instances\/:instance)?)?$/.test(url))
        return 'dicomweb:retrieve';
      return `unexpected route ${method} ${url}`;
    };
    for (const route of registeredRoutes(app))
      assert.equal(route.operation, expected(route.method, route.url), `${route.method} ${route.url}`);
  });

  it('/healthz and the login endpoint answer without credentials', async () => {
    const h = await app.inject({ method: 'GET', url: '/healthz' });
    assert.equal(h.statusCode, 200);
    const login = await app.inject({
      method: 'POST',
      url: '/api/auth/login',
      payload: { user: 'nobody', password: 'x' },
    });
    // The endpoint ran (the password was checked and refused).
    assert.equal(login.statusCode, 401);
    assert.equal(login.json().code, 'ERR_HTTP_UNAUTHENTICATED');
  });

  it('a route added without an operation stops the app from building', async () => {
    await assert.rejects(
      createWebApp({
        logger: memoryLogger([]),
        health: async () => ({ ok: true }),
        metrics: async () => '',
        register: async (scope) => {
          scope.get('/unchecked', async () => 'x');
        },
      }),
      /route GET \/unchecked declares no config.operation/,
    );
  });
});

describe('HTTP authorization: a viewer', () => {
  let web: TestWeb;
  const identity = new FakeIdentityService();
  identity.addUser('vera', 'viewer', 'vera-pw-1');
  identity.addUser('ada', 'admin', 'ada-pw-1');
  const viewer = { authorization: basic('vera', 'vera-pw-1') };
  let uids = NO_UIDS;

  before(async () => {
    web = await startTestWeb({ policy: SECURITY_POLICY, identity });
    await ingestFiles(web.archive, [CT]);
    const r = await fetch(`${web.base}/instances`, { headers: viewer });
    assert.equal(r.status, 200);
    const [json] = (await r.json()) as Array<Record<string, { Value?: string[] }>>;
    const v = (tag: string) => json?.[tag]?.Value?.[0] ?? '';
    uids = { study: v('0020000D'), series: v('0020000E'), instance: v('00080018') };
    assert.match(uids.instance, /^[0-9.]+$/);
  });
  after(() => web.close());

  it('gets 403 on STOW, retrieve and admin routes and 2xx on search and view routes', async () => {
    const routes = registeredRoutes(web.server.app).filter((r) => r.method !== 'HEAD');
    const seen = new Set<string>();
    for (const route of routes) {
      const req = requirementOf(route.operation);
      const url = `${web.origin}${concrete(route.url, uids)}`;
      const what = `${route.method} ${route.url} (${route.operation})`;
      const query = route.url.endsWith('/wado')
        ? `?requestType=WADO&studyUID=${uids.study}&seriesUID=${uids.series}&objectUID=${uids.instance}&contentType=image/jpeg`
        : '';
      const r = await fetch(url + query, {
        method: route.method,
        headers: {
          ...viewer,
          ...(route.method === 'POST' ? { 'content-type': 'multipart/related; boundary=b' } : {}),
          ...(route.url.endsWith('/rendered') || route.url.endsWith('/thumbnail')
            ? { accept: 'image/png' }
            : {}),
        },
        ...(route.method === 'POST' ? { body: '--b--\r\n' } : {}),
      });
      await r.arrayBuffer();
      if (req.kind === 'permission' && req.permission !== 'view') {
        assert.equal(r.status, 403, what);
        seen.add('403');
      } else if (req.kind !== 'public' && route.operation !== 'auth:logout') {
        assert.ok(r.status >= 200 && r.status < 300, `${what}: ${r.status}`);
        seen.add('2xx');
      }
    }
    assert.deepEqual([...seen].sort(), ['2xx', '403']);
  });

  it('WADO-URI: a rendered image is a view, the object itself (application/dicom) a retrieve', async () => {
    const q = `requestType=WADO&studyUID=${uids.study}&seriesUID=${uids.series}&objectUID=${uids.instance}`;
    let r = await fetch(`${web.origin}/wado?${q}&contentType=image%2Fjpeg`, { headers: viewer });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'image/jpeg');
    await r.arrayBuffer();
    r = await fetch(`${web.origin}/wado?${q}&contentType=application%2Fdicom`, { headers: viewer });
    assert.equal(r.status, 403);
    assert.deepEqual(await r.json(), {
      code: 'ERR_HTTP_FORBIDDEN',
      reason: 'user vera (role viewer) lacks download',
    });
    r = await fetch(`${web.origin}/wado?${q}&contentType=application%2Fdicom`, {
      headers: { authorization: basic('ada', 'ada-pw-1') },
    });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'application/dicom');
    assert.ok((await r.arrayBuffer()).byteLength > 1000);
  });
});
