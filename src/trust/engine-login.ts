import type pg from 'pg';
import { AuditTrailError } from '../errors';
import { quoteIdent, quoteQualified } from '../postgres/identifiers';
import { stagingTableName } from '../staging/header-columns';
import { ENGINE_GRANTS, type EngineGrant } from './engine-grants';
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

/** Where the engine works on the target: what {@link diagnoseEngineLogin} checks privileges on. */
export interface EngineTargetObjects {
  readonly auditSchema: string;
  /** The configured source tables, whose staging tables the engine writes. */
  readonly tables: readonly { readonly table: string }[];
}

/**
 * What a permission error (SQLSTATE 42501) on the target while the engine ran means: the
 * login lost a kit role after the start check (a DBA's REVOKE, a login set-up re-run), or
 * a role it holds lost a privilege the kit grants it (a REVOKE on the audit schema, a
 * staging table, the engine's position), so the error names the role, or the privilege,
 * the object and the role, with the GRANT, and the server's words. The caller has rolled
 * the target transaction back, so nothing of it was applied. Any other error, or a 42501
 * whose login lacks nothing the engine needs (the source's, which this does not judge),
 * is returned as it is.
 * @param target the engine's target connection, not in a transaction
 */
export async function diagnoseEngineLogin(
  target: pg.ClientBase,
  roles: KitRoles,
  objects: EngineTargetObjects,
  error: unknown,
): Promise<unknown> {
  if ((error as { code?: unknown }).code !== '42501' || error instanceof AuditTrailError)
    return error;
  const stopped = error as Error;
  const refusal = await engineLoginRefusal(target, roles, stopped)
    .then((roleRefusal) => roleRefusal ?? privilegeRefusal(target, roles, objects, stopped))
    .catch(() => null);
  return refusal ?? error;
}

/** A privilege the engine uses on the target, granted by `secureInstall` to a kit role. */
interface EngineNeed {
  readonly role: EngineGrant['role'];
  readonly privilege: string;
  /** A schema, a table or one column of it, the sequence behind a serial column, a function. */
  readonly kind: 'schema' | 'table' | 'column' | 'sequence' | 'function';
  readonly schema: string;
  /** The schema's, table's or function's name (a sequence's: its serial column's table). */
  readonly name: string;
  /** A column's name (for a sequence, its serial column's); '' for none. */
  readonly column: string;
  /** A function's argument types as `oidvectortypes` prints them; '' for other kinds. */
  readonly argumentTypes: string;
}

/**
 * Every privilege the engine uses on the target, by the kit role `secureInstall` grants
 * it to ({@link ENGINE_GRANTS}), one per privilege and object (staging tables: the
 * configured tables').
 */
function engineNeeds(objects: EngineTargetObjects): EngineNeed[] {
  const schema = objects.auditSchema;
  const need = (
    grant: EngineGrant,
    object: Pick<EngineNeed, 'kind' | 'name'> & Partial<EngineNeed>,
  ): EngineNeed[] =>
    grant.privileges.map((privilege) => ({
      ...{ role: grant.role, privilege, schema, column: '', argumentTypes: '' },
      ...object,
    }));
  return ENGINE_GRANTS.flatMap((grant) => {
    const on = grant.on;
    switch (on.kind) {
      case 'schema':
        return need(grant, { kind: 'schema', name: schema, column: '' });
      case 'table':
        return (on.columns ?? ['']).flatMap((column) =>
          need(grant, { kind: column === '' ? 'table' : 'column', name: on.table, column }),
        );
      case 'staging':
        return objects.tables.flatMap((source) =>
          need(grant, { kind: 'table', name: stagingTableName(source.table), column: '' }),
        );
      case 'sequence':
        return need(grant, { kind: 'sequence', name: on.table, column: on.column });
      case 'function': {
        const [, name = '', argumentTypes = ''] = /^(\w+)\((.*)\)$/.exec(on.signature) ?? [];
        return need(grant, { kind: 'function', name, argumentTypes });
      }
    }
  });
}

/**
 * The error for a login that holds the kit's roles but lacks a privilege the engine uses
 * (revoked from the role), or null. Objects are found by name in the catalogs, which need
 * no privilege (a schema without USAGE cannot be looked into by name); one that does not
 * exist is not judged here.
 */
