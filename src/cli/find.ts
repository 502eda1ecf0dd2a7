/**
 * `pacs find`: C-FIND (Query/Retrieve, PS3.4 C.4.1) like DCMTK's findscu. `-k KEY=VALUE` gives a
 * matching key, `-k KEY` a return key; KEY is a keyword or gggg,eeee and may go into sequence items
 * ("ReferencedSeriesSequence[0].SeriesInstanceUID=1.2.3"). A few return keys of the level are
 * always asked for, so that the table says something. Matches print as a table, or with --json as
 * a DICOM JSON array (PS3.18 F.2) written as they arrive. A failure status exits non-zero with the
 * status and the peer's Error Comment; Ctrl-C sends C-CANCEL.
 */
import type { Command } from 'commander';
import {
  buildIdentifier,
  DataSet,
  describeStatus,
  find,
  findContexts,
  formatTag,
  keywordOf,
  PacsError,
  STUDY_ROOT,
  Status,
  statusCategory,
  TAG,
} from '../client.js';
import type { InformationModel, QueryRetrieveLevel, Tag } from '../index.js';
import {
  addConnectionOptions,
  type ConnectionFlags,
  connectTo,
  describeNetworkFailure,
  describeRefusal,
  informationModelFlag,
  keyAssignments,
  levelAndKeys,
  parseConnection,
  requestorFor,
  streamMatches,
} from './common.js';
import { cellText, renderTable } from './table.js';

interface FindFlags extends ConnectionFlags {
  root: string;
  level: string;
  key: string[];
  json?: boolean;
}

export function registerFindCommand(program: Command): void {
  addConnectionOptions(
    program.command('find').description('query a DICOM peer with C-FIND (Query/Retrieve), like findscu'),
  )
    .option('--root <model>', 'information model: patient or study', 'study')
    .option('--level <level>', 'query level: PATIENT, STUDY, SERIES or IMAGE', 'STUDY')
    .option(
      '-k, --key <key=value>',
      'a query key, repeatable: keyword or gggg,eeee, "=VALUE" to match, none to return it',
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .option('--json', 'print the matches as a DICOM JSON array')
    .action(async (host: string, port: string, flags: FindFlags) => {
      await runFind(host, port, flags);
    });
}

/** Return keys asked for at each level unless the user names them, in the table's column order. */
function defaultKeys(model: InformationModel, level: QueryRetrieveLevel): Tag[] {
  switch (level) {
    case 'PATIENT':
      return [
        TAG.PatientName,
        TAG.PatientID,
        TAG.PatientBirthDate,
        TAG.PatientSex,
        TAG.NumberOfPatientRelatedStudies,
      ];
    case 'STUDY':
      return [
        // In Patient Root a study has no patient attributes but the patient's unique key.
        ...(model === STUDY_ROOT ? [TAG.PatientName] : []),
        TAG.PatientID,
        TAG.StudyDate,
        TAG.StudyTime,
        TAG.AccessionNumber,
        TAG.ModalitiesInStudy,
        TAG.StudyDescription,
        TAG.NumberOfStudyRelatedInstances,
        TAG.StudyInstanceUID,
      ];
    case 'SERIES':
      return [
        TAG.SeriesNumber,
        TAG.Modality,
        TAG.SeriesDescription,
        TAG.NumberOfSeriesRelatedInstances,
        TAG.SeriesInstanceUID,
      ];
    case 'IMAGE':
      return [TAG.InstanceNumber, TAG.SOPClassUID, TAG.SOPInstanceUID];
  }
}

async function runFind(host: string, portText: string, flags: FindFlags): Promise<void> {
  const conn = parseConnection(host, portText, flags);
  const model = informationModelFlag(flags.root);
  const { level, keys: userKeys } = levelAndKeys(model, keyAssignments(flags.key), flags.level);
  const columns = defaultKeys(model, level);
  const base = new DataSet();
  const keys = buildIdentifier(userKeys, base);
  for (const tag of columns) if (!keys.has(tag)) keys.setBytes(tag, new Uint8Array(0));
  for (const a of userKeys) {
    const tag = a.path[0]?.tag;
    if (tag !== undefined && tag !== TAG.SpecificCharacterSet && !columns.includes(tag)) columns.push(tag);
  }

  const fail = (reason: string): never => {
    throw new PacsError('ERR_FIND', `C-FIND to ${conn.target}: ${reason}`);
  };
  const opened = await connectTo(requestorFor(conn), conn, findContexts([model]));
  if (!opened.ok) return fail(opened.error);
  const assoc = opened.value;

  const {
    rows,
    outcome: result,
    outputClosed,
  } = await streamMatches(
    (signal) => find(assoc, keys, { sopClassUid: model.sopClasses.find, level, signal }),
    flags.json === true,
  );
  const out = process.stdout;
  if (assoc.canSend) await assoc.release().catch(() => assoc.abort());
  if (!result.ok) {
    const e = result.error;
    if (e.code === 'ERR_NO_CONTEXT') return fail(`the peer does not serve ${model.title} C-FIND`);
    return fail(describeNetworkFailure(e, conn.useTls, conn.timeoutSeconds));
  }
  const outcome = result.value;
  if (outputClosed) return;
  if (outcome.optionalKeysUnsupported)
    process.stderr.write('pacs: warning: the peer matched or returned only some of the keys (0xFF01)\n');
  const status = outcome.status;
  // A failure prints no table: its reason is the output. Matches received before a cancel are shown.
  if (!flags.json && (statusCategory(status) === 'success' || status === Status.Cancel))
    out.write(table(columns, rows, outcome.matches));
  if (statusCategory(status) === 'success') return;
  if (status === Status.Cancel)
    return fail(`cancelled after ${outcome.matches} matches (${describeStatus(status)})`);
  return fail(describeRefusal(status, outcome.errorComment, outcome.offendingElements));
}

const MAX_CELL = 48;

/** The matches as a table with one column per key, then a count. */
function table(columns: readonly Tag[], rows: readonly DataSet[], matches: number): string {
  const heads = columns.map((t) => keywordOf(t) || formatTag(t));
  const cells = rows.map((r) => columns.map((t) => cellText(r, t, MAX_CELL)));
  return renderTable(heads, cells, `${matches} match${matches === 1 ? '' : 'es'}`);
}
