/**
 * Rendering one native frame to 8-bit grey or RGB (PS3.3 C.11, the grayscale pipeline of PS3.4
 * N.2): stored values (masked to Bits Stored below High Bit, sign extended) -> Modality LUT
 * (Rescale Slope/Intercept or the Modality LUT Sequence, C.11.1) -> VOI LUT (Window Center/Width
 * with the VOI LUT Function of C.11.2.1.2, or the VOI LUT Sequence; with neither, the frame's
 * own min..max) -> inverted for MONOCHROME1 or Presentation LUT Shape INVERSE. Colour data (RGB,
 * YBR_FULL, YBR_FULL_422, PALETTE COLOR) is converted to RGB and skips the grey pipeline.
 *
 * Split in two so that the heavy half runs in a worker: renderParameters() reads what it needs
 * from the data set into plain data (structured-clone safe), renderFrame() is pure arithmetic on
 * the frame's bytes (little endian).
 */
import type { DataSet } from '../dataset.js';
import { TAG } from '../dictionary.js';
import { type FrameInfo, PixelDataError } from './frame.js';

/** An 8-bit image: `channels` samples per pixel, interleaved, rows top to bottom. */
export interface Image {
  readonly width: number;
  readonly height: number;
  readonly channels: 1 | 3;
  readonly data: Uint8Array;
}

/** The VOI LUT Functions of PS3.3 C.11.2.1.3. */
export type VoiFunction = 'LINEAR' | 'LINEAR_EXACT' | 'SIGMOID';

/** A window (PS3.3 C.11.2.1.2): center and width in modality units. */
export interface Window {
  readonly center: number;
  readonly width: number;
  readonly function: VoiFunction;
}

/** A lookup table (PS3.3 C.11.1.1.1): first mapped input value, output bits, the entries. */
export interface Lut {
  readonly firstMapped: number;
  readonly bits: number;
  readonly data: readonly number[] | Uint16Array | Uint8Array;
}

/** Everything renderFrame needs besides the bytes: plain data, safe to post to a worker. */
export interface RenderParameters {
  readonly info: FrameInfo;
  readonly modality: { readonly slope: number; readonly intercept: number } | { readonly lut: Lut };
  /** From the data set: its first window, or its first VOI LUT; none: min..max of the frame. */
  readonly voi: { readonly window: Window } | { readonly lut: Lut } | undefined;
  readonly invert: boolean;
  readonly palette: { readonly red: Lut; readonly green: Lut; readonly blue: Lut } | undefined;
}

function bad(reason: string): never {
  throw new PixelDataError('ERR_PIXEL_MODULE', reason);
}

/** A LUT of a descriptor (US or SS, 3 values) and data (OW, or 8-bit entries packed in OB/OW). */
function lutOf(
  descriptor: readonly number[],
  data: Uint8Array | undefined,
  what: string,
  signedFirst: boolean,
): Lut {
  if (descriptor.length !== 3 || data === undefined) bad(`${what}: descriptor or data missing`);
  const [n0, first0, bits] = descriptor as [number, number, number];
  // PS3.3 C.11.1.1.1: 0 entries means 2^16; the first mapped value is SS when pixels are signed.
  const entries = n0 === 0 ? 65536 : n0;
  const first = signedFirst && first0 > 32767 ? first0 - 65536 : first0;
  if (bits < 1 || bits > 16) bad(`${what}: ${bits} bits per entry`);
  let values: Uint16Array | Uint8Array;
  if (bits <= 8 && data.length === entries) values = data.slice();
  else {
    if (data.length < entries * 2) bad(`${what}: ${entries} entries declared, ${data.length} bytes of data`);
    values = new Uint16Array(entries);
    for (let i = 0; i < entries; i++)
      values[i] = (data[2 * i] as number) | ((data[2 * i + 1] as number) << 8);
    if (bits <= 8) for (let i = 0; i < entries; i++) values[i] = (values[i] as number) & 0xff;
  }
  return { firstMapped: first, bits, data: values };
}

function functionOf(text: string | undefined): VoiFunction {
  const t = (text ?? 'LINEAR').trim().toUpperCase();
  if (t === 'LINEAR' || t === 'LINEAR_EXACT' || t === 'SIGMOID') return t;
  return 'LINEAR'; // PS3.3 C.11.2.1.3: an unknown function is not ours to invent; LINEAR is the default
}

