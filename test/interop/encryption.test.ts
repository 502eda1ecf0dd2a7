/**
 * Encryption at rest against the real `pacs server` and DCMTK (issue 14 "How it is checked"):
 * with `storage.encryption.keyFile` set, storescu's objects (real pydicom corpus files) land on
 * disk with no patient name in clear; getscu (C-GET), movescu to storescp (C-MOVE) and WADO-RS
 * (study retrieve, frames, bulk data with a Range) return them byte for byte; a flipped byte
 * answers an integrity error (HTTP 500 with its code, a failed C-GET sub-operation), never wrong
 * bytes; `pacs archive rotate-key` then a server with only the new key reads everything; the
 * server refuses a bad key file with one line.
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TAG } from '../../src/dicom/dictionary.js';
import { readDicomFile } from '../../src/io/dicom-file.js';
import { ENVELOPE_MAGIC, HEADER_SIZE } from '../../src/security/envelope.js';
import { type FileInfo, readFileInfo } from '../../src/services/storage/scu.js';
import { run, runPacs } from '../helpers/cli.js';
import { dcmtkTool, TEST_FILES } from '../helpers/corpus.js';
import {
  type Child,
  firstAdmin,
  freePort,
  spawnChild,
  startPacsServer,
  TEST_CLIENT_AES,
  tempDir,
} from '../server/helpers.js';
import { get as getAnonymous, parseMultipart } from '../web/wado-client.js';

/** The first start's admin of every server here: DICOMweb needs credentials. */
const admin = await firstAdmin();
const get = (url: string, headers: Record<string, string> = {}) =>
  getAnonymous(url, { ...admin.headers, ...headers });

const DCMTK_ENV = { TCP_NODELAY: '1' };
/** Uncompressed corpus files of five studies (C-GET and C-MOVE send them as stored). */
const CORPUS = [
  'CT_small.dcm',
  'MR_small.dcm',
  'rtdose.dcm',
  'SC_rgb_small_odd.dcm',
  'ExplVR_BigEnd.dcm',
].map((f) => join(TEST_FILES, f));

interface Source {
  readonly info: FileInfo;
  readonly study: string;
  readonly series: string;
  readonly patientName: string;
  readonly bytes: Buffer;
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else out.push(p);
  }
  return out.sort();
}

function finalStatus(output: string): string | undefined {
  return [...output.matchAll(/DIMSE Status\s*:\s*(0x[0-9a-f]{4})/g)].map((m) => m[1]).at(-1);
}

function finalCount(output: string, what: 'Completed' | 'Failed'): number | undefined {
  return [...output.matchAll(new RegExp(`${what} Suboperations\\s*:\\s*(\\d+)`, 'g'))]
    .map((m) => Number(m[1]))
    .at(-1);
}

/**
 * getscu proposes Explicit VR Little Endian alone for the Storage SCP role, whatever its +x
 * options, so C-GET re-encodes the implicit and big endian objects: those are compared as stored
 * through C-MOVE and WADO-RS, and through C-GET only the explicit little endian ones.
 */
function asStoredByGet(s: Source): boolean {
  return s.info.transferSyntaxUid === '1.2.840.10008.1.2.1';
}

/** Every file in `dir` by SOP Instance UID. */
async function received(dir: string): Promise<Map<string, FileInfo>> {
  const map = new Map<string, FileInfo>();
  for (const p of await walk(dir)) {
    const r = await readFileInfo(p);
    if (r.ok) map.set(r.value.sopInstanceUid, r.value);
  }
  return map;
}

async function assertSame(sources: readonly Source[], got: Map<string, FileInfo>): Promise<void> {
  for (const s of sources) {
    const r = got.get(s.info.sopInstanceUid);
    assert.ok(r, `received ${s.info.sopInstanceUid}`);
    const bytes = (await readFile(r.path)).subarray(r.dataSetOffset);
    assert.ok(bytes.equals(s.bytes.subarray(s.info.dataSetOffset)), `${s.info.path}: same data set bytes`);
  }
}

