/**
 * The transcoding part of the config (`transcode`, issue 13): what the server may do when a peer
 * (a C-MOVE destination, a C-GET requestor) does not accept an object's compressed syntax.
 * Lossless transcoding always happens when a codec can; `lossy: true` also allows JPEG baseline
 * when the peer accepts nothing lossless (never the default: the pixel values change).
 */
import type { z } from 'zod';
import { boolean, type ConfigPart, section } from '../../core/config.js';

const transcodeSchema = section({
  lossy: boolean().default(false),
});

/** `transcode`: the policy of transcoding on the way out. */
export const transcodeConfig = { transcode: transcodeSchema.default({}) } satisfies ConfigPart;

export type TranscodeConfig = z.infer<typeof transcodeSchema>;
