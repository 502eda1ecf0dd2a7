/**
 * Property: any data set (random tags in valid groups, values fit for their VR, nested sequences
 * up to depth 3, empty values, empty sequences and items) written by encodeDataSet and read back by
 * parseDicom has the same elements, VRs and values, in every uncompressed transfer syntax.
 *
 * Implicit VR carries no VR, so there tags come from the dictionary (with their one VR) or are
 * private (read back as UN); the explicit syntaxes also get arbitrary tags with arbitrary VRs.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DataSet } from '../../src/dicom/dataset.js';
import { ELEMENTS } from '../../src/dicom/generated/dictionary.js';
import { parseDicom } from '../../src/dicom/reader.js';
import type { Tag } from '../../src/dicom/tag.js';
import {
  DEFLATED_EXPLICIT_VR_LE,
  EXPLICIT_VR_BE,
  EXPLICIT_VR_LE,
  IMPLICIT_VR_LE,
} from '../../src/dicom/uid.js';
import { decodeBigInts, padEven } from '../../src/dicom/values.js';
import { isVR, paddingByte, type VR, VRS } from '../../src/dicom/vr.js';
import { encodeDataSet } from '../../src/dicom/writer.js';

const NUM_RUNS = 200;
/** Fixed so that a run is reproducible; fast-check prints the seed and path of any failure. */
const SEED = Number(process.env.FC_SEED ?? 0x5eed);
const MAX_DEPTH = 3;
// Larger than fast-check's default 'small' so that values reach their VR's lengths and data sets nest.
fc.configureGlobal({ baseSize: 'medium' });

/** The model of an element: what was put in the data set, to compare what comes back against. */
type Model =
  | { readonly tag: Tag; readonly vr: VR; readonly kind: 'strings'; readonly values: string[] }
  | { readonly tag: Tag; readonly vr: VR; readonly kind: 'numbers'; readonly values: number[] }
  | { readonly tag: Tag; readonly vr: VR; readonly kind: 'bigints'; readonly values: bigint[] }
  | { readonly tag: Tag; readonly vr: VR; readonly kind: 'bytes'; readonly bytes: Uint8Array }
  | { readonly tag: Tag; readonly vr: VR; readonly kind: 'items'; readonly items: Model[][] };

type Value =
  | { kind: 'strings'; values: string[] }
  | { kind: 'numbers'; values: number[] }
  | { kind: 'bigints'; values: bigint[] }
  | { kind: 'bytes'; bytes: Uint8Array }
  | { kind: 'items'; items: Model[][] };

// --- values fit for each VR ---------------------------------------------------------------------

const chars = (set: string) => fc.constantFrom(...set.split(''));
const DIGITS = '0123456789';
const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const LOWER = 'abcdefghijklmnopqrstuvwxyz';
/** Printable ASCII without backslash (the value delimiter of multi-valued VRs). */
const PRINTABLE = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i))
  .filter((c) => c !== '\\')
  .join('');

/** A string of `set` characters with no leading or trailing space (those are padding). */
function text(set: string, maxLength: number, minLength = 0): fc.Arbitrary<string> {
  return fc
    .string({ unit: chars(set), minLength, maxLength })
    .map((s) => s.trim())
    .filter((s) => s.length >= minLength);
}

function multi(one: fc.Arbitrary<string>, maxValues = 3): fc.Arbitrary<Value> {
  return fc.array(one, { minLength: 1, maxLength: maxValues }).map((values) => ({ kind: 'strings', values }));
}

function single(one: fc.Arbitrary<string>): fc.Arbitrary<Value> {
  return one.map((v) => ({ kind: 'strings', values: [v] }));
}

function ints(min: number, max: number, maxValues = 4): fc.Arbitrary<Value> {
  return fc
    .array(fc.integer({ min, max }), { maxLength: maxValues })
    .map((values) => ({ kind: 'numbers', values }));
}

function bigints(min: bigint, max: bigint): fc.Arbitrary<Value> {
  return fc.array(fc.bigInt({ min, max }), { maxLength: 3 }).map((values) => ({ kind: 'bigints', values }));
}

const uid = fc
  .array(fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 99999999 })), { minLength: 2, maxLength: 8 })
  .map((parts) => parts.join('.'))
  .filter((s) => s.length <= 64);
