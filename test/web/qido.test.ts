/**
 * QIDO-RS (src/web/dicomweb/qido.ts) over HTTP on SQLite and PostgreSQL: every matching type,
 * includefield (list, repeated, all), fuzzy matching, limit/offset and the server maximum's
 * Warning, orderby, percent-encoding, the XML answer, Retrieve URL, the query event and each
 * class of bad request. Expected answers are computed from the corpus below, not typed twice.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { PacsEvent } from '../../src/core/events.js';
import type { DataSet } from '../../src/dicom/dataset.js';
import { DataSet as DS } from '../../src/dicom/dataset.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { entryOf, makeDataSet } from '../archive/helpers.js';
import { ingestDataSets, startTestWeb, type TestWeb } from './helpers.js';

interface Spec {
  readonly patientId: string;
  readonly patientName: string;
  readonly studyUid: string;
  readonly studyDate?: string;
  readonly studyTime: string;
  readonly accession: string;
  readonly studyDescription: string;
  readonly charset?: string;
  readonly series: ReadonlyArray<{
    readonly uid: string;
    readonly modality: string;
    readonly number: number;
    readonly instances: readonly number[];
  }>;
  readonly referencedSop?: string;
}

/** Six studies, in the order they are ingested. */
const STUDIES: readonly Spec[] = [
  {
    patientId: 'P1',
    patientName: 'Doe^John',
    studyUid: '1.1',
    studyDate: '20240115',
    studyTime: '101500',
    accession: 'A1001',
    studyDescription: 'CT CHEST',
    series: [
      { uid: '1.1.1', modality: 'CT', number: 1, instances: [2, 1] },
      { uid: '1.1.2', modality: 'PR', number: 2, instances: [1] },
    ],
    referencedSop: '9.9.1',
  },
  {
    patientId: 'P1',
    patientName: 'Doe^John',
    studyUid: '1.2',
    studyDate: '20240301',
    studyTime: '083000',
    accession: 'A1002',
    studyDescription: 'MR HEAD',
    series: [{ uid: '1.2.1', modality: 'MR', number: 1, instances: [1] }],
    referencedSop: '9.9.2',
  },
  {
    patientId: 'P2',
    patientName: 'Müller^Hans',
    studyUid: '1.3',
    studyDate: '20231224',
    studyTime: '235900',
    accession: 'A2001',
    studyDescription: 'CT KNEE',
    charset: 'ISO_IR 100',
    series: [{ uid: '1.3.1', modality: 'CT', number: 3, instances: [1] }],
  },
  {
    patientId: 'P3',
    patientName: 'Smyth^Anna',
    studyUid: '1.4',
    studyDate: '20240115',
    studyTime: '120000',
    accession: 'A3001',
    studyDescription: 'US ABDOMEN',
    series: [{ uid: '1.4.1', modality: 'US', number: 1, instances: [1, 2] }],
  },
  {
    patientId: 'P4',
    patientName: 'Cooper^Carl',
    studyUid: '1.5',
    studyTime: '070000',
    accession: 'A4001',
    studyDescription: 'CT SPINE',
    series: [{ uid: '1.5.1', modality: 'CT', number: 1, instances: [1] }],
  },
  {
    patientId: 'P5',
    patientName: 'Carter^Cindy',
    studyUid: '1.6',
    studyDate: '20240620',
    studyTime: '090000',
    accession: 'A5+1',
    studyDescription: 'CT HEAD',
    series: [{ uid: '1.6.1', modality: 'CT', number: 1, instances: [1] }],
  },
];

