/**
 * Transcoding on the way out (issue 13): which syntax a compressed object is sent in when the peer
 * did not accept its stored one, and the transcoded data set itself. Lossless stays lossless: a
 * lossy target (JPEG baseline) is chosen only when the sender allows it (`pacs store --transcode
 * lossy`). The first bytes of the transcode are produced before the C-STORE request goes out, so
 * an object that cannot be decoded fails its own sub-operation and leaves the association usable.
 */
import { PacsError } from '../../core/errors.js';
import { err, ok, type Result } from '../../core/result.js';
import { codecFor } from '../../dicom/codec/registry.js';
import { checkTranscode, LOSSY_TARGETS } from '../../dicom/transcode.js';
import {
  DEFLATED_EXPLICIT_VR_LE,
  EXPLICIT_VR_BE,
  EXPLICIT_VR_LE,
  IMPLICIT_VR_LE,
  transferSyntax,
  UID,
} from '../../dicom/uid.js';
import { TranscodePriority, transcodeStream } from '../../io/transcode.js';

/** What a sender allows when it must transcode. */
export interface TranscodePolicy {
  /** Allow a lossy target (JPEG baseline) when the peer accepts nothing lossless. Default false. */
  readonly lossy?: boolean;
}

/**
 * Targets for a compressed object, best first (after its stored syntax): lossless compressed
 * ones, then Explicit VR LE, Implicit VR LE and the other uncompressed ones; lossy last.
 */
const TARGETS: readonly string[] = [
  UID.JPEGLSLossless,
  UID.HTJ2KLossless,
  UID.JPEG2000Lossless,
  UID.RLELossless,
  UID.JPEG2000,
  UID.HTJ2K,
  EXPLICIT_VR_LE,
  IMPLICIT_VR_LE,
  DEFLATED_EXPLICIT_VR_LE,
  EXPLICIT_VR_BE,
  UID.JPEGBaseline8Bit,
];

/** True when objects stored in this (encapsulated) syntax can be decoded, hence sent in another. */
export function isTranscodable(transferSyntaxUid: string): boolean {
  return (
    transferSyntax(transferSyntaxUid)?.encapsulated === true && codecFor(transferSyntaxUid) !== undefined
  );
}

/** The best of the accepted syntaxes to transcode a `stored` object into, or undefined when none will do. */
export function transcodeTarget(
  stored: string,
  accepted: readonly string[],
  policy: TranscodePolicy = {},
): string | undefined {
  if (!isTranscodable(stored)) return undefined;
  return TARGETS.find(
    (ts) =>
      accepted.includes(ts) &&
      (!LOSSY_TARGETS.has(ts) || policy.lossy === true) &&
      checkTranscode(stored, ts, policy) === undefined,
  );
}

/** A transcode that failed before its first byte was sent (the association is untouched). */
export class TranscodeFailure extends PacsError {}

/** Output produced before the request goes out: most objects are transcoded whole by then. */
const PREFETCH = 8 * 1024 * 1024;

/**
 * Starts transcoding the data set of a file (its bytes from the start, Part-10 or raw) into
 * `target`, and produces output until the transcode ends or PREFETCH bytes are ready. A failure
 * by then is a TranscodeFailure value; a later one is thrown by the returned stream (and noted
 * in `failure`), which the sender turns into an abort.
 */
export async function startTranscode(
  fileBytes: AsyncIterable<Uint8Array>,
  target: string,
  policy: TranscodePolicy,
  failure: { error?: Error },
): Promise<Result<AsyncIterable<Uint8Array>, TranscodeFailure>> {
  const chunks = transcodeStream(fileBytes, {
    to: target,
    lossy: policy.lossy ?? false,
    fileMeta: false,
    priority: TranscodePriority.transfer,
  });
  const ready: Uint8Array[] = [];
  let size = 0;
  let done = false;
  try {
    while (size < PREFETCH) {
      const n = await chunks.next();
      if (n.done) {
        done = true;
        break;
      }
      ready.push(n.value);
      size += n.value.length;
    }
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    return err(
      new TranscodeFailure(
        typeof code === 'string' ? code : 'ERR_TRANSCODE',
        `cannot transcode to ${transferSyntax(target)?.name ?? target}: ${(e as Error).message}`,
        { cause: e },
      ),
    );
  }
  async function* rest(): AsyncGenerator<Uint8Array> {
    let bytes = 0;
    try {
      for (const c of ready) {
        bytes += c.length;
        yield c;
      }
      ready.length = 0;
      if (!done)
        for (;;) {
          const n = await chunks.next();
          if (n.done) break;
          bytes += n.value.length;
          yield n.value;
        }
      // PS3.5 A.5: a deflated data set of odd length is padded with one 00H.
      if (target === DEFLATED_EXPLICIT_VR_LE && bytes % 2 === 1) yield Uint8Array.of(0);
    } catch (e) {
      failure.error = e as Error;
      throw e;
    } finally {
      await chunks.return(undefined as never);
    }
  }
  return ok(rest());
}
