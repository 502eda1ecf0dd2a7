import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DataSet } from '../../src/dicom/dataset.js';
import { TAG, tagForKeyword } from '../../src/dicom/dictionary.js';
import {
  buildResponse,
  combinedDateTimeRanges,
  compileQuery,
  dateTimePairs,
  type MatchCondition,
  type MatchOptions,
  matchDataSet,
  normalizePersonName,
  parseCondition,
  toSqlLike,
} from '../../src/dicom/matching.js';
import type { VR } from '../../src/dicom/vr.js';

type Value = string | readonly string[] | readonly DataSet[];

const UTF8 = ['ISO_IR 192'];

function tagOf(keyword: string): number {
  const tag = tagForKeyword(keyword);
  assert.ok(tag !== undefined, `no keyword ${keyword}`);
  return tag;
}

function isItems(v: Value): v is readonly DataSet[] {
  return Array.isArray(v) && v.length > 0 && v[0] instanceof DataSet;
}

/** A data set from keyword: value pairs; text is encoded in `charsets` (Specific Character Set set first). */
function make(values: Record<string, Value>, charsets?: readonly string[]): DataSet {
  const ds = new DataSet();
  if (charsets !== undefined) ds.setString(TAG.SpecificCharacterSet, charsets);
  for (const [keyword, v] of Object.entries(values)) {
    const tag = tagOf(keyword);
    if (isItems(v)) ds.setSequence(tag, [...v]);
    else if (Array.isArray(v) && v.length === 0 && keyword.endsWith('Sequence')) ds.setSequence(tag, []);
    else ds.setString(tag, v as string | readonly string[]);
  }
  return ds;
}

/** Matches a query against a candidate, both in UTF-8 so that any text can be written. */
function matches(
  query: Record<string, Value>,
  candidate: Record<string, Value>,
  options?: MatchOptions,
): boolean {
  return matchDataSet(make(query, UTF8), make(candidate, UTF8), options);
}

/** The condition of a single key given as text (split at '\' as the element would be). */
function cond(vr: VR, text: string, options?: MatchOptions, keyword = 'PatientID'): MatchCondition {
  return parseCondition(tagOf(keyword), vr, text === '' ? [] : text.split('\\'), options);
}

