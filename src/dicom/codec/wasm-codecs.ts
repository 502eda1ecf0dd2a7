/**
 * The codecs built on the Cornerstone WASM packages: JPEG baseline 8-bit (libjpeg-turbo),
 * JPEG-LS (CharLS), JPEG 2000 (OpenJPEG) and HTJ2K (OpenJPH).
 */
import { UID } from '../uid.js';
import { fromNative, toNative } from './samples.js';
import {
  type DecodedFrame,
  type EncodedFrame,
  type EncodeOptions,
  type PixelCodec,
  PixelCodecError,
  type PixelModule,
  planarToInterleaved,
} from './types.js';
import {
  loadWasmModule,
  newDecoder,
  newEncoder,
  runDecoder,
  runEncoder,
  type WasmFrameInfo,
  wasmErrorMessage,
} from './wasm.js';

const LIBJPEG_TURBO = '@cornerstonejs/codec-libjpeg-turbo-8bit/wasmjs';
const CHARLS = '@cornerstonejs/codec-charls/wasmjs';
const OPENJPEG = '@cornerstonejs/codec-openjpeg/wasmjs';
const OPENJPH = '@cornerstonejs/codec-openjph/wasmjs';

async function decodeWith(
  specifier: string,
  ctor: string,
  what: string,
  encoded: Uint8Array,
): Promise<{ info: WasmFrameInfo; pixels: Uint8Array; interleave: number }> {
  const mod = await loadWasmModule(specifier);
  try {
    return runDecoder(newDecoder(mod, ctor), encoded);
  } catch (e) {
    throw new PixelCodecError(`${what} decode failed: ${wasmErrorMessage(e)}`, { cause: e });
  }
}

function checkSize(info: WasmFrameInfo, m: PixelModule, what: string): void {
  if (info.width !== m.columns || info.height !== m.rows || info.componentCount !== m.samplesPerPixel)
    throw new PixelCodecError(
      `${what} frame is ${info.width}x${info.height}x${info.componentCount}, the pixel module says ${m.columns}x${m.rows}x${m.samplesPerPixel}`,
    );
}

/** The smallest image (rows x columns x samples) the libjpeg-turbo build can encode safely. */
export const JPEG_MIN_SAMPLES = 4096;

// Wavelet levels: 5 (the libraries' default) or fewer for a small image (each level halves it).
const levels = (m: PixelModule): number =>
  Math.max(0, Math.min(5, Math.floor(Math.log2(Math.min(m.rows, m.columns))) - 1));

const bytesOf = (bits: number): number => (bits <= 8 ? 1 : 2);

/** JPEG baseline (process 1) and 8-bit extended (process 2) through libjpeg-turbo; colour comes out RGB. */
export const jpegBaselineCodec: PixelCodec = {
  name: 'jpeg-baseline (libjpeg-turbo)',
  transferSyntaxUids: [UID.JPEGBaseline8Bit],
  canEncode: true,
  async decodeFrame(encoded: Uint8Array, m: PixelModule): Promise<DecodedFrame> {
    const stream = m.photometricInterpretation === 'RGB' ? markedRgb(encoded) : encoded;
    const { info, pixels } = await decodeWith(LIBJPEG_TURBO, 'JPEGDecoder', 'JPEG', stream);
    checkSize(info, m, 'JPEG');
    return {
      pixels: toNative(pixels, 1, m),
      // libjpeg converts YCbCr to RGB (PS3.5 8.2.1: the JPEG stream's colour space governs).
      photometricInterpretation: m.samplesPerPixel === 3 ? 'RGB' : m.photometricInterpretation,
      planarConfiguration: 0,
    };
  },
  async encodeFrame(native: Uint8Array, m: PixelModule, options: EncodeOptions = {}): Promise<EncodedFrame> {
    if (m.bitsStored > 8 || (m.samplesPerPixel !== 1 && m.samplesPerPixel !== 3))
      throw new PixelCodecError('JPEG baseline encodes 8-bit grey or RGB only');
    if (m.samplesPerPixel === 3 && m.photometricInterpretation !== 'RGB')
      throw new PixelCodecError(`JPEG baseline encodes RGB, not ${m.photometricInterpretation}`);
    // The build writes into a buffer as large as the input, without growing it: headers alone
    // (about 600 bytes) overflow a tiny image's.
    if (m.rows * m.columns * m.samplesPerPixel < JPEG_MIN_SAMPLES)
      throw new PixelCodecError(`JPEG baseline encodes images of at least ${JPEG_MIN_SAMPLES} samples here`);
    const mod = await loadWasmModule(LIBJPEG_TURBO);
    const encoder = newEncoder(mod, 'JPEGEncoder');
    encoder.setProgressive?.(0); // PS3.5 A.4.1: process 1 is sequential
    encoder.setQuality?.(options.quality ?? 90);
    encoder.setSubSampling?.(0); // TJSAMP_444
    const src = fromNative(interleaved(native, m), 1, m, false);
    try {
      const bytes = runEncoder(
        encoder,
        {
          width: m.columns,
          height: m.rows,
          bitsPerSample: 8,
          componentCount: m.samplesPerPixel,
          isSigned: false,
        },
        src,
      );
      return {
        bytes,
        photometricInterpretation: m.samplesPerPixel === 3 ? 'YBR_FULL' : m.photometricInterpretation,
      };
    } catch (e) {
      throw new PixelCodecError(`JPEG encode failed: ${wasmErrorMessage(e)}`, { cause: e });
    }
  },
};

