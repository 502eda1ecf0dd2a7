/**
 * The `pacs` command line. Every command exits non-zero with a one-line reason on standard error
 * when it fails (ARCHITECTURE.md "Interfaces users and tests rely on").
 */
import { Command, CommanderError, Option } from 'commander';
import { ConfigError, convertFile, PacsError, readDicomFile, toDicomJson } from '../client.js';
import { registerArchiveCommand } from './archive.js';
import { registerAuditCommand } from './audit.js';
import { dumpFile } from './dump.js';
import { registerEchoCommand } from './echo.js';
import { registerFindCommand } from './find.js';
import { registerGetCommand } from './get.js';
import { registerJobsCommand } from './jobs.js';
import { registerMoveCommand } from './move.js';
import { registerMppsCommand } from './mpps.js';
import { registerRoleCommand } from './role.js';
import { registerServerCommand } from './server.js';
import { registerStoreCommand } from './store.js';
import { registerTokenCommand } from './token.js';
import { registerUserCommand } from './user.js';
import { registerWorklistCommand } from './worklist.js';

export function buildProgram(): Command {
  const program = new Command('pacs')
    .description('A DICOM archive server (PACS) and the tools that talk to it')
    .version('0.1.0')
    .showHelpAfterError(false)
    .configureOutput({ outputError: (text, write) => write(`pacs: ${text.replace(/^error: /, '')}`) })
    .exitOverride();

  program
    .command('dump')
    .description('print a DICOM file as a readable dump (like dcmdump), or as DICOM JSON')
    .argument('<file>', 'a DICOM file (Part-10 or a raw data set)')
    .option('--json', 'print the data set (file meta excluded) as DICOM JSON (PS3.18 F.2)')
    .action(async (file: string, opts: { json?: boolean }) => {
      if (opts.json) {
        const obj = await readDicomFile(file);
        process.stdout.write(`${JSON.stringify(toDicomJson(obj.dataSet), null, 2)}\n`);
        return;
      }
      const lines: string[] = [];
      await dumpFile(file, (l) => lines.push(l));
      process.stdout.write(`${lines.join('\n')}\n`);
    });

  program
    .command('convert')
    .description('re-encode a DICOM file into another uncompressed transfer syntax')
    .addOption(
      new Option(
        '--ts <uid>',
        'target transfer syntax UID, or one of: implicit, explicit, big, deflated',
      ).makeOptionMandatory(),
    )
    .argument('<in>', 'input DICOM file')
    .argument('<out>', 'output file')
    .action(async (input: string, output: string, opts: { ts: string }) => {
      await convertFile(input, output, TS_ALIASES[opts.ts] ?? opts.ts);
    });

  registerServerCommand(program);
  registerEchoCommand(program);
  registerStoreCommand(program);
  registerFindCommand(program);
  registerMoveCommand(program);
  registerGetCommand(program);
  registerJobsCommand(program);
  registerWorklistCommand(program);
  registerMppsCommand(program);
  registerArchiveCommand(program);
  registerUserCommand(program);
  registerRoleCommand(program);
  registerTokenCommand(program);
  registerAuditCommand(program);

  return program;
}

const TS_ALIASES: Record<string, string> = {
  implicit: '1.2.840.10008.1.2',
  explicit: '1.2.840.10008.1.2.1',
  big: '1.2.840.10008.1.2.2',
  deflated: '1.2.840.10008.1.2.1.99',
};

/** Runs the CLI; sets the exit code and prints one line on failure. */
export async function main(argv: readonly string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (e) {
    process.exitCode = reportError(e);
  }
}

function reportError(e: unknown): number {
  if (e instanceof CommanderError) {
    // Help and version output are not failures; usage errors (already printed) exit 2.
    return e.exitCode === 0 ? 0 : 2;
  }
  if (e instanceof ConfigError) {
    // One line per bad setting or flag; a usage error.
    for (const issue of e.issues) process.stderr.write(`pacs: ${issue}\n`);
    return 2;
  }
  if (e instanceof PacsError) {
    process.stderr.write(`pacs: ${e.message.split('\n').join(' ')}\n`);
    return e.code === 'ERR_USAGE' ? 2 : 1;
  }
  const err = e as NodeJS.ErrnoException;
  if (err?.code === 'ENOENT' || err?.code === 'EACCES' || err?.code === 'EISDIR') {
    process.stderr.write(`pacs: ${err.message}\n`);
    return 1;
  }
  process.stderr.write(`pacs: unexpected error: ${err?.stack ?? String(e)}\n`);
  return 1;
}
