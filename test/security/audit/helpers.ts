/** Checking audit messages against the PS3.15 A.5.1 schema with xmllint (Debian libxml2-utils). */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT, run } from '../../helpers/cli.js';
import { tempDir } from '../../server/helpers.js';

export const AUDIT_SCHEMA = join(REPO_ROOT, 'src/security/audit/audit-message.rng');

/** Validates each XML document; resolves with xmllint's verdict per document ('' when valid). */
export async function validateAuditXml(documents: readonly string[]): Promise<string[]> {
  const dir = await tempDir('pacs-audit-xml-');
  try {
    const verdicts: string[] = [];
    for (const [i, xml] of documents.entries()) {
      const file = join(dir.path, `m${i}.xml`);
      await writeFile(file, xml);
      const r = await run('xmllint', ['--noout', '--relaxng', AUDIT_SCHEMA, file]);
      verdicts.push(r.code === 0 ? '' : r.stderr.trim());
    }
    return verdicts;
  } finally {
    await dir.remove();
  }
}

/** The value of attribute `name` of the first element `element` in `xml`. */
export function attributeOf(xml: string, element: string, name: string): string | undefined {
  const tag = new RegExp(`<${element}\\b[^>]*>`).exec(xml)?.[0];
  if (tag === undefined) return undefined;
  return new RegExp(`\\s${name}="([^"]*)"`).exec(tag)?.[1];
}
