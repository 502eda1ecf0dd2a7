/**
 * Transcoding on the way out against DCMTK (issue 13): `pacs store` of every compressed file of
 * the pydicom corpus to a storescp that accepts only uncompressed syntaxes (its default) arrives,
 * lossless ones with the oracle's pixel values exactly (lossy within the decoders' tolerance), the
 * corrupt one failing alone with its reason; C-MOVE (movescu) and C-GET (getscu) of a JPEG 2000
 * study (encoded by our J2K lossless encoder) to such a peer arrive with the original pixels; a
 * peer that accepts JPEG 2000 (storescp +xa) gets the stored bytes unchanged; an object no codec
 * reads fails its sub-operation (counted), the others arrive.
 */
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Archive, openArchive } from '../../src/archive/archive.js';
import { jobStoreFor } from '../../src/archive/jobs/open.js';
import { JobRunner } from '../../src/archive/jobs/runner.js';
import { parseDicom } from '../../src/dicom/reader.js';
import { EXPLICIT_VR_LE, IMPLICIT_VR_LE, UID } from '../../src/dicom/uid.js';
import { encodePart10 } from '../../src/dicom/writer.js';
import { closeTranscodePool, transcodeFile } from '../../src/io/transcode.js';
import { ApplicationEntity, type DicomServer } from '../../src/network/ae.js';
import { findService } from '../../src/services/query-retrieve/find-scp.js';
import { getService } from '../../src/services/query-retrieve/get-scp.js';
import { moveService } from '../../src/services/query-retrieve/move-scp.js';
import { storageService } from '../../src/services/storage/scp.js';
import type { FileInfo } from '../../src/services/storage/scu.js';
import {
  compressedCorpusFiles,
  maxDifference,
  nativeFrames,
  runOracleFor,
  sampleValues,
} from '../dicom/codec-pixel-oracle.js';
import { run, runPacs } from '../helpers/cli.js';
import { dcmtkTool } from '../helpers/corpus.js';
import { writeCtSeries } from '../helpers/synthetic.js';
import { type Child, freePort, spawnChild, tempDir, waitForPort } from '../server/helpers.js';
import { fileInfos, finalCount, finalStatus } from './dcmtk-output.js';

const DCMTK_ENV = { TCP_NODELAY: '1' };
const CORRUPT = 'JPEG2000-embedded-sequence-delimiter.dcm';

/** Sample values of every frame, masked to `bitsStored`. */
async function pixelValues(path: string, bitsStored?: number): Promise<number[][]> {
  const n = nativeFrames(path);
  const m = bitsStored === undefined ? n.module : { ...n.module, bitsStored };
  return n.frames.map((f) => sampleValues(f, m));
}

