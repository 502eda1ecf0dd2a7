/**
 * Compressing one archived object at rest (issue 13). The order is what makes it crash-safe:
 *
 *   1. read the original through the store and decide (policy.ts): native integer pixel data only;
 *   2. transcode it into a new object file (store.beginObject, committed: fsync, rename);
 *   3. verify the new file as stored (verify.ts): every frame decodes to the original's samples,
 *      every other attribute unchanged; a copy that fails is removed, the original untouched;
 *   4. switch the index row to the new file in one transaction (path, syntax, size, instance
 *      header, WADO-RS metadata and bulk layout: the frame offsets are the new file's), only while
 *      the row still names the original (compare and set: a delete or replace meanwhile wins);
 *   5. only after that commit, remove the original (at once, or later: see `removeOriginal`).
 *
 * A kill at any point leaves the object readable and indexed once: before 4 the row names the
 * original and a committed copy is a file whose SOP Instance UID is indexed under another file
 * that exists, which the start-up reconcile removes (reconcile.ts); after 4 the same holds of the
 * original. The original's bytes are removed only once a verified copy is what the index names.
 */

import { TAG } from '../../dicom/dictionary.js';
import { DicomParser } from '../../dicom/parser.js';
import type { FrameCoder } from '../../dicom/transcode.js';
import { EXPLICIT_VR_LE, transferSyntax } from '../../dicom/uid.js';
import {
  closeTranscodePool,
  pooledFrameCoder,
  TranscodePriority,
  transcodeStream,
} from '../../io/transcode.js';
import type { ArchiveIndex, IndexedInstance } from '../index/archive-index.js';
import {
  type BulkLayout,
  type InstanceMetadataDocs,
  MetadataCapture,
  parseBulkLayout,
} from '../index/capture.js';
import { describeInstance } from '../index/extract.js';
import type { CapturedFile } from '../reconcile.js';
import type { ObjectHandle, ObjectStore, ObjectWriter } from '../store.js';
import {
  type CompressionPolicy,
  type CompressionTarget,
  type PixelFacts,
  type SkipCode,
  skipReason,
  TARGET_SYNTAX,
  targetFor,
} from './policy.js';
import { type CheckedObject, decodeInProcess, type FrameDecoder, verifyCopy } from './verify.js';

/**
 * Writes the object whose Part-10 bytes are `source` re-encoded into `transferSyntaxUid` (its
 * pixel data compressed frame by frame) as Part-10 bytes into `out`, honouring its backpressure.
 * Rejects when it cannot (the copy is then dropped).
 */
export type ObjectTranscoder = (
  source: AsyncIterable<Uint8Array>,
  transferSyntaxUid: string,
  out: ObjectWriter,
  signal?: AbortSignal,
) => Promise<void>;

/**
 * The transcoder of io/transcode.ts into the store: Part-10 output, frames on `coder` (default
 * the shared worker pool at background priority: viewers and transfers first). A test passes a
 * corrupting `coder` to see the verification catch it.
 */
export function storeTranscoder(coder?: FrameCoder): ObjectTranscoder {
  return async (source, to, out, signal) => {
    const chunks = transcodeStream(source, {
      to,
      fileMeta: true,
      coder: coder ?? pooledFrameCoder(TranscodePriority.background),
    });
    for await (const chunk of chunks) {
      signal?.throwIfAborted();
      if (!out.write(chunk)) await out.drain();
    }
    if (out.error) throw out.error;
  };
}

/** The verification's decoder on the shared worker pool (background priority). */
export function pooledDecoder(): FrameDecoder {
  const coder = pooledFrameCoder(TranscodePriority.background);
  return async (encoded, module, ts) => {
    const r = await coder({
      source: encoded,
      sourceTransferSyntaxUid: ts,
      targetTransferSyntaxUid: EXPLICIT_VR_LE,
      module,
      options: {},
    });
    return {
      pixels: r.bytes,
      photometricInterpretation: r.photometricInterpretation,
      planarConfiguration: r.planarConfiguration,
    };
  };
}

