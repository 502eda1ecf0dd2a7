/**
 * The composition root in process: startServer() with a real config, talked to with the library
 * API over loopback. Log lines are captured from a pino logger writing to memory.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import type { Logger } from '../../src/core/logger.js';
import { IMPLICIT_VR_LE, UID } from '../../src/dicom/uid.js';
import { ApplicationEntity } from '../../src/network/ae.js';
import type { DimseService } from '../../src/network/service.js';
import type { TlsClientOptions } from '../../src/network/transport.js';
import { type Config, type DeepPartial, loadConfig } from '../../src/server/config.js';
import { type ServerHandle, startServer } from '../../src/server/server.js';
import type { ServiceFactory } from '../../src/server/services.js';
import { echo, VERIFICATION_CONTEXT } from '../../src/services/verification/scu.js';
import { freePort, makePki, type Pki, tempDir } from './helpers.js';

interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}
const INFO = 30;
const WARN = 40;

function captureLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => lines.push(JSON.parse(s) as LogLine) });
  return { logger, lines };
}

let dataRoot: { path: string; remove: () => Promise<void> };
let pki: Pki;
before(async () => {
  dataRoot = await tempDir('pacs-server-test-');
  pki = await makePki(dataRoot.path);
});
after(() => dataRoot.remove());

let dataCount = 0;
async function configWith(overrides: DeepPartial<Config> = {}): Promise<Config> {
  const port = await freePort();
  const loaded = loadConfig({
    overrides: {
      ...overrides,
      server: { host: '127.0.0.1', port, ...overrides.server },
      // A data folder per server: an index file is opened by one server at a time.
      data: { dir: join(dataRoot.path, `data-${++dataCount}`), ...overrides.data },
    },
  });
  if (!loaded.ok) throw loaded.error;
  return loaded.value;
}

async function start(
  overrides: DeepPartial<Config> = {},
  services?: readonly ServiceFactory[],
): Promise<{ server: ServerHandle; lines: LogLine[]; config: Config }> {
  const config = await configWith(overrides);
  const { logger, lines } = captureLogger();
  const started = await startServer(config, logger, services ? { services } : {});
  if (!started.ok) throw started.error;
  return { server: started.value, lines, config };
}

function connect(
  port: number,
  options: {
    calledAeTitle?: string;
    callingAeTitle?: string;
    tls?: TlsClientOptions;
    maxPduLength?: number;
  } = {},
) {
  return new ApplicationEntity({
    aeTitle: options.callingAeTitle ?? 'TESTSCU',
    ...(options.maxPduLength !== undefined ? { maxPduLength: options.maxPduLength } : {}),
  }).connect({
    host: '127.0.0.1',
    port,
    calledAeTitle: options.calledAeTitle ?? 'PACS',
    contexts: [VERIFICATION_CONTEXT],
    ...(options.tls ? { tls: options.tls } : {}),
  });
}

async function waitUntil(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const endLines = (lines: LogLine[]) =>
  lines.filter((l) => l.level === INFO && typeof l['outcome'] === 'string');
const warnLines = (lines: LogLine[]) => lines.filter((l) => l.level === WARN);

describe('startServer', () => {
  it('answers C-ECHO and logs one info line per association, at its end', async () => {
    const { server, lines } = await start();
    try {
      const port = server.listeners[0]?.port ?? 0;
      assert.deepEqual(
        server.listeners.map((l) => l.kind),
        ['tcp'],
      );
      for (let i = 0; i < 2; i++) {
        const assoc = await connect(port);
        assert.ok(assoc.ok);
        const status = await echo(assoc.value);
        assert.ok(status.ok && status.value === 0);
        await echo(assoc.value);
        await assoc.value.release();
      }
      await waitUntil(() => endLines(lines).length === 2);
      const line = endLines(lines)[0];
      assert.ok(line);
      assert.equal(line['calling'], 'TESTSCU');
      assert.equal(line['called'], 'PACS');
      assert.equal(line['remote'], '127.0.0.1');
      assert.deepEqual(line['contexts'], ['Verification SOP Class']);
      assert.equal(line['outcome'], 'released');
      assert.equal(line['requests'], 2);
      assert.equal(line['failures'], 0);
      assert.equal(typeof line['durationMs'], 'number');
      assert.match(line.msg, /TESTSCU@127\.0\.0\.1 -> PACS released after \d+ ms: 2 requests, 0 failures/);
      // The network layer's own lines (each step of each association) stay below info.
      const network = lines.filter((l) => l.level >= INFO && l['layer'] === 'network').map((l) => l.msg);
      assert.deepEqual(network, []);
      assert.equal(lines.filter((l) => l.level >= INFO && /^association /.test(l.msg)).length, 2);
    } finally {
      await server.close();
    }
  });

  it('rejects a wrong called AE title (one warning line), and accepts it when promiscuous', async () => {
    const strict = await start();
    try {
      const r = await connect(strict.server.listeners[0]?.port ?? 0, { calledAeTitle: 'NOT-PACS' });
      assert.ok(!r.ok);
      assert.equal(r.error.code, 'ERR_ASSOCIATION_REJECTED');
      assert.deepEqual(r.error.reject, { result: 1, source: 1, reason: 7 });
      await waitUntil(() => warnLines(strict.lines).length >= 1);
      await new Promise((resolve) => setTimeout(resolve, 50));
      const warns = warnLines(strict.lines);
      assert.equal(warns.length, 1, warns.map((l) => l.msg).join('\n'));
      assert.match(
        warns[0]?.msg ?? '',
        /association from 127\.0\.0\.1 failed: .*called-AE-title-not-recognized/,
      );
      assert.deepEqual(warns[0]?.['reject'], { result: 1, source: 1, reason: 7 });
    } finally {
      await strict.server.close();
    }
    const open = await start({ server: { promiscuous: true } });
    try {
      const r = await connect(open.server.listeners[0]?.port ?? 0, { calledAeTitle: 'NOT-PACS' });
      assert.ok(r.ok);
      assert.ok((await echo(r.value)).ok);
      await r.value.release();
    } finally {
      await open.server.close();
    }
  });

  it('logs one warning for a connection that sends garbage, and an aborted association once', async () => {
    const { server, lines } = await start();
    try {
      const port = server.listeners[0]?.port ?? 0;
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.on('error', () => {});
      socket.end(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
      await waitUntil(() => warnLines(lines).length >= 1);
      const assoc = await connect(port);
      assert.ok(assoc.ok);
      assoc.value.abort();
      await waitUntil(() => endLines(lines).length === 1);
      await new Promise((resolve) => setTimeout(resolve, 50));
      const warns = warnLines(lines);
      assert.equal(warns.length, 1, warns.map((l) => l.msg).join('\n'));
      assert.match(warns[0]?.msg ?? '', /association from 127\.0\.0\.1 failed: .*unrecognized-PDU/);
      assert.equal(endLines(lines)[0]?.['outcome'], 'aborted');
    } finally {
      await server.close();
    }
  });

  it('admits only the allowed calling AE titles (optionally per host)', async () => {
    const { server } = await start({
      server: { allowedCallingAets: ['GOOD', 'LOCAL@127.0.0.1', 'FAR@10.1.2.3'] },
    });
    try {
      const port = server.listeners[0]?.port ?? 0;
      for (const [aet, ok] of [
        ['GOOD', true],
        ['LOCAL', true],
        ['FAR', false],
        ['OTHER', false],
      ] as const) {
        const r = await connect(port, { callingAeTitle: aet });
        assert.equal(r.ok, ok, aet);
        if (r.ok) await r.value.release();
        else assert.deepEqual(r.error.reject, { result: 1, source: 1, reason: 3 }, aet);
      }
    } finally {
      await server.close();
    }
  });

  it('rejects associations over maxAssociations with local-limit-exceeded (transient)', async () => {
    const { server } = await start({ server: { maxAssociations: 2 } });
    try {
      const port = server.listeners[0]?.port ?? 0;
      const first = await connect(port);
      const second = await connect(port);
      assert.ok(first.ok && second.ok);
      const third = await connect(port);
      assert.ok(!third.ok);
      assert.deepEqual(third.error.reject, { result: 2, source: 3, reason: 2 });
      await first.value.release();
      await waitUntil(() => server.activeAssociations === 1);
      const fourth = await connect(port);
      assert.ok(fourth.ok, 'a freed slot is usable again');
      await fourth.value.release();
      await second.value.release();
    } finally {
      await server.close();
    }
  });

  it('close() stops accepting, lets a running association finish, then resolves', async () => {
    const { server, lines } = await start({ server: { shutdownTimeoutSeconds: 10 } });
    const port = server.listeners[0]?.port ?? 0;
    const assoc = await connect(port);
    assert.ok(assoc.ok);
    let closed = false;
    const closing = server.close().then(() => {
      closed = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(closed, false, 'close waits for the running association');
    const refused = await connect(port);
    assert.ok(!refused.ok);
    assert.equal(refused.error.code, 'ERR_CONNECT');
    const status = await echo(assoc.value);
    assert.ok(status.ok && status.value === 0, 'the running association is still served');
    await assoc.value.release();
    await closing;
    const end = endLines(lines);
    assert.equal(end.length, 1);
    assert.equal(end[0]?.['outcome'], 'released');
    assert.equal(lines.at(-1)?.msg, 'server stopped');
    assert.equal(server.close(), server.close(), 'close() is idempotent');
  });

  it('close() aborts associations still running after shutdownTimeoutSeconds', async () => {
    const { server, lines } = await start({ server: { shutdownTimeoutSeconds: 0.3 } });
    const assoc = await connect(server.listeners[0]?.port ?? 0);
    assert.ok(assoc.ok);
    const aborted = new Promise((resolve) => assoc.value.association.once('aborted', resolve));
    const started = Date.now();
    await server.close();
    const took = Date.now() - started;
    assert.ok(took >= 250 && took < 3000, `close took ${took} ms`);
    await aborted;
    assert.equal(endLines(lines)[0]?.['outcome'], 'aborted');
  });

  it('abort() ends a graceful close at once', async () => {
    const { server } = await start({ server: { shutdownTimeoutSeconds: 60 } });
    const assoc = await connect(server.listeners[0]?.port ?? 0);
    assert.ok(assoc.ok);
    const closing = server.close();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = Date.now();
    await server.abort();
    await closing;
    assert.ok(Date.now() - started < 3000);
  });

  it('applies the idle timeout from the config (seconds)', async () => {
    const { server, lines } = await start({ server: { idleTimeoutSeconds: 0.3 } });
    try {
      const assoc = await connect(server.listeners[0]?.port ?? 0);
      assert.ok(assoc.ok);
      const aborted = new Promise((resolve) => assoc.value.association.once('aborted', resolve));
      await aborted;
      await waitUntil(() => endLines(lines).length === 1);
      assert.equal(endLines(lines)[0]?.['outcome'], 'aborted');
    } finally {
      await server.close();
    }
  });

  it('serves an association idle longer than dimseTimeoutSeconds but within the idle timeout', async () => {
    const { server } = await start({ server: { dimseTimeoutSeconds: 0.2, idleTimeoutSeconds: 30 } });
    try {
      const assoc = await connect(server.listeners[0]?.port ?? 0);
      assert.ok(assoc.ok);
      await new Promise((resolve) => setTimeout(resolve, 500));
      const status = await echo(assoc.value);
      assert.ok(status.ok && status.value === 0);
      await assoc.value.release();
    } finally {
      await server.close();
    }
  });

  it('receives PDUs of any size with maxPduLength 0 (no limit)', async () => {
    const { server } = await start({ server: { maxPduLength: 0 } });
    try {
      const assoc = await connect(server.listeners[0]?.port ?? 0);
      assert.ok(assoc.ok);
      assert.equal(assoc.value.association.peerMaxPduLength, 0);
      const status = await echo(assoc.value);
      assert.ok(status.ok && status.value === 0);
      await assoc.value.release();
    } finally {
      await server.close();
    }
  });

  it('listens with TLS on server.tls.port besides the plain port', async () => {
    const tlsPort = await freePort();
    const { server } = await start({
      server: { tls: { port: tlsPort, cert: pki.serverCert, key: pki.serverKey } },
    });
    try {
      assert.deepEqual(
        server.listeners.map((l) => [l.kind, l.port]),
        [
          ['tcp', server.listeners[0]?.port],
          ['tls', tlsPort],
        ],
      );
      const assoc = await connect(tlsPort, { tls: { ca: pki.pem.ca } });
      assert.ok(assoc.ok, assoc.ok ? '' : assoc.error.message);
      assert.ok((await echo(assoc.value)).ok);
      await assoc.value.release();
      const untrusted = await connect(tlsPort, { tls: { ca: await readFile(pki.otherCaCert, 'utf8') } });
      assert.ok(!untrusted.ok);
      assert.equal(untrusted.error.code, 'ERR_CONNECT');
    } finally {
      await server.close();
    }
  });

  it('requires a client certificate signed by server.tls.ca when requireClientCert is set', async () => {
    const tlsPort = await freePort();
    const { server, lines } = await start({
      server: {
        tls: {
          port: tlsPort,
          cert: pki.serverCert,
          key: pki.serverKey,
          ca: pki.caCert,
          requireClientCert: true,
        },
      },
    });
    try {
      const withCert = await connect(tlsPort, {
        tls: { ca: pki.pem.ca, cert: pki.pem.clientCert, key: pki.pem.clientKey },
      });
      assert.ok(withCert.ok, withCert.ok ? '' : withCert.error.message);
      assert.ok((await echo(withCert.value)).ok);
      await withCert.value.release();
      const without = await connect(tlsPort, { tls: { ca: pki.pem.ca } });
      assert.ok(!without.ok, 'no client certificate: refused');
      await waitUntil(() => warnLines(lines).some((l) => /TLS handshake failed/.test(l.msg)));
    } finally {
      await server.close();
    }
  });

  it('builds the services from the factory list with the config, and starts and stops them', async () => {
    const events: string[] = [];
    const failing: ServiceFactory = ({ config }) => {
      const service: DimseService = {
        name: 'test-echo',
        sopClasses: [{ uid: UID.Verification }],
        transferSyntaxes: [IMPLICIT_VR_LE],
        handlers: { 'C-ECHO': () => ({ status: 0x0110, errorComment: `from ${config.server.aet}` }) },
        start: async () => {
          events.push('start');
        },
        stop: async () => {
          events.push('stop');
        },
      };
      return service;
    };
    const { server, lines } = await start({ server: { aet: 'OTHERPACS' } }, [failing]);
    const assoc = await connect(server.listeners[0]?.port ?? 0, { calledAeTitle: 'OTHERPACS' });
    assert.ok(assoc.ok);
    const status = await echo(assoc.value);
    assert.ok(status.ok);
    assert.equal(status.value, 0x0110);
    await assoc.value.release();
    await server.close();
    assert.deepEqual(events, ['start', 'stop']);
    assert.equal(endLines(lines)[0]?.['failures'], 1);
  });

  it('reports start-up failures as values: port in use, unreadable TLS files, data folder', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const busy = (blocker.address() as net.AddressInfo).port;
    try {
      const { logger } = captureLogger();
      const inUse = await startServer(await configWith({ server: { port: busy } }), logger);
      assert.ok(!inUse.ok);
      assert.equal(inUse.error.message, `cannot listen on 127.0.0.1:${busy}: address already in use`);

      // The TLS port is busy: the plain listener opened first is closed again.
      const plain = await freePort();
      const tlsBusy = await startServer(
        await configWith({
          server: { port: plain, tls: { port: busy, cert: pki.serverCert, key: pki.serverKey } },
        }),
        logger,
      );
      assert.ok(!tlsBusy.ok);
      const probe = await connect(plain);
      assert.ok(!probe.ok && probe.error.code === 'ERR_CONNECT', 'the plain port was released');
    } finally {
      blocker.close();
    }
    const { logger } = captureLogger();
    const noCert = await startServer(
      await configWith({
        server: { tls: { port: await freePort(), cert: '/nonexistent/cert.pem', key: pki.serverKey } },
      }),
      logger,
    );
    assert.ok(!noCert.ok);
    assert.equal(noCert.error.message, 'server.tls.cert /nonexistent/cert.pem: no such file or folder');

    const file = join(dataRoot.path, 'a-file');
    await writeFile(file, '');
    const badData = await startServer(await configWith({ data: { dir: join(file, 'data') } }), logger);
    assert.ok(!badData.ok);
    assert.match(badData.error.message, /^data folder .*a-file\/data: not a folder$/);
  });
});