describe('parseCondition: matching types by VR (PS3.4 C.2.2.2)', () => {
  it('zero length and "*" are universal (C.2.2.2.3, C.2.2.2.4 note 1)', () => {
    for (const vr of ['LO', 'PN', 'CS', 'DA', 'TM', 'DT', 'UI', 'IS'] as const) {
      assert.equal(cond(vr, '').kind, 'universal', vr);
      assert.equal(cond(vr, '*').kind, 'universal', vr);
    }
    assert.equal(cond('LO', '***').kind, 'universal');
    assert.equal(cond('PN', '^').kind, 'universal');
    assert.equal(cond('CS', 'CT\\*').kind, 'universal');
  });

  it('"" (two QUOTATION MARKs) is Empty Value Matching (C.2.2.2.7)', () => {
    assert.deepEqual(cond('LO', '""'), { kind: 'empty', tag: TAG.PatientID, vr: 'LO' });
    assert.equal(cond('DA', '""').kind, 'empty');
  });

  it('a value without wild cards is Single Value Matching (C.2.2.2.1)', () => {
    assert.deepEqual(cond('LO', 'ABC123'), { kind: 'single', tag: TAG.PatientID, vr: 'LO', value: 'ABC123' });
    assert.equal(cond('CS', 'CT').kind, 'single');
    assert.equal(cond('AS', '045Y').kind, 'single');
    assert.equal(cond('UI', '1.2.3').kind, 'single');
  });

  it('"*" and "?" are wild cards on AE, CS, LO, LT, PN, SH, ST, UC, UR, UT only (C.2.2.2.4)', () => {
    for (const vr of ['AE', 'CS', 'LO', 'LT', 'PN', 'SH', 'ST', 'UC', 'UR', 'UT'] as const) {
      assert.equal(cond(vr, 'A*').kind, 'wildcard', vr);
      assert.equal(cond(vr, 'A?').kind, 'wildcard', vr);
    }
    // Elsewhere they are characters: a literal UID (never matches a valid one), invalid dates and numbers.
    assert.deepEqual(cond('UI', '1.2.*'), { kind: 'single', tag: TAG.PatientID, vr: 'UI', value: '1.2.*' });
    assert.equal(cond('AS', '04?Y').kind, 'single');
    assert.equal(cond('DA', '2024*').kind, 'invalid');
    assert.equal(cond('TM', '10?0').kind, 'invalid');
    assert.equal(cond('IS', '1*').kind, 'invalid');
  });

  it('several UIDs are List of UID Matching (C.2.2.2.2)', () => {
    assert.deepEqual(cond('UI', '1.2.3\\1.2.4'), {
      kind: 'list',
      tag: TAG.PatientID,
      vr: 'UI',
      values: ['1.2.3', '1.2.4'],
    });
  });

  it('several values of another VR match any of them, or all with Multiple Value Matching (C.2.2.2.8)', () => {
    const any = cond('CS', 'CT\\MR', {}, 'ModalitiesInStudy');
    assert.equal(any.kind === 'multiple' && any.mode, 'any');
    const all = cond('CS', 'CT\\MR', { multipleValueMatching: true }, 'ModalitiesInStudy');
    assert.equal(all.kind === 'multiple' && all.mode, 'all');
    // Modality has VM 1: C.2.2.2.8 applies to attributes with a VM greater than 1 only.
    const single = cond('CS', 'CT\\MR', { multipleValueMatching: true }, 'Modality');
    assert.equal(single.kind === 'multiple' && single.mode, 'any');
  });

  it('DA, TM and DT ranges "a-b", "-b", "a-" (C.2.2.2.5)', () => {
    const r = cond('DA', '20240101-20240131');
    assert.ok(r.kind === 'range');
    assert.equal(r.lower?.local, '20240101');
    assert.equal(r.upper?.local, '20240131');
    const before = cond('TM', '-1030');
    assert.ok(before.kind === 'range');
    assert.equal(before.lower, undefined);
    assert.equal(before.upper?.local, '103000.000000');
    const after = cond('DT', '2017-');
    assert.ok(after.kind === 'range');
    assert.equal(after.lower?.local, '20170101000000.000000');
    assert.equal(after.upper, undefined);
    // A DT with a negative UTC offset is one value, not a range.
    const offset = cond('DT', '20240101120000-0500');
    assert.ok(offset.kind === 'single');
    assert.equal(offset.instant?.utc, '20240101170000.000000');
    const both = cond('DT', '20240101120000-0500-20240102');
    assert.ok(both.kind === 'range');
    assert.equal(both.lower?.utc, '20240101170000.000000');
    assert.equal(both.upper?.local, '20240102000000.000000');
  });

  it('malformed dates, times and numbers are invalid and reported as problems', () => {
    for (const [vr, text] of [
      ['DA', '20241301'],
      ['DA', '2024-01-01'],
      ['TM', '2500'],
      ['TM', '1260'],
      ['DT', '2017224120224'],
      ['DS', 'abc'],
    ] as const) {
      assert.equal(cond(vr, text).kind, 'invalid', `${vr} ${text}`);
    }
    const q = compileQuery(make({ StudyDate: '2024-13-01', PatientID: 'X' }));
    assert.deepEqual(
      q.problems.map((p) => p.tag),
      [TAG.StudyDate],
    );
    assert.equal(q.matches(make({ StudyDate: '20240101', PatientID: 'X' })), false);
  });

  it('a sequence key with an item is Sequence Matching; an empty item or one of universal keys is universal (C.2.2.2.6)', () => {
    const tag = TAG.ScheduledProcedureStepSequence;
    assert.equal(parseCondition(tag, 'SQ', []).kind, 'universal');
    assert.equal(parseCondition(tag, 'SQ', [new DataSet()]).kind, 'universal');
    assert.equal(
      parseCondition(tag, 'SQ', [make({ Modality: '', ScheduledStationAETitle: '' })]).kind,
      'universal',
    );
    const c = parseCondition(tag, 'SQ', [make({ Modality: 'CT', ScheduledStationAETitle: '' })]);
    assert.ok(c.kind === 'sequence');
    assert.deepEqual(
      c.conditions.map((x) => x.kind),
      ['single', 'universal'],
    );
  });

  it('Specific Character Set, Query/Retrieve Level and group lengths are not matching keys', () => {
    const q = compileQuery(make({ QueryRetrieveLevel: 'STUDY', PatientID: 'P1' }, ['ISO_IR 100']));
    assert.deepEqual(
      q.conditions.map((c) => c.tag),
      [TAG.PatientID],
    );
    assert.equal(q.matches(make({ PatientID: 'P1' })), true);
  });
});

