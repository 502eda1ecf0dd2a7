/**
 * The audit trail from the bus to the index: every message kind (PS3.15 A.5.3) built from the
 * events that cause it, each valid against the A.5.1 schema (xmllint --relaxng), with its EventID,
 * participants and objects; per-object transfers aggregated per study and association; XML
 * escaping of peer-controlled text; the spool survives a restart.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { MemoryAuditStore } from '../../../src/archive/security/audit-store.js';
import { EventBus, type PacsEvent } from '../../../src/core/events.js';
import type { AuditRecord } from '../../../src/security/audit/record.js';
import { startAuditTrail } from '../../../src/security/audit/trail.js';
import { run } from '../../helpers/cli.js';
import { tempDir } from '../../server/helpers.js';
import { attributeOf, validateAuditXml } from './helpers.js';

const CT = '1.2.840.10008.5.1.4.1.1.2';
const MR = '1.2.840.10008.5.1.4.1.1.4';
const STUDY = '1.2.3.4.5';

async function auditOf(
  events: readonly PacsEvent[],
  options: { idleMs?: number } = {},
): Promise<AuditRecord[]> {
  const dir = await tempDir('pacs-audit-trail-');
  const bus = new EventBus();
  const store = new MemoryAuditStore();
  try {
    const trail = await startAuditTrail({
      events: bus,
      spoolDir: join(dir.path, 'spool'),
      aeTitle: 'PACS',
      store,
      hostName: 'pacs.example',
      aggregation: { idleMs: options.idleMs ?? 60_000 },
    });
    for (const e of events) bus.emit(e);
    await trail.close();
    // Every message left the spool once the index had it.
    assert.deepEqual(
      (await readdir(join(dir.path, 'spool', 'index'), { recursive: true })).filter((n) =>
        n.endsWith('.json'),
      ),
      [],
    );
    return (await store.query({ limit: 1000 })).reverse();
  } finally {
    await dir.remove();
  }
}

const received = (sop: string, sopClassUid: string, extra: Partial<PacsEvent> = {}): PacsEvent =>
  ({
    type: 'object-received',
    outcome: 'stored',
    sopInstanceUid: sop,
    sopClassUid,
    studyInstanceUid: STUDY,
    patientId: 'PAT1',
    patientName: 'DOE^JOHN',
    bytes: 100,
    source: 'STORESCU',
    via: 'C-STORE',
    remoteAddress: '::ffff:127.0.0.1',
    ...extra,
  }) as PacsEvent;

const EVERY_KIND: PacsEvent[] = [
  { type: 'application', action: 'start', aeTitle: 'PACS' },
  {
    type: 'authentication',
    action: 'login',
    outcome: 'success',
    user: 'alice',
    method: 'password',
    remoteAddress: '10.0.0.1',
  },
  {
    type: 'authentication',
    action: 'login',
    outcome: 'failure',
    user: 'mallory',
    method: 'password',
    remoteAddress: '10.0.0.2',
    reason: 'wrong password',
  },
  {
    type: 'authentication',
    action: 'logout',
    outcome: 'success',
    user: 'alice',
    method: 'session',
    remoteAddress: '10.0.0.1',
  },
  {
    type: 'security-alert',
    kind: 'association-rejected',
    detail: 'calling AE not recognised',
    remoteAddress: '10.0.0.3',
  },
  {
    type: 'security-alert',
    kind: 'node-authentication-failed',
    detail: 'bad client certificate',
    remoteAddress: '10.0.0.4',
  },
  { type: 'security-alert', kind: 'permission-denied', detail: 'C-MOVE not allowed', user: 'bob' },
  { type: 'security-alert', kind: 'configuration-changed', detail: 'user carol added', user: 'admin' },
  { type: 'security-alert', kind: 'integrity-failure', detail: 'object 1.2.3 failed to decrypt' },
  {
    type: 'association-failed',
    remoteAddress: '10.0.0.5',
    reason: 'called AE title not recognised',
    kind: 'rejected',
  },
  received('1.1', CT),
  received('1.2', CT),
  received('1.3', MR),
  {
    type: 'association-closed',
    callingAeTitle: 'STORESCU',
    calledAeTitle: 'PACS',
    remoteAddress: '127.0.0.1',
    role: 'acceptor',
    outcome: 'released',
    durationMs: 1,
    requests: 3,
    failures: 0,
    bytesReceived: 300,
  },
  {
    type: 'object-sent',
    sopInstanceUid: '1.1',
    bytes: 1,
    destination: 'VIEWER',
    status: 0,
    via: 'C-MOVE',
    studyInstanceUid: STUDY,
    patientId: 'PAT1',
    sopClassUid: CT,
    user: 'MOVESCU',
  },
  {
    type: 'object-sent',
    sopInstanceUid: '1.2',
    bytes: 1,
    destination: 'VIEWER',
    status: 0xa700,
    via: 'C-MOVE',
    studyInstanceUid: STUDY,
    patientId: 'PAT1',
    sopClassUid: CT,
    user: 'MOVESCU',
  },
  {
    type: 'objects-retrieved',
    via: 'WADO-RS',
    user: 'alice',
    studyInstanceUid: STUDY,
    patientId: 'PAT1',
    sopInstanceUids: ['1.1', '1.2'],
    remoteAddress: '10.0.0.1',
  },
  {
    type: 'objects-accessed',
    action: 'read',
    via: 'WADO-RS metadata',
    user: 'alice',
    studyInstanceUid: STUDY,
    patientId: 'PAT1',
  },
  {
    type: 'study-deleted',
    studyInstanceUid: STUDY,
    patientId: 'PAT1',
    sopInstanceUids: ['1.1', '1.2', '1.3'],
    user: 'admin',
  },
  {
    type: 'query',
    service: 'C-FIND',
    level: 'STUDY',
    matches: 2,
    durationMs: 1,
    source: 'FINDSCU',
    query: new Uint8Array([8, 0, 0x52, 0, 6, 0, 0, 0, 0x53, 0x54, 0x55, 0x44, 0x59, 0x20]),
    sopClassUid: '1.2.840.10008.5.1.4.1.2.2.1',
    transferSyntaxUid: '1.2.840.10008.1.2.1',
    remoteAddress: '127.0.0.1',
  },
  {
    type: 'query',
    service: 'QIDO-RS',
    level: 'STUDY',
    matches: 1,
    durationMs: 1,
    source: '127.0.0.1',
    user: 'alice',
    query: 'PatientID=PAT1&limit=10',
  },
  {
    type: 'query',
    service: 'worklist',
    level: 'WORKLIST',
    matches: 0,
    durationMs: 1,
    source: 'MODALITY',
    sopClassUid: '1.2.840.10008.5.1.4.31',
  },
  {
    type: 'order-record',
    record: 'worklist',
    action: 'create',
    user: 'ris',
    patientId: 'PAT1',
    studyInstanceUid: STUDY,
    accessionNumber: 'ACC1',
  },
  {
    type: 'order-record',
    record: 'mpps',
    action: 'update',
    user: 'MODALITY',
    patientId: 'PAT1',
    studyInstanceUid: STUDY,
  },
  { type: 'application', action: 'stop', aeTitle: 'PACS' },
];

describe('audit trail', () => {
  test('every message kind is built from its event and validates against the PS3.15 A.5.1 schema', async () => {
    const records = await auditOf(EVERY_KIND);
    const codes = records.map((r) => r.eventId);
    assert.deepEqual(codes, [
      '110100', // application start
      ...['110114', '110114', '110114'], // login, failed login, logout
      ...['110113', '110113', '110113', '110113', '110113', '110113'], // five alerts and the rejected association
      '110104', // the three C-STOREs of one study: one message, at the association's end
      '110102', // C-MOVE: begin transferring
      '110104', // WADO-RS
      ...['110103', '110105'], // accessed, deleted
      ...['110112', '110112', '110112'], // C-FIND, QIDO-RS, worklist
      ...['110109', '110111'], // order record, procedure record
      '110100', // stop
      ...['110104', '110104'], // the move's success and its failure (never one mixed message), at close
    ]);
    const verdicts = await validateAuditXml(records.map((r) => r.message));
    for (const [i, v] of verdicts.entries())
      assert.equal(v, '', `message ${i} (${records[i]?.eventId}):\n${records[i]?.message}\n${v}`);
  });

  test('messages carry the participants, objects and outcomes of their A.5.3 table', async () => {
    const records = await auditOf(EVERY_KIND);
    const [start, login, failed] = records;
    assert.equal(attributeOf(start?.message ?? '', 'EventTypeCode', 'csd-code'), '110120');
    assert.equal(attributeOf(login?.message ?? '', 'EventTypeCode', 'csd-code'), '110122');
    assert.equal(failed?.outcome, 4);
    assert.equal(failed?.userName, 'mallory');
    assert.equal(failed?.remoteAddress, '10.0.0.2');

    const store = records[10];
    assert.equal(store?.eventAction, 'C');
    assert.equal(store?.userName, 'STORESCU');
    assert.equal(store?.patientId, 'PAT1');
    assert.equal(store?.studyInstanceUid, STUDY);
    assert.equal(store?.remoteAddress, '127.0.0.1');
    const study = store?.summary.objects.find((o) => o.type === 'Study Instance UID');
    assert.deepEqual(study?.sopClasses, [
      { uid: CT, instances: 2 },
      { uid: MR, instances: 1 },
    ]);
    assert.match(
      store?.message ?? '',
      /<SOPClass UID="1\.2\.840\.10008\.5\.1\.4\.1\.1\.2" NumberOfInstances="2"\/>/,
    );
    const roles = store?.summary.participants.map((p) => [p.userId, p.requestor, p.roles]);
    assert.deepEqual(roles, [
      ['STORESCU', true, ['Source Role ID']],
      ['PACS', false, ['Destination Role ID']],
    ]);

    const [moved, moveFailed] = [records[21], records[22]];
    assert.deepEqual([moved?.outcome, moveFailed?.outcome], [0, 4]);
    // C-MOVE: the archive sends, VIEWER receives, MOVESCU asked.
    assert.deepEqual(
      moved?.summary.participants.map((p) => [p.userId, p.requestor]),
      [
        ['PACS', false],
        ['VIEWER', false],
        ['MOVESCU', true],
      ],
    );

    const find = records[15];
    const queryB64 = /<ParticipantObjectQuery>([^<]*)</.exec(find?.message ?? '')?.[1];
    assert.deepEqual(
      [...Buffer.from(queryB64 ?? '', 'base64')],
      [8, 0, 0x52, 0, 6, 0, 0, 0, 0x53, 0x54, 0x55, 0x44, 0x59, 0x20],
    );
    assert.equal(
      attributeOf(find?.message ?? '', 'ParticipantObjectIdentification', 'ParticipantObjectID'),
      '1.2.840.10008.5.1.4.1.2.2.1',
    );
    const qido = records[16];
    assert.equal(
      Buffer.from(
        /<ParticipantObjectQuery>([^<]*)</.exec(qido?.message ?? '')?.[1] ?? '',
        'base64',
      ).toString(),
      'PatientID=PAT1&limit=10',
    );
    assert.equal(qido?.userName, 'alice');
    assert.match(records[18]?.message ?? '', /<Accession Number="ACC1"\/>/);
  });

  test('transfers are written when idle for the flush delay, without an association end', async () => {
    const records = await auditOf(
      [received('2.1', CT, { via: 'STOW-RS', user: 'alice', source: 'alice' } as Partial<PacsEvent>)],
      { idleMs: 20 },
    );
    assert.deepEqual(
      records.map((r) => r.eventId),
      ['110104'],
    );
    assert.equal(records[0]?.userName, 'alice');
  });

  test('patient names and user names with < & " \' are escaped, and read back unchanged', async () => {
    const name = `O'Brien^<Tom> & "Jerry"`;
    const records = await auditOf([
      received('3.1', CT, { patientName: name, source: 'A&B<' } as Partial<PacsEvent>),
      {
        type: 'authentication',
        action: 'login',
        outcome: 'failure',
        user: '"><x y="',
        method: 'password',
        remoteAddress: '127.0.0.1',
        reason: 'line one\nline two',
      },
    ]);
    const [login, transfer] = records; // the transfer is written at close
    assert.ok(transfer?.message.includes('O&apos;Brien') || transfer?.message.includes("O'Brien"));
    assert.ok(transfer?.message.includes('&lt;Tom&gt; &amp; &quot;Jerry&quot;'), transfer?.message);
    assert.ok(!login?.message.includes('\n'), 'one line');
    assert.deepEqual(await validateAuditXml(records.map((r) => r.message)), ['', '']);
    const dir = await tempDir('pacs-audit-escape-');
    try {
      const { writeFile } = await import('node:fs/promises');
      await writeFile(join(dir.path, 't.xml'), transfer?.message ?? '');
      await writeFile(join(dir.path, 'l.xml'), login?.message ?? '');
      const xpath = async (file: string, path: string) =>
        (await run('xmllint', ['--xpath', `string(${path})`, join(dir.path, file)])).stdout.replace(
          /\n$/,
          '',
        );
      assert.equal(await xpath('t.xml', '//ParticipantObjectName'), name);
      assert.equal(await xpath('t.xml', '//ActiveParticipant[1]/@UserID'), 'A&B<');
      assert.equal(await xpath('l.xml', '//ActiveParticipant[1]/@UserID'), '"><x y="');
      assert.equal(await xpath('l.xml', '//EventOutcomeDescription'), 'method password: line one\nline two');
    } finally {
      await dir.remove();
    }
  });

  test('the schema refuses what A.5.1 does not allow (so a pass above means something)', async () => {
    const [valid] = (await auditOf([{ type: 'application', action: 'start', aeTitle: 'PACS' }])).map(
      (r) => r.message,
    );
    assert.ok(valid !== undefined);
    const broken = [
      valid.replace('EventOutcomeIndicator="0"', 'EventOutcomeIndicator="3"'),
      valid.replace(/ UserIsRequestor="false"/, ''),
      valid.replace(/<AuditSourceIdentification[^>]*>.*<\/AuditSourceIdentification>/, ''),
      valid.replace('EventDateTime="', 'EventDateTime="yesterday '),
    ];
    for (const [i, verdict] of (await validateAuditXml(broken)).entries())
      assert.match(verdict, /fails to validate|Invalid|Expecting|Did not expect/, `variant ${i} should fail`);
  });
});
