/**
 * `pacs dump`: a readable listing like DCMTK's dcmdump (tag, VR, value, length, VM, keyword),
 * sequences indented, long binary values abbreviated; or the data set as DICOM JSON.
 */

import {
  decodeNumbers,
  decodeTags,
  formatTag,
  isBinaryNumberVR,
  isStringVR,
  lookupTag,
  lookupUid,
  readDicomFile,
} from '../client.js';
import type { DataElement, DataSet } from '../index.js';

const MAX_TEXT = 64;
const MAX_NUMBERS = 8;
/** Values longer than this are not loaded for a text dump (they are shown by length only). */
const DUMP_BULK_THRESHOLD = 4096;

export async function dumpFile(path: string, write: (line: string) => void): Promise<void> {
  const obj = await readDicomFile(path, { bulkData: 'reference', bulkDataThreshold: DUMP_BULK_THRESHOLD });
  if (obj.meta) {
    write('# Dicom-File-Format');
    write('');
    write('# Dicom-Meta-Information-Header');
    write('# Used TransferSyntax: Little Endian Explicit');
    dumpDataSet(obj.meta, 0, write);
    write('');
  }
  write('# Dicom-Data-Set');
  write(`# Used TransferSyntax: ${lookupUid(obj.transferSyntax)?.name ?? obj.transferSyntax}`);
  dumpDataSet(obj.dataSet, 0, write);
}

export function dumpDataSet(ds: DataSet, depth: number, write: (line: string) => void): void {
  const indent = '  '.repeat(depth);
  for (const e of ds) {
    const entry = lookupTag(e.tag);
    const keyword = entry?.keyword || (entry?.name ?? 'Unknown Tag & Data');
    const v = e.value;
    if (Array.isArray(v)) {
      write(line(indent, e, `(Sequence #=${v.length})`, 'u/l', 1, keyword));
      for (const item of v) {
        write(`${indent}  (FFFE,E000) na (Item #=${item.size})`);
        dumpDataSet(item, depth + 2, write);
      }
      continue;
    }
    if (!(v instanceof Uint8Array)) {
      if (v.kind === 'fragments') {
        write(line(indent, e, `(PixelSequence #=${v.fragments.length})`, 'u/l', 1, keyword));
        v.fragments.forEach((f, i) => {
          write(
            `${indent}  (FFFE,E000) pi ${i === 0 ? '(Basic Offset Table)' : `(fragment ${i})`}  # ${f.length}`,
          );
        });
      } else
        write(
          line(
            indent,
            e,
            `(not loaded: ${v.length} bytes${v.offset >= 0 ? ` at ${v.offset}` : ' in fragments'})`,
            v.length,
            1,
            keyword,
          ),
        );
      continue;
    }
    const [text, vm] = formatValue(e, v, ds);
    write(line(indent, e, text, v.length, vm, keyword));
  }
}

function line(
  indent: string,
  e: DataElement,
  text: string,
  length: number | string,
  vm: number,
  keyword: string,
): string {
  const left = `${indent}${formatTag(e.tag)} ${e.vr} ${text}`;
  return `${left.padEnd(56)} # ${String(length).padStart(4)}, ${vm} ${keyword}`;
}

function formatValue(e: DataElement, v: Uint8Array, ds: DataSet): [string, number] {
  if (v.length === 0) return ['(no value available)', 0];
  if (isStringVR(e.vr)) {
    const values = ds.strings(e.tag);
    if (e.vr === 'UI' && values.length === 1) {
      const u = lookupUid(values[0] ?? '');
      if (u?.keyword) return [`=${u.keyword}`, 1];
    }
    let text = values.join('\\');
    if (text.length > MAX_TEXT) text = `${text.slice(0, MAX_TEXT)}...`;
    return [`[${text.replace(/[\r\n]/g, ' ')}]`, values.length];
  }
  if (e.vr === 'AT') {
    const tags = decodeTags(v);
    return [tags.map((t) => formatTag(t)).join('\\'), tags.length];
  }
  if (isBinaryNumberVR(e.vr) || e.vr === 'OF' || e.vr === 'OD' || e.vr === 'OL') {
    const n = decodeNumbers(v, e.vr);
    const shown = n
      .slice(0, MAX_NUMBERS)
      .map((x) => String(x))
      .join('\\');
    return [n.length > MAX_NUMBERS ? `${shown}...` : shown, n.length];
  }
  // OB, OW, OV, UN: hex bytes, abbreviated.
  const unit = e.vr === 'OW' ? 2 : 1;
  const parts: string[] = [];
  for (let i = 0; i + unit <= v.length && parts.length < 16; i += unit) {
    parts.push(
      unit === 2
        ? ((v[i] as number) | ((v[i + 1] as number) << 8)).toString(16).padStart(4, '0')
        : (v[i] as number).toString(16).padStart(2, '0'),
    );
  }
  const more = v.length / unit > parts.length ? '...' : '';
  return [`${parts.join('\\')}${more}`, 1];
}
