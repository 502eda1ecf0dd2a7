/**
 * The Native DICOM Model XML (src/dicom/xml.ts, PS3.19 A.1): a golden document covering each
 * kind of value (text, several values with an empty one, numbers, person names in three groups,
 * nested sequences, InlineBinary, BulkData, escaping, characters XML cannot hold), and corpus
 * files compared with DCMTK's dcm2xml --native-format, both parsed by a real XML parser (Python's
 * ElementTree) into the same canonical tree (not chrX1.dcm: dcm2xml repeats an ideographic group
 * as the empty phonetic one there).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { DataSet } from '../../src/dicom/dataset.js';
import { TAG } from '../../src/dicom/dictionary.js';
import type { DicomJsonObject } from '../../src/dicom/json.js';
import { parseDicom } from '../../src/dicom/reader.js';
import { dataSetToXml, dicomJsonToXml, escapeXml, NATIVE_DICOM_MODEL_NS } from '../../src/dicom/xml.js';
import { CHARSET_FILES, dcmtkTool, TEST_FILES } from '../helpers/corpus.js';

const HEAD = `<?xml version="1.0" encoding="UTF-8"?>\n<NativeDicomModel xmlns="${NATIVE_DICOM_MODEL_NS}" xml:space="preserve">`;

describe('Native DICOM Model XML', () => {
  test('a golden document with every kind of value', () => {
    const doc: DicomJsonObject = {
      '00080008': { vr: 'CS', Value: ['ORIGINAL', null, 'AXIAL'] },
      '00081110': {
        vr: 'SQ',
        Value: [
          { '00081150': { vr: 'UI', Value: ['1.2.3'] } },
          { '00081155': { vr: 'UI', Value: ['4.5'] }, '00081199': { vr: 'SQ', Value: [{}] } },
        ],
      },
      '00100010': {
        vr: 'PN',
        Value: [
          { Alphabetic: 'Yamada^Tarou', Ideographic: '山田^太郎', Phonetic: 'やまだ^たろう' },
          { Alphabetic: '^Jo^^Dr' },
        ],
      },
      '00101010': { vr: 'AS' },
      '00201041': { vr: 'DS', Value: [1.5, -3] },
      '00281050': { vr: 'DS', Value: [40] },
      '00204000': { vr: 'LT', Value: ['a < b & "c" > d\u0001'] },
      '00291010': { vr: 'OB', InlineBinary: 'AAEC' },
      '7FE00010': { vr: 'OW', BulkDataURI: 'http://x/bulk?a=1&b=2' },
    };
    const expected =
      HEAD +
      '<DicomAttribute tag="00080008" vr="CS" keyword="ImageType"><Value number="1">ORIGINAL</Value><Value number="2"/><Value number="3">AXIAL</Value></DicomAttribute>' +
      '<DicomAttribute tag="00081110" vr="SQ" keyword="ReferencedStudySequence">' +
      '<Item number="1"><DicomAttribute tag="00081150" vr="UI" keyword="ReferencedSOPClassUID"><Value number="1">1.2.3</Value></DicomAttribute></Item>' +
      '<Item number="2"><DicomAttribute tag="00081155" vr="UI" keyword="ReferencedSOPInstanceUID"><Value number="1">4.5</Value></DicomAttribute>' +
      '<DicomAttribute tag="00081199" vr="SQ" keyword="ReferencedSOPSequence"><Item number="1"></Item></DicomAttribute></Item>' +
      '</DicomAttribute>' +
      '<DicomAttribute tag="00100010" vr="PN" keyword="PatientName">' +
      '<PersonName number="1"><Alphabetic><FamilyName>Yamada</FamilyName><GivenName>Tarou</GivenName></Alphabetic>' +
      '<Ideographic><FamilyName>山田</FamilyName><GivenName>太郎</GivenName></Ideographic>' +
      '<Phonetic><FamilyName>やまだ</FamilyName><GivenName>たろう</GivenName></Phonetic></PersonName>' +
      '<PersonName number="2"><Alphabetic><GivenName>Jo</GivenName><NamePrefix>Dr</NamePrefix></Alphabetic></PersonName>' +
      '</DicomAttribute>' +
      '<DicomAttribute tag="00101010" vr="AS" keyword="PatientAge"></DicomAttribute>' +
      '<DicomAttribute tag="00201041" vr="DS" keyword="SliceLocation"><Value number="1">1.5</Value><Value number="2">-3</Value></DicomAttribute>' +
      '<DicomAttribute tag="00204000" vr="LT" keyword="ImageComments"><Value number="1">a &lt; b &amp; &quot;c&quot; &gt; d\uFFFD</Value></DicomAttribute>' +
      '<DicomAttribute tag="00281050" vr="DS" keyword="WindowCenter"><Value number="1">40</Value></DicomAttribute>' +
      '<DicomAttribute tag="00291010" vr="OB"><InlineBinary>AAEC</InlineBinary></DicomAttribute>' +
      '<DicomAttribute tag="7FE00010" vr="OW" keyword="PixelData"><BulkData uri="http://x/bulk?a=1&amp;b=2"/></DicomAttribute>' +
      '</NativeDicomModel>\n';
    assert.equal(dicomJsonToXml(doc), expected);
    // The entries form (QIDO-RS answers) gives the same document.
    const entries = Object.keys(doc)
      .sort()
      .map((k) => [k, doc[k]] as const);
    assert.equal(dicomJsonToXml(entries as never), expected);
  });

  test('escaping keeps surrogate pairs and drops lone surrogates', () => {
    assert.equal(escapeXml('😀'), '😀');
    assert.equal(escapeXml('a\uD800b'), 'a\uFFFDb');
    assert.equal(escapeXml('tab\tline\nret\r'), 'tab\tline\nret\r');
  });

  test('a DataSet through its DICOM JSON', () => {
    const ds = new DataSet();
    ds.setString(TAG.PatientID, 'P<1>');
    assert.equal(
      dataSetToXml(ds),
      `${HEAD}<DicomAttribute tag="00100020" vr="LO" keyword="PatientID"><Value number="1">P&lt;1&gt;</Value></DicomAttribute></NativeDicomModel>\n`,
    );
  });

  const work = mkdtempSync(join(tmpdir(), 'pacs-xml-test-'));
  after(() => rmSync(work, { recursive: true, force: true }));

  // Canonical form of a Native DICOM Model document: attributes by tag with VR and values (text
  // trimmed, DS/IS/FL/FD as numbers), person names as their non-empty components, items
  // recursively; binary VRs, group 0002 and pixel data are left out (dcm2xml writes them as UUIDs).
  const CANON = String.raw`
import sys, json, xml.etree.ElementTree as ET
NUM = {'DS','IS','FL','FD','US','SS','UL','SL','SV','UV'}
BIN = {'OB','OW','OF','OD','OL','OV','UN'}
def local(t): return t.split('}')[-1]
def canon(el):
    out = {}
    for a in el:
        if local(a.tag) != 'DicomAttribute': continue
        tag = a.get('tag').upper(); vr = a.get('vr')
        if tag.startswith('0002') or tag == '7FE00010' or vr in BIN: continue
        vals = []
        for v in a:
            n = local(v.tag)
            if n == 'Item': vals.append(canon(v))
            elif n == 'PersonName':
                pn = {}
                for g in v:
                    comps = {local(c.tag): (c.text or '').strip() for c in g if (c.text or '').strip()}
                    if comps: pn[local(g.tag)] = comps
                vals.append(pn)
            elif n == 'Value':
                t = (v.text or '').strip()
                if vr in NUM and t != '': t = float('%.6g' % float(t))
                vals.append(t)
        while vals and vals[-1] == '': vals.pop()
        out[tag] = [vr, vals]
    return out
print(json.dumps(canon(ET.parse(sys.argv[1]).getroot()), sort_keys=True))
`;

  function canonical(path: string): unknown {
    const r = spawnSync('python3', ['-c', CANON, path], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as unknown;
  }

  for (const file of [
    join(TEST_FILES, 'CT_small.dcm'),
    join(TEST_FILES, 'MR_small.dcm'),
    join(TEST_FILES, 'rtplan.dcm'),
    join(CHARSET_FILES, 'chrFren.dcm'),
    join(CHARSET_FILES, 'chrRuss.dcm'),
    join(CHARSET_FILES, 'chrGerm.dcm'),
    join(CHARSET_FILES, 'chrArab.dcm'),
  ]) {
    const name = file.split('/').pop() as string;
    test(`${name}: the same tree as dcm2xml --native-format`, () => {
      const parsed = parseDicom(new Uint8Array(readFileSync(file)));
      const ours = join(work, `${name}.ours.xml`);
      writeFileSync(ours, dataSetToXml(parsed.dataSet));
      const theirs = join(work, `${name}.dcmtk.xml`);
      const r = spawnSync(dcmtkTool('dcm2xml'), ['--native-format', '+Ca', 'utf-8', file, theirs], {
        encoding: 'utf8',
        env: { ...process.env, TCP_NODELAY: '1' },
      });
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(canonical(ours), canonical(theirs));
    });
  }
});
