/**
 * The config schema machinery (STYLE.md "one config schema"), on zod. The schema itself is
 * composed in server/config.ts from the parts each layer and service contributes beside its
 * own code (services/storage/config.ts, ...); core/ knows none of their settings.
 *
 * Sources merge as defaults < JSON file < overrides (command-line flags): objects merge key by key,
 * anything else (numbers, strings, lists) is replaced whole. Every problem is reported as one line
 * `path: what was expected, got what`, unknown keys included, so a typo never passes silently.
 * Each leaf is built with the helpers below so that its error line says what a valid value looks
 * like. Relative paths (data.dir, TLS and log files) are relative to the working directory, as for
 * the command-line flags, not to the config file.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { err, ok, type Result } from './result.js';

// ---------------------------------------------------------------------------------------------
// Leaf helpers: each schema carries the phrase that completes "expected ...".

export type Path = readonly (string | number)[];

/** A cross-field rule, stated in full (`server.tls.key: required when server.tls.cert is set`). */
export function addRule(ctx: z.RefinementCtx, path: Path, message: string): void {
  ctx.addIssue({ code: 'custom', path: [...path], message, params: { rule: true } });
}

export function expecting(expected: string): { errorMap: z.ZodErrorMap } {
  return { errorMap: () => ({ message: expected }) };
}

export function integer(min: number, max: number) {
  return z
    .number(expecting(`an integer from ${min} to ${max}`))
    .int()
    .min(min)
    .max(max);
}

export function seconds() {
  return z.number(expecting('a number of seconds from 0 to 86400 (0 means no limit)')).min(0).max(86400);
}

export function boolean() {
  return z.boolean(expecting('true or false'));
}

export function nonEmpty(expected: string) {
  return z.string(expecting(expected)).min(1);
}

export function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, expecting(`one of ${listWords(values)}`));
}

/** An object whose unknown keys are errors (reported as "unknown setting"). */
export function section<T extends z.ZodRawShape>(shape: T) {
  return z.object(shape, expecting('an object of settings')).strict();
}

export function list<T extends z.ZodTypeAny>(item: T) {
  return z.array(item, expecting('a list'));
}

// ---------------------------------------------------------------------------------------------
// Value checks shared with other layers.

/**
 * PS3.5 Table 6.2-1 (AE): up to 16 characters of the default repertoire, no backslash and no
 * control characters; leading and trailing spaces are not significant, so all spaces is empty.
 */
export function isAeTitle(value: string): boolean {
  return /^[\x20-\x5b\x5d-\x7e]{1,16}$/.test(value) && value.trim() !== '';
}

/** A host name (RFC 1123 labels; `_` tolerated as container names use it) or an IPv4/IPv6 address. */
export function isHost(value: string): boolean {
  if (isIP(value) !== 0) return true;
  const label = '[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?';
  return value.length <= 253 && new RegExp(`^${label}(?:\\.${label})*\\.?$`).test(value);
}

const AE_EXPECTED = 'an AE title (1 to 16 characters, no backslash or control characters, not all spaces)';
const HOST_EXPECTED = 'a host name or IP address';

// ---------------------------------------------------------------------------------------------
// Leaves shared by several parts.

// Spaces around an AE title are padding (PS3.5 6.2), so the stored value is trimmed.
export const aeTitle = z
  .string(expecting(AE_EXPECTED))
  .refine(isAeTitle, { message: AE_EXPECTED })
  .transform((s) => s.trim());
export const host = z.string(expecting(HOST_EXPECTED)).refine(isHost, { message: HOST_EXPECTED });
export const port = integer(1, 65535);
export const filePath = nonEmpty('a file path');

/** The keys a part contributes to the top level of the config, each with its schema. */
export type ConfigPart = z.ZodRawShape;

/** Every key optional at every depth; lists stay whole because they are replaced, not merged. */
export type DeepPartial<T> = T extends readonly unknown[]
  ? T
  : T extends object
    ? { [K in keyof T]?: DeepPartial<T[K]> | undefined }
    : T;

// ---------------------------------------------------------------------------------------------
// Loading.

