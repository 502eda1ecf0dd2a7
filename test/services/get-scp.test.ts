/**
 * C-GET SCP and SCU over loopback in one process: our archive (SQLite in a temporary folder) with
 * the storage service (the requestor may take the Storage SCP role) and the get service; our get
 * SCU writing what arrives into a folder. Checked: data sets arrive byte for byte with pending
 * counts; no role selection or no context for a SOP class fails those sub-operations cleanly
 * (0xA702 / 0xB000 and the list); C-CANCEL in the middle (0xFE00 with counts); 0xA900.
 */
import assert from 'node:assert/strict';
import {
  appendFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Archive, openArchive } from '../../src/archive/archive.js';
import { unwrap } from '../../src/core/result.js';
import { DataSet } from '../../src/dicom/dataset.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { EXPLICIT_VR_LE, IMPLICIT_VR_LE, UID } from '../../src/dicom/uid.js';
import { encodePart10 } from '../../src/dicom/writer.js';
import { ApplicationEntity, type DicomServer } from '../../src/network/ae.js';
import type { ProposedPresentationContext } from '../../src/network/association.js';
import { Status } from '../../src/network/dimse-status.js';
import type { DimseService } from '../../src/network/service.js';
import { getService } from '../../src/services/query-retrieve/get-scp.js';
import {
  folderReceiver,
  get,
  getContexts,
  type ReceivedObject,
} from '../../src/services/query-retrieve/get-scu.js';
import { STUDY_ROOT } from '../../src/services/query-retrieve/models.js';
import { type RetrieveProgress, retrieveContext } from '../../src/services/query-retrieve/move-scu.js';
import { storageService } from '../../src/services/storage/scp.js';
import { type FileInfo, planAssociations, readFileInfo, storeFile } from '../../src/services/storage/scu.js';
import { makeCtDataSet, writeCtSeries } from '../helpers/synthetic.js';

const dirs: string[] = [];
function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

async function storeAll(port: number, paths: readonly string[]): Promise<FileInfo[]> {
  const infos = await Promise.all(paths.map(async (p) => unwrap(await readFileInfo(p))));
  for (const plan of planAssociations(infos)) {
    const assoc = unwrap(
      await new ApplicationEntity({ aeTitle: 'MODALITY' }).connect({
        host: '127.0.0.1',
        port,
        calledAeTitle: 'PACS',
        contexts: plan.contexts,
      }),
    );
    for (const f of plan.files) assert.equal(unwrap(await storeFile(assoc, f)).status, Status.Success);
    await assoc.release();
  }
  return infos;
}

function identifier(level: string, keys: Record<number, string | string[]>): DataSet {
  const ds = new DataSet();
  ds.setString(TAG.QueryRetrieveLevel, level);
  for (const [tag, value] of Object.entries(keys)) ds.setString(Number(tag), value);
  return ds;
}

/** A receiver that is slow, to cancel in the middle. */
function slowReceiver(inner: DimseService, delayMs: number): DimseService {
  const store = inner.handlers['C-STORE'];
  return {
    ...inner,
    handlers: {
      'C-STORE': async (ctx, data) => {
        await new Promise((r) => setTimeout(r, delayMs));
        if (!store) throw new Error('no C-STORE handler');
        return store(ctx, data);
      },
    },
  };
}

