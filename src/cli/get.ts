/**
 * `pacs get`: C-GET (Query/Retrieve, PS3.4 C.4.3) like DCMTK's getscu: the objects the keys name
 * come back on our association and are written into `--out` as Part-10 files, named by a hash of
 * their data set (never by a UID). We propose the common storage SOP classes as Storage SCP (role
 * selection), each in Explicit and in Implicit VR LE, so uncompressed objects arrive as stored.
 * A progress bar on a terminal, then a summary (or --json); exit 0 only when every sub-operation
 * succeeded. Ctrl-C sends C-CANCEL.
 */
import { mkdir } from 'node:fs/promises';
import type { Command } from 'commander';
import { describeStatus, folderReceiver, get, getContexts, PacsError } from '../client.js';
import type { ReceivedObject } from '../index.js';
import { addConnectionOptions, parseConnection } from './common.js';
import {
  addRetrieveOptions,
  checkOutcome,
  hasCounts,
  outcomeJson,
  performRetrieve,
  type RetrieveFlags,
  RetrieveProgressBar,
  retrieveRequest,
  retrieveRequestor,
} from './move.js';

interface GetFlags extends RetrieveFlags {
  out: string;
}

export function registerGetCommand(program: Command): void {
  addRetrieveOptions(
    addConnectionOptions(
      program
        .command('get')
        .description(
          'retrieve objects from a DICOM peer with C-GET (Query/Retrieve) into a folder, like getscu',
        ),
    ),
  )
    .requiredOption('--out <dir>', 'folder for the received objects (created if missing)')
    .action(async (host: string, port: string, flags: GetFlags) => {
      await runGet(host, port, flags);
    });
}

async function runGet(host: string, portText: string, flags: GetFlags): Promise<void> {
  const conn = parseConnection(host, portText, flags);
  const { model, identifier } = retrieveRequest(flags);
  const what = `C-GET from ${conn.target}`;
  try {
    await mkdir(flags.out, { recursive: true });
  } catch (e) {
    throw new PacsError('ERR_RETRIEVE', `--out ${flags.out}: ${(e as Error).message}`);
  }
  const progress = new RetrieveProgressBar();
  const received: ReceivedObject[] = [];
  const writeErrors: string[] = [];
  const ae = retrieveRequestor(conn).addService(
    folderReceiver({
      dir: flags.out,
      onObject: (o) => received.push(o),
      onBytes: (n) => progress.addBytes(n),
      onError: (e) => writeErrors.push(e.message),
    }),
  );
  const { outcome: o, seconds } = await performRetrieve(
    ae,
    conn,
    getContexts(model),
    what,
    model,
    progress,
    (assoc, signal, onProgress) => get(assoc, { model, identifier, signal, onProgress }),
  );
  const bytes = received.reduce((n, r) => n + r.size, 0);
  if (flags.json)
    process.stdout.write(
      outcomeJson(o, { out: flags.out, received: received.map((r) => r.path), bytes, seconds }),
    );
  else if (hasCounts(o) || received.length > 0) {
    const lines = [
      `${what}: ${received.length} objects (${(bytes / 1e6).toFixed(1)} MB) into ${flags.out} in ` +
        `${seconds.toFixed(1)} s; ${o.completed ?? 0} completed, ${o.failed ?? 0} failed, ` +
        `${o.warning ?? 0} warning; ${describeStatus(o.status)}`,
    ];
    for (const uid of o.failedSopInstanceUids) lines.push(`  failed ${uid}`);
    for (const e of writeErrors) lines.push(`  not written: ${e}`);
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  checkOutcome(what, o);
}
