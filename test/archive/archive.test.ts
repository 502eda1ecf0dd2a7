/**
 * The archive facade (store + index + duplicate policy) and start-up reconcile, on SQLite and on
 * PostgreSQL, with real files of the pydicom corpus (read in place) and small built data sets.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  copyFileSync,
  mkdirSync,
  readFileSync,
  rmSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { Archive, type DuplicatePolicy, type IngestOutcome, openArchive } from '../../src/archive/archive.js';
import type { ArchiveError } from '../../src/archive/errors.js';
import { MemoryArchiveIndex } from '../../src/archive/index/memory-index.js';
import type { ReconcileProgress } from '../../src/archive/reconcile.js';
import { ObjectStore } from '../../src/archive/store.js';
import type { Result } from '../../src/core/result.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { parseDicom } from '../../src/dicom/reader.js';
import { EXPLICIT_VR_LE } from '../../src/dicom/uid.js';
import { encodePart10 } from '../../src/dicom/writer.js';
import { TEST_FILES } from '../helpers/corpus.js';
import { dropSchema, files, makeDataSet, PG_URL, pgAdmin, randomSchema, tempDir } from './helpers.js';

interface TestArchive {
  readonly archive: Archive;
  readonly dataDir: string;
  cleanup(): Promise<void>;
}

type Engine = { name: 'sqlite' | 'postgres'; open(policy?: DuplicatePolicy): Promise<TestArchive> };

const ENGINES: readonly Engine[] = [
  {
    name: 'sqlite',
    async open(duplicatePolicy) {
      const dataDir = tempDir('pacs-archive-test-');
      const archive = await openArchive({
        dataDir,
        minFreeBytes: 0,
        ...(duplicatePolicy ? { duplicatePolicy } : {}),
      });
      return {
        archive,
        dataDir,
        async cleanup() {
          await archive.close();
          rmSync(dataDir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: 'postgres',
    async open(duplicatePolicy) {
      const dataDir = tempDir('pacs-archive-test-');
      const schema = randomSchema();
      await pgAdmin(async () => undefined);
      const archive = await openArchive({
        dataDir,
        dbUrl: `${PG_URL}?schema=${schema}`,
        minFreeBytes: 0,
        ...(duplicatePolicy ? { duplicatePolicy } : {}),
      });
      return {
        archive,
        dataDir,
        async cleanup() {
          await archive.close();
          await dropSchema(schema);
          rmSync(dataDir, { recursive: true, force: true });
        },
      };
    },
  },
];

async function withArchive(
  engine: Engine,
  policy: DuplicatePolicy | undefined,
  fn: (t: TestArchive) => Promise<void>,
): Promise<void> {
  const t = await engine.open(policy);
  try {
    await fn(t);
  } finally {
    await t.cleanup();
  }
}

/** Sends a Part-10 file's bytes in 16 KiB chunks through the ingest entry point (its meta replaced by ours). */
async function ingestBytes(
  archive: Archive,
  bytes: Uint8Array,
  options: { policy?: DuplicatePolicy } = {},
): Promise<Result<IngestOutcome, ArchiveError>> {
  const chunks: Uint8Array[] = [];
  for (let o = 0; o < bytes.length; o += 16 * 1024) chunks.push(bytes.subarray(o, o + 16 * 1024));
  return archive.ingest(chunks, {
    format: 'part10',
    source: 'STORESCU',
    via: 'import',
    ...(options.policy ? { duplicatePolicy: options.policy } : {}),
  });
}

/** The data set of a Part-10 file: what follows its preamble and meta (PS3.10 7.1, sized by the group length). */
function dataSetOf(part10: Uint8Array): Uint8Array {
  return part10.subarray(144 + Buffer.from(part10).readUInt32LE(140));
}

function stored(r: Result<IngestOutcome, ArchiveError>): IngestOutcome {
  if (!r.ok) assert.fail(r.error.message);
  return r.value;
}

function pathOf(o: IngestOutcome): string {
  assert.notEqual(o.status, 'duplicate');
  return o.status === 'duplicate' ? '' : o.file.path;
}

