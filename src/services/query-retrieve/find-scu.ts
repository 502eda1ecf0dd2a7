/**
 * C-FIND SCU of the Query/Retrieve service (PS3.4 C.4.1): the contexts to propose, the request
 * with its matches streamed to a callback, C-CANCEL, and the query keys of the command line
 * ("PatientName=DOE*", "0020,000D=1.2.3", "ReferencedSeriesSequence[0].SeriesInstanceUID=1.2"),
 * which `pacs find` and the retrieve commands share.
 */
import { PacsError, UsageError } from '../../core/errors.js';
import { err, ok, type Result } from '../../core/result.js';
import { DataSet, defaultVR } from '../../dicom/dataset.js';
import { lookupTag, parseTagOrKeyword, TAG } from '../../dicom/dictionary.js';
import type { Tag } from '../../dicom/tag.js';
import { EXPLICIT_VR_LE, IMPLICIT_VR_LE } from '../../dicom/uid.js';
import { isBinaryNumberVR, isMultiValuedStringVR, isStringVR } from '../../dicom/vr.js';
import type { ProposedPresentationContext } from '../../network/association.js';
import type { DimseAssociation } from '../../network/dimse.js';
import { CommandField, Priority } from '../../network/dimse-command.js';
import { Status, statusCategory } from '../../network/dimse-status.js';
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

export interface FindRequest {
  /** Default Study Root. */
  readonly model?: InformationModel;
  readonly level: QueryRetrieveLevel;
  /**
   * Matching keys with values and return keys without (PS3.4 C.2.2.1); Query/Retrieve Level is
   * set from `level`. Text is encoded in the data set's Specific Character Set, as usual.
   */
  readonly keys: DataSet;
  /** Default MEDIUM. */
  readonly priority?: number;
}

export interface FindOptions {
  /** Called with each match's Identifier, in order; the next response is read once it resolves. */
  readonly onMatch?: (identifier: DataSet) => void | Promise<void>;
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
 * Sends one C-FIND-RQ and reads its responses to the end. Expected failures are values: no
 * accepted context (ERR_NO_CONTEXT), a broken exchange (ERR_DIMSE, or the network error: timeout,
 * abort) are errors; any final status, failures included, is an outcome.
 */
export async function find(
  association: DimseAssociation,
  request: FindRequest,
  options: FindOptions = {},
): Promise<Result<FindOutcome, PacsError>> {
  const model = request.model ?? STUDY_ROOT;
  const sopClass = model.sopClasses.find;
  const pc = association.presentationContexts.find((c) => c.abstractSyntax === sopClass && c.scu);
  if (!pc)
    return err(
      new PacsError('ERR_NO_CONTEXT', `the peer did not accept ${model.title} C-FIND (${sopClass})`),
    );
  const identifier = withLevel(request.keys, request.level);
  let matches = 0;
  let warned = false;
  let cancelled = false;
  const responses = association.request(
    pc.id,
    {
      commandField: CommandField.C_FIND_RQ,
      affectedSopClassUid: sopClass,
      priority: request.priority ?? Priority.Medium,
      hasDataSet: true,
    },
    identifier,
  );
  const iterator = responses[Symbol.asyncIterator]();
  // The generator takes its message ID when first resumed: read it then, for C-CANCEL.
  let next = iterator.next();
  const messageId = association.lastMessageId;
  const onAbort = (): void => {
    if (cancelled) return;
    cancelled = true;
    association.cancel(pc.id, messageId).catch(() => undefined);
  };
  if (options.signal?.aborted) onAbort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      const r = await next;
      if (r.done) return err(new PacsError('ERR_DIMSE', 'the C-FIND ended without a final response'));
      const { command, dataSet } = r.value;
      const status = command.status ?? 0;
      if (statusCategory(status) === 'pending') {
        if (dataSet === undefined)
          return err(new PacsError('ERR_DIMSE', 'a pending C-FIND response without an Identifier'));
        matches++;
        if (status === Status.PendingWarning) warned = true;
        await options.onMatch?.(dataSet);
        next = iterator.next();
        continue;
      }
      return ok({
        status,
        ...(command.errorComment !== undefined ? { errorComment: command.errorComment } : {}),
        ...(command.offendingElements !== undefined ? { offendingElements: command.offendingElements } : {}),
        matches,
        optionalKeysUnsupported: warned,
      });
    }
  } catch (e) {
    return err(e instanceof PacsError ? e : new PacsError('ERR_DIMSE', String(e), { cause: e }));
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    await iterator.return?.(undefined);
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
