/**
 * Golden bytes for the codec: hand-written encodings (PS3.5 7.1) of an element of every VR in
 * Implicit VR LE, Explicit VR LE and Explicit VR BE, decoded by parseDicom and produced by
 * encodeDataSet; sequences, encapsulated pixel data, Part-10 framing, deflate, stopAtTag and the
 * streaming contract of DicomParser (any chunking gives the same events).
 *
 * Hex literals: whitespace-separated hex bytes in stream order; "text" is ASCII.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { DataSet, type PixelFragments } from '../../src/dicom/dataset.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { type DataSetHandler, DicomParser, type ParserOptions } from '../../src/dicom/parser.js';
import { parseDicom } from '../../src/dicom/reader.js';
import type { Tag } from '../../src/dicom/tag.js';
import {
  DEFLATED_EXPLICIT_VR_LE,
  EXPLICIT_VR_BE,
  EXPLICIT_VR_LE,
  IMPLEMENTATION_CLASS_UID,
  IMPLICIT_VR_LE,
} from '../../src/dicom/uid.js';
import { decodeBigInts } from '../../src/dicom/values.js';
import type { VR } from '../../src/dicom/vr.js';
import { DataSetWriter, encodeDataSet, encodeFileMeta, encodePart10 } from '../../src/dicom/writer.js';
import { readDicomFile } from '../../src/io/dicom-file.js';

const JPEG_BASELINE = '1.2.840.10008.1.2.4.50';
const CT_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.2';

/** Bytes from a hex literal: hex digit pairs and "ASCII text", separated by whitespace. */
function hex(strings: TemplateStringsArray, ...subs: unknown[]): Uint8Array {
  const src = String.raw(strings, ...subs);
  const out: number[] = [];
  const re = /"([^"]*)"|([0-9A-Fa-f]+)|(\s+)|(.)/gy;
  for (let m = re.exec(src); m; m = re.exec(src)) {
    if (m[1] !== undefined) for (const ch of m[1]) out.push(ch.charCodeAt(0));
    else if (m[2] !== undefined) {
      assert.equal(m[2].length % 2, 0, `odd number of hex digits in '${m[2]}'`);
      for (let i = 0; i < m[2].length; i += 2) out.push(Number.parseInt(m[2].slice(i, i + 2), 16));
    } else if (m[4] !== undefined) throw new Error(`bad character '${m[4]}' in hex literal`);
  }
  return Uint8Array.from(out);
}

function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

const SYNTAXES = [
  ['Implicit VR LE', IMPLICIT_VR_LE],
  ['Explicit VR LE', EXPLICIT_VR_LE],
  ['Explicit VR BE', EXPLICIT_VR_BE],
] as const;

function decode(bytes: Uint8Array, transferSyntax: string, options: ParserOptions = {}): DataSet {
  return parseDicom(bytes, { format: 'dataset', transferSyntax, ...options }).dataSet;
}

function valueHex(ds: DataSet, tag: Tag): string {
  const v = ds.get(tag)?.value;
  assert.ok(v instanceof Uint8Array, `element ${tag.toString(16)} has bytes`);
  return toHex(v);
}

// --- one element of every VR ---------------------------------------------------------------

interface VRCase {
  readonly vr: VR;
  /** What the golden bytes decode to. */
  readonly what: string;
  readonly tag: Tag;
  readonly build: (ds: DataSet) => void;
  /** The value field as the data set holds it (little endian, padded to even length). */
  readonly value?: Uint8Array;
  readonly strings?: string[];
  readonly numbers?: number[];
  readonly bigints?: bigint[];
  readonly implicit: Uint8Array;
  readonly explicitLE: Uint8Array;
  readonly explicitBE: Uint8Array;
}

