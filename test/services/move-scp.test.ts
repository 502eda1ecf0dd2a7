/**
 * C-MOVE SCP and SCU over loopback in one process: our archive (openArchive in a temporary folder,
 * SQLite) with the storage and move services and a running job runner, a capturing Storage SCP
 * as the destination, and our move SCU. Checked: data sets arrive byte for byte with the Move
 * Originator fields; pending counts; an unknown destination (0xA801); a destination that is down
 * (retried, then 0xA702 with every UID failed); a destination refusing some objects (0xB000 and
 * the list); C-CANCEL in the middle (0xFE00 with counts, the job cancelled); identifier errors
 * (0xA900); UID lists at SERIES and IMAGE level; Patient Root; a job taken again resumes where
 * it stopped.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Archive, openArchive } from '../../src/archive/archive.js';
import { retrieveSource } from '../../src/archive/index/retrieve.js';
import { CANCELLED, JobPriority, type JobStore } from '../../src/archive/jobs/job.js';
import { jobStoreFor } from '../../src/archive/jobs/open.js';
import { JobRunner } from '../../src/archive/jobs/runner.js';
import { EventBus, type EventOf } from '../../src/core/events.js';
import { unwrap } from '../../src/core/result.js';
import { DataSet } from '../../src/dicom/dataset.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { allStorageSopClasses } from '../../src/dicom/uid.js';
import { ApplicationEntity, type DicomServer } from '../../src/network/ae.js';
import type { DimseCommand } from '../../src/network/dimse-command.js';
import { Status } from '../../src/network/dimse-status.js';
import type { DimseService } from '../../src/network/service.js';
import { PATIENT_ROOT, STUDY_ROOT } from '../../src/services/query-retrieve/models.js';
import { MOVE_JOB, type MovePayload, moveService } from '../../src/services/query-retrieve/move-scp.js';
import { move, type RetrieveProgress, retrieveContext } from '../../src/services/query-retrieve/move-scu.js';
import { storageService, storageTransferSyntaxes } from '../../src/services/storage/scp.js';
import { type FileInfo, planAssociations, readFileInfo, storeFile } from '../../src/services/storage/scu.js';
import { writeCtSeries } from '../helpers/synthetic.js';
import { freePort } from '../server/helpers.js';

interface Received {
  readonly command: DimseCommand;
  readonly transferSyntax: string;
  readonly bytes: Buffer;
}

/** A Storage SCP that keeps what it receives; it can refuse some objects and be slow. */
class Destination {
  readonly received: Received[] = [];
  refuse = new Set<string>();
  delayMs = 0;
  server: DicomServer | undefined;
  port = 0;

  service(): DimseService {
    return {
      name: 'capture',
      sopClasses: allStorageSopClasses().map((uid) => ({ uid })),
      transferSyntaxes: storageTransferSyntaxes(),
      handlers: {
        'C-STORE': async (ctx, data) => {
          const parts: Uint8Array[] = [];
          for await (const c of data) parts.push(c);
          if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
          const uid = ctx.command.affectedSopInstanceUid ?? '';
          if (this.refuse.has(uid))
            return { status: Status.OutOfResources, errorComment: 'disk full (test)' };
          this.received.push({
            command: ctx.command,
            transferSyntax: ctx.transferSyntax,
            bytes: Buffer.concat(parts),
          });
          return { status: Status.Success };
        },
      },
    };
  }

  async start(): Promise<void> {
    this.server = await new ApplicationEntity({ aeTitle: 'DEST' })
      .addService(this.service())
      .listen({ port: 0, host: '127.0.0.1' });
    this.port = this.server.address?.port ?? 0;
  }
}

interface Rig {
  readonly archive: Archive;
  readonly jobs: JobStore;
  readonly runner: JobRunner;
  /** Every runner to stop at the end. */
  readonly runners: JobRunner[];
  readonly server: DicomServer;
  readonly port: number;
  readonly destination: Destination;
  /** The service's event stream ('object-sent' per sub-operation). */
  readonly events: EventBus;
  /** The files stored, by SOP Instance UID. */
  readonly files: Map<string, FileInfo>;
  close(): Promise<void>;
}

