import { parseConfig } from '../../src/config';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { createKysely } from '../../src/postgres/connect';
import { quoteIdent } from '../../src/postgres/identifiers';
import { installSourceContext } from '../../src/source-context';
import { kitLogins } from '../../src/trust/logins';
import { verifyAuditTrail } from '../../src/verify';
import { connectionArgs, runCli, writeConfig } from '../support/cli';
import { createTestDatabase, withClient } from '../support/databases';

/**
 * Before 8ca9fd0, migrate's target session resolved names through the administrator's
 * search_path: a lookalike of a catalog function planted in `public` before the install
 * (any role may create there on PostgreSQL 13 and 14) was built into the audit log's
 * per-key index, and ran in every audit insert. Installs made then are not repaired by
 * a later migrate: doctor and verify must name such objects, and say how to rebuild them.
 */

interface Check {
  side: string;
  check: string;
  status: string;
  detail: string;
  remedy?: string;
}

const configInput = {
  tables: [{ schema: 'shop', table: 'items' }],
  sourceContext: {},
};
const config = parseConfig(configInput);

/** Types the application's tables use, on both sides (the target needs none of them). */
const USER_TYPES = `
  CREATE SCHEMA shop;
  CREATE TYPE shop.mood AS ENUM ('calm', 'loud');
  CREATE DOMAIN shop.positive AS int CHECK (VALUE > 0);
  CREATE TYPE shop.pair AS (x int, y text);
  CREATE COLLATION shop.nocase (provider = libc, locale = 'C');`;

/** The per-key index as migration 0019 built it before 8ca9fd0: on the login's search_path. */
const INDEX_ON_SEARCH_PATH = `
  CREATE FUNCTION public.jsonb_hash_extended(jsonb, integer) RETURNS bigint
    LANGUAGE sql IMMUTABLE AS 'SELECT pg_catalog.jsonb_hash_extended($1, $2)';
  DROP INDEX audit.audit_log_key_apply_order_idx;
  SET search_path = "$user", public;
  CREATE INDEX audit_log_key_apply_order_idx ON audit.audit_log
    (source_schema, source_table, jsonb_hash_extended(row_key, 0), id, commit_timestamp);
  RESET search_path;`;

