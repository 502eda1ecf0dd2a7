/**
 * WADO-RS retrieve (src/web/dicomweb/retrieve.ts) against an archive filled through the ingest
 * entry point with files of the pydicom corpus, on SQLite and PostgreSQL: the multipart answer is
 * parsed here and each part compared byte for byte with the stored file (and its data set with
 * the corpus file's); study, series and instance levels; transfer syntaxes as stored, explicit
 * and matching, re-encoded without a codec, refused with 406; q-values; ZIP (checked by
 * `unzip -t` and Python's zipfile); HEAD; bad UIDs (400), unknown resources (404), a media type
 * that cannot be answered (406); a client that stops reading (the server closes the file and
 * goes on serving).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TAG } from '../../src/dicom/dictionary.js';
import { parseDicom } from '../../src/dicom/reader.js';
import { EXPLICIT_VR_BE, EXPLICIT_VR_LE, IMPLICIT_VR_LE } from '../../src/dicom/uid.js';
import { ingestFiles, startTestWeb, type TestWeb } from './helpers.js';
import {
  boundaryOf,
  CORPUS,
  dataSetBytes,
  eventually,
  get,
  openDescriptors,
  type ParsedPart,
  parseMultipart,
  writeLargeObject,
} from './retrieve-helpers.js';

const FILES = {
  ct: 'CT_small.dcm', // Explicit VR LE
  implicit: 'MR_small_implicit.dcm', // Implicit VR LE
  bigEndian: 'ExplVR_BigEnd.dcm', // Explicit VR BE
  deflated: 'image_dfl.dcm', // Deflated
  j2kLossless: 'GDCMJ2K_TextGBR.dcm', // JPEG 2000 lossless
  scNative: 'SC_rgb_small_odd.dcm', // one series: Explicit VR LE,
  scLossy: 'SC_rgb_jpeg_dcmtk.dcm', // JPEG baseline (lossy),
  scLossless: 'SC_rgb_jpeg_gdcm.dcm', // JPEG lossless
} as const;
type Name = keyof typeof FILES;

interface Known {
  readonly study: string;
  readonly series: string;
  readonly sop: string;
  readonly ts: string;
  /** The corpus file. */
  readonly original: Buffer;
}

const MULTIPART_ANY = 'multipart/related; type="application/dicom"; transfer-syntax=*';

