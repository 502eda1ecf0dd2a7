/**
 * `pacs mpps`: the modality's side of Modality Performed Procedure Step (PS3.4 F.7).
 *
 *   pacs mpps create [--aet A] [--aec B] HOST PORT (--accession ACC | --file DATASET) [-k KEY=VALUE]...
 *     N-CREATE, IN PROGRESS. With --accession the worklist is asked for the items of ACC (on the
 *     same association) and the attribute list is built from them as a modality builds it: the
 *     Scheduled Step Attributes, the patient, the Modality, the codes; several steps of one
 *     accession make one MPPS naming each (the IHE group case). With --file the attribute list is
 *     the data set of the file (DICOM or DICOM JSON). -k sets or overrides attributes. The new
 *     MPPS SOP Instance UID is the last line printed.
 *   pacs mpps set ... HOST PORT --uid UID --status "IN PROGRESS"|COMPLETED|DISCONTINUED [-k ...] [--series-from DIR]
 *     N-SET; a final status sets the end date and time; --series-from builds the Performed Series
 *     Sequence from the DICOM objects in DIR.
 *
 * A status other than Success exits non-zero with the status and the peer's Error Comment.
 */
import type { Command } from 'commander';
import {
  buildIdentifier,
  createMpps,
  describeStatus,
  fetchWorklist,
  isValidUid,
  MPPS_CONTEXT,
  mppsFromWorklistItem,
  mppsUpdate,
  PacsError,
  PPS_STATUS,
  performedSeriesFromFiles,
  readDataSets,
  setMpps,
  statusCategory,
  TAG,
  UsageError,
  WORKLIST_FIND_CONTEXT,
  withModalityReturnKeys,
} from '../client.js';
import type {
  DataSet,
  DimseAssociation,
  MppsResponse,
  ProposedPresentationContext,
  toDicomJson,
} from '../index.js';
import {
  addConnectionOptions,
  type Connection,
  type ConnectionFlags,
  connectTo,
  describeNetworkFailure,
  describeRefusal,
  keyAssignments,
  parseConnection,
  requestorFor,
} from './common.js';

interface CreateFlags extends ConnectionFlags {
  accession?: string;
  file?: string;
  uid?: string;
  key: string[];
}

interface SetFlags extends ConnectionFlags {
  uid: string;
  status: string;
  key: string[];
  seriesFrom: string[];
}

const repeatable = (value: string, previous: string[]): string[] => [...previous, value];

export function registerMppsCommand(program: Command): void {
  const mpps = program
    .command('mpps')
    .description('report a performed procedure step to an MPPS SCP (N-CREATE, N-SET)');

  addConnectionOptions(
    mpps.command('create').description('start a performed procedure step (N-CREATE, IN PROGRESS)'),
  )
    .option('--accession <number>', 'build the step from the worklist items of this Accession Number')
    .option('--file <dataset>', 'send the attribute list of this file (DICOM or DICOM JSON)')
    .option('--uid <uid>', 'the MPPS SOP Instance UID (default: a new one)')
    .option(
      '-k, --key <key=value>',
      'set an attribute, repeatable (findscu syntax, sequence items included)',
      repeatable,
      [],
    )
    .action(async (host: string, port: string, flags: CreateFlags) => {
      await runCreate(host, port, flags);
    });

  addConnectionOptions(mpps.command('set').description('update or end a performed procedure step (N-SET)'))
    .requiredOption('--uid <uid>', 'the MPPS SOP Instance UID')
    .requiredOption('--status <status>', '"IN PROGRESS", COMPLETED or DISCONTINUED')
    .option(
      '--series-from <dir>',
      'Performed Series Sequence from the DICOM objects in this folder (repeatable)',
      repeatable,
      [],
    )
    .option(
      '-k, --key <key=value>',
      'set an attribute, repeatable (findscu syntax, sequence items included)',
      repeatable,
      [],
    )
    .action(async (host: string, port: string, flags: SetFlags) => {
      await runSet(host, port, flags);
    });
}

async function connect(
  conn: Connection,
  contexts: readonly ProposedPresentationContext[],
): Promise<DimseAssociation> {
  const opened = await connectTo(requestorFor(conn), conn, contexts);
  if (!opened.ok) throw failure(conn, opened.error);
  return opened.value;
}

function failure(conn: Connection, reason: string, what = 'MPPS'): PacsError {
  return new PacsError('ERR_MPPS', `${what} to ${conn.target}: ${reason}`);
}

/** A non-success answer as one line: the status in words, the Error Comment, the attributes named. */
function refusal(r: MppsResponse): string {
  const errorId =
    r.errorId !== undefined ? ` (Error ID ${r.errorId.toString(16).toUpperCase().padStart(4, '0')})` : '';
  return `${describeRefusal(r.status, r.errorComment, r.offendingElements)}${errorId}`;
}

