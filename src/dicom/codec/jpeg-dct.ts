/**
 * Our own decoder of sequential DCT JPEG with Huffman coding (ISO 10918-1 processes 1, 2 and 4,
 * SOF0 and SOF1) at 8 and 12 bits per sample, written because no maintained package decodes
 * 12-bit JPEG (PS3.5 A.4.1, JPEG Extended 1.2.840.10008.1.2.4.51). The inverse DCT is the
 * accurate integer one of the IJG library (the "islow" method DCMTK's decoders use), and so are
 * the colour conversion constants, so our output matches DCMTK's bit for bit or within one level.
 */
import { toNative } from './samples.js';
import { PixelCodecError, type PixelModule } from './types.js';

const ZIGZAG = new Int32Array([
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7,
  14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46,
  53, 60, 61, 54, 47, 55, 62, 63,
]);

/** The sample precision (P of the first SOF marker) of a JPEG stream, or 0 when there is none. */
export function jpegPrecision(b: Uint8Array): number {
  let i = 2;
  while (i + 4 < b.length) {
    if (b[i] !== 0xff) {
      i++;
      continue;
    }
    const marker = b[i + 1] as number;
    if (marker === 0xff) {
      i++;
      continue;
    }
    const length = ((b[i + 2] as number) << 8) | (b[i + 3] as number);
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc)
      return b[i + 4] as number;
    i += 2 + length;
  }
  return 0;
}

interface Huffman {
  // ISO 10918-1 F.2.2.3: per code length, the largest code, and the index of its first value.
  readonly maxcode: Int32Array;
  readonly valptr: Int32Array;
  readonly mincode: Int32Array;
  readonly values: Uint8Array;
  // A look-up of the first 9 bits: (length << 8) | value, 0 when the code is longer.
  readonly fast: Uint16Array;
}

const FAST_BITS = 9;

function buildHuffman(counts: Uint8Array, values: Uint8Array): Huffman {
  const maxcode = new Int32Array(18).fill(-1);
  const valptr = new Int32Array(17);
  const mincode = new Int32Array(17);
  const fast = new Uint16Array(1 << FAST_BITS);
  let code = 0;
  let k = 0;
  for (let l = 1; l <= 16; l++) {
    const n = counts[l - 1] as number;
    valptr[l] = k;
    mincode[l] = code;
    for (let j = 0; j < n; j++) {
      if (l <= FAST_BITS) {
        const shift = FAST_BITS - l;
        const base = code << shift;
        for (let f = 0; f < 1 << shift; f++) fast[base + f] = (l << 8) | (values[k] as number);
      }
      code++;
      k++;
    }
    maxcode[l] = n > 0 ? code - 1 : -1;
    code <<= 1;
  }
  maxcode[17] = 0x7fffffff;
  return { maxcode, valptr, mincode, values, fast };
}

interface Component {
  readonly id: number;
  readonly h: number;
  readonly v: number;
  readonly tq: number;
  blocksPerLine: number;
  blocksPerColumn: number;
  coefficients: Int32Array;
  pred: number;
  dc: Huffman | undefined;
  ac: Huffman | undefined;
}

/** Reads entropy-coded bits, removing stuffed zero bytes and stopping at a marker (F.1.2.3). */
class BitReader {
  private acc = 0;
  private bits = 0;
  marker = 0;
  constructor(
    private readonly b: Uint8Array,
    public at: number,
  ) {}

  private fill(): void {
    while (this.bits <= 24) {
      let byte = 0;
      if (this.marker === 0 && this.at < this.b.length) {
        byte = this.b[this.at] as number;
        if (byte === 0xff) {
          const next = this.b[this.at + 1] ?? 0;
          if (next === 0) this.at += 2;
          else {
            this.marker = next;
            byte = 0;
          }
        } else this.at++;
      }
      this.acc = ((this.acc << 8) | byte) >>> 0;
      this.bits += 8;
    }
  }

