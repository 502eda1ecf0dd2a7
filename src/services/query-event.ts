/**
 * The 'query' event (core/events.ts, ARCHITECTURE.md decision 9) of the query services: C-FIND
 * of Query/Retrieve, the worklist and (later) QIDO-RS emit it once per query they ran.
 */
import type { DataSet } from '../dicom/dataset.js';
import { encodeDataSet } from '../dicom/writer.js';
import type { RequestContext } from '../network/service.js';

/** The 'query' event (core/events.ts), once per query that was run against the index. */
export function emitQuery(
  ctx: RequestContext,
  service: 'C-FIND' | 'worklist' | 'QIDO-RS',
  level: string,
  matches: number,
  started: number,
  identifier?: DataSet,
  user?: string,
): void {
  if (ctx.events?.active !== true) return;
  ctx.events.emit({
    type: 'query',
    service,
    level,
    matches,
    durationMs: performance.now() - started,
    source: ctx.peerAeTitle,
    remoteAddress: ctx.remoteAddress,
    sopClassUid: ctx.abstractSyntax,
    transferSyntaxUid: ctx.transferSyntax,
    // The identifier as asked, in the context's transfer syntax (PS3.15 A.5.3.10 ParticipantObjectQuery).
    ...withQuery(identifier, ctx.transferSyntax),
    ...(user !== undefined ? { user } : {}),
  });
}

function withQuery(identifier: DataSet | undefined, transferSyntaxUid: string): { query?: Uint8Array } {
  if (identifier === undefined) return {};
  try {
    return { query: encodeDataSet(identifier, transferSyntaxUid) };
  } catch {
    // A deflated or otherwise unwritable syntax: the event goes without the query's bytes.
    return {};
  }
}
