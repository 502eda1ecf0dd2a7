import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import {
  EnvelopeError,
  EnvelopeWriter,
  envelopeSize,
  HEADER_SIZE,
  isEnvelope,
  type KeyEncryptionKey,
  makeKeyring,
  newKeyEncryptionKey,
  type OpenedHeader,
  openHeader,
  openSegment,
  rewrapSlots,
  segmentCount,
  segmentPlace,
  TAG_SIZE,
} from '../../src/security/envelope.js';
import { formatKeyFile, parseKeyFile } from '../../src/security/key-file.js';

const SEG = 256;

/** Seals `plain` fed in chunks of `chunk` bytes: the whole envelope file. */
function seal(plain: Buffer, id: Buffer, kek: KeyEncryptionKey, chunk = 100, seg = SEG): Buffer {
  const w = new EnvelopeWriter(id, kek, seg);
  const parts: Buffer[] = [];
  for (let i = 0; i < plain.length; i += chunk) parts.push(...w.push(plain.subarray(i, i + chunk)));
  const { tail, header } = w.end();
  return Buffer.concat([header, ...parts, ...tail]);
}

/** Opens every segment of a file and joins them. */
function open(file: Buffer, id: Buffer, kek: KeyEncryptionKey | KeyEncryptionKey[]): Buffer {
  const keys = Array.isArray(kek) ? kek : [kek];
  const h = openHeader(
    file.subarray(0, HEADER_SIZE),
    id,
    file.length,
    makeKeyring(keys[0] as KeyEncryptionKey, keys.slice(1)),
  );
  return Buffer.concat(segments(file, h));
}

function segments(file: Buffer, h: OpenedHeader): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < segmentCount(h.plaintextSize, h.segmentSize); i++) {
    const p = segmentPlace(i, h.plaintextSize, h.segmentSize);
    out.push(openSegment(h, i, file.subarray(p.offset, p.offset + p.length + TAG_SIZE)));
  }
  return out;
}

function integrityError(e: unknown): boolean {
  return e instanceof EnvelopeError && e.code === 'ERR_ENVELOPE_INTEGRITY';
}

describe('envelope: round trips', () => {
  const kek = newKeyEncryptionKey();
  for (const size of [0, 1, SEG - 1, SEG, SEG + 1, 2 * SEG, 2 * SEG + 1, 37 * SEG + 5]) {
    for (const chunk of [1, 7, SEG, 1000]) {
      test(`${size} bytes in chunks of ${chunk}`, () => {
        const id = randomBytes(16);
        const plain = randomBytes(size);
        const file = seal(plain, id, kek, chunk);
        assert.equal(file.length, envelopeSize(size, SEG));
        assert.ok(isEnvelope(file));
        assert.deepEqual(open(file, id, kek), plain);
      });
    }
  }

  test('random ranges decrypt only their segments and equal the plaintext slices', () => {
    const id = randomBytes(16);
    const plain = randomBytes(20 * SEG + 17);
    const file = seal(plain, id, kek, 999);
    const h = openHeader(file.subarray(0, HEADER_SIZE), id, file.length, makeKeyring(kek));
    for (let n = 0; n < 200; n++) {
      const a = Math.floor(Math.random() * plain.length);
      const b = a + Math.floor(Math.random() * (plain.length - a + 1));
      const first = Math.floor(a / SEG);
      const last = Math.max(first, Math.floor((b - 1) / SEG));
      const parts: Buffer[] = [];
      for (let i = first; i <= last; i++) {
        const p = segmentPlace(i, h.plaintextSize, SEG);
        parts.push(openSegment(h, i, file.subarray(p.offset, p.offset + p.length + TAG_SIZE)));
      }
      const got = Buffer.concat(parts).subarray(a - first * SEG, b - first * SEG);
      assert.deepEqual(got, plain.subarray(a, b));
    }
  });

  test('the same plaintext gives different files (fresh data key and nonces)', () => {
    const id = randomBytes(16);
    const plain = randomBytes(3 * SEG);
    assert.notDeepEqual(
      seal(plain, id, kek).subarray(HEADER_SIZE),
      seal(plain, id, kek).subarray(HEADER_SIZE),
    );
  });
});

