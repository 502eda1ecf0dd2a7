/**
 * What DICOM access control costs (issue 14 target: authorization adds under 0.1 ms per DIMSE
 * request). One process: the Verification SCP served twice, without hooks and with the server's
 * (server/dicom-access.ts: admission at each association, the one policy before each request),
 * and our SCU (persistent, in this process) against each:
 *  1. C-ECHO round trips per second on one association; the difference of the per-echo times is
 *     what authorization adds to a request (client and server share this process's CPU);
 *  2. associations per second (open, one C-ECHO, release): what admission adds;
 *  3. the authorize hook called alone, in a loop: its own cost per call.
 * Each figure is the median of --rounds rounds, the scenarios taking turns.
 *
 * Run: npm run bench:dicom-access  (or node dist/bench/dicom-access.js [--echoes N] [--associations N] [--rounds N])
 */
import { MemoryAeRegistry } from '../src/archive/security/ae-registry.js';
import { EventBus } from '../src/core/events.js';
import { createLogger } from '../src/core/logger.js';
import { ApplicationEntity, type DicomServer } from '../src/network/ae.js';
import { loadConfig } from '../src/server/config.js';
import { dicomAccess } from '../src/server/dicom-access.js';
import { verificationService } from '../src/services/verification/scp.js';
import { echoClient } from './adapters.js';
import { fmt, HOST, inRounds, median, numberArg, printTable, runMain, Targets } from './common.js';

interface Figures {
  readonly echoesPerSecond: number;
  readonly associationsPerSecond: number;
}

async function measure(server: DicomServer, echoes: number, associations: number): Promise<Figures> {
  const c = await echoClient(server.address?.port ?? 0, 'PACS');
  await c.echoes(Math.min(2000, echoes)); // warm-up (JIT)
  let t = performance.now();
  await c.echoes(echoes);
  const echoesPerSecond = echoes / ((performance.now() - t) / 1000);
  await c.cycles(Math.min(50, associations));
  t = performance.now();
  await c.cycles(associations);
  return { echoesPerSecond, associationsPerSecond: associations / ((performance.now() - t) / 1000) };
}

runMain('dicom-access', async () => {
  const argv = process.argv.slice(2);
  const echoes = numberArg(argv, '--echoes', 20_000);
  const associations = numberArg(argv, '--associations', 500);
  const rounds = numberArg(argv, '--rounds', 5);

  const loaded = loadConfig({});
  if (!loaded.ok) throw loaded.error;
  const logger = createLogger({ level: 'warn' });
  const access = dicomAccess({
    config: loaded.value,
    // BENCH (echoClient's AE title) is registered: the lookup, the bindings and the policy all run.
    registry: new MemoryAeRegistry([
      { aeTitle: 'BENCH', permissions: ['echo', 'store'], bindAddress: true, host: HOST },
    ]),
    logger,
    events: new EventBus(),
  });
  const open = await new ApplicationEntity({ aeTitle: 'PACS' })
    .addService(verificationService())
    .listen({ port: 0, host: HOST });
  const guarded = await new ApplicationEntity({ aeTitle: 'PACS' })
    .addService(verificationService())
    .listen({ port: 0, host: HOST, admit: access.admit, authorize: access.authorize });

  const results = await inRounds(
    rounds,
    [
      { name: 'no hooks', measure: () => measure(open, echoes, associations) },
      { name: 'access control', measure: () => measure(guarded, echoes, associations) },
    ],
    (f) => `${fmt(f.echoesPerSecond, 0)} echoes/s, ${fmt(f.associationsPerSecond, 0)} assoc/s`,
  );
  await open.close(0);
  await guarded.close(0);

  // The hook alone, on the identity an admission gives.
  const verdict = await access.admit({
    callingAeTitle: 'BENCH',
    calledAeTitle: 'PACS',
    peerHost: HOST,
    peerCertificateSubject: undefined,
    userIdentity: undefined,
  });
  if (!verdict.accepted) throw new Error(verdict.why);
  const query = {
    command: 'C-ECHO' as const,
    abstractSyntax: '1.2.840.10008.1.1',
    moveDestination: undefined,
    identity: verdict.identity,
    peerAeTitle: 'BENCH',
    remoteAddress: HOST,
  };
  const calls = 1_000_000;
  for (let i = 0; i < 100_000; i++) access.authorize(query);
  const t = performance.now();
  for (let i = 0; i < calls; i++) if (access.authorize(query) !== undefined) throw new Error('refused');
  const hookNs = ((performance.now() - t) * 1e6) / calls;

  const [plain, checked] = results.map((r) => ({
    echoes: median(r.map((f) => f.echoesPerSecond)),
    associations: median(r.map((f) => f.associationsPerSecond)),
  }));
  if (plain === undefined || checked === undefined) throw new Error('no figures');
  const perEchoUs = 1e6 / checked.echoes - 1e6 / plain.echoes;
  const perAssociationUs = 1e6 / checked.associations - 1e6 / plain.associations;
  console.log(
    `C-ECHO, our SCU and SCP in one process, ${echoes} echoes and ${associations} associations per round, median of ${rounds}:`,
  );
  printTable(
    ['', 'echoes/s', 'associations/s'],
    [
      ['no hooks', fmt(plain.echoes, 0), fmt(plain.associations, 0)],
      ['access control', fmt(checked.echoes, 0), fmt(checked.associations, 0)],
    ],
  );
  console.log(
    `  added per request: ${fmt(perEchoUs, 1)} us; per association (admission): ${fmt(perAssociationUs, 1)} us`,
  );
  console.log(`  the authorize hook alone: ${fmt(hookNs, 0)} ns per call`);
  new Targets('issue 14')
    .add({
      what: 'authorization per DIMSE request (C-ECHO rate with and without)',
      measured: perEchoUs / 1000,
      op: '<',
      threshold: 0.1,
      show: (ms) => `${fmt(ms, 4)} ms`,
    })
    .print();
});
