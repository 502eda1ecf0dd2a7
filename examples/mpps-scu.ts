/**
 * A modality's side of the workflow written with the library API: it finds its worklist item by
 * Accession Number, reports the procedure started (MPPS N-CREATE, IN PROGRESS), "acquires" (the
 * objects are the DICOM files of a folder), and reports it completed with the series it made
 * (N-SET COMPLETED, Performed Series Sequence).
 *
 *   npm run build && node dist/examples/mpps-scu.js HOST PORT CALLED_AE STATION_AE ACCESSION FOLDER
 *
 * Prints the MPPS SOP Instance UID; exits 0 when both steps were accepted.
 */
import {
  ApplicationEntity,
  createMpps,
  DataSet,
  describeStatus,
  fetchWorklist,
  MPPS_CONTEXT,
  mppsFromWorklistItem,
  mppsUpdate,
  performedSeriesFromFiles,
  setMpps,
  statusCategory,
  TAG,
  WORKLIST_FIND_CONTEXT,
  withModalityReturnKeys,
} from '../src/index.js';

const [host, port, calledAeTitle, station, accession, folder] = process.argv.slice(2);
if (!host || !port || !calledAeTitle || !station || !accession || !folder) {
  console.error('usage: mpps-scu HOST PORT CALLED_AE STATION_AE ACCESSION FOLDER');
  process.exit(2);
}

function fail(message: string): never {
  console.error(`mpps-scu: ${message}`);
  process.exit(1);
}

const connected = await new ApplicationEntity({ aeTitle: station }).connect({
  host,
  port: Number(port),
  calledAeTitle,
  contexts: [WORKLIST_FIND_CONTEXT, MPPS_CONTEXT],
});
if (!connected.ok) fail(connected.error.message);
const association = connected.value;

// 1. The worklist item of the accession.
const query = new DataSet();
query.setString(TAG.AccessionNumber, accession);
const found = await fetchWorklist(association, withModalityReturnKeys(query));
if (!found.ok) fail(found.error.message);
const item = found.value[0];
if (item === undefined) fail(`no worklist item for accession ${accession}`);
console.log(`performing ${accession} for ${item.string(TAG.PatientName) ?? '(no name)'}`);

// 2. Started: N-CREATE IN PROGRESS, built from the item.
const created = await createMpps(association, mppsFromWorklistItem(item, { stationAeTitle: station }));
if (!created.ok) fail(created.error.message);
if (statusCategory(created.value.status) !== 'success')
  fail(`N-CREATE: ${describeStatus(created.value.status)} ${created.value.errorComment ?? ''}`);
const uid = created.value.sopInstanceUid;
console.log(`N-CREATE ${describeStatus(created.value.status)}: IN PROGRESS`);

// 3. Done: N-SET COMPLETED with the series acquired.
const performed = await performedSeriesFromFiles([folder], { retrieveAeTitle: calledAeTitle });
const done = await setMpps(association, uid, mppsUpdate({ status: 'COMPLETED', series: performed.series }));
if (!done.ok) fail(done.error.message);
if (statusCategory(done.value.status) !== 'success')
  fail(`N-SET: ${describeStatus(done.value.status)} ${done.value.errorComment ?? ''}`);
console.log(
  `N-SET ${describeStatus(done.value.status)}: COMPLETED, ${performed.series.length} series, ${performed.objects} objects`,
);
await association.release();
console.log(uid);