describe('doctor and verify: kit objects built on code outside the kit', () => {
  let sourceUrl: string;
  let targetUrl: string;
  let configFile: string;

  beforeAll(async () => {
    sourceUrl = await createTestDatabase('kdep_src');
    targetUrl = await createTestDatabase('kdep_tgt');
    await withClient(sourceUrl, (client) =>
      client.query(`${USER_TYPES}
        CREATE TABLE shop.items (id int PRIMARY KEY, qty shop.positive, mood shop.mood,
          moods shop.mood[], pair shop.pair, name text COLLATE shop.nocase,
          doubled int GENERATED ALWAYS AS (id * 2) STORED, price numeric(10, 2) DEFAULT 0)`),
    );
    await withClient(targetUrl, (client) => client.query(USER_TYPES));
    const source = createKysely<unknown>(sourceUrl, { max: 1, label: 'source' });
    await installSourceContext(source, config).finally(() => source.destroy());
    await migrateTarget({ config, sourceUrl, targetUrl });
    configFile = await writeConfig(configInput);
  });

  const doctor = async () => {
    const result = await runCli([
      'doctor',
      ...connectionArgs({ configFile, sourceUrl, targetUrl }),
      '--json',
    ]);
    return { ...result, checks: JSON.parse(result.stdout) as Check[] };
  };

  it('reports nothing on a clean install whose tables use enum, domain, composite and collation types', async () => {
    const { code, checks } = await doctor();
    expect(checks.filter((check) => check.check === 'kit dependencies')).toEqual([
      {
        side: 'source',
        check: 'kit dependencies',
        status: 'ok',
        detail: 'the kit’s objects here depend only on pg_catalog and the kit',
      },
      {
        side: 'target',
        check: 'kit dependencies',
        status: 'ok',
        detail: 'every object in audit depends only on pg_catalog and the kit',
      },
    ]);
    expect(checks.filter((check) => check.status === 'fail')).toEqual([]);
    expect(code).toBe(0);
    const report = await verifyAuditTrail({ config, sourceUrl, targetUrl });
    expect(report.foreignDependencies).toBeUndefined();
    expect(report.ok).toBe(true);
  });

  it('names the index built on a planted function, and a planted CHECK and trigger, with what rebuilds them; clean once run', async () => {
    await withClient(targetUrl, (client) =>
      client.query(`${INDEX_ON_SEARCH_PATH}
        CREATE FUNCTION public.spy() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
        CREATE TRIGGER "spy
OK  forged" AFTER INSERT ON audit.audit_log FOR EACH ROW EXECUTE FUNCTION public.spy();`),
    );
    // On the source, an operator pg_catalog has no exact match for (oid = regclass).
    await withClient(sourceUrl, (client) =>
      client.query(`
        CREATE FUNCTION public.planted_eq(oid, regclass) RETURNS boolean
          LANGUAGE sql IMMUTABLE AS 'SELECT $1 OPERATOR(pg_catalog.=) $2::oid';
        CREATE OPERATOR public.= (leftarg = oid, rightarg = regclass, function = public.planted_eq);
        SET search_path = "$user", public;
        ALTER TABLE audit_context.transaction_context ADD CONSTRAINT planted
          CHECK (tableoid = 'audit_context.transaction_context'::regclass);`),
    );

    const { code, stdout, checks } = await doctor();
    expect(code).toBe(1);
    const failures = checks.filter((check) => check.status === 'fail');
    expect(failures).toEqual([
      {
        side: 'source',
        check: 'kit dependencies',
        status: 'fail',
        detail:
          'table constraint planted on audit_context.transaction_context depends on operator public.=(pg_catalog.oid,pg_catalog.regclass), outside pg_catalog and the kit: its code runs inside the kit’s statements with their rights',
        remedy:
          "rebuild it on pg_catalog’s, as the role that runs audit-trail migrate: BEGIN; SET LOCAL search_path = pg_catalog, pg_temp; ALTER TABLE audit_context.transaction_context DROP CONSTRAINT planted, ADD CONSTRAINT planted CHECK ((tableoid OPERATOR(pg_catalog.=) 'audit_context.transaction_context'::regclass)); COMMIT;",
      },
      {
        side: 'target',
        check: 'kit dependencies',
        status: 'fail',
        detail:
          'index audit.audit_log_key_apply_order_idx depends on function public.jsonb_hash_extended(pg_catalog.jsonb,integer), outside pg_catalog and the kit: its code runs inside the kit’s statements with their rights',
        remedy:
          'rebuild it on pg_catalog’s, as the role that runs audit-trail migrate: BEGIN; SET LOCAL search_path = pg_catalog, pg_temp; DROP INDEX audit.audit_log_key_apply_order_idx; CREATE INDEX audit_log_key_apply_order_idx ON audit.audit_log USING btree (source_schema, source_table, pg_catalog.jsonb_hash_extended(row_key, 0), id, commit_timestamp); COMMIT;',
      },
      {
        side: 'target',
        check: 'kit dependencies',
        status: 'fail',
        // A hostile name cannot forge a line: shown JSON-quoted.
        detail:
          '"trigger \\"spy\\nOK  forged\\" on audit.audit_log depends on function public.spy(), outside pg_catalog and the kit: its code runs inside the kit’s statements with their rights"',
        remedy:
          '"a kit trigger calls the kit’s own functions, so this one is not the kit’s (audit-trail migrate puts back any of the kit’s afterwards): DROP TRIGGER \\"spy\\nOK  forged\\" ON audit.audit_log;"',
      },
    ]);
    expect(stdout.split('\n').some((line) => line.startsWith('OK  forged'))).toBe(false);

    const report = await verifyAuditTrail({ config, sourceUrl, targetUrl });
    expect(report.ok).toBe(false);
    expect(report.foreignDependencies?.map((finding) => [finding.side, finding.object])).toEqual([
      ['target', 'index audit.audit_log_key_apply_order_idx'],
      ['target', 'trigger "spy\nOK  forged" on audit.audit_log'],
      ['source', 'table constraint planted on audit_context.transaction_context'],
    ]);

    const verified = await runCli([
      'verify',
      ...connectionArgs({ configFile, sourceUrl, targetUrl }),
    ]);
    expect(verified.code).toBe(1);
    expect(verified.stdout.split('\n').filter((line) => line.startsWith('FAIL'))).toEqual(
      // The same lines as doctor's, in verify's order: the target's, then the source's.
      [failures[1]!, failures[2]!, failures[0]!].map(
        (failure) => `FAIL ${failure.side} ${failure.detail} → ${failure.remedy}`,
      ),
    );
    expect(verified.stderr).toMatch(
      /verify found 0 mismatches and 3 kit objects built on code outside the kit/,
    );

    // What doctor says to run puts each object back on pg_catalog's.
    await withClient(sourceUrl, (client) => client.query(sqlOf(failures[0]!.remedy!)));
    await withClient(targetUrl, async (client) => {
      await client.query(sqlOf(failures[1]!.remedy!));
      await client.query(sqlOf(JSON.parse(failures[2]!.remedy!) as string));
    });
    const after = await doctor();
    expect(after.checks.filter((check) => check.status === 'fail')).toEqual([]);
    expect(after.code).toBe(0);
    expect((await verifyAuditTrail({ config, sourceUrl, targetUrl })).ok).toBe(true);
  });

  it('warns when PUBLIC may create in a schema on the search path, with the REVOKE', async () => {
    // PostgreSQL 13 and 14's default, which a later major keeps on upgrade.
    await withClient(targetUrl, (client) =>
      client.query('GRANT CREATE ON SCHEMA public TO PUBLIC'),
    );
    const { code, checks } = await doctor();
    expect(searchPathCreate(checks, 'target')).toEqual([
      {
        side: 'target',
        check: 'search_path CREATE',
        status: 'warn',
        detail:
          'PUBLIC may CREATE in schema public, on the search path: it can plant a lookalike of a catalog function there that a session resolving names through it runs with its own rights (the kit’s sessions pin or qualify their names; the application’s and hand-written SQL may not)',
        remedy: 'REVOKE CREATE ON SCHEMA public FROM PUBLIC',
      },
    ]);
    expect(code).toBe(0);

    await withClient(targetUrl, (client) =>
      client.query('REVOKE CREATE ON SCHEMA public FROM PUBLIC'),
    );
    const after = await doctor();
    expect(searchPathCreate(after.checks, 'target')).toEqual([
      {
        side: 'target',
        check: 'search_path CREATE',
        status: 'ok',
        detail: 'only the owners may create objects in the schemas on the search path',
      },
    ]);
  });

  it('warns the same on the source, where the engine and migrate read and DMS replicates', async () => {
    const replication = kitLogins(config).replication;
    // Roles are the server's, shared by every test file: ours go again at the end.
    const created = await withClient(sourceUrl, async (client) => {
      const { rows } = await client.query<{ name: string }>(
        `SELECT name FROM unnest(ARRAY['kdep_app_writer', $1]) AS name
          WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = name)`,
        [replication],
      );
      for (const { name } of rows) await client.query(`CREATE ROLE ${quoteIdent(name)}`);
      await client.query(`CREATE SCHEMA staging_area;
        GRANT CREATE ON SCHEMA public TO PUBLIC;
        GRANT CREATE ON SCHEMA public TO ${quoteIdent(replication)};
        GRANT CREATE ON SCHEMA staging_area TO kdep_app_writer`);
      return rows.map((row) => row.name);
    });
    // staging_area is on the search path through the connecting login's own setting.
    await withClient(sourceUrl, (client) =>
      client.query(
        `ALTER ROLE CURRENT_USER IN DATABASE ${quoteIdent(decodeURIComponent(new URL(sourceUrl).pathname.slice(1)))}
           SET search_path = "$user", public, staging_area`,
      ),
    );
    const { code, checks } = await doctor();
    const detail = (grantee: string, schema: string) =>
      `${grantee} may CREATE in schema ${schema}, on the search path: it can plant a lookalike of a catalog function there that a session resolving names through it runs with its own rights (the kit’s sessions pin or qualify their names; the application’s and hand-written SQL may not)`;
    // The replication login is the kit's own there: no line for it.
    expect(searchPathCreate(checks, 'source')).toEqual([
      {
        side: 'source',
        check: 'search_path CREATE',
        status: 'warn',
        detail: detail('PUBLIC', 'public'),
        remedy: 'REVOKE CREATE ON SCHEMA public FROM PUBLIC',
      },
      {
        side: 'source',
        check: 'search_path CREATE',
        status: 'warn',
        detail: detail('kdep_app_writer', 'staging_area'),
        remedy: 'REVOKE CREATE ON SCHEMA staging_area FROM kdep_app_writer',
      },
    ]);
    expect(code).toBe(0);

    await withClient(sourceUrl, async (client) => {
      for (const check of searchPathCreate(checks, 'source')) await client.query(check.remedy!);
    });
    const after = await doctor();
    expect(searchPathCreate(after.checks, 'source')).toEqual([
      {
        side: 'source',
        check: 'search_path CREATE',
        status: 'ok',
        detail: 'only the owners may create objects in the schemas on the search path',
      },
    ]);
    await withClient(sourceUrl, async (client) => {
      await client.query(`REVOKE CREATE ON SCHEMA public FROM ${quoteIdent(replication)}`);
      for (const name of created) await client.query(`DROP ROLE ${quoteIdent(name)}`);
    });
  });
});

/** doctor's `search_path CREATE` lines on one side. */
function searchPathCreate(checks: readonly Check[], side: Check['side']): Check[] {
  return checks.filter((check) => check.side === side && check.check === 'search_path CREATE');
}

/** The SQL of a remedy: what follows its first ': '. */
function sqlOf(remedy: string): string {
  return remedy.slice(remedy.indexOf(': ') + 2);
}