function uids(file: Buffer): Omit<Known, 'original'> {
  const o = parseDicom(file, { stopAtTag: TAG.PixelData });
  return {
    study: o.dataSet.string(TAG.StudyInstanceUID) ?? '',
    series: o.dataSet.string(TAG.SeriesInstanceUID) ?? '',
    sop: o.dataSet.string(TAG.SOPInstanceUID) ?? '',
    ts: o.transferSyntax,
  };
}

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`WADO-RS retrieve (${engine})`, () => {
    let web: TestWeb;
    const known = {} as Record<Name, Known>;
    const stored = new Map<string, Buffer>(); // SOP Instance UID -> stored file
    let tmp: string;

    before(async () => {
      web = await startTestWeb({ engine });
      tmp = mkdtempSync(join(tmpdir(), 'wado-rs-test-'));
      await ingestFiles(
        web.archive,
        Object.values(FILES).map((f) => join(CORPUS, f)),
      );
      for (const [name, file] of Object.entries(FILES) as [Name, string][]) {
        const original = readFileSync(join(CORPUS, file));
        known[name] = { ...uids(original), original };
        const row = await web.archive.index.findInstance(known[name].sop);
        assert.ok(row, `${file} is archived`);
        stored.set(known[name].sop, readFileSync(web.archive.store.absolutePath(row.path)));
      }
    });
    after(async () => {
      await web.close();
      rmSync(tmp, { recursive: true, force: true });
    });

    const instanceUrl = (k: Known) => `${web.base}/studies/${k.study}/series/${k.series}/instances/${k.sop}`;

    async function multipart(url: string, accept: string): Promise<ParsedPart[]> {
      const r = await get(url, { accept });
      assert.equal(r.status, 200, r.body.toString());
      const type = r.headers.get('content-type') ?? '';
      assert.match(type, /^multipart\/related; type="application\/dicom"; boundary=/);
      return parseMultipart(r.body, boundaryOf(type));
    }

    function sopOf(part: ParsedPart): string {
      const m = /\/instances\/([0-9.]+)$/.exec(part.headers['content-location'] ?? '');
      assert.ok(m, 'each part has a Content-Location naming its instance');
      return m[1] as string;
    }

    it('answers a study as stored, byte for byte, with the part headers', async () => {
      const k = known.ct;
      const parts = await multipart(`${web.base}/studies/${k.study}`, MULTIPART_ANY);
      assert.equal(parts.length, 1);
      const p = parts[0] as ParsedPart;
      assert.equal(p.headers['content-type'], `application/dicom; transfer-syntax=${EXPLICIT_VR_LE}`);
      assert.equal(p.headers['content-location'], instanceUrl(k));
      assert.equal(Number(p.headers['content-length']), p.body.length);
      assert.ok(p.body.equals(stored.get(k.sop) as Buffer), 'the part is the stored file');
      assert.ok(dataSetBytes(p.body).equals(dataSetBytes(k.original)), "the data set is the corpus file's");
    });

    it('answers a series with one part per instance, each as stored (transfer-syntax unquoted)', async () => {
      const k = known.scNative;
      const parts = await multipart(
        `${web.base}/studies/${k.study}/series/${k.series}`,
        'multipart/related; type=application/dicom; transfer-syntax=*',
      );
      const expected = [known.scNative, known.scLossy, known.scLossless];
      assert.deepEqual(parts.map(sopOf).sort(), expected.map((e) => e.sop).sort());
      for (const p of parts) {
        const e = expected.find((x) => x.sop === sopOf(p)) as Known;
        assert.equal(p.headers['content-type'], `application/dicom; transfer-syntax=${e.ts}`);
        assert.ok(p.body.equals(stored.get(e.sop) as Buffer));
        assert.ok(dataSetBytes(p.body).equals(dataSetBytes(e.original)));
      }
    });

    it('answers an instance, and an explicit syntax equal to the stored one as stored', async () => {
      const k = known.ct;
      const parts = await multipart(
        instanceUrl(k),
        `multipart/related; type="application/dicom"; transfer-syntax=${EXPLICIT_VR_LE}`,
      );
      assert.equal(parts.length, 1);
      assert.ok((parts[0] as ParsedPart).body.equals(stored.get(k.sop) as Buffer));
    });

    it('re-encodes native syntaxes while streaming (Implicit, Big Endian, Deflated into Explicit LE and back)', async () => {
      const cases: Array<[Known, string]> = [
        [known.implicit, EXPLICIT_VR_LE],
        [known.bigEndian, EXPLICIT_VR_LE],
        [known.deflated, EXPLICIT_VR_LE],
        [known.ct, IMPLICIT_VR_LE],
        [known.ct, EXPLICIT_VR_BE],
      ];
      for (const [k, to] of cases) {
        const parts = await multipart(
          instanceUrl(k),
          `multipart/related; type="application/dicom"; transfer-syntax=${to}`,
        );
        const p = parts[0] as ParsedPart;
        assert.equal(p.headers['content-type'], `application/dicom; transfer-syntax=${to}`);
        assert.equal(p.headers['content-length'], undefined, 'a re-encoded part has no length known ahead');
        const got = parseDicom(p.body);
        const want = parseDicom(k.original);
        assert.equal(got.transferSyntax, to);
        assert.equal(got.meta?.string(TAG.TransferSyntaxUID), to);
        assert.equal(got.dataSet.string(TAG.SOPInstanceUID), k.sop);
        // Group lengths (gggg,0000) are retired and not written again (PS3.5 7.2).
        const noLengths = (tags: readonly number[]) => tags.filter((t) => (t & 0xffff) !== 0);
        assert.deepEqual(
          noLengths(got.dataSet.tags()),
          noLengths(want.dataSet.tags()),
          `${k.ts} -> ${to}: same elements`,
        );
        assert.equal(got.dataSet.string(TAG.PatientName), want.dataSet.string(TAG.PatientName));
        assert.equal(got.dataSet.number(TAG.Rows), want.dataSet.number(TAG.Rows));
        const gotPixels = got.dataSet.bytes(TAG.PixelData);
        const wantPixels = want.dataSet.bytes(TAG.PixelData);
        assert.ok(gotPixels && wantPixels);
        assert.equal(gotPixels.length, wantPixels.length, `${k.ts} -> ${to}: pixel data length`);
        // The reader gives values in little endian whatever the source byte order.
        assert.ok(Buffer.from(gotPixels).equals(Buffer.from(wantPixels)), `${k.ts} -> ${to}: same pixels`);
      }
    });

    it('applies the default syntax (Explicit VR LE) without transfer-syntax: converts native, keeps lossy, refuses lossless with 406', async () => {
      // Implicit VR LE stored: re-encoded into Explicit VR LE.
      let parts = await multipart(instanceUrl(known.implicit), 'multipart/related; type="application/dicom"');
      assert.equal(parseDicom((parts[0] as ParsedPart).body).transferSyntax, EXPLICIT_VR_LE);
      // Lossy JPEG: the standard's exception, sent as stored.
      parts = await multipart(instanceUrl(known.scLossy), 'multipart/related; type="application/dicom"');
      assert.ok((parts[0] as ParsedPart).body.equals(stored.get(known.scLossy.sop) as Buffer));
      // No Accept at all (*/*) is the same default.
      parts = await multipart(instanceUrl(known.ct), '*/*');
      assert.ok((parts[0] as ParsedPart).body.equals(stored.get(known.ct.sop) as Buffer));
      // A series with a losslessly compressed instance: decoded into the default (issue 13).
      const k = known.scNative;
      parts = await multipart(
        `${web.base}/studies/${k.study}/series/${k.series}`,
        'multipart/related; type="application/dicom"',
      );
      assert.equal(parts.length, 3);
      for (const p of parts) {
        const sop = sopOf(p);
        const ts = parseDicom(p.body).transferSyntax;
        if (sop === known.scLossy.sop)
          assert.ok(p.body.equals(stored.get(sop) as Buffer), 'lossy: as stored');
        else assert.equal(ts, EXPLICIT_VR_LE, sop);
        assert.equal(p.headers['content-type'], `application/dicom; transfer-syntax=${ts}`);
      }
      const lossless = parts.find((p) => sopOf(p) === known.scLossless.sop) as ParsedPart;
      assert.equal(parseDicom(lossless.body).dataSet.bytes(TAG.PixelData)?.length, 100 * 100 * 3);
    });

    it('transcodes a compressed object asked in a native syntax; 406 for a lossy target, an unknown syntax or no codec', async () => {
      const k = known.j2kLossless;
      const parts = await multipart(
        instanceUrl(k),
        `multipart/related; type="application/dicom"; transfer-syntax=${EXPLICIT_VR_LE}`,
      );
      const decoded = parseDicom((parts[0] as ParsedPart).body);
      assert.equal(decoded.transferSyntax, EXPLICIT_VR_LE);
      assert.equal(decoded.dataSet.string(TAG.PhotometricInterpretation), 'RGB', 'YBR_RCT decoded to RGB');
      // Lossy is never produced unless configured: JPEG baseline is refused.
      let r = await get(instanceUrl(known.ct), {
        accept: 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50',
      });
      assert.equal(r.status, 406);
      let body = JSON.parse(r.body.toString()) as { code: string; reason: string };
      assert.equal(body.code, 'ERR_HTTP_NOT_ACCEPTABLE');
      assert.match(body.reason, /lossy/);
      // JPEG XL: no codec here.
      r = await get(instanceUrl(k), {
        accept: 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.110',
      });
      assert.equal(r.status, 406);
      body = JSON.parse(r.body.toString()) as { code: string; reason: string };
      assert.match(body.reason, /cannot encode into .*JPEG XL/);
      r = await get(instanceUrl(known.ct), {
        accept: 'multipart/related; type="application/dicom"; transfer-syntax=1.2.3.4',
      });
      assert.equal(r.status, 406);
      body = JSON.parse(r.body.toString()) as { code: string; reason: string };
      assert.match(body.reason, /1\.2\.3\.4 is not a transfer syntax/);
    });

    it('picks the best Accept range it can satisfy, per part (q-values)', async () => {
      const k = known.scNative;
      const parts = await multipart(
        `${web.base}/studies/${k.study}/series/${k.series}`,
        `application/zip; q=0.4, multipart/related; type="application/dicom"; transfer-syntax=${IMPLICIT_VR_LE}, ` +
          'multipart/related; type="application/dicom"; transfer-syntax=*; q=0.5',
      );
      assert.equal(parts.length, 3);
      for (const p of parts) {
        const sop = sopOf(p);
        if (sop === known.scNative.sop) {
          // The first range holds for the native one: re-encoded into Implicit VR LE.
          assert.equal(p.headers['content-type'], `application/dicom; transfer-syntax=${IMPLICIT_VR_LE}`);
          assert.equal(parseDicom(p.body).transferSyntax, IMPLICIT_VR_LE);
        } else {
          // The compressed ones are transcoded for the first range too (issue 13).
          assert.equal(p.headers['content-type'], `application/dicom; transfer-syntax=${IMPLICIT_VR_LE}`);
          assert.equal(parseDicom(p.body).transferSyntax, IMPLICIT_VR_LE);
        }
      }
      // A range that cannot be met for every instance (lossy JPEG baseline for the native one) is passed over.
      const r = await get(`${web.base}/studies/${k.study}/series/${k.series}`, {
        accept:
          'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50, application/zip; q=0.2',
      });
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('content-type'), 'application/zip');
    });

    it('answers application/zip (query parameter or Accept) that unzip and Python read back', async () => {
      const k = known.scNative;
      for (const how of ['query', 'header'] as const) {
        const url = `${web.base}/studies/${k.study}/series/${k.series}${how === 'query' ? '?accept=application/zip' : ''}`;
        const r = await get(url, how === 'header' ? { accept: 'application/zip' } : {});
        assert.equal(r.status, 200);
        assert.equal(r.headers.get('content-type'), 'application/zip');
        const zipPath = join(tmp, `series-${how}.zip`);
        writeFileSync(zipPath, r.body);
        const unzip = spawnSync('unzip', ['-t', zipPath], { encoding: 'utf8' });
        assert.ok(!unzip.error, 'unzip is installed (apt-get install unzip)');
        assert.equal(unzip.status, 0, unzip.stdout + unzip.stderr);
        assert.match(unzip.stdout, /No errors detected/);
        const py = spawnSync(
          'python3',
          [
            '-c',
            'import sys,zipfile,hashlib,json\nz=zipfile.ZipFile(sys.argv[1])\nassert z.testzip() is None\n' +
              'print(json.dumps({i.filename: hashlib.sha256(z.read(i)).hexdigest() for i in z.infolist()}))',
            zipPath,
          ],
          { encoding: 'utf8' },
        );
        assert.equal(py.status, 0, py.stderr);
        const entries = JSON.parse(py.stdout) as Record<string, string>;
        const { createHash } = await import('node:crypto');
        const want = Object.fromEntries(
          [known.scNative, known.scLossy, known.scLossless].map((e) => [
            `${e.study}/${e.series}/${e.sop}.dcm`,
            createHash('sha256')
              .update(stored.get(e.sop) as Buffer)
              .digest('hex'),
          ]),
        );
        assert.deepEqual(entries, want);
      }
    });

    it('answers HEAD with the headers and no body, reading no file', async () => {
      const k = known.ct;
      const r = await get(`${web.base}/studies/${k.study}`, { accept: MULTIPART_ANY }, 'HEAD');
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-type') ?? '', /^multipart\/related; type="application\/dicom"/);
      assert.equal(r.body.length, 0);
      const missing = await get(`${web.base}/studies/1.2.3.999`, {}, 'HEAD');
      assert.equal(missing.status, 404);
    });

    it('answers 400 for a path UID that is not a UID, 404 for what is not archived, 406 for a media type it cannot give', async () => {
      for (const path of [
        '/studies/1.2.abc',
        '/studies/1.2.3/series/..%2F..',
        `/studies/1.2/series/1.3/instances/${'9'.repeat(65)}`,
      ]) {
        const r = await get(`${web.base}${path}`, { accept: MULTIPART_ANY });
        assert.equal(r.status, 400, path);
        assert.equal((JSON.parse(r.body.toString()) as { code: string }).code, 'ERR_HTTP_BAD_REQUEST');
      }
      const k = known.ct;
      for (const path of [
        '/studies/1.2.3.999',
        `/studies/${k.study}/series/1.2.3.999`,
        `/studies/${k.study}/series/${k.series}/instances/1.2.3.999`,
        // The instance exists, but not in this study.
        `/studies/${known.implicit.study}/series/${k.series}/instances/${k.sop}`,
      ]) {
        const r = await get(`${web.base}${path}`, { accept: MULTIPART_ANY });
        assert.equal(r.status, 404, path);
        const body = JSON.parse(r.body.toString()) as { code: string; reason: string };
        assert.equal(body.code, 'ERR_HTTP_NOT_FOUND');
        assert.match(body.reason, /no (study|series|instance) /);
      }
      const r = await get(`${web.base}/studies/${k.study}`, { accept: 'application/json' });
      assert.equal(r.status, 406);
      assert.match((JSON.parse(r.body.toString()) as { reason: string }).reason, /no acceptable media type/);
    });

    it('answers one instance as a single application/dicom body when asked so', async () => {
      const k = known.ct;
      const r = await get(instanceUrl(k), { accept: 'application/dicom; transfer-syntax=*' });
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('content-type'), `application/dicom; transfer-syntax=${EXPLICIT_VR_LE}`);
      assert.ok(r.body.equals(stored.get(k.sop) as Buffer));
      // At the study level application/dicom alone cannot hold several instances: 406.
      const s = await get(`${web.base}/studies/${k.study}`, { accept: 'application/dicom' });
      assert.equal(s.status, 406);
    });

    it('stops reading and closes the file when the client goes away, and goes on serving', async () => {
      const file = join(tmp, 'large.dcm');
      const large = writeLargeObject(file, 64 * 1024 * 1024);
      await ingestFiles(web.archive, [file]);
      const row = await web.archive.index.findInstance(large.sopInstanceUid);
      assert.ok(row);
      const path = web.archive.store.absolutePath(row.path);
      const url = new URL(`${web.base}/studies/${large.studyInstanceUid}`);
      let openWhileSending = -1;
      await new Promise<void>((resolve, reject) => {
        const req = http.get(url, { headers: { accept: MULTIPART_ANY } }, (res) => {
          let received = 0;
          res.on('data', (chunk: Buffer) => {
            received += chunk.length;
            if (received < 4 * 1024 * 1024 || openWhileSending >= 0) return;
            // Megabytes are in: the file is open on the server side. Go away without reading on.
            openWhileSending = openDescriptors(path);
            req.destroy();
            resolve();
          });
          res.on('end', () => reject(new Error('the whole answer came before the client went away')));
        });
        req.on('error', (e) => {
          if ((e as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(e);
        });
      });
      assert.equal(openWhileSending, 1, 'the server has the object file open while it sends it');
      await eventually(() => openDescriptors(path) === 0, 'the server closed the object file');
      // Still serving, the same object included, complete.
      const again = await get(`${web.base}/studies/${large.studyInstanceUid}`, { accept: MULTIPART_ANY });
      assert.equal(again.status, 200);
      const parts = parseMultipart(again.body, boundaryOf(again.headers.get('content-type')));
      assert.equal(parts.length, 1);
      assert.ok((parts[0] as ParsedPart).body.equals(readFileSync(path)));
      assert.equal(openDescriptors(path), 0);
    });
  });
}