describe('Single Value Matching', () => {
  it('is exact and case-sensitive except for PN (C.2.2.2.1)', () => {
    assert.equal(matches({ PatientID: 'abc' }, { PatientID: 'abc' }), true);
    assert.equal(matches({ PatientID: 'abc' }, { PatientID: 'ABC' }), false);
    assert.equal(matches({ PatientID: 'abc' }, { PatientID: 'abcd' }), false);
    assert.equal(matches({ Modality: 'CT' }, { Modality: 'ct' }), false);
    // Padding is not significant: leading spaces of LO, trailing spaces everywhere.
    assert.equal(matches({ PatientID: 'abc' }, { PatientID: '  abc ' }), true);
  });

  it('a candidate without the attribute, or with it empty, does not match a key with a value', () => {
    assert.equal(matches({ PatientID: 'abc' }, {}), false);
    assert.equal(matches({ PatientID: 'abc' }, { PatientID: '' }), false);
    // But it matches universally.
    assert.equal(matches({ PatientID: '' }, {}), true);
    assert.equal(matches({ PatientID: '*' }, {}), true);
  });

  it('compares numbers as numbers (IS, DS, binary VRs)', () => {
    assert.equal(matches({ SeriesNumber: '5' }, { SeriesNumber: '005' }), true);
    assert.equal(matches({ SeriesNumber: '5' }, { SeriesNumber: '6' }), false);
    const q = new DataSet().setNumbers(TAG.Rows, 512);
    assert.equal(matchDataSet(q, new DataSet().setNumbers(TAG.Rows, 512)), true);
    assert.equal(matchDataSet(q, new DataSet().setNumbers(TAG.Rows, 256)), false);
    const fl = new DataSet().setNumbers(TAG.SliceThickness, 0.1, 'FL');
    assert.equal(matchDataSet(new DataSet().setString(TAG.SliceThickness, '0.1'), fl), true);
  });

  it('a single date or time matches the same instant whatever its precision (as DCMTK)', () => {
    assert.equal(matches({ StudyTime: '1030' }, { StudyTime: '103000.000' }), true);
    assert.equal(matches({ StudyTime: '1030' }, { StudyTime: '103015' }), false);
    assert.equal(matches({ StudyDate: '19870802' }, { StudyDate: '1987.08.02' }), true);
    assert.equal(matches({ StudyTime: '112317.123456' }, { StudyTime: '11:23:17.123456' }), true);
  });
});

describe('List of UID Matching (C.2.2.2.2)', () => {
  it('matches any UID of the list (DCMTK tdcmatch cases)', () => {
    const q = { StudyInstanceUID: ['456.789.10', '123.456.789.10', '456.123.789.10'] };
    assert.equal(matches(q, { StudyInstanceUID: '123.456.789.10' }), true);
    assert.equal(matches({ StudyInstanceUID: '456.789.10' }, { StudyInstanceUID: '123.456.789.10' }), false);
    assert.equal(
      matches({ StudyInstanceUID: ['456.789.10', '123.456.79.10'] }, { StudyInstanceUID: '123.456.789.10' }),
      false,
    );
  });
});

describe('Wild Card Matching (C.2.2.2.4)', () => {
  const w = (pattern: string, text: string) =>
    matches({ StudyDescription: pattern }, { StudyDescription: text });

  it('"*" matches any sequence (also none), "?" exactly one character (DCMTK tdcmatch cases)', () => {
    assert.equal(w('*', 'hello world'), true);
    assert.equal(w('?', 'hello world'), false);
    assert.equal(w('?*', 'hello world'), true);
    assert.equal(w('?ell*??l?', 'hello world'), true);
    assert.equal(w('?ell***?*?l??', 'hello world'), false);
    assert.equal(w('?ell*?**?l?*', 'hello world'), true);
    assert.equal(w('hello*', 'hello'), true);
    assert.equal(w('*world', 'hello world'), true);
    assert.equal(w('h*d', 'hello world'), true);
    assert.equal(w('h*x', 'hello world'), false);
  });

  it('is case-sensitive and treats regular expression characters literally', () => {
    assert.equal(w('HELLO*', 'hello world'), false);
    assert.equal(w('a.c*', 'abc'), false);
    assert.equal(w('a.c*', 'a.cd'), true);
    assert.equal(w('(x)+[y]*', '(x)+[y]z'), true);
  });

  it('counts characters, not bytes or UTF-16 code units', () => {
    assert.equal(w('山?', '山田'), true);
    assert.equal(w('山??', '山田'), false);
    assert.equal(w('?🙂', 'a🙂'), true);
  });

  it('spans line breaks in LT, ST and UT', () => {
    const q = new DataSet().setString(TAG.PatientComments, 'first*second');
    const c = new DataSet().setString(TAG.PatientComments, 'first line\r\nsecond');
    assert.equal(matchDataSet(q, c), true);
  });

  it('matches when any value of a multi-valued candidate matches (C.2.2.3)', () => {
    const item = (aets: string[]) => make({ ScheduledStationAETitle: aets });
    assert.equal(matchDataSet(make({ ScheduledStationAETitle: 'CT2' }), item(['CT1', 'CT2'])), true);
    assert.equal(matchDataSet(make({ ScheduledStationAETitle: 'CT*' }), item(['MR1', 'CT2'])), true);
    assert.equal(matchDataSet(make({ ScheduledStationAETitle: 'CT3' }), item(['CT1', 'CT2'])), false);
  });
});

