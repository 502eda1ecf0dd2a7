/**
 * WADO-RS frames: Accept negotiation per stored syntax (what is sent as stored, what answers 406
 * because it would need a codec), the single-part form, q-values, the frame list, and many frame
 * requests over one keep-alive connection answered from the stored offsets. SQLite and PostgreSQL.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { codecFor } from '../../src/dicom/codec/registry.js';
import { pixelModuleOf } from '../../src/dicom/codec/types.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { parseDicom } from '../../src/dicom/reader.js';
import { negotiateFrames, parseFrameList } from '../../src/web/dicomweb/frames.js';
import { HttpError } from '../../src/web/errors.js';
import { parseAccept } from '../../src/web/media-type.js';
import { TEST_FILES } from '../helpers/corpus.js';
import { ingestFiles, startTestWeb, type TestWeb } from './helpers.js';
import { get, parseMultipart } from './wado-client.js';

const LE = '1.2.840.10008.1.2.1';
const JPEG = '1.2.840.10008.1.2.4.50';
const J2K = '1.2.840.10008.1.2.4.90';
const RLE = '1.2.840.10008.1.2.5';

function refused(f: () => unknown, reason: RegExp): void {
  assert.throws(f, (e: unknown) => e instanceof HttpError && e.status === 406 && reason.test(e.message));
}

describe('frame negotiation', () => {
  it('native data: octet-stream in Explicit VR LE, whatever native syntax it is stored in', () => {
    for (const stored of ['1.2.840.10008.1.2', LE, '1.2.840.10008.1.2.2', '1.2.840.10008.1.2.1.99']) {
      for (const accept of [
        '',
        '*/*',
        'multipart/related; type=application/octet-stream',
        'multipart/related; type="application/octet-stream"; transfer-syntax=*',
        `multipart/related; type="application/octet-stream"; transfer-syntax=${LE}`,
        'multipart/related',
      ])
        assert.deepEqual(negotiateFrames(parseAccept(accept), stored, 2), {
          partType: 'application/octet-stream',
          transferSyntax: LE,
          single: false,
        });
      // image/jpeg's default syntax (JPEG lossless SV1) has no encoder here.
      refused(
        () => negotiateFrames(parseAccept('multipart/related; type="image/jpeg"'), stored, 1),
        /cannot encode into 1\.2\.840\.10008\.1\.2\.4\.70/,
      );
      // image/jls: encoded into JPEG-LS lossless frame by frame (issue 13).
      assert.deepEqual(negotiateFrames(parseAccept('multipart/related; type="image/jls"'), stored, 2), {
        partType: 'image/jls',
        transferSyntax: '1.2.840.10008.1.2.4.80',
        single: false,
        transcode: true,
      });
      // Lossy only when configured: never for a viewer's request.
      refused(
        () =>
          negotiateFrames(
            parseAccept(`multipart/related; type="image/jpeg"; transfer-syntax=${JPEG}`),
            stored,
            1,
          ),
        /lossy/,
      );
      refused(
        () =>
          negotiateFrames(
            parseAccept(`multipart/related; type=application/octet-stream; transfer-syntax=${JPEG}`),
            stored,
            1,
          ),
        /application\/octet-stream in/,
      );
    }
  });

  it('compressed data: its media type and syntax, octet-stream only with transfer-syntax=* or the stored one', () => {
    assert.deepEqual(negotiateFrames(parseAccept('multipart/related; type="image/jpeg"'), JPEG, 3), {
      partType: 'image/jpeg',
      transferSyntax: JPEG,
      single: false,
    });
    assert.deepEqual(
      negotiateFrames(parseAccept(`multipart/related; type=image/jp2; transfer-syntax=${J2K}`), J2K, 1),
      {
        partType: 'image/jp2',
        transferSyntax: J2K,
        single: false,
      },
    );
    assert.equal(
      negotiateFrames(parseAccept('multipart/related; type="image/*"'), RLE, 1).partType,
      'image/dicom-rle',
    );
    assert.equal(negotiateFrames(parseAccept(''), '1.2.840.10008.1.2.4.80', 1).partType, 'image/jls');
    assert.equal(negotiateFrames(parseAccept(''), '1.2.840.10008.1.2.4.201', 1).partType, 'image/jphc');
    assert.equal(negotiateFrames(parseAccept(''), '1.2.840.10008.1.2.4.102', 1).partType, 'video/mp4');
    assert.deepEqual(
      negotiateFrames(
        parseAccept('multipart/related; type="application/octet-stream"; transfer-syntax=*'),
        JPEG,
        1,
      ),
      { partType: 'application/octet-stream', transferSyntax: JPEG, single: false },
    );
    // Decoded to native, or transcoded into another media type's syntax (issue 13).
    assert.deepEqual(
      negotiateFrames(parseAccept('multipart/related; type=application/octet-stream'), JPEG, 1),
      {
        partType: 'application/octet-stream',
        transferSyntax: LE,
        single: false,
        transcode: true,
      },
    );
    assert.deepEqual(negotiateFrames(parseAccept('multipart/related; type="image/jp2"'), JPEG, 1), {
      partType: 'image/jp2',
      transferSyntax: J2K,
      single: false,
      transcode: true,
    });
    refused(
      () =>
        negotiateFrames(
          parseAccept('multipart/related; type="image/jpeg"; transfer-syntax=1.2.840.10008.1.2.4.70'),
          JPEG,
          1,
        ),
      /cannot encode into 1\.2\.840\.10008\.1\.2\.4\.70/,
    );
    refused(
      () => negotiateFrames(parseAccept('multipart/related; type="image/jxl"'), J2K, 1),
      /image\/jxl is not a form frames are transcoded into/,
    );
    refused(() => negotiateFrames(parseAccept('text/html'), JPEG, 1), /text\/html/);
  });

  it('q-values decide between acceptable forms; a refused first choice falls back to the next', () => {
    const accept = parseAccept(
      'multipart/related; type="image/jxl"; q=0.9, multipart/related; type="application/octet-stream"; transfer-syntax=*; q=0.5',
    );
    assert.equal(negotiateFrames(accept, JPEG, 1).partType, 'application/octet-stream');
    assert.equal(
      negotiateFrames(parseAccept('image/png;q=1, multipart/related;q=0.1'), RLE, 1).partType,
      'image/dicom-rle',
    );
  });

  it('application/octet-stream as one body for one frame only', () => {
    assert.deepEqual(negotiateFrames(parseAccept('application/octet-stream'), LE, 1), {
      partType: 'application/octet-stream',
      transferSyntax: LE,
      single: true,
    });
    refused(() => negotiateFrames(parseAccept('application/octet-stream'), LE, 2), /one frame/);
  });

  it('frame lists', () => {
    assert.deepEqual(parseFrameList('1,3,5'), [1, 3, 5]);
    assert.deepEqual(parseFrameList('2'), [2]);
    for (const bad of ['', '0', '1,', ',1', '1;2', '-1', '1.5', 'a'])
      assert.throws(
        () => parseFrameList(bad),
        (e: unknown) => e instanceof HttpError && e.status === 400,
        bad,
      );
  });
});

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`frames over HTTP (${engine})`, () => {
    let web: TestWeb;
    before(async () => {
      web = await startTestWeb({ engine });
    });
    after(async () => {
      await web.close();
    });

    it('frames in the order asked, a frame twice, single-part octet-stream, and 300 requests on one connection', async () => {
      const path = join(TEST_FILES, 'rtdose.dcm');
      const ds = parseDicom(readFileSync(path)).dataSet;
      const pixels = ds.bytes(TAG.PixelData) as Uint8Array;
      const frames = Number(ds.string(TAG.NumberOfFrames));
      const size = pixels.length / frames;
      const frame = (n: number) => Buffer.from(pixels.subarray((n - 1) * size, n * size));
      await ingestFiles(web.archive, [path]);
      const url = `${web.base}/studies/${ds.string(TAG.StudyInstanceUID)}/series/${ds.string(TAG.SeriesInstanceUID)}/instances/${ds.string(TAG.SOPInstanceUID)}/frames`;
      try {
        const got = await get(`${url}/3,1,3`);
        assert.equal(got.status, 200);
        const parts = parseMultipart(String(got.headers['content-type']), got.body);
        assert.deepEqual(
          parts.map((p) => p.body),
          [frame(3), frame(1), frame(3)],
        );
        const single = await get(`${url}/2`, { accept: 'application/octet-stream' });
        assert.equal(single.headers['content-type'], `application/octet-stream; transfer-syntax=${LE}`);
        assert.ok(single.body.equals(frame(2)));
        const viaQuery = await get(`${url}/2?accept=${encodeURIComponent('application/octet-stream')}`);
        assert.ok(viaQuery.body.equals(frame(2)), 'the accept query parameter (PS3.18 8.3.3.1)');
        for (let i = 0; i < 300; i++) {
          const n = (i % frames) + 1;
          const a = await get(`${url}/${n}`, { accept: 'application/octet-stream' });
          assert.equal(a.status, 200);
          assert.ok(a.body.equals(frame(n)));
        }
      } finally {
        await web.archive.delete(ds.string(TAG.SOPInstanceUID) ?? '');
      }
    });

    it('transcodes frames: a JPEG 2000 frame decoded to octet-stream, a native frame encoded as image/jls', async () => {
      const j2kPath = join(TEST_FILES, 'MR_small_jp2klossless.dcm');
      const ds = parseDicom(readFileSync(j2kPath)).dataSet;
      const native = parseDicom(readFileSync(join(TEST_FILES, 'MR_small.dcm'))).dataSet.bytes(TAG.PixelData);
      await ingestFiles(web.archive, [j2kPath]);
      const url = `${web.base}/studies/${ds.string(TAG.StudyInstanceUID)}/series/${ds.string(TAG.SeriesInstanceUID)}/instances/${ds.string(TAG.SOPInstanceUID)}/frames`;
      try {
        const single = await get(`${url}/1`, { accept: 'application/octet-stream' });
        assert.equal(single.status, 200, single.body.toString());
        assert.equal(single.headers['content-type'], `application/octet-stream; transfer-syntax=${LE}`);
        assert.ok(single.body.equals(Buffer.from(native ?? [])), 'the decoded frame is MR_small');
        const jls = await get(`${url}/1,1`, { accept: 'multipart/related; type="image/jls"' });
        assert.equal(jls.status, 200);
        const parts = parseMultipart(String(jls.headers['content-type']), jls.body);
        assert.equal(parts.length, 2);
        const codec = codecFor('1.2.840.10008.1.2.4.80');
        const module = pixelModuleOf(ds);
        for (const p of parts) {
          assert.equal(p.headers['content-type'], 'image/jls; transfer-syntax=1.2.840.10008.1.2.4.80');
          const back = await codec?.decodeFrame(new Uint8Array(p.body), module);
          assert.ok(back && Buffer.from(back.pixels).equals(Buffer.from(native ?? [])));
        }
        // No encoder for image/jpeg's default (JPEG lossless SV1): 406 with the reason.
        const no = await get(`${url}/1`, { accept: 'multipart/related; type="image/jpeg"' });
        assert.equal(no.status, 406);
        assert.match(JSON.parse(no.body.toString()).reason, /cannot encode into/);
      } finally {
        await web.archive.delete(ds.string(TAG.SOPInstanceUID) ?? '');
      }
    });

    it('an instance without pixel data: 404 with a reason', async () => {
      const path = join(TEST_FILES, 'rtplan.dcm');
      const ds = parseDicom(readFileSync(path)).dataSet;
      await ingestFiles(web.archive, [path]);
      try {
        const a = await get(
          `${web.base}/studies/${ds.string(TAG.StudyInstanceUID)}/series/${ds.string(TAG.SeriesInstanceUID)}/instances/${ds.string(TAG.SOPInstanceUID)}/frames/1`,
        );
        assert.equal(a.status, 404);
        assert.match(JSON.parse(a.body.toString()).reason, /no pixel data/);
      } finally {
        await web.archive.delete(ds.string(TAG.SOPInstanceUID) ?? '');
      }
    });
  });
}
