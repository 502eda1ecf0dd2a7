/**
 * The ISO 2022 code elements DICOM uses (PS3.3 C.12.1.1.2, Tables C.12-2 to C.12-4): graphic
 * character sets that an escape sequence designates to G0 (invoked in GL, bytes 0x21-0x7E) or to
 * G1 (invoked in GR, bytes 0xA0-0xFF). Tables are built on first use from the ICU converters
 * that Node ships (TextDecoder), then corrected where ICU differs from the published mapping
 * tables that pydicom and iconv follow.
 */

/** ESCAPE (01/11): starts every code extension sequence. */
export const ESC = 0x1b;
/** Table value for a byte or cell that has no character. */
export const UNMAPPED = 0xfffd;

export type Slot = 'G0' | 'G1';

/** A 94- or 96-character set: one byte per character. */
export class SingleByteSet {
  readonly kind = 'single';
  private decodeTable: Uint16Array | undefined;
  private encodeTable: Map<number, number> | undefined;

  constructor(
    /** ISO-IR registration, for messages: 'ISO-IR 100'. */
    readonly name: string,
    readonly slot: Slot,
    /** The designation escape sequence, ESC included. */
    readonly designation: readonly number[],
    private readonly build: () => Uint16Array,
  ) {}

  /** 128 code units: for a G0 set bytes 0x00-0x7F, for a G1 set bytes 0x80-0xFF. */
  get table(): Uint16Array {
    this.decodeTable ??= this.build();
    return this.decodeTable;
  }

  /** The byte for code point `cp`, or -1. C0 controls are not graphic characters and never match. */
  encode(cp: number): number {
    if (this.encodeTable === undefined) {
      const map = new Map<number, number>();
      const table = this.table;
      const base = this.slot === 'G0' ? 0 : 0x80;
      for (let i = this.slot === 'G0' ? 0x20 : 0; i < 128; i++) {
        const u = table[i];
        if (u !== UNMAPPED && u !== 0x7f && !map.has(u)) map.set(u, base + i);
      }
      this.encodeTable = map;
    }
    return this.encodeTable.get(cp) ?? -1;
  }
}

/** A 94x94 set: two bytes per character, each 0x21-0x7E (0xA1-0xFE when invoked in GR). */
export class DoubleByteSet {
  readonly kind = 'double';
  private decodeTable: Uint16Array | undefined;
  private encodeTable: Map<number, number> | undefined;

  constructor(
    readonly name: string,
    readonly slot: Slot,
    readonly designation: readonly number[],
    private readonly spec: DoubleByteSpec,
  ) {}

  /** The character of row byte `b1` and cell byte `b2` (both 0x21-0x7E), or UNMAPPED. */
  decode(b1: number, b2: number): number {
    this.decodeTable ??= buildDoubleByteTable(this.spec);
    return this.decodeTable[(b1 - 0x21) * 94 + (b2 - 0x21)];
  }

  /** `(b1 << 8) | b2` with both bytes 0x21-0x7E for code point `cp`, or -1. */
  encode(cp: number): number {
    this.encodeTable ??= buildDoubleByteEncoder(this);
    return this.encodeTable.get(cp) ?? -1;
  }

  /** Cells that have a character but are not part of the registered set (vendor additions). */
  isExtension(b1: number, b2: number): boolean {
    return this.spec.extensions.some(([row, from, to]) => b1 === row && b2 >= from && b2 <= to);
  }

  get encodeAliases(): readonly (readonly [number, number])[] {
    return this.spec.encodeAliases;
  }
}

export type CodeElement = SingleByteSet | DoubleByteSet;