/** Ends the worker threads compression used (a command line tool, before it exits). */
export function closeCompressionPools(): Promise<void> {
  return closeTranscodePool();
}

export interface CompressOptions {
  readonly policy: CompressionPolicy;
  /** The transcoder (the seam a test uses to inject a corrupting encoder). */
  readonly transcode: ObjectTranscoder;
  /** The decoder of the verification (default: the codec registry, in this thread). */
  readonly decode?: FrameDecoder;
  /**
   * Removes the original once the index names the copy (default: at once). The server delays it
   * (compression.ts), so a retrieve that looked the row up just before the switch still opens it.
   */
  readonly removeOriginal?: (path: string) => Promise<void>;
  /** Decide and report what would be done, change nothing. */
  readonly dryRun?: boolean;
  readonly signal?: AbortSignal;
}

/** The object's file before (and, compressed, after). */
export interface FileFacts {
  readonly path: string;
  readonly transferSyntaxUid: string;
  readonly size: number;
}

export type CompressOutcome =
  | {
      readonly status: 'compressed';
      readonly sopInstanceUid: string;
      readonly before: FileFacts;
      readonly after: FileFacts;
    }
  | {
      /** Dry run: it would be compressed into `target`. */
      readonly status: 'eligible';
      readonly sopInstanceUid: string;
      readonly before: FileFacts;
      readonly target: string;
    }
  | {
      readonly status: 'skipped';
      readonly sopInstanceUid: string;
      readonly before: FileFacts | undefined;
      readonly code: SkipCode;
      readonly reason: string;
    }
  | {
      /** Left as it was; the reason says what went wrong (a copy that failed verification...). */
      readonly status: 'failed';
      readonly sopInstanceUid: string;
      readonly before: FileFacts | undefined;
      readonly reason: string;
    };

/** The archive parts compression works on. */
export interface CompressionArchive {
  readonly store: ObjectStore;
  readonly index: ArchiveIndex;
}

/** Applies the policy to one archived object (see the module comment for the steps). */
export async function compressInstance(
  archive: CompressionArchive,
  sopInstanceUid: string,
  options: CompressOptions,
): Promise<CompressOutcome> {
  const { store, index } = archive;
  const row = await index.findInstance(sopInstanceUid);
  if (!row)
    return {
      status: 'skipped',
      sopInstanceUid,
      before: undefined,
      code: 'not-archived',
      reason: 'not archived (deleted?)',
    };
  const before = factsOf(row);
  const { skipped, failed } = outcomesOf(sopInstanceUid, before);

  const syntax = transferSyntax(row.transferSyntaxUid);
  if (syntax?.encapsulated)
    return skipped('already-compressed', `already compressed (${row.transferSyntaxUid})`);
  if (row.size < (options.policy.minBytes ?? 0))
    return skipped(
      'too-small',
      `smaller than the minimum size (${row.size} < ${options.policy.minBytes} bytes)`,
    );

  // One open of the original for everything: a delete or replace meanwhile unlinks the file, not
  // what this handle reads (the switch below then finds the row changed).
  let handle: ObjectHandle;
  try {
    handle = await store.openObject(row.path);
  } catch (e) {
    const now = await index.findInstance(sopInstanceUid);
    if (now?.path !== row.path) return skipped('changed', 'the object changed before it was compressed');
    return failed(`the original cannot be read: ${message(e)}`);
  }
  try {
    return await compressOpen(archive, row, before, handle, options);
  } finally {
    await handle.close();
  }
}

