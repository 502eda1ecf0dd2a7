/**
 * Building data sets from the streaming parser: whole buffers (parseDicom) and streams of chunks
 * (readDicomChunks). Large values can be kept, skipped or left as references to the source. No
 * I/O here (ARCHITECTURE.md: dicom/ is the data model): io/dicom-file.ts reads files with it.
 */
import { type DataElement, DataSet, type ElementValue } from './dataset.js';
import { type DataSetHandler, DicomParser, type ParserOptions } from './parser.js';
import type { Tag } from './tag.js';
import type { VR } from './vr.js';

export interface ReadOptions extends ParserOptions {
  /**
   * What to do with values longer than `bulkDataThreshold` (default: keep everything):
   * 'keep' loads them, 'reference' keeps a BulkDataRef (offset and length), 'skip' drops them.
   */
  readonly bulkData?: 'keep' | 'reference' | 'skip';
  readonly bulkDataThreshold?: number;
}

export interface DicomObject {
  /** File meta information (group 0002), when the input had it. */
  readonly meta: DataSet | undefined;
  readonly dataSet: DataSet;
  /** The transfer syntax the data set was read in. */
  readonly transferSyntax: string;
  /** True when reading stopped at `stopAtTag` (the rest was not read). */
  readonly stopped: boolean;
}

interface Frame {
  readonly dataSet: DataSet;
  /** The sequence this item belongs to (absent for the top level). */
  readonly items?: DataSet[];
}

/** A DataSetHandler that builds the DataSet tree. */
export class DataSetBuilder implements DataSetHandler {
  readonly root = new DataSet();
  fileMeta: DataSet | undefined;
  transferSyntax = '';
  private readonly frames: Frame[] = [{ dataSet: this.root }];
  private readonly seqs: { tag: Tag; items: DataSet[] }[] = [];
  private readonly policy: 'keep' | 'reference' | 'skip';
  private readonly threshold: number;
  private value: { tag: Tag; vr: VR; length: number; offset: number; chunks: Uint8Array[] } | undefined;
  private fragments: { tag: Tag; vr: VR; list: Uint8Array[] } | undefined;
  private fragment: Uint8Array[] | undefined;

  constructor(options: ReadOptions = {}) {
    this.policy = options.bulkData ?? 'keep';
    this.threshold = options.bulkDataThreshold ?? Number.POSITIVE_INFINITY;
  }

  private current(): DataSet {
    return (this.frames[this.frames.length - 1] as Frame).dataSet;
  }

  private put(element: DataElement): void {
    this.current().set(element);
  }

  meta(meta: DataSet, ts: string): void {
    this.fileMeta = meta;
    this.transferSyntax = ts;
  }

  element(tag: Tag, vr: VR, value: Uint8Array, offset: number): void {
    if (value.length > this.threshold && this.policy !== 'keep') {
      if (this.policy === 'reference')
        this.put({ tag, vr, value: { kind: 'bulk', offset, length: value.length } });
      return;
    }
    this.put({ tag, vr, value });
  }

  valueStart(tag: Tag, vr: VR, length: number, offset: number): void {
    this.value = { tag, vr, length, offset, chunks: [] };
  }

  valueChunk(bytes: Uint8Array): void {
    if (this.fragment) this.fragment.push(bytes);
    else if (this.value && (this.policy === 'keep' || this.value.length <= this.threshold))
      this.value.chunks.push(bytes);
  }

  valueEnd(): void {
    const v = this.value;
    this.value = undefined;
    if (!v) return;
    let value: ElementValue;
    if (v.length > this.threshold && this.policy !== 'keep') {
      if (this.policy === 'skip') return;
      value = { kind: 'bulk', offset: v.offset, length: v.length };
    } else value = concat(v.chunks, v.length);
    this.put({ tag: v.tag, vr: v.vr, value });
  }

  sequenceStart(tag: Tag): void {
    const items: DataSet[] = [];
    this.seqs.push({ tag, items });
    this.put({ tag, vr: 'SQ', value: items });
  }

  itemStart(): void {
    const seq = this.seqs[this.seqs.length - 1];
    const item = new DataSet(this.current());
    seq?.items.push(item);
    this.frames.push({ dataSet: item, items: seq?.items ?? [] });
  }

  itemEnd(): void {
    this.frames.pop();
  }

  sequenceEnd(): void {
    this.seqs.pop();
  }

  fragmentsStart(tag: Tag, vr: VR): void {
    this.fragments = { tag, vr, list: [] };
  }

  fragmentStart(): void {
    this.fragment = [];
  }

  fragmentEnd(): void {
    const parts = this.fragment ?? [];
    this.fragment = undefined;
    this.fragments?.list.push(
      concat(
        parts,
        parts.reduce((n, c) => n + c.length, 0),
      ),
    );
  }

  fragmentsEnd(): void {
    const f = this.fragments;
    this.fragments = undefined;
    if (!f) return;
    const size = f.list.reduce((n, c) => n + c.length, 0);
    if (size > this.threshold && this.policy !== 'keep') {
      if (this.policy === 'reference')
        this.put({ tag: f.tag, vr: f.vr, value: { kind: 'bulk', offset: -1, length: size } });
      return;
    }
    this.put({ tag: f.tag, vr: f.vr, value: { kind: 'fragments', fragments: f.list } });
  }
}

function concat(chunks: readonly Uint8Array[], length: number): Uint8Array {
  if (chunks.length === 1) return chunks[0] as Uint8Array;
  const out = new Uint8Array(length);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return o === length ? out : out.subarray(0, o);
}

function makeParser(builder: DataSetBuilder, options: ReadOptions): DicomParser {
  return new DicomParser(builder, options);
}

function result(builder: DataSetBuilder, parser: DicomParser): DicomObject {
  return {
    meta: builder.fileMeta,
    dataSet: builder.root,
    transferSyntax: parser.transferSyntaxUid || builder.transferSyntax,
    stopped: parser.stopped,
  };
}

/** Parses a whole buffer (a Part-10 file or a raw data set). Throws DicomParseError. */
export function parseDicom(bytes: Uint8Array, options: ReadOptions = {}): DicomObject {
  const builder = new DataSetBuilder(options);
  const parser = makeParser(builder, options);
  parser.write(bytes);
  parser.end();
  return result(builder, parser);
}

/**
 * Parses a data set from a stream of chunks, and stops consuming the stream once reading stopped
 * at `stopAtTag` (leaving the loop closes the source: a file is read no further). Each chunk must
 * be a buffer of its own, not reused by the source, as the data set may keep views into it.
 * Throws DicomParseError.
 */
export async function readDicomChunks(
  chunks: AsyncIterable<Uint8Array>,
  options: ReadOptions = {},
): Promise<DicomObject> {
  const builder = new DataSetBuilder(options);
  const parser = makeParser(builder, options);
  for await (const chunk of chunks) {
    parser.write(chunk);
    if (parser.stopped) break;
  }
  parser.end();
  return result(builder, parser);
}
