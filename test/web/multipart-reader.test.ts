/**
 * The streaming multipart reader (RFC 2046 5.1): bodies split at every possible chunk edge give
 * the same parts (property tests), preamble, epilogue and transport padding are ignored, each
 * malformed body fails with its reason, and a part's body is streamed with backpressure (the
 * source is not read ahead while a body is not consumed).
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  boundaryOf,
  MultipartError,
  type MultipartErrorReason,
  MultipartReader,
} from '../../src/web/multipart-reader.js';

fc.configureGlobal({ seed: 20261208, numRuns: 300 });

interface TestPart {
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

function encode(
  boundary: string,
  parts: readonly TestPart[],
  options: { preamble?: Buffer; epilogue?: Buffer; padding?: string } = {},
): Buffer {
  const out: Buffer[] = [];
  if (options.preamble && options.preamble.length > 0) out.push(options.preamble, Buffer.from('\r\n'));
  for (const p of parts) {
    out.push(Buffer.from(`--${boundary}${options.padding ?? ''}\r\n`));
    for (const [k, v] of Object.entries(p.headers)) out.push(Buffer.from(`${k}: ${v}\r\n`));
    out.push(Buffer.from('\r\n'), p.body, Buffer.from('\r\n'));
  }
  out.push(Buffer.from(`--${boundary}--`));
  if (options.epilogue) out.push(options.epilogue);
  return Buffer.concat(out);
}

/** Cuts `data` at the given offsets (sorted, deduplicated). */
function split(data: Buffer, cuts: readonly number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let prev = 0;
  for (const c of at) {
    if (c > prev) chunks.push(data.subarray(prev, c));
    prev = c;
  }
  if (prev < data.length) chunks.push(data.subarray(prev));
  return chunks;
}

async function readAll(
  chunks: readonly Buffer[],
  boundary: string,
): Promise<Array<{ headers: Record<string, string>; body: Buffer }>> {
  const reader = new MultipartReader(Readable.from(chunks), boundary);
  const out: Array<{ headers: Record<string, string>; body: Buffer }> = [];
  for await (const part of reader) {
    const bufs: Buffer[] = [];
    for await (const c of part.body) bufs.push(c as Buffer);
    out.push({ headers: { ...part.headers }, body: Buffer.concat(bufs) });
  }
  return out;
}

async function failure(chunks: readonly Buffer[], boundary: string): Promise<MultipartError> {
  try {
    await readAll(chunks, boundary);
  } catch (e) {
    assert.ok(e instanceof MultipartError, `expected a MultipartError, got ${String(e)}`);
    return e;
  }
  assert.fail('the body was accepted');
}

const BOUNDARY = 'b0undary-XyZ';

/** Bodies made to contain near-delimiters: CRLF, "--", pieces of the boundary. */
const trickyBody = fc
  .array(
    fc.oneof(
      fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
      fc.constantFrom(
        Buffer.from('\r\n'),
        Buffer.from('\r\n--'),
        Buffer.from(`\r\n--${BOUNDARY.slice(0, 5)}`),
        Buffer.from(`--${BOUNDARY}`),
        Buffer.from(`\r\n-${BOUNDARY}`),
        Buffer.from('\r'),
        Buffer.from(`\r\n--${BOUNDARY.slice(0, -1)}`),
      ),
    ),
    { maxLength: 12 },
  )
  .map((pieces) => Buffer.concat(pieces))
  // RFC 2046 5.1.1: the delimiter never occurs in a body (the CRLF before it may be the header block's).
  .filter((b) => !Buffer.concat([Buffer.from('\r\n'), b]).includes(`\r\n--${BOUNDARY}`));

const partArb = fc.record({
  headers: fc.constantFrom<Record<string, string>>(
    { 'Content-Type': 'application/dicom' },
    { 'Content-Type': 'application/octet-stream', 'Content-Location': 'http://x/bulk/1' },
    {},
  ),
  body: trickyBody,
});

