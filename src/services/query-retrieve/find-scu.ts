/**
 * C-FIND SCU (PS3.4 C.4.1, and K.4.1 for the worklist, which uses it): the contexts to propose,
 * the request as an async iterator of its matches, C-CANCEL, and the query keys of the command line
 * ("PatientName=DOE*", "0020,000D=1.2.3", "ReferencedSeriesSequence[0].SeriesInstanceUID=1.2"),
 * which `pacs find` and the retrieve commands share.
 */
import { PacsError, UsageError } from '../../core/errors.js';
import { err, ok, type Result } from '../../core/result.js';
import { DataSet, defaultVR } from '../../dicom/dataset.js';
import { lookupTag, parseTagOrKeyword, TAG } from '../../dicom/dictionary.js';
import type { Tag } from '../../dicom/tag.js';
import { describeUid, EXPLICIT_VR_LE, IMPLICIT_VR_LE } from '../../dicom/uid.js';
import { isBinaryNumberVR, isMultiValuedStringVR, isStringVR } from '../../dicom/vr.js';
import type { ProposedPresentationContext } from '../../network/association.js';
import type { DimseAssociation } from '../../network/dimse.js';
import { CommandField, Priority } from '../../network/dimse-command.js';
import { Status, statusCategory } from '../../network/dimse-status.js';
import type { ResponseMessage } from '../../network/service.js';
import { type InformationModel, PATIENT_ROOT, type QueryRetrieveLevel, STUDY_ROOT } from './models.js';

/** The presentation contexts of a C-FIND SCU for these models (default Study Root and Patient Root). */
export function findContexts(
  models: readonly InformationModel[] = [STUDY_ROOT, PATIENT_ROOT],
): ProposedPresentationContext[] {
  return models.map((m) => ({
    abstractSyntax: m.sopClasses.find,
    transferSyntaxes: [EXPLICIT_VR_LE, IMPLICIT_VR_LE],
  }));
}

export interface FindOptions {
  /** The C-FIND SOP class; default Study Root (STUDY_ROOT.sopClasses.find). */
  readonly sopClassUid?: string;
  /**
   * Query/Retrieve Level (0008,0052), set in a copy of the identifier (the caller's data set is
   * left alone). Absent: the identifier is sent as it is, which a Modality Worklist query needs
   * (it carries no level, PS3.4 K.6).
   */
  readonly level?: QueryRetrieveLevel;
  /** Default MEDIUM. */
  readonly priority?: number;
  /** Aborting sends C-CANCEL; the SCP then ends with 0xFE00 (or its last status if it was done). */
  readonly signal?: AbortSignal;
}

/** How a C-FIND ended. A failure status is an outcome too: check `status` (statusCategory). */
export interface FindOutcome {
  /** The final status: 0x0000, 0xFE00 after C-CANCEL, or a failure. */
  readonly status: number;
  readonly errorComment?: string;
  readonly offendingElements?: readonly number[];
  readonly matches: number;
  /** Some pending responses were 0xFF01: the SCP did not support some optional keys. */
  readonly optionalKeysUnsupported: boolean;
}

/**
 * A C-FIND in progress: iterate it for the matches (each pending response's Identifier, in
 * order; the next response is read when the loop asks for it), then read `outcome`. Leaving the
 * loop early sends C-CANCEL and reads the remaining responses, so the association stays usable.
 */
export interface FindQuery extends AsyncIterable<DataSet> {
  /**
   * The final status once the responses are read, or the error that ended the exchange: no
   * accepted context (ERR_NO_CONTEXT), a broken exchange (ERR_DIMSE, or the network error:
   * timeout, abort). Iterating never throws for these: the loop ends and `outcome` says why.
   */
  readonly outcome: Promise<Result<FindOutcome, PacsError>>;
}

/**
 * Sends one C-FIND-RQ (PS3.7 9.1.2) and yields its matches:
 *
 *   const query = find(assoc, identifier, { level: 'STUDY', signal });
 *   for await (const match of query) show(match);
 *   const outcome = unwrap(await query.outcome);
 *
 * The request is sent when the loop starts; `outcome` alone (without iterating) runs the query
 * to its end and counts the matches.
 */
