/**
 * Rendering native frames (dicom/pixel): golden values on small synthetic frames for each
 * photometric interpretation, bit depth, LUT function, palette and planar configuration, and the
 * pydicom corpus rendered and compared with expectations computed here from the raw values (and
 * with DCMTK's dcm2pnm for one file).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { DataSet } from '../../src/dicom/dataset.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { describeFrames, frameRange, PixelDataError } from '../../src/dicom/pixel/frame.js';
import { applyWindow, renderFrame, renderParameters, storedValues } from '../../src/dicom/pixel/render.js';
import { applyViewport, fittedSize } from '../../src/dicom/pixel/scale.js';
import { readDicomFile } from '../../src/io/dicom-file.js';
import { dcmtkTool, TEST_FILES } from '../helpers/corpus.js';

interface Module {
  rows?: number;
  columns?: number;
  spp?: number;
  photometric?: string;
  bitsAllocated?: number;
  bitsStored?: number;
  highBit?: number;
  pr?: number;
  planar?: number;
  frames?: number;
}

function dataSet(m: Module): DataSet {
  const ds = new DataSet();
  ds.setNumbers(TAG.Rows, m.rows ?? 1, 'US');
  ds.setNumbers(TAG.Columns, m.columns ?? 3, 'US');
  ds.setNumbers(TAG.SamplesPerPixel, m.spp ?? 1, 'US');
  ds.setString(TAG.PhotometricInterpretation, m.photometric ?? 'MONOCHROME2');
  const ba = m.bitsAllocated ?? 8;
  ds.setNumbers(TAG.BitsAllocated, ba, 'US');
  ds.setNumbers(TAG.BitsStored, m.bitsStored ?? ba, 'US');
  ds.setNumbers(TAG.HighBit, m.highBit ?? (m.bitsStored ?? ba) - 1, 'US');
  ds.setNumbers(TAG.PixelRepresentation, m.pr ?? 0, 'US');
  if ((m.spp ?? 1) > 1) ds.setNumbers(TAG.PlanarConfiguration, m.planar ?? 0, 'US');
  if (m.frames !== undefined) ds.setString(TAG.NumberOfFrames, String(m.frames), 'IS');
  return ds;
}

function u16(values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 2);
  values.forEach((v, i) => {
    out[2 * i] = v & 0xff;
    out[2 * i + 1] = (v >> 8) & 0xff;
  });
  return out;
}

function render(ds: DataSet, bytes: Uint8Array, window?: Parameters<typeof renderFrame>[3]) {
  const info = describeFrames(ds);
  return renderFrame(renderParameters(ds, info), bytes, 0, window);
}

describe('frame description', () => {
  test('a consistent module is described, with frame byte ranges', () => {
    const info = describeFrames(
      dataSet({ rows: 2, columns: 3, bitsAllocated: 16, bitsStored: 12, frames: 4 }),
    );
    assert.equal(info.frameBits, 2 * 3 * 16);
    assert.deepEqual(frameRange(info, 2, 48), { start: 24, end: 36, bitOffset: 0 });
    assert.throws(() => frameRange(info, 4, 48), { code: 'ERR_PIXEL_FRAME' });
    assert.throws(() => frameRange(info, 3, 40), { code: 'ERR_PIXEL_MODULE', message: /holds 40 bytes/ });
  });

  test('1-bit frames are bit-packed across frames', () => {
    const info = describeFrames(dataSet({ rows: 1, columns: 3, bitsAllocated: 1, frames: 3 }));
    assert.deepEqual(frameRange(info, 1, 2), { start: 0, end: 1, bitOffset: 3 });
    assert.deepEqual(frameRange(info, 2, 2), { start: 0, end: 2, bitOffset: 6 });
  });

  test('inconsistent values are refused with a reason naming them', () => {
    const cases: Array<[Module, RegExp]> = [
      [{ spp: 3 }, /Samples per Pixel 3/],
      [{ photometric: 'RGB' }, /Samples per Pixel 1/],
      [{ bitsAllocated: 12 }, /Bits Allocated 12/],
      [{ bitsAllocated: 8, bitsStored: 9 }, /Bits Stored 9/],
      [{ bitsAllocated: 16, bitsStored: 12, highBit: 3 }, /High Bit 3/],
      [{ pr: 2 }, /Pixel Representation 2/],
      [{ spp: 3, photometric: 'RGB', planar: 2 }, /Planar Configuration 2/],
      [{ rows: 0 }, /positive/],
      [{ frames: 0 }, /Number of Frames/],
    ];
    for (const [m, reason] of cases)
      assert.throws(
        () => describeFrames(dataSet(m)),
        (e: unknown) => e instanceof PixelDataError && reason.test(e.message),
      );
    assert.throws(() => describeFrames(dataSet({ photometric: 'HSV' })), { code: 'ERR_PIXEL_UNSUPPORTED' });
    const noRows = dataSet({});
    noRows.delete(TAG.Rows);
    assert.throws(() => describeFrames(noRows), /Rows is missing/);
  });
});

describe('stored values', () => {
  test('bits stored below high bit are masked and sign extended', () => {
    // 12 bits at high bit 11, garbage in the top 4 bits: 0xAFFB -> 0xFFB = -5 signed.
    const info = describeFrames(dataSet({ bitsAllocated: 16, bitsStored: 12, pr: 1, columns: 3 }));
    assert.deepEqual([...storedValues(info, u16([0xaffb, 0x07ff, 0xf800]), 0, 3)], [-5, 2047, -2048]);
    // 12 bits with high bit 13: the value sits 2 bits up.
    const shifted = describeFrames(dataSet({ bitsAllocated: 16, bitsStored: 12, highBit: 13, columns: 2 }));
    assert.deepEqual(
      [...storedValues(shifted, u16([(0xabc << 2) | 3, 0xc000 | (5 << 2)]), 0, 2)],
      [0xabc, 5],
    );
    const u8 = describeFrames(dataSet({ bitsStored: 7, pr: 1, columns: 2 }));
    assert.deepEqual([...storedValues(u8, new Uint8Array([0x7f, 0x81]), 0, 2)], [-1, 1]);
    const u32 = describeFrames(dataSet({ bitsAllocated: 32, pr: 1, columns: 2 }));
    assert.deepEqual(
      [...storedValues(u32, new Uint8Array([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0x80]), 0, 2)],
      [-1, -(2 ** 31)],
    );
    const bits = describeFrames(dataSet({ bitsAllocated: 1, columns: 3 }));
    assert.deepEqual([...storedValues(bits, new Uint8Array([0b1011_0000]), 4, 3)], [1, 1, 0]);
  });
});

describe('grey pipeline', () => {
  test('no VOI: the frame range maps to 0..255', () => {
    assert.deepEqual([...render(dataSet({}), new Uint8Array([10, 60, 110])).data], [0, 128, 255]);
  });

  test('window functions follow PS3.3 C.11.2.1.2', () => {
    const lin = { center: 40, width: 400, function: 'LINEAR' as const };
    assert.equal(applyWindow(lin, -160), 0);
    assert.equal(applyWindow(lin, 239.5), 255);
    assert.equal(applyWindow(lin, 39.5), 127.5);
    assert.equal(applyWindow(lin, 239), ((239 - 39.5) / 399 + 0.5) * 255);
    const exact = { center: 100, width: 200, function: 'LINEAR_EXACT' as const };
    assert.equal(applyWindow(exact, 0), 0);
    assert.equal(applyWindow(exact, 100), 127.5);
    assert.equal(applyWindow(exact, 150), 191.25);
    assert.equal(applyWindow(exact, 201), 255);
    const sig = { center: 100, width: 50, function: 'SIGMOID' as const };
    assert.equal(applyWindow(sig, 100), 127.5);
    assert.equal(applyWindow(sig, 125), 255 / (1 + Math.exp(-2)));
  });

  test('rescale, then the data set window with its VOI LUT Function', () => {
    const ds = dataSet({ bitsAllocated: 16, bitsStored: 12, pr: 1, columns: 4 });
    ds.setString(TAG.RescaleSlope, '2', 'DS');
    ds.setString(TAG.RescaleIntercept, '-100', 'DS');
    ds.setString(TAG.WindowCenter, ['0', '500'], 'DS');
    ds.setString(TAG.WindowWidth, ['200', '10'], 'DS');
    ds.setString(TAG.VOILUTFunction, 'LINEAR_EXACT');
    // modality values: -100, 0, 50, 200 -> exact window 0/200 (the first window)
    const out = render(ds, u16([0, 50, 75, 150]));
    assert.deepEqual([...out.data], [0, 128, 191, 255]);
    // A window override wins over the data set's.
    const over = render(ds, u16([0, 50, 75, 150]), { center: 50, width: 100, function: 'LINEAR_EXACT' });
    // -100 and 0 are at or below c - w/2 = 0; 50 is the centre; 200 is above c + w/2.
    assert.deepEqual([...over.data], [0, 0, 128, 255]);
  });

  test('Modality LUT Sequence and VOI LUT Sequence', () => {
    const ds = dataSet({ bitsAllocated: 16, columns: 4 });
    const mlut = new DataSet();
    mlut.setNumbers(TAG.LUTDescriptor, [4, 10, 16], 'US');
    mlut.setBytes(TAG.LUTData, u16([100, 200, 300, 400]), 'OW');
    ds.setSequence(TAG.ModalityLUTSequence, [mlut]);
    const vlut = new DataSet();
    vlut.setNumbers(TAG.LUTDescriptor, [3, 200, 8], 'US');
    vlut.setBytes(TAG.LUTData, u16([0, 51, 255]), 'OW');
    ds.setSequence(TAG.VOILUTSequence, [vlut]);
    // stored 9 (below first mapped: entry 0 = 100), 11 (200), 12 (300), 99 (last: 400)
    // VOI: 100 -> below 200 -> 0; 200 -> 0; 300 -> 255 (past the end, clamped); 400 -> 255
    assert.deepEqual([...render(ds, u16([9, 11, 12, 99])).data], [0, 0, 255, 255]);
    vlut.setNumbers(TAG.LUTDescriptor, [3, 200, 8], 'US');
    vlut.setBytes(TAG.LUTData, u16([0, 51, 255]), 'OW');
    mlut.setBytes(TAG.LUTData, u16([200, 201, 202, 203]), 'OW');
    assert.deepEqual([...render(ds, u16([10, 11, 12, 13])).data], [0, 51, 255, 255]);
  });

  test('MONOCHROME1 and Presentation LUT Shape INVERSE invert', () => {
    const mono1 = dataSet({ photometric: 'MONOCHROME1' });
    assert.deepEqual([...render(mono1, new Uint8Array([10, 60, 110])).data], [255, 127, 0]);
    const inverse = dataSet({});
    inverse.setString(TAG.PresentationLUTShape, 'INVERSE');
    assert.deepEqual([...render(inverse, new Uint8Array([10, 60, 110])).data], [255, 127, 0]);
  });

  test('1-bit and 32-bit frames', () => {
    const bits = dataSet({ bitsAllocated: 1, columns: 4 });
    assert.deepEqual([...render(bits, new Uint8Array([0b0101])).data], [255, 0, 255, 0]);
    const big = dataSet({ bitsAllocated: 32, columns: 3 });
    const b = new Uint8Array(12);
    const v = new DataView(b.buffer);
    v.setUint32(0, 0, true);
    v.setUint32(4, 2_000_000_000, true);
    v.setUint32(8, 4_000_000_000, true);
    assert.deepEqual([...render(big, b).data], [0, 128, 255]);
  });
});

describe('colour', () => {
  const rgb = [255, 0, 0, 0, 255, 0, 0, 0, 255];
  test('RGB, planar configuration 0 and 1', () => {
    assert.deepEqual([...render(dataSet({ spp: 3, photometric: 'RGB' }), new Uint8Array(rgb)).data], rgb);
    const planar = new Uint8Array([255, 0, 0, 0, 255, 0, 0, 0, 255]); // R plane, G plane, B plane
    assert.deepEqual([...render(dataSet({ spp: 3, photometric: 'RGB', planar: 1 }), planar).data], rgb);
    const sixteen = dataSet({ spp: 3, photometric: 'RGB', bitsAllocated: 16, columns: 1 });
    assert.deepEqual([...render(sixteen, u16([65535, 32768, 0])).data], [255, 128, 0]);
  });

  test('YBR_FULL and YBR_FULL_422 to RGB (PS3.3 C.7.6.3.1.2)', () => {
    const ybr = dataSet({ spp: 3, photometric: 'YBR_FULL', columns: 2 });
    // grey stays grey; (76, 85, 255) is red.
    assert.deepEqual(
      [...render(ybr, new Uint8Array([128, 128, 128, 76, 85, 255])).data],
      [128, 128, 128, 254, 0, 0],
    );
    const s422 = dataSet({ spp: 3, photometric: 'YBR_FULL_422', columns: 2 });
    // Y1 Y2 Cb Cr: two pixels sharing chroma (Cr 228: 1.402*100 = 140.2 on red).
    assert.deepEqual([...render(s422, new Uint8Array([50, 100, 128, 228])).data], [190, 0, 50, 240, 29, 100]);
  });

  test('PALETTE COLOR with 8-bit (in words, and packed) and 16-bit entries', () => {
    const ds = dataSet({ photometric: 'PALETTE COLOR', columns: 3 });
    for (const [d, data] of [
      [TAG.RedPaletteColorLookupTableDescriptor, TAG.RedPaletteColorLookupTableData],
      [TAG.GreenPaletteColorLookupTableDescriptor, TAG.GreenPaletteColorLookupTableData],
      [TAG.BluePaletteColorLookupTableDescriptor, TAG.BluePaletteColorLookupTableData],
    ] as const) {
      ds.setNumbers(d, [3, 5, 16], 'US');
      ds.setBytes(data, u16([0, 0x8080, 0xffff]), 'OW');
    }
    // stored 5, 6, 7 -> entries 0, 1, 2
    assert.deepEqual(
      [...render(ds, new Uint8Array([5, 6, 9])).data],
      [0, 0, 0, 128, 128, 128, 255, 255, 255],
    );
    ds.setNumbers(TAG.RedPaletteColorLookupTableDescriptor, [3, 5, 8], 'US');
    ds.setBytes(TAG.RedPaletteColorLookupTableData, u16([10, 20, 30]), 'OW');
    ds.setNumbers(TAG.GreenPaletteColorLookupTableDescriptor, [4, 5, 8], 'US');
    ds.setBytes(TAG.GreenPaletteColorLookupTableData, new Uint8Array([1, 2, 3, 4]), 'OB');
    assert.deepEqual([...render(ds, new Uint8Array([5, 6, 7])).data], [10, 1, 0, 20, 2, 128, 30, 3, 255]);
    ds.setBytes(TAG.SegmentedRedPaletteColorLookupTableData, u16([0]), 'OW');
    assert.throws(() => render(ds, new Uint8Array(3)), { code: 'ERR_PIXEL_UNSUPPORTED' });
  });
});

describe('viewport', () => {
  const grey = (w: number, h: number, f: (x: number, y: number) => number) => ({
    width: w,
    height: h,
    channels: 1 as const,
    data: Uint8Array.from({ length: w * h }, (_, i) => f(i % w, Math.floor(i / w))),
  });

  test('fits keeping the aspect ratio, shrinking by area averages', () => {
    assert.deepEqual(fittedSize({ width: 128, height: 128 }, { width: 512, height: 256 }), {
      width: 128,
      height: 64,
    });
    const img = grey(4, 2, (x) => (x % 2 === 0 ? 0 : 200));
    const out = applyViewport(img, { width: 2, height: 2 });
    assert.equal(out.width, 2);
    assert.equal(out.height, 1);
    assert.deepEqual([...out.data], [100, 100]);
  });

  test('a source region crops, a negative width flips, enlarging is bilinear', () => {
    const img = grey(4, 1, (x) => x * 10);
    assert.deepEqual(
      [...applyViewport(img, { width: 2, height: 1, source: { x: 2, y: 0, width: 2, height: 1 } }).data],
      [20, 30],
    );
    assert.deepEqual(
      [...applyViewport(img, { width: 4, height: 1, source: { x: 4, y: 0, width: -4, height: 1 } }).data],
      [30, 20, 10, 0],
    );
    const up = applyViewport(
      grey(2, 1, (x) => x * 100),
      { width: 4, height: 2 },
    );
    assert.deepEqual([...up.data], [0, 25, 75, 100, 0, 25, 75, 100]);
    assert.throws(
      () => applyViewport(img, { width: 2, height: 2, source: { x: 3, y: 0, width: 2, height: 1 } }),
      {
        code: 'ERR_PIXEL_VIEWPORT',
      },
    );
  });
});

/** The frame of a corpus file: its data set and little-endian pixel bytes (the reader swaps big endian). */
async function corpus(name: string) {
  const { dataSet: ds } = await readDicomFile(join(TEST_FILES, name));
  const pixels = ds.bytes(TAG.PixelData);
  assert.ok(pixels, `${name} has native pixel data`);
  return { ds, pixels };
}

