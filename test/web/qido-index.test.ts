/**
 * The index side of QIDO-RS (archive/index/query.ts findPageSql, findPageRows; ArchiveIndex.search)
 * on SQLite, PostgreSQL and the in-memory index: the same searches give the same pages in the
 * same order on all three, both when the SQL decides alone (one LIMIT/OFFSET statement) and
 * when the matcher decides on pages of candidates (fuzzy names: the SQL cannot narrow them).
 * The expected pages are computed from the corpus.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { mappedPlan, planQuery } from '../../src/archive/index/query.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { answerEntries, answerJson } from '../../src/web/dicomweb/qido-answer.js';
import { parseQidoSearch, type QidoScope } from '../../src/web/dicomweb/qido-params.js';
import { ALL_ENGINES, entryOf, makeDataSet, type OpenedTestIndex } from '../archive/helpers.js';

const NAMES = ['Smith^Ann', 'Smyth^Bob', 'Jones^Cy'];
const STUDIES = Array.from({ length: 40 }, (_, i) => ({
  uid: `3.${i + 1}`,
  name: NAMES[i % 3] as string,
  // Dates repeat (ties broken by the newest indexed first); every seventh study has none.
  date: i % 7 === 6 ? undefined : `2024${String((i % 5) + 1).padStart(2, '0')}15`,
  accession: `B${String((i * 13) % 40).padStart(3, '0')}`,
}));

/** The default study order of a subset: date descending (absent last), then the newest first. */
function defaultOrder(list: typeof STUDIES): string[] {
  return [...list]
    .sort((a, b) => {
      if ((a.date === undefined) !== (b.date === undefined)) return a.date === undefined ? 1 : -1;
      return (b.date ?? '').localeCompare(a.date ?? '') || STUDIES.indexOf(b) - STUDIES.indexOf(a);
    })
    .map((s) => s.uid);
}

async function page(index: OpenedTestIndex['index'], url: string, scope: QidoScope = { level: 'STUDY' }) {
  const q = parseQidoSearch(scope, url);
  const plan = planQuery(scope.level, q.identifier, {
    caseInsensitivePN: true,
    ...(q.fuzzy ? { fuzzyPN: true } : {}),
  });
  const ctx = {
    level: scope.level,
    baseUrl: 'http://h/dicom-web',
    aeTitle: 'AE',
    returnTags: q.returnTags,
    all: q.all,
  };
  const mapped = mappedPlan(plan, (m) => answerJson(answerEntries(m, ctx)), { response: false });
  const out: string[] = [];
  for await (const a of index.search(mapped, { orderBy: q.orderBy, offset: q.offset, limit: q.limit }))
    out.push(String((JSON.parse(a) as Record<string, { Value?: unknown[] }>)['0020000D']?.Value?.[0]));
  return out;
}

const SEARCHES: ReadonlyArray<readonly [string, () => string[]]> = [
  ['/studies', () => defaultOrder(STUDIES)],
  ['/studies?limit=5&offset=3', () => defaultOrder(STUDIES).slice(3, 8)],
  [
    '/studies?StudyDate=20240201-20240331&limit=4&offset=2',
    () =>
      defaultOrder(
        STUDIES.filter((s) => s.date !== undefined && s.date >= '20240201' && s.date <= '20240331'),
      ).slice(2, 6),
  ],
  [
    '/studies?PatientName=SMITH&fuzzymatching=true&limit=5&offset=7',
    () => defaultOrder(STUDIES.filter((s) => s.name !== 'Jones^Cy')).slice(7, 12),
  ],
  [
    '/studies?PatientName=JON*&fuzzymatching=true&offset=10',
    () => defaultOrder(STUDIES.filter((s) => s.name === 'Jones^Cy')).slice(10),
  ],
  [
    '/studies?orderby=AccessionNumber&limit=6',
    () =>
      [...STUDIES]
        .sort((a, b) => a.accession.localeCompare(b.accession))
        .map((s) => s.uid)
        .slice(0, 6),
  ],
  [
    '/studies?orderby=-AccessionNumber&PatientName=*o*&limit=3&offset=1',
    () =>
      [...STUDIES]
        .filter((s) => /O/.test(s.name.toUpperCase()))
        .sort((a, b) => b.accession.localeCompare(a.accession))
        .map((s) => s.uid)
        .slice(1, 4),
  ],
];

for (const engine of ALL_ENGINES) {
  describe(`QIDO-RS pages on the ${engine.name} index`, () => {
    let opened: OpenedTestIndex;
    before(async () => {
      opened = await engine.open();
      for (const [i, s] of STUDIES.entries()) {
        const ds = makeDataSet({
          patientId: `Q${i % 11}`,
          patientName: s.name,
          studyUid: s.uid,
          accession: s.accession,
          seriesUid: `${s.uid}.1`,
          sopUid: `${s.uid}.1.1`,
          ...(s.date !== undefined ? { studyDate: s.date } : {}),
        });
        if (s.date === undefined) ds.delete(TAG.StudyDate);
        const e = entryOf(ds);
        await opened.index.insertInstance(e.record, e.headers);
      }
    });
    after(async () => {
      await opened?.cleanup();
    });
    for (const [url, expected] of SEARCHES)
      test(url, async () => {
        assert.deepEqual(await page(opened.index, url), expected());
      });
  });
}
