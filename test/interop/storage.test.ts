/**
 * DCMTK's storescu against the real `pacs server` process, on SQLite and on PostgreSQL (a schema
 * of its own per run): a generated CT series of 300 objects of 512x512 over one association, every
 * data set stored unchanged and indexed; the pydicom corpus, each file in its own transfer syntax
 * (JPEG, JPEG-LS, JPEG 2000, RLE, deflated, big endian...), stored exactly as storescu sent it
 * (DCMTK's storescp in bit-preserving mode is the witness of what that is: storescu re-encodes
 * some data sets) and, sent by `pacs store` (which sends the file's bytes), exactly as in the file;
 * the duplicate policies keep (0xB006, the first copy kept), replace (the new copy) and reject
 * (0x0111). The index is checked after the server stopped: opened directly, and by
 * `pacs archive reindex`, which must find nothing to repair.
 */
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openIndex } from '../../src/archive/index/open.js';
import { EXPLICIT_VR_LE } from '../../src/dicom/uid.js';
import { encodePart10 } from '../../src/dicom/writer.js';
import { type FileInfo, readFileInfo } from '../../src/services/storage/scu.js';
import { dropSchema, PG_URL, randomSchema } from '../archive/helpers.js';
import { run, runPacs } from '../helpers/cli.js';
import { corpusFiles, dcmtkTool, TEST_FILES } from '../helpers/corpus.js';
import { makeCtDataSet, writeCtSeries } from '../helpers/synthetic.js';
import {
  type Child,
  freePort,
  spawnChild,
  startPacsServer,
  tempDir,
  waitForPort,
} from '../server/helpers.js';

/** DCMTK reads TCP_NODELAY from the environment: without it, small PDUs wait for Nagle's delay. */
const DCMTK_ENV = { TCP_NODELAY: '1' };
/** A safety net for a hung child only (the suite runs on busy machines: no timing is asserted). */
const CHILD_LIMIT_MS = 20 * 60_000;
const DEFLATED = '1.2.840.10008.1.2.1.99';

type Engine = 'sqlite' | 'postgres';

/** One C-STORE as storescu -v reports it: the file and the response text, if one came. */
interface StorescuResult {
  readonly file: string;
  readonly response: string | undefined;
}

/** The files storescu -v sent, in order, with the response of each ("Success", "Warning: ..."). */
function storescuResults(output: string): StorescuResult[] {
  const results: { file: string; response: string | undefined }[] = [];
  for (const line of output.split('\n')) {
    const sending = /^I: Sending file: (.*)$/.exec(line);
    if (sending) {
      results.push({ file: sending[1] as string, response: undefined });
      continue;
    }
    // -v: "I: Received Store Response (Success)"; -d: the status on a "DIMSE Status" line below.
    const response =
      /^I: Received Store Response \((.*)\)$/.exec(line) ??
      /^D: DIMSE Status\s*:\s*0x[0-9a-f]{4}: (.*)$/i.exec(line);
    const last = results.at(-1);
    if (response && last && last.response === undefined) last.response = response[1];
  }
  return results;
}

/** The DIMSE statuses storescu -d printed for its responses, in order ("DIMSE Status : 0xb006 ..."). */
function storescuStatuses(output: string): number[] {
  return [...output.matchAll(/DIMSE Status\s*:\s*0x([0-9a-f]{4})/gi)].map((m) =>
    Number.parseInt(m[1] ?? '', 16),
  );
}

async function walkFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walkFiles(p)));
    else out.push(p);
  }
  return out.sort();
}

/** Every object file under DIR (an archive's objects/ or storescp's folder) by SOP Instance UID; one file per UID. */
async function filesByUid(dir: string): Promise<Map<string, FileInfo>> {
  const map = new Map<string, FileInfo>();
  for (const path of await walkFiles(dir)) {
    const r = await readFileInfo(path);
    assert.ok(r.ok, `${path} is a readable DICOM object`);
    assert.ok(!map.has(r.value.sopInstanceUid), `one file for ${r.value.sopInstanceUid}`);
    map.set(r.value.sopInstanceUid, r.value);
  }
  return map;
}

