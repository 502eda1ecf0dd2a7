/**
 * Compression at rest (archive/compression/): native objects of the pydicom corpus (grey 16-bit,
 * big endian, implicit VR, RGB, multi-frame) compressed into each lossless target; the stored file
 * is then in the target syntax and pydicom+GDCM (JPEG-LS, JPEG 2000), DCMTK dcmdjpls (JPEG-LS) and
 * OpenJPEG (grey HTJ2K: neither GDCM 3.0 nor DCMTK 3.6.7 decodes it; colour HTJ2K only with
 * OpenJPH, the encoder's own library) give exactly the original pixels,
 * every other attribute unchanged, and the index row names the new file with its new frame
 * offsets. What is left alone says why. A corrupting encoder is caught by the verification. The
 * SQLite and PostgreSQL index both.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  type CompressOutcome,
  compressInstance,
  storeTranscoder,
} from '../../src/archive/compression/compress.js';
import { type CompressionTarget, TARGET_SYNTAX } from '../../src/archive/compression/policy.js';
import { parseBulkLayout } from '../../src/archive/index/capture.js';
import { codecFor } from '../../src/dicom/codec/registry.js';
import { pixelModuleOf } from '../../src/dicom/codec/types.js';
import { DataSet } from '../../src/dicom/dataset.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { parseDicom } from '../../src/dicom/reader.js';
import { EXPLICIT_VR_LE, generateUid, UID } from '../../src/dicom/uid.js';
import { encodePart10 } from '../../src/dicom/writer.js';
import { closeTranscodePool, transcodeFile } from '../../src/io/transcode.js';
import { run } from '../helpers/cli.js';
import { dcmtkTool, TEST_FILES } from '../helpers/corpus.js';
import { corruptingCoder, digests, ingestFile, objectFiles, openTestArchive } from './compression-helpers.js';

const work = await mkdtemp(join(tmpdir(), 'pacs-compress-corpus-'));
after(async () => {
  await closeTranscodePool();
  await rm(work, { recursive: true, force: true });
});

/** Native multi-frame inputs: the corpus's 2-frame RLE files decompressed (by DCMTK's dcmdrle). */
async function nativeCopy(name: string): Promise<string> {
  const out = join(work, `native-${name}`);
  const r = await run(dcmtkTool('dcmdrle'), [join(TEST_FILES, name), out], { env: { TCP_NODELAY: '1' } });
  assert.equal(r.code, 0, r.stderr);
  return out;
}

interface Case {
  readonly name: string;
  readonly path: () => Promise<string>;
  /** Targets it is left alone for, and the skip code. */
  readonly skips?: Partial<Record<CompressionTarget, string>>;
}

const corpus = (name: string, skips?: Case['skips']): Case => ({
  name,
  path: async () => join(TEST_FILES, name),
  ...(skips ? { skips } : {}),
});

const COMPRESSED: readonly Case[] = [
  corpus('CT_small.dcm'),
  corpus('MR_small.dcm'),
  corpus('MR_small_bigendian.dcm'),
  corpus('MR_small_implicit.dcm'),
  corpus('ExplVR_BigEnd.dcm'),
  corpus('SC_rgb_jpeg_dcmd.dcm'),
  { name: 'SC_rgb_rle_2frame.dcm (native)', path: () => nativeCopy('SC_rgb_rle_2frame.dcm') },
  {
    name: 'SC_rgb_rle_16bit_2frame.dcm (native)',
    path: () => nativeCopy('SC_rgb_rle_16bit_2frame.dcm'),
    skips: { 'j2k-lossless': 'unsupported-pixels', 'htj2k-lossless': 'unsupported-pixels' },
  },
];

const TARGETS: readonly Exclude<CompressionTarget, 'none'>[] = [
  'jpeg-ls-lossless',
  'j2k-lossless',
  'htj2k-lossless',
];

