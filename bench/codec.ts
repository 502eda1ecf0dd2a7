/**
 * Codec benchmark, side by side with DCMTK (dcmdump, dcmconv) and pydicom on the same files:
 *  1. header parse (stop before Pixel Data) of 10,000 CT-like Part-10 files (512x512, 16-bit,
 *     about 100 header elements), generated once into a temporary folder and reused;
 *  2. full parse and re-write of about 1 GB of those files (DicomParser -> DataSetWriter -> /dev/null);
 *  3. one 1 GB multi-frame file streamed through convertFile in a child process: time and peak RSS.
 *
 * Run: npm run bench:codec  (or node dist/bench/codec.js [--dir DIR] [--files N] [--full-mb N] [--big-mb N])
 * The folder defaults to $TMPDIR/pacs-bench-codec (about 6.3 GB); delete it when done.
 */
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataSet } from '../src/dicom/dataset.js';
import { TAG } from '../src/dicom/dictionary.js';
import { DicomParser } from '../src/dicom/parser.js';
import { DataSetBuilder } from '../src/dicom/reader.js';
import { EXPLICIT_VR_LE } from '../src/dicom/uid.js';
import { DataSetWriter, encodePart10 } from '../src/dicom/writer.js';
import { convertFile, readDicomFile } from '../src/io/dicom-file.js';
import { arg, runMain, Targets } from './common.js';

const CT_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.2';
const FRAME_BYTES = 512 * 512 * 2;
const MB = 1024 * 1024;
/** Bump when the generated files change, so that an old folder is regenerated. */
const LAYOUT = 'v1';

interface Options {
  readonly dir: string;
  readonly files: number;
  readonly fullMB: number;
  readonly bigMB: number;
}

function parseArgs(argv: readonly string[]): Options & { streamOne?: string } {
  const get = (name: string): string | undefined => arg(argv, name);
  const streamOne = get('--stream-one');
  return {
    dir: get('--dir') ?? join(tmpdir(), 'pacs-bench-codec'),
    files: Number(get('--files') ?? 10_000),
    fullMB: Number(get('--full-mb') ?? 1024),
    bigMB: Number(get('--big-mb') ?? 1024),
    ...(streamOne ? { streamOne } : {}),
  };
}

// --- test data --------------------------------------------------------------------------------

const STUDY_UID = '1.2.826.0.1.3680043.8.498.10000000000000000000000000000001';
const SERIES_UID = '1.2.826.0.1.3680043.8.498.20000000000000000000000000000001';