export interface LoadConfigOptions<T> {
  /** A JSON config file. */
  file?: string;
  /** Values from the command line; keys set to `undefined` are ignored. */
  overrides?: DeepPartial<T>;
}

/** Reads, merges (defaults < file < overrides) and validates a config against `schema`. */
export function loadConfigWith<S extends z.ZodTypeAny>(
  schema: S,
  options: LoadConfigOptions<z.infer<S>> = {},
): Result<z.infer<S>, ConfigError> {
  let fromFile: unknown = {};
  if (options.file !== undefined) {
    const read = readConfigFile(options.file);
    if (!read.ok) return err(new ConfigError([read.error]));
    fromFile = read.value;
  }
  const input = merge(merge({}, fromFile), options.overrides ?? {});
  const parsed = validate(schema, input);
  if (parsed.ok) return parsed;
  return err(new ConfigError(parsed.error));
}

/** Validates one value against a schema: the value, or its issue lines. */
export function validate<S extends z.ZodTypeAny>(schema: S, input: unknown): Result<z.infer<S>, string[]> {
  const parsed = schema.safeParse(input, { errorMap: fallbackErrorMap });
  if (parsed.success) return ok(parsed.data);
  return err(formatIssues(parsed.error.issues, input));
}

function readConfigFile(file: string): Result<unknown, string> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    return err(`${file}: cannot read the config file: ${describeFsError(e)}`);
  }
  if (text.startsWith('\uFEFF')) text = text.slice(1);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    const found = locateJsonError(text) ?? { offset: 0, reason: e instanceof Error ? e.message : String(e) };
    const { line, column } = lineAndColumn(text, found.offset);
    return err(`${file}: invalid JSON at line ${line}, column ${column}: ${found.reason}`);
  }
  if (!isPlainObject(value)) {
    return err(`${file}: expected a JSON object of settings, got ${renderValue(value)}`);
  }
  return ok(value);
}

function describeFsError(e: unknown): string {
  const code = typeof e === 'object' && e !== null ? Reflect.get(e, 'code') : undefined;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'it is a folder';
  return e instanceof Error ? e.message : String(e);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Objects merge key by key; anything else in `over` replaces `base`. `undefined` never overrides. */
function merge(base: unknown, over: unknown): unknown {
  if (over === undefined) return base;
  if (!isPlainObject(base) || !isPlainObject(over)) return over;
  // fromEntries defines own properties, so a "__proto__" key stays data (and is then reported unknown).
  const keys = new Set([...Object.keys(base), ...Object.keys(over)]);
  return Object.fromEntries([...keys].map((key) => [key, merge(base[key], over[key])]));
}

// ---------------------------------------------------------------------------------------------
// Issue lines.

/** For any schema without its own phrase: say what type was expected. */
const fallbackErrorMap: z.ZodErrorMap = (issue, ctx) => {
  const zodDefault = z.defaultErrorMap(issue, { data: ctx.data, defaultError: '' }).message;
  if (ctx.defaultError !== zodDefault) return { message: ctx.defaultError };
  if (issue.code === 'invalid_type') {
    const names: Record<string, string> = {
      object: 'an object of settings',
      array: 'a list',
      boolean: 'true or false',
    };
    return { message: names[issue.expected] ?? `a ${issue.expected}` };
  }
  return { message: zodDefault.charAt(0).toLowerCase() + zodDefault.slice(1) };
};

function formatIssues(issues: readonly z.ZodIssue[], input: unknown): string[] {
  const lines: string[] = [];
  const seen = new Set<string>();
  const add = (key: string, line: string) => {
    if (seen.has(key)) return;
    seen.add(key);
    lines.push(line);
  };
  for (const issue of issues) {
    const path = formatPath(issue.path);
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const keyPath = formatPath([...issue.path, key]);
        add(keyPath, `${keyPath}: unknown setting`);
      }
    } else if (issue.code === 'custom' && issue.params?.['rule'] === true) {
      add(`${path} ${issue.message}`, `${path}: ${issue.message}`);
    } else {
      // One line per field even when a value breaks several checks at once (e.g. 3.5e6 for a port).
      const value = valueAt(input, issue.path);
      add(
        path,
        value === undefined
          ? `${path}: missing, expected ${issue.message}`
          : `${path}: expected ${issue.message}, got ${renderValue(value)}`,
      );
    }
  }
  return lines;
}

