/**
 * Encryption at rest in the object store (issue 14): objects sealed as they stream through
 * ObjectWriter and read back by segment through openObject/readObject; every kind of tampering
 * answers ERR_ARCHIVE_INTEGRITY (and tells the observer), never wrong bytes; plain objects of an
 * archive stored before a key was configured stay readable; real corpus files leave no patient
 * name or pixel bytes in clear on disk; key rotation rewraps without rewriting; key files.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { type Archive, openArchive } from '../../src/archive/archive.js';
import { ArchiveError } from '../../src/archive/errors.js';
import { encryptObjects, rotateKeys } from '../../src/archive/key-rotation.js';
import { ObjectStore, type ObjectStoreOptions, type StoredFile } from '../../src/archive/store.js';
import { EventBus, type PacsEvent } from '../../src/core/events.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { readDicomFile } from '../../src/io/dicom-file.js';
import {
  envelopeSize,
  HEADER_SIZE,
  isEnvelope,
  type Keyring,
  makeKeyring,
  newKeyEncryptionKey,
  TAG_SIZE,
} from '../../src/security/envelope.js';
import {
  formatKeyFile,
  KeyFileError,
  keyringOf,
  readKeyFile,
  writeNewKeyFile,
} from '../../src/security/key-file.js';
import { openArchivedFile, readFileInfo } from '../../src/services/storage/scu.js';
import { runPacs } from '../helpers/cli.js';
import { TEST_FILES } from '../helpers/corpus.js';
import { tempDir } from './helpers.js';

const SEG = 4096;
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function newDir(): string {
  const d = tempDir('pacs-encryption-test-');
  dirs.push(d);
  return d;
}

async function openStore(dataDir: string, options: Partial<ObjectStoreOptions> = {}): Promise<ObjectStore> {
  return ObjectStore.open({ dataDir, minFreeBytes: 0, durability: 'none', segmentSize: SEG, ...options });
}

/** Writes `bytes` in chunks of random sizes (1 byte to 3 segments) and commits. */
async function put(store: ObjectStore, bytes: Buffer): Promise<StoredFile> {
  const begun = await store.beginObject();
  if (!begun.ok) assert.fail(begun.error.message);
  const w = begun.value;
  for (let at = 0; at < bytes.length; ) {
    const n = Math.min(bytes.length - at, 1 + Math.floor(Math.random() * 3 * SEG));
    if (!w.write(Buffer.from(bytes.subarray(at, at + n)))) await w.drain();
    at += n;
  }
  const r = await w.commit();
  if (!r.ok) assert.fail(r.error.message);
  return r.value;
}

async function readAll(store: ObjectStore, path: string): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of store.readObject(path)) parts.push(c);
  return Buffer.concat(parts);
}

/** Reads as far as it can: the bytes before the failure and the failure. */
async function readUntilError(store: ObjectStore, path: string): Promise<{ got: Buffer; error: unknown }> {
  const parts: Uint8Array[] = [];
  try {
    for await (const c of store.readObject(path)) parts.push(c);
  } catch (error) {
    return { got: Buffer.concat(parts), error };
  }
  return { got: Buffer.concat(parts), error: undefined };
}

function isCode(code: string): (e: unknown) => boolean {
  return (e: unknown) => e instanceof ArchiveError && e.code === code && !e.message.includes('\n');
}