describe('Person Name matching', () => {
  it('is case-insensitive only with the option', () => {
    assert.equal(matches({ PatientName: 'DOE^JOHN' }, { PatientName: 'Doe^John' }), false);
    assert.equal(
      matches({ PatientName: 'DOE^JOHN' }, { PatientName: 'Doe^John' }, { caseInsensitivePN: true }),
      true,
    );
    assert.equal(
      matches({ PatientName: 'doe*' }, { PatientName: 'Doe^John' }, { caseInsensitivePN: true }),
      true,
    );
    assert.equal(matches({ PatientName: 'doe*' }, { PatientName: 'Doe^John' }), false);
  });

  it('compares components: padding and trailing empty components do not count', () => {
    assert.equal(matches({ PatientName: 'DOE^JOHN' }, { PatientName: 'DOE^JOHN^^^' }), true);
    assert.equal(matches({ PatientName: 'DOE^JOHN' }, { PatientName: 'DOE ^ JOHN' }), true);
    assert.equal(matches({ PatientName: 'DOE^JOHN' }, { PatientName: 'DOE^JOHN^M' }), false);
    assert.equal(matches({ PatientName: 'DOE' }, { PatientName: 'DOE^JOHN' }), false);
  });

  it('lets a trailing "*" cover the components after it; "^JOHN" without wild cards is literal (as dcmqrscp)', () => {
    const ci = { caseInsensitivePN: true };
    assert.equal(matches({ PatientName: 'DOE*' }, { PatientName: 'Doe^John^Michael' }, ci), true);
    assert.equal(matches({ PatientName: 'DOE^J*' }, { PatientName: 'Doe^John^Michael' }, ci), true);
    assert.equal(matches({ PatientName: 'DOE^J*' }, { PatientName: 'Doe^Mary' }, ci), false);
    assert.equal(matches({ PatientName: '*^JOHN' }, { PatientName: 'Doe^John' }, ci), true);
    assert.equal(matches({ PatientName: '*^JOHN' }, { PatientName: 'Doe^Johnny' }, ci), false);
    assert.equal(matches({ PatientName: '^JOHN' }, { PatientName: 'Doe^John' }, ci), false);
    assert.equal(matches({ PatientName: '^JOHN' }, { PatientName: '^John' }, ci), true);
    assert.equal(matches({ PatientName: 'D?E^JOHN' }, { PatientName: 'Doe^John' }, ci), true);
  });

  it('matches each component group the key gives, leaving the others open', () => {
    const name = 'Yamada^Tarou=山田^太郎=やまだ^たろう';
    assert.equal(matches({ PatientName: 'Yamada^Tarou' }, { PatientName: name }), true);
    assert.equal(matches({ PatientName: '=山田^太郎' }, { PatientName: name }), true);
    assert.equal(matches({ PatientName: '==やまだ^たろう' }, { PatientName: name }), true);
    assert.equal(matches({ PatientName: '=山田^花子' }, { PatientName: name }), false);
    assert.equal(matches({ PatientName: '=山田*' }, { PatientName: name }), true);
    assert.equal(matches({ PatientName: 'Yamada^Tarou=山田^太郎' }, { PatientName: 'Yamada^Tarou' }), false);
  });

  it('normalizePersonName gives the index form', () => {
    assert.equal(normalizePersonName('Smith^John'), 'SMITH^JOHN^^^');
    assert.equal(
      normalizePersonName('Yamada^Tarou=山田^太郎=やまだ^たろう'),
      'YAMADA^TAROU^^^=山田^太郎^^^=やまだ^たろう^^^',
    );
    assert.equal(normalizePersonName('=山田^太郎'), '=山田^太郎^^^');
    assert.equal(normalizePersonName(' Doe ^ John ^^^ =='), 'DOE^JOHN^^^');
    assert.equal(normalizePersonName('a^b^c^d^e^f'), 'A^B^C^D^E F');
    assert.equal(normalizePersonName('^^'), null);
    assert.equal(normalizePersonName(null), null);
  });
});