const VR_CASES: readonly VRCase[] = [
  {
    vr: 'AE',
    what: '(0008,0054) Retrieve AE Title = PACS\\STORE (2 values)',
    tag: TAG.RetrieveAETitle,
    build: (ds) => ds.setString(TAG.RetrieveAETitle, ['PACS', 'STORE']),
    strings: ['PACS', 'STORE'],
    value: hex`"PACS\STORE"`,
    implicit: hex`0800 5400 0A000000 "PACS\STORE"`,
    explicitLE: hex`0800 5400 "AE" 0A00 "PACS\STORE"`,
    explicitBE: hex`0008 0054 "AE" 000A "PACS\STORE"`,
  },
  {
    vr: 'AS',
    what: "(0010,1010) Patient's Age = 045Y",
    tag: TAG.PatientAge,
    build: (ds) => ds.setString(TAG.PatientAge, '045Y'),
    strings: ['045Y'],
    implicit: hex`1000 1010 04000000 "045Y"`,
    explicitLE: hex`1000 1010 "AS" 0400 "045Y"`,
    explicitBE: hex`0010 1010 "AS" 0004 "045Y"`,
  },
  {
    vr: 'AT',
    what: '(0028,0009) Frame Increment Pointer = (0018,1063)\\(0018,1065)',
    tag: TAG.FrameIncrementPointer,
    build: (ds) => ds.setNumbers(TAG.FrameIncrementPointer, [0x00181063, 0x00181065]),
    numbers: [0x00181063, 0x00181065],
    value: hex`1800 6310 1800 6510`,
    implicit: hex`2800 0900 08000000 1800 6310 1800 6510`,
    explicitLE: hex`2800 0900 "AT" 0800 1800 6310 1800 6510`,
    explicitBE: hex`0028 0009 "AT" 0008 0018 1063 0018 1065`,
  },
  {
    vr: 'CS',
    what: '(0008,0008) Image Type = ORIGINAL\\PRIMARY\\AXIAL (3 values)',
    tag: TAG.ImageType,
    build: (ds) => ds.setString(TAG.ImageType, ['ORIGINAL', 'PRIMARY', 'AXIAL']),
    strings: ['ORIGINAL', 'PRIMARY', 'AXIAL'],
    implicit: hex`0800 0800 16000000 "ORIGINAL\PRIMARY\AXIAL"`,
    explicitLE: hex`0800 0800 "CS" 1600 "ORIGINAL\PRIMARY\AXIAL"`,
    explicitBE: hex`0008 0008 "CS" 0016 "ORIGINAL\PRIMARY\AXIAL"`,
  },
  {
    vr: 'DA',
    what: '(0008,0020) Study Date = 20240131',
    tag: TAG.StudyDate,
    build: (ds) => ds.setString(TAG.StudyDate, '20240131'),
    strings: ['20240131'],
    implicit: hex`0800 2000 08000000 "20240131"`,
    explicitLE: hex`0800 2000 "DA" 0800 "20240131"`,
    explicitBE: hex`0008 0020 "DA" 0008 "20240131"`,
  },
  {
    vr: 'DS',
    what: '(0028,0030) Pixel Spacing = -1.5\\2.25 (9 characters, padded with a space)',
    tag: TAG.PixelSpacing,
    build: (ds) => ds.setNumbers(TAG.PixelSpacing, [-1.5, 2.25]),
    numbers: [-1.5, 2.25],
    strings: ['-1.5', '2.25'],
    value: hex`"-1.5\2.25 "`,
    implicit: hex`2800 3000 0A000000 "-1.5\2.25 "`,
    explicitLE: hex`2800 3000 "DS" 0A00 "-1.5\2.25 "`,
    explicitBE: hex`0028 0030 "DS" 000A "-1.5\2.25 "`,
  },
  {
    vr: 'DT',
    what: '(0008,002A) Acquisition DateTime = 20240131120000.5',
    tag: TAG.AcquisitionDateTime,
    build: (ds) => ds.setString(TAG.AcquisitionDateTime, '20240131120000.5'),
    strings: ['20240131120000.5'],
    implicit: hex`0800 2A00 10000000 "20240131120000.5"`,
    explicitLE: hex`0800 2A00 "DT" 1000 "20240131120000.5"`,
    explicitBE: hex`0008 002A "DT" 0010 "20240131120000.5"`,
  },
  {
    vr: 'FD',
    what: '(0008,1163) Time Range = 1.5\\-2',
    tag: TAG.TimeRange,
    build: (ds) => ds.setNumbers(TAG.TimeRange, [1.5, -2]),
    numbers: [1.5, -2],
    value: hex`00000000 0000F83F 00000000 000000C0`,
    implicit: hex`0800 6311 10000000 00000000 0000F83F 00000000 000000C0`,
    explicitLE: hex`0800 6311 "FD" 1000 00000000 0000F83F 00000000 000000C0`,
    explicitBE: hex`0008 1163 "FD" 0010 3FF80000 00000000 C0000000 00000000`,
  },
  {
    vr: 'FL',
    what: '(0018,605A) Table of Parameter Values = 0.5\\-1',
    tag: TAG.TableOfParameterValues,
    build: (ds) => ds.setNumbers(TAG.TableOfParameterValues, [0.5, -1]),
    numbers: [0.5, -1],
    value: hex`0000003F 000080BF`,
    implicit: hex`1800 5A60 08000000 0000003F 000080BF`,
    explicitLE: hex`1800 5A60 "FL" 0800 0000003F 000080BF`,
    explicitBE: hex`0018 605A "FL" 0008 3F000000 BF800000`,
  },
  {
    vr: 'IS',
    what: '(0008,1160) Referenced Frame Number = 1\\22\\-3 (7 characters, padded with a space)',
    tag: TAG.ReferencedFrameNumber,
    build: (ds) => ds.setNumbers(TAG.ReferencedFrameNumber, [1, 22, -3]),
    numbers: [1, 22, -3],
    value: hex`"1\22\-3 "`,
    implicit: hex`0800 6011 08000000 "1\22\-3 "`,
    explicitLE: hex`0800 6011 "IS" 0800 "1\22\-3 "`,
    explicitBE: hex`0008 1160 "IS" 0008 "1\22\-3 "`,
  },
  {
    vr: 'LO',
    what: '(0008,0070) Manufacturer = ACME Medical',
    tag: TAG.Manufacturer,
    build: (ds) => ds.setString(TAG.Manufacturer, 'ACME Medical'),
    strings: ['ACME Medical'],
    implicit: hex`0800 7000 0C000000 "ACME Medical"`,
    explicitLE: hex`0800 7000 "LO" 0C00 "ACME Medical"`,
    explicitBE: hex`0008 0070 "LO" 000C "ACME Medical"`,
  },
  {
    vr: 'LT',
    what: '(0008,0108) Extended Code Meaning = "A\\B c" (one value: LT does not split at \\)',
    tag: TAG.ExtendedCodeMeaning,
    build: (ds) => ds.setString(TAG.ExtendedCodeMeaning, 'A\\B c'),
    strings: ['A\\B c'],
    value: hex`"A\B c "`,
    implicit: hex`0800 0801 06000000 "A\B c "`,
    explicitLE: hex`0800 0801 "LT" 0600 "A\B c "`,
    explicitBE: hex`0008 0108 "LT" 0006 "A\B c "`,
  },
  {
    vr: 'OB',
    what: '(0042,0011) Encapsulated Document = 01 02 03 (odd, padded with 00)',
    tag: TAG.EncapsulatedDocument,
    build: (ds) => ds.setBytes(TAG.EncapsulatedDocument, Uint8Array.of(1, 2, 3)),
    value: hex`01020300`,
    implicit: hex`4200 1100 04000000 01020300`,
    explicitLE: hex`4200 1100 "OB" 0000 04000000 01020300`,
    explicitBE: hex`0042 0011 "OB" 0000 00000004 01020300`,
  },
  {
    vr: 'OD',
    what: '(0066,0022) Double Point Coordinates Data = 1\\-0.5',
    tag: TAG.DoublePointCoordinatesData,
    build: (ds) => ds.setNumbers(TAG.DoublePointCoordinatesData, [1, -0.5]),
    numbers: [1, -0.5],
    value: hex`00000000 0000F03F 00000000 0000E0BF`,
    implicit: hex`6600 2200 10000000 00000000 0000F03F 00000000 0000E0BF`,
    explicitLE: hex`6600 2200 "OD" 0000 10000000 00000000 0000F03F 00000000 0000E0BF`,
    explicitBE: hex`0066 0022 "OD" 0000 00000010 3FF00000 00000000 BFE00000 00000000`,
  },
  {
    vr: 'OF',
    what: '(0064,0009) Vector Grid Data = 1\\-1',
    tag: TAG.VectorGridData,
    build: (ds) => ds.setNumbers(TAG.VectorGridData, [1, -1]),
    numbers: [1, -1],
    value: hex`0000803F 000080BF`,
    implicit: hex`6400 0900 08000000 0000803F 000080BF`,
    explicitLE: hex`6400 0900 "OF" 0000 08000000 0000803F 000080BF`,
    explicitBE: hex`0064 0009 "OF" 0000 00000008 3F800000 BF800000`,
  },
  {
    vr: 'OL',
    what: '(0066,0040) Long Primitive Point Index List = 1\\0x01020304',
    tag: TAG.LongPrimitivePointIndexList,
    build: (ds) => ds.setNumbers(TAG.LongPrimitivePointIndexList, [1, 0x01020304]),
    numbers: [1, 0x01020304],
    value: hex`01000000 04030201`,
    implicit: hex`6600 4000 08000000 01000000 04030201`,
    explicitLE: hex`6600 4000 "OL" 0000 08000000 01000000 04030201`,
    explicitBE: hex`0066 0040 "OL" 0000 00000008 00000001 01020304`,
  },
  {
    vr: 'OV',
    what: '(7FE0,0001) Extended Offset Table = 0\\0x0102030405060708',
    tag: TAG.ExtendedOffsetTable,
    build: (ds) => ds.setNumbers(TAG.ExtendedOffsetTable, [0n, 0x0102030405060708n]),
    bigints: [0n, 0x0102030405060708n],
    value: hex`00000000 00000000 08070605 04030201`,
    implicit: hex`E07F 0100 10000000 00000000 00000000 08070605 04030201`,
    explicitLE: hex`E07F 0100 "OV" 0000 10000000 00000000 00000000 08070605 04030201`,
    explicitBE: hex`7FE0 0001 "OV" 0000 00000010 00000000 00000000 01020304 05060708`,
  },
  {
    vr: 'OW',
    what: '(0028,1201) Red Palette Color LUT Data = 0x0102\\0xFFFE',
    tag: TAG.RedPaletteColorLookupTableData,
    build: (ds) => ds.setNumbers(TAG.RedPaletteColorLookupTableData, [0x0102, 0xfffe]),
    numbers: [0x0102, 0xfffe],
    value: hex`0201 FEFF`,
    implicit: hex`2800 0112 04000000 0201 FEFF`,
    explicitLE: hex`2800 0112 "OW" 0000 04000000 0201 FEFF`,
    explicitBE: hex`0028 1201 "OW" 0000 00000004 0102 FFFE`,
  },
  {
    vr: 'PN',
    what: "(0010,0010) Patient's Name = Doe^John",
    tag: TAG.PatientName,
    build: (ds) => ds.setString(TAG.PatientName, 'Doe^John'),
    strings: ['Doe^John'],
    implicit: hex`1000 1000 08000000 "Doe^John"`,
    explicitLE: hex`1000 1000 "PN" 0800 "Doe^John"`,
    explicitBE: hex`0010 0010 "PN" 0008 "Doe^John"`,
  },
  {
    vr: 'SH',
    what: '(0008,0050) Accession Number = ACC1',
    tag: TAG.AccessionNumber,
    build: (ds) => ds.setString(TAG.AccessionNumber, 'ACC1'),
    strings: ['ACC1'],
    implicit: hex`0800 5000 04000000 "ACC1"`,
    explicitLE: hex`0800 5000 "SH" 0400 "ACC1"`,
    explicitBE: hex`0008 0050 "SH" 0004 "ACC1"`,
  },
  {
    vr: 'SL',
    what: '(0018,6020) Reference Pixel X0 = -2',
    tag: TAG.ReferencePixelX0,
    build: (ds) => ds.setNumbers(TAG.ReferencePixelX0, -2),
    numbers: [-2],
    value: hex`FEFFFFFF`,
    implicit: hex`1800 2060 04000000 FEFFFFFF`,
    explicitLE: hex`1800 2060 "SL" 0400 FEFFFFFF`,
    explicitBE: hex`0018 6020 "SL" 0004 FFFFFFFE`,
  },
  {
    vr: 'SQ',
    what: '(0008,1140) Referenced Image Sequence: one item { (0008,1155) = 1.2 }',
    tag: TAG.ReferencedImageSequence,
    build: (ds) => {
      const item = new DataSet().setString(TAG.ReferencedSOPInstanceUID, '1.2');
      ds.setSequence(TAG.ReferencedImageSequence, [item]);
    },
    implicit: hex`0800 4011 FFFFFFFF
                    FEFF 00E0 FFFFFFFF  0800 5511 04000000 "1.2" 00  FEFF 0DE0 00000000
                  FEFF DDE0 00000000`,
    explicitLE: hex`0800 4011 "SQ" 0000 FFFFFFFF
                      FEFF 00E0 FFFFFFFF  0800 5511 "UI" 0400 "1.2" 00  FEFF 0DE0 00000000
                    FEFF DDE0 00000000`,
    explicitBE: hex`0008 1140 "SQ" 0000 FFFFFFFF
                      FFFE E000 FFFFFFFF  0008 1155 "UI" 0004 "1.2" 00  FFFE E00D 00000000
                    FFFE E0DD 00000000`,
  },
  {
    vr: 'SS',
    what: '(0018,9219) Tag Angle Second Axis = -300',
    tag: TAG.TagAngleSecondAxis,
    build: (ds) => ds.setNumbers(TAG.TagAngleSecondAxis, -300),
    numbers: [-300],
    value: hex`D4FE`,
    implicit: hex`1800 1992 02000000 D4FE`,
    explicitLE: hex`1800 1992 "SS" 0200 D4FE`,
    explicitBE: hex`0018 9219 "SS" 0002 FED4`,
  },
  {
    vr: 'ST',
    what: '(0008,0081) Institution Address = "1 Main St" (odd, padded with a space)',
    tag: TAG.InstitutionAddress,
    build: (ds) => ds.setString(TAG.InstitutionAddress, '1 Main St'),
    strings: ['1 Main St'],
    value: hex`"1 Main St "`,
    implicit: hex`0800 8100 0A000000 "1 Main St "`,
    explicitLE: hex`0800 8100 "ST" 0A00 "1 Main St "`,
    explicitBE: hex`0008 0081 "ST" 000A "1 Main St "`,
  },
  {
    vr: 'SV',
    what: '(0072,0082) Selector SV Value = -1\\2^40',
    tag: TAG.SelectorSVValue,
    build: (ds) => ds.setNumbers(TAG.SelectorSVValue, [-1n, 2n ** 40n]),
    bigints: [-1n, 2n ** 40n],
    value: hex`FFFFFFFF FFFFFFFF 00000000 00010000`,
    implicit: hex`7200 8200 10000000 FFFFFFFF FFFFFFFF 00000000 00010000`,
    explicitLE: hex`7200 8200 "SV" 0000 10000000 FFFFFFFF FFFFFFFF 00000000 00010000`,
    explicitBE: hex`0072 0082 "SV" 0000 00000010 FFFFFFFF FFFFFFFF 00000100 00000000`,
  },
  {
    vr: 'TM',
    what: '(0008,0030) Study Time = 123000.25 (odd, padded with a space)',
    tag: TAG.StudyTime,
    build: (ds) => ds.setString(TAG.StudyTime, '123000.25'),
    strings: ['123000.25'],
    value: hex`"123000.25 "`,
    implicit: hex`0800 3000 0A000000 "123000.25 "`,
    explicitLE: hex`0800 3000 "TM" 0A00 "123000.25 "`,
    explicitBE: hex`0008 0030 "TM" 000A "123000.25 "`,
  },
  {
    vr: 'UC',
    what: '(0008,0119) Long Code Value = LONG-CODE (odd, padded with a space)',
    tag: TAG.LongCodeValue,
    build: (ds) => ds.setString(TAG.LongCodeValue, 'LONG-CODE'),
    strings: ['LONG-CODE'],
    value: hex`"LONG-CODE "`,
    implicit: hex`0800 1901 0A000000 "LONG-CODE "`,
    explicitLE: hex`0800 1901 "UC" 0000 0A000000 "LONG-CODE "`,
    explicitBE: hex`0008 0119 "UC" 0000 0000000A "LONG-CODE "`,
  },
  {
    vr: 'UI',
    what: '(0008,0018) SOP Instance UID = 1.2.840.1 (odd, padded with NUL)',
    tag: TAG.SOPInstanceUID,
    build: (ds) => ds.setString(TAG.SOPInstanceUID, '1.2.840.1'),
    strings: ['1.2.840.1'],
    value: hex`"1.2.840.1" 00`,
    implicit: hex`0800 1800 0A000000 "1.2.840.1" 00`,
    explicitLE: hex`0800 1800 "UI" 0A00 "1.2.840.1" 00`,
    explicitBE: hex`0008 0018 "UI" 000A "1.2.840.1" 00`,
  },
  {
    vr: 'UL',
    what: '(0008,1161) Simple Frame List = 1\\0x80000000',
    tag: TAG.SimpleFrameList,
    build: (ds) => ds.setNumbers(TAG.SimpleFrameList, [1, 0x80000000]),
    numbers: [1, 0x80000000],
    value: hex`01000000 00000080`,
    implicit: hex`0800 6111 08000000 01000000 00000080`,
    explicitLE: hex`0800 6111 "UL" 0800 01000000 00000080`,
    explicitBE: hex`0008 1161 "UL" 0008 00000001 80000000`,
  },
  {
    vr: 'UN',
    what: '(0072,006D) Selector UN Value = 01 02 03 04 (never byte-swapped)',
    tag: TAG.SelectorUNValue,
    build: (ds) => ds.setBytes(TAG.SelectorUNValue, Uint8Array.of(1, 2, 3, 4)),
    value: hex`01020304`,
    implicit: hex`7200 6D00 04000000 01020304`,
    explicitLE: hex`7200 6D00 "UN" 0000 04000000 01020304`,
    explicitBE: hex`0072 006D "UN" 0000 00000004 01020304`,
  },
  {
    vr: 'UR',
    what: '(0008,1190) Retrieve URL = http://pacs/wado',
    tag: TAG.RetrieveURL,
    build: (ds) => ds.setString(TAG.RetrieveURL, 'http://pacs/wado'),
    strings: ['http://pacs/wado'],
    implicit: hex`0800 9011 10000000 "http://pacs/wado"`,
    explicitLE: hex`0800 9011 "UR" 0000 10000000 "http://pacs/wado"`,
    explicitBE: hex`0008 1190 "UR" 0000 00000010 "http://pacs/wado"`,
  },
  {
    vr: 'US',
    what: '(0028,0010) Rows = 512',
    tag: TAG.Rows,
    build: (ds) => ds.setNumbers(TAG.Rows, 512),
    numbers: [512],
    value: hex`0002`,
    implicit: hex`2800 1000 02000000 0002`,
    explicitLE: hex`2800 1000 "US" 0200 0002`,
    explicitBE: hex`0028 0010 "US" 0002 0200`,
  },
  {
    vr: 'UT',
    what: '(0040,A160) Text Value = "Free text" (odd, padded with a space)',
    tag: TAG.TextValue,
    build: (ds) => ds.setString(TAG.TextValue, 'Free text'),
    strings: ['Free text'],
    value: hex`"Free text "`,
    implicit: hex`4000 60A1 0A000000 "Free text "`,
    explicitLE: hex`4000 60A1 "UT" 0000 0A000000 "Free text "`,
    explicitBE: hex`0040 A160 "UT" 0000 0000000A "Free text "`,
  },
  {
    vr: 'UV',
    what: '(0072,0083) Selector UV Value = 2^64-1\\1',
    tag: TAG.SelectorUVValue,
    build: (ds) => ds.setNumbers(TAG.SelectorUVValue, [2n ** 64n - 1n, 1n]),
    bigints: [2n ** 64n - 1n, 1n],
    value: hex`FFFFFFFF FFFFFFFF 01000000 00000000`,
    implicit: hex`7200 8300 10000000 FFFFFFFF FFFFFFFF 01000000 00000000`,
    explicitLE: hex`7200 8300 "UV" 0000 10000000 FFFFFFFF FFFFFFFF 01000000 00000000`,
    explicitBE: hex`0072 0083 "UV" 0000 00000010 FFFFFFFF FFFFFFFF 00000000 00000001`,
  },
];