describe('encrypted object store: round trips', () => {
  const keyring = makeKeyring(newKeyEncryptionKey());

  test('every size around the segment boundaries, in random chunks; ranges read only their segments', async () => {
    const store = await openStore(newDir(), { keyring });
    for (const size of [0, 1, SEG - 1, SEG, SEG + 1, 2 * SEG, 3 * SEG - 1, 50 * SEG + 123]) {
      const plain = randomBytes(size);
      const file = await put(store, plain);
      assert.equal(file.size, size, 'the index keeps the plaintext size');
      assert.equal(statSync(store.absolutePath(file.path)).size, envelopeSize(size, SEG));
      assert.deepEqual(await readAll(store, file.path), plain);
      const h = await store.openObject(file.path);
      try {
        assert.equal(h.size, size);
        for (let n = 0; n < 50 && size > 0; n++) {
          const a = Math.floor(Math.random() * size);
          const b = a + Math.floor(Math.random() * (size - a + 1));
          const buf = Buffer.alloc(b - a + 7);
          const { bytesRead } = await h.read(buf, 3, b - a, a);
          assert.equal(bytesRead, b - a);
          assert.deepEqual(buf.subarray(3, 3 + bytesRead), plain.subarray(a, b));
          const chunks: Uint8Array[] = [];
          for await (const c of h.chunks({ start: a, end: b, chunkSize: 3 * SEG })) chunks.push(c);
          assert.deepEqual(Buffer.concat(chunks), plain.subarray(a, b));
        }
        // Past the end: nothing, as a file read.
        assert.equal((await h.read(Buffer.alloc(10), 0, 10, size)).bytesRead, 0);
      } finally {
        await h.close();
      }
    }
  });

  test('an archive stored without a key stays readable with one, and reads both kinds', async () => {
    const dir = newDir();
    const plainStore = await openStore(dir);
    const before = randomBytes(3 * SEG + 5);
    const old = await put(plainStore, before);
    const store = await openStore(dir, { keyring });
    const after = randomBytes(2 * SEG);
    const sealed = await put(store, after);
    assert.deepEqual(await readAll(store, old.path), before);
    assert.deepEqual(await readAll(store, sealed.path), after);
    assert.deepEqual(readFileSync(store.absolutePath(old.path)), before, 'old objects are left as they were');
    // Without the key, an encrypted object is refused (never read as if plain).
    await assert.rejects(readAll(plainStore, sealed.path), isCode('ERR_ARCHIVE_KEY'));
  });

  test('a store with another key refuses the object with ERR_ARCHIVE_KEY', async () => {
    const dir = newDir();
    const store = await openStore(dir, { keyring });
    const file = await put(store, randomBytes(100));
    const other = await openStore(dir, { keyring: makeKeyring(newKeyEncryptionKey()) });
    await assert.rejects(other.openObject(file.path), isCode('ERR_ARCHIVE_KEY'));
  });
});