/** `server.tls.port`, `peers[2].aet`; keys that are not identifiers are quoted: `server["a b"]`. */
export function formatPath(path: Path): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(part)) out += out === '' ? part : `.${part}`;
    else out += `[${JSON.stringify(part)}]`;
  }
  return out === '' ? '(config)' : out;
}

function valueAt(input: unknown, path: Path): unknown {
  let value = input;
  for (const part of path) {
    if (typeof value !== 'object' || value === null || !Object.hasOwn(value, part)) return undefined;
    value = Reflect.get(value, part);
  }
  return value;
}

function renderValue(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : 'a list';
  if (typeof value === 'object' && value !== null) return 'an object';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}..."` : text;
}

export function listWords(values: readonly string[]): string {
  const quoted = values.map((v) => JSON.stringify(v));
  return quoted.length <= 1 ? quoted.join('') : `${quoted.slice(0, -1).join(', ')} or ${quoted.at(-1)}`;
}

// ---------------------------------------------------------------------------------------------
// JSON error position. V8's messages do not always give one ("Unexpected token 'x', ... is not
// valid JSON") and change between versions, so after JSON.parse fails a small scanner finds it.

function locateJsonError(text: string): { offset: number; reason: string } | undefined {
  class Stop {
    constructor(
      readonly offset: number,
      readonly reason: string,
    ) {}
  }
  let i = 0;
  const found = () => (i >= text.length ? 'end of file' : JSON.stringify(text.charAt(i)));
  const fail = (expected: string): never => {
    throw new Stop(i, `unexpected ${found()}, expected ${expected}`);
  };
  const space = () => {
    while (i < text.length && ' \t\n\r'.includes(text.charAt(i))) i++;
  };
  const readString = () => {
    i++; // opening quote
    for (;;) {
      if (i >= text.length) throw new Stop(i, 'unexpected end of file in a string');
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return;
      }
      if (c < 0x20) throw new Stop(i, 'control character in a string (write it as an escape such as \\n)');
      if (c === 0x5c) {
        const sequence = /^(["\\/bfnrt]|u[0-9A-Fa-f]{4})/.exec(text.slice(i + 1, i + 6));
        if (sequence === null) throw new Stop(i, 'invalid escape sequence in a string');
        i += 1 + sequence[0].length;
      } else {
        i++;
      }
    }
  };
  const value = (): void => {
    space();
    const c = text.charAt(i);
    if (c === '{') {
      i++;
      space();
      if (text.charAt(i) === '}') {
        i++;
        return;
      }
      for (;;) {
        space();
        if (text.charAt(i) !== '"') fail('a property name in double quotes');
        readString();
        space();
        if (text.charAt(i) !== ':') fail('":"');
        i++;
        value();
        space();
        if (text.charAt(i) === '}') {
          i++;
          return;
        }
        if (text.charAt(i) !== ',') fail('"," or "}"');
        i++;
      }
    }
    if (c === '[') {
      i++;
      space();
      if (text.charAt(i) === ']') {
        i++;
        return;
      }
      for (;;) {
        value();
        space();
        if (text.charAt(i) === ']') {
          i++;
          return;
        }
        if (text.charAt(i) !== ',') fail('"," or "]"');
        i++;
      }
    }
    if (c === '"') {
      readString();
      return;
    }
    for (const literal of ['true', 'false', 'null']) {
      if (text.startsWith(literal, i)) {
        i += literal.length;
        return;
      }
    }
    const number = /-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
    number.lastIndex = i;
    if (number.exec(text) === null) fail('a value');
    i = number.lastIndex;
  };
  try {
    value();
    space();
    if (i < text.length) fail('end of file after the JSON value');
    return undefined;
  } catch (e) {
    if (e instanceof Stop) return { offset: e.offset, reason: e.reason };
    return undefined; // e.g. nesting too deep for the stack: the caller falls back to V8's message
  }
}

function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const lineStart = before.lastIndexOf('\n') + 1;
  return { line: before.split('\n').length, column: offset - lineStart + 1 };
}
