/**
 * kill -9 of a server compressing at rest: a `pacs server` child process (storage.compression
 * jpeg-ls-lossless, fsync durability) receives a series by C-STORE (DCMTK storescu) and compresses
 * it object by object as jobs; it is killed at random points several times while it does. After
 * each kill, the start-up reconcile (`pacs archive reindex`, what the server runs when it starts)
 * leaves every object indexed exactly once, one file per object, each readable and holding
 * exactly its original pixels (compressed or not). At the end the objects are retrieved by C-GET
 * (DCMTK getscu) from the restarted server, with their original pixels. SQLite and PostgreSQL.
 */
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openArchive } from '../../src/archive/archive.js';
import { encapsulatedFrames } from '../../src/dicom/codec/frames.js';
import { codecFor } from '../../src/dicom/codec/registry.js';
import { pixelModuleOf } from '../../src/dicom/codec/types.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { parseDicom } from '../../src/dicom/reader.js';
import { EXPLICIT_VR_LE, transferSyntax } from '../../src/dicom/uid.js';
import { encodePart10 } from '../../src/dicom/writer.js';
import { objectFiles } from '../archive/compression-helpers.js';
import { dropSchema, PG_URL, randomSchema } from '../archive/helpers.js';
import { run, runPacs } from '../helpers/cli.js';
import { dcmtkTool } from '../helpers/corpus.js';
import { makeCtDataSet } from '../helpers/synthetic.js';
import { type Child, freePort, startPacsServer, TEST_CLIENT_AES, tempDir } from './helpers.js';

const DCMTK_ENV = { TCP_NODELAY: '1' };
const COUNT = 80;
const KILLS = 3;
const STUDY = '1.2.826.0.1.3680043.8.498.13013';
const SERIES = '1.2.826.0.1.3680043.8.498.13013.1';

/** The pixel bytes of a stored object (decoded when compressed), little endian. */
async function storedPixels(path: string): Promise<{ ts: string; pixels: Buffer }> {
  const { dataSet, transferSyntax: ts } = parseDicom(await readFile(path));
  const value = dataSet.get(TAG.PixelData)?.value;
  assert.ok(value !== undefined && !Array.isArray(value), `${path}: Pixel Data`);
  if (value instanceof Uint8Array) return { ts, pixels: Buffer.from(value) };
  assert.ok(value.kind === 'fragments', `${path}: read whole`);
  const m = pixelModuleOf(dataSet);
  const codec = codecFor(ts);
  assert.ok(codec, ts);
  const frames = encapsulatedFrames(value, m.numberOfFrames);
  const out: Buffer[] = [];
  for (const f of frames) out.push(Buffer.from((await codec.decodeFrame(f, m)).pixels));
  return { ts, pixels: Buffer.concat(out) };
}