interface DoubleByteSpec {
  /** WHATWG label of an ICU converter that carries the set in its 0xA1-0xFE x 0xA1-0xFE area. */
  readonly label: string;
  /** Bytes put before each cell to select the set (0x8F for JIS X 0212 in EUC-JP). */
  readonly prefix: readonly number[];
  /** [cell, code point]: where the published mapping table differs from ICU's. */
  readonly overrides: readonly (readonly [number, number])[];
  /** [code point, cell]: other code points that writers commonly use for a cell (encode only). */
  readonly encodeAliases: readonly (readonly [number, number])[];
  /** [row byte, first cell byte, last cell byte]: ICU's vendor additions, decoded but never encoded. */
  readonly extensions: readonly (readonly [number, number, number])[];
}

/** Unicode Private Use Area: ICU's home for user-defined cells, which carry no character. */
function isPrivateUse(u: number): boolean {
  return u >= 0xe000 && u <= 0xf8ff;
}

function buildDoubleByteTable(spec: DoubleByteSpec): Uint16Array {
  // One decode call for all 8836 cells; a LF after each keeps a bad cell from eating the next.
  const stride = spec.prefix.length + 3;
  const bytes = new Uint8Array(94 * 94 * stride);
  let o = 0;
  for (let r = 0; r < 94; r++) {
    for (let c = 0; c < 94; c++) {
      for (const p of spec.prefix) bytes[o++] = p;
      bytes[o++] = 0xa1 + r;
      bytes[o++] = 0xa1 + c;
      bytes[o++] = 0x0a;
    }
  }
  const parts = new TextDecoder(spec.label).decode(bytes).split('\n');
  if (parts.length !== 94 * 94 + 1) throw new Error(`unexpected ${spec.label} decoder output`);
  const table = new Uint16Array(94 * 94).fill(UNMAPPED);
  for (let i = 0; i < 94 * 94; i++) {
    const s = parts[i];
    if (s.length !== 1) continue;
    const u = s.charCodeAt(0);
    if (!isPrivateUse(u)) table[i] = u;
  }
  for (const [cell, cp] of spec.overrides) table[((cell >> 8) - 0x21) * 94 + ((cell & 0xff) - 0x21)] = cp;
  return table;
}

function buildDoubleByteEncoder(set: DoubleByteSet): Map<number, number> {
  const map = new Map<number, number>();
  for (let b1 = 0x21; b1 <= 0x7e; b1++) {
    for (let b2 = 0x21; b2 <= 0x7e; b2++) {
      const u = set.decode(b1, b2);
      if (u === UNMAPPED || map.has(u) || set.isExtension(b1, b2)) continue;
      map.set(u, (b1 << 8) | b2);
    }
  }
  for (const [cp, cell] of set.encodeAliases) if (!map.has(cp)) map.set(cp, cell);
  return map;
}

function identityTable(): Uint16Array {
  const t = new Uint16Array(128);
  for (let i = 0; i < 128; i++) t[i] = i;
  return t;
}

/** An ISO 8859 upper half: C1 controls at 0x80-0x9F, the 96-set from ICU at 0xA0-0xFF. */
function iso8859UpperHalf(label: string): () => Uint16Array {
  return () => {
    const t = new Uint16Array(128);
    for (let i = 0; i < 0x20; i++) t[i] = 0x80 + i;
    const bytes = new Uint8Array(96);
    for (let i = 0; i < 96; i++) bytes[i] = 0xa0 + i;
    const s = new TextDecoder(label).decode(bytes);
    if (s.length !== 96) throw new Error(`unexpected ${label} decoder output`);
    for (let i = 0; i < 96; i++) {
      const u = s.charCodeAt(i);
      t[0x20 + i] = isPrivateUse(u) ? UNMAPPED : u;
    }
    return t;
  };
}

/** A G1 96-set with an ISO 8859 upper half, designated by ESC 02/13 F (PS3.3 Table C.12-2). */
function iso8859Set(name: string, final: number, label: string): SingleByteSet {
  return new SingleByteSet(name, 'G1', [ESC, 0x2d, final], iso8859UpperHalf(label));
}

