/**
 * JPEG lossless, non-hierarchical (process 14, any selection value, PS3.5 A.4.1) through
 * jpeg-lossless-decoder-js (pure JavaScript). Decode only.
 */
import { createRequire } from 'node:module';
import { UID } from '../uid.js';
import { toNative } from './samples.js';
import { type DecodedFrame, type PixelCodec, PixelCodecError, type PixelModule } from './types.js';

interface LosslessDecoder {
  decode(buffer: ArrayBuffer, offset: number, length: number, numBytes?: number): Uint8Array | Uint16Array;
  xDim: number;
  yDim: number;
  numComp: number;
  precision: number | undefined;
}

const require = createRequire(import.meta.url);
let Decoder: (new () => LosslessDecoder) | undefined;

function decoder(): LosslessDecoder {
  if (!Decoder)
    Decoder = (require('jpeg-lossless-decoder-js') as { Decoder: new () => LosslessDecoder }).Decoder;
  return new Decoder();
}

/** Decodes a process 14 JPEG lossless frame; samples come out interleaved by pixel. */
export function decodeJpegLossless(encoded: Uint8Array, m: PixelModule): Uint8Array {
  const d = decoder();
  let out: Uint8Array | Uint16Array;
  try {
    out = d.decode(encoded.buffer as ArrayBuffer, encoded.byteOffset, encoded.byteLength);
  } catch (e) {
    throw new PixelCodecError(`JPEG lossless decode failed: ${e instanceof Error ? e.message : String(e)}`, {
      cause: e,
    });
  }
  if (d.xDim !== m.columns || d.yDim !== m.rows || d.numComp !== m.samplesPerPixel)
    throw new PixelCodecError(
      `JPEG lossless frame is ${d.xDim}x${d.yDim}x${d.numComp}, the pixel module says ${m.columns}x${m.rows}x${m.samplesPerPixel}`,
    );
  // A Uint16Array is in platform order: little endian on every platform Node runs on here.
  const bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  return toNative(bytes, out instanceof Uint16Array ? 2 : 1, m);
}

/** JPEG lossless process 14 (selection value 1 and the others). */
export const jpegLosslessCodec: PixelCodec = {
  name: 'jpeg-lossless (jpeg-lossless-decoder-js)',
  transferSyntaxUids: [UID.JPEGLossless, UID.JPEGLosslessSV1],
  canEncode: false,
  async decodeFrame(encoded: Uint8Array, m: PixelModule): Promise<DecodedFrame> {
    return {
      pixels: decodeJpegLossless(encoded, m),
      photometricInterpretation: m.photometricInterpretation,
      planarConfiguration: 0,
    };
  },
};
