/**
 * A minimal C-MOVE SCU written with the library API: asks a Query/Retrieve SCP to send a study to
 * a destination AE (one the SCP knows), printing the sub-operation counts of each pending response
 * and the final status. Ctrl-C sends C-CANCEL.
 *
 *   npm run build && node dist/examples/move-scu.js HOST PORT CALLED_AE DESTINATION_AE STUDY_UID
 *
 * Exits 0 when every sub-operation succeeded (`pacs move` is the full tool: levels, keys, --json).
 */
import {
  ApplicationEntity,
  DataSet,
  describeStatus,
  move,
  retrieveContext,
  STUDY_ROOT,
  Status,
  TAG,
} from '../src/index.js';

const [host, port, calledAeTitle, destination, studyUid] = process.argv.slice(2);
if (!host || !port || !calledAeTitle || !destination || !studyUid) {
  console.error('usage: move-scu HOST PORT CALLED_AE DESTINATION_AE STUDY_UID');
  process.exit(2);
}

const connected = await new ApplicationEntity({ aeTitle: 'MOVE-SCU' }).connect({
  host,
  port: Number(port),
  calledAeTitle,
  contexts: [retrieveContext(STUDY_ROOT, 'move')],
});
if (!connected.ok) {
  console.error(`move-scu: ${connected.error.message}`);
  process.exit(1);
}
const association = connected.value;

// The Identifier: the level and the unique key of the study (PS3.4 C.4.2.2.1).
const identifier = new DataSet();
identifier.setString(TAG.QueryRetrieveLevel, 'STUDY');
identifier.setString(TAG.StudyInstanceUID, studyUid);

const cancel = new AbortController();
process.once('SIGINT', () => cancel.abort());
const result = await move(association, {
  model: STUDY_ROOT,
  destination,
  identifier,
  signal: cancel.signal,
  onProgress: (p) =>
    console.log(
      `pending: ${p.remaining} remaining, ${p.completed} completed, ${p.failed} failed, ${p.warning} warning`,
    ),
});
await association.release();
if (!result.ok) {
  console.error(`move-scu: ${result.error.message}`);
  process.exit(1);
}
const outcome = result.value;
console.log(
  `final: ${describeStatus(outcome.status)}: ${outcome.completed} completed, ${outcome.failed} failed, ${outcome.warning} warning`,
);
for (const uid of outcome.failedSopInstanceUids) console.log(`failed: ${uid}`);
process.exitCode = outcome.status === Status.Success ? 0 : 1;
