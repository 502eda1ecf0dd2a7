/**
 * The identity tables of the security migration (migration.ts) as the query layer (kysely) sees
 * them: app_role, app_user, api_token, web_session. Times are ISO 8601 UTC text (they compare as
 * text); booleans are 0/1 integers on both engines.
 *
 * Type aliases rather than interfaces: kysely's withTables() needs types with an implicit index signature.
 */
import type { Generated } from 'kysely';

export type AppRoleTable = {
  name: string;
  description: string;
  /** Comma separated (security/permissions.ts PERMISSIONS). */
  permissions: string;
  created_at: string;
  updated_at: string;
};

export type AppUserTable = {
  id: Generated<number>;
  name: string;
  role: string;
  password_hash: string | null;
  disabled: Generated<number>;
  created_at: string;
  updated_at: string;
};

export type ApiTokenTable = {
  token_id: string;
  user_id: number;
  role: string;
  secret_hash: string;
  description: string | null;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
};

export type WebSessionTable = {
  session_hash: string;
  user_id: number;
  csrf_token: string;
  remote_address: string | null;
  created_at: string;
  expires_at: string;
  last_seen_at: string;
};

export type IdentityDatabase = {
  app_role: AppRoleTable;
  app_user: AppUserTable;
  api_token: ApiTokenTable;
  web_session: WebSessionTable;
};
