/**
 * `pacs store` as a user runs it (bin/pacs in a child process, spawned asynchronously since some
 * peers run in this process): to DCMTK's storescp (bit-preserving, so it writes exactly what it
 * receives) with the whole pydicom corpus read in place, a folder holding non-DICOM files, a
 * peer that refuses a SOP class or answers failure and warning statuses, a connection cut
 * part-way (a new association for the rest), and the one-line failures.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { StoreReport } from '../../src/cli/store.js';
import { DataSet } from '../../src/dicom/dataset.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { toDicomJson } from '../../src/dicom/json.js';
import { parseDicom } from '../../src/dicom/reader.js';
import {
  allStorageSopClasses,
  DEFLATED_EXPLICIT_VR_LE,
  EXPLICIT_VR_LE,
  generateUid,
  IMPLICIT_VR_LE,
  UID,
} from '../../src/dicom/uid.js';
import { encodePart10 } from '../../src/dicom/writer.js';
import { ApplicationEntity, type DicomServer } from '../../src/network/ae.js';
import { Status } from '../../src/network/dimse-status.js';
import type { DimseService } from '../../src/network/service.js';
import { readFileInfo } from '../../src/services/storage/scu.js';
import { PACS_BIN, run, runPacs } from '../helpers/cli.js';
import { dcmtkTool, TEST_FILES } from '../helpers/corpus.js';
import { waitFor } from '../network/loopback-helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'pacs-store-'));
const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
  rmSync(tmp, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function waitListening(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const connected = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (connected) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on port ${port}`);
}

interface Storescp {
  port: number;
  dir: string;
}

/** DCMTK storescp writing what it receives bit for bit (+B), every syntax it knows (+xa), unique names. */
async function startStorescp(extra: readonly string[] = []): Promise<Storescp> {
  const storescp = dcmtkTool('storescp');
  const port = await freePort();
  const dir = mkdtempSync(join(tmp, 'storescp-'));
  const child: ChildProcess = spawn(
    storescp,
    ['--output-directory', dir, '-aet', 'STORESCP', '+B', '+xa', '+uf', ...extra, String(port)],
    { stdio: 'ignore', env: { ...process.env, TCP_NODELAY: '1' } },
  );
  cleanups.push(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  });
  await waitListening(port);
  return { port, dir };
}

/** What storescp wrote: each file's SOP Instance UID, syntax and data set bytes (after the meta). */
async function receivedFiles(dir: string): Promise<{ uid: string; ts: string; dataSet: Buffer }[]> {
  const out = [];
  for (const name of readdirSync(dir)) {
    const r = await readFileInfo(join(dir, name));
    assert.ok(r.ok, `storescp wrote an unreadable ${name}`);
    out.push({
      uid: r.value.sopInstanceUid,
      ts: r.value.transferSyntaxUid,
      dataSet: readFileSync(r.value.path).subarray(r.value.dataSetOffset),
    });
  }
  return out;
}

/** Every regular file under a folder. */
function walk(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const p = join(dir, name);
      return statSync(p).isDirectory() ? walk(p) : [p];
    });
}

/** Values compared as DICOM JSON, without the optional group lengths a re-encoding drops. */
function values(bytes: Uint8Array, transferSyntax?: string): unknown {
  const ds = transferSyntax
    ? parseDicom(bytes, { format: 'dataset', transferSyntax }).dataSet
    : parseDicom(bytes).dataSet;
  return Object.fromEntries(Object.entries(toDicomJson(ds)).filter(([k]) => !k.endsWith('0000')));
}

function parseReport(stdout: string): StoreReport {
  return JSON.parse(stdout) as StoreReport;
}

