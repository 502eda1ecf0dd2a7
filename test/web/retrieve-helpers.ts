/**
 * Helpers of the WADO-RS / WADO-URI tests: an independent multipart/related parser (RFC 2046
 * framing, written here again rather than reusing the writer), the data set bytes of a Part-10
 * file, a large synthetic object written to disk in pieces (never whole in memory), and counting
 * this process's open descriptors on a file.
 */
import assert from 'node:assert/strict';
import { closeSync, openSync, readdirSync, readlinkSync, writeSync } from 'node:fs';
import { DataSet } from '../../src/dicom/dataset.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { EXPLICIT_VR_LE, generateUid, UID } from '../../src/dicom/uid.js';
import { encodePart10 } from '../../src/dicom/writer.js';

/** The pydicom corpus (python3-pydicom). */
export const CORPUS = '/usr/lib/python3/dist-packages/pydicom/data/test_files';

/** One part of a parsed multipart body: its headers (names in lower case) and its bytes. */
export interface ParsedPart {
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

/** The boundary parameter of a multipart Content-Type. */
export function boundaryOf(contentType: string | null): string {
  const m = /;\s*boundary=("?)([^";]+)\1/i.exec(contentType ?? '');
  assert.ok(m, `no boundary in ${contentType}`);
  return m[2] as string;
}

/** Splits a whole multipart body into its parts; checks the framing and each part's Content-Length. */
export function parseMultipart(body: Buffer, boundary: string): ParsedPart[] {
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: ParsedPart[] = [];
  let at = body.indexOf(delimiter);
  assert.equal(at, 0, 'the body starts with the first delimiter');
  for (;;) {
    at += delimiter.length;
    if (body.subarray(at, at + 2).toString() === '--') {
      assert.equal(body.subarray(at + 2).toString(), '\r\n', 'the close delimiter ends the body');
      return parts;
    }
    assert.equal(body.subarray(at, at + 2).toString(), '\r\n');
    at += 2;
    const headEnd = body.indexOf('\r\n\r\n', at);
    assert.ok(headEnd >= 0, 'part headers end');
    const headers: Record<string, string> = {};
    for (const line of body.subarray(at, headEnd).toString('latin1').split('\r\n')) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const start = headEnd + 4;
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delimiter]), start);
    assert.ok(next >= 0, 'a delimiter follows the part');
    const part = body.subarray(start, next);
    if (headers['content-length'] !== undefined) assert.equal(part.length, Number(headers['content-length']));
    parts.push({ headers, body: part });
    at = next + 2;
  }
}

/** The bytes after the file meta group (PS3.10 7.1: group length first). */
export function dataSetBytes(part10: Buffer): Buffer {
  assert.equal(part10.subarray(128, 132).toString('latin1'), 'DICM');
  assert.equal(part10.readUInt16LE(132), 0x0002);
  assert.equal(part10.readUInt16LE(134), 0x0000, 'the meta starts with its group length');
  const groupLength = part10.readUInt32LE(140);
  return part10.subarray(144 + groupLength);
}

/** Fetches a URL and returns status, headers and the whole body. */
export async function get(
  url: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<{ status: number; headers: Headers; body: Buffer }> {
  const r = await fetch(url, { headers, method });
  const body = Buffer.from(await r.arrayBuffer());
  return { status: r.status, headers: r.headers, body };
}

/**
 * Writes a CT object of about `pixelBytes` of Explicit VR LE pixel data to `path`, 1 MiB at a time
 * (the pattern changes per MiB so a misplaced chunk shows). Returns its SOP Instance UID and study.
 */
export function writeLargeObject(
  path: string,
  pixelBytes: number,
): { sopInstanceUid: string; studyInstanceUid: string; seriesInstanceUid: string } {
  const size = Math.floor(pixelBytes / 2) * 2;
  const ds = new DataSet();
  const studyInstanceUid = generateUid();
  const seriesInstanceUid = generateUid();
  const sopInstanceUid = generateUid();
  ds.setString(TAG.SOPClassUID, UID.CTImageStorage);
  ds.setString(TAG.SOPInstanceUID, sopInstanceUid);
  ds.setString(TAG.StudyInstanceUID, studyInstanceUid);
  ds.setString(TAG.SeriesInstanceUID, seriesInstanceUid);
  ds.setString(TAG.PatientID, 'LARGE');
  ds.setString(TAG.PatientName, 'Large^Object');
  ds.setString(TAG.Modality, 'CT');
  ds.setNumbers(TAG.SamplesPerPixel, 1);
  ds.setString(TAG.PhotometricInterpretation, 'MONOCHROME2');
  const side = Math.floor(Math.sqrt(size / 2));
  ds.setNumbers(TAG.Rows, 1);
  ds.setNumbers(TAG.Columns, side);
  ds.setNumbers(TAG.BitsAllocated, 16);
  ds.setNumbers(TAG.BitsStored, 16);
  ds.setNumbers(TAG.HighBit, 15);
  ds.setNumbers(TAG.PixelRepresentation, 0);
  const head = encodePart10(ds, EXPLICIT_VR_LE);
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, head);
    // (7FE0,0010) OW, reserved 2 bytes, 32-bit length: the last element, written in pieces.
    const el = Buffer.alloc(12);
    el.writeUInt16LE(0x7fe0, 0);
    el.writeUInt16LE(0x0010, 2);
    el.write('OW', 4, 'latin1');
    el.writeUInt32LE(size, 8);
    writeSync(fd, el);
    const mib = Buffer.alloc(1024 * 1024);
    for (let done = 0, n = 0; done < size; n++) {
      mib.fill(n & 0xff);
      const len = Math.min(mib.length, size - done);
      writeSync(fd, mib, 0, len);
      done += len;
    }
  } finally {
    closeSync(fd);
  }
  return { sopInstanceUid, studyInstanceUid, seriesInstanceUid };
}

/** How many descriptors of this process are open on `path`. */
export function openDescriptors(path: string): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === path) n++;
    } catch {
      // closed meanwhile
    }
  }
  return n;
}

/** Waits (polling) until `check` holds; fails after `tries` polls. */
export async function eventually(check: () => boolean, what: string, tries = 400): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`never happened: ${what}`);
}
