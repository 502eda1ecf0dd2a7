/**
 * WADO-RS rendered and thumbnail resources (web/dicomweb/rendered.ts, render-service.ts) on a real
 * archive, SQLite and PostgreSQL: media types, the choice of instance per level, frames, the
 * query parameters, and each class of bad request (400, 404, 406 with a reason).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PNG } from 'pngjs';
import { DataSet } from '../../src/dicom/dataset.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { describeFrames } from '../../src/dicom/pixel/frame.js';
import { type Image, renderFrame, renderParameters, type Window } from '../../src/dicom/pixel/render.js';
import { readDicomFile } from '../../src/io/dicom-file.js';
import { closeRenderPool, renderInstance } from '../../src/web/dicomweb/render-service.js';
import { parseAccept } from '../../src/web/media-type.js';
import { djpeg } from '../dicom/jpeg-decode.js';
import { TEST_FILES } from '../helpers/corpus.js';
import { ingestDataSets, ingestFiles, memoryLogger, startTestWeb, type TestWeb } from './helpers.js';

const MR = join(TEST_FILES, 'MR_small.dcm');
const CT = join(TEST_FILES, 'CT_small.dcm');
const MR_STUDY = '1.3.6.1.4.1.5962.1.2.4.20040826185059.5457';
const SYN_STUDY = '1.2.826.0.1.3680043.8.498.1';
const SYN_SERIES = '1.2.826.0.1.3680043.8.498.1.1';
const MULTI = '1.2.826.0.1.3680043.8.498.1.1.9';

function grey(rows: number, columns: number, values: number[], frames = 1): DataSet {
  const ds = new DataSet();
  ds.setString(TAG.SOPClassUID, '1.2.840.10008.5.1.4.1.1.7');
  ds.setString(TAG.PatientID, 'R1');
  ds.setString(TAG.PatientName, 'Render^Test');
  ds.setString(TAG.StudyInstanceUID, SYN_STUDY);
  ds.setString(TAG.SeriesInstanceUID, SYN_SERIES);
  ds.setString(TAG.Modality, 'OT');
  ds.setNumbers(TAG.SamplesPerPixel, 1, 'US');
  ds.setString(TAG.PhotometricInterpretation, 'MONOCHROME2');
  if (frames > 1) ds.setString(TAG.NumberOfFrames, String(frames), 'IS');
  ds.setNumbers(TAG.Rows, rows, 'US');
  ds.setNumbers(TAG.Columns, columns, 'US');
  ds.setNumbers(TAG.BitsAllocated, 8, 'US');
  ds.setNumbers(TAG.BitsStored, 8, 'US');
  ds.setNumbers(TAG.HighBit, 7, 'US');
  ds.setNumbers(TAG.PixelRepresentation, 0, 'US');
  ds.setBytes(TAG.PixelData, Uint8Array.from(values), 'OB');
  return ds;
}

/** Three single-frame instances (numbers 3, 1, 2: the middle is number 2) and one 3-frame instance in another series. */
function synthetic(): DataSet[] {
  const out: DataSet[] = [];
  for (const [n, v] of [
    [3, 30],
    [1, 10],
    [2, 20],
  ] as const) {
    const ds = grey(2, 2, [v, v, v, v]);
    ds.setString(TAG.SOPInstanceUID, `${SYN_SERIES}.${n}`);
    ds.setString(TAG.InstanceNumber, String(n), 'IS');
    out.push(ds);
  }
  const multi = grey(2, 3, [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 5, 5, 5, 5, 5, 250], 3);
  multi.setString(TAG.SeriesInstanceUID, `${SYN_STUDY}.2`);
  multi.setString(TAG.SOPInstanceUID, MULTI);
  out.push(multi);
  return out;
}

async function expected(path: string, window?: Window): Promise<Image> {
  const { dataSet } = await readDicomFile(path);
  const info = describeFrames(dataSet);
  return renderFrame(renderParameters(dataSet, info), dataSet.bytes(TAG.PixelData) as Uint8Array, 0, window);
}

function decodePng(body: Buffer): { width: number; height: number; grey: number[] } {
  const png = PNG.sync.read(body);
  const g: number[] = [];
  for (let i = 0; i < png.width * png.height; i++) g.push(png.data[i * 4] as number);
  return { width: png.width, height: png.height, grey: g };
}

