/** Shared by the DCMTK interop tests: the files a DCMTK peer wrote, and the figures of its -d output. */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
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
