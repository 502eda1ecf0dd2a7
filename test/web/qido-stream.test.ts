/**
 * QIDO-RS answers stream (src/web/dicomweb/qido.ts): a client that goes away after the first
 * bytes of a large answer stops the search (fewer answers built than the page holds, the 'query'
 * event still emitted once), nothing is logged as a server error, and the next request is served.
 * On SQLite and PostgreSQL.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import type { PacsEvent } from '../../src/core/events.js';
import { TAG } from '../../src/dicom/dictionary.js';
import { entryOf, makeDataSet } from '../archive/helpers.js';
import { startTestWeb, type TestWeb } from './helpers.js';

const INSTANCES = 1000;
/** Each answer carries this much text: the page (8 MB) is far more than the socket buffers hold. */
const COMMENT = 'x'.repeat(8000);

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`QIDO-RS streaming on ${engine}`, () => {
    let web: TestWeb;
    before(async () => {
      web = await startTestWeb({ engine });
      await Promise.all(
        Array.from({ length: INSTANCES }, (_, i) => {
          const ds = makeDataSet({
            studyUid: '5.1',
            seriesUid: '5.1.1',
            sopUid: `5.1.1.${i + 1}`,
            instanceNumber: i + 1,
          });
          ds.setString(TAG.ImageComments, COMMENT);
          const e = entryOf(ds);
          return web.archive.index.insertInstance(e.record, e.headers);
        }),
      );
    });
    after(async () => {
      await web?.close();
    });

    test('a client that goes away stops the search', async () => {
      const events: PacsEvent[] = [];
      const unsubscribe = web.events.subscribe((e) => events.push(e));
      const ended = new Promise<void>((resolve) => {
        const off = web.events.subscribe((e) => {
          if (e.type === 'query') {
            off();
            resolve();
          }
        });
      });
      await new Promise<void>((resolve, reject) => {
        const req = http.get(
          `${web.base}/studies/5.1/series/5.1.1/instances?includefield=ImageComments`,
          (res) => {
            assert.equal(res.statusCode, 200);
            res.once('data', () => {
              req.destroy();
              resolve();
            });
          },
        );
        req.on('error', (e) => {
          if ((e as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(e);
        });
      });
      await ended;
      unsubscribe();
      const q = events.filter((e) => e.type === 'query');
      assert.equal(q.length, 1);
      const matches = q[0]?.type === 'query' ? q[0].matches : -1;
      assert.ok(matches > 0 && matches < INSTANCES, `${matches} answers built for a client that left`);
      assert.equal(web.logLines.filter((l) => l['level'] === 50).length, 0, 'no server error logged');
      const r = await fetch(`${web.base}/studies/5.1/series/5.1.1/instances?limit=2`);
      assert.equal(r.status, 200);
      assert.equal(((await r.json()) as unknown[]).length, 2);
    });

    test('a slow reader gets the whole answer (backpressure, not buffering)', async () => {
      const body = await new Promise<string>((resolve, reject) => {
        http
          .get(`${web.base}/studies/5.1/series/5.1.1/instances?includefield=ImageComments`, (res) => {
            const chunks: Buffer[] = [];
            res.pause();
            const read = () => {
              let c: Buffer | null;
              // biome-ignore lint/suspicious/noAssignInExpressions: the read loop of a paused stream
              while ((c = res.read() as Buffer | null) !== null) chunks.push(c);
            };
            res.on('readable', () => setTimeout(read, 1));
            res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
            res.on('error', reject);
          })
          .on('error', reject);
      });
      const answers = JSON.parse(body) as Array<Record<string, { Value?: unknown[] }>>;
      assert.equal(answers.length, INSTANCES);
      assert.equal(answers[INSTANCES - 1]?.['00200013']?.Value?.[0], INSTANCES);
      assert.equal(String(answers[0]?.['00204000']?.Value?.[0]).length, COMMENT.length);
    });
  });
}
