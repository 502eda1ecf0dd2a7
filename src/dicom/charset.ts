/**
 * DICOM character sets: Specific Character Set (0008,0005) values to and from text
 * (PS3.5 6.1, PS3.3 C.12.1.1.2). Single-byte sets with and without code extensions, ISO 2022
 * escape sequences for JIS X 0201/0208/0212, KS X 1001 and GB 2312, and the stand-alone
 * UTF-8, GB18030 and GBK.
 *
 * Decoding is lenient, like pydicom: unknown terms fall back to the default repertoire read as
 * ISO 8859-1, any escape sequence we know is honoured even when (0008,0005) does not list it, and
 * bytes without a character become U+FFFD. Encoding is strict: it throws DicomEncodeError rather
 * than write a byte the declared character sets do not define.
 *
 * Multi-valued values are decoded whole and split on '\' afterwards: in GB18030 and GBK, 0x5C can
 * be the second byte of a character, and ISO 2022 state is carried across the delimiter here.
 */
import { Buffer } from 'node:buffer';
import { TextDecoder } from 'node:util';
import { DicomEncodeError } from '../core/errors.js';
import {
  ARABIC,
  ASCII,
  type CodeElement,
  CYRILLIC,
  ESC,
  GB2312,
  GREEK,
  HEBREW,
  JIS_X0201_KATAKANA,
  JIS_X0201_ROMAN,
  JIS_X0208,
  JIS_X0212,
  KS_X1001,
  LATIN1,
  LATIN2,
  LATIN3,
  LATIN4,
  LATIN5,
  LATIN9,
  THAI,
} from './charset/code-elements.js';
import { encodeGb18030 } from './charset/gb18030.js';
import {
  type DelimiterSet,
  decodeIso2022,
  decodeSingleByte,
  encodeIso2022,
  type Iso2022Config,
} from './charset/iso2022.js';
import { UnencodableCharacter } from './charset/text-bytes.js';

/** What one defined term stands for. */
type Term =
  | { readonly kind: 'iso2022'; readonly g0?: CodeElement; readonly g1?: CodeElement }
  | { readonly kind: 'utf8' | 'gb18030' | 'gbk' };

function sb(g1: CodeElement): Term {
  return { kind: 'iso2022', g0: ASCII, g1 };
}

/**
 * Defined terms (PS3.3 Tables C.12-2 to C.12-5). The ISO_IR and ISO 2022 IR forms of a set name
 * the same code elements; only the latter allow escape sequences, which we accept either way.
 */
const TERMS: ReadonlyMap<string, Term> = new Map<string, Term>([
  ['', { kind: 'iso2022', g0: ASCII }],
  // Not a defined term (the default repertoire has none), but written by many devices.
  ['ISO_IR 6', { kind: 'iso2022', g0: ASCII }],
  ['ISO 2022 IR 6', { kind: 'iso2022', g0: ASCII }],
  ['ISO_IR 100', sb(LATIN1)],
  ['ISO 2022 IR 100', sb(LATIN1)],
  ['ISO_IR 101', sb(LATIN2)],
  ['ISO 2022 IR 101', sb(LATIN2)],
  ['ISO_IR 109', sb(LATIN3)],
  ['ISO 2022 IR 109', sb(LATIN3)],
  ['ISO_IR 110', sb(LATIN4)],
  ['ISO 2022 IR 110', sb(LATIN4)],
  ['ISO_IR 144', sb(CYRILLIC)],
  ['ISO 2022 IR 144', sb(CYRILLIC)],
  ['ISO_IR 127', sb(ARABIC)],
  ['ISO 2022 IR 127', sb(ARABIC)],
  ['ISO_IR 126', sb(GREEK)],
  ['ISO 2022 IR 126', sb(GREEK)],
  ['ISO_IR 138', sb(HEBREW)],
  ['ISO 2022 IR 138', sb(HEBREW)],
  ['ISO_IR 148', sb(LATIN5)],
  ['ISO 2022 IR 148', sb(LATIN5)],
  ['ISO_IR 203', sb(LATIN9)],
  ['ISO 2022 IR 203', sb(LATIN9)],
  ['ISO_IR 166', sb(THAI)],
  ['ISO 2022 IR 166', sb(THAI)],
  ['ISO_IR 13', { kind: 'iso2022', g0: JIS_X0201_ROMAN, g1: JIS_X0201_KATAKANA }],
  ['ISO 2022 IR 13', { kind: 'iso2022', g0: JIS_X0201_ROMAN, g1: JIS_X0201_KATAKANA }],
  ['ISO 2022 IR 87', { kind: 'iso2022', g0: JIS_X0208 }],
  ['ISO 2022 IR 159', { kind: 'iso2022', g0: JIS_X0212 }],
  ['ISO 2022 IR 149', { kind: 'iso2022', g1: KS_X1001 }],
  ['ISO 2022 IR 58', { kind: 'iso2022', g1: GB2312 }],
  ['ISO_IR 192', { kind: 'utf8' }],
  ['GB18030', { kind: 'gb18030' }],
  ['GBK', { kind: 'gbk' }],
]);

