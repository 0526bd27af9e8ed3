import { randomBytes } from 'node:crypto';
import { buildTaskSettings } from '../../mappings';
import { parseConfig, type AuditTrailConfig } from '../../src/config';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { createKysely } from '../../src/postgres/connect';
import { quoteIdent } from '../../src/postgres/identifiers';
import {
  kitLogins,
  scramVerifier,
  setUpReplicationLogin,
  setUpTargetLogins,
} from '../../src/trust/logins';
import { createTestDatabase, withClient } from '../support/databases';
import { cdc, DmsApplier } from '../support/dms-apply';
import { attempt } from './support';

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
});
