/**
 * Helpers of the STOW-RS tests: multipart payloads built by hand (so that every framing detail
 * is under the test's control), a POST over a raw HTTP request, and the data set bytes of a
 * Part-10 file (what the archive must keep exactly as sent).
 */
import http from 'node:http';

/** One part of a multipart payload. */
export interface Part {
  readonly headers?: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
}

/** A multipart body: `--boundary CRLF headers CRLF CRLF body CRLF ... --boundary--`. */
export function multipart(
  boundary: string,
  parts: readonly Part[],
  options: { close?: boolean } = {},
): Buffer {
  const out: Buffer[] = [];
  for (const p of parts) {
    out.push(Buffer.from(`--${boundary}\r\n`));
    for (const [k, v] of Object.entries(p.headers ?? { 'Content-Type': 'application/dicom' }))
      out.push(Buffer.from(`${k}: ${v}\r\n`));
    out.push(Buffer.from('\r\n'), Buffer.from(p.body), Buffer.from('\r\n'));
  }
  if (options.close !== false) out.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(out);
}

/** The answer to a POST: status, headers, body text and the body parsed as JSON when it is JSON. */
export interface PostResult {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly text: string;
  readonly json: unknown;
}

/** POSTs a body (one Buffer, or chunks written one after another) and reads the whole answer. */
export function post(
  url: string,
  contentType: string | undefined,
  body: Buffer | readonly Buffer[],
  headers: Readonly<Record<string, string>> = {},
): Promise<PostResult> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: 'POST',
      headers: { ...(contentType !== undefined ? { 'content-type': contentType } : {}), ...headers },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    for (const c of Array.isArray(body) ? body : [body]) req.write(c);
    req.end();
  });
}

/** The data set bytes of a Part-10 file (after the preamble, DICM and the file meta group). */
export function dataSetBytes(file: Uint8Array): Buffer {
  const b = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
  if (b.toString('latin1', 128, 132) !== 'DICM') throw new Error('not a Part-10 file');
  return b.subarray(132 + 12 + b.readUInt32LE(140));
}

/** A DICOM JSON attribute value of a response item ("00081155" -> its first value). */
export function value(item: unknown, tag: string): unknown {
  const a = (item as Record<string, { Value?: unknown[] } | undefined>)[tag];
  return a?.Value?.[0];
}

/** The items of a sequence attribute of a response. */
export function items(body: unknown, tag: string): unknown[] {
  const a = (body as Record<string, { Value?: unknown[] } | undefined> | undefined)?.[tag];
  return a?.Value ?? [];
}
