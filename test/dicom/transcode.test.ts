/**
 * The streaming transcoder (dicom/transcode.ts, io/transcode.ts): every compressed file of the
 * pydicom corpus transcoded to Explicit VR LE decodes to the oracle's pixels (DCMTK dcmdjpeg /
 * dcmdjpls / dcmdrle, GDCM for JPEG 2000): lossless exactly, lossy JPEG within the decoders'
 * tolerance; our lossless encodings (RLE, JPEG-LS, JPEG 2000) decode with DCMTK / GDCM and
 * pydicom+GDCM to exactly our input (HTJ2K, which neither reads, round-trips through OpenJPH);
 * the pixel module as PS3.5 8.2 wants it; offset tables; lossy only when asked; bad input (a
 * corrupt frame, no codec, a cut file) fails with its error and leaves no output file.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { encapsulatedFrames, extendedOffsetTableOf } from '../../src/dicom/codec/frames.js';
import { PixelCodecError, type PixelModule, pixelModuleOf } from '../../src/dicom/codec/types.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { parseDicom } from '../../src/dicom/reader.js';
import { checkTranscode, TranscodeError, transcodeChunks } from '../../src/dicom/transcode.js';
import { EXPLICIT_VR_BE, EXPLICIT_VR_LE, IMPLICIT_VR_LE, UID } from '../../src/dicom/uid.js';
import { encodePart10 } from '../../src/dicom/writer.js';
import { closeTranscodePool, transcodeFile } from '../../src/io/transcode.js';
import {
  CORPUS,
  compressedCorpusFiles,
  maxDifference,
  nativeFrames,
  runOracle,
  runOracleFor,
  sampleValues,
} from './codec-pixel-oracle.js';

const dir = mkdtempSync(join(tmpdir(), 'pacs-transcode-'));
after(async () => {
  rmSync(dir, { recursive: true, force: true });
  await closeTranscodePool();
});

const JPEG_TOLERANCE = 2;
const CORRUPT = 'JPEG2000-embedded-sequence-delimiter.dcm';
/** Pixel samples of each frame of a native file, interleaved by pixel, as numbers (Bits Stored). */
function samples(path: string, mask?: PixelModule): { values: number[][]; photometric: string } {
  const n = nativeFrames(path);
  // The source's Bits Stored (GDCM may widen Bits Stored to the codestream's precision).
  const m = mask ? { ...n.module, bitsStored: mask.bitsStored } : n.module;
  return { values: n.frames.map((f) => sampleValues(f, m)), photometric: n.photometric };
}

/** pydicom (with GDCM or its own RLE handler) reads both files to the same array. */
function pydicomSame(a: string, b: string): string {
  const r = spawnSync(
    '/usr/bin/python3',
    [
      '-c',
      'import sys, pydicom, numpy\n' +
        'x = pydicom.dcmread(sys.argv[1]).pixel_array; y = pydicom.dcmread(sys.argv[2]).pixel_array\n' +
        'print("same" if x.shape == y.shape and (x == y).all() else f"differ {x.shape} {y.shape}")',
      a,
      b,
    ],
    { encoding: 'utf8' },
  );
  return (r.stdout || r.stderr).trim();
}

