/**
 * The WADO-RS documents kept at ingest (capture.ts, migration 4): the offsets of bulk values and
 * frames point at the value bytes in the object file, for raw data sets (C-STORE, little and big
 * endian) as for Part-10 input; reconcile's re-index of a file keeps the same documents; the frame
 * map of encapsulated pixel data comes from the Extended Offset Table, the Basic Offset Table, one
 * fragment per frame, or the frames' start markers. On SQLite, PostgreSQL and the in-memory index.
 */
import assert from 'node:assert/strict';
import { closeSync, openSync, readSync, rmSync } from 'node:fs';
import { describe, it } from 'node:test';
import { Archive } from '../../src/archive/archive.js';
import { type BulkLayout, MetadataCapture, parseBulkLayout } from '../../src/archive/index/capture.js';
import { ObjectStore } from '../../src/archive/store.js';
import { DataSet } from '../../src/dicom/dataset.js';
import { TAG } from '../../src/dicom/dictionary.js';
import type { DicomJsonObject } from '../../src/dicom/json.js';
import { DicomParser } from '../../src/dicom/parser.js';
import { EXPLICIT_VR_BE, EXPLICIT_VR_LE, generateUid } from '../../src/dicom/uid.js';
import { swapBytes } from '../../src/dicom/vr.js';
import { encodeDataSet } from '../../src/dicom/writer.js';
import { ALL_ENGINES, makeDataSet, tempDir } from './helpers.js';

function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 7 + seed) & 0xff;
  return out;
}

/** An image of 2 frames with bulk values at the top and inside a sequence item. */
function image(): { ds: DataSet; values: Record<string, Uint8Array> } {
  const ds = makeDataSet({ sopUid: generateUid(), studyUid: generateUid(), seriesUid: generateUid() });
  const pixels = pattern(16, 1);
  const lut = pattern(3000, 2);
  const top = pattern(4096, 3);
  ds.setNumbers(TAG.SamplesPerPixel, 1);
  ds.setNumbers(TAG.BitsAllocated, 16);
  ds.setString(TAG.NumberOfFrames, '2');
  ds.setBytes(TAG.PixelData, pixels, 'OW');
  ds.setBytes(TAG.RedPaletteColorLookupTableData, top, 'OW');
  const item = new DataSet();
  item.setBytes(TAG.RedPaletteColorLookupTableData, lut, 'OW');
  item.setString(TAG.CodeValue, 'X');
  ds.setSequence(0x00540016, [item]);
  return { ds, values: { '7FE00010': pixels, '00281201': top, '00540016.0.00281201': lut } };
}

function readAt(path: string, offset: number, length: number): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    readSync(fd, buf, 0, length, offset);
    return buf;
  } finally {
    closeSync(fd);
  }
}

for (const engine of ALL_ENGINES) {
  describe(`metadata kept at ingest (${engine.name})`, () => {
    for (const ts of [EXPLICIT_VR_LE, EXPLICIT_VR_BE]) {
      it(`a raw data set in ${ts}: bulk offsets point at the value bytes in the file; reconcile keeps the same documents`, async () => {
        const opened = await engine.open();
        const dir = tempDir('pacs-capture-test-');
        try {
          const store = await ObjectStore.open({ dataDir: dir, durability: 'none' });
          const archive = new Archive(store, opened.index);
          const { ds, values } = image();
          const outcome = await archive.ingest([encodeDataSet(ds, ts)], {
            transferSyntaxUid: ts,
            source: 'TEST',
            via: 'C-STORE',
          });
          assert.ok(outcome.ok && outcome.value.status === 'stored');
          const scope = {
            studyInstanceUid: ds.string(TAG.StudyInstanceUID) ?? '',
            seriesInstanceUid: ds.string(TAG.SeriesInstanceUID) ?? '',
            sopInstanceUid: ds.string(TAG.SOPInstanceUID) ?? '',
          };
          const row = await opened.index.instanceBulk(scope);
          assert.ok(row);
          const layout = parseBulkLayout(row.bulk) as BulkLayout;
          assert.ok(layout.addressable);
          const file = store.absolutePath(row.path);
          assert.deepEqual(layout.values.map((v) => v.path).sort(), Object.keys(values).sort());
          for (const v of layout.values) {
            const [offset, length] = v.ranges[0] as readonly [number, number];
            const bytes = readAt(file, offset, length);
            if (v.swap !== 0) swapBytes(bytes, v.swap);
            assert.ok(Buffer.from(bytes).equals(Buffer.from(values[v.path] ?? [])), `${v.path} at ${offset}`);
            assert.equal(v.swap, ts === EXPLICIT_VR_BE ? 2 : 0);
          }
          assert.deepEqual(
            { ...layout.pixels, offset: 0 },
            {
              kind: 'native',
              path: '7FE00010',
              offset: 0,
              length: 16,
              frameBits: 64,
              frames: 2,
              swap: ts === EXPLICIT_VR_BE ? 2 : 0,
            },
          );

          const metadata = [];
          for await (const m of opened.index.instanceMetadata(scope)) metadata.push(m);
          assert.equal(metadata.length, 1);
          const json = JSON.parse(metadata[0]?.metadata ?? 'null') as DicomJsonObject;
          assert.deepEqual(json['7FE00010'], { vr: 'OW', BulkDataURI: 'bulk/7FE00010' });
          assert.deepEqual(json['00281201'], { vr: 'OW', BulkDataURI: 'bulk/00281201' });
          const item = (json['00540016']?.Value?.[0] ?? {}) as DicomJsonObject;
          assert.deepEqual(item['00281201'], { vr: 'OW', BulkDataURI: 'bulk/00540016.0.00281201' });
          assert.deepEqual(item['00080100'], { vr: 'SH', Value: ['X'] });
          assert.deepEqual(json['00100010'], { vr: 'PN', Value: [{ Alphabetic: 'Doe^Jane' }] });

          // Reconcile indexes the file again (its row lost): the same documents.
          assert.ok(await opened.index.deleteInstance(scope.sopInstanceUid));
          const report = await archive.reconcile();
          assert.equal(report.filesIndexed, 1);
          const again = await opened.index.instanceBulk(scope);
          assert.equal(again?.bulk, row.bulk);
          const docs = [];
          for await (const m of opened.index.instanceMetadata(scope)) docs.push(m.metadata);
          assert.deepEqual(docs, [metadata[0]?.metadata]);

          const version = await opened.index.metadataVersion({ studyInstanceUid: scope.studyInstanceUid });
          assert.equal(version?.instances, 1);
          assert.equal(await opened.index.metadataVersion({ studyInstanceUid: '9.9' }), undefined);
          assert.equal(
            await opened.index.metadataVersion({
              studyInstanceUid: '9.9',
              seriesInstanceUid: scope.seriesInstanceUid,
            }),
            undefined,
            'a series of another study is not in scope',
          );
        } finally {
          await opened.cleanup();
          rmSync(dir, { recursive: true, force: true });
        }
      });
    }
  });
}

