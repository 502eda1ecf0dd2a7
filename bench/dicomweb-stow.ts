/**
 * STOW-RS ingest against C-STORE ingest, same objects, same archive settings (fsync of each
 * object file and folder, SQLite index in the data folder), same run:
 *
 *   - C-STORE: DCMTK's storescu (TCP_NODELAY=1, one association for all objects; its process start
 *     is included) into `pacs server` (bench/common.ts startPacsServer);
 *   - STOW-RS: one keep-alive HTTP/1.1 connection from this process into a web server in a child
 *     process of its own (startWebServer of src/web/listen.ts over openArchive, until the lead wires
 *     the web server into `pacs server`), each file streamed from disk as one application/dicom
 *     part; `--batch N` parts per request (default 1: one request per object, the hardest case).
 *
 * A third row sends the same requests from curl (one process, one keep-alive connection), a C
 * client like storescu: on this 2-core machine the client's own CPU is taken from the server's.
 *
 * Prints objects/s of each, their ratio against the target (>= 0.9x), and a memory row:
 * one object of `--big-mb` MiB (default 2048) stored by STOW-RS, streamed from a generator (no
 * file), with the web server's peak RSS against the target (< 200 MB).
 *
 * Options: --objects N (default 400 CT 512x512), --rounds N (default 3), --big-mb N (0 skips).
 * Note: this file starts src/web/listen.ts in a child by its compiled path (dist/src/web/...),
 * not through bench/adapters.ts, because the web server is not yet a `pacs server` option.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createReadStream, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { largeObjectHeader, writeCtSeries } from './adapters.js';
import {
  fmt,
  HOST,
  inRounds,
  median,
  mib,
  numberArg,
  PEER_ENV,
  printPeers,
  printTable,
  ROOT,
  RssSampler,
  runMain,
  runOk,
  startPacsServer,
  stopProcess,
  Targets,
} from './common.js';

const BOUNDARY = 'bench-stow-boundary';

interface WebPeer {
  readonly port: number;
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

/** The web server (DICOMweb over an fsync archive) in a child process; it prints its port. */
async function startWebPeer(dataDir: string): Promise<WebPeer> {
  const url = (p: string) => JSON.stringify(new URL(p, `file://${ROOT}/`).href);
  const code = `
    import { openArchive } from ${url('dist/src/archive/archive.js')};
    import { startWebServer } from ${url('dist/src/web/listen.js')};
    import { OPEN_POLICY } from ${url('dist/src/web/policy.js')};
    import { createLogger } from ${url('dist/src/core/logger.js')};
    const logger = createLogger({ level: 'warn' });
    const archive = await openArchive({ dataDir: ${JSON.stringify(dataDir)}, durability: 'fsync', logger });
    const server = await startWebServer({ host: ${JSON.stringify(HOST)}, port: 0, logger,
      health: async () => ({ ok: true }), metrics: async () => '', policy: OPEN_POLICY,
      dicomweb: { archive, logger, aeTitle: 'PACS' } });
    process.stdout.write(JSON.stringify({ port: server.port }) + '\\n');
    process.on('SIGTERM', async () => { await server.close(); await archive.close(); process.exit(0); });
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: PEER_ENV,
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n') && line !== undefined) resolve((JSON.parse(line) as { port: number }).port);
    });
    child.once('exit', (c) => reject(new Error(`the web server exited (${c}) before listening`)));
  });
  return { port, process: child, stop: () => stopProcess(child) };
}

/** POSTs parts (each an async iterable of chunks) as one multipart/related request on `agent`. */
function stowRequest(
  agent: http.Agent,
  port: number,
  parts: ReadonlyArray<() => AsyncIterable<Uint8Array>>,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: HOST,
      port,
      agent,
      method: 'POST',
      path: '/dicom-web/studies',
      headers: {
        'content-type': `multipart/related; type="application/dicom"; boundary=${BOUNDARY}`,
        'transfer-encoding': 'chunked',
      },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.on('data', (d: Buffer) => {
        text += d.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    const write = (b: Uint8Array | string): Promise<void> | undefined =>
      req.write(b) ? undefined : new Promise((r) => req.once('drain', r));
    (async () => {
      for (const part of parts) {
        await write(`--${BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n`);
        for await (const chunk of part()) await write(chunk);
        await write('\r\n');
      }
      await write(`--${BOUNDARY}--\r\n`);
      req.end();
    })().catch((e: unknown) => req.destroy(e instanceof Error ? e : new Error(String(e))));
  });
}

async function stowFiles(port: number, files: readonly string[], batch: number): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const started = performance.now();
  try {
    for (let i = 0; i < files.length; i += batch) {
      const group = files
        .slice(i, i + batch)
        .map((f) => () => createReadStream(f, { highWaterMark: 256 * 1024 }));
      const r = await stowRequest(agent, port, group);
      if (r.status !== 200) throw new Error(`STOW-RS answered ${r.status}: ${r.text.slice(0, 500)}`);
    }
  } finally {
    agent.destroy();
  }
  return (performance.now() - started) / 1000;
}

/**
 * The same requests from curl, one process and one keep-alive connection for all of them (curl
 * reuses its connection across --next): a C client like storescu, so that the client's own CPU on
 * this 2-core machine weighs alike on both sides. Each body (one part, the boundary around the
 * file) is written to disk before the clock starts.
 */
function prepareCurl(work: string, port: number, files: readonly string[]): string {
  const dir = join(work, 'curl');
  mkdirSync(dir, { recursive: true });
  const lines: string[] = [];
  files.forEach((f, i) => {
    const body = join(dir, `${i}.part`);
    writeFileSync(
      body,
      Buffer.concat([
        Buffer.from(`--${BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n`),
        readFileSync(f),
        Buffer.from(`\r\n--${BOUNDARY}--\r\n`),
      ]),
    );
    if (i > 0) lines.push('next');
    lines.push(
      `url = "http://${HOST}:${port}/dicom-web/studies"`,
      `header = "Content-Type: multipart/related; type=\\"application/dicom\\"; boundary=${BOUNDARY}"`,
      // No Expect: 100-continue round trip before each body (curl adds it to large POSTs).
      'header = "Expect:"',
      `data-binary = "@${body}"`,
      'output = "/dev/null"',
      'write-out = "%{http_code}\\n"',
      'silent',
    );
  });
  const config = join(dir, 'curl.config');
  writeFileSync(config, `${lines.join('\n')}\n`);
  return config;
}

async function stowWithCurl(config: string, objects: number): Promise<number> {
  const started = performance.now();
  const out = (await runOk('curl', ['--config', config])).output;
  const seconds = (performance.now() - started) / 1000;
  const codes = out.split('\n').filter((l) => l.trim() !== '');
  const bad = codes.filter((c) => c.trim() !== '200');
  if (codes.length !== objects || bad.length > 0)
    throw new Error(
      `curl: ${codes.length} answers for ${objects} requests, ${bad.length} not 200 (${bad[0] ?? ''})`,
    );
  return seconds;
}

/** A multi-frame object of about `megabytes` MiB, generated as it is sent. */
async function* bigObject(megabytes: number): AsyncGenerator<Uint8Array> {
  const frame = Buffer.alloc(512 * 512 * 2, 0x11);
  const frames = Math.max(1, Math.ceil((megabytes * 1048576) / frame.length));
  yield largeObjectHeader(512, 512, frames);
  const element = Buffer.alloc(12);
  element.writeUInt16LE(0x7fe0, 0);
  element.writeUInt16LE(0x0010, 2);
  element.write('OW', 4, 'latin1');
  element.writeUInt32LE(frame.length * frames, 8);
  yield element;
  for (let i = 0; i < frames; i++) yield frame;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const objects = numberArg(argv, '--objects', 400);
  const rounds = numberArg(argv, '--rounds', 3);
  const batch = Math.max(1, numberArg(argv, '--batch', 1));
  const bigMb = numberArg(argv, '--big-mb', 2048);
  const work = join(tmpdir(), `pacs-bench-stow-${process.pid}`);
  mkdirSync(work, { recursive: true });
  try {
    const src = join(work, 'src');
    writeCtSeries(src, objects, { rows: 512, columns: 512 });
    const files = readdirSync(src)
      .sort()
      .map((f) => join(src, f));
    let round = 0;
    const fresh = (name: string) => {
      const dir = join(work, `${name}-${round}`);
      rmSync(dir, { recursive: true, force: true });
      return dir;
    };
    const curlConfig = (port: number) => prepareCurl(work, port, files);
    const [cstore, stow, curl] = await inRounds(
      rounds,
      [
        {
          name: 'C-STORE',
          measure: async () => {
            round++;
            const server = await startPacsServer({ dir: fresh('cstore') });
            try {
              const started = performance.now();
              await runOk('storescu', ['-aec', server.aet, HOST, String(server.port), ...files]);
              const seconds = (performance.now() - started) / 1000;
              const count = await server.count();
              if (count !== objects) throw new Error(`pacs server holds ${count} objects, not ${objects}`);
              return objects / seconds;
            } finally {
              await server.stop();
            }
          },
        },
        {
          name: 'STOW-RS',
          measure: async () => {
            const web = await startWebPeer(join(fresh('stow'), 'data'));
            try {
              return objects / (await stowFiles(web.port, files, batch));
            } finally {
              await web.stop();
            }
          },
        },
        {
          name: 'STOW-RS (curl)',
          measure: async () => {
            const web = await startWebPeer(join(fresh('stow-curl'), 'data'));
            try {
              return objects / (await stowWithCurl(curlConfig(web.port), objects));
            } finally {
              await web.stop();
            }
          },
        },
      ],
      (v) => `${fmt(v)} objects/s`,
    );
    const cstoreRate = median(cstore ?? []);
    const stowRate = median(stow ?? []);
    const curlRate = median(curl ?? []);

    let bigRss: number | undefined;
    if (bigMb > 0) {
      const web = await startWebPeer(join(work, 'big', 'data'));
      try {
        const sampler = new RssSampler(web.process.pid ?? 0);
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        const r = await stowRequest(agent, web.port, [() => bigObject(bigMb)]);
        agent.destroy();
        bigRss = sampler.stop();
        if (r.status !== 200) throw new Error(`STOW-RS of the big object answered ${r.status}: ${r.text}`);
      } finally {
        await web.stop();
      }
    }

    printPeers([
      {
        name: 'C-STORE',
        config:
          'DCMTK storescu (TCP_NODELAY=1, one association, its process start included) -> node bin/pacs server, fsync, SQLite',
      },
      {
        name: 'STOW-RS',
        config: `this Node process, one keep-alive HTTP/1.1 connection (persistent client), ${batch} part(s) per request -> startWebServer over openArchive, fsync, SQLite`,
      },
      {
        name: 'STOW-RS (curl)',
        config:
          'curl, one process and one keep-alive connection for all requests (bodies written before the clock starts), 1 part per request -> the same web server',
      },
    ]);
    printTable(
      ['ingest', 'objects', 'objects/s (median)'],
      [
        ['C-STORE (storescu)', String(objects), fmt(cstoreRate)],
        ['STOW-RS (Node client)', String(objects), fmt(stowRate)],
        ['STOW-RS (curl)', String(objects), fmt(curlRate)],
      ],
    );
    if (bigRss !== undefined)
      printTable(
        ['STOW-RS of one object', 'size', 'peak RSS'],
        [['web server', `${bigMb} MiB`, mib(bigRss)]],
      );
    new Targets('STOW-RS (issue 12)')
      .ratio('STOW-RS (curl) / C-STORE (storescu), CT 512x512, fsync', curlRate, cstoreRate, 0.9)
      .ratio('STOW-RS (Node client) / C-STORE (storescu), CT 512x512, fsync', stowRate, cstoreRate, 0.9)
      .add({
        what: `a ${bigMb} MiB object by STOW-RS: peak RSS of the web server`,
        measured: bigRss,
        op: '<',
        threshold: 200 * 1024 * 1024,
        show: mib,
      })
      .print();
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

runMain('bench:dicomweb-stow', main);