  peek(n: number): number {
    if (this.bits < n) this.fill();
    return (this.acc >>> (this.bits - n)) & ((1 << n) - 1);
  }

  skip(n: number): void {
    this.bits -= n;
  }

  get(n: number): number {
    if (n === 0) return 0;
    const v = this.peek(n);
    this.bits -= n;
    return v;
  }

  decode(h: Huffman): number {
    const f = h.fast[this.peek(FAST_BITS)] as number;
    if (f !== 0) {
      this.bits -= f >> 8;
      return f & 0xff;
    }
    let l = FAST_BITS + 1;
    let code = this.peek(l);
    while (code > (h.maxcode[l] as number)) {
      l++;
      if (l > 16) throw new PixelCodecError('JPEG: bad Huffman code');
      code = this.peek(l);
    }
    this.bits -= l;
    return h.values[(h.valptr[l] as number) + code - (h.mincode[l] as number)] as number;
  }

  /** F.2.2.1 EXTEND of a RECEIVE(s). */
  receiveExtend(s: number): number {
    if (s === 0) return 0;
    const v = this.get(s);
    return v < 1 << (s - 1) ? v - (1 << s) + 1 : v;
  }

  /** Restart: drop the partial byte and the RSTn marker. */
  restart(): void {
    this.acc = 0;
    this.bits = 0;
    if (this.marker >= 0xd0 && this.marker <= 0xd7) {
      this.at += 2;
      this.marker = 0;
    }
  }
}

