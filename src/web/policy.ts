/**
 * The one authorization question of the HTTP side (ARCHITECTURE.md decision 10): every route
 * declares the operation it performs (`config.operation`), and one hook in app.ts asks the
 * policy "may this identity do this operation on this resource?" before anything else runs,
 * before a body is read. A route registered without an operation makes the app fail to build
 * (app.ts, onRoute), so no route can skip the check.
 *
 * Until the security issue lands there is no authentication: the server is started with
 * OPEN_POLICY, which is named for what it is (anyone may do anything), never implied by an empty
 * list. The security layer supplies a real AccessPolicy through the same interface.
 */

/** What a route does, as the policy sees it. */
export type WebOperation =
  /** QIDO-RS searches. */
  | 'dicomweb:search'
  /** WADO-RS, WADO-URI: objects, metadata, bulk data, frames, rendered images. */
  | 'dicomweb:retrieve'
  /** STOW-RS. */
  | 'dicomweb:store'
  /** The Capabilities document (OPTIONS). */
  | 'dicomweb:capabilities'
  /** /healthz. */
  | 'system:health'
  /** /metrics. */
  | 'system:metrics';

export const WEB_OPERATIONS: readonly WebOperation[] = [
  'dicomweb:search',
  'dicomweb:retrieve',
  'dicomweb:store',
  'dicomweb:capabilities',
  'system:health',
  'system:metrics',
];

/** Who asks: anonymous until authentication exists. */
export interface WebIdentity {
  readonly kind: 'anonymous' | 'user';
  readonly name: string | null;
  readonly remoteAddress: string | undefined;
}

/** What the operation is about: the UIDs of the route's path, when it names any. */
export interface WebResource {
  readonly studyInstanceUid?: string;
  readonly seriesInstanceUid?: string;
  readonly sopInstanceUid?: string;
}

export interface AccessRequest {
  readonly identity: WebIdentity;
  readonly operation: WebOperation;
  readonly resource: WebResource;
}

export type AccessDecision =
  | { readonly allowed: true }
  | {
      readonly allowed: false;
      /** 401 when the identity is anonymous and should authenticate, 403 when it may not. */
      readonly status: 401 | 403;
      readonly reason: string;
    };

export interface AccessPolicy {
  /** A short name for logs ("open", "rbac"...). */
  readonly name: string;
  authorize(request: AccessRequest): AccessDecision | Promise<AccessDecision>;
}

/** No authentication, every operation allowed: the stated default until the security issue lands. */
export const OPEN_POLICY: AccessPolicy = {
  name: 'open',
  authorize: () => ({ allowed: true }),
};
