/**
 * A baseline JPEG encoder (ITU-T T.81 / ISO 10918-1, process 1: 8-bit samples, sequential DCT,
 * Huffman coding) for rendered images: grey (one component) or YCbCr from RGB (JFIF 1.02 colour
 * space) with 4:2:0 or 4:4:4 sampling. Quantization tables are the examples of T.81 Annex K.1
 * scaled by quality as the IJG library does (1..100); the Huffman tables are those of Annex K.3.
 * Written for /rendered and /thumbnail only (never for pixel data kept in the archive).
 */
import type { Image } from './render.js';

/** Encoder options: quality 1..100 (default 90), chroma sampling of colour images (default 4:2:0). */
export interface JpegOptions {
  readonly quality?: number;
  readonly subsampling?: '420' | '444';
}

// T.81 Table K.1 and K.2, in natural (row-major) order.
const LUMA_Q = [
  16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22,
  29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103,
  121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];
const CHROMA_Q = [
  17,
  18,
  24,
  47,
  99,
  99,
  99,
  99,
  18,
  21,
  26,
  66,
  99,
  99,
  99,
  99,
  24,
  26,
  56,
  99,
  99,
  99,
  99,
  99,
  47,
  66,
  99,
  99,
  99,
  99,
  99,
  99,
  ...new Array<number>(32).fill(99),
];

/** T.81 Figure A.6: zig-zag position k -> natural index. */
export const ZIGZAG = [
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7,
  14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46,
  53, 60, 61, 54, 47, 55, 62, 63,
];

/** A Huffman table as T.81 B.2.4.2 writes it: code counts per length 1..16 and the symbols. */
export interface HuffmanSpec {
  readonly bits: readonly number[];
  readonly values: readonly number[];
}

// T.81 Tables K.3 to K.6.
/** DC luminance (K.3). */
export const DC_LUMA: HuffmanSpec = {
  bits: [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0],
  values: range(12),
};
/** DC chrominance (K.4). */
export const DC_CHROMA: HuffmanSpec = {
  bits: [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0],
  values: range(12),
};
/** AC luminance (K.5). */
export const AC_LUMA: HuffmanSpec = {
  bits: [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d],
  values: [
    0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22,
    0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0, 0x24, 0x33,
    0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x34,
    0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55,
    0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76,
    0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96,
    0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5,
    0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4,
    0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1,
    0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
  ],
};
/** AC chrominance (K.6). */
export const AC_CHROMA: HuffmanSpec = {
  bits: [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77],
  values: [
    0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71, 0x13,
    0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0, 0x15, 0x62,
    0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26, 0x27, 0x28, 0x29,
    0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54,
    0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75,
    0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94,
    0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3,
    0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2,
    0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea,
    0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
  ],
};

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** The quantization table for a quality (IJG scaling: 50 is Annex K as printed), natural order. */
export function scaledTable(base: readonly number[], quality: number): Uint8Array {
  const q = Math.min(100, Math.max(1, Math.round(quality)));
  const scale = q < 50 ? 5000 / q : 200 - 2 * q;
  return Uint8Array.from(base, (b) => Math.min(255, Math.max(1, Math.floor((b * scale + 50) / 100))));
}

/** T.81 C.2: code and size per symbol. */
function huffmanCodes(spec: HuffmanSpec): { code: Uint16Array; size: Uint8Array } {
  const code = new Uint16Array(256);
  const size = new Uint8Array(256);
  let c = 0;
  let k = 0;
  for (let len = 1; len <= 16; len++) {
    for (let i = 0; i < (spec.bits[len - 1] as number); i++) {
      const sym = spec.values[k++] as number;
      code[sym] = c++;
      size[sym] = len;
    }
    c <<= 1;
  }
  return { code, size };
}

class ByteSink {
  buf = new Uint8Array(1 << 16);
  length = 0;
  private acc = 0;
  private bits = 0;

  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.length++] = b;
  }

  word(w: number): void {
    this.byte(w >> 8);
    this.byte(w & 0xff);
  }

  bytes(b: ArrayLike<number>): void {
    this.ensure(b.length);
    for (let i = 0; i < b.length; i++) this.buf[this.length++] = b[i] as number;
  }

  /** Entropy-coded bits, most significant first; a 0xFF byte is followed by a stuffed 0x00 (T.81 F.1.2.3). */
  put(value: number, size: number): void {
    if (size === 0) return;
    this.acc = (this.acc << size) | (value & ((1 << size) - 1));
    this.bits += size;
    while (this.bits >= 8) {
      const b = (this.acc >> (this.bits - 8)) & 0xff;
      this.byte(b);
      if (b === 0xff) this.byte(0);
      this.bits -= 8;
    }
    this.acc &= (1 << this.bits) - 1;
  }

  /** Pads the last byte with 1 bits (T.81 F.1.2.3). */
  flush(): void {
    if (this.bits > 0) this.put(0x7f, 8 - this.bits);
  }
}

