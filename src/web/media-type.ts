/**
 * Media types of Accept and Content-Type headers (RFC 9110 8.3 and 12.5.1), parameters quoted or
 * not: viewers send `multipart/related; type=application/dicom` unquoted to avoid a CORS
 * preflight, others quote it (PS3.18 8.7.3.5: both are allowed, and `type` is compared without
 * case). Also the `accept=` query parameter of PS3.18 8.3.3.1, which overrides the header.
 */

export interface MediaRange {
  /** Lower case, `type/subtype`; wild cards kept (`*\/*`, `image/*`). */
  readonly type: string;
  /** Parameter names in lower case, values unquoted (case kept: transfer-syntax UIDs are case-free anyway). */
  readonly params: Readonly<Record<string, string>>;
  /** The q value, 0..1 (default 1). */
  readonly q: number;
}

/** Splits on `sep` outside quoted strings. */
function splitOutsideQuotes(text: string, sep: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (quoted) {
      current += c;
      if (c === '\\' && i + 1 < text.length) current += text[++i];
      else if (c === '"') quoted = false;
    } else if (c === '"') {
      quoted = true;
      current += c;
    } else if (c === sep) {
      parts.push(current);
      current = '';
    } else current += c;
  }
  parts.push(current);
  return parts;
}

function unquote(value: string): string {
  const v = value.trim();
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) return v.slice(1, -1).replace(/\\(.)/g, '$1');
  return v;
}

/** One media type with its parameters, or undefined when it is not `type/subtype`. */
export function parseMediaType(text: string): MediaRange | undefined {
  const [head, ...rest] = splitOutsideQuotes(text, ';');
  const type = (head ?? '').trim().toLowerCase();
  if (!/^[a-z0-9!#$&^_.+*-]+\/[a-z0-9!#$&^_.+*-]+$/.test(type)) return undefined;
  const params: Record<string, string> = {};
  let q = 1;
  for (const p of rest) {
    const eq = p.indexOf('=');
    if (eq < 0) continue;
    const name = p.slice(0, eq).trim().toLowerCase();
    const value = unquote(p.slice(eq + 1));
    if (name === 'q') {
      const n = Number(value);
      if (Number.isFinite(n)) q = Math.min(1, Math.max(0, n));
    } else if (name.length > 0) params[name] = value;
  }
  return { type, params, q };
}

/**
 * The ranges of an Accept header, best first (by q, then by specificity, then in order);
 * ranges with q=0 are dropped. An absent or empty header is `*\/*`.
 */
export function parseAccept(header: string | readonly string[] | undefined): MediaRange[] {
  const text = Array.isArray(header) ? header.join(',') : ((header as string | undefined) ?? '');
  if (text.trim() === '') return [{ type: '*/*', params: {}, q: 1 }];
  const ranges = splitOutsideQuotes(text, ',')
    .map((part, order) => ({ range: parseMediaType(part), order }))
    .filter((r): r is { range: MediaRange; order: number } => r.range !== undefined && r.range.q > 0);
  const specificity = (r: MediaRange) =>
    (r.type === '*/*' ? 0 : r.type.endsWith('/*') ? 1 : 2) + Object.keys(r.params).length / 100;
  ranges.sort(
    (a, b) => b.range.q - a.range.q || specificity(b.range) - specificity(a.range) || a.order - b.order,
  );
  return ranges.map((r) => r.range);
}

/** True when the range admits the concrete type `type/subtype`. */
export function rangeMatches(range: MediaRange, type: string): boolean {
  if (range.type === '*/*') return true;
  const t = type.toLowerCase();
  if (range.type.endsWith('/*')) return t.startsWith(range.type.slice(0, -1));
  return range.type === t;
}

/**
 * The Accept ranges of a request: the `accept` query parameter when present (PS3.18 8.3.3.1,
 * comma separated, and it overrides the header), otherwise the Accept header.
 */
export function acceptOf(
  headers: { readonly accept?: string | string[] | undefined },
  query: Readonly<Record<string, unknown>> | undefined,
): MediaRange[] {
  const param = query?.accept;
  if (typeof param === 'string' && param !== '') return parseAccept(param);
  if (Array.isArray(param) && param.length > 0) return parseAccept(param.map(String));
  return parseAccept(headers.accept);
}