/** A CT image header as a modality writes it: about 100 elements, a few sequences, private tags. */
function ctHeader(index: number, frames: number): DataSet {
  const ds = new DataSet();
  const s = (tag: number, v: string | string[]) => ds.setString(tag, v);
  const n = (tag: number, v: number | number[]) => ds.setNumbers(tag, v);
  s(TAG.SpecificCharacterSet, 'ISO_IR 100');
  s(TAG.ImageType, ['ORIGINAL', 'PRIMARY', 'AXIAL']);
  s(TAG.InstanceCreationDate, '20240131');
  s(TAG.InstanceCreationTime, '101530.123456');
  s(TAG.SOPClassUID, CT_IMAGE_STORAGE);
  s(TAG.SOPInstanceUID, `1.2.826.0.1.3680043.8.498.3${String(index).padStart(12, '0')}`);
  for (const t of [TAG.StudyDate, TAG.SeriesDate, TAG.AcquisitionDate, TAG.ContentDate]) s(t, '20240131');
  for (const t of [TAG.StudyTime, TAG.SeriesTime, TAG.AcquisitionTime, TAG.ContentTime]) s(t, '101530.123');
  s(TAG.AccessionNumber, 'ACC20240131001');
  s(TAG.Modality, 'CT');
  s(TAG.Manufacturer, 'ACME Medical Systems');
  s(TAG.InstitutionName, 'General Hospital');
  s(TAG.InstitutionAddress, '1 Hospital Road, Springfield');
  s(TAG.ReferringPhysicianName, 'Smith^John^^Dr.');
  s(TAG.StationName, 'CT01');
  s(TAG.StudyDescription, 'CT CHEST ABDOMEN PELVIS W CONTRAST');
  s(TAG.SeriesDescription, 'AXIAL 1.25mm STD');
  s(TAG.InstitutionalDepartmentName, 'Radiology');
  s(TAG.PerformingPhysicianName, 'Jones^Mary');
  s(TAG.OperatorsName, 'Tech^Alex');
  s(TAG.ManufacturerModelName, 'Scanner 9000');
  const code = (value: string, scheme: string, meaning: string) =>
    new DataSet()
      .setString(TAG.CodeValue, value)
      .setString(TAG.CodingSchemeDesignator, scheme)
      .setString(TAG.CodeMeaning, meaning);
  ds.setSequence(TAG.ProcedureCodeSequence, [code('CTCAP', 'L', 'CT Chest Abdomen Pelvis')]);
  ds.setSequence(TAG.ReferencedImageSequence, [
    new DataSet()
      .setString(TAG.ReferencedSOPClassUID, CT_IMAGE_STORAGE)
      .setString(TAG.ReferencedSOPInstanceUID, '1.2.826.0.1.3680043.8.498.40000000000000000001'),
    new DataSet()
      .setString(TAG.ReferencedSOPClassUID, CT_IMAGE_STORAGE)
      .setString(TAG.ReferencedSOPInstanceUID, '1.2.826.0.1.3680043.8.498.40000000000000000002'),
  ]);
  s(TAG.DerivationDescription, 'none');
  s(TAG.PatientName, 'Doe^Jane^Q');
  s(TAG.PatientID, 'PID0001234');
  s(TAG.IssuerOfPatientID, 'HOSP');
  s(TAG.PatientBirthDate, '19700101');
  s(TAG.PatientSex, 'F');
  s(TAG.OtherPatientIDs, 'ALT0001234');
  s(TAG.PatientAge, '054Y');
  n(TAG.PatientSize, 1.68);
  n(TAG.PatientWeight, 64.5);
  s(TAG.AdditionalPatientHistory, 'Follow-up. No known allergies.');
  s(TAG.ContrastBolusAgent, 'IOHEXOL 350');
  s(TAG.BodyPartExamined, 'CHEST');
  s(TAG.ScanOptions, 'HELICAL MODE');
  n(TAG.SliceThickness, 1.25);
  n(TAG.KVP, 120);
  n(TAG.DataCollectionDiameter, 500);
  s(TAG.SoftwareVersions, ['SW 1.2.3', 'RECON 4.5']);
  s(TAG.ProtocolName, 'CAP W CONTRAST');
  n(TAG.ReconstructionDiameter, 380);
  n(TAG.DistanceSourceToDetector, 949.075);
  n(TAG.DistanceSourceToPatient, 541);
  n(TAG.GantryDetectorTilt, 0);
  n(TAG.TableHeight, 152.5);
  s(TAG.RotationDirection, 'CW');
  n(TAG.ExposureTime, 500);
  n(TAG.XRayTubeCurrent, 250);
  n(TAG.Exposure, 125);
  s(TAG.FilterType, 'BODY FILTER');
  n(TAG.GeneratorPower, 30000);
  n(TAG.FocalSpots, 0.7);
  s(TAG.ConvolutionKernel, 'STANDARD');
  s(TAG.PatientPosition, 'FFS');
  n(TAG.RevolutionTime, 0.5);
  n(TAG.SingleCollimationWidth, 0.625);
  n(TAG.TotalCollimationWidth, 40);
  n(TAG.TableSpeed, 78.75);
  n(TAG.TableFeedPerRotation, 39.375);
  n(TAG.SpiralPitchFactor, 0.984375);
  s(TAG.StudyInstanceUID, STUDY_UID);
  s(TAG.SeriesInstanceUID, SERIES_UID);
  s(TAG.StudyID, '4711');
  n(TAG.SeriesNumber, 3);
  n(TAG.AcquisitionNumber, 1);
  n(TAG.InstanceNumber, index + 1);
  n(TAG.ImagePositionPatient, [-190, -190, -100 - index * 1.25]);
  n(TAG.ImageOrientationPatient, [1, 0, 0, 0, 1, 0]);
  s(TAG.FrameOfReferenceUID, '1.2.826.0.1.3680043.8.498.50000000000000000001');
  s(TAG.PositionReferenceIndicator, 'SN');
  n(TAG.SliceLocation, -100 - index * 1.25);
  n(TAG.SamplesPerPixel, 1);
  s(TAG.PhotometricInterpretation, 'MONOCHROME2');
  if (frames > 1) n(TAG.NumberOfFrames, frames);
  n(TAG.Rows, 512);
  n(TAG.Columns, 512);
  n(TAG.PixelSpacing, [0.742188, 0.742188]);
  n(TAG.BitsAllocated, 16);
  n(TAG.BitsStored, 16);
  n(TAG.HighBit, 15);
  n(TAG.PixelRepresentation, 1);
  ds.setNumbers(TAG.SmallestImagePixelValue, -2000, 'SS');
  ds.setNumbers(TAG.LargestImagePixelValue, 3095, 'SS');
  n(TAG.WindowCenter, [40, 400]);
  n(TAG.WindowWidth, [400, 1500]);
  n(TAG.RescaleIntercept, -1024);
  n(TAG.RescaleSlope, 1);
  s(TAG.RescaleType, 'HU');
  s(TAG.WindowCenterWidthExplanation, ['WINDOW1', 'WINDOW2']);
  s(TAG.LossyImageCompression, '00');
  s(TAG.RequestingPhysician, 'Smith^John');
  s(TAG.RequestedProcedureDescription, 'CT CAP');
  s(TAG.PerformedProcedureStepStartDate, '20240131');
  s(TAG.PerformedProcedureStepStartTime, '101000');
  s(TAG.PerformedProcedureStepID, 'PPS4711');
  s(TAG.PerformedProcedureStepDescription, 'CT CHEST ABDOMEN PELVIS');
  ds.setSequence(TAG.RequestAttributesSequence, [
    new DataSet()
      .setString(TAG.RequestedProcedureID, 'RP4711')
      .setString(TAG.ScheduledProcedureStepID, 'SPS4711')
      .setSequence(TAG.ScheduledProtocolCodeSequence, [code('P1', 'L', 'CT protocol 1')]),
  ]);
  // A vendor's private block: creator and a few elements (Explicit VR, so they keep their VRs).
  ds.setString(0x00090010, 'ACME_CT_PRIVATE', 'LO');
  ds.setString(0x00091001, 'ACME-CT-9000', 'LO');
  ds.setNumbers(0x00091002, [1, 2, 3, 4], 'SL');
  ds.setNumbers(0x00091003, 1.5, 'FD');
  ds.setBytes(0x00091004, new Uint8Array(256).fill(7), 'OB');
  ds.setString(0x00430010, 'ACME_RECON', 'LO');
  ds.setNumbers(0x00431001, [0.5, 0.25], 'DS');
  ds.setString(0x00431002, 'iterative level 3', 'LO');
  return ds;
}