// DCT basis: BASIS[u*8+x] = C(u)/2 cos((2x+1) u pi / 16) (T.81 A.3.3).
const BASIS = (() => {
  const t = new Float64Array(64);
  for (let u = 0; u < 8; u++)
    for (let x = 0; x < 8; x++)
      t[u * 8 + x] = ((u === 0 ? Math.SQRT1_2 : 1) / 2) * Math.cos(((2 * x + 1) * u * Math.PI) / 16);
  return t;
})();

const tmp = new Float64Array(64);

/** Forward DCT of a level-shifted block, then quantization; result in zig-zag order. */
function fdctQuantize(block: Float64Array, qtable: Uint8Array, out: Int32Array): void {
  for (let y = 0; y < 8; y++)
    for (let u = 0; u < 8; u++) {
      let s = 0;
      for (let x = 0; x < 8; x++) s += (BASIS[u * 8 + x] as number) * (block[y * 8 + x] as number);
      tmp[y * 8 + u] = s;
    }
  for (let v = 0; v < 8; v++)
    for (let u = 0; u < 8; u++) {
      let s = 0;
      for (let y = 0; y < 8; y++) s += (BASIS[v * 8 + y] as number) * (tmp[y * 8 + u] as number);
      block[v * 8 + u] = s;
    }
  for (let k = 0; k < 64; k++) {
    const n = ZIGZAG[k] as number;
    out[k] = Math.round((block[n] as number) / (qtable[n] as number));
  }
}

function category(v: number): number {
  let a = v < 0 ? -v : v;
  let n = 0;
  while (a > 0) {
    n++;
    a >>= 1;
  }
  return n;
}

interface Component {
  readonly id: number;
  readonly h: number;
  readonly v: number;
  readonly q: Uint8Array;
  readonly dc: { code: Uint16Array; size: Uint8Array };
  readonly ac: { code: Uint16Array; size: Uint8Array };
  /** The plane, padded to whole MCUs. */
  readonly plane: Float64Array;
  readonly stride: number;
  pred: number;
}

function encodeBlock(
  sink: ByteSink,
  comp: Component,
  bx: number,
  by: number,
  block: Float64Array,
  coef: Int32Array,
): void {
  for (let y = 0; y < 8; y++)
    for (let x = 0; x < 8; x++)
      block[y * 8 + x] = (comp.plane[(by + y) * comp.stride + bx + x] as number) - 128;
  fdctQuantize(block, comp.q, coef);
  // T.81 F.1.2.1: DC difference, then F.1.2.2: AC run lengths.
  const diff = (coef[0] as number) - comp.pred;
  comp.pred = coef[0] as number;
  const s = category(diff);
  sink.put(comp.dc.code[s] as number, comp.dc.size[s] as number);
  sink.put(diff < 0 ? diff - 1 : diff, s);
  let run = 0;
  for (let k = 1; k < 64; k++) {
    const c = coef[k] as number;
    if (c === 0) {
      run++;
      continue;
    }
    while (run > 15) {
      sink.put(comp.ac.code[0xf0] as number, comp.ac.size[0xf0] as number);
      run -= 16;
    }
    const size = category(c);
    const sym = (run << 4) | size;
    sink.put(comp.ac.code[sym] as number, comp.ac.size[sym] as number);
    sink.put(c < 0 ? c - 1 : c, size);
    run = 0;
  }
  if (run > 0) sink.put(comp.ac.code[0] as number, comp.ac.size[0] as number);
}

/** A plane of `w` x `h` samples padded to `pw` x `ph` by repeating the last column and row. */
function padded(
  w: number,
  h: number,
  pw: number,
  ph: number,
  sample: (x: number, y: number) => number,
): Float64Array {
  const out = new Float64Array(pw * ph);
  for (let y = 0; y < ph; y++) {
    const sy = y < h ? y : h - 1;
    for (let x = 0; x < pw; x++) out[y * pw + x] = sample(x < w ? x : w - 1, sy);
  }
  return out;
}

function writeHuffman(sink: ByteSink, tableClass: number, id: number, spec: HuffmanSpec): void {
  sink.word(0xffc4);
  sink.word(2 + 1 + 16 + spec.values.length);
  sink.byte((tableClass << 4) | id);
  sink.bytes(spec.bits);
  sink.bytes(spec.values);
}