const dirs: string[] = [];
function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** Stores files into the rig's server with our Storage SCU. */
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
    for (const f of plan.files) {
      const r = unwrap(await storeFile(assoc, f));
      assert.equal(r.status, Status.Success);
    }
    await assoc.release();
  }
  return infos;
}

async function startRig(downPort: number): Promise<Rig> {
  const dataDir = tempDir('pacs-move-archive-');
  const archive = await openArchive({ dataDir, durability: 'none' });
  const jobs = jobStoreFor(archive.index);
  const runner = new JobRunner(jobs, { pollMs: 50, backoff: { baseMs: 50, jitter: 0 } });
  const destination = new Destination();
  await destination.start();
  const events = new EventBus();
  const ae = new ApplicationEntity({ aeTitle: 'PACS' }).addService(storageService({ archive })).addService(
    moveService({
      archive,
      jobs: runner,
      peers: [
        { aet: 'DEST', host: '127.0.0.1', port: destination.port },
        { aet: 'DOWN', host: '127.0.0.1', port: downPort },
      ],
      attempts: 2,
      events,
    }),
  );
  runner.start();
  const server = await ae.listen({ port: 0, host: '127.0.0.1' });
  const runners = [runner];
  return {
    archive,
    jobs,
    runner,
    runners,
    server,
    port: server.address?.port ?? 0,
    destination,
    events,
    files: new Map(),
    async close() {
      await server.close(1000);
      await destination.server?.close(1000);
      for (const r of runners) await r.stop();
      await archive.close();
    },
  };
}

function identifier(level: string, keys: Record<number, string | string[]>): DataSet {
  const ds = new DataSet();
  ds.setString(TAG.QueryRetrieveLevel, level);
  for (const [tag, value] of Object.entries(keys)) ds.setString(Number(tag), value);
  return ds;
}

async function requestMove(
  rig: Pick<Rig, 'port'>,
  destination: string,
  id: DataSet,
  options: {
    model?: typeof STUDY_ROOT;
    signal?: AbortSignal;
    onProgress?: (p: RetrieveProgress) => void;
  } = {},
) {
  const model = options.model ?? STUDY_ROOT;
  const assoc = unwrap(
    await new ApplicationEntity({ aeTitle: 'MOVESCU' }).connect({
      host: '127.0.0.1',
      port: rig.port,
      calledAeTitle: 'PACS',
      contexts: [retrieveContext(model, 'move')],
    }),
  );
  try {
    const outcome = unwrap(
      await move(assoc, {
        model,
        destination,
        identifier: id,
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      }),
    );
    return { outcome, messageId: assoc.lastMessageId };
  } finally {
    await assoc.release();
  }
}

/** The data set bytes of a Part-10 file (after its meta). */
function dataSetOf(file: FileInfo): Buffer {
  return readFileSync(file.path).subarray(file.dataSetOffset);
}