describe('transcoding the compressed pydicom corpus to Explicit VR LE', () => {
  const files = compressedCorpusFiles().filter((f) => f.name !== CORRUPT);
  it('has the compressed files', () => assert.ok(files.length >= 30, `${files.length} files`));
  for (const f of files) {
    const lossy = f.transferSyntax === UID.JPEGBaseline8Bit || f.transferSyntax === UID.JPEGExtended12Bit;
    it(`${f.name} (${f.transferSyntax})`, async () => {
      const out = join(dir, `le-${f.name}`);
      const summary = await transcodeFile(f.path, out, { to: EXPLICIT_VR_LE });
      assert.equal(summary.frames, f.module.numberOfFrames);
      assert.equal(summary.lossy, false, 'decoding makes no lossy step');
      const ours = parseDicom(readFileSync(out));
      assert.equal(ours.meta?.string(TAG.TransferSyntaxUID), EXPLICIT_VR_LE);
      assert.equal(ours.dataSet.has(TAG.ExtendedOffsetTable), false);
      if (lossy) assert.equal(ours.dataSet.string(TAG.LossyImageCompression), '01', 'PS3.3 C.7.6.1.1.5');
      const want = join(dir, `oracle-${f.name}`);
      runOracleFor(f.name, f.transferSyntax, f.path, want);
      const theirs = samples(want, f.module);
      const got = samples(out, f.module);
      assert.equal(got.photometric, theirs.photometric, 'photometric interpretation');
      assert.equal(got.values.length, theirs.values.length, 'frames');
      for (let k = 0; k < got.values.length; k++) {
        const d = maxDifference(got.values[k] as number[], theirs.values[k] as number[]);
        assert.equal((got.values[k] as number[]).length, (theirs.values[k] as number[]).length);
        if (lossy) assert.ok(d <= JPEG_TOLERANCE, `frame ${k + 1}: max difference ${d}`);
        else assert.equal(d, 0, `frame ${k + 1}: max difference ${d}`);
      }
    });
  }
});

/** Native sources to encode: grey 16-bit, signed CT, odd-sized RGB, 8-bit RGB, 2-frame RGB, 16-bit RGB. */
const NATIVE_SOURCES = [
  'MR_small.dcm',
  'CT_small.dcm',
  'SC_rgb_small_odd.dcm',
  'SC_rgb.dcm',
  'SC_rgb_2frame.dcm',
  'SC_rgb_16bit.dcm',
];

/** Native RGB files this pydicom lacks, made from their RLE copies (decoded as checked above). */
const FROM_RLE: Record<string, string> = {
  'SC_rgb.dcm': 'SC_rgb_rle.dcm',
  'SC_rgb_2frame.dcm': 'SC_rgb_rle_2frame.dcm',
  'SC_rgb_16bit.dcm': 'SC_rgb_rle_16bit.dcm',
};

async function sourcePath(name: string): Promise<string> {
  const rle = FROM_RLE[name];
  if (rle === undefined) return join(CORPUS, name);
  const path = join(dir, `native-${name}`);
  if (!existsSync(path)) await transcodeFile(join(CORPUS, rle), path, { to: EXPLICIT_VR_LE });
  return path;
}

