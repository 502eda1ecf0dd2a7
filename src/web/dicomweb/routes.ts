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
import { renderInstance } from './render-service.js';
import { registerRendered } from './rendered.js';
import { registerRetrieve } from './retrieve.js';
import { registerStow } from './stow.js';
import { type RenderFn, registerWadoUri } from './wado-uri.js';

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
  await registerRetrieve(app, context);
  await registerWadoUri(app, context, { render: wadoUriRender(context) });
}

/** WADO-URI's image/jpeg and image/png answers, rendered as /rendered renders (render-service.ts). */
export function wadoUriRender(context: DicomwebContext): RenderFn {
  return async (r) => {
    const size =
      r.rows !== undefined || r.columns !== undefined
        ? { width: r.columns ?? r.rows ?? 0, height: r.rows ?? r.columns ?? 0 }
        : undefined;
    const image = await renderInstance(context, {
      study: r.instance.studyInstanceUid,
      series: r.instance.seriesInstanceUid,
      instance: r.instance.sopInstanceUid,
      frame: r.frameNumber ?? 1,
      accept: [{ type: r.mediaType, params: {}, q: 1 }],
      ...(r.imageQuality !== undefined ? { quality: r.imageQuality } : {}),
      ...(r.windowCenter !== undefined && r.windowWidth !== undefined
        ? { window: { center: r.windowCenter, width: r.windowWidth, function: 'LINEAR' as const } }
        : {}),
      ...(size !== undefined ? { viewport: size } : {}),
      ...(r.region !== undefined
        ? { region: { left: r.region[0], top: r.region[1], right: r.region[2], bottom: r.region[3] } }
        : {}),
    });
    return { contentType: image.contentType, body: image.body };
  };
}
