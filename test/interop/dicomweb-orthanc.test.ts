/**
 * Orthanc 1.10.1 with its DICOMweb plugin as a client of our DICOMweb server (its
 * `DicomWeb.Servers` pointing at us): it finds our studies by QIDO-RS, retrieves one into itself
 * by WADO-RS with every instance intact (the same data set bytes as our stored files), and stores
 * an object of its own into our archive by STOW-RS.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TAG } from '../../src/dicom/dictionary.js';
import { parseDicom } from '../../src/dicom/reader.js';
import { TEST_FILES } from '../helpers/corpus.js';
import { makeCtDataSet } from '../helpers/synthetic.js';
import { tempDir } from '../server/helpers.js';
import { ingestDataSets, startTestWeb, type TestWeb } from '../web/helpers.js';
import { type OrthancPeer, startOrthancPeer } from './orthanc.js';

/** The bytes of a Part-10 file after its file meta (the data set as received). */
function dataSetBytes(file: Uint8Array): Uint8Array {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  assert.equal(new TextDecoder().decode(file.subarray(128, 132)), 'DICM');
  const metaLength = view.getUint32(132 + 8, true);
  return file.subarray(132 + 12 + metaLength);
}

/** Orthanc reformats DICOM JSON: Value is a string for one value. */
function orthancValue(entry: unknown, tag: string): string | undefined {
  const v = (entry as Record<string, { Value?: unknown }>)[tag]?.Value;
  if (typeof v === 'string') return v;
  if (Array.isArray(v) && typeof v[0] === 'string') return v[0];
  return undefined;
}

describe('interop: Orthanc (DICOMweb plugin) as a client of our DICOMweb server', () => {
  let web: TestWeb;
  let orthanc: OrthancPeer;
  let work: { path: string; remove: () => Promise<void> };
  const studyUid = '1.2.826.0.1.3680043.2.1125.77.1';
  const seriesUid = '1.2.826.0.1.3680043.2.1125.77.1.1';
  const sopUids = [1, 2, 3].map((n) => `1.2.826.0.1.3680043.2.1125.77.1.1.${n}`);

  before(async () => {
    work = await tempDir('pacs-dicomweb-orthanc-');
    web = await startTestWeb();
    await ingestDataSets(
      web.archive,
      sopUids.map((uid, i) =>
        makeCtDataSet({
          patientId: 'DW-ORTHANC-1',
          patientName: 'Web^Orthanc',
          studyInstanceUid: studyUid,
          seriesInstanceUid: seriesUid,
          sopInstanceUid: uid,
          instanceNumber: i + 1,
          rows: 64,
          columns: 64,
        }),
      ),
    );
    orthanc = await startOrthancPeer(join(work.path, 'orthanc'), { dicomweb: { pacs: `${web.base}/` } });
  });
  /** On failure, what our server logged and what Orthanc said, so the cause is in the test output. */
  const diagnosed = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (e) {
      const ours = web.logLines
        .slice(-6)
        .map((l) => JSON.stringify(l))
        .join('\n');
      throw new Error(`${String(e)}\nour log:\n${ours}\nOrthanc:\n${orthanc.child.stderr.slice(-1500)}`);
    }
  };
  after(async () => {
    await orthanc?.stop();
    await web?.close();
    await work?.remove();
  });

  it('finds our study and its series by QIDO-RS', async () => {
    const studies = await orthanc.call<unknown[]>('POST', '/dicom-web/servers/pacs/qido', {
      Uri: '/studies',
      Arguments: { PatientID: 'DW-ORTHANC-1' },
    });
    assert.equal(studies.length, 1);
    assert.equal(orthancValue(studies[0], '0020000D'), studyUid);
    assert.equal(orthancValue(studies[0], '00100010'), 'Web^Orthanc');
    const series = await orthanc.call<unknown[]>('POST', '/dicom-web/servers/pacs/qido', {
      Uri: `/studies/${studyUid}/series`,
    });
    assert.equal(series.length, 1);
    assert.equal(orthancValue(series[0], '0020000E'), seriesUid);
    const wild = await orthanc.call<unknown[]>('POST', '/dicom-web/servers/pacs/qido', {
      Uri: '/studies',
      Arguments: { PatientName: 'Web*' },
    });
    assert.equal(wild.length, 1);
  });

  it('retrieves our study into itself by WADO-RS, every instance intact', async () => {
    const answer = await orthanc.call<{ ReceivedInstancesCount?: string }>(
      'POST',
      '/dicom-web/servers/pacs/retrieve',
      {
        Resources: [{ Study: studyUid }],
      },
    );
    assert.equal(String(answer.ReceivedInstancesCount), '3');
    const ids = await orthanc.call<string[]>('GET', '/instances');
    assert.equal(ids.length, 3);
    for (const id of ids) {
      const r = await fetch(`${orthanc.rest}/instances/${id}/file`);
      const theirs = new Uint8Array(await r.arrayBuffer());
      const uid = parseDicom(theirs).dataSet.string(TAG.SOPInstanceUID) ?? '';
      assert.ok(sopUids.includes(uid), uid);
      const indexed = await web.archive.index.findInstance(uid);
      assert.ok(indexed !== undefined);
      const ours = readFileSync(web.archive.store.absolutePath(indexed.path));
      assert.deepEqual(Buffer.from(dataSetBytes(theirs)), Buffer.from(dataSetBytes(ours)), uid);
    }
  });

  it('stores an object of its own into our archive by STOW-RS', async () => {
    const file = readFileSync(join(TEST_FILES, 'CT_small.dcm'));
    const uploaded = await orthanc.call<{ ID: string }>('POST', '/instances', new Uint8Array(file));
    const uid = parseDicom(file).dataSet.string(TAG.SOPInstanceUID) ?? '';
    assert.equal(await web.archive.index.findInstance(uid), undefined);
    await diagnosed(() => orthanc.call('POST', '/dicom-web/servers/pacs/stow', { Resources: [uploaded.ID] }));
    const indexed = await web.archive.index.findInstance(uid);
    assert.ok(indexed !== undefined, 'stored by STOW-RS');
    const ours = parseDicom(readFileSync(web.archive.store.absolutePath(indexed.path))).dataSet;
    const original = parseDicom(file).dataSet;
    assert.deepEqual(
      Buffer.from(ours.get(TAG.PixelData)?.value as Uint8Array),
      Buffer.from(original.get(TAG.PixelData)?.value as Uint8Array),
    );
    assert.equal(ours.string(TAG.PatientName), original.string(TAG.PatientName));
  });
});