/** Noise around a disc: the pixel data of one frame (its content does not matter to the codec). */
function framePixels(): Buffer {
  const px = Buffer.alloc(FRAME_BYTES);
  let seed = 12345;
  for (let y = 0; y < 512; y++) {
    for (let x = 0; x < 512; x++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      const inside = (x - 256) ** 2 + (y - 256) ** 2 < 230 ** 2;
      const v = (inside ? 1000 + ((seed >>> 16) & 0x3f) : 24) - 1024;
      px.writeInt16LE(v, (y * 512 + x) * 2);
    }
  }
  return px;
}

/** The Pixel Data element header for `length` bytes of OW (Explicit VR LE). */
function pixelDataHeader(length: number): Uint8Array {
  const chunks: Uint8Array[] = [];
  const w = new DataSetWriter((c) => chunks.push(Uint8Array.from(c)), EXPLICIT_VR_LE);
  w.valueStart(TAG.PixelData, 'OW', length);
  w.end();
  return Buffer.concat(chunks);
}

function ensureFiles(opts: Options): { ct: string[]; big: string } {
  const ctDir = join(opts.dir, `ct-${LAYOUT}`);
  const marker = join(ctDir, `.complete-${opts.files}`);
  const pixels = framePixels();
  if (!existsSync(marker)) {
    rmSync(ctDir, { recursive: true, force: true });
    mkdirSync(ctDir, { recursive: true });
    process.stdout.write(`generating ${opts.files} CT files in ${ctDir} ...`);
    const t = performance.now();
    const pd = pixelDataHeader(FRAME_BYTES);
    for (let i = 0; i < opts.files; i++) {
      const fd = openSync(join(ctDir, `ct${String(i).padStart(6, '0')}.dcm`), 'w');
      writeSync(fd, encodePart10(ctHeader(i, 1), EXPLICIT_VR_LE));
      writeSync(fd, pd);
      writeSync(fd, pixels);
      closeSync(fd);
    }
    writeFileSync(marker, '');
    console.log(` ${((performance.now() - t) / 1000).toFixed(1)} s`);
  }
  const ct = readdirSync(ctDir)
    .filter((f) => f.endsWith('.dcm'))
    .sort()
    .map((f) => join(ctDir, f))
    .slice(0, opts.files);

  const frames = Math.max(1, Math.round((opts.bigMB * MB) / FRAME_BYTES));
  const big = join(opts.dir, `big-${LAYOUT}-${frames}f.dcm`);
  if (!existsSync(big)) {
    process.stdout.write(
      `generating a ${frames}-frame file (${((frames * FRAME_BYTES) / MB).toFixed(0)} MB) ...`,
    );
    const t = performance.now();
    const tmp = `${big}.tmp`;
    const fd = openSync(tmp, 'w');
    writeSync(fd, encodePart10(ctHeader(0, frames), EXPLICIT_VR_LE));
    writeSync(fd, pixelDataHeader(frames * FRAME_BYTES));
    for (let f = 0; f < frames; f++) writeSync(fd, pixels);
    closeSync(fd);
    spawnSync('mv', [tmp, big]);
    console.log(` ${((performance.now() - t) / 1000).toFixed(1)} s`);
  }
  return { ct, big };
}

