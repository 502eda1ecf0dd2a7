/**
 * `pacs echo`: C-ECHO (Verification SCU, PS3.4 Annex A) with the round-trip time. Options follow
 * DCMTK's echoscu (`--aet`, `--aec`, HOST PORT). Every failure is one line naming its reason:
 * connection refused, association rejected (result, source and reason), aborted, timeout, TLS
 * failure, or a non-success status.
 */
import { performance } from 'node:perf_hooks';
import type { Command } from 'commander';
import { describeStatus, echo, PacsError, statusCategory, VERIFICATION_CONTEXT } from '../client.js';
import {
  addConnectionOptions,
  type ConnectionFlags,
  connectTo,
  describeNetworkFailure,
  integerFlag,
  parseConnection,
  requestorFor,
} from './common.js';

interface EchoFlags extends ConnectionFlags {
  repeat: string;
  json?: boolean;
}

export function registerEchoCommand(program: Command): void {
  addConnectionOptions(
    program.command('echo').description('send C-ECHO to a DICOM peer and print the round-trip time'),
  )
    .option('--repeat <n>', 'send n C-ECHO requests on one association', '1')
    .option('--json', 'print the result as JSON')
    .action(async (host: string, port: string, flags: EchoFlags) => {
      await runEcho(host, port, flags);
    });
}

async function runEcho(host: string, portText: string, flags: EchoFlags): Promise<void> {
  const c = parseConnection(host, portText, flags);
  const repeat = integerFlag('--repeat', flags.repeat, 1, 1_000_000);
  const { port, useTls, target } = c;
  const seconds = c.timeoutSeconds;
  const aec = c.calledAeTitle;
  const fail = (reason: string): never => {
    throw new PacsError('ERR_ECHO', `C-ECHO to ${target}: ${reason}`);
  };

  const connected = await connectTo(requestorFor(c), c, [VERIFICATION_CONTEXT]);
  if (!connected.ok) return fail(connected.error);
  const association = connected.value;

  const times: number[] = [];
  for (let i = 0; i < repeat; i++) {
    const started = performance.now();
    const result = await echo(association);
    const elapsed = performance.now() - started;
    if (!result.ok) {
      association.abort();
      const e = result.error;
      if (e.code === 'ERR_NO_CONTEXT')
        return fail('the peer accepted the association but not the Verification SOP Class');
      if (e.code === 'ERR_DIMSE_TIMEOUT') return fail(`timeout: no C-ECHO response within ${seconds} s`);
      return fail(describeNetworkFailure(e, useTls, seconds));
    }
    const status = result.value;
    if (statusCategory(status) !== 'success') {
      await association.release().catch(() => association.abort());
      return fail(`status ${describeStatus(status)}`);
    }
    times.push(elapsed);
  }
  // The echo succeeded: a peer that aborts instead of answering our release does not change that.
  await association.release().catch(() => association.abort());

  const min = Math.min(...times);
  const max = Math.max(...times);
  const avg = times.reduce((a, b) => a + b, 0) / times.length;
  if (flags.json) {
    const round = (n: number) => Math.round(n * 1000) / 1000;
    const out = {
      host,
      port,
      callingAeTitle: flags.aet.trim(),
      calledAeTitle: aec,
      tls: useTls,
      status: 0,
      count: times.length,
      rttMs: { min: round(min), avg: round(avg), max: round(max) },
    };
    process.stdout.write(`${JSON.stringify(out)}\n`);
    return;
  }
  const fmt = (n: number) => (n < 10 ? n.toFixed(2) : n.toFixed(1));
  process.stdout.write(
    repeat === 1
      ? `C-ECHO to ${target}: success in ${fmt(avg)} ms\n`
      : `C-ECHO to ${target}: ${repeat} x success, min ${fmt(min)} / avg ${fmt(avg)} / max ${fmt(max)} ms\n`,
  );
}
