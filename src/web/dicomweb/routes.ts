/**
 * The DICOMweb service (PS3.18) under /dicom-web: one line per resource family. Each module
 * registers its routes with their `config.operation` (web/policy.ts) and a params schema.
 */
import type { FastifyInstance } from 'fastify';
import type { RegisteredRoute } from '../route-table.js';
import { registerCapabilities } from './capabilities.js';
import type { DicomwebContext } from './context.js';
import { registerMetadata } from './metadata.js';
import { registerQido } from './qido.js';
import { registerRendered } from './rendered.js';
import { registerStow } from './stow.js';

export type { DicomwebContext } from './context.js';

export async function registerDicomweb(
  app: FastifyInstance,
  options: { readonly context: DicomwebContext; readonly routes: () => readonly RegisteredRoute[] },
): Promise<void> {
  const context = options.context;
  registerCapabilities(app, context, options.routes);
  await registerMetadata(app, context);
  await registerStow(app, context);
  registerQido(app, context);
  await registerRendered(app, context);
}
