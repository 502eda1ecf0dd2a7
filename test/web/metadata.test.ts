/**
 * WADO-RS metadata, bulk data and frames against the pydicom corpus: each file is stored through
 * the ingest entry point, then its metadata is compared attribute by attribute with the file's own
 * content (parsed here), every BulkDataURI is fetched and compared with the file's value bytes,
 * and the frames are compared byte for byte with the file's pixel data. SQLite and PostgreSQL.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import type { SqlArchiveIndex } from '../../src/archive/index/sql-index.js';
import type { DataElement, DataSet } from '../../src/dicom/dataset.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { type DicomJsonObject, toDicomJson } from '../../src/dicom/json.js';
import { parseDicom } from '../../src/dicom/reader.js';
import { parseTagString } from '../../src/dicom/tag.js';
import { isBulkVR } from '../../src/dicom/vr.js';
import { TEST_FILES } from '../helpers/corpus.js';
import { ingestFiles, startTestWeb, type TestWeb } from './helpers.js';
import { get, parseMultipart } from './wado-client.js';

const NATIVE = new Set([
  '1.2.840.10008.1.2',
  '1.2.840.10008.1.2.1',
  '1.2.840.10008.1.2.2',
  '1.2.840.10008.1.2.1.99',
]);

/** The media type each compressed syntax of the corpus must be sent with (PS3.18 Table 8.7.3-5), typed here independently. */
const MEDIA: Record<string, string> = {
  '1.2.840.10008.1.2.4.50': 'image/jpeg',
  '1.2.840.10008.1.2.4.51': 'image/jpeg',
  '1.2.840.10008.1.2.4.57': 'image/jpeg',
  '1.2.840.10008.1.2.4.70': 'image/jpeg',
  '1.2.840.10008.1.2.4.80': 'image/jls',
  '1.2.840.10008.1.2.4.81': 'image/jls',
  '1.2.840.10008.1.2.4.90': 'image/jp2',
  '1.2.840.10008.1.2.4.91': 'image/jp2',
  '1.2.840.10008.1.2.5': 'image/dicom-rle',
};

/** Explicit/implicit LE, big endian, deflated, JPEG family, JPEG-LS, JPEG 2000, RLE, native and RLE multi-frame. */
const FILES = [
  'CT_small.dcm',
  'MR_small_implicit.dcm',
  'MR_small_bigendian.dcm',
  'image_dfl.dcm',
  'JPEG-lossy.dcm',
  'JPGExtended.dcm',
  'SC_rgb_jpeg_dcmtk.dcm',
  'MR_small_jpeg_ls_lossless.dcm',
  'JPEG2000.dcm',
  'MR_small_RLE.dcm',
  'rtdose.dcm',
  'rtdose_expb.dcm',
  'rtdose_rle.dcm',
  'SC_rgb_rle_2frame.dcm',
  'SC_rgb_rle_32bit_2frame.dcm',
];

interface FileFacts {
  readonly ds: DataSet;
  readonly ts: string;
  readonly study: string;
  readonly series: string;
  readonly sop: string;
}

function facts(path: string): FileFacts {
  const parsed = parseDicom(readFileSync(path));
  const ds = parsed.dataSet;
  return {
    ds,
    ts: parsed.transferSyntax,
    study: ds.string(TAG.StudyInstanceUID) ?? '',
    series: ds.string(TAG.SeriesInstanceUID) ?? '',
    sop: ds.string(TAG.SOPInstanceUID) ?? '',
  };
}

/** The file's DICOM JSON as the metadata must show it, bulk values as the marker 'BULK'. */
function expectedJson(ds: DataSet): DicomJsonObject {
  const top = ds.get(TAG.PixelData);
  const json = toDicomJson(ds, {
    bulkDataUri: (_tag: number, e: DataElement) => {
      const v = e.value;
      if (e === top) return 'BULK';
      if (!(v instanceof Uint8Array)) return 'BULK';
      return isBulkVR(e.vr) && v.length > 1024 ? 'BULK' : undefined;
    },
  });
  for (const key of Object.keys(json))
    if (key.startsWith('0002') || key === 'FFFCFFFC') delete json[key as keyof typeof json];
  return json;
}

