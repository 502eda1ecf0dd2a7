import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseDicom } from '../../src/dicom/reader.js';
import { run, runPacs } from '../helpers/cli.js';
import { dcmtkTool, TEST_FILES } from '../helpers/corpus.js';

const tmp = mkdtempSync(join(tmpdir(), 'pacs-cli-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('pacs dump', () => {
  it('lists meta and data set like dcmdump, with sequences indented', async () => {
    const r = await runPacs(['dump', join(TEST_FILES, 'rtplan.dcm')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /# Dicom-Meta-Information-Header/);
    assert.match(r.stdout, /\(0002,0010\) UI =ImplicitVRLittleEndian/);
    assert.match(r.stdout, /\(0010,0010\) PN \[[^\]]+\]\s+#\s+\d+, 1 PatientName/);
    assert.match(r.stdout, /\(300A,0010\) SQ \(Sequence #=\d+\)/);
    assert.match(r.stdout, /\n {2}\(FFFE,E000\) na \(Item #=\d+\)\n {4}\(300A,0012\)/);
  });

  it('abbreviates long binary values and does not load bulk data', async () => {
    const r = await runPacs(['dump', join(TEST_FILES, 'CT_small.dcm')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\(7FE0,0010\) OW \(not loaded: 32768 bytes at \d+\)/);
  });

  it('prints the data set as DICOM JSON with --json', async () => {
    const r = await runPacs(['dump', '--json', join(TEST_FILES, 'CT_small.dcm')]);
    assert.equal(r.code, 0, r.stderr);
    const json = JSON.parse(r.stdout) as Record<string, { vr: string; Value?: unknown[] }>;
    assert.equal(json['00080060']?.vr, 'CS');
    assert.deepEqual(json['00080060']?.Value, ['CT']);
    assert.equal(json['00020010'], undefined, 'file meta is excluded');
  });

  it('fails with one line on stderr for a file that is not DICOM', async () => {
    const f = join(tmp, 'not-dicom.txt');
    writeFileSync(f, 'hello, this is not a DICOM file at all\n'.repeat(10));
    const r = await runPacs(['dump', f]);
    assert.notEqual(r.code, 0);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.match(r.stderr, /^pacs: not DICOM/);
  });

  it('fails with one line for a missing file and for a truncated file', async () => {
    const missing = await runPacs(['dump', join(tmp, 'nope.dcm')]);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /^pacs: .*no such file/i);
    const truncated = await runPacs(['dump', join(TEST_FILES, 'rtplan_truncated.dcm')]);
    assert.notEqual(truncated.code, 0);
    assert.equal(truncated.stderr.trim().split('\n').length, 1);
    assert.match(truncated.stderr, /unexpected end of data.* at byte \d+/);
  });
});

describe('pacs convert', () => {
  const source = join(TEST_FILES, 'MR_small.dcm');
  const original = parseDicom(readFileSync(source));

  for (const [alias, uid] of [
    ['implicit', '1.2.840.10008.1.2'],
    ['explicit', '1.2.840.10008.1.2.1'],
    ['big', '1.2.840.10008.1.2.2'],
    ['deflated', '1.2.840.10008.1.2.1.99'],
  ] as const) {
    it(`re-encodes into ${alias} VR; values and pixel bytes survive; dcmdump reads it cleanly`, async () => {
      const out = join(tmp, `mr-${alias}.dcm`);
      const r = await runPacs(['convert', '--ts', alias, source, out]);
      assert.equal(r.code, 0, r.stderr);
      const back = parseDicom(readFileSync(out));
      assert.equal(back.transferSyntax, uid);
      assert.equal(back.meta?.string(0x00020010), uid);
      const pixels = back.dataSet.bytes(0x7fe00010);
      assert.ok(pixels && Buffer.from(pixels).equals(Buffer.from(original.dataSet.bytes(0x7fe00010) ?? [])));
      assert.equal(back.dataSet.string(0x00100010), original.dataSet.string(0x00100010));
      assert.deepEqual(back.dataSet.numbers(0x00280030), original.dataSet.numbers(0x00280030));
      const dump = await run(dcmtkTool('dcmdump'), [out]);
      assert.equal(dump.code, 0);
      assert.equal(dump.stderr, '', `dcmdump warned: ${dump.stderr}`);
    });
  }

  it('refuses a lossy target without --lossy and an undecodable frame, leaving no output', async () => {
    const out = join(tmp, 'refused.dcm');
    const toJpeg = await runPacs(['convert', '--ts', '1.2.840.10008.1.2.4.50', source, out]);
    assert.notEqual(toJpeg.code, 0);
    assert.match(toJpeg.stderr, /^pacs: 1\.2\.840\.10008\.1\.2\.4\.50 \(JPEG Baseline.*is lossy/);
    const corrupt = join(TEST_FILES, 'JPEG2000-embedded-sequence-delimiter.dcm');
    const fromJ2k = await runPacs(['convert', '--ts', 'explicit', corrupt, out]);
    assert.notEqual(fromJ2k.code, 0);
    assert.match(fromJ2k.stderr, /^pacs: JPEG 2000 frame is/);
    assert.ok(!existsSync(out));
    assert.deepEqual(
      readdirSync(tmp).filter((f) => f.includes('.tmp')),
      [],
    );
  });

  it('converts to and from compressed syntaxes (--ts rle, jpeg-ls-lossless, j2k-lossless, htj2k-lossless)', async () => {
    const original = parseDicom(readFileSync(source)).dataSet.bytes(0x7fe00010);
    for (const ts of ['rle', 'jpeg-ls-lossless', 'j2k-lossless', 'htj2k-lossless']) {
      const enc = join(tmp, `${ts}.dcm`);
      const r = await runPacs(['convert', '--ts', ts, source, enc]);
      assert.equal(r.code, 0, r.stderr);
      const back = join(tmp, `${ts}-back.dcm`);
      const b = await runPacs(['convert', '--ts', 'explicit', enc, back]);
      assert.equal(b.code, 0, b.stderr);
      const pixels = parseDicom(readFileSync(back)).dataSet.bytes(0x7fe00010);
      assert.ok(pixels && original && Buffer.from(pixels).equals(Buffer.from(original)), ts);
    }
    const lossy = join(tmp, 'baseline.dcm');
    const l = await runPacs([
      'convert',
      '--ts',
      'jpeg-baseline',
      '--lossy',
      join(TEST_FILES, 'SC_rgb_rle.dcm'),
      lossy,
    ]);
    assert.equal(l.code, 0, l.stderr);
    assert.equal(parseDicom(readFileSync(lossy)).dataSet.string(0x00282110), '01');
  });

  it('leaves no partial output when the source is truncated', async () => {
    const out = join(tmp, 'partial.dcm');
    const r = await runPacs(['convert', '--ts', 'explicit', join(TEST_FILES, 'MR_truncated.dcm'), out]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /unexpected end of data/);
    assert.ok(!existsSync(out));
    assert.deepEqual(
      readdirSync(tmp).filter((f) => f.includes('.tmp')),
      [],
    );
  });

  it('reports a usage error for a missing --ts', async () => {
    const r = await runPacs(['convert', source, join(tmp, 'x.dcm')]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^pacs: required option '--ts <uid>'/);
  });
});
