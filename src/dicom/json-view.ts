/**
 * A read view of stored DICOM JSON documents (PS3.18 F.2) that gives the elements and match
 * values the DataSet built by fromDicomJson would give, without building it: the C-FIND hot path
 * (and the worklist's, and QIDO-RS's) reads a few attributes of each candidate and encodes only
 * the ones the query returns.
 *
 * The view is exact only where building the DataSet could not change the text: every document is
 * plain ASCII (printable, plus TAB, LF, FF, CR) and its Specific Character Set reads ASCII as
 * ASCII (jsonView checks both, once per character set, against the codec itself). Then encoding a value in the character
 * set gives its ISO 646 bytes, no returned value needs Specific Character Set, and no document can
 * fail to encode. Anything else (a non-ASCII name, an ISO 2022 set whose G0 is not ASCII, a
 * sequence item with a character set of its own, a BulkDataURI) gets no view: the caller takes
 * the DataSet path, which is the reference.
 */
import { DicomEncodeError } from '../core/errors.js';
import { decodeString, encodeString } from './charset.js';
import type { DataElement } from './dataset.js';
import { TAG } from './dictionary.js';
import type { DicomJsonAttribute, DicomJsonObject } from './json.js';
import { elementValues, isEmptyElement, type MatchCandidate } from './matching.js';
import { type Tag, tagHex } from './tag.js';
import { encodeNumbers, encodeStrings, formatDS } from './values.js';
import { isBinaryNumberVR, isBulkVR, isMultiValuedStringVR, isStringVR, type VR } from './vr.js';

const SCS_KEY = '00080005';
const EMPTY = new Uint8Array(0);

/** A stored value the view does not read as fromDicomJson would: the caller takes the DataSet path. */
export class JsonViewUnsupported extends Error {}

function unsupported(what: string): never {
  throw new JsonViewUnsupported(what);
}

/** Printable ASCII and the four control characters a text value may hold, as JSON text shows them. */
const NOT_PLAIN_JSON = /[^\x20-\x7e]|\\u/;
const NOT_PLAIN_TEXT = /[^\x20-\x7e\t\n\f\r]/;

/** True when a document's JSON text is plain ASCII (an escape \\u... may hide a control or non-ASCII character). */
export function isPlainJsonText(json: string): boolean {
  return !NOT_PLAIN_JSON.test(json);
}

/** The same check on a parsed document; false too when a sequence item has a Specific Character Set of its own. */
export function isPlainDocument(doc: DicomJsonObject, nested = false): boolean {
  for (const key in doc) {
    if (nested && key === SCS_KEY) return false;
    const a = doc[key] as DicomJsonAttribute;
    if (a.BulkDataURI !== undefined) return false;
    for (const v of a.Value ?? []) {
      if (typeof v === 'string') {
        if (NOT_PLAIN_TEXT.test(v)) return false;
      } else if (v !== null && typeof v === 'object') {
        if (a.vr === 'SQ') {
          if (!isPlainDocument(v as DicomJsonObject, true)) return false;
        } else
          for (const g of Object.values(v)) if (typeof g !== 'string' || NOT_PLAIN_TEXT.test(g)) return false;
      }
    }
  }
  return true;
}

/** True when a JSON text holds a sequence item with its own Specific Character Set (the key twice, or once below the top). */
function hasNestedCharset(json: string, doc: DicomJsonObject): boolean {
  const first = json.indexOf(`"${SCS_KEY}"`);
  if (first < 0) return false;
  return json.indexOf(`"${SCS_KEY}"`, first + 1) >= 0 || doc[SCS_KEY] === undefined;
}

/** The Specific Character Set values as a DataSet reads them back from the element fromDicomJson writes. */
function charsetTerms(attr: DicomJsonAttribute | undefined): string {
  return (attr?.Value ?? []).map((v) => (typeof v === 'string' ? v : '')).join('\\');
}

const PROBE = `${Array.from({ length: 0x5f }, (_, i) => String.fromCharCode(0x20 + i)).join('')}\t\n\f\r`;
const transparent = new Map<string, boolean>();