describe('envelope: tampering is detected', () => {
  const kek = newKeyEncryptionKey();
  const id = randomBytes(16);
  const plain = randomBytes(5 * SEG + 9);
  const file = seal(plain, id, kek);

  const fails = (f: Buffer, otherId = id, key: KeyEncryptionKey | KeyEncryptionKey[] = kek): void => {
    assert.throws(() => open(f, otherId, key), integrityError);
  };

  test('a flipped byte anywhere in the fixed header, a slot, a segment or a tag', () => {
    // Fixed header bytes (magic, version, sizes, id, nonce prefix, plaintext size).
    for (const at of [0, 8, 12, 16, 31, 32, 40, 47, 48]) {
      const f = Buffer.from(file);
      f[at] = (f[at] as number) ^ 0x01;
      fails(f);
    }
    // Both slots' bytes: one slot flipped leaves the other; both flipped fails.
    for (const at of [64, 70, 100, 143]) {
      const f = Buffer.from(file);
      f[at] = (f[at] as number) ^ 0x80;
      f[at + 448] = (f[at + 448] as number) ^ 0x80;
      // A changed key id reads as a key we do not hold: refused too, never opened.
      assert.throws(() => open(f, id, kek), EnvelopeError);
    }
    for (const at of [
      HEADER_SIZE,
      HEADER_SIZE + 10,
      HEADER_SIZE + SEG,
      HEADER_SIZE + SEG + TAG_SIZE - 1,
      file.length - 1,
    ]) {
      const f = Buffer.from(file);
      f[at] = (f[at] as number) ^ 0x04;
      fails(f);
    }
  });

  test('one damaged slot: the other still opens the object', () => {
    const f = Buffer.from(file);
    f[100] = (f[100] as number) ^ 0xff;
    assert.deepEqual(open(f, id, kek), plain);
  });

  test('truncated at a segment boundary, mid-segment, inside the header; extended', () => {
    fails(file.subarray(0, HEADER_SIZE + 2 * (SEG + TAG_SIZE)));
    fails(file.subarray(0, HEADER_SIZE + 2 * (SEG + TAG_SIZE) + 50));
    fails(file.subarray(0, file.length - 1));
    fails(file.subarray(0, 500));
    fails(Buffer.concat([file, Buffer.alloc(1)]));
    fails(Buffer.concat([file, file.subarray(HEADER_SIZE, HEADER_SIZE + SEG + TAG_SIZE)]));
  });

  test('a truncated file whose header claims the cut size fails (the header is authenticated)', () => {
    const cut = Buffer.from(file.subarray(0, HEADER_SIZE + 2 * (SEG + TAG_SIZE)));
    cut.writeBigUInt64BE(BigInt(2 * SEG - TAG_SIZE * 0), 40);
    fails(cut);
  });

  test('two segments swapped', () => {
    const f = Buffer.from(file);
    const a = HEADER_SIZE;
    const b = HEADER_SIZE + SEG + TAG_SIZE;
    const n = SEG + TAG_SIZE;
    const first = Buffer.from(f.subarray(a, a + n));
    f.copy(f, a, b, b + n);
    first.copy(f, b);
    fails(f);
  });

  test('files swapped between objects, or a segment taken from another object', () => {
    const id2 = randomBytes(16);
    const other = seal(plain, id2, kek);
    fails(other, id);
    // The header of the other object with its id rewritten to ours: its slot tag fails.
    const relabelled = Buffer.from(other);
    id.copy(relabelled, 16);
    fails(relabelled, id);
    // Our header with a segment of the other object.
    const mixed = Buffer.from(file);
    other.copy(
      mixed,
      HEADER_SIZE + SEG + TAG_SIZE,
      HEADER_SIZE + SEG + TAG_SIZE,
      HEADER_SIZE + 2 * (SEG + TAG_SIZE),
    );
    fails(mixed);
  });

  test('a wrong key-encryption key', () => {
    const other = newKeyEncryptionKey();
    assert.throws(
      () => open(file, id, other),
      (e: unknown) =>
        e instanceof EnvelopeError && e.code === 'ERR_ENVELOPE_NO_KEY' && /not configured/.test(e.message),
    );
    // The right id with other key bytes: the slot tag fails.
    fails(file, id, { id: kek.id, key: other.key });
  });
});

