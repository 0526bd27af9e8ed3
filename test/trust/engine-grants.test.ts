import { AuditTrailError } from '../../src/errors';
import { quoteIdent } from '../../src/postgres/identifiers';
import { diagnoseEngineLogin } from '../../src/trust/engine-login';
import { grantSql } from '../../src/trust/grant';
import { kitRoles } from '../../src/trust/roles';
import { withClient } from '../support/databases';
import { createLogin, installWithHistory, type Install } from './support';

/** One privilege a kit role holds in the audit schema, read from the catalog's ACLs. */
interface Held {
  readonly role: string;
  readonly privilege: string;
  /** `schema audit`, `table audit.x`, `column audit.x (c)`, `sequence audit.s`, `function audit.f(...)` */
  readonly object: string;
  readonly revoke: string;
}

/**
 * What the writer and engine roles hold in the audit schema after `migrate`, whatever
 * the kit's lists say: schema, tables, sequences, columns and functions.
 */
async function heldByEngineRoles(targetUrl: string, roles: readonly string[]): Promise<Held[]> {
  const { rows } = await withClient(targetUrl, (client) =>
    client.query<{ role: string; privilege: string; kind: string; name: string; col: string }>(
      `WITH acl AS (
         SELECT 'schema' AS kind, n.nspname::text AS name, '' AS col, n.nspacl AS acl
           FROM pg_namespace n WHERE n.nspname = 'audit'
         UNION ALL
         SELECT CASE c.relkind WHEN 'S' THEN 'sequence' ELSE 'table' END, c.relname::text, '', c.relacl
           FROM pg_class c WHERE c.relnamespace = 'audit'::regnamespace
         UNION ALL
         SELECT 'column', c.relname::text, a.attname::text, a.attacl
           FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
          WHERE c.relnamespace = 'audit'::regnamespace AND a.attacl IS NOT NULL
         UNION ALL
         SELECT 'function', p.proname || '(' || oidvectortypes(p.proargtypes) || ')', '', p.proacl
           FROM pg_proc p WHERE p.pronamespace = 'audit'::regnamespace
       )
       SELECT r.rolname::text AS role, x.privilege_type AS privilege, acl.kind, acl.name, acl.col
         FROM acl, aclexplode(acl.acl) AS x JOIN pg_roles r ON r.oid = x.grantee
        WHERE r.rolname = ANY($1)
        ORDER BY 1, 3, 4, 5, 2`,
      [roles],
    ),
  );
  return rows.map(({ role, privilege, kind, name, col }) => {
    const on =
      kind === 'schema'
        ? `SCHEMA audit`
        : kind === 'function'
          ? `FUNCTION audit.${name}`
          : `${kind === 'sequence' ? 'SEQUENCE ' : ''}audit.${quoteIdent(name)}`;
    const column = col === '' ? '' : ` (${quoteIdent(col)})`;
    return {
      role,
      privilege,
      object: `${kind} ${kind === 'schema' ? name : `audit.${name}`}${col ? ` (${col})` : ''}`,
      revoke: `REVOKE ${privilege}${column} ON ${on} FROM ${quoteIdent(role)}`,
    };
  });
}

/**
 * The engine's permission diagnosis names a privilege revoked from the writer or engine
 * role, with the GRANT that puts it back, from one list (src/trust/engine-grants.ts) that
 * `migrate` grants from too. Here every privilege the two roles hold after `migrate` is
 * revoked in turn: each one the engine uses is named, and running the hint's GRANT gives
 * the roles exactly what they held. Only DMS's extra writer privileges are not named.
 */
describe("the engine's privilege check covers every privilege migrate grants it", () => {
  let install: Install;
  let login: { name: string; url: string };
  let held: Held[];
  const roles = () => kitRoles(install.config);

  beforeAll(async () => {
    install = await installWithHistory();
    login = await createLogin(install.targetUrl, 'engine_login');
    await withClient(install.targetUrl, (client) =>
      client.query(grantSql(roles(), 'engine', login.name)),
    );
    held = await heldByEngineRoles(install.targetUrl, [roles().writer, roles().engine]);
  });

  /** The diagnosis of a permission error the login met, as the engine makes it. */
  const diagnosis = () =>
    withClient(login.url, (client) =>
      diagnoseEngineLogin(
        client,
        roles(),
        install.config,
        Object.assign(new Error('permission denied (the test)'), { code: '42501' }),
      ),
    );

  it('names nothing while the roles hold all migrate granted', async () => {
    expect(held.length).toBeGreaterThan(20);
    expect(await diagnosis()).not.toBeInstanceOf(AuditTrailError);
  });

  it('names each privilege the engine uses when it is revoked, and its GRANT puts it back', async () => {
    const unnamed: string[] = [];
    for (const privilege of held) {
      await withClient(install.targetUrl, (client) => client.query(privilege.revoke));
      const found = await diagnosis();
      if (!(found instanceof AuditTrailError)) {
        unnamed.push(`${privilege.role}: ${privilege.privilege} on ${privilege.object}`);
        await withClient(install.targetUrl, (client) =>
          client.query(privilege.revoke.replace(/^REVOKE/, 'GRANT').replace(/ FROM /, ' TO ')),
        );
        continue;
      }
      expect(found.code).toBe('ENGINE_ROLE_MISSING');
      expect(found.message).toContain(`holds ${privilege.role} but lacks ${privilege.privilege}`);
      const grant =
        /^as the target's administrator run (GRANT [^;]*?), or "audit-trail migrate"/.exec(
          found.hint ?? '',
        )?.[1];
      expect(grant, `${privilege.object}: ${found.hint}`).toBeDefined();
      await withClient(install.targetUrl, (client) => client.query(grant!));
      expect(await heldByEngineRoles(install.targetUrl, [roles().writer, roles().engine])).toEqual(
        held,
      );
    }
    // DMS's login holds writer too: DELETE on staging, and reading a pending reload.
    expect(unnamed).toEqual([
      'audit_writer: DELETE on table audit.items_staging',
      'audit_writer: SELECT on table audit.reload_baseline',
    ]);
  });
});