/** compressInstance from the original's policy check on, its file open. */
async function compressOpen(
  archive: CompressionArchive,
  row: IndexedInstance,
  before: FileFacts,
  handle: ObjectHandle,
  options: CompressOptions,
): Promise<CompressOutcome> {
  const { store, index } = archive;
  const sopInstanceUid = row.sopInstanceUid;
  const { skipped, failed } = outcomesOf(sopInstanceUid, before);
  const syntax = transferSyntax(row.transferSyntaxUid);
  let original: CapturedFile;
  try {
    original = await capture(handle.chunks());
  } catch (e) {
    return failed(`the original cannot be read: ${message(e)}`);
  }
  const target = targetFor(options.policy, original.dataSet.string(TAG.Modality));
  if (target === 'none')
    return skipped(
      'modality',
      `no compression for modality ${original.dataSet.string(TAG.Modality) ?? '(none)'}`,
    );
  const originalLayout = parseBulkLayout(original.metadata().bulk);
  if (!originalLayout) return failed('the layout of the original cannot be read');
  // The frames are checked where the layout says they are: in a deflated file they are not addressable.
  if (!originalLayout.addressable)
    return skipped(
      'unsupported-pixels',
      `deflated (${row.transferSyntaxUid}): its frames are not addressable`,
    );
  const why = skipReason(
    row.transferSyntaxUid,
    syntax?.encapsulated === true,
    pixelFacts(original, originalLayout),
    target,
  );
  if (why) return skipped(why.code, why.reason);
  const targetUid = TARGET_SYNTAX[target];
  if (options.dryRun) return { status: 'eligible', sopInstanceUid, before, target: targetUid };

  // 2. The copy, committed as a file no index row names yet.
  const begun = await store.beginObject();
  if (!begun.ok) return failed(begun.error.message);
  const writer = begun.value;
  try {
    await options.transcode(handle.chunks(), targetUid, writer, options.signal);
  } catch (e) {
    await writer.abort();
    if (options.signal?.aborted) throw e;
    return failed(`transcoding to ${targetUid} failed: ${message(e)}`);
  }
  const committed = await writer.commit();
  if (!committed.ok) return failed(committed.error.message);
  const copyPath = committed.value.path;
  const dropCopy = async (): Promise<void> => {
    await store.remove(copyPath).catch(() => undefined);
  };

  try {
    // 3. Verify what is on disk.
    let copy: CapturedFile;
    let copyHandle: ObjectHandle;
    try {
      copyHandle = await store.openObject(copyPath);
    } catch (e) {
      await dropCopy();
      return failed(`the compressed copy cannot be read: ${message(e)}`);
    }
    try {
      copy = await capture(copyHandle.chunks());
    } catch (e) {
      await copyHandle.close();
      await dropCopy();
      return failed(`the compressed copy cannot be read: ${message(e)}`);
    }
    const copyLayout = parseBulkLayout(copy.metadata().bulk);
    const checked: CheckedObject = { handle, file: original, layout: originalLayout };
    let problem: string | undefined;
    try {
      problem =
        copy.transferSyntax !== targetUid
          ? `the copy is in ${copy.transferSyntax}, not ${targetUid}`
          : copyLayout
            ? await verifyCopy(
                checked,
                { handle: copyHandle, file: copy, layout: copyLayout },
                options.decode ?? decodeInProcess,
                options.signal,
              )
            : 'the layout of the compressed copy cannot be read';
    } finally {
      await copyHandle.close();
    }
    if (problem) {
      await dropCopy();
      return failed(`verification of the ${targetUid} copy failed: ${problem}`);
    }
    const after: FileFacts = { path: copyPath, transferSyntaxUid: targetUid, size: committed.value.size };
    if (after.size >= before.size) {
      await dropCopy();
      return skipped(
        'not-smaller',
        `compression does not make it smaller (${before.size} -> ${after.size} bytes)`,
      );
    }

    // 4. The switch: one transaction, only while the row names the original.
    const described = describeInstance(
      copy.dataSet,
      {
        transferSyntaxUid: targetUid,
        path: copyPath,
        size: after.size,
        receivedAt: row.receivedAt,
        callingAet: row.callingAet,
      },
      copy.metadata,
    );
    if (!described.ok) {
      await dropCopy();
      return failed(`the compressed copy cannot be indexed: ${described.error.message}`);
    }
    const headers = described.value.headers;
    let switched: boolean;
    try {
      switched = await index.switchInstanceFile(sopInstanceUid, row.path, {
        path: copyPath,
        transferSyntaxUid: targetUid,
        size: after.size,
        header: headers.instance,
        stored: copy.metadata(),
      });
    } catch (e) {
      // A commit whose answer was lost may have happened: ask the index which file it names.
      const now = await index.findInstance(sopInstanceUid).then(
        (r) => ({ known: true, path: r?.path }),
        () => ({ known: false, path: undefined }),
      );
      if (now.path === copyPath) switched = true;
      else {
        // Not the copy's: drop it. Unknown (the index does not answer): the copy stays an
        // unindexed file, which reconcile removes while the original is indexed.
        if (now.known) await dropCopy();
        return failed(`switching the index to the copy failed: ${message(e)}`);
      }
    }
    if (!switched) {
      await dropCopy();
      return skipped(
        'changed',
        'the object changed while it was compressed (deleted or replaced): left as it is',
      );
    }

    // 5. The original goes only now (one left behind is a file whose UID is indexed under the
    // copy, which reconcile removes: a failure here does not undo the compression).
    const remove = options.removeOriginal ?? ((p) => store.remove(p).then(() => undefined));
    await remove(row.path).catch(() => undefined);
    return { status: 'compressed', sopInstanceUid, before, after };
  } catch (e) {
    await dropCopy();
    throw e;
  }
}

