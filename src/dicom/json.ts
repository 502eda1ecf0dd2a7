/**
 * The DICOM JSON Model (PS3.18 F.2), both ways: toDicomJson turns a DataSet into the JSON object
 * that QIDO-RS/WADO-RS metadata and our index documents use, fromDicomJson builds a DataSet back
 * (its text encoded in the data set's Specific Character Set).
 */
import { DicomEncodeError, DicomParseError } from '../core/errors.js';
import { err, ok, type Result } from '../core/result.js';
import { type DataElement, DataSet, type PixelFragments } from './dataset.js';
import { lookupTag, TAG } from './dictionary.js';
import { parseDicom } from './reader.js';
import { ITEM, isGroupLengthTag, SEQUENCE_DELIMITATION, type Tag, tagHex, UNDEFINED_LENGTH } from './tag.js';
import { IMPLICIT_VR_LE } from './uid.js';
import {
  decodeBigInts,
  decodeNumbers,
  decodeStrings,
  decodeTags,
  encodeNumbers,
  encodeStrings,
  formatDS,
} from './values.js';
import { isBinaryNumberVR, isBulkVR, isMultiValuedStringVR, isStringVR, isVR, type VR } from './vr.js';

/** PS3.18 F.2.2: a Person Name value, one member per non-empty component group. */
export interface DicomJsonPersonName {
  Alphabetic?: string;
  Ideographic?: string;
  Phonetic?: string;
}

/** One value of a "Value" array; null is an empty value of a multi-valued attribute (PS3.18 F.2.5). */
export type DicomJsonValue = string | number | DicomJsonPersonName | DicomJsonObject | null;

/** An attribute object: its VR and at most one of Value, InlineBinary, BulkDataURI (none when empty). */
export interface DicomJsonAttribute {
  vr: VR;
  Value?: DicomJsonValue[];
  InlineBinary?: string;
  BulkDataURI?: string;
}

/** A data set: attributes keyed by their tag as 8 uppercase hex digits ("00100010"). */
export type DicomJsonObject = { [tag: string]: DicomJsonAttribute };

export interface ToDicomJsonOptions {
  /**
   * Called for each binary value (VR OB, OD, OF, OL, OV, OW or UN, encapsulated pixel data) and
   * each value that was not loaded: a URI returned is written as BulkDataURI instead of InlineBinary.
   */
  readonly bulkDataUri?: (tag: Tag, element: DataElement) => string | undefined;
}

export interface FromDicomJsonOptions {
  /** Resolves a BulkDataURI to the value's bytes (little endian); without it a BulkDataURI is an error. */
  readonly bulkData?: (uri: string, tag: Tag, vr: VR) => Uint8Array | undefined;
}

// --- DataSet -> JSON ----------------------------------------------------------------------------

/**
 * The DICOM JSON object of a data set. Group lengths are left out (PS3.18 F.2.2). A value that was
 * not loaded (a BulkDataRef) needs a BulkDataURI from `bulkDataUri`, else DicomEncodeError.
 */
export function toDicomJson(ds: DataSet, options: ToDicomJsonOptions = {}): DicomJsonObject {
  const out: DicomJsonObject = {};
  for (const e of ds) {
    if (isGroupLengthTag(e.tag)) continue;
    out[tagHex(e.tag)] = attributeToJson(ds, e, options);
  }
  return out;
}

