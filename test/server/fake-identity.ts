/** A fake IdentityService for tests of DICOM user identity negotiation (the real one is issue 14's identity part). */
import assert from 'node:assert/strict';
import type { AuthResult, IdentityService } from '../../src/security/authentication.js';
import { BUILTIN_ROLES, type Permission } from '../../src/security/permissions.js';

function role(name: string): { role: string; permissions: ReadonlySet<Permission> } {
  const r = BUILTIN_ROLES.find((x) => x.name === name);
  assert.ok(r !== undefined);
  return { role: r.name, permissions: new Set(r.permissions) };
}

/** A fake IdentityService: alice/secret (technologist) and viewer/view (viewer); JWT "good-jwt" is bob. */
export function fakeIdentityService(): IdentityService & { calls: string[] } {
  const calls: string[] = [];
  const fail = (reason: string): AuthResult => ({ ok: false, reason });
  const users: Record<string, { password: string; role: string }> = {
    alice: { password: 'secret', role: 'technologist' },
    viewer: { password: 'view', role: 'viewer' },
  };
  return {
    calls,
    async authenticatePassword(name, password) {
      calls.push(`password ${name}`);
      const u = users[name];
      if (u === undefined || u.password !== password) return fail('wrong user name or password');
      return { ok: true, identity: { kind: 'user', name, ...role(u.role), method: 'password' } };
    },
    async authenticateBearer() {
      return fail('not used');
    },
    async authenticateJwt(token) {
      calls.push('jwt');
      if (token !== 'good-jwt') return fail('bad signature');
      return { ok: true, identity: { kind: 'user', name: 'bob', ...role('clinician'), method: 'oidc' } };
    },
    async createSession() {
      throw new Error('not used');
    },
    async resumeSession() {
      return undefined;
    },
    async endSession() {},
  };
}
