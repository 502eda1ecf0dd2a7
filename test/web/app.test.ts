/**
 * The web application's frame: every route passes the one policy check (a deny-all policy refuses
 * each registered route before its handler runs, and the policy is asked with the route's
 * operation); JSON errors (404, 405 with Allow); CORS (none by default, named origins echoed,
 * `*` never with credentials, preflights with Max-Age); HTTP/1.1, h2c and h2 over TLS on the
 * same app; the Capabilities document lists what is registered.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startWebServer } from '../../src/web/listen.js';
import type { AccessPolicy, AccessRequest } from '../../src/web/policy.js';
import { registeredRoutes } from '../../src/web/route-table.js';
import { memoryLogger, startTestWeb, type TestWeb } from './helpers.js';

/** A concrete URL for a route pattern: UIDs for UID parameters, a frame list, a bulk path. */
function concrete(url: string): string {
  return url
    .replace(/:study\b/, '1.2.3')
    .replace(/:series\b/, '1.2.3.4')
    .replace(/:instance\b/, '1.2.3.4.5')
    .replace(/:frames?\b/, '1')
    .replace(/:[A-Za-z]+/g, '1')
    .replace(/\*$/, 'x');
}

function h2Get(
  url: string,
  options: http2.SecureClientSessionOptions = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const session = http2.connect(u.origin, options);
    session.on('error', reject);
    const req = session.request({ ':path': u.pathname });
    let body = '';
    let status = 0;
    req.on('response', (h) => {
      status = Number(h[':status']);
    });
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      body += c;
    });
    req.on('end', () => {
      session.close();
      resolve({ status, body });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('web app: one policy check for every route', () => {
  const asked: AccessRequest[] = [];
  const denyAll: AccessPolicy = {
    name: 'deny-all',
    authorize(request) {
      asked.push(request);
      return { allowed: false, status: 403, dimseStatus: 0x0124, reason: 'denied by the test policy' };
    },
  };
  let web: TestWeb;
  before(async () => {
    web = await startTestWeb({ policy: denyAll });
  });
  after(() => web.close());

  it('refuses each registered route with 403 before its handler, asking with the route operation', async () => {
    const routes = registeredRoutes(web.server.app).filter((r) => r.method !== 'HEAD');
    assert.ok(routes.length >= 4, `routes: ${routes.map((r) => `${r.method} ${r.url}`).join(', ')}`);
    for (const route of routes) {
      asked.length = 0;
      const url = `${web.origin}${concrete(route.url)}`;
      const r = await fetch(url, {
        method: route.method,
        ...(route.method === 'POST'
          ? { body: 'x', headers: { 'content-type': 'multipart/related; boundary=b' } }
          : {}),
      });
      assert.equal(r.status, 403, `${route.method} ${route.url}`);
      const body = (await r.json()) as { code: string; reason: string };
      assert.deepEqual(body, { code: 'ERR_HTTP_FORBIDDEN', reason: 'denied by the test policy' });
      assert.equal(asked.length, 1, `${route.method} ${route.url} asked the policy once`);
      assert.equal(asked[0]?.operation, route.operation);
    }
  });

  it('passes the UIDs of the path to the policy as the resource', async () => {
    asked.length = 0;
    const r = await fetch(`${web.base}/studies/1.2.3/series/4.5/metadata`);
    await r.text();
    const study = asked.find((a) => a.resource?.studyInstanceUid !== undefined);
    if (study !== undefined) {
      assert.equal(study.resource?.studyInstanceUid, '1.2.3');
      assert.equal(study.resource?.seriesInstanceUid, '4.5');
    } else {
      // No such route registered yet: the 404 handler answers without asking.
      assert.equal(r.status, 404);
    }
  });
});

describe('web app: errors, CORS, protocols, Capabilities', () => {
  let web: TestWeb;
  before(async () => {
    web = await startTestWeb({
      cors: { origins: ['http://viewer.test'], credentials: true, maxAgeSeconds: 120 },
    });
  });
  after(() => web.close());

  it('answers unknown paths 404 and other methods 405 with Allow, as JSON with a code and a reason', async () => {
    let r = await fetch(`${web.origin}/nothing/here`);
    assert.equal(r.status, 404);
    assert.deepEqual(await r.json(), {
      code: 'ERR_HTTP_NOT_FOUND',
      reason: 'no resource at GET /nothing/here',
    });
    r = await fetch(`${web.origin}/healthz`, { method: 'DELETE' });
    assert.equal(r.status, 405);
    assert.equal(r.headers.get('allow'), 'GET, HEAD');
    assert.equal(((await r.json()) as { code: string }).code, 'ERR_HTTP_METHOD_NOT_ALLOWED');
    r = await fetch(`${web.base}/no-such-resource`);
    assert.equal(r.status, 404);
    await r.text();
  });

  it('CORS: a named origin is echoed with credentials and exposed headers; others get none', async () => {
    let r = await fetch(`${web.origin}/healthz`, { headers: { origin: 'http://viewer.test' } });
    assert.equal(r.headers.get('access-control-allow-origin'), 'http://viewer.test');
    assert.equal(r.headers.get('access-control-allow-credentials'), 'true');
    assert.match(r.headers.get('access-control-expose-headers') ?? '', /Warning, Location, Content-Location/);
    assert.match(r.headers.get('vary') ?? '', /Origin/);
    await r.text();
    r = await fetch(`${web.origin}/healthz`, { headers: { origin: 'http://evil.test' } });
    assert.equal(r.headers.get('access-control-allow-origin'), null);
    await r.text();
    r = await fetch(`${web.base}/studies`, {
      method: 'OPTIONS',
      headers: {
        origin: 'http://viewer.test',
        'access-control-request-method': 'GET',
        'access-control-request-headers': 'authorization, accept',
      },
    });
    assert.equal(r.status, 204);
    assert.equal(r.headers.get('access-control-allow-origin'), 'http://viewer.test');
    assert.equal(r.headers.get('access-control-max-age'), '120');
    assert.equal(r.headers.get('access-control-allow-headers'), 'authorization, accept');
    assert.match(r.headers.get('access-control-allow-methods') ?? '', /GET/);
  });

  it('CORS: "*" answers * without credentials, and no origins configured means no CORS headers', async () => {
    const any = await startWebServer({
      host: '127.0.0.1',
      port: 0,
      logger: memoryLogger([]),
      health: async () => ({ ok: true }),
      metrics: async () => '',
      cors: { origins: ['*'], credentials: false, maxAgeSeconds: 10 },
    });
    const none = await startWebServer({
      host: '127.0.0.1',
      port: 0,
      logger: memoryLogger([]),
      health: async () => ({ ok: true }),
      metrics: async () => '',
    });
    try {
      let r = await fetch(`http://127.0.0.1:${any.port}/healthz`, { headers: { origin: 'http://x.test' } });
      assert.equal(r.headers.get('access-control-allow-origin'), '*');
      assert.equal(r.headers.get('access-control-allow-credentials'), null);
      await r.text();
      r = await fetch(`http://127.0.0.1:${none.port}/healthz`, { headers: { origin: 'http://x.test' } });
      assert.equal(r.headers.get('access-control-allow-origin'), null);
      await r.text();
    } finally {
      await any.close();
      await none.close();
    }
  });

  it('serves HTTP/1.1 and h2c on the plain port', async () => {
    const r = await h2Get(`${web.origin}/healthz`);
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), { status: 'ok' });
    const h1 = await fetch(`${web.origin}/healthz`);
    assert.equal(h1.status, 200);
    await h1.text();
  });

  it('serves h2 and HTTP/1.1 over TLS with a certificate', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pacs-web-tls-'));
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-subj',
        '/CN=localhost',
        '-days',
        '1',
        '-keyout',
        key,
        '-out',
        cert,
      ],
      { stdio: 'ignore' },
    );
    const tls = await startWebServer({
      host: '127.0.0.1',
      port: 0,
      logger: memoryLogger([]),
      health: async () => ({ ok: true }),
      metrics: async () => '',
      tls: { cert, key },
    });
    try {
      const r = await h2Get(`https://127.0.0.1:${tls.port}/healthz`, { rejectUnauthorized: false });
      assert.equal(r.status, 200);
      const https = await import('node:https');
      const status = await new Promise<number>((resolve, reject) => {
        https
          .get(`https://127.0.0.1:${tls.port}/healthz`, { rejectUnauthorized: false }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          })
          .on('error', reject);
      });
      assert.equal(status, 200);
    } finally {
      await tls.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('OPTIONS /dicom-web answers a WADL document of the registered resources, and per resource', async () => {
    let r = await fetch(`${web.base}`, {
      method: 'OPTIONS',
      headers: { accept: 'application/vnd.sun.wadl+xml' },
    });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /^application\/vnd\.sun\.wadl\+xml/);
    const wadl = await r.text();
    assert.match(wadl, /<application xmlns="http:\/\/wadl\.dev\.java\.net\/2009\/02">/);
    assert.match(wadl, new RegExp(`<resources base="${web.base.replace(/[.]/g, '\\.')}/">`));
    const routes = registeredRoutes(web.server.app).filter(
      (x) => x.url.startsWith('/dicom-web/') && x.method !== 'OPTIONS' && x.method !== 'HEAD',
    );
    for (const route of routes) {
      const last = route.url.split('/').pop() ?? '';
      const path = last.startsWith(':') ? `{${last.slice(1)}}` : last === '*' ? '{path}' : last;
      assert.ok(wadl.includes(`<resource path="${path}">`), `${route.url} in the WADL`);
      assert.ok(wadl.includes(`<method name="${route.method}"`), `${route.method} in the WADL`);
    }
    r = await fetch(`${web.base}`, { method: 'OPTIONS', headers: { accept: 'application/json' } });
    assert.equal(r.status, 200);
    const json = (await r.json()) as { base: string };
    assert.equal(json.base, `${web.base}/`);
    r = await fetch(`${web.base}/nowhere/at/all`, { method: 'OPTIONS' });
    assert.equal(r.status, 404);
    await r.text();
    if (routes.some((x) => x.url === '/dicom-web/studies')) {
      r = await fetch(`${web.base}/studies/1.2.3`, { method: 'OPTIONS' });
      assert.equal(r.status, 200);
      const sub = await r.text();
      assert.match(sub, /<resource path="studies\/\{study\}">/);
      assert.doesNotMatch(sub, /<resource path="series">\n\s*<method name="GET" id="SearchForSeries"/);
    }
  });
});