export function find(
  association: DimseAssociation,
  identifier: DataSet,
  options: FindOptions = {},
): FindQuery {
  let settle: (r: Result<FindOutcome, PacsError>) => void = () => {};
  const outcome = new Promise<Result<FindOutcome, PacsError>>((resolve) => {
    settle = resolve;
  });
  let started: AsyncGenerator<DataSet, void, undefined> | undefined;
  const start = (): AsyncGenerator<DataSet, void, undefined> => {
    if (started !== undefined) throw new PacsError('ERR_DIMSE', 'a C-FIND query is iterated once');
    started = findMatches(association, identifier, options, settle);
    return started;
  };
  return {
    [Symbol.asyncIterator]: start,
    get outcome() {
      // Read without iterating: run the query to its end.
      if (started === undefined) void drain(start());
      return outcome;
    },
  };
}

async function drain(matches: AsyncIterable<DataSet>): Promise<void> {
  for await (const _ of matches);
}

async function* findMatches(
  association: DimseAssociation,
  identifier: DataSet,
  options: FindOptions,
  settle: (r: Result<FindOutcome, PacsError>) => void,
): AsyncGenerator<DataSet, void, undefined> {
  const sopClass = options.sopClassUid ?? STUDY_ROOT.sopClasses.find;
  const pc = association.presentationContexts.find((c) => c.abstractSyntax === sopClass && c.scu);
  if (!pc) {
    settle(
      err(new PacsError('ERR_NO_CONTEXT', `the peer did not accept C-FIND for ${describeUid(sopClass)}`)),
    );
    return;
  }
  const keys = options.level === undefined ? identifier : withLevel(identifier, options.level);
  // Our own signal, so that leaving the loop early cancels too (PS3.7 9.3.2.3).
  const cancel = new AbortController();
  const signal = options.signal;
  const onAbort = (): void => cancel.abort();
  if (signal?.aborted) cancel.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  const responses = association.request(
    pc.id,
    {
      commandField: CommandField.C_FIND_RQ,
      affectedSopClassUid: sopClass,
      priority: options.priority ?? Priority.Medium,
      hasDataSet: true,
    },
    keys,
    { signal: cancel.signal },
  );
  let matches = 0;
  let warned = false;
  let result: Result<FindOutcome, PacsError> | undefined;
  /** Reads responses up to the final one; false when a pending one is a match to yield. */
  const read = (r: IteratorResult<ResponseMessage>): boolean => {
    if (r.done) {
      result = err(new PacsError('ERR_DIMSE', 'the C-FIND ended without a final response'));
      return true;
    }
    const { command, dataSet } = r.value;
    const status = command.status ?? 0;
    if (statusCategory(status) !== 'pending') {
      result = ok({
        status,
        ...(command.errorComment !== undefined ? { errorComment: command.errorComment } : {}),
        ...(command.offendingElements !== undefined ? { offendingElements: command.offendingElements } : {}),
        matches,
        optionalKeysUnsupported: warned,
      });
      return true;
    }
    if (dataSet === undefined) {
      result = err(new PacsError('ERR_DIMSE', 'a pending C-FIND response without an Identifier'));
      return true;
    }
    matches++;
    if (status === Status.PendingWarning) warned = true;
    return false;
  };
  try {
    for (;;) {
      const r = await responses.next();
      if (read(r)) return;
      yield (r.value as ResponseMessage).dataSet as DataSet;
    }
  } catch (e) {
    result = err(e instanceof PacsError ? e : new PacsError('ERR_DIMSE', String(e), { cause: e }));
  } finally {
    signal?.removeEventListener('abort', onAbort);
    if (result === undefined) {
      // The consumer left the loop early: C-CANCEL, then the responses up to the final one.
      cancel.abort();
      try {
        while (!read(await responses.next()));
      } catch (e) {
        result = err(e instanceof PacsError ? e : new PacsError('ERR_DIMSE', String(e), { cause: e }));
      }
    }
    await responses.return(undefined).catch(() => undefined);
    settle(result ?? err(new PacsError('ERR_DIMSE', 'the C-FIND ended without a final response')));
  }
}

/** A copy of the keys with Query/Retrieve Level set (the caller's data set is left alone). */
function withLevel(keys: DataSet, level: QueryRetrieveLevel): DataSet {
  const out = new DataSet();
  for (const e of keys) out.set(e);
  out.setString(TAG.QueryRetrieveLevel, level);
  return out;
}

// --- query keys ------------------------------------------------------------------------------------

/** One step of a key path: an attribute, and for a sequence the item it goes into. */
export interface KeyPathStep {
  readonly tag: Tag;
  /** Item index for a sequence step that is followed by more steps (or written "[n]"). */
  readonly item: number | undefined;
}

/** A `-k` option: where and what. `value` undefined (no "=") or "" asks for the attribute (universal). */
export interface KeyAssignment {
  readonly path: readonly KeyPathStep[];
  readonly value: string;
}

