/**
 * The Query/Retrieve service's part of the config (`peers`): the remote AEs it knows, by AE title,
 * i.e. the C-MOVE destinations (PS3.4 C.4.2.1.4: a C-MOVE names its destination by AE title only,
 * so the SCP must know where each one listens). `pacs server --peer AET=HOST:PORT` fills it.
 */
import type { z } from 'zod';
import {
  addRule,
  aeTitle,
  boolean,
  type ConfigPart,
  formatPath,
  host,
  list,
  port,
  section,
  validate,
} from '../../core/config.js';
import { err, ok, type Result } from '../../core/result.js';

const peerSchema = section({
  aet: aeTitle,
  host,
  port,
  tls: boolean().default(false),
});

const peersSchema = list(peerSchema).superRefine((peers, ctx) => {
  const seen = new Map<string, number>();
  peers.forEach((peer, i) => {
    const first = seen.get(peer.aet);
    if (first === undefined) {
      seen.set(peer.aet, i);
      return;
    }
    const message = `duplicate AE title ${JSON.stringify(peer.aet)}, already used by ${formatPath([...ctx.path, first])}`;
    addRule(ctx, [i, 'aet'], message);
  });
});

/** `peers`: the known remote AEs (C-MOVE destinations). */
export const queryRetrieveConfig = { peers: peersSchema.default([]) } satisfies ConfigPart;

export type Peer = z.infer<typeof peerSchema>;

/** Parses a `--peer` value `AET=HOST:PORT` (IPv6 hosts in brackets: `AET=[::1]:104`). */
export function parsePeer(text: string): Result<Peer, string> {
  const quoted = JSON.stringify(text);
  // Host names never contain '=' or ':' (bracketed IPv6 aside), so the last ones split.
  const eq = text.lastIndexOf('=');
  const colon = text.lastIndexOf(':');
  const portText = text.slice(colon + 1);
  if (eq < 1 || colon < eq + 2 || portText.includes(']')) return err(`${quoted}: expected AET=HOST:PORT`);
  let hostText = text.slice(eq + 1, colon);
  if (hostText.startsWith('[') && hostText.endsWith(']')) hostText = hostText.slice(1, -1);
  const input = {
    aet: text.slice(0, eq),
    host: hostText,
    port: /^\d+$/.test(portText) ? Number(portText) : portText,
  };
  const parsed = validate(peerSchema, input);
  if (parsed.ok) return ok(parsed.value);
  return err(`${quoted}: ${parsed.error.join('; ')}`);
}
