/**
 * The in-memory matcher: conditions compiled once into predicates over candidate data sets.
 * A candidate attribute with several values matches when any of its values does (C.2.2.3). A
 * key with a value matches nothing in a candidate that lacks the attribute or has it empty
 * (Empty Value Matching aside): C.2.2.1.2's "all matching against the zero length Required Key
 * shall be considered a successful match" is read as David Clunie and dcm4chee read it, as
 * being about zero-length keys, not about unknown values in the entity.
 */
import type { DataElement, DataSet } from '../dataset.js';
import type { Tag } from '../tag.js';
import { decodeStrings } from '../values.js';
import { isStringVR } from '../vr.js';
import {
  conditionsOf,
  type InvalidCondition,
  invalidConditions,
  type MatchCondition,
  type MatchOptions,
  type ValueCondition,
  valuesOf,
} from './condition.js';
import {
  compareInstants,
  type DateTimeVR,
  type Instant,
  inRange,
  instantOf,
  joinDateTime,
} from './date-time.js';
import { candidateGroups, type PersonNameKey, phoneticGroupTest } from './person-name.js';
import { wildcardRegExp } from './wildcard.js';

/**
 * What the matcher reads of a candidate entity: a DataSet (dataSetCandidate), or a view that
 * reads the index's stored DICOM JSON without building one (dicom/json-view.ts). Both give, for
 * the same entity, the same values.
 */
export interface MatchCandidate {
  /** The attribute's values as valuesOf gives them. */
  values(tag: Tag): readonly string[];
  /** isEmptyAttribute. */
  isEmpty(tag: Tag): boolean;
  /** A sequence's items; undefined when the attribute is absent or not a sequence. */
  items(tag: Tag): readonly MatchCandidate[] | undefined;
}

type Test = (candidate: MatchCandidate) => boolean;
type ValueTest = (value: string) => boolean;

/** True when the attribute is absent, zero length, only padding, or a sequence without items. */
export function isEmptyAttribute(ds: DataSet, tag: Tag): boolean {
  const e = ds.get(tag);
  return e === undefined || isEmptyElement(e, e.value instanceof Uint8Array ? ds.characterSets() : []);
}

/** isEmptyAttribute for an element whose text is in `charsets`. */
export function isEmptyElement(e: DataElement, charsets: readonly string[]): boolean {
  if (Array.isArray(e.value)) return e.value.length === 0;
  if (e.value instanceof Uint8Array) {
    if (e.value.length === 0) return true;
    return isStringVR(e.vr) && decodeStrings(e.value, e.vr, charsets).every((v) => v === '');
  }
  return e.value.kind === 'bulk' ? e.value.length === 0 : e.value.fragments.length === 0;
}

class DataSetCandidate implements MatchCandidate {
  constructor(private readonly ds: DataSet) {}
  values(tag: Tag): readonly string[] {
    return valuesOf(this.ds, tag);
  }
  isEmpty(tag: Tag): boolean {
    return isEmptyAttribute(this.ds, tag);
  }
  items(tag: Tag): readonly MatchCandidate[] | undefined {
    return this.ds.sequence(tag)?.map(dataSetCandidate);
  }
}

/** A data set as a match candidate. */
export function dataSetCandidate(ds: DataSet): MatchCandidate {
  return new DataSetCandidate(ds);
}

function anyValue(tag: Tag, test: ValueTest): Test {
  return (candidate) => {
    for (const v of candidate.values(tag)) if (test(v)) return true;
    return false;
  };
}

function instantTest(vr: DateTimeVR, test: (instant: Instant) => boolean): ValueTest {
  return (v) => {
    const instant = instantOf(vr, v);
    return instant !== undefined && test(instant);
  };
}

function personNameTest(key: PersonNameKey, wildcard: boolean): ValueTest {
  const fuzzy = key.fuzzy === true;
  const groups = key.groups.map((g, i) => {
    if (g === undefined) return undefined;
    // Fuzzy: the alphabetic group may also match by sound (the other scripts have no Soundex).
    const phonetic = fuzzy && i === 0 ? phoneticGroupTest(g) : undefined;
    if (!wildcard)
      return phonetic ? (text: string) => text === g || phonetic(text) : (text: string) => text === g;
    const re = wildcardRegExp(g);
    return (text: string) => re.test(text);
  });
  return (v) => {
    const candidate = candidateGroups(v, key.caseInsensitive, fuzzy);
    for (let i = 0; i < groups.length; i++) {
      const test = groups[i];
      if (test !== undefined && !test(candidate[i] ?? '')) return false;
    }
    return true;
  };
}

function numberTest(number: number): ValueTest {
  // A float32 candidate (FL, OF) holds the nearest float to the key's decimal text.
  const single = Math.fround(number);
  return (v) => {
    const n = Number(v);
    return n === number || n === single;
  };
}

/** The test of one value of a key, on one value of the candidate. */
function valueTest(c: ValueCondition): ValueTest | undefined {
  switch (c.kind) {
    case 'universal':
    case 'empty':
    case 'invalid':
      return undefined;
    case 'single': {
      if (c.personName !== undefined) return personNameTest(c.personName, false);
      const target = c.instant;
      if (target !== undefined)
        return instantTest(c.vr as DateTimeVR, (i) => compareInstants(i, target) === 0);
      if (c.number !== undefined) return numberTest(c.number);
      const value = c.value;
      return (v) => v === value;
    }
    case 'wildcard': {
      if (c.personName !== undefined) return personNameTest(c.personName, true);
      const re = wildcardRegExp(c.pattern);
      return (v) => re.test(v);
    }
    case 'range': {
      const { lower, upper } = c;
      return instantTest(c.vr, (i) => inRange(i, lower, upper));
    }
  }
}

