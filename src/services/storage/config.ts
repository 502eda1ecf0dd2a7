/**
 * The Storage service's part of the config (`storage`, ISSUE 4): what happens to duplicates, how
 * durable a write is before success, and the free-space floor under which C-STORE answers A700.
 * The archive applies the first three; the SCP accepts the extra SOP classes; the compression
 * settings are the policy of compression at rest (archive/compression/).
 */
import { z } from 'zod';
import { COMPRESSION_TARGETS } from '../../archive/compression/policy.js';
import {
  addRule,
  type ConfigPart,
  expecting,
  filePath,
  integer,
  list,
  oneOf,
  section,
} from '../../core/config.js';

const storageSchema = section({
  duplicatePolicy: oneOf(['keep', 'replace', 'reject']).default('keep'),
  durability: oneOf(['fsync', 'none']).default('fsync'),
  minFreeMegabytes: integer(0, 1_000_000).default(64),
  /** Extra (private) SOP Class UIDs to accept besides every storage SOP class of the registry. */
  extraSopClasses: list(z.string(expecting('a UID')).regex(/^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/)).default(
    [],
  ),
  /** Compression at rest (archive/compression/): the lossless syntax stored objects are compressed into after ingest. */
  compression: oneOf(COMPRESSION_TARGETS).default('none'),
  /** Per Modality: a target (or "none") that overrides `compression` for objects of that modality. */
  compressionByModality: z
    .record(z.string(), oneOf(COMPRESSION_TARGETS), expecting('an object of Modality: compression target'))
    .superRefine((byModality, ctx) => {
      for (const key of Object.keys(byModality))
        if (!/^[A-Z0-9_ ]{1,16}$/.test(key))
          addRule(
            ctx,
            [key],
            `${JSON.stringify(key)} is not a Modality code (capitals, digits, underscore; up to 16)`,
          );
    })
    .default({}),
  /** Objects whose file is smaller than this are not compressed. */
  compressionMinBytes: integer(0, Number.MAX_SAFE_INTEGER).default(0),
  /**
   * Encryption at rest (issue 14): `keyFile` is the key-encryption key new objects are sealed
   * under (`pacs archive new-key FILE`); `previousKeyFiles` open objects not yet rotated to it.
   */
  encryption: section({
    keyFile: filePath.optional(),
    previousKeyFiles: list(filePath).default([]),
  }).default({}),
});

/** `storage`: the Storage SCP and the archive's write policy. */
export const storageConfig = { storage: storageSchema.default({}) } satisfies ConfigPart;

export type StorageConfig = z.infer<typeof storageSchema>;
