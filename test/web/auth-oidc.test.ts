/**
 * OpenID Connect bearer tokens (issue 14) against a real OpenID provider started by the test:
 * the `oidc-provider` package (OpenID certified), with the client credentials grant and resource
 * indicators (RFC 8707) so that it issues RFC 9068 JWT access tokens (`typ: at+jwt`) for our
 * audience. A valid token is accepted with its role mapped from the `roles` claim; a token for
 * another audience, from another issuer, expired, not yet valid, with a bad signature, an unknown
 * kid, `alg: none` or HS256 is refused with 401 (and a log line that says why). Tokens with crafted
 * claims are signed by the test with the provider's own key (made by jose), so that only the claim
 * under test is wrong. The JWKS is fetched once and cached; an unknown kid fetches it again, not
 * more often than the minimum interval.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import Provider from 'oidc-provider';
import { identityServiceFor } from '../../src/archive/security/open.js';
import type { JwtVerifier } from '../../src/security/authentication.js';
import { identityConfig } from '../../src/security/identity-config.js';
import { createOidcVerifier } from '../../src/security/oidc.js';
import { SECURITY_POLICY } from '../../src/web/policy.js';
import { FakeIdentityService } from './auth-helpers.js';
import { startTestWeb, type TestWeb } from './helpers.js';

const AUDIENCE = 'https://pacs.test/dicom-web';

interface TestProvider {
  readonly issuer: string;
  readonly server: Server;
  /** Requests to the JWKS endpoint so far. */
  jwksFetches: number;
  token(resource?: string): Promise<string>;
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** An oidc-provider on a loopback port, signing with `key`, issuing JWT access tokens by client credentials. */
async function startProvider(key: JWK): Promise<TestProvider> {
  const server = createServer();
  const port = await listen(server);
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'pacs-script',
        client_secret: 'pacs-script-secret',
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
      },
    ],
    jwks: { keys: [key] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => AUDIENCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx: unknown, resource: string) => ({
          scope: 'dicomweb',
          audience: resource,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
    ttl: { ClientCredentials: 600 },
    extraTokenClaims: () => ({ roles: ['staff', 'pacs-readers'], preferred_username: 'olga' }),
  });
  const handler = provider.callback();
  const p: TestProvider = {
    issuer,
    server,
    jwksFetches: 0,
    async token(resource = AUDIENCE) {
      const r = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from('pacs-script:pacs-script-secret').toString('base64')}`,
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope: 'dicomweb' }),
      });
      const body = (await r.json()) as { access_token?: string; error?: string };
      if (body.access_token === undefined) throw new Error(`no token: ${JSON.stringify(body)}`);
      return body.access_token;
    },
  };
  server.on('request', (req, res) => {
    if (req.url === '/jwks') p.jwksFetches++;
    handler(req, res);
  });
  return p;
}

async function rsaKey(kid: string): Promise<{ jwk: JWK; privateKey: CryptoKey }> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };
  return { jwk, privateKey: privateKey as CryptoKey };
}

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

describe('OpenID Connect access tokens (oidc-provider)', () => {
  let provider: TestProvider;
  let other: TestProvider;
  let key: { jwk: JWK; privateKey: CryptoKey };
  let verifier: JwtVerifier;
  let web: TestWeb;
  const now = () => Math.floor(Date.now() / 1000);

  /** A token with the provider's key and header, and the claims given. */
  const craft = (claims: Record<string, unknown>, header: Record<string, unknown> = {}) =>
    new SignJWT({ roles: ['pacs-readers'], preferred_username: 'olga', ...claims })
      .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: 'k1', ...header })
      .sign(key.privateKey);
  const good = () => ({
    iss: provider.issuer,
    aud: AUDIENCE,
    sub: 'pacs-script',
    iat: now(),
    exp: now() + 300,
  });

  const whoami = (token: string) =>
    fetch(`${web.origin}/api/auth/whoami`, { headers: { authorization: `Bearer ${token}` } });

  before(async () => {
    key = await rsaKey('k1');
    provider = await startProvider(key.jwk);
    // Another provider with the same key: its tokens verify, but their issuer is not ours.
    other = await startProvider(key.jwk);
    verifier = createOidcVerifier({
      settings: {
        issuer: provider.issuer,
        audience: AUDIENCE,
        roleClaim: 'roles',
        roleMap: { 'pacs-readers': 'viewer' },
        clockSkewSeconds: 5,
      },
      minRefetchSeconds: 3600,
    });
    web = await startTestWeb({
      policy: SECURITY_POLICY,
      identity: new FakeIdentityService({ jwt: verifier, maxFailures: 1000 }),
    });
  });
  after(async () => {
    await web.close();
    provider.server.close();
    other.server.close();
  });

  it('accepts a JWT access token of the provider (typ at+jwt) with the role mapped from its claim', async () => {
    const token = await provider.token();
    const header = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString()) as {
      typ: string;
    };
    assert.equal(header.typ, 'at+jwt');
    const r = await whoami(token);
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { user: 'olga', role: 'viewer', permissions: ['view'], method: 'oidc' });
    // The viewer role applies: STOW is refused by the policy.
    const stow = await fetch(`${web.base}/studies`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'multipart/related; boundary=b' },
      body: '--b--\r\n',
    });
    assert.equal(stow.status, 403);
    await stow.arrayBuffer();
    assert.equal(provider.jwksFetches, 1, 'the JWKS was fetched once and cached');
  });

  it('the real identity service hands JWTs to the verifier: accepted with the mapped role, a wrong audience refused', async () => {
    const real = await startTestWeb({
      policy: SECURITY_POLICY,
      identity: (archive, bus) =>
        identityServiceFor(archive.index, identityConfig.identity.parse({}), { events: bus, jwt: verifier }),
    });
    try {
      let r = await fetch(`${real.origin}/api/auth/whoami`, {
        headers: { authorization: `Bearer ${await provider.token()}` },
      });
      assert.equal(r.status, 200);
      assert.deepEqual(await r.json(), {
        user: 'olga',
        role: 'viewer',
        permissions: ['view'],
        method: 'oidc',
      });
      r = await fetch(`${real.origin}/api/auth/whoami`, {
        headers: { authorization: `Bearer ${await provider.token('https://other.test/')}` },
      });
      assert.equal(r.status, 401);
      await r.arrayBuffer();
    } finally {
      await real.close();
    }
  });

  it('refuses with 401 invalid_token: wrong audience, wrong issuer, expired, not yet valid, bad signature, unknown kid, alg none, HS256', async () => {
    const valid = await provider.token();
    const [h, p, s] = valid.split('.') as [string, string, string];
    const flipped = `${s.slice(0, 10)}${s[10] === 'A' ? 'B' : 'A'}${s.slice(11)}`;
    const stranger = await rsaKey('k-unknown');
    const cases: Array<[string, string]> = [
      ['the JWT is for another audience', await provider.token('https://other.test/')],
      ['the JWT is from another issuer', await other.token()],
      ['the JWT has expired', await craft({ ...good(), iat: now() - 600, exp: now() - 60 })],
      ['the JWT is not yet valid (nbf)', await craft({ ...good(), nbf: now() + 120 })],
      ["the JWT's signature does not verify", `${h}.${p}.${flipped}`],
      [
        "no key of the provider's JWKS matches the JWT's kid",
        await new SignJWT({ ...good(), roles: ['pacs-readers'] })
          .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: 'k-unknown' })
          .sign(stranger.privateKey),
      ],
      [
        "the JWT's algorithm is not allowed (RS256, ES256, PS256 only)",
        `${b64({ alg: 'none', typ: 'at+jwt' })}.${b64(good())}.`,
      ],
      [
        "the JWT's algorithm is not allowed (RS256, ES256, PS256 only)",
        await new SignJWT({ ...good(), roles: ['pacs-readers'] })
          .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: 'k1' })
          .sign(new TextEncoder().encode('a shared secret that anyone with the JWKS could guess')),
      ],
      [
        "the JWT's typ dpop+jwt is not an access token's (RFC 9068: at+jwt)",
        await craft(good(), { typ: 'dpop+jwt' }),
      ],
      ['the JWT of olga has no known role in its roles claim', await craft({ ...good(), roles: ['staff'] })],
      ['the JWT is from another issuer', await craft({ ...good(), iss: 'http://evil.test' })],
    ];
    for (const [why, token] of cases) {
      const before = web.logLines.length;
      const r = await whoami(token);
      assert.equal(r.status, 401, why);
      assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="PACS", error="invalid_token"');
      assert.deepEqual(await r.json(), { code: 'ERR_HTTP_UNAUTHENTICATED', reason: 'authentication failed' });
      const lines = web.logLines.slice(before).filter((l) => l['msg'] === 'HTTP authentication refused');
      assert.deepEqual(
        lines.map((l) => l['why']),
        [why],
      );
    }
    // A crafted token with only good claims passes: the refusals above were for the claim under test.
    assert.equal((await whoami(await craft(good()))).status, 200);
    // The unknown kid did not refetch inside the minimum interval.
    assert.equal(provider.jwksFetches, 1);
  });
});

describe('OpenID Connect: the JWKS cache and key rotation (a JWKS served by the test)', () => {
  it('fetches the JWKS on an unknown kid (rotation), at most once per minimum interval', async () => {
    const k1 = await rsaKey('k1');
    const k2 = await rsaKey('k2');
    let keys: JWK[] = [k1.jwk];
    let fetches = 0;
    const server = createServer((req, res) => {
      fetches++;
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          keys: keys.map(({ d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub }) => pub),
        }),
      );
      void req;
    });
    const port = await listen(server);
    const issuer = 'https://idp.test/realms/pacs';
    const sign = (k: { jwk: JWK; privateKey: CryptoKey }, user: string) =>
      new SignJWT({ realm_access: { roles: ['admin'] }, preferred_username: user })
        .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: k.jwk.kid ?? '' })
        .setIssuer(issuer)
        .setAudience(['account', 'pacs'])
        .setExpirationTime('5m')
        .setIssuedAt()
        .sign(k.privateKey);
    try {
      const verifier = createOidcVerifier({
        settings: {
          issuer,
          audience: 'pacs',
          jwksUri: `http://127.0.0.1:${port}/certs`,
          roleClaim: 'realm_access.roles',
        },
        minRefetchSeconds: 0,
      });
      const ctx = { remoteAddress: '127.0.0.1' };
      let r = await verifier.verify(await sign(k1, 'ann'), ctx);
      assert.ok(r.ok && r.identity.role === 'admin' && r.identity.name === 'ann', JSON.stringify(r));
      r = await verifier.verify(await sign(k1, 'ann'), ctx);
      assert.ok(r.ok);
      assert.equal(fetches, 1, 'cached');
      // The provider rotates to k2: a token with the new kid fetches the set again and verifies.
      keys = [k1.jwk, k2.jwk];
      r = await verifier.verify(await sign(k2, 'bob'), ctx);
      assert.ok(r.ok && r.identity.name === 'bob');
      assert.equal(fetches, 2);

      // ES256 and PS256 keys verify too.
      for (const alg of ['ES256', 'PS256'] as const) {
        const { privateKey } = await generateKeyPair(alg, { extractable: true });
        const jwk = { ...(await exportJWK(privateKey)), kid: `k-${alg}`, alg, use: 'sig' };
        keys = [...keys, jwk];
        const token = await new SignJWT({ realm_access: { roles: ['auditor'] }, sub: 'svc' })
          .setProtectedHeader({ alg, typ: 'at+jwt', kid: jwk.kid })
          .setIssuer(issuer)
          .setAudience('pacs')
          .setExpirationTime('5m')
          .sign(privateKey);
        r = await verifier.verify(token, ctx);
        assert.ok(
          r.ok && r.identity.role === 'auditor' && r.identity.name === 'svc',
          `${alg}: ${JSON.stringify(r)}`,
        );
      }

      // With a minimum interval, random kids cannot make it fetch again.
      const slow = createOidcVerifier({
        settings: {
          issuer,
          audience: 'pacs',
          jwksUri: `http://127.0.0.1:${port}/certs`,
          roleClaim: 'realm_access.roles',
        },
        minRefetchSeconds: 3600,
      });
      keys = [k1.jwk];
      assert.ok((await slow.verify(await sign(k1, 'ann'), ctx)).ok);
      const before = fetches;
      for (let i = 0; i < 5; i++) {
        const stranger = await rsaKey(`random-${i}`);
        const refused = await slow.verify(await sign(stranger, 'eve'), ctx);
        assert.ok(!refused.ok && /matches the JWT's kid/.test(refused.reason));
      }
      assert.ok(fetches - before <= 1, `${fetches - before} fetches for 5 unknown kids`);
    } finally {
      server.close();
    }
  });

  it('refuses every token when discovery names another issuer, and does not ask again per token', async () => {
    let asked = 0;
    const server = createServer((_req, res) => {
      asked++;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ issuer: 'http://evil.test', jwks_uri: 'http://evil.test/jwks' }));
    });
    const port = await listen(server);
    try {
      const k = await rsaKey('k1');
      const issuer = `http://127.0.0.1:${port}`;
      const verifier = createOidcVerifier({ settings: { issuer, audience: 'pacs', roleClaim: 'roles' } });
      const token = await new SignJWT({ roles: ['viewer'], sub: 'x' })
        .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
        .setIssuer(issuer)
        .setAudience('pacs')
        .setExpirationTime('5m')
        .sign(k.privateKey);
      for (let i = 0; i < 3; i++) {
        const r = await verifier.verify(token, { remoteAddress: undefined });
        assert.ok(!r.ok);
        assert.match(r.reason, /discovery failed: .* names issuer http:\/\/evil.test/);
      }
      assert.equal(asked, 1, 'one discovery request inside the minimum interval');
    } finally {
      server.close();
    }
  });
});