function goldenFor(c: VRCase, ts: string): Uint8Array {
  return ts === IMPLICIT_VR_LE ? c.implicit : ts === EXPLICIT_VR_LE ? c.explicitLE : c.explicitBE;
}

describe('golden bytes: one element of every VR of PS3.5 6.2', () => {
  it('covers every VR', () => {
    const all =
      'AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV';
    assert.deepEqual(VR_CASES.map((c) => c.vr).join(' '), all);
  });

  for (const c of VR_CASES) {
    for (const [name, ts] of SYNTAXES) {
      it(`${c.vr} in ${name}: decodes ${c.what}`, () => {
        const ds = decode(goldenFor(c, ts), ts);
        assert.deepEqual([...ds.tags()], [c.tag]);
        const e = ds.get(c.tag);
        assert.equal(e?.vr, c.vr);
        if (c.vr === 'SQ') {
          const items = ds.sequence(c.tag);
          assert.equal(items?.length, 1);
          assert.deepEqual(items?.[0]?.strings(TAG.ReferencedSOPInstanceUID), ['1.2']);
          assert.equal(items?.[0]?.get(TAG.ReferencedSOPInstanceUID)?.vr, 'UI');
          return;
        }
        if (c.value) assert.equal(valueHex(ds, c.tag), toHex(c.value));
        if (c.strings) assert.deepEqual(ds.strings(c.tag), c.strings);
        if (c.numbers) assert.deepEqual(ds.numbers(c.tag), c.numbers);
        if (c.bigints) assert.deepEqual(decodeBigInts(ds.bytes(c.tag) ?? hex``, c.vr as 'SV'), c.bigints);
      });

      it(`${c.vr} in ${name}: encodes ${c.what}`, () => {
        const ds = new DataSet();
        c.build(ds);
        assert.equal(toHex(encodeDataSet(ds, ts)), toHex(goldenFor(c, ts)));
      });
    }
  }
});

// --- odd lengths ----------------------------------------------------------------------------

describe('odd-length values', () => {
  // Odd lengths are illegal (PS3.5 7.1.1) but exist in the field: read as they are, written padded.
  const odd = {
    explicitLE: hex`0800 1800 "UI" 0500 "1.2.3"
                    1000 1000 "PN" 0300 "Doe"
                    4200 1100 "OB" 0000 01000000 FF`,
    implicit: hex`0800 1800 05000000 "1.2.3"
                  1000 1000 03000000 "Doe"
                  4200 1100 01000000 FF`,
    explicitBE: hex`0008 0018 "UI" 0005 "1.2.3"
                    0010 0010 "PN" 0003 "Doe"
                    0042 0011 "OB" 0000 00000001 FF`,
  };
  const padded = {
    explicitLE: hex`0800 1800 "UI" 0600 "1.2.3" 00
                    1000 1000 "PN" 0400 "Doe "
                    4200 1100 "OB" 0000 02000000 FF00`,
    implicit: hex`0800 1800 06000000 "1.2.3" 00
                  1000 1000 04000000 "Doe "
                  4200 1100 02000000 FF00`,
    explicitBE: hex`0008 0018 "UI" 0006 "1.2.3" 00
                    0010 0010 "PN" 0004 "Doe "
                    0042 0011 "OB" 0000 00000002 FF00`,
  };
  for (const [name, ts] of SYNTAXES) {
    const key = ts === IMPLICIT_VR_LE ? 'implicit' : ts === EXPLICIT_VR_LE ? 'explicitLE' : 'explicitBE';
    it(`${name}: reads odd values as they are and writes them padded (UI with NUL, PN with space, OB with 00)`, () => {
      const ds = decode(odd[key], ts);
      assert.equal(valueHex(ds, TAG.SOPInstanceUID), toHex(hex`"1.2.3"`));
      assert.equal(valueHex(ds, TAG.PatientName), toHex(hex`"Doe"`));
      assert.equal(valueHex(ds, TAG.EncapsulatedDocument), 'ff');
      assert.deepEqual(ds.strings(TAG.PatientName), ['Doe']);
      assert.equal(toHex(encodeDataSet(ds, ts)), toHex(padded[key]));
    });
  }
});

