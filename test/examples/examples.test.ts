/**
 * The examples (examples/*.ts, compiled to dist/examples) run as a user runs them, against each
 * other and against DCMTK, so they never rot. They use only the public API (src/index.ts).
 */
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT, run } from '../helpers/cli.js';
import { dcmtkTool } from '../helpers/corpus.js';
import { type Child, freePort, spawnChild, tempDir, waitForPort } from '../server/helpers.js';

const EXAMPLES = join(REPO_ROOT, 'dist', 'examples');
const DCMTK_ENV = { TCP_NODELAY: '1' };

function example(
  name: string,
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return run(process.execPath, [join(EXAMPLES, name), ...args], { timeoutMs: 20_000 });
}

let root: { path: string; remove: () => Promise<void> };
let scp: Child;
let scpPort: number;

before(async () => {
  root = await tempDir('pacs-examples-');
  scp = spawnChild(process.execPath, [join(EXAMPLES, 'echo-scp.js'), '0', 'ECHO-SCP'], { name: 'echo-scp' });
  const m = await scp.waitFor(/listening as ECHO-SCP on port (\d+)/);
  scpPort = Number(m[1]);
});
after(async () => {
  if (scp.running) await scp.stop('SIGKILL');
  await root.remove();
});

describe('examples', () => {
  it('import only the public API', async () => {
    for (const name of ['echo-scp.ts', 'echo-scu.ts']) {
      const source = await readFile(join(REPO_ROOT, 'examples', name), 'utf8');
      const imports = [...source.matchAll(/from '([^']+)'/g)].map((m) => m[1]);
      assert.deepEqual(imports, ['../src/index.js'], name);
    }
  });

  it('echo-scu against echo-scp', async () => {
    const r = await example('echo-scu.js', ['127.0.0.1', String(scpPort), 'ECHO-SCP']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^echo-scu: ECHO-SCP answered 0x0000 \(Success\) in [\d.]+ ms\n$/);
    await scp.waitFor(/ECHO-SCU from \S+: 1 request\(s\), released/);
  });

  it('echo-scu reports a rejection and exits 1', async () => {
    const r = await example('echo-scu.js', ['127.0.0.1', String(scpPort), 'NOT-HERE']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^echo-scu: association rejected: .*called-AE-title-not-recognized\n$/);
    await scp.waitFor(/refused \S+: association rejected/);
  });

  it('DCMTK echoscu against echo-scp', async () => {
    const r = await run(dcmtkTool('echoscu'), ['-v', '-aec', 'ECHO-SCP', '127.0.0.1', String(scpPort)], {
      env: DCMTK_ENV,
      timeoutMs: 20_000,
    });
    assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
    assert.match(`${r.stdout}${r.stderr}`, /Received Echo Response \(Success\)/);
  });

  it('echo-scu against DCMTK storescp', async () => {
    const port = await freePort();
    const out = join(root.path, 'storescp');
    await mkdir(out);
    const storescp = spawnChild(dcmtkTool('storescp'), ['-aet', 'STORESCP', '-od', out, String(port)], {
      env: DCMTK_ENV,
      name: 'storescp',
    });
    try {
      await waitForPort(port);
      const r = await example('echo-scu.js', ['127.0.0.1', String(port), 'STORESCP']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /STORESCP answered 0x0000 \(Success\)/);
    } finally {
      await storescp.stop('SIGTERM');
    }
  });

  it('echo-scp stops on SIGTERM', async () => {
    const ended = await scp.stop('SIGTERM');
    assert.deepEqual(ended, { code: 0, signal: null });
    assert.match(scp.stdout, /echo-scp: stopped\n$/);
  });
});
