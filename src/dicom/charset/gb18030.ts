/**
 * GB18030 and GBK encoders (PS3.3 Table C.12-5: stand-alone multi-byte sets without code
 * extensions). TextEncoder only speaks UTF-8, so the tables are the inverse of ICU's gb18030
 * decoder, built once on first use. ICU follows GB 18030-2022 (as WHATWG does): a few characters
 * that Python's older codec puts in private-use or four-byte codes (U+1E3F, the vertical forms
 * U+FE10-FE19) have two-byte codes here.
 */
import { ByteSink, UnencodableCharacter } from './text-bytes.js';

let twoByte: Map<number, number> | undefined;
let fourByteBmp: Map<number, number> | undefined;

/** Code point -> (lead << 8) | trail for every two-byte code (lead 0x81-0xFE, trail 0x40-0xFE). */
function twoByteTable(): Map<number, number> {
  if (twoByte !== undefined) return twoByte;
  const codes: number[] = [];
  for (let lead = 0x81; lead <= 0xfe; lead++) {
    for (let trail = 0x40; trail <= 0xfe; trail++) if (trail !== 0x7f) codes.push((lead << 8) | trail);
  }
  // A LF after each code keeps an unmapped one from swallowing the next.
  const bytes = new Uint8Array(codes.length * 3);
  for (let i = 0; i < codes.length; i++) {
    bytes[i * 3] = codes[i] >> 8;
    bytes[i * 3 + 1] = codes[i] & 0xff;
    bytes[i * 3 + 2] = 0x0a;
  }
  const parts = new TextDecoder('gb18030').decode(bytes).split('\n');
  const map = new Map<number, number>();
  for (let i = 0; i < codes.length; i++) {
    const s = parts[i];
    if (s.length === 1 && s !== '\ufffd' && !map.has(s.charCodeAt(0))) map.set(s.charCodeAt(0), codes[i]);
  }
  twoByte = map;
  return map;
}

/** Four-byte code of linear index `n` (0 = 0x81308130), as its four bytes. */
function fourByteCode(n: number): [number, number, number, number] {
  return [
    0x81 + Math.floor(n / 12600),
    0x30 + (Math.floor(n / 1260) % 10),
    0x81 + (Math.floor(n / 10) % 126),
    0x30 + (n % 10),
  ];
}

/** Code point -> linear index for the BMP characters that GB18030 codes in four bytes. */
function fourByteBmpTable(): Map<number, number> {
  if (fourByteBmp !== undefined) return fourByteBmp;
  const count = 39420; // 0x81308130 .. 0x8431A439
  const bytes = new Uint8Array(count * 5);
  for (let n = 0; n < count; n++) {
    bytes.set(fourByteCode(n), n * 5);
    bytes[n * 5 + 4] = 0x0a;
  }
  const parts = new TextDecoder('gb18030').decode(bytes).split('\n');
  const map = new Map<number, number>();
  for (let n = 0; n < count; n++) {
    const s = parts[n];
    if (s.length === 1 && s !== '\ufffd' && !map.has(s.charCodeAt(0))) map.set(s.charCodeAt(0), n);
  }
  fourByteBmp = map;
  return map;
}

/**
 * Encodes `text` in GB18030, or in GBK (the one- and two-byte part, with EURO SIGN at 0x80 as in
 * code page 936) when `gbk` is true. Returns UnencodableCharacter for a lone surrogate or, in
 * GBK, a character outside it.
 */
export function encodeGb18030(text: string, gbk: boolean): Uint8Array | UnencodableCharacter {
  const out = new ByteSink(text.length * 2);
  for (let i = 0; i < text.length; i++) {
    const cp = text.codePointAt(i) ?? 0;
    if (cp < 0x80) {
      out.push(cp);
      continue;
    }
    if (cp > 0xffff) i++;
    if (gbk && cp === 0x20ac) {
      out.push(0x80);
      continue;
    }
    const two = twoByteTable().get(cp);
    if (two !== undefined) {
      out.push(two >> 8);
      out.push(two & 0xff);
      continue;
    }
    if (gbk || (cp >= 0xd800 && cp <= 0xdfff)) return new UnencodableCharacter(cp);
    // Supplementary planes follow the BMP's four-byte codes linearly from 0x90308130.
    const n = cp > 0xffff ? 189000 + (cp - 0x10000) : fourByteBmpTable().get(cp);
    if (n === undefined) return new UnencodableCharacter(cp);
    out.pushAll(fourByteCode(n));
  }
  return out.bytes();
}
