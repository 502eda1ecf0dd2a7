/**
 * The C-FIND fast path (dicom/json-view.ts, dicom/element-encoder.ts, encodedPlan in
 * archive/index/query.ts) against the DataSet path it replaces: for every file of the pydicom
 * corpus (the charset files first of all) and random plain-ASCII documents, the same match
 * decisions and, in every transfer syntax, the same answer bytes.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { candidateOf, type EntityRow, encodedPlan, planQuery } from '../../src/archive/index/query.js';
import { DicomParseError } from '../../src/core/errors.js';
import { DataSet } from '../../src/dicom/dataset.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { encodeElements } from '../../src/dicom/element-encoder.js';
import { type DicomJsonObject, toDicomJson } from '../../src/dicom/json.js';
import { isAsciiTransparent, jsonView } from '../../src/dicom/json-view.js';
import { buildResponse } from '../../src/dicom/matching.js';
import { parseDicom } from '../../src/dicom/reader.js';
import { isGroupLengthTag, type Tag } from '../../src/dicom/tag.js';
import { EXPLICIT_VR_BE, EXPLICIT_VR_LE, IMPLICIT_VR_LE } from '../../src/dicom/uid.js';
import { isBulkVR, type VR } from '../../src/dicom/vr.js';
import { encodeDataSet } from '../../src/dicom/writer.js';
import { CHARSET_FILES, corpusFiles, TEST_FILES } from '../helpers/corpus.js';

const SYNTAXES = [IMPLICIT_VR_LE, EXPLICIT_VR_LE, EXPLICIT_VR_BE];

/** The reference: the DataSet path's answer bytes (undefined: no match). */
function reference(identifier: DataSet, row: EntityRow, ts: string): Uint8Array | undefined {
  const plan = planQuery('IMAGE', identifier);
  const candidate = candidateOf(plan, row);
  if (!plan.compiled.matches(candidate)) return undefined;
  return encodeDataSet(buildResponse(identifier, candidate, plan.matchOptions), ts);
}

/** The fast path's answer as bytes, and whether it came as bytes (not a DataSet to encode). */
function fast(identifier: DataSet, row: EntityRow, ts: string): { bytes?: Uint8Array; direct: boolean } {
  const a = encodedPlan(planQuery('IMAGE', identifier), ts).answer(row);
  if (a === undefined) return { direct: false };
  return a instanceof Uint8Array
    ? { bytes: a, direct: true }
    : { bytes: encodeDataSet(a, ts), direct: false };
}

function same(identifier: DataSet, row: EntityRow): number {
  let direct = 0;
  for (const ts of SYNTAXES) {
    const want = reference(identifier, row, ts);
    const got = fast(identifier, row, ts);
    assert.deepEqual(
      got.bytes === undefined ? undefined : Buffer.from(got.bytes),
      want && Buffer.from(want),
      ts,
    );
    if (got.direct) direct++;
  }
  return direct;
}

/** Return keys for every top-level attribute a C-FIND can return (no sequences, bulk data or meta). */
function returnKeys(doc: DicomJsonObject): DataSet {
  const q = new DataSet();
  q.setString(TAG.QueryRetrieveLevel, 'IMAGE');
  for (const [key, a] of Object.entries(doc)) {
    const tag = Number.parseInt(key, 16) as Tag;
    if (tag === TAG.SpecificCharacterSet || tag >>> 16 <= 2 || isGroupLengthTag(tag)) continue;
    if (a.vr === 'SQ' || isBulkVR(a.vr)) continue;
    q.setBytes(tag, new Uint8Array(0), a.vr);
  }
  return q;
}

describe('C-FIND fast path: the bytes of the DataSet path', () => {
  let direct = 0;
  for (const file of [...corpusFiles(CHARSET_FILES), ...corpusFiles(TEST_FILES)]) {
    test(basename(file), (t) => {
      let ds: DataSet;
      try {
        ds = parseDicom(readFileSync(file)).dataSet;
      } catch (e) {
        if (!(e instanceof DicomParseError)) throw e;
        t.diagnostic(`not DICOM or truncated: ${e.message}`);
        return;
      }
      ds.delete(TAG.PixelData);
      let doc: DicomJsonObject;
      try {
        doc = JSON.parse(JSON.stringify(toDicomJson(ds))) as DicomJsonObject;
      } catch {
        t.diagnostic('has values not loaded: not a header the index keeps');
        return;
      }
      const row: EntityRow = { headers: [JSON.stringify(doc)] };
      const keys = returnKeys(doc);
      direct += same(keys, row);
      // Matching keys: the name's first letter with a wild card, the patient ID, a date range.
      const name = ds.strings(TAG.PatientName)[0];
      if (name !== undefined && /^[A-Za-z]/.test(name)) {
        const q = returnKeys(doc);
        q.setString(TAG.PatientName, `${name[0]}*`);
        direct += same(q, row);
        q.setString(TAG.PatientName, 'NOBODY*');
        same(q, row);
      }
      const id = ds.strings(TAG.PatientID)[0];
      if (id !== undefined && /^[\x20-\x7e]+$/.test(id) && !id.includes('\\')) {
        const q = returnKeys(doc);
        q.setString(TAG.PatientID, id);
        same(q, row);
      }
      const q = returnKeys(doc);
      q.setString(TAG.StudyDate, '19000101-20301231');
      same(q, row);
    });
  }
  test('plain ASCII files are answered as bytes in little endian syntaxes', () => {
    assert.ok(direct > 20, `only ${direct} answers took the fast path`);
  });
});

