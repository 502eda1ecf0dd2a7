/**
 * Re-encoding a Part-10 object into another uncompressed transfer syntax, streaming: the parser is
 * piped into a writer, so values are never held whole and memory stays bounded by the chunk size.
 * No I/O here: io/dicom-file.ts's convertFile feeds it a file and writes the output.
 */
import { DicomEncodeError } from '../core/errors.js';
import type { DataSet } from './dataset.js';
import { TAG } from './dictionary.js';
import { DicomParser } from './parser.js';
import type { DicomObject } from './reader.js';
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

/** A re-encoder: the source Part-10 bytes go in, the target data set comes out. */
export interface Converter {
  /** The target's file meta information (PS3.10 7.1), to be written before the data set. */
  readonly fileMeta: Uint8Array;
  /** The next bytes of the source; the output data set is written as it is produced. */
  write(chunk: Uint8Array): void;
  end(): void;
}

/**
 * Starts a conversion into the transfer syntax `to` of the object whose first elements are `head`
 * (its source syntax and SOP UIDs, read with stopAtTag just past SOP Instance UID): the new file
 * meta, and the data set written to `write` as the source comes in. Values are never held whole. Throws DicomEncodeError when the conversion needs a pixel data codec.
 */
export function startConversion(
  head: DicomObject,
  to: string,
  write: (chunk: Uint8Array) => void,
): Converter {
  const problem = checkConversion(head.transferSyntax, to);
  if (problem) throw new DicomEncodeError(problem);
  const fileMeta = encodeFileMeta({
    mediaStorageSopClassUid:
      head.meta?.string(TAG.MediaStorageSOPClassUID) ?? head.dataSet.string(TAG.SOPClassUID) ?? '',
    mediaStorageSopInstanceUid:
      head.meta?.string(TAG.MediaStorageSOPInstanceUID) ?? head.dataSet.string(TAG.SOPInstanceUID) ?? '',
    transferSyntaxUid: to,
    ...(head.meta ? { extra: withoutTransferSyntax(head.meta) } : {}),
  });
  const writer = new DataSetWriter(write, to);
  // The writer is itself a handler: the parser drives it directly (it ignores the old file meta).
  const parser = new DicomParser(writer);
  return {
    fileMeta,
    write: (chunk) => parser.write(chunk),
    end: () => {
      parser.end();
      writer.end();
    },
  };
}

/** The stopAtTag that reads just enough of a source for startConversion's `head`. */
export const CONVERSION_HEAD_STOP = TAG.SOPInstanceUID + 1;

function withoutTransferSyntax(meta: DataSet): DataSet {
  meta.delete(TAG.TransferSyntaxUID);
  return meta;
}
