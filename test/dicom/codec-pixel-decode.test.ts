/**
 * Pixel codecs, decoding: every compressed file of the pydicom corpus decodes to the pixels of an
 * oracle that decompresses it to Explicit VR LE — DCMTK dcmdjpeg (JPEG), dcmdjpls (JPEG-LS),
 * dcmdrle (RLE), and GDCM (python3-gdcm) for JPEG 2000, which DCMTK lacks. Lossless syntaxes must
 * match exactly; lossy JPEG within JPEG_TOLERANCE (libjpeg-turbo against DCMTK's IJG library:
 * both use the accurate integer IDCT, and on this corpus they agree exactly, but the standard
 * allows a decoder +-1 per sample, and fancy upsampling may differ). Also the frame splitter
 * and RLE's handling of bad input.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  encapsulatedFrames,
  encapsulateFrames,
  extendedOffsetTableFor,
} from '../../src/dicom/codec/frames.js';
import { jpegPrecision } from '../../src/dicom/codec/jpeg-dct.js';
import {
  codecFor,
  decodableTransferSyntaxes,
  encodableTransferSyntaxes,
} from '../../src/dicom/codec/registry.js';
import { decodeRle, encodeRle } from '../../src/dicom/codec/rle.js';
import { type DecodedFrame, PixelCodecError, type PixelModule } from '../../src/dicom/codec/types.js';
import { UID } from '../../src/dicom/uid.js';
import {
  byPixel,
  compressedCorpusFiles,
  family,
  maxDifference,
  nativeFrames,
  ORACLE_OVERRIDE,
  runOracle,
  runOracleFor,
  sampleValues,
} from './codec-pixel-oracle.js';

/** Largest difference allowed per sample for lossy JPEG between libjpeg-turbo and DCMTK (IJG 6b). */
const JPEG_TOLERANCE = 2;

