/**
 * Shared by the DCMTK interop tests: the files a DCMTK peer wrote, the figures of its -d output,
 * and our Query/Retrieve server run in the test's process.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type Archive, openArchive } from '../../src/archive/archive.js';
import { jobStoreFor } from '../../src/archive/jobs/open.js';
import { JobRunner } from '../../src/archive/jobs/runner.js';
import { ApplicationEntity, type DicomServer } from '../../src/network/ae.js';
import { findService } from '../../src/services/query-retrieve/find-scp.js';
import { getService } from '../../src/services/query-retrieve/get-scp.js';
import { moveService } from '../../src/services/query-retrieve/move-scp.js';
import { storageService } from '../../src/services/storage/scp.js';
import { type FileInfo, readFileInfo } from '../../src/services/storage/scu.js';

/** The DICOM files of a folder with their headers read, by name. */
export async function fileInfos(dir: string): Promise<FileInfo[]> {
  const out: FileInfo[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const r = await readFileInfo(join(dir, name));
    if (r.ok) out.push(r.value);
  }
  return out;
}

/** The final status DCMTK's -d output shows ("DIMSE Status : 0xa801: ..."), lower case hex. */
export function finalStatus(output: string): string | undefined {
  const all = [...output.matchAll(/DIMSE Status\s*:\s*(0x[0-9a-f]{4})/g)].map((m) => m[1]);
  return all.at(-1);
}

/** The last count of a kind of sub-operation in DCMTK's -d output. */
export function finalCount(
  output: string,
  what: 'Completed' | 'Failed' | 'Remaining' | 'Warning',
): number | undefined {
  const all = [...output.matchAll(new RegExp(`${what} Suboperations\\s*:\\s*(\\d+)`, 'g'))].map((m) =>
    Number(m[1]),
  );
  return all.at(-1);
}

/** Our Query/Retrieve server in this process: an archive in `dir`, storage, find, move (to `peers`) and get. */
export interface QrServer {
  readonly archive: Archive;
  readonly port: number;
  close(): Promise<void>;
}

export async function startQrServer(
  dir: string,
  peers: readonly { aet: string; host: string; port: number }[],
  attempts: number,
): Promise<QrServer> {
  const archive = await openArchive({ dataDir: dir, durability: 'none' });
  const runner = new JobRunner(jobStoreFor(archive.index), {
    pollMs: 50,
    backoff: { baseMs: 100, jitter: 0 },
  });
  const server: DicomServer = await new ApplicationEntity({ aeTitle: 'PACS' })
    .addService({ ...storageService({ archive }), requestorRoles: { scu: true, scp: true } })
    .addService(findService({ archive }))
    .addService(moveService({ archive, jobs: runner, attempts, peers }))
    .addService(getService({ archive }))
    .listen({ port: 0, host: '127.0.0.1' });
  runner.start();
  return {
    archive,
    port: server.address?.port ?? 0,
    close: async () => {
      await server.close(1000);
      await runner.stop();
      await archive.close();
    },
  };
}