/** True when `term` is a Specific Character Set value this module reads and writes as it is. */
export function isKnownCharset(term: string): boolean {
  return TERMS.has(term);
}

/** A term as found in data: padded, lower case, 'ISO IR 100', 'ISO-IR 144', 'ISO_2022_IR_87'... */
function lookupTerm(raw: string): Term | undefined {
  const exact = TERMS.get(raw);
  if (exact !== undefined) return exact;
  const t = raw.trim().toUpperCase();
  const trimmed = TERMS.get(t);
  if (trimmed !== undefined) return trimmed;
  const m = /^ISO[ _-]?(2022[ _-]?)?IR[ _+-]?(\d+)$/.exec(t);
  if (m !== null) {
    const single = `ISO_IR ${m[2]}`;
    const extended = `ISO 2022 IR ${m[2]}`;
    return m[1] === undefined
      ? (TERMS.get(single) ?? TERMS.get(extended))
      : (TERMS.get(extended) ?? TERMS.get(single));
  }
  // Spellings from an early draft of CP 1234 that pydicom also accepts.
  if (t === 'ISO 2022 GBK') return TERMS.get('GBK');
  if (t === 'ISO 2022 58') return TERMS.get('ISO 2022 IR 58');
  return undefined;
}

type Resolved =
  | { readonly kind: 'utf8' | 'gb18030' | 'gbk'; readonly knownFirst: boolean }
  | {
      readonly kind: 'iso2022';
      readonly config: Iso2022Config;
      /** Highest code point that every byte up to it encodes as itself in the initial state. */
      readonly directMax: number;
      /** False when value 1 is a term we do not know (decoded as if ISO_IR 100). */
      readonly knownFirst: boolean;
    };

const DEFAULT_TERM: Term = { kind: 'iso2022', g0: ASCII };

function resolveUncached(given: readonly string[]): Resolved {
  // A caller may pass the element's value unsplit.
  const charsets = given.length === 1 && given[0].includes('\\') ? given[0].split('\\') : given;
  // PS3.3 C.12.1.1.2: no value, or an empty value 1, is the default repertoire.
  const first = charsets.length === 0 ? DEFAULT_TERM : lookupTerm(charsets[0]);
  // Unknown value 1: read as the default repertoire with ISO 8859-1 in the high half, as pydicom does.
  const head = first ?? sb(LATIN1);
  // UTF-8, GB18030 and GBK allow no code extensions (PS3.5 6.1.2.5.4 d): as value 1 they rule
  // alone; as a later value they are ignored, like unknown and empty later values.
  if (head.kind !== 'iso2022') return { kind: head.kind, knownFirst: true };
  const initialG0 = head.g0?.kind === 'single' ? head.g0 : ASCII;
  const initialG1 = head.g1;
  const elements: CodeElement[] = [initialG0];
  if (initialG1 !== undefined) elements.push(initialG1);
  const terms = [head, ...charsets.slice(1).map(lookupTerm)];
  for (const term of terms) {
    if (term?.kind !== 'iso2022') continue;
    for (const e of [term.g0, term.g1]) if (e !== undefined && !elements.includes(e)) elements.push(e);
  }
  return {
    kind: 'iso2022',
    config: { initialG0, initialG1, elements },
    directMax: initialG1 === LATIN1 ? 0xff : initialG1 === undefined ? 0x7f : -1,
    knownFirst: first !== undefined,
  };
}

/** Resolved Specific Character Set values, by their values joined with '\'. */
const resolvedCache = new Map<string, Resolved>();
const DEFAULT_RESOLVED = resolveUncached([]);

function resolve(charsets: readonly string[]): Resolved {
  if (charsets.length === 0) return DEFAULT_RESOLVED;
  const key = charsets.length === 1 ? charsets[0] : charsets.join('\\');
  let r = resolvedCache.get(key);
  if (r === undefined) {
    r = resolveUncached(charsets);
    // Terms come from peers: bound the cache rather than let odd values grow it without end.
    if (resolvedCache.size >= 256) resolvedCache.clear();
    resolvedCache.set(key, r);
  }
  return r;
}

/** VRs whose values use Specific Character Set (PS3.5 6.1.2.3); the others are ISO 646. */
const CHARSET_VRS = new Set(['SH', 'LO', 'UC', 'ST', 'LT', 'UT', 'PN']);