describe('our lossless encodings decode with DCMTK, GDCM and pydicom to exactly our input', () => {
  const targets: { ts: string; oracle: string }[] = [
    { ts: UID.RLELossless, oracle: 'rle' },
    { ts: UID.JPEGLSLossless, oracle: 'jpeg-ls' },
    { ts: UID.JPEG2000Lossless, oracle: 'gdcm' },
  ];
  for (const name of NATIVE_SOURCES) {
    for (const t of targets) {
      it(`${name} -> ${t.ts}`, async () => {
        const src = await sourcePath(name);
        // SC_rgb_16bit: the OpenJPEG build encodes colour at 8 bits only (a documented refusal).
        if (name === 'SC_rgb_16bit.dcm' && t.ts === UID.JPEG2000Lossless) {
          await assert.rejects(transcodeFile(src, join(dir, 'x.dcm'), { to: t.ts }), PixelCodecError);
          assert.ok(!existsSync(join(dir, 'x.dcm')));
          return;
        }
        const enc = join(dir, `enc-${t.ts}-${name}`);
        const summary = await transcodeFile(src, enc, { to: t.ts });
        assert.equal(summary.lossy, false);
        const encoded = parseDicom(readFileSync(enc));
        assert.equal(encoded.transferSyntax, t.ts);
        assert.equal(encoded.dataSet.has(TAG.LossyImageCompression), false, 'no lossy step recorded');
        const dec = join(dir, `dec-${t.ts}-${name}`);
        runOracle(t.oracle, enc, dec);
        const want = samples(src);
        const got = samples(dec);
        assert.equal(got.values.length, want.values.length);
        for (let k = 0; k < want.values.length; k++)
          assert.equal(
            maxDifference(got.values[k] as number[], want.values[k] as number[]),
            0,
            `frame ${k + 1}`,
          );
        assert.equal(pydicomSame(src, enc), 'same');
      });
    }
  }

  it('HTJ2K lossless (which DCMTK and GDCM do not read) round-trips to the same pixels', async () => {
    for (const name of ['MR_small.dcm', 'CT_small.dcm', 'SC_rgb.dcm']) {
      const src = await sourcePath(name);
      const enc = join(dir, `htj2k-${name}`);
      await transcodeFile(src, enc, { to: UID.HTJ2KLossless });
      assert.equal(parseDicom(readFileSync(enc)).transferSyntax, UID.HTJ2KLossless);
      const back = join(dir, `htj2k-back-${name}`);
      await transcodeFile(enc, back, { to: EXPLICIT_VR_LE });
      assert.deepEqual(samples(back).values, samples(src).values, name);
    }
  });

  it('compressed to compressed: JPEG 2000 to JPEG-LS, decoded by dcmdjpls to the J2K oracle', async () => {
    const src = join(CORPUS, 'MR_small_jp2klossless.dcm');
    const enc = join(dir, 'j2k-to-jls.dcm');
    await transcodeFile(src, enc, { to: UID.JPEGLSLossless });
    const dec = join(dir, 'j2k-to-jls-dec.dcm');
    runOracle('jpeg-ls', enc, dec);
    assert.deepEqual(samples(dec).values, samples(join(CORPUS, 'MR_small.dcm')).values);
  });
});