// --- sequences --------------------------------------------------------------------------------

/*
 * (0008,1110) Referenced Study Sequence, undefined length: an empty item of defined length 0 and
 *             an empty item of undefined length
 * (0008,1115) Referenced Series Sequence, defined length: one item of defined length holding
 *             (0008,1140) Referenced Image Sequence, undefined length: one undefined-length item
 *                         { (0008,1155) = 1.3 }
 *             (0020,000E) Series Instance UID = 1.2
 * (0008,1120) Referenced Patient Sequence, defined length 0 (empty)
 * (0008,1125) Referenced Visit Sequence, undefined length, empty
 */
const SEQUENCES = {
  explicitLE: hex`
    0800 1011 "SQ" 0000 FFFFFFFF
      FEFF 00E0 00000000
      FEFF 00E0 FFFFFFFF FEFF 0DE0 00000000
    FEFF DDE0 00000000
    0800 1511 "SQ" 0000 44000000
      FEFF 00E0 3C000000
        0800 4011 "SQ" 0000 FFFFFFFF
          FEFF 00E0 FFFFFFFF 0800 5511 "UI" 0400 "1.3" 00 FEFF 0DE0 00000000
        FEFF DDE0 00000000
        2000 0E00 "UI" 0400 "1.2" 00
    0800 2011 "SQ" 0000 00000000
    0800 2511 "SQ" 0000 FFFFFFFF FEFF DDE0 00000000`,
  implicit: hex`
    0800 1011 FFFFFFFF
      FEFF 00E0 00000000
      FEFF 00E0 FFFFFFFF FEFF 0DE0 00000000
    FEFF DDE0 00000000
    0800 1511 40000000
      FEFF 00E0 38000000
        0800 4011 FFFFFFFF
          FEFF 00E0 FFFFFFFF 0800 5511 04000000 "1.3" 00 FEFF 0DE0 00000000
        FEFF DDE0 00000000
        2000 0E00 04000000 "1.2" 00
    0800 2011 00000000
    0800 2511 FFFFFFFF FEFF DDE0 00000000`,
  explicitBE: hex`
    0008 1110 "SQ" 0000 FFFFFFFF
      FFFE E000 00000000
      FFFE E000 FFFFFFFF FFFE E00D 00000000
    FFFE E0DD 00000000
    0008 1115 "SQ" 0000 00000044
      FFFE E000 0000003C
        0008 1140 "SQ" 0000 FFFFFFFF
          FFFE E000 FFFFFFFF 0008 1155 "UI" 0004 "1.3" 00 FFFE E00D 00000000
        FFFE E0DD 00000000
        0020 000E "UI" 0004 "1.2" 00
    0008 1120 "SQ" 0000 00000000
    0008 1125 "SQ" 0000 FFFFFFFF FFFE E0DD 00000000`,
};

/** What the writer makes of SEQUENCES: every sequence and item in undefined length (PS3.5 7.5). */
const SEQUENCES_WRITTEN = {
  explicitLE: hex`
    0800 1011 "SQ" 0000 FFFFFFFF
      FEFF 00E0 FFFFFFFF FEFF 0DE0 00000000
      FEFF 00E0 FFFFFFFF FEFF 0DE0 00000000
    FEFF DDE0 00000000
    0800 1511 "SQ" 0000 FFFFFFFF
      FEFF 00E0 FFFFFFFF
        0800 4011 "SQ" 0000 FFFFFFFF
          FEFF 00E0 FFFFFFFF 0800 5511 "UI" 0400 "1.3" 00 FEFF 0DE0 00000000
        FEFF DDE0 00000000
        2000 0E00 "UI" 0400 "1.2" 00
      FEFF 0DE0 00000000
    FEFF DDE0 00000000
    0800 2011 "SQ" 0000 FFFFFFFF FEFF DDE0 00000000
    0800 2511 "SQ" 0000 FFFFFFFF FEFF DDE0 00000000`,
  implicit: hex`
    0800 1011 FFFFFFFF
      FEFF 00E0 FFFFFFFF FEFF 0DE0 00000000
      FEFF 00E0 FFFFFFFF FEFF 0DE0 00000000
    FEFF DDE0 00000000
    0800 1511 FFFFFFFF
      FEFF 00E0 FFFFFFFF
        0800 4011 FFFFFFFF
          FEFF 00E0 FFFFFFFF 0800 5511 04000000 "1.3" 00 FEFF 0DE0 00000000
        FEFF DDE0 00000000
        2000 0E00 04000000 "1.2" 00
      FEFF 0DE0 00000000
    FEFF DDE0 00000000
    0800 2011 FFFFFFFF FEFF DDE0 00000000
    0800 2511 FFFFFFFF FEFF DDE0 00000000`,
  explicitBE: hex`
    0008 1110 "SQ" 0000 FFFFFFFF
      FFFE E000 FFFFFFFF FFFE E00D 00000000
      FFFE E000 FFFFFFFF FFFE E00D 00000000
    FFFE E0DD 00000000
    0008 1115 "SQ" 0000 FFFFFFFF
      FFFE E000 FFFFFFFF
        0008 1140 "SQ" 0000 FFFFFFFF
          FFFE E000 FFFFFFFF 0008 1155 "UI" 0004 "1.3" 00 FFFE E00D 00000000
        FFFE E0DD 00000000
        0020 000E "UI" 0004 "1.2" 00
      FFFE E00D 00000000
    FFFE E0DD 00000000
    0008 1120 "SQ" 0000 FFFFFFFF FFFE E0DD 00000000
    0008 1125 "SQ" 0000 FFFFFFFF FFFE E0DD 00000000`,
};

describe('sequences: undefined and defined length, empty, nested', () => {
  for (const [name, ts] of SYNTAXES) {
    const key = ts === IMPLICIT_VR_LE ? 'implicit' : ts === EXPLICIT_VR_LE ? 'explicitLE' : 'explicitBE';
    it(`${name}: decodes the structure`, () => {
      const ds = decode(SEQUENCES[key], ts);
      assert.deepEqual(
        [...ds.tags()],
        [
          TAG.ReferencedStudySequence,
          TAG.ReferencedSeriesSequence,
          TAG.ReferencedPatientSequence,
          TAG.ReferencedVisitSequence,
        ],
      );
      const study = ds.sequence(TAG.ReferencedStudySequence);
      assert.equal(study?.length, 2);
      assert.equal(study?.[0]?.size, 0);
      assert.equal(study?.[1]?.size, 0);
      const series = ds.sequence(TAG.ReferencedSeriesSequence);
      assert.equal(series?.length, 1);
      const item = series?.[0];
      assert.deepEqual(item?.strings(TAG.SeriesInstanceUID), ['1.2']);
      const images = item?.sequence(TAG.ReferencedImageSequence);
      assert.equal(images?.length, 1);
      assert.deepEqual(images?.[0]?.strings(TAG.ReferencedSOPInstanceUID), ['1.3']);
      assert.equal(images?.[0]?.parent, item, 'a nested item knows its enclosing data set');
      assert.deepEqual(ds.sequence(TAG.ReferencedPatientSequence), []);
      assert.deepEqual(ds.sequence(TAG.ReferencedVisitSequence), []);
    });
    it(`${name}: re-encodes with undefined lengths`, () => {
      const ds = decode(SEQUENCES[key], ts);
      assert.equal(toHex(encodeDataSet(ds, ts)), toHex(SEQUENCES_WRITTEN[key]));
    });
  }

  it('reports sequence and item lengths as found (defined or undefined)', () => {
    const rec = new Recorder();
    const p = new DicomParser(rec, { format: 'dataset', transferSyntax: EXPLICIT_VR_LE });
    p.write(SEQUENCES.explicitLE);
    p.end();
    const starts = rec.events.filter((e) => e[0] === 'sequenceStart' || e[0] === 'itemStart');
    assert.deepEqual(starts, [
      ['sequenceStart', TAG.ReferencedStudySequence, 0xffffffff, 0],
      ['itemStart', 0, 12],
      ['itemStart', 0xffffffff, 20],
      ['sequenceStart', TAG.ReferencedSeriesSequence, 0x44, 44],
      ['itemStart', 0x3c, 56],
      ['sequenceStart', TAG.ReferencedImageSequence, 0xffffffff, 64],
      ['itemStart', 0xffffffff, 76],
      ['sequenceStart', TAG.ReferencedPatientSequence, 0, 124],
      ['sequenceStart', TAG.ReferencedVisitSequence, 0xffffffff, 136],
    ]);
  });
});

// --- UN of undefined length ---------------------------------------------------------------------