/** Reads the LUT attributes of a data set (PS3.3 C.11, C.7.6.3.1.5, C.7.6.3.1.6). */
export function renderParameters(ds: DataSet, info: FrameInfo): RenderParameters {
  const signed = info.pixelRepresentation === 1;
  let modality: RenderParameters['modality'] = { slope: 1, intercept: 0 };
  const mlut = ds.sequence(TAG.ModalityLUTSequence)?.[0];
  if (mlut !== undefined) {
    modality = {
      lut: lutOf(mlut.numbers(TAG.LUTDescriptor), mlut.bytes(TAG.LUTData), 'Modality LUT', signed),
    };
  } else {
    const slope = ds.number(TAG.RescaleSlope) ?? 1;
    const intercept = ds.number(TAG.RescaleIntercept) ?? 0;
    if (!Number.isFinite(slope) || !Number.isFinite(intercept) || slope === 0)
      bad(`Rescale Slope ${slope} / Intercept ${intercept} are not usable`);
    modality = { slope, intercept };
  }
  let voi: RenderParameters['voi'];
  const centers = ds.numbers(TAG.WindowCenter);
  const widths = ds.numbers(TAG.WindowWidth);
  const vlut = ds.sequence(TAG.VOILUTSequence)?.[0];
  const center = centers[0];
  const width = widths[0];
  const fn = functionOf(ds.string(TAG.VOILUTFunction));
  if (
    center !== undefined &&
    width !== undefined &&
    Number.isFinite(center) &&
    width >= (fn === 'LINEAR' ? 1 : Number.MIN_VALUE)
  )
    voi = { window: { center, width, function: fn } };
  else if (vlut !== undefined) {
    // The LUT input is the modality output: signed when the modality LUT does not make it positive.
    voi = { lut: lutOf(vlut.numbers(TAG.LUTDescriptor), vlut.bytes(TAG.LUTData), 'VOI LUT', signed) };
  }
  const shape = ds.string(TAG.PresentationLUTShape)?.trim().toUpperCase();
  const invert = info.photometric === 'MONOCHROME1' || shape === 'INVERSE';
  let palette: RenderParameters['palette'];
  if (info.photometric === 'PALETTE COLOR') {
    if (ds.has(TAG.SegmentedRedPaletteColorLookupTableData))
      throw new PixelDataError(
        'ERR_PIXEL_UNSUPPORTED',
        'segmented palette colour lookup tables are not rendered',
      );
    palette = {
      red: lutOf(
        ds.numbers(TAG.RedPaletteColorLookupTableDescriptor),
        ds.bytes(TAG.RedPaletteColorLookupTableData),
        'Red Palette Color LUT',
        signed,
      ),
      green: lutOf(
        ds.numbers(TAG.GreenPaletteColorLookupTableDescriptor),
        ds.bytes(TAG.GreenPaletteColorLookupTableData),
        'Green Palette Color LUT',
        signed,
      ),
      blue: lutOf(
        ds.numbers(TAG.BluePaletteColorLookupTableDescriptor),
        ds.bytes(TAG.BluePaletteColorLookupTableData),
        'Blue Palette Color LUT',
        signed,
      ),
    };
  }
  return { info, modality, voi, invert, palette };
}

/** PS3.3 C.11.2.1.2: a window's output 0..255 for modality value x (not rounded). */
export function applyWindow(w: Window, x: number): number {
  const c = w.center;
  const width = w.width;
  if (w.function === 'SIGMOID') return 255 / (1 + Math.exp((-4 * (x - c)) / width));
  if (w.function === 'LINEAR_EXACT') {
    if (x <= c - width / 2) return 0;
    if (x > c + width / 2) return 255;
    return ((x - c) / width + 0.5) * 255;
  }
  // LINEAR (C.11.2.1.2.1), width >= 1; width 1 is a threshold at c - 0.5.
  if (x <= c - 0.5 - (width - 1) / 2) return 0;
  if (x > c - 0.5 + (width - 1) / 2) return 255;
  return ((x - (c - 0.5)) / (width - 1) + 0.5) * 255;
}

