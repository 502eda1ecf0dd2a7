/**
 * What the network tools load at start (issue 11: `pacs echo` took about a second to start because
 * the index engines, metrics and pretty logging were loaded eagerly): `pacs echo`, `store` and
 * `get` load none of kysely, pg, better-sqlite3, prom-client or pino-pretty (src/client.ts);
 * `pacs server` still loads the index layer. A module loader hook in the child names every
 * package module it loads.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { PACS_BIN, run } from '../helpers/cli.js';

const HEAVY = ['kysely', 'pg', 'better-sqlite3', 'prom-client', 'pino-pretty'];

let dir = '';
let register = '';

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'pacs-startup-'));
  // The hook runs in its own thread: it writes each loaded URL to the child's standard error.
  writeFileSync(
    join(dir, 'hooks.mjs'),
    "import { writeSync } from 'node:fs';\nexport async function load(url, context, next) {\n  writeSync(2, 'LOADED ' + url + '\\n');\n  return next(url, context);\n}\n",
  );
  register = join(dir, 'register.mjs');
  writeFileSync(
    register,
    `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(join(dir, 'hooks.mjs')).href)});\n`,
  );
});

after(() => rmSync(dir, { recursive: true, force: true }));

/** The packages (node_modules/NAME) whose modules `pacs ARGS` loads. */
async function packagesLoaded(args: readonly string[]): Promise<Set<string>> {
  const r = await run(process.execPath, ['--import', register, PACS_BIN, ...args]);
  const names = new Set<string>();
  for (const m of r.stderr.matchAll(/^LOADED .*\/node_modules\/((?:@[^/]+\/)?[^/]+)\//gm))
    names.add(m[1] ?? '');
  return names;
}

describe('command line start-up', () => {
  for (const command of ['echo', 'store', 'get'])
    it(`pacs ${command} loads no index engine, metrics or pretty printer`, async () => {
      const loaded = await packagesLoaded([command, '--help']);
      assert.ok(loaded.has('commander'), `the hook sees package loads: ${[...loaded].join(', ')}`);
      assert.deepEqual(
        HEAVY.filter((p) => loaded.has(p)),
        [],
      );
    });

  it('pacs server --help is light too, and the index layer loads when a command needs it', async () => {
    const help = await packagesLoaded(['server', '--help']);
    assert.deepEqual(
      HEAVY.filter((p) => help.has(p)),
      [],
    );
    // `pacs jobs ls --db URL` loads the index layer (to check the URL and open the index).
    const loaded = await packagesLoaded(['jobs', 'ls', '--db', 'sqlite::memory:']);
    assert.ok(loaded.has('kysely'), `loaded: ${[...loaded].join(', ')}`);
  });
});
