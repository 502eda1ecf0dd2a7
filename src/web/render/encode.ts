/**
 * Rendered images leave as JPEG or PNG through sharp (libvips with libjpeg-turbo and libspng,
 * prebuilt binaries from the npm registry), a well-kept encoder rather than one of ours
 * (issue 13). Called in the render worker threads; sharp's own thread pool is held to one thread
 * per call so that the render pool's size is what bounds the CPU rendering takes.
 */
import sharp from 'sharp';
import type { Image } from '../../dicom/pixel/render.js';

sharp.cache(false);
sharp.concurrency(1);

export interface EncodeImageOptions {
  /** JPEG quality 1..100 (default 90). */
  readonly quality?: number;
  /** JPEG chroma subsampling of colour images (default 4:2:0, as browsers and viewers expect). */
  readonly subsampling?: '420' | '444';
}

/** A baseline (sequential) JPEG of an 8-bit grey or RGB image. */
export async function encodeJpeg(image: Image, options: EncodeImageOptions = {}): Promise<Uint8Array> {
  const out = await input(image)
    .jpeg({
      quality: options.quality ?? 90,
      chromaSubsampling: options.subsampling === '444' ? '4:4:4' : '4:2:0',
      progressive: false,
      mozjpeg: false,
    })
    .toBuffer();
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

/** A lossless PNG of an 8-bit grey or RGB image (grey stays one channel). */
export async function encodePng(image: Image): Promise<Uint8Array> {
  const out = await input(image).png({ compressionLevel: 6, adaptiveFiltering: false }).toBuffer();
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

function input(image: Image): sharp.Sharp {
  const s = sharp(image.data, {
    raw: { width: image.width, height: image.height, channels: image.channels },
  });
  // Without this libvips writes a grey image as sRGB, three times the samples for nothing.
  return image.channels === 1 ? s.toColourspace('b-w') : s;
}
