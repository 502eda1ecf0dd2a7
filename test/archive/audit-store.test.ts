/**
 * The audit store contract, one body on SQLite, PostgreSQL (a schema of its own) and in memory:
 * records kept once per message id (a redelivery after a crash adds nothing), read newest first
 * with each filter (since, until, user, patient, EventID, limit), summary and XML intact. And
 * `pacs audit --json` over the same index: one JSON object per message, filtered.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { auditStoreOf } from '../../src/archive/security/audit-store.js';
import { toDicomJson } from '../../src/dicom/json.js';
import { applicationActivity, query, userAuthentication } from '../../src/security/audit/messages.js';
import type { AuditRecord } from '../../src/security/audit/record.js';
import { auditRecordOf } from '../../src/security/audit/record.js';
import { buildWorklistItem } from '../../src/services/worklist/model.js';
import { runPacs } from '../helpers/cli.js';
import { ALL_ENGINES, sqliteEngine } from './helpers.js';

const SOURCE = { aeTitle: 'PACS', sourceId: 'PACS', hostName: 'pacs.example', processId: '1' };

function records(): AuditRecord[] {
  const at = (iso: string) => new Date(iso);
  const withTime = (r: AuditRecord, iso: string): AuditRecord => ({ ...r, eventTime: at(iso) });
  return [
    withTime(
      auditRecordOf(applicationActivity(SOURCE, { type: 'application', action: 'start', aeTitle: 'PACS' })),
      '2026-01-01T10:00:00.000Z',
    ),
    withTime(
      auditRecordOf(
        userAuthentication(SOURCE, {
          type: 'authentication',
          action: 'login',
          outcome: 'failure',
          user: 'mallory',
          method: 'password',
          remoteAddress: '10.1.1.1',
        }),
      ),
      '2026-01-01T11:00:00.000Z',
    ),
    withTime(
      auditRecordOf(
        query(SOURCE, {
          type: 'query',
          service: 'QIDO-RS',
          level: 'STUDY',
          matches: 1,
          durationMs: 1,
          source: '10.1.1.2',
          user: 'alice',
          query: 'PatientID=P1',
        }),
      ),
      '2026-01-01T12:00:00.000Z',
    ),
  ];
}

describe('audit store', () => {
  for (const engine of ALL_ENGINES) {
    test(`${engine.name}: kept once per message, read newest first with every filter`, async () => {
      const opened = await engine.open({ durability: 'none' });
      try {
        const store = auditStoreOf(opened.index);
        const all = records();
        await store.add(all);
        await store.add([all[1] as AuditRecord]); // redelivered: skipped
        const listed = await store.query({});
        assert.deepEqual(
          listed.map((r) => r.eventId),
          ['110112', '110114', '110100'],
        );
        const failed = listed[1];
        assert.equal(failed?.userName, 'mallory');
        assert.equal(failed?.outcome, 4);
        assert.equal(failed?.remoteAddress, '10.1.1.1');
        assert.equal(failed?.eventTime.toISOString(), '2026-01-01T11:00:00.000Z');
        assert.deepEqual(failed?.summary, all[1]?.summary);
        assert.equal(failed?.message, all[1]?.message);
        const ids = async (q: Parameters<typeof store.query>[0]) =>
          (await store.query(q)).map((r) => r.eventId);
        assert.deepEqual(await ids({ user: 'alice' }), ['110112']);
        assert.deepEqual(await ids({ eventId: '110114' }), ['110114']);
        assert.deepEqual(await ids({ since: new Date('2026-01-01T10:30:00Z') }), ['110112', '110114']);
        assert.deepEqual(await ids({ until: new Date('2026-01-01T11:00:00Z') }), ['110100']);
        assert.deepEqual(await ids({ limit: 1 }), ['110112']);
        assert.deepEqual(await ids({ patientId: 'nobody' }), []);
      } finally {
        await opened.cleanup();
      }
    });
  }

  test('pacs audit --json prints one object per message, filtered', async () => {
    const opened = await sqliteEngine.open({ durability: 'none' });
    try {
      await auditStoreOf(opened.index).add(records());
      await opened.index.close();
      const url = opened.url as string;
      const all = await runPacs(['audit', '--db', url, '--json']);
      assert.equal(all.code, 0, all.stderr);
      const lines = all.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.equal(lines.length, 3);
      assert.deepEqual(lines[0]?.['eventId'], { code: '110112', meaning: 'Query' });
      assert.equal(lines[0]?.['user'], 'alice');
      assert.ok(Array.isArray(lines[0]?.['participants']) && Array.isArray(lines[0]?.['objects']));
      const failed = await runPacs([
        'audit',
        '--db',
        url,
        '--json',
        '--user',
        'mallory',
        '--since',
        '2026-01-01T10:30:00Z',
      ]);
      assert.equal(failed.code, 0, failed.stderr);
      const one = failed.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.equal(one.length, 1);
      assert.equal(one[0]?.['outcome'], 4);
      const byEvent = await runPacs(['audit', '--db', url, '--json', '--event', '110100']);
      assert.equal(byEvent.stdout.trim().split('\n').length, 1);
      const table = await runPacs(['audit', '--db', url]);
      assert.match(table.stdout, /110114 User Authentication \(Login\)\s+4\s+mallory/);
      const bad = await runPacs(['audit', '--db', url, '--since', 'yesterday']);
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /--since: expected an ISO 8601 time or a duration/);
      assert.equal(bad.stderr.trim().split('\n').length, 1);
    } finally {
      await opened.cleanup();
    }
  });

  test('pacs worklist import and rm leave Order Records in the trail', async () => {
    const opened = await sqliteEngine.open({ durability: 'none' });
    const dir = await mkdtemp(join(tmpdir(), 'pacs-audit-wl-'));
    try {
      await opened.index.close();
      const url = opened.url as string;
      const item = toDicomJson(
        buildWorklistItem({
          patientName: 'Doe^Jane',
          patientId: 'WL1',
          accessionNumber: 'ACC9',
          studyInstanceUid: '1.2.826.0.1.3680043.8.1055.3.9',
          requestedProcedureId: 'RP9',
          requestedProcedureDescription: 'CT HEAD',
          modality: 'CT',
          stationAeTitle: 'CT1',
          startDate: '20240611',
          startTime: '090000',
          stepId: 'S9',
          stepDescription: 'HEAD',
          status: 'SCHEDULED',
        }),
      );
      await writeFile(join(dir, 'item.json'), JSON.stringify(item));
      assert.equal((await runPacs(['worklist', 'import', '--db', url, join(dir, 'item.json')])).code, 0);
      assert.equal((await runPacs(['worklist', 'import', '--db', url, join(dir, 'item.json')])).code, 0);
      assert.equal((await runPacs(['worklist', 'rm', '--db', url, '--patient-id', 'WL1'])).code, 0);
      const listed = await runPacs(['audit', '--db', url, '--json', '--patient', 'WL1']);
      assert.equal(listed.code, 0, listed.stderr);
      const lines = listed.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.deepEqual(
        lines.map((l) => [(l['eventId'] as { code: string }).code, l['action']]),
        [
          ['110109', 'D'],
          ['110109', 'U'],
          ['110109', 'C'],
        ],
      );
      assert.equal(lines[2]?.['studyInstanceUid'], '1.2.826.0.1.3680043.8.1055.3.9');
    } finally {
      await rm(dir, { recursive: true, force: true });
      await opened.cleanup();
    }
  });
});
