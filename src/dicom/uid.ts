/**
 * UIDs (PS3.5 9): validation, generation, and the PS3.6 registry with transfer syntax properties.
 */
import { randomUUID } from 'node:crypto';
import { TRANSFER_SYNTAXES, type TransferSyntaxEntry, UIDS, type UidEntry } from './generated/uids.js';

export { UID } from './generated/uids.js';
export type { TransferSyntaxEntry, UidEntry };

/** Our implementation class UID and version name, sent in file meta and A-ASSOCIATE (PS3.7 D.3.3.2). */
export const IMPLEMENTATION_CLASS_UID = '2.25.229409347929401127262345542356185836577';
export const IMPLEMENTATION_VERSION_NAME = 'PACS_TS_0.1';

/** PS3.5 9.1: components of digits separated by '.', no leading zero in a multi-digit component, at most 64 chars. */
const UID_RE = /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/;
export function isValidUid(uid: string): boolean {
  return uid.length > 0 && uid.length <= 64 && UID_RE.test(uid);
}

/** A new UID in the 2.25 form: the decimal value of a random UUID (PS3.5 B.2). */
export function generateUid(): string {
  return `2.25.${BigInt(`0x${randomUUID().replace(/-/g, '')}`).toString(10)}`;
}

let byUid: Map<string, UidEntry> | undefined;
let tsByUid: Map<string, TransferSyntaxEntry> | undefined;

export function lookupUid(uid: string): UidEntry | undefined {
  if (!byUid) byUid = new Map(UIDS.map((e) => [e.uid, e]));
  return byUid.get(uid);
}

export function transferSyntax(uid: string): TransferSyntaxEntry | undefined {
  if (!tsByUid) tsByUid = new Map(TRANSFER_SYNTAXES.map((e) => [e.uid, e]));
  return tsByUid.get(uid);
}

export const IMPLICIT_VR_LE = '1.2.840.10008.1.2';
export const EXPLICIT_VR_LE = '1.2.840.10008.1.2.1';
export const DEFLATED_EXPLICIT_VR_LE = '1.2.840.10008.1.2.1.99';
export const EXPLICIT_VR_BE = '1.2.840.10008.1.2.2';

/** The transfer syntaxes a data set can be re-encoded into without a codec for pixel data. */
export const UNCOMPRESSED_TRANSFER_SYNTAXES: readonly string[] = [
  IMPLICIT_VR_LE,
  EXPLICIT_VR_LE,
  EXPLICIT_VR_BE,
  DEFLATED_EXPLICIT_VR_LE,
];

/** Storage SOP classes of the registry (PS3.4 B.5), recognised by name as the registry names them. */
export function isStorageSopClass(uid: string): boolean {
  const e = lookupUid(uid);
  return (
    e !== undefined &&
    e.type === 'SOP Class' &&
    /Storage/.test(e.name) &&
    !/Commitment|Storage Management/.test(e.name)
  );
}

export function allStorageSopClasses(): string[] {
  return UIDS.filter((e) => isStorageSopClass(e.uid)).map((e) => e.uid);
}

/** "1.2.840.10008.1.2.1 (Explicit VR Little Endian)" for messages. */
export function describeUid(uid: string): string {
  const e = lookupUid(uid);
  return e ? `${uid} (${e.name})` : uid;
}
