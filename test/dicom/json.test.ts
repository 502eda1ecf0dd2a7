/**
 * The DICOM JSON Model (PS3.18 F.2): golden JSON for each VR, person names, empty values, nested
 * sequences, binary values, UN on known tags, fromDicomJson errors, and round trips of the corpus.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { describe, test } from 'node:test';
import { DicomEncodeError, DicomParseError } from '../../src/core/errors.js';
import { DataSet } from '../../src/dicom/dataset.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { type DicomJsonObject, fromDicomJson, toDicomJson } from '../../src/dicom/json.js';
import { parseDicom } from '../../src/dicom/reader.js';
import { EXPLICIT_VR_LE } from '../../src/dicom/uid.js';
import type { VR } from '../../src/dicom/vr.js';
import { encodeDataSet } from '../../src/dicom/writer.js';
import { CHARSET_FILES, corpusFiles, TEST_FILES } from '../helpers/corpus.js';

const latin1 = (s: string) => new Uint8Array(Buffer.from(s, 'latin1'));
const hex = (s: string) => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

/** Byte equality whatever the Uint8Array subclass (values built by Buffer are Buffers). */
function assertBytes(actual: Uint8Array | undefined, expected: Uint8Array): void {
  assert.ok(actual, 'no bytes');
  assert.equal(Buffer.from(actual).toString('hex'), Buffer.from(expected).toString('hex'));
}

function fromJson(json: unknown): DataSet {
  const r = fromDicomJson(json);
  if (!r.ok) assert.fail(r.error);
  return r.value;
}

function jsonError(json: unknown): string {
  const r = fromDicomJson(json);
  assert.equal(r.ok, false, 'expected an error');
  return r.ok ? '' : r.error;
}

/** A data set of raw values, one per VR (the value field bytes as a little endian stream holds them). */
function everyVR(): DataSet {
  const ds = new DataSet();
  const raw = (tag: number, vr: VR, bytes: Uint8Array) => ds.set({ tag, vr, value: bytes });
  raw(0x00080054, 'AE', latin1('PACS\\ STORE  ')); // RetrieveAETitle
  raw(0x00101010, 'AS', latin1('042Y')); // PatientAge
  raw(0x00280009, 'AT', hex('1800 6310 1800 6510')); // FrameIncrementPointer (0018,1063)\(0018,1065)
  raw(0x00080008, 'CS', latin1('ORIGINAL\\PRIMARY\\\\AXIAL ')); // ImageType, an empty third value
  raw(0x00080020, 'DA', latin1('20240131')); // StudyDate
  raw(0x00280030, 'DS', latin1(' 0.5\\-1.25e3 ')); // PixelSpacing
  raw(0x0008002a, 'DT', latin1('20240131120000.123456+0100 ')); // AcquisitionDateTime
  raw(0x00189087, 'FD', hex('000000000000f83f 000000000000d0bf')); // DiffusionBValue 1.5, -0.25
  raw(0x00089459, 'FL', hex('0000c03f')); // RecommendedDisplayFrameRateInFloat 1.5
  raw(0x00200013, 'IS', latin1(' 7 ')); // InstanceNumber
  raw(0x00080070, 'LO', latin1('ACME\\Imaging ')); // Manufacturer
  raw(0x00080108, 'LT', latin1('line one\\two\r\nthree  ')); // ExtendedCodeMeaning: one value
  raw(0x00420011, 'OB', hex('01020304')); // EncapsulatedDocument
  raw(0x003a032e, 'OD', hex('000000000000f03f')); // FilterLookupTableData 1.0
  raw(0x00181638, 'OF', hex('0000803f')); // VerticesOfThePolygonalOutline 1.0
  raw(0x00660040, 'OL', hex('01000000')); // LongPrimitivePointIndexList
  raw(0x00720081, 'OV', hex('0100000000000000')); // SelectorOVValue
  raw(0x00281201, 'OW', hex('01000200')); // RedPaletteColorLookupTableData
  raw(TAG.PatientName, 'PN', latin1('Doe^John^^Dr.\\=Ideo\\')); // three values, the last empty
  raw(0x00081010, 'SH', latin1('CT01')); // StationName
  raw(0x00186039, 'SL', hex('feffffff')); // DopplerSampleVolumeXPosition -2
  raw(0x00189219, 'SS', hex('fdff')); // TagAngleSecondAxis -3
  raw(0x00080081, 'ST', latin1('1 Main St')); // InstitutionAddress
  raw(0x00720082, 'SV', hex('ffffffffffffffff 0000000000000080')); // SelectorSVValue -1, -2^63
  raw(0x00080030, 'TM', latin1('120000.5')); // StudyTime
  raw(0x00080119, 'UC', latin1('a long code value')); // LongCodeValue
  raw(0x00080018, 'UI', latin1('1.2.3.4\0')); // SOPInstanceUID, NUL padded
  raw(0x00280010, 'US', hex('0002')); // Rows 512
  raw(0x00080000, 'UL', hex('00000000')); // a group length: left out
  raw(0x00081195, 'UI', new Uint8Array(0)); // TransactionUID, empty
  raw(0x00540081, 'US', new Uint8Array(0)); // NumberOfSlices, empty
  raw(0x0072006d, 'UN', hex('0102')); // SelectorUNValue: UN in the dictionary too
  raw(0x0040e010, 'UR', latin1('http://example.com/a ')); // RetrieveURI
  raw(0x00287fe0, 'UR', new Uint8Array(0)); // PixelDataProviderURL, empty
  raw(0x0008030e, 'UT', latin1('text\\with backslash')); // PrivateDataElementDescription
  raw(0x0008040c, 'UV', hex('0100000000000000 ffffffffffffffff')); // FileOffsetInContainer 1, 2^64-1
  raw(0x00181063, 'DS', latin1('1\\\\3')); // FrameTime (VM 1 in the dictionary, 3 here: kept)
  raw(0x00201041, 'DS', latin1('1.5.2')); // SliceLocation: not a number
  raw(0x00200012, 'IS', latin1('1A')); // AcquisitionNumber: not a number
  raw(0x00280008, 'IS', latin1('12.0')); // NumberOfFrames: a decimal is not an IS
  raw(0x00280011, 'US', hex('000201')); // Columns: 3 bytes are no whole US value
  return ds;
}

