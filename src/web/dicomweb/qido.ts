/**
 * QIDO-RS (PS3.18 10.6): searches for studies, series and instances, answered from the archive's
 * index only (ARCHITECTURE.md decision 5), with the C-FIND matching engine (archive/index/query.ts,
 * dicom/matching). The query is parsed by qido-params.ts (its module comment states the rules:
 * percent-decoding, `+`, UID lists, sequence keys, unknown parameters, keys of lower levels),
 * each answer built from the stored DICOM JSON by qido-answer.ts.
 *
 * Decisions:
 * - Order: `orderby` (attributes with an index column, `-` for descending) or the default order,
 *   most recent first: studies by Study Date then Study Time, descending, then the newest indexed;
 *   series by Series Number; instances by Instance Number (absent values last). Sorting and paging
 *   are SQL (ORDER BY ... LIMIT/OFFSET), on SQLite and PostgreSQL alike.
 * - At most QIDO_MAX_RESULTS (1000) answers per request. When that maximum cut the answer (no
 *   limit, or a larger one, and more matches exist), the answer carries `Warning: 299 {host}: "The
 *   number of results exceeded the maximum supported by the server. Additional results can be
 *   requested."` (PS3.18 8.3.4.4, 10.6.3.2); a client's own limit is not a cut and has no Warning.
 * - No match: 200 with `[]` (JSON), or a multipart body with no part (XML), as Orthanc answers; a
 *   viewer then needs no special case for 204. A path naming a study or series the index does not
 *   have is a search without matches too (200 `[]`), not a 404.
 * - Media types: `application/dicom+json` (default, also for `*\/*`; Content-Type
 *   `application/json` when only that is accepted) and `multipart/related;
 *   type="application/dicom+xml"` (one PS3.19 Native DICOM Model part per answer); other Accept 406.
 * - Answers stream: the first page is read before the status line (an index failure is a 500 JSON
 *   error, not a cut body), then each answer is written as it is built, the index read in pages as
 *   the client takes them (backpressure), and a client that goes away stops the reading.
 * - One 'query' event (core/events.ts, service 'QIDO-RS') per search, when its answer ends.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { mappedPlan, planQuery, type QueryPage } from '../../archive/index/query.js';
import { keywordOf } from '../../dicom/dictionary.js';
import { formatTag } from '../../dicom/tag.js';
import { dicomJsonToXml } from '../../dicom/xml.js';
import { identityName } from '../../security/identity.js';
import { httpError } from '../errors.js';
import { acceptOf, rangeMatches } from '../media-type.js';
import { type DicomwebContext, serviceUrl } from './context.js';
import { paramsSchema } from './params.js';
import { type AnswerContext, type AnswerEntries, answerEntries, answerJson } from './qido-answer.js';
import { parseQidoSearch, QIDO_MAX_RESULTS, type QidoScope, queryPairs } from './qido-params.js';

type Format = { readonly kind: 'json'; readonly contentType: string } | { readonly kind: 'xml' };

/**
 * The answer's media type from Accept (or the `accept` query parameter, read as qido-params.ts
 * reads the query: `accept=application/dicom+json` keeps its `+`), or 406.
 */
function negotiate(request: FastifyRequest): Format {
  const accept = queryPairs(request.url)
    .filter(([name]) => name.toLowerCase() === 'accept')
    .map(([, value]) => value);
  const ranges = acceptOf(request.headers, accept.length > 0 ? { accept } : undefined);
  for (const r of ranges) {
    if (r.type === 'multipart/related') {
      const type = r.params['type']?.toLowerCase();
      if (type === undefined || type === 'application/dicom+xml') return { kind: 'xml' };
      continue;
    }
    if (r.type === 'application/json') return { kind: 'json', contentType: 'application/json' };
    if (rangeMatches(r, 'application/dicom+json'))
      return { kind: 'json', contentType: 'application/dicom+json' };
  }
  throw httpError(
    406,
    'ERR_HTTP_NOT_ACCEPTABLE',
    'QIDO-RS answers application/dicom+json or multipart/related; type="application/dicom+xml"',
  );
}

const SERVER_MAX_WARNING =
  'The number of results exceeded the maximum supported by the server. Additional results can be requested.';

/** Writes are gathered to about this many characters. */
const CHUNK = 16 * 1024;

