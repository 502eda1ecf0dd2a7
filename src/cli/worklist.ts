/**
 * `pacs worklist`: the Modality Worklist from both sides.
 *
 *   pacs worklist [--aet A] [--aec B] HOST PORT [-k KEY=VALUE]... [--json]
 *     queries a worklist SCP as a modality does (C-FIND, PS3.4 K.4); keys inside the Scheduled
 *     Procedure Step Sequence are written as findscu writes them:
 *     -k ScheduledProcedureStepSequence[0].Modality=CT. The usual return keys are always asked for.
 *   pacs worklist import [--data DIR | --db URL] FILE...   items from DICOM (*.wl) or DICOM JSON
 *   pacs worklist ls     [--data DIR | --db URL] [filters] [--json]
 *   pacs worklist rm     [--data DIR | --db URL] [ID...] [filters] [--all]
 *     work on the index directly, also while the server runs (it reads the index per query).
 *
 * An import checks every item first and stores all of them in one transaction, or none: each bad
 * item is one line on standard error.
 */
import { join } from 'node:path';
import type { Command } from 'commander';
import {
  buildIdentifier,
  DataSet,
  describeStatus,
  PacsError,
  queryWorklist,
  readWorklistFiles,
  Status,
  statusCategory,
  TAG,
  UsageError,
  WORKLIST_FIND_CONTEXT,
  withModalityReturnKeys,
} from '../client.js';
import type { ItemSelector, Tag, WorklistItem } from '../index.js';
import { type OrderChange, orderFieldsOf, recordOrderChanges } from './audit.js';
import {
  addConnectionOptions,
  type ConnectionFlags,
  connectTo,
  describeNetworkFailure,
  describeRefusal,
  indexUrlFlag,
  keyAssignments,
  parseConnection,
  requestorFor,
  streamMatches,
} from './common.js';
import { cellText, renderTable } from './table.js';

interface QueryFlags extends ConnectionFlags {
  key: string[];
  json?: boolean;
}

interface IndexFlags {
  data?: string;
  db?: string;
}

interface SelectFlags extends IndexFlags {
  accession?: string;
  patientId?: string;
  study?: string;
  status?: string;
  json?: boolean;
  all?: boolean;
}

const repeatable = (value: string, previous: string[]): string[] => [...previous, value];

function addIndexOptions(command: Command): Command {
  return command
    .option('--data <dir>', 'data folder whose index is used (default ./data)')
    .option(
      '--db <url>',
      'index database: sqlite:PATH or postgres://... (default: SQLite in the data folder)',
    );
}

function addSelectOptions(command: Command): Command {
  return command
    .option('--accession <number>', 'only items with this Accession Number')
    .option('--patient-id <id>', 'only items with this Patient ID')
    .option('--study <uid>', 'only items with this Study Instance UID')
    .option('--status <status>', 'only items with this Scheduled Procedure Step Status');
}

export function registerWorklistCommand(program: Command): void {
  const worklist = addConnectionOptions(
    program
      .command('worklist')
      .description('query a Modality Worklist SCP (C-FIND), or manage the worklist items of the index'),
  )
    .option(
      '-k, --key <key=value>',
      'a query key, repeatable (findscu syntax, sequence items included)',
      repeatable,
      [],
    )
    .option('--json', 'print the matches as a DICOM JSON array')
    .action(async (host: string, port: string, flags: QueryFlags) => {
      await runQuery(host, port, flags);
    });

  addIndexOptions(
    worklist
      .command('import')
      .description(
        'import worklist items from DICOM files (*.wl, as wlmscpfs keeps them) or DICOM JSON; all or none',
      ),
  )
    .argument('<path...>', 'files and folders (folders: *.wl, *.dcm, *.json, also .gz)')
    .option('--json', 'print a machine-readable report')
    .action(async (paths: string[], flags: IndexFlags & { json?: boolean }, command: Command) => {
      await runImport(paths, { ...flags, json: flags.json ?? jsonOfParent(command) });
    });

  addSelectOptions(
    addIndexOptions(worklist.command('ls').description('list the worklist items of the index')),
  )
    .option('--json', 'print the items as a JSON array (id, status, DICOM JSON data set)')
    .action(async (flags: SelectFlags, command: Command) => {
      await runList({ ...flags, json: flags.json ?? jsonOfParent(command) });
    });

  addSelectOptions(
    addIndexOptions(
      worklist.command('rm').description('remove worklist items from the index (by id or filter)'),
    ),
  )
    .argument('[id...]', 'item ids, as `pacs worklist ls` shows them')
    .option('--all', 'every item')
    .action(async (ids: string[], flags: SelectFlags) => {
      await runRemove(ids, flags);
    });
}

