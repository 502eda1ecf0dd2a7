/**
 * The path parameters of the DICOMweb routes. A UID in a path is checked before anything uses it
 * (PS3.5 9.1: digits and dots, at most 64 characters); it is only ever a value looked up in the
 * index, never part of a file name.
 */
import { httpError } from '../errors.js';

/** Lenient on leading zeros (objects in the field have them), strict on everything else. */
export const UID_PATTERN = '^[0-9]+(\\.[0-9]+)*$';
const UID_RE = new RegExp(UID_PATTERN);

/** The JSON schema of a UID path parameter (fastify validates it: 400 with the parameter's name). */
export const uidSchema = { type: 'string', pattern: UID_PATTERN, maxLength: 64 } as const;

/** A params schema for the named UID parameters: `paramsSchema('study', 'series')`. */
export function paramsSchema(...names: Array<'study' | 'series' | 'instance'>) {
  return {
    type: 'object',
    properties: Object.fromEntries(names.map((n) => [n, uidSchema])),
    required: names,
  } as const;
}

export interface UidParams {
  readonly study?: string;
  readonly series?: string;
  readonly instance?: string;
}

/** Checks a UID from anywhere but the path (a query parameter of WADO-URI, a STOW part). */
export function checkUid(value: unknown, name: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 64 || !UID_RE.test(value))
    throw httpError(400, 'ERR_HTTP_BAD_UID', `${name} is not a UID (digits and dots, at most 64 characters)`);
  return value;
}
