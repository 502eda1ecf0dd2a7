/**
 * Robustness of the codec against the pydicom test corpus (real files: big endian, deflated,
 * encapsulated, broken ones), read where the package installs it, never copied:
 *  - every file truncated at many positions and mutated (bytes flipped, lengths set to huge values,
 *    ranges deleted) either parses or throws DicomParseError with a byte offset; nothing else, no
 *    hang, and an announced length never becomes an allocation;
 *  - every non-encapsulated file re-encoded to each uncompressed transfer syntax reads back with the
 *    same values and pixel bytes, and DCMTK's dcmdump reads what we wrote with no complaint that it
 *    does not also make about the source file.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { DicomParseError } from '../../src/core/errors.js';
import type { DataSet } from '../../src/dicom/dataset.js';
import { lookupTag, TAG } from '../../src/dicom/dictionary.js';
import { type DataSetHandler, DicomParser, type ParserOptions } from '../../src/dicom/parser.js';
import { DataSetBuilder, parseDicom } from '../../src/dicom/reader.js';
import { isGroupLengthTag, type Tag } from '../../src/dicom/tag.js';
import {
  DEFLATED_EXPLICIT_VR_LE,
  EXPLICIT_VR_BE,
  EXPLICIT_VR_LE,
  IMPLICIT_VR_LE,
  transferSyntax,
} from '../../src/dicom/uid.js';
import { padEven } from '../../src/dicom/values.js';
import { paddingByte } from '../../src/dicom/vr.js';
import { encodePart10 } from '../../src/dicom/writer.js';

const CORPUS = '/usr/lib/python3/dist-packages/pydicom/data/test_files';
const SEED = Number(process.env.ROBUSTNESS_SEED ?? 20240131);

function corpusFiles(): string[] {
  if (!existsSync(CORPUS))
    assert.fail(
      `the pydicom test corpus is missing at ${CORPUS}: install it with apt-get install -y python3-pydicom`,
    );
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else out.push(path);
    }
  };
  walk(CORPUS);
  assert.ok(out.length > 50, `expected the pydicom corpus in ${CORPUS}, found ${out.length} files`);
  return out;
}

/** mulberry32: a small deterministic PRNG, so that every run tries the same cases. */
function prng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n: number) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

/** Offsets of every element, item and fragment header the parser reports (where lengths live). */
class HeaderOffsets implements DataSetHandler {
  readonly offsets: number[] = [];
  element(_t: Tag, _v: string, _b: Uint8Array, offset: number): void {
    this.offsets.push(offset);
  }
  valueStart(_t: Tag, _v: string, _l: number, offset: number): void {
    this.offsets.push(offset);
  }
  valueChunk(): void {}
  valueEnd(): void {}
  sequenceStart(_t: Tag, _l: number, offset: number): void {
    this.offsets.push(offset);
  }
  itemStart(_l: number, offset: number): void {
    this.offsets.push(offset);
  }
  itemEnd(): void {}
  sequenceEnd(): void {}
  fragmentsStart(_t: Tag, _v: string, offset: number): void {
    this.offsets.push(offset);
  }
  fragmentStart(_l: number, offset: number): void {
    this.offsets.push(offset);
  }
  fragmentEnd(): void {}
  fragmentsEnd(): void {}
}

function headerOffsets(bytes: Uint8Array): { offsets: number[]; deflated: boolean } {
  const h = new HeaderOffsets();
  const p = new DicomParser(h);
  try {
    p.write(bytes);
    p.end();
  } catch {
    // A broken file still tells where its first headers are.
  }
  return { offsets: h.offsets, deflated: transferSyntax(p.transferSyntaxUid)?.deflated === true };
}

interface Outcome {
  readonly ok: boolean;
  readonly ms: number;
}

/**
 * The contract: parse, or throw DicomParseError (code ERR_DICOM_PARSE, "at byte N" in the message,
 * N a plausible offset). Any other exception fails the test with the case that caused it.
 */
