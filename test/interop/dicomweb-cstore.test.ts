/**
 * Both directions between DIMSE and DICOMweb through `pacs server --http-port` (the real command
 * and its config): objects DCMTK's storescu stores by C-STORE are found by QIDO-RS and retrieved
 * by WADO-RS with the very data set bytes storescu sent; the study's series metadata lists them.
 * (The other direction, STOW-RS in and findscu/getscu out, is test/web/stow-dimse.test.ts.)
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TAG } from '../../src/dicom/dictionary.js';
import { parseDicom } from '../../src/dicom/reader.js';
import { run } from '../helpers/cli.js';
import { dcmtkTool } from '../helpers/corpus.js';
import { writeCtSeries } from '../helpers/synthetic.js';
import { type Child, firstAdmin, freePort, startPacsServer, tempDir } from '../server/helpers.js';

function dataSetBytes(file: Uint8Array): Buffer {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  assert.equal(new TextDecoder().decode(file.subarray(128, 132)), 'DICM');
  return Buffer.from(file.subarray(132 + 12 + view.getUint32(132 + 8, true)));
}

describe('interop: C-STORE in, DICOMweb out, through pacs server --http-port', () => {
  let work: { path: string; remove: () => Promise<void> };
  let server: Child;
  let base: string;
  let files: string[];
  let headers: { authorization: string };

  before(async () => {
    work = await tempDir('pacs-dicomweb-cstore-');
    const httpPort = await freePort();
    const admin = await firstAdmin();
    headers = admin.headers;
    const started = await startPacsServer(
      ['--http-port', String(httpPort), '--log-level', 'warn', ...admin.args],
      {
        dataDir: join(work.path, 'data'),
      },
    );
    server = started.server;
    base = `http://127.0.0.1:${httpPort}/dicom-web`;
    files = writeCtSeries(join(work.path, 'src'), 4, { patientId: 'DW-CSTORE-1', rows: 64, columns: 64 });
    const sent = await run(
      dcmtkTool('storescu'),
      ['-aec', 'PACS', '127.0.0.1', String(started.port), ...files],
      {
        env: { TCP_NODELAY: '1' },
      },
    );
    assert.equal(sent.code, 0, sent.stdout + sent.stderr);
  });
  after(async () => {
    await server?.stop();
    await work?.remove();
  });

  it('finds the stored study and its instances by QIDO-RS', async () => {
    const r = await fetch(`${base}/studies?PatientID=DW-CSTORE-1`, { headers });
    assert.equal(r.status, 200);
    const studies = (await r.json()) as Array<Record<string, { Value?: unknown[] }>>;
    assert.equal(studies.length, 1);
    assert.equal(studies[0]?.['00201208']?.Value?.[0], 4, 'NumberOfStudyRelatedInstances');
  });

  it('retrieves each object by WADO-RS with the data set bytes storescu sent', async () => {
    for (const path of files) {
      const original = readFileSync(path);
      const ds = parseDicom(original).dataSet;
      const url = `${base}/studies/${ds.string(TAG.StudyInstanceUID)}/series/${ds.string(TAG.SeriesInstanceUID)}/instances/${ds.string(TAG.SOPInstanceUID)}`;
      const r = await fetch(url, { headers: { ...headers, accept: 'application/dicom; transfer-syntax=*' } });
      assert.equal(r.status, 200, url);
      assert.match(r.headers.get('content-type') ?? '', /^application\/dicom/);
      const retrieved = new Uint8Array(await r.arrayBuffer());
      assert.deepEqual(dataSetBytes(retrieved), dataSetBytes(original));
    }
  });

  it('serves the series metadata of the stored objects', async () => {
    const ds = parseDicom(readFileSync(files[0] as string)).dataSet;
    const r = await fetch(
      `${base}/studies/${ds.string(TAG.StudyInstanceUID)}/series/${ds.string(TAG.SeriesInstanceUID)}/metadata`,
      { headers },
    );
    assert.equal(r.status, 200);
    const metadata = (await r.json()) as Array<Record<string, { Value?: unknown[] }>>;
    assert.equal(metadata.length, 4);
    assert.ok(metadata.every((m) => m['00100020']?.Value?.[0] === 'DW-CSTORE-1'));
  });
});