function delimiterSet(chars: string): DelimiterSet {
  const set = new Uint8Array(128);
  for (const c of chars) set[c.charCodeAt(0)] = 1;
  return set;
}
/** PS3.5 6.1.2.5.3: PN resets at '^' and '=' and, being multi-valued, at '\'. */
const PN_DELIMITERS = delimiterSet('^=\\');
const MULTI_VALUE_DELIMITERS = delimiterSet('\\');
/** LT, ST and UT are single-valued: '\' is text there, and only control characters reset. */
const TEXT_DELIMITERS = delimiterSet('');

function delimitersFor(vr: string): DelimiterSet {
  if (vr === 'PN') return PN_DELIMITERS;
  if (vr === 'LT' || vr === 'ST' || vr === 'UT') return TEXT_DELIMITERS;
  return MULTI_VALUE_DELIMITERS;
}

let gbDecoders: { gb18030: TextDecoder; gbk: TextDecoder } | undefined;

/** A Buffer over the same memory (no copy); the parser's own Buffers pass straight through. */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function latin1String(bytes: Uint8Array): string {
  return asBuffer(bytes).toString('latin1');
}

/**
 * Decodes a string value's bytes per the data set's Specific Character Set (0008,0005) values,
 * e.g. [] or ['ISO_IR 100'] or ['', 'ISO 2022 IR 87'] or ['ISO 2022 IR 6', 'ISO 2022 IR 149'].
 * `vr` matters: for PN the ISO 2022 state resets at '^' and '=', for multi-valued VRs at '\',
 * and for every VR at control characters (CR, LF, FF, TAB) as PS3.5 6.1.2.5.3 says. VRs that do
 * not use Specific Character Set are decoded as ISO 8859-1. Padding is left to the caller.
 * Never throws: unknown terms and undefined bytes give a best-effort string.
 */
export function decodeString(bytes: Uint8Array, charsets: readonly string[], vr: string): string {
  if (!CHARSET_VRS.has(vr)) return latin1String(bytes);
  const r = resolve(charsets);
  switch (r.kind) {
    case 'utf8':
      return asBuffer(bytes).toString('utf8');
    case 'gb18030':
    case 'gbk': {
      gbDecoders ??= { gb18030: new TextDecoder('gb18030'), gbk: new TextDecoder('gbk') };
      return gbDecoders[r.kind].decode(bytes);
    }
    case 'iso2022': {
      const { config } = r;
      if (bytes.indexOf(ESC) >= 0 || config.initialG1?.kind === 'double') {
        return decodeIso2022(bytes, config, delimitersFor(vr));
      }
      // Without escape sequences the initial state holds throughout.
      if (config.initialG1 === undefined || config.initialG1 === LATIN1) return latin1String(bytes);
      return decodeSingleByte(bytes, config.initialG0, config.initialG1);
    }
  }
}

/**
 * Encodes text for a value of `vr` in the given character sets. For ISO 2022 sets it chooses
 * the code elements needed and emits the escape sequences, switching back to the initial set
 * before '^', '=' (PN), '\' (multi-valued VRs), control characters and at the end, as PS3.5
 * 6.1.2.5.3 requires. VRs that do not use Specific Character Set are encoded as ISO 646.
 * @throws DicomEncodeError for a character none of the sets has, for ESC outside UTF-8, GB18030
 * and GBK (elsewhere it is reserved for code extension) and for a value 1 we do not know.
 */
export function encodeString(text: string, charsets: readonly string[], vr: string): Uint8Array {
  const r = CHARSET_VRS.has(vr) ? resolve(charsets) : DEFAULT_RESOLVED;
  if (!r.knownFirst) {
    throw new DicomEncodeError(`unknown Specific Character Set ${JSON.stringify(charsets[0])}`);
  }
  let result: Uint8Array | UnencodableCharacter;
  switch (r.kind) {
    case 'utf8': {
      const bad = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.exec(text);
      result =
        bad === null ? Buffer.from(text, 'utf8') : new UnencodableCharacter(text.charCodeAt(bad.index));
      break;
    }
    case 'gb18030':
    case 'gbk':
      result = encodeGb18030(text, r.kind === 'gbk');
      break;
    case 'iso2022': {
      if (isDirect(text, r.directMax)) return Buffer.from(text, 'latin1');
      result = encodeIso2022(text, r.config, delimitersFor(vr));
      break;
    }
  }
  if (result instanceof UnencodableCharacter) {
    const cp = result.codePoint;
    const hex = cp.toString(16).toUpperCase().padStart(4, '0');
    const shown = cp >= 0x20 && (cp < 0xd800 || cp > 0xdfff) ? ` '${String.fromCodePoint(cp)}'` : '';
    const sets = CHARSET_VRS.has(vr) ? JSON.stringify(charsets) : 'the default repertoire';
    throw new DicomEncodeError(`U+${hex}${shown} cannot be encoded in ${sets} for VR ${vr}`);
  }
  return result;
}

/** True when every character is at most `max` and none is ESC: the bytes are the code units. */
function isDirect(text: string, max: number): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > max || c === ESC) return false;
  }
  return true;
}
