/**
 * The one ingest entry point (Archive.createIngestStream / Archive.ingest) against a real file
 * system on every index engine: what is kept for each outcome, and that nothing partial is left
 * for each failure (a cut stream, an input that fails, bytes that do not parse, a UID mismatch,
 * a disk that fills up mid-write), duplicates per policy, and backpressure.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, test } from 'node:test';
import { Archive, type DuplicatePolicy, type IngestOutcome } from '../../src/archive/archive.js';
import type { ArchiveError } from '../../src/archive/errors.js';
import type {
  ArchiveIndex,
  InsertOptions,
  InsertResult,
  InstanceRecord,
  LevelHeaders,
} from '../../src/archive/index/archive-index.js';
import { ObjectStore } from '../../src/archive/store.js';
import { EventBus, type EventOf } from '../../src/core/events.js';
import type { Result } from '../../src/core/result.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { parseDicom } from '../../src/dicom/reader.js';
import { EXPLICIT_VR_LE } from '../../src/dicom/uid.js';
import { encodeDataSet, encodePart10 } from '../../src/dicom/writer.js';
import { run } from '../helpers/cli.js';
import { ALL_ENGINES, CT_IMAGE, files, MR_IMAGE, makeDataSet, type TestEngine, tempDir } from './helpers.js';

interface Rig {
  readonly archive: Archive;
  readonly dataDir: string;
  readonly events: EventOf<'object-received'>[];
}

async function withRig(
  engine: TestEngine,
  options: { policy?: DuplicatePolicy; dataDir?: string; wrap?: (index: ArchiveIndex) => ArchiveIndex },
  fn: (rig: Rig) => Promise<void>,
): Promise<void> {
  const dataDir = options.dataDir ?? tempDir('pacs-ingest-test-');
  const opened = await engine.open({ durability: 'fsync' });
  const store = await ObjectStore.open({ dataDir, minFreeBytes: 0 });
  const bus = new EventBus();
  const events: EventOf<'object-received'>[] = [];
  bus.on('object-received', (e) => events.push(e));
  const index = options.wrap ? options.wrap(opened.index) : opened.index;
  const archive = new Archive(store, index, {
    events: bus,
    ...(options.policy ? { duplicatePolicy: options.policy } : {}),
  });
  try {
    await fn({ archive, dataDir, events });
  } finally {
    await opened.cleanup();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

function chunks(bytes: Uint8Array, size = 4096): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let o = 0; o < bytes.length; o += size) out.push(bytes.subarray(o, o + size));
  return out;
}

const C_STORE = { transferSyntaxUid: EXPLICIT_VR_LE, source: 'MODALITY', via: 'C-STORE' } as const;

function expectedOf(sopUid: string) {
  return { ...C_STORE, expected: { sopClassUid: CT_IMAGE, sopInstanceUid: sopUid } };
}

function failed(r: Result<IngestOutcome, ArchiveError>): ArchiveError {
  if (r.ok) assert.fail(`expected a failure, got ${r.value.status}`);
  return r.error;
}

function value(r: Result<IngestOutcome, ArchiveError>): IngestOutcome {
  if (!r.ok) assert.fail(r.error.message);
  return r.value;
}

/** Nothing of the object is kept: no file, no temporary file, no row. */
async function assertNothingKept(rig: Rig, sopUid: string): Promise<void> {
  assert.deepEqual(files(rig.dataDir), { objects: [], tmp: [] });
  assert.equal(await rig.archive.index.findInstance(sopUid), undefined);
  assert.deepEqual(rig.events, []);
}

