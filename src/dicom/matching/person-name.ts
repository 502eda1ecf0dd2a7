/**
 * Person Name (PN) matching, per component group (PS3.5 6.2: alphabetic=ideographic=phonetic,
 * each family^given^middle^prefix^suffix). Both the key and the candidate are brought to one
 * form before they are compared: each component trimmed, exactly five components per group,
 * and uppercase when matching is case-insensitive. That form is the one the index keeps in its
 * *_norm columns, so an SQL LIKE on a column and the in-memory matcher give the same answers.
 *
 * Within a group, "*" and "?" apply to the group's whole text, as DCMTK's dcmqrscp applies them
 * to the whole value: "DOE*" matches "Doe^John", and "*^JOHN" every family name with the given
 * name JOHN. A key without wild cards is literal: "^JOHN" matches only a name whose family name
 * is empty (dcmqrscp compares "^JOHN" byte for byte the same way). Each group of the key that
 * has text must match the same group of the candidate; groups the key leaves empty match any.
 * PS3.4 C.2.2.2.1 and C.2.2.2.4 leave PN matching to the implementation; this is ours.
 */

/** PS3.5 6.2: family, given, middle, prefix, suffix. */
export const PN_COMPONENTS = 5;

/**
 * The normalised form of a PN value: uppercase, each component trimmed, every non-empty group
 * written with exactly five components ("SMITH^JOHN^^^"), groups joined by '=' with trailing
 * empty groups left out; an empty group is ''. A name with no text at all is null.
 *
 *   "Smith^John"                       -> "SMITH^JOHN^^^"
 *   "Yamada^Tarou=山田^太郎=やまだ^たろう" -> "YAMADA^TAROU^^^=山田^太郎^^^=やまだ^たろう^^^"
 *   "=山田^太郎"                         -> "=山田^太郎^^^"
 */
export function normalizePersonName(raw: string | null | undefined): string | null {
  if (raw === null || raw === undefined) return null;
  const groups = raw.split('=').map((g) => normalizePersonNameGroup(g, true));
  while (groups.length > 0 && groups[groups.length - 1] === '') groups.pop();
  return groups.length === 0 ? null : groups.join('=');
}

/** One component group in the normalised form ('' when it has no text); uppercase when `upper`. */
export function normalizePersonNameGroup(group: string, upper: boolean): string {
  const components = splitComponents(group, upper);
  if (components.every((c) => c === '')) return '';
  return padComponents(components);
}

function splitComponents(group: string, upper: boolean): string[] {
  const components = group.split('^');
  for (let i = 0; i < components.length; i++) {
    const c = (components[i] as string).trim();
    components[i] = upper ? c.toUpperCase() : c;
  }
  return components;
}

function padComponents(components: readonly string[]): string {
  // More than five components is invalid (PS3.5 6.2); keep the extra text in the last one rather than lose it.
  const head = components.slice(0, PN_COMPONENTS - 1);
  const rest = components
    .slice(PN_COMPONENTS - 1)
    .join(' ')
    .trim();
  while (head.length < PN_COMPONENTS - 1) head.push('');
  return [...head, rest].join('^');
}

/**
 * A PN key as patterns on normalised groups: `groups[i]` is the pattern for group i (alphabetic,
 * ideographic, phonetic), undefined when the key leaves that group open.
 */
export interface PersonNameKey {
  readonly groups: readonly (string | undefined)[];
  readonly caseInsensitive: boolean;
  /** Fuzzy matching (PS3.18 10.6.1.2.1 fuzzymatching=true): folded text (foldPersonName), and Soundex per component. */
  readonly fuzzy?: boolean;
}

/**
 * The key's groups in normalised form. A group whose last non-empty component ends with "*" is
 * not padded, so that the star also covers the components after it ("DOE*" and "DOE^J*" match
 * "DOE^JOHN^MICHAEL^^"); every other group is padded to five components like the candidate.
 */