describe('multipart reader: random bodies and chunk edges', () => {
  test('every split gives back the parts, headers and bodies', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(partArb, { minLength: 1, maxLength: 5 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        fc.option(trickyBody.filter((b) => !b.includes(`--${BOUNDARY}`) && b.length > 0)),
        fc.option(trickyBody),
        fc.constantFrom('', ' ', '\t  '),
        async (parts, cuts, preamble, epilogue, padding) => {
          const data = encode(BOUNDARY, parts, {
            ...(preamble ? { preamble } : {}),
            ...(epilogue ? { epilogue } : {}),
            padding,
          });
          const got = await readAll(split(data, cuts), BOUNDARY);
          assert.equal(got.length, parts.length);
          for (let i = 0; i < parts.length; i++) {
            const want = parts[i] as TestPart;
            const have = got[i] as { headers: Record<string, string>; body: Buffer };
            assert.deepEqual(have.body, want.body);
            assert.deepEqual(
              have.headers,
              Object.fromEntries(Object.entries(want.headers).map(([k, v]) => [k.toLowerCase(), v])),
            );
          }
        },
      ),
    );
  });

  test('one byte at a time', async () => {
    const parts: TestPart[] = [
      {
        headers: { 'Content-Type': 'application/dicom' },
        body: Buffer.from(`a\r\n--${BOUNDARY.slice(0, 4)}z\r`),
      },
      { headers: {}, body: Buffer.alloc(0) },
    ];
    const data = encode(BOUNDARY, parts);
    const got = await readAll(
      [...data].map((b) => Buffer.from([b])),
      BOUNDARY,
    );
    assert.deepEqual(
      got.map((p) => p.body),
      parts.map((p) => p.body),
    );
  });

  test('a cut anywhere before the closing delimiter is "truncated" (or "no-opening-delimiter" before the first)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(partArb, { minLength: 1, maxLength: 3 }), fc.nat(), async (parts, at) => {
        const data = encode(BOUNDARY, parts);
        const closeAt = data.length - `--${BOUNDARY}--`.length;
        const cut = at % closeAt;
        const e = await failure([data.subarray(0, cut + 1)], BOUNDARY);
        const firstComplete = `--${BOUNDARY}`.length;
        const expected: MultipartErrorReason[] =
          cut + 1 < firstComplete ? ['no-opening-delimiter'] : ['truncated', 'no-opening-delimiter'];
        assert.ok(expected.includes(e.reason), `${e.reason} at ${cut}`);
      }),
    );
  });
});

