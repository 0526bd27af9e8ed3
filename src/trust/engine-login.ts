import type pg from 'pg';
import { AuditTrailError } from '../errors';
import { quoteIdent } from '../postgres/identifiers';
import type { KitRoles } from './roles';

/**
 * Thrown at the engine's start when its target login lacks a kit role the engine writes
 * through (without it the engine would fail on a permission error part way into its
 * work), and when a permission error stops a running engine whose login lost one. The
 * message names the roles and the statement that grants them.
 */
export class EngineLoginError extends AuditTrailError {
  override readonly name = 'EngineLoginError';
  constructor(message: string, options: { readonly hint?: string; readonly cause?: unknown } = {}) {
    super(message, { code: 'ENGINE_ROLE_MISSING', kind: 'usage', ...options });
  }
}

/**
 * Checks, before the engine reads or writes anything of the kit's, that its target login
 * may do all it does: it holds (with inheritance, as the kit tables' guards require) the
 * writer role (staging DML) and the engine role (its position and its record of what it
 * loaded), or the owner role, which owns every kit table (a superuser holds every role).
 * @throws EngineLoginError naming the roles to grant
 * @throws AuditTrailError `TARGET_NOT_MIGRATED` when a kit role does not exist yet (the
 *   engine role is created by the `migrate` that runs migration 0027)
 */
export async function requireEngineLogin(target: pg.ClientBase, roles: KitRoles): Promise<void> {
  const refusal = await engineLoginRefusal(target, roles, null);
  if (refusal) throw refusal;
}

/**
 * What a permission error (SQLSTATE 42501) on the target while the engine ran means: the
 * login lost a kit role after the start check (a DBA's REVOKE, a login set-up re-run), so
 * the error names the role and the GRANT as that check does, with the server's words in
 * it. The caller has rolled the target transaction back, so nothing of it was applied.
 * Any other error, or a 42501 whose login still holds every role (a grant of the kit's
 * that a `migrate` puts back), is returned as it is.
 * @param target the engine's target connection, not in a transaction
 */
export async function diagnoseEngineLogin(
  target: pg.ClientBase,
  roles: KitRoles,
  error: unknown,
): Promise<unknown> {
  if ((error as { code?: unknown }).code !== '42501' || error instanceof AuditTrailError)
    return error;
  const refusal = await engineLoginRefusal(target, roles, error as Error).catch(() => null);
  return refusal ?? error;
}

/**
 * The error for a login that lacks a role the engine needs, or null.
 * @param stopped the permission error that stopped a running engine; null at start
 */
async function engineLoginRefusal(
  target: pg.ClientBase,
  roles: KitRoles,
  stopped: Error | null,
): Promise<AuditTrailError | null> {
  // One row per needed role the login cannot use. The engine's target connection reads
  // every value as text.
  const { rows } = await target.query<{ login: string; role: string; exists: string }>(
    `SELECT current_user::text AS login, k.name AS role, (r.oid IS NOT NULL)::text AS exists
       FROM unnest($1::text[]) WITH ORDINALITY AS k(name, ord)
       LEFT JOIN pg_catalog.pg_roles AS r ON r.rolname = k.name
      WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles AS held
                         WHERE held.rolname IN (k.name, $2)
                           AND pg_catalog.pg_has_role(current_user, held.oid, 'USAGE'))
      ORDER BY k.ord`,
    [[roles.writer, roles.engine], roles.owner],
  );
  if (rows.length === 0) return null;
  const absent = rows.filter((row) => row.exists !== 'true').map((row) => row.role);
  if (absent.length > 0)
    return new AuditTrailError(
      `the target has no kit role ${absent.join(', ')}: the engine writes its position through it`,
      {
        code: 'TARGET_NOT_MIGRATED',
        kind: 'usage',
        hint: 'run "audit-trail migrate" first',
        ...(stopped ? { cause: stopped } : {}),
      },
    );
  const login = rows[0]!.login;
  const missing = rows.map((row) => row.role);
  const grant = `GRANT ${missing.map(quoteIdent).join(', ')} TO ${quoteIdent(login)}`;
  const member = stopped
    ? `is no longer a member of ${missing.join(' and ')} (${stopped.message})`
    : `is not a member of ${missing.join(' and ')}`;
  const applied = stopped
    ? 'the target transaction it was applying was rolled back: nothing of it was applied'
    : 'nothing was applied';
  return new EngineLoginError(
    `the engine's target login ${login} ${member}: the engine needs the writer role ` +
      `(${roles.writer}: staging DML) and the engine role (${roles.engine}: its position and ` +
      `its record of what it loaded); ${applied}`,
    {
      hint:
        `as the target's administrator run ${grant}, or "audit-trail grant engine ${login}" ` +
        '(the writer role alone is for DMS)',
      ...(stopped ? { cause: stopped } : {}),
    },
  );
}
