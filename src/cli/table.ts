/**
 * The text tables of the query commands (`pacs find`, `pacs worklist`, `pacs worklist ls`): one
 * column per key, cells cut to a readable width, East Asian wide characters counted as two columns.
 */
import type { DataSet, Tag } from '../index.js';

/** A readable cell: text values joined by '\', sequences and binary values summarised, cut to `maxWidth`. */
export function cellText(ds: DataSet | undefined, tag: Tag, maxWidth: number): string {
  const e = ds?.get(tag);
  if (ds === undefined || e === undefined) return '';
  if (Array.isArray(e.value))
    return e.value.length === 0 ? '' : `(${e.value.length} item${e.value.length > 1 ? 's' : ''})`;
  if (!(e.value instanceof Uint8Array)) return '(bulk data)';
  let text: string;
  try {
    text = ds.strings(tag).join('\\');
  } catch {
    text = `(${e.value.length} bytes)`;
  }
  text = text.replace(/[\r\n\t]+/g, ' ');
  return text.length > maxWidth ? `${text.slice(0, maxWidth - 3)}...` : text;
}

/** Display width of a string (East Asian wide characters count two columns). */
export function displayWidth(text: string): number {
  let w = 0;
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    w +=
      cp >= 0x1100 &&
      (cp <= 0x115f ||
        (cp >= 0x2e80 && cp <= 0xa4cf) ||
        (cp >= 0xac00 && cp <= 0xd7a3) ||
        (cp >= 0xf900 && cp <= 0xfaff) ||
        (cp >= 0xfe30 && cp <= 0xfe4f) ||
        (cp >= 0xff00 && cp <= 0xff60) ||
        (cp >= 0xffe0 && cp <= 0xffe6) ||
        cp >= 0x20000)
        ? 2
        : 1;
  }
  return w;
}

/** Heads and rows in aligned columns (two spaces apart), then the footer; only the footer without rows. */
export function renderTable(
  heads: readonly string[],
  rows: readonly (readonly string[])[],
  footer: string,
): string {
  if (rows.length === 0) return `${footer}\n`;
  const widths = heads.map((h, i) => Math.max(displayWidth(h), ...rows.map((r) => displayWidth(r[i] ?? ''))));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => c + ' '.repeat(Math.max(0, (widths[i] ?? 0) - displayWidth(c))))
      .join('  ')
      .trimEnd();
  return `${[line(heads), ...rows.map(line)].join('\n')}\n${footer}\n`;
}
