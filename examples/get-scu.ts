/**
 * A minimal C-GET SCU written with the library API: retrieves a study from a Query/Retrieve SCP
 * on the same association, as the Storage SCP of the storage SOP classes it proposes (role
 * selection), writing each object into a folder as a Part-10 file named by a hash of its data set.
 *
 *   npm run build && node dist/examples/get-scu.js HOST PORT CALLED_AE STUDY_UID FOLDER
 *
 * Exits 0 when every sub-operation succeeded (`pacs get` is the full tool: progress bar, --json).
 */
import { mkdir } from 'node:fs/promises';
import {
  ApplicationEntity,
  DataSet,
  describeStatus,
  folderReceiver,
  get,
  getContexts,
  STUDY_ROOT,
  Status,
  TAG,
} from '../src/index.js';

const [host, port, calledAeTitle, studyUid, folder] = process.argv.slice(2);
if (!host || !port || !calledAeTitle || !studyUid || !folder) {
  console.error('usage: get-scu HOST PORT CALLED_AE STUDY_UID FOLDER');
  process.exit(2);
}
await mkdir(folder, { recursive: true });

// The receiver answers the C-STORE sub-operations the SCP sends back on our association.
const ae = new ApplicationEntity({ aeTitle: 'GET-SCU' }).addService(
  folderReceiver({ dir: folder, onObject: (o) => console.log(`received ${o.path} (${o.size} bytes)`) }),
);
const connected = await ae.connect({
  host,
  port: Number(port),
  calledAeTitle,
  // The GET SOP class, and the storage SOP classes with us as their SCP.
  contexts: getContexts(STUDY_ROOT),
});
if (!connected.ok) {
  console.error(`get-scu: ${connected.error.message}`);
  process.exit(1);
}
const association = connected.value;

const identifier = new DataSet();
identifier.setString(TAG.QueryRetrieveLevel, 'STUDY');
identifier.setString(TAG.StudyInstanceUID, studyUid);

const result = await get(association, { model: STUDY_ROOT, identifier });
await association.release();
if (!result.ok) {
  console.error(`get-scu: ${result.error.message}`);
  process.exit(1);
}
const outcome = result.value;
console.log(
  `final: ${describeStatus(outcome.status)}: ${outcome.completed} completed, ${outcome.failed} failed, ${outcome.warning} warning`,
);
process.exitCode = outcome.status === Status.Success ? 0 : 1;
