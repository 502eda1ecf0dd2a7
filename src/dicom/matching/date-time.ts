/**
 * Dates, times and date-times for Range Matching (PS3.4 C.2.2.2.5): DA, TM and DT values as
 * fixed-width text keys that sort chronologically, query ranges, and the date/time attribute
 * pairs of the dictionary used by combined date-time matching.
 *
 * A value of reduced precision stands for its first instant, as DCMTK's DcmAttributeMatching
 * reads it: TM "10" is 10:00:00.000000 and DT "2024" is 2024-01-01 00:00:00, so "-12" matches
 * 12:00:00 but not 12:00:00.000001. The standard does not say otherwise, and worklist answers
 * must equal wlmscpfs's on the same items.
 */
import { ELEMENTS } from '../generated/dictionary.js';
import type { Tag } from '../tag.js';

/** A point in time as text of fixed width: comparing two keys as strings compares the instants. */
export interface Instant {
  /** Wall-clock key: DA "YYYYMMDD", TM "HHMMSS.FFFFFF", DT (and date + time) "YYYYMMDDHHMMSS.FFFFFF". */
  readonly local: string;
  /** DT with a UTC offset (&ZZXX): the same instant in UTC, in the form of `local`. */
  readonly utc: string | undefined;
}

export type DateTimeVR = 'DA' | 'TM' | 'DT';

/** What a DA, TM or DT key value asks for. */
export type DateTimeQuery =
  | { readonly kind: 'single'; readonly instant: Instant }
  /** Either bound may be open ("-b", "a-"); both open ("-") matches any valid value. */
  | { readonly kind: 'range'; readonly lower: Instant | undefined; readonly upper: Instant | undefined }
  | { readonly kind: 'invalid'; readonly reason: string };

const DA_RE = /^(\d{4})\.?(\d{2})\.?(\d{2})$/;
const TM_RE = /^(\d{2})(?::?(\d{2})(?::?(\d{2})(?:\.(\d{1,6})\d*)?)?)?$/;
const DT_RE = /^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,6}))?([+-]\d{4})?$/;