/**
 * libjpeg guesses the colour space of a stream without a JFIF or a valid Adobe marker from its
 * component IDs: 'R','G','B' mean RGB, anything else YCbCr (an Adobe transform other than 0 or 1
 * means YCbCr too). When such a stream's IDs are not the usual 1,2,3 of YCbCr and the data set
 * says RGB, believe the data set (as DCMTK and GDCM do): a copy of the stream gets the IDs
 * 'R','G','B' in its frame and scan headers (and Adobe transform 0), so libjpeg does not convert.
 */
function markedRgb(b: Uint8Array): Uint8Array {
  let sof = -1;
  let adobe = -1;
  const sos: number[] = [];
  for (let i = 2; i + 4 <= b.length; ) {
    if (b[i] !== 0xff) return b;
    const marker = b[i + 1] as number;
    const length = ((b[i + 2] as number) << 8) | (b[i + 3] as number);
    if (marker === 0xe0 && b[i + 4] === 0x4a && b[i + 5] === 0x46) return b; // JFIF: YCbCr
    // libjpeg (jdmarker.c examine_app14) ignores an Adobe segment shorter than 12 data bytes.
    if (marker === 0xee && length >= 14 && b[i + 4] === 0x41 && b[i + 5] === 0x64) {
      if (b[i + 15] === 0 || b[i + 15] === 1) return b; // a valid Adobe transform flag decides
      adobe = i + 15;
    }
    if (marker === 0xc0 || marker === 0xc1) sof = i + 4;
    if (marker === 0xda) {
      sos.push(i + 4);
      break;
    }
    i += 2 + length;
  }
  if (sof < 0 || b[sof + 5] !== 3) return b;
  const ids = [b[sof + 6], b[sof + 9], b[sof + 12]];
  if (ids[0] === 1 && ids[1] === 2 && ids[2] === 3) return b;
  const out = b.slice();
  const rgb = [0x52, 0x47, 0x42];
  if (adobe >= 0) out[adobe] = 0;
  for (let c = 0; c < 3; c++) out[sof + 6 + 3 * c] = rgb[c] as number;
  for (const s of sos) {
    const n = out[s] as number;
    for (let c = 0; c < n; c++) {
      const k = ids.indexOf(out[s + 1 + 2 * c]);
      if (k >= 0) out[s + 1 + 2 * c] = rgb[k] as number;
    }
  }
  return out;
}

function interleaved(native: Uint8Array, m: PixelModule): Uint8Array {
  return m.samplesPerPixel > 1 && m.planarConfiguration === 1
    ? planarToInterleaved(native, m.samplesPerPixel, m.rows * m.columns, m.bitsAllocated >> 3)
    : native;
}

/** JPEG-LS lossless and near-lossless (PS3.5 A.4.3) through CharLS. */
export const jpegLsCodec: PixelCodec = {
  name: 'jpeg-ls (charls)',
  transferSyntaxUids: [UID.JPEGLSLossless, UID.JPEGLSNearLossless],
  canEncode: true,
  async decodeFrame(encoded: Uint8Array, m: PixelModule): Promise<DecodedFrame> {
    const { info, pixels, interleave } = await decodeWith(CHARLS, 'JpegLSDecoder', 'JPEG-LS', encoded);
    checkSize(info, m, 'JPEG-LS');
    const bytes = bytesOf(info.bitsPerSample);
    const ordered =
      info.componentCount > 1 && interleave === 0
        ? planarToInterleaved(pixels, info.componentCount, info.width * info.height, bytes)
        : pixels;
    return {
      pixels: toNative(ordered, bytes, m),
      photometricInterpretation: m.photometricInterpretation,
      planarConfiguration: 0,
    };
  },
  async encodeFrame(native: Uint8Array, m: PixelModule, options: EncodeOptions = {}): Promise<EncodedFrame> {
    if (m.bitsStored > 16) throw new PixelCodecError('JPEG-LS encodes at most 16 bits per sample');
    const mod = await loadWasmModule(CHARLS);
    const encoder = newEncoder(mod, 'JpegLSEncoder');
    encoder.setNearLossless?.(options.nearLossless ?? 0);
    if (m.samplesPerPixel > 1) encoder.setInterleaveMode?.(2); // sample-interleaved, as the frame is
    const bytes = bytesOf(m.bitsStored);
    // PS3.5 A.4.3: signed samples are encoded as their Bits Stored bits, as if unsigned.
    const src = fromNative(interleaved(native, m), bytes, m, false);
    try {
      const info = {
        width: m.columns,
        height: m.rows,
        bitsPerSample: m.bitsStored,
        componentCount: m.samplesPerPixel,
      };
      return {
        bytes: runEncoder(encoder, info, src),
        photometricInterpretation: m.photometricInterpretation,
      };
    } catch (e) {
      throw new PixelCodecError(`JPEG-LS encode failed: ${wasmErrorMessage(e)}`, { cause: e });
    }
  },
};