async function privilegeRefusal(
  target: pg.ClientBase,
  roles: KitRoles,
  objects: EngineTargetObjects,
  stopped: Error,
): Promise<AuditTrailError | null> {
  const needs = engineNeeds(objects);
  const column = (key: keyof EngineNeed) => needs.map((need) => need[key]);
  // Found in the catalogs, never by name (a lookup by name needs USAGE on the schema,
  // which may be what was revoked): a sequence as the one its serial column owns, as
  // pg_get_serial_sequence does; a function by its name and argument types.
  const { rows } = await target.query<{ login: string; at: string; sequence: string | null }>(
    `SELECT current_user::text AS login, n.at::text AS at, q.relname::text AS sequence
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
            WITH ORDINALITY AS n(kind, schema, name, col, privilege, argtypes, at)
       JOIN pg_catalog.pg_namespace AS s ON s.nspname OPERATOR(pg_catalog.=) n.schema
       LEFT JOIN pg_catalog.pg_class AS c
         ON c.relnamespace OPERATOR(pg_catalog.=) s.oid AND c.relname OPERATOR(pg_catalog.=) n.name
       LEFT JOIN LATERAL (
         SELECT q.oid, q.relname
           FROM pg_catalog.pg_attribute AS a
           JOIN pg_catalog.pg_depend AS d
             ON d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid
            AND d.refobjid OPERATOR(pg_catalog.=) a.attrelid
            AND d.refobjsubid OPERATOR(pg_catalog.=) a.attnum
            AND d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid
            AND d.deptype OPERATOR(pg_catalog.=) ANY ('{a,i}'::"char"[])
           JOIN pg_catalog.pg_class AS q
             ON q.oid OPERATOR(pg_catalog.=) d.objid AND q.relkind OPERATOR(pg_catalog.=) 'S'
          WHERE n.kind OPERATOR(pg_catalog.=) 'sequence'
            AND a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attname OPERATOR(pg_catalog.=) n.col
       ) AS q ON true
       LEFT JOIN pg_catalog.pg_proc AS f
         ON n.kind OPERATOR(pg_catalog.=) 'function'
        AND f.pronamespace OPERATOR(pg_catalog.=) s.oid
        AND f.proname OPERATOR(pg_catalog.=) n.name
        AND pg_catalog.oidvectortypes(f.proargtypes) OPERATOR(pg_catalog.=) n.argtypes
      WHERE NOT CASE
              WHEN n.kind OPERATOR(pg_catalog.=) 'schema'
                THEN pg_catalog.has_schema_privilege(s.oid, n.privilege)
              WHEN n.kind OPERATOR(pg_catalog.=) 'function'
                THEN f.oid IS NULL OR pg_catalog.has_function_privilege(f.oid, n.privilege)
              WHEN c.oid IS NULL THEN true
              WHEN n.kind OPERATOR(pg_catalog.=) 'sequence'
                THEN q.oid IS NULL OR pg_catalog.has_sequence_privilege(q.oid, n.privilege)
              WHEN n.kind OPERATOR(pg_catalog.=) 'column'
                THEN pg_catalog.has_column_privilege(c.oid, n.col, n.privilege)
              ELSE pg_catalog.has_table_privilege(c.oid, n.privilege)
            END
      ORDER BY n.at`,
    [
      column('kind'),
      column('schema'),
      column('name'),
      column('column'),
      column('privilege'),
      column('argumentTypes'),
    ],
  );
  if (rows.length === 0) return null;
  const login = rows[0]!.login;
  const missing = rows.map((row): Missing => {
    const need = needs[Number(row.at) - 1]!;
    return { ...need, sequence: row.sequence ?? '' };
  });
  const byRole = (['writer', 'engine'] as const)
    .map((kind) => ({ role: roles[kind], lacks: missing.filter((need) => need.role === kind) }))
    .filter((held) => held.lacks.length > 0);
  const lacks = byRole
    .map(({ role, lacks }) => `holds ${role} but lacks ${lacks.map(describeNeed).join(', ')}`)
    .join(' and ');
  const grants = missing.map((need) => grantFor(need, roles[need.role])).join('; ');
  return new EngineLoginError(
    `the engine's target login ${login} ${lacks} (${stopped.message}): a privilege the kit ` +
      'grants that role was revoked from it; the target transaction it was applying was ' +
      'rolled back: nothing of it was applied',
    {
      hint:
        `as the target's administrator run ${grants}, or "audit-trail migrate" ` +
        "(which grants the kit's roles their privileges again)",
      cause: stopped,
    },
  );
}

