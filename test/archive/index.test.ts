/**
 * The index contract, run on SQLite, on PostgreSQL (a schema of its own per test, dropped after)
 * and on the in-memory fake the services test with: the same behaviour everywhere.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import type {
  ArchiveIndex,
  InsertResult,
  InstanceFile,
  InstanceFileSwitch,
  StudySummary,
} from '../../src/archive/index/archive-index.js';
import { MIGRATIONS } from '../../src/archive/index/migrations.js';
import { openIndex } from '../../src/archive/index/open.js';
import type { SqlArchiveIndex } from '../../src/archive/index/sql-index.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { tagHex } from '../../src/dicom/tag.js';
import {
  ALL_ENGINES,
  CT_IMAGE,
  dropSchema,
  entry,
  GSPS,
  MR_IMAGE,
  PG_URL,
  pgAdmin,
  randomSchema,
  SQL_ENGINES,
  sqliteEngine,
  type TestEngine,
  tempDir,
} from './helpers.js';

const run = promisify(execFile);
const OPEN_INDEX = new URL('./fixtures/open-index.js', import.meta.url).pathname;

/** Runs fn with a fresh index of the engine, removed afterwards. */
async function withIndex(engine: TestEngine, fn: (index: ArchiveIndex) => Promise<void>): Promise<void> {
  const opened = await engine.open();
  try {
    await fn(opened.index);
  } finally {
    await opened.cleanup();
  }
}

async function study(index: ArchiveIndex, uid: string): Promise<StudySummary> {
  const s = await index.findStudy(uid);
  assert.ok(s, `study ${uid} is indexed`);
  return s;
}

function inserted(r: InsertResult): void {
  assert.equal(r.status, 'inserted', JSON.stringify(r));
}

