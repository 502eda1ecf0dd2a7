/**
 * The storage examples run against each other, as a reader would run them: examples/store-scp.ts
 * in a child process writing to a temporary folder, examples/store-scu.ts sending corpus files
 * (read in place) in five transfer syntaxes. What arrives is each data set byte for byte.
 */
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DEFLATED_EXPLICIT_VR_LE } from '../../src/dicom/uid.js';
import { readFileInfo } from '../../src/services/storage/scu.js';
import { REPO_ROOT, run } from '../helpers/cli.js';
import { TEST_FILES } from '../helpers/corpus.js';

const STORE_SCP = join(REPO_ROOT, 'dist', 'examples', 'store-scp.js');
const STORE_SCU = join(REPO_ROOT, 'dist', 'examples', 'store-scu.js');
const tmp = mkdtempSync(join(tmpdir(), 'pacs-examples-'));

interface RunningScp {
  child: ChildProcessWithoutNullStreams;
  port: number;
  output: string[];
}

/** Every SCP started, so that `after` stops it even when it never said it was listening. */
const started: ChildProcessWithoutNullStreams[] = [];

/**
 * Starts the example SCP on a free port and waits for its "listening" line, or its exit. No time
 * limit: on a loaded machine start-up takes what it takes (no wall-clock limits in tests).
 */
async function startScp(folder: string): Promise<RunningScp> {
  const child = spawn(process.execPath, [STORE_SCP, '0', folder, 'STORE-SCP']);
  started.push(child);
  const output: string[] = [];
  let buffered = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      buffered += d;
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      output.push(...lines);
      for (const line of lines) {
        const m = /^store-scp: listening as STORE-SCP on port (\d+)/.exec(line);
        if (m) resolve(Number(m[1]));
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => output.push(d));
    child.on('exit', (code) => reject(new Error(`store-scp exited (${code}): ${output.join('\n')}`)));
  });
  return { child, port, output };
}

describe('storage examples', () => {
  const folder = join(tmp, 'received');
  let scp: RunningScp | undefined;
  after(async () => {
    for (const child of started)
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
    rmSync(tmp, { recursive: true, force: true });
  });

  const sources = [
    'CT_small.dcm', // Explicit VR LE
    'MR_small_bigendian.dcm', // Explicit VR BE
    'JPEG2000.dcm', // JPEG 2000, encapsulated
    'image_dfl.dcm', // Deflated, odd length
    'rtplan.dcm', // Implicit VR LE
  ].map((f) => join(TEST_FILES, f));

  it('store-scu sends each file to store-scp, which writes its data set as it arrived', async () => {
    scp = await startScp(folder);
    const r = await run(process.execPath, [
      STORE_SCU,
      '127.0.0.1',
      String(scp.port),
      'STORE-SCP',
      ...sources,
      join(TEST_FILES, 'README.txt'),
    ]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(
      r.stdout.trim().split('\n'),
      sources.map((s) => `${s}: 0x0000 (Success)`),
    );
    assert.match(r.stderr, /^store-scu: skipped .*README\.txt: not DICOM/);

    const written = readdirSync(folder).sort();
    assert.deepEqual(written, ['000001.dcm', '000002.dcm', '000003.dcm', '000004.dcm', '000005.dcm']);
    for (const [i, source] of sources.entries()) {
      const sent = await readFileInfo(source);
      const got = await readFileInfo(join(folder, written[i] as string));
      assert.ok(sent.ok && got.ok);
      assert.equal(got.value.sopInstanceUid, sent.value.sopInstanceUid);
      assert.equal(got.value.transferSyntaxUid, sent.value.transferSyntaxUid);
      let expected = readFileSync(source).subarray(sent.value.dataSetOffset);
      // PS3.5 A.5: a deflated data set of odd length travels with one pad byte.
      if (expected.length % 2 === 1 && sent.value.transferSyntaxUid === DEFLATED_EXPLICIT_VR_LE)
        expected = Buffer.concat([expected, Buffer.alloc(1)]);
      const arrived = readFileSync(got.value.path).subarray(got.value.dataSetOffset);
      assert.ok(arrived.equals(expected), `${source}: data set unchanged`);
    }
    assert.equal(scp.output.filter((l) => /^store-scp: 0000\d\d\.dcm /.test(l)).length, 5);
  });

  it('store-scu fails with one line when the association is rejected', async () => {
    assert.ok(scp);
    const r = await run(process.execPath, [
      STORE_SCU,
      '127.0.0.1',
      String(scp.port),
      'NOT-THEM',
      sources[0] as string,
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^store-scu: association rejected: .*called-AE-title-not-recognized\n$/);
  });

  it('store-scp stops on SIGTERM', async () => {
    assert.ok(scp);
    scp.child.kill('SIGTERM');
    const [code] = await once(scp.child, 'exit');
    assert.equal(code, 0);
    assert.ok(scp.output.includes('store-scp: stopped'));
  });
});
