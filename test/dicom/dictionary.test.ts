import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  dictionaryVR,
  keywordOf,
  lookupTag,
  parseTagOrKeyword,
  TAG,
  tagForKeyword,
} from '../../src/dicom/dictionary.js';
import { formatTag, isPrivateCreatorTag, isPrivateTag, parseTagString } from '../../src/dicom/tag.js';
import {
  allStorageSopClasses,
  generateUid,
  isStorageSopClass,
  isValidUid,
  lookupUid,
  transferSyntax,
  UID,
} from '../../src/dicom/uid.js';

describe('dictionary', () => {
  it('maps tags, keywords, VR, VM and retired flags both ways', () => {
    const e = lookupTag(0x00100010);
    assert.equal(e?.keyword, 'PatientName');
    assert.equal(e?.vr, 'PN');
    assert.equal(e?.vm, '1');
    assert.equal(e?.retired, false);
    assert.equal(tagForKeyword('PatientName'), 0x00100010);
    assert.equal(TAG.PixelData, 0x7fe00010);
    assert.equal(lookupTag(0x00000001)?.retired, true); // CommandLengthToEnd
  });

  it('knows the command group (0000)', () => {
    assert.equal(keywordOf(0x00000100), 'CommandField');
    assert.equal(dictionaryVR(0x00000900), 'US');
  });

  it('resolves repeating groups (50xx, 60xx)', () => {
    assert.equal(lookupTag(0x60020010)?.keyword, 'OverlayRows');
    assert.equal(lookupTag(0x601e3000)?.keyword, 'OverlayData');
    assert.equal(lookupTag(0x50100005)?.keyword, 'CurveDimensions');
  });

  it('keeps ambiguous VRs for the codec to resolve', () => {
    assert.equal(lookupTag(0x00280106)?.vr, 'US or SS'); // SmallestImagePixelValue
    assert.equal(lookupTag(0x7fe00010)?.vr, 'OB or OW');
  });

  it('treats private tags: creators are LO, group lengths UL, data elements unknown (UN)', () => {
    assert.ok(isPrivateTag(0x00090010));
    assert.ok(isPrivateCreatorTag(0x00090010));
    assert.equal(lookupTag(0x00090010)?.vr, 'LO');
    assert.equal(lookupTag(0x00090000)?.vr, 'UL');
    assert.equal(lookupTag(0x00091001), undefined);
    assert.equal(dictionaryVR(0x00091001), 'UN');
    assert.ok(!isPrivateTag(0x00080010));
    assert.ok(!isPrivateTag(0xfffee000));
  });

  it('parses tags and keywords the way the CLI takes them', () => {
    assert.equal(parseTagString('0010,0010'), 0x00100010);
    assert.equal(parseTagString('(7FE0,0010)'), 0x7fe00010);
    assert.equal(parseTagString('00100020'), 0x00100020);
    assert.equal(parseTagString('PatientName'), undefined);
    assert.equal(parseTagOrKeyword('StudyInstanceUID'), 0x0020000d);
    assert.equal(parseTagOrKeyword('NoSuchKeyword'), undefined);
    assert.equal(formatTag(0x7fe00010), '(7FE0,0010)');
  });
});

describe('UID registry', () => {
  it('gives transfer syntax properties', () => {
    const implicit = transferSyntax(UID.ImplicitVRLittleEndian);
    assert.deepEqual(
      implicit && [
        implicit.explicitVR,
        implicit.littleEndian,
        implicit.deflated,
        implicit.encapsulated,
        implicit.lossy,
      ],
      [false, true, false, false, false],
    );
    const be = transferSyntax(UID.ExplicitVRBigEndian);
    assert.equal(be?.littleEndian, false);
    assert.equal(transferSyntax(UID.DeflatedExplicitVRLittleEndian)?.deflated, true);
    const jpeg = transferSyntax(UID.JPEGBaseline8Bit);
    assert.equal(jpeg?.encapsulated, true);
    assert.equal(jpeg?.lossy, true);
    assert.equal(transferSyntax(UID.JPEGLSLossless)?.lossy, false);
    assert.equal(transferSyntax(UID.JPEGLSNearLossless)?.lossy, true);
    assert.equal(transferSyntax(UID.JPEG2000Lossless)?.lossy, false);
    assert.equal(transferSyntax(UID.RLELossless)?.encapsulated, true);
    assert.equal(transferSyntax(UID.RLELossless)?.lossy, false);
    assert.equal(transferSyntax('1.2.3'), undefined);
  });

  it('knows storage SOP classes', () => {
    assert.ok(isStorageSopClass(UID.CTImageStorage));
    assert.ok(!isStorageSopClass(UID.Verification));
    assert.ok(!isStorageSopClass(UID.StorageCommitmentPushModel));
    assert.ok(allStorageSopClasses().length > 100);
    assert.equal(lookupUid(UID.CTImageStorage)?.name, 'CT Image Storage');
  });

  it('validates UID syntax (PS3.5 9.1)', () => {
    assert.ok(isValidUid('1.2.840.10008.1.2'));
    assert.ok(isValidUid('0.0'));
    assert.ok(!isValidUid(''));
    assert.ok(!isValidUid('1.02'));
    assert.ok(!isValidUid('1..2'));
    assert.ok(!isValidUid('1.2.'));
    assert.ok(!isValidUid('1.2a'));
    assert.ok(!isValidUid(`1.${'2'.repeat(63)}`));
  });

  it('generates valid, distinct 2.25 UIDs', () => {
    const a = generateUid();
    const b = generateUid();
    assert.match(a, /^2\.25\.[1-9][0-9]*$/);
    assert.ok(isValidUid(a));
    assert.notEqual(a, b);
  });
});
