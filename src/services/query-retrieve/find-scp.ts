/**
 * C-FIND SCP of the Query/Retrieve service (PS3.4 C.4.1) for the Patient Root, Study Root and
 * Patient/Study Only information models. Answers come from the index only (ARCHITECTURE.md
 * decision 5, src/archive/index/query.ts), streamed as they are read.
 *
 * Statuses (PS3.4 C.4.1.1.4), each failure a ServiceError response (network/service-error.ts; the
 * DIMSE encoder cuts its Error Comment to 64 characters):
 *   0xA900 Identifier does not match SOP Class: no Query/Retrieve Level, a level the model does not
 *          have, or in a hierarchical query a unique key above the level missing or not a single
 *          value (as dcm4che answers all three, and dcmqrscp the first and the last); the Offending
 *          Element names the attribute.
 *   0xC000 Unable to process: a key value that cannot be matched as its VR says (a malformed date
 *          range...), with the attribute as Offending Element.
 *   0xA700 Refused, out of resources: more matches than `maxResults`. The matches are counted
 *          first and nothing is sent: an SCU never gets a silently truncated answer (dcm4chee's
 *          QueryMaxNumberOfResults does the same). Not checked when the query names entities of its
 *          level by their unique key.
 *   0xC001 Unable to process: the index failed while answering.
 *   0xFF00 Pending for each match, 0xFF01 when the Identifier has keys of levels below the query
 *          level (optional keys the entity does not have: neither matched nor filled).
 *   0xFE00 after C-CANCEL, 0x0000 at the end.
 */
import type { ArchiveIndex } from '../../archive/index/archive-index.js';
import { encodedPlan, planQuery, type QueryLevel, type QueryOptions } from '../../archive/index/query.js';
import type { Logger } from '../../core/logger.js';
import { DataSet } from '../../dicom/dataset.js';
import { keywordOf, TAG } from '../../dicom/dictionary.js';
import { type MatchCondition, parseCondition, valuesOf } from '../../dicom/matching.js';
import { formatTag, type Tag } from '../../dicom/tag.js';
import { EXPLICIT_VR_LE, IMPLICIT_VR_LE, UNCOMPRESSED_TRANSFER_SYNTAXES } from '../../dicom/uid.js';
import { DimseAssociation } from '../../network/dimse.js';
import { Status } from '../../network/dimse-status.js';
import type { DimseResponse, DimseService, RequestContext } from '../../network/service.js';
import { failure } from '../../network/service-error.js';
import { emitQuery } from '../query-event.js';
import {
  type FindExtendedNegotiation,
  INFORMATION_MODELS,
  type InformationModel,
  levelsAbove,
  modelOfSopClass,
  NO_FIND_EXTENDED_NEGOTIATION,
  parseFindExtendedNegotiation,
  parseLevel,
  UNIQUE_KEY,
} from './models.js';

export interface FindServiceOptions {
  /** Where the answers come from: an Archive, or any object with its index. */
  readonly archive: { readonly index: ArchiveIndex };
  /** The information models served (default all three). */
  readonly models?: readonly InformationModel[];
  /**
   * Match Person Name keys ignoring case (default true, as dcm4chee and Orthanc do; PS3.4
   * C.2.2.2.1 leaves it to the SCP). Off: "DOE^JOHN" does not find "Doe^John".
   */
  readonly caseInsensitivePN?: boolean;
  /** Matches beyond which a query is refused with 0xA700 (default 0: no limit). */
  readonly maxResults?: number;
  /** Agree to relational queries when an SCU asks (SOP class extended negotiation; default true). */
  readonly relationalQueries?: boolean;
  /** Agree to combined date-time range matching when an SCU asks (default true). */
  readonly combinedDateTime?: boolean;
  /** Retrieve AE Title (0008,0054) in answers that ask for it; default the called AE title. */
  readonly retrieveAeTitle?: string;
  readonly logger?: Logger;
}

function attributeName(tag: Tag): string {
  return keywordOf(tag) || formatTag(tag);
}

/** What SOP class extended negotiation agreed for this association and SOP class (none: all false). */
export function negotiatedFindOptions(ctx: RequestContext): FindExtendedNegotiation {
  const sender = ctx.association;
  if (!(sender instanceof DimseAssociation)) return NO_FIND_EXTENDED_NEGOTIATION;
  const a = sender.association;
  // The A-ASSOCIATE-AC holds what was agreed (our answer on an acceptor, the peer's on a requestor).
  const items = a.ac.userInformation.sopClassExtendedNegotiations ?? [];
  const item = items.find((e) => e.sopClassUid === ctx.abstractSyntax);
  return parseFindExtendedNegotiation(item?.applicationInformation);
}

function isSingleValue(c: MatchCondition): boolean {
  return c.kind === 'single';
}

