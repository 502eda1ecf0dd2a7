/**
 * `pacs echo`: C-ECHO (Verification SCU, PS3.4 Annex A) with the round-trip time. Options follow
 * DCMTK's echoscu (`--aet`, `--aec`, HOST PORT). Every failure is one line naming its reason:
 * connection refused, association rejected (result, source and reason), aborted, timeout, TLS
 * failure, or a non-success status.
 */
import { performance } from 'node:perf_hooks';
import type { Command } from 'commander';
import { isAeTitle, isHost } from '../core/config.js';
import { PacsError, UsageError } from '../core/errors.js';
import { ApplicationEntity } from '../network/ae.js';
import { describeStatus, statusCategory } from '../network/dimse-status.js';
import type { TlsClientOptions } from '../network/transport.js';
import { echo, VERIFICATION_CONTEXT } from '../services/verification/scu.js';
import { describeNetworkFailure, integerFlag, readPem } from './common.js';

interface EchoFlags {
  aet: string;
  aec: string;
  tls?: boolean;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  repeat: string;
  timeout: string;
  maxPdu?: string;
  json?: boolean;
}

export function registerEchoCommand(program: Command): void {
  program
    .command('echo')
    .description('send C-ECHO to a DICOM peer and print the round-trip time')
    .argument('<host>', 'peer host name or address')
    .argument('<port>', 'peer port')
    .option('--aet <title>', 'our (calling) AE title', 'PACSSCU')
    .option('--aec <title>', 'the peer (called) AE title', 'PACS')
    .option('--tls', 'connect with TLS (implied by the other --tls-* options)')
    .option('--tls-ca <file>', 'CA certificates (PEM) the server certificate is verified against')
    .option('--tls-cert <file>', 'our client certificate (PEM), for servers that require one')
    .option('--tls-key <file>', 'the private key (PEM) of --tls-cert')
    .option('--repeat <n>', 'send n C-ECHO requests on one association', '1')
    .option('--timeout <seconds>', 'limit for connecting, negotiating and each response', '30')
    .option('--max-pdu <n>', 'largest PDU we receive, 4096..16777216 or 0 for unlimited (default 262144)')
    .option('--json', 'print the result as JSON')
    .action(async (host: string, port: string, flags: EchoFlags) => {
      await runEcho(host, port, flags);
    });
}

async function runEcho(host: string, portText: string, flags: EchoFlags): Promise<void> {
  if (!isHost(host))
    throw new UsageError(`HOST: expected a host name or IP address, got ${JSON.stringify(host)}`);
  const port = integerFlag('PORT', portText, 1, 65535);
  for (const [flag, value] of [
    ['--aet', flags.aet],
    ['--aec', flags.aec],
  ] as const) {
    if (!isAeTitle(value))
      throw new UsageError(
        `${flag}: expected an AE title (1 to 16 characters), got ${JSON.stringify(value)}`,
      );
  }
  const repeat = integerFlag('--repeat', flags.repeat, 1, 1_000_000);
  const seconds = Number(flags.timeout);
  if (!/^\d+(\.\d+)?$/.test(flags.timeout) || seconds <= 0 || seconds > 86400)
    throw new UsageError(
      `--timeout: expected a number of seconds from 0 to 86400, got ${JSON.stringify(flags.timeout)}`,
    );
  let maxPduLength: number | undefined;
  if (flags.maxPdu !== undefined) {
    maxPduLength = integerFlag('--max-pdu', flags.maxPdu, 0, 16777216);
    if (maxPduLength !== 0 && maxPduLength < 4096)
      throw new UsageError(
        `--max-pdu: expected an integer from 4096 to 16777216, or 0 for unlimited, got ${maxPduLength}`,
      );
  }
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined))
    throw new UsageError('--tls-cert and --tls-key go together');
  const useTls = Boolean(flags.tls || flags.tlsCa || flags.tlsCert);
  let tls: TlsClientOptions | undefined;
  if (useTls) {
    tls = {
      ...(flags.tlsCa !== undefined ? { ca: readPem('--tls-ca', flags.tlsCa) } : {}),
      ...(flags.tlsCert !== undefined ? { cert: readPem('--tls-cert', flags.tlsCert) } : {}),
      ...(flags.tlsKey !== undefined ? { key: readPem('--tls-key', flags.tlsKey) } : {}),
    };
  }

  const aec = flags.aec.trim();
  const target = `${aec}@${host.includes(':') ? `[${host}]` : host}:${port}`;
  const fail = (reason: string): never => {
    throw new PacsError('ERR_ECHO', `C-ECHO to ${target}: ${reason}`);
  };

  const timeoutMs = Math.round(seconds * 1000);
  const ae = new ApplicationEntity({
    aeTitle: flags.aet.trim(),
    ...(maxPduLength !== undefined ? { maxPduLength } : {}),
    timeouts: { connectMs: timeoutMs, acseMs: timeoutMs },
    responseTimeoutMs: timeoutMs,
  });
  const connected = await ae.connect({
    host,
    port,
    calledAeTitle: aec,
    contexts: [VERIFICATION_CONTEXT],
    ...(tls !== undefined ? { tls } : {}),
  });
  if (!connected.ok) return fail(describeNetworkFailure(connected.error, useTls, seconds));
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
