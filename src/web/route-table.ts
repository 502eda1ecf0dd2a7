/**
 * The routes of a web app as the policy test and the Capabilities document see them: app.ts
 * records each route here as it is registered (with the operation it declares).
 */
import type { FastifyInstance } from 'fastify';
import type { WebOperation } from './policy.js';

/** A registered route. */
export interface RegisteredRoute {
  readonly method: string;
  /** The full path pattern (`/dicom-web/studies/:study`). */
  readonly url: string;
  readonly operation: WebOperation;
}

const ROUTES = new WeakMap<FastifyInstance, RegisteredRoute[]>();

/** The table app.ts fills for `app` (created on first use). */
export function routeTableOf(app: FastifyInstance): RegisteredRoute[] {
  let table = ROUTES.get(app);
  if (table === undefined) {
    table = [];
    ROUTES.set(app, table);
  }
  return table;
}

/** Every route of an app built by createWebApp, in registration order (HEAD twins included). */
export function registeredRoutes(app: FastifyInstance): readonly RegisteredRoute[] {
  return ROUTES.get(app) ?? [];
}