/** Encodes an 8-bit grey or RGB image as a baseline JFIF JPEG. */
export function encodeJpeg(image: Image, options: JpegOptions = {}): Uint8Array {
  const quality = options.quality ?? 90;
  const { width, height, data } = image;
  const colour = image.channels === 3;
  const sub = colour && (options.subsampling ?? '420') === '420' ? 2 : 1;
  const mcuW = 8 * sub;
  const mcuH = 8 * sub;
  const mcusX = Math.ceil(width / mcuW);
  const mcusY = Math.ceil(height / mcuH);
  const pw = mcusX * mcuW;
  const ph = mcusY * mcuH;
  const lq = scaledTable(LUMA_Q, quality);
  const cq = scaledTable(CHROMA_Q, quality);
  const dcL = huffmanCodes(DC_LUMA);
  const acL = huffmanCodes(AC_LUMA);
  const dcC = huffmanCodes(DC_CHROMA);
  const acC = huffmanCodes(AC_CHROMA);
  const components: Component[] = [];
  if (!colour) {
    components.push({
      id: 1,
      h: 1,
      v: 1,
      q: lq,
      dc: dcL,
      ac: acL,
      plane: padded(width, height, pw, ph, (x, y) => data[y * width + x] as number),
      stride: pw,
      pred: 0,
    });
  } else {
    // JFIF 1.02: the RGB to YCbCr matrix of CCIR 601 with full-range samples.
    const px = (x: number, y: number, c: number) => data[(y * width + x) * 3 + c] as number;
    const Y = padded(
      width,
      height,
      pw,
      ph,
      (x, y) => 0.299 * px(x, y, 0) + 0.587 * px(x, y, 1) + 0.114 * px(x, y, 2),
    );
    const cb = (x: number, y: number) =>
      -0.168736 * px(x, y, 0) - 0.331264 * px(x, y, 1) + 0.5 * px(x, y, 2) + 128;
    const cr = (x: number, y: number) =>
      0.5 * px(x, y, 0) - 0.418688 * px(x, y, 1) - 0.081312 * px(x, y, 2) + 128;
    const cw = pw / sub;
    const chh = ph / sub;
    const down = (f: (x: number, y: number) => number): Float64Array => {
      if (sub === 1) return padded(width, height, pw, ph, f);
      const full = padded(width, height, pw, ph, f);
      const out = new Float64Array(cw * chh);
      for (let y = 0; y < chh; y++)
        for (let x = 0; x < cw; x++) {
          const i = 2 * y * pw + 2 * x;
          out[y * cw + x] =
            ((full[i] as number) +
              (full[i + 1] as number) +
              (full[i + pw] as number) +
              (full[i + pw + 1] as number)) /
            4;
        }
      return out;
    };
    components.push({ id: 1, h: sub, v: sub, q: lq, dc: dcL, ac: acL, plane: Y, stride: pw, pred: 0 });
    components.push({ id: 2, h: 1, v: 1, q: cq, dc: dcC, ac: acC, plane: down(cb), stride: cw, pred: 0 });
    components.push({ id: 3, h: 1, v: 1, q: cq, dc: dcC, ac: acC, plane: down(cr), stride: cw, pred: 0 });
  }
  const sink = new ByteSink();
  sink.word(0xffd8);
  // APP0 JFIF 1.01, no thumbnail, aspect 1:1.
  sink.word(0xffe0);
  sink.word(16);
  sink.bytes([0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0]);
  const tables = colour ? [lq, cq] : [lq];
  for (let t = 0; t < tables.length; t++) {
    sink.word(0xffdb);
    sink.word(2 + 65);
    sink.byte(t);
    const table = tables[t] as Uint8Array;
    for (let k = 0; k < 64; k++) sink.byte(table[ZIGZAG[k] as number] as number);
  }
  sink.word(0xffc0);
  sink.word(8 + 3 * components.length);
  sink.byte(8);
  sink.word(height);
  sink.word(width);
  sink.byte(components.length);
  for (const c of components) {
    sink.byte(c.id);
    sink.byte((c.h << 4) | c.v);
    sink.byte(c.q === lq ? 0 : 1);
  }
  writeHuffman(sink, 0, 0, DC_LUMA);
  writeHuffman(sink, 1, 0, AC_LUMA);
  if (colour) {
    writeHuffman(sink, 0, 1, DC_CHROMA);
    writeHuffman(sink, 1, 1, AC_CHROMA);
  }
  sink.word(0xffda);
  sink.word(6 + 2 * components.length);
  sink.byte(components.length);
  for (const c of components) {
    sink.byte(c.id);
    sink.byte(c.id === 1 ? 0x00 : 0x11);
  }
  sink.bytes([0, 63, 0]);
  const block = new Float64Array(64);
  const coef = new Int32Array(64);
  for (let my = 0; my < mcusY; my++)
    for (let mx = 0; mx < mcusX; mx++)
      for (const c of components)
        for (let v = 0; v < c.v; v++)
          for (let h = 0; h < c.h; h++)
            encodeBlock(sink, c, (mx * c.h + h) * 8, (my * c.v + v) * 8, block, coef);
  sink.flush();
  sink.word(0xffd9);
  return sink.buf.slice(0, sink.length);
}
