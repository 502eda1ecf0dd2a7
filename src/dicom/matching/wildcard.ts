/**
 * Wild Card Matching (PS3.4 C.2.2.2.4): "*" matches any sequence of characters (also none), "?"
 * exactly one character. Characters are code points (after character set decoding), not bytes
 * or UTF-16 code units, so "?" matches one kanji or one emoji.
 */

/** True when the value has a wild card character. */
export function hasWildcard(text: string): boolean {
  return text.includes('*') || text.includes('?');
}

/** True for "*", "**", ...: Wild Card Matching on it is Universal Matching (C.2.2.2.4 note 1). */
export function isOnlyStars(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) !== 0x2a) return false;
  return true;
}

// Not '-': outside a character class it is plain text, and escaping it is a syntax error with the u flag.
const REGEXP_SPECIAL = /[\\^$.|+()[\]{}/]/g;

/** A RegExp testing a whole value against the pattern. */
export function wildcardRegExp(pattern: string): RegExp {
  let source = '';
  let literal = '';
  let afterStar = false;
  for (const c of pattern) {
    if (c === '*' || c === '?') {
      source += literal.replace(REGEXP_SPECIAL, '\\$&');
      literal = '';
      // "." with the s flag matches line breaks too (LT, ST, UT); "**" is "*" (no needless backtracking).
      if (c === '?') source += '.';
      else if (!afterStar) source += '.*';
      afterStar = c === '*';
    } else {
      literal += c;
      afterStar = false;
    }
  }
  source += literal.replace(REGEXP_SPECIAL, '\\$&');
  return new RegExp(`^${source}$`, 'su');
}

/** The escape character of toSqlLike's patterns. */
export const SQL_LIKE_ESCAPE = '\\';

/**
 * The SQL LIKE pattern of a wild card value: "*" becomes "%", "?" becomes "_", and the characters
 * LIKE treats specially ("%", "_" and the escape character) are escaped, for use as
 * `column LIKE :like ESCAPE :escape`. Note that SQLite's LIKE ignores ASCII case unless
 * `PRAGMA case_sensitive_like` is on, while C.2.2.2.4 matching is case-sensitive except for PN.
 */
export function toSqlLike(pattern: string): { like: string; escape: string } {
  let like = '';
  for (const c of pattern) {
    if (c === '*') like += '%';
    else if (c === '?') like += '_';
    else if (c === '%' || c === '_' || c === SQL_LIKE_ESCAPE) like += SQL_LIKE_ESCAPE + c;
    else like += c;
  }
  return { like, escape: SQL_LIKE_ESCAPE };
}