const EVERY_VR_JSON: DicomJsonObject = {
  '00080008': { vr: 'CS', Value: ['ORIGINAL', 'PRIMARY', null, 'AXIAL'] },
  '00080018': { vr: 'UI', Value: ['1.2.3.4'] },
  '00080020': { vr: 'DA', Value: ['20240131'] },
  '0008002A': { vr: 'DT', Value: ['20240131120000.123456+0100'] },
  '00080030': { vr: 'TM', Value: ['120000.5'] },
  '00080054': { vr: 'AE', Value: ['PACS', 'STORE'] },
  '00080070': { vr: 'LO', Value: ['ACME', 'Imaging'] },
  '00080081': { vr: 'ST', Value: ['1 Main St'] },
  '00080108': { vr: 'LT', Value: ['line one\\two\r\nthree'] },
  '00080119': { vr: 'UC', Value: ['a long code value'] },
  '0008030E': { vr: 'UT', Value: ['text\\with backslash'] },
  '0008040C': { vr: 'UV', Value: [1, '18446744073709551615'] },
  '00081010': { vr: 'SH', Value: ['CT01'] },
  '00081195': { vr: 'UI' },
  '00089459': { vr: 'FL', Value: [1.5] },
  '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Doe^John^^Dr.' }, { Ideographic: 'Ideo' }, null] },
  '00101010': { vr: 'AS', Value: ['042Y'] },
  '00181063': { vr: 'DS', Value: [1, null, 3] },
  '00181638': { vr: 'OF', InlineBinary: 'AACAPw==' },
  '00186039': { vr: 'SL', Value: [-2] },
  '00189087': { vr: 'FD', Value: [1.5, -0.25] },
  '00189219': { vr: 'SS', Value: [-3] },
  '00200012': { vr: 'IS', Value: ['1A'] },
  '00200013': { vr: 'IS', Value: [7] },
  '00201041': { vr: 'DS', Value: ['1.5.2'] },
  '00280008': { vr: 'IS', Value: ['12.0'] },
  '00280009': { vr: 'AT', Value: ['00181063', '00181065'] },
  '00280010': { vr: 'US', Value: [512] },
  '00280011': { vr: 'UN', InlineBinary: 'AAIB' },
  '00280030': { vr: 'DS', Value: [0.5, -1250] },
  '00281201': { vr: 'OW', InlineBinary: 'AQACAA==' },
  '00287FE0': { vr: 'UR' },
  '003A032E': { vr: 'OD', InlineBinary: 'AAAAAAAA8D8=' },
  '00420011': { vr: 'OB', InlineBinary: 'AQIDBA==' },
  '0040E010': { vr: 'UR', Value: ['http://example.com/a'] },
  '00540081': { vr: 'US' },
  '00660040': { vr: 'OL', InlineBinary: 'AQAAAA==' },
  '0072006D': { vr: 'UN', InlineBinary: 'AQI=' },
  '00720081': { vr: 'OV', InlineBinary: 'AQAAAAAAAAA=' },
  '00720082': { vr: 'SV', Value: [-1, '-9223372036854775808'] },
};

