/**
 * The identity service of a server process (issue 14): on the identity store of its index, with
 * the config's session limits, and the OpenID provider's verifier when `security.oidc` is set.
 * One per process, given to every way in, so that failed-attempt counts are shared.
 */
import type { Archive } from '../archive/archive.js';
import { identityServiceFor } from '../archive/security/open.js';
import type { EventBus } from '../core/events.js';
import type { Logger } from '../core/logger.js';
import type { IdentityService } from '../security/authentication.js';
import { createOidcVerifier } from '../security/oidc.js';
import type { Config } from './config.js';

export function serverIdentity(
  config: Config,
  archive: Archive,
  logger: Logger,
  events: EventBus | undefined,
): IdentityService {
  const oidc = config.security.oidc;
  return identityServiceFor(archive.index, config.identity, {
    logger,
    ...(events !== undefined ? { events } : {}),
    ...(oidc !== undefined ? { jwt: createOidcVerifier({ settings: oidc }) } : {}),
  });
}