describe('UN with undefined length (PS3.5 6.2.2: an Implicit VR LE sequence)', () => {
  /*
   * (0009,0010) Private Creator = ACME
   * (0009,1010) UN, undefined length: one item { (0008,1155) = 1.2 (implicit VR) }
   * (0010,0010) Patient's Name = Doe^ (explicit VR again after the UN)
   */
  const explicitLE = hex`
    0900 1000 "LO" 0400 "ACME"
    0900 1010 "UN" 0000 FFFFFFFF
      FEFF 00E0 FFFFFFFF 0800 5511 04000000 "1.2" 00 FEFF 0DE0 00000000
    FEFF DDE0 00000000
    1000 1000 "PN" 0400 "Doe^"`;

  it('reads its content as Implicit VR LE items and goes back to the stream syntax after it', () => {
    const ds = decode(explicitLE, EXPLICIT_VR_LE);
    assert.deepEqual(ds.strings(0x00090010), ['ACME']);
    const items = ds.sequence(0x00091010);
    assert.equal(items?.length, 1);
    assert.equal(items?.[0]?.get(TAG.ReferencedSOPInstanceUID)?.vr, 'UI');
    assert.deepEqual(items?.[0]?.strings(TAG.ReferencedSOPInstanceUID), ['1.2']);
    assert.deepEqual(ds.strings(TAG.PatientName), ['Doe^']);
  });

  it('reads it in an Explicit VR BE stream too (the content stays Implicit VR LE)', () => {
    const be = hex`
      0009 0010 "LO" 0004 "ACME"
      0009 1010 "UN" 0000 FFFFFFFF
        FEFF 00E0 FFFFFFFF 0800 5511 04000000 "1.2" 00 FEFF 0DE0 00000000
      FEFF DDE0 00000000
      0010 0010 "PN" 0004 "Doe^"`;
    const ds = decode(be, EXPLICIT_VR_BE);
    assert.deepEqual(ds.sequence(0x00091010)?.[0]?.strings(TAG.ReferencedSOPInstanceUID), ['1.2']);
    assert.deepEqual(ds.strings(TAG.PatientName), ['Doe^']);
  });

  it('is written as a sequence (SQ) of the target syntax', () => {
    const ds = decode(explicitLE, EXPLICIT_VR_LE);
    const expected = hex`
      0900 1000 "LO" 0400 "ACME"
      0900 1010 "SQ" 0000 FFFFFFFF
        FEFF 00E0 FFFFFFFF 0800 5511 "UI" 0400 "1.2" 00 FEFF 0DE0 00000000
      FEFF DDE0 00000000
      1000 1000 "PN" 0400 "Doe^"`;
    assert.equal(toHex(encodeDataSet(ds, EXPLICIT_VR_LE)), toHex(expected));
  });

  it('a private sequence in Implicit VR (unknown tag, undefined length) is read as a sequence', () => {
    const implicit = hex`
      0900 1000 04000000 "ACME"
      0900 1010 FFFFFFFF
        FEFF 00E0 FFFFFFFF 0800 5511 04000000 "1.2" 00 FEFF 0DE0 00000000
      FEFF DDE0 00000000`;
    const ds = decode(implicit, IMPLICIT_VR_LE);
    assert.deepEqual(ds.sequence(0x00091010)?.[0]?.strings(TAG.ReferencedSOPInstanceUID), ['1.2']);
  });
});

// --- encapsulated pixel data ---------------------------------------------------------------------

/*
 * (0028,0008) Number of Frames = 2
 * (7FE0,0010) Pixel Data, OB, undefined length (PS3.5 A.4):
 *   Basic Offset Table: frame 1 at 0, frame 2 at 12
 *   fragment FFD8FFD9          (frame 1)
 *   fragment FFD80102          (frame 2, first part)
 *   fragment 0304FFD9          (frame 2, second part)
 *   sequence delimiter
 * (FFFC,FFFC) Data Set Trailing Padding = 00 00 (an element after the pixel data)
 */
const ENCAPSULATED = hex`
  2800 0800 "IS" 0200 "2 "
  E07F 1000 "OB" 0000 FFFFFFFF
    FEFF 00E0 08000000 00000000 0C000000
    FEFF 00E0 04000000 FFD8FFD9
    FEFF 00E0 04000000 FFD80102
    FEFF 00E0 04000000 0304FFD9
  FEFF DDE0 00000000
  FCFF FCFF "OB" 0000 02000000 0000`;

describe('encapsulated pixel data', () => {
  it('decodes the offset table and every fragment, and the element after the pixel data', () => {
    const ds = decode(ENCAPSULATED, JPEG_BASELINE);
    const pd = ds.get(TAG.PixelData);
    assert.equal(pd?.vr, 'OB');
    const value = pd?.value as PixelFragments | undefined;
    assert.equal(value?.kind, 'fragments');
    const frags = value?.fragments.map(toHex);
    assert.deepEqual(frags, ['000000000c000000', 'ffd8ffd9', 'ffd80102', '0304ffd9']);
    assert.deepEqual(ds.numbers(TAG.NumberOfFrames), [2]);
    assert.equal(valueHex(ds, TAG.DataSetTrailingPadding), '0000');
  });

  it('re-encodes byte for byte', () => {
    const ds = decode(ENCAPSULATED, JPEG_BASELINE);
    assert.equal(toHex(encodeDataSet(ds, JPEG_BASELINE)), toHex(ENCAPSULATED));
  });

  it('reports fragments as events with their lengths', () => {
    const rec = new Recorder();
    const p = new DicomParser(rec, { format: 'dataset', transferSyntax: JPEG_BASELINE });
    p.write(ENCAPSULATED);
    p.end();
    assert.deepEqual(rec.events.slice(1, -1), [
      ['fragmentsStart', TAG.PixelData, 'OB', 10],
      ['fragmentStart', 8, 22],
      ['chunk', '000000000c000000'],
      ['fragmentEnd'],
      ['fragmentStart', 4, 38],
      ['chunk', 'ffd8ffd9'],
      ['fragmentEnd'],
      ['fragmentStart', 4, 50],
      ['chunk', 'ffd80102'],
      ['fragmentEnd'],
      ['fragmentStart', 4, 62],
      ['chunk', '0304ffd9'],
      ['fragmentEnd'],
      ['fragmentsEnd'],
    ]);
  });

  it('an empty offset table and an odd-length fragment (written padded with 00)', () => {
    const ds = new DataSet().set({
      tag: TAG.PixelData,
      vr: 'OB',
      value: { kind: 'fragments', fragments: [new Uint8Array(0), Uint8Array.of(0xff, 0xd8, 0xd9)] },
    });
    const expected = hex`
      E07F 1000 "OB" 0000 FFFFFFFF
        FEFF 00E0 00000000
        FEFF 00E0 04000000 FFD8D900
      FEFF DDE0 00000000`;
    assert.equal(toHex(encodeDataSet(ds, JPEG_BASELINE)), toHex(expected));
  });

  it('cannot be written in a native syntax (PS3.5 A.4)', () => {
    const ds = decode(ENCAPSULATED, JPEG_BASELINE);
    for (const ts of [IMPLICIT_VR_LE, EXPLICIT_VR_BE])
      assert.throws(() => encodeDataSet(ds, ts), { code: 'ERR_DICOM_ENCODE' });
  });
});

// --- group lengths ------------------------------------------------------------------------------

describe('group length elements (gggg,0000)', () => {
  // (0008,0000) Group Length = 10, (0008,0060) Modality = CT, (0010,0000) = 16, (0010,0010) = Doe^John
  const explicitLE = hex`
    0800 0000 "UL" 0400 0A000000
    0800 6000 "CS" 0200 "CT"
    1000 0000 "UL" 0400 10000000
    1000 1000 "PN" 0800 "Doe^John"`;
  const implicit = hex`
    0800 0000 04000000 0A000000
    0800 6000 02000000 "CT"
    1000 0000 04000000 10000000
    1000 1000 08000000 "Doe^John"`;

  it('are read as UL in both syntaxes', () => {
    for (const [bytes, ts] of [
      [explicitLE, EXPLICIT_VR_LE],
      [implicit, IMPLICIT_VR_LE],
    ] as const) {
      const ds = decode(bytes, ts);
      assert.equal(ds.get(0x00080000)?.vr, 'UL');
      assert.deepEqual(ds.numbers(0x00080000), [10]);
      assert.deepEqual(ds.numbers(0x00100000), [16]);
      assert.deepEqual(ds.strings(TAG.Modality), ['CT']);
    }
  });

  it('are dropped when writing (PS3.5 7.2: optional, and stale after re-encoding) unless kept on request', () => {
    const ds = decode(explicitLE, EXPLICIT_VR_LE);
    assert.equal(
      toHex(encodeDataSet(ds, EXPLICIT_VR_LE)),
      toHex(hex`0800 6000 "CS" 0200 "CT" 1000 1000 "PN" 0800 "Doe^John"`),
    );
    assert.equal(toHex(encodeDataSet(ds, EXPLICIT_VR_LE, { keepGroupLengths: true })), toHex(explicitLE));
    assert.equal(toHex(encodeDataSet(ds, IMPLICIT_VR_LE, { keepGroupLengths: true })), toHex(implicit));
  });
});

// --- ambiguous VRs in implicit VR -----------------------------------------------------------------