const twoDigits = (max: number) => fc.integer({ min: 0, max }).map((n) => String(n).padStart(2, '0'));
const date = fc
  .tuple(fc.integer({ min: 1900, max: 2099 }), twoDigits(12), twoDigits(28))
  .map(([y, m, d]) => `${y}${m}${d}`);
const time = fc
  .tuple(twoDigits(23), twoDigits(59), twoDigits(59), fc.option(fc.integer({ min: 0, max: 999999 })))
  .map(([h, m, s, f]) => `${h}${m}${s}${f === null ? '' : `.${f}`}`);

function valueArb(vr: VR, depth: number): fc.Arbitrary<Value> {
  switch (vr) {
    case 'AE':
      return multi(text(`${UPPER}${DIGITS}_ -`, 16));
    case 'AS':
      return single(
        fc
          .tuple(fc.integer({ min: 0, max: 999 }), chars('DWMY'))
          .map(([n, u]) => `${String(n).padStart(3, '0')}${u}`),
      );
    case 'CS':
      return multi(text(`${UPPER}${DIGITS}_ `, 16));
    case 'DA':
      return multi(date, 2);
    case 'DS':
      return multi(
        fc.oneof(
          fc.integer({ min: -99999999, max: 999999999 }).map(String),
          fc.double({ min: -1e6, max: 1e6, noNaN: true }).map((d) => d.toPrecision(8).replace(/\.?0+$/, '')),
        ),
      );
    case 'DT':
      return multi(
        fc.tuple(date, time).map(([d, t]) => `${d}${t}`),
        2,
      );
    case 'IS':
      return multi(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }).map(String));
    case 'LO':
      return multi(text(PRINTABLE, 64));
    case 'PN':
      return multi(text(`${UPPER}${LOWER}^= -.`, 64));
    case 'SH':
      return multi(text(PRINTABLE, 16));
    case 'TM':
      return multi(time, 2);
    case 'UC':
      return multi(text(PRINTABLE, 200));
    case 'UI':
      return multi(uid);
    // Single-valued text: a backslash is an ordinary character there; CR/LF allowed.
    case 'LT':
    case 'ST':
    case 'UT':
      return single(text(`${PRINTABLE}\\\r\n`, 300));
    case 'UR':
      return single(text(`${LOWER}${DIGITS}:/.?=&%-_`, 100));
    case 'AT':
      return ints(0, 0xffffffff);
    case 'US':
    case 'OW':
      return ints(0, 0xffff, vr === 'OW' ? 16 : 4);
    case 'SS':
      return ints(-0x8000, 0x7fff);
    case 'UL':
    case 'OL':
      return ints(0, 0xffffffff, vr === 'OL' ? 8 : 4);
    case 'SL':
      return ints(-(2 ** 31), 2 ** 31 - 1);
    case 'FL':
    case 'OF':
      return fc
        .array(fc.float(), { maxLength: vr === 'OF' ? 8 : 4 })
        .map((values) => ({ kind: 'numbers', values }));
    case 'FD':
    case 'OD':
      return fc.array(fc.double(), { maxLength: 4 }).map((values) => ({ kind: 'numbers', values }));
    case 'SV':
      return bigints(-(2n ** 63n), 2n ** 63n - 1n);
    case 'UV':
    case 'OV':
      return bigints(0n, 2n ** 64n - 1n);
    case 'OB':
    case 'UN':
      return fc.uint8Array({ maxLength: 64 }).map((bytes) => ({ kind: 'bytes', bytes }));
    case 'SQ':
      if (depth >= MAX_DEPTH) return fc.constant({ kind: 'items', items: [] });
      return fc
        .array(elementsArb(depth + 1), { maxLength: 3 })
        .map((items): Value => ({ kind: 'items', items }));
  }
}

/** A value or, one time in ten, an empty one (zero length, or a sequence without items). */
function valueOrEmpty(vr: VR, depth: number): fc.Arbitrary<Value> {
  const empty: Value =
    vr === 'SQ'
      ? { kind: 'items', items: [] }
      : vr === 'OB' || vr === 'UN'
        ? { kind: 'bytes', bytes: new Uint8Array(0) }
        : vr === 'SV' || vr === 'UV' || vr === 'OV'
          ? { kind: 'bigints', values: [] }
          : valueKind(vr) === 'numbers'
            ? { kind: 'numbers', values: [] }
            : { kind: 'strings', values: [''] };
  return fc.oneof(
    { arbitrary: valueArb(vr, depth), weight: 9 },
    { arbitrary: fc.constant(empty), weight: 1 },
  );
}