describe('Range Matching (C.2.2.2.5)', () => {
  const da = (q: string, c: string) => matches({ StudyDate: q }, { StudyDate: c });
  const tm = (q: string, c: string) => matches({ StudyTime: q }, { StudyTime: c });
  const dt = (q: string, c: string) => matches({ AcquisitionDateTime: q }, { AcquisitionDateTime: c });

  it('dates: inclusive bounds, open-ended either side (DCMTK tdcmatch cases)', () => {
    assert.equal(da('-20000101', '20000101'), true);
    assert.equal(da('-20000101', '19990531'), true);
    assert.equal(da('-20000101', '20010101'), false);
    assert.equal(da('20000101-', '20010101'), true);
    assert.equal(da('20000101-', '19991231'), false);
    assert.equal(da('19990101-20000305', '20000101'), true);
    assert.equal(da('19990101-20000305', '19980107'), false);
    assert.equal(da('19990101-20000305', '20000306'), false);
    assert.equal(da('19990101-20000305', '20000305'), true);
    assert.equal(da('-', '20000101'), true);
    assert.equal(da('19990101-20000305', 'garbage'), false);
  });

  it('times: any precision, a bound of reduced precision is its first instant (DCMTK tdcmatch cases)', () => {
    assert.equal(tm('-12', '120000'), true);
    assert.equal(tm('-12', '113059.654321'), true);
    assert.equal(tm('-12', '120000.000001'), false);
    assert.equal(tm('1200-', '120000.000000'), true);
    assert.equal(tm('12-', '115959.999999'), false);
    assert.equal(tm('11-121428.234763', '12'), true);
    assert.equal(tm('11-121428.234763', '105959.999999'), false);
    assert.equal(tm('11-121428.234763', '121428.234764'), false);
    assert.equal(tm('0800-1200', '10:15'), true);
  });

  it('times: a range across midnight is not supported and matches nothing', () => {
    assert.equal(tm('2200-0200', '2300'), false);
    assert.equal(tm('2200-0200', '0100'), false);
  });

  it('date-times: the UTC offset is taken into account (DCMTK tdcmatch cases)', () => {
    assert.equal(dt('20170224113224.000000+0030', '20170224120224+0100'), true);
    assert.equal(dt('-2000', '20000101000000.000000'), true);
    assert.equal(dt('-2000', '19990531132417.231194'), true);
    assert.equal(dt('-2000', '20000102000000.000001'), false);
    assert.equal(dt('200001-', '2001010100'), true);
    assert.equal(dt('2000-', '19991231235959.999999'), false);
    assert.equal(dt('1999-20000305173259.123456', '1998010712+0430'), false);
    assert.equal(dt('1999-20000305173259.123456', '20000306'), false);
    assert.equal(dt('20240101120000+0100-20240101130000+0100', '20240101110000+0000'), true);
    assert.equal(dt('20240101120000+0100-20240101130000+0100', '20240101130000+0000'), false);
  });
});

