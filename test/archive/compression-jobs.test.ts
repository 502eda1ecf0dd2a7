/**
 * Compression at rest as a job of the queue, and its crash states: an object stored is compressed
 * by a 'compress' job at background priority whose result says the disk saved (and an
 * 'object-compressed' event); a corrupting encoder fails the job with the reason recorded and
 * nothing replaced; the two states a kill can leave (a committed copy not yet indexed, an original
 * not yet removed after the switch) are repaired by the start-up reconcile so that each object is
 * indexed once and readable; a retrieve that looked the row up or opened the file before the
 * switch still reads the object. SQLite and PostgreSQL.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { compressInstance, storeTranscoder } from '../../src/archive/compression/compress.js';
import {
  COMPRESS_JOB,
  type CompressJobResult,
  compressionService,
  DelayedRemovals,
} from '../../src/archive/compression/service.js';
import type { Job } from '../../src/archive/jobs/job.js';
import { JobPriority } from '../../src/archive/jobs/job.js';
import { EventBus, type EventOf } from '../../src/core/events.js';
import { UID } from '../../src/dicom/uid.js';
import { closeTranscodePool, transcodeStream } from '../../src/io/transcode.js';
import { serverMetrics } from '../../src/server/metrics.js';
import { TEST_FILES } from '../helpers/corpus.js';
import { corruptingCoder, digests, ingestFile, objectFiles, openTestArchive } from './compression-helpers.js';

after(() => closeTranscodePool());

const MR = join(TEST_FILES, 'MR_small.dcm');
const CT = join(TEST_FILES, 'CT_small.dcm');

/** Resolves with the job once it has ended (done or failed). */
function finished(
  jobs: { on: (e: 'finished', l: (j: Job) => void) => void },
  kind: string,
  count: number,
): Promise<Job[]> {
  return new Promise((resolve) => {
    const ended: Job[] = [];
    jobs.on('finished', (j) => {
      if (j.kind !== kind) return;
      ended.push(j);
      if (ended.length === count) resolve(ended);
    });
  });
}

