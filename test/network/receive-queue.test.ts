/**
 * The receive queue (src/network/receive-queue.ts): PDVs handed to one reader, the transport paused
 * at the high-water mark and resumed at half of it, PDV values passed on as the views they are.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NetworkError } from '../../src/network/errors.js';
import type { Pdv } from '../../src/network/pdu.js';
import { ReceiveQueue, type ReceiveQueueHost } from '../../src/network/receive-queue.js';

function host(): ReceiveQueueHost & { log: string[] } {
  const log: string[] = [];
  return {
    log,
    pause: () => log.push('pause'),
    resume: () => log.push('resume'),
    readerWaiting: (w) => log.push(w ? 'waiting' : 'not-waiting'),
    readerIdle: () => log.push('idle'),
  };
}

const pdv = (data: Uint8Array): Pdv => ({ contextId: 1, isCommand: false, isLast: false, data });

describe('ReceiveQueue', () => {
  it('hands a PDV to a waiting reader at once, the same view that was received', async () => {
    const h = host();
    const q = new ReceiveQueue(h, 100);
    const chunk = new Uint8Array(50);
    const view = chunk.subarray(12, 40);
    const next = q.next();
    assert.deepEqual(h.log, ['waiting']);
    q.push(pdv(view));
    const r = await next;
    assert.equal(r.done, false);
    assert.equal(r.value?.data, view);
    assert.deepEqual(h.log, ['waiting', 'not-waiting']);
  });

  it('pauses the transport at the high-water mark and resumes it at half', async () => {
    const h = host();
    const q = new ReceiveQueue(h, 100);
    for (let i = 0; i < 4; i++) q.push(pdv(new Uint8Array(30)));
    assert.deepEqual(h.log, ['pause'], 'paused once at 120 >= 100 bytes');
    await q.next();
    assert.deepEqual(h.log, ['pause'], '90 bytes queued: still paused');
    await q.next();
    assert.deepEqual(h.log, ['pause'], '60 bytes: still over half');
    await q.next();
    assert.deepEqual(h.log, ['pause', 'resume'], '30 bytes: resumed');
  });

  it('ends with done after release once everything was read, and with the error after an abort', async () => {
    const h = host();
    const q = new ReceiveQueue(h, 100);
    q.push(pdv(new Uint8Array(1)));
    q.releaseRequested();
    assert.equal(q.readerIdle, false, 'a PDV is still unread');
    assert.equal((await q.next()).done, false);
    assert.equal((await q.next()).done, true);
    assert.equal(q.readerIdle, true);
    const aborted = new ReceiveQueue(host(), 100);
    const waiting = aborted.next();
    aborted.end({ kind: 'error', error: new NetworkError('ERR_ASSOCIATION_ABORTED', 'aborted') });
    await assert.rejects(waiting, /aborted/);
  });

  it('has one reader at a time', async () => {
    const q = new ReceiveQueue(host(), 100);
    void q.next();
    await assert.rejects(q.next(), (e: NetworkError) => e.code === 'ERR_ASSOCIATION_STATE');
  });
});