describe('combined date-time matching (C.2.2.2.5)', () => {
  const on = { combinedDateTime: true };

  it('lists the date/time pairs of the dictionary', () => {
    const { byDate, byTime } = dateTimePairs();
    assert.equal(byDate.get(TAG.StudyDate), TAG.StudyTime);
    assert.equal(byDate.get(TAG.SeriesDate), TAG.SeriesTime);
    assert.equal(byDate.get(TAG.ScheduledProcedureStepStartDate), TAG.ScheduledProcedureStepStartTime);
    assert.equal(byDate.get(TAG.PerformedProcedureStepStartDate), TAG.PerformedProcedureStepStartTime);
    assert.equal(byDate.get(TAG.DateOfLastCalibration), TAG.TimeOfLastCalibration);
    assert.equal(byTime.get(TAG.StudyTime), TAG.StudyDate);
  });

  it("the standard's example: 20060705-20060707 with 1000-1800 is one period, not three", () => {
    const q = { StudyDate: '20060705-20060707', StudyTime: '1000-1800' };
    const ranges = combinedDateTimeRanges(make(q));
    assert.equal(ranges.length, 1);
    assert.equal(ranges[0]?.lower?.local, '20060705100000.000000');
    assert.equal(ranges[0]?.upper?.local, '20060707180000.000000');
    assert.equal(matches(q, { StudyDate: '20060706', StudyTime: '0800' }, on), true);
    assert.equal(matches(q, { StudyDate: '20060706', StudyTime: '0800' }), false);
    assert.equal(matches(q, { StudyDate: '20060705', StudyTime: '0900' }, on), false);
    assert.equal(matches(q, { StudyDate: '20060707', StudyTime: '1800' }, on), true);
    assert.equal(matches(q, { StudyDate: '20060707', StudyTime: '180001' }, on), false);
  });

  it('a range across midnight', () => {
    const q = { StudyDate: '20240101-20240102', StudyTime: '2200-0200' };
    assert.equal(matches(q, { StudyDate: '20240101', StudyTime: '233000' }, on), true);
    assert.equal(matches(q, { StudyDate: '20240102', StudyTime: '013000' }, on), true);
    assert.equal(matches(q, { StudyDate: '20240102', StudyTime: '030000' }, on), false);
    assert.equal(matches(q, { StudyDate: '20240101', StudyTime: '210000' }, on), false);
    // A candidate without a time is at midnight.
    assert.equal(matches(q, { StudyDate: '20240102' }, on), true);
    // Attribute by attribute (without the option) nothing falls in 22:00-02:00.
    assert.equal(matches(q, { StudyDate: '20240101', StudyTime: '233000' }), false);
  });

  it('open-ended on the same side', () => {
    const q = { StudyDate: '20240101-', StudyTime: '1200-' };
    assert.equal(matches(q, { StudyDate: '20240101', StudyTime: '1100' }, on), false);
    assert.equal(matches(q, { StudyDate: '20240102', StudyTime: '0100' }, on), true);
    const before = { StudyDate: '-20240101', StudyTime: '-1200' };
    assert.equal(matches(before, { StudyDate: '20231231', StudyTime: '2300' }, on), true);
    assert.equal(matches(before, { StudyDate: '20240101', StudyTime: '1300' }, on), false);
  });

  it('keys of different forms are matched attribute by attribute', () => {
    assert.equal(combinedDateTimeRanges(make({ StudyDate: '20240101', StudyTime: '1000-1200' })).length, 0);
    assert.equal(combinedDateTimeRanges(make({ StudyDate: '20240101-', StudyTime: '-1200' })).length, 0);
    assert.equal(combinedDateTimeRanges(make({ StudyDate: '20240101-20240102' })).length, 0);
    const q = { StudyDate: '20240101', StudyTime: '1000-1200' };
    assert.equal(matches(q, { StudyDate: '20240101', StudyTime: '1100' }, on), true);
    assert.equal(matches(q, { StudyDate: '20240101', StudyTime: '1300' }, on), false);
  });
});

describe('Sequence Matching (C.2.2.2.6, K.6)', () => {
  const sps = (values: Record<string, Value>) => make(values);
  const worklistItem = make({
    PatientName: 'Doe^John',
    ScheduledProcedureStepSequence: [
      sps({
        ScheduledStationAETitle: ['MR1'],
        Modality: 'MR',
        ScheduledProcedureStepStartDate: '20240101',
        ScheduledProcedureStepStartTime: '0900',
      }),
      sps({
        ScheduledStationAETitle: ['CT1', 'CT2'],
        Modality: 'CT',
        ScheduledProcedureStepStartDate: '20240101',
        ScheduledProcedureStepStartTime: '2330',
        ScheduledProtocolCodeSequence: [
          make({ CodeValue: 'P1', CodingSchemeDesignator: 'L' }),
          make({ CodeValue: 'P2', CodingSchemeDesignator: 'L' }),
        ],
      }),
    ],
  });
  const query = (item: Record<string, Value>) => make({ ScheduledProcedureStepSequence: [make(item)] });

  it('matches when one candidate item satisfies every key of the query item', () => {
    assert.equal(matchDataSet(query({ Modality: 'CT', ScheduledStationAETitle: 'CT2' }), worklistItem), true);
    assert.equal(
      matchDataSet(query({ Modality: 'MR', ScheduledStationAETitle: 'CT2' }), worklistItem),
      false,
    );
    assert.equal(matchDataSet(query({ ScheduledStationAETitle: 'CT*' }), worklistItem), true);
  });

  it('matches two levels deep', () => {
    const q = (code: string) =>
      query({ Modality: 'CT', ScheduledProtocolCodeSequence: [make({ CodeValue: code })] });
    assert.equal(matchDataSet(q('P2'), worklistItem), true);
    assert.equal(matchDataSet(q('P3'), worklistItem), false);
    // P1 is under the CT step, not the MR one.
    const mr = query({ Modality: 'MR', ScheduledProtocolCodeSequence: [make({ CodeValue: 'P1' })] });
    assert.equal(matchDataSet(mr, worklistItem), false);
  });

  it('matches date and time inside an item, combined across midnight', () => {
    const q = query({
      ScheduledProcedureStepStartDate: '20240101-20240102',
      ScheduledProcedureStepStartTime: '2200-0200',
    });
    assert.equal(matchDataSet(q, worklistItem, { combinedDateTime: true }), true);
    assert.equal(matchDataSet(q, worklistItem), false);
  });

  it('an empty item, or one asking only for return keys, matches entities without the sequence too', () => {
    const noSteps = make({ PatientName: 'Doe^Jane' });
    assert.equal(matchDataSet(make({ ScheduledProcedureStepSequence: [new DataSet()] }), noSteps), true);
    assert.equal(matchDataSet(query({ Modality: '' }), noSteps), true);
    assert.equal(matchDataSet(query({ Modality: 'CT' }), noSteps), false);
  });
});

