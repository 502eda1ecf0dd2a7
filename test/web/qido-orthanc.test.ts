/**
 * Orthanc (1.10.x with its DICOMweb plugin, `DicomWeb.Servers` pointing at us) as a QIDO-RS client
 * of our server: its /dicom-web/servers/{id}/qido route finds our studies, series and instances
 * with the keys it forwards, wild cards and ranges included (Orthanc parses our DICOM JSON and
 * answers in its own simplified form). Orthanc runs with TCP_NODELAY=1. On SQLite (the HTTP side is the
 * same on both engines; qido.test.ts covers PostgreSQL).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { makeDataSet } from '../archive/helpers.js';
import { type OrthancPeer, startOrthancPeer } from '../interop/orthanc.js';
import { tempDir } from '../server/helpers.js';
import { ingestDataSets, startTestWeb, type TestWeb } from './helpers.js';

describe('Orthanc as a QIDO-RS client', () => {
  let web: TestWeb;
  let orthanc: OrthancPeer;
  let work: { path: string; remove: () => Promise<void> };

  before(async () => {
    work = await tempDir('pacs-qido-orthanc-');
    web = await startTestWeb({ engine: 'sqlite' });
    const sets = [
      { patientId: 'OP1', patientName: 'Doe^John', studyUid: '7.1', studyDate: '20240110', modality: 'CT' },
      { patientId: 'OP1', patientName: 'Doe^John', studyUid: '7.2', studyDate: '20240220', modality: 'MR' },
      { patientId: 'OP2', patientName: 'Roe^Jane', studyUid: '7.3', studyDate: '20240115', modality: 'CT' },
    ].map((s) =>
      makeDataSet({
        ...s,
        seriesUid: `${s.studyUid}.1`,
        sopUid: `${s.studyUid}.1.1`,
        accession: `X${s.studyUid}`,
      }),
    );
    await ingestDataSets(web.archive, sets);
    orthanc = await startOrthancPeer(work.path, { dicomweb: { pacs: `${web.base}/` } });
  });

  after(async () => {
    await orthanc?.stop();
    await web?.close();
    await work?.remove();
  });

  /** Orthanc answers in its own form: each attribute with Group, Element, Name, vr and Value as text. */
  async function qido(
    uri: string,
    args: Record<string, string>,
  ): Promise<Array<Record<string, { Value?: unknown }>>> {
    return orthanc.call('POST', '/dicom-web/servers/pacs/qido', { Uri: uri, Arguments: args });
  }
  const uids = (a: Array<Record<string, { Value?: unknown }>>, hex: string) =>
    a.map((x) => String(x[hex]?.Value)).sort();

  test('study searches: exact, wild card, range', async () => {
    assert.deepEqual(uids(await qido('/studies', { PatientID: 'OP1' }), '0020000D'), ['7.1', '7.2']);
    assert.deepEqual(uids(await qido('/studies', { PatientName: 'ROE*' }), '0020000D'), ['7.3']);
    assert.deepEqual(uids(await qido('/studies', { StudyDate: '20240101-20240131' }), '0020000D'), [
      '7.1',
      '7.3',
    ]);
    const one = (await qido('/studies', { AccessionNumber: 'X7.2' }))[0];
    assert.equal(one?.['00081190']?.Value, `${web.base}/studies/7.2`);
    assert.equal(one?.['00100010']?.Value, 'Doe^John');
  });

  test('series and instance searches', async () => {
    assert.deepEqual(uids(await qido('/studies/7.1/series', {}), '0020000E'), ['7.1.1']);
    assert.deepEqual(uids(await qido('/series', { Modality: 'CT' }), '0020000E'), ['7.1.1', '7.3.1']);
    assert.deepEqual(uids(await qido('/studies/7.2/series/7.2.1/instances', {}), '00080018'), ['7.2.1.1']);
  });
});
