/**
 * The package as its users get it: `npm pack` of this tree, unpacked into a fresh consumer
 * project whose node_modules links this repository's dependencies (no registry, no native
 * build), a TypeScript program that imports 'pacs' compiled with this repository's tsc against
 * the packed declaration files (strict, skipLibCheck off, so the .d.ts files themselves must
 * compile), then run: an echo, a store into an embedded archive, a file parsed.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT, run } from '../helpers/cli.js';
import { tempDir } from '../server/helpers.js';

interface PackedFile {
  readonly path: string;
}

let root: { path: string; remove: () => Promise<void> };
let consumer: string;
let packedFiles: string[];

/** npm itself: the one that runs this test (npm_execpath), else the one on PATH. */
function npm(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const execPath = process.env.npm_execpath;
  if (execPath?.endsWith('.js')) return run(process.execPath, [execPath, ...args], { timeoutMs: 120_000 });
  return run('npm', args, { timeoutMs: 120_000 });
}

before(async () => {
  root = await tempDir('pacs-pack-');
  // --ignore-scripts: the tree is built already (npm test builds first); `prepare` would build again.
  const packed = await npm([
    'pack',
    '--ignore-scripts',
    '--json',
    '--pack-destination',
    root.path,
    REPO_ROOT,
  ]);
  assert.equal(packed.code, 0, packed.stderr);
  const report = JSON.parse(packed.stdout) as { filename: string; files: PackedFile[] }[];
  const tarball = report[0];
  assert.ok(tarball !== undefined, packed.stdout);
  packedFiles = tarball.files.map((f) => f.path).sort();

  consumer = join(root.path, 'consumer');
  const installed = join(consumer, 'node_modules', 'pacs');
  await mkdir(installed, { recursive: true });
  const untar = await run('tar', [
    '-xzf',
    join(root.path, tarball.filename),
    '-C',
    installed,
    '--strip-components=1',
  ]);
  assert.equal(untar.code, 0, untar.stderr);

  // The package's dependencies, and @types/node which any TypeScript consumer on Node has.
  const manifest = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
  };
  for (const name of [...Object.keys(manifest.dependencies), '@types/node']) {
    const link = join(consumer, 'node_modules', name);
    await mkdir(join(link, '..'), { recursive: true });
    await symlink(join(REPO_ROOT, 'node_modules', name), link, 'dir');
  }
  await writeFile(
    join(consumer, 'package.json'),
    JSON.stringify({ name: 'consumer', private: true, type: 'module', dependencies: { pacs: '*' } }, null, 2),
  );
  await writeFile(
    join(consumer, 'tsconfig.json'),
    JSON.stringify(
      {
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          lib: ['ES2023'],
          types: ['node'],
          strict: true,
          skipLibCheck: false,
          outDir: 'dist',
        },
        include: ['main.ts'],
      },
      null,
      2,
    ),
  );
  await copyFile(join(REPO_ROOT, 'test', 'package', 'consumer', 'main.ts.txt'), join(consumer, 'main.ts'));
});
after(async () => {
  await root?.remove();
});

describe('npm pack', () => {
  it('holds the compiled library with its declarations, the command, and no tests', () => {
    for (const file of [
      'package.json',
      'README.md',
      'bin/pacs',
      'dist/src/index.js',
      'dist/src/index.d.ts',
      'dist/src/cli/main.js',
      'dist/src/dicom/generated/dictionary.js',
    ])
      assert.ok(packedFiles.includes(file), `${file} is not in the package`);
    assert.deepEqual(
      packedFiles.filter((f) => /^(dist\/)?(test|bench|examples)\//.test(f) || f.endsWith('.tsbuildinfo')),
      [],
    );
  });

  it('a TypeScript consumer compiles against the packed types and runs', async () => {
    const tsc = await run(
      process.execPath,
      [join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', consumer],
      {
        timeoutMs: 300_000,
      },
    );
    assert.equal(tsc.code, 0, `tsc failed:\n${tsc.stdout}${tsc.stderr}`);
    const r = await run(process.execPath, [join(consumer, 'dist', 'main.js')], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      [
        'echo: 0x0000 (Success)',
        'parsed: Consumer^Test in 1.2.840.10008.1.2.1',
        'store: Success',
        'indexed: true',
        '',
      ].join('\n'),
    );
  });

  it('the packed command runs', async () => {
    const r = await run(process.execPath, [join(consumer, 'node_modules', 'pacs', 'bin', 'pacs'), '--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Usage: pacs/);
  });
});
