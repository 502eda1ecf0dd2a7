/**
 * `pacs convert`: re-encodes a DICOM file into another transfer syntax, uncompressed or
 * compressed (issue 13): native data re-encoded as it is read, pixel data decoded and/or encoded
 * frame by frame on worker threads (io/transcode.ts). JPEG baseline loses data and is written
 * only with --lossy. The output is written to a temporary file and renamed into place.
 */
import { type Command, Option } from 'commander';
import { PacsError, transferSyntax, UID } from '../client.js';

/** The names --ts takes besides a UID. */
export const TS_ALIASES: Readonly<Record<string, string>> = {
  implicit: '1.2.840.10008.1.2',
  explicit: '1.2.840.10008.1.2.1',
  big: '1.2.840.10008.1.2.2',
  deflated: '1.2.840.10008.1.2.1.99',
  rle: UID.RLELossless,
  'jpeg-ls-lossless': UID.JPEGLSLossless,
  'j2k-lossless': UID.JPEG2000Lossless,
  'htj2k-lossless': UID.HTJ2KLossless,
  'jpeg-baseline': UID.JPEGBaseline8Bit,
};

export function registerConvertCommand(program: Command): void {
  program
    .command('convert')
    .description('re-encode a DICOM file into another transfer syntax, uncompressed or compressed')
    .addOption(
      new Option(
        '--ts <uid>',
        `target transfer syntax UID, or one of: ${Object.keys(TS_ALIASES).join(', ')}`,
      ).makeOptionMandatory(),
    )
    .option('--lossy', 'allow a lossy target (jpeg-baseline): the pixel values change')
    .option('--quality <n>', 'JPEG baseline quality 1..100 (default 90)')
    .argument('<in>', 'input DICOM file')
    .argument('<out>', 'output file')
    .action(
      async (input: string, output: string, opts: { ts: string; lossy?: boolean; quality?: string }) => {
        await runConvert(input, output, opts);
      },
    );
}

async function runConvert(
  input: string,
  output: string,
  opts: { ts: string; lossy?: boolean; quality?: string },
): Promise<void> {
  const to = TS_ALIASES[opts.ts] ?? opts.ts;
  if (!transferSyntax(to)) throw new PacsError('ERR_USAGE', `--ts: ${opts.ts} is not a transfer syntax`);
  const quality = opts.quality === undefined ? undefined : Number(opts.quality);
  if (quality !== undefined && (!Number.isInteger(quality) || quality < 1 || quality > 100))
    throw new PacsError('ERR_USAGE', `--quality: expected 1..100, not ${opts.quality}`);
  // The codecs and the transcoding pool load only now (src/client.ts says why).
  const { closeTranscodePool, convertFile, needsCodec, readDicomFile, TranscodePriority, transcodeFile } =
    await import('../index.js');
  const head = await readDicomFile(input, { stopAtTag: 0x00080019 });
  if (!needsCodec(head.transferSyntax, to)) {
    await convertFile(input, output, to);
    return;
  }
  try {
    await transcodeFile(input, output, {
      to,
      lossy: opts.lossy ?? false,
      ...(quality !== undefined ? { quality } : {}),
      priority: TranscodePriority.background,
    });
  } finally {
    await closeTranscodePool();
  }
}