describe('the pixel module after a transcode (PS3.5 8.2)', () => {
  it('RGB encoded by OpenJPEG becomes YBR_RCT, Planar Configuration 0, and decodes back to RGB', async () => {
    const enc = join(dir, 'rgb-j2k.dcm');
    await transcodeFile(await sourcePath('SC_rgb.dcm'), enc, { to: UID.JPEG2000Lossless });
    const ds = parseDicom(readFileSync(enc)).dataSet;
    assert.equal(ds.string(TAG.PhotometricInterpretation), 'YBR_RCT');
    assert.equal(ds.number(TAG.PlanarConfiguration), 0);
    const back = join(dir, 'rgb-j2k-back.dcm');
    await transcodeFile(enc, back, { to: EXPLICIT_VR_LE });
    assert.equal(parseDicom(readFileSync(back)).dataSet.string(TAG.PhotometricInterpretation), 'RGB');
  });

  it('YBR_FULL_422 JPEG decodes to RGB with Planar Configuration 0 and Lossy Image Compression 01', async () => {
    const out = join(dir, '422.dcm');
    await transcodeFile(join(CORPUS, 'SC_rgb_dcmtk_+eb+cy+s2.dcm'), out, { to: EXPLICIT_VR_LE });
    const ds = parseDicom(readFileSync(out)).dataSet;
    assert.equal(ds.string(TAG.PhotometricInterpretation), 'RGB');
    assert.equal(ds.number(TAG.PlanarConfiguration), 0);
    assert.equal(ds.string(TAG.LossyImageCompression), '01');
    assert.deepEqual(ds.strings(TAG.LossyImageCompressionMethod), ['ISO_10918_1']);
    assert.equal(ds.bytes(TAG.PixelData)?.length, 100 * 100 * 3);
  });

  it('JPEG baseline only when lossy is allowed; then Ratio and Method are appended and dcmdjpeg reads it', async () => {
    assert.match(checkTranscode(EXPLICIT_VR_LE, UID.JPEGBaseline8Bit) ?? '', /lossy/);
    const src = await sourcePath('SC_rgb.dcm');
    const out = join(dir, 'baseline.dcm');
    await assert.rejects(transcodeFile(src, out, { to: UID.JPEGBaseline8Bit }), TranscodeError);
    assert.ok(!existsSync(out));
    const summary = await transcodeFile(src, out, { to: UID.JPEGBaseline8Bit, lossy: true, quality: 95 });
    assert.equal(summary.lossy, true);
    const ds = parseDicom(readFileSync(out)).dataSet;
    assert.equal(ds.string(TAG.LossyImageCompression), '01');
    assert.deepEqual(ds.strings(TAG.LossyImageCompressionMethod), ['ISO_10918_1']);
    const ratio = Number(ds.string(TAG.LossyImageCompressionRatio));
    assert.ok(ratio > 1, `ratio ${ratio}`);
    assert.equal(ds.string(TAG.PhotometricInterpretation), 'YBR_FULL');
    const dec = join(dir, 'baseline-dec.dcm');
    runOracle('jpeg', out, dec);
    const d = maxDifference(samples(dec).values[0] as number[], samples(src).values[0] as number[]);
    assert.ok(d < 48, `quality 95 stays close: ${d}`);
  });

  it('multi-frame: one fragment per frame and a Basic Offset Table; an empty table past the hold-back', async () => {
    const src = await sourcePath('SC_rgb_2frame.dcm');
    const withTable = join(dir, 'mf-bot.dcm');
    await transcodeFile(src, withTable, { to: UID.RLELossless });
    const a = parseDicom(readFileSync(withTable)).dataSet;
    const pa = a.get(TAG.PixelData)?.value as { kind: 'fragments'; fragments: Uint8Array[] };
    assert.equal(pa.fragments.length, 3);
    assert.equal(pa.fragments[0]?.length, 8, 'two offsets');
    for (const f of pa.fragments) assert.equal(f.length % 2, 0, 'even fragments');
    const frames = encapsulatedFrames(pa, 2, extendedOffsetTableOf(a));
    assert.equal(frames.length, 2);
    const noTable = join(dir, 'mf-empty.dcm');
    await transcodeFile(src, noTable, { to: UID.RLELossless, offsetTableHoldBack: 10 });
    const b = parseDicom(readFileSync(noTable)).dataSet;
    const pb = b.get(TAG.PixelData)?.value as { kind: 'fragments'; fragments: Uint8Array[] };
    assert.equal(pb.fragments[0]?.length, 0, 'empty Basic Offset Table');
    assert.deepEqual(pb.fragments.slice(1), pa.fragments.slice(1));
    // Read back by both: the same pixels as the source.
    const back = join(dir, 'mf-back.dcm');
    await transcodeFile(noTable, back, { to: EXPLICIT_VR_BE });
    assert.deepEqual(samples(back).values, samples(src).values);
    assert.equal(pydicomSame(src, noTable), 'same');
  });

  it('a source with an Extended Offset Table: frames split by it, the table dropped from the output', async () => {
    const src = parseDicom(readFileSync(join(dir, 'mf-bot.dcm')));
    const pixel = src.dataSet.get(TAG.PixelData)?.value as { kind: 'fragments'; fragments: Uint8Array[] };
    const fragments = pixel.fragments.slice(1);
    const offsets = new Uint8Array(16);
    const lengths = new Uint8Array(16);
    new DataView(offsets.buffer).setBigUint64(8, BigInt(8 + (fragments[0]?.length ?? 0)), true);
    new DataView(lengths.buffer).setBigUint64(0, BigInt(fragments[0]?.length ?? 0), true);
    new DataView(lengths.buffer).setBigUint64(8, BigInt(fragments[1]?.length ?? 0), true);
    const ds = src.dataSet;
    ds.setBytes(TAG.ExtendedOffsetTable, offsets, 'OV');
    ds.setBytes(TAG.ExtendedOffsetTableLengths, lengths, 'OV');
    ds.set({
      tag: TAG.PixelData,
      vr: 'OB',
      value: { kind: 'fragments', fragments: [new Uint8Array(0), ...fragments] },
    });
    const path = join(dir, 'eot.dcm');
    writeFileSync(path, encodePart10(ds, UID.RLELossless));
    const out = join(dir, 'eot-out.dcm');
    await transcodeFile(path, out, { to: IMPLICIT_VR_LE });
    const back = parseDicom(readFileSync(out));
    assert.equal(back.dataSet.has(TAG.ExtendedOffsetTable), false);
    assert.deepEqual(samples(out).values, samples(await sourcePath('SC_rgb_2frame.dcm')).values);
  });

  it('streams: output chunks come before the input ends, elements after Pixel Data kept', async () => {
    const src = parseDicom(readFileSync(join(CORPUS, 'MR_small.dcm'))).dataSet;
    src.setString(0xfffcfffc, '', 'OB'); // Data Set Trailing Padding, after Pixel Data
    src.setBytes(0xfffcfffc, new Uint8Array(10), 'OB');
    const bytes = encodePart10(src, EXPLICIT_VR_LE);
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < bytes.length; i += 1000) chunks.push(bytes.subarray(i, i + 1000));
    const out: Uint8Array[] = [];
    for await (const c of transcodeChunks(chunks, { to: UID.JPEGLSLossless })) out.push(c);
    const ds = parseDicom(Buffer.concat(out)).dataSet;
    assert.equal(ds.bytes(0xfffcfffc)?.length, 10);
    assert.equal(ds.string(TAG.PatientName), src.string(TAG.PatientName));
    assert.deepEqual(pixelModuleOf(ds).rows, 64);
  });
});

