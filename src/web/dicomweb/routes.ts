/**
 * The DICOMweb service (PS3.18) under /dicom-web: one line per resource family. Each module
 * registers its routes with their `config.operation` (web/policy.ts) and a params schema.
 */
import type { FastifyInstance } from 'fastify';
import type { DicomwebContext } from './context.js';
import { registerRetrieve } from './retrieve.js';
import { registerWadoUri } from './wado-uri.js';

export type { DicomwebContext } from './context.js';

export async function registerDicomweb(
  app: FastifyInstance,
  options: { readonly context: DicomwebContext },
): Promise<void> {
  const context = options.context;
  await registerRetrieve(app, context);
  await registerWadoUri(app, context);
}