function valueKind(vr: VR): 'strings' | 'numbers' {
  return 'AT US OW SS UL OL SL FL OF FD OD'.includes(vr) ? 'numbers' : 'strings';
}

// --- tags ---------------------------------------------------------------------------------------

/** Dictionary tags with a single VR, outside the command, meta and delimiter groups. */
const DICTIONARY: readonly (readonly [Tag, VR])[] = ELEMENTS.flatMap(([tag, vr]) => {
  const group = tag >>> 16;
  if (group === 0x0000 || group === 0x0002 || group === 0xfffe || (tag & 0xffff) === 0) return [];
  // Specific Character Set changes how text decodes; character sets are tested on their own.
  if (tag === 0x00080005 || !isVR(vr)) return [];
  return [[tag, vr] as const];
});
const DICTIONARY_SQ = DICTIONARY.filter(([, vr]) => vr === 'SQ');
const DICTIONARY_OTHER = DICTIONARY.filter(([, vr]) => vr !== 'SQ');

/** Private data elements (gggg,xxyy) with yy >= 0x10 in an odd group: unknown to the dictionary. */
const privateTag = fc
  .tuple(fc.integer({ min: 4, max: 0x7fff }), fc.integer({ min: 0x1000, max: 0xffff }))
  .map(([g, e]) => (((g * 2 + 1) << 16) | e) >>> 0);

/** Any tag of a standard (even) group outside the meta and delimiter groups, any element but 0000. */
const anyTag = fc
  .tuple(fc.integer({ min: 4, max: 0x7ffe }), fc.integer({ min: 1, max: 0xffff }))
  .map(([g, e]) => (((g * 2) << 16) | e) >>> 0)
  .filter((t) => t !== 0x00080005);

function element(tag: fc.Arbitrary<Tag>, vr: fc.Arbitrary<VR>, depth: number): fc.Arbitrary<Model> {
  return fc
    .tuple(tag, vr)
    .chain(([t, v]) => valueOrEmpty(v, depth).map((value) => ({ tag: t, vr: v, ...value }) as Model));
}

type Mode = 'implicit' | 'explicit';
let mode: Mode = 'implicit';
const memo = new Map<string, fc.Arbitrary<Model[]>>();

/** The elements of one data set at `depth` (0 is the top level), unique by tag. */
function elementsArb(depth: number): fc.Arbitrary<Model[]> {
  const key = `${mode}:${depth}`;
  const known = memo.get(key);
  if (known) return known;
  const dict = fc.constantFrom(...DICTIONARY_OTHER);
  const choices: fc.WeightedArbitrary<Model>[] = [
    { arbitrary: dict.chain(([t, v]) => element(fc.constant(t), fc.constant(v), depth)), weight: 12 },
    { arbitrary: element(privateTag, fc.constant<VR>('UN'), depth), weight: 2 },
  ];
  choices.push({
    arbitrary: fc
      .constantFrom(...DICTIONARY_SQ)
      .chain(([t, v]) => element(fc.constant(t), fc.constant(v), depth)),
    weight: 3,
  });
  if (mode === 'explicit') {
    choices.push({ arbitrary: element(anyTag, fc.constantFrom(...VRS), depth), weight: 6 });
    choices.push({ arbitrary: element(privateTag, fc.constantFrom(...VRS), depth), weight: 2 });
  } else {
    // A private sequence in implicit VR: undefined length, read back as a sequence (PS3.5 6.2.2).
    choices.push({ arbitrary: element(privateTag, fc.constant<VR>('SQ'), depth), weight: 1 });
  }
  const arb = fc.uniqueArray(fc.oneof(...choices), {
    selector: (m) => m.tag,
    minLength: depth === 0 ? 1 : 0,
    maxLength: depth === 0 ? 25 : 6 - depth,
  });
  memo.set(key, arb);
  return arb;
}

// --- building and checking ------------------------------------------------------------------------

function build(models: readonly Model[]): DataSet {
  const ds = new DataSet();
  for (const m of models) {
    switch (m.kind) {
      case 'strings':
        ds.setString(m.tag, m.values, m.vr);
        break;
      case 'numbers':
      case 'bigints':
        ds.setNumbers(m.tag, m.values, m.vr);
        break;
      case 'bytes':
        ds.setBytes(m.tag, m.bytes, m.vr);
        break;
      case 'items':
        ds.setSequence(m.tag, m.items.map(build));
        break;
    }
  }
  return ds;
}

