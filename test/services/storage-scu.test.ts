/**
 * Storage SCU: the header read (FileInfo), the presentation context plan (own syntax alone, the
 * uncompressed fallback, the 128-context limit), and storeFile over a real loopback against our
 * own AE with a capturing storage service: bytes sent as they are in the file, re-encoding when
 * only another uncompressed syntax was accepted, no fitting context, a malformed file, and the
 * C-MOVE originator fields. Corpus files are read in place.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { TAG } from '../../src/dicom/dictionary.js';
import { toDicomJson } from '../../src/dicom/json.js';
import { parseDicom } from '../../src/dicom/reader.js';
import { EXPLICIT_VR_BE, EXPLICIT_VR_LE, IMPLICIT_VR_LE, UID } from '../../src/dicom/uid.js';
import { encodePart10 } from '../../src/dicom/writer.js';
import { ApplicationEntity, type DicomServer } from '../../src/network/ae.js';
import type { DimseAssociation } from '../../src/network/dimse.js';
import { type DimseCommand, Priority } from '../../src/network/dimse-command.js';
import { Status } from '../../src/network/dimse-status.js';
import type { DimseService } from '../../src/network/service.js';
import {
  type FileInfo,
  MAX_PRESENTATION_CONTEXTS,
  planAssociations,
  planContexts,
  readFileInfo,
  storeFile,
} from '../../src/services/storage/scu.js';
import { TEST_FILES } from '../helpers/corpus.js';
import { waitFor } from '../network/loopback-helpers.js';

const MR = UID.MRImageStorage;
const CT = UID.CTImageStorage;
const JPEG_BASELINE = '1.2.840.10008.1.2.4.50';
const RLE = '1.2.840.10008.1.2.5';
/** A compressed syntax no codec here reads. */
const JPEG_XL = UID.JPEGXLLossless;

function info(sopClassUid: string, transferSyntaxUid: string, n = 0): FileInfo {
  return {
    path: `/nowhere/${sopClassUid}-${transferSyntaxUid}-${n}.dcm`,
    sopClassUid,
    sopInstanceUid: `1.2.3.${n}`,
    transferSyntaxUid,
    dataSetOffset: 0,
    size: 1000,
    encodingMatchesSyntax: true,
  };
}

async function fileInfo(name: string): Promise<FileInfo> {
  const r = await readFileInfo(join(TEST_FILES, name));
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  return r.value;
}

describe('readFileInfo', () => {
  it('gives the SOP UIDs, the syntax and where the data set starts (after the meta)', async () => {
    const f = await fileInfo('CT_small.dcm');
    const bytes = readFileSync(f.path);
    assert.equal(f.sopClassUid, CT);
    assert.equal(f.transferSyntaxUid, EXPLICIT_VR_LE);
    // PS3.10 7.1: 128-byte preamble, DICM, then (0002,0000) UL 4 with the meta's length.
    assert.equal(f.dataSetOffset, 132 + 12 + bytes.readUInt32LE(140));
    assert.equal(bytes.readUInt16LE(f.dataSetOffset), 0x0008, 'the data set starts in group 0008');
    assert.equal(f.size, bytes.length);
    assert.equal(f.encodingMatchesSyntax, true);
  });

  it('reads a raw data set (no meta) from offset 0, in the syntax its bytes show', async () => {
    const f = await fileInfo('ExplVR_BigEndNoMeta.dcm');
    assert.equal(f.dataSetOffset, 0);
    assert.equal(f.transferSyntaxUid, EXPLICIT_VR_BE);
  });

  it('notes a data set not encoded as its meta says', async () => {
    const f = await fileInfo('SC_rgb_jpeg.dcm');
    assert.equal(f.transferSyntaxUid, JPEG_BASELINE);
    assert.equal(f.encodingMatchesSyntax, false);
  });

  it('tells non-DICOM files, objects without SOP UIDs and missing files apart', async () => {
    const text = await readFileInfo(join(TEST_FILES, 'README.txt'));
    assert.equal(text.ok ? '' : text.error.code, 'ERR_NOT_DICOM');
    const noUids = await readFileInfo(join(TEST_FILES, 'meta_missing_tsyntax.dcm'));
    assert.equal(noUids.ok ? '' : noUids.error.code, 'ERR_NOT_STORABLE');
    const missing = await readFileInfo(join(TEST_FILES, 'no-such-file.dcm'));
    assert.equal(missing.ok ? '' : missing.error.code, 'ERR_FILE');
  });
});