function attempt(input: Uint8Array, label: string, chunk: number, options: ParserOptions = {}): Outcome {
  const start = performance.now();
  const builder = new DataSetBuilder(options);
  const parser = new DicomParser(builder, options);
  try {
    if (chunk <= 0) parser.write(input);
    else
      for (let i = 0; i < input.length && !parser.stopped; i += chunk)
        parser.write(input.subarray(i, i + chunk));
    parser.end();
    return { ok: true, ms: performance.now() - start };
  } catch (e) {
    if (!(e instanceof DicomParseError))
      assert.fail(`${label}: threw ${(e as Error)?.stack ?? String(e)} instead of a DicomParseError`);
    assert.equal(e.code, 'ERR_DICOM_PARSE', label);
    assert.match(e.message, / at byte \d+$/, label);
    assert.ok(Number.isInteger(e.offset) && e.offset >= 0, `${label}: offset ${e.offset}`);
    if (!transferSyntax(parser.transferSyntaxUid)?.deflated)
      assert.ok(
        e.offset <= input.length,
        `${label}: offset ${e.offset} beyond the input (${input.length} bytes): ${e.message}`,
      );
    return { ok: false, ms: performance.now() - start };
  }
}

const HUGE = [0xfffffff0, 0xfffffffe, 0xffffffff, 0x7fffffff, 0x80000000, 0x00fffff0];

