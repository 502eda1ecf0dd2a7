/**
 * The 'query' event (core/events.ts, ARCHITECTURE.md decision 9) of the query services: C-FIND
 * of Query/Retrieve, the worklist and (later) QIDO-RS emit it once per query they ran.
 */
import type { RequestContext } from '../network/service.js';

/** The 'query' event (core/events.ts), once per query that was run against the index. */
export function emitQuery(
  ctx: RequestContext,
  service: 'C-FIND' | 'worklist' | 'QIDO-RS',
  level: string,
  matches: number,
  started: number,
): void {
  if (ctx.events?.active !== true) return;
  ctx.events.emit({
    type: 'query',
    service,
    level,
    matches,
    durationMs: performance.now() - started,
    source: ctx.peerAeTitle,
  });
}
