/**
 * Modality Worklist SCP (PS3.4 K.4, K.6: Modality Worklist Information Model - FIND). Each C-FIND
 * reads the index anew (items imported while the server runs are served at once): the store
 * narrows the items with SQL on its indexed columns, the matcher (dicom/matching) decides on each
 * candidate's data set, and every match is answered as soon as it is found (a pending response
 * per item, PS3.4 K.4.1.3.1), so memory does not grow with the number of matches. C-CANCEL stops
 * the search between two items (the dispatcher answers Cancel, FE00).
 */
import type { WorklistStore } from '../../archive/worklist/worklist-store.js';
import type { DataSet } from '../../dicom/dataset.js';
import { fromDicomJson } from '../../dicom/json.js';
import { compileQuery, type InvalidCondition } from '../../dicom/matching.js';
import { formatTag, type Tag } from '../../dicom/tag.js';
import { EXPLICIT_VR_BE, EXPLICIT_VR_LE, IMPLICIT_VR_LE } from '../../dicom/uid.js';
import { Status } from '../../network/dimse-status.js';
import type { DimseResponse, DimseService, RequestContext } from '../../network/service.js';
import { failure } from '../../network/service-error.js';
import { emitQuery } from '../query-event.js';
import {
  WORKLIST_FIND_SOP_CLASS,
  WORKLIST_MATCH_OPTIONS,
  worklistIdentifier,
  worklistResponse,
} from './model.js';

export interface WorklistServiceOptions {
  readonly worklist: WorklistStore;
}

export function worklistService(options: WorklistServiceOptions): DimseService {
  const { worklist } = options;
  return {
    name: 'worklist',
    sopClasses: [{ uid: WORKLIST_FIND_SOP_CLASS }],
    transferSyntaxes: [EXPLICIT_VR_LE, IMPLICIT_VR_LE, EXPLICIT_VR_BE],
    handlers: {
      'C-FIND': (ctx, identifier) => findWorklistItems(worklist, ctx, identifier),
    },
    health: async () => {
      try {
        return { ok: true, detail: `${await worklist.countItems()} worklist items` };
      } catch (e) {
        return { ok: false, detail: (e as Error).message };
      }
    },
  };
}

/** A key holding several items: C.2.2.2.6 allows one (wlmscpfs refuses them too). */
function sequencesWithSeveralItems(ds: DataSet, out: Tag[] = []): Tag[] {
  for (const e of ds) {
    if (!Array.isArray(e.value)) continue;
    if (e.value.length > 1) out.push(e.tag);
    for (const item of e.value) sequencesWithSeveralItems(item, out);
  }
  return out;
}

function identifierError(invalid: readonly InvalidCondition[], several: readonly Tag[]): DimseResponse {
  const first = invalid[0];
  const text =
    first !== undefined
      ? `${formatTag(first.tag)}: ${first.reason}`
      : `${formatTag(several[0] ?? 0)}: more than one item in a sequence key`;
  // PS3.4 K.4.1.1.4 (C.4.1.1.4): Identifier does not match SOP Class, as wlmscpfs answers.
  return failure(Status.IdentifierDoesNotMatchSopClass, text, {
    offendingElements: [...new Set([...invalid.map((c) => c.tag), ...several])],
  });
}

/** The C-FIND handler: pending responses, one per matching item, then (by the dispatcher) Success. */
export async function* findWorklistItems(
  worklist: WorklistStore,
  ctx: RequestContext,
  request: DataSet,
): AsyncIterable<DimseResponse> {
  const identifier = worklistIdentifier(request);
  const query = compileQuery(identifier, WORKLIST_MATCH_OPTIONS);
  const several = sequencesWithSeveralItems(request);
  if (query.problems.length > 0 || several.length > 0) {
    ctx.log.info({ peer: ctx.peerAeTitle }, 'worklist C-FIND refused: invalid identifier');
    yield identifierError(query.problems, several);
    return;
  }
  const started = performance.now();
  let candidates = 0;
  let matches = 0;
  try {
    for await (const item of worklist.candidates(query.conditions, { signal: ctx.signal })) {
      candidates++;
      const parsed = fromDicomJson(item.dataSet);
      if (!parsed.ok) {
        ctx.log.warn({ item: item.id, err: parsed.error }, 'worklist item does not parse: skipped');
        continue;
      }
      if (!query.matches(parsed.value)) continue;
      matches++;
      yield { status: Status.Pending, dataSet: worklistResponse(identifier, parsed.value) };
    }
    ctx.log.debug(
      { peer: ctx.peerAeTitle, candidates, matches, ms: Math.round(performance.now() - started) },
      'worklist C-FIND',
    );
  } finally {
    emitQuery(ctx, 'worklist', 'WORKLIST', matches, started, request);
  }
}