describe('toDicomJson', () => {
  test('golden JSON for every VR (PS3.18 F.2.3), empty values (F.2.5), no group length (F.2.2)', () => {
    const json = toDicomJson(everyVR());
    assert.deepEqual(json, EVERY_VR_JSON);
    // F.2.2: attributes in ascending tag order.
    assert.deepEqual(Object.keys(json), Object.keys(EVERY_VR_JSON).sort());
  });

  test('PN with three component groups, decoded in the Specific Character Set (PS3.5 H.3.1)', () => {
    const ds = new DataSet();
    ds.setString(TAG.SpecificCharacterSet, ['', 'ISO 2022 IR 87']);
    // The example of PS3.5 H.3.1: JIS X 0208 in ISO 2022 escapes.
    const bytes = latin1(
      'Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B',
    );
    ds.set({ tag: TAG.PatientName, vr: 'PN', value: bytes });
    const json = toDicomJson(ds);
    assert.deepEqual(json, {
      '00080005': { vr: 'CS', Value: [null, 'ISO 2022 IR 87'] },
      '00100010': {
        vr: 'PN',
        Value: [{ Alphabetic: 'Yamada^Tarou', Ideographic: '山田^太郎', Phonetic: 'やまだ^たろう' }],
      },
    });
    // And back: the same bytes, escapes and all (padded to even length with a space).
    const back = fromJson(json).bytes(TAG.PatientName);
    assertBytes(back?.subarray(0, bytes.length), bytes);
  });

  test('PN: empty groups are left out, a name of empty groups is an empty value', () => {
    const ds = new DataSet();
    ds.set({ tag: TAG.PatientName, vr: 'PN', value: latin1('=Ideo=\\==\\A^B==Pho ') });
    assert.deepEqual(toDicomJson(ds)['00100010'], {
      vr: 'PN',
      Value: [{ Ideographic: 'Ideo' }, null, { Alphabetic: 'A^B', Phonetic: 'Pho' }],
    });
  });

  test('nested sequences, empty sequences and empty items; items inherit the character set', () => {
    const ds = new DataSet();
    ds.setString(TAG.SpecificCharacterSet, 'ISO_IR 192');
    const inner = new DataSet(ds);
    const code = new DataSet(inner);
    code.setString(TAG.CodeValue, '121071');
    code.setString(TAG.CodeMeaning, 'Café');
    inner.setSequence(TAG.ConceptNameCodeSequence, [code]);
    ds.setSequence(TAG.ContentSequence, [inner, new DataSet()]);
    ds.setSequence(TAG.ReferencedImageSequence, []);
    assert.deepEqual(toDicomJson(ds), {
      '00080005': { vr: 'CS', Value: ['ISO_IR 192'] },
      '00081140': { vr: 'SQ' },
      '0040A730': {
        vr: 'SQ',
        Value: [
          {
            '0040A043': {
              vr: 'SQ',
              Value: [
                { '00080100': { vr: 'SH', Value: ['121071'] }, '00080104': { vr: 'LO', Value: ['Café'] } },
              ],
            },
          },
          {},
        ],
      },
    });
    // The item's text is in the character set of the top level (UTF-8), and decoded in it.
    assertBytes(code.bytes(TAG.CodeMeaning), new Uint8Array(Buffer.from('Café ', 'utf8')));
  });

  test('InlineBinary, BulkDataURI from the provider, and encapsulated pixel data as pydicom gives it', () => {
    const ds = new DataSet();
    ds.set({ tag: 0x00420011, vr: 'OB', value: hex('0102') });
    ds.set({
      tag: TAG.PixelData,
      vr: 'OB',
      value: { kind: 'fragments', fragments: [hex(''), hex('aabbcc')] },
    });
    // The items of PS3.5 A.4 (an empty Basic Offset Table, one fragment), no sequence delimiter.
    const encapsulated = hex('feff00e0 00000000 feff00e0 03000000 aabbcc');
    assert.deepEqual(toDicomJson(ds), {
      '00420011': { vr: 'OB', InlineBinary: 'AQI=' },
      '7FE00010': { vr: 'OB', InlineBinary: Buffer.from(encapsulated).toString('base64') },
    });
    const seen: number[] = [];
    const json = toDicomJson(ds, {
      bulkDataUri: (tag) => {
        seen.push(tag);
        return tag === TAG.PixelData ? 'http://pacs/studies/1/series/2/instances/3/bulk/7FE00010' : undefined;
      },
    });
    assert.deepEqual(seen, [0x00420011, TAG.PixelData]);
    assert.deepEqual(json['7FE00010'], {
      vr: 'OB',
      BulkDataURI: 'http://pacs/studies/1/series/2/instances/3/bulk/7FE00010',
    });
    assert.deepEqual(json['00420011'], { vr: 'OB', InlineBinary: 'AQI=' });
  });

  test('a value not loaded needs a BulkDataURI', () => {
    const ds = new DataSet();
    ds.set({ tag: TAG.PixelData, vr: 'OW', value: { kind: 'bulk', offset: 1000, length: 512 } });
    assert.throws(() => toDicomJson(ds), DicomEncodeError);
    assert.deepEqual(toDicomJson(ds, { bulkDataUri: () => 'bulk/1' }), {
      '7FE00010': { vr: 'OW', BulkDataURI: 'bulk/1' },
    });
  });

  test('UN on a known tag is shown in its dictionary VR (as pydicom does); private and unknown stay UN', () => {
    const ds = new DataSet();
    ds.set({ tag: TAG.PixelRepresentation, vr: 'US', value: hex('0100') });
    ds.set({ tag: TAG.PatientName, vr: 'UN', value: latin1('Doe^Jane') });
    ds.set({ tag: TAG.SmallestImagePixelValue, vr: 'UN', value: hex('fcff') }); // US or SS: SS here
    ds.set({ tag: 0x00090010, vr: 'UN', value: latin1('ACME 1.0') }); // private creator: LO
    ds.set({ tag: 0x00091001, vr: 'UN', value: hex('0102') }); // private data element
    ds.set({ tag: 0x00080009, vr: 'UN', value: hex('0102') }); // not in the dictionary
    // A sequence in UN: its items in Implicit VR Little Endian (PS3.5 6.2.2).
    // One item of 14 bytes holding (0008,0100) CodeValue "121071".
    const seq = hex('feff00e0 0e000000  08000001 06000000 313231303731');
    ds.set({ tag: TAG.ConceptNameCodeSequence, vr: 'UN', value: seq });
    assert.deepEqual(toDicomJson(ds), {
      '00090010': { vr: 'LO', Value: ['ACME 1.0'] },
      '00091001': { vr: 'UN', InlineBinary: 'AQI=' },
      '00080009': { vr: 'UN', InlineBinary: 'AQI=' },
      '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Doe^Jane' }] },
      '00280103': { vr: 'US', Value: [1] },
      '00280106': { vr: 'SS', Value: [-4] },
      '0040A043': { vr: 'SQ', Value: [{ '00080100': { vr: 'SH', Value: ['121071'] } }] },
    });
    // The data set itself still says UN: it is written back as received.
    assert.equal(ds.get(TAG.PatientName)?.vr, 'UN');
  });

  test('FL/FD NaN and infinities are strings (JSON has no such numbers)', () => {
    const ds = new DataSet();
    ds.setNumbers(0x00189087, [Number.NaN, Number.POSITIVE_INFINITY, -1], 'FD');
    const json = toDicomJson(ds);
    assert.deepEqual(json['00189087'], { vr: 'FD', Value: ['NaN', 'Infinity', -1] });
    const back = fromJson(json).numbers(0x00189087);
    assert.ok(Number.isNaN(back[0]));
    assert.deepEqual(back.slice(1), [Number.POSITIVE_INFINITY, -1]);
  });
});