/** Whole rows `from`..`to` (cells 0x21-0x7E) as DoubleByteSpec extensions. */
function wholeRows(from: number, to: number): [number, number, number][] {
  const rows: [number, number, number][] = [];
  for (let row = from; row <= to; row++) rows.push([row, 0x21, 0x7e]);
  return rows;
}

// G0 sets.
export const ASCII = new SingleByteSet('ISO-IR 6', 'G0', [ESC, 0x28, 0x42], identityTable);
/**
 * JIS X 0201 Roman (ISO-IR 14), the G0 set of ISO_IR 13. JIS X 0201 has YEN SIGN at 0x5C and
 * OVERLINE at 0x7E; like pydicom (Python's shift_jis codec) and ICU's Shift_JIS we read them as
 * REVERSE SOLIDUS and TILDE, so 0x5C stays the value delimiter. (DCMTK built with libiconv uses
 * JIS_X0201 and shows U+00A5 / U+203E.)
 */
export const JIS_X0201_ROMAN = new SingleByteSet('ISO-IR 14', 'G0', [ESC, 0x28, 0x4a], identityTable);

// G1 sets, single-byte.
export const LATIN1 = new SingleByteSet('ISO-IR 100', 'G1', [ESC, 0x2d, 0x41], () => {
  const t = identityTable();
  for (let i = 0; i < 128; i++) t[i] = 0x80 + i;
  return t;
});
export const LATIN2 = iso8859Set('ISO-IR 101', 0x42, 'iso-8859-2');
export const LATIN3 = iso8859Set('ISO-IR 109', 0x43, 'iso-8859-3');
export const LATIN4 = iso8859Set('ISO-IR 110', 0x44, 'iso-8859-4');
export const CYRILLIC = iso8859Set('ISO-IR 144', 0x4c, 'iso-8859-5');
export const ARABIC = iso8859Set('ISO-IR 127', 0x47, 'iso-8859-6');
export const GREEK = iso8859Set('ISO-IR 126', 0x46, 'iso-8859-7');
export const HEBREW = iso8859Set('ISO-IR 138', 0x48, 'iso-8859-8');
// WHATWG maps the label iso-8859-9 to windows-1254; its 0xA0-0xFF half is ISO 8859-9's.
export const LATIN5 = iso8859Set('ISO-IR 148', 0x4d, 'iso-8859-9');
export const LATIN9 = iso8859Set('ISO-IR 203', 0x62, 'iso-8859-15');
// TIS 620 / ISO 8859-11 upper half; windows-874 agrees at 0xA0-0xFF except for its private-use
// cells (dropped). 0xA0 is NO-BREAK SPACE as in ISO 8859-11 (Python's tis_620 leaves it undefined).
export const THAI = iso8859Set('ISO-IR 166', 0x54, 'windows-874');
/** JIS X 0201 Katakana (ISO-IR 13), a 94-set: half-width katakana at 0xA1-0xDF. */
export const JIS_X0201_KATAKANA = new SingleByteSet('ISO-IR 13', 'G1', [ESC, 0x29, 0x49], () => {
  const t = new Uint16Array(128).fill(UNMAPPED);
  for (let b = 0xa1; b <= 0xdf; b++) t[b - 0x80] = 0xff61 + (b - 0xa1);
  return t;
});

