import { randomBytes } from 'node:crypto';
import { buildTaskSettings } from '../../mappings';
import { parseConfig, type AuditTrailConfig } from '../../src/config';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { createKysely } from '../../src/postgres/connect';
import { quoteIdent } from '../../src/postgres/identifiers';
import { kitRoles } from '../../src/trust/roles';
import {
  kitLogins,
  ddlArtifactsSchema,
  scramVerifier,
  setUpDdlCapture,
  setUpReplicationLogin,
  setUpTargetLogins,
} from '../../src/trust/logins';
import { createTestDatabase, withClient } from '../support/databases';
import { cdc, DmsApplier } from '../support/dms-apply';
import { attempt, createLogin } from './support';

/** A URL of `databaseUrl` as `user` with `password`. */
function as(databaseUrl: string, user: string, password: string): string {
  const url = new URL(databaseUrl);
  url.username = user;
  url.password = password;
  return url.toString();
}

async function withAdmin<T>(
  url: string,
  work: (db: ReturnType<typeof createKysely>) => Promise<T>,
) {
  const db = createKysely<unknown>(url, { max: 1, label: 'admin' });
  try {
    return await work(db);
  } finally {
    await db.destroy();
  }
}

/** A config with its own audit schema, so kit roles and logins are this test's alone. */
function uniqueConfig(): AuditTrailConfig {
  return parseConfig({
    auditSchema: `a_${randomBytes(4).toString('hex')}`,
    tables: [{ table: 'items' }],
  });
}

const password = () => randomBytes(18).toString('base64url');