describe('encrypted object store: tampering is detected and never served', () => {
  const keyring = makeKeyring(newKeyEncryptionKey());
  const size = 6 * SEG + 100;
  const seg = (i: number) => HEADER_SIZE + i * (SEG + TAG_SIZE);

  async function setup(): Promise<{
    store: ObjectStore;
    file: StoredFile;
    plain: Buffer;
    alerts: string[];
    abs: string;
  }> {
    const alerts: string[] = [];
    const store = await openStore(newDir(), {
      keyring,
      onIntegrityFailure: (p, d) => alerts.push(`${p}: ${d}`),
    });
    const plain = randomBytes(size);
    const file = await put(store, plain);
    return { store, file, plain, alerts, abs: store.absolutePath(file.path) };
  }

  /** Reading fails with ERR_ARCHIVE_INTEGRITY; what came before is a true prefix; the observer was told. */
  async function assertRefused(s: Awaited<ReturnType<typeof setup>>): Promise<void> {
    const { got, error } = await readUntilError(s.store, s.file.path);
    assert.ok(isCode('ERR_ARCHIVE_INTEGRITY')(error), `integrity error, got ${String(error)}`);
    assert.deepEqual(got, s.plain.subarray(0, got.length), 'only authenticated bytes before the failure');
    assert.ok(got.length < s.plain.length);
    assert.ok(s.alerts.length > 0 && s.alerts[0]?.startsWith(s.file.path), 'the observer was told');
  }

  function flip(path: string, at: number): void {
    const b = readFileSync(path);
    b[at] = (b[at] as number) ^ 0x10;
    writeFileSync(path, b);
  }

  for (const [what, at] of [
    ['the fixed header (plaintext size)', 45],
    ['the object id in the header', 20],
    ['a segment', seg(2) + 17],
    ['a tag', seg(3) + SEG + 3],
    ['the last segment', seg(6) + 50],
  ] as const)
    test(`a flipped byte in ${what}`, async () => {
      const s = await setup();
      flip(s.abs, at);
      await assertRefused(s);
    });

  test('a range away from a damaged segment reads (only the segments a read covers are decrypted); one over it fails', async () => {
    const s = await setup();
    flip(s.abs, seg(5) + 9);
    const h = await s.store.openObject(s.file.path);
    try {
      const buf = Buffer.alloc(2 * SEG);
      assert.equal((await h.read(buf, 0, buf.length, SEG + 10)).bytesRead, buf.length);
      assert.deepEqual(buf, s.plain.subarray(SEG + 10, 3 * SEG + 10));
      await assert.rejects(h.read(buf, 0, 100, 5 * SEG + 50), isCode('ERR_ARCHIVE_INTEGRITY'));
    } finally {
      await h.close();
    }
  });

  test('a flipped byte in one key slot is survived (the other slot), in both it is refused', async () => {
    const s = await setup();
    flip(s.abs, 64 + 40);
    assert.deepEqual(await readAll(s.store, s.file.path), s.plain);
    flip(s.abs, 512 + 40);
    await assertRefused(s);
  });

  for (const [what, cut] of [
    ['at a segment boundary', seg(3)],
    ['mid-segment', seg(3) + 1000],
    ['inside the header', 700],
    ['by one byte', -1],
  ] as const)
    test(`truncated ${what}`, async () => {
      const s = await setup();
      const b = readFileSync(s.abs);
      writeFileSync(s.abs, b.subarray(0, cut < 0 ? b.length + cut : cut));
      await assertRefused(s);
    });

  test('extended by a copy of a segment', async () => {
    const s = await setup();
    const b = readFileSync(s.abs);
    writeFileSync(s.abs, Buffer.concat([b, b.subarray(seg(1), seg(2))]));
    await assertRefused(s);
  });

  test('two segments swapped', async () => {
    const s = await setup();
    const b = readFileSync(s.abs);
    const one = Buffer.from(b.subarray(seg(1), seg(2)));
    b.copy(b, seg(1), seg(2), seg(3));
    one.copy(b, seg(2));
    writeFileSync(s.abs, b);
    await assertRefused(s);
  });

  test('files swapped between two objects', async () => {
    const s = await setup();
    const other = await put(s.store, randomBytes(size));
    const otherAbs = s.store.absolutePath(other.path);
    const tmp = `${s.abs}.x`;
    renameSync(s.abs, tmp);
    renameSync(otherAbs, s.abs);
    renameSync(tmp, otherAbs);
    await assert.rejects(s.store.openObject(s.file.path), isCode('ERR_ARCHIVE_INTEGRITY'));
    await assert.rejects(s.store.openObject(other.path), isCode('ERR_ARCHIVE_INTEGRITY'));
    assert.match(s.alerts.join('\n'), /another object/);
  });

  test('a wrong key-encryption key (same id, other bytes): refused as tampered', async () => {
    const s = await setup();
    const wrong = { id: keyring.current.id, key: randomBytes(32) };
    const other = await openStore(s.store.dataDir, { keyring: makeKeyring(wrong) });
    await assert.rejects(other.openObject(s.file.path), isCode('ERR_ARCHIVE_INTEGRITY'));
  });
});

