/**
 * The codec registry: which PixelCodec handles a transfer syntax. JPEG extended (process 2 and
 * 4) goes to libjpeg-turbo for 8-bit streams and to our own sequential DCT decoder for 12-bit
 * ones (no maintained package decodes 12-bit JPEG in Node).
 */
import { UID } from '../uid.js';
import { decodeJpegDct, jpegPrecision } from './jpeg-dct.js';
import { jpegLosslessCodec } from './jpeg-lossless.js';
import { rleCodec } from './rle.js';
import type { DecodedFrame, PixelCodec, PixelModule } from './types.js';
import { htj2kCodec, jpeg2000Codec, jpegBaselineCodec, jpegLsCodec } from './wasm-codecs.js';

/** JPEG extended (process 2 and 4): 8-bit streams through libjpeg-turbo, 12-bit through jpeg-dct.ts. */
export const jpegExtendedCodec: PixelCodec = {
  name: 'jpeg-extended (libjpeg-turbo 8-bit, ours 12-bit)',
  transferSyntaxUids: [UID.JPEGExtended12Bit],
  canEncode: false,
  async decodeFrame(encoded: Uint8Array, m: PixelModule): Promise<DecodedFrame> {
    if (jpegPrecision(encoded) === 8) return jpegBaselineCodec.decodeFrame(encoded, m);
    return {
      pixels: decodeJpegDct(encoded, m),
      photometricInterpretation: m.samplesPerPixel === 3 ? 'RGB' : m.photometricInterpretation,
      planarConfiguration: 0,
    };
  },
};

/** Every codec we have, in the order they are looked up. */
export const PIXEL_CODECS: readonly PixelCodec[] = [
  rleCodec,
  jpegBaselineCodec,
  jpegExtendedCodec,
  jpegLosslessCodec,
  jpegLsCodec,
  jpeg2000Codec,
  htj2kCodec,
];

let byUid: Map<string, PixelCodec> | undefined;

/** The codec of an encapsulated transfer syntax, or undefined when we have none. */
export function codecFor(transferSyntaxUid: string): PixelCodec | undefined {
  if (!byUid) {
    byUid = new Map();
    for (const c of PIXEL_CODECS) for (const uid of c.transferSyntaxUids) byUid.set(uid, c);
  }
  return byUid.get(transferSyntaxUid);
}

/** The transfer syntaxes we can decode. */
export function decodableTransferSyntaxes(): string[] {
  return PIXEL_CODECS.flatMap((c) => c.transferSyntaxUids);
}

/** The transfer syntaxes we can encode into. */
export function encodableTransferSyntaxes(): string[] {
  return PIXEL_CODECS.filter((c) => c.canEncode && c.encodeFrame).flatMap((c) => c.transferSyntaxUids);
}
