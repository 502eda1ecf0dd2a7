#!/usr/bin/env node
// Installs the Debian packages the tests need when they are missing (README: `npm test` is the whole
// set-up on a fresh Debian machine). As root it runs apt-get; otherwise it names them in one line
// and fails. Each package is checked by a file it installs, so a present machine costs nothing.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Debian package -> a file whose presence says it is installed. */
const PACKAGES = {
  dcmtk: '/usr/bin/storescp',
  'python3-pydicom': '/usr/lib/python3/dist-packages/pydicom/data',
  // DICOMweb interop: Orthanc with its DICOMweb plugin as a client of our server.
  orthanc: '/usr/sbin/Orthanc',
  'orthanc-dicomweb': '/usr/share/orthanc/plugins/libOrthancDicomWeb.so',
  // djpeg: the JPEG decoder the rendering tests check our JPEG output with.
  'libjpeg-turbo-progs': '/usr/bin/djpeg',
  // Pixel codec tests: GDCM is the JPEG 2000 oracle (DCMTK has no JPEG 2000).
  'python3-gdcm': '/usr/lib/python3/dist-packages/gdcm.py',
  // bench:transcode: gdcmconv --raw, the reference decompressor for JPEG 2000 (DCMTK has none).
  'libgdcm-tools': '/usr/bin/gdcmconv',
  // Browser tests: the session cookie in a real browser (test/web/auth-browser.test.ts).
  chromium: '/usr/bin/chromium',
  // The audit trail: rsyslog with TLS as the Audit Record Repository, xmllint for the PS3.15 A.5.1 schema.
  rsyslog: '/usr/sbin/rsyslogd',
  'rsyslog-gnutls': '/usr/share/doc/rsyslog-gnutls',
  'libxml2-utils': '/usr/bin/xmllint',
};

const missing = Object.entries(PACKAGES)
  .filter(([, file]) => !existsSync(file))
  .map(([name]) => name);
if (missing.length === 0) process.exit(0);

if (process.getuid?.() !== 0) {
  console.error(
    `pacs tests: missing system packages; install them with: sudo apt-get install -y ${missing.join(' ')}`,
  );
  process.exit(1);
}
console.error(`pacs tests: installing ${missing.join(' ')} with apt-get`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
const run = (args) =>
  spawnSync('apt-get', args, { stdio: ['ignore', 'ignore', 'inherit'], env }).status === 0;
if (!run(['update', '-qq']) || !run(['install', '-y', '-qq', ...missing])) {
  console.error(`pacs tests: apt-get could not install ${missing.join(' ')}`);
  process.exit(1);
}
