/**
 * rsyslog with rsyslog-gnutls (Debian) as an Audit Record Repository for the tests: its own
 * process, config, port and certificates; RFC 5425 TLS with client certificates required
 * (x509/certvalid: signed by the test CA), octet-counted framing (imtcp's default), every message
 * written to a file as "MSGID APP-NAME MSG", one line each.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Child, type Pki, spawnChild, waitForPort } from '../server/helpers.js';

export interface Repository {
  readonly port: number;
  readonly received: string;
  readonly child: Child;
  stop(): Promise<void>;
}

export async function startRsyslog(dir: string, pki: Pki, port: number): Promise<Repository> {
  const received = join(dir, 'received.log');
  const conf = join(dir, `rsyslog-${port}.conf`);
  await writeFile(
    conf,
    `global(workDirectory="${dir}" maxMessageSize="64k"
  DefaultNetstreamDriver="gtls"
  DefaultNetstreamDriverCAFile="${pki.caCert}"
  DefaultNetstreamDriverCertFile="${pki.serverCert}"
  DefaultNetstreamDriverKeyFile="${pki.serverKey}")
module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="x509/certvalid")
input(type="imtcp" port="${port}" address="127.0.0.1")
template(name="audit" type="string" string="%msgid% %app-name% %msg%\\n")
action(type="omfile" file="${received}" template="audit")
`,
  );
  const child = spawnChild('/usr/sbin/rsyslogd', ['-n', '-f', conf, '-i', join(dir, `rsyslog-${port}.pid`)], {
    name: 'rsyslogd',
  });
  await waitForPort(port, 30_000);
  return {
    port,
    received,
    child,
    async stop() {
      if (!child.running) return;
      child.process.kill('SIGTERM');
      await child.exited;
    },
  };
}

export interface ReceivedMessage {
  readonly msgId: string;
  readonly appName: string;
  /** The XML, without the BOM of RFC 5424 6.4. */
  readonly xml: string;
}

export async function receivedMessages(repository: Repository): Promise<ReceivedMessage[]> {
  let text: string;
  try {
    text = await readFile(repository.received, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((line) => {
      const [msgId = '', appName = '', ...rest] = line.split(' ');
      return { msgId, appName, xml: rest.join(' ').replace(/^\uFEFF/, '') };
    });
}

/** Waits until a received message satisfies `test` (polling the file); rejects after `timeoutMs`. */
export async function waitForMessage(
  repository: Repository,
  test: (m: ReceivedMessage) => boolean,
  what: string,
  timeoutMs = 90_000,
): Promise<ReceivedMessage> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = (await receivedMessages(repository)).find(test);
    if (found !== undefined) return found;
    if (Date.now() > deadline)
      throw new Error(
        `the repository did not receive ${what} within ${timeoutMs} ms; it has:\n${(
          await receivedMessages(repository)
        )
          .map((m) => m.xml.slice(0, 300))
          .join('\n')}\nrsyslogd: ${repository.child.output}`,
      );
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