describe('encrypted archive: real corpus files', () => {
  const corpus = [
    'CT_small.dcm',
    'MR_small.dcm',
    'rtdose.dcm',
    'ExplVR_BigEnd.dcm',
    'SC_rgb_rle_2frame.dcm',
    'JPEG2000.dcm',
    'liver_1frame.dcm',
  ].map((f) => join(TEST_FILES, f));
  let archive: Archive | undefined;
  after(async () => archive?.close());

  test('no object file holds the patient name or a run of pixel bytes in clear; read back intact', async () => {
    const dataDir = newDir();
    const events = new EventBus();
    const seen: PacsEvent[] = [];
    events.subscribe((e) => seen.push(e));
    const a = await openArchive({
      dataDir,
      durability: 'none',
      keyring: makeKeyring(newKeyEncryptionKey()),
      events,
    });
    archive = a;
    const { createReadStream } = await import('node:fs');
    for (const path of corpus) {
      const r = await a.ingest(createReadStream(path), { format: 'part10', source: 'TEST', via: 'import' });
      assert.ok(r.ok, `${path}: ${r.ok ? '' : r.error.message}`);
      assert.equal(r.value.status, 'stored');
      if (r.value.status !== 'stored') return;
      const source = readFileSync(path);
      const stored = readFileSync(a.store.absolutePath(r.value.file.path));
      const name = (await readDicomFile(path, { stopAtTag: TAG.PixelData })).dataSet.string(TAG.PatientName);
      assert.ok(name && name.length >= 4, `${path} has a patient name`);
      assert.equal(
        stored.indexOf(Buffer.from(name, 'latin1')),
        -1,
        `${path}: the patient name is not in clear`,
      );
      // The pixel data fills the end of these files: a varied 64-byte run after the first 40%.
      let at = Math.floor(source.length * 0.4);
      while (at + 64 < source.length && new Set(source.subarray(at, at + 64)).size <= 2) at += 64;
      const run = source.subarray(at, at + 64);
      assert.ok(new Set(run).size > 2, `${path}: a varied run of pixel bytes`);
      assert.equal(stored.indexOf(run), -1, `${path}: no pixel bytes in clear`);
      // Read back through the store: the same data set bytes as the source file.
      const info = await readFileInfo(path);
      assert.ok(info.ok);
      const handle = await a.store.openObject(r.value.file.path);
      const opened = await openArchivedFile(r.value.file.path, handle, handle.size);
      assert.ok(opened.ok);
      const back = Buffer.alloc(handle.size - opened.value.dataSetOffset);
      await handle.read(back, 0, back.length, opened.value.dataSetOffset);
      await opened.value.close();
      assert.deepEqual(back, source.subarray(info.value.dataSetOffset), `${path}: intact`);
      assert.equal(handle.size, r.value.file.size);
    }
    // A flipped byte: an integrity failure on the bus.
    const first = await a.index.listInstanceFiles()[Symbol.asyncIterator]().next();
    assert.ok(!first.done);
    const abs = a.store.absolutePath(first.value.path);
    const b = readFileSync(abs);
    b[HEADER_SIZE + 5] = (b[HEADER_SIZE + 5] as number) ^ 1;
    writeFileSync(abs, b);
    await assert.rejects(readAll(a.store, first.value.path), isCode('ERR_ARCHIVE_INTEGRITY'));
    const alert = seen.find((e) => e.type === 'security-alert');
    assert.ok(alert && alert.type === 'security-alert' && alert.kind === 'integrity-failure');
  });
});

describe('key rotation', () => {
  test('rewraps every data key without rewriting the objects; only the new key reads them after; resumable', async () => {
    const dir = newDir();
    const k1 = newKeyEncryptionKey();
    const k2 = newKeyEncryptionKey();
    const plainStore = await openStore(dir);
    const plain = await put(plainStore, randomBytes(1000));
    const store = await openStore(dir, { keyring: makeKeyring(k1) });
    const objects = new Map<string, Buffer>();
    for (let i = 0; i < 20; i++) {
      const bytes = randomBytes(Math.floor(Math.random() * 5 * SEG));
      objects.set((await put(store, bytes)).path, bytes);
    }
    const segmentsBefore = new Map(
      [...objects.keys()].map((p) => [p, readFileSync(store.absolutePath(p)).subarray(HEADER_SIZE)]),
    );
    const both: Keyring = makeKeyring(k2, [k1]);
    const report = await rotateKeys(store, both);
    assert.deepEqual(
      { ...report, failed: report.failed.length },
      { checked: 21, rewrapped: 20, current: 0, plain: 1, failed: 0 },
    );
    const onlyNew = await openStore(dir, { keyring: makeKeyring(k2) });
    const onlyOld = await openStore(dir, { keyring: makeKeyring(k1) });
    for (const [p, bytes] of objects) {
      assert.deepEqual(await readAll(onlyNew, p), bytes);
      await assert.rejects(onlyOld.openObject(p), isCode('ERR_ARCHIVE_KEY'));
      assert.deepEqual(
        readFileSync(store.absolutePath(p)).subarray(HEADER_SIZE),
        segmentsBefore.get(p),
        'segments untouched',
      );
    }
    assert.equal((await readAll(onlyNew, plain.path)).length, 1000);
    const again = await rotateKeys(store, both);
    assert.equal(again.current, 20, 'a second run has nothing left to do');
    assert.equal(again.rewrapped, 0);
  });
});