async function get(
  web: TestWeb,
  path: string,
  accept?: string,
): Promise<{ status: number; type: string; body: Buffer }> {
  const r = await fetch(`${web.base}${path}`, accept === undefined ? {} : { headers: { accept } });
  return {
    status: r.status,
    type: r.headers.get('content-type') ?? '',
    body: Buffer.from(await r.arrayBuffer()),
  };
}

async function reason(web: TestWeb, path: string, status: number, accept?: string): Promise<string> {
  const r = await get(web, path, accept);
  assert.equal(r.status, status, r.body.toString());
  const body = JSON.parse(r.body.toString()) as { code: string; reason: string };
  assert.ok(body.code.startsWith('ERR_'));
  return body.reason;
}

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`rendered resources (${engine})`, () => {
    let web: TestWeb;
    let mrPath: string;
    let ctPath: string;
    before(async () => {
      web = await startTestWeb({ engine });
      await ingestFiles(web.archive, [
        MR,
        CT,
        join(TEST_FILES, 'rtplan.dcm'),
        join(TEST_FILES, 'JPEG-lossy.dcm'),
        join(TEST_FILES, 'image_dfl.dcm'),
      ]);
      await ingestDataSets(web.archive, synthetic());
      const { dataSet } = await readDicomFile(MR, { stopAtTag: TAG.PixelData });
      mrPath = `/studies/${MR_STUDY}/series/${dataSet.string(TAG.SeriesInstanceUID)}/instances/${dataSet.string(TAG.SOPInstanceUID)}`;
      const ct = await readDicomFile(CT, { stopAtTag: TAG.PixelData });
      ctPath = `/studies/${ct.dataSet.string(TAG.StudyInstanceUID)}/series/${ct.dataSet.string(TAG.SeriesInstanceUID)}/instances/${ct.dataSet.string(TAG.SOPInstanceUID)}`;
    });
    after(async () => {
      await web.close();
      await closeRenderPool();
    });

    test('an instance renders as JPEG by default, close to the direct rendering', async () => {
      const r = await get(web, `${mrPath}/rendered`);
      assert.equal(r.status, 200);
      assert.equal(r.type, 'image/jpeg');
      const img = djpeg(r.body);
      assert.equal(img.width, 64);
      const want = await expected(MR);
      let se = 0;
      for (let i = 0; i < want.data.length; i++)
        se += ((want.data[i] as number) - (img.data[i] as number)) ** 2;
      assert.ok(10 * Math.log10((255 * 255) / (se / want.data.length)) > 35);
    });

    test('image/png (Accept header or accept=) is the exact rendering', async () => {
      const want = await expected(MR);
      for (const [path, accept] of [
        [`${mrPath}/rendered`, 'image/png'],
        [`${mrPath}/rendered?accept=image/png`, undefined],
        [`${mrPath}/rendered`, 'image/gif, image/png;q=0.5'],
      ] as const) {
        const r = await get(web, path, accept);
        assert.equal(r.status, 200);
        assert.equal(r.type, 'image/png');
        assert.deepEqual(decodePng(r.body).grey, [...want.data]);
      }
      assert.match(await reason(web, `${mrPath}/rendered`, 406, 'image/gif'), /image\/jpeg or image\/png/);
    });

    test('window, quality, viewport and annotation', async () => {
      const window: Window = { center: 100, width: 300, function: 'SIGMOID' };
      const want = await expected(MR, window);
      const r = await get(
        web,
        `${mrPath}/rendered?window=100,300,sigmoid&annotation=patient,technique`,
        'image/png',
      );
      assert.equal(r.status, 200);
      assert.deepEqual(decodePng(r.body).grey, [...want.data]);
      const low = await get(web, `${ctPath}/rendered?quality=10`);
      const high = await get(web, `${ctPath}/rendered?quality=100`);
      assert.ok(low.body.length < high.body.length);
      const vp = await get(web, `${ctPath}/rendered?viewport=64,32`, 'image/png');
      const d = decodePng(vp.body);
      assert.deepEqual([d.width, d.height], [32, 32]);
      const crop = await get(web, `${ctPath}/rendered?viewport=10,10,0,0,10,10`, 'image/png');
      const ct = await expected(CT);
      assert.deepEqual(decodePng(crop.body).grey.slice(0, 10), [...ct.data.subarray(0, 10)]);
    });

    test('thumbnails: a small frame as it is, a viewport when asked', async () => {
      const r = await get(web, `${mrPath}/thumbnail`, 'image/png');
      assert.equal(r.status, 200);
      assert.equal(decodePng(r.body).width, 64);
      const big = await get(web, `/studies/1.3.6.1.4.1.5962.1.2.0.977067310.6001.0/thumbnail`, 'image/png');
      assert.equal(big.status, 200, big.body.toString());
      assert.deepEqual([decodePng(big.body).width, decodePng(big.body).height], [128, 128]);
      const small = await get(web, `${ctPath}/thumbnail?viewport=16,16`, 'image/png');
      assert.equal(decodePng(small.body).width, 16);
    });

    // window=128,256 is the identity on 0..255 under LINEAR (PS3.3 C.11.2.1.2.1: the -0.5 convention).
    test('a series renders its middle instance, a study its largest series', async () => {
      const series = await get(
        web,
        `/studies/${SYN_STUDY}/series/${SYN_SERIES}/rendered?window=128,256`,
        'image/png',
      );
      assert.equal(series.status, 200, series.body.toString());
      assert.deepEqual(decodePng(series.body).grey, [20, 20, 20, 20]);
      const study = await get(web, `/studies/${SYN_STUDY}/rendered?window=128,256,linear`, 'image/png');
      assert.deepEqual(decodePng(study.body).grey, [20, 20, 20, 20]);
    });

    test('frames: one frame at a time; the instance is its first frame', async () => {
      const base = `/studies/${SYN_STUDY}/series/${SYN_STUDY}.2/instances/${MULTI}`;
      const f2 = await get(web, `${base}/frames/2/rendered?window=128,256`, 'image/png');
      assert.equal(f2.status, 200);
      assert.deepEqual(decodePng(f2.body).grey, [60, 70, 80, 90, 100, 110]);
      const f3 = await get(web, `${base}/frames/3/thumbnail`, 'image/png');
      assert.deepEqual(decodePng(f3.body).grey, [0, 0, 0, 0, 0, 255]);
      const whole = await get(web, `${base}/rendered?window=128,256`, 'image/png');
      assert.deepEqual(decodePng(whole.body).grey, [0, 10, 20, 30, 40, 50]);
      assert.match(await reason(web, `${base}/frames/4/rendered`, 404), /frame 4 does not exist/);
      assert.match(await reason(web, `${base}/frames/1,2/rendered`, 406), /one frame/);
      assert.match(await reason(web, `${base}/frames/0/rendered`, 400), /frame numbers/);
      assert.match(await reason(web, `${base}/frames/x/rendered`, 400), /frame numbers/);
    });

    test('renderInstance (for WADO-URI): a region with or without a size', async () => {
      const context = { archive: web.archive, logger: memoryLogger([]), aeTitle: 'PACS' };
      const [, , study, , series, , instance] = ctPath.split('/');
      const request = {
        study: study as string,
        series: series as string,
        instance: instance as string,
        accept: parseAccept('image/png'),
      };
      const ct = await expected(CT);
      const quarter = await renderInstance(context, {
        ...request,
        region: { left: 0.5, top: 0, right: 1, bottom: 0.5 },
      });
      assert.equal(quarter.contentType, 'image/png');
      const d = decodePng(quarter.body);
      assert.deepEqual([d.width, d.height], [64, 64]);
      assert.deepEqual(d.grey.slice(0, 64), [...ct.data.subarray(64, 128)]);
      const scaled = await renderInstance(context, {
        ...request,
        viewport: { width: 32, height: 32 },
        region: { left: 0, top: 0, right: 0.5, bottom: 1 },
      });
      assert.deepEqual([scaled.width, scaled.height], [16, 32]);
      await assert.rejects(
        renderInstance(context, { ...request, region: { left: 0.6, top: 0, right: 0.5, bottom: 1 } }),
        {
          status: 400,
        },
      );
      await assert.rejects(
        renderInstance(context, { ...request, accept: parseAccept('application/dicom') }),
        { status: 406 },
      );
    });

    test('deflated objects render', async () => {
      const r = await get(web, `/studies/1.3.6.1.4.1.5962.1.2.0.977067310.6001.0/rendered`, 'image/png');
      assert.equal(r.status, 200);
      assert.equal(decodePng(r.body).width, 512);
    });

    test('bad parameters are 400 with a reason', async () => {
      for (const [q, re] of [
        ['quality=0', /quality/],
        ['quality=101', /quality/],
        ['quality=high', /quality/],
        ['window=40', /window/],
        ['window=40,0', /width/],
        ['window=40,abc,linear', /window/],
        ['window=40,400,cubic', /function/],
        ['viewport=0,10', /viewport/],
        ['viewport=10', /viewport/],
        ['viewport=10,10,0,0,500,500', /not inside/],
        ['annotation=everything', /annotation/],
        ['quality=50&quality=60', /more than once/],
        ['frobnicate=1', /unknown query parameter frobnicate/],
      ] as const)
        assert.match(await reason(web, `${mrPath}/rendered?${q}`, 400), re, q);
      await reason(web, `/studies/1.2.x/rendered`, 400);
    });

    test('missing resources are 404; non-images and compressed data 406, never 500', async () => {
      assert.match(await reason(web, `/studies/1.2.3.4/rendered`, 404), /no such study/);
      assert.match(await reason(web, `/studies/${MR_STUDY}/series/1.2.3/rendered`, 404), /no such series/);
      assert.match(
        await reason(web, `/studies/${MR_STUDY}/series/1.2.3/instances/1.2.3.4/rendered`, 404),
        /no such instance/,
      );
      // An instance named under another study is not found there.
      const other = mrPath.replace(MR_STUDY, SYN_STUDY);
      assert.match(await reason(web, `${other}/rendered`, 404), /no such instance/);
      assert.match(
        await reason(web, `/studies/1.22.333.4.555555.6.7777777777777777777777777777/rendered`, 406),
        /no Pixel Data/,
      );
      assert.match(
        await reason(web, `/studies/1.22.333.4.555555.6.7777777777777777777777777777/rendered`, 406),
        /no Pixel Data/,
      );
    });
  });
}

