import type pg from 'pg';
import type { AuditTrailConfig } from '../../config';
import { printable } from '../../support/printable';
import { kitLogins } from '../../trust/logins';
import { kitRoles } from '../../trust/roles';
import {
  describeForeignDependency,
  hasSourceKitObjects,
  sourceForeignDependencies,
  targetForeignDependencies,
  type ForeignDependency,
} from '../../verify/foreign-dependencies';
import type { Add, DoctorCheck } from './doctor-checks';

// doctor's checks of what could run someone else's code inside the kit's statements.

const CHECK = 'kit dependencies';

/**
 * A FAIL for each target kit object built on a function, operator, type or collation
 * outside pg_catalog and the audit schema (`targetForeignDependencies`), with the
 * statements that rebuild it; one OK line when there is none.
 */
export async function checkTargetDependencies(
  client: pg.ClientBase,
  config: AuditTrailConfig,
  add: Add,
): Promise<void> {
  report(
    await targetForeignDependencies(client, config.auditSchema, { inTransaction: false }),
    `every object in ${printable(config.auditSchema)} depends only on pg_catalog and the kit`,
    add,
  );
}

/**
 * The same for the source's kit objects: the context table and DMS's DDL-capture objects.
 */
export async function checkSourceDependencies(
  client: pg.ClientBase,
  config: AuditTrailConfig,
  add: Add,
): Promise<void> {
  if (!hasSourceKitObjects(config)) return;
  report(
    await sourceForeignDependencies(client, config, { inTransaction: false }),
    'the kit’s objects here depend only on pg_catalog and the kit',
    add,
  );
}

function report(findings: readonly ForeignDependency[], clean: string, add: Add): void {
  if (findings.length === 0) add({ check: CHECK, status: 'ok', detail: clean });
  for (const finding of findings)
    add({
      check: CHECK,
      status: 'fail',
      detail: printable(describeForeignDependency(finding)),
      remedy: printable(finding.remedy),
    });
}

/**
 * The roles expected to CREATE on each side beside a schema's owner: on the target the
 * kit's roles and logins; on the source its one login there, DMS's replication login
 * (`kitLogins(config).replication`). The engine's source login is not named by the config.
 */
function expectedCreators(config: AuditTrailConfig, side: DoctorCheck['side']): string[] {
  if (side === 'source') return [kitLogins(config).replication];
  return [...Object.values(kitRoles(config)), ...Object.values(kitLogins(config))];
}

/**
 * A WARN for each role other than the schema's owner and the kit's roles on `side`
 * (`expectedCreators`) that may CREATE in a schema on this login's search_path, and in
 * `public` (on every role's default path; PUBLIC may create there on PostgreSQL 13 and
 * 14). Such a role can plant a lookalike of a catalog function that outranks
 * pg_catalog's for a call whose argument types it matches more exactly, and it then runs
 * in any session that resolves that call through the path, with that session's rights.
 * A warning, not a failure: the kit's own sessions pin search_path or qualify their
 * catalog calls (the engine's and migrate's source sessions qualify theirs, which
 * test/trust/sql-qualification checks); the application's sessions, SQL written by hand,
 * and on the target an install made before the kit pinned migrate's target session (see
 * the kit dependencies check) are what it exposes.
 */
export async function checkSearchPathCreate(
  client: pg.ClientBase,
  config: AuditTrailConfig,
  side: DoctorCheck['side'],
  add: Add,
): Promise<void> {
  const trusted = expectedCreators(config, side);
  const { rows } = await client.query<{ schema: string; grantee: string }>(
    `SELECT pg_catalog.quote_ident(n.nspname) AS schema,
            CASE WHEN a.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
                 ELSE pg_catalog.quote_ident(r.rolname) END AS grantee
       FROM pg_catalog.pg_namespace AS n
      CROSS JOIN LATERAL pg_catalog.aclexplode(
              coalesce(n.nspacl, pg_catalog.acldefault('n', n.nspowner))) AS a
       LEFT JOIN pg_catalog.pg_roles AS r ON r.oid OPERATOR(pg_catalog.=) a.grantee
      WHERE (n.nspname OPERATOR(pg_catalog.=) ANY (pg_catalog.current_schemas(false))
             OR n.nspname OPERATOR(pg_catalog.=) 'public')
        AND a.privilege_type OPERATOR(pg_catalog.=) 'CREATE'
        AND a.grantee OPERATOR(pg_catalog.<>) n.nspowner
        AND NOT coalesce(r.rolname OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.text[]), false)
      ORDER BY 1, 2`,
    [trusted],
  );
  if (rows.length === 0) {
    add({
      check: 'search_path CREATE',
      status: 'ok',
      detail: 'only the owners may create objects in the schemas on the search path',
    });
    return;
  }
  for (const row of rows)
    add({
      check: 'search_path CREATE',
      status: 'warn',
      detail: printable(
        `${row.grantee} may CREATE in schema ${row.schema}, on the search path: it can plant a lookalike of a catalog function there that a session resolving names through it runs with its own rights (the kit’s sessions pin or qualify their names; the application’s and hand-written SQL may not)`,
      ),
      remedy: printable(`REVOKE CREATE ON SCHEMA ${row.schema} FROM ${row.grantee}`),
    });
}