for (const engine of ALL_ENGINES) {
  describe(`index on ${engine.name}`, () => {
    test('a study of several series: rows, counters and level headers', () =>
      withIndex(engine, async (index) => {
        const plan = [
          { seriesUid: '1.2.3.4.1', modality: 'CT', sopClass: CT_IMAGE, count: 4 },
          { seriesUid: '1.2.3.4.2', modality: 'CT', sopClass: CT_IMAGE, count: 3 },
          { seriesUid: '1.2.3.4.3', modality: 'PR', sopClass: GSPS, count: 2 },
        ];
        for (const [s, series] of plan.entries())
          for (let i = 1; i <= series.count; i++)
            inserted(
              await index.insertInstance(
                ...args(
                  entry({
                    ...series,
                    seriesNumber: s + 1,
                    instanceNumber: i,
                    sopUid: `1.2.3.4.${s + 1}.${i}`,
                  }),
                ),
              ),
            );
        assert.equal(await index.countInstances(), 9);
        const st = await study(index, '1.2.3.4');
        assert.equal(st.numberOfSeries, 3);
        assert.equal(st.numberOfInstances, 9);
        assert.deepEqual(st.modalitiesInStudy, ['CT', 'PR']);
        assert.deepEqual(st.sopClassesInStudy, [CT_IMAGE, GSPS].sort());
        assert.equal(st.studyDate, '20240611');
        assert.equal(st.accessionNumber, 'ACC1');
        assert.equal(st.referringPhysicianName, 'Welby^Marcus');
        assert.deepEqual(st.patient, {
          patientId: 'PID1',
          issuerOfPatientId: null,
          patientName: 'Doe^Jane',
          patientBirthDate: '19700101',
          patientSex: 'F',
        });
        assert.equal((await index.findSeries('1.2.3.4.2'))?.numberOfInstances, 3);
        const pr = await index.findSeries('1.2.3.4.3');
        assert.equal(pr?.modality, 'PR');
        assert.equal(pr?.seriesNumber, 3);
        assert.equal(pr?.studyInstanceUid, '1.2.3.4');
        const patient = await index.findPatient('PID1', null);
        assert.equal(patient?.numberOfStudies, 1);
        assert.equal(patient?.patientName, 'Doe^Jane');

        const inst = await index.findInstance('1.2.3.4.1.2');
        assert.ok(inst);
        assert.equal(inst.sopClassUid, CT_IMAGE);
        assert.equal(inst.instanceNumber, 2);
        assert.equal(inst.seriesInstanceUid, '1.2.3.4.1');
        assert.equal(inst.studyInstanceUid, '1.2.3.4');
        assert.equal(inst.transferSyntaxUid, '1.2.840.10008.1.2.1');
        assert.match(inst.path, /^objects\/[0-9a-f]{2}\/[0-9a-f]{2}\/[0-9a-f]{32}\.dcm$/);
        assert.equal(inst.size, 1000);
        assert.equal(inst.callingAet, 'MODALITY');
        assert.equal(inst.receivedAt.toISOString(), '2024-06-11T10:15:00.000Z');

        // Each level's document holds that level's attributes (and the character set), no bulk data.
        const has = (doc: object, keyword: keyof typeof TAG) => tagHex(TAG[keyword]) in doc;
        assert.ok(has(st.header, 'StudyDescription') && has(st.header, 'PatientAge'));
        assert.ok(!has(st.header, 'PatientName') && !has(st.header, 'SeriesDescription'));
        assert.ok(has(st.patientHeader, 'PatientName') && has(st.patientHeader, 'PatientBirthDate'));
        assert.ok(has(pr.header, 'SeriesDescription') && has(pr.header, 'BodyPartExamined'));
        assert.ok(!has(pr.header, 'InstanceNumber'));
        assert.equal(patient?.header[tagHex(TAG.PatientName)]?.vr, 'PN');
      }));

    test('duplicate SOP Instance UID: keep reports the indexed object, replace swaps it', () =>
      withIndex(engine, async (index) => {
        const first = entry({ sopUid: '9.1' });
        inserted(await index.insertInstance(first.record, first.headers));
        const again = entry({ sopUid: '9.1' });
        const kept = await index.insertInstance(again.record, again.headers);
        assert.equal(kept.status, 'duplicate');
        assert.equal(kept.status === 'duplicate' && kept.existing.path, first.record.instance.path);
        assert.equal((await index.findInstance('9.1'))?.path, first.record.instance.path);

        const replaced = await index.insertInstance(again.record, again.headers, { onDuplicate: 'replace' });
        assert.equal(replaced.status, 'replaced');
        assert.equal(replaced.status === 'replaced' && replaced.previous.path, first.record.instance.path);
        assert.equal((await index.findInstance('9.1'))?.path, again.record.instance.path);
        assert.equal(await index.countInstances(), 1);
        const st = await study(index, '1.2.3.4');
        assert.equal(st.numberOfInstances, 1);
        assert.equal(st.numberOfSeries, 1);

        // A replacement in another series and study moves the object and its counters.
        const moved = entry({
          sopUid: '9.1',
          studyUid: '5.6',
          seriesUid: '5.6.1',
          modality: 'MR',
          sopClass: MR_IMAGE,
        });
        const r = await index.insertInstance(moved.record, moved.headers, { onDuplicate: 'replace' });
        assert.equal(r.status, 'replaced');
        assert.equal(await index.findStudy('1.2.3.4'), undefined, 'the emptied study is gone');
        assert.equal(await index.findSeries('1.2.3.4.1'), undefined);
        const st2 = await study(index, '5.6');
        assert.equal(st2.numberOfInstances, 1);
        assert.deepEqual(st2.modalitiesInStudy, ['MR']);
        assert.equal((await index.findPatient('PID1', null))?.numberOfStudies, 1);
      }));

    test('a kept duplicate changes no row: neither counters of its series nor a series or study it names anew', () =>
      withIndex(engine, async (index) => {
        const first = entry({ sopUid: '9.2' });
        inserted(await index.insertInstance(first.record, first.headers));
        // Same series (the insert itself tells the duplicate), then a series and study not indexed.
        const same = await index.insertInstance(entry({ sopUid: '9.2' }).record, first.headers);
        assert.equal(same.status, 'duplicate');
        const elsewhere = entry({ sopUid: '9.2', studyUid: '5.7', seriesUid: '5.7.1', patientId: 'PID9' });
        const r = await index.insertInstance(elsewhere.record, elsewhere.headers);
        assert.equal(r.status, 'duplicate');
        assert.equal(r.status === 'duplicate' && r.existing.seriesInstanceUid, '1.2.3.4.1');
        assert.equal(await index.findStudy('5.7'), undefined);
        assert.equal(await index.findSeries('5.7.1'), undefined);
        assert.equal(await index.findPatient('PID9', null), undefined);
        const st = await study(index, '1.2.3.4');
        assert.equal(st.numberOfInstances, 1);
        assert.equal(st.numberOfSeries, 1);
        assert.equal((await index.findSeries('1.2.3.4.1'))?.numberOfInstances, 1);
        assert.equal(await index.countInstances(), 1);
      }));

    test('two patients sharing a Patient ID are not merged: each study keeps its own, with a warning', () =>
      withIndex(engine, async (index) => {
        const a = entry({
          patientName: 'Smith^John',
          birthDate: '19600101',
          studyUid: '1.1',
          seriesUid: '1.1.1',
        });
        inserted(await index.insertInstance(a.record, a.headers));
        const b = entry({
          patientName: 'Jones^Mary',
          birthDate: '19800202',
          studyUid: '2.2',
          seriesUid: '2.2.1',
        });
        const r = await index.insertInstance(b.record, b.headers);
        assert.equal(r.status, 'inserted');
        const warnings = r.status === 'inserted' ? r.warnings : [];
        assert.equal(warnings.length, 1);
        const w = warnings[0];
        assert.equal(w?.code, 'patient-mismatch');
        assert.ok(w?.code === 'patient-mismatch');
        assert.equal(w.patientId, 'PID1');
        assert.equal(w.indexed.patientName, 'Smith^John');
        assert.equal(w.received.patientName, 'Jones^Mary');
        assert.match(w.message, /not merged/);

        assert.equal((await study(index, '1.1')).patient.patientName, 'Smith^John');
        assert.equal((await study(index, '2.2')).patient.patientName, 'Jones^Mary');
        assert.equal((await study(index, '2.2')).patient.patientBirthDate, '19800202');
        // One patient row per Patient ID (the patient level's unique key), counting both studies.
        const p = await index.findPatient('PID1', null);
        assert.equal(p?.patientName, 'Smith^John');
        assert.equal(p?.numberOfStudies, 2);

        // Same name in other case and padding, and a missing birth date, are not a conflict.
        const c = entry({ patientName: 'SMITH^JOHN^^', birthDate: '', studyUid: '3.3', seriesUid: '3.3.1' });
        const rc = await index.insertInstance(c.record, c.headers);
        assert.deepEqual(rc.status === 'inserted' && rc.warnings, []);
        // Another issuer is another patient.
        const d = entry({
          patientName: 'Other^Person',
          issuer: 'HOSP2',
          studyUid: '4.4',
          seriesUid: '4.4.1',
        });
        const rd = await index.insertInstance(d.record, d.headers);
        assert.deepEqual(rd.status === 'inserted' && rd.warnings, []);
        assert.equal((await index.findPatient('PID1', 'HOSP2'))?.numberOfStudies, 1);
      }));

    test('an object naming another patient than its indexed study, or another study than its series, is warned of', () =>
      withIndex(engine, async (index) => {
        const a = entry({ sopUid: '1', patientName: 'Smith^John' });
        inserted(await index.insertInstance(a.record, a.headers));
        const b = entry({ sopUid: '2', patientName: 'Jones^Mary', seriesUid: '1.2.3.4.9' });
        const r = await index.insertInstance(b.record, b.headers);
        assert.deepEqual(r.status === 'inserted' && r.warnings.map((w) => w.code), [
          'study-patient-mismatch',
        ]);
        assert.equal((await study(index, '1.2.3.4')).patient.patientName, 'Smith^John');

        const c = entry({ sopUid: '3', studyUid: '7.7', patientName: 'Smith^John' }); // series 1.2.3.4.1 is in study 1.2.3.4
        const rc = await index.insertInstance(c.record, c.headers);
        assert.deepEqual(rc.status === 'inserted' && rc.warnings.map((w) => w.code), [
          'series-study-mismatch',
        ]);
        assert.equal((await index.findInstance('3'))?.studyInstanceUid, '1.2.3.4');
        assert.equal(await index.findStudy('7.7'), undefined);
        assert.equal((await study(index, '1.2.3.4')).numberOfInstances, 3);
      }));

    test('objects without a Patient ID are never merged into one patient', () =>
      withIndex(engine, async (index) => {
        const a = entry({ patientId: null, patientName: 'Anon^A', studyUid: '1.1', seriesUid: '1.1.1' });
        const b = entry({ patientId: null, patientName: 'Anon^B', studyUid: '2.2', seriesUid: '2.2.1' });
        const ra = await index.insertInstance(a.record, a.headers);
        const rb = await index.insertInstance(b.record, b.headers);
        assert.deepEqual(
          [ra, rb].map((r) => r.status === 'inserted' && r.warnings.length),
          [0, 0],
        );
        assert.equal((await study(index, '1.1')).patient.patientId, null);
        assert.equal((await study(index, '2.2')).patient.patientName, 'Anon^B');
        assert.ok(await index.deleteInstance(a.record.instance.sopInstanceUid));
        assert.ok(await index.deleteInstance(b.record.instance.sopInstanceUid));
      }));

    test('delete keeps the counters current and removes emptied series, studies and patients', () =>
      withIndex(engine, async (index) => {
        const items = [
          entry({ sopUid: 'a1', seriesUid: 's1', modality: 'CT', sopClass: CT_IMAGE }),
          entry({ sopUid: 'a2', seriesUid: 's1', modality: 'CT', sopClass: CT_IMAGE }),
          entry({ sopUid: 'b1', seriesUid: 's2', modality: 'MR', sopClass: MR_IMAGE }),
          entry({ sopUid: 'c1', seriesUid: 's3', modality: 'PR', sopClass: GSPS }),
        ];
        for (const e of items) inserted(await index.insertInstance(e.record, e.headers));
        assert.deepEqual((await study(index, '1.2.3.4')).modalitiesInStudy, ['CT', 'MR', 'PR']);

        const removed = await index.deleteInstance('a1');
        assert.equal(removed?.path, items[0]?.record.instance.path);
        let st = await study(index, '1.2.3.4');
        assert.equal(st.numberOfInstances, 3);
        assert.equal(st.numberOfSeries, 3);
        assert.equal((await index.findSeries('s1'))?.numberOfInstances, 1);

        await index.deleteInstance('b1');
        st = await study(index, '1.2.3.4');
        assert.equal(st.numberOfInstances, 2);
        assert.equal(st.numberOfSeries, 2);
        assert.deepEqual(st.modalitiesInStudy, ['CT', 'PR']);
        assert.deepEqual(st.sopClassesInStudy, [CT_IMAGE, GSPS].sort());
        assert.equal(await index.findSeries('s2'), undefined);

        await index.deleteInstance('c1');
        st = await study(index, '1.2.3.4');
        assert.deepEqual(st.modalitiesInStudy, ['CT']);
        assert.deepEqual(st.sopClassesInStudy, [CT_IMAGE]);

        assert.equal(await index.deleteInstance('nope'), undefined);
        await index.deleteInstance('a2');
        assert.equal(await index.findStudy('1.2.3.4'), undefined);
        assert.equal(await index.findPatient('PID1', null), undefined);
        assert.equal(await index.countInstances(), 0);
      }));

    test('concurrent inserts all land, sharing commits', () =>
      withIndex(engine, async (index) => {
        const n = 300;
        const entries = Array.from({ length: n }, (_, i) =>
          entry({
            sopUid: `7.${i}`,
            studyUid: `7.${i % 3}`,
            seriesUid: `7.${i % 3}.${i % 6}`,
            modality: i % 2 === 0 ? 'CT' : 'MR',
            sopClass: i % 2 === 0 ? CT_IMAGE : MR_IMAGE,
            instanceNumber: i,
          }),
        );
        const results = await Promise.all(entries.map((e) => index.insertInstance(e.record, e.headers)));
        assert.ok(results.every((r) => r.status === 'inserted'));
        assert.equal(await index.countInstances(), n);
        let total = 0;
        for (let s = 0; s < 3; s++) {
          const st = await study(index, `7.${s}`);
          total += st.numberOfInstances;
          assert.equal(st.numberOfSeries, 2);
          assert.equal(st.numberOfInstances, n / 3);
        }
        assert.equal(total, n);
        assert.equal((await index.findPatient('PID1', null))?.numberOfStudies, 3);
        if (engine.sql) {
          const stats = (index as SqlArchiveIndex).groupCommitStats;
          assert.ok(stats.batches < n / 4, `${n} inserts took ${stats.batches} commits`);
          assert.ok(stats.largestBatch > 1);
        }
        // Concurrent duplicates: exactly one of each pair is inserted.
        const dups = await Promise.all(
          entries.slice(0, 20).map((e) => index.insertInstance(e.record, e.headers)),
        );
        assert.ok(dups.every((r) => r.status === 'duplicate'));
      }));

    test('withTransaction commits all of its operations or none', () =>
      withIndex(engine, async (index) => {
        const a = entry({ sopUid: 't1' });
        const b = entry({ sopUid: 't2' });
        await assert.rejects(
          index.withTransaction(async (tx) => {
            inserted(await tx.insertInstance(a.record, a.headers));
            assert.ok(await tx.findInstance('t1'), 'visible inside the transaction');
            throw new Error('changed my mind');
          }),
          /changed my mind/,
        );
        assert.equal(await index.findInstance('t1'), undefined);
        assert.equal(await index.findStudy('1.2.3.4'), undefined);

        // A failing transaction in a batch does not take the others down.
        const results = await Promise.allSettled([
          index.insertInstance(a.record, a.headers),
          index.withTransaction(async (tx) => {
            await tx.insertInstance(b.record, b.headers);
            throw new Error('boom');
          }),
          index.withTransaction(async (tx) => tx.deleteInstance('none')),
        ]);
        assert.deepEqual(
          results.map((r) => r.status),
          ['fulfilled', 'rejected', 'fulfilled'],
        );
        assert.ok(await index.findInstance('t1'));
        assert.equal(await index.findInstance('t2'), undefined);
        assert.equal((await study(index, '1.2.3.4')).numberOfInstances, 1);
      }));

    test('listInstanceFiles pages through every file in path order', () =>
      withIndex(engine, async (index) => {
        const n = 2150; // more than two pages
        const entries = Array.from({ length: n }, (_, i) =>
          entry({ sopUid: `8.${i}`, seriesUid: `8.${i % 7}` }),
        );
        for (let i = 0; i < n; i += 500)
          await Promise.all(entries.slice(i, i + 500).map((e) => index.insertInstance(e.record, e.headers)));
        const listed: InstanceFile[] = [];
        for await (const f of index.listInstanceFiles()) listed.push(f);
        const expected = entries
          .map((e) => ({ sopInstanceUid: e.record.instance.sopInstanceUid, path: e.record.instance.path }))
          .sort((x, y) => (x.path < y.path ? -1 : 1));
        assert.deepEqual(listed, expected);
        const after = expected[1000]?.path;
        const rest: InstanceFile[] = [];
        for await (const f of index.listInstanceFiles({ after })) rest.push(f);
        assert.deepEqual(rest, expected.slice(1001));
      }));

    test('names in other character sets are indexed as text', () =>
      withIndex(engine, async (index) => {
        const e = entry({ charset: 'ISO_IR 192', patientName: 'Yamada^Tarou=山田^太郎=やまだ^たろう' });
        inserted(await index.insertInstance(e.record, e.headers));
        const st = await study(index, '1.2.3.4');
        assert.equal(st.patient.patientName, 'Yamada^Tarou=山田^太郎=やまだ^たろう');
        const pn = st.patientHeader[tagHex(TAG.PatientName)]?.Value?.[0];
        assert.deepEqual(pn, {
          Alphabetic: 'Yamada^Tarou',
          Ideographic: '山田^太郎',
          Phonetic: 'やまだ^たろう',
        });
      }));
  });
}