for (const engine of ALL_ENGINES) {
  describe(`ingest on ${engine.name}`, () => {
    test('a data set stream: our file meta, then the bytes as sent; indexed; one event', () =>
      withRig(engine, {}, async (rig) => {
        const bytes = encodeDataSet(makeDataSet({ sopUid: '1.2.3.4.1.1' }), EXPLICIT_VR_LE);
        const outcome = value(await rig.archive.ingest(chunks(bytes, 100), expectedOf('1.2.3.4.1.1')));
        assert.equal(outcome.status, 'stored');
        const path = outcome.status === 'stored' ? outcome.file.path : '';
        const file = readFileSync(join(rig.dataDir, path));
        const meta = parseDicom(file, { stopAtTag: TAG.PixelData });
        assert.equal(meta.transferSyntax, EXPLICIT_VR_LE);
        assert.equal(meta.meta?.string(TAG.MediaStorageSOPInstanceUID), '1.2.3.4.1.1');
        assert.equal(meta.meta?.string(TAG.MediaStorageSOPClassUID), CT_IMAGE);
        assert.equal(meta.meta?.string(TAG.SourceApplicationEntityTitle), 'MODALITY');
        assert.deepEqual(file.subarray(file.length - bytes.length), Buffer.from(bytes));
        const row = await rig.archive.index.findInstance('1.2.3.4.1.1');
        assert.equal(row?.path, path);
        assert.equal(row?.size, file.length);
        assert.equal(row?.callingAet, 'MODALITY');
        assert.deepEqual(files(rig.dataDir), { objects: [path], tmp: [] });
        assert.deepEqual(rig.events, [
          {
            type: 'object-received',
            outcome: 'stored',
            sopInstanceUid: '1.2.3.4.1.1',
            sopClassUid: CT_IMAGE,
            studyInstanceUid: '1.2.3.4',
            patientId: 'PID1',
            bytes: bytes.length,
            source: 'MODALITY',
            via: 'C-STORE',
            patientName: 'Doe^Jane',
            transferSyntaxUid: EXPLICIT_VR_LE,
            modality: 'CT',
          },
        ]);
      }));

    test('a Part-10 stream piped in: its meta is replaced by ours, the data set kept; UIDs from the data set', () =>
      withRig(engine, {}, async (rig) => {
        const ds = makeDataSet({ sopUid: '1.2.3.4.1.2', sopClass: MR_IMAGE });
        const part10 = encodePart10(ds, EXPLICIT_VR_LE);
        const dataSet = encodeDataSet(ds, EXPLICIT_VR_LE);
        const stream = rig.archive.createIngestStream({ format: 'part10', source: 'alice', via: 'STOW-RS' });
        // One byte at a time through the preamble and meta, then bigger pieces.
        await pipeline(
          Readable.from([...chunks(part10.subarray(0, 300), 1), ...chunks(part10.subarray(300))]),
          stream,
        );
        const outcome = value(await stream.outcome);
        assert.equal(outcome.status, 'stored');
        const file = readFileSync(join(rig.dataDir, outcome.status === 'stored' ? outcome.file.path : ''));
        assert.deepEqual(file.subarray(file.length - dataSet.length), Buffer.from(dataSet));
        const meta = parseDicom(file, { stopAtTag: TAG.PixelData }).meta;
        assert.equal(meta?.string(TAG.MediaStorageSOPClassUID), MR_IMAGE);
        assert.equal(meta?.string(TAG.MediaStorageSOPInstanceUID), '1.2.3.4.1.2');
        assert.equal(rig.events.length, 1);
        assert.equal(rig.events[0]?.via, 'STOW-RS');
        assert.equal(rig.events[0]?.source, 'alice');
        assert.equal(rig.events[0]?.bytes, dataSet.length);
      }));

    test('a stream that ends early (inside Pixel Data) keeps nothing: ERR_ARCHIVE_TRUNCATED', () =>
      withRig(engine, {}, async (rig) => {
        const bytes = encodeDataSet(makeDataSet({ sopUid: '1.2.3.4.1.3' }), EXPLICIT_VR_LE);
        const cut = bytes.subarray(0, bytes.length - 3);
        const error = failed(await rig.archive.ingest(chunks(cut), expectedOf('1.2.3.4.1.3')));
        assert.equal(error.code, 'ERR_ARCHIVE_TRUNCATED');
        await assertNothingKept(rig, '1.2.3.4.1.3');
      }));

    test('an input that fails midway (an aborted association) keeps nothing: ERR_ARCHIVE_ABORTED', () =>
      withRig(engine, {}, async (rig) => {
        const bytes = encodeDataSet(makeDataSet({ sopUid: '1.2.3.4.1.4' }), EXPLICIT_VR_LE);
        const cause = new Error('peer vanished');
        async function* source(): AsyncIterable<Uint8Array> {
          yield bytes.subarray(0, 200);
          throw cause;
        }
        const error = failed(await rig.archive.ingest(source(), expectedOf('1.2.3.4.1.4')));
        assert.equal(error.code, 'ERR_ARCHIVE_ABORTED');
        assert.equal(error.cause, cause);
        await assertNothingKept(rig, '1.2.3.4.1.4');
      }));

    test('bytes that do not parse keep nothing: ERR_ARCHIVE_UNPARSABLE; a Part-10 stream without its meta too', () =>
      withRig(engine, {}, async (rig) => {
        const good = encodeDataSet(makeDataSet({ sopUid: '1.2.3.4.1.5' }), EXPLICIT_VR_LE);
        // A valid start, then an element with a VR that is not one (PS3.5 6.2).
        const bad = Buffer.concat([
          good.subarray(0, 64),
          Buffer.from([0x10, 0x00, 0x10, 0x00, 0x5a, 0x5a, 4, 0]),
        ]);
        const error = failed(await rig.archive.ingest([bad, good.subarray(64)], expectedOf('1.2.3.4.1.5')));
        assert.equal(error.code, 'ERR_ARCHIVE_UNPARSABLE', error.message);
        const raw = failed(
          await rig.archive.ingest([good], { format: 'part10', source: null, via: 'upload' }),
        );
        assert.equal(raw.code, 'ERR_ARCHIVE_UNPARSABLE', raw.message);
        await assertNothingKept(rig, '1.2.3.4.1.5');
      }));

    test('a data set whose SOP Instance or Class UID is not the one expected keeps nothing: ERR_ARCHIVE_UID_MISMATCH', () =>
      withRig(engine, {}, async (rig) => {
        const bytes = encodeDataSet(makeDataSet({ sopUid: '1.2.3.4.1.6' }), EXPLICIT_VR_LE);
        const instance = failed(await rig.archive.ingest([bytes], expectedOf('1.2.3.4.1.7')));
        assert.equal(instance.code, 'ERR_ARCHIVE_UID_MISMATCH');
        assert.equal(instance.tag, TAG.SOPInstanceUID);
        const sopClass = failed(
          await rig.archive.ingest([bytes], {
            ...C_STORE,
            expected: { sopClassUid: MR_IMAGE, sopInstanceUid: '1.2.3.4.1.6' },
          }),
        );
        assert.equal(sopClass.code, 'ERR_ARCHIVE_UID_MISMATCH');
        assert.equal(sopClass.tag, TAG.SOPClassUID);
        await assertNothingKept(rig, '1.2.3.4.1.6');
      }));

    for (const policy of ['keep', 'reject', 'replace'] as const) {
      test(`a duplicate with policy ${policy}`, () =>
        withRig(engine, { policy }, async (rig) => {
          const first = encodeDataSet(
            makeDataSet({ sopUid: '1.2.3.4.1.8', instanceNumber: 1 }),
            EXPLICIT_VR_LE,
          );
          const second = encodeDataSet(
            makeDataSet({ sopUid: '1.2.3.4.1.8', instanceNumber: 2 }),
            EXPLICIT_VR_LE,
          );
          const a = value(await rig.archive.ingest([first], expectedOf('1.2.3.4.1.8')));
          const pathA = a.status === 'stored' ? a.file.path : assert.fail(a.status);
          const b = await rig.archive.ingest([second], expectedOf('1.2.3.4.1.8'));
          const row = await rig.archive.index.findInstance('1.2.3.4.1.8');
          if (policy === 'reject') {
            assert.equal(failed(b).code, 'ERR_ARCHIVE_DUPLICATE');
            assert.deepEqual(files(rig.dataDir), { objects: [pathA], tmp: [] });
            assert.equal(row?.instanceNumber, 1);
            assert.deepEqual(
              rig.events.map((e) => e.outcome),
              ['stored'],
            );
          } else if (policy === 'keep') {
            assert.equal(value(b).status, 'duplicate');
            assert.deepEqual(files(rig.dataDir), { objects: [pathA], tmp: [] });
            assert.equal(row?.instanceNumber, 1);
            assert.deepEqual(
              rig.events.map((e) => e.outcome),
              ['stored', 'duplicate'],
            );
          } else {
            const o = value(b);
            assert.equal(o.status, 'replaced');
            const pathB = o.status === 'replaced' ? o.file.path : '';
            assert.deepEqual(files(rig.dataDir), { objects: [pathB], tmp: [] });
            assert.equal(row?.instanceNumber, 2);
            assert.deepEqual(
              rig.events.map((e) => e.outcome),
              ['stored', 'replaced'],
            );
          }
        }));
    }

    test('backpressure: a large object from a fast source into a slow index never buffers much', () =>
      withRig(engine, { wrap: slowIndex }, async (rig) => {
        const ds = makeDataSet({ sopUid: '1.2.3.4.1.9' });
        ds.setBytes(TAG.PixelData, new Uint8Array(24 * 1024 * 1024).fill(7), 'OW');
        const bytes = encodeDataSet(ds, EXPLICIT_VR_LE);
        const stream = rig.archive.createIngestStream(expectedOf('1.2.3.4.1.9'));
        const piece = 64 * 1024;
        let maxBuffered = 0;
        let drains = 0;
        stream.on('drain', () => drains++);
        const write = stream.write.bind(stream) as (chunk: Uint8Array) => boolean;
        stream.write = ((chunk: Uint8Array) => {
          const more = write(chunk);
          maxBuffered = Math.max(maxBuffered, stream.writableLength);
          return more;
        }) as typeof stream.write;
        async function* source(): AsyncIterable<Uint8Array> {
          // A copy per piece, as a socket gives: what is not consumed would pile up in memory.
          for (let o = 0; o < bytes.length; o += piece) yield Buffer.from(bytes.subarray(o, o + piece));
        }
        await pipeline(source(), stream);
        assert.equal(value(await stream.outcome).status, 'stored');
        assert.ok(drains > 0, 'the source was made to wait');
        assert.ok(
          maxBuffered <= stream.writableHighWaterMark + piece,
          `at most the high-water mark buffered (${maxBuffered} > ${stream.writableHighWaterMark})`,
        );
      }));
  });
}

