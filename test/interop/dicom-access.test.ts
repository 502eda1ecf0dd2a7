/**
 * DICOM access control against DCMTK (issue 14): storescu with a user identity (username and
 * password, with and without a positive response requested) checked by an IdentityService (a fake
 * with a known user: the real one is wired by the server's caller); an unknown AE may C-ECHO and
 * C-STORE while findscu, movescu and getscu get 0x0124 Refused: Not Authorized; a registered AE
 * without `move`, a C-MOVE to a destination not allowed for the caller (0xA801), an AE bound to
 * another host, and `server.dicom.unknownAe: reject`.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { EventOf } from '../../src/core/events.js';
import type { Logger } from '../../src/core/logger.js';
import { type Config, loadConfig } from '../../src/server/config.js';
import { type ServerHandle, startServer } from '../../src/server/server.js';
import { run } from '../helpers/cli.js';
import { dcmtkTool } from '../helpers/corpus.js';
import { writeCtSeries } from '../helpers/synthetic.js';
import { fakeIdentityService } from '../server/fake-identity.js';
import { freePort, tempDir } from '../server/helpers.js';
import { memoryLogger } from '../web/helpers.js';

const DCMTK_ENV = { TCP_NODELAY: '1' };
const STUDY = '1.2.826.0.1.3680043.8.498.14001';
/** How DCMTK prints 0x0124 Refused: Not Authorized. */
const NOT_AUTHORIZED = /0x0?124\b|Refused: Not ?Authorized/i;

async function configFor(dataDir: string, dicom: object): Promise<Config> {
  const loaded = loadConfig({
    overrides: {
      server: { host: '127.0.0.1', port: await freePort(), dicom },
      data: { dir: dataDir },
      storage: { durability: 'none' },
      peers: [{ aet: 'ELSEWHERE', host: '127.0.0.1', port: 9 }],
      log: { level: 'warn' },
    } as never,
  });
  if (!loaded.ok) throw loaded.error;
  return loaded.value;
}

const output = (r: { stdout: string; stderr: string }) => `${r.stdout}${r.stderr}`;

