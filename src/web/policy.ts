/**
 * The HTTP side of the one authorization question (ARCHITECTURE.md decision 10; the decision
 * itself is security/policy.ts): every route declares the operation it performs
 * (`config.operation`), and one hook in app.ts asks the policy "may this identity do this
 * operation on this resource?" before anything else runs, before a body is read. A route
 * registered without an operation makes the app fail to build (app.ts, onRoute), so no route can
 * skip the check.
 *
 * OPEN_POLICY (anyone may do anything) is named for what it is, never implied by an empty list;
 * it is for tests of the routes themselves. The server uses SECURITY_POLICY.
 */
import type { Identity } from '../security/identity.js';
import { type DimseOperation, OPERATION_NAMES, type Operation } from '../security/operations.js';
import {
  type AccessDecision,
  type AccessRequest,
  type AccessResource,
  authorize,
} from '../security/policy.js';

/** What a route does, as the policy sees it: every operation that is not a DIMSE one. */
export type WebOperation = Exclude<Operation, DimseOperation>;

export const WEB_OPERATIONS: readonly WebOperation[] = OPERATION_NAMES.filter(
  (o): o is WebOperation => !o.startsWith('dimse:'),
);

/** Who asks, on the HTTP side. */
export type WebIdentity = Identity;
/** What the operation is about: the UIDs of the route's path, when it names any. */
export type WebResource = AccessResource;

export type { AccessDecision, AccessRequest };

export interface AccessPolicy {
  /** A short name for logs ("open", "rbac"...). */
  readonly name: string;
  authorize(request: AccessRequest): AccessDecision | Promise<AccessDecision>;
}

/** security/policy.ts's decision. */
export const SECURITY_POLICY: AccessPolicy = { name: 'rbac', authorize };

/** No authentication, every operation allowed: for tests of routes, never a server's default once security lands. */
export const OPEN_POLICY: AccessPolicy = {
  name: 'open',
  authorize: () => ({ allowed: true }),
};