describe('fromDicomJson', () => {
  test('builds the golden data set back (JSON -> DataSet -> JSON is the identity)', () => {
    const ds = fromJson(EVERY_VR_JSON);
    assert.deepEqual(toDicomJson(ds), EVERY_VR_JSON);
    // Values are encoded per VR: padding, separators, numbers.
    assertBytes(ds.bytes(0x00080008), latin1('ORIGINAL\\PRIMARY\\\\AXIAL '));
    assertBytes(ds.bytes(0x00080018), latin1('1.2.3.4\0'));
    assertBytes(ds.bytes(0x00280030), latin1('0.5\\-1250 '));
    assertBytes(ds.bytes(0x00280009), hex('1800 6310 1800 6510'));
    assertBytes(ds.bytes(0x00720082), hex('ffffffffffffffff 0000000000000080'));
    assertBytes(ds.bytes(TAG.PatientName), latin1('Doe^John^^Dr.\\=Ideo\\'));
  });

  test('Specific Character Set is applied first, whatever the key order', () => {
    const r = fromJson({
      '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Buc^Jérôme' }] },
      '00080005': { vr: 'CS', Value: ['ISO_IR 100'] },
    });
    assertBytes(r.bytes(TAG.PatientName), latin1('Buc^Jérôme'));
    const utf8 = fromJson({
      '00080005': { vr: 'CS', Value: ['ISO_IR 192'] },
      '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Wang^XiaoDong', Ideographic: '王^小東' }] },
    });
    assertBytes(utf8.bytes(TAG.PatientName), new Uint8Array(Buffer.from('Wang^XiaoDong=王^小東', 'utf8')));
  });

  test('encapsulated Pixel Data comes back as fragments; BulkDataURI through the resolver', () => {
    const encapsulated = hex('feff00e0 00000000 feff00e0 03000000 aabbcc');
    const ds = fromJson({
      '7FE00010': { vr: 'OB', InlineBinary: Buffer.from(encapsulated).toString('base64') },
    });
    assert.deepEqual(ds.get(TAG.PixelData)?.value, {
      kind: 'fragments',
      fragments: [hex(''), hex('aabbcc')],
    });
    const native = fromJson({ '7FE00010': { vr: 'OW', InlineBinary: 'AQACAA==' } });
    assertBytes(native.bytes(TAG.PixelData), hex('01000200'));
    const r = fromDicomJson(
      { '7FE00010': { vr: 'OW', BulkDataURI: 'bulk/1' } },
      {
        bulkData: (uri, tag, vr) =>
          uri === 'bulk/1' && tag === TAG.PixelData && vr === 'OW' ? hex('0100') : undefined,
      },
    );
    assert.ok(r.ok);
    assertBytes(r.value.bytes(TAG.PixelData), hex('0100'));
  });

  test('DS numbers keep as many digits as 16 characters hold (PS3.5 6.2)', () => {
    const ds = fromJson({ '00280030': { vr: 'DS', Value: [-1.2345678901e-5, 1 / 3, 1e21] } });
    assertBytes(ds.bytes(0x00280030), latin1('-1.2345678901e-5\\0.33333333333333\\1e+21 '));
  });

  test('accepts what others write: PN as a plain string, IS/DS as strings, lower-case keys', () => {
    const ds = fromJson({
      '00100010': { vr: 'PN', Value: ['Doe^John'] },
      '00200013': { vr: 'IS', Value: ['0007'] },
      '0028ffff': { vr: 'DS', Value: ['1.50'] },
    });
    assertBytes(ds.bytes(TAG.PatientName), latin1('Doe^John'));
    assertBytes(ds.bytes(TAG.InstanceNumber), latin1('0007'));
    assertBytes(ds.bytes(0x0028ffff), latin1('1.50'));
  });

  test('bad input is an error naming the tag path', () => {
    assert.match(jsonError([]), /^\(top level\): expected a DICOM JSON object, got an array/);
    assert.match(jsonError({ '0010001': { vr: 'PN' } }), /^0010001: attribute key is not a tag/);
    assert.match(jsonError({ '00100010': { vr: 'XX' } }), /^00100010: "vr" is missing or not a DICOM VR/);
    assert.match(
      jsonError({
        '0040A730': {
          vr: 'SQ',
          Value: [{}, { '0040A043': { vr: 'SQ', Value: [{ '00080100': { vr: 'SH', Value: [7] } }] } }],
        },
      }),
      /^0040A730\[1\]\.0040A043\[0\]\.00080100\[0\]: expected a string, got 7/,
    );
    assert.match(
      jsonError({ '00280010': { vr: 'US', Value: [70000] } }),
      /^00280010\[0\]: US value 70000 is not/,
    );
    assert.match(
      jsonError({ '00200013': { vr: 'IS', Value: [1.5] } }),
      /^00200013\[0\]: IS value 1.5 is not an integer/,
    );
    assert.match(
      jsonError({ '00420011': { vr: 'OB', Value: [1], InlineBinary: 'AA==' } }),
      /^00420011: has both Value and InlineBinary/,
    );
    assert.match(jsonError({ '00420011': { vr: 'OB', InlineBinary: 'not base64!' } }), /not a base64 string/);
    assert.match(jsonError({ '00100020': { vr: 'LO', InlineBinary: 'AA==' } }), /InlineBinary is only for/);
    assert.match(jsonError({ '00080008': { vr: 'CS', Value: ['A\\B'] } }), /cannot contain a backslash/);
    assert.match(
      jsonError({ '00100010': { vr: 'PN', Value: [{ Alphabetic: 1 }] } }),
      /Alphabetic is not a string/,
    );
    assert.match(jsonError({ '00280009': { vr: 'AT', Value: ['(0018,1063)'] } }), /AT value is not a tag/);
    assert.match(
      jsonError({ '7FE00010': { vr: 'OW', BulkDataURI: 'x' } }),
      /BulkDataURI x cannot be resolved/,
    );
    // Text that the character set in force cannot encode.
    assert.match(jsonError({ '00100010': { vr: 'PN', Value: [{ Alphabetic: '山田' }] } }), /^00100010: /);
  });
});

