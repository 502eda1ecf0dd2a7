/**
 * The HTTP attack list (issue 14), against the app with the real policy and an authenticated user:
 * path traversal through UID path segments and WADO-URI parameters (`..%2F`, encoded slashes,
 * backslashes, NUL) never reaches a file (400 or 404); a STOW-RS with a Content-Length of 4 GB (or
 * more than the disk can take) is refused with 413 before its body is read, the connection closed;
 * a `Content-Encoding: gzip` body (a gzip bomb) is refused with 415 without being inflated; a
 * multipart part that never ends (the client stalls, then goes away) leaves nothing stored while
 * the server goes on serving others; a connection that never sends a byte (a browser's spare
 * socket, a silent attacker) is closed when its peer leaves and never holds up the server's close. (Token replay after revocation: auth-credentials.test.ts.)
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { SECURITY_POLICY } from '../../src/web/policy.js';
import { TEST_FILES } from '../helpers/corpus.js';
import { basic, FakeIdentityService } from './auth-helpers.js';
import { ingestFiles, startTestWeb, type TestWeb } from './helpers.js';
import { multipart, post } from './stow-helpers.js';

const CT = join(TEST_FILES, 'CT_small.dcm');
const MR = join(TEST_FILES, 'MR_small.dcm');

/** GET with the path exactly as written (fetch would normalise dot segments). */
function rawGet(
  origin: string,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(origin);
    const req = http.request({ host: u.hostname, port: u.port, path, method: 'GET', headers });
    req.on('error', reject);
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.end();
  });
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of entries) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