function attributeToJson(ds: DataSet, e: DataElement, options: ToDicomJsonOptions): DicomJsonAttribute {
  const v = e.value;
  if (Array.isArray(v))
    return withValue(
      'SQ',
      v.map((item) => toDicomJson(item, options)),
    );
  if (!(v instanceof Uint8Array)) {
    const uri = options.bulkDataUri?.(e.tag, e);
    if (uri !== undefined) return { vr: e.vr, BulkDataURI: uri };
    if (v.kind === 'fragments') return { vr: e.vr, InlineBinary: base64(encapsulate(v)) };
    throw new DicomEncodeError(
      `value of ${tagHex(e.tag)} was not loaded (bulk data reference) and no BulkDataURI was given for it`,
    );
  }
  const vr = e.vr === 'UN' ? knownVR(ds, e.tag, v) : e.vr;
  if (isBulkVR(vr)) {
    if (v.length === 0) return { vr };
    const uri = options.bulkDataUri?.(e.tag, e);
    return uri !== undefined ? { vr, BulkDataURI: uri } : { vr, InlineBinary: base64(v) };
  }
  if (vr === 'SQ') {
    const items = unknownSequence(ds, e.tag, v);
    if (items)
      return withValue(
        'SQ',
        items.map((i) => toDicomJson(i, options)),
      );
    return { vr: 'UN', InlineBinary: base64(v) };
  }
  if (isStringVR(vr)) return withValue(vr, stringValues(ds, vr, v));
  // Binary numbers and AT: a length that is not a whole number of values cannot be shown as
  // numbers; keep its bytes as UN rather than drop any (what pydicom's convert_wrong_length_to_UN does).
  const unit = vr === 'US' || vr === 'SS' ? 2 : vr === 'FD' || vr === 'SV' || vr === 'UV' ? 8 : 4;
  if (v.length % unit !== 0) return { vr: 'UN', InlineBinary: base64(v) };
  if (vr === 'AT') return withValue(vr, decodeTags(v).map(tagHex));
  if (vr === 'SV' || vr === 'UV')
    return withValue(
      vr,
      decodeBigInts(v, vr).map((b) => (Number.isSafeInteger(Number(b)) ? Number(b) : b.toString())),
    );
  // FL/FD: JSON has no NaN or Infinity, so those are written as the strings JavaScript names them.
  return withValue(
    vr,
    decodeNumbers(v, vr).map((n) => (Number.isFinite(n) ? n : String(n))),
  );
}

/** An attribute with its values; no "Value" member when there is none (PS3.18 F.2.5). */
function withValue(vr: VR, values: DicomJsonValue[]): DicomJsonAttribute {
  return values.length === 0 ? { vr } : { vr, Value: values };
}

// PS3.5 6.2: a valid IS / DS (padding already removed).
const IS_RE = /^[+-]?\d+$/;
const DS_RE = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/**
 * Values of a text VR. Empty values of a multi-valued attribute are null (PS3.18 F.2.5); a single
 * empty value is no value at all. IS and DS are numbers (F.2.3); one that is not a valid number
 * stays the string it is, which F.2.3 allows "to preserve the original format".
 */
function stringValues(ds: DataSet, vr: VR, bytes: Uint8Array): DicomJsonValue[] {
  const texts = decodeStrings(bytes, vr, ds.characterSets());
  if (texts.length === 1 && texts[0] === '') return [];
  return texts.map((s): DicomJsonValue => {
    if (s === '') return null;
    switch (vr) {
      case 'PN':
        return personName(s);
      case 'IS':
      case 'DS': {
        const n = (vr === 'IS' ? IS_RE : DS_RE).test(s) ? Number(s) : Number.NaN;
        return Number.isFinite(n) ? n : s;
      }
      default:
        return s;
    }
  });
}

const PN_GROUPS = ['Alphabetic', 'Ideographic', 'Phonetic'] as const;

/**
 * PS3.18 F.2.2: the non-empty component groups of a name ("=" separates them, PS3.5 6.2); a name
 * whose groups are all empty ("==") is an empty value, null.
 */
function personName(text: string): DicomJsonPersonName | null {
  const out: DicomJsonPersonName = {};
  let any = false;
  text.split('=').forEach((group, i) => {
    const key = PN_GROUPS[i];
    if (key && group !== '') {
      out[key] = group;
      any = true;
    }
  });
  return any ? out : null;
}

/**
 * The VR to show for a UN element: the dictionary's when the tag is known (a standard tag, or a
 * private creator), as pydicom does. UN on a known tag is what an implicit VR hop or an
 * old dictionary leaves behind, and users expect PatientName as a name, not base64. This is a view:
 * the DataSet keeps UN so the object is written back exactly as received. A value too long for a
 * 16-bit length stays UN: that is UN's legitimate use in explicit VR (PS3.5 6.2.2).
 * Binary values are read little endian: a UN in the retired Explicit VR Big Endian syntax, whose
 * bytes may be big endian, is the one case this gets wrong.
 */
