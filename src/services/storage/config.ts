/**
 * The Storage service's part of the config (`storage`, ISSUE 4): what happens to duplicates, how
 * durable a write is before success, and the free-space floor under which C-STORE answers A700.
 * The archive applies the first three; the SCP accepts the extra SOP classes.
 */
import { z } from 'zod';
import { type ConfigPart, expecting, filePath, integer, list, oneOf, section } from '../../core/config.js';

const storageSchema = section({
  duplicatePolicy: oneOf(['keep', 'replace', 'reject']).default('keep'),
  durability: oneOf(['fsync', 'none']).default('fsync'),
  minFreeMegabytes: integer(0, 1_000_000).default(64),
  /** Extra (private) SOP Class UIDs to accept besides every storage SOP class of the registry. */
  extraSopClasses: list(z.string(expecting('a UID')).regex(/^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/)).default(
    [],
  ),
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
