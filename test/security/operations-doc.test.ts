/**
 * docs/security.md lists what every operation needs: an operation added to
 * security/operations.ts without a line there fails here, and so does a line the code no longer has.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { OPERATION_NAMES } from '../../src/security/operations.js';

const doc = readFileSync(new URL('../../../docs/security.md', import.meta.url), 'utf8');

describe('docs/security.md', () => {
  it('has a row for every operation, and no row for one that does not exist', () => {
    const rows = [...doc.matchAll(/^\| `([a-z]+:[a-z-]+)` \|/gm)].map((m) => m[1]);
    assert.deepEqual([...rows].sort(), [...OPERATION_NAMES].sort());
  });
});
