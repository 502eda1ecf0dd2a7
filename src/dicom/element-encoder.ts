/**
 * The bytes of a flat data set (elements with byte values, no sequences) in one pass into one
 * buffer: what a C-FIND answer built from the index is. The output equals DataSetWriter's for the
 * same elements (PS3.5 7.1.2 explicit and 7.1.3 implicit VR element headers, odd values padded
 * with the VR's padding byte, group lengths left out, a value too long for a 16-bit length
 * written as UN), without the writer's block buffering and per-element calls. Little endian
 * syntaxes only: for another one (big endian, deflated) the caller encodes a DataSet.
 */
import type { DataElement } from './dataset.js';
import { isGroupLengthTag } from './tag.js';
import { transferSyntax } from './uid.js';
import { hasLongHeader, paddingByte, type VR } from './vr.js';

/** An element whose value is bytes (little endian for binary VRs, as a DataSet keeps them). */
export interface FlatElement {
  readonly tag: number;
  readonly vr: VR;
  readonly value: Uint8Array;
}

/** How a transfer syntax writes element headers; undefined when encodeElements does not write it. */
export function flatEncoding(transferSyntaxUid: string): { readonly explicitVR: boolean } | undefined {
  const ts = transferSyntax(transferSyntaxUid);
  if (ts === undefined || !ts.littleEndian || ts.deflated || ts.encapsulated) return undefined;
  return { explicitVR: ts.explicitVR };
}

/** True when every element is flat (its value is bytes). */
export function isFlat(elements: readonly DataElement[]): elements is readonly FlatElement[] {
  for (const e of elements) if (!(e.value instanceof Uint8Array)) return false;
  return true;
}

/**
 * The elements, in the order given (ascending tags, as PS3.5 7.1 wants them), encoded in an
 * Implicit or Explicit VR Little Endian syntax; undefined for any other syntax.
 */
export function encodeElements(
  elements: readonly FlatElement[],
  transferSyntaxUid: string,
): Uint8Array | undefined {
  const encoding = flatEncoding(transferSyntaxUid);
  if (encoding === undefined) return undefined;
  const explicit = encoding.explicitVR;
  let size = 0;
  for (const e of elements) {
    if (isGroupLengthTag(e.tag)) continue;
    const padded = e.value.length + (e.value.length & 1);
    size += padded + (explicit && (hasLongHeader(e.vr) || padded > 0xffff) ? 12 : 8);
  }
  const out = Buffer.allocUnsafe(size);
  let o = 0;
  for (const e of elements) {
    if (isGroupLengthTag(e.tag)) continue;
    const v = e.value;
    const padded = v.length + (v.length & 1);
    o = out.writeUInt16LE(e.tag >>> 16, o);
    o = out.writeUInt16LE(e.tag & 0xffff, o);
    if (!explicit) o = out.writeUInt32LE(padded, o);
    else {
      const vr: VR = !hasLongHeader(e.vr) && padded > 0xffff ? 'UN' : e.vr;
      out[o++] = vr.charCodeAt(0);
      out[o++] = vr.charCodeAt(1);
      if (hasLongHeader(vr)) {
        o = out.writeUInt16LE(0, o);
        o = out.writeUInt32LE(padded, o);
      } else o = out.writeUInt16LE(padded, o);
    }
    out.set(v, o);
    o += v.length;
    if (padded !== v.length) out[o++] = paddingByte(e.vr);
  }
  return out;
}
