import { sql, type Kysely } from 'kysely';
import { quoteIdent } from '../postgres/identifiers';
import type { KitRoles } from './roles';

/**
 * What a login can be given with `audit-trail grant`: `reader` (history), `writer`
 * (DMS's target login: staging DML) or `engine` (the local engine's target login: the
 * writer and engine roles, as the engine needs both).
 */
export type GrantableRole = 'reader' | 'writer' | 'engine';

/** The kit roles `kind` stands for: the engine's login needs writer beside engine. */
export function grantedRoles(roles: KitRoles, kind: GrantableRole): string[] {
  return kind === 'engine' ? [roles.writer, roles.engine] : [roles[kind]];
}

/**
 * The statement that gives `login` the kit's roles for `kind`: membership, so the grants
 * stay in one place (the kit role) and `migrate` keeps them current.
 */
export function grantSql(roles: KitRoles, kind: GrantableRole, login: string): string {
  return `GRANT ${grantedRoles(roles, kind).map(quoteIdent).join(', ')} TO ${quoteIdent(login)}`;
}

/** Runs {@link grantSql}; the kit roles must exist (run migrate first). */
export async function grantKitRole(
  db: Kysely<unknown>,
  roles: KitRoles,
  kind: GrantableRole,
  login: string,
): Promise<void> {
  await sql.raw(grantSql(roles, kind, login)).execute(db);
}