describe('C-FIND fast path: properties', () => {
  const ascii = fc.stringMatching(/^[A-Za-z0-9 .^_-]{0,12}$/);
  const doc = fc.record({
    name: ascii,
    id: ascii,
    date: fc.constantFrom('20240101', '20231231', '19991231', ''),
    sex: fc.constantFrom('M', 'F', 'O', ''),
    number: fc.integer({ min: -5, max: 100_000 }),
    thickness: fc.double({ min: -1e6, max: 1e6, noNaN: true }),
    rows: fc.integer({ min: 0, max: 0xffff }),
    charset: fc.constantFrom(
      undefined,
      'ISO_IR 100',
      'ISO_IR 192',
      'GB18030',
      '\\ISO 2022 IR 87',
      'ISO 2022 IR 13',
    ),
  });
  const key = fc.record({
    name: fc.constantFrom('', '*', 'A*', '*a*', 'S?I*', '""'),
    id: fc.constantFrom('', '1*', '?', 'X'),
    date: fc.constantFrom('', '20240101', '2023-', '-20231231', '20230101-20240101'),
    sex: fc.constantFrom('', 'M', 'F\\M'),
  });
  test('same match and same bytes as the DataSet path', () => {
    fc.assert(
      fc.property(doc, key, (d, k) => {
        const json: DicomJsonObject = {
          ...(d.charset !== undefined ? { '00080005': { vr: 'CS', Value: d.charset.split('\\') } } : {}),
          '00080020': d.date === '' ? { vr: 'DA' } : { vr: 'DA', Value: [d.date] },
          '00100010': { vr: 'PN', Value: [{ Alphabetic: d.name }] },
          '00100020': { vr: 'LO', Value: [d.id] },
          '00100040': { vr: 'CS', Value: [d.sex] },
          '00180050': { vr: 'DS', Value: [d.thickness] },
          '00200013': { vr: 'IS', Value: [d.number] },
          '00280010': { vr: 'US', Value: [d.rows] },
        };
        const q = new DataSet();
        q.setString(TAG.QueryRetrieveLevel, 'IMAGE');
        const set = (tag: Tag, value: string, vr?: VR) => q.setString(tag, value, vr);
        set(TAG.StudyDate, k.date);
        set(TAG.PatientName, k.name);
        set(TAG.PatientID, k.id);
        set(TAG.PatientSex, k.sex.split('\\').join('\\'));
        set(TAG.SliceThickness, '');
        set(TAG.InstanceNumber, '');
        q.setBytes(TAG.Rows, new Uint8Array(0), 'US');
        same(q, { headers: [JSON.stringify(json)] });
      }),
      { numRuns: 300 },
    );
  });
});

describe('C-FIND fast path: pieces', () => {
  test('unknown character sets are not ASCII-transparent; the known ones are', () => {
    for (const terms of [
      '',
      'ISO_IR 100',
      'ISO_IR 192',
      'GB18030',
      'GBK',
      '\\ISO 2022 IR 87',
      'ISO 2022 IR 6\\ISO 2022 IR 149',
    ])
      assert.equal(isAsciiTransparent(terms), true, terms);
    for (const terms of ['NO SUCH SET', 'ISO_IR 999\\ISO 2022 IR 87'])
      assert.equal(isAsciiTransparent(terms), false, terms);
  });

  test('a document with text beyond ASCII gets no view', () => {
    const doc = { '00100010': { vr: 'PN' as const, Value: [{ Alphabetic: 'Müller^Hans' }] } };
    assert.equal(jsonView([JSON.stringify(doc)]), undefined);
    assert.equal(jsonView([doc]), undefined);
    assert.notEqual(
      jsonView([{ '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Muller^Hans' }] } }]),
      undefined,
    );
  });

  test('encodeElements writes what DataSetWriter writes, long values as UN in explicit VR', () => {
    const long = new Uint8Array(0x10001).fill(0x41);
    const ds = new DataSet();
    ds.setString(TAG.PatientName, 'ODD');
    ds.setString(TAG.SOPInstanceUID, '1.2.3');
    ds.setBytes(TAG.StudyDescription, long, 'LO');
    ds.setNumbers(TAG.Rows, 512, 'US');
    const elements = [...ds].map((e) => ({ tag: e.tag, vr: e.vr, value: e.value as Uint8Array }));
    for (const ts of [IMPLICIT_VR_LE, EXPLICIT_VR_LE])
      assert.deepEqual(
        Buffer.from(encodeElements(elements, ts) ?? []),
        Buffer.from(encodeDataSet(ds, ts)),
        ts,
      );
    assert.equal(encodeElements(elements, EXPLICIT_VR_BE), undefined);
  });
});
