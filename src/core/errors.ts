/**
 * Error classes with stable `code` strings (undici's idea): callers and tests switch on `code`,
 * never on message text. One class per layer; details travel as typed fields.
 */
export class PacsError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A data set or file could not be parsed. `offset` is the byte offset in the stream being read. */
export class DicomParseError extends PacsError {
  readonly offset: number;
  readonly tag: number | undefined;
  constructor(message: string, offset: number, tag?: number, options?: { cause?: unknown }) {
    const where = tag === undefined ? '' : ` in ${formatTagForError(tag)}`;
    super('ERR_DICOM_PARSE', `${message}${where} at byte ${offset}`, options);
    this.offset = offset;
    this.tag = tag;
  }
}

/** A value or data set cannot be encoded as asked (wrong type for the VR, unsupported syntax...). */
export class DicomEncodeError extends PacsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_DICOM_ENCODE', message, options);
  }
}

/** A configuration value is invalid; `issues` lists one line per bad field. */
export class ConfigError extends PacsError {
  readonly issues: readonly string[];
  constructor(issues: readonly string[]) {
    super(
      'ERR_CONFIG',
      issues.length === 1 ? `invalid config: ${issues[0]}` : `invalid config:\n  ${issues.join('\n  ')}`,
    );
    this.issues = issues;
  }
}

/** A command-line usage error: the CLI prints the message alone and exits non-zero. */
export class UsageError extends PacsError {
  constructor(message: string) {
    super('ERR_USAGE', message);
  }
}

function formatTagForError(tag: number): string {
  const hex = (tag >>> 0).toString(16).toUpperCase().padStart(8, '0');
  return `(${hex.slice(0, 4)},${hex.slice(4)})`;
}
