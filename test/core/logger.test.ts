import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  closeLogger,
  createLogger,
  flushLogger,
  type LoggerOptions,
  silentLogger,
} from '../../src/core/logger.js';

const dir = mkdtempSync(join(tmpdir(), 'pacs-logger-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const logThenExit = fileURLToPath(new URL('./fixtures/log-then-exit.js', import.meta.url));

/** Runs the fixture in a child process whose stdout and stderr are pipes (not terminals). */
function runChild(options: LoggerOptions | undefined, message: string) {
  const args = options === undefined ? [logThenExit] : [logThenExit, JSON.stringify(options), message];
  const child = spawnSync(process.execPath, args, {
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1' },
  });
  assert.equal(child.status, 0, child.stderr);
  return child;
}

function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('createLogger: file targets', () => {
  test('writes one JSON line per call, with child bindings, at or above the level', () => {
    const path = join(dir, 'plain', 'pacs.log'); // the folder does not exist yet
    const logger = createLogger({ level: 'debug', targets: [{ type: 'file', path }] });
    logger.trace('not written');
    logger.debug('debug line');
    logger.child({ assoc: 12, peer: 'STORESCU' }).warn({ status: 0xa700 }, 'out of resources');
    const lines = jsonLines(readFileSync(path, 'utf8'));
    assert.equal(lines.length, 2);
    assert.equal(lines[0]?.['msg'], 'debug line');
    assert.equal(lines[0]?.['level'], 20);
    assert.deepEqual(
      {
        level: lines[1]?.['level'],
        assoc: lines[1]?.['assoc'],
        peer: lines[1]?.['peer'],
        status: lines[1]?.['status'],
      },
      { level: 40, assoc: 12, peer: 'STORESCU', status: 0xa700 },
    );
    assert.equal(typeof lines[1]?.['time'], 'number');
  });

  test('appends to an existing file', () => {
    const path = join(dir, 'append.log');
    createLogger({ targets: [{ type: 'file', path }] }).info('first');
    createLogger({ targets: [{ type: 'file', path }] }).info('second');
    assert.deepEqual(
      jsonLines(readFileSync(path, 'utf8')).map((l) => l['msg']),
      ['first', 'second'],
    );
  });

  test('a rotating file: flushLogger makes the lines readable; a later level change reaches every target', async () => {
    const folder = join(dir, 'flush');
    const logger = createLogger({
      level: 'info',
      targets: [
        { type: 'file', path: join(folder, 'plain.log') },
        { type: 'file', path: join(folder, 'pacs.log'), rotate: { frequency: 'daily' } },
      ],
    });
    const child = logger.child({ assoc: 3 });
    child.debug('not yet');
    child.info('through the worker');
    logger.level = 'debug'; // children keep the level they were made with
    logger.debug({ assoc: 3 }, 'now debug');
    await flushLogger(child);
    for (const file of ['plain.log', 'pacs.1.log']) {
      const lines = jsonLines(readFileSync(join(folder, file), 'utf8'));
      assert.deepEqual(
        lines.map((l) => [l['msg'], l['assoc']]),
        [
          ['through the worker', 3],
          ['now debug', 3],
        ],
        file,
      );
    }
    await closeLogger(logger);
    await closeLogger(logger); // twice is harmless
  });

  test('a rotating file rolls over by size into numbered files', async () => {
    const folder = join(dir, 'rotate');
    const path = join(folder, 'pacs.log');
    const logger = createLogger({ targets: [{ type: 'file', path, rotate: { size: '1k', limit: 2 } }] });
    const filler = 'x'.repeat(200);
    for (let i = 0; i < 40; i++) {
      logger.info({ i, filler }, 'line');
      // Rolling happens between writes in the worker; give it a chance to see each one.
      await flushLogger(logger);
    }
    await closeLogger(logger);
    const files = readdirSync(folder).sort((a, b) => fileNumber(a) - fileNumber(b));
    assert.ok(files.length >= 2, `rotated into ${files.join(', ')}`);
    assert.ok(
      files.every((f) => /^pacs\.\d+\.log$/.test(f)),
      files.join(', '),
    );
    const numbers: number[] = [];
    for (const file of files) {
      const lines = jsonLines(readFileSync(join(folder, file), 'utf8'));
      numbers.push(...lines.map((l) => Number(l['i'])));
    }
    // Old files were deleted beyond the limit, but what remains is whole, in order, and ends with the last line.
    assert.equal(numbers.at(-1), 39);
    assert.deepEqual(
      numbers,
      numbers.map((_, k) => 40 - numbers.length + k),
    );
    assert.ok(files.length <= 3, `limit 2 keeps at most 3 files, found ${files.join(', ')}`);
  });
});

function withoutColourSettings(): NodeJS.ProcessEnv {
  const { NO_COLOR: _no, FORCE_COLOR: _force, ...env } = process.env;
  return env;
}

function hasUtilLinuxScript(): boolean {
  return process.platform === 'linux' && spawnSync('script', ['--version']).status === 0;
}

function fileNumber(name: string): number {
  return Number(/\.(\d+)\.log$/.exec(name)?.[1] ?? Number.NaN);
}

describe('createLogger: console targets', () => {
  test('the default is one stdout target; auto gives JSON lines when stdout is not a terminal', () => {
    const child = runChild({}, 'hello');
    const [line, ...rest] = jsonLines(child.stdout);
    assert.equal(rest.length, 0);
    assert.equal(line?.['msg'], 'hello');
    assert.equal(line?.['level'], 30);
    assert.equal(line?.['assoc'], 12);
    assert.equal(child.stderr, '');
  });

  test('auto format is pretty and coloured on a terminal', {
    skip: !hasUtilLinuxScript() && 'needs util-linux script(1)',
  }, () => {
    // script(1) runs the child on a pseudo-terminal.
    const options = JSON.stringify({ targets: [{ type: 'stdout', format: 'auto' }] });
    const command = `'${process.execPath}' '${logThenExit}' '${options}' 'on a tty'`;
    const child = spawnSync('script', ['-qec', command, '/dev/null'], {
      encoding: 'utf8',
      env: withoutColourSettings(),
    });
    assert.equal(child.status, 0, child.stderr);
    assert.match(child.stdout, /\x1b\[32mINFO\x1b\[39m/);
    assert.match(child.stdout, /on a tty/);
  });

  test('pretty format writes human-readable lines, uncoloured when not a terminal', () => {
    const child = runChild({ targets: [{ type: 'stdout', format: 'pretty' }] }, 'pretty hello');
    assert.match(child.stdout, /INFO.*: pretty hello/);
    assert.match(child.stdout, /assoc: 12/);
    assert.match(child.stdout, /peer: "STORESCU"/);
    assert.doesNotMatch(child.stdout, /\x1b\[/);
    assert.throws(() => JSON.parse(child.stdout.split('\n')[0] ?? ''));
  });

  test('json format on stderr leaves stdout empty', () => {
    const child = runChild({ targets: [{ type: 'stderr', format: 'json' }] }, 'to stderr');
    assert.equal(child.stdout, '');
    assert.equal(jsonLines(child.stderr)[0]?.['msg'], 'to stderr');
  });

  test('an empty target list and silentLogger write nothing', () => {
    const child = runChild({ targets: [] }, 'nothing');
    assert.equal(child.stdout + child.stderr, '');
    assert.equal(createLogger({ targets: [] }), silentLogger);
    silentLogger.child({ assoc: 1 }).error('dropped');
  });
});

describe('exit safety', () => {
  test('a line logged just before process.exit() reaches every target', () => {
    const folder = join(dir, 'exit');
    const options: LoggerOptions = {
      targets: [
        { type: 'stdout', format: 'json' },
        { type: 'file', path: join(folder, 'plain.log') },
        { type: 'file', path: join(folder, 'rolled.log'), rotate: { size: '10m' } },
      ],
    };
    for (let run = 0; run < 3; run++) {
      const child = runChild(options, `last words ${run}`);
      assert.equal(jsonLines(child.stdout)[0]?.['msg'], `last words ${run}`);
    }
    for (const file of ['plain.log', 'rolled.1.log']) {
      const messages = jsonLines(readFileSync(join(folder, file), 'utf8')).map((l) => l['msg']);
      assert.deepEqual(messages, ['last words 0', 'last words 1', 'last words 2'], file);
    }
  });
});
