/**
 * `pacs find`, the real command line: against our C-FIND SCP (table, DICOM JSON, failures with
 * status and Error Comment, usage errors) and against DCMTK's dcmqrscp holding the generated
 * objects (both models, every level).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { DicomJsonObject } from '../../src/dicom/json.js';
import { runPacs } from '../helpers/cli.js';
import { dcmtkTool } from '../helpers/corpus.js';
import {
  CHARSET_CORPUS,
  entities,
  type FindRig,
  type Rec,
  readRecs,
  startFindRig,
  storeWithStorescu,
  studyUid,
  writeGeneratedObjects,
} from './find-fixtures.js';

function parseJsonArray(stdout: string): DicomJsonObject[] {
  const parsed: unknown = JSON.parse(stdout);
  assert.ok(Array.isArray(parsed));
  return parsed as DicomJsonObject[];
}

function values(answers: readonly DicomJsonObject[], tag: string): string[] {
  return answers.map((a) => String(a[tag]?.Value?.[0] ?? '')).sort();
}

describe('pacs find against our C-FIND SCP', () => {
  let rig: FindRig;
  let limited: FindRig;
  before(async () => {
    rig = await startFindRig('sqlite');
    const japanese = CHARSET_CORPUS.filter((f) => f.endsWith('chrH31.dcm'));
    const files = [...writeGeneratedObjects(join(rig.dir, 'generated')), ...japanese];
    await storeWithStorescu(rig.port, files);
    limited = await startFindRig('sqlite', { maxResults: 3 });
    await storeWithStorescu(limited.port, writeGeneratedObjects(join(limited.dir, 'generated')));
  });
  after(async () => {
    await rig.close();
    await limited.close();
  });

  const at = (r: FindRig) => ['127.0.0.1', String(r.port)];

  test('a table with the default keys of the level, and the count', async () => {
    const r = await runPacs(['find', ...at(rig), '-k', 'PatientName=doe*']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0] ?? '', /^PatientName\s+PatientID\s+StudyDate\s+StudyTime\s+AccessionNumber/);
    assert.equal(lines.length, 6);
    assert.equal(lines[5], '4 matches');
    assert.ok(
      lines.some((l) => /^doe\^johnny\s+PAT005\s+20240116\s+091500\s+A-1003\s+CT\s+CT HEAD\s+3\s+/.test(l)),
    );
    assert.equal(r.stderr, '');
  });

  test('--json: a DICOM JSON array, with text in any script', async () => {
    const r = await runPacs(['find', ...at(rig), '--json', '-k', 'PatientName=Yamada*']);
    assert.equal(r.code, 0, r.stderr);
    const answers = parseJsonArray(r.stdout);
    assert.equal(answers.length, 1);
    assert.deepEqual(answers[0]?.['00100010']?.Value, [
      { Alphabetic: 'Yamada^Tarou', Ideographic: '山田^太郎', Phonetic: 'やまだ^たろう' },
    ]);
    assert.deepEqual(answers[0]?.['00080005']?.Value, [null, 'ISO 2022 IR 87']);
    const none = await runPacs(['find', ...at(rig), '--json', '-k', 'PatientID=NOBODY']);
    assert.equal(none.code, 0);
    assert.deepEqual(parseJsonArray(none.stdout), []);
  });

  test('Patient Root at every level, keys by tag and in sequences', async () => {
    const patients = await runPacs(['find', ...at(rig), '--root', 'patient', '--level', 'PATIENT', '--json']);
    assert.deepEqual(values(parseJsonArray(patients.stdout), '00100020'), [
      'H31EXAMPLE',
      'PAT001',
      'PAT002',
      'PAT003',
      'PAT004',
      'PAT005',
    ]);
    const series = await runPacs([
      'find',
      ...at(rig),
      '--root',
      'patient',
      '--level',
      'SERIES',
      '-k',
      '0010,0020=PAT001',
      '-k',
      `(0020,000D)=${studyUid('B')}`,
      '-k',
      'ReferencedPerformedProcedureStepSequence',
      '--json',
    ]);
    assert.equal(series.code, 0, series.stderr);
    assert.deepEqual(values(parseJsonArray(series.stdout), '0020000E'), [
      `${studyUid('B')}.1`,
      `${studyUid('B')}.2`,
    ]);
    const images = await runPacs([
      'find',
      ...at(rig),
      '-k',
      'QueryRetrieveLevel=IMAGE',
      '-k',
      `StudyInstanceUID=${studyUid('A')}`,
      '-k',
      `SeriesInstanceUID=${studyUid('A')}.2`,
    ]);
    assert.equal(images.code, 0, images.stderr);
    assert.match(images.stdout, /2 matches\n$/);
  });

  test('a failure status exits 1 with the status, the Error Comment and the offending attribute', async () => {
    const r = await runPacs(['find', ...at(rig), '--root', 'patient', '--level', 'STUDY']);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.equal(
      r.stderr,
      `pacs: C-FIND to PACS@127.0.0.1:${rig.port}: status 0xA900 (Error: data set or identifier does not match SOP Class): STUDY query needs one PatientID (0010,0020) [PatientID]\n`,
    );
    const bad = await runPacs(['find', ...at(rig), '-k', 'StudyDate=yesterday']);
    assert.equal(bad.code, 1);
    assert.match(
      bad.stderr,
      /status 0xC000 .*: StudyDate: "yesterday" is neither a DA value nor a DA range \[StudyDate\]\n$/,
    );
  });

  test('the result limit is a failure, never a short answer', async () => {
    const r = await runPacs(['find', ...at(limited)]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /status 0xA700 \(Refused: out of resources\): more than 3 matches: narrow the query\n$/,
    );
    const ok = await runPacs(['find', ...at(limited), '-k', 'PatientID=PAT001']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /2 matches\n$/);
  });

  test('0xFF01 is reported as a warning', async () => {
    const r = await runPacs(['find', ...at(rig), '-k', 'PatientID=PAT002', '-k', 'SeriesDescription']);
    assert.equal(r.code, 0);
    assert.match(r.stderr, /warning: .*0xFF01/);
  });

  test('usage errors exit 2 before connecting; network failures exit 1 in words', async () => {
    for (const [args, message] of [
      [['--root', 'worklist'], /--root: expected patient or study/],
      [['--level', 'FRAME'], /--level: expected PATIENT, STUDY, SERIES or IMAGE/],
      [['--level', 'PATIENT'], /--level: Study Root has no PATIENT level/],
      [['-k', 'NoSuchThing=1'], /-k "NoSuchThing" is neither a DICOM keyword nor a tag/],
      [['-k', 'Rows=many'], /-k Rows: "many" is not a number/],
    ] as const) {
      const r = await runPacs(['find', ...at(rig), ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    const closed = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const port = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(port));
      });
    });
    const refused = await runPacs(['find', '127.0.0.1', String(closed)]);
    assert.equal(refused.code, 1);
    assert.equal(refused.stderr, `pacs: C-FIND to PACS@127.0.0.1:${closed}: connection refused\n`);
    const wrongAe = await runPacs(['find', '--aec', 'NOTPACS', ...at(rig)]);
    assert.equal(wrongAe.code, 1);
    assert.match(
      wrongAe.stderr,
      /association rejected \(rejected-permanent, service-user, called-AE-title-not-recognized\)\n$/,
    );
  });
});

/** A free TCP port (closed again: dcmqrscp binds it next). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1');
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on port ${port} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('pacs find against DCMTK dcmqrscp', () => {
  let dir: string;
  let port: number;
  let qr: ChildProcess;
  let recs: Rec[];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pacs-dcmqrscp-'));
    const db = join(dir, 'db');
    mkdirSync(db);
    port = await freePort();
    const cfg = join(dir, 'dcmqrscp.cfg');
    writeFileSync(
      cfg,
      [
        `NetworkTCPPort  = ${port}`,
        'MaxPDUSize      = 16384',
        'MaxAssociations = 16',
        'HostTable BEGIN',
        'HostTable END',
        'VendorTable BEGIN',
        'VendorTable END',
        'AETable BEGIN',
        `DCMQRSCP   ${db}   RW   (200, 1024mb)   ANY`,
        'AETable END',
        '',
      ].join('\n'),
    );
    // Fork mode (the default): one child per association; the parent keeps listening.
    qr = spawn(dcmtkTool('dcmqrscp'), ['-c', cfg], { stdio: 'ignore' });
    await waitForPort(port, 5000);
    const files = writeGeneratedObjects(join(dir, 'generated'));
    const r = await runStorescu(port, files);
    assert.equal(r, 0);
    recs = await readRecs(files);
  });
  after(() => {
    qr.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  async function runStorescu(p: number, files: readonly string[]): Promise<number | null> {
    const child = spawn(dcmtkTool('storescu'), ['-aec', 'DCMQRSCP', '127.0.0.1', String(p), ...files], {
      env: { ...process.env, TCP_NODELAY: '1' },
      stdio: 'ignore',
    });
    return new Promise((resolve) => child.on('close', resolve));
  }

  const qrFind = (args: readonly string[]) =>
    runPacs(['find', '--aec', 'DCMQRSCP', '127.0.0.1', String(port), '--json', ...args]);

  test('Study Root STUDY: a name wild card (dcmqrscp matches case-sensitively)', async () => {
    const r = await qrFind(['-k', 'PatientName=Doe*']);
    assert.equal(r.code, 0, r.stderr);
    const expected = [...entities(recs, 'studyUid')]
      .filter(([, rs]) => rs[0]?.patientName.startsWith('Doe') === true)
      .map(([k]) => k)
      .sort();
    assert.deepEqual(values(parseJsonArray(r.stdout), '0020000D'), expected);
  });

  test('Study Root STUDY: a date range', async () => {
    const r = await qrFind(['-k', 'StudyDate=20240101-20240131']);
    assert.equal(r.code, 0, r.stderr);
    const expected = [...entities(recs, 'studyUid')]
      .filter(([, rs]) => (rs[0]?.studyDate ?? '') >= '20240101' && (rs[0]?.studyDate ?? '') <= '20240131')
      .map(([k]) => k)
      .sort();
    assert.deepEqual(values(parseJsonArray(r.stdout), '0020000D'), expected);
  });

  test('Patient Root: patients, studies of a patient, series, images', async () => {
    const patients = await qrFind(['--root', 'patient', '--level', 'PATIENT']);
    assert.deepEqual(
      values(parseJsonArray(patients.stdout), '00100020'),
      [...entities(recs, 'patientId').keys()].sort(),
    );
    const studies = await qrFind(['--root', 'patient', '--level', 'STUDY', '-k', 'PatientID=PAT001']);
    assert.deepEqual(values(parseJsonArray(studies.stdout), '0020000D'), [studyUid('A'), studyUid('B')]);
    const series = await qrFind([
      '--root',
      'patient',
      '--level',
      'SERIES',
      '-k',
      'PatientID=PAT001',
      '-k',
      `StudyInstanceUID=${studyUid('A')}`,
    ]);
    assert.deepEqual(values(parseJsonArray(series.stdout), '0020000E'), [
      `${studyUid('A')}.1`,
      `${studyUid('A')}.2`,
    ]);
    const images = await qrFind([
      '--root',
      'patient',
      '--level',
      'IMAGE',
      '-k',
      'PatientID=PAT001',
      '-k',
      `StudyInstanceUID=${studyUid('A')}`,
      '-k',
      `SeriesInstanceUID=${studyUid('A')}.1`,
    ]);
    assert.deepEqual(
      values(parseJsonArray(images.stdout), '00080018'),
      [1, 2, 3].map((i) => `${studyUid('A')}.1.${i}`),
    );
  });

  test('the table of a Study Root query', async () => {
    const r = await runPacs([
      'find',
      '--aec',
      'DCMQRSCP',
      '127.0.0.1',
      String(port),
      '-k',
      'AccessionNumber=A-100*',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^PatientName\s+PatientID/);
    assert.match(r.stdout, /3 matches\n$/);
  });

  test('a called AE title dcmqrscp does not know is a rejection', async () => {
    const r = await runPacs(['find', '--aec', 'NOBODY', '127.0.0.1', String(port)]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^pacs: C-FIND to NOBODY@127\.0\.0\.1:\d+: association rejected/);
  });
});