describe('robustness: truncated and mutated corpus files', () => {
  const files = corpusFiles();

  it(`every file of the corpus (${files.length}), truncated and mutated: parses or throws DicomParseError`, {
    timeout: 180_000,
  }, () => {
    const rand = prng(SEED);
    let cases = 0;
    let parsed = 0;
    let slowest = { ms: 0, label: '' };
    const run = (input: Uint8Array, label: string) => {
      // One case in three is fed in random small chunks, to go through the parser's buffering.
      const chunk = rand(3) === 0 ? 1 + rand(64) : 0;
      const o = attempt(input, `${label}${chunk ? ` (chunks of ${chunk})` : ''}`, chunk);
      cases++;
      if (o.ok) parsed++;
      if (o.ms > slowest.ms) slowest = { ms: o.ms, label };
    };
    for (const path of files) {
      const name = relative(CORPUS, path);
      const bytes = new Uint8Array(readFileSync(path));
      const n = bytes.length;
      const { offsets, deflated } = headerOffsets(bytes);

      // Truncations: the first bytes one by one (preamble, DICM, meta), then spread over the file.
      const cuts = new Set<number>();
      for (let i = 0; i <= Math.min(n, 40); i++) cuts.add(i);
      for (const o of offsets.slice(0, 12)) for (const d of [0, 1, 4, 7, 8, 11]) cuts.add(Math.min(n, o + d));
      for (let i = 0; i < 16; i++) cuts.add(rand(n + 1));
      for (const cut of cuts) run(bytes.subarray(0, cut), `${name} truncated at ${cut}`);

      // Random byte flips.
      for (let i = 0; i < 12; i++) {
        const m = Uint8Array.from(bytes);
        const flips = 1 + rand(8);
        for (let f = 0; f < flips && n > 0; f++) m[rand(n)] = rand(256);
        run(m, `${name} with ${flips} random bytes (case ${i})`);
      }

      // Huge lengths where the headers keep them (offset + 4 in implicit VR, + 6 or + 8 in explicit VR).
      const dv = (m: Uint8Array) => new DataView(m.buffer, m.byteOffset, m.byteLength);
      const targets = deflated || offsets.length === 0 ? [] : offsets;
      for (let i = 0; i < 16; i++) {
        const m = Uint8Array.from(bytes);
        const value = HUGE[rand(HUGE.length)] as number;
        const little = rand(4) !== 0;
        let at: number;
        if (targets.length > 0 && i < 12) at = (targets[rand(targets.length)] as number) + 4 + 2 * rand(3);
        else at = rand(Math.max(1, n - 4));
        if (at + 4 > n) continue;
        dv(m).setUint32(at, value, little);
        run(m, `${name} with 0x${value.toString(16)} at ${at}`);
      }

      // Deleted ranges.
      for (let i = 0; i < 8; i++) {
        const from = rand(n + 1);
        const len = 1 + rand(i < 4 ? 8 : 512);
        const m = Buffer.concat([bytes.subarray(0, from), bytes.subarray(Math.min(n, from + len))]);
        run(m, `${name} without bytes ${from}..${from + len}`);
      }
    }
    assert.ok(cases > 5000, `only ${cases} cases`);
    assert.ok(parsed > 0 && parsed < cases);
    // Nothing is slow: a case that takes long is a parser going round in circles.
    assert.ok(slowest.ms < 2000, `slowest case took ${slowest.ms.toFixed(0)} ms: ${slowest.label}`);
  });

  it('a value announcing 4 GB in a 1 KB input allocates nothing of that size', () => {
    const body = new Uint8Array(1024 - 12);
    const header = (bytes: number[]) => Uint8Array.from(bytes);
    const inputs: [string, Uint8Array, ParserOptions][] = [
      // (0042,0011) OB, explicit VR LE, length 0xFFFFFFF0
      ['OB', header([0x42, 0, 0x11, 0, 0x4f, 0x42, 0, 0, 0xf0, 0xff, 0xff, 0xff]), {}],
      // (0010,0010) in implicit VR LE with length 0xFFFFFFF0
      ['implicit', header([0x10, 0, 0x10, 0, 0xf0, 0xff, 0xff, 0xff, 0, 0, 0, 0]), {}],
      // (0008,1140) SQ of defined length 0xFFFFFFF0
      ['SQ', header([0x08, 0, 0x40, 0x11, 0x53, 0x51, 0, 0, 0xf0, 0xff, 0xff, 0xff]), {}],
      // (7FE0,0010) OB undefined length, then a fragment announcing 0xFFFFFFF0
      [
        'fragment',
        header([
          0xe0, 0x7f, 0x10, 0, 0x4f, 0x42, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xff, 0, 0xe0, 0xf0, 0xff,
          0xff, 0xff,
        ]),
        {},
      ],
      // The same OB with an inline limit above 4 GB: the parser waits for bytes, it does not reserve them.
      [
        'OB, inline limit 2^33',
        header([0x42, 0, 0x11, 0, 0x4f, 0x42, 0, 0, 0xf0, 0xff, 0xff, 0xff]),
        { inlineLimit: 2 ** 33 },
      ],
    ];
    for (const [name, head, options] of inputs) {
      const input = Buffer.concat([head, body]);
      const opts: ParserOptions = {
        format: 'dataset',
        transferSyntax: name === 'implicit' ? IMPLICIT_VR_LE : EXPLICIT_VR_LE,
        ...options,
      };
      const before = process.memoryUsage().arrayBuffers;
      const builder = new DataSetBuilder(opts);
      const parser = new DicomParser(builder, opts);
      // Fed in small chunks, as from a socket.
      let error: unknown;
      try {
        for (let i = 0; i < input.length; i += 100) parser.write(input.subarray(i, i + 100));
        parser.end();
      } catch (e) {
        error = e;
      }
      const grown = process.memoryUsage().arrayBuffers - before;
      assert.ok(error instanceof DicomParseError, `${name}: ${String(error)}`);
      assert.match((error as Error).message, /at byte \d+/);
      assert.ok(grown < 16 * 1024 * 1024, `${name}: array buffers grew by ${grown} bytes`);
      assert.ok(builder.root.size <= 1);
    }
  });
});

describe('robustness: no quadratic work on long values', () => {
  it('a Transfer Syntax UID of 64 KB of NUL padding before its last character', () => {
    const uid = Buffer.concat([Buffer.alloc(0xfff0), Buffer.from('1.2')]);
    const meta = Buffer.alloc(12);
    meta.writeUInt16LE(0x0002, 0);
    meta.writeUInt16LE(0x0010, 2);
    meta.write('UN', 4, 'latin1');
    meta.writeUInt32LE(uid.length + 1, 8);
    const file = Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), meta, uid, Buffer.from([0])]);
    const start = performance.now();
    attempt(file, 'long meta value', 0);
    assert.ok(performance.now() - start < 500, `took ${(performance.now() - start).toFixed(0)} ms`);
  });

  it('strings() of a 1 MB value that is spaces but for its last character', () => {
    const ds = parseDicom(
      Buffer.concat([
        // (0010,0010) Patient's Name, implicit VR, 1 MB
        Buffer.from([0x10, 0, 0x10, 0, 0x00, 0x00, 0x10, 0x00]),
        Buffer.alloc(0x100000 - 1, 0x20),
        Buffer.from('X'),
      ]),
      { format: 'dataset', transferSyntax: IMPLICIT_VR_LE },
    ).dataSet;
    const start = performance.now();
    const values = ds.strings(TAG.PatientName);
    assert.equal(values[0]?.length, 0x100000);
    assert.ok(performance.now() - start < 500, `took ${(performance.now() - start).toFixed(0)} ms`);
  });
});

