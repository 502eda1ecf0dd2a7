/**
 * The viewport of PS3.18 8.3.5.1.2 (`viewport=vw,vh[,sx,sy,sw,sh]`): the source region (the whole
 * image by default; a negative sw or sh flips it) scaled to fit vw x vh keeping its aspect ratio.
 * The answer has the fitted size (it is not padded to the viewport). Shrinking averages the area
 * each output pixel covers (a box filter, so thumbnails do not alias); enlarging is bilinear.
 */
import { PixelDataError } from './frame.js';
import type { Image } from './render.js';

/** A viewport request; the source region in pixels of the image. */
export interface Viewport {
  readonly width: number;
  readonly height: number;
  readonly source?: {
    readonly x: number;
    readonly y: number;
    readonly width: number;
    readonly height: number;
  };
}

/** One axis: for each output index, the source taps and their weights. */
interface Axis {
  readonly index: Int32Array;
  readonly weight: Float64Array;
  readonly taps: number;
}

function axis(outSize: number, srcStart: number, srcSize: number, srcLimit: number): Axis {
  // srcSize may be negative (flip): output i covers [srcStart + i*step, srcStart + (i+1)*step).
  const step = srcSize / outSize;
  const span = Math.abs(step);
  const taps = span > 1 ? Math.ceil(span) + 1 : 2;
  const index = new Int32Array(outSize * taps);
  const weight = new Float64Array(outSize * taps);
  const clamp = (v: number) => (v < 0 ? 0 : v >= srcLimit ? srcLimit - 1 : v);
  for (let i = 0; i < outSize; i++) {
    const a = srcStart + i * step;
    const b = a + step;
    const lo = Math.min(a, b);
    const hi = Math.max(a, b);
    if (span > 1) {
      // Area average: each source pixel k covers [k, k+1).
      let total = 0;
      const first = Math.floor(lo);
      for (let t = 0; t < taps; t++) {
        const k = first + t;
        const w = Math.max(0, Math.min(hi, k + 1) - Math.max(lo, k));
        index[i * taps + t] = clamp(k);
        weight[i * taps + t] = w;
        total += w;
      }
      for (let t = 0; t < taps; t++) weight[i * taps + t] = (weight[i * taps + t] as number) / (total || 1);
    } else {
      // Bilinear: sample at the centre of the output pixel.
      const c = (lo + hi) / 2 - 0.5;
      const k = Math.floor(c);
      const f = c - k;
      index[i * taps] = clamp(k);
      index[i * taps + 1] = clamp(k + 1);
      weight[i * taps] = 1 - f;
      weight[i * taps + 1] = f;
    }
  }
  return { index, weight, taps };
}

/** The output size of a viewport for an image (fit inside, aspect kept, at least 1x1). */
export function fittedSize(
  viewport: Viewport,
  image: { width: number; height: number },
): { width: number; height: number } {
  const sw = Math.abs(viewport.source?.width ?? image.width);
  const sh = Math.abs(viewport.source?.height ?? image.height);
  const f = Math.min(viewport.width / sw, viewport.height / sh);
  return { width: Math.max(1, Math.round(sw * f)), height: Math.max(1, Math.round(sh * f)) };
}

/** Scales (and crops) an image to a viewport; throws PixelDataError when the region is outside the image. */
export function applyViewport(image: Image, viewport: Viewport): Image {
  const src = viewport.source ?? { x: 0, y: 0, width: image.width, height: image.height };
  const x0 = src.x;
  const y0 = src.y;
  const x1 = src.x + src.width;
  const y1 = src.y + src.height;
  if (
    src.width === 0 ||
    src.height === 0 ||
    Math.min(x0, x1) < 0 ||
    Math.min(y0, y1) < 0 ||
    Math.max(x0, x1) > image.width ||
    Math.max(y0, y1) > image.height
  )
    throw new PixelDataError(
      'ERR_PIXEL_VIEWPORT',
      `the viewport's source region ${src.x},${src.y},${src.width},${src.height} is not inside the ${image.width}x${image.height} image`,
    );
  const { width, height } = fittedSize(viewport, image);
  if (width === image.width && height === image.height && viewport.source === undefined) return image;
  const ax = axis(width, x0, src.width, image.width);
  const ay = axis(height, y0, src.height, image.height);
  const ch = image.channels;
  // Horizontal pass into floats, then vertical.
  const mid = new Float32Array(width * image.height * ch);
  for (let y = 0; y < image.height; y++) {
    const row = y * image.width;
    for (let x = 0; x < width; x++)
      for (let c = 0; c < ch; c++) {
        let acc = 0;
        for (let t = 0; t < ax.taps; t++) {
          const w = ax.weight[x * ax.taps + t] as number;
          if (w !== 0)
            acc += w * (image.data[(row + (ax.index[x * ax.taps + t] as number)) * ch + c] as number);
        }
        mid[(y * width + x) * ch + c] = acc;
      }
  }
  const out = new Uint8Array(width * height * ch);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      for (let c = 0; c < ch; c++) {
        let acc = 0;
        for (let t = 0; t < ay.taps; t++) {
          const w = ay.weight[y * ay.taps + t] as number;
          if (w !== 0)
            acc += w * (mid[((ay.index[y * ay.taps + t] as number) * width + x) * ch + c] as number);
        }
        out[(y * width + x) * ch + c] = acc <= 0 ? 0 : acc >= 255 ? 255 : Math.round(acc);
      }
  return { width, height, channels: ch, data: out };
}