// --- our codec --------------------------------------------------------------------------------

interface Timing {
  readonly seconds: number;
  readonly files: number;
  readonly bytes: number;
  readonly note?: string;
}

/** Header parse: read 16 KiB at a time until the parser stops before Pixel Data. `bytes` is the header size. */
function oursHeaderSync(paths: readonly string[]): Timing {
  const CHUNK = 16 * 1024;
  let bytes = 0;
  let elements = 0;
  const t = performance.now();
  for (const path of paths) {
    const fd = openSync(path, 'r');
    try {
      const builder = new DataSetBuilder();
      const parser = new DicomParser(builder, { stopAtTag: TAG.PixelData });
      for (;;) {
        // A fresh buffer per read: the data set keeps views into what it was given.
        const buf = Buffer.allocUnsafe(CHUNK);
        const n = readSync(fd, buf, 0, CHUNK, null);
        if (n === 0) {
          parser.end();
          break;
        }
        parser.write(buf.subarray(0, n));
        if (parser.stopped) break;
      }
      bytes += parser.offset;
      elements += builder.root.size;
    } finally {
      closeSync(fd);
    }
  }
  const seconds = (performance.now() - t) / 1000;
  if (elements < paths.length * 90) throw new Error(`header parse read only ${elements} elements`);
  return { seconds, files: paths.length, bytes };
}

