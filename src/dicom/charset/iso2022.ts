/**
 * ISO 2022 decoding and encoding as DICOM restricts it (PS3.5 6.1.2.5): 8-bit, G0 invoked in GL
 * and G1 in GR, designations by escape sequence only, and the initial designations (those of
 * value 1 of Specific Character Set) active again at every control character, at each value
 * delimiter and, in PN, at each component and component-group delimiter (PS3.5 6.1.2.5.3).
 */
import {
  type CodeElement,
  DESIGNATIONS,
  ESC,
  packEscape,
  type SingleByteSet,
  UNMAPPED,
} from './code-elements.js';
import { ByteSink, codeUnitsToString, UnencodableCharacter } from './text-bytes.js';

/** The code elements a Specific Character Set value allows, and the state each value starts in. */
export interface Iso2022Config {
  /** G0 at the start of a value: ISO-IR 6, or ISO-IR 14 when value 1 is ISO 2022 IR 13. */
  readonly initialG0: SingleByteSet;
  /** G1 at the start of a value, if value 1 designates one. */
  readonly initialG1: CodeElement | undefined;
  /** Every element the values name, initial ones first: the order the encoder tries them in. */
  readonly elements: readonly CodeElement[];
}

/** 128 flags: which GL bytes are delimiters that reset the designations, for one VR. */
export type DelimiterSet = Uint8Array;

/** Decodes `bytes` (which may hold escape sequences) with the designations of `config`. */
export function decodeIso2022(bytes: Uint8Array, config: Iso2022Config, delimiters: DelimiterSet): string {
  const out = new Uint16Array(bytes.length);
  const len = bytes.length;
  let n = 0;
  let g0: CodeElement = config.initialG0;
  let g1: CodeElement | undefined = config.initialG1;
  let i = 0;
  while (i < len) {
    const b = bytes[i];
    if (b === ESC) {
      const seq = matchEscape(bytes, i);
      if (seq === undefined) {
        // Unknown or cut-off sequence: keep the ESC, read what follows in the current state.
        out[n++] = b;
        i++;
      } else {
        if (seq.element.slot === 'G0') g0 = seq.element;
        else g1 = seq.element;
        i += seq.length;
      }
      continue;
    }
    if (b < 0x20) {
      // PS3.5 6.1.2.5.3: the initial sets are active again at CR, LF, FF, TAB and any control.
      g0 = config.initialG0;
      g1 = config.initialG1;
      out[n++] = b;
      i++;
    } else if (b < 0x80) {
      if (g0.kind === 'double') {
        const b2 = i + 1 < len ? bytes[i + 1] : 0;
        if (b >= 0x21 && b <= 0x7e && b2 >= 0x21 && b2 <= 0x7e) {
          out[n++] = g0.decode(b, b2);
          i += 2;
        } else {
          // SPACE and DELETE are themselves in every 94^n set; anything else is a cut-off character.
          out[n++] = b === 0x20 || b === 0x7f ? b : UNMAPPED;
          i++;
        }
      } else {
        // Delimiters can only be recognised in a single-byte G0: in JIS X 0208, 0x5E is half a kanji.
        if (delimiters[b] === 1) {
          g0 = config.initialG0;
          g1 = config.initialG1;
        }
        out[n++] = g0.table[b];
        i++;
      }
    } else if (g1 === undefined) {
      // No G1 designated: pydicom reads the default repertoire as ISO 8859-1, and so do we.
      out[n++] = b;
      i++;
    } else if (g1.kind === 'single') {
      out[n++] = g1.table[b - 0x80];
      i++;
    } else {
      const b2 = i + 1 < len ? bytes[i + 1] : 0;
      if (b >= 0xa1 && b <= 0xfe && b2 >= 0xa1 && b2 <= 0xfe) {
        out[n++] = g1.decode(b & 0x7f, b2 & 0x7f);
        i += 2;
      } else {
        out[n++] = UNMAPPED;
        i++;
      }
    }
  }
  return codeUnitsToString(out, n);
}

