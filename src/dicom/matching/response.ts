/**
 * The Identifier of a C-FIND response (PS3.4 C.4.1.1.3.2, C.2.2.2.6, K.6): the keys of the
 * query with the values of the matching entity.
 */
import { type DataElement, DataSet } from '../dataset.js';
import { TAG } from '../dictionary.js';
import { isGroupLengthTag, type Tag } from '../tag.js';
import { usesSpecificCharacterSet } from '../vr.js';
import type { MatchOptions } from './condition.js';
import { compiledQuery } from './evaluate.js';

const EMPTY = new Uint8Array(0);

/** True when the bytes are not plain ISO 646 text: the reader needs Specific Character Set for them. */
function needsCharset(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    if (b >= 0x80 || b === 0x1b) return true;
  }
  return false;
}

function elementNeedsCharset(e: DataElement): boolean {
  return e.value instanceof Uint8Array && usesSpecificCharacterSet(e.vr) && needsCharset(e.value);
}

/** True when text in `item` (or its items) needs a Specific Character Set the item does not declare itself. */
function needsInheritedCharset(item: DataSet): boolean {
  if (item.has(TAG.SpecificCharacterSet)) return false;
  for (const e of item) {
    if (Array.isArray(e.value) ? e.value.some(needsInheritedCharset) : elementNeedsCharset(e)) return true;
  }
  return false;
}

/** The Specific Character Set element in force for `ds`: its own, else its nearest parent's. */
function charsetElement(ds: DataSet): DataElement | undefined {
  for (let d: DataSet | undefined = ds; d !== undefined; d = d.parent) {
    const e = d.get(TAG.SpecificCharacterSet);
    if (e !== undefined) return e;
  }
  return undefined;
}

/** A copy of a data set's structure (items are new data sets); values are shared, not copied. */
function cloneDataSet(ds: DataSet): DataSet {
  const out = new DataSet();
  for (const e of ds) {
    if (Array.isArray(e.value)) out.setSequence(e.tag, e.value.map(cloneDataSet));
    else out.set(e);
  }
  return out;
}

/** True when a sequence key's item asks for nothing in particular: the whole sequence is returned. */
function asksForWholeSequence(item: DataSet | undefined): boolean {
  if (item === undefined) return true;
  for (const tag of item.tags()) if (tag !== TAG.SpecificCharacterSet && !isGroupLengthTag(tag)) return false;
  return true;
}

/** Fills `out` with the query's keys and the candidate's values; true when its text needs `candidate`'s character set. */
function reduceInto(query: DataSet, candidate: DataSet, out: DataSet, options: MatchOptions): boolean {
  let needs = false;
  for (const q of query) {
    if (q.tag === TAG.SpecificCharacterSet || isGroupLengthTag(q.tag)) continue;
    if (q.tag === TAG.QueryRetrieveLevel || q.tag === TAG.QueryRetrieveView) {
      // Identifies the answer's level, as the request did (C.4.1.1.3.2); not an attribute of the entity.
      out.set(q);
      continue;
    }
    if (Array.isArray(q.value)) {
      const items = candidate.sequence(q.tag) ?? [];
      const key = q.value[0];
      let answer: DataSet[];
      if (key === undefined || asksForWholeSequence(key)) {
        answer = items.map(cloneDataSet);
      } else {
        // C.2.2.2.6: the matching items, each with only the requested attributes.
        const matcher = compiledQuery(key, options);
        answer = [];
        for (const item of items) {
          if (!matcher.matches(item)) continue;
          const reduced = new DataSet();
          if (reduceInto(key, item, reduced, options)) {
            const own = item.get(TAG.SpecificCharacterSet);
            if (own !== undefined) reduced.set(own);
          }
          answer.push(reduced);
        }
      }
      out.setSequence(q.tag, answer);
      if (answer.some(needsInheritedCharset)) needs = true;
      continue;
    }
    const c = candidate.get(q.tag);
    if (c === undefined || Array.isArray(c.value)) {
      // Requested but unknown: returned with zero length.
      out.set({ tag: q.tag, vr: q.vr, value: EMPTY });
      continue;
    }
    out.set({ tag: q.tag, vr: c.vr, value: c.value });
    if (elementNeedsCharset(c)) needs = true;
  }
  return needs;
}

/**
 * The C-FIND response Identifier for a matching candidate: every key of the query (matching keys
 * and return keys alike) with the candidate's value, all of its values when it has several
 * (C.2.2.3); keys the candidate lacks are returned with zero length. For a sequence key whose
 * item has keys, the candidate's items that match that item, each reduced to its keys; for a
 * sequence key without an item or with an empty one, the candidate's whole sequence. Query/Retrieve
 * Level is returned as the query has it. Specific Character Set is the candidate's, present only
 * when some returned text needs it. Values share the candidate's bytes: they are in the
 * candidate's encoding, which is what that Specific Character Set describes.
 */
export function buildResponse(query: DataSet, candidate: DataSet, options: MatchOptions = {}): DataSet {
  const out = new DataSet();
  if (reduceInto(query, candidate, out, options)) {
    const scs = charsetElement(candidate);
    if (scs !== undefined) out.set(scs);
  }
  return out;
}

/**
 * buildResponse's elements for a candidate read through `element` (a dicom/json-view.ts view)
 * when the query has no sequence key: the same elements in the same order, or undefined when a
 * returned value needs Specific Character Set (the caller builds the DataSet answer then).
 */
export function flatResponse(
  query: DataSet,
  element: (tag: Tag) => DataElement | undefined,
): DataElement[] | undefined {
  const out: DataElement[] = [];
  for (const q of query) {
    if (q.tag === TAG.SpecificCharacterSet || isGroupLengthTag(q.tag)) continue;
    if (q.tag === TAG.QueryRetrieveLevel || q.tag === TAG.QueryRetrieveView) {
      out.push(q);
      continue;
    }
    if (Array.isArray(q.value)) return undefined;
    const c = element(q.tag);
    if (c === undefined || Array.isArray(c.value)) {
      out.push({ tag: q.tag, vr: q.vr, value: EMPTY });
      continue;
    }
    if (elementNeedsCharset(c)) return undefined;
    out.push({ tag: q.tag, vr: c.vr, value: c.value });
  }
  return out;
}

/** True when the query has a sequence key (its answers need the candidate's items). */
export function hasSequenceKey(query: DataSet): boolean {
  for (const q of query) if (Array.isArray(q.value)) return true;
  return false;
}