describe('deployment logins', () => {
  it('computes the SCRAM verifier PostgreSQL itself stores', async () => {
    const url = await createTestDatabase('scram');
    const name = `scram_${randomBytes(4).toString('hex')}`;
    const secret = password();
    await withClient(url, async (client) => {
      await client.query(`SET password_encryption = 'scram-sha-256'`);
      await client.query(`CREATE ROLE ${quoteIdent(name)} LOGIN PASSWORD '${secret}'`);
      const { rows } = await client.query<{ stored: string }>(
        'SELECT rolpassword AS stored FROM pg_authid WHERE rolname = $1',
        [name],
      );
      const [, iterations, salt] = /^SCRAM-SHA-256\$(\d+):([^$]+)\$/.exec(rows[0]!.stored)!;
      expect(scramVerifier(secret, Buffer.from(salt!, 'base64'), Number(iterations))).toBe(
        rows[0]!.stored,
      );
    });
    expect(() => scramVerifier('has space')).toThrow(/printable ASCII/);
  });

  it('DMS writes staging as its own login, which cannot touch the audit log; the migrator migrates', async () => {
    const sourceUrl = await createTestDatabase('src');
    const targetUrl = await createTestDatabase('tgt');
    await withClient(sourceUrl, (client) =>
      client.query('CREATE TABLE items (id int PRIMARY KEY, name text)'),
    );
    const config = uniqueConfig();
    const logins = kitLogins(config);
    // Like the RDS master user: CREATEROLE and the database's owner, not a superuser.
    const master = `${config.auditSchema}_master`;
    const masterPassword = password();
    await withClient(targetUrl, async (client) => {
      await client.query(
        `CREATE ROLE ${quoteIdent(master)} LOGIN CREATEROLE PASSWORD '${masterPassword}'`,
      );
      await client.query(
        `ALTER DATABASE ${quoteIdent(new URL(targetUrl).pathname.slice(1))} OWNER TO ${quoteIdent(master)}`,
      );
    });
    const masterUrl = as(targetUrl, master, masterPassword);
    const passwords = { dms: password(), migrator: password() };
    const changes = await withAdmin(masterUrl, (db) => setUpTargetLogins(db, config, passwords));
    expect(changes).toEqual([`created login ${logins.dms}`, `created login ${logins.migrator}`]);

    // The migrator (no superuser, no CREATEROLE) installs everything.
    const migratorUrl = as(targetUrl, logins.migrator, passwords.migrator);
    await migrateTarget({ config, sourceUrl, targetUrl: migratorUrl });

    const dmsUrl = as(targetUrl, logins.dms, passwords.dms);
    const schema = config.auditSchema;
    await withClient(dmsUrl, async (client) => {
      const dms = new DmsApplier(client, schema, 'items', ['id']);
      await dms.insert({ id: '1', name: 'one' }, cdc('INSERT', '2026-11-22 10:00:00', 1));
      await dms.update({ id: '1' }, { name: 'uno' }, cdc('UPDATE', '2026-11-22 10:00:01', 2));
      // DMS's control tables go to its own schema (the task's ControlSchema).
      const control = buildTaskSettings(config).ControlTablesSettings.ControlSchema;
      expect(control).toBe(logins.dms);
      await client.query(
        `CREATE TABLE ${quoteIdent(control)}.awsdms_apply_exceptions ("TASK_NAME" varchar(128), "ERROR" text)`,
      );
      const denied = async (statement: string) =>
        (await attempt(() => client.query(statement)))?.message;
      expect(await denied(`UPDATE ${schema}.audit_log SET operation = 'DELETE'`)).toMatch(
        /permission denied/,
      );
      expect(await denied(`DELETE FROM ${schema}.audit_log`)).toMatch(/permission denied/);
      // The local engine's bookkeeping is the engine role's, which DMS's login never gets.
      expect(
        await denied(`UPDATE ${schema}.cdc_engine_position SET last_commit_lsn = last_commit_lsn`),
      ).toMatch(/permission denied/);
      expect(
        await denied(`INSERT INTO ${schema}.cdc_engine_loaded_table (slot_name, source_schema, source_table)
          VALUES ('forged', 'public', 'items')`),
      ).toMatch(/permission denied/);
      expect(await denied(`CREATE TABLE ${schema}.planted (id int)`)).toMatch(/permission denied/);
      expect(await denied(`CREATE SCHEMA elsewhere`)).toMatch(/permission denied/);
    });
    const audited = await withClient(targetUrl, (client) =>
      client.query(`SELECT operation FROM ${schema}.audit_log ORDER BY id`),
    );
    expect(audited.rows.map((row: { operation: string }) => row.operation)).toEqual([
      'INSERT',
      'UPDATE',
    ]);

    // A second run resets the passwords: the old ones stop working.
    const next = { dms: password(), migrator: password() };
    expect(await withAdmin(masterUrl, (db) => setUpTargetLogins(db, config, next))).toEqual([
      `reset the password of login ${logins.dms}`,
      `reset the password of login ${logins.migrator}`,
    ]);
    expect(await attempt(() => withClient(dmsUrl, (c) => c.query('SELECT 1')))).toBeDefined();
    await withClient(as(targetUrl, logins.dms, next.dms), (c) => c.query('SELECT 1'));
  });

  it('refuses to hand out a login that exists with more than its job needs', async () => {
    const targetUrl = await createTestDatabase('tgt');
    const config = uniqueConfig();
    const logins = kitLogins(config);
    await withClient(targetUrl, async (client) => {
      await client.query(`CREATE ROLE ${quoteIdent(logins.dms)} LOGIN CREATEDB`);
    });
    await expect(
      withAdmin(targetUrl, (db) =>
        setUpTargetLogins(db, config, { dms: password(), migrator: password() }),
      ),
    ).rejects.toThrow(`the login ${logins.dms} exists with more than the kit gives it (CREATEDB)`);
    await withClient(targetUrl, async (client) => {
      await client.query(`ALTER ROLE ${quoteIdent(logins.dms)} NOCREATEDB`);
      await client.query(`GRANT pg_read_all_data TO ${quoteIdent(logins.dms)}`);
    });
    await expect(
      withAdmin(targetUrl, (db) =>
        setUpTargetLogins(db, config, { dms: password(), migrator: password() }),
      ),
    ).rejects.toThrow(/\(member of pg_read_all_data\)/);
  });

  it('refuses an engine role that exists as a login: it would hold the engine position', async () => {
    const targetUrl = await createTestDatabase('tgt');
    const config = uniqueConfig();
    const { engine } = kitRoles(config);
    await withClient(targetUrl, (client) =>
      client.query(`CREATE ROLE ${quoteIdent(engine)} LOGIN`),
    );
    await expect(
      withAdmin(targetUrl, (db) =>
        setUpTargetLogins(db, config, { dms: password(), migrator: password() }),
      ),
    ).rejects.toThrow(
      `the kit role(s) ${engine} can log in or are superusers; they must be NOLOGIN NOSUPERUSER`,
    );
  });

  it("refuses a kit role named like one of the kit's logins: DMS's login would be the engine role", async () => {
    const targetUrl = await createTestDatabase('tgt');
    const auditSchema = `a_${randomBytes(4).toString('hex')}`;
    const config = parseConfig({
      auditSchema,
      auditRoles: { engine: `${auditSchema}_dms` },
      tables: [{ table: 'items' }],
    });
    await expect(
      withAdmin(targetUrl, (db) =>
        setUpTargetLogins(db, config, { dms: password(), migrator: password() }),
      ),
    ).rejects.toThrow(
      `auditRoles.engine: "${auditSchema}_dms" is also the kit's dms login; kit roles and logins need their own names`,
    );
    const { rows } = await withClient(targetUrl, (client) =>
      client.query('SELECT rolname FROM pg_roles WHERE rolname LIKE $1', [`${auditSchema}_%`]),
    );
    expect(rows).toEqual([]);
  });

  it('the replication login reads the audited tables and nothing else; a missing table is refused', async () => {
    const sourceUrl = await createTestDatabase('src');
    await withClient(sourceUrl, async (client) => {
      await client.query('CREATE TABLE items (id int PRIMARY KEY, name text)');
      await client.query('CREATE TABLE salaries (id int PRIMARY KEY, amount int)');
    });
    const config = uniqueConfig();
    const login = kitLogins(config).replication;
    const secret = password();
    await withAdmin(sourceUrl, (db) => setUpReplicationLogin(db, config, secret));
    await withClient(as(sourceUrl, login, secret), async (client) => {
      await client.query('SELECT * FROM items');
      expect((await attempt(() => client.query('SELECT * FROM salaries')))?.message).toMatch(
        /permission denied/,
      );
      const { rows } = await client.query<{ replication: boolean }>(
        'SELECT rolreplication AS replication FROM pg_roles WHERE rolname = current_user',
      );
      expect(rows[0]?.replication).toBe(true);
    });
    // Idempotent: a second run only resets the password.
    await withAdmin(sourceUrl, (db) => setUpReplicationLogin(db, config, secret));

    const missing = parseConfig({ auditSchema: config.auditSchema, tables: [{ table: 'orders' }] });
    await expect(
      withAdmin(sourceUrl, (db) => setUpReplicationLogin(db, missing, secret)),
    ).rejects.toThrow('source table public.orders does not exist');
  });

  describe("DMS's DDL capture for the replication login", () => {
    /** Owners, ACLs, settings and bodies of the artifacts: any change shows up. */
    async function artifacts(url: string, schema: string) {
      return withClient(url, async (client) => {
        const { rows } = await client.query<Record<string, unknown>>(
          `SELECT 'schema' AS kind, nspname AS name, nspowner::regrole::text AS owner, nspacl::text AS acl, NULL AS detail
             FROM pg_namespace WHERE nspname = $1
           UNION ALL
           SELECT 'relation', relname, relowner::regrole::text, relacl::text, relkind::text
             FROM pg_class WHERE relnamespace = $1::regnamespace
           UNION ALL
           SELECT 'function', proname, proowner::regrole::text, proacl::text,
                  prosecdef::text || coalesce(proconfig::text, '') || prosrc
             FROM pg_proc WHERE pronamespace = $1::regnamespace
           UNION ALL
           SELECT 'event trigger', evtname, evtowner::regrole::text, evtenabled::text,
                  evtevent || ' ' || evtfoid::regproc::text
             FROM pg_event_trigger
           ORDER BY 1, 2`,
          [schema],
        );
        return rows;
      });
    }

    it("an application login's ALTER TABLE is captured through the replication login's function, leaves the table empty, and a second run changes nothing", async () => {
      const sourceUrl = await createTestDatabase('ddl');
      const app = await createLogin(sourceUrl, 'app');
      await withClient(sourceUrl, async (client) => {
        await client.query(`GRANT CREATE ON SCHEMA public TO ${quoteIdent(app.name)}`);
      });
      await withClient(app.url, (client) =>
        client.query('CREATE TABLE items (id int PRIMARY KEY, name text)'),
      );
      const config = uniqueConfig();
      const login = kitLogins(config).replication;
      const schema = ddlArtifactsSchema(config);
      await withAdmin(sourceUrl, async (db) => {
        await setUpReplicationLogin(db, config, password());
        expect(await setUpDdlCapture(db, config)).toEqual([
          `${login}: DMS DDL capture in schema ${schema}`,
        ]);
      });
      const before = await artifacts(sourceUrl, schema);
      expect(before).toContainEqual(
        expect.objectContaining({ kind: 'relation', name: 'awsdms_ddl_audit', owner: login }),
      );
      expect(before).toContainEqual(
        expect.objectContaining({ kind: 'function', name: 'awsdms_intercept_ddl', owner: login }),
      );
      // Nothing for PUBLIC (an ACL entry "=..." would be PUBLIC's).
      for (const row of before) expect(String(row.acl ?? '')).not.toMatch(/(^|[{,])=/);

      // What DMS decodes from the WAL: the insert with the statement, then the delete.
      const slot = `ddl_${randomBytes(4).toString('hex')}`;
      await withClient(sourceUrl, (client) =>
        client.query(`SELECT pg_create_logical_replication_slot($1, 'test_decoding')`, [slot]),
      );
      try {
        await withClient(app.url, (client) =>
          client.query('ALTER TABLE items ADD COLUMN size int'),
        );
        // The harness commits without waiting for the flush, and decoding reads flushed WAL
        // only: poll (bounded) until the transaction's commit has been decoded.
        const changes = await withClient(sourceUrl, async (client) => {
          const decoded: string[] = [];
          for (
            let tries = 0;
            tries < 100 && !decoded.some((d) => d.startsWith('COMMIT'));
            tries++
          ) {
            const { rows } = await client.query<{ data: string }>(
              'SELECT data FROM pg_logical_slot_get_changes($1, NULL, NULL)',
              [slot],
            );
            decoded.push(...rows.map((row) => row.data));
            if (rows.length === 0) await new Promise((resolve) => setTimeout(resolve, 50));
          }
          return decoded.filter((data) => data.includes('awsdms_ddl_audit'));
        });
        expect(changes).toHaveLength(2);
        expect(changes[0]).toContain(`table ${schema}.awsdms_ddl_audit: INSERT:`);
        expect(changes[0]).toContain(`c_user[character varying]:'${login}'`);
        expect(changes[0]).toContain(`c_tag[character varying]:'ALTER TABLE'`);
        expect(changes[0]).toContain(`c_schema[character varying]:'public'`);
        expect(changes[0]).toContain(`c_ddlqry[text]:'ALTER TABLE items ADD COLUMN size int'`);
        expect(changes[1]).toContain(`table ${schema}.awsdms_ddl_audit: DELETE:`);
      } finally {
        await withClient(sourceUrl, (client) =>
          client.query('SELECT pg_drop_replication_slot($1)', [slot]),
        );
      }
      await withClient(sourceUrl, async (client) => {
        const { rows } = await client.query(`SELECT * FROM ${quoteIdent(schema)}.awsdms_ddl_audit`);
        expect(rows).toEqual([]);
      });

      await withAdmin(sourceUrl, (db) => setUpDdlCapture(db, config));
      expect(await artifacts(sourceUrl, schema)).toEqual(before);
    });

    it('a weaker login cannot call, replace or write through the artifacts, nor hijack the function with its search_path', async () => {
      const sourceUrl = await createTestDatabase('ddl');
      const app = await createLogin(sourceUrl, 'app');
      await withClient(sourceUrl, async (client) => {
        await client.query(`GRANT CREATE ON SCHEMA public TO ${quoteIdent(app.name)}`);
        await client.query(
          `GRANT CREATE ON DATABASE ${quoteIdent(new URL(sourceUrl).pathname.slice(1))} TO ${quoteIdent(app.name)}`,
        );
      });
      await withClient(app.url, (client) =>
        client.query('CREATE TABLE items (id int PRIMARY KEY, name text)'),
      );
      const config = uniqueConfig();
      const schema = quoteIdent(ddlArtifactsSchema(config));
      await withAdmin(sourceUrl, async (db) => {
        await setUpReplicationLogin(db, config, password());
        await setUpDdlCapture(db, config);
      });
      await withClient(app.url, async (client) => {
        const attacks = [
          `SELECT ${schema}.awsdms_intercept_ddl()`,
          `CREATE OR REPLACE FUNCTION ${schema}.awsdms_intercept_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$`,
          `ALTER FUNCTION ${schema}.awsdms_intercept_ddl() SECURITY INVOKER`,
          `INSERT INTO ${schema}.awsdms_ddl_audit (c_ddlqry) VALUES ('DROP TABLE items')`,
          `CREATE TABLE ${schema}.planted (id int)`,
          `ALTER EVENT TRIGGER awsdms_intercept_ddl DISABLE`,
        ];
        for (const attack of attacks) {
          expect((await attempt(() => client.query(attack)))?.message, attack).toMatch(
            /permission denied|must be (the )?owner|must be superuser/,
          );
        }
        // An operator of its own ahead of pg_catalog: the SECURITY DEFINER body never
        // looks it up, so the DDL goes through and the trap never runs.
        await client.query(`CREATE SCHEMA trap`);
        await client.query(`CREATE FUNCTION trap.eq(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
          BEGIN RAISE EXCEPTION 'hijacked as %', current_user; END $$`);
        await client.query(
          `CREATE OPERATOR trap.= (LEFTARG = text, RIGHTARG = text, FUNCTION = trap.eq)`,
        );
        await client.query(`SET search_path = trap, pg_catalog, public`);
        await client.query('ALTER TABLE items ADD COLUMN size int');
      });
    });
  });
});
