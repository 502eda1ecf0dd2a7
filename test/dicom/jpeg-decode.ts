/**
 * A real JPEG decoder for the tests: libjpeg-turbo's djpeg (Debian libjpeg-turbo-progs), installed
 * with apt-get when missing and we are root (as scripts/system-packages.mjs does), else a clear error.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Image } from '../../src/dicom/pixel/render.js';

const DJPEG = '/usr/bin/djpeg';

/** Makes sure djpeg is there (installs it as root), or throws naming the package. */
export function ensureDjpeg(): void {
  if (existsSync(DJPEG)) return;
  if (process.getuid?.() === 0) {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const install = () =>
      spawnSync('apt-get', ['install', '-y', '-qq', 'libjpeg-turbo-progs'], { stdio: 'ignore', env })
        .status === 0;
    if (!install()) {
      spawnSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env });
      install();
    }
  }
  if (!existsSync(DJPEG)) throw new Error("djpeg is missing: run 'apt-get install -y libjpeg-turbo-progs'");
}

/** Decodes a JPEG with djpeg into a PNM: width, height, channels and samples. */
export function djpeg(jpeg: Uint8Array): Image {
  ensureDjpeg();
  const r = spawnSync(DJPEG, ['-pnm'], { input: jpeg, maxBuffer: 1 << 28 });
  assert.equal(r.status, 0, `djpeg failed: ${r.stderr.toString()}`);
  const out = r.stdout;
  const m = out.toString('latin1', 0, 40).match(/^P([56])\s+(\d+)\s+(\d+)\s+255\s/);
  assert.ok(m, 'djpeg wrote a PGM or PPM');
  return {
    width: Number(m[2]),
    height: Number(m[3]),
    channels: m[1] === '5' ? 1 : 3,
    data: new Uint8Array(out.subarray(m[0].length)),
  };
}
