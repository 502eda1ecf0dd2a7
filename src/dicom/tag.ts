/**
 * Tags as unsigned 32-bit numbers: (group << 16 | element) >>> 0, so that ordering by number is
 * the data set order of PS3.5 7.1.
 */
export type Tag = number;

export function makeTag(group: number, element: number): Tag {
  return ((group << 16) | element) >>> 0;
}
export function tagGroup(tag: Tag): number {
  return tag >>> 16;
}
export function tagElement(tag: Tag): number {
  return tag & 0xffff;
}

/** "(0010,0010)" as DCMTK prints it. */
export function formatTag(tag: Tag): string {
  const hex = (tag >>> 0).toString(16).toUpperCase().padStart(8, '0');
  return `(${hex.slice(0, 4)},${hex.slice(4)})`;
}

/** "00100010", the key form of DICOM JSON (PS3.18 F.2.1.1). */
export function tagHex(tag: Tag): string {
  return (tag >>> 0).toString(16).toUpperCase().padStart(8, '0');
}

/** Parses "gggg,eeee", "(gggg,eeee)" or "ggggeeee"; undefined when it is none of them. */
export function parseTagString(text: string): Tag | undefined {
  const m = /^\(?([0-9a-fA-F]{4}),?([0-9a-fA-F]{4})\)?$/.exec(text.trim());
  if (!m?.[1] || !m[2]) return undefined;
  return makeTag(Number.parseInt(m[1], 16), Number.parseInt(m[2], 16));
}

/** PS3.5 7.8: odd groups other than 1, 3, 5, 7 and FFFF are private. */
export function isPrivateTag(tag: Tag): boolean {
  const g = tagGroup(tag);
  return (g & 1) === 1 && g > 8 && g !== 0xffff;
}

/** PS3.5 7.8.1: (gggg,0010-00FF) in a private group reserve a block for a creator. */
export function isPrivateCreatorTag(tag: Tag): boolean {
  const e = tagElement(tag);
  return isPrivateTag(tag) && e >= 0x10 && e <= 0xff;
}

/** Group length elements (gggg,0000). */
export function isGroupLengthTag(tag: Tag): boolean {
  return tagElement(tag) === 0;
}

// PS3.5 7.5: item and delimitation tags (never carry a VR).
export const ITEM = 0xfffee000;
export const ITEM_DELIMITATION = 0xfffee00d;
export const SEQUENCE_DELIMITATION = 0xfffee0dd;
/** Value length meaning "undefined length" (PS3.5 7.1.1). */
export const UNDEFINED_LENGTH = 0xffffffff;