describe('ambiguous VRs in Implicit VR LE (PS3.5 A.1, C.7.6.3)', () => {
  const body = (pixelRepresentation: string) => hex`
    2800 0301 02000000 ${pixelRepresentation}
    2800 0601 02000000 00FF
    2800 0701 02000000 FF00
    E07F 1000 04000000 01020304`;

  it('US or SS: signed when Pixel Representation is 1', () => {
    // (0028,0103) = 1, (0028,0106) = 0xFF00 -> -256, (0028,0107) = 0x00FF -> 255, (7FE0,0010) -> OW
    const ds = decode(body('0100'), IMPLICIT_VR_LE);
    assert.equal(ds.get(TAG.SmallestImagePixelValue)?.vr, 'SS');
    assert.deepEqual(ds.numbers(TAG.SmallestImagePixelValue), [-256]);
    assert.equal(ds.get(TAG.LargestImagePixelValue)?.vr, 'SS');
    assert.deepEqual(ds.numbers(TAG.LargestImagePixelValue), [255]);
    assert.equal(ds.get(TAG.PixelData)?.vr, 'OW');
    assert.equal(
      toHex(encodeDataSet(ds, EXPLICIT_VR_LE)),
      toHex(hex`
        2800 0301 "US" 0200 0100
        2800 0601 "SS" 0200 00FF
        2800 0701 "SS" 0200 FF00
        E07F 1000 "OW" 0000 04000000 01020304`),
    );
  });

  it('US or SS: unsigned when Pixel Representation is 0', () => {
    const ds = decode(body('0000'), IMPLICIT_VR_LE);
    assert.equal(ds.get(TAG.SmallestImagePixelValue)?.vr, 'US');
    assert.deepEqual(ds.numbers(TAG.SmallestImagePixelValue), [0xff00]);
  });

  it('US or SS inside an item follows the Pixel Representation of the enclosing data set', () => {
    // (0028,0103) = 1, (0040,9096) Real World Value Mapping Sequence { (0028,0106) = 0xFFFE -> -2 }
    const ds = decode(
      hex`
        2800 0301 02000000 0100
        4000 9690 FFFFFFFF
          FEFF 00E0 FFFFFFFF 2800 0601 02000000 FEFF FEFF 0DE0 00000000
        FEFF DDE0 00000000`,
      IMPLICIT_VR_LE,
    );
    const item = ds.sequence(TAG.RealWorldValueMappingSequence)?.[0];
    assert.equal(item?.get(TAG.SmallestImagePixelValue)?.vr, 'SS');
    assert.deepEqual(item?.numbers(TAG.SmallestImagePixelValue), [-2]);
  });

  it('OB or OW: pixel data of a big endian stream stays as its VR says (OW swapped, OB not)', () => {
    const ow = decode(hex`7FE0 0010 "OW" 0000 00000004 0102 0304`, EXPLICIT_VR_BE);
    assert.equal(valueHex(ow, TAG.PixelData), '02010403');
    const ob = decode(hex`7FE0 0010 "OB" 0000 00000004 0102 0304`, EXPLICIT_VR_BE);
    assert.equal(valueHex(ob, TAG.PixelData), '01020304');
  });
});

// --- Part-10 framing ----------------------------------------------------------------------------

/*
 * (0002,0000) File Meta Information Group Length = 42
 * (0002,0001) File Meta Information Version = 00 01
 * (0002,0010) Transfer Syntax UID = 1.2.840.10008.1.2.1 (Explicit VR LE)
 */
const META_EXPLICIT = hex`
  0200 0000 "UL" 0400 2A000000
  0200 0100 "OB" 0000 02000000 0001
  0200 1000 "UI" 1400 "1.2.840.10008.1.2.1" 00`;
/** (0008,0060) Modality = CT, (0010,0010) Patient's Name = Doe^John, in Explicit VR LE. */
const BODY_EXPLICIT = hex`0800 6000 "CS" 0200 "CT" 1000 1000 "PN" 0800 "Doe^John"`;
/** The same in Implicit VR LE. */
const BODY_IMPLICIT = hex`0800 6000 02000000 "CT" 1000 1000 08000000 "Doe^John"`;
/** The same in Explicit VR BE. */
const BODY_BE = hex`0008 0060 "CS" 0002 "CT" 0010 0010 "PN" 0008 "Doe^John"`;
const PREAMBLE = new Uint8Array(128);

function concatBytes(...parts: Uint8Array[]): Uint8Array {
  return Buffer.concat(parts);
}

function assertBody(ds: DataSet): void {
  assert.deepEqual([...ds.tags()], [TAG.Modality, TAG.PatientName]);
  assert.deepEqual(ds.strings(TAG.Modality), ['CT']);
  assert.deepEqual(ds.strings(TAG.PatientName), ['Doe^John']);
}

describe('Part-10 files and raw data sets', () => {
  it('with preamble and DICM', () => {
    const r = parseDicom(concatBytes(PREAMBLE, hex`"DICM"`, META_EXPLICIT, BODY_EXPLICIT));
    assert.equal(r.transferSyntax, EXPLICIT_VR_LE);
    assert.deepEqual(r.meta?.strings(TAG.TransferSyntaxUID), [EXPLICIT_VR_LE]);
    assert.equal(valueHex(r.meta as DataSet, TAG.FileMetaInformationVersion), '0001');
    assertBody(r.dataSet);
  });

  it('without preamble and DICM: the file starts with the meta group', () => {
    const r = parseDicom(concatBytes(META_EXPLICIT, BODY_EXPLICIT));
    assert.equal(r.transferSyntax, EXPLICIT_VR_LE);
    assert.ok(r.meta?.has(TAG.TransferSyntaxUID));
    assertBody(r.dataSet);
  });

  it('"DICM" without the preamble', () => {
    const r = parseDicom(concatBytes(hex`"DICM"`, META_EXPLICIT, BODY_EXPLICIT));
    assert.equal(r.transferSyntax, EXPLICIT_VR_LE);
    assertBody(r.dataSet);
  });

  it('with meta but no Transfer Syntax UID: the syntax is what the data set looks like', () => {
    // (0002,0000) = 14, (0002,0001) = 00 01; no (0002,0010)
    const meta = hex`0200 0000 "UL" 0400 0E000000 0200 0100 "OB" 0000 02000000 0001`;
    for (const [body, ts] of [
      [BODY_IMPLICIT, IMPLICIT_VR_LE],
      [BODY_EXPLICIT, EXPLICIT_VR_LE],
      [BODY_BE, EXPLICIT_VR_BE],
    ] as const) {
      const r = parseDicom(concatBytes(PREAMBLE, hex`"DICM"`, meta, body));
      assert.equal(r.transferSyntax, ts);
      assert.equal(r.meta?.has(TAG.TransferSyntaxUID), false);
      assertBody(r.dataSet);
    }
  });

  it('a raw data set: the syntax is detected from the first element', () => {
    for (const [body, ts] of [
      [BODY_IMPLICIT, IMPLICIT_VR_LE],
      [BODY_EXPLICIT, EXPLICIT_VR_LE],
      [BODY_BE, EXPLICIT_VR_BE],
    ] as const) {
      const r = parseDicom(body);
      assert.equal(r.transferSyntax, ts);
      assert.equal(r.meta, undefined);
      assertBody(r.dataSet);
    }
  });

  it("a raw data set in a given syntax is read in it, even when a length looks like a VR ('dataset' format)", () => {
    // Implicit VR LE: (0009,1010) of 0x424F bytes (the length's bytes 4F 42 spell 'OB'), then (0010,0010) = AB
    const value = new Uint8Array(0x424f).fill(0x55);
    const input = concatBytes(hex`0900 1010 4F420000`, value, hex`1000 1000 02000000 "AB"`);
    const ds = decode(input, IMPLICIT_VR_LE);
    assert.equal(ds.bytes(0x00091010)?.length, 0x424f);
    assert.deepEqual(ds.strings(TAG.PatientName), ['AB']);
  });

  it('encodeFileMeta: preamble, DICM, a correct group length, our implementation UID', () => {
    const meta = encodeFileMeta({
      mediaStorageSopClassUid: CT_IMAGE_STORAGE,
      mediaStorageSopInstanceUid: '1.2.3',
      transferSyntaxUid: EXPLICIT_VR_LE,
    });
    assert.equal(toHex(meta.subarray(0, 128)), toHex(PREAMBLE));
    assert.equal(toHex(meta.subarray(128, 140)), toHex(hex`"DICM" 0200 0000 "UL" 0400`));
    const groupLength = Buffer.from(meta).readUInt32LE(140);
    assert.equal(groupLength, meta.length - 144);
    // (0002,0001) File Meta Information Version = 00 01 comes right after the group length.
    assert.equal(toHex(meta.subarray(144, 158)), toHex(hex`0200 0100 "OB" 0000 02000000 0001`));
    const r = parseDicom(concatBytes(meta, BODY_EXPLICIT));
    assert.deepEqual(r.meta?.strings(TAG.MediaStorageSOPClassUID), [CT_IMAGE_STORAGE]);
    assert.deepEqual(r.meta?.strings(TAG.MediaStorageSOPInstanceUID), ['1.2.3']);
    assert.deepEqual(r.meta?.strings(TAG.ImplementationClassUID), [IMPLEMENTATION_CLASS_UID]);
    assertBody(r.dataSet);
  });

  it('encodePart10 round trip in every uncompressed syntax', () => {
    for (const ts of [IMPLICIT_VR_LE, EXPLICIT_VR_LE, EXPLICIT_VR_BE, DEFLATED_EXPLICIT_VR_LE]) {
      const ds = sampleDataSet();
      const r = parseDicom(encodePart10(ds, ts));
      assert.equal(r.transferSyntax, ts);
      assert.deepEqual(r.meta?.strings(TAG.TransferSyntaxUID), [ts]);
      assert.deepEqual(r.meta?.strings(TAG.MediaStorageSOPInstanceUID), ['1.2.826.0.1.3680043.2.1']);
      assert.equal(toHex(encodeDataSet(r.dataSet, EXPLICIT_VR_LE)), toHex(encodeDataSet(ds, EXPLICIT_VR_LE)));
    }
  });
});