function hexOf(b: Uint8Array | undefined): string {
  return b ? Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex') : '(none)';
}

function tagName(tag: Tag): string {
  return tag.toString(16).padStart(8, '0');
}

/** The read data set holds exactly the modelled elements, with the VR and the value put in. */
function check(read: DataSet, written: DataSet, models: readonly Model[], path: string): void {
  assert.deepEqual(
    [...read.tags()].map(tagName),
    [...models.map((m) => m.tag)].sort((a, b) => a - b).map(tagName),
    `${path}: tags`,
  );
  for (const m of models) {
    const where = `${path}/${tagName(m.tag)} ${m.vr}`;
    const got = read.get(m.tag);
    assert.equal(got?.vr, m.vr, `${where}: VR`);
    if (m.kind === 'items') {
      const items = read.sequence(m.tag);
      const wrote = written.sequence(m.tag) ?? [];
      assert.equal(items?.length, m.items.length, `${where}: item count`);
      m.items.forEach((item, i) => {
        check(items?.[i] as DataSet, wrote[i] as DataSet, item, `${where}[${i}]`);
      });
      continue;
    }
    const put = written.bytes(m.tag) ?? new Uint8Array(0);
    // Odd-length values are written padded (PS3.5 7.1.1); every other byte comes back as put.
    assert.equal(hexOf(read.bytes(m.tag)), hexOf(padEven(put, paddingByte(m.vr))), `${where}: bytes`);
    switch (m.kind) {
      case 'strings': {
        const expected = m.values.length === 1 && m.values[0] === '' ? [] : m.values;
        assert.deepEqual(read.strings(m.tag), expected, `${where}: strings`);
        break;
      }
      case 'numbers':
        assert.deepEqual(read.numbers(m.tag), m.values, `${where}: numbers`);
        break;
      case 'bigints':
        assert.deepEqual(decodeBigInts(read.bytes(m.tag) ?? put, m.vr as 'SV'), m.values, `${where}: values`);
        break;
      case 'bytes':
        break;
    }
  }
}

const SYNTAXES = [
  ['Implicit VR LE', IMPLICIT_VR_LE, 'implicit'],
  ['Explicit VR LE', EXPLICIT_VR_LE, 'explicit'],
  ['Explicit VR BE', EXPLICIT_VR_BE, 'explicit'],
  ['Deflated Explicit VR LE', DEFLATED_EXPLICIT_VR_LE, 'explicit'],
] as const;

describe('property: encodeDataSet then parseDicom gives the same data set', () => {
  for (const [name, ts, m] of SYNTAXES) {
    it(`${name} (${NUM_RUNS} random data sets)`, () => {
      mode = m;
      fc.assert(
        fc.property(elementsArb(0), (models) => {
          const written = build(models);
          const bytes = encodeDataSet(written, ts);
          const read = parseDicom(bytes, { format: 'dataset', transferSyntax: ts });
          assert.equal(read.transferSyntax, ts);
          check(read.dataSet, written, models, '');
          // Writing what was read gives the same bytes again (the encoding is canonical).
          assert.equal(
            hexOf(encodeDataSet(read.dataSet, ts === DEFLATED_EXPLICIT_VR_LE ? EXPLICIT_VR_LE : ts)),
            hexOf(encodeDataSet(written, ts === DEFLATED_EXPLICIT_VR_LE ? EXPLICIT_VR_LE : ts)),
          );
        }),
        { numRuns: NUM_RUNS, seed: SEED },
      );
    });
  }

  it('the generator makes what the property needs: nesting to depth 3, every VR, empty values', () => {
    mode = 'explicit';
    const seen = new Set<string>();
    let maxDepth = 0;
    let empties = 0;
    const walk = (models: readonly Model[], depth: number) => {
      maxDepth = Math.max(maxDepth, depth);
      for (const m of models) {
        seen.add(m.vr);
        if (m.kind === 'items') for (const i of m.items) walk(i, depth + 1);
        else if ((m.kind === 'bytes' ? m.bytes.length : m.values.join('').length) === 0) empties++;
      }
    };
    for (const models of fc.sample(elementsArb(0), { numRuns: NUM_RUNS, seed: SEED })) walk(models, 0);
    assert.equal(maxDepth, MAX_DEPTH);
    assert.deepEqual([...seen].sort(), [...VRS].sort());
    assert.ok(empties > 10);
  });
});