// --- round trips --------------------------------------------------------------------------------

const TARGETS = [
  ['Implicit VR LE', IMPLICIT_VR_LE],
  ['Explicit VR LE', EXPLICIT_VR_LE],
  ['Explicit VR BE', EXPLICIT_VR_BE],
  ['Deflated Explicit VR LE', DEFLATED_EXPLICIT_VR_LE],
] as const;

function hasFragments(ds: DataSet): boolean {
  for (const e of ds) {
    if (Array.isArray(e.value)) {
      if (e.value.some(hasFragments)) return true;
    } else if (!(e.value instanceof Uint8Array)) return true;
  }
  return false;
}

function hexOf(b: Uint8Array | undefined): string {
  return b ? Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex') : '(none)';
}

/**
 * The data set read back equals the source: same tags (group lengths aside, they are not written),
 * same values (odd ones padded) and, where the target syntax can say so, the same VR. Implicit VR
 * carries no VR: there a VR the dictionary would not give (private, ambiguous, non-standard) may
 * come back as the dictionary's.
 */
function sameDataSet(read: DataSet, source: DataSet, implicit: boolean, path: string): void {
  const expectedTags = source.tags().filter((t) => !isGroupLengthTag(t));
  assert.deepEqual(read.tags(), expectedTags, `${path}: tags`);
  for (const s of source) {
    if (isGroupLengthTag(s.tag)) continue;
    const where = `${path} (${s.tag.toString(16).padStart(8, '0')} ${s.vr})`;
    const r = read.get(s.tag);
    assert.ok(r, where);
    const dictionaryVR = lookupTag(s.tag)?.vr;
    const vrMayChange = implicit && dictionaryVR !== s.vr;
    if (Array.isArray(s.value)) {
      assert.ok(Array.isArray(r.value), `${where}: a sequence`);
      assert.equal(r.value.length, s.value.length, `${where}: items`);
      s.value.forEach((item, i) => {
        sameDataSet((r.value as DataSet[])[i] as DataSet, item, implicit, `${where}[${i}]`);
      });
      continue;
    }
    const src = s.value as Uint8Array;
    // A value too long for a 16-bit length goes out as UN in explicit VR (as DCMTK does).
    const asUN = !implicit && r.vr === 'UN' && src.length > 0xffff;
    if (!vrMayChange && !asUN) assert.equal(r.vr, s.vr, `${where}: VR`);
    assert.ok(r.value instanceof Uint8Array, `${where}: bytes`);
    const expected = padEven(src, paddingByte(s.vr));
    if (hexOf(r.value) !== hexOf(expected))
      assert.fail(`${where}: value differs (${r.value.length} vs ${expected.length} bytes)`);
  }
}

const run = promisify(execFile);

async function dcmdumpStderr(path: string): Promise<{ status: number; lines: string[] }> {
  try {
    const r = await run('dcmdump', [path], { maxBuffer: 64 * 1024 * 1024 });
    return { status: 0, lines: normalise(r.stderr, path) };
  } catch (e) {
    const err = e as { code?: number; stderr?: string };
    return { status: typeof err.code === 'number' ? err.code : 1, lines: normalise(err.stderr ?? '', path) };
  }
}

function normalise(stderr: string, path: string): string[] {
  return stderr
    .split('\n')
    .map((l) => l.replaceAll(path, '<file>').trim())
    .filter((l) => l !== '');
}