for (const engine of ['sqlite', 'postgres'] as const)
  describe(`kill -9 during compression at rest (${engine})`, () => {
    let work: { path: string; remove: () => Promise<void> };
    const schema = engine === 'postgres' ? randomSchema() : undefined;
    const db = schema !== undefined ? [`${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}`] : [];
    const dbFlag = db.length > 0 ? ['--db', ...db] : [];
    const servers: Child[] = [];
    const originals = new Map<string, Buffer>();
    let files: string[] = [];
    let data = '';
    let config = '';

    before(async () => {
      work = await tempDir('pacs-compress-crash-');
      data = join(work.path, 'data');
      config = join(work.path, 'config.json');
      await writeFile(
        config,
        JSON.stringify({
          storage: { compression: 'jpeg-ls-lossless' },
          server: { dicom: { aes: TEST_CLIENT_AES } },
          log: { level: 'info' },
        }),
      );
      const src = join(work.path, 'src');
      await mkdir(src, { recursive: true });
      for (let i = 1; i <= COUNT; i++) {
        const ds = makeCtDataSet({
          studyInstanceUid: STUDY,
          seriesInstanceUid: SERIES,
          instanceNumber: i,
          rows: 256,
          columns: 256,
        });
        // A smooth image (JPEG-LS makes it smaller; the synthetic CT's noise would not compress).
        const pixels = new Uint8Array(256 * 256 * 2);
        for (let y = 0; y < 256; y++)
          for (let x = 0; x < 256; x++) {
            const v = (x * 5 + y * 3 + i * 11 + ((x * y) >> 7)) & 0xfff;
            pixels[2 * (y * 256 + x)] = v & 0xff;
            pixels[2 * (y * 256 + x) + 1] = v >> 8;
          }
        ds.setBytes(TAG.PixelData, pixels, 'OW');
        const uid = ds.string(TAG.SOPInstanceUID) as string;
        originals.set(uid, Buffer.from(pixels));
        const p = join(src, `ct-${String(i).padStart(3, '0')}.dcm`);
        await writeFile(p, encodePart10(ds, EXPLICIT_VR_LE));
        files.push(p);
      }
      files = files.sort();
    });

    after(async () => {
      for (const s of servers) await s.stop('SIGKILL');
      await work?.remove();
      if (schema !== undefined) await dropSchema(schema);
    });

    /** Every object indexed once, one file each, with its original pixels; how many are compressed. */
    async function checkArchive(when: string): Promise<number> {
      const archive = await openArchive({
        dataDir: data,
        durability: 'none',
        ...(db[0] ? { dbUrl: db[0] } : {}),
      });
      try {
        assert.equal(await archive.index.countInstances(), COUNT, `${when}: indexed objects`);
        const seen = new Set<string>();
        let compressed = 0;
        for await (const row of archive.index.listInstanceFiles()) {
          assert.ok(!seen.has(row.sopInstanceUid), `${when}: ${row.sopInstanceUid} indexed twice`);
          seen.add(row.sopInstanceUid);
          const expected = originals.get(row.sopInstanceUid);
          assert.ok(expected, `${when}: ${row.sopInstanceUid} is one of ours`);
          const { ts, pixels } = await storedPixels(archive.store.absolutePath(row.path));
          const indexed = await archive.index.findInstance(row.sopInstanceUid);
          assert.equal(indexed?.transferSyntaxUid, ts, `${when}: the row says the file's syntax`);
          assert.ok(
            pixels.equals(expected),
            `${when}: ${row.sopInstanceUid} (${ts}) has its original pixels`,
          );
          if (transferSyntax(ts)?.encapsulated) compressed++;
        }
        assert.equal(seen.size, COUNT);
        assert.equal(
          (await objectFiles(data)).length,
          COUNT,
          `${when}: one file per object (no orphan left)`,
        );
        assert.deepEqual(await readdir(join(data, 'tmp')), [], `${when}: no temporary file left`);
        return compressed;
      } finally {
        await archive.close();
      }
    }

    it('leaves every object readable and indexed once with its original pixels, however often it is killed', async () => {
      const port = await freePort();
      const args = ['--config', config, '--data', data, ...dbFlag, '--port', String(port)];
      let server = (await startPacsServer(args)).server;
      servers.push(server);
      const sent = await run(dcmtkTool('storescu'), ['-aec', 'PACS', '127.0.0.1', String(port), ...files], {
        env: DCMTK_ENV,
      });
      assert.equal(sent.code, 0, sent.stderr);

      const compressedLines = (c: Child) => (c.output.match(/"msg":"object compressed"/g) ?? []).length;
      const kills: string[] = [];
      let compressed = 0;
      for (let k = 0; k < KILLS; k++) {
        // Somewhere in the middle of the work left: after a random number of objects, plus a random pause.
        const left = COUNT - compressed;
        if (left < 4) break; // all but the job a kill left running (taken again once its lease expires)
        const after = 1 + Math.floor(Math.random() * Math.max(1, Math.min(left - 2, 12)));
        const pause = Math.floor(Math.random() * 40);
        await server.waitFor(new RegExp(`(?:"msg":"object compressed"[\\s\\S]*){${after}}`), 120_000);
        await new Promise((resolve) => setTimeout(resolve, pause));
        const pid = server.process.pid;
        assert.ok(pid !== undefined);
        process.kill(pid, 'SIGKILL');
        await server.exited;
        kills.push(`after ${compressedLines(server)} compressed + ${pause} ms`);

        const reindex = await runPacs([
          'archive',
          'reindex',
          '--data',
          data,
          ...dbFlag,
          '--grace',
          '0',
          '--json',
        ]);
        assert.equal(reindex.code, 0, reindex.stderr);
        const report = JSON.parse(reindex.stdout) as { filesIndexed: number; duplicateFilesRemoved: number };
        assert.equal(
          report.filesIndexed,
          0,
          `kill ${k + 1} (${kills.join('; ')}): nothing was left unindexed`,
        );
        const now = await checkArchive(`kill ${k + 1} (${kills.join('; ')})`);
        assert.ok(now >= compressed, 'what was compressed stays compressed');
        compressed = now;

        server = (await startPacsServer(args)).server;
        servers.push(server);
      }
      assert.ok(kills.length > 0 && compressed > 0, `${compressed} compressed when last killed`);

      // Retrieved by C-GET (DCMTK getscu) from the running server: every object, its original pixels.
      const got = join(work.path, 'got');
      await mkdir(got);
      const r = await run(
        dcmtkTool('getscu'),
        [
          '-aec',
          'PACS',
          '-S',
          '-k',
          'QueryRetrieveLevel=STUDY',
          '-k',
          `StudyInstanceUID=${STUDY}`,
          '-od',
          got,
          '127.0.0.1',
          String(port),
        ],
        { env: DCMTK_ENV },
      );
      assert.equal(r.code, 0, r.stderr);
      const received = await readdir(got);
      assert.equal(received.length, COUNT, r.stderr);
      for (const name of received) {
        const bytes = await readFile(join(got, name));
        const { dataSet } = parseDicom(bytes);
        const uid = dataSet.string(TAG.SOPInstanceUID) as string;
        const { pixels } = await storedPixels(join(got, name));
        assert.ok(pixels.equals(originals.get(uid) as Buffer), `C-GET ${uid}`);
      }
      await server.stop('SIGTERM');
      const final = await checkArchive('after the C-GET');
      assert.ok(final >= compressed);
    });
  });