// --- deflate ------------------------------------------------------------------------------------

function requireTool(name: string): void {
  const r = spawnSync(name, ['--version'], { encoding: 'utf8' });
  if (r.error)
    assert.fail(
      `${name} is not installed (${r.error.message}); install DCMTK with: apt-get install -y dcmtk`,
    );
}

describe('Deflated Explicit VR LE (PS3.5 A.5)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pacs-golden-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('encodes the Explicit VR LE data set as raw deflate after the meta, and decodes it', () => {
    const ds = sampleDataSet();
    const file = encodePart10(ds, DEFLATED_EXPLICIT_VR_LE);
    const meta = encodeFileMeta({
      mediaStorageSopClassUid: CT_IMAGE_STORAGE,
      mediaStorageSopInstanceUid: '1.2.826.0.1.3680043.2.1',
      transferSyntaxUid: DEFLATED_EXPLICIT_VR_LE,
    });
    assert.equal(toHex(file.subarray(0, meta.length)), toHex(meta));
    const inflated = inflateRawSync(file.subarray(meta.length));
    assert.equal(toHex(inflated), toHex(encodeDataSet(ds, EXPLICIT_VR_LE)));
    const r = parseDicom(file);
    assert.equal(r.transferSyntax, DEFLATED_EXPLICIT_VR_LE);
    assert.equal(toHex(encodeDataSet(r.dataSet, EXPLICIT_VR_LE)), toHex(inflated));
  });

  it('a corrupt deflate stream is a DicomParseError; a parse error inside the inflated data keeps its own message', () => {
    const file = encodePart10(sampleDataSet(), DEFLATED_EXPLICIT_VR_LE);
    const metaLength = 144 + Buffer.from(file).readUInt32LE(140);
    const corrupt = Uint8Array.from(file);
    corrupt.fill(0xff, metaLength, metaLength + 8);
    assert.throws(() => parseDicom(corrupt), {
      code: 'ERR_DICOM_PARSE',
      message: /deflated data set is corrupt/,
    });
    // Deflated bytes of a data set that stops in the middle of an element header.
    const cut = concatBytes(file.subarray(0, metaLength), deflateRawSync(hex`0800 6000 "CS" 0200 "CT" 1000`));
    assert.throws(
      () => parseDicom(cut),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, 'ERR_DICOM_PARSE');
        assert.match(e.message, /^unexpected end of data/);
        return true;
      },
    );
  });

  it("a handler's own exception passes through the inflater unchanged (it is not corrupt data)", () => {
    const file = encodePart10(sampleDataSet(), DEFLATED_EXPLICIT_VR_LE);
    const boom = new RangeError('handler failed');
    const handler: DataSetHandler = {
      ...recorderMethods(new Recorder()),
      element: () => {
        throw boom;
      },
    };
    const p = new DicomParser(handler);
    assert.throws(() => {
      p.write(file);
      p.end();
    }, boom);
  });

  it('reads what DCMTK writes with dcmconv +td, and DCMTK reads what we write', () => {
    requireTool('dcmconv');
    const ds = sampleDataSet();
    const plain = join(dir, 'plain.dcm');
    const theirs = join(dir, 'dcmtk-deflated.dcm');
    writeFileSync(plain, encodePart10(ds, EXPLICIT_VR_LE));
    const conv = spawnSync('dcmconv', ['+td', plain, theirs], { encoding: 'utf8' });
    assert.equal(conv.status, 0, conv.stderr);
    const r = parseDicom(readFileSync(theirs));
    assert.equal(r.transferSyntax, DEFLATED_EXPLICIT_VR_LE);
    assert.equal(toHex(encodeDataSet(r.dataSet, EXPLICIT_VR_LE)), toHex(encodeDataSet(ds, EXPLICIT_VR_LE)));

    const ours = join(dir, 'ours-deflated.dcm');
    const back = join(dir, 'dcmtk-inflated.dcm');
    writeFileSync(ours, encodePart10(ds, DEFLATED_EXPLICIT_VR_LE));
    const conv2 = spawnSync('dcmconv', ['+te', ours, back], { encoding: 'utf8' });
    assert.equal(conv2.status, 0, conv2.stderr);
    assert.equal(conv2.stderr, '');
    const r2 = parseDicom(readFileSync(back));
    assert.equal(r2.transferSyntax, EXPLICIT_VR_LE);
    assert.equal(toHex(encodeDataSet(r2.dataSet, EXPLICIT_VR_LE)), toHex(encodeDataSet(ds, EXPLICIT_VR_LE)));
  });
});

// --- stopAtTag ----------------------------------------------------------------------------------

describe('stopAtTag (reading a header without its pixel data)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pacs-golden-stop-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('stops before Pixel Data: reports stopped, no pixel data, nothing after it', () => {
    const file = encodePart10(sampleDataSet(), EXPLICIT_VR_LE);
    const r = parseDicom(file, { stopAtTag: TAG.PixelData });
    assert.equal(r.stopped, true);
    assert.equal(r.dataSet.has(TAG.PixelData), false);
    assert.equal(r.dataSet.has(TAG.DataSetTrailingPadding), false);
    assert.deepEqual(r.dataSet.strings(TAG.PatientName), ['Doe^Jane']);
    // A Pixel Data inside an item (an icon) is not the stop tag: only the top level stops.
    const icon = r.dataSet.sequence(TAG.IconImageSequence)?.[0];
    assert.equal(icon?.bytes(TAG.PixelData)?.length, 4);
  });

  it('DicomParser ignores input after the stop and reads no further', () => {
    const file = encodePart10(sampleDataSet(), EXPLICIT_VR_BE);
    const rec = new Recorder();
    const p = new DicomParser(rec, { stopAtTag: TAG.PixelData });
    let fed = 0;
    for (; fed < file.length && !p.stopped; fed += 16) p.write(file.subarray(fed, fed + 16));
    assert.equal(p.stopped, true);
    assert.ok(fed < file.length, 'stopped before the end of the input');
    p.write(file.subarray(fed));
    p.end();
    // Only the icon's Pixel Data (inside an item) was read.
    assert.equal(rec.events.filter((e) => e[0] === 'element' && e[1] === TAG.PixelData).length, 1);
    assert.ok(!rec.events.some((e) => e[0] === 'element' && e[1] === TAG.DataSetTrailingPadding));
  });

  it('readDicomFile with stopAtTag', async () => {
    const path = join(dir, 'ct.dcm');
    writeFileSync(path, encodePart10(sampleDataSet(), IMPLICIT_VR_LE));
    const r = await readDicomFile(path, { stopAtTag: TAG.PixelData });
    assert.equal(r.stopped, true);
    assert.equal(r.dataSet.has(TAG.PixelData), false);
    assert.deepEqual(r.dataSet.numbers(TAG.Rows), [4]);
  });

  it('a data set without pixel data reads to its end and is not "stopped"', () => {
    const r = parseDicom(concatBytes(META_EXPLICIT, BODY_EXPLICIT), { stopAtTag: TAG.PixelData });
    assert.equal(r.stopped, false);
    assertBody(r.dataSet);
  });
});

// --- streaming ----------------------------------------------------------------------------------

/** Records every handler event; consecutive value chunks are merged (chunking is not an event). */
class Recorder implements DataSetHandler {
  readonly events: unknown[][] = [];
  chunks = 0;
  meta(meta: DataSet, ts: string): void {
    this.events.push(['meta', ts, [...meta].map((e) => [e.tag, e.vr, toHex(e.value as Uint8Array)])]);
  }
  element(tag: Tag, vr: VR, value: Uint8Array, offset: number): void {
    this.events.push(['element', tag, vr, toHex(value), offset]);
  }
  valueStart(tag: Tag, vr: VR, length: number, offset: number): void {
    this.events.push(['valueStart', tag, vr, length, offset]);
  }
  valueChunk(bytes: Uint8Array): void {
    this.chunks++;
    const last = this.events[this.events.length - 1];
    if (last?.[0] === 'chunk') last[1] = `${last[1]}${toHex(bytes)}`;
    else this.events.push(['chunk', toHex(bytes)]);
  }
  valueEnd(): void {
    this.events.push(['valueEnd']);
  }
  sequenceStart(tag: Tag, length: number, offset: number): void {
    this.events.push(['sequenceStart', tag, length, offset]);
  }
  itemStart(length: number, offset: number): void {
    this.events.push(['itemStart', length, offset]);
  }
  itemEnd(): void {
    this.events.push(['itemEnd']);
  }
  sequenceEnd(): void {
    this.events.push(['sequenceEnd']);
  }
  fragmentsStart(tag: Tag, vr: VR, offset: number): void {
    this.events.push(['fragmentsStart', tag, vr, offset]);
  }
  fragmentStart(length: number, offset: number): void {
    this.events.push(['fragmentStart', length, offset]);
  }
  fragmentEnd(): void {
    this.events.push(['fragmentEnd']);
  }
  fragmentsEnd(): void {
    this.events.push(['fragmentsEnd']);
  }
}

