/**
 * Sending audit messages to an Audit Record Repository (IHE ITI-20, PS3.15 A.5): RFC 5424 syslog
 * messages over TLS (RFC 5425) with octet-counting framing ("LEN SP SYSLOG-MSG"), mutual TLS
 * (our client certificate, the repository checked against the configured CA).
 *
 * One connection per repository, opened when there is something to send and kept; a write that
 * fails or a connection the repository closed rejects the batch, which stays in the spool. TLS
 * and TCP give no application-level acknowledgement (RFC 5425 has none): a batch is taken as
 * delivered when its bytes were handed to the socket and the connection had not failed by then.
 * On a new connection the first batch also waits for the server to have accepted our certificate:
 * with TLS 1.3 the server checks it after our side of the handshake is done, so a refusal comes only
 * then. A session ticket (sent by the server after it verified us) ends the wait early; otherwise
 * FIRST_WRITE_SETTLE_MS without the connection closing.
 */
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import tls from 'node:tls';
import type { AuditRecord } from './record.js';
import type { AuditDestination } from './spool.js';

export interface RepositoryConfig {
  readonly host: string;
  readonly port: number;
  /** PEM files. */
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
  /** APP-NAME of the syslog header (default 'pacs'). */
  readonly appName?: string;
}

/** RFC 5424 6.2.1: facility 10 (security/authorization, as IHE ITI-20 says), severity 5 (notice). */
const PRI = 10 * 8 + 5;
/** IHE ITI-20: the MSGID of a message in the DICOM (RFC 3881 derived) format. */
const MSGID = 'IHE+RFC-3881';
const BOM = '\uFEFF';
const FIRST_WRITE_SETTLE_MS = 1_000;
/** A repository that does not answer the connection (TCP and TLS handshake) in this long is down. */
const CONNECT_TIMEOUT_MS = 10_000;

/** An RFC 5424 header field: printable US-ASCII without spaces, at most `max` characters, '-' when empty. */
function headerField(text: string, max: number): string {
  const clean = text.replace(/[^\x21-\x7e]/g, '_').slice(0, max);
  return clean === '' ? '-' : clean;
}

/** One RFC 5424 SYSLOG-MSG (no structured data; MSG is BOM + the UTF-8 XML, RFC 5424 6.4). */
export function syslogMessage(
  record: AuditRecord,
  hostName: string,
  appName: string,
  procId: string,
): Buffer {
  const header = `<${PRI}>1 ${record.eventTime.toISOString()} ${headerField(hostName, 255)} ${headerField(
    appName,
    48,
  )} ${headerField(procId, 128)} ${MSGID} -`;
  return Buffer.from(`${header} ${BOM}${record.message}`, 'utf8');
}

/** RFC 5425 4.3: octet counting, "MSG-LEN SP SYSLOG-MSG". */
export function octetCounted(message: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${message.length} `, 'ascii'), message]);
}

export class SyslogTlsDestination implements AuditDestination {
  readonly name: string;
  private socket: tls.TLSSocket | undefined;
  /** True until the first batch on the current connection has settled. */
  private fresh = false;
  private broken: Error | undefined;
  private files: { ca: Buffer; cert: Buffer; key: Buffer } | undefined;

  constructor(
    private readonly config: RepositoryConfig,
    private readonly hostName: string,
  ) {
    this.name = `syslog-${config.host.replace(/[^A-Za-z0-9.-]/g, '_')}-${config.port}`;
  }

  async deliver(records: readonly AuditRecord[]): Promise<void> {
    const socket = await this.connect();
    const app = this.config.appName ?? 'pacs';
    const frames = Buffer.concat(
      records.map((r) => octetCounted(syslogMessage(r, this.hostName, app, String(process.pid)))),
    );
    await new Promise<void>((resolve, reject) => {
      socket.write(frames, (e) => (e ? reject(e) : resolve()));
    });
    if (this.fresh) {
      this.fresh = false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, FIRST_WRITE_SETTLE_MS);
        function done(): void {
          clearTimeout(timer);
          socket.off('close', done);
          socket.off('session', done);
          resolve();
        }
        socket.once('close', done);
        // TLS 1.2: the handshake was complete at connect; TLS 1.3: a ticket means we were accepted.
        if (socket.getProtocol() === 'TLSv1.3') socket.once('session', done);
        else done();
      });
    }
    if (this.broken !== undefined || socket.destroyed) throw this.broken ?? new Error('connection closed');
  }

  private async connect(): Promise<tls.TLSSocket> {
    if (this.socket !== undefined && !this.socket.destroyed && this.broken === undefined) return this.socket;
    this.socket?.destroy();
    this.socket = undefined;
    this.broken = undefined;
    // Read at each new connection: a renewed certificate is used without a restart.
    this.files = {
      ca: await readFile(this.config.ca),
      cert: await readFile(this.config.cert),
      key: await readFile(this.config.key),
    };
    const { host, port } = this.config;
    const socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({
        host,
        port,
        ...this.files,
        minVersion: 'TLSv1.2',
        ...(isIP(host) === 0 ? { servername: host } : {}),
      });
      const timer = setTimeout(
        () => s.destroy(new Error(`${host}:${port} did not answer in ${CONNECT_TIMEOUT_MS / 1000} s`)),
        CONNECT_TIMEOUT_MS,
      );
      s.once('secureConnect', () => {
        clearTimeout(timer);
        resolve(s);
      });
      s.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
    socket.setKeepAlive(true, 30_000);
    const fail = (e: Error) => {
      this.broken = e;
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error(`${host}:${port} closed the connection`)));
    // A repository never sends anything back (RFC 5425); reading keeps 'end' and 'close' coming.
    socket.on('data', () => undefined);
    socket.on('end', () => socket.end());
    this.socket = socket;
    this.fresh = true;
    return socket;
  }

  async close(): Promise<void> {
    const socket = this.socket;
    this.socket = undefined;
    if (socket === undefined || socket.destroyed) return;
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      socket.end();
      setTimeout(() => socket.destroy(), 2_000).unref();
    });
  }
}