/** The level of a valid Identifier, or the failure to answer (PS3.4 C.4.1.2.1, C.4.1.3.1). */
export function checkIdentifier(
  model: InformationModel,
  identifier: DataSet,
  relational: boolean,
):
  | { readonly ok: true; readonly level: QueryLevel }
  | { readonly ok: false; readonly response: DimseResponse } {
  const levelText = identifier.has(TAG.QueryRetrieveLevel)
    ? (valuesOf(identifier, TAG.QueryRetrieveLevel)[0] ?? '')
    : undefined;
  if (levelText === undefined || levelText === '')
    return {
      ok: false,
      response: failure(
        Status.IdentifierDoesNotMatchSopClass,
        'Query/Retrieve Level (0008,0052) is missing',
        { offendingElements: [TAG.QueryRetrieveLevel] },
      ),
    };
  const level = parseLevel(levelText);
  if (level === undefined || !model.levels.includes(level))
    return {
      ok: false,
      response: failure(
        Status.IdentifierDoesNotMatchSopClass,
        `no level ${JSON.stringify(levelText)} in ${model.title}: ${model.levels.join(', ')}`,
        { offendingElements: [TAG.QueryRetrieveLevel] },
      ),
    };
  if (!relational) {
    // Hierarchical: each level above is named by a single value of its unique key (C.4.1.3.1.1).
    for (const above of levelsAbove(model, level)) {
      const tag = above.uniqueKey;
      const e = identifier.get(tag);
      const c = e === undefined ? undefined : parseCondition(tag, e.vr, valuesOf(identifier, tag));
      if (c === undefined || !isSingleValue(c))
        return {
          ok: false,
          response: failure(
            Status.IdentifierDoesNotMatchSopClass,
            `${level} query needs one ${attributeName(tag)} ${formatTag(tag)}`,
            { offendingElements: [tag] },
          ),
        };
    }
  }
  return { ok: true, level };
}

/** True when the query names entities of its level by their unique key (single value or UID list). */
function namesEntities(identifier: DataSet, level: QueryLevel): boolean {
  const tag = UNIQUE_KEY[level];
  const e = identifier.get(tag);
  if (e === undefined) return false;
  const c = parseCondition(tag, e.vr, valuesOf(identifier, tag));
  return c.kind === 'single' || c.kind === 'list';
}

/** A STUDY-level identifier with the usual return keys and `keys` (keyword: value) for the warm-up. */
function warmUpIdentifier(keys: Readonly<Record<string, string>>): DataSet {
  const ds = new DataSet();
  ds.setString(TAG.QueryRetrieveLevel, 'STUDY');
  for (const tag of [
    TAG.PatientName,
    TAG.PatientID,
    TAG.StudyDate,
    TAG.StudyInstanceUID,
    TAG.ModalitiesInStudy,
  ])
    ds.setString(tag, '');
  for (const [keyword, value] of Object.entries(keys)) ds.setString(TAG[keyword as keyof typeof TAG], value);
  return ds;
}

const WARM_UP_KEYS: readonly Readonly<Record<string, string>>[] = [
  { PatientID: 'WARM-UP-NO-MATCH' },
  { PatientName: 'WARM^UP*' },
  { StudyDate: '19000101-19000102' },
];

let codeWarmed = false;

/**
 * The first queries after a start were the slowest: V8 compiles each function of the query path
 * (planning, matching, the JSON view, the encoder) when it first runs, and the dictionary and
 * transfer syntax tables are built on first use. This runs that path once per process, on a
 * synthetic entity, without I/O.
 */
function warmUpCode(): void {
  if (codeWarmed) return;
  codeWarmed = true;
  const header = JSON.stringify({
    '00100010': { vr: 'PN', Value: [{ Alphabetic: 'WARM^UP' }] },
    '00100020': { vr: 'LO', Value: ['warm-up'] },
  });
  const study = JSON.stringify({
    '00080020': { vr: 'DA', Value: ['19000101'] },
    '0020000D': { vr: 'UI', Value: ['1.2.3'] },
  });
  for (const keys of WARM_UP_KEYS) {
    const plan = planQuery('STUDY', warmUpIdentifier(keys));
    for (const ts of [EXPLICIT_VR_LE, IMPLICIT_VR_LE])
      encodedPlan(plan, ts).answer({ headers: [header, study], modalitiesInStudy: 'CT' });
  }
}

/** The same queries against the index, which prepares its statements and reads its first pages. */
async function warmUpIndex(index: ArchiveIndex): Promise<void> {
  for (const keys of WARM_UP_KEYS)
    for await (const _ of index.find(
      encodedPlan(planQuery('STUDY', warmUpIdentifier(keys)), EXPLICIT_VR_LE),
    )) {
      // Nothing matches; reading is the point.
    }
}

