/**
 * Compression at rest (issue 13): which stored objects are compressed, and into what. The policy
 * names a lossless target per modality (or one for all); only native (uncompressed) objects with
 * integer pixel data the target's encoder takes are compressed. Everything else stays as it is,
 * with the reason said (skipReason).
 */
import { UID } from '../../dicom/uid.js';

/** The policy values of `storage.compression` (and of `pacs archive compress --ts`). */
export const COMPRESSION_TARGETS = ['none', 'jpeg-ls-lossless', 'j2k-lossless', 'htj2k-lossless'] as const;

export type CompressionTarget = (typeof COMPRESSION_TARGETS)[number];

/** The transfer syntax each target writes (PS3.5 A.4.3, A.4.4, A.4.6: the lossless-only ones). */
export const TARGET_SYNTAX: Readonly<Record<Exclude<CompressionTarget, 'none'>, string>> = {
  'jpeg-ls-lossless': UID.JPEGLSLossless,
  'j2k-lossless': UID.JPEG2000Lossless,
  'htj2k-lossless': UID.HTJ2KLossless,
};

export function isCompressionTarget(value: string): value is CompressionTarget {
  return (COMPRESSION_TARGETS as readonly string[]).includes(value);
}

/** The policy as the config gives it (`storage.compression*`). */
export interface CompressionPolicy {
  /** The target of every modality not named in `byModality` (default none). */
  readonly target: CompressionTarget;
  /** Per Modality (0008,0060) value: a target, or 'none' to leave that modality alone. */
  readonly byModality?: Readonly<Record<string, CompressionTarget>>;
  /** Objects smaller than this many bytes (the stored file) are left alone (default 0). */
  readonly minBytes?: number;
}

/** True when the policy may compress something (a server then runs the compression jobs). */
export function policyCompresses(policy: CompressionPolicy): boolean {
  return policy.target !== 'none' || Object.values(policy.byModality ?? {}).some((t) => t !== 'none');
}

/** The target for an object of `modality`: the modality's own, else the default. */
export function targetFor(policy: CompressionPolicy, modality: string | null | undefined): CompressionTarget {
  const own = modality ? policy.byModality?.[modality.trim()] : undefined;
  return own ?? policy.target;
}

/** The Image Pixel attributes that decide whether an object can be compressed losslessly. */
export interface PixelFacts {
  /** Top-level Pixel Data present: native (a plain value) or encapsulated (fragments). */
  readonly pixelData: 'native' | 'encapsulated' | 'none' | 'float';
  readonly bitsAllocated: number | undefined;
  readonly bitsStored: number | undefined;
  readonly highBit: number | undefined;
  readonly samplesPerPixel: number;
  readonly photometricInterpretation: string | undefined;
}

/** Why an object is left as it is: a stable code (for counts) and the words. */
export interface SkipReason {
  readonly code: SkipCode;
  readonly reason: string;
}

export type SkipCode =
  | 'already-compressed'
  | 'no-pixel-data'
  | 'float-pixel-data'
  | 'unsupported-pixels'
  | 'modality'
  | 'too-small'
  | 'not-smaller'
  | 'changed'
  | 'not-archived';

/**
 * Why an object is not compressed into `target`, or undefined when it can be. The encoders take
 * integer samples of 8 or 16 bits allocated with at most 16 bits stored; the JPEG 2000 builds
 * encode colour at 8 bits only (dicom/codec/wasm-codecs.ts).
 */
export function skipReason(
  transferSyntaxUid: string,
  encapsulatedSyntax: boolean,
  facts: PixelFacts,
  target: Exclude<CompressionTarget, 'none'>,
): SkipReason | undefined {
  if (encapsulatedSyntax || facts.pixelData === 'encapsulated')
    return { code: 'already-compressed', reason: `already compressed (${transferSyntaxUid})` };
  if (facts.pixelData === 'none') return { code: 'no-pixel-data', reason: 'no pixel data' };
  if (facts.pixelData === 'float')
    return { code: 'float-pixel-data', reason: 'float pixel data (no lossless integer codec applies)' };
  const bits = facts.bitsAllocated;
  if (bits !== 8 && bits !== 16) return unsupported(`unsupported bits: Bits Allocated ${bits ?? 'absent'}`);
  const stored = facts.bitsStored ?? bits;
  if (stored < 2 || stored > bits)
    return unsupported(`unsupported bits: Bits Stored ${stored} of ${bits} allocated`);
  // The codecs keep the low Bits Stored bits: samples stored higher up would be lost.
  const high = facts.highBit ?? stored - 1;
  if (high !== stored - 1)
    return unsupported(`unsupported bits: High Bit ${high} with Bits Stored ${stored}`);
  if (facts.samplesPerPixel !== 1 && facts.samplesPerPixel !== 3)
    return unsupported(`unsupported Samples per Pixel ${facts.samplesPerPixel}`);
  const pi = facts.photometricInterpretation ?? '';
  if (facts.samplesPerPixel === 3 && pi !== 'RGB' && pi !== 'YBR_FULL')
    return unsupported(`unsupported photometric interpretation ${pi} for lossless colour compression`);
  if (facts.samplesPerPixel === 1 && !['MONOCHROME1', 'MONOCHROME2', 'PALETTE COLOR'].includes(pi))
    return unsupported(`unsupported photometric interpretation ${pi || 'absent'}`);
  if (target !== 'jpeg-ls-lossless' && facts.samplesPerPixel === 3 && stored > 8)
    return unsupported(`unsupported bits: ${target} encodes colour at 8 bits per sample only`);
  // OpenJPEG applies the reversible colour transform to 3 components: meant for RGB (PS3.5 8.2.4).
  if (target === 'j2k-lossless' && facts.samplesPerPixel === 3 && pi !== 'RGB')
    return unsupported(`unsupported photometric interpretation ${pi} for ${target} (RGB only)`);
  return undefined;
}

function unsupported(reason: string): SkipReason {
  return { code: 'unsupported-pixels', reason };
}
