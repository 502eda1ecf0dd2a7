/**
 * The streamed ZIP writer of WADO-RS (src/web/dicomweb/zip.ts) read back by Info-ZIP's `unzip -t`
 * and Python's zipfile: plain entries, entries of unknown size (ZIP64 fields in the local header
 * and the data descriptor), and more than 65,535 entries (the ZIP64 end of central directory).
 * A 4 GiB entry is left to the bench: too large for a test.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, describe, it } from 'node:test';
import { type ZipEntry, zipChunks } from '../../src/web/dicomweb/zip.js';

const dir = mkdtempSync(join(tmpdir(), 'zip-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function writeZip(
  name: string,
  entries: Iterable<ZipEntry> | AsyncIterable<ZipEntry>,
): Promise<string> {
  const path = join(dir, name);
  await pipeline(Readable.from(zipChunks(entries)), createWriteStream(path));
  return path;
}

/** Python's view: {name: [size, sha256]} after testzip(). */
function pythonRead(path: string): Record<string, [number, string]> {
  const py = spawnSync(
    'python3',
    [
      '-c',
      'import sys,zipfile,hashlib,json\nz=zipfile.ZipFile(sys.argv[1])\nassert z.testzip() is None\n' +
        'print(json.dumps({i.filename: [i.file_size, hashlib.sha256(z.read(i)).hexdigest()] for i in z.infolist()}))',
      path,
    ],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  assert.equal(py.status, 0, py.stderr);
  return JSON.parse(py.stdout) as Record<string, [number, string]>;
}

function unzipTest(path: string): void {
  const r = spawnSync('unzip', ['-tq', path], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  assert.ok(!r.error, 'unzip is installed (apt-get install unzip)');
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /No errors detected/);
}

async function* pieces(...bufs: Buffer[]): AsyncGenerator<Uint8Array> {
  yield* bufs;
}

describe('ZIP writer', () => {
  it('writes entries of known and unknown size that unzip and Python read back', async () => {
    const { createHash } = await import('node:crypto');
    const a = Buffer.from('first entry');
    const b1 = Buffer.alloc(300_000, 3);
    const b2 = Buffer.from('tail');
    const path = await writeZip('mixed.zip', [
      { name: '1.2.3/1.2.4/1.2.5.dcm', sizeHint: a.length, body: pieces(a) },
      { name: 'unknown-size.dcm', body: pieces(b1, b2) },
      { name: 'empty.dcm', sizeHint: 0, body: pieces() },
    ]);
    unzipTest(path);
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    assert.deepEqual(pythonRead(path), {
      '1.2.3/1.2.4/1.2.5.dcm': [a.length, sha(a)],
      'unknown-size.dcm': [b1.length + b2.length, sha(Buffer.concat([b1, b2]))],
      'empty.dcm': [0, sha(Buffer.alloc(0))],
    });
  });

  it('writes more than 65,535 entries with the ZIP64 end records', async () => {
    const n = 70_000;
    function* entries(): Generator<ZipEntry> {
      for (let i = 0; i < n; i++) {
        const body = Buffer.from(String(i));
        yield { name: `e${i}`, sizeHint: body.length, body: pieces(body) };
      }
    }
    const path = await writeZip('many.zip', entries());
    unzipTest(path);
    const read = pythonRead(path);
    assert.equal(Object.keys(read).length, n);
    assert.equal(read.e69999?.[0], 5);
  });
});