/** Decodes one sequential DCT JPEG frame (8 or 12 bit) to native little-endian samples, interleaved by pixel. */
export function decodeJpegDct(b: Uint8Array, m: PixelModule): Uint8Array {
  if (b[0] !== 0xff || b[1] !== 0xd8) throw new PixelCodecError('JPEG: no SOI marker');
  const quant: Int32Array[] = [];
  const dcTables: Huffman[] = [];
  const acTables: Huffman[] = [];
  let restartInterval = 0;
  let precision = 0;
  let width = 0;
  let height = 0;
  let components: Component[] = [];
  let mcusPerLine = 0;
  let mcusPerColumn = 0;
  let hmax = 1;
  let vmax = 1;
  let jfif = false;
  let adobe = -1;
  let i = 2;
  const u16 = (o: number): number => ((b[o] as number) << 8) | (b[o + 1] as number);
  while (i + 4 <= b.length) {
    if (b[i] !== 0xff) {
      i++;
      continue;
    }
    const marker = b[i + 1] as number;
    if (marker === 0xff || marker === 0x00 || (marker >= 0xd0 && marker <= 0xd7)) {
      i++;
      continue;
    }
    if (marker === 0xd9) break;
    const length = u16(i + 2);
    const seg = i + 4;
    const end = i + 2 + length;
    switch (marker) {
      case 0xdb: {
        for (let o = seg; o < end; ) {
          const pq = (b[o] as number) >> 4;
          const tq = (b[o] as number) & 15;
          o++;
          const t = new Int32Array(64);
          for (let k = 0; k < 64; k++) {
            t[ZIGZAG[k] as number] = pq ? u16(o + 2 * k) : (b[o + k] as number);
          }
          o += pq ? 128 : 64;
          quant[tq] = t;
        }
        break;
      }
      case 0xc4: {
        for (let o = seg; o < end; ) {
          const tc = (b[o] as number) >> 4;
          const th = (b[o] as number) & 15;
          const counts = b.subarray(o + 1, o + 17);
          const n = counts.reduce((s, c) => s + c, 0);
          const table = buildHuffman(counts, b.slice(o + 17, o + 17 + n));
          if (tc === 0) dcTables[th] = table;
          else acTables[th] = table;
          o += 17 + n;
        }
        break;
      }
      case 0xdd:
        restartInterval = u16(seg);
        break;
      case 0xe0:
        if (b[seg] === 0x4a && b[seg + 1] === 0x46 && b[seg + 2] === 0x49 && b[seg + 3] === 0x46) jfif = true;
        break;
      case 0xee:
        if (
          length >= 14 &&
          b[seg] === 0x41 &&
          b[seg + 1] === 0x64 &&
          b[seg + 2] === 0x6f &&
          b[seg + 3] === 0x62
        )
          adobe = b[seg + 11] as number;
        break;
      case 0xc0:
      case 0xc1: {
        precision = b[seg] as number;
        height = u16(seg + 1);
        width = u16(seg + 3);
        const n = b[seg + 5] as number;
        components = [];
        for (let c = 0; c < n; c++) {
          const o = seg + 6 + 3 * c;
          components.push({
            id: b[o] as number,
            h: (b[o + 1] as number) >> 4,
            v: (b[o + 1] as number) & 15,
            tq: b[o + 2] as number,
            blocksPerLine: 0,
            blocksPerColumn: 0,
            coefficients: new Int32Array(0),
            pred: 0,
            dc: undefined,
            ac: undefined,
          });
        }
        hmax = Math.max(...components.map((c) => c.h));
        vmax = Math.max(...components.map((c) => c.v));
        mcusPerLine = Math.ceil(width / (8 * hmax));
        mcusPerColumn = Math.ceil(height / (8 * vmax));
        for (const c of components) {
          c.blocksPerLine = mcusPerLine * c.h;
          c.blocksPerColumn = mcusPerColumn * c.v;
          c.coefficients = new Int32Array(c.blocksPerLine * c.blocksPerColumn * 64);
        }
        break;
      }
      case 0xda: {
        if (components.length === 0) throw new PixelCodecError('JPEG: SOS before SOF');
        const n = b[seg] as number;
        const scan: Component[] = [];
        for (let c = 0; c < n; c++) {
          const id = b[seg + 1 + 2 * c] as number;
          const t = b[seg + 2 + 2 * c] as number;
          const comp = components.find((x) => x.id === id);
          if (!comp) throw new PixelCodecError(`JPEG: scan names unknown component ${id}`);
          comp.dc = dcTables[t >> 4];
          comp.ac = acTables[t & 15];
          scan.push(comp);
        }
        i = decodeScan(b, end, scan, restartInterval, mcusPerLine, mcusPerColumn, width, height, hmax, vmax);
        continue;
      }
      default:
        if (marker >= 0xc2 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc)
          throw new PixelCodecError(
            `JPEG: SOF marker FF${marker.toString(16).toUpperCase()} is not sequential DCT Huffman`,
          );
    }
    i = end;
  }
  if (components.length === 0) throw new PixelCodecError('JPEG: no frame header');
  if (width !== m.columns || height !== m.rows || components.length !== m.samplesPerPixel)
    throw new PixelCodecError(
      `JPEG frame is ${width}x${height}x${components.length}, the pixel module says ${m.columns}x${m.rows}x${m.samplesPerPixel}`,
    );
  const planes = components.map((c) => {
    const q = quant[c.tq];
    if (!q) throw new PixelCodecError(`JPEG: quantisation table ${c.tq} is missing`);
    return idctComponent(c, q, precision);
  });
  const out = interleave(
    components,
    planes,
    width,
    height,
    hmax,
    vmax,
    precision,
    colorTransform(components, jfif, adobe, m.photometricInterpretation === 'RGB'),
  );
  return toNative(out, precision > 8 ? 2 : 1, m);
}