describe('C-MOVE SCP (loopback)', () => {
  let rig: Rig;
  let downPort: number;
  const study = '1.2.826.0.1.3680043.8.498.7001';
  const series = '1.2.826.0.1.3680043.8.498.7001.1';
  const study2 = '1.2.826.0.1.3680043.8.498.7002';
  const study2Series = ['1.2.826.0.1.3680043.8.498.7002.1', '1.2.826.0.1.3680043.8.498.7002.2'];
  let studyFiles: FileInfo[] = [];
  let study2Files: FileInfo[] = [];

  before(async () => {
    downPort = await freePort();
    rig = await startRig(downPort);
    const src = tempDir('pacs-move-src-');
    const a = writeCtSeries(join(src, 'a'), 6, {
      studyInstanceUid: study,
      seriesInstanceUid: series,
      patientId: 'MOVE-1',
      rows: 64,
      columns: 64,
    });
    const b1 = writeCtSeries(join(src, 'b1'), 3, {
      studyInstanceUid: study2,
      seriesInstanceUid: study2Series[0],
      patientId: 'MOVE-2',
      rows: 32,
      columns: 32,
    });
    const b2 = writeCtSeries(join(src, 'b2'), 40, {
      studyInstanceUid: study2,
      seriesInstanceUid: study2Series[1],
      patientId: 'MOVE-2',
      rows: 32,
      columns: 32,
    });
    studyFiles = await storeAll(rig.port, a);
    study2Files = await storeAll(rig.port, [...b1, ...b2]);
  });
  after(async () => {
    await rig.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('moves a study: every data set arrives unchanged, with the Move Originator fields', async () => {
    rig.destination.received.length = 0;
    const sent: EventOf<'object-sent'>[] = [];
    const unsubscribe = rig.events.on('object-sent', (e) => sent.push(e));
    const progress: RetrieveProgress[] = [];
    const { outcome, messageId } = await requestMove(
      rig,
      'DEST',
      identifier('STUDY', { [TAG.StudyInstanceUID]: study }),
      {
        onProgress: (p) => progress.push(p),
      },
    );
    assert.equal(outcome.status, Status.Success);
    assert.deepEqual([outcome.completed, outcome.failed, outcome.warning], [studyFiles.length, 0, 0]);
    assert.deepEqual(outcome.failedSopInstanceUids, []);
    assert.ok(progress.length >= 1, 'pending responses');
    for (const p of progress) {
      assert.equal(p.status, Status.Pending);
      assert.equal(
        (p.remaining ?? 0) + (p.completed ?? 0) + (p.failed ?? 0) + (p.warning ?? 0),
        studyFiles.length,
      );
    }
    const remaining = progress.map((p) => p.remaining ?? 0);
    assert.deepEqual(
      remaining,
      [...remaining].sort((x, y) => y - x),
      'remaining only goes down',
    );
    const got = new Map(rig.destination.received.map((r) => [r.command.affectedSopInstanceUid, r]));
    assert.equal(got.size, studyFiles.length);
    for (const f of studyFiles) {
      const r = got.get(f.sopInstanceUid);
      assert.ok(r, `received ${f.sopInstanceUid}`);
      assert.equal(r.transferSyntax, f.transferSyntaxUid);
      assert.ok(r.bytes.equals(dataSetOf(f)), 'the data set bytes are those of the stored file');
      assert.equal(r.command.moveOriginatorAet, 'MOVESCU');
      assert.equal(r.command.moveOriginatorMessageId, messageId);
    }
    unsubscribe();
    // One event per sub-operation, with the bytes sent (what the server's metrics count).
    assert.deepEqual(
      sent.map((e) => [e.sopInstanceUid, e.bytes, e.destination, e.status, e.via]).sort(),
      studyFiles.map((f) => [f.sopInstanceUid, dataSetOf(f).length, 'DEST', Status.Success, 'C-MOVE']).sort(),
    );
  });

  it('answers 0xA801 for a destination that is not a known peer', async () => {
    const { outcome } = await requestMove(
      rig,
      'NOBODY',
      identifier('STUDY', { [TAG.StudyInstanceUID]: study }),
    );
    assert.equal(outcome.status, Status.MoveDestinationUnknown);
    assert.match(outcome.errorComment ?? '', /unknown move destination NOBODY/);
    assert.equal(outcome.pendingResponses, 0);
  });

  it('a destination that is down: retried, then 0xA702 with every sub-operation failed', async () => {
    const { outcome } = await requestMove(
      rig,
      'DOWN',
      identifier('STUDY', { [TAG.StudyInstanceUID]: study }),
    );
    assert.equal(outcome.status, Status.OutOfResourcesSubOperations);
    assert.deepEqual([outcome.completed, outcome.failed, outcome.warning], [0, studyFiles.length, 0]);
    assert.deepEqual(
      [...outcome.failedSopInstanceUids].sort(),
      studyFiles.map((f) => f.sopInstanceUid).sort(),
    );
    assert.match(outcome.errorComment ?? '', /DOWN@127\.0\.0\.1:\d+: connection refused/);
    const [job] = await rig.jobs.list({ kind: MOVE_JOB, limit: 1 });
    assert.equal(job?.state, 'done');
    assert.equal(job?.attempts, 2, 'tried again once before giving up');
  });

  it('some objects refused by the destination: 0xB000 with the Failed SOP Instance UID List', async () => {
    rig.destination.received.length = 0;
    const refused = [studyFiles[1], studyFiles[4]].map((f) => f?.sopInstanceUid ?? '');
    rig.destination.refuse = new Set(refused);
    try {
      const { outcome } = await requestMove(
        rig,
        'DEST',
        identifier('STUDY', { [TAG.StudyInstanceUID]: study }),
      );
      assert.equal(outcome.status, Status.SubOperationsCompleteWithFailures);
      assert.deepEqual([outcome.completed, outcome.failed, outcome.warning], [studyFiles.length - 2, 2, 0]);
      assert.deepEqual([...outcome.failedSopInstanceUids].sort(), [...refused].sort());
      assert.match(outcome.errorComment ?? '', /0xA700/);
    } finally {
      rig.destination.refuse = new Set();
    }
  });

  it('C-CANCEL in the middle: 0xFE00 with the counts, the rest not sent, the job cancelled', async () => {
    rig.destination.received.length = 0;
    rig.destination.delayMs = 20;
    const cancel = new AbortController();
    try {
      const { outcome } = await requestMove(
        rig,
        'DEST',
        identifier('STUDY', { [TAG.StudyInstanceUID]: study2 }),
        {
          signal: cancel.signal,
          onProgress: () => cancel.abort(),
        },
      );
      assert.equal(outcome.status, Status.Cancel);
      assert.equal(outcome.cancelled, true);
      const done = (outcome.completed ?? 0) + (outcome.failed ?? 0) + (outcome.warning ?? 0);
      assert.ok(done >= 1 && done < study2Files.length, `stopped part-way (${done})`);
      assert.equal(outcome.remaining, study2Files.length - done);
      // Nothing more arrives after the final response.
      const arrived = rig.destination.received.length;
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(rig.destination.received.length, arrived);
      assert.equal(arrived, outcome.completed);
      const [job] = await rig.jobs.list({ kind: MOVE_JOB, limit: 1 });
      assert.equal(job?.state, 'failed');
      assert.equal(job?.lastError, CANCELLED);
    } finally {
      rig.destination.delayMs = 0;
    }
  });

  it('answers 0xA900 for an identifier without level or without the keys its level needs', async () => {
    const noLevel = new DataSet();
    noLevel.setString(TAG.StudyInstanceUID, study);
    const a = await requestMove(rig, 'DEST', noLevel);
    assert.equal(a.outcome.status, Status.IdentifierDoesNotMatchSopClass);
    assert.match(a.outcome.errorComment ?? '', /Query\/Retrieve Level/);
    // Hierarchical: a SERIES retrieve names its study.
    const b = await requestMove(rig, 'DEST', identifier('SERIES', { [TAG.SeriesInstanceUID]: series }));
    assert.equal(b.outcome.status, Status.IdentifierDoesNotMatchSopClass);
    assert.match(b.outcome.errorComment ?? '', /StudyInstanceUID/);
    const c = await requestMove(rig, 'DEST', identifier('PATIENT', { [TAG.PatientID]: 'MOVE-1' }));
    assert.equal(c.outcome.status, Status.IdentifierDoesNotMatchSopClass, 'Study Root has no PATIENT level');
  });

  it('moves series and images named by UID lists, and a patient in Patient Root', async () => {
    rig.destination.received.length = 0;
    const s = await requestMove(
      rig,
      'DEST',
      identifier('SERIES', {
        [TAG.StudyInstanceUID]: study2,
        [TAG.SeriesInstanceUID]: study2Series[0] ?? '',
      }),
    );
    assert.equal(s.outcome.status, Status.Success);
    assert.equal(s.outcome.completed, 3);
    const picked = [studyFiles[0], studyFiles[5]].map((f) => f?.sopInstanceUid ?? '');
    const i = await requestMove(
      rig,
      'DEST',
      identifier('IMAGE', {
        [TAG.StudyInstanceUID]: study,
        [TAG.SeriesInstanceUID]: series,
        [TAG.SOPInstanceUID]: picked,
      }),
    );
    assert.equal(i.outcome.status, Status.Success);
    assert.equal(i.outcome.completed, 2);
    const p = await requestMove(rig, 'DEST', identifier('PATIENT', { [TAG.PatientID]: 'MOVE-1' }), {
      model: PATIENT_ROOT,
    });
    assert.equal(p.outcome.status, Status.Success);
    assert.equal(p.outcome.completed, studyFiles.length);
    // Nothing matches: success with no sub-operations.
    const none = await requestMove(rig, 'DEST', identifier('STUDY', { [TAG.StudyInstanceUID]: '1.2.3.999' }));
    assert.equal(none.outcome.status, Status.Success);
    assert.equal(none.outcome.completed, 0);
  });

  it('a move job taken again resumes after the last object it handled', async () => {
    rig.destination.received.length = 0;
    const source = retrieveSource(rig.archive.index);
    const keys = { level: 'STUDY' as const, studyInstanceUids: [study] };
    const summary = await source.summarize(keys);
    const order: { position: number; uid: string }[] = [];
    for await (const i of source.instances(keys)) order.push({ position: i.position, uid: i.sopInstanceUid });
    const payload: MovePayload = {
      destination: { aet: 'DEST', host: '127.0.0.1', port: rig.destination.port, tls: false },
      callingAeTitle: 'PACS',
      originator: { aeTitle: 'MOVESCU', messageId: 77 },
      priority: 0,
      keys,
      total: summary.instances,
      lastPosition: summary.lastPosition,
      syntaxes: summary.syntaxes,
    };
    // No runner for a while: a runner claims the job, saves that two objects are done, and dies.
    await rig.runner.stop();
    const moveJob = await rig.jobs.enqueue({ kind: MOVE_JOB, payload, priority: JobPriority.interactive });
    const [claimed] = await rig.jobs.claim({
      worker: 'dead',
      limit: 1,
      kinds: [MOVE_JOB],
      leaseMs: 100,
      destinationLimit: () => 4,
    });
    assert.equal(claimed?.id, moveJob.id);
    await rig.jobs.saveProgress(moveJob.id, 'dead', {
      remaining: summary.instances - 2,
      completed: 2,
      failed: 0,
      warning: 0,
      failedUids: [],
      group: 0,
      after: order[1]?.position,
    });
    // Another runner (a restarted server) with the move service's job kind takes it once the lease lapses.
    const runner = new JobRunner(rig.jobs, { pollMs: 20 });
    moveService({ archive: rig.archive, jobs: runner, peers: [] });
    rig.runners.push(runner.start());
    for (let i = 0; i < 200 && (await rig.jobs.get(moveJob.id))?.state !== 'done'; i++)
      await new Promise((r) => setTimeout(r, 20));
    const ended = await rig.jobs.get(moveJob.id);
    assert.equal(ended?.state, 'done');
    assert.equal(ended?.attempts, 2);
    assert.deepEqual(
      rig.destination.received.map((r) => r.command.affectedSopInstanceUid),
      order.slice(2).map((o) => o.uid),
    );
    assert.equal((ended?.result as { completed?: number } | undefined)?.completed, summary.instances);
    for (const r of rig.destination.received) assert.equal(r.command.moveOriginatorMessageId, 77);
  });
});

describe('C-MOVE SCP with a job runner of its own', () => {
  it('starts its runner with the service and stops it with the service', async () => {
    const archive = await openArchive({ dataDir: tempDir('pacs-move-own-'), durability: 'none' });
    const destination = new Destination();
    await destination.start();
    const service = moveService({
      archive,
      peers: [{ aet: 'DEST', host: '127.0.0.1', port: destination.port }],
      runner: { pollMs: 50 },
    });
    await service.start?.();
    const server = await new ApplicationEntity({ aeTitle: 'PACS' })
      .addService(storageService({ archive }))
      .addService(service)
      .listen({ port: 0, host: '127.0.0.1' });
    const port = server.address?.port ?? 0;
    try {
      const study = '1.2.826.0.1.3680043.8.498.7101';
      await storeAll(
        port,
        writeCtSeries(tempDir('pacs-move-own-src-'), 3, { studyInstanceUid: study, rows: 16, columns: 16 }),
      );
      const { outcome } = await requestMove(
        { port },
        'DEST',
        identifier('STUDY', { [TAG.StudyInstanceUID]: study }),
      );
      assert.equal(outcome.status, Status.Success);
      assert.equal(outcome.completed, 3);
      assert.equal(destination.received.length, 3);
    } finally {
      await server.close(1000);
      await service.stop?.();
      await destination.server?.close(1000);
      await archive.close();
    }
  });
});