// PS3.5 8.2.4: with a multi-component transform the stream holds YBR_RCT / YBR_ICT, decoded back to RGB.
function afterJ2kDecode(m: PixelModule): string {
  return m.photometricInterpretation === 'YBR_RCT' || m.photometricInterpretation === 'YBR_ICT'
    ? 'RGB'
    : m.photometricInterpretation;
}

/** What differs between the two JPEG 2000 families' WASM builds. */
interface WaveletBuild {
  readonly name: string;
  /** In messages: 'JPEG 2000', 'HTJ2K'. */
  readonly label: string;
  readonly transferSyntaxUids: readonly string[];
  /** The WASM package, and its library's name in messages. */
  readonly module: string;
  readonly library: string;
  readonly decoderClass: string;
  readonly encoderClass: string;
  /**
   * OpenJPEG applies the reversible colour transform to 3 components (PS3.5 8.2.4 names the result
   * YBR_RCT); OpenJPH is told not to, and the data keeps its photometric interpretation.
   */
  readonly colourTransform: boolean;
}

/** A JPEG 2000 family codec (decode; lossless encode) over one WASM build. */
function waveletCodec(build: WaveletBuild): PixelCodec {
  const { label } = build;
  return {
    name: build.name,
    transferSyntaxUids: build.transferSyntaxUids,
    canEncode: true,
    async decodeFrame(encoded: Uint8Array, m: PixelModule): Promise<DecodedFrame> {
      const { info, pixels } = await decodeWith(build.module, build.decoderClass, label, encoded);
      checkSize(info, m, label);
      return {
        pixels: toNative(pixels, bytesOf(info.bitsPerSample), m),
        photometricInterpretation: afterJ2kDecode(m),
        planarConfiguration: 0,
      };
    },
    async encodeFrame(native: Uint8Array, m: PixelModule): Promise<EncodedFrame> {
      if (m.bitsStored > 16) throw new PixelCodecError(`${label} encodes at most 16 bits per sample here`);
      if (m.samplesPerPixel > 1 && m.bitsStored > 8)
        throw new PixelCodecError(`the ${build.library} build encodes colour at 8 bits per sample only`);
      const mod = await loadWasmModule(build.module);
      const encoder = newEncoder(mod, build.encoderClass);
      encoder.setQuality?.(true, 0); // reversible 5/3 wavelet, no rate target
      encoder.setDecompositions?.(levels(m));
      const src = fromNative(interleaved(native, m), bytesOf(m.bitsStored), m, true);
      // The builds' row stride is bitsPerSample / 8 bytes per sample (rounded down): whole bytes given.
      const info = {
        width: m.columns,
        height: m.rows,
        bitsPerSample: m.bitsStored,
        componentCount: m.samplesPerPixel,
        isSigned: m.pixelRepresentation === 1,
        ...(build.colourTransform ? {} : { isUsingColorTransform: false }),
      };
      try {
        const bytes = runEncoder(encoder, info, src);
        const transformed = build.colourTransform && m.samplesPerPixel === 3;
        return { bytes, photometricInterpretation: transformed ? 'YBR_RCT' : m.photometricInterpretation };
      } catch (e) {
        throw new PixelCodecError(`${label} encode failed: ${wasmErrorMessage(e)}`, { cause: e });
      }
    },
  };
}

/** JPEG 2000 (PS3.5 A.4.4), lossless and lossy, through OpenJPEG; encodes lossless. */
export const jpeg2000Codec: PixelCodec = waveletCodec({
  name: 'jpeg-2000 (openjpeg)',
  label: 'JPEG 2000',
  transferSyntaxUids: [UID.JPEG2000Lossless, UID.JPEG2000],
  module: OPENJPEG,
  library: 'OpenJPEG',
  decoderClass: 'J2KDecoder',
  encoderClass: 'J2KEncoder',
  colourTransform: true,
});

/** High-Throughput JPEG 2000 (PS3.5 A.4.6) through OpenJPH; encodes lossless. */
export const htj2kCodec: PixelCodec = waveletCodec({
  name: 'htj2k (openjph)',
  label: 'HTJ2K',
  transferSyntaxUids: [UID.HTJ2KLossless, UID.HTJ2KLosslessRPCL, UID.HTJ2K],
  module: OPENJPH,
  library: 'OpenJPH',
  decoderClass: 'HTJ2KDecoder',
  encoderClass: 'HTJ2KEncoder',
  colourTransform: false,
});
