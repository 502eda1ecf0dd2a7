/**
 * Password hashing (issue 14): scrypt (RFC 7914), memory-hard, from node:crypto. The stored
 * string names the algorithm and carries its parameters and salt, so the parameters can be raised
 * later and old hashes still verify (and can be rehashed on the next login):
 *
 *   $scrypt$ln=15,r=8,p=1$<salt, base64>$<hash, base64>
 *
 * Hashing runs on libuv's thread pool (crypto.scrypt, never scryptSync on a request path). A
 * comparison is constant time; verifyUnknownUser() spends the same work for a name that does not
 * exist, so the time of an answer does not tell who has an account.
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

export interface ScryptParameters {
  /** log2 of the CPU/memory cost N. */
  readonly ln: number;
  readonly r: number;
  readonly p: number;
}

/** N = 2^15, r = 8, p = 1: 32 MiB and some 50-100 ms per hash (OWASP's scrypt minimum is N=2^17 at r=8 with p=1 for 128 MiB; 2^15 keeps a login burst within memory). */
export const DEFAULT_SCRYPT: ScryptParameters = { ln: 15, r: 8, p: 1 };

const SALT_BYTES = 16;
const HASH_BYTES = 32;
/** Parameters a stored string may name; outside them it is refused, not computed (a forged row must not exhaust memory). */
const LIMITS = { ln: [10, 22], r: [1, 32], p: [1, 16] } as const;

/** Shortest password accepted (NIST SP 800-63B allows 8; a PACS holds patients' data). */
export const MIN_PASSWORD_LENGTH = 12;
/** Longest one: hashing is memory-hard, not length-hard, but a megabyte password is no password. */
export const MAX_PASSWORD_LENGTH = 1024;

/** Why a new password is refused, or undefined when it may be used. */
export function passwordProblem(password: string): string | undefined {
  if (password.length === 0) return 'the password is empty';
  const length = [...password].length;
  if (length < MIN_PASSWORD_LENGTH)
    return `the password is too short (${length} characters; at least ${MIN_PASSWORD_LENGTH})`;
  if (length > MAX_PASSWORD_LENGTH)
    return `the password is too long (at most ${MAX_PASSWORD_LENGTH} characters)`;
  if (new Set(password).size === 1) return 'the password repeats one character';
  return undefined;
}

/** A strong random password: 144 random bits as 24 URL-safe characters. */
export function generatePassword(): string {
  return randomBytes(18).toString('base64url');
}

function derive(password: string, salt: Buffer, params: ScryptParameters): Promise<Buffer> {
  const N = 2 ** params.ln;
  return new Promise((resolve, reject) => {
    // maxmem: scrypt needs 128 * N * r bytes; node's default (32 MiB) is exactly N=2^15, r=8.
    scrypt(
      password.normalize('NFC'),
      salt,
      HASH_BYTES,
      { N, r: params.r, p: params.p, maxmem: 256 * N * params.r + 1024 * 1024 },
      (e, key) => (e ? reject(e) : resolve(key)),
    );
  });
}

export async function hashPassword(
  password: string,
  params: ScryptParameters = DEFAULT_SCRYPT,
): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const hash = await derive(password, salt, params);
  return `$scrypt$ln=${params.ln},r=${params.r},p=${params.p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

export interface ParsedHash {
  readonly params: ScryptParameters;
  readonly salt: Buffer;
  readonly hash: Buffer;
}

/** The parts of a stored string, or undefined when it is not one this code can check. */
export function parsePasswordHash(encoded: string): ParsedHash | undefined {
  const m =
    /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/.exec(
      encoded,
    );
  if (m === null) return undefined;
  const params = { ln: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  for (const k of ['ln', 'r', 'p'] as const) {
    const [lo, hi] = LIMITS[k];
    if (params[k] < lo || params[k] > hi) return undefined;
  }
  const salt = Buffer.from(m[4] ?? '', 'base64');
  const hash = Buffer.from(m[5] ?? '', 'base64');
  if (salt.length < 8 || hash.length < 16) return undefined;
  return { params, salt, hash };
}

/** True when `password` is the one `encoded` was made from. A string that is not a hash of ours never matches. */
export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const parsed = parsePasswordHash(encoded);
  if (parsed === undefined) {
    // Spend the work anyway: a disabled-login row (no hash) must not answer faster.
    await verifyUnknownUser(password);
    return false;
  }
  const candidate = await derive(password, parsed.salt, parsed.params);
  return candidate.length === parsed.hash.length && timingSafeEqual(candidate, parsed.hash);
}

/** True when a hash was made with weaker parameters than `params` (rehash it at the next good login). */
export function needsRehash(encoded: string, params: ScryptParameters = DEFAULT_SCRYPT): boolean {
  const parsed = parsePasswordHash(encoded);
  if (parsed === undefined) return true;
  return parsed.params.ln < params.ln || parsed.params.r < params.r || parsed.params.p < params.p;
}

let dummy: Promise<string> | undefined;

/** The hash nobody's password matches, made once per process (call early: the first unknown name must not take twice as long). */
export function dummyHash(): Promise<string> {
  dummy ??= hashPassword(randomBytes(18).toString('base64url'));
  return dummy;
}

/** The work of one verification against a hash nobody's password matches: for a user name that does not exist. */
export async function verifyUnknownUser(password: string): Promise<false> {
  const parsed = parsePasswordHash(await dummyHash());
  if (parsed !== undefined) {
    const candidate = await derive(password, parsed.salt, parsed.params);
    timingSafeEqual(candidate, parsed.hash);
  }
  return false;
}

/** Hashing and checking, as the identity service uses them (tests may count the calls). */
export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(password: string, encoded: string): Promise<boolean>;
  /** The same work as verify() for a user that does not exist; always false. */
  verifyUnknown(password: string): Promise<false>;
  needsRehash(encoded: string): boolean;
  /** Makes what verifyUnknown() needs ahead of the first request. */
  prepare?(): Promise<void>;
}

export const scryptHasher: PasswordHasher = {
  hash: (password) => hashPassword(password),
  verify: verifyPassword,
  verifyUnknown: verifyUnknownUser,
  needsRehash: (encoded) => needsRehash(encoded),
  prepare: async () => {
    await dummyHash();
  },
};
