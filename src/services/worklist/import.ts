/**
 * Reading worklist items from files: DICOM files as DCMTK's wlmscpfs keeps them (*.wl, Part-10
 * or a bare data set), DICOM JSON (one object, or an array of objects as PS3.18 answers hold
 * them), each possibly gzip-compressed (*.gz); folders are searched for *.wl, *.dcm and *.json.
 * Every item is checked (model.ts) and the problems of an item are one line, so that an import
 * can report every bad item and store nothing.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DicomParseError } from '../../core/errors.js';
import { err, ok, type Result } from '../../core/result.js';
import type { DataSet } from '../../dicom/dataset.js';
import { type DicomJsonObject, fromDicomJson } from '../../dicom/json.js';
import { parseDicom } from '../../dicom/reader.js';
import { prepareWorklistItem } from './model.js';

/** Files a folder contributes (what wlmscpfs reads, and our own formats). */
const ITEM_FILE = /\.(wl|dcm|json)(\.gz)?$/i;

async function collect(path: string, out: string[], explicit: boolean): Promise<void> {
  const s = await stat(path);
  if (s.isDirectory()) {
    for (const name of (await readdir(path)).sort()) await collect(join(path, name), out, false);
  } else if (explicit || ITEM_FILE.test(path)) out.push(path);
}

/** The files of these paths: files as given, folders searched (sorted, recursively). */
export async function worklistFiles(paths: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) await collect(p, out, true);
  return out;
}

function isGzip(bytes: Uint8Array): boolean {
  return bytes.length > 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

function looksLikeJson(bytes: Uint8Array): boolean {
  for (const b of bytes.subarray(0, 64)) {
    if (b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09 || b === 0xef || b === 0xbb || b === 0xbf)
      continue;
    return b === 0x7b || b === 0x5b; // '{' or '['
  }
  return false;
}

/** The data sets in one file: a DICOM data set, or the objects of a DICOM JSON file. */
export async function readDataSets(path: string): Promise<Result<DataSet[], string>> {
  let bytes: Uint8Array = await readFile(path);
  if (isGzip(bytes)) {
    try {
      bytes = gunzipSync(bytes);
    } catch (e) {
      return err(`not a valid gzip file: ${(e as Error).message}`);
    }
  }
  if (looksLikeJson(bytes)) {
    let json: unknown;
    try {
      json = JSON.parse(Buffer.from(bytes).toString('utf8'));
    } catch (e) {
      return err(`not valid JSON: ${(e as Error).message}`);
    }
    const objects = Array.isArray(json) ? json : [json];
    const out: DataSet[] = [];
    for (const [i, o] of objects.entries()) {
      const ds = fromDicomJson(o);
      if (!ds.ok) return err(`${objects.length > 1 ? `object ${i + 1}: ` : ''}not DICOM JSON: ${ds.error}`);
      out.push(ds.value);
    }
    return ok(out);
  }
  try {
    return ok([parseDicom(bytes).dataSet]);
  } catch (e) {
    if (e instanceof DicomParseError) return err(`neither DICOM nor DICOM JSON: ${e.message}`);
    throw e;
  }
}

export interface WorklistFileItems {
  /** The items ready for the store, with where each came from. */
  readonly items: { readonly source: string; readonly item: DicomJsonObject }[];
  /** One line per file that cannot be read or item that is not valid: "FILE: reason". */
  readonly errors: string[];
  /** Data sets read (an item with several steps gives several items). */
  readonly dataSets: number;
}

/** Reads and checks every item of the files and folders. */
export async function readWorklistFiles(paths: readonly string[]): Promise<WorklistFileItems> {
  const items: { source: string; item: DicomJsonObject }[] = [];
  const errors: string[] = [];
  let dataSets = 0;
  for (const path of await worklistFiles(paths)) {
    const read = await readDataSets(path);
    if (!read.ok) {
      errors.push(`${path}: ${read.error}`);
      continue;
    }
    for (const [i, ds] of read.value.entries()) {
      dataSets++;
      const where = read.value.length > 1 ? `${path} (item ${i + 1})` : path;
      const prepared = prepareWorklistItem(ds);
      if ('problems' in prepared) errors.push(`${where}: ${prepared.problems.join('; ')}`);
      else for (const item of prepared.items) items.push({ source: where, item });
    }
  }
  return { items, errors, dataSets };
}
