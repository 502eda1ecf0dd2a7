/**
 * A minimal Verification SCP written with the public API: answers C-ECHO until SIGINT/SIGTERM.
 *
 *   npm run build && node dist/examples/echo-scp.js [PORT] [AE_TITLE]
 *
 * PORT 0 picks a free port; the line "listening as AE on port N" says which.
 */
import { ApplicationEntity, verificationService } from '../src/index.js';

const port = Number(process.argv[2] ?? 11113);
const aeTitle = process.argv[3] ?? 'ECHO-SCP';

const ae = new ApplicationEntity({ aeTitle }).addService(verificationService());
const server = await ae.listen({ port });
server.onAssociationEnd = (s) => {
  console.log(`${s.callingAeTitle} from ${s.remoteAddress}: ${s.requests} request(s), ${s.outcome}`);
};
server.onFailedAssociation = (error, remoteAddress) => {
  console.log(`refused ${remoteAddress}: ${error.message}`);
};
console.log(`echo-scp: listening as ${aeTitle} on port ${server.address?.port}`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    // Stop accepting; running associations get 5 seconds to finish.
    void server.close(5000).then(() => console.log('echo-scp: stopped'));
  });
}
