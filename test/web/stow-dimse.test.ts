/**
 * From DICOMweb to DIMSE: objects stored by STOW-RS are found by DCMTK's findscu and retrieved by
 * its getscu from our DICOM server over the same archive, with the data set bytes that were sent
 * (getscu +B writes them as received). SQLite and PostgreSQL.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TAG } from '../../src/dicom/dictionary.js';
import { EXPLICIT_VR_LE, generateUid } from '../../src/dicom/uid.js';
import { encodePart10 } from '../../src/dicom/writer.js';
import { readDicomFile } from '../../src/io/dicom-file.js';
import { ApplicationEntity, type DicomServer } from '../../src/network/ae.js';
import { findService } from '../../src/services/query-retrieve/find-scp.js';
import { getService } from '../../src/services/query-retrieve/get-scp.js';
import { storageService } from '../../src/services/storage/scp.js';
import { run } from '../helpers/cli.js';
import { dcmtkTool, TEST_FILES } from '../helpers/corpus.js';
import { makeCtDataSet } from '../helpers/synthetic.js';
import { startTestWeb, type TestWeb } from './helpers.js';
import { dataSetBytes, items, multipart, post } from './stow-helpers.js';

const DCMTK_ENV = { TCP_NODELAY: '1' };

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`STOW-RS then findscu and getscu (${engine})`, () => {
    let web: TestWeb;
    let server: DicomServer;
    let port: number;
    const study = generateUid();
    const series = generateUid();
    const sent = new Map<string, Buffer>();

    before(async () => {
      web = await startTestWeb({ engine });
      server = await new ApplicationEntity({ aeTitle: 'PACS' })
        .addService({ ...storageService({ archive: web.archive }), requestorRoles: { scu: true, scp: true } })
        .addService(findService({ archive: web.archive }))
        .addService(getService({ archive: web.archive }))
        .listen({ port: 0, host: '127.0.0.1' });
      port = server.address?.port ?? 0;
      const bodies: Buffer[] = [];
      for (let i = 1; i <= 4; i++) {
        const ds = makeCtDataSet({
          studyInstanceUid: study,
          seriesInstanceUid: series,
          instanceNumber: i,
          rows: 64,
          columns: 64,
          patientId: 'STOWDIMSE',
        });
        const bytes = Buffer.from(encodePart10(ds, EXPLICIT_VR_LE));
        sent.set(ds.string(TAG.SOPInstanceUID) as string, bytes);
        bodies.push(bytes);
      }
      const r = await post(
        `${web.base}/studies/${study}`,
        'multipart/related; type=application/dicom; boundary=dimse',
        multipart(
          'dimse',
          bodies.map((body) => ({ body })),
        ),
      );
      assert.equal(r.status, 200, r.text);
      assert.equal(items(r.json, '00081199').length, 4);
      // A corpus file in another study and syntax too.
      const ct = readFileSync(join(TEST_FILES, 'CT_small.dcm'));
      const r2 = await post(
        `${web.base}/studies`,
        'multipart/related; type=application/dicom; boundary=dimse',
        multipart('dimse', [{ body: ct }]),
      );
      assert.ok(r2.status === 200 || r2.status === 202, r2.text);
    });
    after(async () => {
      await server.close(1000);
      await web.close();
    });

    test('findscu finds the study and its instances', async () => {
      const out = mkdtempSync(join(web.dataDir, 'find-'));
      const r = await run(
        dcmtkTool('findscu'),
        [
          '-S',
          '-X',
          '-od',
          out,
          '-aec',
          'PACS',
          '-k',
          'QueryRetrieveLevel=IMAGE',
          '-k',
          `StudyInstanceUID=${study}`,
          '-k',
          `SeriesInstanceUID=${series}`,
          '-k',
          'SOPInstanceUID',
          '127.0.0.1',
          String(port),
        ],
        { env: DCMTK_ENV },
      );
      assert.equal(r.code, 0, r.stderr);
      const found = new Set<string>();
      for (const f of readdirSync(out)) {
        const file = await readDicomFile(join(out, f));
        found.add(file.dataSet.string(TAG.SOPInstanceUID) as string);
      }
      assert.deepEqual([...found].sort(), [...sent.keys()].sort());
    });

    test('getscu retrieves them with the data set bytes sent by STOW-RS', async () => {
      const out = mkdtempSync(join(web.dataDir, 'get-'));
      const r = await run(
        dcmtkTool('getscu'),
        [
          '-S',
          '+B',
          '-aec',
          'PACS',
          '-od',
          out,
          '-k',
          'QueryRetrieveLevel=STUDY',
          '-k',
          `StudyInstanceUID=${study}`,
          '127.0.0.1',
          String(port),
        ],
        { env: DCMTK_ENV },
      );
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const got = readdirSync(out);
      assert.equal(got.length, sent.size);
      for (const f of got) {
        const bytes = readFileSync(join(out, f));
        const file = await readDicomFile(join(out, f), { stopAtTag: TAG.PixelData });
        const original = sent.get(file.dataSet.string(TAG.SOPInstanceUID) as string);
        assert.ok(original, f);
        assert.ok(dataSetBytes(bytes).equals(dataSetBytes(original)), `${f}: data set bytes`);
      }
    });
  });
}