/** The C-FIND SCP for the Query/Retrieve information models. */
export function findService(options: FindServiceOptions): DimseService {
  warmUpCode();
  const models = options.models ?? INFORMATION_MODELS;
  const findClasses = new Set(models.map((m) => m.sopClasses.find));
  const allowRelational = options.relationalQueries ?? true;
  const allowCombined = options.combinedDateTime ?? true;
  return {
    name: 'query-retrieve-find',
    sopClasses: models.map((m) => ({ uid: m.sopClasses.find })),
    transferSyntaxes: UNCOMPRESSED_TRANSFER_SYNTAXES,
    handlers: {
      'C-FIND': (ctx, identifier) => answerFind(options, ctx, identifier),
    },
    // PS3.4 C.5.1.1: the reply has the request's length; each option we do not support is 0.
    extendedNegotiation: (sopClassUid, requested) => {
      if (!findClasses.has(sopClassUid)) return undefined;
      const asked = parseFindExtendedNegotiation(requested);
      const reply = new Uint8Array(Math.min(requested.length, 5));
      if (reply.length === 0) return undefined;
      if (asked.relationalQueries && allowRelational) reply[0] = 1;
      if (reply.length > 1 && asked.combinedDateTime && allowCombined) reply[1] = 1;
      return reply;
    },
    start: async () => {
      try {
        await warmUpIndex(options.archive.index);
      } catch (e) {
        // A warm-up is an optimisation: the first real query reports what is wrong.
        options.logger?.warn({ err: e }, 'C-FIND warm-up failed');
      }
    },
    health: async () => ({ ok: true }),
  };
}

async function* answerFind(
  options: FindServiceOptions,
  ctx: RequestContext,
  identifier: DataSet,
): AsyncGenerator<DimseResponse, void, undefined> {
  const found = modelOfSopClass(ctx.abstractSyntax);
  if (found === undefined || found.operation !== 'find') {
    yield failure(Status.SopClassNotSupported, `${ctx.abstractSyntax} is not a C-FIND SOP Class`);
    return;
  }
  const { model } = found;
  const agreed = negotiatedFindOptions(ctx);
  const relational = agreed.relationalQueries && (options.relationalQueries ?? true);
  const checked = checkIdentifier(model, identifier, relational);
  if (!checked.ok) {
    ctx.log.info(
      { peer: ctx.peerAeTitle, status: checked.response.status },
      checked.response.errorComment ?? '',
    );
    yield checked.response;
    return;
  }
  const level = checked.level;
  const queryOptions: QueryOptions = {
    caseInsensitivePN: options.caseInsensitivePN ?? true,
    combinedDateTime: agreed.combinedDateTime && (options.combinedDateTime ?? true),
    retrieveAeTitle: options.retrieveAeTitle ?? ctx.localAeTitle,
  };
  const plan = planQuery(level, identifier, queryOptions);
  const problem = plan.compiled.problems[0];
  if (problem !== undefined) {
    yield failure(Status.CannotUnderstand, `${attributeName(problem.tag)}: ${problem.reason}`, {
      offendingElements: [problem.tag],
    });
    return;
  }
  const index = options.archive.index;
  const started = performance.now();
  const limit = options.maxResults ?? 0;
  let matches = 0;
  try {
    if (limit > 0 && !namesEntities(identifier, level)) {
      const n = await index.countMatches(plan, limit + 1);
      if (n > limit) {
        ctx.log.info({ peer: ctx.peerAeTitle, level, limit }, 'C-FIND refused: too many matches');
        yield failure(Status.OutOfResources, `more than ${limit} matches: narrow the query`);
        return;
      }
    }
    const pending = plan.unsupportedKeys.length > 0 ? Status.PendingWarning : Status.Pending;
    // Answers as bytes in the context's syntax, straight from the stored JSON where that is exact.
    for await (const answer of index.find(encodedPlan(plan, ctx.transferSyntax), ctx.signal)) {
      matches++;
      yield { status: pending, dataSet: answer };
    }
    if (ctx.signal.aborted) {
      yield { status: Status.Cancel };
      return;
    }
    ctx.log.debug(
      {
        peer: ctx.peerAeTitle,
        model: model.name,
        level,
        matches,
        ms: Math.round(performance.now() - started),
      },
      'C-FIND',
    );
  } catch (e) {
    const detail = e instanceof Error ? e.message : String(e);
    (options.logger ?? ctx.log).error({ err: e, peer: ctx.peerAeTitle, level }, 'C-FIND failed');
    yield failure(Status.UnableToProcess, `index failure: ${detail}`, { cause: e });
  } finally {
    emitQuery(ctx, 'C-FIND', level, matches, started, identifier);
  }
}
