/**
 * The import graph of the TypeScript sources, read with the compiler's own pre-processor (every
 * `import`, `export ... from`, `import type` and dynamic `import()`), for the deep-import and the
 * import-cycle checks.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { REPO_ROOT } from '../helpers/cli.js';

/** Every `.ts` file under `dir` (a path relative to the repository), sorted. */
export function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
    }
  };
  walk(join(REPO_ROOT, dir));
  return out;
}

/** The module specifiers a file imports, in source order. */
export function importsOf(file: string): string[] {
  const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
  return info.importedFiles.map((f) => f.fileName);
}

/** A relative specifier (`./x.js`) as the `.ts` file it names; undefined for packages and `node:`. */
export function resolveSource(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  return resolve(dirname(from), specifier).replace(/\.js$/, '.ts');
}

/** A path relative to the repository, for messages. */
export function repoPath(file: string): string {
  return relative(REPO_ROOT, file);
}

/**
 * The import cycles among `files`: one cycle (`a -> b -> a`, as repository paths) for each strongly
 * connected component of more than one file or a file importing itself (Tarjan's algorithm).
 */
export function importCycles(files: readonly string[]): string[][] {
  const known = new Set(files);
  const edges = new Map<string, string[]>();
  for (const f of files)
    edges.set(
      f,
      importsOf(f)
        .map((s) => resolveSource(f, s))
        .filter((t): t is string => t !== undefined && known.has(t)),
    );
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  // Recursive Tarjan: the depth is bounded by the number of source files (a few hundred).
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) ?? 0, low.get(w) ?? 0));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v) ?? 0, index.get(w) ?? 0));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    for (let w = stack.pop(); w !== undefined; w = stack.pop()) {
      onStack.delete(w);
      component.push(w);
      if (w === v) break;
    }
    if (component.length > 1 || (edges.get(v) ?? []).includes(v))
      cycles.push(shortestCycle(component, edges));
  };
  for (const f of files) if (!index.has(f)) visit(f);
  return cycles.sort((a, b) => (a[0] ?? '').localeCompare(b[0] ?? ''));
}

/** One cycle through the first file (by path) of a strongly connected component: the shortest, by breadth-first search. */
function shortestCycle(
  component: readonly string[],
  edges: ReadonlyMap<string, readonly string[]>,
): string[] {
  const members = new Set(component);
  const start = [...component].sort()[0] ?? '';
  const parent = new Map<string, string>();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const v = queue[i] ?? '';
    for (const w of edges.get(v) ?? []) {
      if (!members.has(w)) continue;
      if (w === start) {
        const path = [v];
        for (let p = parent.get(v); p !== undefined; p = parent.get(p)) path.unshift(p);
        return [...path, start].map(repoPath);
      }
      if (!parent.has(w) && w !== start) {
        parent.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start].map(repoPath);
}
