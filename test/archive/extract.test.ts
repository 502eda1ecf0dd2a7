import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { describeInstance, splitHeaders } from '../../src/archive/index/extract.js';
import { levelOf } from '../../src/archive/index/levels.js';
import { DataSet } from '../../src/dicom/dataset.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { normalizePersonName } from '../../src/dicom/matching/person-name.js';
import { makeTag, tagHex } from '../../src/dicom/tag.js';
import { readDicomFile } from '../../src/io/dicom-file.js';
import { corpusFiles, TEST_FILES } from '../helpers/corpus.js';
import { makeDataSet } from './helpers.js';

const hex = (k: keyof typeof TAG) => tagHex(TAG[k]);
const STORED = {
  transferSyntaxUid: '1.2.840.10008.1.2.1',
  path: 'objects/aa/bb/x.dcm',
  size: 1,
  receivedAt: new Date(0),
  callingAet: null,
};

describe('level of an attribute', () => {
  test('follows the modules of the composite IODs', () => {
    assert.equal(levelOf(TAG.PatientName), 'patient');
    assert.equal(levelOf(TAG.OtherPatientIDsSequence), 'patient');
    assert.equal(levelOf(TAG.StudyDate), 'study');
    assert.equal(levelOf(TAG.PatientAge), 'study'); // Patient Study module
    assert.equal(levelOf(TAG.Modality), 'series');
    assert.equal(levelOf(TAG.Manufacturer), 'series'); // General Equipment
    assert.equal(levelOf(TAG.SOPInstanceUID), 'instance');
    assert.equal(levelOf(makeTag(0x0029, 0x1010)), 'instance'); // private
  });
});

describe('level headers', () => {
  test('each document holds its level, the character set, and no bulk data', () => {
    const ds = makeDataSet({ charset: 'ISO_IR 100' });
    const h = splitHeaders(ds);
    for (const doc of [h.patient, h.study, h.series, h.instance]) {
      assert.deepEqual(doc[hex('SpecificCharacterSet')], { vr: 'CS', Value: ['ISO_IR 100'] });
      assert.ok(!(hex('PixelData') in doc));
      assert.ok(!(hex('RedPaletteColorLookupTableData') in doc), 'binary value over 1 KiB dropped');
    }
    assert.ok(hex('PatientName') in h.patient && !(hex('PatientName') in h.instance));
    assert.ok(hex('StudyInstanceUID') in h.study && !(hex('StudyInstanceUID') in h.series));
    assert.ok(hex('SeriesInstanceUID') in h.series);
    assert.ok(hex('SOPInstanceUID') in h.instance && hex('Rows') in h.instance);
    assert.equal(h.instance[hex('ICCProfile')]?.vr, 'OB', 'a small binary value is kept');
  });

  test("sequences are copied without their bulk data, and the caller's data set is not touched", () => {
    const ds = makeDataSet();
    const item = new DataSet(ds);
    item.setString(TAG.CodeValue, '123');
    item.setBytes(TAG.LUTData, new Uint8Array(2048), 'OW');
    ds.setSequence(TAG.ReferencedImageSequence, [item]);
    const h = splitHeaders(ds);
    const seq = h.instance[hex('ReferencedImageSequence')];
    assert.equal(seq?.vr, 'SQ');
    const copied = seq?.Value?.[0] as Record<string, unknown>;
    assert.ok(hex('CodeValue') in copied);
    assert.ok(!(hex('LUTData') in copied));
    assert.equal(item.parent, ds);
    assert.ok(item.has(TAG.LUTData));
  });
});

describe('describeInstance', () => {
  test('reads the keys of each level', () => {
    const r = describeInstance(makeDataSet({ seriesNumber: 12, instanceNumber: 3 }), STORED);
    assert.ok(r.ok);
    const { record } = r.value;
    assert.equal(record.patient.patientId, 'PID1');
    assert.equal(record.patient.issuerOfPatientId, null);
    assert.equal(record.study.studyInstanceUid, '1.2.3.4');
    assert.equal(record.series.seriesNumber, 12);
    assert.equal(record.series.bodyPartExamined, 'CHEST');
    assert.equal(record.instance.instanceNumber, 3);
    assert.equal(record.instance.path, STORED.path);
  });

  test('integer strings that are not 32-bit integers are left out, not stored wrong', () => {
    for (const [text, expected] of [
      ['abc', null],
      ['2147483648', null],
      [' 12 ', 12],
      ['-5', -5],
    ] as const) {
      const ds = makeDataSet();
      ds.setBytes(TAG.SeriesNumber, Buffer.from(text.length % 2 ? `${text} ` : text, 'latin1'), 'IS');
      const r = describeInstance(ds, STORED);
      assert.ok(r.ok);
      assert.equal(r.value.record.series.seriesNumber, expected, text);
    }
  });

  test('a header without the UIDs the index is keyed by is refused', () => {
    const ds = makeDataSet();
    ds.delete(TAG.StudyInstanceUID);
    ds.delete(TAG.SOPClassUID);
    const r = describeInstance(ds, STORED);
    assert.ok(!r.ok);
    assert.equal(r.error.code, 'ERR_ARCHIVE_INVALID_OBJECT');
    assert.match(r.error.message, /SOPClassUID, StudyInstanceUID/);
  });

  test('every readable file of the corpus is described or refused with a reason, never throws', async () => {
    let described = 0;
    for (const file of corpusFiles(TEST_FILES)) {
      let header: Awaited<ReturnType<typeof readDicomFile>>;
      try {
        header = await readDicomFile(file, { stopAtTag: TAG.PixelData });
      } catch {
        continue; // broken on purpose: the parser's tests cover those
      }
      const r = describeInstance(header.dataSet, STORED);
      if (r.ok) {
        described++;
        JSON.stringify(r.value.headers);
      } else assert.equal(r.error.code, 'ERR_ARCHIVE_INVALID_OBJECT', file);
    }
    assert.ok(described > 40, `${described} corpus files described`);
  });
});

describe('person name normalisation', () => {
  test('uppercase, trimmed, five components per group, trailing empty groups dropped', () => {
    assert.equal(normalizePersonName('Smith^John'), 'SMITH^JOHN^^^');
    assert.equal(normalizePersonName(' smith ^ john ^^^'), 'SMITH^JOHN^^^');
    assert.equal(normalizePersonName('Müller^Jürgen'), 'MÜLLER^JÜRGEN^^^');
    assert.equal(
      normalizePersonName('Yamada^Tarou=山田^太郎=やまだ^たろう'),
      'YAMADA^TAROU^^^=山田^太郎^^^=やまだ^たろう^^^',
    );
    assert.equal(normalizePersonName('=山田^太郎'), '=山田^太郎^^^');
    assert.equal(normalizePersonName('Smith^John=='), 'SMITH^JOHN^^^');
    assert.equal(normalizePersonName('a^b^c^d^e^f'), 'A^B^C^D^E F');
    assert.equal(normalizePersonName(''), null);
    assert.equal(normalizePersonName('^^'), null);
    assert.equal(normalizePersonName(null), null);
  });
});
