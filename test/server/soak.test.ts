/**
 * The short soak (bench/soak.ts): 4 storescu senders with findscu and movescu for 10 s against
 * one `pacs server`: no failure, no acknowledged object missing from the index, and a PNG plot of
 * the server's memory. Times are reported by the bench, not checked here.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { inflateSync } from 'node:zlib';
import { encodePng, runSoak } from '../../bench/soak.js';
import { tempDir } from './helpers.js';

describe('soak (short)', () => {
  it('4 senders with findscu and movescu for 10 s: no failures, no lost objects', async () => {
    const work = await tempDir('pacs-soak-test-');
    try {
      const png = join(work.path, 'memory.png');
      const report = await runSoak({ seconds: 10, senders: 4, png });
      assert.deepEqual(report.failures, []);
      assert.ok(report.objectsAcknowledged > 0);
      assert.equal(report.lost, 0);
      assert.equal(report.indexRows, report.objectsAcknowledged);
      assert.ok(report.latencyMs.find.count > 0 && report.latencyMs.move.count > 0);
      const bytes = await readFile(png);
      assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
      assert.equal(bytes.toString('latin1', 12, 16), 'IHDR');
    } finally {
      await work.remove();
    }
  });

  it('the PNG encoder writes what zlib and the chunk layout say', () => {
    const rgb = new Uint8Array([255, 0, 0, 0, 255, 0, 0, 0, 255, 1, 2, 3]);
    const png = encodePng(2, 2, rgb);
    assert.equal(png.readUInt32BE(16), 2);
    assert.equal(png.readUInt32BE(20), 2);
    const idatLength = png.readUInt32BE(33);
    assert.equal(png.toString('latin1', 37, 41), 'IDAT');
    const raw = inflateSync(png.subarray(41, 41 + idatLength));
    assert.deepEqual([...raw], [0, 255, 0, 0, 0, 255, 0, 0, 0, 0, 255, 1, 2, 3]);
    // PNG's CRC of IEND (no data) is fixed: AE 42 60 82.
    assert.equal(png.subarray(-4).toString('hex'), 'ae426082');
  });
});
