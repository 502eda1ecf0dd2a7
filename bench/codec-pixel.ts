/**
 * Pixel codec benchmark (issue 13): decode and encode speed per codec beside DCMTK's tools on the
 * same files (dcmdjpeg, dcmdjpls, dcmdrle to decode; dcmcjpeg, dcmcjpls, dcmcrle to encode).
 *  - Ours: N iterations of decodeFrame / encodeFrame in this process, after a warm-up (WASM
 *    initialised), the mean per frame.
 *  - DCMTK: the tool run once per iteration on the Part-10 file, so its figure INCLUDES process
 *    start and file reading and writing. The small corpus files are dominated by that; the
 *    synthetic 2048x2048 files (written once into a temporary folder) reduce its share and are the
 *    figures that compare codecs.
 * Ratio = DCMTK time / our time (above 1: we are faster; the target is at least 0.7).
 * JPEG 2000 and HTJ2K have no DCMTK tool: only our figures are printed.
 *
 * Run: npm run build && node dist/bench/codec-pixel.js [--iterations N] [--size PIXELS]
 * Not a headline figure on a busy machine (the CPU is shared).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encapsulatedFrames, encapsulateFrames } from '../src/dicom/codec/frames.js';
import { codecFor } from '../src/dicom/codec/registry.js';
import { type PixelCodec, type PixelModule, pixelModuleOf } from '../src/dicom/codec/types.js';
import { DataSet } from '../src/dicom/dataset.js';
import { TAG } from '../src/dicom/dictionary.js';
import { parseDicom } from '../src/dicom/reader.js';
import { EXPLICIT_VR_LE, generateUid, UID } from '../src/dicom/uid.js';
import { encodePart10 } from '../src/dicom/writer.js';
import { fmt, have, now, numberArg, printPeers, printTable, ratio, runMain, runOk } from './common.js';

const CORPUS = '/usr/lib/python3/dist-packages/pydicom/data/test_files';

interface Row {
  readonly what: string;
  readonly ours: number;
  readonly dcmtk: number | undefined;
}

async function timeOurs(iterations: number, fn: () => Promise<unknown>): Promise<number> {
  await fn(); // warm-up: WASM initialisation and JIT
  const t0 = now();
  for (let i = 0; i < iterations; i++) await fn();
  return (now() - t0) / iterations;
}

async function timeTool(iterations: number, cmd: string, args: readonly string[]): Promise<number> {
  await runOk(cmd, args);
  let total = 0;
  for (let i = 0; i < iterations; i++) total += (await runOk(cmd, args)).ms;
  return total / iterations;
}

function readEncapsulated(path: string): { ts: string; module: PixelModule; frames: Uint8Array[] } {
  const { dataSet, transferSyntax } = parseDicom(readFileSync(path));
  const module = pixelModuleOf(dataSet);
  const v = dataSet.get(TAG.PixelData)?.value;
  if (!v || v instanceof Uint8Array || Array.isArray(v) || v.kind !== 'fragments')
    throw new Error(`${path}: not encapsulated`);
  return { ts: transferSyntax, module, frames: encapsulatedFrames(v, module.numberOfFrames) };
}

/** A smooth 12-bit (or 8-bit) grey image with noise, as a native data set. */
function syntheticImage(
  size: number,
  bits: 8 | 16,
): { ds: DataSet; module: PixelModule; pixels: Uint8Array } {
  const stored = bits === 16 ? 12 : 8;
  const module: PixelModule = {
    rows: size,
    columns: size,
    samplesPerPixel: 1,
    bitsAllocated: bits,
    bitsStored: stored,
    highBit: stored - 1,
    pixelRepresentation: 0,
    photometricInterpretation: 'MONOCHROME2',
    planarConfiguration: 0,
    numberOfFrames: 1,
  };
  const bytes = bits >> 3;
  const pixels = new Uint8Array(size * size * bytes);
  const max = 2 ** stored - 1;
  let seed = 3;
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      const r = Math.hypot(x - size / 2, y - size / 2) / size;
      const v = Math.min(max, Math.floor((0.5 + 0.4 * Math.cos(r * 20)) * max) + ((seed >> 16) & 15));
      const i = (y * size + x) * bytes;
      pixels[i] = v & 0xff;
      if (bytes === 2) pixels[i + 1] = v >> 8;
    }
  const ds = new DataSet();
  ds.setString(TAG.SOPClassUID, '1.2.840.10008.5.1.4.1.1.7');
  ds.setString(TAG.SOPInstanceUID, generateUid());
  ds.setString(TAG.StudyInstanceUID, generateUid());
  ds.setString(TAG.SeriesInstanceUID, generateUid());
  ds.setString(TAG.Modality, 'OT');
  ds.setNumbers(TAG.SamplesPerPixel, 1);
  ds.setString(TAG.PhotometricInterpretation, 'MONOCHROME2');
  ds.setNumbers(TAG.Rows, size);
  ds.setNumbers(TAG.Columns, size);
  ds.setNumbers(TAG.BitsAllocated, bits);
  ds.setNumbers(TAG.BitsStored, stored);
  ds.setNumbers(TAG.HighBit, stored - 1);
  ds.setNumbers(TAG.PixelRepresentation, 0);
  return { ds, module, pixels };
}

