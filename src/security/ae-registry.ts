/**
 * The AE registry's port (issue 14): the DICOM nodes the archive knows, what each may ask for, where
 * it listens (C-MOVE destinations) and how its associations are bound (address, TLS certificate
 * subject). archive/security/ae-registry.ts keeps it in the index (and in memory for tests); the
 * config file's `server.dicom.aes` and the `peers` (`--peer`) are merged over it (config wins).
 */
import type { AePermission } from './permissions.js';

export interface AeEntry {
  /** Trimmed, 1..16 characters of ISO 646 without backslash (PS3.5 VR AE). */
  readonly aeTitle: string;
  /** Where it listens (C-MOVE sends there); also the address its associations must come from with bindAddress. */
  readonly host?: string;
  readonly port?: number;
  readonly permissions: readonly AePermission[];
  /**
   * The C-MOVE destinations it may name: 'any' known AE, or these titles. Unset: itself only
   * (a workstation retrieves to itself; anything more is said explicitly).
   */
  readonly moveDestinations?: 'any' | readonly string[];
  /**
   * Its associations must present a TLS client certificate (verified against server.tls.ca) with
   * this subject: `CN=name` or a full `CN=name,O=org` (components in any order), or a bare CN.
   */
  readonly tlsSubject?: string;
  /** Its associations must come from `host` (its address, or an address the name resolves to). */
  readonly bindAddress: boolean;
  /** Connect with TLS when it is a C-MOVE destination. */
  readonly tls?: boolean;
  readonly description?: string;
}

/** Where an entry comes from: the index (`pacs ae add`) or the config file (read only). */
export type AeSource = 'index' | 'config';

export interface AeRegistry {
  get(aeTitle: string): Promise<AeEntry | undefined>;
  /** Every entry, by AE title. */
  list(): Promise<AeEntry[]>;
  /** Adds or replaces the entry of its AE title. */
  put(entry: AeEntry): Promise<void>;
  /** False when there was no such AE. */
  remove(aeTitle: string): Promise<boolean>;
}

/** The AE of a C-MOVE destination as the move service needs it. */
export function moveDestinationsOf(entry: AeEntry): 'any' | readonly string[] {
  return entry.moveDestinations ?? [entry.aeTitle];
}

/** `CN=a,O=b` (or a bare `a`, taken as the CN) as components; undefined for a malformed subject. */
export function parseSubject(text: string): Map<string, string> | undefined {
  const out = new Map<string, string>();
  if (!text.includes('=')) {
    const cn = text.trim();
    if (cn === '') return undefined;
    out.set('CN', cn);
    return out;
  }
  for (const part of text.split(/[,/]/)) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    if (eq < 1) return undefined;
    out.set(part.slice(0, eq).trim().toUpperCase(), part.slice(eq + 1).trim());
  }
  return out.size > 0 ? out : undefined;
}

/** True when every component the registry names is in the certificate's subject with that value. */
export function subjectMatches(expected: string, actual: Readonly<Record<string, string>>): boolean {
  const wanted = parseSubject(expected);
  if (wanted === undefined) return false;
  const have = new Map(Object.entries(actual).map(([k, v]) => [k.toUpperCase(), v]));
  for (const [k, v] of wanted) if (have.get(k) !== v) return false;
  return true;
}