function lutLookup(lut: Lut, x: number): number {
  const n = lut.data.length;
  let i = Math.round(x) - lut.firstMapped;
  if (i < 0) i = 0;
  else if (i >= n) i = n - 1;
  return lut.data[i] as number;
}

/** Reads the stored values of `count` samples (masked, sign extended) from little-endian bytes. */
export function storedValues(
  info: FrameInfo,
  bytes: Uint8Array,
  bitOffset: number,
  count: number,
): Float64Array | Int32Array {
  const shift = info.highBit + 1 - info.bitsStored;
  const pow = 2 ** info.bitsStored;
  const signed = info.pixelRepresentation === 1;
  const need = Math.ceil((bitOffset + count * info.bitsAllocated) / 8);
  if (bytes.length < need) bad(`the frame has ${bytes.length} bytes, ${need} are needed`);
  if (info.bitsAllocated === 1) {
    const out = new Int32Array(count);
    // PS3.5 8.1.1 / D.1: bit-packed, the first pixel in the least significant bit.
    for (let i = 0; i < count; i++) {
      const b = bitOffset + i;
      out[i] = ((bytes[b >> 3] as number) >> (b & 7)) & 1;
    }
    return out;
  }
  if (info.bitsAllocated === 32) {
    const out = new Float64Array(count);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < count; i++) {
      let v = Math.floor(view.getUint32(4 * i, true) / 2 ** shift) % pow;
      if (signed && v >= pow / 2) v -= pow;
      out[i] = v;
    }
    return out;
  }
  const out = new Int32Array(count);
  const mask = pow - 1;
  const half = pow / 2;
  if (info.bitsAllocated === 8) {
    for (let i = 0; i < count; i++) {
      let v = ((bytes[i] as number) >> shift) & mask;
      if (signed && v >= half) v -= pow;
      out[i] = v;
    }
  } else {
    for (let i = 0; i < count; i++) {
      let v = (((bytes[2 * i] as number) | ((bytes[2 * i + 1] as number) << 8)) >> shift) & mask;
      if (signed && v >= half) v -= pow;
      out[i] = v;
    }
  }
  return out;
}

function modalityOf(p: RenderParameters): (v: number) => number {
  const m = p.modality;
  if ('lut' in m) return (v) => lutLookup(m.lut, v);
  const { slope, intercept } = m;
  return (v) => v * slope + intercept;
}

function clampByte(v: number): number {
  return v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
}

function renderGrey(
  p: RenderParameters,
  stored: Float64Array | Int32Array,
  override: Window | undefined,
): Uint8Array {
  const modality = modalityOf(p);
  const out = new Uint8Array(stored.length);
  const n = stored.length;
  // The stored range of this frame: the tables below cover only it (a CT frame uses ~2000 of 65536 values).
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    const v = stored[i] as number;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (n === 0) return out;
  // Stored values spanning at most 2^20 go through one table: each distinct value computed once.
  const tabled = hi - lo < 1 << 20;
  let tableMod: Float64Array | undefined;
  if (tabled) {
    tableMod = new Float64Array(hi - lo + 1);
    for (let i = 0; i < tableMod.length; i++) tableMod[i] = modality(i + lo);
  }
  const mod = (v: number): number => (tableMod ? (tableMod[v - lo] as number) : modality(v));
  let voi: (x: number) => number;
  const source = override !== undefined ? { window: override } : p.voi;
  if (source !== undefined && 'window' in source) {
    const w = source.window;
    voi = (x) => applyWindow(w, x);
  } else if (source !== undefined) {
    const lut = source.lut;
    const scale = 255 / (2 ** lut.bits - 1);
    voi = (x) => lutLookup(lut, x) * scale;
  } else {
    // No VOI in the data set: the frame's modality range maps to 0..255.
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < n; i++) {
      const m = mod(stored[i] as number);
      if (m < min) min = m;
      if (m > max) max = m;
    }
    const range = max - min;
    voi = range > 0 ? (x) => ((x - min) / range) * 255 : () => 0;
  }
  const final = (v: number): number => {
    const y = clampByte(voi(mod(v)));
    return p.invert ? 255 - y : y;
  };
  if (tabled) {
    const table = new Uint8Array(hi - lo + 1);
    for (let i = 0; i < table.length; i++) table[i] = final(i + lo);
    for (let i = 0; i < n; i++) out[i] = table[(stored[i] as number) - lo] as number;
  } else for (let i = 0; i < n; i++) out[i] = final(stored[i] as number);
  return out;
}