async function search(
  context: DicomwebContext,
  scope: QidoScope,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const started = performance.now();
  const query = parseQidoSearch(scope, request.url);
  const format = negotiate(request);
  const plan = planQuery(scope.level, query.identifier, {
    caseInsensitivePN: true,
    ...(query.fuzzy ? { fuzzyPN: true } : {}),
    retrieveAeTitle: context.aeTitle,
  });
  const problem = plan.compiled.problems[0];
  if (problem !== undefined)
    throw httpError(
      400,
      'ERR_HTTP_BAD_QUERY',
      `${keywordOf(problem.tag) || formatTag(problem.tag)}: ${problem.reason}`,
    );
  const answerContext: AnswerContext = {
    level: scope.level,
    baseUrl: serviceUrl(context, request),
    aeTitle: context.aeTitle,
    returnTags: query.returnTags,
    all: query.all,
  };
  const mapped = mappedPlan<AnswerEntries>(plan, (m) => answerEntries(m, answerContext), {
    response: plan.compiled.hasSequenceConditions && !query.all,
  });
  const index = context.archive.index;
  const page: QueryPage = { orderBy: query.orderBy, offset: query.offset, limit: query.limit };

  // The server's maximum cut the answer only when the client did not ask for fewer.
  if (query.requestedLimit === undefined || query.requestedLimit > QIDO_MAX_RESULTS) {
    const atMost = query.offset + QIDO_MAX_RESULTS + 1;
    if ((await index.countMatches(plan, atMost)) >= atMost)
      reply.header('warning', `299 ${request.host}: "${SERVER_MAX_WARNING}"`);
  }

  const abort = new AbortController();
  let matches = 0;
  let emitted = false;
  const emit = () => {
    if (emitted) return;
    emitted = true;
    if (context.events?.active === true)
      context.events.emit({
        type: 'query',
        service: 'QIDO-RS',
        level: scope.level,
        matches,
        durationMs: performance.now() - started,
        source: request.ip,
        remoteAddress: request.ip,
        user: identityName(request.identity),
        query: request.url.slice(request.url.indexOf('?') + 1 || request.url.length),
      });
  };
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) abort.abort();
    emit();
  });

  const answers = index.search(mapped, page, abort.signal)[Symbol.asyncIterator]();
  // The first answer before the status line: a failing index is an error answer, not a cut body.
  const first = await answers.next();
  const boundary = randomBytes(16).toString('hex');
  const piece =
    format.kind === 'json'
      ? (entries: AnswerEntries) => (matches === 1 ? '' : ',') + answerJson(entries)
      : (entries: AnswerEntries) =>
          `--${boundary}\r\nContent-Type: application/dicom+xml\r\n\r\n${dicomJsonToXml(entries)}\r\n`;
  async function* body(): AsyncGenerator<string, void, undefined> {
    let buffer = format.kind === 'json' ? '[' : '';
    try {
      let next = first;
      while (next.done !== true) {
        matches++;
        buffer += piece(next.value);
        if (buffer.length >= CHUNK) {
          yield buffer;
          buffer = '';
        }
        next = await answers.next();
      }
      buffer += format.kind === 'json' ? ']' : `--${boundary}--\r\n`;
      yield buffer;
    } finally {
      await answers.return?.();
    }
  }
  const contentType =
    format.kind === 'json'
      ? format.contentType
      : `multipart/related; type="application/dicom+xml"; boundary=${boundary}`;
  return reply
    .code(200)
    .header('content-type', contentType)
    .send(Readable.from(body(), { objectMode: false }));
}

/** The search resources of PS3.18 10.6.1.1, with the level they search and the UIDs that scope them. */
const RESOURCES: ReadonlyArray<readonly [string, QidoScope['level'], ReadonlyArray<'study' | 'series'>]> = [
  ['/studies', 'STUDY', []],
  ['/series', 'SERIES', []],
  ['/instances', 'IMAGE', []],
  ['/studies/:study/series', 'SERIES', ['study']],
  ['/studies/:study/instances', 'IMAGE', ['study']],
  ['/studies/:study/series/:series/instances', 'IMAGE', ['study', 'series']],
];

/** Registers the QIDO-RS routes (operation 'dicomweb:search') on the DICOMweb plugin. */
export function registerQido(app: FastifyInstance, context: DicomwebContext): void {
  for (const [url, level, names] of RESOURCES) {
    app.route({
      method: 'GET',
      url,
      config: { operation: 'dicomweb:search' },
      ...(names.length > 0 ? { schema: { params: paramsSchema(...names) } } : {}),
      handler: (request, reply) => {
        const p = request.params as { study?: string; series?: string };
        const scope: QidoScope = {
          level,
          ...(p.study !== undefined ? { study: p.study } : {}),
          ...(p.series !== undefined ? { series: p.series } : {}),
        };
        return search(context, scope, request, reply);
      },
    });
  }
}
