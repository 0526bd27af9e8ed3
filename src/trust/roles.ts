import { sql, type Kysely } from 'kysely';
import { ConfigError, type AuditTrailConfig } from '../config';
import { quoteIdent } from '../postgres/identifiers';
import { AuditTrailError } from '../errors';

/** The kit's roles on the target; see "Trust model" in the README. */
export interface KitRoles {
  /** NOLOGIN; owns the audit schema and every kit object; the only role that may prune. */
  readonly owner: string;
  /** NOLOGIN; owns the SECURITY DEFINER capture functions; may only append. */
  readonly capture: string;
  /** For DMS's target login and the local engine's: staging DML, nothing else. */
  readonly writer: string;
  /**
   * For the local engine's target login only, beside writer: the engine's bookkeeping
   * (its stored position, the tables and partitions it loaded, where it saw each logged
   * schema change). Never DMS's: a login that can move the position on makes the engine
   * skip changes.
   */
  readonly engine: string;
  /** SELECT on the audit log, registry and chain; EXECUTE on the history functions. */
  readonly reader: string;
}

export type KitRoleKind = keyof KitRoles;

export const KIT_ROLE_KINDS: readonly KitRoleKind[] = [
  'owner',
  'capture',
  'writer',
  'engine',
  'reader',
];

/**
 * The role names for `config`: `auditRoles.<kind>` when set, else `<auditSchema>_<kind>`.
 * @throws ConfigError when a derived name would exceed PostgreSQL's 63 bytes, or when two
 *   kinds get one name (a name set in `auditRoles` that another kind derives): one role
 *   would then hold both kinds' privileges.
 */
export function kitRoles(config: Pick<AuditTrailConfig, 'auditSchema' | 'auditRoles'>): KitRoles {
  const names = {} as Record<KitRoleKind, string>;
  const kindOf = new Map<string, KitRoleKind>();
  for (const kind of KIT_ROLE_KINDS) {
    const name = config.auditRoles?.[kind] ?? `${config.auditSchema}_${kind}`;
    if (Buffer.byteLength(name, 'utf8') > 63) {
      throw new ConfigError(
        `auditRoles.${kind}: the derived name "${name}" exceeds PostgreSQL's 63 bytes; set auditRoles.${kind}`,
      );
    }
    const clash = kindOf.get(name);
    if (clash !== undefined) {
      const set = config.auditRoles?.[kind] !== undefined ? kind : clash;
      throw new ConfigError(
        `auditRoles.${set}: "${name}" is also the ${set === kind ? clash : kind} role; each kit role needs its own name`,
      );
    }
    kindOf.set(name, kind);
    names[kind] = name;
  }
  return names;
}

/**
 * Thrown when the migrating login cannot create the kit's roles or take the memberships
 * it needs; the message carries the exact SQL an administrator runs first.
 */
export class RoleSetupError extends AuditTrailError {
  override readonly name = 'RoleSetupError';
  constructor(message: string, options: { readonly hint?: string; readonly cause?: unknown } = {}) {
    super(message, { code: 'ROLE_SETUP', kind: 'finding', ...options });
  }
}

interface Login {
  readonly name: string;
  readonly superuser: boolean;
  readonly createRole: boolean;
}

interface ExistingRole {
  readonly name: string;
  readonly canLogin: boolean;
  readonly superuser: boolean;
}

/**
 * Kinds whose role must exist as NOLOGIN and not a superuser: owner and capture own the
 * kit's objects and definer functions; engine may move the engine's position (a login by
 * that name from before migration 0027 would hold it without anyone granting it).
 * Writer and reader are granted to logins and have been taken as found since 0.1.
 */
export const NOLOGIN_KINDS = ['owner', 'capture', 'engine'] as const;

/**
 * Creates the kit roles that are missing (NOLOGIN), and makes the migrating login a
 * member of the owner and capture roles when it is not a superuser (it must be able to
 * hand objects to them). Refuses, with the SQL to run, when it cannot.
 * @returns the roles it created.
 */