interface BulkCheck {
  readonly uri: string;
  readonly element: DataElement;
}

/** Compares served and expected JSON; collects each BulkDataURI with the file's element it must resolve to. */
function compare(
  served: DicomJsonObject,
  expected: DicomJsonObject,
  ds: DataSet,
  where: string,
  bulks: BulkCheck[],
): void {
  assert.deepEqual(Object.keys(served).sort(), Object.keys(expected).sort(), `${where}: the same attributes`);
  for (const key of Object.keys(expected)) {
    const s = served[key];
    const e = expected[key];
    assert.ok(s && e);
    const tag = parseTagString(key) as number;
    if (s.BulkDataURI !== undefined) {
      assert.equal(e.BulkDataURI, 'BULK', `${where}${key}: a BulkDataURI only for bulk data`);
      assert.equal(s.vr, e.vr, `${where}${key}: VR`);
      bulks.push({ uri: s.BulkDataURI, element: ds.get(tag) as DataElement });
      continue;
    }
    const items = ds.sequence(tag);
    if (e.vr === 'SQ' && Array.isArray(e.Value) && items) {
      assert.equal(s.vr, 'SQ');
      assert.equal(s.Value?.length, e.Value.length, `${where}${key}: items`);
      e.Value.forEach((item, i) => {
        const servedItem = (s.Value as DicomJsonObject[])[i] as DicomJsonObject;
        compare(servedItem, item as DicomJsonObject, items[i] as DataSet, `${where}${key}.${i}.`, bulks);
      });
      continue;
    }
    assert.deepEqual(s, e, `${where}${key}`);
  }
}

function valueBytes(e: DataElement): Buffer {
  const v = e.value;
  if (v instanceof Uint8Array) return Buffer.from(v);
  if (!Array.isArray(v) && v.kind === 'fragments') return Buffer.concat(v.fragments.slice(1));
  throw new Error('not a value');
}

/** The frames of the file's pixel data, computed here from the parsed file. */
function expectedFrames(f: FileFacts): Buffer[] {
  const e = f.ds.get(TAG.PixelData) as DataElement;
  const frames = Number(f.ds.string(TAG.NumberOfFrames) ?? '1') || 1;
  const v = e.value;
  if (v instanceof Uint8Array) {
    const rows = f.ds.number(TAG.Rows) ?? 0;
    const cols = f.ds.number(TAG.Columns) ?? 0;
    const spp = f.ds.number(TAG.SamplesPerPixel) ?? 1;
    const bits = f.ds.number(TAG.BitsAllocated) ?? 8;
    const size = (rows * cols * spp * bits) / 8;
    return Array.from({ length: frames }, (_, i) => Buffer.from(v.subarray(i * size, (i + 1) * size)));
  }
  if (Array.isArray(v) || v.kind !== 'fragments') throw new Error('no pixel data');
  const fragments = v.fragments.slice(1).map((x) => Buffer.from(x));
  if (frames === 1) return [Buffer.concat(fragments)];
  // RLE (PS3.5 A.4.2) and these files: one fragment per frame.
  assert.equal(fragments.length, frames, 'one fragment per frame in the test files');
  return fragments;
}