describe('transcoding on the way out, against DCMTK', () => {
  let work: { path: string; remove: () => Promise<void> };
  let archive: Archive;
  let runner: JobRunner;
  let server: DicomServer;
  let port: number;
  let nativeScp: Child;
  let nativePort: number;
  let nativeDir: string;
  let allScp: Child;
  let allDir: string;
  let natives: FileInfo[] = [];
  let j2k: FileInfo[] = [];
  const study = '1.2.826.0.1.3680043.8.498.13001';
  const mixedStudy = '1.2.826.0.1.3680043.8.498.13002';

  before(async () => {
    work = await tempDir('pacs-interop-transcode-');
    nativePort = await freePort();
    const allPort = await freePort();
    nativeDir = join(work.path, 'native-scp');
    allDir = join(work.path, 'all-scp');
    await mkdir(nativeDir);
    await mkdir(allDir);
    // Its default: only Explicit / Implicit VR LE (and Big Endian) are accepted.
    nativeScp = spawnChild(dcmtkTool('storescp'), ['-aet', 'NATIVE', '-od', nativeDir, String(nativePort)], {
      env: DCMTK_ENV,
      name: 'storescp native',
    });
    // +xa: every syntax DCMTK knows, JPEG 2000 included; +B: written as received.
    allScp = spawnChild(dcmtkTool('storescp'), ['-aet', 'ALL', '+xa', '+B', '-od', allDir, String(allPort)], {
      env: DCMTK_ENV,
      name: 'storescp all',
    });
    archive = await openArchive({ dataDir: join(work.path, 'archive'), durability: 'none' });
    runner = new JobRunner(jobStoreFor(archive.index), { pollMs: 50, backoff: { baseMs: 100, jitter: 0 } });
    server = await new ApplicationEntity({ aeTitle: 'PACS' })
      .addService({ ...storageService({ archive }), requestorRoles: { scu: true, scp: true } })
      .addService(findService({ archive }))
      .addService(
        moveService({
          archive,
          jobs: runner,
          attempts: 1,
          peers: [
            { aet: 'NATIVE', host: '127.0.0.1', port: nativePort },
            { aet: 'ALL', host: '127.0.0.1', port: allPort },
          ],
        }),
      )
      .addService(getService({ archive }))
      .listen({ port: 0, host: '127.0.0.1' });
    runner.start();
    port = server.address?.port ?? 0;
    await waitForPort(nativePort);
    await waitForPort(allPort);
    // A CT study, JPEG 2000 lossless by our encoder, stored through our own SCU.
    const src = join(work.path, 'src');
    const nativePaths = writeCtSeries(join(src, 'native'), 6, {
      studyInstanceUid: study,
      rows: 128,
      columns: 128,
    });
    await mkdir(join(src, 'j2k'));
    for (const p of nativePaths)
      await transcodeFile(p, join(src, 'j2k', p.split('/').at(-1) as string), { to: UID.JPEG2000Lossless });
    natives = await fileInfos(join(src, 'native'));
    j2k = await fileInfos(join(src, 'j2k'));
    assert.ok(j2k.every((f) => f.transferSyntaxUid === UID.JPEG2000Lossless));
    // A second study: two J2K objects and one in JPEG XL, which no codec here reads.
    const mixed = writeCtSeries(join(src, 'mixed'), 3, {
      studyInstanceUid: mixedStudy,
      rows: 64,
      columns: 64,
    });
    await mkdir(join(src, 'mixed-enc'));
    for (const [i, p] of mixed.entries()) {
      const out = join(src, 'mixed-enc', `m${i}.dcm`);
      if (i < 2) await transcodeFile(p, out, { to: UID.JPEG2000Lossless });
      else {
        const { writeFile } = await import('node:fs/promises');
        const enc = join(src, 'mixed-enc', 'tmp.dcm');
        await transcodeFile(p, enc, { to: UID.JPEG2000Lossless });
        await writeFile(out, encodePart10(parseDicom(await readFile(enc)).dataSet, UID.JPEGXLLossless));
        await rm(enc);
      }
    }
    const stored = await runPacs([
      'store',
      '--aec',
      'PACS',
      '127.0.0.1',
      String(port),
      join(src, 'j2k'),
      join(src, 'mixed-enc'),
    ]);
    assert.equal(stored.code, 0, stored.stderr);
  });

  after(async () => {
    await nativeScp?.stop();
    await allScp?.stop();
    await server?.close(1000);
    await runner?.stop();
    await archive?.close();
    await closeTranscodePool();
    await work?.remove();
  });

  async function clear(dir: string): Promise<void> {
    for (const n of await readdir(dir)) await rm(join(dir, n), { force: true });
  }

  it('pacs store of every compressed corpus file to a storescp taking only uncompressed syntaxes', async () => {
    const files = compressedCorpusFiles();
    // Several corpus files share a SOP Instance UID (storescp names files by it): send in batches of distinct ones.
    const batches: (typeof files)[] = [];
    for (const f of files) {
      const uid = f.dataSet.string(0x00080018);
      const batch = batches.find((b) => !b.some((x) => x.dataSet.string(0x00080018) === uid));
      if (batch) batch.push(f);
      else batches.push([f]);
    }
    let checked = 0;
    for (const batch of batches) {
      await clear(nativeDir);
      const r = await runPacs([
        'store',
        '--json',
        '--aec',
        'NATIVE',
        '127.0.0.1',
        String(nativePort),
        ...batch.map((f) => f.path),
      ]);
      const report = JSON.parse(r.stdout) as {
        files: { path: string; status: number | null; statusText: string; transferSyntaxUid?: string }[];
      };
      const received = new Map((await fileInfos(nativeDir)).map((i) => [i.sopInstanceUid, i]));
      for (const f of batch) {
        const entry = report.files.find((e) => e.path === f.path);
        assert.ok(entry, f.name);
        if (f.name === CORRUPT) {
          assert.equal(entry.status, null);
          assert.match(entry.statusText, /cannot transcode.*JPEG 2000/);
          continue;
        }
        assert.equal(entry.status, 0, `${f.name}: ${entry.statusText}`);
        assert.ok(entry.transferSyntaxUid === EXPLICIT_VR_LE || entry.transferSyntaxUid === IMPLICIT_VR_LE);
        const got = received.get(f.dataSet.string(0x00080018) ?? '');
        assert.ok(got, `${f.name} arrived`);
        const oracle = join(work.path, `oracle-${f.name}`);
        runOracleFor(f.name, f.transferSyntax, f.path, oracle);
        const want = await pixelValues(oracle, f.module.bitsStored);
        const have = await pixelValues(got.path, f.module.bitsStored);
        assert.equal(have.length, want.length, f.name);
        const lossy = f.transferSyntax === UID.JPEGBaseline8Bit || f.transferSyntax === UID.JPEGExtended12Bit;
        for (let k = 0; k < want.length; k++) {
          const d = maxDifference(have[k] as number[], want[k] as number[]);
          assert.ok(lossy ? d <= 2 : d === 0, `${f.name} frame ${k + 1}: difference ${d}`);
        }
        checked++;
      }
    }
    assert.ok(checked >= 30, `${checked} objects checked`);
  });

  function movescu(dest: string, studyUid: string) {
    return run(
      dcmtkTool('movescu'),
      [
        '-d',
        '-S',
        '-aec',
        'PACS',
        '-aem',
        dest,
        '-k',
        'QueryRetrieveLevel=STUDY',
        '-k',
        `StudyInstanceUID=${studyUid}`,
        '127.0.0.1',
        String(port),
      ],
      { env: DCMTK_ENV },
    );
  }

  async function assertOriginalPixels(dir: string): Promise<void> {
    const received = new Map((await fileInfos(dir)).map((i) => [i.sopInstanceUid, i]));
    assert.equal(received.size, natives.length);
    for (const n of natives) {
      const r = received.get(n.sopInstanceUid);
      assert.ok(r, n.sopInstanceUid);
      assert.equal(r.transferSyntaxUid, EXPLICIT_VR_LE);
      assert.deepEqual(await pixelValues(r.path), await pixelValues(n.path), n.sopInstanceUid);
    }
  }

  it('C-MOVE (movescu) of the JPEG 2000 study to the uncompressed-only storescp: original pixels', async () => {
    await clear(nativeDir);
    const r = await movescu('NATIVE', study);
    const out = r.stdout + r.stderr;
    assert.equal(finalStatus(out), '0x0000', out);
    assert.equal(finalCount(out, 'Completed'), j2k.length);
    await assertOriginalPixels(nativeDir);
  });

  it('C-MOVE to a storescp that accepts JPEG 2000: the stored bytes, unchanged', async () => {
    const r = await movescu('ALL', study);
    const out = r.stdout + r.stderr;
    assert.equal(finalStatus(out), '0x0000', out);
    const received = new Map((await fileInfos(allDir)).map((i) => [i.sopInstanceUid, i]));
    for (const s of j2k) {
      const got = received.get(s.sopInstanceUid);
      assert.ok(got);
      assert.equal(got.transferSyntaxUid, UID.JPEG2000Lossless);
      const a = (await readFile(got.path)).subarray(got.dataSetOffset);
      const b = (await readFile(s.path)).subarray(s.dataSetOffset);
      assert.ok(a.equals(b), `${s.sopInstanceUid}: same data set bytes`);
    }
  });

  it('C-GET (getscu, proposing uncompressed syntaxes only) of the JPEG 2000 study: original pixels', async () => {
    const dir = join(work.path, 'getscu');
    await mkdir(dir);
    const r = await run(
      dcmtkTool('getscu'),
      [
        '-d',
        '-S',
        '-aec',
        'PACS',
        '-od',
        dir,
        '-k',
        'QueryRetrieveLevel=STUDY',
        '-k',
        `StudyInstanceUID=${study}`,
        '127.0.0.1',
        String(port),
      ],
      { env: DCMTK_ENV },
    );
    const out = r.stdout + r.stderr;
    assert.equal(r.code, 0, out);
    assert.equal(finalStatus(out), '0x0000', out);
    await assertOriginalPixels(dir);
  });

  it('an object no codec reads fails its own sub-operation; the others arrive', async () => {
    await clear(nativeDir);
    const r = await movescu('NATIVE', mixedStudy);
    const out = r.stdout + r.stderr;
    assert.equal(finalStatus(out), '0xb000', out);
    assert.equal(finalCount(out, 'Completed'), 2);
    assert.equal(finalCount(out, 'Failed'), 1);
    assert.equal((await fileInfos(nativeDir)).length, 2);
  });
});