/** Decodes bytes without escape sequences in the initial state of a single-byte configuration. */
export function decodeSingleByte(bytes: Uint8Array, g0: SingleByteSet, g1: SingleByteSet): string {
  const out = new Uint16Array(bytes.length);
  const low = g0.table;
  const high = g1.table;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    out[i] = b < 0x80 ? low[b] : high[b - 0x80];
  }
  return codeUnitsToString(out, bytes.length);
}

/**
 * Encodes `text` with the elements of `config`, choosing per character the active set when it
 * has the character, else the first element in `config.elements` that does, and designating it.
 * Before every control character, before each delimiter in `delimiters` and at the end, G0 (and
 * G1 when value 1 designates one) is switched back to the initial set (PS3.5 6.1.2.5.3). When
 * value 1 designates no G1 there is nothing to switch back to: the decoder resets G1 by itself,
 * and the next use designates it again (PS3.5 Annex I.2, K.2).
 * Returns UnencodableCharacter for the first character that no element has.
 */
export function encodeIso2022(
  text: string,
  config: Iso2022Config,
  delimiters: DelimiterSet,
): Uint8Array | UnencodableCharacter {
  const out = new ByteSink(text.length * 2 + 8);
  let g0: CodeElement = config.initialG0;
  let g1: CodeElement | undefined = config.initialG1;
  const restore = (): void => {
    if (g0 !== config.initialG0) {
      out.pushAll(config.initialG0.designation);
      g0 = config.initialG0;
    }
    if (g1 !== config.initialG1) {
      if (config.initialG1 !== undefined) out.pushAll(config.initialG1.designation);
      g1 = config.initialG1;
    }
  };
  for (let i = 0; i < text.length; i++) {
    const cp = text.charCodeAt(i);
    if (cp < 0x20) {
      if (cp === ESC) return new UnencodableCharacter(cp);
      restore();
      out.push(cp);
      continue;
    }
    if (cp < 0x80 && delimiters[cp] === 1) {
      restore();
      out.push(cp);
      continue;
    }
    // No set DICOM allows in ISO 2022 has characters outside the BMP.
    if (cp >= 0xd800 && cp <= 0xdfff) return new UnencodableCharacter(text.codePointAt(i) ?? cp);
    let code = g0.encode(cp);
    if (code >= 0) {
      emit(out, g0, code);
      continue;
    }
    if (g1 !== undefined) {
      code = g1.encode(cp);
      if (code >= 0) {
        emit(out, g1, code);
        continue;
      }
    }
    if (cp === 0x7f) {
      // DELETE is in every set's code table position and needs no designation.
      out.push(cp);
      continue;
    }
    let designated = false;
    for (const element of config.elements) {
      if (element === g0 || element === g1) continue;
      code = element.encode(cp);
      if (code < 0) continue;
      out.pushAll(element.designation);
      if (element.slot === 'G0') g0 = element;
      else g1 = element;
      emit(out, element, code);
      designated = true;
      break;
    }
    if (!designated) return new UnencodableCharacter(cp);
  }
  restore();
  return out.bytes();
}

function emit(out: ByteSink, element: CodeElement, code: number): void {
  if (element.kind === 'single') {
    out.push(code);
  } else if (element.slot === 'G0') {
    out.push(code >> 8);
    out.push(code & 0xff);
  } else {
    out.push((code >> 8) | 0x80);
    out.push((code & 0xff) | 0x80);
  }
}

/** The known designation at `bytes[start]` (an ESC) and the sequence's length, or undefined. */
function matchEscape(bytes: Uint8Array, start: number): { element: CodeElement; length: number } | undefined {
  // ISO 2022 13.1: ESC, intermediate bytes 02/00-02/15, one final byte 03/00-07/14.
  const seq: number[] = [];
  for (let i = start + 1; i < bytes.length && seq.length < 4; i++) {
    const b = bytes[i];
    seq.push(b);
    if (b >= 0x30 && b <= 0x7e) {
      const element = DESIGNATIONS.get(packEscape(seq));
      return element === undefined ? undefined : { element, length: seq.length + 1 };
    }
    if (b < 0x20 || b > 0x2f) return undefined;
  }
  return undefined;
}