/** The frames of a stored HTJ2K object decoded by OpenJPEG (grey) or OpenJPH (colour), as pydicom lays them out. */
async function openJpegDigest(path: string): Promise<string> {
  const { dataSet } = parseDicom(await readFile(path));
  const m = pixelModuleOf(dataSet);
  const pixel = dataSet.get(TAG.PixelData)?.value;
  assert.ok(pixel && !(pixel instanceof Uint8Array) && !Array.isArray(pixel) && pixel.kind === 'fragments');
  const [, ...frames] = pixel.fragments;
  assert.equal(frames.length, m.numberOfFrames, 'one fragment per frame');
  // OpenJPEG decodes OpenJPH's colour codestreams differently (see test/dicom/codec-pixel-encode.test.ts):
  // colour is checked with OpenJPH itself, grey with OpenJPEG.
  const j2k = codecFor(m.samplesPerPixel > 1 ? UID.HTJ2KLossless : UID.JPEG2000Lossless);
  assert.ok(j2k);
  const { createHash } = await import('node:crypto');
  const h = createHash('sha256');
  for (const f of frames) h.update((await j2k.decodeFrame(f, m)).pixels);
  return h.digest('hex');
}

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`compression at rest of corpus objects (${engine})`, () => {
    // PostgreSQL runs one target (the index code is what differs), SQLite all three.
    for (const target of engine === 'sqlite' ? TARGETS : TARGETS.slice(0, 1)) {
      it(`${target}: each native object is stored in ${TARGET_SYNTAX[target]} with exactly its pixels and attributes`, async () => {
        const ts = TARGET_SYNTAX[target];
        // An archive per object: some corpus files share a SOP Instance UID (MR_small in three syntaxes).
        for (const c of COMPRESSED) {
          const rig = await openTestArchive(engine);
          try {
            const { archive } = rig;
            const source = await c.path();
            const uid = await ingestFile(archive, source);
            const before = await archive.index.findInstance(uid);
            assert.ok(before);
            const outcome = await compressInstance(archive, uid, {
              policy: { target },
              transcode: storeTranscoder(),
            });
            const skip = c.skips?.[target];
            if (skip) {
              assert.equal(outcome.status, 'skipped', `${c.name}: ${JSON.stringify(outcome)}`);
              assert.equal(outcome.status === 'skipped' && outcome.code, skip);
              assert.deepEqual(await archive.index.findInstance(uid), before);
              continue;
            }
            assert.equal(outcome.status, 'compressed', `${c.name}: ${JSON.stringify(outcome)}`);
            const row = await archive.index.findInstance(uid);
            assert.ok(row);
            assert.equal(row.transferSyntaxUid, ts);
            assert.notEqual(row.path, before.path);
            assert.equal(await archive.store.exists(before.path), false, 'the original is removed');
            const stored = archive.store.absolutePath(row.path);
            assert.equal(row.size, (await readFile(stored)).length);
            assert.ok(row.size < before.size, `${c.name}: ${before.size} -> ${row.size}`);
            // The other columns are the object's as it was received.
            assert.deepEqual(
              { ...row, path: '', transferSyntaxUid: '', size: 0 },
              { ...before, path: '', transferSyntaxUid: '', size: 0 },
            );

            const [original, compressed] = await digests([source, stored]);
            assert.ok(original && compressed);
            assert.equal(compressed.transferSyntax, ts);
            assert.equal(compressed.attributes, original.attributes, `${c.name}: attributes`);
            assert.ok(original.pixels, `pydicom decodes the original ${c.name}`);
            if (target === 'htj2k-lossless') {
              assert.equal(await openJpegDigest(stored), original.pixels, `${c.name}: OpenJPEG`);
            } else {
              assert.equal(compressed.pixels, original.pixels, `${c.name}: pydicom+GDCM`);
              assert.deepEqual(compressed.shape, original.shape);
            }
            if (target === 'jpeg-ls-lossless') {
              const out = join(work, `dcmdjpls-${engine}-${uid}.dcm`);
              const r = await run(dcmtkTool('dcmdjpls'), [stored, out], { env: { TCP_NODELAY: '1' } });
              assert.equal(r.code, 0, r.stderr);
              const [dcmtk] = await digests([out]);
              assert.equal(dcmtk?.pixels, original.pixels, `${c.name}: dcmdjpls`);
            }

            // The bulk layout kept in the index is the new file's: its frames are where it says.
            const bulk = await archive.index.instanceBulk({
              studyInstanceUid: row.studyInstanceUid,
              seriesInstanceUid: row.seriesInstanceUid,
              sopInstanceUid: uid,
            });
            const layout = parseBulkLayout(bulk?.bulk);
            assert.equal(layout?.pixels?.kind, 'encapsulated');
            if (layout?.pixels?.kind === 'encapsulated') {
              const bytes = await readFile(stored);
              const { dataSet } = parseDicom(bytes);
              const value = dataSet.get(TAG.PixelData)?.value;
              assert.ok(
                value &&
                  !(value instanceof Uint8Array) &&
                  !Array.isArray(value) &&
                  value.kind === 'fragments',
              );
              const fragments = value.fragments.slice(1);
              assert.equal(layout.pixels.fragments.length, fragments.length);
              for (const [i, [offset, length]] of layout.pixels.fragments.entries())
                assert.deepEqual(
                  bytes.subarray(offset, offset + length),
                  Buffer.from(fragments[i] as Uint8Array),
                );
            }
          } finally {
            await rig.close();
          }
        }
      });
    }
  });
}