async function info(path: string): Promise<FileInfo> {
  const r = await readFileInfo(path);
  assert.ok(r.ok, `${path}: ${r.ok ? '' : r.error.message}`);
  return r.value;
}

/** The data set bytes of a Part-10 file (after its meta). */
async function dataSetBytes(f: FileInfo): Promise<Buffer> {
  return (await readFile(f.path)).subarray(f.dataSetOffset);
}

/**
 * `stored` holds the same data set bytes as `expected`, in the same transfer syntax ('even': plus
 * the pad byte that makes an odd length even).
 */
async function assertSameDataSet(
  stored: FileInfo | undefined,
  expected: FileInfo,
  what: string,
  length: 'exact' | 'even' = 'exact',
): Promise<void> {
  assert.ok(stored, `${what}: stored`);
  assert.equal(stored.transferSyntaxUid, expected.transferSyntaxUid, `${what}: transfer syntax`);
  let want = await dataSetBytes(expected);
  if (length === 'even' && want.length % 2 === 1) want = Buffer.concat([want, Buffer.of(0)]);
  assert.ok((await dataSetBytes(stored)).equals(want), `${what}: same data set bytes`);
}

/** A storescu profile (-xf FILE Objects) with one context per SOP class and transfer syntax of `files`: each goes in its own syntax. */
async function storescuProfile(path: string, files: readonly FileInfo[]): Promise<void> {
  const syntaxes = [...new Set(files.map((f) => f.transferSyntaxUid))];
  const pairs = [
    ...new Set(files.map((f) => `${f.sopClassUid}\\TS${syntaxes.indexOf(f.transferSyntaxUid)}`)),
  ];
  assert.ok(pairs.length <= 128, 'at most 128 presentation contexts');
  const lines = [
    '[[TransferSyntaxes]]',
    ...syntaxes.flatMap((t, i) => [`[TS${i}]`, `TransferSyntax1 = ${t}`]),
    '[[PresentationContexts]]',
    '[Objects]',
    ...pairs.map((p, i) => `PresentationContext${i + 1} = ${p}`),
    '[[Profiles]]',
    '[Objects]',
    'PresentationContexts = Objects',
  ];
  await writeFile(path, `${lines.join('\n')}\n`);
}

/** Runs storescu -v (and more args) to PORT with FILES; fails the test when it cannot run. */
async function storescu(port: number, args: readonly string[], files: readonly string[]): Promise<string> {
  const r = await run(
    dcmtkTool('storescu'),
    ['-v', '-aec', 'PACS', ...args, '127.0.0.1', String(port), ...files],
    {
      env: DCMTK_ENV,
      timeoutMs: CHILD_LIMIT_MS,
    },
  );
  const output = `${r.stdout}${r.stderr}`;
  assert.equal(r.code, 0, `storescu failed:\n${output}`);
  return output;
}

interface ServerSetup {
  readonly dataDir: string;
  readonly dbArgs: readonly string[];
}

/** Starts `pacs server` on the data folder with a config file of storage settings. */
async function startServer(
  work: string,
  setup: ServerSetup,
  storage: Record<string, unknown>,
): Promise<{ server: Child; port: number }> {
  const config = join(work, `config-${basename(setup.dataDir)}.json`);
  await writeFile(config, JSON.stringify({ storage }));
  return startPacsServer(['--config', config, '--data', setup.dataDir, ...setup.dbArgs]);
}

async function stopServer(server: Child): Promise<void> {
  const { code } = await server.stop('SIGTERM');
  assert.equal(code, 0, `pacs server exited ${code}:\n${server.output.slice(-4000)}`);
}

/**
 * After the server stopped: the index has exactly `uids` (each row naming an existing file) and
 * `pacs archive reindex` finds the index and the files in agreement.
 */
