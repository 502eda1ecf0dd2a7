/**
 * Shared by the pixel codec tests: the compressed files of the pydicom corpus, and the oracles
 * that decompress a file to Explicit VR Little Endian (DCMTK dcmdjpeg / dcmdjpls / dcmdrle,
 * GDCM through python3-gdcm for JPEG 2000), read back with our parser.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { encapsulatedFrames, extendedOffsetTableOf } from '../../src/dicom/codec/frames.js';
import { type PixelModule, pixelModuleOf, planarToInterleaved } from '../../src/dicom/codec/types.js';
import type { DataSet } from '../../src/dicom/dataset.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { parseDicom } from '../../src/dicom/reader.js';
import { transferSyntax, UID } from '../../src/dicom/uid.js';

export const CORPUS = '/usr/lib/python3/dist-packages/pydicom/data/test_files';

/** A compressed corpus file, read whole. */
export interface CorpusFile {
  readonly name: string;
  readonly path: string;
  readonly transferSyntax: string;
  readonly dataSet: DataSet;
  readonly module: PixelModule;
  readonly frames: Uint8Array[];
}

/** Every corpus file whose transfer syntax encapsulates its pixel data and that has Pixel Data. */
export function compressedCorpusFiles(): CorpusFile[] {
  const out: CorpusFile[] = [];
  for (const name of readdirSync(CORPUS).sort()) {
    const path = join(CORPUS, name);
    if (!statSync(path).isFile()) continue;
    let parsed: ReturnType<typeof parseDicom>;
    try {
      parsed = parseDicom(readFileSync(path));
    } catch {
      continue; // not DICOM, or a deliberately broken file
    }
    if (!transferSyntax(parsed.transferSyntax)?.encapsulated) continue;
    const pixel = parsed.dataSet.get(TAG.PixelData);
    if (
      !pixel ||
      pixel.value instanceof Uint8Array ||
      Array.isArray(pixel.value) ||
      pixel.value.kind !== 'fragments'
    )
      continue;
    const module = pixelModuleOf(parsed.dataSet);
    const frames = encapsulatedFrames(
      pixel.value,
      module.numberOfFrames,
      extendedOffsetTableOf(parsed.dataSet),
    );
    out.push({ name, path, transferSyntax: parsed.transferSyntax, dataSet: parsed.dataSet, module, frames });
  }
  return out;
}

/** Which family a transfer syntax belongs to, for choosing the oracle and the tolerance. */
export function family(uid: string): 'jpeg' | 'jpeg-ls' | 'j2k' | 'rle' | 'other' {
  if (uid === UID.RLELossless) return 'rle';
  if (uid === UID.JPEGLSLossless || uid === UID.JPEGLSNearLossless) return 'jpeg-ls';
  if (uid === UID.JPEG2000Lossless || uid === UID.JPEG2000 || uid.startsWith('1.2.840.10008.1.2.4.20'))
    return 'j2k';
  if (
    uid.startsWith('1.2.840.10008.1.2.4.5') ||
    uid.startsWith('1.2.840.10008.1.2.4.6') ||
    uid === UID.JPEGLosslessSV1
  )
    return 'jpeg';
  return 'other';
}

const GDCM_SCRIPT = `
import sys, gdcm
r = gdcm.ImageReader(); r.SetFileName(sys.argv[1])
if not r.Read(): sys.exit(2)
c = gdcm.ImageChangeTransferSyntax()
c.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.ExplicitVRLittleEndian))
c.SetInput(r.GetImage())
if not c.Change(): sys.exit(3)
w = gdcm.ImageWriter(); w.SetFileName(sys.argv[2]); w.SetFile(r.GetFile()); w.SetImage(c.GetOutput())
if not w.Write(): sys.exit(4)
`;