const sha = async (path: string): Promise<string> =>
  createHash('sha256')
    .update(await readFile(path))
    .digest('hex');

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`compression at rest as a job (${engine})`, () => {
    it('an object stored becomes a background compress job; its result says the disk saved', async () => {
      const events = new EventBus();
      const rig = await openTestArchive(engine, events);
      const compressed: EventOf<'object-compressed'>[] = [];
      events.on('object-compressed', (e) => compressed.push(e));
      const metrics = serverMetrics(events, {
        associationsOpen: () => 0,
        jobQueueDepth: async () => undefined,
      });
      const lines: Array<{ msg: string | undefined; fields: object }> = [];
      const log = (level: string) => (fields: object, msg?: string) =>
        lines.push({ msg: `${level} ${msg}`, fields });
      const service = compressionService({
        archive: rig.archive,
        policy: { target: 'jpeg-ls-lossless', byModality: { CT: 'j2k-lossless' } },
        transcode: storeTranscoder(),
        events,
        logger: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') },
        removeDelayMs: 0,
        runner: { pollMs: 50 },
      });
      try {
        const done = finished(rig.archive.jobs, COMPRESS_JOB, 2);
        service.start();
        const mr = await ingestFile(rig.archive, MR);
        const ct = await ingestFile(rig.archive, CT);
        const jobs = await done;
        for (const job of jobs) {
          assert.equal(job.state, 'done', job.lastError ?? '');
          assert.equal(job.priority, JobPriority.background);
          const result = job.result as CompressJobResult;
          assert.equal(result.status, 'compressed');
          assert.ok(result.bytesBefore !== undefined && result.bytesAfter !== undefined);
          assert.equal(result.bytesSaved, result.bytesBefore - result.bytesAfter);
          assert.ok(result.bytesSaved > 0);
        }
        assert.equal((await rig.archive.index.findInstance(mr))?.transferSyntaxUid, UID.JPEGLSLossless);
        assert.equal((await rig.archive.index.findInstance(ct))?.transferSyntaxUid, UID.JPEG2000Lossless);
        assert.deepEqual(
          compressed.map((e) => [e.sopInstanceUid, e.outcome]).sort(),
          [
            [ct, 'compressed'],
            [mr, 'compressed'],
          ].sort(),
        );
        assert.ok(compressed.every((e) => e.bytesAfter !== undefined && e.bytesAfter < e.bytesBefore));
        assert.equal(lines.filter((l) => l.msg === 'info object compressed').length, 2);
        const saved = compressed.reduce((n, e) => n + e.bytesBefore - (e.bytesAfter ?? e.bytesBefore), 0);
        const text = await metrics.render();
        assert.match(text, new RegExp(`^pacs_compression_saved_bytes_total ${saved}$`, 'm'));
        assert.match(text, /^pacs_compression_objects_total\{outcome="compressed"\} 2$/m);
        assert.deepEqual((await objectFiles(rig.dataDir)).length, 2, 'only the compressed files are left');

        // A duplicate is not queued again, and an already compressed object makes no job.
        const jobsBefore = (await rig.archive.jobs.list({ kind: COMPRESS_JOB })).length;
        await ingestFile(rig.archive, MR);
        await ingestFile(rig.archive, join(TEST_FILES, 'MR_small_RLE.dcm')); // same UID: a duplicate too
        await ingestFile(rig.archive, join(TEST_FILES, 'JPEG2000.dcm'));
        assert.equal((await rig.archive.jobs.list({ kind: COMPRESS_JOB })).length, jobsBefore);
      } finally {
        metrics.close();
        await service.stop();
        await rig.close();
      }
    });

    it('a corrupting encoder: the job fails with the reason recorded, the original stays', async () => {
      const events = new EventBus();
      const rig = await openTestArchive(engine, events);
      const outcomes: EventOf<'object-compressed'>[] = [];
      events.on('object-compressed', (e) => outcomes.push(e));
      const service = compressionService({
        archive: rig.archive,
        policy: { target: 'htj2k-lossless' },
        transcode: storeTranscoder(corruptingCoder),
        events,
        removeDelayMs: 0,
        runner: { pollMs: 50 },
      });
      try {
        const done = finished(rig.archive.jobs, COMPRESS_JOB, 1);
        service.start();
        const uid = await ingestFile(rig.archive, MR);
        const before = await rig.archive.index.findInstance(uid);
        assert.ok(before);
        const bytes = await sha(rig.archive.store.absolutePath(before.path));
        const [job] = await done;
        assert.ok(job);
        assert.equal(job.state, 'failed');
        assert.equal(job.attempts, 1, 'a verdict on the object is not retried');
        assert.match(
          job.lastError ?? '',
          /verification of the 1\.2\.840\.10008\.1\.2\.4\.201 copy failed: frame 1/,
        );
        const result = job.result as CompressJobResult;
        assert.equal(result.status, 'failed');
        assert.equal(result.bytesSaved, 0);
        assert.equal(outcomes[0]?.outcome, 'failed');
        assert.deepEqual(await rig.archive.index.findInstance(uid), before);
        assert.equal(await sha(rig.archive.store.absolutePath(before.path)), bytes);
        assert.deepEqual(await objectFiles(rig.dataDir), [before.path]);
      } finally {
        await service.stop();
        await rig.close();
      }
    });

    it('killed after the copy was committed, before the switch: reconcile removes the copy', async () => {
      const rig = await openTestArchive(engine);
      try {
        const uid = await ingestFile(rig.archive, MR);
        const before = await rig.archive.index.findInstance(uid);
        assert.ok(before);
        // What step 2 leaves: the compressed copy as an object file no row names.
        const writer = await rig.archive.store.beginObject();
        assert.ok(writer.ok);
        for await (const c of transcodeStream(rig.archive.store.readObject(before.path), {
          to: UID.JPEGLSLossless,
          fileMeta: true,
        }))
          writer.value.write(c);
        const copy = await writer.value.commit();
        assert.ok(copy.ok);
        assert.equal((await objectFiles(rig.dataDir)).length, 2);
        const report = await rig.archive.reconcile();
        assert.equal(report.duplicateFilesRemoved, 1);
        assert.equal(report.filesIndexed, 0);
        assert.deepEqual(await objectFiles(rig.dataDir), [before.path]);
        assert.deepEqual(await rig.archive.index.findInstance(uid), before);
        assert.equal(await rig.archive.index.countInstances(), 1);
      } finally {
        await rig.close();
      }
    });

    it('killed after the switch, before the original was removed: reconcile removes the original', async () => {
      const rig = await openTestArchive(engine);
      try {
        const uid = await ingestFile(rig.archive, MR);
        const before = await rig.archive.index.findInstance(uid);
        assert.ok(before);
        const outcome = await compressInstance(rig.archive, uid, {
          policy: { target: 'j2k-lossless' },
          transcode: storeTranscoder(),
          removeOriginal: async () => undefined, // the kill comes here
        });
        assert.equal(outcome.status, 'compressed');
        const row = await rig.archive.index.findInstance(uid);
        assert.ok(row);
        assert.deepEqual((await objectFiles(rig.dataDir)).sort(), [before.path, row.path].sort());
        const report = await rig.archive.reconcile();
        assert.equal(report.duplicateFilesRemoved, 1);
        assert.equal(report.filesIndexed, 0);
        assert.deepEqual(await objectFiles(rig.dataDir), [row.path]);
        assert.deepEqual(await rig.archive.index.findInstance(uid), row);
        assert.equal(await rig.archive.index.countInstances(), 1);
        const [original, stored] = await digests([MR, rig.archive.store.absolutePath(row.path)]);
        assert.equal(stored?.pixels, original?.pixels);
      } finally {
        await rig.close();
      }
    });

    it('deleted or replaced while it is compressed: the change wins, the copy is dropped', async () => {
      const rig = await openTestArchive(engine);
      try {
        // Deleted while its copy is being written.
        const uid = await ingestFile(rig.archive, MR);
        const real = storeTranscoder();
        const outcome = await compressInstance(rig.archive, uid, {
          policy: { target: 'jpeg-ls-lossless' },
          transcode: async (source, to, out, signal) => {
            await real(source, to, out, signal);
            assert.equal(await rig.archive.delete(uid), true);
          },
        });
        assert.equal(outcome.status === 'skipped' && outcome.code, 'changed', JSON.stringify(outcome));
        assert.equal(await rig.archive.index.findInstance(uid), undefined);
        assert.deepEqual(await objectFiles(rig.dataDir), [], 'neither the original nor the copy is left');

        // Replaced (duplicate policy replace) while its copy is being written: the new object stays.
        await ingestFile(rig.archive, MR);
        let replacedPath = '';
        const second = await compressInstance(rig.archive, uid, {
          policy: { target: 'jpeg-ls-lossless' },
          transcode: async (source, to, out, signal) => {
            await real(source, to, out, signal);
            const again = await rig.archive.ingest([await readFile(MR)], {
              format: 'part10',
              source: 'TEST',
              via: 'import',
              duplicatePolicy: 'replace',
            });
            assert.ok(again.ok && again.value.status === 'replaced');
            replacedPath = again.value.status === 'replaced' ? again.value.file.path : '';
          },
        });
        assert.equal(second.status === 'skipped' && second.code, 'changed');
        const row = await rig.archive.index.findInstance(uid);
        assert.equal(row?.path, replacedPath);
        assert.equal(row?.transferSyntaxUid, '1.2.840.10008.1.2.1');
        assert.deepEqual(await objectFiles(rig.dataDir), [replacedPath]);
      } finally {
        await rig.close();
      }
    });

    it('retrieves during the switch: an open file reads on; a row looked up before it still opens', async () => {
      const rig = await openTestArchive(engine);
      try {
        const uid = await ingestFile(rig.archive, MR);
        const before = await rig.archive.index.findInstance(uid);
        assert.ok(before);
        const whole = await readFile(rig.archive.store.absolutePath(before.path));
        // A retrieve that opened the original and read part of it when the switch happens...
        const open = await rig.archive.store.openObject(before.path);
        const head = Buffer.alloc(1000);
        await open.read(head, 0, head.length, 0);
        // ...and one that has looked the row up (a C-MOVE page) but not opened the file yet.
        const lookedUp = before.path;
        const removals = new DelayedRemovals(rig.archive, 60_000);
        const outcome = await compressInstance(rig.archive, uid, {
          policy: { target: 'jpeg-ls-lossless' },
          transcode: storeTranscoder(),
          removeOriginal: (p) => removals.schedule(p),
        });
        assert.equal(outcome.status, 'compressed');
        assert.equal(removals.pending, 1);
        const rest = Buffer.alloc(whole.length - head.length);
        await open.read(rest, 0, rest.length, head.length);
        await open.close();
        assert.deepEqual(Buffer.concat([head, rest]), whole, 'the open retrieve read the whole original');
        const late: Uint8Array[] = [];
        for await (const c of rig.archive.store.readObject(lookedUp)) late.push(c);
        assert.deepEqual(Buffer.concat(late), whole, 'the row looked up before the switch still opens');
        // Without the delay the original is gone at once: a late open fails (what the delay is for).
        await removals.flush();
        assert.equal(removals.pending, 0);
        assert.equal(await rig.archive.store.exists(lookedUp), false);
        await assert.rejects(rig.archive.store.openObject(lookedUp), { code: 'ENOENT' });
      } finally {
        await rig.close();
      }
    });
  });
}
