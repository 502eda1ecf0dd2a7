/**
 * The package's shape, checked on its sources: examples/ and src/cli/ use only the public API
 * (src/index.ts), and src/ has no import cycle (ARCHITECTURE.md: layers point down only, so a
 * cycle is always a seam to cut).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';
import { REPO_ROOT } from '../helpers/cli.js';
import { importCycles, importsOf, repoPath, sourceFiles } from './import-graph.js';

/** Packages and Node's built-ins may be imported anywhere; only relative paths are checked. */
function isPackage(specifier: string): boolean {
  return !specifier.startsWith('.') && !specifier.startsWith('/');
}

/** Every import of `files` that is neither a package nor one of `allowed`, as "file: specifier". */
function deepImports(files: readonly string[], allowed: (specifier: string) => boolean): string[] {
  return files.flatMap((f) =>
    importsOf(f)
      .filter((s) => !isPackage(s) && !allowed(s))
      .map((s) => `${repoPath(f)}: ${s}`),
  );
}

describe('public API', () => {
  it('examples import only the package entry point', () => {
    const files = sourceFiles('examples');
    assert.ok(files.length >= 9, `examples found: ${files.map((f) => basename(f)).join(', ')}`);
    // An example is what a user of the installed package writes: 'pacs' or, in this tree, its entry point.
    const imports = files.flatMap((f) => importsOf(f));
    assert.ok(imports.includes('../src/index.js'));
    assert.deepEqual(
      deepImports(files, (s) => s === '../src/index.js' || s === 'pacs'),
      [],
      'examples must import only the entry point (src/index.ts)',
    );
  });

  it('the command line imports only the package entry point and its own modules', () => {
    const files = sourceFiles('src/cli');
    assert.ok(files.length > 0);
    // './common.js' and the like are the CLI's own modules; everything else comes through '../index.js',
    // or through '../client.js': the light part of the same API, which the network tools load at
    // start so that `pacs echo` does not load the index engines, metrics and the server (issue 11).
    assert.deepEqual(
      deepImports(files, (s) => s === '../index.js' || s === '../client.js' || /^\.\/[^/]+\.js$/.test(s)),
      [],
      'src/cli/ must import only ../index.js or ../client.js (export what is missing from src/index.ts)',
    );
  });

  it('the light entry only re-exports what the package entry point exports', async () => {
    const full = await import('../../src/index.js');
    const light = await import('../../src/client.js');
    const missing = Object.keys(light).filter(
      (name) => (full as Record<string, unknown>)[name] !== (light as Record<string, unknown>)[name],
    );
    assert.deepEqual(missing, [], 'src/client.ts exports these, src/index.ts does not (or not the same)');
  });
});

describe('the entry point', () => {
  it('says what each export is for (a TSDoc comment on each export statement)', () => {
    const file = join(REPO_ROOT, 'src', 'index.ts');
    const text = readFileSync(file, 'utf8');
    const source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
    const exports = source.statements.filter(ts.isExportDeclaration);
    assert.ok(exports.length > 40, `${exports.length} export statements`);
    const undocumented = exports
      .filter((st) => {
        const comments = ts.getLeadingCommentRanges(text, st.getFullStart()) ?? [];
        const last = comments[comments.length - 1];
        return last === undefined || !text.slice(last.pos, last.end).startsWith('/**');
      })
      .map((st) => st.moduleSpecifier?.getText(source) ?? st.getText(source).slice(0, 60));
    assert.deepEqual(undocumented, []);
  });
});

describe('import cycles', () => {
  it('the cycle finder names a cycle', () => {
    // The check itself: the finder must see a known cycle, or an empty answer below proves nothing.
    const cycles = importCycles(sourceFiles('test/package/fixtures'));
    assert.deepEqual(cycles, [
      [
        'test/package/fixtures/cycle-a.ts',
        'test/package/fixtures/cycle-b.ts',
        'test/package/fixtures/cycle-c.ts',
        'test/package/fixtures/cycle-a.ts',
      ],
    ]);
  });

  it('src/ has no import cycle', () => {
    const cycles = importCycles(sourceFiles('src'));
    assert.deepEqual(
      cycles.map((c) => c.join(' -> ')),
      [],
      'import cycles in src/ (each line is one cycle)',
    );
  });
});