/**
 * Commander gives an option the parent command shares to the parent wherever it is written, unless
 * the whole program has positional options: `pacs worklist ls --json` sets the query's --json.
 */
function jsonOfParent(command: Command): boolean | undefined {
  return (command.parent?.opts() as { json?: boolean } | undefined)?.json;
}

// --- the index -----------------------------------------------------------------------------------

async function indexUrl(flags: IndexFlags): Promise<string> {
  if (flags.db !== undefined && flags.data !== undefined)
    throw new UsageError('give --data or --db, not both');
  if (flags.db !== undefined) {
    return indexUrlFlag(flags.db);
  }
  return `sqlite:${join(flags.data ?? './data', 'index.sqlite')}`;
}

/** The worklist store of the index: the index layer loads only now (src/client.ts says why). */
async function openStore(url: string): ReturnType<typeof import('../index.js').openWorklistStore> {
  const { openWorklistStore } = await import('../index.js');
  return openWorklistStore(url);
}

function selectorOf(flags: SelectFlags, ids: readonly string[] = []): ItemSelector {
  const numbers = ids.map((id) => {
    if (!/^\d+$/.test(id)) throw new UsageError(`item id: expected a number, got ${JSON.stringify(id)}`);
    return Number(id);
  });
  return {
    ...(numbers.length > 0 ? { ids: numbers } : {}),
    ...(flags.accession !== undefined ? { accessionNumber: flags.accession } : {}),
    ...(flags.patientId !== undefined ? { patientId: flags.patientId } : {}),
    ...(flags.study !== undefined ? { studyInstanceUid: flags.study } : {}),
    ...(flags.status !== undefined ? { status: flags.status } : {}),
    ...(flags.all ? { all: true } : {}),
  };
}

async function runImport(paths: string[], flags: IndexFlags & { json?: boolean }): Promise<void> {
  const url = await indexUrl(flags);
  const read = await readWorklistFiles(paths);
  if (read.errors.length > 0) {
    for (const line of read.errors) process.stderr.write(`pacs: ${line}\n`);
    throw new PacsError(
      'ERR_WORKLIST_IMPORT',
      `nothing imported: ${read.errors.length} input${read.errors.length === 1 ? ' is' : 's are'} not valid (see above)`,
    );
  }
  if (read.items.length === 0)
    throw new PacsError('ERR_WORKLIST_IMPORT', `no worklist items in ${paths.join(', ')}`);
  const { store, close } = await openStore(url);
  let orders: OrderChange[] = [];
  try {
    const report = await store.putItems(read.items.map((i) => i.item));
    const action = report.added === read.items.length ? 'create' : 'update';
    orders = read.items.map((i) => ({ action, ...orderFieldsOf(i.item) }));
    if (flags.json)
      process.stdout.write(
        `${JSON.stringify({ added: report.added, replaced: report.replaced, items: read.items.map((i, n) => ({ id: report.ids[n], source: i.source })) }, null, 2)}\n`,
      );
    else
      process.stdout.write(
        `imported ${read.items.length} worklist item${read.items.length === 1 ? '' : 's'} (${report.added} added, ${report.replaced} replaced)\n`,
      );
  } finally {
    await close();
  }
  // The trail is written on the index once the store has let go of it (one opening per process).
  await recordOrderChanges(url, orders);
}

async function runList(flags: SelectFlags): Promise<void> {
  const { store, close } = await openStore(await indexUrl(flags));
  try {
    const selector = selectorOf(flags);
    const items: WorklistItem[] = [];
    for await (const item of store.listItems(Object.keys(selector).length > 0 ? selector : { all: true }))
      items.push(item);
    if (flags.json) {
      const out = [];
      for (const i of items)
        out.push({
          id: i.id,
          status: i.status,
          mpps: (await store.mppsOfItem(i.id)).map((m) => m.sopInstanceUid),
          dataSet: i.dataSet,
        });
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
      return;
    }
    const heads = [
      'ID',
      'ACCESSION',
      'PATIENT ID',
      'PATIENT NAME',
      'MODALITY',
      'STATION AE',
      'START',
      'STEP ID',
      'STATUS',
    ];
    const rows = items.map((i) => [
      String(i.id),
      i.accessionNumber ?? '',
      i.patientId ?? '',
      i.patientName ?? '',
      i.modality ?? '',
      i.stationAeTitles.join('\\'),
      `${i.startDate ?? ''} ${(i.startTime ?? '').slice(0, 6)}`.trim(),
      i.scheduledProcedureStepId,
      i.status ?? '',
    ]);
    process.stdout.write(renderTable(heads, rows, `${items.length} item${items.length === 1 ? '' : 's'}`));
  } finally {
    await close();
  }
}