describe('pacs store to DCMTK storescp', () => {
  it('sends every valid object of the pydicom corpus with its data set unchanged', async () => {
    const scp = await startStorescp();
    // What is a valid object, judged independently: its header names it and the whole file parses.
    const valid = new Set<string>();
    const invalid = new Set<string>();
    for (const path of walk(TEST_FILES)) {
      const head = await readFileInfo(path);
      if (!head.ok) {
        if (head.error.code === 'ERR_MALFORMED') invalid.add(path);
        continue;
      }
      try {
        parseDicom(readFileSync(path));
        valid.add(path);
      } catch {
        invalid.add(path);
      }
    }
    assert.ok(valid.size > 100, `${valid.size} valid objects in the corpus`);

    const r = await runPacs(
      ['store', '--json', '--aec', 'STORESCP', '127.0.0.1', String(scp.port), TEST_FILES],
      {
        timeoutMs: 120_000,
      },
    );
    const report = parseReport(r.stdout);
    assert.equal(r.code, invalid.size > 0 ? 1 : 0, r.stderr);
    // Each skipped file was named on stderr, one line each.
    for (const s of report.skipped) assert.ok(r.stderr.includes(`skipped ${s.path}: `), s.path);
    assert.deepEqual(
      report.files.filter((f) => f.status !== Status.Success).map((f) => f.path),
      [...invalid].sort(),
      'exactly the malformed files failed',
    );
    assert.equal(report.sent, valid.size);
    assert.equal(report.failed, invalid.size);

    const received = await receivedFiles(scp.dir);
    assert.equal(received.length, valid.size);
    let asStored = 0;
    for (const f of report.files.filter((x) => valid.has(x.path))) {
      const head = await readFileInfo(f.path);
      assert.ok(head.ok);
      const source = readFileSync(f.path).subarray(head.value.dataSetOffset);
      const same = received.filter((g) => g.uid === f.sopInstanceUid && g.ts === f.transferSyntaxUid);
      if (f.reencoded) {
        // Only a data set not encoded as its meta says is re-encoded here (storescp takes every syntax).
        assert.equal(head.value.encodingMatchesSyntax, false, f.path);
        const expected = values(readFileSync(f.path));
        assert.ok(
          same.some((g) => {
            try {
              return JSON.stringify(values(g.dataSet, g.ts)) === JSON.stringify(expected);
            } catch {
              return false;
            }
          }),
          `${f.path}: re-encoded values arrived`,
        );
        continue;
      }
      asStored++;
      assert.equal(f.transferSyntaxUid, head.value.transferSyntaxUid, f.path);
      // PS3.5 A.5: an odd deflated stream gets one pad byte; nothing else changes.
      const expected =
        source.length % 2 === 1 && head.value.transferSyntaxUid === DEFLATED_EXPLICIT_VR_LE
          ? Buffer.concat([source, Buffer.alloc(1)])
          : source;
      assert.ok(
        same.some((g) => g.dataSet.equals(expected)),
        `${f.path}: the data set arrived byte for byte`,
      );
    }
    assert.ok(asStored >= valid.size - 1, `${asStored} of ${valid.size} sent as stored`);
  });

  it('skips a folder’s non-DICOM files with a warning and exits 0 when the rest is stored', async () => {
    const scp = await startStorescp();
    const folder = join(tmp, 'mixed');
    mkdirSync(join(folder, 'nested', 'deeper'), { recursive: true });
    const objects: string[] = [];
    for (const [i, where] of ['a.dcm', 'nested/b', 'nested/deeper/c.dcm'].entries()) {
      const ds = new DataSet()
        .setString(TAG.SOPClassUID, UID.SecondaryCaptureImageStorage)
        .setString(TAG.SOPInstanceUID, generateUid())
        .setString(TAG.PatientName, `Test^Object${i}`)
        .setString(TAG.Modality, 'OT');
      const path = join(folder, where);
      writeFileSync(path, encodePart10(ds, i === 1 ? IMPLICIT_VR_LE : EXPLICIT_VR_LE));
      objects.push(path);
    }
    writeFileSync(join(folder, 'notes.txt'), 'not a DICOM file, just some notes\n'.repeat(20));
    writeFileSync(join(folder, 'nested', 'empty'), '');
    writeFileSync(
      join(folder, 'nested', 'deeper', 'image.png'),
      Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'),
    );

    const r = await runPacs(['store', '--aec', 'STORESCP', '127.0.0.1', String(scp.port), folder]);
    assert.equal(r.code, 0, r.stderr);
    const warnings = r.stderr.trim().split('\n');
    assert.equal(warnings.length, 3, r.stderr);
    for (const w of warnings)
      assert.match(w, /^pacs: warning: skipped .*(notes\.txt|empty|image\.png): not DICOM/);
    assert.match(r.stdout, /^C-STORE to STORESCP@127\.0\.0\.1:\d+: 3 stored, 0 failed, 3 skipped; /);
    assert.equal(readdirSync(scp.dir).length, 3);
  });

  it('draws a progress bar on standard error when it is a terminal, and none otherwise', async () => {
    const scp = await startStorescp();
    const files = ['CT_small.dcm', 'MR_small.dcm', 'rtplan.dcm'].map((f) => join(TEST_FILES, f));
    const quote = (a: string) => `'${a.replace(/'/g, "'\\''")}'`;
    const command = [
      process.execPath,
      PACS_BIN,
      'store',
      '--aec',
      'STORESCP',
      '127.0.0.1',
      String(scp.port),
      ...files,
    ]
      .map(quote)
      .join(' ');
    // script(1) gives the command a pseudo-terminal (util-linux, as in the logger tests).
    const tty = await run('script', ['-qec', command, '/dev/null']);
    assert.equal(tty.code, 0, tty.stdout);
    assert.match(tty.stdout, /\r\x1b\[K3\/3 objects \[#+\] +\d+\.\d MB\/s +\d+:\d\d left/);
    assert.match(tty.stdout, /\r\x1b\[KC-STORE to STORESCP@127\.0\.0\.1:\d+: 3 stored, 0 failed; /);
    const piped = await runPacs(['store', '--aec', 'STORESCP', '127.0.0.1', String(scp.port), ...files]);
    assert.equal(piped.code, 0);
    assert.equal(piped.stderr, '');
  });

  it('opens a new association when the connection is cut part-way; the object in flight fails', async () => {
    const scp = await startStorescp();
    const files = ['CT_small.dcm', 'waveform_ecg.dcm', 'MR_small.dcm', 'rtplan.dcm'].map((f) =>
      join(TEST_FILES, f),
    );
    // A proxy that cuts its first connection inside the second (large) object.
    let connections = 0;
    const proxy = net.createServer((client) => {
      const n = ++connections;
      const server = net.connect({ host: '127.0.0.1', port: scp.port });
      let forwarded = 0;
      client.on('data', (chunk: Buffer) => {
        forwarded += chunk.length;
        if (n === 1 && forwarded > 39_206 + 100_000) {
          client.destroy();
          server.destroy();
          return;
        }
        server.write(chunk);
      });
      server.on('data', (chunk: Buffer) => client.write(chunk));
      client.on('error', () => server.destroy());
      server.on('error', () => client.destroy());
      client.on('close', () => server.destroy());
      server.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => proxy.close(() => resolve())));
    const port = (proxy.address() as net.AddressInfo).port;

    const r = await runPacs(['store', '--json', '--aec', 'STORESCP', '127.0.0.1', String(port), ...files]);
    assert.equal(r.code, 1);
    const report = parseReport(r.stdout);
    assert.equal(connections, 2);
    assert.deepEqual(
      report.files.map((f) => [f.path.split('/').pop(), f.status]),
      [
        ['CT_small.dcm', 0],
        ['waveform_ecg.dcm', null],
        ['MR_small.dcm', 0],
        ['rtplan.dcm', 0],
      ],
    );
    assert.match(report.files[1]?.statusText ?? '', /association aborted|closed|connection/i);
    assert.match(r.stderr, /^pacs: C-STORE to STORESCP@127\.0\.0\.1:\d+: 1 of 4 objects not stored\n$/);
    assert.equal(readdirSync(scp.dir).length, 3);
  });

  it('gives up after associations keep ending without storing anything', async () => {
    const scp = await startStorescp(['--abort-after']);
    const files = ['CT_small.dcm', 'MR_small.dcm', 'rtplan.dcm', 'rtdose.dcm', 'rtstruct.dcm'].map((f) =>
      join(TEST_FILES, f),
    );
    const r = await runPacs([
      'store',
      '--json',
      '--aec',
      'STORESCP',
      '127.0.0.1',
      String(scp.port),
      ...files,
    ]);
    assert.equal(r.code, 1);
    const report = parseReport(r.stdout);
    assert.equal(report.sent, 0);
    assert.equal(report.failed, 5);
    for (const f of report.files.slice(0, 3)) assert.match(f.statusText, /association aborted by the peer/);
    for (const f of report.files.slice(3)) assert.match(f.statusText, /^not sent: 3 associations in a row/);
    assert.match(
      r.stderr,
      /5 of 5 objects not stored \(3 associations in a row ended without storing anything/,
    );
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });
});

// --- our own peer: a SOP class refused, failure and warning statuses ---------------------------

const servers: DicomServer[] = [];
after(async () => {
  for (const s of servers) await s.close(0);
});

/** An SCP for MR only; it answers a status chosen per SOP Instance UID (success by default). */
async function mrOnlyPeer(
  statuses: Record<string, { status: number; errorComment?: string }>,
): Promise<number> {
  const service: DimseService = {
    name: 'mr-only',
    sopClasses: [{ uid: UID.MRImageStorage }],
    transferSyntaxes: [EXPLICIT_VR_LE, IMPLICIT_VR_LE],
    handlers: {
      'C-STORE': async (ctx, data) => {
        for await (const _ of data) {
          // discarded
        }
        return statuses[ctx.command.affectedSopInstanceUid ?? ''] ?? { status: Status.Success };
      },
    },
  };
  const server = await new ApplicationEntity({ aeTitle: 'MRONLY' }).addService(service).listen({
    port: 0,
    host: '127.0.0.1',
  });
  servers.push(server);
  return server.address?.port ?? 0;
}

describe('pacs store to a peer that refuses some objects', () => {
  const mr = join(TEST_FILES, 'MR_small.dcm');
  const mrBig = join(TEST_FILES, 'MR_small_bigendian.dcm');
  const ct = join(TEST_FILES, 'CT_small.dcm');

  it('counts a refused SOP class as a failure and exits non-zero', async () => {
    const port = await mrOnlyPeer({});
    const r = await runPacs(['store', '--aec', 'MRONLY', '127.0.0.1', String(port), mr, ct]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^C-STORE to MRONLY@127\.0\.0\.1:\d+: 1 stored, 1 failed; /);
    assert.match(
      r.stdout,
      /\n {2}failed {2}.*CT_small\.dcm: the peer accepted no presentation context for 1\.2\.840\.10008\.5\.1\.4\.1\.1\.2 \(CT Image Storage\)\n/,
    );
    assert.equal(r.stderr, `pacs: C-STORE to MRONLY@127.0.0.1:${port}: 1 of 2 objects not stored\n`);
  });

  it('reports failure statuses in words, counts warnings as stored, and re-encodes big endian', async () => {
    // The corpus' MR variants share one SOP Instance UID: tell them apart by the file sent.
    const head = await readFileInfo(mr);
    assert.ok(head.ok);
    const port = await mrOnlyPeer({
      [head.value.sopInstanceUid]: { status: Status.OutOfResources, errorComment: 'disk full' },
    });
    const r = await runPacs(['store', '--json', '--aec', 'MRONLY', '127.0.0.1', String(port), mr, mrBig]);
    assert.equal(r.code, 1);
    const report = parseReport(r.stdout);
    assert.deepEqual(Object.keys(report).sort(), ['failed', 'files', 'sent', 'skipped', 'warnings']);
    assert.equal(report.failed, 2);
    const [first] = report.files;
    assert.deepEqual(first, {
      path: mr,
      sopInstanceUid: head.value.sopInstanceUid,
      status: 0xa700,
      statusText: '0xA700 (Refused: out of resources)',
      errorComment: 'disk full',
      transferSyntaxUid: EXPLICIT_VR_LE,
      reencoded: false,
    });
    // The big endian file has the same SOP Instance UID: same answer, but sent re-encoded.
    assert.equal(report.files[1]?.reencoded, true);
    assert.equal(report.files[1]?.transferSyntaxUid, EXPLICIT_VR_LE);

    const warned = await mrOnlyPeer({
      [head.value.sopInstanceUid]: { status: Status.CoercionOfDataElements, errorComment: 'coerced' },
    });
    const w = await runPacs(['store', '--json', '--aec', 'MRONLY', '127.0.0.1', String(warned), mr]);
    assert.equal(w.code, 0, w.stderr);
    const wr = parseReport(w.stdout);
    assert.deepEqual([wr.sent, wr.warnings, wr.failed], [1, 1, 0]);
    assert.match(wr.files[0]?.statusText ?? '', /^0xB000 \(Warning: coercion of data elements/);
    assert.equal(wr.files[0]?.errorComment, 'coerced');
  });

  it('fails with one line when the connection is refused or the association rejected', async () => {
    const closed = await freePort();
    const refused = await runPacs(['store', '127.0.0.1', String(closed), mr]);
    assert.equal(refused.code, 1);
    assert.equal(refused.stdout, '');
    assert.equal(refused.stderr, `pacs: C-STORE to PACS@127.0.0.1:${closed}: connection refused\n`);

    const port = await mrOnlyPeer({});
    const rejected = await runPacs(['store', '--aec', 'SOMEONE', '127.0.0.1', String(port), mr]);
    assert.equal(rejected.code, 1);
    assert.equal(rejected.stdout, '');
    assert.match(
      rejected.stderr,
      /^pacs: C-STORE to SOMEONE@127\.0\.0\.1:\d+: association rejected \(rejected-permanent, service-user, called-AE-title-not-recognized\)\n$/,
    );
  });

  it('fails with one line for usage errors, a missing path and nothing to send', async () => {
    const badPort = await runPacs(['store', '127.0.0.1', '99999', mr]);
    assert.equal(badPort.code, 2);
    assert.match(badPort.stderr, /^pacs: PORT: expected an integer from 1 to 65535, got "99999"\n$/);
    const missing = await runPacs(['store', '127.0.0.1', '104', join(tmp, 'nope')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^pacs: .*nope: no such file or directory\n$/);
    const textOnly = join(tmp, 'text-only');
    mkdirSync(textOnly);
    writeFileSync(join(textOnly, 'a.txt'), 'hello\n'.repeat(40));
    const nothing = await runPacs(['store', '127.0.0.1', '104', textOnly]);
    assert.equal(nothing.code, 1);
    assert.match(
      nothing.stderr,
      /^pacs: warning: skipped .*a\.txt: not DICOM.*\npacs: no DICOM objects to send in /,
    );
  });
});

describe('pacs store: many SOP classes, and TLS', () => {
  it('opens a second association when the files need more than 128 presentation contexts', async () => {
    const classes = allStorageSopClasses().slice(0, 70);
    const folder = join(tmp, 'many-classes');
    mkdirSync(folder);
    for (const [i, sopClass] of classes.entries()) {
      const ds = new DataSet()
        .setString(TAG.SOPClassUID, sopClass)
        .setString(TAG.SOPInstanceUID, generateUid());
      writeFileSync(join(folder, `${String(i).padStart(3, '0')}.dcm`), encodePart10(ds, EXPLICIT_VR_LE));
    }
    const counted: string[] = [];
    const service: DimseService = {
      name: 'count',
      sopClasses: allStorageSopClasses().map((uid) => ({ uid })),
      transferSyntaxes: [EXPLICIT_VR_LE, IMPLICIT_VR_LE],
      handlers: {
        'C-STORE': async (ctx, data) => {
          for await (const _ of data) {
            // discarded
          }
          counted.push(ctx.command.affectedSopClassUid ?? '');
          return { status: Status.Success };
        },
      },
    };
    const server = await new ApplicationEntity({ aeTitle: 'MANY' }).addService(service).listen({
      port: 0,
      host: '127.0.0.1',
    });
    servers.push(server);
    const ended: number[] = [];
    server.onAssociationEnd = (summary) => ended.push(summary.requests);
    const r = await runPacs([
      'store',
      '--json',
      '--aec',
      'MANY',
      '127.0.0.1',
      String(server.address?.port),
      folder,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(parseReport(r.stdout).sent, 70);
    // Two contexts per class (own syntax, uncompressed fallback): 64 classes fit in the first.
    await waitFor(() => ended.length === 2);
    assert.deepEqual(ended, [64, 6]);
    assert.deepEqual([...counted].sort(), [...classes].sort());
  });

  it('sends over TLS with a client certificate, and fails with one line without one', async () => {
    const dir = mkdtempSync(join(tmp, 'pki-'));
    const openssl = async (...args: string[]): Promise<void> => {
      const r = await run('openssl', args);
      assert.equal(r.code, 0, `openssl ${args.join(' ')}: ${r.stderr}`);
    };
    const f = (name: string) => join(dir, name);
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    await openssl(
      'req',
      '-x509',
      ...ec,
      '-keyout',
      f('ca.key'),
      '-out',
      f('ca.crt'),
      '-days',
      '1',
      '-subj',
      '/CN=CA',
    );
    writeFileSync(f('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    writeFileSync(f('client.ext'), 'extendedKeyUsage=clientAuth\n');
    for (const name of ['server', 'client']) {
      await openssl(
        'req',
        ...ec,
        '-keyout',
        f(`${name}.key`),
        '-out',
        f(`${name}.csr`),
        '-subj',
        `/CN=${name}`,
      );
      await openssl(
        'x509',
        '-req',
        '-in',
        f(`${name}.csr`),
        '-CA',
        f('ca.crt'),
        '-CAkey',
        f('ca.key'),
        '-CAcreateserial',
        '-out',
        f(`${name}.crt`),
        '-days',
        '1',
        '-extfile',
        f(`${name}.ext`),
      );
    }
    const pem = (f: string) => readFileSync(join(dir, f), 'utf8');
    const service: DimseService = {
      name: 'tls-store',
      sopClasses: [{ uid: UID.MRImageStorage }],
      transferSyntaxes: [EXPLICIT_VR_LE],
      handlers: {
        'C-STORE': async (_ctx, data) => {
          for await (const _ of data) {
            // discarded
          }
          return { status: Status.Success };
        },
      },
    };
    const server = await new ApplicationEntity({ aeTitle: 'SECURE' }).addService(service).listen({
      port: 0,
      host: '127.0.0.1',
      tls: { cert: pem('server.crt'), key: pem('server.key'), ca: pem('ca.crt') },
    });
    servers.push(server);
    const port = String(server.address?.port);
    const mr = join(TEST_FILES, 'MR_small.dcm');
    const tlsCa = ['--tls-ca', join(dir, 'ca.crt')];
    const withCert = ['--tls-cert', join(dir, 'client.crt'), '--tls-key', join(dir, 'client.key')];
    const ok = await runPacs(['store', '--aec', 'SECURE', ...tlsCa, ...withCert, '127.0.0.1', port, mr]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /: 1 stored, 0 failed; /);
    const noCert = await runPacs(['store', '--aec', 'SECURE', ...tlsCa, '127.0.0.1', port, mr]);
    assert.equal(noCert.code, 1);
    assert.equal(noCert.stdout, '');
    assert.match(
      noCert.stderr,
      /^pacs: C-STORE to SECURE@127\.0\.0\.1:\d+: (TLS failure|association aborted).*\n$/,
    );
    const halfCert = await runPacs(['store', '--tls-cert', join(dir, 'client.crt'), '127.0.0.1', port, mr]);
    assert.equal(halfCert.code, 2);
    assert.equal(halfCert.stderr, 'pacs: --tls-cert and --tls-key go together\n');
  });
});