for (const engine of SQL_ENGINES) {
  describe(`index schema on ${engine.name}`, () => {
    test('migrations run once: opening again applies nothing', async () => {
      const opened = await engine.open();
      try {
        await opened.index.close();
        const url = opened.url as string;
        const again = await openIndex(url);
        const latest = MIGRATIONS.length;
        assert.deepEqual(again.migrations, { from: latest, to: latest, applied: [] });
        const versions = await (again.index as SqlArchiveIndex).db
          .selectFrom('schema_migrations')
          .select(['version', 'name'])
          .execute();
        assert.deepEqual(
          versions.map((v) => Number(v.version)),
          MIGRATIONS.map((m) => m.version),
        );
        await again.index.close();
      } finally {
        await opened.cleanup();
      }
    });

    test('a schema newer than the program is refused', async () => {
      const opened = await engine.open();
      try {
        const index = opened.index as SqlArchiveIndex;
        await index.db
          .insertInto('schema_migrations')
          .values({ version: 99, name: 'from the future', applied_at: new Date().toISOString() })
          .execute();
        await index.close();
        await assert.rejects(openIndex(opened.url as string), {
          code: 'ERR_ARCHIVE_SCHEMA',
          message: /version 99, newer than this program knows/,
        });
      } finally {
        await opened.cleanup();
      }
    });

    test('several processes opening one new database at once migrate it once', async () => {
      const dir = tempDir('pacs-index-race-');
      const schema = randomSchema();
      const url =
        engine.name === 'sqlite' ? `sqlite:${join(dir, 'index.sqlite')}` : `${PG_URL}?schema=${schema}`;
      try {
        const outputs = await Promise.all(
          [1, 2, 3].map(async () => (await run(process.execPath, [OPEN_INDEX, url])).stdout),
        );
        assert.deepEqual(
          outputs.flatMap((o) => JSON.parse(o) as number[]),
          MIGRATIONS.map((m) => m.version),
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
        if (engine.name === 'postgres') await dropSchema(schema);
      }
    });
  });
}

describe('index URLs', () => {
  test('a SQLite file is opened once per process (a second connection would block the event loop)', async () => {
    const opened = await sqliteEngine.open();
    try {
      await assert.rejects(openIndex(opened.url as string), {
        code: 'ERR_ARCHIVE_INDEX',
        message: /open in this process already/,
      });
    } finally {
      await opened.cleanup();
    }
    const dir = tempDir('pacs-index-reopen-');
    try {
      const url = `sqlite:${join(dir, 'index.sqlite')}`;
      await (await openIndex(url)).index.close();
      await (await openIndex(url)).index.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an unknown URL is a clear error', async () => {
    await assert.rejects(openIndex('mysql://x'), {
      code: 'ERR_ARCHIVE_SCHEMA',
      message: /neither sqlite:PATH nor postgres/,
    });
    await assert.rejects(openIndex('postgres://postgres@127.0.0.1/test?schema=a;drop'), {
      code: 'ERR_ARCHIVE_SCHEMA',
    });
  });

  test('PostgreSQL is reachable for the suite (never skipped)', async () => {
    const version = await pgAdmin(async (c) => (await c.query('show server_version')).rows[0]);
    assert.ok(version);
  });
});

function args(e: ReturnType<typeof entry>): [typeof e.record, typeof e.headers] {
  return [e.record, e.headers];
}

for (const engine of ALL_ENGINES) {
  describe(`switchInstanceFile on ${engine.name} (compression at rest)`, () => {
    test('points the row at another file only while it names the expected one', () =>
      withIndex(engine, async (index) => {
        const e = entry({ sopUid: '1.2.3.4.9.1' });
        inserted(await index.insertInstance(...args(e)));
        inserted(await index.insertInstance(...args(entry({ sopUid: '1.2.3.4.9.2' }))));
        const before = await index.findInstance('1.2.3.4.9.1');
        assert.ok(before);
        const scope = {
          studyInstanceUid: '1.2.3.4',
          seriesInstanceUid: '1.2.3.4.1',
          sopInstanceUid: '1.2.3.4.9.1',
        };
        const version = await index.metadataVersion(scope);
        const to: InstanceFileSwitch = {
          path: 'objects/ab/cd/abcd0000000000000000000000000001.dcm',
          transferSyntaxUid: '1.2.840.10008.1.2.4.80',
          size: 400,
          header: { '00080018': { vr: 'UI', Value: ['1.2.3.4.9.1'] } },
          stored: {
            metadata: '{"00080018":{"vr":"UI","Value":["1.2.3.4.9.1"]}}',
            bulk: '{"version":1,"addressable":true,"values":[]}',
          },
        };
        assert.equal(await index.switchInstanceFile('1.2.3.4.9.1', 'objects/no/such/file.dcm', to), false);
        assert.deepEqual(await index.findInstance('1.2.3.4.9.1'), before, 'nothing changed');
        assert.equal(await index.switchInstanceFile('1.2.3.4.9.1', before.path, to), true);
        const after = await index.findInstance('1.2.3.4.9.1');
        assert.deepEqual(after, {
          ...before,
          path: to.path,
          transferSyntaxUid: to.transferSyntaxUid,
          size: 400,
        });
        assert.equal((await index.instanceBulk(scope))?.bulk, to.stored.bulk);
        assert.equal((await index.instanceBulk(scope))?.path, to.path);
        const docs: string[] = [];
        for await (const r of index.instanceMetadata(scope)) docs.push(r.metadata ?? '');
        assert.deepEqual(docs, [to.stored.metadata]);
        assert.notDeepEqual(await index.metadataVersion(scope), version, 'the ETag of the instance changes');
        // The counters are those of before: no instance came or went.
        assert.equal(await index.countInstances(), 2);
        assert.equal((await index.findStudy('1.2.3.4'))?.numberOfInstances, 2);
        assert.equal((await index.findSeries('1.2.3.4.1'))?.numberOfInstances, 2);
        // Switched away from, the old path is no longer the row's: a second switch from it does nothing.
        assert.equal(
          await index.switchInstanceFile('1.2.3.4.9.1', before.path, { ...to, path: 'objects/x' }),
          false,
        );
        await index.deleteInstance('1.2.3.4.9.1');
        assert.equal(await index.switchInstanceFile('1.2.3.4.9.1', to.path, to), false, 'deleted meanwhile');
        // Inside a transaction that throws, the switch is undone.
        const other = await index.findInstance('1.2.3.4.9.2');
        assert.ok(other);
        await assert.rejects(
          index.withTransaction(async (tx) => {
            assert.equal(await tx.switchInstanceFile('1.2.3.4.9.2', other.path, to), true);
            throw new Error('rolled back');
          }),
          /rolled back/,
        );
        assert.deepEqual(await index.findInstance('1.2.3.4.9.2'), other);
      }));
  });
}