/** An index whose inserts take 100 ms (a busy database). */
function slowIndex(index: ArchiveIndex): ArchiveIndex {
  return new Proxy(index, {
    get(target, prop, receiver) {
      if (prop === 'insertInstance')
        return async (
          record: InstanceRecord,
          headers: LevelHeaders,
          options?: InsertOptions,
        ): Promise<InsertResult> => {
          await new Promise((resolve) => setTimeout(resolve, 100));
          return target.insertInstance(record, headers, options);
        };
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

describe('ingest onto a disk that fills up mid-write (a 1 MiB tmpfs)', () => {
  const work = tempDir('pacs-ingest-full-');
  const mountPoint = join(work, 'tmpfs');

  before(async () => {
    mkdirSync(mountPoint);
    // Root is needed; without it this fails (it is not skipped): the full-disk path must be proven.
    const mounted = await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mountPoint]);
    assert.equal(mounted.code, 0, `cannot mount a tmpfs at ${mountPoint}: ${mounted.stderr.trim()}`);
  });

  after(async () => {
    const r = await run('umount', [mountPoint]);
    assert.equal(r.code, 0, r.stderr);
    rmSync(work, { recursive: true, force: true });
  });

  for (const engine of ALL_ENGINES) {
    test(`index on ${engine.name}: ERR_ARCHIVE_OUT_OF_SPACE, nothing partial, and the next object that fits is stored`, () =>
      withRig(engine, { dataDir: join(mountPoint, engine.name) }, async (rig) => {
        const ds = makeDataSet({ sopUid: '1.2.3.4.2.1' });
        ds.setBytes(TAG.PixelData, new Uint8Array(2 * 1024 * 1024).fill(1), 'OW');
        const big = encodeDataSet(ds, EXPLICIT_VR_LE);
        const error = failed(await rig.archive.ingest(chunks(big, 64 * 1024), expectedOf('1.2.3.4.2.1')));
        assert.equal(error.code, 'ERR_ARCHIVE_OUT_OF_SPACE', error.message);
        await assertNothingKept(rig, '1.2.3.4.2.1');
        const small = encodeDataSet(makeDataSet({ sopUid: '1.2.3.4.2.2' }), EXPLICIT_VR_LE);
        assert.equal(value(await rig.archive.ingest([small], expectedOf('1.2.3.4.2.2'))).status, 'stored');
      }));
  }
});
