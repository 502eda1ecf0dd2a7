/**
 * A modality's worklist query written with the library API: the scheduled procedure steps for
 * one station (Scheduled Station AE Title) on one day, with the attributes a worklist screen
 * shows, answers printed as they arrive.
 *
 *   npm run build && node dist/examples/worklist-scu.js HOST PORT CALLED_AE STATION_AE [YYYYMMDD]
 *
 * Exits 0 when the query ended with Success (`pacs worklist` is the full tool).
 */
import {
  ApplicationEntity,
  DataSet,
  describeStatus,
  queryWorklist,
  statusCategory,
  TAG,
  WORKLIST_FIND_CONTEXT,
  withModalityReturnKeys,
} from '../src/index.js';

const [host, port, calledAeTitle, station, date] = process.argv.slice(2);
if (host === undefined || port === undefined || calledAeTitle === undefined || station === undefined) {
  console.error('usage: worklist-scu HOST PORT CALLED_AE STATION_AE [YYYYMMDD]');
  process.exit(2);
}

// The matching keys go into the one item of the Scheduled Procedure Step Sequence (PS3.4 K.6).
const query = new DataSet();
const step = new DataSet(query);
step.setString(TAG.ScheduledStationAETitle, station);
if (date !== undefined) step.setString(TAG.ScheduledProcedureStepStartDate, date);
query.setSequence(TAG.ScheduledProcedureStepSequence, [step]);
withModalityReturnKeys(query);

const connected = await new ApplicationEntity({ aeTitle: station }).connect({
  host,
  port: Number(port),
  calledAeTitle,
  contexts: [WORKLIST_FIND_CONTEXT],
});
if (!connected.ok) {
  console.error(`worklist-scu: ${connected.error.message}`);
  process.exit(1);
}
const association = connected.value;
const steps = queryWorklist(association, query);
for await (const item of steps) {
  const sps = item.sequence(TAG.ScheduledProcedureStepSequence)?.[0];
  console.log(
    [
      item.string(TAG.AccessionNumber) ?? '',
      item.string(TAG.PatientName) ?? '',
      item.string(TAG.PatientID) ?? '',
      sps?.string(TAG.Modality) ?? '',
      `${sps?.string(TAG.ScheduledProcedureStepStartDate) ?? ''} ${sps?.string(TAG.ScheduledProcedureStepStartTime) ?? ''}`,
      sps?.string(TAG.ScheduledProcedureStepDescription) ?? '',
      sps?.string(TAG.ScheduledProcedureStepStatus) ?? '',
    ].join(' | '),
  );
}
const result = await steps.outcome;
await association.release();
if (!result.ok) {
  console.error(`worklist-scu: ${result.error.message}`);
  process.exit(1);
}
console.log(`${result.value.matches} scheduled steps, ${describeStatus(result.value.status)}`);
process.exitCode = statusCategory(result.value.status) === 'success' ? 0 : 1;
