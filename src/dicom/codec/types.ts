/**
 * The pixel codec interface (issue 13): one small contract for every compressed transfer syntax.
 * A codec decodes one encoded frame into native little-endian frame bytes and, when it can,
 * encodes one native frame. Codecs are pure (bytes in, bytes out, no I/O) so they can run in a
 * worker thread; they are async because the WASM ones initialise asynchronously once.
 */
import { PacsError } from '../../core/errors.js';
import type { DataSet } from '../dataset.js';
import { TAG } from '../dictionary.js';

/** The Image Pixel module attributes a codec needs (PS3.3 C.7.6.3). */
export interface PixelModule {
  readonly rows: number;
  readonly columns: number;
  readonly samplesPerPixel: number;
  readonly bitsAllocated: number;
  readonly bitsStored: number;
  readonly highBit: number;
  /** 0 unsigned, 1 two's complement. */
  readonly pixelRepresentation: number;
  readonly photometricInterpretation: string;
  /** 0 colour-by-pixel (RGBRGB...), 1 colour-by-plane (RR..GG..BB..). */
  readonly planarConfiguration: number;
  readonly numberOfFrames: number;
}

/** A decoded frame: native little-endian bytes and how they are laid out after decoding. */
export interface DecodedFrame {
  readonly pixels: Uint8Array;
  /** The photometric interpretation of `pixels` (a JPEG decoder may have converted YBR to RGB). */
  readonly photometricInterpretation: string;
  readonly planarConfiguration: number;
}

/** An encoded frame and the photometric interpretation the data set must then carry (PS3.5 8.2). */
export interface EncodedFrame {
  readonly bytes: Uint8Array;
  readonly photometricInterpretation: string;
}

/** Options of an encode; each codec uses those that apply to it. */
export interface EncodeOptions {
  /** JPEG-LS NEAR (0 = lossless, the default). */
  readonly nearLossless?: number;
  /** JPEG baseline quality 1..100 (default 90). */
  readonly quality?: number;
}

/** One codec: the transfer syntaxes it handles, a frame decoder, and an encoder when it has one. */
export interface PixelCodec {
  readonly name: string;
  readonly transferSyntaxUids: readonly string[];
  /** True when encodeFrame exists for every syntax of transferSyntaxUids. */
  readonly canEncode: boolean;
  /** Decodes one frame (all its fragments concatenated) into native little-endian bytes. */
  decodeFrame(encoded: Uint8Array, module: PixelModule): Promise<DecodedFrame>;
  /** Encodes one native little-endian frame laid out as `module` says. */
  encodeFrame?(native: Uint8Array, module: PixelModule, options?: EncodeOptions): Promise<EncodedFrame>;
}

/** A frame that cannot be decoded or encoded (corrupt data, unsupported parameters). */
export class PixelCodecError extends PacsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_PIXEL_CODEC', message, options);
  }
}

/** The pixel module of a data set, with the defaults PS3.3 C.7.6.3 implies for absent optional attributes. */
export function pixelModuleOf(ds: DataSet): PixelModule {
  const rows = ds.number(TAG.Rows);
  const columns = ds.number(TAG.Columns);
  const bitsAllocated = ds.number(TAG.BitsAllocated);
  if (rows === undefined || columns === undefined || bitsAllocated === undefined)
    throw new PixelCodecError('Rows, Columns and Bits Allocated are required to read pixel data');
  const bitsStored = ds.number(TAG.BitsStored) ?? bitsAllocated;
  return {
    rows,
    columns,
    samplesPerPixel: ds.number(TAG.SamplesPerPixel) ?? 1,
    bitsAllocated,
    bitsStored,
    highBit: ds.number(TAG.HighBit) ?? bitsStored - 1,
    pixelRepresentation: ds.number(TAG.PixelRepresentation) ?? 0,
    photometricInterpretation: ds.string(TAG.PhotometricInterpretation) ?? 'MONOCHROME2',
    planarConfiguration: ds.number(TAG.PlanarConfiguration) ?? 0,
    numberOfFrames: ds.number(TAG.NumberOfFrames) ?? 1,
  };
}

/** Bytes of one native frame (PS3.5 8.1.1; Bits Allocated 1 is packed). */
export function nativeFrameLength(m: PixelModule): number {
  const samples = m.rows * m.columns * m.samplesPerPixel;
  return m.bitsAllocated === 1 ? Math.ceil(samples / 8) : samples * (m.bitsAllocated >> 3);
}

/** Interleaves planar samples (RR..GG..BB..) into colour-by-pixel order; `bytes` per sample. */
export function planarToInterleaved(
  src: Uint8Array,
  samples: number,
  pixels: number,
  bytes: number,
): Uint8Array {
  const out = new Uint8Array(src.length);
  for (let s = 0; s < samples; s++) {
    const plane = s * pixels * bytes;
    for (let p = 0; p < pixels; p++) {
      const from = plane + p * bytes;
      const to = (p * samples + s) * bytes;
      for (let b = 0; b < bytes; b++) out[to + b] = src[from + b] as number;
    }
  }
  return out;
}

/** Splits colour-by-pixel samples into planes (the inverse of planarToInterleaved). */
export function interleavedToPlanar(
  src: Uint8Array,
  samples: number,
  pixels: number,
  bytes: number,
): Uint8Array {
  const out = new Uint8Array(src.length);
  for (let s = 0; s < samples; s++) {
    const plane = s * pixels * bytes;
    for (let p = 0; p < pixels; p++) {
      const from = (p * samples + s) * bytes;
      const to = plane + p * bytes;
      for (let b = 0; b < bytes; b++) out[to + b] = src[from + b] as number;
    }
  }
  return out;
}
