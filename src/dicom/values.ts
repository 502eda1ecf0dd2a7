/**
 * Value encoding per VR (PS3.5 6.2): bytes of a value field <-> JS values. Binary values are
 * little endian here (the codec swaps big endian streams at the edge).
 */
import { DicomEncodeError } from '../core/errors.js';
import { decodeString, encodeString } from './charset.js';
import { isMultiValuedStringVR, paddingByte, usesSpecificCharacterSet, type VR } from './vr.js';

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/** The text of a string value, decoded in the character set where the VR uses one. */
export function decodeText(bytes: Uint8Array, vr: VR, charsets: readonly string[]): string {
  if (usesSpecificCharacterSet(vr) && charsets.length > 0) return decodeString(bytes, charsets, vr);
  return latin1(bytes);
}

/** The text without trailing spaces and NULs; a loop, as /[\0 ]+$/ takes quadratic time on long runs of padding. */
function trimTrailingPadding(text: string): string {
  let end = text.length;
  while (end > 0) {
    const c = text.charCodeAt(end - 1);
    if (c !== 0x20 && c !== 0) break;
    end--;
  }
  return end === text.length ? text : text.slice(0, end);
}

/**
 * The values of a string element: decoded, split at '\' (after decoding, since multi-byte sets may
 * contain the byte 0x5C), trailing padding removed (PS3.5 6.2: trailing spaces are insignificant;
 * UI pads with NUL), leading spaces removed where the VR says they are insignificant.
 */
export function decodeStrings(bytes: Uint8Array, vr: VR, charsets: readonly string[]): string[] {
  if (bytes.length === 0) return [];
  const text = decodeText(bytes, vr, charsets);
  if (!isMultiValuedStringVR(vr)) {
    // LT, ST, UT, UR: one value; only trailing spaces (and stray NULs) are padding.
    return [trimTrailingPadding(text)];
  }
  const parts = text.split('\\');
  const out: string[] = new Array(parts.length);
  const trimLeading =
    vr === 'DS' ||
    vr === 'IS' ||
    vr === 'AE' ||
    vr === 'CS' ||
    vr === 'DA' ||
    vr === 'TM' ||
    vr === 'DT' ||
    vr === 'AS';
  for (let i = 0; i < parts.length; i++) {
    let p = trimTrailingPadding(parts[i] as string);
    if (trimLeading) p = p.replace(/^ +/, '');
    out[i] = p;
  }
  return out;
}

/** Encodes string values joined by '\' and padded to even length with the VR's padding byte. */
export function encodeStrings(values: readonly string[], vr: VR, charsets: readonly string[]): Uint8Array {
  const text = isMultiValuedStringVR(vr) ? values.join('\\') : (values[0] ?? '');
  let bytes: Uint8Array;
  if (usesSpecificCharacterSet(vr) && charsets.length > 0) bytes = encodeString(text, charsets, vr);
  else {
    for (let i = 0; i < text.length; i++) {
      if (text.charCodeAt(i) > 0xff)
        throw new DicomEncodeError(
          `character '${text[i]}' cannot be encoded in a ${vr} value without a Specific Character Set`,
        );
    }
    bytes = Buffer.from(text, 'latin1');
  }
  return padEven(bytes, paddingByte(vr));
}

