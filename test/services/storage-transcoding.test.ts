/**
 * The choice of a syntax to transcode a compressed object into (services/storage/transcoding.ts):
 * accepted list order lossless compressed > Explicit VR LE > Implicit VR LE > the others, lossy
 * JPEG baseline only when the policy allows it, nothing for a syntax no codec decodes; and
 * `pacs store --transcode` takes only lossless or lossy.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EXPLICIT_VR_BE, EXPLICIT_VR_LE, IMPLICIT_VR_LE, UID } from '../../src/dicom/uid.js';
import { isTranscodable, transcodeTarget } from '../../src/services/storage/transcoding.js';
import { runPacs } from '../helpers/cli.js';

describe('transcodeTarget', () => {
  it('prefers lossless compressed, then Explicit VR LE, then Implicit VR LE', () => {
    const j2k = UID.JPEG2000Lossless;
    assert.equal(
      transcodeTarget(j2k, [IMPLICIT_VR_LE, EXPLICIT_VR_LE, UID.JPEGLSLossless]),
      UID.JPEGLSLossless,
    );
    assert.equal(transcodeTarget(j2k, [IMPLICIT_VR_LE, EXPLICIT_VR_LE]), EXPLICIT_VR_LE);
    assert.equal(transcodeTarget(j2k, [EXPLICIT_VR_BE, IMPLICIT_VR_LE]), IMPLICIT_VR_LE);
    assert.equal(transcodeTarget(j2k, [EXPLICIT_VR_BE]), EXPLICIT_VR_BE);
    assert.equal(transcodeTarget(UID.RLELossless, [UID.HTJ2KLossless, EXPLICIT_VR_LE]), UID.HTJ2KLossless);
  });

  it('chooses JPEG baseline only when lossy is allowed', () => {
    assert.equal(transcodeTarget(UID.JPEG2000Lossless, [UID.JPEGBaseline8Bit]), undefined);
    assert.equal(
      transcodeTarget(UID.JPEG2000Lossless, [UID.JPEGBaseline8Bit], { lossy: true }),
      UID.JPEGBaseline8Bit,
    );
    // A lossless target still wins when there is one.
    assert.equal(
      transcodeTarget(UID.JPEG2000Lossless, [UID.JPEGBaseline8Bit, IMPLICIT_VR_LE], { lossy: true }),
      IMPLICIT_VR_LE,
    );
  });

  it('has nothing for a syntax no codec decodes, or a native one (re-encoded, not transcoded)', () => {
    assert.equal(isTranscodable(UID.JPEGXLLossless), false);
    assert.equal(transcodeTarget(UID.JPEGXLLossless, [EXPLICIT_VR_LE]), undefined);
    assert.equal(isTranscodable(EXPLICIT_VR_LE), false);
    for (const ts of [
      UID.JPEGBaseline8Bit,
      UID.JPEGExtended12Bit,
      UID.JPEGLosslessSV1,
      UID.JPEGLSLossless,
      UID.JPEG2000,
      UID.HTJ2K,
      UID.RLELossless,
    ])
      assert.equal(isTranscodable(ts), true, ts);
  });

  it('pacs store --transcode takes lossless or lossy only (usage error otherwise)', async () => {
    const r = await runPacs(['store', '--transcode', 'maybe', '127.0.0.1', '1', '/nonexistent']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--transcode: expected lossless or lossy, not maybe/);
  });
});