/**
 * True when text of the default repertoire encodes in `terms` ('\'-joined Specific Character Set
 * values) as its own bytes and decodes back unchanged, for every VR that uses a character set.
 * False for an unknown value 1, and for any set whose G0 would not be ASCII (JIS X 0201's 0x5C is YEN SIGN).
 */
export function isAsciiTransparent(terms: string): boolean {
  let known = transparent.get(terms);
  if (known !== undefined) return known;
  const charsets = terms === '' ? [] : terms.split('\\');
  known = true;
  if (charsets.length > 0)
    for (const vr of ['PN', 'LO', 'LT']) {
      try {
        const bytes = encodeString(PROBE, charsets, vr);
        if (Buffer.from(bytes).toString('latin1') !== PROBE || decodeString(bytes, charsets, vr) !== PROBE)
          known = false;
      } catch (e) {
        if (!(e instanceof DicomEncodeError)) throw e;
        known = false;
      }
    }
  if (transparent.size >= 256) transparent.clear();
  transparent.set(terms, known);
  return known;
}

/**
 * The documents of one entity (top level first; a later document's attribute wins, as
 * Object.assign merges them), given as stored: JSON text or parsed. Undefined when the view would
 * not be exact (see the module comment): use fromDicomJson then.
 */
export function jsonView(
  stored: readonly (DicomJsonObject | string)[],
  extra?: ReadonlyMap<Tag, DataElement>,
): JsonView | undefined {
  const docs: DicomJsonObject[] = new Array(stored.length);
  const charsets = new Set<string>();
  for (let i = 0; i < stored.length; i++) {
    const s = stored[i] as DicomJsonObject | string;
    let doc: DicomJsonObject;
    if (typeof s === 'string') {
      if (!isPlainJsonText(s)) return undefined;
      doc = JSON.parse(s) as DicomJsonObject;
      if (hasNestedCharset(s, doc)) return undefined;
    } else {
      doc = s;
      if (!isPlainDocument(doc)) return undefined;
    }
    const scs = doc[SCS_KEY];
    if (scs !== undefined) charsets.add(charsetTerms(scs));
    docs[i] = doc;
  }
  // Levels received in different character sets are joined in UTF-8 (archive/index/query.ts), which is transparent.
  if (charsets.size === 1 && !isAsciiTransparent(charsets.values().next().value as string)) return undefined;
  return new JsonView(docs, extra);
}

/**
 * One entity's documents read as the DataSet fromDicomJson builds of their merge (jsonView made
 * sure that is exact). `extra` elements (computed attributes) take the place of stored ones.
 * Methods throw JsonViewUnsupported for a stored attribute they cannot read exactly.
 */
export class JsonView implements MatchCandidate {
  private readonly cache = new Map<Tag, DataElement | null>();

  constructor(
    private readonly docs: readonly DicomJsonObject[],
    private readonly extra?: ReadonlyMap<Tag, DataElement>,
  ) {}

  /** The stored attribute of a tag (the lowest level's when several have it). */
  attribute(tag: Tag): DicomJsonAttribute | undefined {
    const key = tagHex(tag);
    for (let i = this.docs.length - 1; i >= 0; i--) {
      const a = (this.docs[i] as DicomJsonObject)[key];
      if (a !== undefined) return a;
    }
    return undefined;
  }

  /** The element fromDicomJson would build (for a sequence, an element without items: the view does not read them). */
  element(tag: Tag): DataElement | undefined {
    const hit = this.cache.get(tag);
    if (hit !== undefined) return hit ?? undefined;
    const e = this.extra?.get(tag) ?? elementOf(tag, this.attribute(tag));
    this.cache.set(tag, e ?? null);
    return e;
  }

  values(tag: Tag): readonly string[] {
    const e = this.element(tag);
    // Plain ASCII in a transparent character set: decoding as ISO 646 is decoding in the character set.
    return e === undefined ? [] : elementValues(e, []);
  }