/** The same with async reads (FileHandle.read of 16 KiB), `inFlight` files at a time. */
async function oursHeaderAsync(paths: readonly string[], inFlight: number): Promise<Timing> {
  const CHUNK = 16 * 1024;
  let next = 0;
  let bytes = 0;
  const t = performance.now();
  const worker = async () => {
    while (next < paths.length) {
      const path = paths[next++] as string;
      const builder = new DataSetBuilder();
      const parser = new DicomParser(builder, { stopAtTag: TAG.PixelData });
      const fh = await open(path, 'r');
      try {
        for (;;) {
          const buf = Buffer.allocUnsafe(CHUNK);
          const { bytesRead } = await fh.read(buf, 0, CHUNK, null);
          if (bytesRead === 0) {
            parser.end();
            break;
          }
          parser.write(buf.subarray(0, bytesRead));
          if (parser.stopped) break;
        }
      } finally {
        await fh.close();
      }
      bytes += parser.offset;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return { seconds: (performance.now() - t) / 1000, files: paths.length, bytes };
}

/** Header parse through the public file API (readDicomFile), `inFlight` files at a time. */
async function oursReadDicomFile(paths: readonly string[], inFlight: number): Promise<Timing> {
  let next = 0;
  const t = performance.now();
  const worker = async () => {
    while (next < paths.length) {
      const path = paths[next++] as string;
      const r = await readDicomFile(path, { stopAtTag: TAG.PixelData });
      if (!r.stopped) throw new Error(`${path}: no pixel data`);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return { seconds: (performance.now() - t) / 1000, files: paths.length, bytes: 0 };
}

/** Full parse and re-write: DicomParser -> DataSetWriter -> /dev/null, 1 MiB reads. */
function oursFull(paths: readonly string[]): Timing {
  const CHUNK = 1024 * 1024;
  const out = openSync('/dev/null', 'w');
  let bytes = 0;
  let written = 0;
  const t = performance.now();
  try {
    for (const path of paths) {
      const fd = openSync(path, 'r');
      try {
        const writer = new DataSetWriter((c) => {
          written += c.length;
          writeSync(out, c);
        }, EXPLICIT_VR_LE);
        const parser = new DicomParser(writer);
        for (;;) {
          const buf = Buffer.allocUnsafe(CHUNK);
          const n = readSync(fd, buf, 0, CHUNK, null);
          if (n === 0) break;
          bytes += n;
          parser.write(buf.subarray(0, n));
        }
        parser.end();
        writer.end();
      } finally {
        closeSync(fd);
      }
    }
  } finally {
    closeSync(out);
  }
  const seconds = (performance.now() - t) / 1000;
  if (written < bytes * 0.95) throw new Error(`wrote ${written} of ${bytes} bytes`);
  return { seconds, files: paths.length, bytes };
}

/**
 * Child process mode: one big file through convertFile (the production path: read stream ->
 * DicomParser -> DataSetWriter -> write stream, with backpressure). Prints time, peak RSS and the
 * RSS before streaming (Node and the loaded modules) as JSON.
 */
async function streamOne(path: string, dir: string): Promise<void> {
  const out = join(dir, `stream-one-${process.pid}.dcm`);
  const before = process.memoryUsage.rss();
  const t = performance.now();
  await convertFile(path, out, EXPLICIT_VR_LE);
  const seconds = (performance.now() - t) / 1000;
  const bytes = statSync(path).size;
  if (statSync(out).size < bytes * 0.99) throw new Error('output is short');
  rmSync(out, { force: true });
  const maxRSS = process.resourceUsage().maxRSS * 1024;
  console.log(JSON.stringify({ seconds, bytes, maxRSS, before }));
}

// --- DCMTK and pydicom ------------------------------------------------------------------------

function have(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

/** Runs `cmd args... files...` in batches (many files per invocation), stdout discarded. */
function batches(cmd: string, args: readonly string[], paths: readonly string[], per = 500): number {
  const t = performance.now();
  for (let i = 0; i < paths.length; i += per) {
    const r = spawnSync(cmd, [...args, ...paths.slice(i, i + per)], {
      stdio: ['ignore', 'ignore', 'pipe'],
      maxBuffer: 64 * MB,
    });
    if (r.status !== 0) throw new Error(`${cmd} failed (${r.status}): ${String(r.stderr).slice(0, 500)}`);
  }
  return (performance.now() - t) / 1000;
}

const PYTHON = '/usr/bin/python3';

/** Runs a pydicom loop over the files (names on stdin); the script times itself, without start-up. */
function pydicom(body: string, paths: readonly string[]): number {
  const script = [
    'import io, sys, time',
    'import pydicom',
    "paths = [p for p in sys.stdin.read().split('\\n') if p]",
    't = time.perf_counter()',
    'for p in paths:',
    `    ${body}`,
    'print(time.perf_counter() - t)',
  ].join('\n');
  const r = spawnSync(PYTHON, ['-c', script], {
    input: paths.join('\n'),
    encoding: 'utf8',
    maxBuffer: 64 * MB,
  });
  if (r.status !== 0) throw new Error(`pydicom failed: ${r.stderr.slice(-500)}`);
  return Number(r.stdout.trim());
}

/** Time (s) and peak RSS (bytes) of a command, by /usr/bin/time. */
function timed(cmd: string, args: readonly string[]): { seconds: number; maxRSS: number } {
  const r = spawnSync('/usr/bin/time', ['-f', 'TIME %e %M', cmd, ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'ignore', 'pipe'],
    maxBuffer: 64 * MB,
  });
  const m = /TIME ([\d.]+) (\d+)/.exec(r.stderr);
  if (r.status !== 0 || !m) throw new Error(`${cmd} failed: ${r.stderr.slice(-500)}`);
  return { seconds: Number(m[1]), maxRSS: Number(m[2]) * 1024 };
}

// --- report -----------------------------------------------------------------------------------

interface Row {
  readonly test: string;
  readonly tool: string;
  readonly files: number;
  readonly mb: number;
  readonly seconds: number;
  readonly rss?: number;
  readonly note?: string;
}

function table(rows: readonly Row[], base: (r: Row) => Row | undefined): void {
  const header = [
    'benchmark',
    'tool',
    'files',
    'MB',
    's',
    'files/s',
    'MB/s',
    'peak RSS',
    'ours (1st row) is',
    'note',
  ];
  const lines = rows.map((r) => {
    const b = base(r);
    const x = b && b !== r ? r.seconds / b.seconds : 0;
    const ratio = x === 0 ? '' : x >= 1 ? `${x.toFixed(1)}x faster` : `${(1 / x).toFixed(1)}x slower`;
    return [
      r.test,
      r.tool,
      String(r.files),
      r.mb.toFixed(0),
      r.seconds.toFixed(2),
      (r.files / r.seconds).toFixed(0),
      (r.mb / r.seconds).toFixed(0),
      r.rss === undefined ? '' : `${(r.rss / MB).toFixed(0)} MB`,
      ratio,
      r.note ?? '',
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] as string).length)));
  const fmt = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i >= 2 && i <= 7 ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number)))
      .join('  ');
  console.log(fmt(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const l of lines) console.log(fmt(l));
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.streamOne) {
    await streamOne(opts.streamOne, opts.dir);
    return;
  }
  mkdirSync(opts.dir, { recursive: true });
  const { ct, big } = ensureFiles(opts);
  const fileMB = statSync(ct[0] as string).size / MB;
  const fullCount = Math.min(ct.length, Math.max(1, Math.round(opts.fullMB / fileMB)));
  const full = ct.slice(0, fullCount);
  const fullMB = full.length * fileMB;
  const dcmtk = have('dcmdump', ['--version']);
  const py = have(PYTHON, ['-c', 'import pydicom']);
  if (!dcmtk) console.log('DCMTK not found (apt-get install -y dcmtk): its rows are left out');
  if (!py) console.log('pydicom not found (apt-get install -y python3-pydicom): its rows are left out');

  // Warm the page cache, so that every tool reads from memory.
  oursFull(ct.slice(0, Math.min(ct.length, 20)));
  for (const p of ct) closeSync(openSync(p, 'r'));
  spawnSync('cat', [big], { stdio: ['ignore', 'ignore', 'ignore'] });

  const rows: Row[] = [];
  const headerTest = `header parse (${ct.length} files)`;
  console.log(`\n${headerTest} ...`);
  const h = oursHeaderSync(ct);
  rows.push({
    test: headerTest,
    tool: 'ours (DicomParser, stopAtTag)',
    files: h.files,
    mb: h.bytes / MB,
    seconds: h.seconds,
    note: 'sync reads of 16 KiB',
  });
  const ha = await oursHeaderAsync(ct, 8);
  rows.push({
    test: headerTest,
    tool: 'ours (DicomParser, async reads)',
    files: ha.files,
    mb: ha.bytes / MB,
    seconds: ha.seconds,
    note: 'FileHandle.read of 16 KiB, 8 in flight',
  });
  const hr = await oursReadDicomFile(ct, 8);
  rows.push({
    test: headerTest,
    tool: 'ours (readDicomFile)',
    files: hr.files,
    mb: h.bytes / MB,
    seconds: hr.seconds,
    note: 'read stream of 256 KiB chunks, 8 in flight',
  });
  if (dcmtk) {
    const s = batches('dcmdump', ['-q', '-M', '+sb', '7fe0,0010'], ct);
    rows.push({
      test: headerTest,
      tool: 'DCMTK dcmdump -M +sb 7fe0,0010',
      files: ct.length,
      mb: h.bytes / MB,
      seconds: s,
      note: '500 files per run; prints the dump',
    });
  }
  if (py) {
    const s = pydicom('pydicom.dcmread(p, stop_before_pixels=True)', ct);
    rows.push({
      test: headerTest,
      tool: 'pydicom dcmread(stop_before_pixels)',
      files: ct.length,
      mb: h.bytes / MB,
      seconds: s,
    });
  }

  const fullTest = `full parse + write (${(fullMB / 1024).toFixed(2)} GB)`;
  console.log(`${fullTest} ...`);
  const f = oursFull(full);
  rows.push({
    test: fullTest,
    tool: 'ours (DicomParser -> DataSetWriter)',
    files: f.files,
    mb: f.bytes / MB,
    seconds: f.seconds,
    note: 'to /dev/null',
  });
  if (dcmtk) {
    const s = batches('dcmdump', ['-q', '+M'], full);
    rows.push({
      test: fullTest,
      tool: 'DCMTK dcmdump +M',
      files: full.length,
      mb: fullMB,
      seconds: s,
      note: 'parse only (loads all values)',
    });
    const few = full.slice(0, Math.min(full.length, 200));
    const t = performance.now();
    for (const p of few) {
      const r = spawnSync('dcmconv', ['+te', p, '/dev/null'], { stdio: 'ignore' });
      if (r.status !== 0) throw new Error(`dcmconv failed on ${p}`);
    }
    rows.push({
      test: fullTest,
      tool: 'DCMTK dcmconv +te',
      files: few.length,
      mb: few.length * fileMB,
      seconds: (performance.now() - t) / 1000,
      note: 'one process per file: start-up dominates',
    });
  }
  if (py) {
    const s = pydicom('pydicom.dcmread(p).save_as(io.BytesIO())', full);
    rows.push({
      test: fullTest,
      tool: 'pydicom dcmread + save_as',
      files: full.length,
      mb: fullMB,
      seconds: s,
      note: 'to memory',
    });
  }

  const bigMB = statSync(big).size / MB;
  const bigTest = `one ${(bigMB / 1024).toFixed(2)} GB file`;
  console.log(`${bigTest} ...`);
  const child = spawnSync(
    process.execPath,
    [fileURLToPath(import.meta.url), '--stream-one', big, '--dir', opts.dir],
    {
      encoding: 'utf8',
      maxBuffer: MB,
    },
  );
  if (child.status !== 0) throw new Error(`stream-one failed: ${child.stderr}`);
  const one = JSON.parse(child.stdout.trim().split('\n').pop() as string) as {
    seconds: number;
    maxRSS: number;
    before: number;
  };
  rows.push({
    test: bigTest,
    tool: 'ours (convertFile, streaming)',
    files: 1,
    mb: bigMB,
    seconds: one.seconds,
    rss: one.maxRSS,
    note: `to a file; ${(one.before / MB).toFixed(0)} MB of the RSS is Node and modules before streaming`,
  });
  if (dcmtk) {
    const out = join(opts.dir, 'dcmconv-big.dcm');
    const r = timed('dcmconv', ['+te', big, out]);
    rmSync(out, { force: true });
    rows.push({
      test: bigTest,
      tool: 'DCMTK dcmconv +te',
      files: 1,
      mb: bigMB,
      seconds: r.seconds,
      rss: r.maxRSS,
      note: 'to a file',
    });
  }
  if (py) {
    const r = timed(PYTHON, [
      '-c',
      `import io, pydicom; pydicom.dcmread(${JSON.stringify(big)}).save_as(io.BytesIO())`,
    ]);
    rows.push({
      test: bigTest,
      tool: 'pydicom dcmread + save_as',
      files: 1,
      mb: bigMB,
      seconds: r.seconds,
      rss: r.maxRSS,
      note: 'to memory; includes start-up',
    });
  }

  console.log('');
  table(rows, (r) => rows.find((x) => x.test === r.test && x.tool.startsWith('ours')));

  // Targets.
  const dcmtkHeader = rows.find((r) => r.test === headerTest && r.tool.startsWith('DCMTK'));
  const oursRate = h.files / h.seconds;
  const fullRate = f.bytes / MB / f.seconds;
  const dcmtkRate = dcmtkHeader ? dcmtkHeader.files / dcmtkHeader.seconds : undefined;
  new Targets('codec')
    .ratio('header parse per file >= 1.0x DCMTK dcmdump', oursRate, dcmtkRate, 1)
    .add({
      what: 'full parse + write >= 500 MB/s',
      measured: fullRate,
      op: '>=',
      threshold: 500,
      show: (v) => `${v.toFixed(0)} MB/s`,
    })
    .add({
      what: '1 GB file under 100 MB RSS',
      measured: one.maxRSS / MB,
      op: '<',
      threshold: 100,
      show: (v) => `${v.toFixed(0)} MB`,
    })
    .print();
  console.log(
    `\nfiles in ${opts.dir} (${((ct.length * fileMB + bigMB) / 1024).toFixed(1)} GB) are kept for the next run; delete the folder when done.`,
  );
}

runMain('bench:codec', main);