function decodeScan(
  b: Uint8Array,
  at: number,
  scan: Component[],
  restartInterval: number,
  mcusPerLine: number,
  mcusPerColumn: number,
  width: number,
  height: number,
  hmax: number,
  vmax: number,
): number {
  const reader = new BitReader(b, at);
  for (const c of scan) c.pred = 0;
  const single = scan.length === 1 ? scan[0] : undefined;
  // A non-interleaved scan covers the component's own blocks (A.2.2), not whole MCUs.
  const total = single
    ? Math.ceil(Math.ceil((width * single.h) / hmax) / 8) *
      Math.ceil(Math.ceil((height * single.v) / vmax) / 8)
    : mcusPerLine * mcusPerColumn;
  const singleLine = single ? Math.ceil(Math.ceil((width * single.h) / hmax) / 8) : 0;
  for (let n = 0; n < total; n++) {
    if (restartInterval > 0 && n > 0 && n % restartInterval === 0) {
      reader.restart();
      for (const c of scan) c.pred = 0;
    }
    if (single) {
      const row = Math.floor(n / singleLine);
      const col = n % singleLine;
      decodeBlock(reader, single, (row * single.blocksPerLine + col) * 64);
      continue;
    }
    const mcuRow = Math.floor(n / mcusPerLine);
    const mcuCol = n % mcusPerLine;
    for (const c of scan) {
      for (let v = 0; v < c.v; v++)
        for (let h = 0; h < c.h; h++) {
          const row = mcuRow * c.v + v;
          const col = mcuCol * c.h + h;
          decodeBlock(reader, c, (row * c.blocksPerLine + col) * 64);
        }
    }
  }
  // Continue after the entropy-coded data: at the marker that ended it.
  let i = reader.at;
  while (
    i + 1 < b.length &&
    !(b[i] === 0xff && b[i + 1] !== 0 && !((b[i + 1] as number) >= 0xd0 && (b[i + 1] as number) <= 0xd7))
  )
    i++;
  return i;
}

function decodeBlock(r: BitReader, c: Component, offset: number): void {
  if (!c.dc || !c.ac) throw new PixelCodecError('JPEG: a Huffman table of the scan is missing');
  const out = c.coefficients;
  const t = r.decode(c.dc);
  c.pred += r.receiveExtend(t);
  out[offset] = c.pred;
  for (let k = 1; k < 64; ) {
    const rs = r.decode(c.ac);
    const s = rs & 15;
    const run = rs >> 4;
    if (s === 0) {
      if (run !== 15) break;
      k += 16;
      continue;
    }
    k += run;
    if (k > 63) break;
    out[offset + (ZIGZAG[k] as number)] = r.receiveExtend(s);
    k++;
  }
}

// IJG jidctint.c constants (CONST_BITS 13).
const CONST_BITS = 13;
const F_0_298 = 2446;
const F_0_390 = 3196;
const F_0_541 = 4433;
const F_0_765 = 6270;
const F_0_899 = 7373;
const F_1_175 = 9633;
const F_1_501 = 12299;
const F_1_847 = 15137;
const F_1_961 = 16069;
const F_2_053 = 16819;
const F_2_562 = 20995;
const F_3_072 = 25172;

// Values can pass 2^31 at 12 bits (IJG computes in a C long), so this stays in exact doubles;
// multiplying by 2^-n is exact, so this is IJG's DESCALE (round, then arithmetic shift right).
const descale = (x: number, n: number): number => Math.floor((x + 2 ** (n - 1)) * 2 ** -n);