describe('C-GET SCP (loopback)', () => {
  let archive: Archive;
  let server: DicomServer;
  let port: number;
  const study = '1.2.826.0.1.3680043.8.498.8001';
  const series = '1.2.826.0.1.3680043.8.498.8001.1';
  const bigStudy = '1.2.826.0.1.3680043.8.498.8002';
  let files: FileInfo[] = [];
  let mr: FileInfo;
  let bigFiles: FileInfo[] = [];

  before(async () => {
    archive = await openArchive({ dataDir: tempDir('pacs-get-archive-'), durability: 'none' });
    server = await new ApplicationEntity({ aeTitle: 'PACS' })
      // A C-GET requestor takes the Storage SCP role (PS3.7 D.3.3.4).
      .addService({ ...storageService({ archive }), requestorRoles: { scu: true, scp: true } })
      .addService(getService({ archive }))
      .listen({ port: 0, host: '127.0.0.1' });
    port = server.address?.port ?? 0;
    const src = tempDir('pacs-get-src-');
    const ct = writeCtSeries(join(src, 'ct'), 5, {
      studyInstanceUid: study,
      seriesInstanceUid: series,
      rows: 64,
      columns: 64,
    });
    // An MR image in the same series, stored Implicit VR LE.
    const mrDs = makeCtDataSet({ studyInstanceUid: study, seriesInstanceUid: series, rows: 16, columns: 16 });
    mrDs.setString(TAG.SOPClassUID, UID.MRImageStorage);
    mkdirSync(join(src, 'mr'));
    const mrPath = join(src, 'mr', 'mr.dcm');
    writeFileSync(mrPath, encodePart10(mrDs, IMPLICIT_VR_LE));
    files = await storeAll(port, ct);
    [mr] = (await storeAll(port, [mrPath])) as [FileInfo];
    bigFiles = await storeAll(
      port,
      writeCtSeries(join(src, 'big'), 30, { studyInstanceUid: bigStudy, rows: 32, columns: 32 }),
    );
  });
  after(async () => {
    await server.close(1000);
    await archive.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  async function requestGet(
    id: DataSet,
    options: {
      contexts?: ProposedPresentationContext[];
      receiver?: (dir: string, got: ReceivedObject[]) => DimseService;
      signal?: AbortSignal;
      onProgress?: (p: RetrieveProgress) => void;
    } = {},
  ) {
    const dir = tempDir('pacs-get-out-');
    const got: ReceivedObject[] = [];
    const receiver = options.receiver?.(dir, got) ?? folderReceiver({ dir, onObject: (o) => got.push(o) });
    const assoc = unwrap(
      await new ApplicationEntity({ aeTitle: 'GETSCU' }).addService(receiver).connect({
        host: '127.0.0.1',
        port,
        calledAeTitle: 'PACS',
        contexts: options.contexts ?? getContexts(STUDY_ROOT),
      }),
    );
    try {
      const outcome = unwrap(
        await get(assoc, {
          model: STUDY_ROOT,
          identifier: id,
          ...(options.signal ? { signal: options.signal } : {}),
          ...(options.onProgress ? { onProgress: options.onProgress } : {}),
        }),
      );
      return { outcome, got, dir };
    } finally {
      await assoc.release();
    }
  }

  it('gets a series: every data set arrives unchanged as a Part-10 file named by its hash', async () => {
    const progress: RetrieveProgress[] = [];
    const { outcome, got, dir } = await requestGet(
      identifier('SERIES', { [TAG.StudyInstanceUID]: study, [TAG.SeriesInstanceUID]: series }),
      { onProgress: (p) => progress.push(p) },
    );
    const all = [...files, mr];
    assert.equal(outcome.status, Status.Success);
    assert.deepEqual([outcome.completed, outcome.failed, outcome.warning], [all.length, 0, 0]);
    assert.equal(progress.length, all.length - 1, 'a pending response after each sub-operation but the last');
    assert.deepEqual(
      progress.map((p) => p.remaining),
      Array.from({ length: all.length - 1 }, (_, i) => all.length - 1 - i),
    );
    assert.equal(readdirSync(dir).filter((n) => n.endsWith('.dcm')).length, all.length);
    assert.deepEqual(
      readdirSync(dir).filter((n) => n.endsWith('.part')),
      [],
    );
    for (const f of all) {
      const o = got.find((g) => g.sopInstanceUid === f.sopInstanceUid);
      assert.ok(o, `received ${f.sopInstanceUid}`);
      assert.match(o.path, /[0-9a-f]{24}\.dcm$/);
      assert.equal(o.transferSyntaxUid, f.transferSyntaxUid);
      const written = unwrap(await readFileInfo(o.path));
      assert.equal(written.sopInstanceUid, f.sopInstanceUid);
      const original = readFileSync(f.path).subarray(f.dataSetOffset);
      assert.ok(readFileSync(o.path).subarray(written.dataSetOffset).equals(original), 'same data set bytes');
    }
  });

  it('without the Storage SCP role negotiated every sub-operation fails cleanly: 0xA702', async () => {
    const contexts: ProposedPresentationContext[] = [
      retrieveContext(STUDY_ROOT, 'get'),
      // No role selection: we would be the SCU on it, so the SCP cannot send on it.
      { abstractSyntax: UID.CTImageStorage, transferSyntaxes: [EXPLICIT_VR_LE] },
    ];
    const { outcome, got } = await requestGet(
      identifier('IMAGE', {
        [TAG.StudyInstanceUID]: study,
        [TAG.SeriesInstanceUID]: series,
        [TAG.SOPInstanceUID]: files.slice(0, 3).map((f) => f.sopInstanceUid),
      }),
      { contexts },
    );
    assert.equal(outcome.status, Status.OutOfResourcesSubOperations);
    assert.deepEqual([outcome.completed, outcome.failed, outcome.warning], [0, 3, 0]);
    assert.deepEqual(
      [...outcome.failedSopInstanceUids].sort(),
      files
        .slice(0, 3)
        .map((f) => f.sopInstanceUid)
        .sort(),
    );
    assert.match(outcome.errorComment ?? '', /accepted no presentation context/);
    assert.equal(got.length, 0);
  });

  it('an object whose SOP class was not proposed fails alone: 0xB000 with its UID', async () => {
    const { outcome, got } = await requestGet(
      identifier('SERIES', { [TAG.StudyInstanceUID]: study, [TAG.SeriesInstanceUID]: series }),
      { contexts: getContexts(STUDY_ROOT, { storageSopClasses: [UID.CTImageStorage] }) },
    );
    assert.equal(outcome.status, Status.SubOperationsCompleteWithFailures);
    assert.deepEqual([outcome.completed, outcome.failed, outcome.warning], [files.length, 1, 0]);
    assert.deepEqual(outcome.failedSopInstanceUids, [mr.sopInstanceUid]);
    assert.equal(got.length, files.length);
  });

  it('C-CANCEL in the middle: 0xFE00 with the counts and the remaining ones', async () => {
    const cancel = new AbortController();
    const { outcome, got } = await requestGet(identifier('STUDY', { [TAG.StudyInstanceUID]: bigStudy }), {
      signal: cancel.signal,
      onProgress: () => cancel.abort(),
      receiver: (dir, out) => slowReceiver(folderReceiver({ dir, onObject: (o) => out.push(o) }), 10),
    });
    assert.equal(outcome.status, Status.Cancel);
    assert.equal(outcome.cancelled, true);
    const done = outcome.completed ?? 0;
    assert.ok(done >= 1 && done < bigFiles.length, `stopped part-way (${done})`);
    assert.equal(outcome.remaining, bigFiles.length - done);
    assert.equal(got.length, done);
  });

  it('a file changed on disk since it was archived fails alone instead of being sent', async () => {
    const changed = files[2] as FileInfo;
    const indexed = await archive.index.findInstance(changed.sopInstanceUid);
    assert.ok(indexed);
    appendFileSync(archive.store.absolutePath(indexed.path), Buffer.from([0, 0]));
    const { outcome, got } = await requestGet(
      identifier('IMAGE', {
        [TAG.StudyInstanceUID]: study,
        [TAG.SeriesInstanceUID]: series,
        [TAG.SOPInstanceUID]: files.slice(1, 4).map((f) => f.sopInstanceUid),
      }),
    );
    assert.equal(outcome.status, Status.SubOperationsCompleteWithFailures);
    assert.deepEqual([outcome.completed, outcome.failed], [2, 1]);
    assert.deepEqual(outcome.failedSopInstanceUids, [changed.sopInstanceUid]);
    assert.match(outcome.errorComment ?? '', /^file changed on disk: \d+ bytes, indexed \d+/);
    assert.equal(got.length, 2);
  });

  it('answers 0xA900 for a STUDY retrieve without Study Instance UID', async () => {
    const { outcome } = await requestGet(identifier('STUDY', { [TAG.PatientID]: 'X' }));
    assert.equal(outcome.status, Status.IdentifierDoesNotMatchSopClass);
    assert.match(outcome.errorComment ?? '', /STUDY retrieve needs StudyInstanceUID/);
  });
});