/** The predicate of a condition; undefined when it matches every candidate. */
export function compileCondition(c: MatchCondition): Test | undefined {
  switch (c.kind) {
    case 'universal':
      return undefined;
    case 'empty': {
      const tag = c.tag;
      return (candidate) => candidate.isEmpty(tag);
    }
    case 'invalid':
      return () => false;
    case 'single':
    case 'wildcard':
    case 'range':
      return anyValue(c.tag, valueTest(c) ?? (() => true));
    case 'list': {
      const set = new Set(c.values);
      return anyValue(c.tag, (v) => set.has(v));
    }
    case 'multiple': {
      const tests = c.conditions.map(compileCondition).filter((t) => t !== undefined);
      if (c.mode === 'all') return (candidate) => tests.every((t) => t(candidate));
      // A universal value among them was turned into a universal key by parseCondition.
      return (candidate) => tests.some((t) => t(candidate));
    }
    case 'sequence': {
      const item = compileConditions(c.conditions);
      const tag = c.tag;
      return (candidate) => candidate.items(tag)?.some(item) ?? false;
    }
    case 'dateTimeRange': {
      const { tag, timeTag, lower, upper } = c;
      return (candidate) => {
        const dateText = candidate.values(tag)[0];
        const date = dateText === undefined ? undefined : instantOf('DA', dateText);
        if (date === undefined) return false;
        const timeText = candidate.values(timeTag)[0];
        const time = timeText === undefined || timeText === '' ? undefined : instantOf('TM', timeText);
        if (time === undefined && timeText !== undefined && timeText !== '') return false;
        return inRange(joinDateTime(date, time), lower, upper);
      };
    }
  }
}

/** A rough relative cost of testing a condition, to test the cheap ones first. */
function cost(c: MatchCondition): number {
  switch (c.kind) {
    case 'invalid':
      return 0;
    case 'universal':
    case 'empty':
    case 'list':
      return 1;
    case 'single':
      return c.personName !== undefined ? 4 : c.instant !== undefined ? 2 : 1;
    case 'multiple':
      return 2;
    case 'range':
    case 'dateTimeRange':
      return 3;
    case 'wildcard':
      return c.personName !== undefined ? 5 : 3;
    case 'sequence':
      return 6;
  }
}

/** A predicate true when every condition holds; conditions are tested cheapest first. */
export function compileConditions(conditions: readonly MatchCondition[]): Test {
  const ordered = [...conditions].sort((a, b) => cost(a) - cost(b));
  const tests = ordered.map(compileCondition).filter((t) => t !== undefined);
  if (tests.length === 0) return () => true;
  if (tests.length === 1) return tests[0] as Test;
  return (candidate) => {
    for (const t of tests) if (!t(candidate)) return false;
    return true;
  };
}

/** A query compiled once, to be matched against many candidates. */
export interface CompiledQuery {
  /** Every matching key's condition (see conditionsOf), for the SQL layer to translate. */
  readonly conditions: readonly MatchCondition[];
  /** Values that cannot be matched as their VR says: an SCP answers them with an Identifier error. */
  readonly problems: readonly InvalidCondition[];
  /** True when any condition is on a sequence (C.2.2.2.6): the candidate's items are read. */
  readonly hasSequenceConditions: boolean;
  matches(candidate: DataSet): boolean;
  matchesCandidate(candidate: MatchCandidate): boolean;
}

export function compileQuery(query: DataSet, options: MatchOptions = {}): CompiledQuery {
  const conditions = conditionsOf(query, options);
  const test = compileConditions(conditions);
  return {
    conditions,
    problems: invalidConditions(conditions),
    hasSequenceConditions: conditions.some((c) => c.kind === 'sequence'),
    matches: (candidate) => test(dataSetCandidate(candidate)),
    matchesCandidate: test,
  };
}

interface CacheEntry {
  readonly elements: readonly unknown[];
  readonly options: MatchOptions;
  readonly compiled: CompiledQuery;
}

const cache = new WeakMap<DataSet, CacheEntry>();

/** The element objects of a data set and its items, depth first: a changed query has other ones. */
function fingerprint(ds: DataSet, out: unknown[]): unknown[] {
  for (const e of ds) {
    out.push(e);
    if (Array.isArray(e.value)) {
      out.push(e.value.length);
      for (const item of e.value) fingerprint(item, out);
    }
  }
  return out;
}

function sameOptions(a: MatchOptions, b: MatchOptions): boolean {
  return (
    a.caseInsensitivePN === b.caseInsensitivePN &&
    a.combinedDateTime === b.combinedDateTime &&
    a.fuzzyPN === b.fuzzyPN &&
    a.multipleValueMatching === b.multipleValueMatching &&
    a.skip === b.skip
  );
}

/** compileQuery, remembered per query data set as long as neither it nor the options change. */
export function compiledQuery(query: DataSet, options: MatchOptions = {}): CompiledQuery {
  const elements = fingerprint(query, []);
  const hit = cache.get(query);
  if (
    hit !== undefined &&
    sameOptions(hit.options, options) &&
    hit.elements.length === elements.length &&
    hit.elements.every((e, i) => e === elements[i])
  ) {
    return hit.compiled;
  }
  const compiled = compileQuery(query, options);
  cache.set(query, { elements, options: { ...options }, compiled });
  return compiled;
}

/**
 * True when the candidate matches every non-universal key of the query (PS3.4 C.2.2.2). Keys
 * that are not matched (isNonMatchingKey, or options.skip) are ignored. Both sides are decoded
 * in their own Specific Character Set first. The compiled query is cached per query data set;
 * compileQuery gives it explicitly.
 */
export function matchDataSet(query: DataSet, candidate: DataSet, options: MatchOptions = {}): boolean {
  return compiledQuery(query, options).matches(candidate);
}