function synthetic(spec: Parameters<typeof makeDataSet>[0] = {}): Uint8Array {
  return encodePart10(makeDataSet(spec), EXPLICIT_VR_LE);
}

// Distinct SOP Instances, one per transfer syntax (the MR_small_* files are one object in several syntaxes).
const CORPUS = [
  ['CT_small.dcm', '1.2.840.10008.1.2.1'],
  ['MR_small_bigendian.dcm', '1.2.840.10008.1.2.2'],
  ['rtplan.dcm', '1.2.840.10008.1.2'],
  ['image_dfl.dcm', '1.2.840.10008.1.2.1.99'],
  ['JPEG2000.dcm', '1.2.840.10008.1.2.4.91'],
  ['SC_rgb_rle.dcm', '1.2.840.10008.1.2.5'],
  ['JPEG-lossy.dcm', '1.2.840.10008.1.2.4.51'],
  ['SC_rgb_jpeg_dcmtk.dcm', '1.2.840.10008.1.2.4.50'],
] as const;

for (const engine of ENGINES) {
  describe(`archive on ${engine.name}`, () => {
    test('ingest keeps the bytes as sent, indexed, in each transfer syntax', () =>
      withArchive(engine, undefined, async ({ archive, dataDir }) => {
        for (const [name, ts] of CORPUS) {
          const bytes = readFileSync(join(TEST_FILES, name));
          const outcome = stored(await ingestBytes(archive, bytes));
          assert.equal(outcome.status, 'stored', name);
          const path = pathOf(outcome);
          const file = readFileSync(join(dataDir, path));
          // The data set bytes exactly as sent, behind our file meta (with the same transfer syntax).
          assert.deepEqual(dataSetOf(file), dataSetOf(bytes), `${name} is stored unchanged`);
          assert.equal(parseDicom(file, { stopAtTag: TAG.PixelData }).transferSyntax, ts, name);
          const uid =
            parseDicom(bytes, { stopAtTag: TAG.PixelData }).dataSet.string(TAG.SOPInstanceUID) ?? '';
          const row = await archive.index.findInstance(uid);
          assert.equal(row?.path, path);
          assert.equal(row?.transferSyntaxUid, ts, name);
          assert.equal(row?.size, file.length);
          assert.equal(row?.callingAet, 'STORESCU');
        }
        assert.equal(await archive.index.countInstances(), CORPUS.length);
        assert.deepEqual(files(dataDir).tmp, []);
      }));

    test('duplicate policy keep (the default): the archived object stays, the new file is dropped', () =>
      withArchive(engine, undefined, async ({ archive, dataDir }) => {
        assert.equal(archive.duplicatePolicy, 'keep');
        const first = stored(
          await ingestBytes(archive, synthetic({ sopUid: '1.9', studyDescription: 'FIRST' })),
        );
        const again = stored(
          await ingestBytes(archive, synthetic({ sopUid: '1.9', studyDescription: 'SECOND' })),
        );
        assert.equal(again.status, 'duplicate');
        assert.equal(again.status === 'duplicate' && again.existing.path, pathOf(first));
        assert.deepEqual(files(dataDir), { objects: [pathOf(first)], tmp: [] });
      }));

    test('duplicate policy replace: the new object takes the place of the old', () =>
      withArchive(engine, 'replace', async ({ archive, dataDir }) => {
        const first = stored(await ingestBytes(archive, synthetic({ sopUid: '1.9' })));
        const second = stored(await ingestBytes(archive, synthetic({ sopUid: '1.9', instanceNumber: 7 })));
        assert.equal(second.status, 'replaced');
        assert.equal(second.status === 'replaced' && second.previous.path, pathOf(first));
        assert.deepEqual(files(dataDir), { objects: [pathOf(second)], tmp: [] });
        const row = await archive.index.findInstance('1.9');
        assert.equal(row?.path, pathOf(second));
        assert.equal(row?.instanceNumber, 7);
        assert.equal((await archive.index.findStudy('1.2.3.4'))?.numberOfInstances, 1);
      }));

    test('duplicate policy reject: ERR_ARCHIVE_DUPLICATE and nothing new kept', () =>
      withArchive(engine, 'reject', async ({ archive, dataDir }) => {
        const first = stored(await ingestBytes(archive, synthetic({ sopUid: '1.9' })));
        const r = await ingestBytes(archive, synthetic({ sopUid: '1.9' }));
        assert.equal(!r.ok && r.error.code, 'ERR_ARCHIVE_DUPLICATE');
        // A per-object override wins over the archive's policy.
        const kept = stored(await ingestBytes(archive, synthetic({ sopUid: '1.9' }), { policy: 'keep' }));
        assert.equal(kept.status, 'duplicate');
        assert.deepEqual(files(dataDir), { objects: [pathOf(first)], tmp: [] });
      }));

    test('concurrent duplicates resolve to one archived object', () =>
      withArchive(engine, undefined, async ({ archive, dataDir }) => {
        const results = await Promise.all(
          Array.from({ length: 8 }, () => ingestBytes(archive, synthetic({ sopUid: '3.3' }))),
        );
        const statuses = results.map((r) => stored(r).status).sort();
        assert.deepEqual(statuses, [
          'duplicate',
          'duplicate',
          'duplicate',
          'duplicate',
          'duplicate',
          'duplicate',
          'duplicate',
          'stored',
        ]);
        assert.equal(files(dataDir).objects.length, 1);
      }));

    test('a header without the UIDs the index needs is refused and nothing is kept', () =>
      withArchive(engine, undefined, async ({ archive, dataDir }) => {
        const ds = makeDataSet();
        ds.delete(TAG.SeriesInstanceUID);
        const r = await ingestBytes(
          archive,
          encodePart10(ds, EXPLICIT_VR_LE, { mediaStorageSopInstanceUid: '1' }),
        );
        assert.ok(!r.ok);
        assert.equal(r.error.code, 'ERR_ARCHIVE_INVALID_OBJECT');
        assert.match(r.error.message, /SeriesInstanceUID/);
        assert.deepEqual(files(dataDir), { objects: [], tmp: [] });
      }));

    test('concurrent ingests all land (files and rows)', () =>
      withArchive(engine, undefined, async ({ archive, dataDir }) => {
        const n = 60;
        const results = await Promise.all(
          Array.from({ length: n }, (_, i) =>
            ingestBytes(archive, synthetic({ sopUid: `5.${i}`, seriesUid: `5.${i % 3}`, instanceNumber: i })),
          ),
        );
        assert.ok(results.every((r) => r.ok && r.value.status === 'stored'));
        assert.equal(await archive.index.countInstances(), n);
        assert.equal(files(dataDir).objects.length, n);
        assert.equal((await archive.index.findStudy('1.2.3.4'))?.numberOfSeries, 3);
      }));

    test('delete removes the row, then the file', () =>
      withArchive(engine, undefined, async ({ archive, dataDir }) => {
        stored(await ingestBytes(archive, synthetic({ sopUid: '4.4' })));
        assert.equal(await archive.delete('4.4'), true);
        assert.equal(await archive.delete('4.4'), false);
        assert.deepEqual(files(dataDir), { objects: [], tmp: [] });
        assert.equal(await archive.index.countInstances(), 0);
      }));

    test('reconcile repairs what a crash leaves and reports it', () =>
      withArchive(engine, undefined, async ({ archive, dataDir }) => {
        // Indexed and intact.
        const intact = pathOf(stored(await ingestBytes(archive, synthetic({ sopUid: '6.1' }))));
        // Indexed, file lost.
        const lost = pathOf(stored(await ingestBytes(archive, synthetic({ sopUid: '6.2' }))));
        unlinkSync(join(dataDir, lost));
        // Renamed into place, crash before indexing: a corpus file put where the store would.
        const unindexed = ObjectStore.pathOf(randomBytes(16).toString('hex'));
        mkdirSync(dirname(join(dataDir, unindexed)), { recursive: true });
        copyFileSync(join(TEST_FILES, 'MR_small.dcm'), join(dataDir, unindexed));
        // A second copy of an indexed object (an unfinished duplicate): removed.
        const orphan = ObjectStore.pathOf(randomBytes(16).toString('hex'));
        mkdirSync(dirname(join(dataDir, orphan)), { recursive: true });
        copyFileSync(join(dataDir, intact), join(dataDir, orphan));
        // Not DICOM at all: left alone, reported.
        const junk = ObjectStore.pathOf(randomBytes(16).toString('hex'));
        mkdirSync(dirname(join(dataDir, junk)), { recursive: true });
        writeFileSync(join(dataDir, junk), 'not a DICOM file');
        // A temporary file of a transfer that never finished.
        writeFileSync(join(dataDir, 'tmp', `${randomBytes(16).toString('hex')}.part`), 'half an object');

        const progress: ReconcileProgress[] = [];
        const report = await archive.reconcile({ onProgress: (p) => progress.push(p) });
        assert.deepEqual(report, {
          tempFilesRemoved: 1,
          filesIndexed: 1,
          duplicateFilesRemoved: 1,
          rowsRemoved: 1,
          unreadableFiles: [junk],
          filesChecked: 4,
          rowsChecked: 2,
        });
        assert.deepEqual([...new Set(progress.map((p) => p.phase))], ['temp', 'scan', 'done']);
        assert.equal(progress.at(-1)?.fraction, 1);

        assert.equal(await archive.index.findInstance('6.2'), undefined);
        const mr = parseDicom(readFileSync(join(TEST_FILES, 'MR_small.dcm')), { stopAtTag: TAG.PixelData });
        const row = await archive.index.findInstance(mr.dataSet.string(TAG.SOPInstanceUID) ?? '');
        assert.equal(row?.path, unindexed);
        assert.equal(row?.transferSyntaxUid, mr.transferSyntax);
        assert.equal((await archive.index.findInstance('6.1'))?.path, intact);
        assert.deepEqual(files(dataDir), { objects: [intact, junk, unindexed].sort(), tmp: [] });

        // Nothing left to do the second time.
        const again = await archive.reconcile();
        assert.deepEqual(again, {
          ...report,
          tempFilesRemoved: 0,
          filesIndexed: 0,
          duplicateFilesRemoved: 0,
          rowsRemoved: 0,
          filesChecked: 3,
          rowsChecked: 2,
        });
      }));

    test('reconcile: a copy of an object whose indexed file is lost takes its place', () =>
      withArchive(engine, undefined, async ({ archive, dataDir }) => {
        const lost = pathOf(stored(await ingestBytes(archive, synthetic({ sopUid: '6.5' }))));
        const copy = ObjectStore.pathOf(randomBytes(16).toString('hex'));
        mkdirSync(dirname(join(dataDir, copy)), { recursive: true });
        copyFileSync(join(dataDir, lost), join(dataDir, copy));
        unlinkSync(join(dataDir, lost));
        const report = await archive.reconcile();
        assert.equal(report.rowsRemoved, 1);
        assert.equal(report.filesIndexed, 1);
        assert.equal((await archive.index.findInstance('6.5'))?.path, copy);
        assert.deepEqual(files(dataDir).objects, [copy]);
      }));

    // Date.now() has whole milliseconds and mtimeMs finer ones, and a file server's clock may run
    // ahead: a fresh file can look newer than now, which must not matter without a grace period.
    test('reconcile without a grace period indexes a file whatever its time stamp', () =>
      withArchive(engine, undefined, async ({ archive, dataDir }) => {
        const ahead = ObjectStore.pathOf(randomBytes(16).toString('hex'));
        mkdirSync(dirname(join(dataDir, ahead)), { recursive: true });
        copyFileSync(join(TEST_FILES, 'CT_small.dcm'), join(dataDir, ahead));
        const future = (Date.now() + 60_000) / 1000;
        utimesSync(join(dataDir, ahead), future, future);
        const report = await archive.reconcile();
        assert.equal(report.filesIndexed, 1);
      }));

    test('reconcile leaves recent files alone within the grace period (other processes may be writing)', () =>
      withArchive(engine, undefined, async ({ archive, dataDir }) => {
        const fresh = ObjectStore.pathOf(randomBytes(16).toString('hex'));
        mkdirSync(dirname(join(dataDir, fresh)), { recursive: true });
        copyFileSync(join(TEST_FILES, 'CT_small.dcm'), join(dataDir, fresh));
        writeFileSync(join(dataDir, 'tmp', 'in-flight.part'), 'x');
        const report = await archive.reconcile({ graceMs: 60_000 });
        assert.equal(report.filesIndexed, 0);
        assert.equal(report.tempFilesRemoved, 0);
        assert.equal(await archive.index.countInstances(), 0);
      }));
  });
}

