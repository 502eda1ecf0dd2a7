/**
 * The audit spool: a record leaves it only once every destination has it; a failing destination
 * is retried (with backoff) while the others go on; a fan-out interrupted by a crash (a record
 * left in incoming/) is finished at the next open; a redelivered record is kept once.
 */
import assert from 'node:assert/strict';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { MemoryAuditStore } from '../../../src/archive/security/audit-store.js';
import { applicationActivity } from '../../../src/security/audit/messages.js';
import { type AuditRecord, auditRecordOf } from '../../../src/security/audit/record.js';
import { type AuditDestination, AuditSpool } from '../../../src/security/audit/spool.js';
import { tempDir } from '../../server/helpers.js';

const SOURCE = { aeTitle: 'PACS', sourceId: 'PACS', hostName: 'h', processId: '1' };
const record = (): AuditRecord =>
  auditRecordOf(applicationActivity(SOURCE, { type: 'application', action: 'start', aeTitle: 'PACS' }));

function storeDestination(
  name: string,
  store: MemoryAuditStore,
  failures = 0,
): AuditDestination & { calls: number } {
  const d = {
    name,
    calls: 0,
    async deliver(records: readonly AuditRecord[]) {
      d.calls++;
      if (d.calls <= failures) throw new Error(`${name} is down`);
      await store.add(records);
    },
    async close() {},
  };
  return d;
}

describe('audit spool', () => {
  test('a failing destination is retried while the other goes on; the record leaves once both have it', async () => {
    const dir = await tempDir('pacs-audit-spool-');
    try {
      const index = new MemoryAuditStore();
      const repo = new MemoryAuditStore();
      const flaky = storeDestination('repo', repo, 1);
      const spool = await AuditSpool.open(dir.path, [storeDestination('index', index), flaky]);
      const r = record();
      await spool.append([r]);
      await spool.settled();
      assert.equal((await index.query({})).length, 1, 'the index has it at once');
      assert.deepEqual(spool.failing(), [{ destination: 'repo', reason: 'repo is down' }]);
      const json = async (d: string) =>
        (await readdir(join(dir.path, d), { recursive: true })).filter((n) => n.endsWith('.json'));
      assert.equal((await json('repo')).length, 1, 'kept for the failing destination');
      assert.deepEqual(await json('index'), []);
      // The retry after the first backoff (1 s) delivers it.
      while ((await repo.query({})).length === 0) await new Promise((resolve) => setTimeout(resolve, 50));
      await spool.settled();
      assert.deepEqual(spool.failing(), []);
      assert.deepEqual(await json('repo'), []);
      assert.equal((await repo.query({}))[0]?.messageId, r.messageId);
      await spool.close();
    } finally {
      await dir.remove();
    }
  });

  test('records left by a crash (in incoming/, or claimed by a dead process) are delivered at the next open, once', async () => {
    const dir = await tempDir('pacs-audit-spool-');
    try {
      const r = record();
      await mkdir(join(dir.path, 'incoming'), { recursive: true });
      await mkdir(join(dir.path, 'index'), { recursive: true });
      const text = JSON.stringify({ ...r, eventTime: r.eventTime.toISOString() });
      const name = `000000000000001-1-000000000-${r.messageId}.json`;
      await writeFile(join(dir.path, 'incoming', name), text);
      // The crash came after the link into index/ (the record is in both places).
      await writeFile(join(dir.path, 'index', name), text);
      // And a process that is gone had claimed another record for sending.
      const other = record();
      const claimed = join(dir.path, 'index', '.claim-999999999');
      await mkdir(claimed);
      await writeFile(
        join(claimed, `000000000000002-1-000000001-${other.messageId}.json`),
        JSON.stringify({ ...other, eventTime: other.eventTime.toISOString() }),
      );
      const index = new MemoryAuditStore();
      const spool = await AuditSpool.open(dir.path, [storeDestination('index', index)]);
      await spool.settled();
      await spool.close();
      const kept = await index.query({});
      assert.deepEqual(kept.map((k) => k.messageId).sort(), [r.messageId, other.messageId].sort());
      const first = kept.find((k) => k.messageId === r.messageId);
      assert.equal(first?.message, r.message);
      assert.equal(first?.eventTime.toISOString(), r.eventTime.toISOString());
      assert.deepEqual(await readdir(join(dir.path, 'incoming')), []);
      assert.deepEqual(
        (await readdir(join(dir.path, 'index'), { recursive: true })).filter((n) => n.endsWith('.json')),
        [],
      );
    } finally {
      await dir.remove();
    }
  });
});
