/**
 * Bounded memory of WADO-RS retrieve: a 300 MB object (written to disk in pieces, stored through
 * the ingest entry point) retrieved as stored, re-encoded into Implicit VR LE, and as a ZIP, by a
 * client in this process that reads as fast as it can and keeps nothing; the resident set may grow
 * by far less than the object (the bench, bench/dicomweb-retrieve.ts --large, runs 2 GB). The
 * bytes are checked too (a hash of the part against the stored file).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { IMPLICIT_VR_LE } from '../../src/dicom/uid.js';
import { ingestFiles, startTestWeb, type TestWeb } from './helpers.js';
import { writeLargeObject } from './retrieve-helpers.js';

const SIZE = 300 * 1024 * 1024;
/** Allowed growth of the resident set while streaming (the object is 300 MB). */
const BOUND = 96 * 1024 * 1024;

interface Streamed {
  readonly bytes: number;
  readonly maxRss: number;
  readonly sha256: string;
}

/** GETs `url`, hashing the body as it comes and sampling the RSS at each chunk. */
function stream(
  url: string,
  accept: string,
  skip: (chunk: Buffer, offset: number) => Buffer,
): Promise<Streamed> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers: { accept } }, (res) => {
        if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`));
        const hash = createHash('sha256');
        let bytes = 0;
        let maxRss = 0;
        res.on('data', (c: Buffer) => {
          hash.update(skip(c, bytes));
          bytes += c.length;
          maxRss = Math.max(maxRss, process.memoryUsage.rss());
        });
        res.on('end', () => resolve({ bytes, maxRss, sha256: hash.digest('hex') }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

async function fileHash(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const c of createReadStream(path, { highWaterMark: 1024 * 1024 })) hash.update(c as Buffer);
  return hash.digest('hex');
}

describe('WADO-RS retrieve memory', () => {
  let web: TestWeb;
  let dir: string;
  let object: ReturnType<typeof writeLargeObject>;
  let storedPath: string;
  let storedSize: number;

  before(async () => {
    web = await startTestWeb();
    dir = mkdtempSync(join(tmpdir(), 'wado-memory-'));
    const file = join(dir, 'large.dcm');
    object = writeLargeObject(file, SIZE);
    await ingestFiles(web.archive, [file]);
    rmSync(file);
    const row = await web.archive.index.findInstance(object.sopInstanceUid);
    assert.ok(row);
    storedPath = web.archive.store.absolutePath(row.path);
    storedSize = row.size;
  });
  after(async () => {
    await web.close();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const [name, accept] of [
    ['as stored', 'multipart/related; type="application/dicom"; transfer-syntax=*'],
    [
      're-encoded into Implicit VR LE',
      `multipart/related; type="application/dicom"; transfer-syntax=${IMPLICIT_VR_LE}`,
    ],
    ['as a ZIP', 'application/zip'],
  ] as const) {
    it(`streams a 300 MB object ${name} with bounded memory`, async () => {
      const baseline = process.memoryUsage.rss();
      // The stored file's bytes are the part's for 'as stored': hash only the part body for that case.
      let bodyStart = -1;
      let bodyEnd = -1;
      const skip =
        name === 'as stored'
          ? (c: Buffer, offset: number): Buffer => {
              if (bodyStart < 0) {
                const at = c.indexOf('\r\n\r\n');
                assert.ok(at >= 0, 'the part headers come in the first chunk');
                bodyStart = at + 4;
                bodyEnd = bodyStart + storedSize;
              }
              const from = Math.max(0, bodyStart - offset);
              const to = Math.min(c.length, bodyEnd - offset);
              return to > from ? c.subarray(from, to) : Buffer.alloc(0);
            }
          : (c: Buffer) => c;
      const r = await stream(`${web.base}/studies/${object.studyInstanceUid}`, accept, skip);
      assert.ok(r.bytes > SIZE, `the whole object came (${r.bytes} bytes)`);
      if (name === 'as stored')
        assert.equal(r.sha256, await fileHash(storedPath), 'the part is the stored file');
      const growth = r.maxRss - baseline;
      console.log(
        `${name}: RSS at most ${(r.maxRss / 1048576).toFixed(0)} MiB, grew by ${(growth / 1048576).toFixed(1)} MiB while streaming ${(r.bytes / 1048576).toFixed(0)} MiB`,
      );
      assert.ok(growth < BOUND, `RSS grew by ${growth} bytes (bound ${BOUND})`);
      // The whole process (server, client, the index) under the 200 MB.
      assert.ok(r.maxRss < 200 * 1024 * 1024, `RSS reached ${r.maxRss} bytes`);
    });
  }
});
