/**
 * `pacs server` as a user runs it: the real bin/pacs in a child process. Flags over the config
 * file over the defaults, one line per bad setting (exit 2), the "listening" line, and a clean
 * exit 0 on SIGINT or SIGTERM.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApplicationEntity } from '../../src/network/ae.js';
import { echo, VERIFICATION_CONTEXT } from '../../src/services/verification/scu.js';
import { PACS_BIN, REPO_ROOT, runPacs } from '../helpers/cli.js';
import { freePort, spawnChild, startPacsServer, tempDir } from './helpers.js';

let root: { path: string; remove: () => Promise<void> };
before(async () => {
  root = await tempDir('pacs-server-cli-');
});
after(() => root.remove());

function connect(port: number, calledAeTitle = 'PACS') {
  return new ApplicationEntity({ aeTitle: 'CLITEST' }).connect({
    host: '127.0.0.1',
    port,
    calledAeTitle,
    contexts: [VERIFICATION_CONTEXT],
  });
}

interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

function logLines(stdout: string): LogLine[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);
}

describe('pacs server', () => {
  it('prints one line per bad flag and exits 2', async () => {
    const r = await runPacs([
      'server',
      '--port',
      'abc',
      '--aet',
      'AN-AE-TITLE-TOO-LONG',
      '--peer',
      'nonsense',
      '--max-pdu',
      '100',
      '--tls-cert',
      'cert.pem',
      '--db',
      'mysql://x',
      '--log-level',
      'loud',
    ]);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    const lines = r.stderr.trimEnd().split('\n');
    assert.deepEqual(lines, [
      'pacs: --peer "nonsense": expected AET=HOST:PORT',
      'pacs: --aet: expected an AE title (1 to 16 characters, no backslash or control characters, not all spaces), got "AN-AE-TITLE-TOO-LONG"',
      'pacs: --port: expected an integer from 1 to 65535, got "abc"',
      'pacs: --max-pdu: expected an integer from 4096 to 16777216, or 0 for unlimited, got 100',
      'pacs: server.tls.key (--tls-key): required when --tls-cert is set',
      'pacs: --db: expected "sqlite:PATH" or a "postgres://" URL, got "mysql://x"',
      'pacs: --log-level: expected one of "trace", "debug", "info", "warn", "error" or "fatal", got "loud"',
    ]);
  });

  it('every --db is checked by one rule and told in the same words', async () => {
    for (const args of [['server'], ['jobs', 'ls'], ['archive', 'reindex'], ['worklist', 'ls']]) {
      for (const url of ['mysql://x', 'sqlite:', 'postgres://bad host']) {
        const r = await runPacs([...args, '--db', url]);
        assert.equal(r.code, 2, `${args.join(' ')} --db ${url}: ${r.stderr}`);
        assert.equal(
          r.stderr,
          `pacs: --db: expected "sqlite:PATH" or a "postgres://" URL, got ${JSON.stringify(url)}\n`,
          args.join(' '),
        );
      }
    }
  });

  it('prints one line per bad config setting and exits 2; a flag fixes a bad setting', async () => {
    const file = join(root.path, 'bad.json');
    await writeFile(file, JSON.stringify({ server: { port: 'x', maxAssociations: 0, colour: 'blue' } }));
    const r = await runPacs(['server', '--config', file]);
    assert.equal(r.code, 2);
    assert.deepEqual(r.stderr.trimEnd().split('\n').sort(), [
      'pacs: server.colour: unknown setting',
      'pacs: server.maxAssociations (--max-associations): expected an integer from 1 to 10000, got 0',
      'pacs: server.port (--port): expected an integer from 1 to 65535, got "x"',
    ]);
    const missing = await runPacs(['server', '--config', join(root.path, 'nope.json')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^pacs: .*nope\.json: cannot read the config file: no such file\n$/);
  });

  it('takes flags over the config file over the defaults, and exits 0 on SIGTERM', async () => {
    const file = join(root.path, 'good.json');
    const filePort = await freePort();
    await writeFile(
      file,
      JSON.stringify({
        server: { aet: 'FILEPACS', port: filePort, maxAssociations: 7 },
        log: { level: 'debug' },
      }),
    );
    const flagPort = await freePort();
    const { server } = await startPacsServer([
      '--config',
      file,
      '--port',
      String(flagPort),
      '--host',
      '127.0.0.1',
      '--log-level',
      'info',
    ]);
    assert.match(server.stdout, new RegExp(`pacs: listening as FILEPACS on 127\\.0\\.0\\.1:${flagPort}\\n`));
    const started = logLines(server.stdout).find((l) => l.msg === 'server started');
    assert.equal(started?.['maxAssociations'], 7, 'from the file');
    assert.ok(!logLines(server.stdout).some((l) => l.level < 30), 'the flag set the log level');
    const assoc = await connect(flagPort, 'FILEPACS');
    assert.ok(assoc.ok);
    assert.ok((await echo(assoc.value)).ok);
    await assoc.value.release();
    const ended = await server.stop('SIGTERM');
    assert.deepEqual(ended, { code: 0, signal: null });
    const msgs = logLines(server.stdout).map((l) => l.msg);
    assert.ok(
      msgs.some((m) => /^association CLITEST@127\.0\.0\.1 -> FILEPACS released/.test(m)),
      msgs.join('\n'),
    );
    assert.equal(msgs.at(-1), 'server stopped');
    // A first start: only the banner of the admin it made (test/cli/identity.test.ts checks it).
    assert.equal(server.stderr.replace(/^(=+)\nNo user existed: [\s\S]*\n\1\n$/, ''), '');
  });

  it('exits 0 on SIGINT; --peer, --db and --data are accepted', async () => {
    const data = join(root.path, 'sigint-data');
    const { server } = await startPacsServer([
      '--data',
      data,
      '--db',
      `sqlite:${join(data, 'index.sqlite')}`,
      '--peer',
      'VIEWER=127.0.0.1:4242',
      '--peer',
      'ARCHIVE2=[::1]:104',
    ]);
    assert.ok(existsSync(data), 'the data folder is created at start');
    assert.deepEqual(await server.stop('SIGINT'), { code: 0, signal: null });
  });

  it('fails with one line and exit 1 when the port is in use', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '0.0.0.0', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const r = await runPacs(['server', '--port', String(port), '--data', join(root.path, 'busy')]);
      assert.equal(r.code, 1);
      assert.equal(r.stderr, `pacs: cannot listen on 0.0.0.0:${port}: address already in use\n`);
    } finally {
      blocker.close();
    }
  });

  it('waits for a running association on SIGTERM; a second signal aborts it', async () => {
    const { server, port } = await startPacsServer(['--host', '127.0.0.1']);
    const assoc = await connect(port);
    assert.ok(assoc.ok);
    const aborted = new Promise((resolve) => assoc.value.association.once('aborted', resolve));
    server.process.kill('SIGTERM');
    await server.waitFor(/waiting for 1 association/);
    assert.ok((await echo(assoc.value)).ok, 'still served after SIGTERM');
    assert.ok(server.running);
    server.process.kill('SIGTERM');
    await aborted;
    assert.deepEqual(await server.exited, { code: 0, signal: null });
  });

  it('runs with the defaults in a fresh folder: AE PACS, port 11112, data in ./data', async () => {
    const cwd = join(root.path, 'fresh');
    await mkdir(cwd);
    const server = spawnChild(process.execPath, [PACS_BIN, 'server'], { cwd, name: 'pacs server' });
    try {
      await server.waitFor(/pacs: listening as PACS on 0\.0\.0\.0:11112\n/);
      assert.ok(existsSync(join(cwd, 'data')));
      const assoc = await connect(11112);
      assert.ok(assoc.ok);
      assert.ok((await echo(assoc.value)).ok);
      await assoc.value.release();
    } finally {
      assert.deepEqual(await server.stop('SIGTERM'), { code: 0, signal: null });
    }
  });

  it('npm start runs `pacs server` (flags after --)', async () => {
    const port = await freePort();
    const npm = spawnChild(
      'npm',
      ['start', '--silent', '--', '--port', String(port), '--data', join(root.path, 'npm-data')],
      { cwd: REPO_ROOT, name: 'npm start', detached: true },
    );
    try {
      await npm.waitFor(new RegExp(`pacs: listening as PACS on 0\\.0\\.0\\.0:${port}\\n`));
      const assoc = await connect(port);
      assert.ok(assoc.ok);
      await assoc.value.release();
    } finally {
      await npm.stop('SIGINT');
      assert.match(npm.stdout, /server stopped/, npm.output);
    }
  });
});
