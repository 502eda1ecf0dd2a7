/**
 * The identity part of the config (`identity`, issue 14): the first start's admin password file
 * and the browser sessions' limits (IdentityServiceOptions takes them in milliseconds).
 */
import type { z } from 'zod';
import { type ConfigPart, filePath, integer, section } from '../core/config.js';

const identitySchema = section({
  /** The password of the `admin` made at the first start (no user yet); unset: a random one, printed once. */
  adminPasswordFile: filePath.optional(),
  /** A browser session ends after this long without a request. */
  sessionIdleMinutes: integer(1, 24 * 60).default(30),
  /** ... and this long after the login, whatever happens. */
  sessionMaxHours: integer(1, 30 * 24).default(12),
});

export const identityConfig = { identity: identitySchema.default({}) } satisfies ConfigPart;

export type IdentityConfig = z.infer<typeof identitySchema>;

/** The session limits of IdentityServiceOptions from the config. */
export function sessionLimits(config: IdentityConfig): { sessionIdleMs: number; sessionAbsoluteMs: number } {
  return {
    sessionIdleMs: config.sessionIdleMinutes * 60_000,
    sessionAbsoluteMs: config.sessionMaxHours * 3600_000,
  };
}