describe('planContexts', () => {
  it('proposes each own syntax alone, plus one uncompressed fallback per SOP class', () => {
    const contexts = planContexts([
      info(MR, EXPLICIT_VR_BE, 1),
      info(MR, EXPLICIT_VR_LE, 2),
      info(MR, EXPLICIT_VR_BE, 3),
      info(MR, JPEG_BASELINE, 4),
      info(CT, RLE, 5),
      info(UID.SecondaryCaptureImageStorage, JPEG_XL, 6),
    ]);
    assert.deepEqual(
      contexts.map((c) => [c.abstractSyntax, c.transferSyntaxes]),
      [
        [MR, [EXPLICIT_VR_BE]],
        [MR, [EXPLICIT_VR_LE]],
        [MR, [JPEG_BASELINE]],
        [MR, [EXPLICIT_VR_LE, IMPLICIT_VR_LE]],
        // Compressed that we can decode: the fallback too, it is transcoded when the peer needs it.
        [CT, [RLE]],
        [CT, [EXPLICIT_VR_LE, IMPLICIT_VR_LE]],
        // No codec: no fallback, its data set cannot be decoded.
        [UID.SecondaryCaptureImageStorage, [JPEG_XL]],
      ],
    );
  });

  it('has nothing to propose for no files', () => {
    assert.deepEqual(planContexts([]), []);
  });
});

describe('planAssociations', () => {
  it('keeps every association within 128 contexts and every file in exactly one', () => {
    // 200 SOP classes of 3 files each (2 contexts per class): 64 classes fit in one association.
    const files: FileInfo[] = [];
    for (let i = 0; i < 3; i++)
      for (let c = 0; c < 200; c++) files.push(info(`1.2.826.0.1.99.${c}`, EXPLICIT_VR_LE, i * 1000 + c));
    const plans = planAssociations(files);
    assert.equal(plans.length, 4);
    for (const p of plans) {
      assert.ok(p.contexts.length <= MAX_PRESENTATION_CONTEXTS, `${p.contexts.length} contexts`);
      assert.deepEqual(p.contexts, planContexts(p.files));
    }
    assert.deepEqual(
      plans.map((p) => p.contexts.length),
      [128, 128, 128, 16],
    );
    const sent = plans.flatMap((p) => p.files.map((f) => f.path)).sort();
    assert.deepEqual(sent, files.map((f) => f.path).sort());
    // The files of one SOP class travel together, whatever their order in the input.
    for (const p of plans) {
      for (const f of p.files)
        assert.ok(
          p.contexts.some(
            (c) => c.abstractSyntax === f.sopClassUid && c.transferSyntaxes[0] === f.transferSyntaxUid,
          ),
        );
    }
    const classes = plans.map((p) => new Set(p.files.map((f) => f.sopClassUid)));
    for (let i = 0; i < classes.length; i++)
      for (let j = i + 1; j < classes.length; j++)
        for (const c of classes[i] ?? []) assert.ok(!classes[j]?.has(c), `${c} split across associations`);
  });

  it('fills a gap in an earlier association before opening another (first fit)', () => {
    const files = [
      info('1.2.826.0.1.99.1', JPEG_XL, 1), // 1 context (no codec, no fallback)
      info('1.2.826.0.1.99.2', EXPLICIT_VR_LE, 2), // 2 contexts
      info('1.2.826.0.1.99.3', EXPLICIT_VR_LE, 3), // 2 more: over 4, a second association
      info('1.2.826.0.1.99.4', JPEG_XL, 4), // 1: fits the first again
    ];
    const plans = planAssociations(files, 4);
    assert.deepEqual(
      plans.map((p) => p.files.map((f) => f.sopInstanceUid)),
      [['1.2.3.1', '1.2.3.2', '1.2.3.4'], ['1.2.3.3']],
    );
  });
});