/** What a removal's filter says of the items it removed (the Order Record's patient and study). */
function removedFields(flags: SelectFlags): Omit<OrderChange, 'action'> {
  return {
    ...(flags.patientId !== undefined ? { patientId: flags.patientId } : {}),
    ...(flags.study !== undefined ? { studyInstanceUid: flags.study } : {}),
    ...(flags.accession !== undefined ? { accessionNumber: flags.accession } : {}),
  };
}

async function runRemove(ids: string[], flags: SelectFlags): Promise<void> {
  const selector = selectorOf(flags, ids);
  if (Object.keys(selector).length === 0)
    throw new UsageError(
      'rm: give item ids, a filter (--accession, --patient-id, --study, --status) or --all',
    );
  const url = await indexUrl(flags);
  const { store, close } = await openStore(url);
  let removed = 0;
  try {
    removed = await store.removeItems(selector);
    process.stdout.write(`removed ${removed} worklist item${removed === 1 ? '' : 's'}\n`);
  } finally {
    await close();
  }
  if (removed > 0) await recordOrderChanges(url, [{ action: 'delete', ...removedFields(flags) }]);
}

// --- the query -----------------------------------------------------------------------------------

async function runQuery(host: string, portText: string, flags: QueryFlags): Promise<void> {
  const conn = parseConnection(host, portText, flags);
  const keys = withModalityReturnKeys(buildIdentifier(keyAssignments(flags.key), new DataSet()));
  const fail = (reason: string): never => {
    throw new PacsError('ERR_WORKLIST', `worklist C-FIND to ${conn.target}: ${reason}`);
  };
  const opened = await connectTo(requestorFor(conn), conn, [WORKLIST_FIND_CONTEXT]);
  if (!opened.ok) return fail(opened.error);
  const assoc = opened.value;
  const { rows, outcome: result } = await streamMatches(
    (signal) => queryWorklist(assoc, keys, { signal }),
    flags.json === true,
  );
  const out = process.stdout;
  if (assoc.canSend) await assoc.release().catch(() => assoc.abort());
  if (!result.ok) {
    if (result.error.code === 'ERR_NO_CONTEXT') return fail('the peer does not serve the Modality Worklist');
    return fail(describeNetworkFailure(result.error, conn.useTls, conn.timeoutSeconds));
  }
  const { status, errorComment, offendingElements, matches } = result.value;
  if (!flags.json && (statusCategory(status) === 'success' || status === Status.Cancel))
    out.write(worklistTable(rows, matches));
  if (statusCategory(status) === 'success') return;
  if (status === Status.Cancel) return fail(`cancelled after ${matches} matches (${describeStatus(status)})`);
  return fail(describeRefusal(status, errorComment, offendingElements));
}

const MAX_CELL = 40;

const ITEM_COLUMNS: readonly Tag[] = [
  TAG.AccessionNumber,
  TAG.PatientName,
  TAG.PatientID,
  TAG.RequestedProcedureDescription,
];
const STEP_COLUMNS: readonly Tag[] = [
  TAG.Modality,
  TAG.ScheduledStationAETitle,
  TAG.ScheduledProcedureStepStartDate,
  TAG.ScheduledProcedureStepStartTime,
  TAG.ScheduledProcedureStepID,
  TAG.ScheduledProcedureStepStatus,
];

/** The answers as a table: the item's and its scheduled step's main attributes, then a count. */
function worklistTable(rows: readonly DataSet[], matches: number): string {
  const heads = [
    'ACCESSION',
    'PATIENT NAME',
    'PATIENT ID',
    'PROCEDURE',
    'MODALITY',
    'STATION AE',
    'DATE',
    'TIME',
    'STEP ID',
    'STATUS',
  ];
  const cells = rows.map((r) => {
    const step = r.sequence(TAG.ScheduledProcedureStepSequence)?.[0];
    return [
      ...ITEM_COLUMNS.map((t) => cellText(r, t, MAX_CELL)),
      ...STEP_COLUMNS.map((t) => cellText(step, t, MAX_CELL)),
    ];
  });
  return renderTable(heads, cells, `${matches} match${matches === 1 ? '' : 'es'}`);
}