describe('Empty Value Matching (C.2.2.2.7)', () => {
  it('matches an absent, zero-length or blank attribute only', () => {
    assert.equal(matches({ AccessionNumber: '""' }, {}), true);
    assert.equal(matches({ AccessionNumber: '""' }, { AccessionNumber: '' }), true);
    assert.equal(matches({ AccessionNumber: '""' }, { AccessionNumber: '  ' }), true);
    assert.equal(matches({ AccessionNumber: '""' }, { AccessionNumber: 'A1' }), false);
  });
});

describe('character sets', () => {
  it('a query in ISO 2022 IR 87 matches a candidate in UTF-8 (values compared after decoding)', () => {
    const name = 'Yamada^Tarou=山田^太郎=やまだ^たろう';
    const query = make({ PatientName: name }, ['', 'ISO 2022 IR 87']);
    const candidate = make({ PatientName: name }, ['ISO_IR 192']);
    const queryBytes = query.bytes(TAG.PatientName);
    const candidateBytes = candidate.bytes(TAG.PatientName);
    assert.ok(queryBytes?.includes(0x1b), 'the query uses ISO 2022 escape sequences');
    assert.notDeepEqual(queryBytes, candidateBytes);
    assert.equal(matchDataSet(query, candidate), true);
    assert.equal(matchDataSet(make({ PatientName: '=山田*' }, ['', 'ISO 2022 IR 87']), candidate), true);
    assert.equal(matchDataSet(make({ PatientName: '=山本*' }, ['', 'ISO 2022 IR 87']), candidate), false);
    // And the other way round.
    assert.equal(matchDataSet(make({ PatientName: '=山田^太郎' }, ['ISO_IR 192']), query), true);
  });
});

describe('toSqlLike', () => {
  it('translates wild cards and escapes %, _ and the escape character', () => {
    assert.deepEqual(toSqlLike('DOE*'), { like: 'DOE%', escape: '\\' });
    assert.deepEqual(toSqlLike('D?E*'), { like: 'D_E%', escape: '\\' });
    assert.deepEqual(toSqlLike('100%_sure\\*'), { like: '100\\%\\_sure\\\\%', escape: '\\' });
    assert.deepEqual(toSqlLike('山?'), { like: '山_', escape: '\\' });
  });
});

