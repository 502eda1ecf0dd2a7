/**
 * `pacs archive compress` as a user runs it (bin/pacs in a child process) on an archive filled
 * through the ingest entry point: the report (objects compressed, skipped by reason, failed, bytes
 * before and after, ratio) matches what happened to the index and the files; a dry run changes
 * nothing; --modality restricts; a second run finds nothing left to do; the policy can come from
 * a config file; bad flags and bad config values are refused with one line. SQLite and PostgreSQL.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { CompressReport } from '../../src/cli/archive-compress.js';
import { UID } from '../../src/dicom/uid.js';
import { closeTranscodePool } from '../../src/io/transcode.js';
import { ingestFile, objectFiles, openTestArchive } from '../archive/compression-helpers.js';
import { runPacs } from '../helpers/cli.js';
import { TEST_FILES } from '../helpers/corpus.js';

after(() => closeTranscodePool());

const FILES = [
  'CT_small.dcm',
  'MR_small.dcm',
  'SC_rgb_jpeg_dcmd.dcm',
  'reportsi.dcm',
  'rtdose.dcm',
  'JPEG2000.dcm',
];

/** Runs `pacs archive compress ARGS --json`; its report (the command must succeed). */
async function compressJson(args: readonly string[]): Promise<CompressReport> {
  const r = await runPacs(['archive', 'compress', ...args, '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as CompressReport;
}

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`pacs archive compress (${engine})`, () => {
    it('compresses what the policy names, reports the disk saved; a dry run and a second run change nothing', async () => {
      const rig = await openTestArchive(engine);
      try {
        const uids = new Map<string, string>();
        for (const f of FILES) uids.set(f, await ingestFile(rig.archive, join(TEST_FILES, f)));
        const sizes = new Map<string, number>();
        for (const [f, uid] of uids) sizes.set(f, (await rig.archive.index.findInstance(uid))?.size ?? -1);
        // The CLI opens the index itself: this process lets go of it (SQLite) while it runs.
        await rig.archive.close();
        const where = ['--data', rig.dataDir, ...(rig.dbUrl ? ['--db', rig.dbUrl] : [])];

        const d = await compressJson([...where, '--ts', 'jpeg-ls-lossless', '--dry-run']);
        assert.equal(d.dryRun, true);
        assert.equal(d.objects, 6);
        assert.equal(d.eligible, 3);
        assert.equal(d.compressed, 0);
        assert.equal(d.bytesSaved, 0);
        assert.deepEqual(d.skippedBy, {
          'already-compressed': 1,
          'no-pixel-data': 1,
          'unsupported-pixels': 1,
        });

        // Only MR first.
        const m = await compressJson([...where, '--ts', 'j2k-lossless', '--modality', 'MR']);
        assert.equal(m.compressed, 1);
        assert.deepEqual(m.skippedBy, { modality: 4, 'already-compressed': 1 });

        const r = await compressJson([...where, '--ts', 'jpeg-ls-lossless']);
        assert.equal(r.objects, 6);
        assert.equal(r.compressed, 2, 'CT and the RGB image (MR is compressed already)');
        assert.equal(r.failed, 0);
        assert.deepEqual(r.skippedBy, {
          'already-compressed': 2,
          'no-pixel-data': 1,
          'unsupported-pixels': 1,
        });
        assert.equal(
          r.bytesBefore,
          (sizes.get('CT_small.dcm') ?? 0) + (sizes.get('SC_rgb_jpeg_dcmd.dcm') ?? 0),
        );
        assert.ok(r.bytesAfter > 0 && r.bytesAfter < r.bytesBefore);
        assert.equal(r.bytesSaved, r.bytesBefore - r.bytesAfter);
        assert.equal(r.ratio, Number((r.bytesBefore / r.bytesAfter).toFixed(3)));

        const again = await runPacs(['archive', 'compress', ...where, '--ts', 'jpeg-ls-lossless']);
        assert.equal(again.code, 0, again.stderr);
        assert.match(again.stdout, /6 objects checked .*; 0 compressed, 6 skipped \(.*already compressed 4/);

        const reopened = await openTestArchive(engine, undefined, { dataDir: rig.dataDir, dbUrl: rig.dbUrl });
        try {
          const ts = async (f: string) =>
            (await reopened.archive.index.findInstance(uids.get(f) ?? ''))?.transferSyntaxUid;
          assert.equal(await ts('MR_small.dcm'), UID.JPEG2000Lossless);
          assert.equal(await ts('CT_small.dcm'), UID.JPEGLSLossless);
          assert.equal(await ts('SC_rgb_jpeg_dcmd.dcm'), UID.JPEGLSLossless);
          assert.equal(await ts('reportsi.dcm'), '1.2.840.10008.1.2.1');
          assert.equal(await reopened.archive.index.countInstances(), 6);
          assert.equal((await objectFiles(rig.dataDir)).length, 6, 'one file per object');
        } finally {
          await reopened.archive.close();
        }
      } finally {
        await rig.close();
      }
    });
  });
}

describe('pacs archive compress: refusals', () => {
  it('bad flags and config values are refused with one line', async () => {
    const rig = await openTestArchive('sqlite');
    try {
      await ingestFile(rig.archive, join(TEST_FILES, 'CT_small.dcm'));
      await rig.archive.close();
      const cases: Array<[string[], RegExp]> = [
        [
          ['--ts', 'jpeg'],
          /^pacs: --ts: expected one of jpeg-ls-lossless, j2k-lossless, htj2k-lossless, got "jpeg"\n$/,
        ],
        [['--ts', 'none'], /^pacs: --ts: expected one of .* got "none"\n$/],
        [['--ts', 'j2k-lossless', '--modality', 'ct'], /^pacs: --modality: "ct" is not a Modality code/],
        [['--ts', 'j2k-lossless', '--min-bytes', '-3'], /^pacs: --min-bytes: expected an integer/],
        [[], /^pacs: give --ts SYNTAX \(or --config FILE with storage.compression set\)\n$/],
      ];
      for (const [args, message] of cases) {
        const r = await runPacs(['archive', 'compress', '--data', rig.dataDir, ...args]);
        assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, message);
        assert.equal(r.stderr.trim().split('\n').length, 1);
      }
      const bad = join(rig.dataDir, 'bad.json');
      await writeFile(bad, JSON.stringify({ storage: { compression: 'lzw' } }));
      const c = await runPacs(['archive', 'compress', '--data', rig.dataDir, '--config', bad]);
      assert.equal(c.code, 2);
      assert.equal(
        c.stderr,
        'pacs: storage.compression: expected one of "none", "jpeg-ls-lossless", "j2k-lossless" or "htj2k-lossless", got "lzw"\n',
      );
      const server = await runPacs(['server', '--config', bad, '--data', rig.dataDir]);
      assert.equal(server.code, 2);
      assert.equal(server.stderr, c.stderr, 'pacs server refuses it the same way');
      // A good config: its policy applies.
      const good = join(rig.dataDir, 'good.json');
      await writeFile(
        good,
        JSON.stringify({ storage: { compression: 'none', compressionByModality: { CT: 'htj2k-lossless' } } }),
      );
      const started = Date.now();
      const ok = await runPacs([
        'archive',
        'compress',
        '--data',
        rig.dataDir,
        '--config',
        good,
        '--json',
        '--remove-delay',
        '1',
      ]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.ok(Date.now() - started >= 1000, 'it waited for the delayed removal');
      const report = JSON.parse(ok.stdout) as CompressReport;
      assert.equal(report.compressed, 1);
      assert.equal(
        (await objectFiles(rig.dataDir)).length,
        1,
        'the original was removed before the command ended',
      );
      assert.deepEqual(report.policy, { target: 'none', byModality: { CT: 'htj2k-lossless' }, minBytes: 0 });
      const none = await runPacs([
        'archive',
        'compress',
        '--data',
        rig.dataDir,
        '--config',
        bad.replace('bad', 'good'),
        '--modality',
        'MR',
      ]);
      assert.equal(none.code, 2);
      assert.match(
        none.stderr,
        /^pacs: nothing to compress: the config's storage.compression is "none" for these modalities/,
      );
    } finally {
      await rig.close();
    }
  });
});