describe('rendered resources of a big-endian object', () => {
  test('MR_small_bigendian.dcm renders as MR_small.dcm does', async () => {
    const web = await startTestWeb();
    try {
      await ingestFiles(web.archive, [join(TEST_FILES, 'MR_small_bigendian.dcm')]);
      const r = await get(web, `/studies/${MR_STUDY}/rendered`, 'image/png');
      assert.equal(r.status, 200, r.body.toString());
      assert.deepEqual(decodePng(r.body).grey, [...(await expected(MR)).data]);
    } finally {
      await web.close();
      await closeRenderPool();
    }
  });
});

describe('rendered: compressed pixel data is decoded first', () => {
  /** The RGBA pixels of /rendered as PNG for one file stored alone in an archive. */
  async function renderedPixels(file: string): Promise<{ width: number; height: number; data: Buffer }> {
    const web = await startTestWeb();
    try {
      await ingestFiles(web.archive, [file]);
      const ds = (await readDicomFile(file, { stopAtTag: TAG.PixelData })).dataSet;
      const path = `/studies/${ds.string(TAG.StudyInstanceUID)}/series/${ds.string(TAG.SeriesInstanceUID)}/instances/${ds.string(TAG.SOPInstanceUID)}/rendered`;
      const r = await fetch(`${web.base}${path}`, { headers: { accept: 'image/png' } });
      assert.equal(r.status, 200, `${file}: ${await r.clone().text()}`);
      assert.equal(r.headers.get('content-type'), 'image/png');
      const png = PNG.sync.read(Buffer.from(await r.arrayBuffer()));
      return { width: png.width, height: png.height, data: png.data };
    } finally {
      await web.close();
    }
  }

  test('RLE, JPEG-LS and JPEG 2000 lossless copies of MR_small render to the native pixels exactly', async () => {
    const native = await renderedPixels(MR);
    for (const name of ['MR_small_RLE.dcm', 'MR_small_jpeg_ls_lossless.dcm', 'MR_small_jp2klossless.dcm']) {
      const compressed = await renderedPixels(join(TEST_FILES, name));
      assert.equal(compressed.width, native.width, name);
      assert.equal(compressed.height, native.height, name);
      assert.ok(compressed.data.equals(native.data), `${name} renders as MR_small.dcm does`);
    }
  });

  test('a lossy JPEG and an RGB RLE image render', async () => {
    for (const name of ['JPEG-lossy.dcm', 'SC_rgb_rle.dcm']) {
      const image = await renderedPixels(join(TEST_FILES, name));
      assert.ok(image.width > 0 && image.height > 0, name);
    }
  });
});