const JPEG = '1.2.840.10008.1.2.4.50';

/** Parses an encapsulated data set through the capture; its layout and the stream. */
function capture(ds: DataSet): { layout: BulkLayout; bytes: Uint8Array } {
  const bytes = encodeDataSet(ds, JPEG);
  const c = new MetadataCapture(JPEG);
  const parser = new DicomParser(c, { format: 'dataset', transferSyntax: JPEG });
  c.track(() => parser.offset);
  parser.write(bytes);
  parser.end();
  return { layout: JSON.parse(c.finish(0).bulk) as BulkLayout, bytes };
}

function encapsulated(frames: number, fragments: Uint8Array[], extra?: (ds: DataSet) => void): DataSet {
  const ds = makeDataSet();
  ds.delete(TAG.PixelData);
  ds.setString(TAG.NumberOfFrames, String(frames));
  extra?.(ds);
  ds.set({ tag: TAG.PixelData, vr: 'OB', value: { kind: 'fragments', fragments } });
  return ds;
}

const SOI = (n: number, seed: number) => {
  const f = pattern(n, seed);
  f.set([0xff, 0xd8, 0xff], 0);
  return f;
};
const PLAIN = (n: number, seed: number) => {
  const f = pattern(n, seed);
  f[0] = 0x00;
  return f;
};

function u32(values: number[]): Uint8Array {
  const b = Buffer.alloc(values.length * 4);
  for (const [i, v] of values.entries()) b.writeUInt32LE(v, i * 4);
  return b;
}

describe('frame map of encapsulated pixel data', () => {
  const f = [PLAIN(10, 1), PLAIN(20, 2), PLAIN(30, 3), PLAIN(40, 4)];

  it('from the Basic Offset Table: 2 frames of 2 fragments, fragment ranges point at their bytes', () => {
    const { layout, bytes } = capture(encapsulated(2, [u32([0, 8 + 10 + 8 + 20]), ...f]));
    const p = layout.pixels;
    assert.ok(p?.kind === 'encapsulated');
    assert.deepEqual(p.frames, [
      [0, 2],
      [2, 2],
    ]);
    p.fragments.forEach(([offset, length], i) => {
      assert.ok(Buffer.from(bytes.subarray(offset, offset + length)).equals(Buffer.from(f[i] ?? [])));
    });
  });

  it('from the Extended Offset Table when the Basic Offset Table is empty', () => {
    const eot = Buffer.alloc(16);
    eot.writeBigUInt64LE(0n, 0);
    eot.writeBigUInt64LE(BigInt(8 + 10 + 8 + 20 + 8 + 30), 8);
    const { layout } = capture(
      encapsulated(2, [new Uint8Array(0), ...f], (ds) => {
        ds.setBytes(0x7fe00001, eot, 'OV');
        ds.setBytes(0x7fe00002, Buffer.alloc(16), 'OV');
      }),
    );
    assert.deepEqual(layout.pixels?.kind === 'encapsulated' && layout.pixels.frames, [
      [0, 3],
      [3, 1],
    ]);
  });

  it('one fragment per frame; several fragments of one frame; JPEG start markers; unknown', () => {
    const perFrame = capture(encapsulated(4, [new Uint8Array(0), ...f])).layout.pixels;
    assert.deepEqual(perFrame?.kind === 'encapsulated' && perFrame.frames, [
      [0, 1],
      [1, 1],
      [2, 1],
      [3, 1],
    ]);
    const single = capture(encapsulated(1, [new Uint8Array(0), ...f])).layout.pixels;
    assert.deepEqual(single?.kind === 'encapsulated' && single.frames, [[0, 4]]);
    const markers = capture(
      encapsulated(2, [new Uint8Array(0), SOI(10, 1), PLAIN(20, 2), PLAIN(30, 3), SOI(40, 4), PLAIN(2, 5)]),
    ).layout.pixels;
    assert.deepEqual(markers?.kind === 'encapsulated' && markers.frames, [
      [0, 3],
      [3, 2],
    ]);
    const unknown = capture(encapsulated(3, [new Uint8Array(0), ...f])).layout.pixels;
    assert.equal(unknown?.kind === 'encapsulated' && unknown.frames, null);
  });
});
