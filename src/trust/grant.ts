import { sql, type Kysely } from 'kysely';
import { quoteIdent } from '../postgres/identifiers';
import type { KitRoles } from './roles';

/** Which kit role a login can be given with `audit-trail grant`. */
export type GrantableRole = 'reader' | 'writer';

/**
 * The statement that gives `login` the kit's `kind` role: membership, so the grants
 * stay in one place (the kit role) and `migrate` keeps them current.
 */
export function grantSql(roles: KitRoles, kind: GrantableRole, login: string): string {
  return `GRANT ${quoteIdent(roles[kind])} TO ${quoteIdent(login)}`;
}

/** Runs {@link grantSql}; the kit role must exist (run migrate first). */
export async function grantKitRole(
  db: Kysely<unknown>,
  roles: KitRoles,
  kind: GrantableRole,
  login: string,
): Promise<void> {
  await sql.raw(grantSql(roles, kind, login)).execute(db);
}
