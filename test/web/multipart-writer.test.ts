/**
 * The streaming multipart/related writer (src/web/multipart-writer.ts): the RFC 2046 framing read
 * back by an independent parser, part headers, a body whose announced length is wrong, file
 * ranges, backpressure (a slow receiver never has more than a chunk or two read ahead of it), and
 * a receiver that goes away (the part being read stops and its file is closed).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import {
  fileRange,
  type MultipartPart,
  multipartChunks,
  multipartContentType,
  multipartStream,
  newBoundary,
  writeMultipart,
} from '../../src/web/multipart-writer.js';
import { eventually, openDescriptors, parseMultipart } from './retrieve-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'multipart-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const all: Buffer[] = [];
  for await (const c of chunks) all.push(Buffer.from(c));
  return Buffer.concat(all);
}

async function* pieces(...texts: string[]): AsyncGenerator<Uint8Array> {
  for (const t of texts) yield Buffer.from(t);
}

describe('multipart writer', () => {
  it('frames parts with their headers, as an independent parser reads them', async () => {
    const boundary = newBoundary();
    assert.match(boundary, /^[0-9a-f]{32}$/);
    assert.notEqual(boundary, newBoundary());
    const parts: MultipartPart[] = [
      {
        contentType: 'application/dicom; transfer-syntax=1.2.840.10008.1.2.1',
        contentLength: 5,
        body: Buffer.from('ABCDE'),
      },
      {
        contentType: 'application/octet-stream',
        contentLocation: 'http://h/x',
        headers: { 'X-Note': 'a\r\nInjected: yes' },
        body: pieces('12', '', '345', '\r\n--not-the-boundary'),
      },
      { contentType: 'text/plain', body: new Uint8Array(0) },
    ];
    const body = await collect(multipartChunks(parts, boundary));
    const parsed = parseMultipart(body, boundary);
    assert.equal(parsed.length, 3);
    assert.deepEqual(parsed[0]?.headers, {
      'content-type': 'application/dicom; transfer-syntax=1.2.840.10008.1.2.1',
      'content-length': '5',
    });
    assert.equal(parsed[0]?.body.toString(), 'ABCDE');
    assert.equal(parsed[1]?.headers['content-location'], 'http://h/x');
    assert.equal(parsed[1]?.headers['x-note'], 'a Injected: yes', 'no header injection through a value');
    assert.equal(parsed[1]?.headers.injected, undefined);
    assert.equal(parsed[1]?.body.toString(), '12345\r\n--not-the-boundary');
    assert.equal(parsed[2]?.body.length, 0);
    assert.equal(
      multipartContentType('application/dicom', boundary, { 'transfer-syntax': '*', start: '<a b>' }),
      `multipart/related; type="application/dicom"; transfer-syntax=*; start="<a b>"; boundary=${boundary}`,
    );
  });

  it('writes only the close delimiter for no parts', async () => {
    const body = await collect(multipartChunks([], 'b'));
    assert.equal(body.toString(), '--b--\r\n');
  });

  it('fails (so the answer is cut) when a body is not the length it announced', async () => {
    const parts: MultipartPart[] = [{ contentType: 'x/y', contentLength: 10, body: pieces('short') }];
    await assert.rejects(collect(multipartChunks(parts, 'b')), /announced 10 bytes and had 5/);
  });

  it('reads file ranges, and fails for a file shorter than its range', async () => {
    const path = join(dir, 'range.bin');
    writeFileSync(path, Buffer.from('0123456789'));
    assert.equal((await collect(fileRange(path, { start: 2, end: 7, chunkSize: 2 }))).toString(), '23456');
    assert.equal((await collect(fileRange(path))).toString(), '0123456789');
    await assert.rejects(collect(fileRange(path, { end: 20 })), /ended at 10, before 20/);
    assert.equal(openDescriptors(path), 0);
  });

  it('honours backpressure: a slow receiver never has the source read far ahead of it', async () => {
    let produced = 0;
    let consumed = 0;
    let maxAhead = 0;
    const chunk = Buffer.alloc(64 * 1024, 7);
    async function* body(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 64; i++) {
        produced += chunk.length;
        maxAhead = Math.max(maxAhead, produced - consumed);
        yield chunk;
      }
    }
    const slow = new Writable({
      highWaterMark: 16 * 1024,
      write(c: Buffer, _enc, cb) {
        setImmediate(() => {
          consumed += c.length;
          cb();
        });
      },
    });
    await writeMultipart(slow, [{ contentType: 'x/y', contentLength: 64 * chunk.length, body: body() }], 'b');
    assert.equal(produced, 64 * chunk.length);
    assert.ok(maxAhead <= 3 * chunk.length, `read ${maxAhead} bytes ahead of the receiver`);
  });

  it('stops reading and closes the file when the receiver goes away (writeMultipart and the stream)', async () => {
    const path = join(dir, 'big.bin');
    writeFileSync(path, Buffer.alloc(8 * 1024 * 1024, 1));
    // A Writable that takes a few chunks, then is destroyed as a closed socket would be.
    let got = 0;
    const socket = new Writable({
      highWaterMark: 1024,
      write(c: Buffer, _enc, cb) {
        got += c.length;
        if (got > 1024 * 1024) {
          cb();
          socket.destroy();
        } else setImmediate(cb);
      },
    });
    socket.on('error', () => undefined);
    const parts = [{ contentType: 'x/y', body: fileRange(path, { chunkSize: 64 * 1024 }) }];
    await assert.rejects(writeMultipart(socket, parts, 'b'));
    assert.equal(openDescriptors(path), 0, 'writeMultipart closed the file');
    assert.ok(got < 2 * 1024 * 1024, 'reading stopped');

    // The Readable form: destroyed after the first chunks (fastify does this when the client goes away).
    let finalized = false;
    async function* guarded(): AsyncGenerator<Uint8Array> {
      try {
        yield* fileRange(path, { chunkSize: 64 * 1024 });
      } finally {
        finalized = true;
      }
    }
    const stream = multipartStream([{ contentType: 'x/y', body: guarded() }], 'b');
    let read = 0;
    await new Promise<void>((resolve) => {
      stream.on('data', (c: Buffer) => {
        read += c.length;
        if (read > 256 * 1024) {
          stream.destroy();
          resolve();
        }
      });
    });
    await eventually(() => finalized && openDescriptors(path) === 0, 'the stream closed the file');
  });
});
