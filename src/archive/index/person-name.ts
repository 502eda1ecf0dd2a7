/**
 * The normalised form of a Person Name the index keeps next to the raw text, so that C-FIND can
 * match names case-insensitively and component by component with plain SQL (LIKE on an indexed
 * column) while returning the value as received.
 */

/** PS3.5 6.2: family, given, middle, prefix, suffix. */
export const PN_COMPONENTS = 5;

/**
 * Uppercase, each component trimmed, every non-empty component group written with exactly five
 * components ("SMITH^JOHN^^^"), groups joined by '=' with trailing empty groups left out, so that
 * component i of group g always sits between the same delimiters. An empty group is ''. A name
 * with no text at all is null.
 *
 *   "Smith^John"                       -> "SMITH^JOHN^^^"
 *   "Yamada^Tarou=山田^太郎=やまだ^たろう" -> "YAMADA^TAROU^^^=山田^太郎^^^=やまだ^たろう^^^"
 *   "=山田^太郎"                         -> "=山田^太郎^^^"
 */
export function normalizePersonName(raw: string | null | undefined): string | null {
  if (raw === null || raw === undefined) return null;
  const groups = raw.split('=').map(normalizeGroup);
  while (groups.length > 0 && groups[groups.length - 1] === '') groups.pop();
  return groups.length === 0 ? null : groups.join('=');
}

function normalizeGroup(group: string): string {
  const components = group.split('^').map((c) => c.trim().toUpperCase());
  if (components.every((c) => c === '')) return '';
  // More than five components is invalid (PS3.5 6.2); keep the extra text in the last one rather than lose it.
  const head = components.slice(0, PN_COMPONENTS - 1);
  const rest = components
    .slice(PN_COMPONENTS - 1)
    .join(' ')
    .trim();
  while (head.length < PN_COMPONENTS - 1) head.push('');
  return [...head, rest].join('^');
}
