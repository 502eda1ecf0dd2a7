/** Fixtures of the compression-at-rest tests: archives on either engine, the pydicom oracle, files on disk. */
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Archive, openArchive } from '../../src/archive/archive.js';
import type { EventBus } from '../../src/core/events.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { parseDicom } from '../../src/dicom/reader.js';
import { type FrameCoder, transcodeFrame } from '../../src/dicom/transcode.js';
import { run } from '../helpers/cli.js';
import { dropSchema, files, PG_URL, randomSchema } from './helpers.js';

const DIGEST = fileURLToPath(new URL('../../../test/helpers/pixel_digest.py', import.meta.url));

export interface Digest {
  readonly file: string;
  readonly transferSyntax: string;
  readonly pixels: string | null;
  readonly shape: unknown;
  readonly photometric: string;
  readonly attributes: string;
}

/** pydicom's (and GDCM's) view of files: pixel and attribute digests. */
export async function digests(paths: readonly string[]): Promise<Digest[]> {
  const r = await run('/usr/bin/python3', [DIGEST, ...paths]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Digest);
}

/** An archive in a temporary folder on SQLite or on PostgreSQL (a schema of its own). */
export async function openTestArchive(
  engine: 'sqlite' | 'postgres',
  events?: EventBus,
  existing?: { readonly dataDir: string; readonly dbUrl: string | undefined },
): Promise<{ archive: Archive; dataDir: string; dbUrl: string | undefined; close: () => Promise<void> }> {
  const dataDir = existing?.dataDir ?? (await mkdtemp(join(tmpdir(), 'pacs-compress-test-')));
  const schema = engine === 'postgres' && !existing ? randomSchema() : undefined;
  const dbUrl =
    existing?.dbUrl ??
    (schema !== undefined ? `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}` : undefined);
  const archive = await openArchive({
    dataDir,
    durability: 'none',
    ...(dbUrl ? { dbUrl } : {}),
    ...(events ? { events } : {}),
  });
  return {
    archive,
    dataDir,
    dbUrl,
    async close() {
      await archive.close();
      if (existing) return;
      if (schema !== undefined) await dropSchema(schema);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Ingests a Part-10 file; its SOP Instance UID. */
export async function ingestFile(archive: Archive, path: string): Promise<string> {
  const outcome = await archive.ingest(createReadStream(path), {
    format: 'part10',
    source: 'TEST',
    via: 'import',
  });
  if (!outcome.ok) throw new Error(`${path}: ${outcome.error.message}`);
  if (outcome.value.status === 'duplicate') return outcome.value.existing.sopInstanceUid;
  const uid = parseDicom(await readFile(path), { stopAtTag: TAG.SOPInstanceUID + 1 }).dataSet.string(
    TAG.SOPInstanceUID,
  );
  assert.ok(uid);
  return uid;
}

/** Every file under objects/, relative to the data folder (sorted). */
export async function objectFiles(dataDir: string): Promise<string[]> {
  return files(dataDir).objects;
}

/** A frame coder that changes one sample before encoding: a valid stream of the wrong pixels. */
export const corruptingCoder: FrameCoder = async (task) => {
  const source = new Uint8Array(task.source);
  source[Math.floor(source.length / 2)] = ((source[Math.floor(source.length / 2)] as number) + 1) & 0xff;
  return transcodeFrame({ ...task, source });
};