// --- storeFile over a loopback -------------------------------------------------------------------

interface Received {
  command: DimseCommand;
  transferSyntax: string;
  bytes: Buffer;
  error?: Error;
}

/** A storage SCP that accepts `classes` in `syntaxes` only and keeps what it receives. */
function capturingService(
  classes: readonly string[],
  syntaxes: readonly string[],
  received: Received[],
): DimseService {
  return {
    name: 'capture',
    sopClasses: classes.map((uid) => ({ uid })),
    transferSyntaxes: syntaxes,
    handlers: {
      'C-STORE': async (ctx, data) => {
        const chunks: Uint8Array[] = [];
        const r: Received = {
          command: ctx.command,
          transferSyntax: ctx.transferSyntax,
          bytes: Buffer.alloc(0),
        };
        received.push(r);
        try {
          for await (const c of data) chunks.push(Buffer.from(c));
        } catch (e) {
          r.error = e as Error;
          throw e;
        }
        r.bytes = Buffer.concat(chunks);
        return { status: Status.Success };
      },
    },
  };
}

const servers: DicomServer[] = [];
after(async () => {
  for (const s of servers) await s.close(0);
});

async function peer(
  classes: readonly string[],
  syntaxes: readonly string[],
): Promise<{ received: Received[]; connect(files: FileInfo[]): Promise<DimseAssociation> }> {
  const received: Received[] = [];
  const ae = new ApplicationEntity({ aeTitle: 'STORE', maxPduLength: 16384 }).addService(
    capturingService(classes, syntaxes, received),
  );
  const server = await ae.listen({ port: 0, host: '127.0.0.1' });
  servers.push(server);
  const port = server.address?.port ?? 0;
  return {
    received,
    connect: async (files) => {
      const scu = new ApplicationEntity({ aeTitle: 'SCU', maxPduLength: 16384 });
      const r = await scu.connect({
        host: '127.0.0.1',
        port,
        calledAeTitle: 'STORE',
        contexts: planContexts(files),
      });
      assert.ok(r.ok, r.ok ? '' : r.error.message);
      return r.value;
    },
  };
}