export async function ensureKitRoles(db: Kysely<unknown>, roles: KitRoles): Promise<string[]> {
  const login = await currentLogin(db);
  const existing = await existingRoles(db, Object.values(roles));
  for (const kind of NOLOGIN_KINDS) {
    const role = existing.get(roles[kind]);
    if (role && (role.canLogin || role.superuser)) {
      throw new RoleSetupError(
        `the ${kind} role ${roles[kind]} exists but can log in or is a superuser; the kit's ${kind} role must be NOLOGIN and not a superuser (ALTER ROLE ${quoteIdent(roles[kind])} NOLOGIN NOSUPERUSER, or choose another name in auditRoles.${kind})`,
      );
    }
  }
  const missing = KIT_ROLE_KINDS.map((kind) => roles[kind]).filter((name) => !existing.has(name));
  if (missing.length > 0 && !login.superuser && !login.createRole) {
    throw new RoleSetupError(
      `the login ${login.name} cannot create roles (no CREATEROLE); run this as an administrator, then migrate again:\n${setupSql(roles, missing, login)}`,
    );
  }
  for (const name of missing) await createRole(db, name);
  if (!login.superuser) await joinOwnerAndCapture(db, roles, login);
  return missing;
}

/** The SQL an administrator runs for a login that cannot set the roles up itself. */
export function setupSql(roles: KitRoles, missing: readonly string[], login: Login): string {
  const lines = missing.map((name) => `CREATE ROLE ${quoteIdent(name)} NOLOGIN;`);
  if (!login.superuser) {
    lines.push(
      `GRANT ${quoteIdent(roles.owner)}, ${quoteIdent(roles.capture)} TO ${quoteIdent(login.name)};`,
    );
  }
  return lines.join('\n');
}

async function currentLogin(db: Kysely<unknown>): Promise<Login> {
  const { rows } = await sql<{ name: string; superuser: boolean; create_role: boolean }>`
    SELECT rolname AS name, rolsuper AS superuser, rolcreaterole AS create_role
    FROM pg_catalog.pg_roles WHERE rolname = current_user`.execute(db);
  const row = rows[0]!;
  return { name: row.name, superuser: row.superuser, createRole: row.create_role };
}

async function existingRoles(
  db: Kysely<unknown>,
  names: readonly string[],
): Promise<Map<string, ExistingRole>> {
  const { rows } = await sql<{ name: string; can_login: boolean; superuser: boolean }>`
    SELECT rolname AS name, rolcanlogin AS can_login, rolsuper AS superuser
    FROM pg_catalog.pg_roles WHERE rolname = ANY(${[...names]}::text[])`.execute(db);
  return new Map(
    rows.map((row) => [
      row.name,
      { name: row.name, canLogin: row.can_login, superuser: row.superuser },
    ]),
  );
}

/** CREATE ROLE, tolerating a concurrent migrate (roles are cluster-wide) creating it first. */
export async function createRole(db: Kysely<unknown>, name: string): Promise<void> {
  try {
    await sql.raw(`CREATE ROLE ${quoteIdent(name)} NOLOGIN`).execute(db);
  } catch (error) {
    const code = (error as { code?: string }).code;
    // duplicate_object, or unique_violation when two creators race on pg_authid.
    if (code !== '42710' && code !== '23505') throw error;
  }
}

async function joinOwnerAndCapture(
  db: Kysely<unknown>,
  roles: KitRoles,
  login: Login,
): Promise<void> {
  for (const role of [roles.owner, roles.capture]) {
    const { rows } = await sql<{ member: boolean }>`
      SELECT pg_catalog.pg_has_role(current_user, ${role}, 'MEMBER') AS member`.execute(db);
    if (rows[0]?.member) continue;
    try {
      await sql.raw(`GRANT ${quoteIdent(role)} TO ${quoteIdent(login.name)}`).execute(db);
    } catch (error) {
      throw new RoleSetupError(
        `the login ${login.name} must be a member of ${role} to hand it the kit's objects, and cannot grant that itself (${(error as Error).message}); run as an administrator, then migrate again:\n${setupSql(roles, [], login)}`,
      );
    }
  }
}
