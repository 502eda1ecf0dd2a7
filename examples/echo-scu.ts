/**
 * A minimal Verification SCU written with the public API: one C-ECHO, then release.
 *
 *   npm run build && node dist/examples/echo-scu.js HOST PORT [CALLED_AE]
 *
 * Exits 0 when the peer answered Success.
 */
import { ApplicationEntity, describeStatus, echo, Status, VERIFICATION_CONTEXT } from '../src/index.js';

const [host = '127.0.0.1', port = '11112', calledAeTitle = 'ANY-SCP'] = process.argv.slice(2);

const ae = new ApplicationEntity({ aeTitle: 'ECHO-SCU' });
const connected = await ae.connect({
  host,
  port: Number(port),
  calledAeTitle,
  contexts: [VERIFICATION_CONTEXT],
});
if (!connected.ok) {
  // Refused, rejected (connected.error.reject says why), aborted or timed out.
  console.error(`echo-scu: ${connected.error.message}`);
  process.exit(1);
}
const association = connected.value;
const started = performance.now();
const result = await echo(association);
const elapsed = performance.now() - started;
if (!result.ok) {
  console.error(`echo-scu: ${result.error.message}`);
  association.abort();
  process.exit(1);
}
await association.release();
console.log(
  `echo-scu: ${calledAeTitle} answered ${describeStatus(result.value)} in ${elapsed.toFixed(2)} ms`,
);
process.exitCode = result.value === Status.Success ? 0 : 1;
