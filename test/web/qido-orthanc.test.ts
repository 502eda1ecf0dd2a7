/**
 * Orthanc (1.10.x with its DICOMweb plugin, `DicomWeb.Servers` pointing at us) as a QIDO-RS client
 * of our server: its /dicom-web/servers/{id}/qido route finds our studies, series and instances
 * with the keys it forwards, wild cards and ranges included (Orthanc parses our DICOM JSON and
 * answers in its own simplified form). Orthanc runs with TCP_NODELAY=1. On SQLite (the HTTP side is the
 * same on both engines; qido.test.ts covers PostgreSQL).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeDataSet } from '../archive/helpers.js';
import { ingestDataSets, startTestWeb, type TestWeb } from './helpers.js';

const ORTHANC = '/usr/sbin/Orthanc';
const PLUGIN = '/usr/share/orthanc/plugins/libOrthancDicomWeb.so';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a !== null ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

describe('Orthanc as a QIDO-RS client', () => {
  let web: TestWeb;
  let orthanc: ChildProcess | undefined;
  let orthancUrl = '';
  const dir = mkdtempSync(join(tmpdir(), 'pacs-qido-orthanc-'));

  before(async () => {
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
    const httpPort = await freePort();
    const dicomPort = await freePort();
    const config = join(dir, 'orthanc.json');
    writeFileSync(
      config,
      JSON.stringify({
        Name: 'qido-client',
        StorageDirectory: join(dir, 'storage'),
        IndexDirectory: join(dir, 'index'),
        HttpPort: httpPort,
        DicomPort: dicomPort,
        RemoteAccessAllowed: false,
        AuthenticationEnabled: false,
        Plugins: [PLUGIN],
        DicomWeb: { Enable: true, Root: '/dicom-web/', Servers: { pacs: [`${web.base}/`] } },
      }),
    );
    orthanc = spawn(ORTHANC, [config], {
      cwd: dir,
      stdio: 'ignore',
      env: { ...process.env, TCP_NODELAY: '1' },
    });
    orthancUrl = `http://127.0.0.1:${httpPort}`;
    for (let i = 0; ; i++) {
      try {
        const r = await fetch(`${orthancUrl}/system`);
        if (r.ok) break;
      } catch {
        // not listening yet
      }
      if (i > 300) throw new Error('Orthanc did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  after(async () => {
    if (orthanc !== undefined && orthanc.exitCode === null) {
      const exited = new Promise((r) => orthanc?.once('exit', r));
      orthanc.kill('SIGTERM');
      await exited;
    }
    await web?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Orthanc answers in its own form: each attribute with Group, Element, Name, vr and Value as text. */
  async function qido(
    uri: string,
    args: Record<string, string>,
  ): Promise<Array<Record<string, { Value?: unknown }>>> {
    const r = await fetch(`${orthancUrl}/dicom-web/servers/pacs/qido`, {
      method: 'POST',
      body: JSON.stringify({ Uri: uri, Arguments: args }),
    });
    assert.equal(r.status, 200, await r.clone().text());
    return (await r.json()) as Array<Record<string, { Value?: unknown }>>;
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