/** Runs the oracle of a family on `input`, writing Explicit VR LE to `output`; throws with its stderr on failure. */
export function runOracle(fam: string, input: string, output: string, extra: string[] = []): void {
  const env = { ...process.env, TCP_NODELAY: '1' };
  const [cmd, args] =
    fam === 'jpeg'
      ? ['dcmdjpeg', ['+px', ...extra, input, output]]
      : fam === 'jpeg-ls'
        ? ['dcmdjpls', ['+px', input, output]]
        : fam === 'rle'
          ? ['dcmdrle', [input, output]]
          : ['/usr/bin/python3', ['-c', GDCM_SCRIPT, input, output]];
  const r = spawnSync(cmd as string, args as string[], { env, encoding: 'utf8' });
  if (r.status !== 0)
    throw new Error(`${cmd} ${(args as string[]).join(' ')} failed (${r.status}): ${r.stderr}`);
}

/** The native frames of a decompressed file, each interleaved by pixel, and its photometric interpretation. */
export function nativeFrames(path: string): {
  frames: Uint8Array[];
  photometric: string;
  module: PixelModule;
} {
  const { dataSet } = parseDicom(readFileSync(path));
  const module = pixelModuleOf(dataSet);
  const pixels = dataSet.bytes(TAG.PixelData);
  if (!pixels) throw new Error(`${path} has no native Pixel Data`);
  const length = module.rows * module.columns * module.samplesPerPixel * (module.bitsAllocated >> 3);
  const frames: Uint8Array[] = [];
  for (let k = 0; k < module.numberOfFrames; k++)
    frames.push(byPixel(pixels.subarray(k * length, (k + 1) * length), module, module.planarConfiguration));
  return { frames, photometric: module.photometricInterpretation, module };
}

/** A frame interleaved by pixel, whatever its planar configuration. */
export function byPixel(frame: Uint8Array, m: PixelModule, planar: number): Uint8Array {
  return planar === 1 && m.samplesPerPixel > 1
    ? planarToInterleaved(frame, m.samplesPerPixel, m.rows * m.columns, m.bitsAllocated >> 3)
    : frame;
}

/** Sample values of a frame (little endian, 1, 2 or 4 bytes each), masked to Bits Stored. */
export function sampleValues(frame: Uint8Array, m: PixelModule): number[] {
  const bytes = m.bitsAllocated >> 3;
  const mask = m.bitsStored >= 32 ? 0xffffffff : 2 ** m.bitsStored - 1;
  const out: number[] = [];
  for (let i = 0; i + bytes <= frame.length; i += bytes) {
    let v = 0;
    for (let b = bytes - 1; b >= 0; b--) v = v * 256 + (frame[i + b] as number);
    out.push(mask === 0xffffffff ? v : v % (mask + 1));
  }
  return out;
}

/** The largest absolute difference of two sample arrays of one length. */
export function maxDifference(a: readonly number[], b: readonly number[]): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs((a[i] as number) - (b[i] as number)));
  return d;
}

/** Files the first-choice oracle of their family cannot take, the one used instead, and why. */
export const ORACLE_OVERRIDE: Record<string, { oracle: string; why: string }> = {
  // DCMTK refuses the file's header (a non-standard VR); GDCM reads it. Its Adobe marker has an
  // invalid transform (219) and its IDs are 0,1,2: the data set's RGB is believed, by GDCM and us.
  'SC_rgb_jpeg.dcm': { oracle: 'gdcm', why: 'dcmdjpeg cannot parse the header' },
  // The data set says RGB, but the stream (component IDs 1,2,3, no JFIF/Adobe marker) is YCbCr:
  // DCMTK's default trusts the data set (+cp); +cg trusts the stream, as libjpeg and we do.
  'SC_rgb_jpeg_lossy_gdcm.dcm': { oracle: 'jpeg+cg', why: 'mislabelled YCbCr stream' },
};

/** Decompresses corpus file `name` (at `path`, in `transferSyntax`) with its oracle into `output`. */
export function runOracleFor(name: string, transferSyntax: string, path: string, output: string): void {
  const override = ORACLE_OVERRIDE[name]?.oracle;
  const fam = family(transferSyntax);
  if (override === 'jpeg+cg') runOracle('jpeg', path, output, ['+cg']);
  else runOracle(override === 'gdcm' || fam === 'j2k' ? 'gdcm' : fam, path, output);
}