function knownVR(ds: DataSet, tag: Tag, value: Uint8Array): VR {
  if (value.length >= 0xffff) return 'UN';
  const dictVR = lookupTag(tag)?.vr;
  if (!dictVR) return 'UN';
  if (isVR(dictVR)) return dictVR;
  switch (dictVR) {
    case 'US or SS':
      return pixelRepresentation(ds) === 1 ? 'SS' : 'US';
    case 'OB or OW':
      return 'OW';
    case 'US or OW':
    case 'US or SS or OW':
      return value.length > 6 ? 'OW' : 'US';
    default:
      return 'UN';
  }
}

function pixelRepresentation(ds: DataSet | undefined): number | undefined {
  for (let d = ds; d; d = d.parent) {
    const pr = d.number(TAG.PixelRepresentation);
    if (pr !== undefined) return pr;
  }
  return undefined;
}

/** The items of a UN value whose tag is a sequence: Implicit VR Little Endian (PS3.5 6.2.2); undefined when they do not parse. */
function unknownSequence(ds: DataSet, tag: Tag, value: Uint8Array): DataSet[] | undefined {
  // Parsed as a raw data set holding just this element. A zero-length (0000,0000) comes first so
  // that the parser's syntax check sees an implicit VR header whatever the value's length is.
  const bytes = new Uint8Array(16 + value.length);
  const dv = new DataView(bytes.buffer);
  dv.setUint16(8, tag >>> 16, true);
  dv.setUint16(10, tag & 0xffff, true);
  dv.setUint32(12, value.length, true);
  bytes.set(value, 16);
  let items: DataSet[] | undefined;
  try {
    items = parseDicom(bytes, { format: 'dataset', transferSyntax: IMPLICIT_VR_LE }).dataSet.sequence(tag);
  } catch (e) {
    if (e instanceof DicomParseError) return undefined;
    throw e;
  }
  for (const item of items ?? []) item.parent = ds;
  return items;
}

/** The bytes of encapsulated pixel data as the stream holds them (PS3.5 A.4): items, no delimiter (as pydicom gives it). */
function encapsulate(v: PixelFragments): Uint8Array {
  const size = v.fragments.reduce((n, f) => n + 8 + f.length, 0);
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  let o = 0;
  for (const f of v.fragments) {
    dv.setUint16(o, ITEM >>> 16, true);
    dv.setUint16(o + 2, ITEM & 0xffff, true);
    dv.setUint32(o + 4, f.length, true);
    out.set(f, o + 8);
    o += 8 + f.length;
  }
  return out;
}