const STEP_RE = /^(.+?)(?:\[(\d+)\])?$/;

/**
 * Parses "KEY=VALUE" or "KEY" as DCMTK's findscu reads -k: KEY is a keyword or a tag
 * ("0010,0010", "(0010,0010)", "00100010"), and may go into sequence items:
 * "ReferencedSeriesSequence[0].SeriesInstanceUID". The error says what is wrong, for a usage error.
 */
export function parseKeyAssignment(text: string): Result<KeyAssignment, string> {
  const eq = text.indexOf('=');
  const keyText = (eq < 0 ? text : text.slice(0, eq)).trim();
  const value = eq < 0 ? '' : text.slice(eq + 1);
  if (keyText === '') return err(`${JSON.stringify(text)}: no attribute before "="`);
  const path: KeyPathStep[] = [];
  const steps = splitSteps(keyText);
  for (const [i, stepText] of steps.entries()) {
    const m = STEP_RE.exec(stepText.trim());
    const name = m?.[1] ?? '';
    const tag = parseTagOrKeyword(name);
    if (tag === undefined)
      return err(`${JSON.stringify(name)} is neither a DICOM keyword nor a tag (gggg,eeee)`);
    const last = i === steps.length - 1;
    const index = m?.[2] === undefined ? undefined : Number(m[2]);
    const isSequence = lookupTag(tag)?.vr === 'SQ';
    if (!last && !isSequence) return err(`${name} is not a sequence: no attribute can follow it`);
    if (index !== undefined && !isSequence) return err(`${name} is not a sequence: it has no items`);
    path.push({ tag, item: index ?? (last ? undefined : 0) });
  }
  const end = path[path.length - 1];
  if (end !== undefined && lookupTag(end.tag)?.vr === 'SQ' && value !== '')
    return err(`${keyText} is a sequence: give values to the attributes of its items`);
  return ok({ path, value });
}

/** Splits a key path at the dots that separate steps (a tag's "(0008,1115)" has none). */
function splitSteps(text: string): string[] {
  return text.split('.').filter((s) => s !== '');
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7e) return false;
  return true;
}

/**
 * Builds an Identifier from key assignments, in order (a later one for the same attribute wins).
 * When a value is not plain ASCII and no Specific Character Set is given, ISO_IR 192 (UTF-8) is
 * declared so that the text can be encoded. Throws UsageError for a value its VR cannot hold.
 */
export function buildIdentifier(
  assignments: readonly KeyAssignment[],
  base: DataSet = new DataSet(),
): DataSet {
  const ds = base;
  const charset = assignments.find((a) => a.path.length === 1 && a.path[0]?.tag === TAG.SpecificCharacterSet);
  if (charset !== undefined) setKey(ds, charset);
  else if (!ds.has(TAG.SpecificCharacterSet) && assignments.some((a) => !isAscii(a.value)))
    ds.setString(TAG.SpecificCharacterSet, 'ISO_IR 192');
  for (const a of assignments) if (a !== charset) setKey(ds, a);
  return ds;
}

/** Sets one key in `ds`, creating sequence items on the way. */
export function setKey(ds: DataSet, assignment: KeyAssignment): void {
  let target = ds;
  const { path, value } = assignment;
  for (const [i, step] of path.entries()) {
    const last = i === path.length - 1;
    const entry = lookupTag(step.tag);
    if (entry?.vr === 'SQ') {
      const items = target.sequence(step.tag) ?? [];
      if (step.item !== undefined) while (items.length <= step.item) items.push(new DataSet(target));
      target.setSequence(step.tag, items);
      if (last || step.item === undefined) return;
      target = items[step.item] as DataSet;
      continue;
    }
    const vr = defaultVR(step.tag);
    try {
      if (value === '') target.setBytes(step.tag, new Uint8Array(0), vr);
      else if (isBinaryNumberVR(vr) || vr === 'AT') {
        const numbers = value.split('\\').map((v) => Number(v.trim()));
        if (numbers.some((n) => !Number.isFinite(n)))
          throw new Error(`${JSON.stringify(value)} is not a number`);
        target.setNumbers(step.tag, numbers, vr);
      } else if (isStringVR(vr))
        target.setString(step.tag, isMultiValuedStringVR(vr) ? value.split('\\') : [value], vr);
      else throw new Error(`a ${vr} value cannot be given on the command line`);
    } catch (e) {
      const name = entry?.keyword || step.tag.toString(16).padStart(8, '0');
      throw new UsageError(`-k ${name}: ${(e as Error).message}`);
    }
    return;
  }
}