/** A need the login lacks; for a sequence, the sequence's name in the schema. */
type Missing = EngineNeed & { readonly sequence: string };

/**
 * `UPDATE on table audit.items_staging`, `USAGE on schema audit`, `USAGE on sequence
 * audit.schema_change_id_seq`, `EXECUTE on function audit.finish_reload(text, ...)`
 */
function describeNeed(need: Missing): string {
  switch (need.kind) {
    case 'schema':
      return `${need.privilege} on schema ${need.schema}`;
    case 'sequence':
      return `${need.privilege} on sequence ${need.schema}.${need.sequence}`;
    case 'function':
      return `${need.privilege} on function ${need.schema}.${need.name}(${need.argumentTypes})`;
    default: {
      const column = need.kind === 'column' ? ` (${need.column})` : '';
      return `${need.privilege}${column} on table ${need.schema}.${need.name}`;
    }
  }
}

function grantFor(need: Missing, role: string): string {
  const to = `TO ${quoteIdent(role)}`;
  switch (need.kind) {
    case 'schema':
      return `GRANT ${need.privilege} ON SCHEMA ${quoteIdent(need.schema)} ${to}`;
    case 'sequence':
      return `GRANT ${need.privilege} ON SEQUENCE ${quoteQualified(need.schema, need.sequence)} ${to}`;
    case 'function':
      return `GRANT ${need.privilege} ON FUNCTION ${quoteQualified(need.schema, need.name)}(${need.argumentTypes}) ${to}`;
    default: {
      const column = need.kind === 'column' ? ` (${quoteIdent(need.column)})` : '';
      return `GRANT ${need.privilege}${column} ON TABLE ${quoteQualified(need.schema, need.name)} ${to}`;
    }
  }
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
  // One row per needed role the login cannot use, and whether it is a member that does
  // not inherit the role's privileges (a grant WITH INHERIT FALSE on PostgreSQL 16+, a
  // NOINHERIT login before). The engine's target connection reads every value as text.
  const { rows } = await target.query<{
    login: string;
    role: string;
    exists: string;
    member: string;
    grant_option: string;
  }>(
    `SELECT current_user::text AS login, k.name AS role, (r.oid IS NOT NULL)::text AS exists,
            coalesce(pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER'), false)::text AS member,
            (pg_catalog.current_setting('server_version_num')::int >= 160000)::text AS grant_option
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
  const missing = rows.filter((row) => row.member !== 'true').map((row) => row.role);
  const uninherited = rows.filter((row) => row.member === 'true').map((row) => row.role);
  const statements: string[] = [];
  const problems: string[] = [];
  if (missing.length > 0) {
    statements.push(`GRANT ${missing.map(quoteIdent).join(', ')} TO ${quoteIdent(login)}`);
    problems.push(
      stopped
        ? `is no longer a member of ${missing.join(' and ')}`
        : `is not a member of ${missing.join(' and ')}`,
    );
  }
  if (uninherited.length > 0) {
    // A GRANT of a membership the login has changes nothing: the inheritance must.
    statements.push(
      ...(rows[0]!.grant_option === 'true'
        ? uninherited.map(
            (role) => `GRANT ${quoteIdent(role)} TO ${quoteIdent(login)} WITH INHERIT TRUE`,
          )
        : [`ALTER ROLE ${quoteIdent(login)} INHERIT`]),
    );
    const one = uninherited.length === 1;
    problems.push(
      `is a member of ${uninherited.join(' and ')} but does not inherit ` +
        `${one ? 'its' : 'their'} privileges`,
    );
  }
  const member = problems.join(' and ') + (stopped ? ` (${stopped.message})` : '');
  const applied = stopped
    ? 'the target transaction it was applying was rolled back: nothing of it was applied'
    : 'nothing was applied';
  // `audit-trail grant engine` grants the memberships; it does not change inheritance.
  const alternative =
    uninherited.length === 0
      ? `, or "audit-trail grant engine ${login}" (the writer role alone is for DMS)`
      : '';
  return new EngineLoginError(
    `the engine's target login ${login} ${member}: the engine needs the writer role ` +
      `(${roles.writer}: staging DML) and the engine role (${roles.engine}: its position and ` +
      `its record of what it loaded); ${applied}`,
    {
      hint: `as the target's administrator run ${statements.join('; ')}${alternative}`,
      ...(stopped ? { cause: stopped } : {}),
    },
  );
}