async function runCreate(host: string, portText: string, flags: CreateFlags): Promise<void> {
  const conn = parseConnection(host, portText, flags);
  if ((flags.accession === undefined) === (flags.file === undefined))
    throw new UsageError('mpps create: give --accession ACC or --file DATASET (one of them)');
  if (flags.uid !== undefined && !isValidUid(flags.uid))
    throw new UsageError(`--uid: ${JSON.stringify(flags.uid)} is not a valid UID`);
  const assignments = keyAssignments(flags.key);

  let attributes: DataSet | undefined;
  if (flags.file !== undefined) {
    const read = await readDataSets(flags.file);
    if (!read.ok) throw new PacsError('ERR_MPPS', `--file ${flags.file}: ${read.error}`);
    if (read.value.length !== 1)
      throw new PacsError('ERR_MPPS', `--file ${flags.file}: ${read.value.length} data sets; one is needed`);
    attributes = read.value[0];
  }

  const assoc = await connect(
    conn,
    flags.accession !== undefined ? [WORKLIST_FIND_CONTEXT, MPPS_CONTEXT] : [MPPS_CONTEXT],
  );
  try {
    if (flags.accession !== undefined) attributes = await fromWorklist(conn, assoc, flags.accession);
    if (attributes === undefined) throw new Error('no attribute list');
    buildIdentifier(assignments, attributes);
    const result = await createMpps(assoc, attributes, flags.uid);
    if (!result.ok)
      throw failure(conn, describeNetworkFailure(result.error, conn.useTls, conn.timeoutSeconds), 'N-CREATE');
    const r = result.value;
    if (statusCategory(r.status) !== 'success' && statusCategory(r.status) !== 'warning')
      throw failure(conn, refusal(r), 'N-CREATE');
    const patient = attributes.string(TAG.PatientName) ?? '';
    const steps = attributes.sequence(TAG.ScheduledStepAttributesSequence)?.length ?? 0;
    process.stdout.write(
      `N-CREATE ${describeStatus(r.status)}: IN PROGRESS${patient ? ` for ${patient}` : ''}, ${steps} scheduled step${steps === 1 ? '' : 's'}\n`,
    );
    process.stdout.write(`${r.sopInstanceUid}\n`);
  } finally {
    if (assoc.canSend) await assoc.release().catch(() => assoc.abort());
  }
}

/** The attribute list of the worklist items of an accession (one MPPS for all its steps). */
async function fromWorklist(conn: Connection, assoc: DimseAssociation, accession: string): Promise<DataSet> {
  const keys = buildIdentifier(
    keyAssignments([
      `AccessionNumber=${accession}`,
      'ReferencedStudySequence',
      'ReferencedPatientSequence',
      'RequestedProcedureCodeSequence',
      'ScheduledProcedureStepSequence[0].ScheduledProtocolCodeSequence',
    ]),
  );
  const found = await fetchWorklist(assoc, withModalityReturnKeys(keys));
  if (!found.ok) {
    if (found.error.code === 'ERR_NO_CONTEXT')
      throw failure(conn, 'the peer does not serve the Modality Worklist', 'worklist C-FIND');
    if (found.error.code === 'ERR_WORKLIST_STATUS')
      throw failure(conn, found.error.message, 'worklist C-FIND');
    throw failure(
      conn,
      describeNetworkFailure(found.error, conn.useTls, conn.timeoutSeconds),
      'worklist C-FIND',
    );
  }
  const [first, ...more] = found.value;
  if (first === undefined)
    throw failure(conn, `no worklist item with Accession Number ${accession}`, 'worklist C-FIND');
  const attributes = mppsFromWorklistItem(first, { stationAeTitle: conn.callingAeTitle });
  if (more.length > 0) {
    // IHE group case: one step performing several scheduled steps names each of them.
    const scheduled = found.value.flatMap(
      (item) =>
        mppsFromWorklistItem(item, { stationAeTitle: conn.callingAeTitle }).sequence(
          TAG.ScheduledStepAttributesSequence,
        ) ?? [],
    );
    attributes.setSequence(TAG.ScheduledStepAttributesSequence, scheduled);
  }
  return attributes;
}

async function runSet(host: string, portText: string, flags: SetFlags): Promise<void> {
  const conn = parseConnection(host, portText, flags);
  if (!isValidUid(flags.uid)) throw new UsageError(`--uid: ${JSON.stringify(flags.uid)} is not a valid UID`);
  const statuses: readonly string[] = Object.values(PPS_STATUS);
  const status = flags.status.toUpperCase();
  if (!statuses.includes(status))
    throw new UsageError(
      `--status: expected "IN PROGRESS", COMPLETED or DISCONTINUED, got ${JSON.stringify(flags.status)}`,
    );
  const assignments = keyAssignments(flags.key);
  let series: ReturnType<typeof toDicomJson>[] | undefined;
  if (flags.seriesFrom.length > 0) {
    const performed = await performedSeriesFromFiles(flags.seriesFrom, {
      retrieveAeTitle: conn.calledAeTitle,
    });
    for (const s of performed.skipped)
      process.stderr.write(`pacs: warning: skipped ${s.path}: ${s.reason}\n`);
    if (performed.objects === 0)
      throw new PacsError('ERR_MPPS', `--series-from: no DICOM objects in ${flags.seriesFrom.join(', ')}`);
    series = performed.series;
  }
  const modifications = mppsUpdate({ status, ...(series !== undefined ? { series } : {}) });
  buildIdentifier(assignments, modifications);
  const assoc = await connect(conn, [MPPS_CONTEXT]);
  try {
    const result = await setMpps(assoc, flags.uid, modifications);
    if (!result.ok)
      throw failure(conn, describeNetworkFailure(result.error, conn.useTls, conn.timeoutSeconds), 'N-SET');
    const r = result.value;
    if (statusCategory(r.status) !== 'success' && statusCategory(r.status) !== 'warning')
      throw failure(conn, refusal(r), 'N-SET');
    const n = series?.length;
    process.stdout.write(
      `N-SET ${describeStatus(r.status)}: ${status}${n !== undefined ? `, ${n} performed series` : ''}\n${r.sopInstanceUid}\n`,
    );
  } finally {
    if (assoc.canSend) await assoc.release().catch(() => assoc.abort());
  }
}
