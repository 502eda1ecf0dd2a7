/** Password hashing (scrypt, parameters in the string), the policy, and API token encoding. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  DEFAULT_SCRYPT,
  generatePassword,
  hashPassword,
  needsRehash,
  parsePasswordHash,
  passwordProblem,
  verifyPassword,
} from '../../src/security/passwords.js';
import {
  generateToken,
  hashSecret,
  parseToken,
  permissionsBeyond,
  secretMatches,
} from '../../src/security/tokens.js';

describe('passwords', () => {
  test('a hash verifies its password and no other', async () => {
    const hash = await hashPassword('correct horse battery staple');
    assert.equal(await verifyPassword('correct horse battery staple', hash), true);
    assert.equal(await verifyPassword('correct horse battery stapl', hash), false);
    assert.equal(await verifyPassword('', hash), false);
    // Unicode normalisation: the composed and decomposed forms are one password.
    const accented = await hashPassword('caf\u00e9 au lait, sans sucre');
    assert.equal(await verifyPassword('cafe\u0301 au lait, sans sucre', accented), true);
  });

  test('the string carries the algorithm, its parameters and a salt of its own', async () => {
    const a = await hashPassword('the same password twice');
    const b = await hashPassword('the same password twice');
    assert.match(a, /^\$scrypt\$ln=15,r=8,p=1\$[A-Za-z0-9+/]+=*\$[A-Za-z0-9+/]+=*$/);
    assert.notEqual(a, b, 'salted');
    const parsed = parsePasswordHash(a);
    assert.deepEqual(parsed?.params, DEFAULT_SCRYPT);
    assert.equal(parsed?.salt.length, 16);
    assert.equal(parsed?.hash.length, 32);
  });

  test('other parameters verify and are flagged for a rehash', async () => {
    const weak = await hashPassword('an older, cheaper hash', { ln: 12, r: 8, p: 1 });
    assert.match(weak, /^\$scrypt\$ln=12,r=8,p=1\$/);
    assert.equal(await verifyPassword('an older, cheaper hash', weak), true);
    assert.equal(needsRehash(weak), true);
    assert.equal(needsRehash(await hashPassword('a current hash here')), false);
  });

  test('a stored string that is not ours, or asks for absurd parameters, never matches', async () => {
    assert.equal(parsePasswordHash('plain text'), undefined);
    assert.equal(
      parsePasswordHash(
        '$scrypt$ln=40,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=',
      ),
      undefined,
    );
    assert.equal(await verifyPassword('plain text', 'plain text'), false);
  });

  test('policy: empty, short, one repeated character are refused', () => {
    assert.match(passwordProblem('') ?? '', /empty/);
    assert.match(passwordProblem('elevenchars') ?? '', /too short \(11 characters; at least 12\)/);
    assert.match(passwordProblem('aaaaaaaaaaaaaaaa') ?? '', /repeats/);
    assert.match(passwordProblem(`${'x'.repeat(1025)}y`) ?? '', /too long/);
    assert.equal(passwordProblem('twelve chars'), undefined);
    const generated = generatePassword();
    assert.equal(generated.length, 24);
    assert.equal(passwordProblem(generated), undefined);
    assert.notEqual(generatePassword(), generated);
  });
});

describe('API tokens', () => {
  test('pacs_<id>_<secret>: parsed back, stored as the SHA-256 of the secret', () => {
    const t = generateToken();
    assert.match(t.token, /^pacs_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    const parsed = parseToken(t.token);
    assert.equal(parsed?.tokenId, t.tokenId);
    assert.equal(t.secretHash, hashSecret(parsed?.secret ?? ''));
    assert.equal(t.secretHash.length, 64);
    assert.ok(!t.token.includes(t.secretHash));
    assert.equal(secretMatches(parsed?.secret ?? '', t.secretHash), true);
    assert.equal(secretMatches(`${parsed?.secret.slice(0, -1)}x`, t.secretHash), false);
    assert.notEqual(generateToken().tokenId, t.tokenId);
  });

  test('malformed tokens are not parsed', () => {
    for (const bad of [
      '',
      'pacs_',
      'pacs_abc_def',
      `pacs_${'g'.repeat(16)}_${'a'.repeat(43)}`,
      `pacs_${'a'.repeat(16)}_${'a'.repeat(42)}`,
      `xpacs_${'a'.repeat(16)}_${'a'.repeat(43)}`,
    ])
      assert.equal(parseToken(bad), undefined, bad);
  });

  test('a role beyond the user: the permissions it adds', () => {
    assert.deepEqual(permissionsBeyond(['view', 'download'], ['view']), ['download']);
    assert.deepEqual(permissionsBeyond(['view'], new Set(['view', 'download'] as const)), []);
  });
});