describe('bad input: the documented failure, nothing partial written', () => {
  it('a corrupt frame: PixelCodecError, no output file, no temporary left', async () => {
    const out = join(dir, 'corrupt-out.dcm');
    await assert.rejects(transcodeFile(join(CORPUS, CORRUPT), out, { to: EXPLICIT_VR_LE }), PixelCodecError);
    assert.ok(!existsSync(out));
    assert.deepEqual(
      readdirSync(dir).filter((n) => n.endsWith('.tmp')),
      [],
    );
  });

  it('a syntax without a codec (JPEG XL): TranscodeError naming it', async () => {
    const parsed = parseDicom(readFileSync(join(CORPUS, 'MR_small_jp2klossless.dcm')));
    const path = join(dir, 'jxl.dcm');
    writeFileSync(path, encodePart10(parsed.dataSet, UID.JPEGXLLossless));
    assert.match(checkTranscode(UID.JPEGXLLossless, EXPLICIT_VR_LE) ?? '', /no decoder for .*JPEG XL/);
    const out = join(dir, 'jxl-out.dcm');
    await assert.rejects(transcodeFile(path, out, { to: EXPLICIT_VR_LE }), (e: unknown) => {
      assert.ok(e instanceof TranscodeError);
      assert.equal(e.code, 'ERR_TRANSCODE_UNSUPPORTED');
      assert.match(e.message, /JPEG XL/);
      return true;
    });
    assert.ok(!existsSync(out));
  });

  it('a cut file and a frame count that does not match: errors, no output', async () => {
    const whole = readFileSync(join(CORPUS, 'MR_small_RLE.dcm'));
    const cut = join(dir, 'cut.dcm');
    writeFileSync(cut, whole.subarray(0, whole.length - 100));
    await assert.rejects(transcodeFile(cut, join(dir, 'cut-out.dcm'), { to: EXPLICIT_VR_LE }));
    assert.ok(!existsSync(join(dir, 'cut-out.dcm')));
    const parsed = parseDicom(whole).dataSet;
    parsed.setString(TAG.NumberOfFrames, '3', 'IS');
    const three = join(dir, 'three.dcm');
    writeFileSync(three, encodePart10(parsed, UID.RLELossless));
    await assert.rejects(
      transcodeFile(three, join(dir, 'three-out.dcm'), { to: EXPLICIT_VR_LE }),
      /Number of Frames/,
    );
    assert.ok(!existsSync(join(dir, 'three-out.dcm')));
  });
});
