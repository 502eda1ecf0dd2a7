/**
 * examples/find-scu.ts run as a reader would run it, in a child process, against our C-FIND SCP
 * over an archive filled with generated objects.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { REPO_ROOT, run } from '../helpers/cli.js';
import {
  type FindRig,
  startFindRig,
  storeWithStorescu,
  studyUid,
  writeGeneratedObjects,
} from '../interop/find-fixtures.js';

const FIND_SCU = join(REPO_ROOT, 'dist', 'examples', 'find-scu.js');

describe('examples/find-scu', () => {
  let rig: FindRig;
  before(async () => {
    rig = await startFindRig('sqlite');
    await storeWithStorescu(rig.port, writeGeneratedObjects(join(rig.dir, 'generated')));
  });
  after(() => rig.close());

  test('prints one line per match, then the count and the status', async () => {
    const r = await run(process.execPath, [
      FIND_SCU,
      '127.0.0.1',
      String(rig.port),
      'PACS',
      'PatientName=DOE*',
      'StudyDate=20240101-',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n').sort();
    assert.deepEqual(
      lines,
      [
        '3 matches, 0x0000 (Success)',
        `20240115 | PAT001 | Doe^John | CT CHEST | ${studyUid('A')}`,
        `20240220 | PAT001 | Doe^John | MR HEAD | ${studyUid('B')}`,
        `20240116 | PAT005 | doe^johnny | CT HEAD | ${studyUid('F')}`,
      ].sort(),
    );
  });

  test('a failure status exits 1', async () => {
    const r = await run(process.execPath, [
      FIND_SCU,
      '127.0.0.1',
      String(rig.port),
      'PACS',
      'StudyDate=soon',
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /0 matches, 0xC000 .*: StudyDate: /);
  });
});