describe('multipart reader: rules and errors', () => {
  test('boundary from the Content-Type, quoted or not', () => {
    assert.equal(boundaryOf('multipart/related; type="application/dicom"; boundary="a b:c"'), 'a b:c');
    assert.equal(boundaryOf('multipart/related; type=application/dicom; boundary=XyZ'), 'XyZ');
    assert.equal(boundaryOf('Multipart/Related;Boundary=XyZ'), 'XyZ');
    // Orthanc's DICOMweb client: two UUIDs joined, 73 characters (over RFC 2046's 70).
    const orthanc = '8b2a7c6e-6d3a-4f0e-9a53-1c2d3e4f5a6b-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0';
    assert.equal(boundaryOf(`multipart/related; boundary=${orthanc}`), orthanc);
    for (const bad of [
      undefined,
      'application/dicom',
      'multipart/related; type="application/dicom"',
      'multipart/related; boundary=""',
      `multipart/related; boundary=${'x'.repeat(257)}`,
      'multipart/related; boundary="ends with space "',
    ])
      assert.throws(
        () => boundaryOf(bad),
        (e: unknown) => e instanceof MultipartError && e.reason === 'no-boundary',
        String(bad),
      );
  });

  test('no delimiter at all, garbage', async () => {
    const e = await failure([Buffer.from('this is not a multipart body at all')], BOUNDARY);
    assert.equal(e.reason, 'no-opening-delimiter');
    assert.equal((await failure([], BOUNDARY)).reason, 'no-opening-delimiter');
  });

  test('a body without its closing delimiter', async () => {
    const e = await failure([Buffer.from(`--${BOUNDARY}\r\nContent-Type: a/b\r\n\r\nhello`)], BOUNDARY);
    assert.equal(e.reason, 'truncated');
    const e2 = await failure(
      [Buffer.from(`--${BOUNDARY}\r\nContent-Type: a/b\r\n\r\nhello\r\n--${BOUNDARY}`)],
      BOUNDARY,
    );
    assert.equal(e2.reason, 'truncated');
  });

  test('garbage after a boundary', async () => {
    const e = await failure([Buffer.from(`--${BOUNDARY}garbage\r\n\r\nx\r\n--${BOUNDARY}--`)], BOUNDARY);
    assert.equal(e.reason, 'bad-delimiter');
  });

  test('a header block over the limit, a header line without a colon', async () => {
    const long = `--${BOUNDARY}\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\nx\r\n--${BOUNDARY}--`;
    assert.equal((await failure([Buffer.from(long)], BOUNDARY)).reason, 'header-too-large');
    const bad = `--${BOUNDARY}\r\nno colon here\r\n\r\nx\r\n--${BOUNDARY}--`;
    assert.equal((await failure([Buffer.from(bad)], BOUNDARY)).reason, 'bad-header');
  });

  test('folded header lines, repeated headers, LWSP before the CRLF', async () => {
    const data = Buffer.from(
      `preamble\r\n--${BOUNDARY} \t\r\nContent-Type: application/dicom;\r\n  transfer-syntax=1.2\r\nX-A: 1\r\nX-A: 2\r\n\r\nbody\r\n--${BOUNDARY}--\r\nepilogue --${BOUNDARY}\r\n`,
    );
    const [part] = await readAll([data], BOUNDARY);
    assert.equal(part?.headers['content-type'], 'application/dicom; transfer-syntax=1.2');
    assert.equal(part?.headers['x-a'], '1, 2');
    assert.equal(part?.body.toString(), 'body');
  });

  test('a source that fails is "source-error" on the part being read', async () => {
    async function* broken(): AsyncGenerator<Buffer> {
      yield Buffer.from(`--${BOUNDARY}\r\n\r\nsome bytes`);
      throw new Error('connection reset');
    }
    const reader = new MultipartReader(broken(), BOUNDARY);
    const part = await reader.next();
    assert.ok(part);
    await assert.rejects(
      async () => {
        for await (const _ of part.body) {
          // reading
        }
      },
      (e: unknown) => e instanceof MultipartError && e.reason === 'source-error',
    );
    await assert.rejects(reader.next(), (e: unknown) => e instanceof MultipartError);
  });

  test('skipping a body: next() drops the rest of it', async () => {
    const data = encode(BOUNDARY, [
      { headers: {}, body: Buffer.alloc(100_000, 1) },
      { headers: { 'X-N': '2' }, body: Buffer.from('second') },
    ]);
    const reader = new MultipartReader(Readable.from(split(data, [10, 5000, 70_000])), BOUNDARY);
    const first = await reader.next();
    assert.equal(first?.index, 0);
    const second = await reader.next();
    assert.equal(second?.headers['x-n'], '2');
    const bufs: Buffer[] = [];
    for await (const c of second?.body ?? []) bufs.push(c as Buffer);
    assert.equal(Buffer.concat(bufs).toString(), 'second');
    assert.equal(await reader.next(), undefined);
  });
});

describe('multipart reader: backpressure', () => {
  test('the source is not read ahead of a body nobody reads, and memory stays bounded', async () => {
    const chunk = Buffer.alloc(64 * 1024, 7);
    const total = 400; // 25 MiB of body
    let pulled = 0;
    async function* source(): AsyncGenerator<Buffer> {
      yield Buffer.from(`--${BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n`);
      for (let i = 0; i < total; i++) {
        pulled++;
        yield chunk;
      }
      yield Buffer.from(`\r\n--${BOUNDARY}--`);
    }
    const reader = new MultipartReader(source(), BOUNDARY, { highWaterMark: 64 * 1024 });
    const part = await reader.next();
    assert.ok(part);
    // Let the body fill its buffer, then check how far the source was read.
    part.body.once('readable', () => undefined);
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    assert.ok(pulled < 10, `the source was read ${pulled} chunks ahead of the consumer`);
    let bytes = 0;
    for await (const c of part.body) bytes += (c as Buffer).length;
    assert.equal(bytes, chunk.length * total);
    assert.equal(await reader.next(), undefined);
  });
});