/** The inverse DCT of every block of a component (IJG islow), samples in a plane of blocksPerLine*8 columns. */
function idctComponent(c: Component, q: Int32Array, precision: number): Int32Array {
  const pass1 = precision > 8 ? 1 : 2;
  const center = 1 << (precision - 1);
  const max = (1 << precision) - 1;
  const lineWidth = c.blocksPerLine * 8;
  const plane = new Int32Array(lineWidth * c.blocksPerColumn * 8);
  const ws = new Float64Array(64);
  const coef = c.coefficients;
  const clamp = (v: number): number => Math.max(0, Math.min(max, v));
  for (let by = 0; by < c.blocksPerColumn; by++) {
    for (let bx = 0; bx < c.blocksPerLine; bx++) {
      const base = (by * c.blocksPerLine + bx) * 64;
      for (let col = 0; col < 8; col++) {
        const b = base + col;
        if (
          coef[base + 8 + col] === 0 &&
          coef[base + 16 + col] === 0 &&
          coef[base + 24 + col] === 0 &&
          coef[base + 32 + col] === 0 &&
          coef[base + 40 + col] === 0 &&
          coef[base + 48 + col] === 0 &&
          coef[base + 56 + col] === 0
        ) {
          const dc = (coef[b] as number) * (q[col] as number) * 2 ** pass1;
          for (let k = 0; k < 8; k++) ws[k * 8 + col] = dc;
          continue;
        }
        const r = oneD(
          (coef[b] as number) * (q[col] as number),
          (coef[b + 8] as number) * (q[col + 8] as number),
          (coef[b + 16] as number) * (q[col + 16] as number),
          (coef[b + 24] as number) * (q[col + 24] as number),
          (coef[b + 32] as number) * (q[col + 32] as number),
          (coef[b + 40] as number) * (q[col + 40] as number),
          (coef[b + 48] as number) * (q[col + 48] as number),
          (coef[b + 56] as number) * (q[col + 56] as number),
          CONST_BITS - pass1,
        );
        for (let k = 0; k < 8; k++) ws[k * 8 + col] = r[k] as number;
      }
      for (let row = 0; row < 8; row++) {
        const w = row * 8;
        const o = (by * 8 + row) * lineWidth + bx * 8;
        if (
          ws[w + 1] === 0 &&
          ws[w + 2] === 0 &&
          ws[w + 3] === 0 &&
          ws[w + 4] === 0 &&
          ws[w + 5] === 0 &&
          ws[w + 6] === 0 &&
          ws[w + 7] === 0
        ) {
          const v = clamp(descale(ws[w] as number, pass1 + 3) + center);
          for (let k = 0; k < 8; k++) plane[o + k] = v;
          continue;
        }
        const r = oneD(
          ws[w] as number,
          ws[w + 1] as number,
          ws[w + 2] as number,
          ws[w + 3] as number,
          ws[w + 4] as number,
          ws[w + 5] as number,
          ws[w + 6] as number,
          ws[w + 7] as number,
          CONST_BITS + pass1 + 3,
        );
        for (let k = 0; k < 8; k++) plane[o + k] = clamp((r[k] as number) + center);
      }
    }
  }
  return plane;
}

const ONE_D = new Float64Array(8);

/** One 8-point pass of the IJG islow IDCT (the Loeffler-Ligtenberg-Moschytz flow graph), descaled by `shift`. */
function oneD(
  d0: number,
  d1: number,
  d2: number,
  d3: number,
  d4: number,
  d5: number,
  d6: number,
  d7: number,
  shift: number,
): Float64Array {
  // Even part.
  let z1 = (d2 + d6) * F_0_541;
  const t2 = z1 + d6 * -F_1_847;
  const t3 = z1 + d2 * F_0_765;
  const t0 = (d0 + d4) * 2 ** CONST_BITS;
  const t1 = (d0 - d4) * 2 ** CONST_BITS;
  const t10 = t0 + t3;
  const t13 = t0 - t3;
  const t11 = t1 + t2;
  const t12 = t1 - t2;
  // Odd part.
  let o0 = d7;
  let o1 = d5;
  let o2 = d3;
  let o3 = d1;
  z1 = o0 + o3;
  let z2 = o1 + o2;
  let z3 = o0 + o2;
  let z4 = o1 + o3;
  const z5 = (z3 + z4) * F_1_175;
  o0 *= F_0_298;
  o1 *= F_2_053;
  o2 *= F_3_072;
  o3 *= F_1_501;
  z1 *= -F_0_899;
  z2 *= -F_2_562;
  z3 = z3 * -F_1_961 + z5;
  z4 = z4 * -F_0_390 + z5;
  o0 += z1 + z3;
  o1 += z2 + z4;
  o2 += z2 + z3;
  o3 += z1 + z4;
  const r = ONE_D;
  r[0] = descale(t10 + o3, shift);
  r[7] = descale(t10 - o3, shift);
  r[1] = descale(t11 + o2, shift);
  r[6] = descale(t11 - o2, shift);
  r[2] = descale(t12 + o1, shift);
  r[5] = descale(t12 - o1, shift);
  r[3] = descale(t13 + o0, shift);
  r[4] = descale(t13 - o0, shift);
  return r;
}