function withPixels(
  ds: DataSet,
  value: Uint8Array | ReturnType<typeof encapsulateFrames>,
  photometric: string,
): DataSet {
  const out = new DataSet();
  for (const e of ds) if (e.tag !== TAG.PixelData) out.set(e);
  out.setString(TAG.PhotometricInterpretation, photometric);
  out.set({ tag: TAG.PixelData, vr: value instanceof Uint8Array ? 'OW' : 'OB', value });
  return out;
}

const DECODER_OF: Record<string, string> = {
  [UID.RLELossless]: 'dcmdrle',
  [UID.JPEGLSLossless]: 'dcmdjpls',
  [UID.JPEGBaseline8Bit]: 'dcmdjpeg',
  [UID.JPEGExtended12Bit]: 'dcmdjpeg',
  [UID.JPEGLosslessSV1]: 'dcmdjpeg',
};

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const iterations = numberArg(argv, '--iterations', 20);
  const size = numberArg(argv, '--size', 2048);
  const dcmtk = await have('dcmdjpeg');
  const dir = mkdtempSync(join(tmpdir(), 'pacs-bench-codec-pixel-'));
  printPeers([
    { name: 'ours', config: `in-process, mean of ${iterations} frames after a warm-up` },
    {
      name: 'DCMTK 3.6.7',
      config: dcmtk
        ? `one tool run per iteration, process start included (mean of ${iterations})`
        : 'not installed',
    },
  ]);
  try {
    // 1. Decode: corpus files.
    const decodeRows: Row[] = [];
    for (const name of [
      'SC_rgb_jpeg_dcmtk.dcm',
      'JPGExtended.dcm',
      'SC_rgb_jpeg_gdcm.dcm',
      'MR_small_jpeg_ls_lossless.dcm',
      'MR_small_RLE.dcm',
      'SC_rgb_rle_16bit.dcm',
      'MR_small_jp2klossless.dcm',
      'JPEG2000.dcm',
    ]) {
      const path = join(CORPUS, name);
      const f = readEncapsulated(path);
      const codec = codecFor(f.ts) as PixelCodec;
      const frame = f.frames[0] as Uint8Array;
      const ours = await timeOurs(iterations, () => codec.decodeFrame(frame, f.module));
      const tool = DECODER_OF[f.ts];
      const theirs =
        dcmtk && tool ? await timeTool(iterations, tool, [path, join(dir, 'out.dcm')]) : undefined;
      decodeRows.push({ what: `${name} (${codec.name})`, ours, dcmtk: theirs });
    }
    // 2. Decode and encode: synthetic large files, encoded once by us.
    const encodeRows: Row[] = [];
    const grey16 = syntheticImage(size, 16);
    const grey8 = syntheticImage(size, 8);
    const nativePath16 = join(dir, 'native16.dcm');
    const nativePath8 = join(dir, 'native8.dcm');
    writeFileSync(
      nativePath16,
      encodePart10(withPixels(grey16.ds, grey16.pixels, 'MONOCHROME2'), EXPLICIT_VR_LE),
    );
    writeFileSync(
      nativePath8,
      encodePart10(withPixels(grey8.ds, grey8.pixels, 'MONOCHROME2'), EXPLICIT_VR_LE),
    );
    const targets: {
      uid: string;
      image: typeof grey16;
      native: string;
      decoder?: string;
      encoder?: string[];
    }[] = [
      { uid: UID.RLELossless, image: grey16, native: nativePath16, decoder: 'dcmdrle', encoder: ['dcmcrle'] },
      {
        uid: UID.JPEGLSLossless,
        image: grey16,
        native: nativePath16,
        decoder: 'dcmdjpls',
        encoder: ['dcmcjpls'],
      },
      {
        uid: UID.JPEGBaseline8Bit,
        image: grey8,
        native: nativePath8,
        decoder: 'dcmdjpeg',
        encoder: ['dcmcjpeg', '+eb', '+q', '90'],
      },
      { uid: UID.JPEG2000Lossless, image: grey16, native: nativePath16 },
      { uid: UID.HTJ2KLossless, image: grey16, native: nativePath16 },
    ];
    const label = `${size}x${size}`;
    for (const t of targets) {
      const codec = codecFor(t.uid) as PixelCodec;
      const encode = codec.encodeFrame?.bind(codec);
      if (!encode) continue;
      const { module, pixels, ds } = t.image;
      const encoded = await encode(pixels, module, { quality: 90 });
      const file = join(dir, `${t.uid}.dcm`);
      writeFileSync(
        file,
        encodePart10(
          withPixels(ds, encapsulateFrames([encoded.bytes]), encoded.photometricInterpretation),
          t.uid,
        ),
      );
      const what = `${label} ${module.bitsStored}-bit (${codec.name}), ${fmt(pixels.length / encoded.bytes.length, 2)}:1`;
      const decoded = { ...module, photometricInterpretation: encoded.photometricInterpretation };
      const ours = await timeOurs(iterations, () => codec.decodeFrame(encoded.bytes, decoded));
      const theirs =
        dcmtk && t.decoder ? await timeTool(iterations, t.decoder, [file, join(dir, 'out.dcm')]) : undefined;
      decodeRows.push({ what, ours, dcmtk: theirs });
      const oursEnc = await timeOurs(iterations, () => encode(pixels, module, { quality: 90 }));
      const [tool, ...opts] = t.encoder ?? [];
      const theirsEnc =
        dcmtk && tool
          ? await timeTool(iterations, tool, [...opts, t.native, join(dir, 'enc.dcm')])
          : undefined;
      encodeRows.push({ what, ours: oursEnc, dcmtk: theirsEnc });
    }
    // 12-bit JPEG extended (our own decoder): DCMTK encodes the file, both decode it.
    if (dcmtk) {
      const file = join(dir, 'jpeg12.dcm');
      await runOk('dcmcjpeg', ['+ee', '+q', '90', nativePath16, file]);
      const f = readEncapsulated(file);
      const codec = codecFor(f.ts) as PixelCodec;
      const frame = f.frames[0] as Uint8Array;
      const ours = await timeOurs(iterations, () => codec.decodeFrame(frame, f.module));
      const theirs = await timeTool(iterations, 'dcmdjpeg', [file, join(dir, 'out.dcm')]);
      decodeRows.push({ what: `${label} 12-bit (ours, jpeg-dct.ts; dcmcjpeg +ee)`, ours, dcmtk: theirs });
    }
    const table = (rows: readonly Row[]): string[][] =>
      rows.map((r) => [
        r.what,
        `${fmt(r.ours)} ms`,
        r.dcmtk === undefined ? '-' : `${fmt(r.dcmtk)} ms`,
        r.dcmtk === undefined ? '-' : ratio(r.dcmtk / r.ours),
      ]);
    console.log('\ndecode (per frame):');
    printTable(['file (codec)', 'ours', 'DCMTK tool', 'DCMTK/ours'], table(decodeRows));
    console.log('\nencode (per frame; DCMTK: dcmcrle, dcmcjpls, dcmcjpeg +eb on the native file):');
    printTable(['image (codec), ratio', 'ours', 'DCMTK tool', 'DCMTK/ours'], table(encodeRows));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

runMain('bench codec-pixel', main);
