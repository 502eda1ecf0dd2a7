/**
 * Our parser + toDicomJson against pydicom 2.3's dcmread(f).to_json_dict() over the corpus that
 * `apt-get install python3-pydicom` ships (read where it is installed, never copied). pydicom's
 * JSON goes through the normalisation below, each step with its reason; files where we differ on
 * purpose are listed in KNOWN_DEVIATIONS.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DicomParseError } from '../../src/core/errors.js';
import { type DicomJsonObject, toDicomJson } from '../../src/dicom/json.js';
import { parseDicom } from '../../src/dicom/reader.js';
import { EXPLICIT_VR_BE } from '../../src/dicom/uid.js';
import { CHARSET_FILES, corpusFiles, PYDICOM_DATA, TEST_FILES } from '../helpers/corpus.js';

/** The system python: the one `apt-get install python3-pydicom` installs pydicom for (not pyenv's). */
const PYTHON = '/usr/bin/python3';
const HELPER = fileURLToPath(new URL('../../../test/helpers/pydicom_json.py', import.meta.url));
const INSTALL_HINT =
  'run `apt-get install -y python3-pydicom` (it provides pydicom for /usr/bin/python3 and the corpus)';

/**
 * Files where we differ from pydicom on purpose: we throw DicomParseError, pydicom reads something.
 */
const KNOWN_DEVIATIONS: Record<string, string> = {
  'test_files/MR_truncated.dcm':
    'truncated in Pixel Data: pydicom silently returns the short value; we raise a parse error by design (a truncated object must not be stored or indexed as complete)',
  'test_files/rtplan_truncated.dcm':
    'truncated inside a sequence: pydicom silently returns what it read; we raise a parse error by design, as for MR_truncated.dcm',
  'test_files/no_meta.dcm':
    'a stray byte before the first element shifts the whole data set by one: not a DICOM stream (DCMTK fails too); pydicom reads it only with force=True, as one UN element of garbage',
};

interface PydicomRead {
  status: 'ok' | 'forced' | 'error';
  error?: string;
  forcedError?: string;
  json?: DicomJsonObject;
  dropped?: string[];
}

function runPydicom(files: readonly string[]): Record<string, PydicomRead> {
  if (!existsSync(PYTHON)) assert.fail(`${PYTHON} not found: ${INSTALL_HINT}`);
  const probe = spawnSync(PYTHON, ['-c', 'import pydicom'], { encoding: 'utf8' });
  if (probe.status !== 0)
    assert.fail(
      `${PYTHON} cannot import pydicom (${probe.stderr.trim().split('\n').pop()}): ${INSTALL_HINT}`,
    );
  const r = spawnSync(PYTHON, [HELPER, '--no-private-dictionary', ...files], {
    cwd: PYDICOM_DATA,
    encoding: 'utf8',
    maxBuffer: 512 * 1024 * 1024,
  });
  if (r.status !== 0) assert.fail(`${HELPER} failed (exit ${r.status}): ${r.stderr}`);
  return (JSON.parse(r.stdout) as { files: Record<string, PydicomRead> }).files;
}

// --- normalisation of pydicom's JSON -------------------------------------------------------------

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Attr = { vr: string; Value?: Json[]; InlineBinary?: string; BulkDataURI?: string };

/** Text VRs whose "Value" holds several values split at '\' (PS3.5 6.2). */
const MULTI_TEXT = new Set(['AE', 'AS', 'CS', 'DA', 'DS', 'DT', 'IS', 'LO', 'PN', 'SH', 'TM', 'UC', 'UI']);
const SWAP: Record<string, number> = { OW: 2, OF: 4, OL: 4, OD: 8, OV: 8 };

/**
 * pydicom's JSON as we write it. Each rule is one difference of form, not of content:
 * 1. Group lengths (gggg,0000) removed: PS3.18 F.2.2 says they shall not be included; pydicom keeps them.
 * 2. A sequence without items has no "Value": PS3.18 F.2.5 (empty attribute); pydicom writes "Value": [].
 * 3. Empty values inside a multi-valued text attribute are null (PS3.18 F.2.5); pydicom writes "".
 * 4. Empty PN component groups left out: PS3.18 F.2.2 encodes the non-empty groups only; pydicom
 *    writes "" (a name with no group left is an empty value: null, as in rule 3).
 * 5. Trailing spaces of each value of a multi-valued text attribute removed: they are padding
 *    (PS3.5 6.2); pydicom strips padding only at the end of the whole element.
 * 6. Big endian data sets: pydicom's InlineBinary of OW/OF/OL/OD/OV holds the file's byte order;
 *    the JSON model, like our DataSet, is little endian, so it is swapped.
 * 7. (In the helper: --no-private-dictionary) private data elements whose VR the stream does not
 *    give stay UN: we have no private dictionary (PS3.6 lists none), pydicom has one.
 * 8. Top-level elements pydicom cannot convert (it raises, e.g. on IS "1A") are missing from its
 *    JSON (the helper lists them as "dropped"); ours keeps them as strings (PS3.18 F.2.3), checked apart.
 */
