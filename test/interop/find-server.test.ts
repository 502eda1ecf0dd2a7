/**
 * C-FIND through the real `pacs server` process, on SQLite and on PostgreSQL: DCMTK's storescu
 * fills it with the generated objects and the character set corpus, then findscu and `pacs find`
 * query it in both models.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TAG } from '../../src/dicom/dictionary.js';
import type { DicomJsonObject } from '../../src/dicom/json.js';
import { readDicomFile } from '../../src/io/dicom-file.js';
import { dropSchema, PG_URL, randomSchema } from '../archive/helpers.js';
import { run, runPacs } from '../helpers/cli.js';
import { dcmtkTool } from '../helpers/corpus.js';
import { type Child, startPacsServer, TEST_CLIENT_AES, tempDir } from '../server/helpers.js';
import {
  CHARSET_CORPUS,
  queryDataSet,
  storeWithStorescu,
  studyUid,
  writeGeneratedObjects,
  writeQueryFile,
} from './find-fixtures.js';

const DCMTK_ENV = { TCP_NODELAY: '1' };

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`C-FIND through pacs server (${engine})`, () => {
    let work: { path: string; remove: () => Promise<void> };
    let server: Child;
    let port: number;
    const schema = randomSchema();

    before(async () => {
      work = await tempDir('pacs-interop-server-find-');
      const args = ['--data', join(work.path, 'data'), '--log-level', 'warn'];
      if (engine === 'postgres')
        args.push('--db', `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}`);
      const started = await startPacsServer(args, { aes: TEST_CLIENT_AES });
      server = started.server;
      port = started.port;
      await storeWithStorescu(port, [...writeGeneratedObjects(join(work.path, 'src')), ...CHARSET_CORPUS]);
    });

    after(async () => {
      await server?.stop();
      await work?.remove();
      if (engine === 'postgres') await dropSchema(schema);
    });

    async function findscu(args: readonly string[]): Promise<{ status: string; answers: string[][] }> {
      const out = await mkdtemp(join(work.path, 'rsp-'));
      const r = await run(
        dcmtkTool('findscu'),
        ['-v', '-X', '-od', out, '-aec', 'PACS', '127.0.0.1', String(port), ...args],
        { env: DCMTK_ENV },
      );
      const status = /Received Final Find Response \(([^)]*)\)/.exec(r.stderr)?.[1] ?? r.stderr;
      const answers: string[][] = [];
      for (const f of (await readdir(out)).sort()) {
        const ds = (await readDicomFile(join(out, f))).dataSet;
        answers.push([
          ds.string(TAG.StudyInstanceUID) ?? '',
          ds.string(TAG.SeriesInstanceUID) ?? '',
          ds.string(TAG.SOPInstanceUID) ?? '',
          ds.string(TAG.PatientName) ?? '',
        ]);
      }
      return { status, answers };
    }

    it('findscu, Study Root: a name wild card at STUDY level', async () => {
      const r = await findscu([
        '-S',
        '-k',
        'QueryRetrieveLevel=STUDY',
        '-k',
        'PatientName=doe*',
        '-k',
        'StudyInstanceUID',
      ]);
      assert.equal(r.status, 'Success');
      assert.deepEqual(r.answers.map((a) => a[0]).sort(), ['A', 'B', 'C', 'F'].map(studyUid).sort());
    });

    it('findscu, Patient Root: the images of a series', async () => {
      const r = await findscu([
        '-P',
        '-k',
        'QueryRetrieveLevel=IMAGE',
        '-k',
        'PatientID=PAT001',
        '-k',
        `StudyInstanceUID=${studyUid('A')}`,
        '-k',
        `SeriesInstanceUID=${studyUid('A')}.1`,
        '-k',
        'SOPInstanceUID',
      ]);
      assert.equal(r.status, 'Success');
      assert.deepEqual(
        r.answers.map((a) => a[2]).sort(),
        [1, 2, 3].map((i) => `${studyUid('A')}.1.${i}`),
      );
    });

    it('findscu: an ideographic name asked in ISO 2022 IR 87', async () => {
      const q = queryDataSet(['', 'ISO 2022 IR 87'], [[TAG.PatientName, '=山田^太郎']]);
      const r = await findscu([
        '-S',
        '-k',
        'QueryRetrieveLevel=STUDY',
        '-k',
        'StudyInstanceUID',
        writeQueryFile(join(work.path, 'jp.dcm'), q),
      ]);
      assert.equal(r.status, 'Success');
      assert.deepEqual(r.answers.map((a) => a[3]).sort(), [
        'Yamada^Tarou=山田^太郎=やまだ^たろう',
        'ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう',
      ]);
    });

    it('findscu: a hierarchical query without its Patient ID is refused with 0xA900', async () => {
      const r = await findscu(['-P', '-k', 'QueryRetrieveLevel=SERIES', '-k', 'SeriesInstanceUID']);
      assert.match(r.status, /^Error: DataSetDoesNotMatchSOPClass/);
      assert.deepEqual(r.answers, []);
    });

    it('pacs find: series of a study as DICOM JSON, with the counters', async () => {
      const r = await runPacs([
        'find',
        '127.0.0.1',
        String(port),
        '--level',
        'SERIES',
        '-k',
        `StudyInstanceUID=${studyUid('B')}`,
        '--json',
      ]);
      assert.equal(r.code, 0, r.stderr);
      const answers = JSON.parse(r.stdout) as DicomJsonObject[];
      const bySeries = new Map(answers.map((a) => [a['0020000E']?.Value?.[0], a]));
      assert.deepEqual([...bySeries.keys()].sort(), [`${studyUid('B')}.1`, `${studyUid('B')}.2`]);
      assert.deepEqual(bySeries.get(`${studyUid('B')}.1`)?.['00201209']?.Value, [2]);
      assert.deepEqual(bySeries.get(`${studyUid('B')}.2`)?.['00080060']?.Value, ['MR']);
    });

    it('the server logged no error', () => {
      assert.doesNotMatch(server.stderr + server.stdout, /"level":(50|60)|ERROR|FATAL/);
    });
  });
}
