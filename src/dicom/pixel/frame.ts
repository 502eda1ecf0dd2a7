/**
 * The Image Pixel Module (PS3.3 C.7.6.3) of a data set, checked: what one frame of native
 * (uncompressed) pixel data looks like and where it lies in the Pixel Data value (PS3.5 8.1.1:
 * frames follow each other with no padding; 1-bit frames are bit-packed, so a frame may start
 * inside a byte). No I/O: the callers read the bytes.
 */
import { PacsError } from '../../core/errors.js';
import type { DataSet } from '../dataset.js';
import { TAG } from '../dictionary.js';

/** The pixel module is inconsistent or asks for something not rendered (code ERR_PIXEL_*). */
export class PixelDataError extends PacsError {}

/** The photometric interpretations rendered from native data (PS3.3 C.7.6.3.1.2). */
export type Photometric =
  | 'MONOCHROME1'
  | 'MONOCHROME2'
  | 'PALETTE COLOR'
  | 'RGB'
  | 'YBR_FULL'
  | 'YBR_FULL_422';

const PHOTOMETRICS: readonly Photometric[] = [
  'MONOCHROME1',
  'MONOCHROME2',
  'PALETTE COLOR',
  'RGB',
  'YBR_FULL',
  'YBR_FULL_422',
];

/** One frame's layout, from the data set's pixel module. */
export interface FrameInfo {
  readonly rows: number;
  readonly columns: number;
  readonly samplesPerPixel: 1 | 3;
  readonly photometric: Photometric;
  readonly bitsAllocated: 1 | 8 | 16 | 32;
  readonly bitsStored: number;
  readonly highBit: number;
  /** 1: two's complement (signed). */
  readonly pixelRepresentation: 0 | 1;
  /** 0: R1G1B1R2G2B2..., 1: all R, then all G, then all B (PS3.3 C.7.6.3.1.3). */
  readonly planarConfiguration: 0 | 1;
  readonly numberOfFrames: number;
  /** Bits of one frame (YBR_FULL_422 stores 2 samples per pixel, PS3.3 C.7.6.3.1.2). */
  readonly frameBits: number;
}

/** Where frame `index` (0-based) lies in the Pixel Data value: bytes [start, end), first pixel at `bitOffset` of byte start. */
export interface FrameRange {
  readonly start: number;
  readonly end: number;
  readonly bitOffset: number;
}

function bad(reason: string): never {
  throw new PixelDataError('ERR_PIXEL_MODULE', reason);
}

function required(ds: DataSet, tag: number, name: string): number {
  const v = ds.number(tag);
  if (v === undefined || !Number.isInteger(v)) bad(`${name} is missing or not an integer`);
  return v;
}

/** The frame layout of a data set with native pixel data; throws PixelDataError naming the bad value. */
export function describeFrames(ds: DataSet): FrameInfo {
  const rows = required(ds, TAG.Rows, 'Rows');
  const columns = required(ds, TAG.Columns, 'Columns');
  if (rows < 1 || columns < 1) bad(`Rows and Columns must be positive (${rows}x${columns})`);
  const spp = ds.number(TAG.SamplesPerPixel) ?? 1;
  const photometricText = (ds.string(TAG.PhotometricInterpretation) ?? (spp === 3 ? 'RGB' : 'MONOCHROME2'))
    .trim()
    .toUpperCase();
  const photometric = PHOTOMETRICS.find((p) => p === photometricText);
  if (photometric === undefined)
    throw new PixelDataError(
      'ERR_PIXEL_UNSUPPORTED',
      `Photometric Interpretation ${photometricText} is not rendered from native data`,
    );
  const colour = photometric === 'RGB' || photometric.startsWith('YBR');
  if (spp !== (colour ? 3 : 1))
    bad(`Samples per Pixel ${spp} does not fit Photometric Interpretation ${photometric}`);
  const bitsAllocated = required(ds, TAG.BitsAllocated, 'Bits Allocated');
  if (bitsAllocated !== 1 && bitsAllocated !== 8 && bitsAllocated !== 16 && bitsAllocated !== 32)
    bad(`Bits Allocated ${bitsAllocated} is not 1, 8, 16 or 32`);
  const bitsStored = ds.number(TAG.BitsStored) ?? bitsAllocated;
  if (!Number.isInteger(bitsStored) || bitsStored < 1 || bitsStored > bitsAllocated)
    bad(`Bits Stored ${bitsStored} is not between 1 and Bits Allocated (${bitsAllocated})`);
  const highBit = ds.number(TAG.HighBit) ?? bitsStored - 1;
  // PS3.5 8.1.1: the stored bits lie below High Bit, inside the allocated cell.
  if (!Number.isInteger(highBit) || highBit < bitsStored - 1 || highBit > bitsAllocated - 1)
    bad(`High Bit ${highBit} does not fit Bits Stored ${bitsStored} and Bits Allocated ${bitsAllocated}`);
  const pr = ds.number(TAG.PixelRepresentation) ?? 0;
  if (pr !== 0 && pr !== 1) bad(`Pixel Representation ${pr} is not 0 or 1`);
  const planar = spp === 1 ? 0 : (ds.number(TAG.PlanarConfiguration) ?? 0);
  if (planar !== 0 && planar !== 1) bad(`Planar Configuration ${planar} is not 0 or 1`);
  if (photometric === 'YBR_FULL_422' && planar !== 0) bad('YBR_FULL_422 needs Planar Configuration 0');
  if (colour && bitsAllocated === 1) bad('colour pixel data cannot have Bits Allocated 1');
  const framesText = ds.string(TAG.NumberOfFrames);
  const frames = framesText === undefined ? 1 : Number(framesText);
  if (!Number.isInteger(frames) || frames < 1)
    bad(`Number of Frames ${framesText} is not a positive integer`);
  const pixels = rows * columns;
  // PS3.3 C.7.6.3.1.2: YBR_FULL_422 keeps Y per pixel and one Cb, Cr pair per two pixels of a row.
  const samples = photometric === 'YBR_FULL_422' ? rows * (2 * Math.ceil(columns / 2)) * 2 : pixels * spp;
  return {
    rows,
    columns,
    samplesPerPixel: spp,
    photometric,
    bitsAllocated,
    bitsStored,
    highBit,
    pixelRepresentation: pr,
    planarConfiguration: planar,
    numberOfFrames: frames,
    frameBits: samples * bitsAllocated,
  } as FrameInfo;
}

/** Byte range of frame `index` (0-based) in the Pixel Data value; throws when it lies past `valueLength`. */
export function frameRange(info: FrameInfo, index: number, valueLength: number): FrameRange {
  if (!Number.isInteger(index) || index < 0 || index >= info.numberOfFrames)
    throw new PixelDataError(
      'ERR_PIXEL_FRAME',
      `frame ${index + 1} does not exist (the object has ${info.numberOfFrames})`,
    );
  const startBit = index * info.frameBits;
  const start = Math.floor(startBit / 8);
  const end = Math.ceil((startBit + info.frameBits) / 8);
  if (end > valueLength)
    bad(`Pixel Data holds ${valueLength} bytes, frame ${index + 1} needs bytes ${start} to ${end}`);
  return { start, end, bitOffset: startBit % 8 };
}