/**
 * IJG's choice of colour space (jdapimin.c default_decompress_parms) for 3 components: YCbCr or
 * not; without JFIF or valid Adobe marker and with IDs other than 1,2,3, a data set saying RGB wins.
 */
function colorTransform(
  components: readonly Component[],
  jfif: boolean,
  adobe: number,
  rgb: boolean,
): boolean {
  if (components.length !== 3) return false;
  if (jfif) return true;
  if (adobe === 0 || adobe === 1) return adobe === 1;
  const [a, b, c] = components.map((x) => x.id);
  if (a === 1 && b === 2 && c === 3) return true;
  if (adobe >= 0) return !rgb;
  return !rgb && !(a === 0x52 && b === 0x47 && c === 0x42);
}

/** Samples of all components, upsampled by replication, interleaved by pixel, as 1- or 2-byte little-endian values. */
function interleave(
  components: readonly Component[],
  planes: readonly Int32Array[],
  width: number,
  height: number,
  hmax: number,
  vmax: number,
  precision: number,
  ycc: boolean,
): Uint8Array {
  const n = components.length;
  const bytes = precision > 8 ? 2 : 1;
  const out = new Uint8Array(width * height * n * bytes);
  if (n === 1) {
    // Grey: rows of the plane, cropped to the image width.
    const plane = planes[0] as Int32Array;
    const stride = (components[0] as Component).blocksPerLine * 8;
    for (let y = 0; y < height; y++) {
      const from = y * stride;
      const to = y * width;
      if (bytes === 1) for (let x = 0; x < width; x++) out[to + x] = plane[from + x] as number;
      else
        for (let x = 0; x < width; x++) {
          const v = plane[from + x] as number;
          out[2 * (to + x)] = v & 0xff;
          out[2 * (to + x) + 1] = v >> 8;
        }
    }
    return out;
  }
  const max = (1 << precision) - 1;
  const center = 1 << (precision - 1);
  const sample = (c: number, x: number, y: number): number => {
    const comp = components[c] as Component;
    const sx = Math.floor((x * comp.h) / hmax);
    const sy = Math.floor((y * comp.v) / vmax);
    return (planes[c] as Int32Array)[sy * comp.blocksPerLine * 8 + sx] as number;
  };
  const put = (index: number, v: number): void => {
    if (bytes === 2) {
      out[2 * index] = v & 0xff;
      out[2 * index + 1] = v >> 8;
    } else out[index] = v;
  };
  const clamp = (v: number): number => Math.max(0, Math.min(max, v));
  // IJG jdcolor.c: 16-bit fixed point, ONE_HALF rounding.
  const fix = (v: number): number => Math.floor(v * 65536 + 0.5);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * width + x;
      if (!ycc) {
        for (let c = 0; c < n; c++) put(p * n + c, sample(c, x, y));
        continue;
      }
      const Y = sample(0, x, y);
      const cb = sample(1, x, y) - center;
      const cr = sample(2, x, y) - center;
      put(p * 3, clamp(Y + ((fix(1.402) * cr + 32768) >> 16)));
      put(p * 3 + 1, clamp(Y + ((-fix(0.34414) * cb + -fix(0.71414) * cr + 32768) >> 16)));
      put(p * 3 + 2, clamp(Y + ((fix(1.772) * cb + 32768) >> 16)));
    }
  }
  return out;
}
