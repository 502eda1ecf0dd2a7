/**
 * A minimal C-FIND SCU written with the library API: Study Root at STUDY level, matching keys as
 * KEYWORD=VALUE arguments, a few return keys, one line per match as it arrives.
 *
 *   npm run build && node dist/examples/find-scu.js HOST PORT CALLED_AE [KEYWORD=VALUE...]
 *   node dist/examples/find-scu.js localhost 11112 PACS PatientName='DOE*' StudyDate=20240101-
 *
 * Exits 0 when the peer ends with success (`pacs find` is the full tool: both models, every
 * level, tags and sequences as keys, a table or DICOM JSON).
 */
import {
  ApplicationEntity,
  DataSet,
  describeStatus,
  find,
  findContexts,
  STUDY_ROOT,
  statusCategory,
  TAG,
  tagForKeyword,
} from '../src/index.js';

const [host, port, calledAeTitle, ...matching] = process.argv.slice(2);
if (host === undefined || port === undefined || calledAeTitle === undefined) {
  console.error('usage: find-scu HOST PORT CALLED_AE [KEYWORD=VALUE...]');
  process.exit(2);
}

// Return keys: asked for with no value (PS3.4 C.2.2.1.1); matching keys get a value.
const keys = new DataSet();
for (const tag of [TAG.PatientName, TAG.PatientID, TAG.StudyDate, TAG.StudyDescription, TAG.StudyInstanceUID])
  keys.setString(tag, '');
for (const arg of matching) {
  const [keyword = '', ...rest] = arg.split('=');
  const tag = tagForKeyword(keyword);
  if (tag === undefined) {
    console.error(`find-scu: ${keyword} is not a DICOM keyword`);
    process.exit(2);
  }
  keys.setString(tag, rest.join('='));
}

const ae = new ApplicationEntity({ aeTitle: 'FIND-SCU' });
const connected = await ae.connect({
  host,
  port: Number(port),
  calledAeTitle,
  contexts: findContexts([STUDY_ROOT]),
});
if (!connected.ok) {
  console.error(`find-scu: ${connected.error.message}`);
  process.exit(1);
}
const association = connected.value;
const query = find(association, keys, { sopClassUid: STUDY_ROOT.sopClasses.find, level: 'STUDY' });
// Each match as it arrives: values are decoded in the answer's own Specific Character Set.
for await (const ds of query) {
  const field = (tag: number) => ds.strings(tag).join('\\');
  console.log(
    [TAG.StudyDate, TAG.PatientID, TAG.PatientName, TAG.StudyDescription, TAG.StudyInstanceUID]
      .map(field)
      .join(' | '),
  );
}
const result = await query.outcome;
if (association.canSend) await association.release();
if (!result.ok) {
  console.error(`find-scu: ${result.error.message}`);
  process.exit(1);
}
const { status, matches, errorComment } = result.value;
console.log(`${matches} matches, ${describeStatus(status)}${errorComment ? `: ${errorComment}` : ''}`);
process.exitCode = statusCategory(status) === 'success' ? 0 : 1;