/**
 * An object's Part-10 bytes (read through the store, so encryption at rest applies) as the ingest
 * path captures them: its header, syntax, and WADO-RS documents with file offsets (what
 * reconcile.ts reads of a file).
 */
async function capture(chunks: AsyncIterable<Uint8Array>): Promise<CapturedFile> {
  const capturing = new MetadataCapture();
  const parser = new DicomParser(capturing, { format: 'part10' });
  capturing.track(() => parser.offset);
  let size = 0;
  for await (const chunk of chunks) {
    size += chunk.length;
    parser.write(chunk);
  }
  parser.end();
  let docs: InstanceMetadataDocs | undefined;
  return {
    size,
    meta: capturing.fileMeta,
    dataSet: capturing.root,
    transferSyntax: parser.transferSyntaxUid || capturing.transferSyntax,
    // The parser read the file itself: its offsets are file offsets.
    metadata: () => {
      docs ??= capturing.finish(0);
      return docs;
    },
  };
}

/** The skipped and failed outcomes of one object. */
function outcomesOf(
  sopInstanceUid: string,
  before: FileFacts,
): {
  skipped: (code: SkipCode, reason: string) => CompressOutcome;
  failed: (reason: string) => CompressOutcome;
} {
  return {
    skipped: (code, reason) => ({ status: 'skipped', sopInstanceUid, before, code, reason }),
    failed: (reason) => ({ status: 'failed', sopInstanceUid, before, reason }),
  };
}

function factsOf(row: IndexedInstance): FileFacts {
  return { path: row.path, transferSyntaxUid: row.transferSyntaxUid, size: row.size };
}

/** What the policy needs of the pixel data, from the captured header and layout. */
function pixelFacts(file: CapturedFile, layout: BulkLayout): PixelFacts {
  const ds = file.dataSet;
  const pixels = layout.pixels;
  const kind =
    pixels === undefined
      ? 'none'
      : pixels.kind === 'encapsulated'
        ? 'encapsulated'
        : pixels.path === '7FE00010'
          ? 'native'
          : 'float';
  return {
    pixelData: kind,
    bitsAllocated: ds.number(TAG.BitsAllocated),
    bitsStored: ds.number(TAG.BitsStored),
    highBit: ds.number(TAG.HighBit),
    samplesPerPixel: ds.number(TAG.SamplesPerPixel) ?? 1,
    photometricInterpretation: ds.string(TAG.PhotometricInterpretation),
  };
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export type { CompressionTarget };