function to8(p: RenderParameters): (v: number) => number {
  const max = 2 ** p.info.bitsStored - 1;
  return max === 255 ? (v) => v : (v) => Math.round((v * 255) / max);
}

function renderColour(p: RenderParameters, bytes: Uint8Array, bitOffset: number): Uint8Array {
  const { rows, columns, photometric, planarConfiguration } = p.info;
  const pixels = rows * columns;
  const out = new Uint8Array(pixels * 3);
  const scale = to8(p);
  if (photometric === 'YBR_FULL_422') {
    const pairs = Math.ceil(columns / 2);
    const s = storedValues(p.info, bytes, bitOffset, rows * pairs * 4);
    for (let y = 0; y < rows; y++)
      for (let x = 0; x < columns; x++) {
        const base = (y * pairs + (x >> 1)) * 4;
        const yy = scale(s[base + (x & 1)] as number);
        const cb = scale(s[base + 2] as number) - 128;
        const cr = scale(s[base + 3] as number) - 128;
        writeYbr(out, (y * columns + x) * 3, yy, cb, cr);
      }
    return out;
  }
  const s = storedValues(p.info, bytes, bitOffset, pixels * 3);
  const at = (i: number, c: number): number =>
    scale((planarConfiguration === 0 ? s[i * 3 + c] : s[c * pixels + i]) as number);
  if (photometric === 'RGB') {
    for (let i = 0; i < pixels; i++) {
      out[i * 3] = at(i, 0);
      out[i * 3 + 1] = at(i, 1);
      out[i * 3 + 2] = at(i, 2);
    }
  } else for (let i = 0; i < pixels; i++) writeYbr(out, i * 3, at(i, 0), at(i, 1) - 128, at(i, 2) - 128);
  return out;
}

/** PS3.3 C.7.6.3.1.2: YBR_FULL to RGB (the inverse of the ITU-R BT.601 full-range matrix given there). */
function writeYbr(out: Uint8Array, o: number, y: number, cb: number, cr: number): void {
  out[o] = clampByte(y + 1.402 * cr);
  out[o + 1] = clampByte(y - 0.344136 * cb - 0.714136 * cr);
  out[o + 2] = clampByte(y + 1.772 * cb);
}

function renderPalette(p: RenderParameters, bytes: Uint8Array, bitOffset: number): Uint8Array {
  const pal = p.palette;
  if (pal === undefined) bad('PALETTE COLOR without palette tables');
  const pixels = p.info.rows * p.info.columns;
  const s = storedValues(p.info, bytes, bitOffset, pixels);
  const out = new Uint8Array(pixels * 3);
  const luts = [pal.red, pal.green, pal.blue];
  for (let c = 0; c < 3; c++) {
    const lut = luts[c] as Lut;
    const scale = 255 / (2 ** lut.bits - 1);
    for (let i = 0; i < pixels; i++) out[i * 3 + c] = Math.round(lutLookup(lut, s[i] as number) * scale);
  }
  return out;
}

/**
 * Renders one frame: `bytes` from the frame's first byte (little endian), the first pixel at
 * `bitOffset` (1-bit data). `window` overrides the data set's VOI (grey images only; colour
 * images ignore it, PS3.18 8.3.5.1.3 defines windowing on the grey pipeline).
 */
export function renderFrame(p: RenderParameters, bytes: Uint8Array, bitOffset = 0, window?: Window): Image {
  const { rows, columns, photometric } = p.info;
  if (photometric === 'MONOCHROME1' || photometric === 'MONOCHROME2') {
    const stored = storedValues(p.info, bytes, bitOffset, rows * columns);
    return { width: columns, height: rows, channels: 1, data: renderGrey(p, stored, window) };
  }
  if (photometric === 'PALETTE COLOR')
    return { width: columns, height: rows, channels: 3, data: renderPalette(p, bytes, bitOffset) };
  return { width: columns, height: rows, channels: 3, data: renderColour(p, bytes, bitOffset) };
}