describe('envelope: rewrapping', () => {
  test('rotation to a new key in two slot writes, each state readable, the old key useless at the end', () => {
    const old = newKeyEncryptionKey();
    const next = newKeyEncryptionKey();
    const id = randomBytes(16);
    const plain = randomBytes(3 * SEG + 1);
    const file = seal(plain, id, old);
    const both = makeKeyring(next, [old]);
    const h = openHeader(file.subarray(0, HEADER_SIZE), id, file.length, both);
    const writes = rewrapSlots(file.subarray(0, HEADER_SIZE), h, next);
    assert.equal(writes.length, 2);
    const [w1, w2] = writes as [{ offset: number; bytes: Buffer }, { offset: number; bytes: Buffer }];
    // After the first write (crash there): readable with either key.
    const mid = Buffer.from(file);
    w1.bytes.copy(mid, w1.offset);
    assert.deepEqual(open(mid, id, old), plain);
    assert.deepEqual(open(mid, id, next), plain);
    // A torn first write: still readable with the old key.
    const torn = Buffer.from(file);
    w1.bytes.subarray(0, 30).copy(torn, w1.offset);
    assert.deepEqual(open(torn, id, old), plain);
    // Resumed from the middle: only the second write is left.
    const hMid = openHeader(mid.subarray(0, HEADER_SIZE), id, mid.length, both);
    assert.equal(hMid.kekId.toString('hex'), next.id.toString('hex'));
    assert.equal(rewrapSlots(mid.subarray(0, HEADER_SIZE), hMid, next).length, 1);
    const done = Buffer.from(mid);
    w2.bytes.copy(done, w2.offset);
    assert.deepEqual(open(done, id, next), plain);
    assert.throws(
      () => open(done, id, old),
      (e: unknown) => e instanceof EnvelopeError && e.code === 'ERR_ENVELOPE_NO_KEY',
    );
    const hDone = openHeader(done.subarray(0, HEADER_SIZE), id, done.length, both);
    assert.equal(rewrapSlots(done.subarray(0, HEADER_SIZE), hDone, next).length, 0);
    // The segments were not touched.
    assert.deepEqual(done.subarray(HEADER_SIZE), file.subarray(HEADER_SIZE));
  });
});

describe('key files', () => {
  test('format and parse round trip; malformed ones refused with a reason', () => {
    const kek = newKeyEncryptionKey();
    const back = parseKeyFile(formatKeyFile(kek), 'k');
    assert.deepEqual(back.id, kek.id);
    assert.deepEqual(back.key, kek.key);
    for (const [text, why] of [
      ['nope', /not JSON/],
      ['{"type":"x"}', /not a pacs key/],
      ['{"type":"pacs-kek","version":2}', /version 2/],
      ['{"type":"pacs-kek","version":1,"id":"zz","key":""}', /"id"/],
      [`{"type":"pacs-kek","version":1,"id":"${kek.id.toString('hex')}","key":"AAAA"}`, /"key"/],
    ] as const)
      assert.throws(
        () => parseKeyFile(text, 'k'),
        (e: unknown) => e instanceof Error && why.test(e.message) && !e.message.includes('\n'),
      );
  });
});
