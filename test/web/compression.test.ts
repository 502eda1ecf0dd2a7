/**
 * WADO-RS after compression at rest: the instance metadata is what it was (the attributes are
 * unchanged, BulkDataURIs included), its ETag changes with the file, and frames are read from the
 * new file's offsets (kept in the index at the switch): each frame as stored decodes to the
 * original's pixels, and the object retrieved in Explicit VR Little Endian (decoded on the way out)
 * has them too. Frame requests made while an object is switched all succeed with its pixels (those
 * that looked the row up before read the original, kept a while). SQLite and PostgreSQL.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { compressInstance, storeTranscoder } from '../../src/archive/compression/compress.js';
import { DelayedRemovals } from '../../src/archive/compression/service.js';
import { codecFor } from '../../src/dicom/codec/registry.js';
import { pixelModuleOf, planarToInterleaved } from '../../src/dicom/codec/types.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { parseDicom } from '../../src/dicom/reader.js';
import { UID } from '../../src/dicom/uid.js';
import { closeTranscodePool, transcodeFile } from '../../src/io/transcode.js';
import { TEST_FILES } from '../helpers/corpus.js';
import { tempDir } from '../server/helpers.js';
import { ingestFiles, startTestWeb, type TestWeb } from './helpers.js';
import { get, parseMultipart } from './wado-client.js';

const ANY = 'multipart/related; type="application/octet-stream"; transfer-syntax=*';
const NATIVE_OBJECT = 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1';

let work: { path: string; remove: () => Promise<void> };
before(async () => {
  work = await tempDir('pacs-web-compress-');
});
after(async () => {
  await closeTranscodePool();
  await work.remove();
});

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`WADO-RS after compression at rest (${engine})`, () => {
    let web: TestWeb;
    before(async () => {
      web = await startTestWeb({ engine });
    });
    after(() => web.close());

    it('frame requests during the switch all succeed with the original pixels', async () => {
      const source = join(TEST_FILES, 'MR_small.dcm');
      const { dataSet } = parseDicom(await readFile(source));
      const uid = dataSet.string(TAG.SOPInstanceUID) as string;
      const url = `${web.base}/studies/${dataSet.string(TAG.StudyInstanceUID)}/series/${dataSet.string(TAG.SeriesInstanceUID)}/instances/${uid}`;
      const m = pixelModuleOf(dataSet);
      const original = Buffer.from(dataSet.bytes(TAG.PixelData) as Uint8Array);
      await ingestFiles(web.archive, [source]);
      const removals = new DelayedRemovals(web.archive, 60_000);
      try {
        let switching = true;
        const answers: Array<{ status: number; pixels: Buffer | undefined; compressed: boolean }> = [];
        const reader = (async () => {
          while (switching || answers.length < 10) {
            const a = await get(`${url}/frames/1`, { accept: ANY });
            let pixels: Buffer | undefined;
            let compressed = false;
            if (a.status === 200) {
              const [part] = parseMultipart(String(a.headers['content-type']), a.body);
              const type = part?.headers['content-type'] ?? '';
              compressed = /transfer-syntax=1\.2\.840\.10008\.1\.2\.4\.80/.test(type);
              if (compressed) {
                const codec = codecFor(UID.JPEGLSLossless);
                pixels = Buffer.from(
                  (await codec?.decodeFrame(part?.body ?? Buffer.alloc(0), m))?.pixels ?? [],
                );
              } else pixels = part?.body;
            }
            answers.push({ status: a.status, pixels, compressed });
          }
        })();
        const outcome = await compressInstance(web.archive, uid, {
          policy: { target: 'jpeg-ls-lossless' },
          transcode: storeTranscoder(),
          removeOriginal: (p) => removals.schedule(p),
        });
        assert.equal(outcome.status, 'compressed');
        await removals.flush(); // the original goes while requests still come
        await new Promise((resolve) => setTimeout(resolve, 50));
        switching = false;
        await reader;
        assert.ok(answers.length >= 10);
        assert.ok(
          answers.some((a) => !a.compressed) && answers.some((a) => a.compressed),
          'before and after',
        );
        // Once the index named the copy, every later answer came from it.
        const first = answers.findIndex((a) => a.compressed);
        assert.ok(answers.slice(first).every((a) => a.compressed));
        for (const [i, a] of answers.entries()) {
          assert.equal(a.status, 200, `request ${i + 1}`);
          assert.ok(a.pixels?.equals(original), `request ${i + 1}: the original pixels`);
        }
      } finally {
        await web.archive.delete(uid);
      }
    });

    for (const target of ['jpeg-ls-lossless', 'j2k-lossless'] as const) {
      it(`${target}: metadata unchanged, frames from the new offsets with the original pixels`, async () => {
        // A two-frame colour object: native copy of the corpus's RLE file (made by our transcoder).
        const source = join(work.path, `native-2frame-${engine}-${target}.dcm`);
        await transcodeFile(join(TEST_FILES, 'SC_rgb_rle_2frame.dcm'), source, { to: '1.2.840.10008.1.2.1' });
        const { dataSet } = parseDicom(await readFile(source));
        const uid = dataSet.string(TAG.SOPInstanceUID) as string;
        const url = `${web.base}/studies/${dataSet.string(TAG.StudyInstanceUID)}/series/${dataSet.string(TAG.SeriesInstanceUID)}/instances/${uid}`;
        await ingestFiles(web.archive, [source]);
        try {
          const m = pixelModuleOf(dataSet);
          const pixels = dataSet.bytes(TAG.PixelData) as Uint8Array;
          const frameBytes = m.rows * m.columns * 3;
          const interleaved = (f: Uint8Array) =>
            m.planarConfiguration === 1 ? planarToInterleaved(f, 3, m.rows * m.columns, 1) : f;
          const original = [
            interleaved(pixels.subarray(0, frameBytes)),
            interleaved(pixels.subarray(frameBytes, 2 * frameBytes)),
          ];

          const metaBefore = await get(`${url}/metadata`);
          assert.equal(metaBefore.status, 200);
          const outcome = await compressInstance(web.archive, uid, {
            policy: { target },
            transcode: storeTranscoder(),
          });
          assert.equal(outcome.status, 'compressed', JSON.stringify(outcome));
          const metaAfter = await get(`${url}/metadata`);
          assert.equal(metaAfter.status, 200);
          const strip = (body: Buffer) => {
            const [json] = JSON.parse(body.toString()) as Array<Record<string, unknown>>;
            // PS3.5 8.2.4: RGB compressed by OpenJPEG with the reversible colour transform is YBR_RCT.
            delete json?.['00280004'];
            return json;
          };
          assert.deepEqual(strip(metaAfter.body), strip(metaBefore.body));
          const pi = (
            JSON.parse(metaAfter.body.toString()) as Array<Record<string, { Value: string[] }>>
          )[0]?.['00280004']?.Value[0];
          assert.equal(pi, target === 'j2k-lossless' ? 'YBR_RCT' : 'RGB');
          assert.notEqual(metaAfter.headers.etag, metaBefore.headers.etag, 'the ETag changes with the file');

          const ts = target === 'j2k-lossless' ? UID.JPEG2000Lossless : UID.JPEGLSLossless;
          const stored = await get(`${url}/frames/1,2`, { accept: ANY });
          assert.equal(stored.status, 200);
          const parts = parseMultipart(String(stored.headers['content-type']), stored.body);
          assert.equal(parts.length, 2);
          const codec = codecFor(ts);
          assert.ok(codec);
          for (const [k, part] of parts.entries()) {
            assert.match(
              part.headers['content-type'] ?? '',
              new RegExp(`transfer-syntax=${ts.replace(/\./g, '\\.')}`),
            );
            const decoded = await codec.decodeFrame(part.body, {
              ...m,
              photometricInterpretation: pi ?? 'RGB',
              planarConfiguration: 0,
            });
            assert.deepEqual(
              Buffer.from(decoded.pixels),
              Buffer.from(original[k] as Uint8Array),
              `frame ${k + 1} as stored`,
            );
          }
          // The whole object read from the new file, decoded on the way out (WADO-RS retrieve).
          const native = await get(url, { accept: NATIVE_OBJECT });
          assert.equal(native.status, 200, native.body.toString());
          const [object] = parseMultipart(String(native.headers['content-type']), native.body);
          assert.ok(object);
          const back = parseDicom(object.body);
          assert.equal(back.transferSyntax, '1.2.840.10008.1.2.1');
          assert.deepEqual(
            Buffer.from(back.dataSet.bytes(TAG.PixelData) as Uint8Array),
            Buffer.concat(original.map((f) => Buffer.from(f))),
            'the object decoded to Explicit VR LE',
          );
        } finally {
          await web.archive.delete(uid);
        }
      });
    }
  });
}
