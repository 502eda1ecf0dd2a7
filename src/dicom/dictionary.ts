/**
 * The PS3.6 data dictionary (generated into ./generated/dictionary.ts): tag <-> keyword <-> VR,
 * VM, name and retired flag, with repeating groups (50xx, 60xx, ...), group lengths and private tags.
 */
import { ELEMENTS, REPEATERS } from './generated/dictionary.js';
import { isGroupLengthTag, isPrivateCreatorTag, isPrivateTag, parseTagString, type Tag } from './tag.js';

export { TAG } from './generated/dictionary.js';

export interface DictionaryEntry {
  readonly tag: Tag;
  /** As PS3.6 lists it; may be ambiguous ("US or SS", "OB or OW", ...) or "NONE" for delimiters. */
  readonly vr: string;
  readonly vm: string;
  readonly keyword: string;
  readonly name: string;
  readonly retired: boolean;
}

let byTag: Map<Tag, DictionaryEntry> | undefined;
let byKeyword: Map<string, DictionaryEntry> | undefined;

function load(): Map<Tag, DictionaryEntry> {
  if (byTag) return byTag;
  byTag = new Map();
  byKeyword = new Map();
  for (const [tag, vr, vm, keyword, name, retired] of ELEMENTS) {
    const e: DictionaryEntry = { tag, vr, vm, keyword, name, retired };
    byTag.set(tag, e);
    if (keyword) byKeyword.set(keyword, e);
  }
  for (const [value, , vr, vm, keyword, name, retired] of REPEATERS) {
    if (keyword && !byKeyword.has(keyword))
      byKeyword.set(keyword, { tag: value, vr, vm, keyword, name, retired });
  }
  return byTag;
}

const GROUP_LENGTH: Omit<DictionaryEntry, 'tag'> = {
  vr: 'UL',
  vm: '1',
  keyword: '',
  name: 'Group Length',
  retired: false,
};
const PRIVATE_CREATOR: Omit<DictionaryEntry, 'tag'> = {
  vr: 'LO',
  vm: '1',
  keyword: '',
  name: 'Private Creator',
  retired: false,
};

/** The dictionary entry of a tag, including repeating groups, group lengths and private creators. */
export function lookupTag(tag: Tag): DictionaryEntry | undefined {
  const exact = load().get(tag);
  if (exact) return exact;
  if (isPrivateTag(tag)) {
    if (isGroupLengthTag(tag)) return { tag, ...GROUP_LENGTH, name: 'Private Group Length' };
    if (isPrivateCreatorTag(tag)) return { tag, ...PRIVATE_CREATOR };
    return undefined;
  }
  for (const [value, mask, vr, vm, keyword, name, retired] of REPEATERS) {
    if ((tag & mask) >>> 0 === value) return { tag, vr, vm, keyword, name, retired };
  }
  if (isGroupLengthTag(tag)) return { tag, ...GROUP_LENGTH };
  return undefined;
}

/** The VR to use when the stream does not say (implicit VR): the dictionary's, else UN (PS3.5 A.1 note). */
export function dictionaryVR(tag: Tag): string {
  return lookupTag(tag)?.vr ?? 'UN';
}

export function keywordOf(tag: Tag): string {
  return lookupTag(tag)?.keyword ?? '';
}

export function tagForKeyword(keyword: string): Tag | undefined {
  load();
  return byKeyword?.get(keyword)?.tag;
}

/** A keyword ("PatientName") or a tag ("0010,0010", "(0010,0010)", "00100010"). */
export function parseTagOrKeyword(text: string): Tag | undefined {
  return parseTagString(text) ?? tagForKeyword(text.trim());
}
