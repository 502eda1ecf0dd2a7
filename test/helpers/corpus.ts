/** The real DICOM corpora the tests read in place (ARCHITECTURE.md "Testing"): never copied. */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export const PYDICOM_DATA = '/usr/lib/python3/dist-packages/pydicom/data';
export const TEST_FILES = join(PYDICOM_DATA, 'test_files');
export const CHARSET_FILES = join(PYDICOM_DATA, 'charset_files');

/** The .dcm files of a corpus folder; fails with the install command when it is missing. */
export function corpusFiles(dir: string): string[] {
  if (!existsSync(dir)) throw new Error(`${dir} is missing: run 'apt-get install -y python3-pydicom'`);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.dcm'))
    .sort()
    .map((f) => join(dir, f));
}

/** Path of a DCMTK tool; fails with the install command when DCMTK is missing. */
export function dcmtkTool(name: string): string {
  for (const dir of ['/usr/bin', '/usr/local/bin']) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  throw new Error(`DCMTK's ${name} is missing: run 'apt-get install -y dcmtk'`);
}
