/**
 * Value Representations of PS3.5 6.2, with the properties the codec needs.
 */
export const VRS = [
  'AE',
  'AS',
  'AT',
  'CS',
  'DA',
  'DS',
  'DT',
  'FD',
  'FL',
  'IS',
  'LO',
  'LT',
  'OB',
  'OD',
  'OF',
  'OL',
  'OV',
  'OW',
  'PN',
  'SH',
  'SL',
  'SQ',
  'SS',
  'ST',
  'SV',
  'TM',
  'UC',
  'UI',
  'UL',
  'UN',
  'UR',
  'US',
  'UT',
  'UV',
] as const;
export type VR = (typeof VRS)[number];

const VR_SET: ReadonlySet<string> = new Set(VRS);
export function isVR(text: string): text is VR {
  return VR_SET.has(text);
}

/** PS3.5 7.1.2: these VRs have a 2-byte reserved field and a 4-byte length in explicit VR. */
const LONG_HEADER: ReadonlySet<VR> = new Set<VR>([
  'OB',
  'OD',
  'OF',
  'OL',
  'OV',
  'OW',
  'SQ',
  'UC',
  'UN',
  'UR',
  'UT',
  'SV',
  'UV',
]);
export function hasLongHeader(vr: VR): boolean {
  return LONG_HEADER.has(vr);
}

/** Character string VRs: the value is text, padded to even length. */
const STRING_VRS: ReadonlySet<VR> = new Set<VR>([
  'AE',
  'AS',
  'CS',
  'DA',
  'DS',
  'DT',
  'IS',
  'LO',
  'LT',
  'PN',
  'SH',
  'ST',
  'TM',
  'UC',
  'UI',
  'UR',
  'UT',
]);
export function isStringVR(vr: VR): boolean {
  return STRING_VRS.has(vr);
}

/** PS3.5 6.1.2.3: VRs whose text is in the Specific Character Set (others are the default repertoire). */
const CHARSET_VRS: ReadonlySet<VR> = new Set<VR>(['SH', 'LO', 'UC', 'ST', 'LT', 'UT', 'PN']);
export function usesSpecificCharacterSet(vr: VR): boolean {
  return CHARSET_VRS.has(vr);
}

/** Text VRs whose value is a single value even when it contains a backslash (PS3.5 6.2). */
const SINGLE_VALUE_TEXT: ReadonlySet<VR> = new Set<VR>(['LT', 'ST', 'UT', 'UR']);
export function isMultiValuedStringVR(vr: VR): boolean {
  return STRING_VRS.has(vr) && !SINGLE_VALUE_TEXT.has(vr);
}

/**
 * Byte size of one numeric unit, used for byte swapping between little and big endian
 * (PS3.5 7.3). 0 means bytes are not swapped. AT is two 16-bit numbers, so it swaps by 2.
 */
export function swapUnit(vr: VR): 0 | 2 | 4 | 8 {
  switch (vr) {
    case 'US':
    case 'SS':
    case 'OW':
    case 'AT':
      return 2;
    case 'UL':
    case 'SL':
    case 'FL':
    case 'OF':
    case 'OL':
      return 4;
    case 'FD':
    case 'OD':
    case 'SV':
    case 'UV':
    case 'OV':
      return 8;
    default:
      return 0;
  }
}

/** Binary numeric VRs with a fixed value size (the value is an array of numbers). */
export function isBinaryNumberVR(vr: VR): boolean {
  return (
    vr === 'US' ||
    vr === 'SS' ||
    vr === 'UL' ||
    vr === 'SL' ||
    vr === 'FL' ||
    vr === 'FD' ||
    vr === 'SV' ||
    vr === 'UV'
  );
}

/** Bulk VRs: opaque binary values (other byte/word/... strings and unknown). */
export function isBulkVR(vr: VR): boolean {
  return (
    vr === 'OB' || vr === 'OD' || vr === 'OF' || vr === 'OL' || vr === 'OV' || vr === 'OW' || vr === 'UN'
  );
}

/** PS3.5 6.2: UI and binary values pad with NUL, other strings with a space. */
export function paddingByte(vr: VR): number {
  return isStringVR(vr) && vr !== 'UI' ? 0x20 : 0x00;
}

/** Swaps the bytes of every `unit`-byte number in place. */
export function swapBytes(bytes: Uint8Array, unit: 2 | 4 | 8): void {
  const n = bytes.length - (bytes.length % unit);
  if (unit === 2) {
    for (let i = 0; i < n; i += 2) {
      const a = bytes[i] as number;
      bytes[i] = bytes[i + 1] as number;
      bytes[i + 1] = a;
    }
  } else {
    const half = unit >> 1;
    for (let i = 0; i < n; i += unit) {
      for (let j = 0; j < half; j++) {
        const a = bytes[i + j] as number;
        bytes[i + j] = bytes[i + unit - 1 - j] as number;
        bytes[i + unit - 1 - j] = a;
      }
    }
  }
}

/** A copy of the bytes. (Buffer#slice returns a view, not a copy, so never call slice() to copy.) */
export function copyBytes(bytes: Uint8Array, start = 0, end = bytes.length): Uint8Array {
  const out = new Uint8Array(end - start);
  out.set(bytes.subarray(start, end));
  return out;
}