  isEmpty(tag: Tag): boolean {
    const e = this.element(tag);
    if (e === undefined) return true;
    if (e.vr === 'SQ') return ((this.attribute(tag)?.Value ?? []) as unknown[]).length === 0;
    return isEmptyElement(e, []);
  }

  items(): readonly MatchCandidate[] | undefined {
    return unsupported('sequence items');
  }
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** PS3.18 F.2: the element of one attribute, as fromDicomJson's attributeFromJson builds it. */
function elementOf(tag: Tag, a: DicomJsonAttribute | undefined): DataElement | undefined {
  if (a === undefined) return undefined;
  const vr: VR = a.vr;
  if (vr === 'SQ') return { tag, vr, value: [] };
  if (a.BulkDataURI !== undefined) return unsupported('BulkDataURI');
  if (a.InlineBinary !== undefined) {
    if (a.Value !== undefined || !isBulkVR(vr) || tag === TAG.PixelData || !BASE64.test(a.InlineBinary))
      return unsupported('InlineBinary');
    return { tag, vr, value: new Uint8Array(Buffer.from(a.InlineBinary, 'base64')) };
  }
  const values = a.Value;
  if (values === undefined) return { tag, vr, value: EMPTY };
  if (!Array.isArray(values)) return unsupported('Value');
  if (isStringVR(vr)) {
    if (!isMultiValuedStringVR(vr) && values.length > 1) return unsupported('several values');
    const texts = values.map((v) => textOf(vr, v));
    return { tag, vr, value: encodeStrings(texts, vr, []) };
  }
  if (vr === 'AT' || isBinaryNumberVR(vr)) {
    try {
      const numbers = values.map((v) => numberOf(vr, v));
      return { tag, vr, value: encodeNumbers(numbers, vr) };
    } catch (e) {
      if (e instanceof DicomEncodeError) return unsupported(e.message);
      throw e;
    }
  }
  return unsupported(`VR ${vr} with Value`);
}

/** The text fromDicomJson writes for one value (PS3.18 F.2.2-F.2.5); anything it would refuse is unsupported. */
function textOf(vr: VR, v: unknown): string {
  if (v === null) return '';
  if (typeof v === 'string') {
    if (vr !== 'LT' && vr !== 'ST' && vr !== 'UT' && vr !== 'UR' && v.includes('\\'))
      unsupported('backslash');
    return v;
  }
  if (typeof v === 'number') {
    if (vr === 'IS' && Number.isInteger(v)) return String(v);
    if (vr === 'DS') return formatDS(v);
    return unsupported('number');
  }
  if (vr === 'PN' && typeof v === 'object' && !Array.isArray(v)) {
    const pn = v as Record<string, unknown>;
    const groups = [pn['Alphabetic'], pn['Ideographic'], pn['Phonetic']].map((g) => {
      if (g === undefined || g === null) return '';
      if (typeof g !== 'string' || g.includes('=') || g.includes('\\')) return unsupported('person name');
      return g;
    });
    while (groups.length > 0 && groups[groups.length - 1] === '') groups.pop();
    return groups.join('=');
  }
  return unsupported('value');
}

const INTEGER_RANGES: Partial<Record<VR, readonly [number, number]>> = {
  US: [0, 0xffff],
  SS: [-0x8000, 0x7fff],
  UL: [0, 0xffffffff],
  SL: [-0x80000000, 0x7fffffff],
};

function numberOf(vr: VR, v: unknown): number | bigint {
  if (vr === 'AT') {
    if (typeof v !== 'string' || !/^[0-9A-Fa-f]{8}$/.test(v)) return unsupported('AT');
    return Number.parseInt(v, 16);
  }
  if (vr === 'SV' || vr === 'UV') {
    if (typeof v === 'number' && Number.isSafeInteger(v) && (vr === 'SV' || v >= 0)) return BigInt(v);
    return unsupported(vr);
  }
  if (typeof v !== 'number') return unsupported('number');
  const range = INTEGER_RANGES[vr];
  if (range !== undefined && (!Number.isInteger(v) || v < range[0] || v > range[1])) return unsupported(vr);
  return v;
}