describe('encryption at rest: pacs server with DCMTK and WADO-RS', () => {
  let work: Awaited<ReturnType<typeof tempDir>>;
  let server: Child | undefined;
  let storescp: Child;
  let port: number;
  let httpPort: number;
  let storescpPort: number;
  let dataDir: string;
  let keyFile: string;
  const sources: Source[] = [];

  async function startServer(config: Record<string, unknown>): Promise<void> {
    const file = join(work.path, `config-${Date.now()}.json`);
    await writeFile(file, JSON.stringify({ server: { shutdownTimeoutSeconds: 5, dicom: { aes: TEST_CLIENT_AES } }, ...config }));
    httpPort = await freePort();
    const started = await startPacsServer([
      '--config',
      file,
      '--data',
      dataDir,
      '--http-port',
      String(httpPort),
      '--peer',
      `STORESCP=127.0.0.1:${storescpPort}`,
      ...admin.args,
    ]);
    server = started.server;
    port = started.port;
  }

  /** DCMTK's getscu (into `dir`) or movescu of one study from the server: its exit, output. */
  function retrieveStudy(tool: readonly string[], study: string) {
    const [name, ...extra] = tool;
    return run(
      dcmtkTool(name ?? 'getscu'),
      [
        '-d',
        '-S',
        ...extra,
        '-aec',
        'PACS',
        '-k',
        'QueryRetrieveLevel=STUDY',
        '-k',
        `StudyInstanceUID=${study}`,
        '127.0.0.1',
        String(port),
      ],
      { env: DCMTK_ENV },
    );
  }

  function getscu(dir: string, study: string) {
    return retrieveStudy(['getscu', '+B', '-od', dir], study);
  }

  async function stopServer(): Promise<void> {
    const s = server;
    server = undefined;
    if (s) assert.equal((await s.stop('SIGTERM')).code, 0, s.output.slice(-3000));
  }

  before(async () => {
    work = await tempDir('pacs-encryption-interop-');
    dataDir = join(work.path, 'data');
    keyFile = join(work.path, 'kek.json');
    const made = await runPacs(['archive', 'new-key', keyFile]);
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stdout, /^wrote key [0-9a-f]{32} to /);
    assert.equal((await stat(keyFile)).mode & 0o777, 0o600);
    for (const path of CORPUS) {
      const info = await readFileInfo(path);
      assert.ok(info.ok);
      const ds = (await readDicomFile(path, { stopAtTag: TAG.PixelData })).dataSet;
      sources.push({
        info: info.value,
        study: ds.string(TAG.StudyInstanceUID) ?? '',
        series: ds.string(TAG.SeriesInstanceUID) ?? '',
        patientName: ds.string(TAG.PatientName) ?? '',
        bytes: await readFile(path),
      });
    }
    storescpPort = await freePort();
    const dir = join(work.path, 'storescp');
    await mkdir(dir);
    storescp = spawnChild(
      dcmtkTool('storescp'),
      ['-aet', 'STORESCP', '+B', '-od', dir, String(storescpPort)],
      {
        env: DCMTK_ENV,
        name: 'storescp',
      },
    );
    await startServer({ storage: { encryption: { keyFile } } });
  });

  after(async () => {
    await server?.stop('SIGKILL');
    await storescp?.stop();
    await work?.remove();
  });

  it('pacs store (the data set bytes of each file, as they are): stored encrypted, no patient name in clear', async () => {
    // Our SCU sends each file's data set bytes unchanged (storescu may re-encode), so what comes
    // back can be compared with the source files byte for byte.
    const r = await runPacs(['store', '127.0.0.1', String(port), ...CORPUS]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const files = await walk(join(dataDir, 'objects'));
    assert.equal(files.length, CORPUS.length);
    for (const f of files) {
      const bytes = await readFile(f);
      assert.ok(bytes.subarray(0, ENVELOPE_MAGIC.length).equals(ENVELOPE_MAGIC), `${f} is encrypted`);
      for (const s of sources)
        assert.equal(
          bytes.indexOf(Buffer.from(s.patientName, 'latin1')),
          -1,
          `${f}: no ${s.patientName} in clear`,
        );
    }
  });

  it('getscu: every study arrives byte for byte', async () => {
    const dir = join(work.path, 'getscu');
    await mkdir(dir);
    for (const s of sources) {
      const r = await getscu(dir, s.study);
      const out = r.stdout + r.stderr;
      assert.equal(finalStatus(out), '0x0000', out);
    }
    const got = await received(dir);
    assert.equal(got.size, sources.length);
    await assertSame(sources.filter(asStoredByGet), got);
  });

  it('movescu to storescp: every study arrives byte for byte', async () => {
    for (const s of sources) {
      const r = await retrieveStudy(['movescu', '-aem', 'STORESCP'], s.study);
      const out = r.stdout + r.stderr;
      assert.equal(finalStatus(out), '0x0000', out);
      assert.equal(finalCount(out, 'Completed'), 1);
    }
    await assertSame(sources, await received(join(work.path, 'storescp')));
  });

  it('WADO-RS: study retrieve, frames and a bulk data Range are the stored bytes', async () => {
    const base = `http://127.0.0.1:${httpPort}/dicom-web`;
    for (const s of sources) {
      const r = await get(`${base}/studies/${s.study}`, {
        accept: 'multipart/related; type="application/dicom"; transfer-syntax=*',
      });
      assert.equal(r.status, 200, r.body.toString());
      const parts = parseMultipart(String(r.headers['content-type']), r.body);
      assert.equal(parts.length, 1);
      const part = parts[0]?.body ?? Buffer.alloc(0);
      const info = await readFileInfo(s.info.path);
      assert.ok(info.ok);
      // The part is the stored Part-10 object: its data set is the source's.
      const tail = s.bytes.subarray(s.info.dataSetOffset);
      assert.ok(part.subarray(part.length - tail.length).equals(tail), `${s.info.path}: same data set bytes`);
    }
    // Frames of the multi-frame dose (native, little endian): each a slice of the source file.
    const dose = sources.find((s) => s.info.path.endsWith('rtdose.dcm')) as Source;
    const ds = (await readDicomFile(dose.info.path, { stopAtTag: TAG.PixelData })).dataSet;
    const frameSize =
      (ds.number(TAG.Rows) ?? 0) * (ds.number(TAG.Columns) ?? 0) * ((ds.number(TAG.BitsAllocated) ?? 0) / 8);
    const url = `${base}/studies/${dose.study}/series/${dose.series}/instances/${dose.info.sopInstanceUid}`;
    let previous = -1;
    for (const frame of [1, 2, 15]) {
      const f = await get(`${url}/frames/${frame}`, {
        accept: 'multipart/related; type="application/octet-stream"',
      });
      assert.equal(f.status, 200, f.body.toString());
      const body = parseMultipart(String(f.headers['content-type']), f.body)[0]?.body ?? Buffer.alloc(0);
      assert.equal(body.length, frameSize);
      const at = dose.bytes.indexOf(body);
      assert.ok(at > previous, `frame ${frame} is the source's bytes, in order`);
      previous = at;
    }
    // Bulk data of the CT's Pixel Data, whole and a range.
    const ct = sources.find((s) => s.info.path.endsWith('CT_small.dcm')) as Source;
    const ctUrl = `${base}/studies/${ct.study}/series/${ct.series}/instances/${ct.info.sopInstanceUid}`;
    const meta = await get(`${ctUrl}/metadata`, { accept: 'application/dicom+json' });
    assert.equal(meta.status, 200);
    const json = JSON.parse(meta.body.toString()) as Array<Record<string, { BulkDataURI?: string }>>;
    const uri = json[0]?.['7FE00010']?.BulkDataURI;
    assert.ok(uri, 'a BulkDataURI for Pixel Data');
    const whole = await get(uri, { accept: 'application/octet-stream' });
    assert.equal(whole.status, 200);
    assert.ok(ct.bytes.indexOf(whole.body) > 0, 'the pixel data bytes of the source');
    const part = await get(uri, { accept: 'application/octet-stream', range: 'bytes=1000-20999' });
    assert.equal(part.status, 206);
    assert.deepEqual(part.body, whole.body.subarray(1000, 21000));
  });

  it('a flipped byte: HTTP 500 ERR_ARCHIVE_INTEGRITY with a log line, a failed C-GET and C-MOVE sub-operation, never wrong bytes', async () => {
    const ct = sources.find((s) => s.info.path.endsWith('CT_small.dcm')) as Source;
    // Find the CT's object file by reading each through a WADO-RS instance retrieve... the index path is
    // not exposed: flip the file whose plaintext size matches (the CT is the only one of its size).
    const files = await walk(join(dataDir, 'objects'));
    const { envelopeSize } = await import('../../src/security/envelope.js');
    const sizes = await Promise.all(files.map(async (f) => (await stat(f)).size));
    // Part-10 size as stored: the source's size with the meta the archive writes; find by closeness.
    const target = files[
      sizes.findIndex((n) => Math.abs(n - envelopeSize(ct.bytes.length)) < 4096)
    ] as string;
    assert.ok(target, 'the CT object file');
    const bytes = await readFile(target);
    bytes[HEADER_SIZE + 20000] = (bytes[HEADER_SIZE + 20000] as number) ^ 0x01;
    await writeFile(target, bytes);
    const base = `http://127.0.0.1:${httpPort}/dicom-web`;
    const r = await get(
      `${base}/studies/${ct.study}/series/${ct.series}/instances/${ct.info.sopInstanceUid}`,
      {
        accept: 'application/dicom; transfer-syntax=*',
      },
    );
    assert.equal(r.status, 500, r.body.toString());
    const body = JSON.parse(r.body.toString()) as { code: string; reason: string };
    assert.equal(body.code, 'ERR_ARCHIVE_INTEGRITY');
    assert.match(body.reason, /failed its integrity check/);
    assert.match(server?.output ?? '', /failed its integrity check/);
    // The study as multipart: the first part is read before the answer starts, so a 500 too.
    const study = await get(`${base}/studies/${ct.study}`, {
      accept: 'multipart/related; type="application/dicom"; transfer-syntax=*',
    });
    assert.equal(study.status, 500, study.body.toString());
    assert.equal((JSON.parse(study.body.toString()) as { code: string }).code, 'ERR_ARCHIVE_INTEGRITY');
    const dir = join(work.path, 'getscu-tampered');
    await mkdir(dir);
    const g = await getscu(dir, ct.study);
    const out = g.stdout + g.stderr;
    assert.equal(finalCount(out, 'Failed'), 1, out);
    assert.notEqual(finalStatus(out), '0x0000');
    const m = await retrieveStudy(['movescu', '-aem', 'STORESCP'], ct.study);
    const moved = m.stdout + m.stderr;
    assert.equal(finalCount(moved, 'Failed'), 1, moved);
    assert.equal(finalCount(moved, 'Completed'), 0, moved);
    for (const f of await readdir(dir)) {
      const got = await readFileInfo(join(dir, f));
      assert.ok(
        !got.ok || got.value.sopInstanceUid !== ct.info.sopInstanceUid,
        'nothing of the tampered object arrives',
      );
    }
    // Put the byte back for the rotation test.
    bytes[HEADER_SIZE + 20000] = (bytes[HEADER_SIZE + 20000] as number) ^ 0x01;
    await writeFile(target, bytes);
  });

  it('rotate-key, then a server with only the new key reads everything; the old key alone reads nothing', async () => {
    await stopServer();
    const newKey = join(work.path, 'kek2.json');
    assert.equal((await runPacs(['archive', 'new-key', newKey])).code, 0);
    const again = await runPacs(['archive', 'new-key', newKey]);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr.trim(), /never overwritten/);
    const r = await runPacs([
      'archive',
      'rotate-key',
      '--data',
      dataDir,
      '--new-key',
      newKey,
      '--old-key',
      keyFile,
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { checked: number; rewrapped: number; failed: unknown[] };
    assert.deepEqual(
      [report.checked, report.rewrapped, report.failed.length],
      [CORPUS.length, CORPUS.length, 0],
    );
    await startServer({ storage: { encryption: { keyFile: newKey } } });
    const dir = join(work.path, 'getscu-rotated');
    await mkdir(dir);
    for (const s of sources) {
      const g = await getscu(dir, s.study);
      assert.equal(finalStatus(g.stdout + g.stderr), '0x0000', g.stdout + g.stderr);
    }
    const got = await received(dir);
    assert.equal(got.size, sources.length);
    await assertSame(sources.filter(asStoredByGet), got);
    await stopServer();
    // The old key alone: reindex finds every object unreadable (and repairs nothing).
    const old = await runPacs([
      'archive',
      'reindex',
      '--json',
      '--grace',
      '0',
      '--data',
      dataDir,
      '--key-file',
      keyFile,
    ]);
    assert.equal(old.code, 0, old.stderr);
    assert.equal(
      (JSON.parse(old.stdout) as { unreadableFiles: unknown[] }).unreadableFiles.length,
      0,
      'indexed files are not re-read',
    );
    await startServer({ storage: { encryption: { keyFile } } });
    const base = `http://127.0.0.1:${httpPort}/dicom-web`;
    const s0 = sources[0] as Source;
    const refused = await get(
      `${base}/studies/${s0.study}/series/${s0.series}/instances/${s0.info.sopInstanceUid}`,
      {
        accept: 'application/dicom; transfer-syntax=*',
      },
    );
    assert.equal(refused.status, 500);
    assert.equal((JSON.parse(refused.body.toString()) as { code: string }).code, 'ERR_ARCHIVE_KEY');
    await stopServer();
  });

  it('the server refuses a missing, world-readable or malformed key file with one line', async () => {
    const bad = join(work.path, 'bad.json');
    await writeFile(bad, 'not a key', { mode: 0o600 });
    const open = join(work.path, 'open.json');
    await writeFile(open, await readFile(keyFile));
    await chmod(open, 0o644);
    for (const [file, why] of [
      [join(work.path, 'missing.json'), /does not exist/],
      [open, /readable by others/],
      [bad, /malformed/],
    ] as const) {
      const config = join(work.path, 'bad-config.json');
      await writeFile(config, JSON.stringify({ storage: { encryption: { keyFile: file } } }));
      const r = await runPacs([
        'server',
        '--config',
        config,
        '--data',
        dataDir,
        '--port',
        String(await freePort()),
      ]);
      assert.notEqual(r.code, 0);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0] ?? '', why);
      assert.match(lines[0] ?? '', /storage\.encryption/);
    }
  });
});
