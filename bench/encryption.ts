/**
 * Encryption at rest, with and without, in the same run on the same generated objects (issue 14
 * "Targets": ingest with encryption >= 0.85x ingest without; WADO-RS retrieve with encryption >=
 * 0.85x without).
 *
 *   - ingest: DCMTK's storescu (TCP_NODELAY=1, one association for all objects; its process start
 *     is included, alike for both) sends --objects CT 512x512 objects (about 0.5 MB each) to a
 *     fresh `pacs server` (defaults: fsync of each object and folder, SQLite), once without
 *     storage.encryption and once with a key file; the modes take turns, --rounds rounds.
 *   - retrieve: a persistent Node client GETs the whole study from /dicom-web/studies/{uid}
 *     (multipart/related; type="application/dicom"; transfer-syntax=*: the objects as stored,
 *     decrypted by segment when encrypted), --gets times per round, the body read and dropped.
 *
 * Each figure is the median over rounds (and gets). Prints the peers' configuration, the figures,
 * the load average before and after, and the targets with MET / NOT MET.
 *
 * Run: npm run bench:encryption   (or node dist/bench/encryption.js [--objects N] [--rounds N] [--gets N])
 */

import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { TAG } from '../src/dicom/dictionary.js';
import { readDicomFile } from '../src/io/dicom-file.js';
import { writeNewKeyFile } from '../src/security/key-file.js';
import { writeCtSeries } from './adapters.js';
import {
  fmt,
  folderBytes,
  freePort,
  HOST,
  httpGetBytes,
  median,
  numberArg,
  printPeers,
  printTable,
  run,
  runMain,
  startPacsServer,
  Targets,
} from './common.js';

const ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*';
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function retrieve(port: number, path: string): Promise<{ bytes: number; seconds: number }> {
  return httpGetBytes(agent, port, path, ACCEPT);
}

interface Round {
  readonly ingestSeconds: number;
  readonly retrieveMBs: number[];
  readonly diskBytes: number;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const objects = numberArg(argv, '--objects', 300);
  const rounds = numberArg(argv, '--rounds', 3);
  const gets = numberArg(argv, '--gets', 3);
  const work = mkdtempSync(join(tmpdir(), 'pacs-bench-encryption-'));
  try {
    const folder = join(work, 'objects');
    const files = writeCtSeries(folder, objects);
    const study = (await readDicomFile(files[0] as string, { stopAtTag: TAG.PixelData })).dataSet.string(
      TAG.StudyInstanceUID,
    );
    const keyFile = join(work, 'kek.json');
    await writeNewKeyFile(keyFile);
    const sourceBytes = folderBytes(folder);
    const load = loadavg();
    console.log(
      `encryption at rest: ${objects} CT 512x512 objects (${fmt(sourceBytes / 1e6, 1)} MB), ${rounds} rounds, ${gets} study retrieves per round`,
    );
    console.log(`load average before: ${load.map((l) => l.toFixed(2)).join(' ')} (2 cores, shared)`);
    printPeers([
      {
        name: 'pacs server',
        config:
          'node bin/pacs server, defaults: fsync of each object file and folder, SQLite index, group commit',
      },
      {
        name: 'pacs server (encrypted)',
        config:
          'the same with storage.encryption.keyFile: AES-256-GCM, 64 KiB segments, a data key per object',
      },
      {
        name: 'storescu',
        config: 'DCMTK storescu, TCP_NODELAY=1, one association; its process start is included',
      },
      { name: 'retrieve client', config: 'Node http, one keep-alive connection, the whole study as stored' },
    ]);
    const results: Record<'plain' | 'encrypted', Round[]> = { plain: [], encrypted: [] };
    for (let r = 0; r < rounds; r++) {
      for (const mode of r % 2 === 0
        ? (['plain', 'encrypted'] as const)
        : (['encrypted', 'plain'] as const)) {
        const dir = join(work, `${mode}-${r}`);
        const httpPort = await freePort();
        const server = await startPacsServer({
          dir,
          extraArgs: ['--http-port', String(httpPort)],
          ...(mode === 'encrypted' ? { storage: { encryption: { keyFile } } } : {}),
        });
        try {
          const sent = await run('storescu', [
            '-aec',
            server.aet,
            '+sd',
            '+r',
            HOST,
            String(server.port),
            folder,
          ]);
          if (sent.code !== 0) throw new Error(`storescu failed (${sent.code}): ${sent.output.slice(-1500)}`);
          const count = await server.count();
          if (count !== objects) throw new Error(`${mode}: ${count} of ${objects} objects arrived`);
          const mbs: number[] = [];
          for (let g = 0; g < gets; g++) {
            const got = await retrieve(httpPort, `/dicom-web/studies/${study}`);
            mbs.push(got.bytes / 1e6 / got.seconds);
          }
          results[mode].push({
            ingestSeconds: sent.ms / 1000,
            retrieveMBs: mbs,
            diskBytes: folderBytes(join(dir, 'data', 'objects')),
          });
        } finally {
          await server.stop();
          rmSync(dir, { recursive: true, force: true });
        }
      }
    }
    const ingest = (mode: 'plain' | 'encrypted') =>
      median(results[mode].map((x) => objects / x.ingestSeconds));
    const fetchMBs = (mode: 'plain' | 'encrypted') => median(results[mode].flatMap((x) => x.retrieveMBs));
    const disk = (mode: 'plain' | 'encrypted') => median(results[mode].map((x) => x.diskBytes));
    printTable(
      ['mode', 'ingest objects/s', 'ingest MB/s', 'WADO-RS study MB/s', 'on disk MB'],
      (['plain', 'encrypted'] as const).map((m) => [
        m === 'plain' ? 'pacs server' : 'pacs server (encrypted)',
        fmt(ingest(m), 1),
        fmt((ingest(m) * sourceBytes) / objects / 1e6, 1),
        fmt(fetchMBs(m), 1),
        fmt(disk(m) / 1e6, 1),
      ]),
    );
    console.log(
      `load average after: ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
    new Targets('issue 14, encryption at rest')
      .ratio('ingest (storescu, CT) encrypted / plain >= 0.85x', ingest('encrypted'), ingest('plain'), 0.85)
      .ratio(
        'WADO-RS study retrieve encrypted / plain >= 0.85x',
        fetchMBs('encrypted'),
        fetchMBs('plain'),
        0.85,
      )
      .print();
  } finally {
    agent.destroy();
    rmSync(work, { recursive: true, force: true });
  }
}

runMain('encryption', main);
