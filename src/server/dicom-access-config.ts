/**
 * `server.dicom`: DICOM access control (issue 14). `unknownAe` says what an AE the registry does not
 * know may do ('default': C-ECHO and C-STORE; 'reject': nothing, the association is rejected);
 * `aes` lists AEs in the config file, merged over the index's AE registry (`pacs ae add`), config
 * winning. The `peers` (`--peer AET=HOST:PORT`) are AEs of the registry too (server/dicom-access.ts).
 */
import { z } from 'zod';
import { aeTitle, boolean, expecting, host, list, nonEmpty, oneOf, port, section } from '../core/config.js';
import { AE_PERMISSIONS } from '../security/permissions.js';

const MOVE_EXPECTED = '"*" (any known AE) or a list of AE titles';

const aeEntrySchema = section({
  aeTitle,
  host: host.optional(),
  port: port.optional(),
  permissions: list(oneOf(AE_PERMISSIONS)),
  /** Unset: the AE itself only. */
  moveDestinations: z.union([z.literal('*'), list(aeTitle)], expecting(MOVE_EXPECTED)).optional(),
  tlsSubject: nonEmpty('a certificate subject such as "CN=modality1,O=Hospital"').optional(),
  bindAddress: boolean().default(false),
  tls: boolean().default(false),
  description: z.string().optional(),
});

export const dicomAccessSchema = section({
  unknownAe: oneOf(['default', 'reject'] as const).default('default'),
  aes: list(aeEntrySchema).default([]),
});

export type DicomAccessConfig = z.infer<typeof dicomAccessSchema>;
