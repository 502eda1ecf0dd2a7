/**
 * A PNG encoder (RFC 2083 / ISO 15948) for 8-bit grey and RGB images: IHDR, one IDAT, IEND.
 * Each row gets the filter (None, Sub, Up, Paeth) with the smallest sum of absolute differences,
 * the heuristic of the PNG specification 12.8. Deflate is fflate's (pure JavaScript, already the
 * data layer's inflater), so this stays I/O-free and runs in a worker like the JPEG encoder.
 */
import { zlibSync } from 'fflate';
import type { Image } from './render.js';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array, start: number, end: number): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = (CRC_TABLE[(c ^ (bytes[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out, 4, 8 + data.length));
  return out;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** The filtered scanlines: each row a filter byte then the row filtered. */
function filterRows(image: Image): Uint8Array {
  const bpp = image.channels;
  const stride = image.width * bpp;
  const out = new Uint8Array((stride + 1) * image.height);
  const candidate = [
    new Uint8Array(stride),
    new Uint8Array(stride),
    new Uint8Array(stride),
    new Uint8Array(stride),
  ];
  const d = image.data;
  for (let y = 0; y < image.height; y++) {
    const row = y * stride;
    const prev = row - stride;
    let best = 0;
    let bestScore = Number.POSITIVE_INFINITY;
    for (let f = 0; f < 4; f++) {
      const line = candidate[f] as Uint8Array;
      let score = 0;
      for (let x = 0; x < stride; x++) {
        const v = d[row + x] as number;
        const a = x >= bpp ? (d[row + x - bpp] as number) : 0;
        const b = y > 0 ? (d[prev + x] as number) : 0;
        const c = y > 0 && x >= bpp ? (d[prev + x - bpp] as number) : 0;
        const p = f === 0 ? 0 : f === 1 ? a : f === 2 ? b : paeth(a, b, c);
        const r = (v - p) & 0xff;
        line[x] = r;
        score += r < 128 ? r : 256 - r;
      }
      if (score < bestScore) {
        bestScore = score;
        best = f;
      }
    }
    // Filter types 0 None, 1 Sub, 2 Up, 4 Paeth (3 Average is not tried).
    out[y * (stride + 1)] = best === 3 ? 4 : best;
    out.set(candidate[best] as Uint8Array, y * (stride + 1) + 1);
  }
  return out;
}

/** Encodes an 8-bit grey (colour type 0) or RGB (colour type 2) image as PNG. */
export function encodePng(image: Image, level: 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 = 6): Uint8Array {
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, image.width);
  v.setUint32(4, image.height);
  ihdr[8] = 8;
  ihdr[9] = image.channels === 1 ? 0 : 2;
  // compression 0, filter method 0, no interlace
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlibSync(filterRows(image), { level })),
    chunk('IEND', new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