/** A grey image's data set without its pixel attributes of size (the test sets them). */
function grey(sopClassUid: string, rows: number, columns: number): DataSet {
  const ds = new DataSet();
  ds.setString(TAG.SOPClassUID, sopClassUid);
  ds.setString(TAG.SOPInstanceUID, generateUid());
  ds.setString(TAG.StudyInstanceUID, generateUid());
  ds.setString(TAG.SeriesInstanceUID, generateUid());
  ds.setString(TAG.Modality, 'OT');
  ds.setString(TAG.PatientID, 'SYNTHETIC');
  ds.setNumbers(TAG.SamplesPerPixel, 1);
  ds.setString(TAG.PhotometricInterpretation, 'MONOCHROME2');
  ds.setNumbers(TAG.Rows, rows);
  ds.setNumbers(TAG.Columns, columns);
  return ds;
}

async function written(name: string, ds: DataSet): Promise<string> {
  const path = join(work, name);
  await writeFile(path, encodePart10(ds, EXPLICIT_VR_LE));
  return path;
}

describe('compression at rest: what is left alone, and why', () => {
  let rig: Awaited<ReturnType<typeof openTestArchive>>;
  before(async () => {
    rig = await openTestArchive('sqlite');
  });
  after(() => rig.close());

  const expectSkip = async (path: string, code: string, reason: RegExp): Promise<void> => {
    const uid = await ingestFile(rig.archive, path);
    const before = await rig.archive.index.findInstance(uid);
    const files = await objectFiles(rig.dataDir);
    const outcome = await compressInstance(rig.archive, uid, {
      policy: { target: 'jpeg-ls-lossless' },
      transcode: storeTranscoder(),
    });
    assert.equal(outcome.status, 'skipped', JSON.stringify(outcome));
    assert.equal(outcome.status === 'skipped' && outcome.code, code);
    assert.match(outcome.status === 'skipped' ? outcome.reason : '', reason);
    assert.deepEqual(await rig.archive.index.findInstance(uid), before);
    assert.deepEqual(await objectFiles(rig.dataDir), files, 'no file added or removed');
  };

  it('already compressed (RLE, JPEG 2000)', async () => {
    await expectSkip(join(TEST_FILES, 'MR_small_RLE.dcm'), 'already-compressed', /1\.2\.840\.10008\.1\.2\.5/);
    await expectSkip(
      join(TEST_FILES, 'MR_small_jp2klossless.dcm'),
      'already-compressed',
      /already compressed/,
    );
  });
  it('no pixel data (a structured report)', () =>
    expectSkip(join(TEST_FILES, 'reportsi.dcm'), 'no-pixel-data', /no pixel data/));
  it('unsupported bits: 32-bit RT dose, 1-bit segmentation', async () => {
    await expectSkip(join(TEST_FILES, 'rtdose.dcm'), 'unsupported-pixels', /Bits Allocated 32/);
    await expectSkip(join(TEST_FILES, 'liver_1frame.dcm'), 'unsupported-pixels', /Bits Allocated 1/);
  });
  it('an unsupported photometric interpretation (native YBR_FULL_422)', () =>
    expectSkip(join(TEST_FILES, 'SC_ybr_full_422_uncompressed.dcm'), 'unsupported-pixels', /YBR_FULL_422/));
  it('deflated (its offsets are in the inflated stream)', () =>
    expectSkip(join(TEST_FILES, 'image_dfl.dcm'), 'unsupported-pixels', /deflated/i));
  it('float pixel data', async () => {
    const ds = grey('1.2.840.10008.5.1.4.1.1.30', 32, 32); // Parametric Map
    ds.setNumbers(TAG.BitsAllocated, 32);
    ds.setBytes(TAG.FloatPixelData, new Uint8Array(32 * 32 * 4).fill(7), 'OF');
    await expectSkip(await written('float.dcm', ds), 'float-pixel-data', /float/);
  });
  it('an object smaller than the minimum size, and one the policy leaves to its modality', async () => {
    const uid = await ingestFile(rig.archive, join(TEST_FILES, 'CT_small.dcm'));
    const small = await compressInstance(rig.archive, uid, {
      policy: { target: 'jpeg-ls-lossless', minBytes: 10_000_000 },
      transcode: storeTranscoder(),
    });
    assert.equal(small.status === 'skipped' && small.code, 'too-small');
    const ct = await compressInstance(rig.archive, uid, {
      policy: { target: 'jpeg-ls-lossless', byModality: { CT: 'none' } },
      transcode: storeTranscoder(),
    });
    assert.equal(ct.status === 'skipped' && ct.code, 'modality');
    const dry = await compressInstance(rig.archive, uid, {
      policy: { target: 'none', byModality: { CT: 'j2k-lossless' } },
      transcode: storeTranscoder(),
      dryRun: true,
    });
    assert.equal(dry.status, 'eligible');
    assert.equal(dry.status === 'eligible' && dry.target, UID.JPEG2000Lossless);
    assert.equal((await rig.archive.index.findInstance(uid))?.transferSyntaxUid, EXPLICIT_VR_LE);
  });
  it('an object whose compressed copy is not smaller (noise)', async () => {
    const ds = grey(UID.SecondaryCaptureImageStorage, 64, 64);
    ds.setNumbers(TAG.BitsAllocated, 8);
    ds.setNumbers(TAG.BitsStored, 8);
    ds.setNumbers(TAG.HighBit, 7);
    ds.setNumbers(TAG.PixelRepresentation, 0);
    ds.setBytes(TAG.PixelData, new Uint8Array(randomBytes(64 * 64)), 'OB');
    await expectSkip(await written('noise.dcm', ds), 'not-smaller', /not make it smaller/);
  });
});

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`compression at rest: the verification catches a corrupting encoder (${engine})`, () => {
    for (const target of TARGETS) {
      it(`${target}: the original stays, the copy is dropped, the reason is said`, async () => {
        const rig = await openTestArchive(engine);
        try {
          const source = join(TEST_FILES, 'MR_small.dcm');
          const uid = await ingestFile(rig.archive, source);
          const before = await rig.archive.index.findInstance(uid);
          assert.ok(before);
          const beforeBulk = await rig.archive.index.instanceBulk({
            studyInstanceUid: before.studyInstanceUid,
            seriesInstanceUid: before.seriesInstanceUid,
            sopInstanceUid: uid,
          });
          const bytes = await readFile(rig.archive.store.absolutePath(before.path));
          const outcome: CompressOutcome = await compressInstance(rig.archive, uid, {
            policy: { target },
            transcode: storeTranscoder(corruptingCoder),
          });
          assert.equal(outcome.status, 'failed', JSON.stringify(outcome));
          assert.match(
            outcome.status === 'failed' ? outcome.reason : '',
            /verification .* failed: frame 1: sample \d+ is/,
          );
          assert.deepEqual(await rig.archive.index.findInstance(uid), before);
          assert.deepEqual(
            await rig.archive.index.instanceBulk({
              studyInstanceUid: before.studyInstanceUid,
              seriesInstanceUid: before.seriesInstanceUid,
              sopInstanceUid: uid,
            }),
            beforeBulk,
          );
          assert.deepEqual(await readFile(rig.archive.store.absolutePath(before.path)), bytes);
          assert.deepEqual(await objectFiles(rig.dataDir), [before.path], 'the copy is removed');
          assert.deepEqual(await readdir(join(rig.dataDir, 'tmp')), []);
        } finally {
          await rig.close();
        }
      });
    }
  });
}

describe('compression at rest: multi-frame from our own transcoder', () => {
  it('a 2-frame native copy made by io/transcode.ts compresses frame by frame', async () => {
    const rig = await openTestArchive('sqlite');
    try {
      const native = join(work, 'native-by-us.dcm');
      await transcodeFile(join(TEST_FILES, 'SC_rgb_rle_2frame.dcm'), native, { to: EXPLICIT_VR_LE });
      const uid = await ingestFile(rig.archive, native);
      const outcome = await compressInstance(rig.archive, uid, {
        policy: { target: 'jpeg-ls-lossless' },
        transcode: storeTranscoder(),
      });
      assert.equal(outcome.status, 'compressed', JSON.stringify(outcome));
      const row = await rig.archive.index.findInstance(uid);
      assert.ok(row);
      const [a, b] = await digests([native, rig.archive.store.absolutePath(row.path)]);
      assert.equal(b?.pixels, a?.pixels);
      assert.deepEqual(b?.shape, [2, 100, 100, 3]);
    } finally {
      await rig.close();
    }
  });
});
