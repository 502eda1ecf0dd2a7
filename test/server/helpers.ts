/**
 * Helpers for the server, echo, example and interop tests: free ports, long-running child
 * processes (`pacs server`, DCMTK storescp, the examples) whose output is watched, and a
 * throwaway PKI made with openssl. Everything is asynchronous: several of these tests run a
 * server in the test process itself, and a blocking child_process call would freeze it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { z } from 'zod';
import { AE_PERMISSIONS } from '../../src/security/permissions.js';
import type { dicomAccessSchema } from '../../src/server/dicom-access-config.js';
import { PACS_BIN, run } from '../helpers/cli.js';

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export async function tempDir(prefix: string): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** A child process that keeps running; its output is collected as it comes. */
export class Child {
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly watchers = new Set<() => void>();

  constructor(
    readonly process: ChildProcess,
    readonly name: string,
    readonly detached = false,
  ) {
    process.stdout?.setEncoding('utf8').on('data', (d: string) => {
      this.stdout += d;
      for (const w of this.watchers) w();
    });
    process.stderr?.setEncoding('utf8').on('data', (d: string) => {
      this.stderr += d;
      for (const w of this.watchers) w();
    });
    this.exited = new Promise((resolve) => {
      process.on('close', (code, signal) => {
        for (const w of this.watchers) w();
        resolve({ code, signal });
      });
    });
  }

  get output(): string {
    return `${this.stdout}${this.stderr}`;
  }

  get running(): boolean {
    return this.process.exitCode === null && this.process.signalCode === null;
  }

