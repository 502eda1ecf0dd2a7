/**
 * A minimal Storage SCU written with the library API: reads each file's header, plans the
 * presentation contexts (as few associations as the 128-context limit allows), and sends each
 * file with C-STORE, streamed from disk: as its bytes are when the peer accepts its transfer
 * syntax, re-encoded on the fly when it accepts only another uncompressed one.
 *
 *   npm run build && node dist/examples/store-scu.js HOST PORT CALLED_AE FILE...
 *
 * Exits 0 when every file was stored (`pacs store` is the full tool: folders, progress, report).
 */
import {
  ApplicationEntity,
  describeStatus,
  type FileInfo,
  planAssociations,
  readFileInfo,
  statusCategory,
  storeFile,
} from '../src/index.js';

const [host, port, calledAeTitle, ...paths] = process.argv.slice(2);
if (host === undefined || port === undefined || calledAeTitle === undefined || paths.length === 0) {
  console.error('usage: store-scu HOST PORT CALLED_AE FILE...');
  process.exit(2);
}

const files: FileInfo[] = [];
for (const path of paths) {
  const info = await readFileInfo(path);
  if (info.ok) files.push(info.value);
  else console.error(`store-scu: skipped ${path}: ${info.error.message}`);
}

let failures = 0;
const ae = new ApplicationEntity({ aeTitle: 'STORE-SCU' });
for (const plan of planAssociations(files)) {
  const connected = await ae.connect({ host, port: Number(port), calledAeTitle, contexts: plan.contexts });
  if (!connected.ok) {
    // Refused, rejected (connected.error.reject says why), aborted or timed out.
    console.error(`store-scu: ${connected.error.message}`);
    process.exit(1);
  }
  const association = connected.value;
  for (const [i, file] of plan.files.entries()) {
    const result = await storeFile(association, file);
    if (!result.ok) {
      failures++;
      console.log(`${file.path}: ${result.error.message}`);
      if (!association.canSend) {
        // The association is over (aborted): the rest of this plan was not sent.
        failures += plan.files.length - i - 1;
        break;
      }
      continue;
    }
    const { status, reencoded, transferSyntaxUid } = result.value;
    if (statusCategory(status) !== 'success' && statusCategory(status) !== 'warning') failures++;
    console.log(
      `${file.path}: ${describeStatus(status)}${reencoded ? `, re-encoded to ${transferSyntaxUid}` : ''}`,
    );
  }
  if (association.canSend) await association.release();
}
process.exitCode = failures > 0 ? 1 : 0;
