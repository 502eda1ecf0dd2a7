/**
 * The Native DICOM Model (PS3.19 A.1) as XML text, from the DICOM JSON Model (PS3.18 F.2) or a
 * DataSet: the `application/dicom+xml` form of QIDO-RS answers and WADO-RS metadata.
 *
 * - Every attribute is a DicomAttribute with its tag, VR and (when the dictionary knows it) keyword.
 *   A private attribute of a reserved block (gggg,xxee) is written as PS3.19 A.1.1 says: tag
 *   gggg00ee with privateCreator, the value of its Private Creator (gggg,00xx) in the same data set;
 *   the Private Creator elements are written as they are (DCMTK's dcm2xml does the same). A
 *   private attribute whose creator is absent keeps its tag.
 * - Values are Value elements numbered from 1; an empty value of a multi-valued attribute (JSON
 *   null) is an empty Value element so the numbering stays the values' positions.
 * - Person names are PersonName elements with Alphabetic, Ideographic and Phonetic groups of
 *   FamilyName, GivenName, MiddleName, NamePrefix, NameSuffix (empty components left out).
 * - Sequences are Item elements numbered from 1; InlineBinary and BulkData (uri) as PS3.19 says.
 * - Text is escaped for XML 1.0; characters XML 1.0 cannot hold (controls other than TAB, LF, CR)
 *   are written as U+FFFD.
 */
import type { DataSet } from './dataset.js';
import { keywordOf } from './dictionary.js';
import {
  type DicomJsonAttribute,
  type DicomJsonObject,
  type DicomJsonPersonName,
  toDicomJson,
} from './json.js';

/** PS3.19 A.1.1: the namespace of the Native DICOM Model. */
export const NATIVE_DICOM_MODEL_NS = 'http://dicom.nema.org/PS3.19/models/NativeDICOM';

const XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n';

const NOT_XML =
  /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Text escaped for an XML element or a double-quoted attribute. */
export function escapeXml(text: string): string {
  return text
    .replace(NOT_XML, '\uFFFD')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

const PN_COMPONENTS = ['FamilyName', 'GivenName', 'MiddleName', 'NamePrefix', 'NameSuffix'] as const;
const PN_GROUPS = ['Alphabetic', 'Ideographic', 'Phonetic'] as const;

/** A PersonName element; '' for a value without any component (written as no element, as dcm2xml does). */
function personNameXml(pn: DicomJsonPersonName, number: number): string {
  let s = '';
  for (const group of PN_GROUPS) {
    const text = pn[group];
    if (text === undefined) continue;
    let components = '';
    text.split('^').forEach((c, i) => {
      const name = PN_COMPONENTS[Math.min(i, PN_COMPONENTS.length - 1)] as string;
      const t = c.trim();
      if (t !== '') components += `<${name}>${escapeXml(t)}</${name}>`;
    });
    if (components !== '') s += `<${group}>${components}</${group}>`;
  }
  return s === '' ? '' : `<PersonName number="${number}">${s}</PersonName>`;
}

const PRIVATE_CREATOR = /^[0-9A-F]{3}[13579BDF]00[1-9A-F][0-9A-F]$/;
const PRIVATE_BLOCK = /^([0-9A-F]{3}[13579BDF])([1-9A-F][0-9A-F])([0-9A-F]{2})$/;

/** The tag text and privateCreator of an attribute (PS3.19 A.1.1). */
function tagOf(hex: string, doc: DicomJsonObject | undefined): { tag: string; creator?: string } {
  const h = hex.toUpperCase();
  if (PRIVATE_CREATOR.test(h)) return { tag: h };
  const m = PRIVATE_BLOCK.exec(h);
  if (m === null || doc === undefined) return { tag: h };
  const creator =
    doc[`${m[1]}00${m[2]}`]?.Value?.[0] ?? doc[`${m[1]?.toLowerCase()}00${m[2]?.toLowerCase()}`]?.Value?.[0];
  if (typeof creator !== 'string') return { tag: h };
  return { tag: `${m[1]}00${m[3]}`, creator: creator.trim() };
}

function attributeXml(hex: string, a: DicomJsonAttribute, doc?: DicomJsonObject): string {
  const t = tagOf(hex, doc);
  const keyword = t.creator === undefined ? keywordOf(Number.parseInt(hex, 16) >>> 0) : '';
  let s = `<DicomAttribute tag="${escapeXml(t.tag)}" vr="${escapeXml(a.vr)}"${
    keyword !== '' ? ` keyword="${keyword}"` : ''
  }${t.creator !== undefined ? ` privateCreator="${escapeXml(t.creator)}"` : ''}>`;
  if (a.BulkDataURI !== undefined) s += `<BulkData uri="${escapeXml(a.BulkDataURI)}"/>`;
  else if (a.InlineBinary !== undefined) s += `<InlineBinary>${escapeXml(a.InlineBinary)}</InlineBinary>`;
  else
    (a.Value ?? []).forEach((v, i) => {
      const n = i + 1;
      if (a.vr === 'SQ') {
        s += `<Item number="${n}">${v === null || typeof v !== 'object' ? '' : objectXml(v as DicomJsonObject)}</Item>`;
      } else if (a.vr === 'PN' && v !== null && typeof v === 'object') {
        s += personNameXml(v as DicomJsonPersonName, n);
      } else if (v === null) {
        s += `<Value number="${n}"/>`;
      } else {
        s += `<Value number="${n}">${escapeXml(String(v))}</Value>`;
      }
    });
  return `${s}</DicomAttribute>`;
}

/** The DicomAttribute elements of a JSON object, in tag order. */
function objectXml(doc: DicomJsonObject): string {
  let s = '';
  for (const hex of Object.keys(doc).sort((x, y) => (x.toUpperCase() < y.toUpperCase() ? -1 : 1)))
    s += attributeXml(hex, doc[hex] as DicomJsonAttribute, doc);
  return s;
}

/**
 * A NativeDicomModel document of a DICOM JSON object (or of its attributes as [tag, attribute]
 * pairs in tag order, as QIDO-RS builds them), with the XML declaration.
 */
export function dicomJsonToXml(
  doc: DicomJsonObject | ReadonlyArray<readonly [string, DicomJsonAttribute]>,
): string {
  let body = '';
  if (Array.isArray(doc)) {
    const entries = doc as ReadonlyArray<readonly [string, DicomJsonAttribute]>;
    const asObject: DicomJsonObject = Object.fromEntries(entries);
    for (const [hex, a] of entries) body += attributeXml(hex, a, asObject);
  } else body = objectXml(doc as DicomJsonObject);
  return `${XML_DECLARATION}<NativeDicomModel xmlns="${NATIVE_DICOM_MODEL_NS}" xml:space="preserve">${body}</NativeDicomModel>\n`;
}

/** A NativeDicomModel document of a data set (through its DICOM JSON, toDicomJson). */
export function dataSetToXml(ds: DataSet): string {
  return dicomJsonToXml(toDicomJson(ds));
}