const dir = mkdtempSync(join(tmpdir(), 'pacs-codec-decode-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const files = compressedCorpusFiles();

describe('pixel codecs: the pydicom corpus against DCMTK and GDCM', () => {
  it('finds the compressed corpus files and has a codec for each of their syntaxes', () => {
    assert.ok(files.length >= 30, `only ${files.length} compressed files found`);
    const families = new Set(files.map((f) => family(f.transferSyntax)));
    for (const fam of ['jpeg', 'jpeg-ls', 'j2k', 'rle'] as const)
      assert.ok(families.has(fam), `no ${fam} file`);
    for (const f of files)
      assert.ok(codecFor(f.transferSyntax), `no codec for ${f.transferSyntax} (${f.name})`);
  });

  // pydicom's parser test: a sequence delimiter tag inside the codestream's SIZ marker. The parser
  // must keep the whole fragment (as long as JPEG2000.dcm's); the codestream is corrupt, and both
  // OpenJPEG and GDCM refuse it.
  it('JPEG2000-embedded-sequence-delimiter.dcm keeps its whole fragment and is refused as corrupt', async () => {
    const f = files.find((x) => x.name === 'JPEG2000-embedded-sequence-delimiter.dcm');
    const same = files.find((x) => x.name === 'JPEG2000.dcm');
    assert.ok(f && same);
    assert.equal(f.frames[0]?.length, same.frames[0]?.length);
    assert.throws(() => runOracle('gdcm', f.path, join(dir, 'corrupt.dcm')));
    await assert.rejects(
      codecFor(f.transferSyntax)?.decodeFrame(f.frames[0] as Uint8Array, f.module) ?? Promise.resolve(),
      PixelCodecError,
    );
  });

  for (const f of files.filter((x) => x.name !== 'JPEG2000-embedded-sequence-delimiter.dcm')) {
    const fam = family(f.transferSyntax);
    const lossy = f.transferSyntax === UID.JPEGBaseline8Bit || f.transferSyntax === UID.JPEGExtended12Bit;
    it(`${f.name} (${f.transferSyntax}) decodes like ${ORACLE_OVERRIDE[f.name]?.oracle ?? fam}`, async () => {
      const out = join(dir, f.name);
      runOracleFor(f.name, f.transferSyntax, f.path, out);
      const oracle = nativeFrames(out);
      const codec = codecFor(f.transferSyntax);
      assert.ok(codec);
      assert.equal(f.frames.length, oracle.frames.length, 'frame count');
      for (let k = 0; k < f.frames.length; k++) {
        const decoded: DecodedFrame = await codec.decodeFrame(f.frames[k] as Uint8Array, f.module);
        assert.equal(decoded.photometricInterpretation, oracle.photometric, 'photometric interpretation');
        // Compare the Bits Stored bits (GDCM may widen Bits Stored to the codestream's precision).
        const ours = sampleValues(byPixel(decoded.pixels, f.module, decoded.planarConfiguration), f.module);
        const theirs = sampleValues(oracle.frames[k] as Uint8Array, f.module);
        assert.equal(ours.length, theirs.length, `frame ${k + 1} sample count`);
        const diff = maxDifference(ours, theirs);
        if (lossy) assert.ok(diff <= JPEG_TOLERANCE, `frame ${k + 1}: max difference ${diff}`);
        else assert.equal(diff, 0, `frame ${k + 1}: max difference ${diff}`);
      }
    });
  }

  it('decodes the mislabelled YCbCr stream to red where the image is red (the stripe of SC_rgb_*)', async () => {
    const f = files.find((x) => x.name === 'SC_rgb_jpeg_lossy_gdcm.dcm');
    assert.ok(f);
    const d = await codecFor(f.transferSyntax)?.decodeFrame(f.frames[0] as Uint8Array, f.module);
    const [r, g, b] = d?.pixels ?? [];
    assert.ok((r as number) > 240 && (g as number) < 15 && (b as number) < 15, `first pixel ${r},${g},${b}`);
  });

  it('reads the sample precision of the 12-bit JPEG files', () => {
    for (const f of files.filter((x) => x.transferSyntax === UID.JPEGExtended12Bit))
      assert.equal(jpegPrecision(f.frames[0] as Uint8Array), 12, f.name);
  });

  it('lists the syntaxes it decodes and encodes', () => {
    const dec = decodableTransferSyntaxes();
    for (const uid of [
      UID.RLELossless,
      UID.JPEGBaseline8Bit,
      UID.JPEGExtended12Bit,
      UID.JPEGLossless,
      UID.JPEGLosslessSV1,
    ])
      assert.ok(dec.includes(uid), uid);
    for (const uid of [
      UID.JPEGLSLossless,
      UID.JPEGLSNearLossless,
      UID.JPEG2000Lossless,
      UID.JPEG2000,
      UID.HTJ2KLossless,
      UID.HTJ2K,
    ])
      assert.ok(dec.includes(uid), uid);
    assert.deepEqual(
      new Set(encodableTransferSyntaxes()),
      new Set([
        UID.RLELossless,
        UID.JPEGBaseline8Bit,
        UID.JPEGLSLossless,
        UID.JPEGLSNearLossless,
        UID.JPEG2000Lossless,
        UID.JPEG2000,
        UID.HTJ2KLossless,
        UID.HTJ2KLosslessRPCL,
        UID.HTJ2K,
      ]),
    );
    assert.equal(codecFor(UID.ExplicitVRLittleEndian), undefined);
  });
});

const bytes = (...v: number[]): Uint8Array => new Uint8Array(v);
const u32le = (...v: number[]): Uint8Array => {
  const b = new Uint8Array(4 * v.length);
  const view = new DataView(b.buffer);
  v.forEach((x, i) => {
    view.setUint32(4 * i, x, true);
  });
  return b;
};

describe('frames of encapsulated pixel data (PS3.5 A.4)', () => {
  const jpegA = bytes(0xff, 0xd8, 0xff, 0xe0, 1, 2);
  const jpegB = bytes(0xff, 0xd8, 0xff, 0xdb, 3, 4);
  const tail = bytes(5, 6, 0xff, 0xd9);

  it('takes a single frame as all fragments concatenated', () => {
    const frames = encapsulatedFrames({ kind: 'fragments', fragments: [bytes(), jpegA, tail] }, 1);
    assert.deepEqual(frames, [bytes(0xff, 0xd8, 0xff, 0xe0, 1, 2, 5, 6, 0xff, 0xd9)]);
  });

  it('takes one fragment per frame when the counts agree', () => {
    const frames = encapsulatedFrames({ kind: 'fragments', fragments: [bytes(), jpegA, jpegB] }, 2);
    assert.deepEqual(frames, [jpegA, jpegB]);
  });

  it('follows the Basic Offset Table (offsets count item headers)', () => {
    // Frame 1 = jpegA + tail (8+6 + 8+4 = 26 bytes), frame 2 starts at 26.
    const frames = encapsulatedFrames(
      { kind: 'fragments', fragments: [u32le(0, 26), jpegA, tail, jpegB] },
      2,
    );
    assert.deepEqual(frames, [bytes(...jpegA, ...tail), jpegB]);
  });

  it('follows the Extended Offset Table and its lengths', () => {
    const frames = encapsulatedFrames({ kind: 'fragments', fragments: [bytes(), jpegA, tail, jpegB] }, 2, {
      offsets: [0, 26],
      lengths: [10, 5],
    });
    assert.deepEqual(frames, [bytes(...jpegA, ...tail), jpegB.subarray(0, 5)]);
  });

  it('without a table, starts a frame where a codestream starts', () => {
    const frames = encapsulatedFrames(
      { kind: 'fragments', fragments: [bytes(), jpegA, tail, jpegB, tail] },
      2,
    );
    assert.deepEqual(frames, [bytes(...jpegA, ...tail), bytes(...jpegB, ...tail)]);
  });

  it('refuses what it cannot split, and offsets that are not fragment starts', () => {
    assert.throws(
      () => encapsulatedFrames({ kind: 'fragments', fragments: [bytes(), jpegA, tail, tail] }, 2),
      (e: unknown) => e instanceof PixelCodecError && e.code === 'ERR_PIXEL_CODEC',
    );
    assert.throws(
      () => encapsulatedFrames({ kind: 'fragments', fragments: [u32le(0, 7), jpegA, jpegB] }, 2),
      PixelCodecError,
    );
    assert.throws(
      () => encapsulatedFrames({ kind: 'fragments', fragments: [u32le(0), jpegA, jpegB] }, 2),
      PixelCodecError,
    );
    assert.throws(() => encapsulatedFrames({ kind: 'fragments', fragments: [] }, 1), PixelCodecError);
  });

  it('encapsulates frames with an offset table and even-length fragments, and splits them back', () => {
    const odd = bytes(0xff, 0xd8, 1, 0xff, 0xd9);
    const value = encapsulateFrames([odd, jpegA]);
    assert.deepEqual(value.fragments[0], u32le(0, 14));
    assert.deepEqual(value.fragments[1], bytes(...odd, 0));
    assert.deepEqual(encapsulatedFrames(value, 2), [bytes(...odd, 0), jpegA]);
    const eot = extendedOffsetTableFor([odd, jpegA]);
    const view = new DataView(eot.offsets.buffer);
    assert.equal(view.getBigUint64(8, true), 14n);
    assert.equal(new DataView(eot.lengths.buffer).getBigUint64(0, true), 5n);
  });
});

describe('RLE Lossless (PS3.5 Annex G)', () => {
  const grey8: PixelModule = {
    rows: 2,
    columns: 4,
    samplesPerPixel: 1,
    bitsAllocated: 8,
    bitsStored: 8,
    highBit: 7,
    pixelRepresentation: 0,
    photometricInterpretation: 'MONOCHROME2',
    planarConfiguration: 0,
    numberOfFrames: 1,
  };

  it('encodes rows separately with replicate and literal runs, an even segment, a 64-byte header', () => {
    const encoded = encodeRle(bytes(7, 7, 7, 7, 1, 2, 3, 4), grey8);
    const header = u32le(1, 64, ...new Array(14).fill(0));
    // Row 1: replicate 4 x 7 (-3 = 0xFD); row 2: literal of 4 (3, then the bytes); 7 bytes, padded.
    assert.deepEqual(encoded, bytes(...header, 0xfd, 7, 3, 1, 2, 3, 4, 0));
    assert.deepEqual(decodeRle(encoded, grey8), bytes(7, 7, 7, 7, 1, 2, 3, 4));
  });

  it('decodes the PackBits no-op (-128) and puts the most significant byte segment first', () => {
    const m16 = { ...grey8, rows: 1, columns: 2, bitsAllocated: 16, bitsStored: 16, highBit: 15 };
    // Segment 1 (high bytes): -128 no-op, literal 0x12 0x34; segment 2 (low bytes): replicate 2 x 0x56.
    const encoded = bytes(...u32le(2, 64, 68, ...new Array(13).fill(0)), 0x80, 1, 0x12, 0x34, 0xff, 0x56);
    assert.deepEqual(decodeRle(encoded, m16), bytes(0x56, 0x12, 0x56, 0x34));
  });

  it('refuses a short frame, a wrong segment count, a bad offset and a short segment', () => {
    const isCodecError = (e: unknown): boolean =>
      e instanceof PixelCodecError && e.code === 'ERR_PIXEL_CODEC';
    assert.throws(() => decodeRle(bytes(1, 0, 0, 0), grey8), isCodecError);
    assert.throws(() => decodeRle(u32le(2, 64, 64, ...new Array(13).fill(0)), grey8), isCodecError);
    assert.throws(
      () => decodeRle(bytes(...u32le(1, 9999, ...new Array(14).fill(0)), 0, 0), grey8),
      isCodecError,
    );
    assert.throws(
      () => decodeRle(bytes(...u32le(1, 64, ...new Array(14).fill(0)), 0xfe, 1), grey8),
      isCodecError,
    );
    assert.throws(() => encodeRle(bytes(1, 2), grey8), isCodecError);
    assert.throws(() => encodeRle(new Uint8Array(8), { ...grey8, bitsAllocated: 1 }), isCodecError);
  });

  it('round-trips random rows of every width from 1 to 300 (literals and runs of at most 128)', () => {
    let seed = 1;
    const rand = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed >> 16;
    };
    for (let columns = 1; columns <= 300; columns += 7) {
      const m = { ...grey8, rows: 3, columns };
      const px = new Uint8Array(3 * columns);
      for (let i = 0; i < px.length; i++) px[i] = rand() % 4 === 0 ? (px[i - 1] ?? 0) : rand() & 3;
      const enc = encodeRle(px, m);
      assert.equal((enc.length - 64) % 2, 0);
      assert.deepEqual(decodeRle(enc, m), px, `width ${columns}`);
    }
  });

  it('refuses corrupt data in the WASM codecs with a codec error, not a crash', async () => {
    for (const uid of [
      UID.JPEGBaseline8Bit,
      UID.JPEGLSLossless,
      UID.JPEG2000,
      UID.HTJ2KLossless,
      UID.JPEGLossless,
    ]) {
      const codec = codecFor(uid);
      assert.ok(codec);
      await assert.rejects(
        codec.decodeFrame(bytes(0xff, 0xd8, 0xff, 0x00, 1, 2, 3), grey8),
        PixelCodecError,
        uid,
      );
    }
  });
});
