/**
 * STOW-RS (PS3.18 10.5) against the archive, on SQLite and PostgreSQL: pydicom corpus files and
 * synthetic objects stored as application/dicom parts are indexed and kept with the data set
 * bytes sent; the DICOM JSON + bulk data form; per-instance refusals (study mismatch, a part that
 * is not DICOM) with their PS3.18 failure reasons and nothing partial left in the data folder;
 * duplicates as warnings; malformed payloads; a body that stops early; 415; the response body.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { PacsEvent } from '../../src/core/events.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { toDicomJson } from '../../src/dicom/json.js';
import { EXPLICIT_VR_LE, generateUid } from '../../src/dicom/uid.js';
import { encodePart10 } from '../../src/dicom/writer.js';
import { readDicomFile } from '../../src/io/dicom-file.js';
import { files } from '../archive/helpers.js';
import { TEST_FILES } from '../helpers/corpus.js';
import { makeCtDataSet } from '../helpers/synthetic.js';
import { startTestWeb, type TestWeb } from './helpers.js';
import { dataSetBytes, items, multipart, post, value } from './stow-helpers.js';

const CT = '1.2.840.10008.5.1.4.1.1.2';
const DICOM_TYPE = 'multipart/related; type="application/dicom"; boundary="stow boundary"';
const B = 'stow boundary';

/** Corpus files (distinct SOP Instance UIDs) in many transfer syntaxes: explicit/implicit, big endian, deflated, JPEG, J2K, RLE. */
const CORPUS = [
  'CT_small.dcm',
  'MR_small.dcm',
  'ExplVR_BigEnd.dcm',
  'SC_rgb_rle.dcm',
  'JPEG2000.dcm',
  'JPEG-lossy.dcm',
  'SC_rgb_jpeg_dcmtk.dcm',
  'image_dfl.dcm',
  'rtplan.dcm',
  'test-SR.dcm',
  'waveform_ecg.dcm',
].map((f) => join(TEST_FILES, f));

function ct(o: { study?: string; sop?: string; rows?: number } = {}): Uint8Array {
  const ds = makeCtDataSet({
    rows: o.rows ?? 8,
    columns: o.rows ?? 8,
    studyInstanceUid: o.study ?? generateUid(),
    sopInstanceUid: o.sop ?? generateUid(),
  });
  return encodePart10(ds, EXPLICIT_VR_LE);
}

