/**
 * The in-memory data set model. Values are kept as the bytes of the value field, little endian for
 * binary VRs (the reader swaps big endian input), text in its original character set; typed
 * accessors decode on demand. Sequences hold nested data sets; encapsulated pixel data holds its
 * fragments untouched (PS3.5 A.4); a value not loaded is a BulkDataRef.
 */
import { DicomEncodeError } from '../core/errors.js';
import { lookupTag, TAG } from './dictionary.js';
import type { Tag } from './tag.js';
import { decodeNumbers, decodeStrings, encodeNumbers, encodeStrings } from './values.js';
import { isVR, type VR } from './vr.js';

/** Encapsulated pixel data: the Basic Offset Table item first (possibly empty), then the fragments. */
export interface PixelFragments {
  readonly kind: 'fragments';
  readonly fragments: Uint8Array[];
}

/** A value left in its source (bulk data not loaded): where it is and how long. */
export interface BulkDataRef {
  readonly kind: 'bulk';
  readonly offset: number;
  readonly length: number;
}

export type ElementValue = Uint8Array | DataSet[] | PixelFragments | BulkDataRef;

export interface DataElement {
  readonly tag: Tag;
  readonly vr: VR;
  readonly value: ElementValue;
}

export class DataSet {
  private readonly map = new Map<Tag, DataElement>();
  private order: Tag[] | undefined = [];
  /** The enclosing data set of a sequence item: Specific Character Set is inherited from it (PS3.5 7.5.3). */
  parent: DataSet | undefined;

  constructor(parent?: DataSet) {
    this.parent = parent;
  }

  get size(): number {
    return this.map.size;
  }

  has(tag: Tag): boolean {
    return this.map.has(tag);
  }

  get(tag: Tag): DataElement | undefined {
    return this.map.get(tag);
  }

  /** Adds or replaces an element. Items of a sequence value get this data set as their parent. */
  set(element: DataElement): this {
    const had = this.map.has(element.tag);
    this.map.set(element.tag, element);
    if (Array.isArray(element.value)) for (const item of element.value) item.parent = this;
    if (!had && this.order) {
      const last = this.order[this.order.length - 1];
      if (last === undefined || element.tag > last) this.order.push(element.tag);
      else this.order = undefined;
    }
    return this;
  }

  delete(tag: Tag): boolean {
    const had = this.map.delete(tag);
    if (had) this.order = undefined;
    return had;
  }

  /** Tags in ascending order (the order of PS3.5 7.1). */
  tags(): readonly Tag[] {
    if (!this.order) this.order = [...this.map.keys()].sort((a, b) => a - b);
    return this.order;
  }

  *[Symbol.iterator](): IterableIterator<DataElement> {
    for (const t of this.tags()) {
      const e = this.map.get(t);
      if (e) yield e;
    }
  }

  /** The Specific Character Set in force for this data set: its own, else its parent's. */
  characterSets(): readonly string[] {
    const own = this.map.get(TAG.SpecificCharacterSet);
    if (own && own.value instanceof Uint8Array) return decodeStrings(own.value, 'CS', []);
    return this.parent ? this.parent.characterSets() : [];
  }

  /** All values of a string (or number, as text) element, decoded and with padding removed. */
  strings(tag: Tag): string[] {
    const e = this.map.get(tag);
    if (!e || !(e.value instanceof Uint8Array)) return [];
    return decodeStrings(e.value, e.vr, this.characterSets());
  }

  /** The first value of a string element; undefined when absent or empty. */
  string(tag: Tag): string | undefined {
    const v = this.strings(tag)[0];
    return v === undefined || v === '' ? undefined : v;
  }

  /** Numbers of a binary (US, FL, ...) or numeric string (IS, DS) element. */
  numbers(tag: Tag): number[] {
    const e = this.map.get(tag);
    if (!e || !(e.value instanceof Uint8Array)) return [];
    return decodeNumbers(e.value, e.vr);
  }

  number(tag: Tag): number | undefined {
    return this.numbers(tag)[0];
  }

  sequence(tag: Tag): DataSet[] | undefined {
    const e = this.map.get(tag);
    return e && Array.isArray(e.value) ? e.value : undefined;
  }

  bytes(tag: Tag): Uint8Array | undefined {
    const e = this.map.get(tag);
    return e && e.value instanceof Uint8Array ? e.value : undefined;
  }

  /** Sets a string element; the VR defaults to the dictionary's. Text is encoded in this data set's character set. */
  setString(tag: Tag, value: string | readonly string[], vr?: VR): this {
    const v = vr ?? defaultVR(tag);
    const values = typeof value === 'string' ? [value] : value;
    return this.set({ tag, vr: v, value: encodeStrings(values, v, this.characterSets()) });
  }

  setNumbers(tag: Tag, value: number | bigint | readonly (number | bigint)[], vr?: VR): this {
    const v = vr ?? defaultVR(tag);
    const values = Array.isArray(value) ? value : [value as number | bigint];
    return this.set({ tag, vr: v, value: encodeNumbers(values, v) });
  }

  setSequence(tag: Tag, items: DataSet[]): this {
    return this.set({ tag, vr: 'SQ', value: items });
  }

  setBytes(tag: Tag, bytes: Uint8Array, vr?: VR): this {
    return this.set({ tag, vr: vr ?? defaultVR(tag), value: bytes });
  }
}

/** The dictionary VR of a tag, taking the first of an ambiguous "US or SS" form; UN when unknown. */
export function defaultVR(tag: Tag): VR {
  const vr = lookupTag(tag)?.vr.slice(0, 2) ?? 'UN';
  if (!isVR(vr)) throw new DicomEncodeError(`no VR known for tag ${tag.toString(16)}`);
  return vr;
}
