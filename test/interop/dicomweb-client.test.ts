/**
 * dicomweb-client (the JavaScript client OHIF uses) against our DICOMweb server, in Node with an
 * XMLHttpRequest polyfill (xhr2): search, metadata, frames, rendered, retrieve and store, each
 * checked against what the archive holds.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TAG } from '../../src/dicom/dictionary.js';
import { parseDicom } from '../../src/dicom/reader.js';
import { TEST_FILES } from '../helpers/corpus.js';
import { makeCtDataSet } from '../helpers/synthetic.js';
import { ingestDataSets, startTestWeb, type TestWeb } from '../web/helpers.js';

const require = createRequire(import.meta.url);
(globalThis as { XMLHttpRequest?: unknown }).XMLHttpRequest = require('xhr2');

interface Client {
  searchForStudies(o?: {
    queryParams?: Record<string, string>;
  }): Promise<Array<Record<string, { Value?: unknown[] }>>>;
  searchForSeries(o?: { studyInstanceUID?: string }): Promise<Array<Record<string, { Value?: unknown[] }>>>;
  searchForInstances(o?: {
    studyInstanceUID?: string;
    seriesInstanceUID?: string;
  }): Promise<Array<Record<string, { Value?: unknown[] }>>>;
  retrieveSeriesMetadata(o: {
    studyInstanceUID: string;
    seriesInstanceUID: string;
  }): Promise<Array<Record<string, { vr: string; Value?: unknown[]; BulkDataURI?: string }>>>;
  retrieveInstanceFrames(o: {
    studyInstanceUID: string;
    seriesInstanceUID: string;
    sopInstanceUID: string;
    frameNumbers: string;
  }): Promise<ArrayBuffer[]>;
  retrieveInstanceRendered(o: {
    studyInstanceUID: string;
    seriesInstanceUID: string;
    sopInstanceUID: string;
    mediaTypes?: Array<{ mediaType: string }>;
  }): Promise<ArrayBuffer | ArrayBuffer[]>;
  retrieveInstance(o: {
    studyInstanceUID: string;
    seriesInstanceUID: string;
    sopInstanceUID: string;
  }): Promise<ArrayBuffer>;
  storeInstances(o: { datasets: ArrayBuffer[]; studyInstanceUID?: string }): Promise<unknown>;
}

const dwc = require('dicomweb-client') as { api: { DICOMwebClient: new (o: object) => Client } };

const value = (entry: Record<string, { Value?: unknown[] }> | undefined, tag: string) =>
  entry?.[tag]?.Value?.[0];

describe('interop: dicomweb-client against our DICOMweb server', () => {
  let web: TestWeb;
  let client: Client;
  const studyUid = '1.2.826.0.1.3680043.2.1125.78.1';
  const seriesUid = '1.2.826.0.1.3680043.2.1125.78.1.1';
  const sopUids = [1, 2].map((n) => `1.2.826.0.1.3680043.2.1125.78.1.1.${n}`);
  const dataSets = sopUids.map((uid, i) =>
    makeCtDataSet({
      patientId: 'DW-CLIENT-1',
      patientName: 'Web^Client',
      studyInstanceUid: studyUid,
      seriesInstanceUid: seriesUid,
      sopInstanceUid: uid,
      instanceNumber: i + 1,
      rows: 32,
      columns: 32,
    }),
  );

  before(async () => {
    web = await startTestWeb();
    await ingestDataSets(web.archive, dataSets);
    client = new dwc.api.DICOMwebClient({ url: web.base, singlepart: false, verbose: false });
  });
  after(() => web?.close());

  it('searches studies, series and instances', async () => {
    const studies = await client.searchForStudies({ queryParams: { PatientID: 'DW-CLIENT-1' } });
    assert.equal(studies.length, 1);
    assert.equal(value(studies[0], '0020000D'), studyUid);
    const series = await client.searchForSeries({ studyInstanceUID: studyUid });
    assert.equal(series.length, 1);
    assert.equal(value(series[0], '0020000E'), seriesUid);
    const instances = await client.searchForInstances({
      studyInstanceUID: studyUid,
      seriesInstanceUID: seriesUid,
    });
    assert.deepEqual(instances.map((x) => value(x, '00080018')).sort(), [...sopUids].sort());
  });

  it('retrieves series metadata with every instance and a resolvable Pixel Data', async () => {
    const metadata = await client.retrieveSeriesMetadata({
      studyInstanceUID: studyUid,
      seriesInstanceUID: seriesUid,
    });
    assert.equal(metadata.length, 2);
    for (const m of metadata) {
      assert.equal(m['00100010']?.vr, 'PN');
      assert.equal(m['00280010']?.Value?.[0], 32);
      assert.ok(m['7FE00010']?.BulkDataURI !== undefined || m['7FE00010'] === undefined);
    }
  });

  it('retrieves frames as the stored pixel data bytes', async () => {
    const frames = await client.retrieveInstanceFrames({
      studyInstanceUID: studyUid,
      seriesInstanceUID: seriesUid,
      sopInstanceUID: sopUids[0] as string,
      frameNumbers: '1',
    });
    assert.equal(frames.length, 1);
    const expected = dataSets[0]?.get(TAG.PixelData)?.value as Uint8Array;
    assert.deepEqual(Buffer.from(frames[0] as ArrayBuffer), Buffer.from(expected));
  });

  it('retrieves a rendered instance as JPEG', async () => {
    const jpeg = await client.retrieveInstanceRendered({
      studyInstanceUID: studyUid,
      seriesInstanceUID: seriesUid,
      sopInstanceUID: sopUids[0] as string,
      mediaTypes: [{ mediaType: 'image/jpeg' }],
    });
    // A single-part answer comes back as a one-element array of its bytes.
    const bytes = new Uint8Array(Array.isArray(jpeg) ? (jpeg[0] as ArrayBuffer) : jpeg);
    assert.equal(bytes[0], 0xff);
    assert.equal(bytes[1], 0xd8);
  });

  it('stores an instance and retrieves it back', async () => {
    const file = readFileSync(join(TEST_FILES, 'MR_small.dcm'));
    const ds = parseDicom(file).dataSet;
    await client.storeInstances({
      datasets: [file.buffer.slice(file.byteOffset, file.byteOffset + file.byteLength)],
    });
    const uid = ds.string(TAG.SOPInstanceUID) ?? '';
    const indexed = await web.archive.index.findInstance(uid);
    assert.ok(indexed !== undefined, 'stored');
    const back = await client.retrieveInstance({
      studyInstanceUID: indexed.studyInstanceUid,
      seriesInstanceUID: indexed.seriesInstanceUid,
      sopInstanceUID: uid,
    });
    const parsed = parseDicom(new Uint8Array(back)).dataSet;
    assert.equal(parsed.string(TAG.SOPInstanceUID), uid);
    assert.deepEqual(
      Buffer.from(parsed.get(TAG.PixelData)?.value as Uint8Array),
      Buffer.from(ds.get(TAG.PixelData)?.value as Uint8Array),
    );
  });
});
