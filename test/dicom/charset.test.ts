import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { DicomEncodeError } from '../../src/core/errors.js';
import { decodeString, encodeString, isKnownCharset } from '../../src/dicom/charset.js';

/** Bytes from a string of code units 0x00-0xFF, so goldens can be written with \x escapes. */
function b(latin1: string): Uint8Array {
  return new Uint8Array(Buffer.from(latin1, 'latin1'));
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

function assertBytes(actual: Uint8Array, expected: Uint8Array): void {
  assert.equal(hex(actual), hex(expected));
}

/** Asserts that `text` encodes to `golden` and `golden` decodes to `text`. */
function golden(text: string, charsets: readonly string[], vr: string, bytes: Uint8Array): void {
  assert.equal(decodeString(bytes, charsets, vr), text, `decode in ${charsets.join('\\')}`);
  assertBytes(encodeString(text, charsets, vr), bytes);
}

function roundTrip(text: string, charsets: readonly string[], vr: string): void {
  assert.equal(decodeString(encodeString(text, charsets, vr), charsets, vr), text, `${text} in ${charsets}`);
}

function assertUnencodable(text: string, charsets: readonly string[], vr: string): void {
  assert.throws(
    () => encodeString(text, charsets, vr),
    (e: unknown) => e instanceof DicomEncodeError && e.code === 'ERR_DICOM_ENCODE',
  );
}

const PYTHON = '/usr/bin/python3';
const CHARSET_FILES = '/usr/lib/python3/dist-packages/pydicom/data/charset_files';

/** Runs a Python script with the system Python and parses what it prints as JSON. */
function python(script: string, args: readonly string[] = []): unknown {
  let out: string;
  try {
    out = execFileSync(PYTHON, ['-W', 'ignore', '-c', script, ...args], {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (e) {
    const stderr = (e as { stderr?: unknown }).stderr;
    assert.fail(
      `${PYTHON} with pydicom is needed for this test (apt-get install -y python3-pydicom): ${String(stderr ?? e)}`,
    );
  }
  return JSON.parse(out);
}

describe('isKnownCharset', () => {
  it('knows the defined terms of PS3.3 Tables C.12-2 to C.12-5', () => {
    const terms = [
      '',
      'ISO_IR 100',
      'ISO_IR 101',
      'ISO_IR 109',
      'ISO_IR 110',
      'ISO_IR 144',
      'ISO_IR 127',
      'ISO_IR 126',
      'ISO_IR 138',
      'ISO_IR 148',
      'ISO_IR 203',
      'ISO_IR 13',
      'ISO_IR 166',
      'ISO 2022 IR 6',
      'ISO 2022 IR 100',
      'ISO 2022 IR 101',
      'ISO 2022 IR 109',
      'ISO 2022 IR 110',
      'ISO 2022 IR 144',
      'ISO 2022 IR 127',
      'ISO 2022 IR 126',
      'ISO 2022 IR 138',
      'ISO 2022 IR 148',
      'ISO 2022 IR 203',
      'ISO 2022 IR 13',
      'ISO 2022 IR 166',
      'ISO 2022 IR 87',
      'ISO 2022 IR 159',
      'ISO 2022 IR 149',
      'ISO 2022 IR 58',
      'ISO_IR 192',
      'GB18030',
      'GBK',
    ];
    for (const t of terms) assert.equal(isKnownCharset(t), true, t);
  });

  it('accepts ISO_IR 6, which many devices write for the default repertoire', () => {
    assert.equal(isKnownCharset('ISO_IR 6'), true);
  });

  it('rejects misspellings and unknown terms, even those decoding tolerates', () => {
    for (const t of [
      'ISO IR 100',
      'ISO-IR 144',
      'iso_ir 100',
      'ISO_IR 87',
      'ISO 2022 IR 192',
      'UTF-8',
      'ISO_IR 100 ',
    ]) {
      assert.equal(isKnownCharset(t), false, t);
    }
  });
});

describe('default repertoire', () => {
  it('decodes ASCII, for no value, an empty value and ISO_IR 6', () => {
    for (const cs of [[], [''], ['ISO_IR 6'], ['ISO 2022 IR 6']]) {
      golden('Doe^John\\Roe^Jane', cs, 'PN', b('Doe^John\\Roe^Jane'));
    }
  });

  it('reads bytes above 0x7F as ISO 8859-1, as pydicom does', () => {
    assert.equal(decodeString(b('Buc^J\xe9r\xf4me'), [], 'PN'), 'Buc^Jérôme');
  });

  it('refuses to write characters outside ISO 646', () => {
    assertUnencodable('Jérôme', [], 'PN');
    assertUnencodable('Jérôme', [''], 'LO');
  });

  it('keeps control characters of text values', () => {
    golden('line 1\r\nline 2\tend\f', [], 'LT', b('line 1\r\nline 2\tend\f'));
  });

  it('refuses ESC, which is reserved for code extension', () => {
    assertUnencodable('a\x1b(Bb', [], 'LO');
    assertUnencodable('a\x1b', ['ISO_IR 100'], 'LO');
    assertUnencodable('a\x1b', ['', 'ISO 2022 IR 87'], 'LO');
  });
});

/**
 * One name per single-byte set, mostly from pydicom's test data (ENCODED_NAMES, drawn from
 * David Clunie's character set samples and PS3.5 Annex H), with its bytes in that set.
 */
const SINGLE_BYTE: readonly { ir: string; final: string; text: string; bytes: string }[] = [
  { ir: '100', final: 'A', text: 'Buc^Jérôme', bytes: 'Buc^J\xe9r\xf4me' },
  { ir: '101', final: 'B', text: 'Wałęsa', bytes: 'Wa\xb3\xeasa' },
  { ir: '109', final: 'C', text: 'antaŭnomo', bytes: 'anta\xfdnomo' },
  { ir: '110', final: 'D', text: 'vārds', bytes: 'v\xe0rds' },
  { ir: '144', final: 'L', text: 'Люкceмбypг', bytes: '\xbb\xee\xdace\xdc\xd1yp\xd3' },
  { ir: '127', final: 'G', text: 'قباني^لنزار', bytes: '\xe2\xc8\xc7\xe6\xea^\xe4\xe6\xd2\xc7\xd1' },
  { ir: '126', final: 'F', text: 'Διονυσιος', bytes: '\xc4\xe9\xef\xed\xf5\xf3\xe9\xef\xf2' },
  { ir: '138', final: 'H', text: 'שרון^דבורה', bytes: '\xf9\xf8\xe5\xef^\xe3\xe1\xe5\xf8\xe4' },
  { ir: '148', final: 'M', text: 'Çavuşoğlu', bytes: '\xc7avu\xfeo\xf0lu' },
  { ir: '203', final: 'b', text: 'Œuvre à 5€', bytes: '\xbcuvre \xe0 5\xa4' },
  { ir: '166', final: 'T', text: 'นามสกุล', bytes: '\xb9\xd2\xc1\xca\xa1\xd8\xc5' },
];

describe('single-byte character sets without code extensions', () => {
  for (const { ir, text, bytes } of SINGLE_BYTE) {
    it(`ISO_IR ${ir}: ${text}`, () => {
      golden(text, [`ISO_IR ${ir}`], 'PN', b(bytes));
      golden(`${text}\\${text}`, [`ISO_IR ${ir}`], 'LO', b(`${bytes}\\${bytes}`));
    });
  }

  it('ISO_IR 13: JIS X 0201 katakana in the high half (PS3.5 H.3.2 alphabetic group)', () => {
    golden('ﾔﾏﾀﾞ^ﾀﾛｳ', ['ISO_IR 13'], 'PN', b('\xd4\xcf\xc0\xde^\xc0\xdb\xb3'));
  });

  it('ISO_IR 13: 0x5C and 0x7E are REVERSE SOLIDUS and TILDE, as in pydicom', () => {
    // JIS X 0201 Roman has YEN SIGN and OVERLINE there; pydicom (Shift_JIS) does not, and 0x5C
    // must stay the value delimiter.
    assert.equal(decodeString(b('a\\b~'), ['ISO_IR 13'], 'LO'), 'a\\b~');
    assertBytes(encodeString('a\\b~', ['ISO_IR 13'], 'LO'), b('a\\b~'));
    assertUnencodable('¥', ['ISO_IR 13'], 'LO');
  });

  it('maps each single-byte set like the Python codecs pydicom uses', () => {
    const codecs: Record<string, string> = {
      '100': 'latin_1',
      '101': 'iso8859_2',
      '109': 'iso8859_3',
      '110': 'iso8859_4',
      '144': 'iso_ir_144',
      '127': 'iso_ir_127',
      '126': 'iso_ir_126',
      '138': 'iso_ir_138',
      '148': 'iso_ir_148',
      '203': 'iso8859_15',
      '166': 'iso_ir_166',
    };
    const script = `
import json, sys
codecs = json.loads(sys.argv[1])
out = {}
for ir, codec in codecs.items():
    row = []
    for byte in range(0x80, 0x100):
        try: row.append(bytes([byte]).decode(codec))
        except UnicodeDecodeError: row.append(None)
    out[ir] = row
print(json.dumps(out))
`;
    const tables = python(script, [JSON.stringify(codecs)]) as Record<string, (string | null)[]>;
    for (const [ir, row] of Object.entries(tables)) {
      for (let i = 0; i < 128; i++) {
        const byte = 0x80 + i;
        const ours = decodeString(new Uint8Array([byte]), [`ISO_IR ${ir}`], 'LO');
        let theirs = row[i];
        // ISO-IR 166 is a 96-set with NO-BREAK SPACE at 0xA0, as in ISO 8859-11; Python's
        // tis_620 leaves 0xA0 undefined.
        if (ir === '166' && byte === 0xa0) theirs = '\u00a0';
        assert.equal(ours, theirs ?? '\ufffd', `ISO_IR ${ir} byte ${byte.toString(16)}`);
        if (theirs !== null)
          assertBytes(encodeString(theirs, [`ISO_IR ${ir}`], 'LO'), new Uint8Array([byte]));
      }
    }
  });
});

describe('single-byte character sets with code extensions', () => {
  for (const { ir, final, text, bytes } of SINGLE_BYTE) {
    it(`ISO 2022 IR ${ir} as a code extension of the default repertoire`, () => {
      const cs = ['', `ISO 2022 IR ${ir}`];
      // Decoded as written by pydicom: the designation before each name component.
      const pydicomStyle = `ASCII+\x1b-${final}${bytes.replaceAll('^', `^\x1b-${final}`)}`;
      assert.equal(decodeString(b(pydicomStyle), cs, 'PN'), `ASCII+${text}`);
      roundTrip(`ASCII+${text}`, cs, 'PN');
      roundTrip(`${text}=${text}`, cs, 'PN');
      roundTrip(`${text}\\ASCII\\${text}`, cs, 'LO');
    });
  }

  it('designates G1 just before the first character that needs it', () => {
    golden('Διονυσιος', ['', 'ISO 2022 IR 126'], 'PN', b('\x1b-F\xc4\xe9\xef\xed\xf5\xf3\xe9\xef\xf2'));
    golden('Wałęsa', ['', 'ISO 2022 IR 101'], 'PN', b('Wa\x1b-B\xb3\xeasa'));
    // pydicom's golden value: the G1 designation is needed again after '^' (PS3.5 Annex I.2).
    golden(
      'قباني^لنزار',
      ['', 'ISO 2022 IR 127'],
      'PN',
      b('\x1b-G\xe2\xc8\xc7\xe6\xea^\x1b-G\xe4\xe6\xd2\xc7\xd1'),
    );
  });

  it('ISO 2022 IR 13: katakana through ESC ) I after an empty value 1', () => {
    golden(
      'ASCII+ﾔﾏﾀﾞ^ﾀﾛｳ',
      ['', 'ISO 2022 IR 13'],
      'PN',
      b('ASCII+\x1b)I\xd4\xcf\xc0\xde^\x1b)I\xc0\xdb\xb3'),
    );
  });

  it('uses value 1 without any escape sequence (pydicom #707)', () => {
    const cs = ['ISO 2022 IR 100', 'ISO 2022 IR 144'];
    golden('Buc^Jérôme', cs, 'PN', b('Buc^J\xe9r\xf4me'));
    golden('Röntgenaufnahme', cs, 'LO', b('R\xf6ntgenaufnahme'));
  });

  it('switches between several G1 sets, with value 1 in effect again at each value (pydicom)', () => {
    const cs = ['ISO 2022 IR 100', 'ISO 2022 IR 144', 'ISO 2022 IR 126'];
    const bytes = b(
      'Buc^J\xe9r\xf4me\\\x1b-F\xc4\xe9\xef\xed\xf5\xf3\xe9\xef\xf2\\\x1b-L\xbb\xee\xdace\xdc\xd1yp\xd3',
    );
    for (const vr of ['PN', 'LO']) {
      assert.equal(decodeString(bytes, cs, vr), 'Buc^Jérôme\\Διονυσιος\\Люкceмбypг');
      roundTrip('Buc^Jérôme\\Διονυσιος\\Люкceмбypг', cs, vr);
    }
    assert.equal(
      decodeString(
        b('Dionysios=\x1b-F\xc4\xe9\xef\xed\xf5\xf3\xe9\xef\xf2'),
        ['ISO 2022 IR 100', 'ISO 2022 IR 126'],
        'PN',
      ),
      'Dionysios=Διονυσιος',
    );
  });

  it('switches G1 back to value 1 before a delimiter and at the end', () => {
    const cs = ['ISO 2022 IR 100', 'ISO 2022 IR 126'];
    golden('Δ^é=Δ', cs, 'PN', b('\x1b-F\xc4\x1b-A^\xe9=\x1b-F\xc4\x1b-A'));
    golden('Δ\\é', cs, 'LO', b('\x1b-F\xc4\x1b-A\\\xe9'));
    golden('Δ\r\né\tΔ', cs, 'LT', b('\x1b-F\xc4\x1b-A\r\n\xe9\t\x1b-F\xc4\x1b-A'));
  });
});

describe('delimiters reset the designations (PS3.5 6.1.2.5.3)', () => {
  const greek = ['ISO 2022 IR 100', 'ISO 2022 IR 126'];

  it('PN resets at ^ and =', () => {
    assert.equal(decodeString(b('\x1b-F\xc4^\xc4=\xc4'), greek, 'PN'), 'Δ^Ä=Ä');
    assert.equal(decodeString(b('\x1b-F\xc4=\xc4'), greek, 'PN'), 'Δ=Ä');
    // pydicom: a missing designation after '^' leaves the default repertoire (read as Latin-1).
    assert.equal(
      decodeString(b('ASCII+\x1b)I\xd4\xcf\xc0\xde^\xc0\xdb\xb3'), ['', 'ISO 2022 IR 13'], 'PN'),
      'ASCII+ﾔﾏﾀﾞ^ÀÛ³',
    );
  });

  it('multi-valued VRs reset at \\ but not at ^ or =', () => {
    for (const vr of ['PN', 'LO', 'SH', 'UC'])
      assert.equal(decodeString(b('\x1b-F\xc4\\\xc4'), greek, vr), 'Δ\\Ä', vr);
    for (const vr of ['LO', 'SH', 'UC'])
      assert.equal(decodeString(b('\x1b-F\xc4^\xc4=\xc4'), greek, vr), 'Δ^Δ=Δ', vr);
  });

  it('text VRs reset at CR, LF, FF and TAB but not at \\', () => {
    for (const vr of ['LT', 'ST', 'UT']) {
      assert.equal(decodeString(b('\x1b-F\xc4\\\xc4^\xc4'), greek, vr), 'Δ\\Δ^Δ', vr);
      for (const c of ['\r', '\n', '\f', '\t']) {
        assert.equal(
          decodeString(b(`\x1b-F\xc4${c}\xc4`), greek, vr),
          `Δ${c}Ä`,
          `${vr} ${JSON.stringify(c)}`,
        );
      }
    }
  });

  it('a delimiter byte inside a JIS X 0208 character is not a delimiter', () => {
    // ま is 0x24 0x5E in JIS X 0208: the 0x5E is not '^'.
    assert.equal(decodeString(b('\x1b$B$^$^\x1b(B'), ['', 'ISO 2022 IR 87'], 'PN'), 'まま');
    // 0x3D 0x3D ('==' as bytes) is 鴎-row kanji 0x3D3D.
    assert.equal(decodeString(b('\x1b$B==\x1b(B=a'), ['', 'ISO 2022 IR 87'], 'PN'), `${decodeJis(0x3d3d)}=a`);
  });

  it('the encoder switches back to the initial G0 before ^, =, \\ and at the end', () => {
    const cs = ['', 'ISO 2022 IR 87'];
    golden('山^田=山\\田', cs, 'PN', b('\x1b$B;3\x1b(B^\x1b$BED\x1b(B=\x1b$B;3\x1b(B\\\x1b$BED\x1b(B'));
    golden('山\\田', cs, 'LO', b('\x1b$B;3\x1b(B\\\x1b$BED\x1b(B'));
    golden('山\r\n田', cs, 'LT', b('\x1b$B;3\x1b(B\r\n\x1b$BED\x1b(B'));
    // In LO, '^' is an ordinary character; it still needs ISO 646 in G0.
    golden('山^田', cs, 'LO', b('\x1b$B;3\x1b(B^\x1b$BED\x1b(B'));
  });
});

function decodeJis(cell: number): string {
  return decodeString(
    b(`\x1b$B${String.fromCharCode(cell >> 8, cell & 0xff)}\x1b(B`),
    ['', 'ISO 2022 IR 87'],
    'LO',
  );
}

describe('Japanese (PS3.5 Annex H)', () => {
  it('H.3.1: ISO 2022 IR 87 after an empty value 1', () => {
    golden(
      'Yamada^Tarou=山田^太郎=やまだ^たろう',
      ['', 'ISO 2022 IR 87'],
      'PN',
      b('Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B'),
    );
  });

  it('H.3.2: ISO 2022 IR 13 as value 1, JIS X 0201 Roman (ESC ( J) as the initial G0', () => {
    golden(
      'ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう',
      ['ISO 2022 IR 13', 'ISO 2022 IR 87'],
      'PN',
      b(
        '\xd4\xcf\xc0\xde^\xc0\xdb\xb3=\x1b$B;3ED\x1b(J^\x1b$BB@O:\x1b(J=\x1b$B$d$^$@\x1b(J^\x1b$B$?$m$&\x1b(J',
      ),
    );
  });

  it('ISO 2022 IR 159: JIS X 0212 for characters JIS X 0208 lacks (pydicom golden)', () => {
    golden(
      'Mori^Ogai=森^鷗外=もり^おうがい',
      ['ISO 2022 IR 6', 'ISO 2022 IR 87', 'ISO 2022 IR 159'],
      'PN',
      b('Mori^Ogai=\x1b$B?9\x1b(B^\x1b$(Dl?\x1b$B30\x1b(B=\x1b$B$b$j\x1b(B^\x1b$B$*$&$,$$\x1b(B'),
    );
  });

  it('mixes all four Japanese code elements', () => {
    const cs = ['ISO 2022 IR 13', 'ISO 2022 IR 87', 'ISO 2022 IR 159'];
    // pydicom writes ESC ) I before ｱ; katakana is the initial G1 here, so we need no designation.
    assert.equal(decodeString(b('\x1b$B$"\x1b(Ja\x1b)I\xb1\x1b$B%"\x1b$(DmN\x1b(J'), cs, 'LO'), 'あaｱア齩');
    golden('あaｱア齩', cs, 'LO', b('\x1b$B$"\x1b(Ja\xb1\x1b$B%"\x1b$(DmN\x1b(J'));
  });

  it('reads the vendor forms of JIS X 0208 but writes only the standard cells', () => {
    const cs = ['', 'ISO 2022 IR 87'];
    // ICU maps 0x2141 to FULLWIDTH TILDE; JIS0208.TXT, pydicom and iconv to WAVE DASH.
    assert.equal(decodeJis(0x2141), '\u301c');
    assertBytes(encodeString('\uff5e', cs, 'LO'), b('\x1b$B!A\x1b(B'));
    // NEC row 13 (circled digits) decodes, but is not JIS X 0208 and is not written.
    assert.equal(decodeJis(0x2d21), '①');
    assertUnencodable('①', cs, 'LO');
  });

  it('space and controls inside a JIS X 0208 run', () => {
    const cs = ['', 'ISO 2022 IR 87'];
    golden('山 田', cs, 'LO', b('\x1b$B;3\x1b(B \x1b$BED\x1b(B'));
    assert.equal(decodeString(b('\x1b$B;3 ED\x1b(B'), cs, 'LO'), '山 田');
  });
});

describe('Korean (PS3.5 Annex I)', () => {
  it('I.2: person name, ISO 2022 IR 149 designated again in each component', () => {
    golden(
      'Hong^Gildong=洪^吉洞=홍^길동',
      ['', 'ISO 2022 IR 149'],
      'PN',
      b('Hong^Gildong=\x1b$)C\xfb\xf3^\x1b$)C\xd1\xce\xd4\xd7=\x1b$)C\xc8\xab^\x1b$)C\xb1\xe6\xb5\xbf'),
    );
  });

  it('I.3: long text with the designation at the start of each line', () => {
    const text = 'The first line includes 한글.\r\nThe second line includes 한글, too.\r\nThe third line';
    const cs = ['', 'ISO 2022 IR 149'];
    const standard = b(
      '\x1b$)CThe first line includes \xc7\xd1\xb1\xdb.\r\n\x1b$)CThe second line includes \xc7\xd1\xb1\xdb, too.\r\nThe third line',
    );
    assert.equal(decodeString(standard, cs, 'LT'), text);
    // We designate just before the first Hangul instead; both forms are valid.
    golden(
      text,
      cs,
      'LT',
      b(
        'The first line includes \x1b$)C\xc7\xd1\xb1\xdb.\r\nThe second line includes \x1b$)C\xc7\xd1\xb1\xdb, too.\r\nThe third line',
      ),
    );
  });

  it('ISO 2022 IR 149 as value 1: KS X 1001 in G1 from the start', () => {
    golden('홍^길동', ['ISO 2022 IR 149'], 'PN', b('\xc8\xab^\xb1\xe6\xb5\xbf'));
  });

  it('the KS X 1001:1998 additions EURO SIGN and REGISTERED SIGN', () => {
    golden('€®', ['', 'ISO 2022 IR 149'], 'LO', b('\x1b$)C\xa2\xe6\xa2\xe7'));
  });
});

describe('Chinese (PS3.5 Annexes J and K)', () => {
  it('J.1: person name in UTF-8 (ISO_IR 192)', () => {
    golden(
      'Wang^XiaoDong=王^小東=',
      ['ISO_IR 192'],
      'PN',
      b('Wang^XiaoDong=\xe7\x8e\x8b^\xe5\xb0\x8f\xe6\x9d\xb1='),
    );
  });

  it('J.2: long text in UTF-8', () => {
    golden(
      'The first line includes中文.\r\nThe second line includes中文, too.\r\nThe third line.\r\n',
      ['ISO_IR 192'],
      'LT',
      b(
        'The first line includes\xe4\xb8\xad\xe6\x96\x87.\r\nThe second line includes\xe4\xb8\xad\xe6\x96\x87, too.\r\nThe third line.\r\n',
      ),
    );
  });

  it('J.3: person name in GB18030', () => {
    golden('Wang^XiaoDong=王^小东=', ['GB18030'], 'PN', b('Wang^XiaoDong=\xcd\xf5^\xd0\xa1\xb6\xab='));
  });

  it('J.4: long text in GB18030', () => {
    golden(
      'The first line includes中文.\r\nThe second line includes中文, too.\r\nThe third line.\r\n',
      ['GB18030'],
      'LT',
      b(
        'The first line includes\xd6\xd0\xce\xc4.\r\nThe second line includes\xd6\xd0\xce\xc4, too.\r\nThe third line.\r\n',
      ),
    );
  });

  it('GB18030 four-byte codes, in the BMP and beyond', () => {
    golden('\u0080', ['GB18030'], 'LO', b('\x81\x30\x81\x30'));
    golden('å', ['GB18030'], 'LO', b('\x81\x30\x8a\x32'));
    golden('€', ['GB18030'], 'LO', b('\xa2\xe3'));
    golden('𠀀', ['GB18030'], 'LO', b('\x95\x32\x82\x36'));
    golden('\uffff', ['GB18030'], 'LO', b('\x84\x31\xa4\x39'));
    assertUnencodable('\ud800', ['GB18030'], 'LO');
  });

  it('a GB18030 trail byte 0x5C is not a value delimiter', () => {
    // 乗 is 0x81 0x5C in GB18030.
    const bytes = encodeString('乗\\乗', ['GB18030'], 'LO');
    assertBytes(bytes, b('\x81\x5c\\\x81\x5c'));
    assert.equal(decodeString(bytes, ['GB18030'], 'LO'), '乗\\乗');
  });

  it('GBK: the two-byte part of GB18030, EURO SIGN at 0x80', () => {
    golden('Wang^XiaoDong=王^小东=', ['GBK'], 'PN', b('Wang^XiaoDong=\xcd\xf5^\xd0\xa1\xb6\xab='));
    golden('€', ['GBK'], 'LO', b('\x80'));
    assertUnencodable('𠀀', ['GBK'], 'LO');
    assertUnencodable('å', ['GBK'], 'LO');
  });

  it('K.2: person name with ISO 2022 IR 58, designated again in each component', () => {
    golden(
      'Zhang^XiaoDong=张^小东=',
      ['', 'ISO 2022 IR 58'],
      'PN',
      b('Zhang^XiaoDong=\x1b$)A\xd5\xc5^\x1b$)A\xd0\xa1\xb6\xab='),
    );
  });

  it('K.3: long text with ISO 2022 IR 58, designated again on each line', () => {
    golden(
      '1.第一行文字。\r\n2.第二行文字。\r\n3.第三行文字。\r\n',
      ['', 'ISO 2022 IR 58'],
      'LT',
      b(
        '1.\x1b$)A\xb5\xda\xd2\xbb\xd0\xd0\xce\xc4\xd7\xd6\xa1\xa3\r\n' +
          '2.\x1b$)A\xb5\xda\xb6\xfe\xd0\xd0\xce\xc4\xd7\xd6\xa1\xa3\r\n' +
          '3.\x1b$)A\xb5\xda\xc8\xfd\xd0\xd0\xce\xc4\xd7\xd6\xa1\xa3\r\n',
      ),
    );
    // The 2015 edition ended each line with ESC ( B, which changes nothing here.
    assert.equal(
      decodeString(
        b('1.\x1b$)A\xb5\xda\xd2\xbb\x1b(B\r\n2.\x1b$)A\xb5\xda\xb6\xfe\x1b(B\r\n'),
        ['', 'ISO 2022 IR 58'],
        'LT',
      ),
      '1.第一\r\n2.第二\r\n',
    );
  });

  it('GB 2312 writes its own cells only, and accepts the GBK forms of two punctuation marks', () => {
    const cs = ['', 'ISO 2022 IR 58'];
    assertUnencodable('ⅰ', cs, 'LO'); // a GBK addition in row 2
    assertBytes(encodeString('·—', cs, 'LO'), b('\x1b$)A\xa1\xa4\xa1\xaa'));
    assert.equal(decodeString(b('\x1b$)A\xa1\xa4\xa1\xaa'), cs, 'LO'), '・―');
  });
});

describe('multi-byte sets as code elements: round trips', () => {
  const samples: readonly [readonly string[], string][] = [
    [['', 'ISO 2022 IR 87'], 'Yamada^Tarou=山田^太郎=やまだ^たろう'],
    [['', 'ISO 2022 IR 87', 'ISO 2022 IR 159'], '鷗外 森林太郎\\もり^おうがい'],
    [['ISO 2022 IR 13', 'ISO 2022 IR 87'], 'ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう'],
    [['', 'ISO 2022 IR 149'], 'Hong^Gildong=洪^吉洞=홍^길동'],
    [['', 'ISO 2022 IR 58'], 'Zhang^XiaoDong=张^小东='],
    [['', 'ISO 2022 IR 100', 'ISO 2022 IR 87', 'ISO 2022 IR 149'], 'Müller^山田=홍^길동'],
    [['ISO 2022 IR 100', 'ISO 2022 IR 126', 'ISO 2022 IR 144'], 'Ä^Δ=Ж\\é'],
  ];
  for (const [cs, text] of samples) {
    it(`${cs.join('\\')}: ${text}`, () => {
      for (const vr of ['PN', 'LO', 'SH', 'UC', 'LT', 'ST', 'UT']) roundTrip(text, cs, vr);
    });
  }

  it('round-trips text with line breaks in every ISO 2022 configuration', () => {
    roundTrip('山田\r\n太郎\tやまだ\f', ['', 'ISO 2022 IR 87'], 'LT');
    roundTrip('洪\r\n길동\r\n', ['', 'ISO 2022 IR 149'], 'UT');
    roundTrip('张\r\n小东', ['', 'ISO 2022 IR 58'], 'ST');
  });

  it('refuses characters none of the sets has', () => {
    assertUnencodable('山', ['ISO_IR 100'], 'PN');
    assertUnencodable('洪길동', ['', 'ISO 2022 IR 87'], 'PN');
    assertUnencodable('𠀀', ['', 'ISO 2022 IR 87'], 'PN');
    assertUnencodable('\udc00', ['ISO_IR 192'], 'LO');
    assertUnencodable('a\ud800', ['ISO_IR 192'], 'LO');
  });
});

describe('lenient decoding', () => {
  it('reads an unknown value 1 as ISO 8859-1 and ignores unknown later values', () => {
    assert.equal(decodeString(b('Buc^J\xe9r\xf4me'), ['UNSUPPORTED'], 'PN'), 'Buc^Jérôme');
    assert.equal(
      decodeString(b('Buc^J\xe9r\xf4me'), ['ISO 2022 IR 100', 'ISO 2022 IR 146'], 'PN'),
      'Buc^Jérôme',
    );
  });

  it('corrects common misspellings, like pydicom', () => {
    assert.equal(decodeString(b('Buc^J\xc3\xa9r\xc3\xb4me'), ['ISO IR 192'], 'PN'), 'Buc^Jérôme');
    assert.equal(decodeString(b('\xbb\xee\xda'), ['ISO-IR 144'], 'PN'), 'Люк');
    const greek = b('Dionysios=\x1b-F\xc4\xe9\xef\xed\xf5\xf3\xe9\xef\xf2');
    assert.equal(decodeString(greek, ['ISO_2022-IR 100', 'ISO_2022_IR+126'], 'PN'), 'Dionysios=Διονυσιος');
    assert.equal(decodeString(b('\xc8\xab'), ['ISO_IR 149'], 'PN'), '홍');
    assert.equal(decodeString(b('SCS '), ['ISO_IR 100 '], 'LO'), 'SCS ');
  });

  it('splits a Specific Character Set passed as one unsplit string', () => {
    const greek = b('Dionysios=\x1b-F\xc4\xe9\xef\xed\xf5\xf3\xe9\xef\xf2');
    assert.equal(decodeString(greek, ['ISO 2022 IR 100\\ISO 2022 IR 126'], 'PN'), 'Dionysios=Διονυσιος');
    golden('Hong^洪', ['\\ISO 2022 IR 149'], 'PN', b('Hong^\x1b$)C\xfb\xf3'));
  });

  it('honours a known escape sequence that (0008,0005) does not list', () => {
    assert.equal(decodeString(b('\x1b-F\xc4\xe9'), ['ISO_IR 100'], 'PN'), 'Δι');
  });

  it('keeps an unknown escape sequence as text', () => {
    assert.equal(decodeString(b('a\x1b-Zb'), ['ISO_IR 100'], 'LO'), 'a\x1b-Zb');
    assert.equal(decodeString(b('a\x1b'), ['', 'ISO 2022 IR 87'], 'LO'), 'a\x1b');
  });

  it('turns undefined and cut-off characters into U+FFFD', () => {
    assert.equal(decodeString(b('\xa5'), ['ISO_IR 109'], 'LO'), '\ufffd');
    assert.equal(decodeString(b('\xc4'), ['ISO_IR 192'], 'LO'), '\ufffd');
    assert.equal(decodeString(b('\x1b$B;'), ['', 'ISO 2022 IR 87'], 'LO'), '\ufffd');
    assert.equal(decodeString(b('\x1b$)C\xc8'), ['', 'ISO 2022 IR 149'], 'LO'), '\ufffd');
  });

  it('ignores code extensions after a stand-alone set (PS3.5 6.1.2.5.4)', () => {
    const cs = ['ISO_IR 192', 'ISO 2022 IR 100', 'ISO 2022 IR 144'];
    golden('Buc^Jérôme', cs, 'PN', b('Buc^J\xc3\xa9r\xc3\xb4me'));
    assert.equal(decodeString(b('\xbb'), ['ISO 2022 IR 144', 'GBK'], 'LO'), 'Л');
  });

  it('decodes VRs outside Specific Character Set as ISO 8859-1 and encodes them as ISO 646', () => {
    assert.equal(decodeString(b('\x1b$B;3\xe9'), ['', 'ISO 2022 IR 87'], 'CS'), '\x1b$B;3é');
    assertBytes(encodeString('1.2.840', ['ISO_IR 192'], 'UI'), b('1.2.840'));
    assertUnencodable('é', ['ISO_IR 100'], 'CS');
  });

  it('refuses to encode in an unknown value 1', () => {
    assertUnencodable('abc', ['UNSUPPORTED'], 'LO');
  });
});

describe('multi-byte tables agree with the Python codecs pydicom uses', () => {
  const script = `
import json, sys
def cells(decode):
    out = {}
    for r in range(0x21, 0x7f):
        for c in range(0x21, 0x7f):
            try: out['%02x%02x' % (r, c)] = decode(r, c)
            except UnicodeDecodeError: pass
    return out
print(json.dumps({
    '87': cells(lambda r, c: (b'\\x1b$B' + bytes([r, c]) + b'\\x1b(B').decode('iso2022_jp')),
    '159': cells(lambda r, c: (b'\\x1b$(D' + bytes([r, c]) + b'\\x1b(B').decode('iso2022_jp_2')),
    '149': cells(lambda r, c: bytes([r | 0x80, c | 0x80]).decode('euc_kr')),
    '58': cells(lambda r, c: bytes([r | 0x80, c | 0x80]).decode('gb2312')),
}))
`;
  const designations: Record<string, { esc: string; g1: boolean }> = {
    '87': { esc: '\x1b$B', g1: false },
    '159': { esc: '\x1b$(D', g1: false },
    '149': { esc: '\x1b$)C', g1: true },
    '58': { esc: '\x1b$)A', g1: true },
  };
  // KS X 1001 0x2454 is HANGUL FILLER (U+3164); Python's euc_kr reserves it for its
  // eight-byte syllable sequences.
  const ourAdditions = new Set(['149:2454']);

  it('decodes every cell Python decodes the same way, and encodes only such cells', () => {
    const tables = python(script) as Record<string, Record<string, string>>;
    for (const [ir, { esc, g1 }] of Object.entries(designations)) {
      const cs = ['', `ISO 2022 IR ${ir}`];
      const table = tables[ir];
      assert.ok(Object.keys(table).length > 5000, `Python table of IR ${ir}`);
      for (let r = 0x21; r <= 0x7e; r++) {
        for (let c = 0x21; c <= 0x7e; c++) {
          const cell = `${r.toString(16)}${c.toString(16)}`;
          const cellBytes = g1 ? String.fromCharCode(r | 0x80, c | 0x80) : String.fromCharCode(r, c);
          const tail = g1 ? '' : '\x1b(B';
          const ours = decodeString(b(`${esc}${cellBytes}${tail}`), cs, 'LO');
          const theirs = table[cell];
          if (theirs !== undefined) {
            assert.equal(ours, theirs, `IR ${ir} cell ${cell}`);
            // Characters also in ISO 646 are written in ISO 646.
            if (theirs.charCodeAt(0) >= 0x80) {
              assert.equal(
                hex(encodeString(theirs, cs, 'LO')),
                hex(b(`${esc}${cellBytes}${tail}`)),
                `IR ${ir} ${cell}`,
              );
            }
          } else if (ours !== '\ufffd' && !ourAdditions.has(`${ir}:${cell}`)) {
            // A vendor addition we read: we must not write it into this cell.
            let written = '';
            try {
              written = hex(encodeString(ours, cs, 'LO'));
            } catch {
              // not encodable at all: fine
            }
            assert.notEqual(written, hex(b(`${esc}${cellBytes}${tail}`)), `IR ${ir} vendor cell ${cell}`);
          }
        }
      }
    }
  });
});

describe('the character set files shipped with pydicom', () => {
  // For every string element in every file (sequence items included, with Specific Character
  // Set inherited from the parent), pydicom's raw bytes and its decoded value.
  const script = `
import json, glob, sys
import pydicom
from pydicom.multival import MultiValue
VRS = {'PN', 'LO', 'SH', 'ST', 'LT', 'UT', 'UC'}
def terms(v):
    if v is None: return None
    return [str(x) for x in v] if isinstance(v, (list, MultiValue)) else [str(v)]
def walk(ds, charsets, out, name):
    own = terms(ds.get('SpecificCharacterSet'))
    if own is not None: charsets = own
    for tag in list(ds.keys()):
        raw = ds.get_item(tag)
        if raw.VR == 'SQ':
            for item in ds[tag].value: walk(item, charsets, out, name)
            continue
        if raw.VR not in VRS or not isinstance(raw.value, (bytes, bytearray)): continue
        value = ds[tag].value
        text = '\\\\'.join(str(v) for v in value) if isinstance(value, (list, MultiValue)) else str(value)
        out.append({'file': name, 'tag': str(tag), 'vr': raw.VR, 'charsets': charsets or [],
                    'raw': bytes(raw.value).hex(), 'pydicom': text})
out = []
for f in sorted(glob.glob(sys.argv[1] + '/*.dcm')):
    walk(pydicom.dcmread(f), None, out, f.rsplit('/', 1)[1])
print(json.dumps(out))
`;

  /** pydicom strips value padding and drops empty trailing PN component groups. */
  function normalise(text: string, vr: string): string {
    return text
      .split('\\')
      .map((v) => {
        const trimmed = v.replace(/[ \0]+$/, '');
        return vr === 'PN' ? trimmed.replace(/=+$/, '') : trimmed;
      })
      .join('\\');
  }

  it('decodes every string value as pydicom does', () => {
    const entries = python(script, [CHARSET_FILES]) as {
      file: string;
      tag: string;
      vr: string;
      charsets: string[];
      raw: string;
      pydicom: string;
    }[];
    const files = new Set(entries.map((e) => e.file));
    assert.ok(files.size >= 17, `expected the 17 charset files, found ${[...files].join(', ')}`);
    let patientNames = 0;
    for (const e of entries) {
      const ours = decodeString(new Uint8Array(Buffer.from(e.raw, 'hex')), e.charsets, e.vr);
      assert.equal(
        normalise(ours, e.vr),
        normalise(e.pydicom, e.vr),
        `${e.file} ${e.tag} ${e.vr} [${e.charsets}]`,
      );
      if (e.tag === '(0010, 0010)') patientNames++;
    }
    assert.ok(patientNames >= 17, `compared ${patientNames} Patient's Names`);
  });

  it('encodes each Patient Name back to bytes that decode to it', () => {
    const entries = python(script, [CHARSET_FILES]) as {
      tag: string;
      vr: string;
      charsets: string[];
      pydicom: string;
    }[];
    for (const e of entries) {
      if (e.tag !== '(0010, 0010)') continue;
      roundTrip(e.pydicom, e.charsets, e.vr);
    }
  });
});