/** The fragments of an encapsulated value (items, optionally a sequence delimiter), or undefined when it is not one. */
function fragmentsOf(bytes: Uint8Array): PixelFragments | undefined {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fragments: Uint8Array[] = [];
  let o = 0;
  while (o + 8 <= bytes.length) {
    const tag = ((dv.getUint16(o, true) << 16) | dv.getUint16(o + 2, true)) >>> 0;
    const length = dv.getUint32(o + 4, true);
    if (tag === SEQUENCE_DELIMITATION && length === 0 && o + 8 === bytes.length) break;
    if (tag !== ITEM || length === UNDEFINED_LENGTH || o + 8 + length > bytes.length) return undefined;
    fragments.push(bytes.slice(o + 8, o + 8 + length));
    o += 8 + length;
  }
  if (fragments.length === 0 || (o !== bytes.length && o + 8 !== bytes.length)) return undefined;
  return { kind: 'fragments', fragments };
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

// --- JSON -> DataSet ----------------------------------------------------------------------------

/** A bad input, with the tag path where it is ("00400275[0].00080100"). */
class JsonInputError extends Error {}

/**
 * Builds a data set from a DICOM JSON object. Specific Character Set (0008,0005) is set first in
 * each data set, so its text is encoded in it. The error names the tag path of the bad input.
 */
export function fromDicomJson(json: unknown, options: FromDicomJsonOptions = {}): Result<DataSet, string> {
  try {
    return ok(objectToDataSet(json, undefined, '', options));
  } catch (e) {
    if (e instanceof JsonInputError) return err(e.message);
    throw e;
  }
}

const TAG_KEY = /^[0-9A-Fa-f]{8}$/;

function objectToDataSet(
  json: unknown,
  parent: DataSet | undefined,
  path: string,
  options: FromDicomJsonOptions,
): DataSet {
  if (!isPlainObject(json))
    fail(path || '(top level)', `expected a DICOM JSON object, got ${typeName(json)}`);
  const ds = new DataSet(parent);
  const keys = Object.keys(json);
  for (const key of keys) {
    if (!TAG_KEY.test(key))
      fail(path ? `${path}.${key}` : key, 'attribute key is not a tag of 8 hexadecimal digits');
  }
  // The character set first: every other text value of this data set is encoded in it.
  const charsetKey = keys.find((k) => Number.parseInt(k, 16) === TAG.SpecificCharacterSet);
  const ordered = charsetKey ? [charsetKey, ...keys.filter((k) => k !== charsetKey)] : keys;
  for (const key of ordered) {
    const at = path ? `${path}.${key.toUpperCase()}` : key.toUpperCase();
    const tag = Number.parseInt(key, 16) >>> 0;
    const element = attributeFromJson(ds, tag, json[key], at, options);
    ds.set(element);
  }
  return ds;
}

function attributeFromJson(
  ds: DataSet,
  tag: Tag,
  json: unknown,
  at: string,
  options: FromDicomJsonOptions,
): DataElement {
  if (!isPlainObject(json)) fail(at, `expected an attribute object, got ${typeName(json)}`);
  const vr = json['vr'];
  if (typeof vr !== 'string' || !isVR(vr)) fail(at, `"vr" is missing or not a DICOM VR: ${show(vr)}`);
  const present = (['Value', 'InlineBinary', 'BulkDataURI'] as const).filter((k) => json[k] !== undefined);
  if (present.length > 1) fail(at, `has both ${present.join(' and ')}; at most one is allowed`);
  const which = present[0];
  if (which === undefined) return { tag, vr, value: vr === 'SQ' ? [] : new Uint8Array(0) };
  if (which === 'BulkDataURI') {
    const uri = json['BulkDataURI'];
    if (typeof uri !== 'string') fail(at, 'BulkDataURI is not a string');
    if (vr === 'SQ') fail(at, 'a sequence cannot have a BulkDataURI');
    const bytes = options.bulkData?.(uri, tag, vr);
    if (!bytes)
      fail(at, `BulkDataURI ${uri} cannot be resolved (no bulkData resolver, or it returned nothing)`);
    return binaryElement(tag, vr, bytes);
  }
  if (which === 'InlineBinary') {
    if (!isBulkVR(vr)) fail(at, `InlineBinary is only for OB, OD, OF, OL, OV, OW and UN, not ${vr}`);
    const text = json['InlineBinary'];
    if (typeof text !== 'string' || !BASE64.test(text)) fail(at, 'InlineBinary is not a base64 string');
    return binaryElement(tag, vr, new Uint8Array(Buffer.from(text, 'base64')));
  }
  const values = json['Value'];
  if (!Array.isArray(values)) fail(at, `"Value" is not an array: ${show(values)}`);
  if (vr === 'SQ')
    return {
      tag,
      vr,
      value: values.map((item, i) => objectToDataSet(item, ds, `${at}[${i}]`, options)),
    };
  if (isBulkVR(vr)) fail(at, `a ${vr} value is given as InlineBinary or BulkDataURI, not "Value"`);
  try {
    return { tag, vr, value: encodeValues(ds, vr, values, at) };
  } catch (e) {
    if (e instanceof DicomEncodeError) fail(at, e.message);
    throw e;
  }
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Encapsulated Pixel Data comes back as its fragments (its InlineBinary is the item stream, see encapsulate). */
function binaryElement(tag: Tag, vr: VR, bytes: Uint8Array): DataElement {
  const fragments = tag === TAG.PixelData && (vr === 'OB' || vr === 'OW') ? fragmentsOf(bytes) : undefined;
  return { tag, vr, value: fragments ?? bytes };
}

function encodeValues(ds: DataSet, vr: VR, values: unknown[], at: string): Uint8Array {
  if (isStringVR(vr)) {
    if (!isMultiValuedStringVR(vr) && values.length > 1)
      fail(at, `${vr} holds one value, got ${values.length}`);
    const texts = values.map((v, i) => textValue(vr, v, `${at}[${i}]`));
    return encodeStrings(texts, vr, ds.characterSets());
  }
  if (vr === 'AT')
    return encodeNumbers(
      values.map((v, i) => {
        if (typeof v !== 'string' || !TAG_KEY.test(v))
          fail(`${at}[${i}]`, `AT value is not a tag: ${show(v)}`);
        return Number.parseInt(v, 16);
      }),
      vr,
    );
  if (isBinaryNumberVR(vr))
    return encodeNumbers(
      values.map((v, i) => binaryNumber(vr, v, `${at}[${i}]`)),
      vr,
    );
  fail(at, `VR ${vr} cannot hold "Value"`);
}

/** The text of one value (null is an empty value, PS3.18 F.2.5). */
function textValue(vr: VR, v: unknown, at: string): string {
  if (v === null) return '';
  let text: string;
  if (vr === 'PN') text = personNameText(v, at);
  else if ((vr === 'IS' || vr === 'DS') && typeof v === 'number') {
    if (vr === 'IS' && !Number.isInteger(v)) fail(at, `IS value ${v} is not an integer`);
    text = vr === 'IS' ? String(v) : formatDS(v);
  } else if (typeof v === 'string') text = v;
  else fail(at, `expected a ${vr === 'IS' || vr === 'DS' ? 'number or string' : 'string'}, got ${show(v)}`);
  if (isMultiValuedStringVR(vr) && text.includes('\\'))
    fail(at, `a ${vr} value cannot contain a backslash (it separates values)`);
  return text;
}

/** PS3.18 F.2.2: the component groups joined by "=", trailing empty groups left out. A plain string is taken as is. */
function personNameText(v: unknown, at: string): string {
  if (typeof v === 'string') return v;
  if (!isPlainObject(v)) fail(at, `expected a person name object, got ${show(v)}`);
  const groups = PN_GROUPS.map((key) => {
    const g = v[key];
    if (g === undefined || g === null) return '';
    if (typeof g !== 'string') fail(at, `${key} is not a string`);
    if (g.includes('=')) fail(at, `${key} cannot contain "=" (it separates component groups)`);
    return g;
  });
  while (groups.length > 0 && groups[groups.length - 1] === '') groups.pop();
  return groups.join('=');
}

const RANGES: Partial<Record<VR, readonly [number, number]>> = {
  US: [0, 0xffff],
  SS: [-0x8000, 0x7fff],
  UL: [0, 0xffffffff],
  SL: [-0x80000000, 0x7fffffff],
};

function binaryNumber(vr: VR, v: unknown, at: string): number | bigint {
  if (vr === 'SV' || vr === 'UV') {
    let b: bigint | undefined;
    if (typeof v === 'number' && Number.isSafeInteger(v)) b = BigInt(v);
    else if (typeof v === 'string' && /^[+-]?\d+$/.test(v)) b = BigInt(v);
    if (b === undefined) fail(at, `${vr} value is not an integer: ${show(v)}`);
    const [lo, hi] = vr === 'SV' ? [-(2n ** 63n), 2n ** 63n - 1n] : [0n, 2n ** 64n - 1n];
    if (b < lo || b > hi) fail(at, `${vr} value ${b} is out of range`);
    return b;
  }
  if ((vr === 'FL' || vr === 'FD') && typeof v === 'string' && NON_FINITE.has(v)) return Number(v);
  if (typeof v !== 'number') fail(at, `expected a number, got ${show(v)}`);
  const range = RANGES[vr];
  if (range && (!Number.isInteger(v) || v < range[0] || v > range[1]))
    fail(at, `${vr} value ${v} is not an integer in ${range[0]}..${range[1]}`);
  return v;
}

const NON_FINITE: ReadonlySet<string> = new Set(['NaN', 'Infinity', '-Infinity']);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

function show(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

function fail(at: string, message: string): never {
  throw new JsonInputError(`${at}: ${message}`);
}
