/**
 * The audit trail against a real Audit Record Repository: rsyslog with rsyslog-gnutls over mutual
 * TLS (RFC 5425, octet counting), started by the test. A C-STORE (DCMTK storescu), a C-FIND
 * (findscu), a WADO-RS retrieve and a failed login each arrive as the expected DICOM audit message,
 * each valid against the PS3.15 A.5.1 schema; messages spooled while the repository is down arrive
 * once it is up; kill -9 of the server after spooling loses nothing (sent at the next start); a
 * repository without a CA is refused at start with a one-line error.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { bootstrapAdmin } from '../../src/archive/security/bootstrap.js';
import { EventBus } from '../../src/core/events.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { readDicomFile } from '../../src/io/dicom-file.js';
import { startAuditTrail } from '../../src/security/audit/trail.js';
import { loadConfig } from '../../src/server/config.js';
import { type ServerHandle, startServer } from '../../src/server/server.js';
import { run, runPacs } from '../helpers/cli.js';
import { dcmtkTool, TEST_FILES } from '../helpers/corpus.js';
import { attributeOf, validateAuditXml } from '../security/audit/helpers.js';
import {
  firstAdmin,
  freePort,
  makePki,
  type Pki,
  spawnChild,
  startPacsServer,
  TEST_CLIENT_AES,
  tempDir,
  waitForPort,
} from '../server/helpers.js';
import {
  type ReceivedMessage,
  type Repository,
  receivedMessages,
  startRsyslog,
  waitForMessage,
} from './rsyslog.js';

const CT = join(TEST_FILES, 'CT_small.dcm');
const MR = join(TEST_FILES, 'MR_small.dcm');

let root: { path: string; remove: () => Promise<void> };
let pki: Pki;
const repositories: Repository[] = [];

before(async () => {
  root = await tempDir('pacs-audit-rsyslog-');
  pki = await makePki(root.path);
});
after(async () => {
  for (const r of repositories) await r.stop();
  await root.remove();
});

async function rsyslog(port: number, name: string): Promise<Repository> {
  const dir = join(root.path, name);
  const { mkdir } = await import('node:fs/promises');
  await mkdir(dir, { recursive: true });
  const r = await startRsyslog(dir, pki, port);
  repositories.push(r);
  return r;
}

const repositoryConfig = (port: number) => ({
  host: '127.0.0.1',
  port,
  ca: pki.caCert,
  cert: pki.clientCert,
  key: pki.clientKey,
  appName: 'pacs-test',
});

async function studyOf(file: string): Promise<string> {
  return (await readDicomFile(file)).dataSet.string(TAG.StudyInstanceUID) ?? '';
}

const isEvent = (code: string) => (m: ReceivedMessage) => attributeOf(m.xml, 'EventID', 'csd-code') === code;

async function assertValid(messages: readonly ReceivedMessage[]): Promise<void> {
  const verdicts = await validateAuditXml(messages.map((m) => m.xml));
  for (const [i, v] of verdicts.entries()) assert.equal(v, '', `${messages[i]?.xml}\n${v}`);
}

async function storescu(port: number, file: string): Promise<void> {
  const r = await run(
    dcmtkTool('storescu'),
    ['-aet', 'STORESCU', '-aec', 'PACS', '127.0.0.1', String(port), file],
    {
      env: { TCP_NODELAY: '1' },
    },
  );
  assert.equal(r.code, 0, r.stderr);
}

describe('audit trail to rsyslog over mutual TLS', () => {
  test('C-STORE, C-FIND, WADO-RS and a failed login each arrive as their DICOM audit message', async () => {
    const repository = await rsyslog(await freePort(), 'live');
    const events = new EventBus();
    const loaded = loadConfig({
      overrides: {
        server: {
          host: '127.0.0.1',
          port: await freePort(),
          http: { port: await freePort() },
          dicom: { aes: TEST_CLIENT_AES.map((a) => ({ ...a, tls: false, bindAddress: false })) },
        },
        data: { dir: join(root.path, 'data-live') },
        audit: { repositories: [repositoryConfig(repository.port)] },
      },
    });
    if (!loaded.ok) throw loaded.error;
    // The first start's admin, with a known password: WADO-RS needs credentials.
    const admin = await firstAdmin();
    const first = await bootstrapAdmin({
      dir: loaded.value.data.dir,
      adminPasswordFile: admin.args[1],
      write: () => undefined,
    });
    first?.announce();
    const started = await startServer(loaded.value, pino({ enabled: false }), { events });
    if (!started.ok) throw started.error;
    const server: ServerHandle = started.value;
    try {
      const port = server.listeners[0]?.port ?? 0;
      const study = await studyOf(CT);
      await waitForMessage(repository, isEvent('110100'), 'Application Activity (start)');

      await storescu(port, CT);
      const stored = await waitForMessage(
        repository,
        (m) => isEvent('110104')(m) && m.xml.includes(`ParticipantObjectID="${study}"`),
        'DICOM Instances Transferred for the C-STORE',
      );
      assert.equal(stored.msgId, 'IHE+RFC-3881');
      assert.equal(stored.appName, 'pacs-test');
      assert.equal(attributeOf(stored.xml, 'EventIdentification', 'EventActionCode'), 'C');
      assert.equal(attributeOf(stored.xml, 'EventIdentification', 'EventOutcomeIndicator'), '0');
      assert.match(
        stored.xml,
        /<ActiveParticipant UserID="STORESCU"[^>]*UserIsRequestor="true" NetworkAccessPointID="127\.0\.0\.1" NetworkAccessPointTypeCode="2"><RoleIDCode csd-code="110153"/,
      );
      assert.match(stored.xml, /<SOPClass UID="1\.2\.840\.10008\.5\.1\.4\.1\.1\.2" NumberOfInstances="1"\/>/);
      assert.match(stored.xml, /<ParticipantObjectName>CompressedSamples\^CT1<\/ParticipantObjectName>/);

      const find = await run(
        dcmtkTool('findscu'),
        [
          '-S',
          '-aet',
          'FINDSCU',
          '-aec',
          'PACS',
          '-k',
          'QueryRetrieveLevel=STUDY',
          '-k',
          'PatientID=1CT1',
          '-k',
          'StudyInstanceUID',
          '127.0.0.1',
          String(port),
        ],
        { env: { TCP_NODELAY: '1' } },
      );
      assert.equal(find.code, 0, find.stderr);
      const query = await waitForMessage(repository, isEvent('110112'), 'Query for the C-FIND');
      assert.equal(attributeOf(query.xml, 'ActiveParticipant', 'UserID'), 'FINDSCU');
      assert.equal(
        attributeOf(query.xml, 'ParticipantObjectIdentification', 'ParticipantObjectID'),
        '1.2.840.10008.5.1.4.1.2.2.1',
      );
      const asked = Buffer.from(/<ParticipantObjectQuery>([^<]*)</.exec(query.xml)?.[1] ?? '', 'base64');
      assert.ok(asked.includes(Buffer.from('1CT1')), 'the identifier as asked');

      const wado = await fetch(`http://127.0.0.1:${server.httpPort}/dicom-web/studies/${study}`, {
        headers: { ...admin.headers, accept: 'multipart/related; type="application/dicom"' },
      });
      assert.equal(wado.status, 200);
      await wado.arrayBuffer();
      const retrieved = await waitForMessage(
        repository,
        (m) => isEvent('110104')(m) && attributeOf(m.xml, 'EventIdentification', 'EventActionCode') === 'R',
        'DICOM Instances Transferred for the WADO-RS retrieve',
      );
      assert.match(retrieved.xml, new RegExp(`ParticipantObjectID="${study.replace(/\./g, '\\.')}"`));
      assert.match(retrieved.xml, /<SOPClass NumberOfInstances="1"\/>/);
      assert.match(
        retrieved.xml,
        /ParticipantObjectID="1CT1"[^>]*><ParticipantObjectIDTypeCode csd-code="2" codeSystemName="RFC-3881"/,
      );
      assert.match(retrieved.xml, /UserID="admin" UserIsRequestor="true"/);

      // A failed login on the login form: the identity service emits the event.
      const refused = await fetch(`http://127.0.0.1:${server.httpPort}/api/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user: 'mallory', password: 'wrong password' }),
      });
      assert.equal(refused.status, 401);
      await refused.arrayBuffer();
      const login = await waitForMessage(
        repository,
        // (the admin's successful Basic login of the WADO-RS request is one too)
        (m) =>
          isEvent('110114')(m) && attributeOf(m.xml, 'EventIdentification', 'EventOutcomeIndicator') === '4',
        'User Authentication for the failed login',
      );
      assert.equal(attributeOf(login.xml, 'EventIdentification', 'EventOutcomeIndicator'), '4');
      assert.equal(attributeOf(login.xml, 'EventTypeCode', 'csd-code'), '110122');
      assert.equal(attributeOf(login.xml, 'ActiveParticipant', 'UserID'), 'mallory');

      await assertValid([stored, query, retrieved, login]);
    } finally {
      await server.close();
    }
    // Stop is the last message; everything the trail wrote reached the repository and the index.
    await waitForMessage(
      repository,
      (m) => isEvent('110100')(m) && m.xml.includes('csd-code="110121"'),
      'Application stop',
    );
    const listed = await runPacs([
      'audit',
      '--data',
      join(root.path, 'data-live'),
      '--json',
      '--event',
      '110104',
    ]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.equal(listed.stdout.trim().split('\n').length, 2, listed.stdout);
  });

  test('C-MOVE: Begin Transferring, then DICOM Instances Transferred naming the destination and the requestor', async () => {
    const repository = await rsyslog(await freePort(), 'move');
    const destDir = join(root.path, 'move-dest');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(destDir, { recursive: true });
    const destPort = await freePort();
    const storescp = spawnChild(dcmtkTool('storescp'), ['-aet', 'DEST', '-od', destDir, String(destPort)], {
      env: { TCP_NODELAY: '1' },
      name: 'storescp',
    });
    await waitForPort(destPort);
    const loaded = loadConfig({
      overrides: {
        server: { host: '127.0.0.1', port: await freePort(), dicom: { aes: TEST_CLIENT_AES.map((a) => ({ ...a, tls: false, bindAddress: false })) } },
        data: { dir: join(root.path, 'data-move') },
        peers: [{ aet: 'DEST', host: '127.0.0.1', port: destPort, tls: false }],
        audit: { repositories: [repositoryConfig(repository.port)] },
      },
    });
    if (!loaded.ok) throw loaded.error;
    const started = await startServer(loaded.value, pino({ enabled: false }));
    if (!started.ok) throw started.error;
    const server = started.value;
    try {
      const port = server.listeners[0]?.port ?? 0;
      const study = await studyOf(MR);
      await storescu(port, MR);
      const move = await run(
        dcmtkTool('movescu'),
        [
          '-S',
          '-aet',
          'MOVESCU',
          '-aec',
          'PACS',
          '-aem',
          'DEST',
          '-k',
          'QueryRetrieveLevel=STUDY',
          '-k',
          `StudyInstanceUID=${study}`,
          '127.0.0.1',
          String(port),
        ],
        { env: { TCP_NODELAY: '1' } },
      );
      assert.equal(move.code, 0, move.stderr);
      const begin = await waitForMessage(repository, isEvent('110102'), 'Begin Transferring DICOM Instances');
      const moved = await waitForMessage(
        repository,
        (m) => isEvent('110104')(m) && attributeOf(m.xml, 'EventIdentification', 'EventActionCode') === 'R',
        'DICOM Instances Transferred for the C-MOVE',
      );
      for (const m of [begin, moved]) {
        assert.match(m.xml, new RegExp(`ParticipantObjectID="${study.replace(/\./g, '\\.')}"`));
        assert.match(
          m.xml,
          /<ActiveParticipant UserID="DEST" UserIsRequestor="false"><RoleIDCode csd-code="110152"/,
        );
        assert.match(m.xml, /<ActiveParticipant UserID="MOVESCU" UserIsRequestor="true"\/>/);
      }
      assert.match(moved.xml, /<SOPClass UID="1\.2\.840\.10008\.5\.1\.4\.1\.1\.4" NumberOfInstances="1"\/>/);
      await assertValid([begin, moved]);
    } finally {
      await server.close();
      storescp.process.kill('SIGTERM');
      await storescp.exited;
    }
  });

  test('spooled while the repository is down: sent when it is up, and after kill -9 at the next start', async () => {
    const port = await freePort();
    const data = join(root.path, 'data-down');
    const config = join(root.path, 'down.json');
    await writeFile(config, JSON.stringify({ audit: { repositories: [repositoryConfig(port)] } }));
    const spool = join(data, 'audit', 'spool', `syslog-127.0.0.1-${port}`);
    // Whether a spooled record (queued, or claimed by a sender: .claim-PID/) names this study.
    const spooledStudy = async (uid: string): Promise<boolean> => {
      for (const name of await readdir(spool, { recursive: true }).catch(() => [] as string[])) {
        if (!name.endsWith('.json')) continue;
        const text = await readFile(join(spool, name), 'utf8').catch(() => '');
        if (text.includes(`ParticipantObjectID=\\"${uid}\\"`)) return true;
      }
      return false;
    };
    const ctStudy = await studyOf(CT);
    const mrStudy = await studyOf(MR);

    // 1. The repository is down: the C-STORE's message waits in the spool; it arrives once rsyslog starts.
    let { server, port: dicomPort } = await startPacsServer([
      '--config',
      config,
      '--data',
      data,
      '--aet',
      'PACS',
    ]);
    await storescu(dicomPort, CT);
    while (!(await spooledStudy(ctStudy))) await new Promise((resolve) => setTimeout(resolve, 50));
    const repository = await rsyslog(port, 'down');
    const first = await waitForMessage(
      repository,
      (m) => isEvent('110104')(m) && m.xml.includes(`ParticipantObjectID="${ctStudy}"`),
      'the message spooled while the repository was down',
    );
    await assertValid([first]);

    // 2. Down again; a second C-STORE is spooled; the server is killed; nothing is lost.
    await repository.stop();
    await storescu(dicomPort, MR);
    // The transfer's message is spooled when the association has ended (not before the C-STORE
    // response: the trail is asynchronous); then the server dies.
    while (!(await spooledStudy(mrStudy))) await new Promise((resolve) => setTimeout(resolve, 50));
    server.process.kill('SIGKILL');
    await server.exited;
    assert.ok(await spooledStudy(mrStudy), 'the second transfer is in the spool');
    const back = await rsyslog(port, 'down-again');
    ({ server, port: dicomPort } = await startPacsServer([
      '--config',
      config,
      '--data',
      data,
      '--aet',
      'PACS',
    ]));
    try {
      const second = await waitForMessage(
        back,
        (m) => isEvent('110104')(m) && m.xml.includes(`ParticipantObjectID="${mrStudy}"`),
        'the message spooled before kill -9',
      );
      await assertValid([second]);
    } finally {
      server.process.kill('SIGTERM');
      await server.exited;
    }
  });

  test('mutual TLS: with a client certificate the repository does not trust, the message stays in the spool', async () => {
    const repository = await rsyslog(await freePort(), 'rogue');
    const dir = join(root.path, 'rogue-spool');
    const rogueKey = join(root.path, 'rogue.key');
    const rogueCert = join(root.path, 'rogue.crt');
    const made = await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      rogueKey,
      '-out',
      rogueCert,
      '-days',
      '2',
      '-subj',
      '/CN=rogue',
    ]);
    assert.equal(made.code, 0, made.stderr);
    const events = new EventBus();
    const rogue = await startAuditTrail({
      events,
      spoolDir: dir,
      aeTitle: 'PACS',
      repositories: [{ ...repositoryConfig(repository.port), cert: rogueCert, key: rogueKey }],
    });
    events.emit({ type: 'application', action: 'start', aeTitle: 'PACS' });
    await rogue.settled();
    assert.equal(rogue.failing().length, 1, 'the repository refused us');
    await rogue.close();
    const left = (await readdir(dir, { recursive: true })).filter((n) => n.endsWith('.json'));
    assert.equal(left.length, 1, 'kept in the spool');
    assert.deepEqual(await receivedMessages(repository), []);

    // With our real certificate, the next start sends it.
    const trusted = await startAuditTrail({
      events,
      spoolDir: dir,
      aeTitle: 'PACS',
      repositories: [repositoryConfig(repository.port)],
    });
    try {
      await waitForMessage(repository, isEvent('110100'), 'the message kept while refused');
    } finally {
      await trusted.close();
    }
  });

  test('a repository without a CA is refused at start with a one-line error', async () => {
    const config = join(root.path, 'bad.json');
    await writeFile(
      config,
      JSON.stringify({
        audit: {
          repositories: [{ host: '127.0.0.1', port: 6514, cert: pki.clientCert, key: pki.clientKey }],
        },
      }),
    );
    const r = await runPacs([
      'server',
      '--config',
      config,
      '--data',
      join(root.path, 'data-bad'),
      '--port',
      String(await freePort()),
    ]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /audit\.repositories\[0\]\.ca/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  });
});