describe('DICOM access control with DCMTK', () => {
  let work: { path: string; remove: () => Promise<void> };
  let server: ServerHandle;
  let port = 0;
  let files: string[] = [];
  const lines: Array<Record<string, unknown>> = [];
  const alerts: Array<EventOf<'security-alert'>> = [];

  before(async () => {
    work = await tempDir('pacs-interop-access-');
    files = writeCtSeries(join(work.path, 'src'), 2, { studyInstanceUid: STUDY, rows: 32, columns: 32 });
    const config = await configFor(join(work.path, 'data'), {
      aes: [
        { aeTitle: 'NOMOVE', permissions: ['echo', 'find'] },
        { aeTitle: 'MOVER', permissions: ['echo', 'find', 'move'], moveDestinations: ['MOVER'] },
        { aeTitle: 'FAR', host: '10.255.255.1', permissions: ['echo', 'store', 'find'], bindAddress: true },
      ],
    });
    const logger: Logger = memoryLogger(lines);
    const started = await startServer(config, logger, { identityService: fakeIdentityService() });
    if (!started.ok) throw started.error;
    server = started.value;
    server.events.on('security-alert', (e) => alerts.push(e));
    port = server.listeners[0]?.port ?? 0;
  });

  after(async () => {
    await server?.close();
    await work?.remove();
  });

  const tool = (name: string, args: readonly string[], files: readonly string[] = []) =>
    run(dcmtkTool(name), [...args, '127.0.0.1', String(port), ...files], { env: DCMTK_ENV });
  /** findscu, movescu or getscu at STUDY level on the study, verbose (the refusal status is printed then). */
  const qr = (name: 'findscu' | 'movescu' | 'getscu', aet: string, extra: readonly string[] = []) =>
    tool(name, [
      '-v',
      '-aet',
      aet,
      '-aec',
      'PACS',
      ...extra,
      '-S',
      '-k',
      'QueryRetrieveLevel=STUDY',
      '-k',
      `StudyInstanceUID=${STUDY}`,
    ]);

  it('storescu --user alice --password secret (and -rsp) is accepted and stores', async () => {
    const plain = await run(
      dcmtkTool('storescu'),
      ['-aec', 'PACS', '--user', 'alice', '--password', 'secret', '127.0.0.1', String(port), files[0] ?? ''],
      { env: DCMTK_ENV },
    );
    assert.equal(plain.code, 0, output(plain));
    const positive = await run(
      dcmtkTool('storescu'),
      [
        '-v',
        '-aec',
        'PACS',
        '--user',
        'alice',
        '--password',
        'secret',
        '-rsp',
        '127.0.0.1',
        String(port),
        files[1] ?? '',
      ],
      { env: DCMTK_ENV },
    );
    assert.equal(positive.code, 0, output(positive));
    assert.doesNotMatch(output(positive), /Association Rejected|Failed/i);
  });

  it('storescu with a wrong password is rejected at association, and nothing is stored', async () => {
    const before = (await readdir(join(work.path, 'data'), { recursive: true })).length;
    const r = await run(
      dcmtkTool('storescu'),
      [
        '-aec',
        'PACS',
        '--user',
        'alice',
        '--password',
        'wrong',
        '-rsp',
        '127.0.0.1',
        String(port),
        files[0] ?? '',
      ],
      { env: DCMTK_ENV },
    );
    assert.notEqual(r.code, 0);
    assert.match(output(r), /Association Rejected/i);
    assert.ok(alerts.some((a) => a.kind === 'association-rejected' && a.user === 'alice'));
    assert.ok(
      lines.some(
        (l) => l.level === 40 && /rejected: user alice: wrong user name or password/.test(String(l.msg)),
      ),
    );
    assert.equal((await readdir(join(work.path, 'data'), { recursive: true })).length, before);
  });

  it('an unknown AE: C-ECHO and C-STORE accepted; C-FIND, C-MOVE and C-GET refused with 0x0124', async () => {
    const echo = await tool('echoscu', ['-aet', 'STRANGER', '-aec', 'PACS']);
    assert.equal(echo.code, 0, output(echo));
    const store = await tool('storescu', ['-aet', 'STRANGER', '-aec', 'PACS'], [files[0] ?? '']);
    assert.equal(store.code, 0, output(store));
    const find = await qr('findscu', 'STRANGER');
    assert.match(output(find), NOT_AUTHORIZED, output(find));
    const move = await qr('movescu', 'STRANGER', ['-aem', 'STRANGER']);
    assert.match(output(move), NOT_AUTHORIZED, output(move));
    const get = await qr('getscu', 'STRANGER', ['-od', work.path]);
    assert.match(output(get), NOT_AUTHORIZED, output(get));
    assert.ok(
      lines.some(
        (l) =>
          l.level === 40 &&
          /C-GET from STRANGER refused: unknown AE STRANGER may not get/.test(String(l.msg)),
      ),
    );
  });

  it('a registered AE without move is refused a C-MOVE (0x0124) but may C-FIND', async () => {
    const find = await qr('findscu', 'NOMOVE');
    assert.equal(find.code, 0, output(find));
    assert.doesNotMatch(output(find), /0x0124/);
    const move = await qr('movescu', 'NOMOVE', ['-aem', 'NOMOVE']);
    assert.match(output(move), NOT_AUTHORIZED, output(move));
  });

  it('a C-MOVE to a destination the caller may not name is refused with 0xA801', async () => {
    const move = await qr('movescu', 'MOVER', ['-aem', 'ELSEWHERE']);
    assert.match(output(move), /0xa801|Move ?Destination ?Unknown/i, output(move));
    assert.ok(
      lines.some(
        (l) =>
          l.level === 40 &&
          /C-MOVE from MOVER refused: AE MOVER may not move to ELSEWHERE/.test(String(l.msg)),
      ),
    );
  });

  it('an AE bound to another host is rejected (calling AE title not recognized)', async () => {
    const echo = await tool('echoscu', ['-aet', 'FAR', '-aec', 'PACS']);
    assert.notEqual(echo.code, 0);
    assert.match(output(echo), /Association Rejected/i);
    assert.match(output(echo), /Calling AE Title Not Recognized/i);
  });
});

describe('server.dicom.unknownAe: reject', () => {
  it('rejects an unknown AE at association and accepts a registered one', async () => {
    const work = await tempDir('pacs-interop-closed-');
    const config = await configFor(join(work.path, 'data'), {
      unknownAe: 'reject',
      aes: [{ aeTitle: 'KNOWN', permissions: ['echo'] }],
    });
    const started = await startServer(config, memoryLogger([]));
    if (!started.ok) throw started.error;
    const server = started.value;
    const port = String(server.listeners[0]?.port ?? 0);
    try {
      const unknown = await run(
        dcmtkTool('echoscu'),
        ['-aet', 'STRANGER', '-aec', 'PACS', '127.0.0.1', port],
        { env: DCMTK_ENV },
      );
      assert.notEqual(unknown.code, 0);
      assert.match(output(unknown), /Calling AE Title Not Recognized/i);
      const known = await run(dcmtkTool('echoscu'), ['-aet', 'KNOWN', '-aec', 'PACS', '127.0.0.1', port], {
        env: DCMTK_ENV,
      });
      assert.equal(known.code, 0, output(known));
    } finally {
      await server.close();
      await work.remove();
    }
  });
});