function dataSets(): DataSet[] {
  const out: DataSet[] = [];
  for (const s of STUDIES)
    for (const se of s.series)
      for (const n of se.instances) {
        const ds = makeDataSet({
          patientId: s.patientId,
          patientName: s.patientName,
          studyUid: s.studyUid,
          ...(s.studyDate !== undefined ? { studyDate: s.studyDate } : {}),
          accession: s.accession,
          studyDescription: s.studyDescription,
          seriesUid: se.uid,
          modality: se.modality,
          seriesNumber: se.number,
          sopUid: `${se.uid}.${n}`,
          instanceNumber: n,
          ...(s.charset !== undefined ? { charset: s.charset } : {}),
        });
        if (s.studyDate === undefined) ds.delete(TAG.StudyDate);
        ds.setString(TAG.StudyTime, s.studyTime);
        if (s.studyDate !== undefined) ds.setString(TAG.AcquisitionDateTime, `${s.studyDate}${s.studyTime}`);
        if (s.referencedSop !== undefined) {
          const item = new DS();
          item.setString(TAG.ReferencedSOPClassUID, '1.2.840.10008.3.1.2.3.1');
          item.setString(TAG.ReferencedSOPInstanceUID, s.referencedSop);
          ds.setSequence(TAG.ReferencedStudySequence, [item]);
        }
        out.push(ds);
      }
  return out;
}

/** The default study order: date, time descending (absent last), then the newest ingested first. */
function defaultStudyOrder(studies: readonly Spec[]): string[] {
  const order = STUDIES.map((s) => s.studyUid);
  return [...studies]
    .sort((a, b) => {
      if ((a.studyDate === undefined) !== (b.studyDate === undefined))
        return a.studyDate === undefined ? 1 : -1;
      const d = (b.studyDate ?? '').localeCompare(a.studyDate ?? '');
      if (d !== 0) return d;
      const t = b.studyTime.localeCompare(a.studyTime);
      if (t !== 0) return t;
      return order.indexOf(b.studyUid) - order.indexOf(a.studyUid);
    })
    .map((s) => s.studyUid);
}

type Json = Record<string, { vr: string; Value?: unknown[] }>;

function uidsOf(answers: readonly Json[], hex = '0020000D'): string[] {
  return answers.map((a) => String(a[hex]?.Value?.[0]));
}