export function personNameKey(value: string, caseInsensitive: boolean, fuzzy = false): PersonNameKey {
  const text = fuzzy ? foldPersonName(value) : value;
  const upper = caseInsensitive || fuzzy;
  const groups = text.split('=').map((group): string | undefined => {
    const components = splitComponents(group, upper);
    while (components.length > 0 && components[components.length - 1] === '') components.pop();
    if (components.length === 0) return undefined;
    const last = components[components.length - 1] as string;
    return last.endsWith('*') && components.length <= PN_COMPONENTS
      ? components.join('^')
      : padComponents(components);
  });
  return fuzzy ? { groups, caseInsensitive: true, fuzzy } : { groups, caseInsensitive };
}

/** The component groups of a candidate PN value, normalised (uppercase when `upper`; folded when `fuzzy`). */
export function candidateGroups(value: string, upper: boolean, fuzzy = false): string[] {
  const text = fuzzy ? foldPersonName(value) : value;
  return text.split('=').map((g) => normalizePersonNameGroup(g, upper || fuzzy));
}

/** Letters without a canonical decomposition, as their usual Latin transliteration. */
const FOLD_LETTERS: Readonly<Record<string, string>> = {
  Ø: 'O',
  ø: 'o',
  Æ: 'AE',
  æ: 'ae',
  Œ: 'OE',
  œ: 'oe',
  Ł: 'L',
  ł: 'l',
  Đ: 'D',
  đ: 'd',
  Þ: 'TH',
  þ: 'th',
  ß: 'ss',
};

/**
 * A PN value folded for fuzzy matching: compatibility-decomposed (NFKD), combining marks dropped,
 * the letters of FOLD_LETTERS transliterated, uppercase. "Müller" and "MULLER" fold alike, and
 * "Ødegård" is "ODEGARD". Text of other scripts is only uppercased where it has case.
 */
export function foldPersonName(value: string): string {
  return value
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .replace(/[ØøÆæŒœŁłĐđÞþß]/g, (c) => FOLD_LETTERS[c] ?? c)
    .toUpperCase();
}

const SOUNDEX_CODES: Readonly<Record<string, string>> = {
  B: '1',
  F: '1',
  P: '1',
  V: '1',
  C: '2',
  G: '2',
  J: '2',
  K: '2',
  Q: '2',
  S: '2',
  X: '2',
  Z: '2',
  D: '3',
  T: '3',
  L: '4',
  M: '5',
  N: '5',
  R: '6',
};

/**
 * American Soundex (the algorithm of the US National Archives) of one name component, on its
 * folded letters A-Z (others ignored): the first letter and three digits, "ROBERT" and "RUPERT"
 * are R163, "SMITH" and "SMYTH" S530. H and W do not separate letters of the same code; vowels do.
 * '' when the component has no letter A-Z.
 */
export function soundex(component: string): string {
  const letters = foldPersonName(component).replace(/[^A-Z]/g, '');
  if (letters === '') return '';
  let out = letters[0] as string;
  let previous = SOUNDEX_CODES[out] ?? '';
  for (let i = 1; i < letters.length && out.length < 4; i++) {
    const c = letters[i] as string;
    const code = SOUNDEX_CODES[c];
    if (code === undefined) {
      if (c !== 'H' && c !== 'W') previous = '';
      continue;
    }
    if (code !== previous) out += code;
    previous = code;
  }
  return out.padEnd(4, '0');
}

/**
 * The phonetic test of fuzzy matching on one normalised group: every component the key gives
 * (non-empty, no wild card) sounds like (same Soundex as) the candidate's component at that
 * place. undefined when the key group has no component Soundex can code.
 */
export function phoneticGroupTest(keyGroup: string): ((candidateGroup: string) => boolean) | undefined {
  const codes = keyGroup.split('^').map((c) => (c.includes('*') || c.includes('?') ? undefined : soundex(c)));
  if (codes.every((c) => c === undefined || c === '')) return undefined;
  return (candidate) => {
    const parts = candidate.split('^');
    for (let i = 0; i < codes.length; i++) {
      const code = codes[i];
      if (code === undefined || code === '') continue;
      if (soundex(parts[i] ?? '') !== code) return false;
    }
    return true;
  };
}