function normalise(obj: Record<string, Attr>, bigEndian: boolean): DicomJsonObject {
  for (const key of Object.keys(obj)) {
    const a = obj[key] as Attr;
    if (key.endsWith('0000')) {
      delete obj[key]; // rule 1
      continue;
    }
    if (a.vr === 'SQ') {
      if (a.Value?.length === 0) delete a.Value; // rule 2
      for (const item of a.Value ?? []) normalise(item as Record<string, Attr>, bigEndian);
      continue;
    }
    if (a.Value && MULTI_TEXT.has(a.vr)) {
      const multi = a.Value.length > 1;
      a.Value = a.Value.map((v): Json => {
        if (typeof v === 'string') {
          const t = multi ? v.replace(/ +$/, '') : v; // rule 5
          return multi && t === '' ? null : t; // rule 3
        }
        if (a.vr === 'PN' && v !== null && typeof v === 'object' && !Array.isArray(v)) {
          const pn: { [k: string]: Json } = {};
          for (const [g, text] of Object.entries(v)) if (text !== '') pn[g] = text; // rule 4
          return Object.keys(pn).length === 0 ? null : pn;
        }
        return v;
      });
    }
    const unit = SWAP[a.vr];
    if (bigEndian && unit && a.InlineBinary) {
      const bytes = Buffer.from(a.InlineBinary, 'base64'); // rule 6
      const n = bytes.length - (bytes.length % unit);
      for (let i = 0; i < n; i += unit) bytes.subarray(i, i + unit).reverse();
      a.InlineBinary = bytes.toString('base64');
    }
  }
  return obj as DicomJsonObject;
}

/** Where two JSON values differ, as paths ("00081111.Value[0].00081150.vr: ours ... pydicom ..."). */
function differences(ours: unknown, theirs: unknown, path: string, out: string[]): void {
  if (out.length >= 10) return;
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
  if (isObj(ours) && isObj(theirs) && Array.isArray(ours) === Array.isArray(theirs)) {
    for (const k of new Set([...Object.keys(ours), ...Object.keys(theirs)]))
      differences(ours[k], theirs[k], Array.isArray(ours) ? `${path}[${k}]` : path ? `${path}.${k}` : k, out);
    return;
  }
  if (!Object.is(ours, theirs)) {
    const show = (v: unknown) => (JSON.stringify(v) ?? 'absent').slice(0, 120);
    out.push(`${path}: ours ${show(ours)}, pydicom ${show(theirs)}`);
  }
}

// --- the comparison --------------------------------------------------------------------------------

describe('toDicomJson matches pydicom 2.3 to_json_dict over the pydicom corpus', () => {
  // Names relative to the corpus root ("test_files/CT_small.dcm"); corpusFiles fails when it is missing.
  const files = [...corpusFiles(TEST_FILES), ...corpusFiles(CHARSET_FILES)].map((f) =>
    relative(PYDICOM_DATA, f),
  );
  let pydicom: Record<string, PydicomRead> | undefined;
  const read = (): Record<string, PydicomRead> => {
    pydicom ??= runPydicom(files);
    return pydicom;
  };

  for (const file of files) {
    test(file, () => {
      const py = read()[file];
      assert.ok(py, `the helper returned nothing for ${file}`);
      const bytes = readFileSync(join(PYDICOM_DATA, file));
      const deviation = KNOWN_DEVIATIONS[file];
      if (deviation !== undefined || py.status === 'error') {
        // pydicom cannot read it (or we refuse it on purpose, see KNOWN_DEVIATIONS): we must throw DicomParseError.
        assert.throws(
          () => parseDicom(bytes),
          DicomParseError,
          deviation ?? `pydicom cannot read it (${py.error}), so we must not either`,
        );
        return;
      }
      const parsed = parseDicom(bytes);
      // pydicom needs force=True for a raw data set (no preamble, no file meta); we read those as they are.
      if (py.status === 'forced')
        assert.equal(parsed.meta, undefined, `pydicom needs force=True (${py.error})`);
      const ours = toDicomJson(parsed.dataSet);
      for (const tag of py.dropped ?? []) {
        const value = ours[tag]?.Value;
        assert.ok(
          value?.some((v) => typeof v === 'string'),
          `${tag}: pydicom cannot convert its value; ours should keep it as a string, got ${JSON.stringify(ours[tag])}`,
        );
        delete ours[tag]; // rule 8
      }
      const theirs = normalise(py.json as Record<string, Attr>, parsed.transferSyntax === EXPLICIT_VR_BE);
      const diffs: string[] = [];
      differences(ours, theirs, '', diffs);
      if (diffs.length > 0) assert.fail(`differs from pydicom (${py.status}):\n  ${diffs.join('\n  ')}`);
    });
  }
});