function isDigits(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

function within(text: string | undefined, min: number, max: number): boolean {
  if (text === undefined) return true;
  const n = Number(text);
  return n >= min && n <= max;
}

/** "YYYYMMDD" for a DA value (also the ACR-NEMA form "YYYY.MM.DD"); undefined when it is not one. */
export function dateKey(text: string): string | undefined {
  // Fast path for the usual form: eight digits with a plausible month and day.
  if (text.length === 8 && isDigits(text)) {
    const mo = (text.charCodeAt(4) - 48) * 10 + text.charCodeAt(5) - 48;
    const d = (text.charCodeAt(6) - 48) * 10 + text.charCodeAt(7) - 48;
    return mo >= 1 && mo <= 12 && d >= 1 && d <= 31 ? text : undefined;
  }
  const m = DA_RE.exec(text);
  if (m === null) return undefined;
  const [, y, mo, d] = m as unknown as [string, string, string, string];
  if (!within(mo, 1, 12) || !within(d, 1, 31)) return undefined;
  return `${y}${mo}${d}`;
}

/** "HHMMSS.FFFFFF" for a TM value of any precision (also the ACR-NEMA form "HH:MM:SS.frac"). */
export function timeKey(text: string): string | undefined {
  // Fast path for the usual form HHMMSS.
  if (text.length === 6 && isDigits(text)) {
    const h = (text.charCodeAt(0) - 48) * 10 + text.charCodeAt(1) - 48;
    const mi = (text.charCodeAt(2) - 48) * 10 + text.charCodeAt(3) - 48;
    const s = (text.charCodeAt(4) - 48) * 10 + text.charCodeAt(5) - 48;
    return h <= 23 && mi <= 59 && s <= 60 ? `${text}.000000` : undefined;
  }
  const m = TM_RE.exec(text);
  if (m === null) return undefined;
  const [, h, mi = '00', s = '00', f = ''] = m;
  // PS3.5 6.2: HH 00-23, MM 00-59, SS 00-60 (leap second).
  if (!within(h, 0, 23) || !within(mi, 0, 59) || !within(s, 0, 60)) return undefined;
  return `${h}${mi}${s}.${f.padEnd(6, '0')}`;
}

/** The instant of a DT value of any precision, with its UTC form when it carries an offset. */
export function dateTimeInstant(text: string): Instant | undefined {
  const m = DT_RE.exec(text);
  if (m === null) return undefined;
  const [, y, mo, d, h, mi, s, f, offset] = m as unknown as [
    string,
    string,
    string | undefined,
    string | undefined,
    string | undefined,
    string | undefined,
    string | undefined,
    string | undefined,
    string | undefined,
  ];
  // A fraction needs the seconds; each component needs the ones before it (the regex allows gaps only at the end).
  if (f !== undefined && s === undefined) return undefined;
  if (!within(mo, 1, 12) || !within(d, 1, 31) || !within(h, 0, 23) || !within(mi, 0, 59) || !within(s, 0, 60))
    return undefined;
  const local = `${y}${mo ?? '01'}${d ?? '01'}${h ?? '00'}${mi ?? '00'}${s ?? '00'}.${(f ?? '').padEnd(6, '0')}`;
  if (offset === undefined) return { local, utc: undefined };
  const sign = offset[0] === '-' ? -1 : 1;
  const oh = Number(offset.slice(1, 3));
  const om = Number(offset.slice(3, 5));
  // PS3.5 6.2: offsets run from -1200 to +1400.
  if (om > 59 || oh > 14) return undefined;
  return { local, utc: shiftToUtc(local, sign * (oh * 60 + om)) };
}

/** The key of `local` moved back by `offsetMinutes` (local = UTC + offset). */
function shiftToUtc(local: string, offsetMinutes: number): string {
  const date = new Date(0);
  date.setUTCFullYear(Number(local.slice(0, 4)), Number(local.slice(4, 6)) - 1, Number(local.slice(6, 8)));
  date.setUTCHours(
    Number(local.slice(8, 10)),
    Number(local.slice(10, 12)) - offsetMinutes,
    Number(local.slice(12, 14)),
  );
  const p = (n: number, w: number) => String(n).padStart(w, '0');
  return (
    p(date.getUTCFullYear(), 4) +
    p(date.getUTCMonth() + 1, 2) +
    p(date.getUTCDate(), 2) +
    p(date.getUTCHours(), 2) +
    p(date.getUTCMinutes(), 2) +
    p(date.getUTCSeconds(), 2) +
    local.slice(14)
  );
}

/** The instant of one DA, TM or DT value; undefined when the text is not a valid value of the VR. */
export function instantOf(vr: DateTimeVR, text: string): Instant | undefined {
  if (vr === 'DT') return dateTimeInstant(text);
  const local = vr === 'DA' ? dateKey(text) : timeKey(text);
  return local === undefined ? undefined : { local, utc: undefined };
}

/**
 * Compares two instants: in UTC when both carry an offset (C.2.2.2.5: the offset "shall be taken
 * into account"), else on the wall clock, since a value without offset says nothing of its zone.
 */
export function compareInstants(a: Instant, b: Instant): number {
  const x = a.utc !== undefined && b.utc !== undefined ? a.utc : a.local;
  const y = a.utc !== undefined && b.utc !== undefined ? b.utc : b.local;
  return x < y ? -1 : x > y ? 1 : 0;
}

export function inRange(value: Instant, lower: Instant | undefined, upper: Instant | undefined): boolean {
  return (
    (lower === undefined || compareInstants(lower, value) <= 0) &&
    (upper === undefined || compareInstants(value, upper) <= 0)
  );
}

/**
 * Parses a DA, TM or DT key value: a single value, or a range "a-b", "-b", "a-" (PS3.4
 * C.2.2.2.5). For DT the '-' may also be the sign of a UTC offset: the whole text is read as one
 * value first, then split at the first '-' that leaves two valid (or empty) sides.
 */
export function parseDateTimeQuery(vr: DateTimeVR, text: string): DateTimeQuery {
  const single = instantOf(vr, text);
  if (single !== undefined) return { kind: 'single', instant: single };
  for (let i = text.indexOf('-'); i >= 0; i = text.indexOf('-', i + 1)) {
    const a = text.slice(0, i).trim();
    const b = text.slice(i + 1).trim();
    const lower = a === '' ? undefined : instantOf(vr, a);
    const upper = b === '' ? undefined : instantOf(vr, b);
    if ((a === '' || lower !== undefined) && (b === '' || upper !== undefined)) {
      return { kind: 'range', lower, upper };
    }
    // DA and TM have no other use for '-': the first one is the range separator.
    if (vr !== 'DT') break;
  }
  return { kind: 'invalid', reason: `"${text}" is neither a ${vr} value nor a ${vr} range` };
}

/** The wall-clock instant of a date with an optional time (a candidate without time is at midnight). */
export function joinDateTime(date: Instant, time: Instant | undefined): Instant {
  return { local: date.local + (time?.local ?? '000000.000000'), utc: undefined };
}

let pairs: { byDate: Map<Tag, Tag>; byTime: Map<Tag, Tag> } | undefined;

/**
 * The date/time attribute pairs that combined date-time matching joins, from the dictionary:
 * every DA attribute "XxxDate" with a TM attribute "XxxTime" (StudyDate/StudyTime,
 * ScheduledProcedureStepStartDate/ScheduledProcedureStepStartTime, ...) and "DateOfXxx" with "TimeOfXxx".
 */
export function dateTimePairs(): {
  readonly byDate: ReadonlyMap<Tag, Tag>;
  readonly byTime: ReadonlyMap<Tag, Tag>;
} {
  if (pairs) return pairs;
  const tm = new Map<string, Tag>();
  for (const [tag, vr, , keyword] of ELEMENTS) if (vr === 'TM' && keyword) tm.set(keyword, tag);
  const byDate = new Map<Tag, Tag>();
  const byTime = new Map<Tag, Tag>();
  for (const [tag, vr, , keyword] of ELEMENTS) {
    if (vr !== 'DA' || !keyword) continue;
    const timeKeyword = keyword.endsWith('Date')
      ? `${keyword.slice(0, -4)}Time`
      : keyword.startsWith('DateOf')
        ? `TimeOf${keyword.slice(6)}`
        : undefined;
    const time = timeKeyword === undefined ? undefined : tm.get(timeKeyword);
    if (time === undefined) continue;
    byDate.set(tag, time);
    byTime.set(time, tag);
  }
  pairs = { byDate, byTime };
  return pairs;
}