export function padEven(bytes: Uint8Array, pad: number): Uint8Array {
  if (bytes.length % 2 === 0) return bytes;
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  out[bytes.length] = pad;
  return out;
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Numbers of a binary numeric VR (little endian bytes) or of IS/DS text. SV/UV beyond 2^53 lose precision: use decodeBigInts. */
export function decodeNumbers(bytes: Uint8Array, vr: VR): number[] {
  switch (vr) {
    case 'IS':
    case 'DS':
      return decodeStrings(bytes, vr, [])
        .filter((s) => s !== '')
        .map((s) => Number(s));
    case 'SV':
    case 'UV':
      return decodeBigInts(bytes, vr).map((b) => Number(b));
    case 'AT':
      return decodeTags(bytes);
    default:
      break;
  }
  const dv = view(bytes);
  const out: number[] = [];
  switch (vr) {
    case 'US':
    case 'OW':
      for (let i = 0; i + 2 <= bytes.length; i += 2) out.push(dv.getUint16(i, true));
      break;
    case 'SS':
      for (let i = 0; i + 2 <= bytes.length; i += 2) out.push(dv.getInt16(i, true));
      break;
    case 'UL':
    case 'OL':
      for (let i = 0; i + 4 <= bytes.length; i += 4) out.push(dv.getUint32(i, true));
      break;
    case 'SL':
      for (let i = 0; i + 4 <= bytes.length; i += 4) out.push(dv.getInt32(i, true));
      break;
    case 'FL':
    case 'OF':
      for (let i = 0; i + 4 <= bytes.length; i += 4) out.push(dv.getFloat32(i, true));
      break;
    case 'FD':
    case 'OD':
      for (let i = 0; i + 8 <= bytes.length; i += 8) out.push(dv.getFloat64(i, true));
      break;
    default:
      break;
  }
  return out;
}

export function decodeBigInts(bytes: Uint8Array, vr: 'SV' | 'UV' | 'OV'): bigint[] {
  const dv = view(bytes);
  const out: bigint[] = [];
  for (let i = 0; i + 8 <= bytes.length; i += 8)
    out.push(vr === 'SV' ? dv.getBigInt64(i, true) : dv.getBigUint64(i, true));
  return out;
}

/** AT values: pairs of 16-bit group and element numbers (PS3.5 6.2). */
export function decodeTags(bytes: Uint8Array): number[] {
  const dv = view(bytes);
  const out: number[] = [];
  for (let i = 0; i + 4 <= bytes.length; i += 4)
    out.push(((dv.getUint16(i, true) << 16) | dv.getUint16(i + 2, true)) >>> 0);
  return out;
}

/**
 * Formats a DS value within its 16 characters (PS3.5 6.2): the shortest text that reads back as
 * the same number when it fits, else the most significant digits that fit, in fixed or
 * exponential notation, whichever is shorter (-1.2345678901e-5 keeps all its digits that way).
 */
export function formatDS(n: number): string {
  if (!Number.isFinite(n)) throw new DicomEncodeError(`DS value ${n} is not a finite number`);
  const s = String(n);
  if (s.length <= 16) return s;
  const tidy = (t: string) =>
    t
      .replace(/(\.\d*?)0+(e|$)/, '$1$2')
      .replace(/\.(e|$)/, '$1')
      .replace('e+', 'e');
  for (let p = 16; p > 0; p--) {
    const fixed = tidy(n.toPrecision(p));
    const exponential = tidy(n.toExponential(p - 1));
    const best = fixed.length <= exponential.length ? fixed : exponential;
    if (best.length <= 16) return best;
  }
  throw new DicomEncodeError(`DS value ${n} does not fit in 16 characters`);
}

/** Encodes numbers for a binary VR (little endian) or as IS/DS text. */
export function encodeNumbers(values: readonly (number | bigint)[], vr: VR): Uint8Array {
  if (vr === 'IS')
    return encodeStrings(
      values.map((v) => String(Math.trunc(Number(v)))),
      vr,
      [],
    );
  if (vr === 'DS')
    return encodeStrings(
      values.map((v) => formatDS(Number(v))),
      vr,
      [],
    );
  const size =
    vr === 'US' || vr === 'SS' || vr === 'OW'
      ? 2
      : vr === 'FD' || vr === 'OD' || vr === 'SV' || vr === 'UV' || vr === 'OV'
        ? 8
        : 4;
  const out = new Uint8Array(values.length * size);
  const dv = view(out);
  values.forEach((raw, i) => {
    const o = i * size;
    const v = Number(raw);
    switch (vr) {
      case 'US':
      case 'OW':
        dv.setUint16(o, v, true);
        break;
      case 'SS':
        dv.setInt16(o, v, true);
        break;
      case 'UL':
      case 'OL':
        dv.setUint32(o, v, true);
        break;
      case 'SL':
        dv.setInt32(o, v, true);
        break;
      case 'FL':
      case 'OF':
        dv.setFloat32(o, v, true);
        break;
      case 'FD':
      case 'OD':
        dv.setFloat64(o, v, true);
        break;
      case 'SV':
        dv.setBigInt64(o, BigInt(raw), true);
        break;
      case 'UV':
      case 'OV':
        dv.setBigUint64(o, BigInt(raw), true);
        break;
      case 'AT':
        dv.setUint16(o, v >>> 16, true);
        dv.setUint16(o + 2, v & 0xffff, true);
        break;
      default:
        throw new DicomEncodeError(`VR ${vr} does not hold numbers`);
    }
  });
  return out;
}
