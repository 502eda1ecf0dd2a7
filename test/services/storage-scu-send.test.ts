/**
 * The send path of storeFile: one open per file (an OpenFile is sent from its handle), memory
 * bounded by the buffer pool however large the object (a 200 MB sparse object), read-ahead that
 * keeps the bytes in order (byte for byte against DCMTK's storescp +B, at its default maximum PDU
 * and at one that is no power of two), and the 'object-sent' event with the bytes sent.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, readFile, rename, truncate, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EventBus, type PacsEvent } from '../../src/core/events.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { allStorageSopClasses, EXPLICIT_VR_LE } from '../../src/dicom/uid.js';
import { encodePart10 } from '../../src/dicom/writer.js';
import { ApplicationEntity, type DicomServer } from '../../src/network/ae.js';
import type { DimseAssociation } from '../../src/network/dimse.js';
import { Status } from '../../src/network/dimse-status.js';
import type { DimseService } from '../../src/network/service.js';
import {
  type FileInfo,
  openFile,
  planContexts,
  readFileInfo,
  sendBuffers,
  storeFile,
} from '../../src/services/storage/scu.js';
import { dcmtkTool } from '../helpers/corpus.js';
import { makeCtDataSet } from '../helpers/synthetic.js';
import { type Child, freePort, spawnChild, tempDir, waitForPort } from '../server/helpers.js';

const DCMTK_ENV = { TCP_NODELAY: '1' };

function unwrap<T>(r: { ok: true; value: T } | { ok: false; error: Error }): T {
  if (!r.ok) throw r.error;
  return r.value;
}

/** A storage SCP that hashes and counts each data set, keeping nothing. */
function hashingService(seen: { bytes: number; sha256: string }[]): DimseService {
  return {
    name: 'hash',
    sopClasses: allStorageSopClasses().map((uid) => ({ uid })),
    transferSyntaxes: [EXPLICIT_VR_LE],
    handlers: {
      'C-STORE': async (_ctx, data) => {
        const hash = createHash('sha256');
        let bytes = 0;
        for await (const c of data) {
          hash.update(c);
          bytes += c.length;
        }
        seen.push({ bytes, sha256: hash.digest('hex') });
        return { status: Status.Success };
      },
    },
  };
}

async function dataSetBytes(f: FileInfo): Promise<Buffer> {
  return (await readFile(f.path)).subarray(f.dataSetOffset);
}