function first(a: Json, hex: string): unknown {
  return a[hex]?.Value?.[0];
}

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`QIDO-RS on ${engine}`, () => {
    let web: TestWeb;
    const events: PacsEvent[] = [];

    before(async () => {
      web = await startTestWeb({ engine, aeTitle: 'QIDOAE' });
      await ingestDataSets(web.archive, dataSets());
      web.events.subscribe((e) => events.push(e));
    });
    after(async () => {
      await web?.close();
    });

    async function get(path: string, headers: Record<string, string> = {}): Promise<Response> {
      return fetch(`${web.base}${path}`, { headers });
    }
    async function json(path: string): Promise<Json[]> {
      const r = await get(path);
      assert.equal(r.status, 200, `${path}: ${r.status} ${await r.clone().text()}`);
      assert.match(r.headers.get('content-type') ?? '', /^application\/dicom\+json/);
      return (await r.json()) as Json[];
    }
    async function studies(query: string): Promise<string[]> {
      return uidsOf(await json(`/studies${query}`));
    }
    const expect = (pred: (s: Spec) => boolean) => defaultStudyOrder(STUDIES.filter(pred));

    test('all studies, most recent first, with the default attributes in tag order', async () => {
      const answers = await json('/studies');
      assert.deepEqual(uidsOf(answers), defaultStudyOrder(STUDIES));
      const s1 = answers.find((a) => first(a, '0020000D') === '1.1') as Json;
      for (const hex of [
        '00080020',
        '00080030',
        '00080050',
        '00080056',
        '00080061',
        '00080090',
        '00081190',
        '00100010',
        '00100020',
        '0020000D',
        '00201206',
        '00201208',
      ])
        assert.ok(hex in s1, `${hex} missing`);
      assert.equal('00080005' in s1, false);
      assert.equal('0020000E' in s1, false);
      const keys = Object.keys(s1);
      assert.deepEqual(keys, [...keys].sort());
      assert.deepEqual(s1['00080061']?.Value, ['CT', 'PR']);
      assert.deepEqual(s1['00201206']?.Value, [2]);
      assert.deepEqual(s1['00201208']?.Value, [3]);
      assert.deepEqual(s1['00080054']?.Value, ['QIDOAE']);
      assert.deepEqual(s1['00080056']?.Value, ['ONLINE']);
      assert.deepEqual(s1['00100010']?.Value, [{ Alphabetic: 'Doe^John' }]);
      assert.equal(first(s1, '00081190'), `${web.base}/studies/1.1`);
      const s5 = answers.find((a) => first(a, '0020000D') === '1.5') as Json;
      assert.deepEqual(s5['00080020'], { vr: 'DA' });
    });

    test('single value, universal and empty value matching', async () => {
      assert.deepEqual(await studies('?AccessionNumber=A1002'), ['1.2']);
      assert.deepEqual(
        await studies('?00100020=P1'),
        expect((s) => s.patientId === 'P1'),
      );
      assert.deepEqual(await studies('?PatientID=*'), defaultStudyOrder(STUDIES));
      assert.deepEqual(await studies('?PatientID='), defaultStudyOrder(STUDIES));
      assert.deepEqual(
        await studies('?StudyDate=%22%22'),
        expect((s) => s.studyDate === undefined),
      );
    });

    test('wild cards, percent-encoded or not, and `+` as a plus sign', async () => {
      const c = expect((s) => s.patientName.startsWith('C'));
      assert.deepEqual(await studies('?PatientName=C%2A'), c);
      assert.deepEqual(await studies('?PatientName=C*'), c);
      assert.deepEqual(await studies('?PatientName=c*'), c, 'person names ignore case');
      assert.deepEqual(
        await studies('?PatientName=Do%3F%5EJohn'),
        expect((s) => s.patientName === 'Doe^John'),
      );
      assert.deepEqual(
        await studies('?StudyDescription=CT*'),
        expect((s) => s.studyDescription.startsWith('CT')),
      );
      assert.deepEqual(await studies('?StudyDescription=ct*'), [], 'other VRs are case-sensitive');
      assert.deepEqual(await studies('?AccessionNumber=A5+1'), ['1.6']);
      assert.deepEqual(await studies('?AccessionNumber=A5%2B1'), ['1.6']);
      assert.deepEqual(await studies('?StudyDescription=CT%20HEAD'), ['1.6']);
    });

    test('date and time ranges', async () => {
      const inJanuary = (s: Spec) =>
        s.studyDate !== undefined && s.studyDate >= '20240101' && s.studyDate <= '20240131';
      assert.deepEqual(await studies('?StudyDate=20240101-20240131'), expect(inJanuary));
      assert.deepEqual(
        await studies('?StudyDate=-20231231'),
        expect((s) => s.studyDate !== undefined && s.studyDate <= '20231231'),
      );
      assert.deepEqual(
        await studies('?StudyDate=20240201-'),
        expect((s) => s.studyDate !== undefined && s.studyDate >= '20240201'),
      );
      assert.deepEqual(
        await studies('?StudyTime=0800-1100'),
        expect((s) => s.studyTime >= '080000' && s.studyTime <= '110000'),
      );
      assert.deepEqual(
        await studies('?PatientName=D*&StudyDate=20240101-20240131&limit=101'),
        expect((s) => s.patientName.startsWith('D') && inJanuary(s)),
      );
    });

    test('date-time (DT) ranges, and keys of upper levels in lower-level searches', async () => {
      const acquired = (s: Spec) => `${s.studyDate ?? ''}${s.studyTime}`;
      const lower = '20240115110000';
      const upper = '20240301000000';
      const expected = STUDIES.filter(
        (s) => s.studyDate !== undefined && acquired(s) >= lower && acquired(s) <= upper,
      )
        .flatMap((s) =>
          s.series.flatMap((se) => [...se.instances].sort((a, b) => a - b).map((n) => `${se.uid}.${n}`)),
        )
        .sort();
      const answers = await json(`/instances?AcquisitionDateTime=${lower}-${upper}`);
      assert.deepEqual(uidsOf(answers, '00080018').sort(), expected);
      assert.ok(expected.length > 0);
      const ctSeries = await json('/series?StudyDate=20240101-20240131&Modality=CT');
      assert.deepEqual(
        uidsOf(ctSeries, '0020000E').sort(),
        STUDIES.filter((s) => s.studyDate?.startsWith('202401'))
          .flatMap((s) => s.series.filter((se) => se.modality === 'CT').map((se) => se.uid))
          .sort(),
      );
    });

    test('UID lists, comma or backslash separated', async () => {
      assert.deepEqual(
        await studies('?StudyInstanceUID=1.1,1.3'),
        expect((s) => ['1.1', '1.3'].includes(s.studyUid)),
      );
      assert.deepEqual(
        await studies('?0020000D=1.1%5C1.3'),
        expect((s) => ['1.1', '1.3'].includes(s.studyUid)),
      );
      assert.deepEqual(
        await studies('?StudyInstanceUID=1.1&StudyInstanceUID=1.4'),
        expect((s) => ['1.1', '1.4'].includes(s.studyUid)),
      );
    });

    test('sequence keys by keyword path and by tag path', async () => {
      for (const key of ['ReferencedStudySequence.ReferencedSOPInstanceUID', '00081110.00081155']) {
        const answers = await json(`/studies?${key}=9.9.1`);
        assert.deepEqual(
          uidsOf(answers),
          expect((s) => s.referencedSop === '9.9.1'),
        );
        const seq = answers[0]?.['00081110'] as { Value: Json[] };
        assert.equal(seq.Value.length, 1);
        assert.deepEqual(seq.Value[0]?.['00081155']?.Value, ['9.9.1']);
        // Defaults still come with a sequence key.
        assert.deepEqual(answers[0]?.['00081190']?.Value, [`${web.base}/studies/1.1`]);
      }
    });

    test('computed attributes as keys (Modalities in Study)', async () => {
      assert.deepEqual(
        await studies('?ModalitiesInStudy=CT'),
        expect((s) => s.series.some((se) => se.modality === 'CT')),
      );
    });

    test('includefield: a list, repeated, by keyword or tag, and all', async () => {
      const answers = await json(
        '/studies?StudyInstanceUID=1.1&includefield=PatientAge,00100040&includefield=IssuerOfPatientID',
      );
      const a = answers[0] as Json;
      assert.deepEqual(a['00101010']?.Value, ['054Y']);
      assert.ok('00100040' in a);
      assert.deepEqual(a['00100021'], { vr: 'LO' });
      // OHIF asks for Modality (a series attribute) in study searches: not an error, nothing to return.
      const ohif = (await json('/studies?StudyInstanceUID=1.1&includefield=00081030%2C00080060'))[0] as Json;
      assert.deepEqual(ohif['00081030']?.Value, ['CT CHEST']);
      assert.equal('00080060' in ohif, false);
      const dotted = (
        await json(
          '/studies?StudyInstanceUID=1.1&includefield=ReferencedStudySequence.ReferencedSOPInstanceUID',
        )
      )[0] as Json;
      assert.equal((dotted['00081110']?.Value as Json[] | undefined)?.[0]?.['00081155']?.Value?.[0], '9.9.1');
      const all = (await json('/studies?StudyInstanceUID=1.1&includefield=all'))[0] as Json;
      assert.deepEqual(all['00101010']?.Value, ['054Y']);
      assert.ok('00081110' in all, 'study-level sequence');
      assert.ok('00201208' in all && '00081190' in all && '00080062' in all);
      assert.equal('00180015' in all, false, 'no series attribute in a study answer');
      assert.equal('00080005' in all, false);
      const keys = Object.keys(all);
      assert.deepEqual(keys, [...keys].sort());
    });

    test('fuzzy matching: case, accents and sound', async () => {
      assert.deepEqual(await studies('?PatientName=MULLER'), []);
      assert.deepEqual(await studies('?PatientName=MULLER&fuzzymatching=true'), ['1.3']);
      assert.deepEqual(await studies('?PatientName=m%C3%BCller%5Ehans&fuzzymatching=true'), ['1.3']);
      assert.deepEqual(await studies('?PatientName=Smith&fuzzymatching=true'), ['1.4']);
      assert.deepEqual(await studies('?PatientName=Smith'), []);
      assert.deepEqual(await studies('?PatientName=Mul*&fuzzymatching=true'), ['1.3']);
      assert.deepEqual(await studies('?PatientName=Müller^Hans&fuzzymatching=false'), ['1.3']);
    });

    test('limit and offset page the default order', async () => {
      const all = defaultStudyOrder(STUDIES);
      const r = await get('/studies?limit=2');
      assert.equal(r.headers.get('warning'), null, "the client's own limit is no cut");
      assert.deepEqual(uidsOf((await r.json()) as Json[]), all.slice(0, 2));
      assert.deepEqual(await studies('?limit=2&offset=2'), all.slice(2, 4));
      assert.deepEqual(await studies('?offset=5'), all.slice(5));
      assert.deepEqual(await studies('?offset=50'), []);
      assert.deepEqual(
        await studies('?PatientName=*o*&limit=1&offset=1'),
        expect((s) => /o/i.test(s.patientName)).slice(1, 2),
      );
    });

    test('orderby: ascending, descending, several keys', async () => {
      const norm = (s: Spec) => s.patientName.toUpperCase();
      const idx = (s: Spec) => STUDIES.indexOf(s);
      const byName = [...STUDIES]
        .sort((a, b) => (norm(a) < norm(b) ? -1 : norm(a) > norm(b) ? 1 : idx(b) - idx(a)))
        .map((s) => s.studyUid);
      assert.deepEqual(await studies('?orderby=PatientName'), byName);
      const byAccessionDesc = [...STUDIES]
        .sort((a, b) => (a.accession < b.accession ? 1 : -1))
        .map((s) => s.studyUid);
      assert.deepEqual(await studies('?orderby=-AccessionNumber'), byAccessionDesc);
      const byIdThenDate = [...STUDIES]
        .sort(
          (a, b) =>
            a.patientId.localeCompare(b.patientId) ||
            (a.studyDate ?? '').localeCompare(b.studyDate ?? '') ||
            idx(b) - idx(a),
        )
        .map((s) => s.studyUid);
      assert.deepEqual(await studies('?orderby=PatientID,StudyDate'), byIdThenDate);
      const series = await json('/series?orderby=-SeriesNumber,SeriesInstanceUID&Modality=CT');
      const expected = STUDIES.flatMap((s) => s.series)
        .filter((se) => se.modality === 'CT')
        .sort((a, b) => b.number - a.number || a.uid.localeCompare(b.uid))
        .map((se) => se.uid);
      assert.deepEqual(uidsOf(series, '0020000E'), expected);
    });

    test('series and instance searches with their Retrieve URLs and scopes', async () => {
      const series = await json('/studies/1.1/series');
      assert.deepEqual(uidsOf(series, '0020000E'), ['1.1.1', '1.1.2']);
      assert.equal(first(series[0] as Json, '00081190'), `${web.base}/studies/1.1/series/1.1.1`);
      assert.deepEqual((series[0] as Json)['00201209']?.Value, [2]);
      assert.equal(
        '00100010' in (series[0] as Json),
        false,
        'a study-scoped series search has no study attributes',
      );
      const allSeries = await json('/series?Modality=CT');
      assert.ok(allSeries.every((a) => '00100010' in a && '00080020' in a));
      assert.deepEqual(
        [...uidsOf(allSeries, '0020000E')].sort(),
        STUDIES.flatMap((s) => s.series)
          .filter((se) => se.modality === 'CT')
          .map((se) => se.uid)
          .sort(),
      );
      const instances = await json('/studies/1.1/series/1.1.1/instances');
      assert.deepEqual(uidsOf(instances, '00080018'), ['1.1.1.1', '1.1.1.2']);
      assert.deepEqual((instances[0] as Json)['00200013']?.Value, [1]);
      assert.equal(
        first(instances[0] as Json, '00081190'),
        `${web.base}/studies/1.1/series/1.1.1/instances/1.1.1.1`,
      );
      assert.deepEqual((instances[0] as Json)['00280010']?.Value, [2]);
      assert.deepEqual(uidsOf(await json('/studies/1.1/instances'), '00080018'), [
        '1.1.1.1',
        '1.1.2.1',
        '1.1.1.2',
      ]);
      assert.deepEqual(uidsOf(await json('/instances?SOPInstanceUID=1.4.1.2'), '00080018'), ['1.4.1.2']);
      assert.deepEqual(await json('/studies/9.9.9/series'), []);
      assert.deepEqual(uidsOf(await json('/instances?PatientID=P3&InstanceNumber=2'), '00080018'), [
        '1.4.1.2',
      ]);
    });

    test('XML: one Native DICOM Model part per answer', async () => {
      const r = await get('/studies?PatientID=P1', {
        accept: 'multipart/related; type="application/dicom+xml"',
      });
      assert.equal(r.status, 200);
      const type = r.headers.get('content-type') ?? '';
      const boundary = /boundary=([^;]+)/.exec(type)?.[1] as string;
      assert.match(type, /^multipart\/related; type="application\/dicom\+xml"/);
      const body = await r.text();
      const parts = body.split(`--${boundary}`).slice(1, -1);
      assert.equal(parts.length, 2);
      assert.match(parts[0] as string, /Content-Type: application\/dicom\+xml\r\n\r\n<\?xml/);
      assert.match(
        parts[0] as string,
        /<DicomAttribute tag="0020000D" vr="UI" keyword="StudyInstanceUID"><Value number="1">1.2<\/Value>/,
      );
      assert.match(
        parts[0] as string,
        /<PersonName number="1"><Alphabetic><FamilyName>Doe<\/FamilyName><GivenName>John<\/GivenName><\/Alphabetic><\/PersonName>/,
      );
      assert.ok(body.endsWith(`--${boundary}--\r\n`));
      const none = await get('/studies?PatientID=NONE', {
        accept: 'multipart/related; type=application/dicom+xml',
      });
      assert.equal(none.status, 200);
      const b = /boundary=([^;]+)/.exec(none.headers.get('content-type') ?? '')?.[1] as string;
      assert.equal(await none.text(), `--${b}--\r\n`);
    });

    test('media types: application/json, */*, 406', async () => {
      const r = await get('/studies?PatientID=P2', { accept: 'application/json' });
      assert.equal(r.headers.get('content-type'), 'application/json');
      assert.deepEqual(uidsOf((await r.json()) as Json[]), ['1.3']);
      const any = await get('/studies?PatientID=P2', { accept: '*/*' });
      assert.match(any.headers.get('content-type') ?? '', /^application\/dicom\+json/);
      await any.arrayBuffer();
      for (const q of ['accept=application/dicom+json', 'accept=application%2Fdicom%2Bjson']) {
        const viaQuery = await get(`/studies?PatientID=P2&${q}`, { accept: 'image/png' });
        assert.equal(viaQuery.status, 200, q);
        assert.match(viaQuery.headers.get('content-type') ?? '', /^application\/dicom\+json/);
        await viaQuery.arrayBuffer();
      }
      const no = await get('/studies', { accept: 'image/png' });
      assert.equal(no.status, 406);
      await no.arrayBuffer();
    });

    test('non-ASCII names come back as Unicode', async () => {
      const a = (await json('/studies?PatientID=P2'))[0] as Json;
      assert.deepEqual(a['00100010']?.Value, [{ Alphabetic: 'Müller^Hans' }]);
      assert.deepEqual(await studies('?PatientName=M%C3%BCller*'), ['1.3']);
    });

    test('bad requests: 400 with a reason naming the problem', async () => {
      const cases: Array<[string, RegExp]> = [
        ['/studies?Foo=1', /Foo/],
        ['/studies?limit=-1', /limit/],
        ['/studies?limit=abc', /limit/],
        ['/studies?limit=0', /limit/],
        ['/studies?offset=-3', /offset/],
        ['/studies?limit=10&limit=20', /limit/],
        ['/studies?orderby=PatientAge', /orderby/],
        ['/studies?orderby=Nonsense', /orderby/],
        ['/studies?fuzzymatching=yes', /fuzzymatching/],
        ['/studies?includefield=NoSuchAttribute', /includefield/],
        ['/studies?StudyDate=2024x', /StudyDate/],
        ['/studies?PatientName=%ZZ', /percent/],
        ['/studies?SOPInstanceUID=1.2', /lower level/],
        ['/studies?AccessionNumber=A&AccessionNumber=B', /twice/],
        ['/studies?PatientName=A*&00100010=B*', /twice/],
        ['/studies?ReferencedStudySequence=1.2', /sequence/],
        ['/studies/1.1/series?StudyInstanceUID=1.2', /path/],
        ['/studies/abc/series', /study/],
        ['/studies/1.1/series/1..2/instances', /series/],
      ];
      for (const [path, reason] of cases) {
        const r = await get(path);
        assert.equal(r.status, 400, path);
        const body = (await r.json()) as { code: string; reason: string };
        assert.match(body.reason, reason, `${path}: ${body.reason}`);
        assert.match(body.code, /^ERR_HTTP_/);
      }
      assert.ok(web.logLines.some((l) => l['status'] === 400 && String(l['url']).includes('Foo=1')));
    });

    test('one query event per search', async () => {
      events.length = 0;
      await json('/studies?PatientID=P1');
      await new Promise((r) => setTimeout(r, 20));
      const q = events.filter((e) => e.type === 'query');
      assert.equal(q.length, 1);
      assert.deepEqual(
        {
          service: q[0]?.type === 'query' ? q[0].service : '',
          level: q[0]?.type === 'query' ? q[0].level : '',
          matches: q[0]?.type === 'query' ? q[0].matches : -1,
        },
        { service: 'QIDO-RS', level: 'STUDY', matches: 2 },
      );
    });

    test('the server maximum cuts at 1000 answers with a Warning, offset reaches the rest', async () => {
      const many = 1003;
      await Promise.all(
        Array.from({ length: many }, (_, i) => {
          const ds = makeDataSet({
            patientId: 'MANY',
            studyUid: '2.1',
            seriesUid: '2.1.1',
            sopUid: `2.1.1.${i + 1}`,
            instanceNumber: i + 1,
          });
          const e = entryOf(ds);
          return web.archive.index.insertInstance(e.record, e.headers);
        }),
      );
      const r = await get('/studies/2.1/series/2.1.1/instances');
      assert.equal(r.status, 200);
      assert.match(
        r.headers.get('warning') ?? '',
        /^299 127\.0\.0\.1:\d+: "The number of results exceeded the maximum supported by the server\. Additional results can be requested\."$/,
      );
      const answers = (await r.json()) as Json[];
      assert.equal(answers.length, 1000);
      assert.deepEqual(
        answers.slice(0, 3).map((a) => first(a, '00200013')),
        [1, 2, 3],
      );
      const rest = await get('/studies/2.1/series/2.1.1/instances?offset=1000');
      assert.equal(rest.headers.get('warning'), null);
      assert.deepEqual(
        ((await rest.json()) as Json[]).map((a) => first(a, '00200013')),
        [1001, 1002, 1003],
      );
      const capped = await get('/studies/2.1/instances?limit=5000&PatientName=D*');
      assert.ok((capped.headers.get('warning') ?? '').startsWith('299 '));
      assert.equal(((await capped.json()) as Json[]).length, 1000);
    });
  });
}