// Multi-byte sets (PS3.3 Table C.12-4).
/** JIS X 0208 (ISO-IR 87), G0: decoded as EUC-JP with the high bit set. */
export const JIS_X0208 = new DoubleByteSet('ISO-IR 87', 'G0', [ESC, 0x24, 0x42], {
  label: 'euc-jp',
  prefix: [],
  // ICU follows Microsoft for these; JIS0208.TXT (pydicom, iconv) has the characters below.
  overrides: [
    [0x2141, 0x301c],
    [0x2142, 0x2016],
    [0x215d, 0x2212],
    [0x2171, 0x00a2],
    [0x2172, 0x00a3],
    [0x224c, 0x00ac],
  ],
  encodeAliases: [
    [0xff5e, 0x2141],
    [0x2225, 0x2142],
    [0xff0d, 0x215d],
    [0xffe0, 0x2171],
    [0xffe1, 0x2172],
    [0xffe2, 0x224c],
  ],
  // NEC special characters (row 13) and NEC-selected IBM extensions (rows 89-92).
  extensions: [[0x2d, 0x21, 0x7e], ...wholeRows(0x79, 0x7c)],
});
/** JIS X 0212 (ISO-IR 159), G0: EUC-JP code set 3, after the single shift 0x8F. */
export const JIS_X0212 = new DoubleByteSet('ISO-IR 159', 'G0', [ESC, 0x24, 0x28, 0x44], {
  label: 'euc-jp',
  prefix: [0x8f],
  overrides: [[0x2237, 0x007e]],
  encodeAliases: [[0xff5e, 0x2237]],
  // IBM extensions that ICU places at rows 83-94.
  extensions: wholeRows(0x73, 0x7e),
});
/** KS X 1001 (ISO-IR 149), G1: the EUC-KR double-byte area. */
export const KS_X1001 = new DoubleByteSet('ISO-IR 149', 'G1', [ESC, 0x24, 0x29, 0x43], {
  label: 'euc-kr',
  prefix: [],
  // EURO SIGN and REGISTERED SIGN, added by KS X 1001:1998; ICU's table predates them.
  overrides: [
    [0x2266, 0x20ac],
    [0x2267, 0x00ae],
  ],
  encodeAliases: [],
  extensions: [],
});
/** GB 2312 (ISO-IR 58), G1: the GB18030 double-byte area with the high bit set. */
export const GB2312 = new DoubleByteSet('ISO-IR 58', 'G1', [ESC, 0x24, 0x29, 0x41], {
  label: 'gb18030',
  prefix: [],
  // GB2312.TXT (pydicom, iconv) has KATAKANA MIDDLE DOT and HORIZONTAL BAR here; GBK uses
  // MIDDLE DOT and EM DASH, which writers send just as often.
  overrides: [
    [0x2124, 0x30fb],
    [0x212a, 0x2015],
  ],
  encodeAliases: [
    [0x00b7, 0x2124],
    [0x2014, 0x212a],
  ],
  // GBK / GB18030 additions inside the GB 2312 area: small roman numerals, EURO SIGN,
  // vertical forms, pinyin letters.
  extensions: [
    [0x22, 0x21, 0x2a],
    [0x22, 0x63, 0x63],
    [0x26, 0x59, 0x75],
    [0x28, 0x3b, 0x40],
  ],
});

/** Every designation we recognise when decoding, keyed by the bytes after ESC (packed big-endian). */
export const DESIGNATIONS: ReadonlyMap<number, CodeElement> = (() => {
  const map = new Map<number, CodeElement>();
  const all: CodeElement[] = [
    ASCII,
    JIS_X0201_ROMAN,
    LATIN1,
    LATIN2,
    LATIN3,
    LATIN4,
    CYRILLIC,
    ARABIC,
    GREEK,
    HEBREW,
    LATIN5,
    LATIN9,
    THAI,
    JIS_X0201_KATAKANA,
    JIS_X0208,
    JIS_X0212,
    KS_X1001,
    GB2312,
  ];
  for (const e of all) map.set(packEscape(e.designation.slice(1)), e);
  // JIS C 6226-1978 (ESC $ @) and the long form ESC $ ( B: read as JIS X 0208, like Python.
  map.set(packEscape([0x24, 0x40]), JIS_X0208);
  map.set(packEscape([0x24, 0x28, 0x42]), JIS_X0208);
  return map;
})();

export function packEscape(bytes: readonly number[]): number {
  let key = 0;
  for (const b of bytes) key = key * 256 + b;
  return key;
}