/**
 * The one warning our files may add: a private sequence in Implicit VR LE has no VR on the wire and
 * we write sequences with undefined length (streaming), so DCMTK reads it by CP-246 and says so.
 * DCMTK's own `dcmconv +ti -e` output draws the same warning; its default (defined length) loses
 * the sequence instead, which is worse.
 */
function expectedWarning(line: string, ts: string): boolean {
  const m =
    /^W: Found element \(([0-9a-f]{4}),[0-9a-f]{4}\) with VR UN and undefined length, reading a sequence with transfer syntax LittleEndianImplicit \(CP-246\)$/.exec(
      line,
    );
  return ts === IMPLICIT_VR_LE && m !== null && Number.parseInt(m[1] ?? '0', 16) % 2 === 1;
}

/** Runs `tasks` with at most `limit` in flight. */
async function pool<T>(tasks: (() => Promise<T>)[], limit: number): Promise<T[]> {
  const out: T[] = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      out[i] = await (tasks[i] as () => Promise<T>)();
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
  return out;
}

describe('round trips of the corpus through every uncompressed transfer syntax', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pacs-roundtrip-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const files = corpusFiles();
  const written: { source: string; ours: string; label: string; ts: string }[] = [];

  it('every non-encapsulated file keeps its values and pixel bytes', () => {
    let tried = 0;
    const skipped: string[] = [];
    files.forEach((path, index) => {
      const name = relative(CORPUS, path);
      let source: ReturnType<typeof parseDicom>;
      try {
        source = parseDicom(readFileSync(path));
      } catch (e) {
        if (!(e instanceof DicomParseError)) throw e;
        skipped.push(`${name} (${e.message})`);
        return;
      }
      if (hasFragments(source.dataSet)) return;
      tried++;
      const meta = source.meta;
      for (const [tsName, ts] of TARGETS) {
        const label = `${name} -> ${tsName}`;
        const bytes = encodePart10(source.dataSet, ts, {
          mediaStorageSopClassUid:
            meta?.string(TAG.MediaStorageSOPClassUID) ?? source.dataSet.string(TAG.SOPClassUID) ?? '',
          mediaStorageSopInstanceUid:
            meta?.string(TAG.MediaStorageSOPInstanceUID) ?? source.dataSet.string(TAG.SOPInstanceUID) ?? '',
        });
        const back = parseDicom(bytes);
        assert.equal(back.transferSyntax, ts, label);
        sameDataSet(back.dataSet, source.dataSet, ts === IMPLICIT_VR_LE, label);
        const ours = join(dir, `${index}-${ts}.dcm`);
        writeFileSync(ours, bytes);
        written.push({ source: path, ours, label, ts });
      }
    });
    assert.ok(tried >= 60, `only ${tried} files were round-tripped; not parsed: ${skipped.join('; ')}`);
  });

  it('dcmdump reads every file we wrote with no warning or error it does not give for the source', {
    timeout: 120_000,
  }, async () => {
    const probe = spawnSync('dcmdump', ['--version']);
    if (probe.error)
      assert.fail(`dcmdump is not installed (${probe.error.message}): apt-get install -y dcmtk`);
    assert.ok(written.length > 0, 'the round-trip test wrote files');
    const sources = [...new Set(written.map((w) => w.source))];
    const sourceResults = new Map(
      (
        await pool(
          sources.map((s) => async () => [s, await dcmdumpStderr(s)] as const),
          4,
        )
      ).map(([s, r]) => [s, r]),
    );
    const ourResults = await pool(
      written.map((w) => () => dcmdumpStderr(w.ours)),
      4,
    );
    const problems: string[] = [];
    written.forEach((w, i) => {
      const theirs = sourceResults.get(w.source);
      const ours = ourResults[i];
      if (!theirs || !ours) return;
      const extra = ours.lines.filter((l) => !theirs.lines.includes(l) && !expectedWarning(l, w.ts));
      if (extra.length > 0) problems.push(`${w.label}: ${extra.join(' | ')}`);
      if (ours.status !== 0 && theirs.status === 0)
        problems.push(`${w.label}: dcmdump exit status ${ours.status}`);
    });
    assert.deepEqual(problems, []);
  });
});