describe('buildResponse', () => {
  it('returns every key with the candidate value, unknown ones empty, the level as asked', () => {
    const query = make({
      QueryRetrieveLevel: 'STUDY',
      PatientName: 'Doe*',
      PatientID: '',
      StudyDescription: '',
      ModalitiesInStudy: '',
    });
    const candidate = make({
      PatientName: 'Doe^John',
      PatientID: 'P1',
      ModalitiesInStudy: ['CT', 'PT'],
      StudyInstanceUID: '1.2.3',
    });
    const r = buildResponse(query, candidate);
    assert.deepEqual(
      [...r.tags()],
      [TAG.QueryRetrieveLevel, TAG.ModalitiesInStudy, TAG.StudyDescription, TAG.PatientName, TAG.PatientID],
    );
    assert.equal(r.string(TAG.QueryRetrieveLevel), 'STUDY');
    assert.equal(r.string(TAG.PatientName), 'Doe^John');
    assert.deepEqual(r.strings(TAG.ModalitiesInStudy), ['CT', 'PT']);
    assert.equal(r.get(TAG.StudyDescription)?.vr, 'LO');
    assert.equal(r.bytes(TAG.StudyDescription)?.length, 0);
    assert.equal(r.has(TAG.SpecificCharacterSet), false);
    assert.equal(r.has(TAG.StudyInstanceUID), false);
  });

  it("sets the candidate's Specific Character Set only when returned text needs it", () => {
    const query = make({ PatientName: '', PatientID: '' }, ['ISO_IR 100']);
    const japanese = make({ PatientName: 'Yamada^Tarou=山田^太郎', PatientID: 'P1' }, ['', 'ISO 2022 IR 87']);
    const r = buildResponse(query, japanese);
    assert.deepEqual(r.characterSets(), ['', 'ISO 2022 IR 87']);
    assert.equal(r.string(TAG.PatientName), 'Yamada^Tarou=山田^太郎');
    const ascii = make({ PatientName: 'Doe^John', PatientID: 'P1' }, ['ISO_IR 192']);
    assert.equal(buildResponse(query, ascii).has(TAG.SpecificCharacterSet), false);
    const nestedOnly = make({ PatientID: 'P1', OtherPatientIDsSequence: [make({ PatientID: 'Jürgen' })] }, [
      'ISO_IR 100',
    ]);
    const rq = make({ PatientID: '', OtherPatientIDsSequence: [make({ PatientID: '' })] });
    const nested = buildResponse(rq, nestedOnly);
    assert.deepEqual(nested.characterSets(), ['ISO_IR 100']);
    assert.equal(nested.sequence(TAG.OtherPatientIDsSequence)?.[0]?.string(TAG.PatientID), 'Jürgen');
  });

  it('returns the matching items of a sequence key, each reduced to the keys of the query item', () => {
    const candidate = make({
      ScheduledProcedureStepSequence: [
        make({ Modality: 'MR', ScheduledStationAETitle: 'MR1', ScheduledProcedureStepID: 'S1' }),
        make({ Modality: 'CT', ScheduledStationAETitle: ['CT1', 'CT2'], ScheduledProcedureStepID: 'S2' }),
        make({ Modality: 'CT', ScheduledStationAETitle: 'CT3', ScheduledProcedureStepID: 'S3' }),
      ],
    });
    const query = make({
      ScheduledProcedureStepSequence: [
        make({ Modality: 'CT', ScheduledStationAETitle: '', ScheduledStationName: '' }),
      ],
    });
    const items = buildResponse(query, candidate).sequence(TAG.ScheduledProcedureStepSequence);
    assert.ok(items);
    assert.equal(items.length, 2);
    assert.deepEqual(
      items.map((i) => [...i.tags()]),
      [
        [TAG.Modality, TAG.ScheduledStationAETitle, TAG.ScheduledStationName],
        [TAG.Modality, TAG.ScheduledStationAETitle, TAG.ScheduledStationName],
      ],
    );
    assert.deepEqual(items[0]?.strings(TAG.ScheduledStationAETitle), ['CT1', 'CT2']);
    assert.equal(items[1]?.string(TAG.ScheduledStationAETitle), 'CT3');
    assert.equal(items[0]?.bytes(TAG.ScheduledStationName)?.length, 0);
  });

  it('returns the whole sequence for an empty item, and an empty sequence when the candidate has none', () => {
    const step = make({ Modality: 'CT', ScheduledProcedureStepID: 'S1' });
    const candidate = make({ ScheduledProcedureStepSequence: [step] });
    const whole = buildResponse(make({ ScheduledProcedureStepSequence: [new DataSet()] }), candidate);
    const items = whole.sequence(TAG.ScheduledProcedureStepSequence);
    assert.equal(items?.length, 1);
    assert.deepEqual(items?.[0]?.strings(TAG.ScheduledProcedureStepID), ['S1']);
    assert.notEqual(items?.[0], step, 'items are copies');
    assert.equal(step.parent, candidate, "the candidate's items keep their parent");
    const none = buildResponse(make({ ScheduledProcedureStepSequence: [] }), new DataSet());
    assert.deepEqual(none.sequence(TAG.ScheduledProcedureStepSequence), []);
  });
});

describe('matchDataSet', () => {
  it('recompiles a query that changed since the last call', () => {
    const query = make({ PatientID: 'A' });
    const candidate = make({ PatientID: 'B' });
    assert.equal(matchDataSet(query, candidate), false);
    query.setString(TAG.PatientID, 'B');
    assert.equal(matchDataSet(query, candidate), true);
    assert.equal(matchDataSet(query, candidate, { skip: (t) => t === TAG.PatientID }), true);
    query.setString(TAG.PatientID, 'C');
    assert.equal(matchDataSet(query, candidate, { skip: (t) => t === TAG.PatientID }), true);
    assert.equal(matchDataSet(query, candidate), false);
  });

  it('needs every key to match', () => {
    const q = { PatientID: 'P1', Modality: 'CT', StudyDate: '20240101-', PatientName: 'DOE*' };
    const c = { PatientID: 'P1', Modality: 'CT', StudyDate: '20240305', PatientName: 'DOE^JOHN' };
    assert.equal(matches(q, c), true);
    assert.equal(matches(q, { ...c, Modality: 'MR' }), false);
    assert.equal(matches(q, { ...c, StudyDate: '20231231' }), false);
  });
});