describe('storeFile', () => {
  it('sends the data set bytes as they are in the file when its own syntax is accepted', async () => {
    const p = await peer([MR], [EXPLICIT_VR_LE, IMPLICIT_VR_LE, EXPLICIT_VR_BE]);
    const files = [await fileInfo('MR_small_bigendian.dcm'), await fileInfo('MR_small_implicit.dcm')];
    const assoc = await p.connect(files);
    for (const [i, f] of files.entries()) {
      let counted = 0;
      const r = await storeFile(assoc, f, { onBytes: (n) => (counted += n) });
      assert.ok(r.ok, r.ok ? '' : r.error.message);
      assert.equal(r.value.status, Status.Success);
      assert.equal(r.value.reencoded, false);
      assert.equal(r.value.transferSyntaxUid, f.transferSyntaxUid);
      const got = p.received[i];
      assert.equal(got?.transferSyntax, f.transferSyntaxUid);
      assert.ok(got?.bytes.equals(readFileSync(f.path).subarray(f.dataSetOffset)), 'bytes unchanged');
      assert.equal(counted, f.size - f.dataSetOffset);
    }
    await assoc.release();
  });

  it('re-encodes a big endian source for a peer that accepts only little endian: equal values', async () => {
    const p = await peer([MR], [EXPLICIT_VR_LE]);
    const f = await fileInfo('MR_small_bigendian.dcm');
    const assoc = await p.connect([f]);
    const r = await storeFile(assoc, f);
    assert.ok(r.ok, r.ok ? '' : r.error.message);
    assert.equal(r.value.status, Status.Success);
    assert.equal(r.value.reencoded, true);
    assert.equal(r.value.transferSyntaxUid, EXPLICIT_VR_LE);
    await assoc.release();
    const got = p.received[0];
    assert.equal(got?.transferSyntax, EXPLICIT_VR_LE);
    const received = parseDicom(got?.bytes ?? Buffer.alloc(0), {
      format: 'dataset',
      transferSyntax: EXPLICIT_VR_LE,
    }).dataSet;
    const source = parseDicom(readFileSync(f.path)).dataSet;
    // Values compare equal (binary values are read little endian from both); group lengths are
    // optional and dropped when re-encoding (PS3.5 7.2).
    const withoutGroupLengths = (json: Record<string, unknown>) =>
      Object.fromEntries(Object.entries(json).filter(([k]) => !k.endsWith('0000')));
    assert.deepEqual(withoutGroupLengths(toDicomJson(received)), withoutGroupLengths(toDicomJson(source)));
    assert.ok(
      Buffer.from(received.bytes(TAG.PixelData) ?? []).equals(Buffer.from(source.bytes(TAG.PixelData) ?? [])),
    );
  });

  it('re-encodes a file whose data set is not in its declared syntax into that syntax', async () => {
    const SC = UID.SecondaryCaptureImageStorage;
    const p = await peer([SC], [JPEG_BASELINE]);
    const f = await fileInfo('SC_rgb_jpeg.dcm');
    const assoc = await p.connect([f]);
    const r = await storeFile(assoc, f);
    assert.ok(r.ok, r.ok ? '' : r.error.message);
    assert.equal(r.value.reencoded, true);
    assert.equal(r.value.transferSyntaxUid, JPEG_BASELINE);
    await assoc.release();
    const got = p.received[0]?.bytes ?? Buffer.alloc(0);
    // Explicit VR now: the first element header carries its VR.
    assert.equal(got.toString('latin1', 4, 6), 'CS');
    const received = parseDicom(got, { format: 'dataset', transferSyntax: JPEG_BASELINE }).dataSet;
    const source = parseDicom(readFileSync(f.path)).dataSet;
    assert.equal(received.string(TAG.SOPInstanceUID), f.sopInstanceUid);
    assert.equal(received.get(TAG.PixelData)?.vr, 'OB');
    assert.deepEqual(received.get(TAG.PixelData)?.value, source.get(TAG.PixelData)?.value);
  });

  it('sends the C-STORE-RQ fields: SOP UIDs, priority and the C-MOVE originator', async () => {
    const p = await peer([MR], [EXPLICIT_VR_LE]);
    const f = await fileInfo('MR_small.dcm');
    const assoc = await p.connect([f]);
    const r = await storeFile(assoc, f, {
      priority: Priority.High,
      moveOriginator: { aeTitle: 'WORKSTATION', messageId: 77 },
    });
    assert.ok(r.ok);
    await assoc.release();
    const cmd = p.received[0]?.command;
    assert.equal(cmd?.affectedSopClassUid, MR);
    assert.equal(cmd?.affectedSopInstanceUid, f.sopInstanceUid);
    assert.equal(cmd?.priority, Priority.High);
    assert.equal(cmd?.moveOriginatorAet, 'WORKSTATION');
    assert.equal(cmd?.moveOriginatorMessageId, 77);
  });

  it('fails clearly without a fitting context, and the association stays usable', async () => {
    const p = await peer([MR], [EXPLICIT_VR_LE]);
    const ct = await fileInfo('CT_small.dcm');
    // MR_small in JPEG XL, which no codec here reads.
    const dir = mkdtempSync(join(tmpdir(), 'pacs-scu-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const xlPath = join(dir, 'mr-jxl.dcm');
    writeFileSync(
      xlPath,
      encodePart10(parseDicom(readFileSync(join(TEST_FILES, 'MR_small_jp2klossless.dcm'))).dataSet, JPEG_XL),
    );
    const xl = await readFileInfo(xlPath);
    assert.ok(xl.ok);
    const jpeg = xl.value;
    const j2k = await fileInfo('MR_small_jp2klossless.dcm');
    const mr = await fileInfo('MR_small.dcm');
    const assoc = await p.connect([ct, jpeg, j2k, mr]);
    const noClass = await storeFile(assoc, ct);
    assert.equal(noClass.ok ? '' : noClass.error.code, 'ERR_NO_CONTEXT');
    assert.match(
      noClass.ok ? '' : noClass.error.message,
      /accepted no presentation context for .*CT Image Storage/,
    );
    const compressed = await storeFile(assoc, jpeg);
    assert.equal(compressed.ok ? '' : compressed.error.code, 'ERR_NO_CONTEXT');
    assert.match(compressed.ok ? '' : compressed.error.message, /JPEG XL.*no decoder/);
    // The JPEG 2000 one is decoded for the peer (issue 13 transcoding).
    const transcoded = await storeFile(assoc, j2k);
    assert.ok(transcoded.ok && transcoded.value.status === Status.Success);
    assert.equal(transcoded.value.transferSyntaxUid, EXPLICIT_VR_LE);
    const fine = await storeFile(assoc, mr);
    assert.ok(fine.ok && fine.value.status === Status.Success);
    await assoc.release();
    assert.equal(p.received.length, 2);
    // Decoded to MR_small's own pixels.
    const mrPixels = parseDicom(readFileSync(join(TEST_FILES, 'MR_small.dcm'))).dataSet.bytes(TAG.PixelData);
    const got = parseDicom((p.received[0] as Received).bytes, {
      format: 'dataset',
      transferSyntax: EXPLICIT_VR_LE,
    });
    assert.ok(Buffer.from(got.dataSet.bytes(TAG.PixelData) ?? []).equals(Buffer.from(mrPixels ?? [1])));
  });

  it('aborts the association when the file turns out malformed part-way: nothing is completed', async () => {
    const p = await peer([MR, UID.RTPlanStorage], [EXPLICIT_VR_LE, IMPLICIT_VR_LE]);
    for (const name of ['MR_truncated.dcm', 'rtplan_truncated.dcm']) {
      const f = await fileInfo(name);
      const assoc = await p.connect([f]);
      const r = await storeFile(assoc, f);
      assert.equal(r.ok ? '' : r.error.code, 'ERR_FILE', name);
      assert.match(r.ok ? '' : r.error.message, /^malformed: unexpected end of data/);
      assert.equal(assoc.canSend, false);
      await assoc.run();
    }
    // Neither was completed. The command travels with the data set's first PDV (pdata-writer.ts),
    // so a file that fails within its first PDV (both are under 16 KiB) never leaves at all: the
    // SCP sees no C-STORE, only the abort.
    await waitFor(() => p.received.every((r) => r.error !== undefined));
    assert.equal(p.received.length, 0);
  });

  it('fails a file gone since its header was read without touching the association', async () => {
    const p = await peer([MR], [EXPLICIT_VR_LE]);
    const f = await fileInfo('MR_small.dcm');
    const assoc = await p.connect([f]);
    const gone = await storeFile(assoc, { ...f, path: join(TEST_FILES, 'vanished.dcm') });
    assert.equal(gone.ok ? '' : gone.error.code, 'ERR_FILE');
    assert.equal(assoc.canSend, true);
    const fine = await storeFile(assoc, f);
    assert.ok(fine.ok && fine.value.status === Status.Success);
    await assoc.release();
    assert.equal(p.received.length, 1);
  });

  it('reports the association ending as ERR_ASSOCIATION', async () => {
    const p = await peer([MR], [EXPLICIT_VR_LE]);
    const f = await fileInfo('MR_small.dcm');
    const assoc = await p.connect([f]);
    assoc.abort();
    const r = await storeFile(assoc, f);
    assert.equal(r.ok ? '' : r.error.code, 'ERR_ASSOCIATION');
  });
});