function instanceUrl(web: TestWeb, f: FileFacts): string {
  return `${web.base}/studies/${f.study}/series/${f.series}/instances/${f.sop}`;
}

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`WADO-RS metadata, bulk data and frames (${engine})`, () => {
    let web: TestWeb;
    before(async () => {
      web = await startTestWeb({ engine });
    });
    after(async () => {
      await web.close();
    });

    for (const name of FILES) {
      it(`${name}: metadata as in the file, BulkDataURIs resolve to its value bytes, frames byte-exact`, async () => {
        const path = join(TEST_FILES, name);
        const f = facts(path);
        await ingestFiles(web.archive, [path]);
        try {
          const answer = await get(`${instanceUrl(web, f)}/metadata`, { accept: 'application/dicom+json' });
          assert.equal(answer.status, 200, answer.body.toString());
          assert.match(String(answer.headers['content-type']), /^application\/dicom\+json/);
          const served = JSON.parse(answer.body.toString()) as DicomJsonObject[];
          assert.equal(served.length, 1);
          const bulks: BulkCheck[] = [];
          compare(served[0] as DicomJsonObject, expectedJson(f.ds), f.ds, '', bulks);
          assert.ok(
            bulks.some((b) => b.element.tag === TAG.PixelData),
            'Pixel Data is a BulkDataURI',
          );
          for (const b of bulks) {
            assert.ok(b.uri.startsWith(`${instanceUrl(web, f)}/bulk/`), b.uri);
            const pixels = b.element.tag === TAG.PixelData && !(b.element.value instanceof Uint8Array);
            if (pixels) continue; // compressed Pixel Data answers as frames: checked below
            const raw = await get(b.uri, { accept: 'application/octet-stream' });
            assert.equal(raw.status, 200, `${b.uri}: ${raw.body.toString()}`);
            assert.ok(raw.body.equals(valueBytes(b.element)), `${b.uri}: the value's bytes (little endian)`);
            const multi = await get(b.uri);
            const parts = parseMultipart(String(multi.headers['content-type']), multi.body);
            assert.equal(parts.length, 1);
            assert.ok(parts[0]?.body.equals(valueBytes(b.element)));
          }

          const frames = expectedFrames(f);
          const list = frames.map((_, i) => i + 1).join(',');
          const native = NATIVE.has(f.ts);
          for (const accept of [
            'multipart/related; type="application/octet-stream"; transfer-syntax=*',
            native
              ? 'multipart/related; type=application/octet-stream'
              : `multipart/related; type=${MEDIA[f.ts]}`,
            '',
          ]) {
            const got = await get(`${instanceUrl(web, f)}/frames/${list}`, accept ? { accept } : {});
            assert.equal(got.status, 200, `${accept}: ${got.body.toString().slice(0, 200)}`);
            const ct = String(got.headers['content-type']);
            assert.match(ct, /^multipart\/related; type="/);
            const parts = parseMultipart(ct, got.body);
            assert.equal(parts.length, frames.length);
            const octets = accept.includes('application/octet-stream') || native;
            const media = octets ? 'application/octet-stream' : MEDIA[f.ts];
            const ts = native ? '1.2.840.10008.1.2.1' : f.ts;
            parts.forEach((p, i) => {
              assert.equal(p.headers['content-type'], `${media}; transfer-syntax=${ts}`);
              assert.ok(p.body.equals(frames[i] as Buffer), `frame ${i + 1} byte for byte`);
            });
          }
          // A lossy encoding is never made unasked: JPEG of frames not stored as JPEG is 406 with a reason, never 500.
          if (native || MEDIA[f.ts] !== 'image/jpeg') {
            const refuse = await get(`${instanceUrl(web, f)}/frames/1`, {
              accept: 'multipart/related; type="image/jpeg"',
            });
            assert.equal(refuse.status, 406);
            assert.match(JSON.parse(refuse.body.toString()).reason, /decod|encod|transcod|lossy/);
          }
          // Compressed frames asked as octets are decoded (issue 13): Explicit VR LE bytes.
          if (!native) {
            const decoded = await get(`${instanceUrl(web, f)}/frames/1`, {
              accept: 'multipart/related; type="application/octet-stream"',
            });
            assert.equal(decoded.status, 200, decoded.body.toString().slice(0, 300));
            const part = parseMultipart(String(decoded.headers['content-type']), decoded.body)[0];
            assert.equal(part?.headers['content-type'], 'application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1');
          }
          const past = await get(`${instanceUrl(web, f)}/frames/${frames.length + 1}`);
          assert.equal(past.status, 404);
        } finally {
          await web.archive.delete(f.sop);
        }
      });
    }

    it('series metadata of many instances: one array, ETag and 304, gzip and br, a new instance changes the ETag', async () => {
      const paths = ['CT_small.dcm', 'MR_small.dcm'].map((n) => join(TEST_FILES, n));
      await ingestFiles(web.archive, paths);
      const ct = facts(paths[0] as string);
      const mr = facts(paths[1] as string);
      try {
        const url = `${web.base}/studies/${ct.study}/series/${ct.series}/metadata`;
        const plain = await get(url);
        assert.equal(plain.status, 200);
        const docs = JSON.parse(plain.body.toString()) as DicomJsonObject[];
        assert.equal(docs.length, 1);
        const etag = String(plain.headers.etag);
        assert.match(etag, /^"/);
        const again = await get(url, { 'if-none-match': etag });
        assert.equal(again.status, 304);
        assert.equal(again.body.length, 0);

        const gz = await get(url, { 'accept-encoding': 'gzip' });
        assert.equal(gz.headers['content-encoding'], 'gzip');
        assert.deepEqual(JSON.parse(gunzipSync(gz.body).toString()), docs);
        assert.notEqual(gz.headers.etag, etag, 'each encoding has its own ETag');
        const br = await get(url, { 'accept-encoding': 'gzip;q=0.5, br' });
        assert.equal(br.headers['content-encoding'], 'br');
        assert.deepEqual(JSON.parse(brotliDecompressSync(br.body).toString()), docs);

        const study = await get(`${web.base}/studies/${mr.study}/metadata`);
        assert.equal(study.status, 200);
        const studyDocs = JSON.parse(study.body.toString()) as DicomJsonObject[];
        assert.ok(studyDocs.length >= 1);
        const before = String(study.headers.etag);
        await web.archive.delete(mr.sop);
        await ingestFiles(web.archive, [paths[1] as string]);
        const changed = await get(`${web.base}/studies/${mr.study}/metadata`, { 'if-none-match': before });
        assert.equal(changed.status, 200, 'a changed study is sent again');
        assert.notEqual(changed.headers.etag, before);
      } finally {
        await web.archive.delete(ct.sop);
        await web.archive.delete(mr.sop);
      }
    });

    it('unknown study, series or instance: 404 with a reason; bad UID or frame list: 400; other media: 406', async () => {
      const path = join(TEST_FILES, 'CT_small.dcm');
      const f = facts(path);
      await ingestFiles(web.archive, [path]);
      try {
        const cases: Array<[string, number, RegExp]> = [
          [`${web.base}/studies/1.2.3.999/metadata`, 404, /no study 1\.2\.3\.999/],
          [`${web.base}/studies/${f.study}/series/1.2.3.999/metadata`, 404, /no series 1\.2\.3\.999/],
          [
            `${web.base}/studies/${f.study}/series/${f.series}/instances/1.2.3.999/metadata`,
            404,
            /no instance/,
          ],
          [`${web.base}/studies/1.2.3.999/series/${f.series}/metadata`, 404, /no study/],
          [
            `${web.base}/studies/1.2.3.999/series/${f.series}/instances/${f.sop}/frames/1`,
            404,
            /no instance/,
          ],
          [`${web.base}/studies/abc/metadata`, 400, /study/],
          [`${instanceUrl(web, f)}/frames/0`, 400, /start at 1/],
          [`${instanceUrl(web, f)}/frames/1,x`, 400, /not a list/],
          [`${instanceUrl(web, f)}/frames/1,,2`, 400, /not a list/],
          [`${instanceUrl(web, f)}/bulk/zz`, 400, /bulk data path/],
          [`${instanceUrl(web, f)}/bulk/00091001`, 404, /no bulk data/],
        ];
        for (const [url, status, reason] of cases) {
          const a = await get(url);
          assert.equal(a.status, status, url);
          const body = JSON.parse(a.body.toString()) as { code: string; reason: string };
          assert.match(body.reason, reason, url);
          assert.match(body.code, /^ERR_/);
        }
        const xml = await get(`${instanceUrl(web, f)}/metadata`, {
          accept: 'multipart/related; type="application/dicom+xml"',
        });
        assert.equal(xml.status, 406);
        assert.match(JSON.parse(xml.body.toString()).reason, /dicom\+json/);
        const bulk406 = await get(`${instanceUrl(web, f)}/bulk/7FE00010`, { accept: 'image/png' });
        assert.equal(bulk406.status, 406);
        assert.ok(
          web.logLines.some((l) => l['status'] === 406),
          'the refusal is logged',
        );
      } finally {
        await web.archive.delete(f.sop);
      }
    });

    it('bulk data honours Range on a single-part answer: 206 with Content-Range, 416 past the end', async () => {
      const path = join(TEST_FILES, 'MR_small_bigendian.dcm');
      const f = facts(path);
      await ingestFiles(web.archive, [path]);
      try {
        const pixels = valueBytes(f.ds.get(TAG.PixelData) as DataElement);
        const url = `${instanceUrl(web, f)}/bulk/7FE00010`;
        const headers = { accept: 'application/octet-stream' };
        // An odd start in a big endian OW value: the swap still lines up.
        const part = await get(url, { ...headers, range: 'bytes=101-2000' });
        assert.equal(part.status, 206);
        assert.equal(part.headers['content-range'], `bytes 101-2000/${pixels.length}`);
        assert.ok(part.body.equals(pixels.subarray(101, 2001)));
        const tail = await get(url, { ...headers, range: 'bytes=-7' });
        assert.equal(tail.status, 206);
        assert.ok(tail.body.equals(pixels.subarray(pixels.length - 7)));
        const open = await get(url, { ...headers, range: `bytes=${pixels.length - 3}-` });
        assert.ok(open.body.equals(pixels.subarray(pixels.length - 3)));
        const past = await get(url, { ...headers, range: `bytes=${pixels.length}-` });
        assert.equal(past.status, 416);
        assert.equal(past.headers['content-range'], `bytes */${pixels.length}`);
      } finally {
        await web.archive.delete(f.sop);
      }
    });

    it('a row indexed before the metadata was kept (NULL) reads its file once, then is kept', async () => {
      const path = join(TEST_FILES, 'rtdose.dcm');
      const f = facts(path);
      await ingestFiles(web.archive, [path]);
      try {
        const url = `${web.base}/studies/${f.study}/series/${f.series}/metadata`;
        const kept = JSON.parse((await get(url)).body.toString()) as unknown;
        const db = (web.archive.index as SqlArchiveIndex).db;
        await db
          .updateTable('instance')
          .set({ metadata: null, bulk: null })
          .where('sop_instance_uid', '=', f.sop)
          .execute();
        const fallback = await get(url);
        assert.equal(fallback.status, 200);
        assert.deepEqual(JSON.parse(fallback.body.toString()), kept);
        const row = await db
          .selectFrom('instance')
          .select(['metadata', 'bulk'])
          .where('sop_instance_uid', '=', f.sop)
          .executeTakeFirstOrThrow();
        assert.ok(row.metadata !== null && row.bulk !== null, 'the documents read from the file are kept');
        // Frames of a NULL row also read the file once.
        await db
          .updateTable('instance')
          .set({ metadata: null, bulk: null })
          .where('sop_instance_uid', '=', f.sop)
          .execute();
        const frames = await get(`${instanceUrl(web, f)}/frames/2`, {
          accept: 'multipart/related; type="application/octet-stream"',
        });
        assert.equal(frames.status, 200);
        const parts = parseMultipart(String(frames.headers['content-type']), frames.body);
        assert.ok(parts[0]?.body.equals(expectedFrames(f)[1] as Buffer));
      } finally {
        await web.archive.delete(f.sop);
      }
    });
  });
}