/** The JSON with odd-length InlineBinary values padded with a NUL, as the writer pads them. */
function padOddBinary(json: DicomJsonObject): DicomJsonObject {
  const out: DicomJsonObject = {};
  for (const [key, a] of Object.entries(json)) {
    const copy = { ...a };
    if (a.InlineBinary !== undefined) {
      const bytes = Buffer.from(a.InlineBinary, 'base64');
      if (bytes.length % 2 === 1)
        copy.InlineBinary = Buffer.concat([bytes, Buffer.alloc(1)]).toString('base64');
    }
    if (a.vr === 'SQ' && a.Value) copy.Value = a.Value.map((item) => padOddBinary(item as DicomJsonObject));
    out[key] = copy;
  }
  return out;
}

describe('round trips over the pydicom corpus', () => {
  for (const file of [...corpusFiles(TEST_FILES), ...corpusFiles(CHARSET_FILES)]) {
    test(basename(file), (t) => {
      let parsed: ReturnType<typeof parseDicom>;
      try {
        parsed = parseDicom(readFileSync(file));
      } catch (e) {
        if (!(e instanceof DicomParseError)) throw e;
        t.diagnostic(`not DICOM or truncated (pydicom-compare.test.ts says which): ${e.message}`);
        return;
      }
      // As a client gets it: serialised (a DS of -0 is the JSON number 0).
      const json = JSON.parse(JSON.stringify(toDicomJson(parsed.dataSet))) as DicomJsonObject;
      // JSON -> DataSet -> JSON is the identity.
      const ds = fromJson(json);
      assert.deepEqual(toDicomJson(ds), json);
      // And what fromDicomJson builds is DICOM: encoded and parsed again, the same JSON, but for
      // the padding the writer gives odd-length binary values (PS3.5 7.1.1: value lengths are even).
      const again = parseDicom(encodeDataSet(ds, EXPLICIT_VR_LE), {
        format: 'dataset',
        transferSyntax: EXPLICIT_VR_LE,
      });
      assert.deepEqual(toDicomJson(again.dataSet), padOddBinary(json));
    });
  }
});
