/**
 * WADO-URI (src/web/dicomweb/wado-uri.ts) on SQLite and PostgreSQL: application/dicom byte for
 * byte as stored (at /dicom-web/wado and /wado), the default content type per object kind,
 * transferSyntax honoured (re-encoded) or refused (406), rendered types answering 406 until a
 * renderer is wired, and with one (a fake RenderFn given through registerWadoUri) receiving the
 * parameters; each class of bad request (missing or wrong requestType, missing parameter, bad
 * UID, unknown parameter, anonymize, bad rendering values) with its 400; unknown objects 404.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Fastify from 'fastify';
import { TAG } from '../../src/dicom/dictionary.js';
import { parseDicom } from '../../src/dicom/reader.js';
import { EXPLICIT_VR_LE, IMPLICIT_VR_LE } from '../../src/dicom/uid.js';
import { type RenderRequest, registerWadoUri } from '../../src/web/dicomweb/wado-uri.js';
import { ingestFiles, memoryLogger, startTestWeb, type TestWeb } from './helpers.js';
import { CORPUS, get } from './retrieve-helpers.js';

interface Obj {
  readonly study: string;
  readonly series: string;
  readonly sop: string;
  readonly stored: Buffer;
  readonly original: Buffer;
}

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`WADO-URI (${engine})`, () => {
    let web: TestWeb;
    const objs: Record<'ct' | 'plan' | 'j2k', Obj> = {} as never;

    before(async () => {
      web = await startTestWeb({ engine });
      const files = { ct: 'CT_small.dcm', plan: 'rtplan.dcm', j2k: 'GDCMJ2K_TextGBR.dcm' } as const;
      await ingestFiles(
        web.archive,
        Object.values(files).map((f) => join(CORPUS, f)),
      );
      for (const [k, f] of Object.entries(files) as Array<[keyof typeof files, string]>) {
        const original = readFileSync(join(CORPUS, f));
        const ds = parseDicom(original, { stopAtTag: TAG.PixelData }).dataSet;
        const sop = ds.string(TAG.SOPInstanceUID) ?? '';
        const row = await web.archive.index.findInstance(sop);
        assert.ok(row);
        objs[k] = {
          study: ds.string(TAG.StudyInstanceUID) ?? '',
          series: ds.string(TAG.SeriesInstanceUID) ?? '',
          sop,
          stored: readFileSync(web.archive.store.absolutePath(row.path)),
          original,
        };
      }
    });
    after(() => web.close());

    const q = (o: Obj, extra = '') =>
      `requestType=WADO&studyUID=${o.study}&seriesUID=${o.series}&objectUID=${o.sop}${extra}`;

    async function refused(url: string, status: number, pattern: RegExp): Promise<void> {
      const r = await get(url);
      assert.equal(r.status, status, `${url}: ${r.body.toString()}`);
      const body = JSON.parse(r.body.toString()) as { code: string; reason: string };
      assert.match(body.reason, pattern, url);
    }

    it('answers application/dicom as stored, at /dicom-web/wado and at /wado', async () => {
      for (const url of [
        `${web.base}/wado?${q(objs.ct)}&contentType=application/dicom`,
        `${web.origin}/wado?${q(objs.ct)}&contentType=application%2Fdicom`,
      ]) {
        const r = await get(url);
        assert.equal(r.status, 200, r.body.toString());
        assert.equal(
          r.headers.get('content-type'),
          'application/dicom',
          'no transfer-syntax parameter in URI answers',
        );
        assert.equal(Number(r.headers.get('content-length')), objs.ct.stored.length);
        assert.ok(r.body.equals(objs.ct.stored));
      }
      const head = await get(`${web.base}/wado?${q(objs.ct)}&contentType=application/dicom`, {}, 'HEAD');
      assert.equal(head.status, 200);
      assert.equal(head.body.length, 0);
    });

    it('defaults to application/dicom for a non-image object (converted to Explicit VR LE), to image/jpeg for an image', async () => {
      const r = await get(`${web.base}/wado?${q(objs.plan)}`);
      assert.equal(r.status, 200, r.body.toString());
      assert.equal(r.headers.get('content-type'), 'application/dicom');
      const got = parseDicom(r.body);
      assert.equal(got.transferSyntax, EXPLICIT_VR_LE, 'the default syntax of web services');
      assert.equal(got.dataSet.string(TAG.SOPInstanceUID), objs.plan.sop);
      // An image renders (through the /rendered service): JPEG by default, PNG on request.
      let image = await get(`${web.base}/wado?${q(objs.ct)}`);
      assert.equal(image.status, 200, image.body.toString());
      assert.equal(image.headers.get('content-type'), 'image/jpeg');
      assert.deepEqual([...image.body.subarray(0, 2)], [0xff, 0xd8]);
      image = await get(`${web.base}/wado?${q(objs.ct, '&contentType=image/png&rows=32&columns=32')}`);
      assert.equal(image.status, 200, image.body.toString());
      assert.equal(image.headers.get('content-type'), 'image/png');
      assert.deepEqual([...image.body.subarray(1, 4)], [0x50, 0x4e, 0x47]);
      image = await get(`${web.base}/wado?${q(objs.ct, '&windowCenter=40&windowWidth=400&imageQuality=50')}`);
      assert.equal(image.status, 200, image.body.toString());
      await refused(
        `${web.base}/wado?${q(objs.plan, '&contentType=image/jpeg')}`,
        406,
        /available as application\/dicom/,
      );
    });

    it('honours transferSyntax: as stored, re-encoded natively, transcoded when a codec can, 406 otherwise', async () => {
      let r = await get(
        `${web.base}/wado?${q(objs.ct, `&contentType=application/dicom&transferSyntax=${EXPLICIT_VR_LE}`)}`,
      );
      assert.ok(r.body.equals(objs.ct.stored));
      r = await get(
        `${web.base}/wado?${q(objs.ct, `&contentType=application/dicom&transferSyntax=${IMPLICIT_VR_LE}`)}`,
      );
      assert.equal(r.status, 200);
      const got = parseDicom(r.body);
      assert.equal(got.transferSyntax, IMPLICIT_VR_LE);
      assert.ok(
        Buffer.from(got.dataSet.bytes(TAG.PixelData) ?? []).equals(
          Buffer.from(parseDicom(objs.ct.original).dataSet.bytes(TAG.PixelData) ?? [1]),
        ),
      );
      // A losslessly compressed object in a native syntax, or the default: decoded (issue 13).
      for (const ts of [`&transferSyntax=${EXPLICIT_VR_LE}`, '']) {
        r = await get(`${web.base}/wado?${q(objs.j2k, `&contentType=application/dicom${ts}`)}`);
        assert.equal(r.status, 200);
        assert.equal(parseDicom(r.body).transferSyntax, EXPLICIT_VR_LE);
      }
      // A target without an encoder: 406 naming it.
      await refused(
        `${web.base}/wado?${q(objs.j2k, '&contentType=application/dicom&transferSyntax=1.2.840.10008.1.2.4.110')}`,
        406,
        /JPEG XL/,
      );
      r = await get(
        `${web.base}/wado?${q(objs.j2k, '&contentType=application/dicom&transferSyntax=1.2.840.10008.1.2.4.90')}`,
      );
      assert.ok(r.body.equals(objs.j2k.stored));
    });

    it('answers 400 naming the problem for each class of bad request', async () => {
      const o = objs.ct;
      const base = `${web.base}/wado`;
      const cases: Array<[string, RegExp]> = [
        [`studyUID=${o.study}&seriesUID=${o.series}&objectUID=${o.sop}`, /requestType is missing/],
        [
          `requestType=WADO-RS&studyUID=${o.study}&seriesUID=${o.series}&objectUID=${o.sop}`,
          /requestType must be WADO/,
        ],
        [`requestType=WADO&seriesUID=${o.series}&objectUID=${o.sop}`, /studyUID is missing/],
        [`requestType=WADO&studyUID=${o.study}&objectUID=${o.sop}`, /seriesUID is missing/],
        [`requestType=WADO&studyUID=${o.study}&seriesUID=${o.series}`, /objectUID is missing/],
        [q({ ...o, sop: '1.2.x' }), /objectUID is not a UID/],
        [q({ ...o, study: '../../etc' }), /studyUID is not a UID/],
        [q({ ...o, series: '1'.repeat(65) }), /seriesUID is not a UID/],
        [q(o, '&anonymize=yes&contentType=application/dicom'), /anonymize is not supported/],
        [q(o, '&bogus=1'), /unknown WADO-URI parameter bogus/],
        [q(o, '&objectUID=1.2.3'), /objectUID is given more than once/],
        [q(o, '&rows=0&contentType=image/jpeg'), /rows must be an integer/],
        [q(o, '&windowCenter=40&contentType=image/jpeg'), /windowCenter and windowWidth go together/],
        [q(o, '&windowCenter=40&windowWidth=abc&contentType=image/jpeg'), /windowWidth must be a decimal/],
        [q(o, '&region=0,0,2,1&contentType=image/jpeg'), /region must be four decimals/],
        [q(o, '&transferSyntax=abc&contentType=application/dicom'), /transferSyntax abc is not a UID/],
        [
          q(o, `&transferSyntax=${EXPLICIT_VR_LE}&contentType=image/jpeg`),
          /transferSyntax applies to contentType application\/dicom only/,
        ],
        [q(o, '&frameNumber=1&contentType=application/dicom'), /apply to rendered images/],
      ];
      for (const [query, pattern] of cases) await refused(`${base}?${query}`, 400, pattern);
      assert.ok(web.logLines.some((l) => l.status === 400 && /anonymize/.test(String(l.reason))));
    });

    it('answers 404 for an object not archived, or not in the named study and series', async () => {
      const o = objs.ct;
      await refused(
        `${web.base}/wado?${q({ ...o, sop: '1.2.3.999' }, '&contentType=application/dicom')}`,
        404,
        /no object 1\.2\.3\.999/,
      );
      await refused(
        `${web.base}/wado?${q({ ...o, study: objs.plan.study }, '&contentType=application/dicom')}`,
        404,
        /no object/,
      );
      await refused(
        `${web.base}/wado?${q({ ...o, series: objs.plan.series }, '&contentType=application/dicom')}`,
        404,
        /no object/,
      );
    });

    it('passes rendered requests to the RenderFn it is given, with the parameters parsed', async () => {
      const seen: RenderRequest[] = [];
      const app = Fastify();
      await registerWadoUri(
        app,
        { archive: web.archive, logger: memoryLogger([]), aeTitle: 'PACS' },
        {
          render: async (request) => {
            seen.push(request);
            return { contentType: request.mediaType, body: Buffer.from('IMAGE') };
          },
        },
      );
      const o = objs.ct;
      const r = await app.inject({
        method: 'GET',
        url: `/wado?${q(o, '&contentType=image/png&rows=64&columns=32&windowCenter=40&windowWidth=400&frameNumber=1&region=0,0,0.5,0.5&imageQuality=90')}`,
      });
      assert.equal(r.statusCode, 200, r.body);
      assert.equal(r.headers['content-type'], 'image/png');
      assert.equal(r.body, 'IMAGE');
      const req = seen[0] as RenderRequest;
      assert.equal(req.instance.sopInstanceUid, o.sop);
      assert.equal(req.mediaType, 'image/png');
      assert.deepEqual(
        [req.rows, req.columns, req.windowCenter, req.windowWidth, req.frameNumber, req.imageQuality],
        [64, 32, 40, 400, 1, 90],
      );
      assert.deepEqual(req.region, [0, 0, 0.5, 0.5]);
      // The default for an image object is image/jpeg, handed to the renderer too.
      const d = await app.inject({ method: 'GET', url: `/wado?${q(o)}` });
      assert.equal(d.headers['content-type'], 'image/jpeg');
      await app.close();
    });
  });
}