  /** Resolves with the first match of `pattern` in stdout or stderr; rejects if the process ends first. */
  waitFor(pattern: RegExp, timeoutMs = 15_000): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const m = this.output.match(pattern);
        if (m !== null) {
          done();
          resolve(m);
        } else if (!this.running) {
          done();
          reject(new Error(`${this.name} ended before printing ${pattern}:\n${this.output}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.name} did not print ${pattern} within ${timeoutMs} ms:\n${this.output}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.watchers.delete(check);
      };
      this.watchers.add(check);
      check();
    });
  }

  /**
   * Sends `signal` (default SIGTERM) and waits for the exit; SIGKILL after `timeoutMs`. A child
   * spawned `detached` leads its own process group and the whole group gets the signal, as a
   * terminal's Ctrl-C reaches every process of the foreground job (npm, its shell, node).
   */
  async stop(
    signal: NodeJS.Signals = 'SIGTERM',
    timeoutMs = 10_000,
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const send = (s: NodeJS.Signals): void => {
      const pid = this.process.pid;
      try {
        if (this.detached && pid !== undefined) process.kill(-pid, s);
        else if (this.running) this.process.kill(s);
      } catch {
        // already gone
      }
    };
    send(signal);
    const timer = setTimeout(() => send('SIGKILL'), timeoutMs);
    const result = await this.exited;
    clearTimeout(timer);
    return result;
  }
}

export function spawnChild(
  cmd: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; name?: string; detached?: boolean } = {},
): Child {
  const child = spawn(cmd, args, {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached ?? false,
  });
  return new Child(child, options.name ?? cmd, options.detached ?? false);
}

/** An entry of `server.dicom.aes` as written in a config file (src/server/dicom-access-config.ts). */
export type TestAe = NonNullable<z.input<typeof dicomAccessSchema>['aes']>[number];

/**
 * The calling AE titles of the DCMTK tools and of `pacs` (findscu, movescu, getscu, PACSSCU...) with
 * every permission and any move destination: for tests of the services, not of access control
 * (an unknown AE may only C-ECHO and C-STORE, issue 14).
 */
export const TEST_CLIENT_AES: readonly TestAe[] = [
  'FINDSCU',
  'MOVESCU',
  'GETSCU',
  'PACSSCU',
  'STORESCU',
  'ECHOSCU',
].map((aeTitle) => ({ aeTitle, permissions: [...AE_PERMISSIONS], moveDestinations: '*' as const }));

export interface PacsServer extends Child {
  readonly port: number;
  readonly tlsPort: number | undefined;
}

/**
 * Starts `bin/pacs server` as a real child process on a free port (and a data folder of its own
 * unless `--data` is given) and waits for its "listening" line.
 */
export async function startPacsServer(
  args: readonly string[] = [],
  options: { cwd?: string; dataDir?: string; aes?: readonly TestAe[] } = {},
): Promise<{ server: Child; port: number; tlsPort: number | undefined }> {
  const hasPort = args.includes('--port');
  const port = hasPort ? Number(args[args.indexOf('--port') + 1]) : await freePort();
  const all = [...args];
  if (options.aes !== undefined) {
    // The AEs go in a config file of their own (server.dicom.aes), removed with the server's data.
    const dir = await mkdtemp(join(tmpdir(), 'pacs-test-aes-'));
    const file = join(dir, 'aes.json');
    await writeFile(file, JSON.stringify({ server: { dicom: { aes: options.aes } } }));
    all.push('--config', file);
  }
  if (!hasPort) all.push('--port', String(port));
  // Without --data, a folder of its own, removed when the server has exited.
  let ownData: string | undefined;
  if (!args.includes('--data')) {
    const dir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'pacs-test-data-')));
    if (options.dataDir === undefined) ownData = dir;
    all.push('--data', dir);
  }
  const server = spawnChild(process.execPath, [PACS_BIN, 'server', ...all], {
    name: 'pacs server',
    ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
  });
  if (ownData !== undefined) {
    const dir = ownData;
    void server.exited.then(() => rm(dir, { recursive: true, force: true }));
  }
  const m = await server.waitFor(/pacs: listening as \S+ on (.*)\n/);
  const tls = /:(\d+) \(TLS\)/.exec(m[1] ?? '');
  return { server, port, tlsPort: tls ? Number(tls[1]) : undefined };
}

/** The files `storescu -v` got a success response for, from its output ("Sending file", then the response). */
export function storescuAcknowledged(output: string): string[] {
  const acknowledged: string[] = [];
  let sending: string | undefined;
  for (const line of output.split('\n')) {
    const file = /^I: Sending file: (.*)$/.exec(line);
    if (file) sending = file[1];
    if (/^I: Received Store Response \(Success\)$/.test(line) && sending !== undefined)
      acknowledged.push(sending);
  }
  return acknowledged;
}

/** Resolves once something accepts TCP connections on the port (for DCMTK servers). */
export async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const connected = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (connected) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on port ${port} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export interface Pki {
  readonly dir: string;
  /** File paths. */
  readonly caCert: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  /** A CA that signed none of these: a client trusting only it rejects the server. */
  readonly otherCaCert: string;
  /** The contents, for in-process use. */
  readonly pem: { ca: string; serverCert: string; serverKey: string; clientCert: string; clientKey: string };
}

/**
 * A throwaway CA with a server certificate (localhost, 127.0.0.1) and a client certificate,
 * RSA 2048 so that DCMTK's default BCP 195 profile accepts them. A missing openssl fails clearly.
 */
export async function makePki(dir: string): Promise<Pki> {
  const openssl = async (...args: string[]): Promise<void> => {
    let r: Awaited<ReturnType<typeof run>>;
    try {
      r = await run('openssl', args);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT')
        throw new Error("openssl is missing: run 'apt-get install -y openssl'");
      throw e;
    }
    if (r.code !== 0) throw new Error(`openssl ${args.join(' ')} failed:\n${r.stderr}`);
  };
  const f = (name: string) => join(dir, name);
  const rsa = ['-newkey', 'rsa:2048', '-nodes'];
  await openssl(
    'req',
    '-x509',
    ...rsa,
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.crt'),
    '-days',
    '2',
    '-subj',
    '/CN=PACS Test CA',
  );
  await openssl(
    'req',
    '-x509',
    ...rsa,
    '-keyout',
    f('other.key'),
    '-out',
    f('other.crt'),
    '-days',
    '2',
    '-subj',
    '/CN=Other CA',
  );
  await writeFile(
    f('server.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n',
  );
  await writeFile(f('client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const [name, cn] of [
    ['server', 'localhost'],
    ['client', 'PACS test client'],
  ] as const) {
    await openssl('req', ...rsa, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${cn}`);
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
      '2',
      '-extfile',
      f(`${name}.ext`),
    );
  }
  const read = (name: string) => readFile(f(name), 'utf8');
  return {
    dir,
    caCert: f('ca.crt'),
    serverCert: f('server.crt'),
    serverKey: f('server.key'),
    clientCert: f('client.crt'),
    clientKey: f('client.key'),
    otherCaCert: f('other.crt'),
    pem: {
      ca: await read('ca.crt'),
      serverCert: await read('server.crt'),
      serverKey: await read('server.key'),
      clientCert: await read('client.crt'),
      clientKey: await read('client.key'),
    },
  };
}

/**
 * A first start's admin with a known password (`--admin-password-file`, issue 14): the flags to
 * add to `pacs server` and the Authorization header that then authenticates HTTP requests.
 */
export async function firstAdmin(): Promise<{ args: string[]; headers: { authorization: string } }> {
  const dir = await mkdtemp(join(tmpdir(), 'pacs-admin-'));
  const password = `admin-${Math.random().toString(36).slice(2)}-pw`;
  const file = join(dir, 'admin-password');
  await writeFile(file, `${password}\n`, { mode: 0o600 });
  return {
    args: ['--admin-password-file', file],
    headers: { authorization: `Basic ${Buffer.from(`admin:${password}`).toString('base64')}` },
  };
}