describe('HTTP attack list', () => {
  let web: TestWeb;
  const identity = new FakeIdentityService();
  identity.addUser('ada', 'admin', 'ada-pw');
  const auth = { authorization: basic('ada', 'ada-pw') };
  const opened: string[] = [];
  let uids = { study: '', series: '', instance: '' };

  before(async () => {
    web = await startTestWeb({ policy: SECURITY_POLICY, identity });
    await ingestFiles(web.archive, [CT]);
    const store = web.archive.store;
    const absolutePath = store.absolutePath.bind(store);
    const openObject = store.openObject.bind(store);
    store.absolutePath = (path: string) => {
      opened.push(path);
      return absolutePath(path);
    };
    store.openObject = (path: string) => {
      opened.push(path);
      return openObject(path);
    };
    const r = await fetch(`${web.base}/instances`, { headers: auth });
    const [json] = (await r.json()) as Array<Record<string, { Value?: string[] }>>;
    const v = (tag: string) => json?.[tag]?.Value?.[0] ?? '';
    uids = { study: v('0020000D'), series: v('0020000E'), instance: v('00080018') };
  });
  after(() => web.close());

  const objectFiles = () => filesUnder(join(web.archive.store.dataDir, 'objects'));
  const tmpFiles = () => filesUnder(join(web.archive.store.dataDir, 'tmp'));

  it('path traversal in UID segments and WADO-URI parameters never reaches a file (400/404)', async () => {
    const { study, series, instance } = uids;
    const paths = [
      '/dicom-web/studies/..%2F..%2Fetc%2Fpasswd',
      '/dicom-web/studies/..%2F..%2Fetc%2Fpasswd/metadata',
      `/dicom-web/studies/${study}/series/..%2F..%2Fobjects/instances/${instance}`,
      `/dicom-web/studies/${study}%2F..%2F..%2F/series/${series}/instances/${instance}/frames/1`,
      `/dicom-web/studies/${study}/series/${series}/instances/${instance}%2F..%2F..%2Findex.sqlite`,
      `/dicom-web/studies/${study}/series/${series}/instances/..%5C..%5Cwindows/rendered`,
      `/dicom-web/studies/${study}/series/${series}/instances/${instance}/bulk/..%2F..%2F..%2Fetc%2Fpasswd`,
      `/dicom-web/studies/${study}/series/${series}/instances/${instance}/frames/..%2F1`,
      `/dicom-web/studies/%2e%2e/series/%2e%2e/instances/%2e%2e`,
      `/dicom-web/studies/${study}%00/series/${series}/instances/${instance}`,
      `/dicom-web/studies/%2Fetc%2Fpasswd/series/${series}/instances/${instance}/thumbnail`,
      `/wado?requestType=WADO&studyUID=..%2F..&seriesUID=${series}&objectUID=%2Fetc%2Fpasswd&contentType=application%2Fdicom`,
      `/wado?requestType=WADO&studyUID=${study}&seriesUID=${series}&objectUID=${instance}%2F..%2F..%2Fx`,
      `/dicom-web/wado?requestType=WADO&studyUID=${study}&seriesUID=${series}&objectUID=..%5Cx`,
    ];
    for (const path of paths) {
      const r = await rawGet(web.origin, path, auth);
      assert.ok(r.status === 400 || r.status === 404, `${path}: ${r.status} ${r.body.slice(0, 200)}`);
      assert.doesNotMatch(r.body, /root:|SQLite format/, path);
    }
    assert.deepEqual(opened, [], 'no object file was looked at');
    // The spy sees a real request: the check above could have failed.
    const ok = await rawGet(
      web.origin,
      `/dicom-web/studies/${study}/series/${series}/instances/${instance}/frames/1`,
      auth,
    );
    assert.equal(ok.status, 200);
    assert.ok(opened.length > 0);
  });

  it('a connection that never sends a byte is closed when its peer leaves, and does not hold up close()', async () => {
    const other = await startTestWeb();
    const connect = async () => {
      const s = net.connect(other.server.port, '127.0.0.1');
      await new Promise<void>((resolve) => s.once('connect', () => resolve()));
      return s;
    };
    // The peer half-closes without a request: the server ends its side.
    const leaving = await connect();
    const ended = new Promise<void>((resolve) => leaving.once('close', () => resolve()));
    leaving.end();
    await ended;
    // A silent one stays open until the server closes, which does not wait for it.
    const silent = await connect();
    const closed = new Promise<void>((resolve) => silent.once('close', () => resolve()));
    await other.close();
    await closed;
  });

  it('a 4 GB Content-Length on STOW-RS: 413 before the body is read, the connection closed', async () => {
    const free = await web.archive.store.freeBytes();
    const declared = Math.max(4 * 1024 ** 3, free + 1024 ** 3);
    const port = Number(new URL(web.origin).port);
    const socket = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    let answer = '';
    socket.setEncoding('latin1');
    socket.on('data', (c: string) => {
      answer += c;
    });
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write(
      'POST /dicom-web/studies HTTP/1.1\r\nHost: x\r\n' +
        `Authorization: ${auth.authorization}\r\n` +
        'Content-Type: multipart/related; type="application/dicom"; boundary=b\r\n' +
        `Content-Length: ${declared}\r\n\r\n--b\r\nContent-Type: application/dicom\r\n\r\n`,
    );
    // The client sends nothing more: the server answers anyway and closes.
    await closed;
    assert.match(answer, /^HTTP\/1\.1 413 /);
    assert.match(answer, /\r\nconnection: close\r\n/i);
    const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { code: string; reason: string };
    assert.equal(body.code, 'ERR_HTTP_PAYLOAD_TOO_LARGE');
    assert.match(
      body.reason,
      new RegExp(`the payload \\(${declared} bytes\\) is larger than the free space`),
    );
    assert.equal(objectFiles().length, 1);
    assert.deepEqual(tmpFiles(), []);
  });

  it('Content-Encoding: gzip is refused with 415 and never inflated (a gzip bomb)', async () => {
    // 64 MB of zeros in about 64 KB.
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024));
    assert.ok(bomb.length < 200_000);
    const before = process.memoryUsage().rss;
    const r = await post(
      `${web.base}/studies`,
      'multipart/related; type="application/dicom"; boundary=b',
      bomb,
      {
        ...auth,
        'content-encoding': 'gzip',
      },
    );
    assert.equal(r.status, 415);
    assert.equal(r.headers['accept-encoding'], 'identity');
    assert.deepEqual(r.json, {
      code: 'ERR_HTTP_UNSUPPORTED_MEDIA_TYPE',
      reason: 'Content-Encoding gzip is not supported: send the body unencoded',
    });
    const login = await post(
      `${web.origin}/api/auth/login`,
      'application/json',
      gzipSync('{"user":"ada","password":"ada-pw"}'),
      {
        'content-encoding': 'gzip',
      },
    );
    assert.equal(login.status, 415);
    assert.ok(process.memoryUsage().rss - before < 48 * 1024 * 1024, 'nothing was inflated');
    assert.equal(objectFiles().length, 1);
  });

  it('a multipart part that never ends (the client stalls, then leaves) stores nothing; others are served meanwhile', async () => {
    const file = readFileSync(MR);
    const port = Number(new URL(web.origin).port);
    const socket = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.on('error', () => undefined);
    const head =
      'POST /dicom-web/studies HTTP/1.1\r\nHost: x\r\n' +
      `Authorization: ${auth.authorization}\r\n` +
      'Content-Type: multipart/related; type="application/dicom"; boundary=b\r\n' +
      'Transfer-Encoding: chunked\r\n\r\n';
    const part = Buffer.concat([
      Buffer.from('--b\r\nContent-Type: application/dicom\r\n\r\n'),
      file.subarray(0, file.length - 1000),
    ]);
    socket.write(head);
    socket.write(`${part.length.toString(16)}\r\n`);
    socket.write(part);
    socket.write('\r\n');
    // While that upload hangs, the server answers others.
    await new Promise<void>((resolve) => {
      const wait = () => (tmpFiles().length > 0 ? resolve() : setTimeout(wait, 20));
      wait();
    });
    const health = await fetch(`${web.origin}/healthz`);
    assert.equal(health.status, 200);
    await health.arrayBuffer();
    const search = await fetch(`${web.base}/instances`, { headers: auth });
    assert.equal(search.status, 200);
    assert.equal(((await search.json()) as unknown[]).length, 1);
    // The client goes away in the middle of the part.
    socket.destroy();
    await new Promise<void>((resolve) => {
      const wait = () => (tmpFiles().length === 0 ? resolve() : setTimeout(wait, 20));
      wait();
    });
    assert.equal(objectFiles().length, 1, 'nothing of the cut part was stored');
    const after = await fetch(`${web.base}/instances`, { headers: auth });
    assert.equal(((await after.json()) as unknown[]).length, 1);
    // And a complete upload afterwards works.
    const ok = await post(
      `${web.base}/studies`,
      'multipart/related; type="application/dicom"; boundary=b',
      multipart('b', [{ body: file }]),
      auth,
    );
    assert.equal(ok.status, 200, ok.text);
    assert.equal(objectFiles().length, 2);
  });
});
