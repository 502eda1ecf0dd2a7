/**
 * DICOM files on disk: reading one into a data set, converting one into another transfer syntax.
 * The file side of dicom/reader.ts and dicom/convert.ts, which stay pure (ARCHITECTURE.md: the
 * data layer has no I/O). This module sits just above dicom/ and imports only it and core/, so the
 * archive, the services and the CLI all may use it.
 */
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { CONVERSION_HEAD_STOP, startConversion } from '../dicom/convert.js';
import { type DicomObject, type ReadOptions, readDicomChunks } from '../dicom/reader.js';

/** Reads a file in chunks; with `stopAtTag` it stops reading the file there. Throws DicomParseError. */
export async function readDicomFile(path: string, options: ReadOptions = {}): Promise<DicomObject> {
  const fh = await open(path, 'r');
  try {
    // A header usually fits the first small read; whole files go on in larger reads.
    return await readDicomChunks(
      readChunks(fh, 0, options.stopAtTag !== undefined ? 16 * 1024 : CHUNK),
      options,
    );
  } finally {
    await fh.close();
  }
}

const CHUNK = 256 * 1024;

/**
 * What reads bytes at a position: an open file (FileHandle) or an archived object's handle
 * (archive/store.ts ObjectHandle, which may decrypt what it reads).
 */
export interface PositionalReader {
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  close(): Promise<void>;
}

/**
 * A file's bytes from `start` to its end, `first` bytes then 256 KiB at a time. Each chunk is a
 * fresh buffer: a data set or an association may still hold views into it while the next is read.
 */
export async function* readChunks(
  fh: PositionalReader,
  start: number,
  first: number,
): AsyncGenerator<Buffer> {
  let position = start;
  let size = first;
  for (;;) {
    const buf = Buffer.allocUnsafe(size);
    const { bytesRead } = await fh.read(buf, 0, size, position);
    if (bytesRead === 0) return;
    position += bytesRead;
    yield bytesRead === size ? buf : buf.subarray(0, bytesRead);
    size = CHUNK;
  }
}

/**
 * Converts IN to OUT in the transfer syntax `to` (dicom/convert.ts). OUT is written to a temporary
 * file and renamed into place, so a failure leaves no partial output.
 */
export async function convertFile(input: string, output: string, to: string): Promise<void> {
  // A first look at the header: the source syntax and the SOP UIDs for the new file meta.
  const head = await readDicomFile(input, { stopAtTag: CONVERSION_HEAD_STOP });
  const tmp = `${output}.${process.pid}.tmp`;
  let pendingDrain = false;
  // Checked (and thrown) before the output file exists; the data set is written only once fed.
  const converter = startConversion(head, to, (chunk) => {
    if (!out.write(chunk)) pendingDrain = true;
  });
  const out = createWriteStream(tmp);
  try {
    out.write(converter.fileMeta);
    const source = createReadStream(input, { highWaterMark: 256 * 1024 });
    for await (const chunk of source) {
      converter.write(chunk as Buffer);
      if (pendingDrain) {
        pendingDrain = false;
        await once(out, 'drain');
      }
    }
    converter.end();
    out.end();
    await once(out, 'finish');
    await rename(tmp, output);
  } catch (e) {
    out.destroy();
    await rm(tmp, { force: true });
    throw e;
  }
}