function expectedLinear(x: number, c: number, w: number): number {
  if (x <= c - 0.5 - (w - 1) / 2) return 0;
  if (x > c - 0.5 + (w - 1) / 2) return 255;
  return Math.round(((x - (c - 0.5)) / (w - 1) + 0.5) * 255);
}

describe('the pydicom corpus', () => {
  test('MR_small.dcm: signed 16-bit through its window 600/1600', async () => {
    const { ds, pixels } = await corpus('MR_small.dcm');
    const out = render(ds, pixels);
    const view = new DataView(pixels.buffer, pixels.byteOffset, pixels.byteLength);
    assert.equal(out.width, 64);
    for (let i = 0; i < 64 * 64; i++)
      assert.equal(out.data[i], expectedLinear(view.getInt16(2 * i, true), 600, 1600), `pixel ${i}`);
  });

  test('MR_small_bigendian.dcm renders as MR_small.dcm', async () => {
    const a = await corpus('MR_small.dcm');
    const b = await corpus('MR_small_bigendian.dcm');
    assert.deepEqual(render(b.ds, b.pixels).data, render(a.ds, a.pixels).data);
  });

  test('CT_small.dcm: rescale -1024, no window, the frame range', async () => {
    const { ds, pixels } = await corpus('CT_small.dcm');
    const view = new DataView(pixels.buffer, pixels.byteOffset, pixels.byteLength);
    const hu = Array.from({ length: 128 * 128 }, (_, i) => view.getInt16(2 * i, true) - 1024);
    const min = Math.min(...hu);
    const max = Math.max(...hu);
    const out = render(ds, pixels);
    for (let i = 0; i < hu.length; i++)
      assert.equal(out.data[i], Math.round((((hu[i] as number) - min) / (max - min)) * 255));
  });

  test('SC_rgb_small_odd.dcm and ExplVR_BigEnd.dcm (planar 1) render their RGB values', async () => {
    const { ds, pixels } = await corpus('SC_rgb_small_odd.dcm');
    // 27 bytes of pixels, padded to an even length.
    assert.deepEqual([...render(ds, pixels).data], [...pixels.subarray(0, 27)]);
    const be = await corpus('ExplVR_BigEnd.dcm');
    const out = render(be.ds, be.pixels);
    const n = 60 * 80;
    for (const i of [0, 1234, n - 1])
      assert.deepEqual(
        [...out.data.subarray(3 * i, 3 * i + 3)],
        [be.pixels[i], be.pixels[n + i], be.pixels[2 * n + i]],
      );
  });

  test('liver_1frame.dcm (1 bit) and rtdose_1frame.dcm (32 bit)', async () => {
    const liver = await corpus('liver_1frame.dcm');
    const out = render(liver.ds, liver.pixels);
    for (const i of [0, 1000, 131072, 200_001]) {
      const bit = ((liver.pixels[i >> 3] as number) >> (i & 7)) & 1;
      assert.equal(out.data[i], bit * 255);
    }
    const dose = await corpus('rtdose_1frame.dcm');
    const view = new DataView(dose.pixels.buffer, dose.pixels.byteOffset, dose.pixels.byteLength);
    const v = Array.from({ length: 100 }, (_, i) => view.getUint32(4 * i, true));
    const out2 = render(dose.ds, dose.pixels);
    const lo = Math.min(...v);
    const hi = Math.max(...v);
    for (let i = 0; i < 100; i++)
      assert.equal(out2.data[i], Math.round((((v[i] as number) - lo) / (hi - lo)) * 255));
  });

  // PS3.4 N.2 through another implementation: DCMTK's dcm2pnm, first window (+Wi 1) or min-max (+Wm).
  for (const [name, options, tolerance] of [
    ['MR_small.dcm', ['+Wi', '1'], 1],
    ['CT_small.dcm', ['+Wm'], 1],
    ['liver_1frame.dcm', ['+Wm'], 0],
    ['rtdose_1frame.dcm', ['+Wm'], 1],
    ['SC_rgb_small_odd.dcm', [], 0],
    ['ExplVR_BigEnd.dcm', [], 0],
    ['SC_ybr_full_422_uncompressed.dcm', [], 2],
  ] as const)
    test(`${name} agrees with DCMTK dcm2pnm ${options.join(' ')} within ${tolerance}`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'pacs-render-'));
      try {
        const pnm = join(dir, 'out.pnm');
        const r = spawnSync(dcmtkTool('dcm2pnm'), [...options, '+op', join(TEST_FILES, name), pnm], {
          encoding: 'utf8',
        });
        assert.equal(r.status, 0, r.stderr);
        const file = readFileSync(pnm);
        const header = file.toString('latin1', 0, 20).match(/^P([56])\s+(\d+)\s+(\d+)\s+(\d+)\s/);
        assert.ok(header, 'a binary PGM or PPM');
        const theirs = file.subarray(header[0].length);
        const { ds, pixels } = await corpus(name);
        const ours = render(ds, pixels);
        assert.equal(ours.channels, header[1] === '5' ? 1 : 3);
        assert.equal(theirs.length, ours.data.length);
        let worst = 0;
        for (let i = 0; i < ours.data.length; i++)
          worst = Math.max(worst, Math.abs((ours.data[i] as number) - (theirs[i] as number)));
        assert.ok(worst <= tolerance, `largest difference ${worst}`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
});