describe('storeFile send path', () => {
  let work: { path: string; remove: () => Promise<void> };
  let server: DicomServer;
  const seen: { bytes: number; sha256: string }[] = [];
  let port = 0;
  /** A CT of 1536x1536 16-bit pixels (4.7 MB, a pseudo-random pattern): many chunks, many PDVs. */
  let ctPath: string;

  before(async () => {
    work = await tempDir('pacs-send-');
    server = await new ApplicationEntity({ aeTitle: 'HASH', maxPduLength: 65536 })
      .addService(hashingService(seen))
      .listen({ port: 0, host: '127.0.0.1' });
    port = server.address?.port ?? 0;
    ctPath = join(work.path, 'ct.dcm');
    await writeFile(ctPath, encodePart10(makeCtDataSet({ rows: 1536, columns: 1536 }), EXPLICIT_VR_LE));
  });
  after(async () => {
    await server?.close(0);
    await work?.remove();
  });

  async function connect(files: FileInfo[], calledAeTitle = 'HASH', to = port): Promise<DimseAssociation> {
    const r = await new ApplicationEntity({ aeTitle: 'SCU' }).connect({
      host: '127.0.0.1',
      port: to,
      calledAeTitle,
      contexts: planContexts(files),
    });
    if (!r.ok) throw r.error;
    return r.value;
  }

  it('sends an opened file from its handle: not opened again, closed after', async () => {
    const path = join(work.path, 'moved-away.dcm');
    await writeFile(path, await readFile(ctPath));
    const opened = unwrap(await openFile(path));
    const expected = createHash('sha256')
      .update((await readFile(path)).subarray(opened.dataSetOffset))
      .digest('hex');
    // Gone from its path: a send that opened the path again would fail.
    await rename(path, join(work.path, 'elsewhere.dcm'));
    await unlink(join(work.path, 'elsewhere.dcm'));
    const assoc = await connect([opened]);
    try {
      const before = seen.length;
      const r = unwrap(await storeFile(assoc, opened));
      assert.equal(r.status, Status.Success);
      assert.equal(seen.length, before + 1);
      assert.equal(seen.at(-1)?.sha256, expected);
      assert.equal(r.bytes, opened.size - opened.dataSetOffset);
      assert.equal(opened.handle.fd, -1, 'the handle is closed once sent');
    } finally {
      await assoc.release();
    }
  });

  it('closes an opened file that cannot be sent (no context)', async () => {
    const opened = unwrap(await openFile(ctPath));
    const assoc = await connect([{ ...opened, sopClassUid: '1.2.840.10008.5.1.4.1.1.4' }]);
    try {
      const r = await storeFile(assoc, opened);
      assert.equal(r.ok, false);
      assert.equal(opened.handle.fd, -1);
    } finally {
      await assoc.release();
    }
  });

  it('sends a 200 MB object through a few pooled buffers', async () => {
    // A sparse file: a small CT header, then Pixel Data OW of 200 MB of zeros (no disk used).
    const ds = makeCtDataSet({ rows: 1, columns: 1 });
    ds.delete(TAG.PixelData);
    const head = encodePart10(ds, EXPLICIT_VR_LE);
    const length = 200 * 1024 * 1024;
    const pixelHeader = Buffer.alloc(12);
    pixelHeader.writeUInt16LE(0x7fe0, 0);
    pixelHeader.writeUInt16LE(0x0010, 2);
    pixelHeader.write('OW', 4, 'latin1');
    pixelHeader.writeUInt32LE(length, 8);
    const path = join(work.path, 'large.dcm');
    await writeFile(path, Buffer.concat([head, pixelHeader]));
    await truncate(path, head.length + pixelHeader.length + length);

    const file = unwrap(await readFileInfo(path));
    const assoc = await connect([file]);
    const createdBefore = sendBuffers.created;
    let peakRss = 0;
    const rssStart = process.memoryUsage.rss();
    try {
      const r = unwrap(
        await storeFile(assoc, file, {
          onBytes: () => {
            peakRss = Math.max(peakRss, process.memoryUsage.rss());
          },
        }),
      );
      assert.equal(r.status, Status.Success);
      assert.equal(seen.at(-1)?.bytes, file.size - file.dataSetOffset);
    } finally {
      await assoc.release();
    }
    // Read-ahead and the sender's hold-back need a handful; never one per chunk (800 of them).
    assert.ok(
      sendBuffers.created - createdBefore <= 8,
      `${sendBuffers.created - createdBefore} buffers made`,
    );
    // Loosely: the object is never held (it is 200 MB).
    assert.ok(peakRss - rssStart < 100 * 1024 * 1024, `RSS grew by ${(peakRss - rssStart) / 1e6} MB`);
  });

  it("emits 'object-sent' once per answered file, with the data set's bytes", async () => {
    const events = new EventBus();
    const got: PacsEvent[] = [];
    events.subscribe((e) => got.push(e));
    const file = unwrap(await readFileInfo(ctPath));
    const assoc = await connect([file]);
    try {
      unwrap(await storeFile(assoc, file, { events }));
      unwrap(await storeFile(assoc, file, { events, via: 'C-GET' }));
      unwrap(await storeFile(assoc, file));
    } finally {
      await assoc.release();
    }
    const bytes = file.size - file.dataSetOffset;
    assert.deepEqual(got, [
      {
        type: 'object-sent',
        sopInstanceUid: file.sopInstanceUid,
        bytes,
        destination: 'HASH',
        status: Status.Success,
        via: 'C-STORE',
        sopClassUid: file.sopClassUid,
      },
      {
        type: 'object-sent',
        sopInstanceUid: file.sopInstanceUid,
        bytes,
        destination: 'HASH',
        status: Status.Success,
        via: 'C-GET',
        sopClassUid: file.sopClassUid,
      },
    ]);
  });

  for (const maxPdu of [undefined, 20_002]) {
    it(`keeps the bytes in order with read-ahead: storescp +B${maxPdu ? ` --max-pdu ${maxPdu}` : ''} stores them unchanged`, async () => {
      const dir = join(work.path, `storescp-${maxPdu ?? 'default'}`);
      const { mkdir } = await import('node:fs/promises');
      await mkdir(dir);
      const scpPort = await freePort();
      const storescp: Child = spawnChild(
        dcmtkTool('storescp'),
        [
          '-aet',
          'STORESCP',
          '+B',
          ...(maxPdu ? ['--max-pdu', String(maxPdu)] : []),
          '-od',
          dir,
          String(scpPort),
        ],
        { env: DCMTK_ENV, name: 'storescp' },
      );
      try {
        await waitForPort(scpPort);
        const file = unwrap(await openFile(ctPath));
        const expected = await dataSetBytes(file);
        const assoc = await connect([file], 'STORESCP', scpPort);
        try {
          assert.equal(unwrap(await storeFile(assoc, file)).status, Status.Success);
        } finally {
          await assoc.release();
        }
        const names = await readdir(dir);
        assert.equal(names.length, 1);
        const stored = unwrap(await readFileInfo(join(dir, names[0] as string)));
        assert.ok((await dataSetBytes(stored)).equals(expected), 'the data set arrived byte for byte');
      } finally {
        await storescp.stop();
      }
    });
  }
});