describe('pacs archive encrypt', () => {
  test('encrypts the plain objects of an archive in place: same paths, same bytes; resumable', async () => {
    const dir = newDir();
    const plainStore = await openStore(dir);
    const objects = new Map<string, Buffer>();
    for (let i = 0; i < 12; i++) {
      const bytes = randomBytes(Math.floor(Math.random() * 4 * SEG));
      objects.set((await put(plainStore, bytes)).path, bytes);
    }
    const kek = newKeyEncryptionKey();
    const store = await openStore(dir, { keyring: makeKeyring(kek) });
    const sealed = await put(store, randomBytes(500));
    const report = await encryptObjects(store, { concurrency: 3 });
    assert.deepEqual(
      { ...report, failed: report.failed.length },
      { checked: 13, encrypted: 12, already: 1, failed: 0 },
    );
    for (const [p, bytes] of objects) {
      assert.ok(isEnvelope(readFileSync(store.absolutePath(p))), `${p} encrypted on disk`);
      assert.deepEqual(await readAll(store, p), bytes);
    }
    assert.equal(readdirSync(join(dir, 'tmp')).length, 0, 'no temporary file left');
    // The command line, run again: nothing left to do.
    const keyFile = join(dir, 'kek.json');
    writeFileSync(keyFile, formatKeyFile(kek), { mode: 0o600 });
    const r = await runPacs(['archive', 'encrypt', '--data', dir, '--key-file', keyFile, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const cli = JSON.parse(r.stdout) as { checked: number; encrypted: number; already: number };
    assert.deepEqual([cli.checked, cli.encrypted, cli.already], [13, 0, 13]);
    assert.ok(sealed.size === 500);
  });
});

describe('key files', () => {
  test('previousKeyFiles without keyFile is refused; no keyFile is no encryption', async () => {
    assert.equal(await keyringOf({}), undefined);
    await assert.rejects(
      keyringOf({ previousKeyFiles: ['x'] }),
      (e: unknown) => e instanceof KeyFileError && /without/.test(e.message),
    );
  });

  test('new-key writes mode 0600 and refuses to overwrite; bad files refused with one-line reasons', async () => {
    const dir = newDir();
    const path = join(dir, 'kek.json');
    const kek = await writeNewKeyFile(path);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.deepEqual((await readKeyFile(path)).key, kek.key);
    await assert.rejects(
      writeNewKeyFile(path),
      (e: unknown) => e instanceof KeyFileError && /never overwritten/.test(e.message),
    );
    const refused = async (p: string, why: RegExp) =>
      assert.rejects(
        readKeyFile(p),
        (e: unknown) => e instanceof KeyFileError && why.test(e.message) && !e.message.includes('\n'),
      );
    await refused(join(dir, 'missing.json'), /does not exist/);
    chmodSync(path, 0o644);
    await refused(path, /readable by others \(mode 0644\)/);
    chmodSync(path, 0o640);
    await refused(path, /readable by others/);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"type":"pacs-kek","version":1,"id":"00","key":"x"}', { mode: 0o600 });
    await refused(bad, /malformed/);
    await refused(dir, /not a regular file/);
  });
});
