/**
 * Bounded memory (issue 13): a 300 MB multi-frame object (600 frames of 512x512x16 bits) is
 * transcoded to RLE and back frame by frame, in a child process whose peak resident set is read
 * from process.resourceUsage(): it stays far below the object's size. The bound is generous
 * (the runtime, the worker thread and the codecs' heaps), but fails if the object is held whole.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DataSet } from '../../src/dicom/dataset.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { EXPLICIT_VR_LE, UID } from '../../src/dicom/uid.js';
import { DataSetWriter, emitDataSet, encodeFileMeta } from '../../src/dicom/writer.js';
import { run } from '../helpers/cli.js';
import { tempDir } from '../server/helpers.js';

const ROWS = 512;
const COLUMNS = 512;
const FRAMES = 600;
const FRAME = ROWS * COLUMNS * 2;

/** Writes the multi-frame object by streaming: the header, then Pixel Data one frame at a time. */
async function writeLargeObject(path: string): Promise<void> {
  const out = createWriteStream(path);
  const put = async (b: Uint8Array): Promise<void> => {
    if (!out.write(b)) await once(out, 'drain');
  };
  const sop = '1.2.826.0.1.3680043.8.498.13099';
  await put(
    encodeFileMeta({
      mediaStorageSopClassUid: UID.MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
      mediaStorageSopInstanceUid: sop,
      transferSyntaxUid: EXPLICIT_VR_LE,
    }),
  );
  const ds = new DataSet();
  ds.setString(TAG.SOPClassUID, UID.MultiFrameGrayscaleWordSecondaryCaptureImageStorage);
  ds.setString(TAG.SOPInstanceUID, sop);
  ds.setString(TAG.PatientName, 'Large^Object');
  ds.setNumbers(TAG.SamplesPerPixel, 1);
  ds.setString(TAG.PhotometricInterpretation, 'MONOCHROME2');
  ds.setString(TAG.NumberOfFrames, String(FRAMES), 'IS');
  ds.setNumbers(TAG.Rows, ROWS);
  ds.setNumbers(TAG.Columns, COLUMNS);
  ds.setNumbers(TAG.BitsAllocated, 16);
  ds.setNumbers(TAG.BitsStored, 12);
  ds.setNumbers(TAG.HighBit, 11);
  ds.setNumbers(TAG.PixelRepresentation, 0);
  const chunks: Uint8Array[] = [];
  const w = new DataSetWriter((c) => chunks.push(c), EXPLICIT_VR_LE);
  emitDataSet(ds, w);
  w.valueStart(TAG.PixelData, 'OW', FRAME * FRAMES);
  w.end();
  for (const c of chunks) await put(c);
  const frame = new Uint8Array(FRAME);
  for (let k = 0; k < FRAMES; k++) {
    // A smooth image that moves with k: compressible, and each frame different.
    for (let i = 0; i < ROWS * COLUMNS; i++) {
      const v = ((i % COLUMNS) + (i >> 9) + k) & 0xfff;
      frame[2 * i] = v & 0xff;
      frame[2 * i + 1] = v >> 8;
    }
    await put(frame.slice());
  }
  out.end();
  await once(out, 'finish');
}

const CHILD = `
import { transcodeFile, closeTranscodePool } from ${JSON.stringify(new URL('../../src/io/transcode.js', import.meta.url).href)};
const [input, rle, back] = process.argv.slice(2);
const a = await transcodeFile(input, rle, { to: '${UID.RLELossless}' });
const b = await transcodeFile(rle, back, { to: '${EXPLICIT_VR_LE}' });
await closeTranscodePool();
console.log(JSON.stringify({ a, b, maxRssKb: process.resourceUsage().maxRSS }));
`;

describe('a 300 MB multi-frame object transcodes with bounded memory', () => {
  let work: { path: string; remove: () => Promise<void> };
  after(async () => work?.remove());

  it('to RLE and back: every frame, peak RSS well under the object size, the same bytes back', async () => {
    work = await tempDir('pacs-transcode-memory-');
    const input = join(work.path, 'large.dcm');
    await writeLargeObject(input);
    const rle = join(work.path, 'large-rle.dcm');
    const back = join(work.path, 'large-back.dcm');
    // A script file, not --eval: worker threads inherit the process's execArgv.
    const script = join(work.path, 'child.mjs');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(script, CHILD);
    const r = await run(process.execPath, [script, input, rle, back], {
      timeoutMs: 600_000,
    });
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as {
      a: { frames: number };
      b: { frames: number };
      maxRssKb: number;
    };
    assert.equal(report.a.frames, FRAMES);
    assert.equal(report.b.frames, FRAMES);
    const peakMb = report.maxRssKb / 1024;
    const objectMb = (FRAME * FRAMES) / 1024 / 1024;
    assert.ok(
      peakMb < objectMb * 0.75,
      `peak RSS ${peakMb.toFixed(0)} MB for a ${objectMb.toFixed(0)} MB object`,
    );
    // Back to Explicit VR LE: the same file as the source (same elements, same pixel bytes).
    const { createHash } = await import('node:crypto');
    const { createReadStream } = await import('node:fs');
    const hash = async (p: string, skip: number): Promise<string> => {
      const h = createHash('sha256');
      for await (const c of createReadStream(p, { start: skip })) h.update(c as Buffer);
      return h.digest('hex');
    };
    // The data sets (after each file meta) are identical.
    const { readFileInfo } = await import('../../src/services/storage/scu.js');
    const ia = await readFileInfo(input);
    const ib = await readFileInfo(back);
    assert.ok(ia.ok && ib.ok);
    assert.equal(await hash(back, ib.value.dataSetOffset), await hash(input, ia.value.dataSetOffset));
    process.stdout.write(`# peak RSS ${peakMb.toFixed(0)} MB for ${objectMb.toFixed(0)} MB\n`);
  });
});