async function assertIndexed(setup: ServerSetup, dbUrl: string, uids: readonly string[]): Promise<void> {
  const files = await filesByUid(join(setup.dataDir, 'objects'));
  const { index } = await openIndex(dbUrl);
  try {
    assert.equal(await index.countInstances(), uids.length, 'index rows');
    for (const uid of uids) {
      const row = await index.findInstance(uid);
      assert.ok(row, `${uid} indexed`);
      assert.equal(join(setup.dataDir, row.path), files.get(uid)?.path, `${uid}: the row names its file`);
    }
  } finally {
    await index.close();
  }
  const r = await runPacs(
    ['archive', 'reindex', '--json', '--grace', '0', '--data', setup.dataDir, ...setup.dbArgs],
    {
      timeoutMs: CHILD_LIMIT_MS,
    },
  );
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as Record<string, unknown>;
  assert.deepEqual(
    {
      repaired: report['repaired'],
      filesChecked: report['filesChecked'],
      rowsChecked: report['rowsChecked'],
      unreadable: report['unreadableFiles'],
    },
    { repaired: 0, filesChecked: uids.length, rowsChecked: uids.length, unreadable: [] },
    'reindex finds nothing to repair',
  );
}

for (const engine of ['sqlite', 'postgres'] as const satisfies readonly Engine[]) {
  describe(`storescu to pacs server, index on ${engine}`, () => {
    let work: { path: string; remove: () => Promise<void> };
    const schemas: string[] = [];

    /** A data folder and, on PostgreSQL, a fresh schema for one server. */
    const newSetup = (name: string): ServerSetup & { dbUrl: string } => {
      const dataDir = join(work.path, name);
      if (engine === 'sqlite')
        return { dataDir, dbArgs: [], dbUrl: `sqlite:${join(dataDir, 'index.sqlite')}` };
      const schema = randomSchema();
      schemas.push(schema);
      const dbUrl = `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}`;
      return { dataDir, dbArgs: ['--db', dbUrl], dbUrl };
    };

    before(async () => {
      work = await tempDir(`pacs-interop-storage-${engine}-`);
    });
    after(async () => {
      await work.remove();
      for (const s of schemas) await dropSchema(s);
    });

    it('stores a CT series of 300 objects of 512x512 sent over one association, data sets unchanged, all indexed', async () => {
      const sources = writeCtSeries(join(work.path, 'ct'), 300);
      const setup = newSetup('data-ct');
      const { server, port } = await startServer(work.path, setup, {});
      let output: string;
      try {
        output = await storescu(port, ['+sd'], [join(work.path, 'ct')]);
      } finally {
        await stopServer(server);
      }
      assert.equal(output.match(/Association Accepted/g)?.length, 1, 'one association');
      const results = storescuResults(output);
      assert.equal(results.length, 300);
      assert.deepEqual(
        results.filter((r) => r.response !== 'Success'),
        [],
        'every object answered Success',
      );
      assert.match(server.output, /released after \d+ ms: 300 requests, 0 failures/);

      const stored = await filesByUid(join(setup.dataDir, 'objects'));
      assert.equal(stored.size, 300);
      const uids: string[] = [];
      for (const path of sources) {
        const source = await info(path);
        uids.push(source.sopInstanceUid);
        await assertSameDataSet(stored.get(source.sopInstanceUid), source, basename(path));
      }
      assert.deepEqual(await readdir(join(setup.dataDir, 'tmp')), [], 'no temporary file left');
      await assertIndexed(setup, setup.dbUrl, uids);
    });

    it('stores each pydicom corpus file in its own transfer syntax, as storescu sent it and (pacs store) as in the file', async () => {
      // The corpus repeats SOP Instance UIDs (one image in several syntaxes): rounds of unique
      // UIDs go to a server that replaces duplicates, so every file is checked once stored.
      const all: FileInfo[] = [];
      for (const path of corpusFiles(TEST_FILES)) {
        const r = await readFileInfo(path);
        if (r.ok) all.push(r.value);
      }
      const groups = new Map<string, FileInfo[]>();
      for (const f of all) groups.set(f.sopInstanceUid, [...(groups.get(f.sopInstanceUid) ?? []), f]);
      const rounds: FileInfo[][] = [];
      for (const group of groups.values())
        group.forEach((f, i) => {
          rounds[i] ??= [];
          rounds[i]?.push(f);
        });

      const setup = newSetup('data-corpus');
      const { server, port } = await startServer(work.path, setup, { duplicatePolicy: 'replace' });
      const witnessPort = await freePort();
      const witnessDirs: string[] = [];
      const syntaxesAsSent = new Set<string>();
      const syntaxesAsInFile = new Set<string>();
      const refusedByStorescu = new Set<string>();
      try {
        for (const [k, round] of rounds.entries()) {
          const profile = join(work.path, `round-${k}.cfg`);
          await storescuProfile(profile, round);
          const paths = round.map((f) => f.path);

          // What storescu sends: written bit for bit by DCMTK's storescp.
          const witnessDir = join(work.path, `witness-${k}`);
          await mkdir(witnessDir);
          witnessDirs.push(witnessDir);
          const storescp = spawnChild(
            dcmtkTool('storescp'),
            ['+B', '+xa', '-od', witnessDir, String(witnessPort)],
            { env: DCMTK_ENV, name: 'storescp' },
          );
          try {
            await waitForPort(witnessPort);
            await storescu(witnessPort, ['-xf', profile, 'Objects', '-nh'], paths);
          } finally {
            await storescp.stop();
          }
          const witness = await filesByUid(witnessDir);

          // storescu to our server: the same data set bytes as storescp received.
          const output = await storescu(port, ['-xf', profile, 'Objects', '-nh'], paths);
          const results = storescuResults(output);
          const answered = new Set(results.filter((r) => r.response !== undefined).map((r) => r.file));
          for (const r of results)
            if (r.response !== undefined) assert.equal(r.response, 'Success', `${r.file}: ${r.response}`);
          for (const path of paths) {
            if (answered.has(path)) continue;
            // Files storescu itself cannot read (truncated, no SOP UIDs) are not sent.
            assert.match(
              output,
              new RegExp(
                `(Bad DICOM file: |No SOP Class or Instance UID in file: |in file: )${escapeRegExp(path)}`,
              ),
              `${path} was not sent: storescu says why`,
            );
            refusedByStorescu.add(path);
          }
          assert.ok(
            !/Converting transfer syntax: (.*) -> (?!\1$)/m.test(output),
            'each file sent in its own syntax',
          );
          const ours = await filesByUid(join(setup.dataDir, 'objects'));
          for (const r of results) {
            if (r.response === undefined) continue;
            const source = await info(r.file);
            const sent = witness.get(source.sopInstanceUid);
            assert.ok(sent, `storescp received ${r.file}`);
            await assertSameDataSet(
              ours.get(source.sopInstanceUid),
              sent,
              `${basename(r.file)} from storescu`,
            );
            syntaxesAsSent.add(source.transferSyntaxUid);
          }

          // pacs store sends the file's own bytes: stored exactly as they are in the file.
          const sendable = round.filter((f) => !refusedByStorescu.has(f.path));
          if (sendable.length === 0) continue;
          const stored = await runPacs(
            ['store', '--json', '127.0.0.1', String(port), ...sendable.map((f) => f.path)],
            {
              timeoutMs: CHILD_LIMIT_MS,
            },
          );
          assert.equal(stored.code, 0, stored.stderr);
          const report = JSON.parse(stored.stdout) as {
            files: { path: string; status: number; reencoded: boolean }[];
          };
          const afterStore = await filesByUid(join(setup.dataDir, 'objects'));
          for (const f of report.files) {
            assert.equal(f.status, 0, `${f.path}: status`);
            assert.equal(f.reencoded, false, `${f.path}: sent as it is in the file`);
            const source = await info(f.path);
            await assertSameDataSet(
              afterStore.get(source.sopInstanceUid),
              source,
              `${basename(f.path)} from pacs store`,
              // pacs store pads an odd-length deflated data set to even length (PS3.5 A.5).
              source.transferSyntaxUid === DEFLATED ? 'even' : 'exact',
            );
            syntaxesAsInFile.add(source.transferSyntaxUid);
          }
        }
      } finally {
        await stopServer(server);
      }
      const expected = [
        '1.2.840.10008.1.2', // Implicit VR LE
        '1.2.840.10008.1.2.1', // Explicit VR LE
        '1.2.840.10008.1.2.1.99', // Deflated
        '1.2.840.10008.1.2.2', // Explicit VR BE
        '1.2.840.10008.1.2.4.50', // JPEG baseline
        '1.2.840.10008.1.2.4.51', // JPEG extended
        '1.2.840.10008.1.2.4.70', // JPEG lossless SV1
        '1.2.840.10008.1.2.4.80', // JPEG-LS lossless
        '1.2.840.10008.1.2.4.90', // JPEG 2000 lossless
        '1.2.840.10008.1.2.4.91', // JPEG 2000
        '1.2.840.10008.1.2.5', // RLE
      ];
      for (const ts of expected) {
        assert.ok(syntaxesAsSent.has(ts), `storescu sent an object in ${ts}`);
        assert.ok(syntaxesAsInFile.has(ts), `pacs store sent an object in ${ts}`);
      }
      await assertIndexed(
        setup,
        setup.dbUrl,
        [...groups.keys()].filter((uid) => hasSendableFile(groups.get(uid), refusedByStorescu)),
      );
    });

    describe('duplicate SOP Instance UIDs', () => {
      let first: string;
      let second: string;
      let firstInfo: FileInfo;
      let secondInfo: FileInfo;

      before(async () => {
        // Two objects with the same UIDs and different pixels.
        const dir = join(work.path, 'dups');
        await mkdir(dir, { recursive: true });
        const uids = {
          studyInstanceUid: '1.2.826.0.1.3680043.8.498.77.1',
          seriesInstanceUid: '1.2.826.0.1.3680043.8.498.77.2',
        };
        const sopInstanceUid = '1.2.826.0.1.3680043.8.498.77.3';
        first = join(dir, 'first.dcm');
        second = join(dir, 'second.dcm');
        const make = (n: number) =>
          encodePart10(
            makeCtDataSet({ ...uids, sopInstanceUid, instanceNumber: n, rows: 64, columns: 64 }),
            EXPLICIT_VR_LE,
          );
        await writeFile(first, make(1));
        await writeFile(second, make(2));
        firstInfo = await info(first);
        secondInfo = await info(second);
        assert.ok(!(await dataSetBytes(firstInfo)).equals(await dataSetBytes(secondInfo)));
      });

      const cases = [
        { policy: 'keep', status: 0xb006, response: /^Warning/, kept: 'first' },
        { policy: 'replace', status: 0x0000, response: /^Success$/, kept: 'second' },
        { policy: 'reject', status: 0x0111, response: /^Fail/, kept: 'first' },
      ] as const;
      for (const c of cases) {
        it(`policy ${c.policy}: the second copy is answered 0x${c.status.toString(16).padStart(4, '0')} and the ${c.kept} copy is kept`, async () => {
          const setup = newSetup(`data-dup-${c.policy}`);
          const { server, port } = await startServer(work.path, setup, { duplicatePolicy: c.policy });
          let output: string;
          try {
            const once = await storescu(port, ['-d'], [first]);
            assert.deepEqual(storescuStatuses(once), [0]);
            output = await storescu(port, ['-d', '-nh'], [second]);
            const results = storescuResults(output);
            assert.equal(results.length, 1);
            assert.match(results[0]?.response ?? '', c.response);
            assert.deepEqual(storescuStatuses(output), [c.status]);
            // Our own SCU sees the same status.
            const again = await runPacs(['store', '--json', '127.0.0.1', String(port), second]);
            const report = JSON.parse(again.stdout) as { files: { status: number }[] };
            assert.equal(report.files[0]?.status, c.policy === 'replace' ? 0 : c.status);
          } finally {
            await stopServer(server);
          }
          const stored = await filesByUid(join(setup.dataDir, 'objects'));
          assert.equal(stored.size, 1, 'one object file');
          await assertSameDataSet(
            stored.get(firstInfo.sopInstanceUid),
            c.kept === 'first' ? firstInfo : secondInfo,
            `the ${c.kept} copy`,
          );
          await assertIndexed(setup, setup.dbUrl, [firstInfo.sopInstanceUid]);
        });
      }
    });
  });
}

function hasSendableFile(group: readonly FileInfo[] | undefined, refused: ReadonlySet<string>): boolean {
  return (group ?? []).some((f) => !refused.has(f.path));
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