async function storedFile(web: TestWeb, sop: string): Promise<Buffer> {
  const found = await web.archive.index.findInstance(sop);
  assert.ok(found, `${sop} is indexed`);
  return readFileSync(join(web.dataDir, found.path));
}

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`STOW-RS (${engine})`, () => {
    let web: TestWeb;
    const events: PacsEvent[] = [];
    before(async () => {
      web = await startTestWeb({ engine });
      web.events.subscribe((e) => events.push(e));
    });
    after(async () => {
      await web.close();
    });

    test('corpus files in one request: 200, indexed, the data set bytes kept as sent, events via STOW-RS', async () => {
      const sent = CORPUS.map((f) => readFileSync(f));
      events.length = 0;
      const r = await post(
        `${web.base}/studies`,
        DICOM_TYPE,
        multipart(
          B,
          sent.map((body) => ({ body })),
        ),
      );
      assert.equal(r.status, 200, r.text);
      assert.match(String(r.headers['content-type']), /^application\/dicom\+json/);
      const refs = items(r.json, '00081199');
      assert.equal(refs.length, sent.length);
      assert.equal(items(r.json, '00081198').length, 0, 'no FailedSOPSequence when nothing failed');
      for (let i = 0; i < sent.length; i++) {
        const file = await readDicomFile(CORPUS[i] as string, { stopAtTag: TAG.PixelData });
        const sop = file.dataSet.string(TAG.SOPInstanceUID) as string;
        const ref = refs[i];
        assert.equal(value(ref, '00081155'), sop);
        assert.equal(value(ref, '00081150'), file.dataSet.string(TAG.SOPClassUID));
        assert.equal(
          value(ref, '00081190'),
          `${web.base}/studies/${file.dataSet.string(TAG.StudyInstanceUID)}/series/${file.dataSet.string(TAG.SeriesInstanceUID)}/instances/${sop}`,
        );
        assert.equal(value(ref, '00081196'), undefined);
        const stored = await storedFile(web, sop);
        assert.ok(
          dataSetBytes(stored).equals(dataSetBytes(sent[i] as Buffer)),
          `${CORPUS[i]}: data set bytes`,
        );
      }
      const received = events.filter((e) => e.type === 'object-received');
      assert.equal(received.length, sent.length);
      assert.ok(
        received.every(
          (e) => e.type === 'object-received' && e.via === 'STOW-RS' && e.source === '127.0.0.1',
        ),
      );
    });

    test('unquoted parameters, and no type parameter (parts by their own Content-Type)', async () => {
      const study = generateUid();
      const a = ct({ study });
      const r1 = await post(
        `${web.base}/studies/${study}`,
        'multipart/related; type=application/dicom; boundary=plainB',
        multipart('plainB', [{ body: a }]),
      );
      assert.equal(r1.status, 200, r1.text);
      assert.equal(value(r1.json, '00081190'), `${web.base}/studies/${study}`);
      const r2 = await post(
        `${web.base}/studies`,
        'multipart/related; boundary=plainB',
        multipart('plainB', [{ headers: { 'Content-Type': 'application/dicom' }, body: ct({ study }) }]),
      );
      assert.equal(r2.status, 200, r2.text);
      assert.equal(value(r2.json, '00081190'), `${web.base}/studies/${study}`);
    });

    test('a study mismatch on /studies/{study} is refused for that instance (A900), nothing of it stored', async () => {
      const study = generateUid();
      const goodSop = generateUid();
      const badSop = generateUid();
      const before = files(web.dataDir).objects.length;
      const r = await post(
        `${web.base}/studies/${study}`,
        DICOM_TYPE,
        multipart(B, [{ body: ct({ study, sop: goodSop }) }, { body: ct({ sop: badSop, rows: 256 }) }]),
      );
      assert.equal(r.status, 202, r.text);
      const failed = items(r.json, '00081198');
      assert.equal(failed.length, 1);
      assert.equal(value(failed[0], '00081155'), badSop);
      assert.equal(value(failed[0], '00081150'), CT);
      assert.equal(value(failed[0], '00081197'), 0xa900);
      assert.equal(items(r.json, '00081199').length, 1);
      assert.equal(await web.archive.index.findInstance(badSop), undefined);
      assert.ok(await web.archive.index.findInstance(goodSop));
      const after = files(web.dataDir);
      assert.equal(after.objects.length, before + 1);
      assert.deepEqual(after.tmp, []);
      // Only mismatches: 409.
      const none = await post(`${web.base}/studies/${study}`, DICOM_TYPE, multipart(B, [{ body: ct() }]));
      assert.equal(none.status, 409, none.text);
    });

    test('a duplicate is a warning (B006) and keeps the archived object: 202', async () => {
      const sop = generateUid();
      const body = ct({ sop });
      const first = await post(`${web.base}/studies`, DICOM_TYPE, multipart(B, [{ body }]));
      assert.equal(first.status, 200, first.text);
      const again = await post(`${web.base}/studies`, DICOM_TYPE, multipart(B, [{ body }]));
      assert.equal(again.status, 202, again.text);
      const refs = items(again.json, '00081199');
      assert.equal(refs.length, 1);
      assert.equal(value(refs[0], '00081155'), sop);
      assert.equal(value(refs[0], '00081196'), 0xb006);
      assert.equal(items(again.json, '00081198').length, 0);
    });

    test('a part that is not DICOM fails (C000), nothing partial stored; only such parts: 409', async () => {
      const before = files(web.dataDir).objects.length;
      const good = generateUid();
      const r = await post(
        `${web.base}/studies`,
        DICOM_TYPE,
        multipart(B, [
          { body: Buffer.from('this is not a DICOM file, but text long enough to look at'.repeat(10)) },
          { body: ct({ sop: good }) },
          { body: readFileSync(join(TEST_FILES, 'rtplan_truncated.dcm')) },
        ]),
      );
      assert.equal(r.status, 202, r.text);
      const failed = items(r.json, '00081198');
      assert.equal(failed.length, 2);
      assert.ok(failed.every((f) => value(f, '00081197') === 0xc000));
      assert.ok(await web.archive.index.findInstance(good));
      const after = files(web.dataDir);
      assert.equal(after.objects.length, before + 1);
      assert.deepEqual(after.tmp, []);
      const none = await post(
        `${web.base}/studies`,
        DICOM_TYPE,
        multipart(B, [{ body: Buffer.alloc(500, 0x41) }]),
      );
      assert.equal(none.status, 409);
      assert.equal(value(items(none.json, '00081198')[0], '00081197'), 0xc000);
      assert.ok(web.logLines.some((l) => l['msg'] === 'STOW-RS: instance not stored'));
    });

    test('malformed multipart: 400 with a JSON reason, nothing stored', async () => {
      const before = files(web.dataDir).objects.length;
      const noBoundary = await post(
        `${web.base}/studies`,
        'multipart/related; type="application/dicom"',
        Buffer.from(ct()),
      );
      assert.equal(noBoundary.status, 400);
      assert.equal((noBoundary.json as { code: string }).code, 'ERR_HTTP_MULTIPART');
      assert.match((noBoundary.json as { reason: string }).reason, /boundary/);
      const unclosed = await post(
        `${web.base}/studies`,
        DICOM_TYPE,
        multipart(B, [{ body: ct() }], { close: false }).subarray(0, -2),
      );
      assert.equal(unclosed.status, 400, unclosed.text);
      assert.match((unclosed.json as { reason: string }).reason, /closing|ended/);
      const garbage = await post(`${web.base}/studies`, DICOM_TYPE, Buffer.from('garbage '.repeat(1000)));
      assert.equal(garbage.status, 400);
      const empty = await post(`${web.base}/studies`, DICOM_TYPE, Buffer.from(`--${B}--\r\n`));
      assert.equal(empty.status, 400);
      const after = files(web.dataDir);
      assert.equal(after.objects.length, before);
      assert.deepEqual(after.tmp, []);
      assert.ok(web.logLines.some((l) => l['msg'] === 'STOW-RS: malformed multipart payload'));
    });

    test('malformed after a stored part: the stored one stays, 202 with a Warning header', async () => {
      const sop = generateUid();
      const whole = multipart(B, [{ body: ct({ sop }) }, { body: ct({ rows: 64 }) }], { close: false });
      const r = await post(`${web.base}/studies`, DICOM_TYPE, whole.subarray(0, whole.length - 3000));
      assert.equal(r.status, 202, r.text);
      assert.match(String(r.headers['warning']), /^299 /);
      assert.equal(value(items(r.json, '00081199')[0], '00081155'), sop);
      assert.deepEqual(files(web.dataDir).tmp, []);
    });

    test('415 for what is not a STOW-RS payload', async () => {
      for (const type of [
        'application/dicom',
        'multipart/related; type="application/dicom+xml"; boundary=x',
        'multipart/related; type="image/png"; boundary=x',
        'text/plain',
      ]) {
        const r = await post(`${web.base}/studies`, type, Buffer.from('--x--'));
        assert.equal(r.status, 415, type);
        assert.equal((r.json as { code: string }).code, 'ERR_HTTP_UNSUPPORTED_MEDIA_TYPE');
        assert.ok((r.json as { reason: string }).reason.length > 0);
      }
      const none = await post(`${web.base}/studies`, undefined, Buffer.from('abc'));
      assert.equal(none.status, 415);
    });

    test('a body that stops early: the part being ingested is dropped, earlier ones stay, the server goes on', async () => {
      const keptSop = generateUid();
      const cutSop = generateUid();
      const before = files(web.dataDir).objects.length;
      const payload = multipart(
        B,
        [{ body: ct({ sop: keptSop }) }, { body: ct({ sop: cutSop, rows: 512 }) }],
        {
          close: false,
        },
      );
      const url = new URL(`${web.base}/studies`);
      await new Promise<void>((resolve, reject) => {
        const socket = net.connect(Number(url.port), url.hostname, () => {
          socket.write(
            `POST ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: ${DICOM_TYPE}\r\nContent-Length: ${payload.length + 1000}\r\n\r\n`,
          );
          socket.write(payload.subarray(0, payload.length - 100_000), () => {
            setTimeout(() => {
              socket.destroy();
              resolve();
            }, 200);
          });
        });
        socket.on('error', reject);
      });
      // The server notices the cut, drops the part and logs it.
      for (
        let i = 0;
        i < 200 && !web.logLines.some((l) => l['msg'] === 'STOW-RS: the request body stopped early');
        i++
      )
        await new Promise((r) => setTimeout(r, 25));
      assert.ok(web.logLines.some((l) => l['msg'] === 'STOW-RS: the request body stopped early'));
      assert.ok(await web.archive.index.findInstance(keptSop));
      assert.equal(await web.archive.index.findInstance(cutSop), undefined);
      const after = files(web.dataDir);
      assert.equal(after.objects.length, before + 1);
      assert.deepEqual(after.tmp, []);
      const next = await post(`${web.base}/studies`, DICOM_TYPE, multipart(B, [{ body: ct() }]));
      assert.equal(next.status, 200);
    });

    test('over HTTP/2 (h2c): the body streams the same way', async () => {
      const sop = generateUid();
      const session = http2.connect(web.origin);
      try {
        const req = session.request({
          ':method': 'POST',
          ':path': '/dicom-web/studies',
          'content-type': DICOM_TYPE,
        });
        req.end(multipart(B, [{ body: ct({ sop, rows: 256 }) }]));
        const [headers, text] = await new Promise<[http2.IncomingHttpHeaders, string]>((resolve, reject) => {
          let h: http2.IncomingHttpHeaders = {};
          let t = '';
          req.on('response', (r) => {
            h = r;
          });
          req.on('data', (d: Buffer) => {
            t += d.toString();
          });
          req.on('end', () => resolve([h, t]));
          req.on('error', reject);
        });
        assert.equal(headers[':status'], 200, text);
        assert.equal(value(items(JSON.parse(text), '00081199')[0], '00081155'), sop);
        assert.ok(await web.archive.index.findInstance(sop));
      } finally {
        session.close();
      }
    });

    test('metadata (DICOM JSON) with bulk data parts: native pixel data in memory and spooled', async () => {
      for (const rows of [8, 1024]) {
        const ds = makeCtDataSet({ rows, columns: rows });
        const pixels = ds.bytes(TAG.PixelData) as Uint8Array;
        const sop = ds.string(TAG.SOPInstanceUID) as string;
        const json = toDicomJson(ds, {
          bulkDataUri: (tag) => (tag === TAG.PixelData ? `${web.base}/bulk/${sop}/pixels` : undefined),
        });
        const r = await post(
          `${web.base}/studies`,
          'multipart/related; type="application/dicom+json"; boundary=jsonB',
          multipart('jsonB', [
            {
              headers: { 'Content-Type': 'application/dicom+json' },
              body: Buffer.from(JSON.stringify([json])),
            },
            {
              headers: {
                'Content-Type': 'application/octet-stream',
                'Content-Location': `${web.base}/bulk/${sop}/pixels`,
              },
              body: pixels,
            },
          ]),
        );
        assert.equal(r.status, 200, r.text);
        assert.equal(value(items(r.json, '00081199')[0], '00081155'), sop);
        const found = await web.archive.index.findInstance(sop);
        assert.ok(found);
        assert.equal(found.transferSyntaxUid, EXPLICIT_VR_LE);
        const stored = await readDicomFile(join(web.dataDir, found.path));
        assert.deepEqual(Buffer.from(stored.dataSet.bytes(TAG.PixelData) as Uint8Array), Buffer.from(pixels));
        assert.equal(stored.dataSet.string(TAG.PatientID), ds.string(TAG.PatientID));
        assert.deepEqual(files(web.dataDir).tmp, []);
      }
    });

    test('metadata with compressed Pixel Data (image/jpeg part, transfer-syntax parameter): encapsulated, one frame', async () => {
      const source = await readDicomFile(join(TEST_FILES, 'SC_rgb_jpeg_dcmtk.dcm'));
      const pixel = source.dataSet.get(TAG.PixelData);
      assert.ok(pixel && !(pixel.value instanceof Uint8Array) && !Array.isArray(pixel.value));
      const fragments = (pixel.value as { fragments: Uint8Array[] }).fragments.slice(1);
      assert.equal(fragments.length, 1, 'a single-frame JPEG in one fragment');
      const frame = fragments[0] as Uint8Array;
      const ds = source.dataSet;
      const sop = generateUid();
      ds.setString(TAG.SOPInstanceUID, sop);
      const json = toDicomJson(ds, {
        bulkDataUri: (tag) => (tag === TAG.PixelData ? 'frames/1' : undefined),
      });
      const send = (mediaType: string, frames?: string) => {
        const j = frames === undefined ? json : { ...json, '00280008': { vr: 'IS', Value: [frames] } };
        return post(
          `${web.base}/studies`,
          'multipart/related; type="application/dicom+json"; boundary=jsonB',
          multipart('jsonB', [
            { headers: { 'Content-Type': 'application/dicom+json' }, body: Buffer.from(JSON.stringify([j])) },
            { headers: { 'Content-Type': mediaType, 'Content-Location': 'frames/1' }, body: frame },
          ]),
        );
      };
      const r = await send('image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50');
      assert.equal(r.status, 200, r.text);
      const found = await web.archive.index.findInstance(sop);
      assert.ok(found);
      assert.equal(found.transferSyntaxUid, '1.2.840.10008.1.2.4.50');
      const stored = await readDicomFile(join(web.dataDir, found.path));
      const storedPixel = stored.dataSet.get(TAG.PixelData)?.value as { fragments: Uint8Array[] };
      assert.equal(storedPixel.fragments.length, 2, 'an empty Basic Offset Table and the frame');
      assert.equal(storedPixel.fragments[0]?.length, 0);
      assert.deepEqual(
        Buffer.from(storedPixel.fragments[1] as Uint8Array).subarray(0, frame.length),
        Buffer.from(frame),
      );
      // Several frames in one part cannot be split into fragments: refused with C122.
      const multi = await send('image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50', '2');
      assert.equal(multi.status, 409, multi.text);
      assert.equal(value(items(multi.json, '00081198')[0], '00081197'), 0xc122);
      assert.deepEqual(files(web.dataDir).tmp, []);
    });

    test('metadata: many bulk parts in one request (past the in-memory budget, the rest is spooled)', async () => {
      const parts: Array<{ headers: Record<string, string>; body: Uint8Array }> = [];
      const jsons: unknown[] = [];
      const sops: string[] = [];
      for (let i = 0; i < 20; i++) {
        const ds = makeCtDataSet({ rows: 700, columns: 700 });
        const sop = ds.string(TAG.SOPInstanceUID) as string;
        sops.push(sop);
        jsons.push(
          toDicomJson(ds, { bulkDataUri: (tag) => (tag === TAG.PixelData ? `bulk/${i}` : undefined) }),
        );
        parts.push({
          headers: { 'Content-Type': 'application/octet-stream', 'Content-Location': `bulk/${i}` },
          body: ds.bytes(TAG.PixelData) as Uint8Array,
        });
      }
      const r = await post(
        `${web.base}/studies`,
        'multipart/related; type="application/dicom+json"; boundary=jsonB',
        multipart('jsonB', [
          { headers: { 'Content-Type': 'application/dicom+json' }, body: Buffer.from(JSON.stringify(jsons)) },
          ...parts,
        ]),
      );
      assert.equal(r.status, 200, r.text);
      for (const [i, sop] of sops.entries()) {
        const found = await web.archive.index.findInstance(sop);
        assert.ok(found);
        const stored = await readDicomFile(join(web.dataDir, found.path));
        assert.ok(
          Buffer.from(stored.dataSet.bytes(TAG.PixelData) as Uint8Array).equals(
            Buffer.from(parts[i]?.body ?? []),
          ),
        );
      }
      assert.deepEqual(files(web.dataDir).tmp, []);
    });

    test('metadata: an unresolved BulkDataURI and a study mismatch fail per instance; XML metadata is 415', async () => {
      const study = generateUid();
      const a = makeCtDataSet({ rows: 4, columns: 4, studyInstanceUid: study });
      const b = makeCtDataSet({ rows: 4, columns: 4 });
      const c = makeCtDataSet({ rows: 4, columns: 4, studyInstanceUid: study });
      const inline = (d: typeof a) => toDicomJson(d);
      const dangling = toDicomJson(c, {
        bulkDataUri: (tag) => (tag === TAG.PixelData ? 'missing/part' : undefined),
      });
      const r = await post(
        `${web.base}/studies/${study}`,
        'multipart/related; type=application/dicom+json; boundary=jsonB',
        multipart('jsonB', [
          {
            headers: { 'Content-Type': 'application/dicom+json' },
            body: Buffer.from(JSON.stringify([inline(a), inline(b), dangling])),
          },
        ]),
      );
      assert.equal(r.status, 202, r.text);
      assert.equal(items(r.json, '00081199').length, 1);
      const failed = items(r.json, '00081198');
      assert.deepEqual(
        failed.map((f) => [value(f, '00081155'), value(f, '00081197')]),
        [
          [b.string(TAG.SOPInstanceUID), 0xa900],
          [c.string(TAG.SOPInstanceUID), 0xc000],
        ],
      );
      const xml = await post(
        `${web.base}/studies`,
        'multipart/related; type="application/dicom+xml"; boundary=x',
        Buffer.from('--x--'),
      );
      assert.equal(xml.status, 415);
    });
  });
}
