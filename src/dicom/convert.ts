/**
 * Re-encoding a Part-10 file into another uncompressed transfer syntax, streaming: the parser is
 * piped into a writer, so values are never held whole and memory stays bounded by the chunk size.
 */
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { DicomEncodeError } from '../core/errors.js';
import type { DataSet } from './dataset.js';
import { TAG } from './dictionary.js';
import { DicomParser } from './parser.js';
import { readDicomFile } from './reader.js';
import { describeUid, transferSyntax, UNCOMPRESSED_TRANSFER_SYNTAXES } from './uid.js';
import { DataSetWriter, encodeFileMeta } from './writer.js';

/** Checks that a conversion from `from` to `to` needs no pixel data codec. */
export function checkConversion(from: string, to: string): string | undefined {
  const target = transferSyntax(to);
  if (!target) return `unknown transfer syntax ${to}`;
  if (!UNCOMPRESSED_TRANSFER_SYNTAXES.includes(to))
    return `cannot convert to ${describeUid(to)}: only uncompressed targets are supported (${UNCOMPRESSED_TRANSFER_SYNTAXES.join(', ')}); compression needs a transcoder`;
  if (transferSyntax(from)?.encapsulated)
    return `cannot convert from ${describeUid(from)}: its pixel data is compressed and decompression needs a transcoder`;
  return undefined;
}

/**
 * Converts IN to OUT in the transfer syntax `to`. OUT is written to a temporary file and renamed
 * into place, so a failure leaves no partial output.
 */
export async function convertFile(input: string, output: string, to: string): Promise<void> {
  // A first look at the header: the source syntax and the SOP UIDs for the new file meta.
  const head = await readDicomFile(input, { stopAtTag: TAG.SOPInstanceUID + 1 });
  const problem = checkConversion(head.transferSyntax, to);
  if (problem) throw new DicomEncodeError(problem);
  const meta = encodeFileMeta({
    mediaStorageSopClassUid:
      head.meta?.string(TAG.MediaStorageSOPClassUID) ?? head.dataSet.string(TAG.SOPClassUID) ?? '',
    mediaStorageSopInstanceUid:
      head.meta?.string(TAG.MediaStorageSOPInstanceUID) ?? head.dataSet.string(TAG.SOPInstanceUID) ?? '',
    transferSyntaxUid: to,
    ...(head.meta ? { extra: withoutTransferSyntax(head.meta) } : {}),
  });

  const tmp = `${output}.${process.pid}.tmp`;
  const out = createWriteStream(tmp);
  let pendingDrain = false;
  const writer = new DataSetWriter((chunk) => {
    if (!out.write(chunk)) pendingDrain = true;
  }, to);
  // The writer is itself a handler: the parser drives it directly (it ignores the old file meta).
  const parser = new DicomParser(writer);
  try {
    out.write(meta);
    const source = createReadStream(input, { highWaterMark: 256 * 1024 });
    for await (const chunk of source) {
      parser.write(chunk as Buffer);
      if (pendingDrain) {
        pendingDrain = false;
        await once(out, 'drain');
      }
    }
    parser.end();
    writer.end();
    out.end();
    await once(out, 'finish');
    await rename(tmp, output);
  } catch (e) {
    out.destroy();
    await rm(tmp, { force: true });
    throw e;
  }
}

function withoutTransferSyntax(meta: DataSet): DataSet {
  meta.delete(TAG.TransferSyntaxUID);
  return meta;
}