/** A small CT-like data set with a bit of everything: text, numbers, nested sequences, an icon, pixels. */
function sampleDataSet(): DataSet {
  const ds = new DataSet();
  ds.setString(TAG.ImageType, ['ORIGINAL', 'PRIMARY', 'AXIAL']);
  ds.setString(TAG.SOPClassUID, CT_IMAGE_STORAGE);
  ds.setString(TAG.SOPInstanceUID, '1.2.826.0.1.3680043.2.1');
  ds.setString(TAG.StudyDate, '20240131');
  ds.setString(TAG.Modality, 'CT');
  ds.setString(TAG.PatientName, 'Doe^Jane');
  ds.setString(TAG.PatientID, 'ID-42');
  const nested = new DataSet().setString(TAG.ReferencedSOPInstanceUID, '1.2.3.4');
  const item1 = new DataSet()
    .setString(TAG.ReferencedSOPClassUID, CT_IMAGE_STORAGE)
    .setSequence(TAG.ReferencedImageSequence, [nested]);
  ds.setSequence(TAG.ReferencedStudySequence, [item1, new DataSet()]);
  ds.setSequence(TAG.ReferencedPatientSequence, []);
  ds.setNumbers(TAG.SliceThickness, 2.5);
  ds.setNumbers(TAG.ImagePositionPatient, [-125, -125.5, 30]);
  ds.setNumbers(TAG.InstanceNumber, 7);
  ds.setNumbers(TAG.SamplesPerPixel, 1);
  ds.setString(TAG.PhotometricInterpretation, 'MONOCHROME2');
  ds.setNumbers(TAG.Rows, 4);
  ds.setNumbers(TAG.Columns, 4);
  ds.setNumbers(TAG.PixelSpacing, [0.5, 0.5]);
  ds.setNumbers(TAG.BitsAllocated, 16);
  ds.setNumbers(TAG.BitsStored, 12);
  ds.setNumbers(TAG.HighBit, 11);
  ds.setNumbers(TAG.PixelRepresentation, 1);
  ds.setNumbers(TAG.SmallestImagePixelValue, -5, 'SS');
  ds.setNumbers(TAG.WindowCenter, 40);
  ds.setNumbers(TAG.RescaleSlope, 1);
  const icon = new DataSet()
    .setNumbers(TAG.Rows, 1)
    .setNumbers(TAG.Columns, 2)
    .setBytes(TAG.PixelData, Uint8Array.of(1, 2, 3, 4), 'OW');
  ds.setSequence(TAG.IconImageSequence, [icon]);
  const pixels = new Uint8Array(32);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 37) & 0xff;
  ds.setBytes(TAG.PixelData, pixels, 'OW');
  ds.setBytes(TAG.DataSetTrailingPadding, Uint8Array.of(0, 0, 0), 'OB');
  return ds;
}

function trace(chunks: readonly Uint8Array[], options: ParserOptions): unknown[][] {
  const rec = new Recorder();
  const p = new DicomParser(rec, options);
  for (const c of chunks) p.write(c);
  p.end();
  return rec.events;
}

describe('streaming: the result does not depend on how the input is chunked', () => {
  const files: [string, Uint8Array][] = [
    ['Implicit VR LE', encodePart10(sampleDataSet(), IMPLICIT_VR_LE)],
    ['Explicit VR LE', encodePart10(sampleDataSet(), EXPLICIT_VR_LE)],
    ['Explicit VR BE', encodePart10(sampleDataSet(), EXPLICIT_VR_BE)],
    ['Deflated Explicit VR LE', encodePart10(sampleDataSet(), DEFLATED_EXPLICIT_VR_LE)],
    ['encapsulated (JPEG Baseline)', concatBytes(PREAMBLE, hex`"DICM"`, jpegMeta(), ENCAPSULATED)],
    ['raw Explicit VR BE data set', concatBytes(BODY_BE, hex`0010 0020 "LO" 0006 "ID-42 "`)],
  ];

  for (const [name, file] of files) {
    it(`${name} (${file.length} bytes): split in two at every byte position`, () => {
      for (const inlineLimit of [256 * 1024, 6]) {
        const whole = trace([file], { inlineLimit });
        assert.ok(whole.length >= 3);
        for (let k = 0; k <= file.length; k++) {
          const split = trace([file.subarray(0, k), file.subarray(k)], { inlineLimit });
          assert.deepEqual(split, whole, `split at ${k}, inlineLimit ${inlineLimit}`);
        }
      }
    });

    it(`${name}: one byte at a time`, () => {
      const whole = trace([file], { inlineLimit: 6 });
      const bytes: Uint8Array[] = [];
      for (let i = 0; i < file.length; i++) bytes.push(file.subarray(i, i + 1));
      assert.deepEqual(trace(bytes, { inlineLimit: 6 }), whole);
    });
  }

  it('a value longer than inlineLimit arrives as valueStart / valueChunk... / valueEnd', () => {
    // (0042,0011) Encapsulated Document, OB, 40 bytes 00..27; (0010,0010) = Doe^ after it
    const value = Uint8Array.from({ length: 40 }, (_, i) => i);
    const input = concatBytes(hex`4200 1100 "OB" 0000 28000000`, value, hex`1000 1000 "PN" 0400 "Doe^"`);
    const rec = new Recorder();
    const p = new DicomParser(rec, { format: 'dataset', transferSyntax: EXPLICIT_VR_LE, inlineLimit: 16 });
    for (let i = 0; i < input.length; i += 7) p.write(input.subarray(i, i + 7));
    p.end();
    assert.deepEqual(rec.events, [
      ['valueStart', TAG.EncapsulatedDocument, 'OB', 40, 0],
      ['chunk', toHex(value)],
      ['valueEnd'],
      ['element', TAG.PatientName, 'PN', toHex(hex`"Doe^"`), 52],
    ]);
    assert.ok(rec.chunks > 1, 'the value came in several chunks');
    const built = parseDicom(input, { format: 'dataset', transferSyntax: EXPLICIT_VR_LE, inlineLimit: 16 });
    assert.equal(valueHex(built.dataSet, TAG.EncapsulatedDocument), toHex(value));
  });

  it('a long big endian OW value arrives in whole 16-bit units, swapped to little endian', () => {
    // (0028,1201) Red Palette Color LUT Data, OW, 20 bytes: words 0x0001..0x000A big endian
    const words = hex`0001 0002 0003 0004 0005 0006 0007 0008 0009 000A`;
    const input = concatBytes(hex`0028 1201 "OW" 0000 00000014`, words);
    const rec = new Recorder();
    const sizes: number[] = [];
    const p = new DicomParser(
      {
        ...recorderMethods(rec),
        valueChunk: (b) => {
          sizes.push(b.length);
          rec.valueChunk(b);
        },
      },
      { format: 'dataset', transferSyntax: EXPLICIT_VR_BE, inlineLimit: 4 },
    );
    for (let i = 0; i < input.length; i += 5) p.write(input.subarray(i, i + 5));
    p.end();
    assert.ok(sizes.every((n) => n % 2 === 0));
    assert.deepEqual(rec.events, [
      ['valueStart', TAG.RedPaletteColorLookupTableData, 'OW', 20, 0],
      ['chunk', toHex(hex`0100 0200 0300 0400 0500 0600 0700 0800 0900 0A00`)],
      ['valueEnd'],
    ]);
  });

  it('DicomParser piped into DataSetWriter (streamed values, odd chunks) writes what encodeDataSet writes', () => {
    const ds = sampleDataSet();
    const source = encodeDataSet(ds, EXPLICIT_VR_LE);
    for (const ts of [IMPLICIT_VR_LE, EXPLICIT_VR_LE, EXPLICIT_VR_BE]) {
      const out: Uint8Array[] = [];
      const writer = new DataSetWriter((c) => out.push(Uint8Array.from(c)), ts);
      const p = new DicomParser(writer, {
        format: 'dataset',
        transferSyntax: EXPLICIT_VR_LE,
        inlineLimit: 3,
      });
      for (let i = 0; i < source.length; i += 5) p.write(source.subarray(i, i + 5));
      p.end();
      writer.end();
      assert.equal(toHex(Buffer.concat(out)), toHex(encodeDataSet(ds, ts)), ts);
    }
  });
});

function recorderMethods(rec: Recorder): DataSetHandler {
  return {
    meta: (m, ts) => rec.meta(m, ts),
    element: (t, v, b, o) => rec.element(t, v, b, o),
    valueStart: (t, v, l, o) => rec.valueStart(t, v, l, o),
    valueChunk: (b) => rec.valueChunk(b),
    valueEnd: () => rec.valueEnd(),
    sequenceStart: (t, l, o) => rec.sequenceStart(t, l, o),
    itemStart: (l, o) => rec.itemStart(l, o),
    itemEnd: () => rec.itemEnd(),
    sequenceEnd: () => rec.sequenceEnd(),
    fragmentsStart: (t, v, o) => rec.fragmentsStart(t, v, o),
    fragmentStart: (l, o) => rec.fragmentStart(l, o),
    fragmentEnd: () => rec.fragmentEnd(),
    fragmentsEnd: () => rec.fragmentsEnd(),
  };
}

/** (0002,0000) = 44, (0002,0001) = 00 01, (0002,0010) = 1.2.840.10008.1.2.4.50 (JPEG Baseline). */
function jpegMeta(): Uint8Array {
  return hex`
    0200 0000 "UL" 0400 2C000000
    0200 0100 "OB" 0000 02000000 0001
    0200 1000 "UI" 1600 "1.2.840.10008.1.2.4.50"`;
}
