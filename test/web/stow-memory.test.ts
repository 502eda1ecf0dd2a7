/**
 * A large object stored by STOW-RS streams from the socket to its file: the resident memory of
 * the process (client and server both run here) grows by far less than the object's size, and
 * the stored object is complete. (bench/dicomweb-stow.ts measures a 2 GiB object in a server
 * process of its own.)
 */
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TAG } from '../../src/dicom/dictionary.js';
import { EXPLICIT_VR_LE, generateUid, UID } from '../../src/dicom/uid.js';
import { encodePart10 } from '../../src/dicom/writer.js';
import { makeCtDataSet } from '../helpers/synthetic.js';
import { startTestWeb, type TestWeb } from './helpers.js';
import { items, value } from './stow-helpers.js';

const MIB = 1024 * 1024;
const OBJECT_MIB = 400;

describe('STOW-RS memory', () => {
  let web: TestWeb;
  before(async () => {
    web = await startTestWeb({ engine: 'sqlite' });
  });
  after(async () => {
    await web.close();
  });

  test(`a ${OBJECT_MIB} MiB object: RSS grows by less than a third of it, the file is whole`, async (t) => {
    const frame = Buffer.alloc(512 * 512 * 2, 0x22);
    const frames = Math.ceil((OBJECT_MIB * MIB) / frame.length);
    const ds = makeCtDataSet({ rows: 512, columns: 512 });
    ds.setString(TAG.SOPClassUID, UID.MultiFrameGrayscaleWordSecondaryCaptureImageStorage);
    ds.setString(TAG.NumberOfFrames, String(frames), 'IS');
    ds.delete(TAG.PixelData);
    const sop = generateUid();
    ds.setString(TAG.SOPInstanceUID, sop);
    const header = Buffer.from(encodePart10(ds, EXPLICIT_VR_LE));
    const element = Buffer.alloc(12);
    element.writeUInt16LE(0x7fe0, 0);
    element.writeUInt16LE(0x0010, 2);
    element.write('OW', 4, 'latin1');
    element.writeUInt32LE(frame.length * frames, 8);

    global.gc?.();
    const rssBefore = process.memoryUsage.rss();
    let peak = rssBefore;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage.rss());
    }, 20);
    const url = new URL(`${web.base}/studies`);
    const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = http.request({
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        headers: { 'content-type': 'multipart/related; type=application/dicom; boundary=big' },
      });
      req.on('error', reject);
      req.on('response', (res) => {
        let text = '';
        res.on('data', (d: Buffer) => {
          text += d.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      const write = (b: Uint8Array | string): Promise<void> | undefined =>
        req.write(b) ? undefined : new Promise((r) => req.once('drain', r));
      (async () => {
        await write('--big\r\nContent-Type: application/dicom\r\n\r\n');
        await write(header);
        await write(element);
        for (let i = 0; i < frames; i++) await write(frame);
        await write('\r\n--big--\r\n');
        req.end();
      })().catch(reject);
    });
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage.rss());
    assert.equal(answer.status, 200, answer.text);
    assert.equal(value(items(JSON.parse(answer.text), '00081199')[0], '00081155'), sop);
    const found = await web.archive.index.findInstance(sop);
    assert.ok(found);
    assert.ok(statSync(join(web.dataDir, found.path)).size > frame.length * frames);
    const growth = peak - rssBefore;
    t.diagnostic(`RSS before ${Math.round(rssBefore / MIB)} MiB, peak ${Math.round(peak / MIB)} MiB`);
    assert.ok(growth < (OBJECT_MIB * MIB) / 3, `RSS grew by ${Math.round(growth / MIB)} MiB`);
  });
});