describe('archive with a failing index', () => {
  test('the object file is removed when indexing fails', async () => {
    const dataDir = tempDir('pacs-archive-fail-');
    try {
      const store = await ObjectStore.open({ dataDir, minFreeBytes: 0, durability: 'none' });
      class BrokenIndex extends MemoryArchiveIndex {
        override insertInstance(): never {
          throw new Error('connection lost');
        }
      }
      const archive = new Archive(store, new BrokenIndex());
      const r = await ingestBytes(archive, synthetic());
      assert.ok(!r.ok);
      assert.equal(r.error.code, 'ERR_ARCHIVE_INDEX');
      assert.match(r.error.message, /connection lost/);
      assert.deepEqual(files(dataDir), { objects: [], tmp: [] });
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('an insert that failed but committed (connection lost at COMMIT) counts as stored', async () => {
    const dataDir = tempDir('pacs-archive-fail-');
    try {
      const store = await ObjectStore.open({ dataDir, minFreeBytes: 0, durability: 'none' });
      class CommitThenFail extends MemoryArchiveIndex {
        override async insertInstance(
          ...args: Parameters<MemoryArchiveIndex['insertInstance']>
        ): Promise<never> {
          await super.insertInstance(...args);
          throw new Error('Connection terminated unexpectedly');
        }
      }
      const archive = new Archive(store, new CommitThenFail());
      const outcome = stored(await ingestBytes(archive, synthetic({ sopUid: '2.1' })));
      assert.equal(outcome.status, 'stored');
      assert.deepEqual(files(dataDir), { objects: [pathOf(outcome)], tmp: [] });
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('when the index cannot tell whether the insert committed, the file is kept for reconcile', async () => {
    const dataDir = tempDir('pacs-archive-fail-');
    try {
      const store = await ObjectStore.open({ dataDir, minFreeBytes: 0, durability: 'none' });
      class Down extends MemoryArchiveIndex {
        down = false;
        override insertInstance(): never {
          this.down = true;
          throw new Error('connect ECONNREFUSED');
        }
        override async findInstance(uid: string) {
          if (this.down) throw new Error('connect ECONNREFUSED');
          return super.findInstance(uid);
        }
      }
      const archive = new Archive(store, new Down());
      const r = await ingestBytes(archive, synthetic());
      assert.equal(!r.ok && r.error.code, 'ERR_ARCHIVE_INDEX');
      assert.equal(files(dataDir).objects.length, 1);
      assert.deepEqual(files(dataDir).tmp, []);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('below the free-space floor the archive refuses to begin an object', async () => {
    const dataDir = tempDir('pacs-archive-full-');
    try {
      const store = await ObjectStore.open({ dataDir, minFreeBytes: Number.MAX_SAFE_INTEGER });
      const archive = new Archive(store, new MemoryArchiveIndex());
      const r = await ingestBytes(archive, synthetic());
      assert.equal(!r.ok && r.error.code, 'ERR_ARCHIVE_OUT_OF_SPACE');
      assert.deepEqual(files(dataDir), { objects: [], tmp: [] });
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
