import { parseAccessAuditConfig, type AccessAuditConfig } from '../../../src/config/access-audit';
import { setupPgaudit } from '../../../src/access-audit/setup';
import { withClient } from '../../support/databases';
import { createAuditedDatabase } from './audited-database';
import type { PgauditServer } from './pgaudit-server';

/** The database the workload runs in. */
export const APP_DATABASE = 'appdb';

/** The access-audit section the live tests use. */
export const LIVE_CONFIG: AccessAuditConfig = parseAccessAuditConfig({
  auditedRoles: ['alice', 'dana'],
  serviceAccounts: ['app_svc', 'health_svc'],
  logRows: true,
  // These tests pin the write, privilege and DDL rules; the default human-read rule has its own test.
  defaultRules: { humanReads: false },
});

/** Creates the database, tables and roles, then runs `setupPgaudit` as the admin. */
export async function prepareSource(server: PgauditServer): Promise<void> {
  const logins = ['alice', 'dana', 'app_svc', 'health_svc'];
  await createAuditedDatabase(server, APP_DATABASE, { logins }, async (admin) => {
    await admin.query('ALTER ROLE alice CREATEROLE');
    await admin.query('CREATE TABLE public.items (id int PRIMARY KEY, name text, note text)');
    await admin.query('GRANT ALL ON public.items TO alice, dana, app_svc');
    await admin.query('GRANT CREATE ON SCHEMA public TO alice');
    await setupPgaudit(admin, LIVE_CONFIG);
    // A monitoring account someone once gave read auditing: its health checks reach the log.
    await admin.query(`ALTER ROLE health_svc SET pgaudit.log = 'read'`);
    // Object auditing (pgaudit.role = rds_pgaudit): every UPDATE of items is logged as
    // an OBJECT record, whoever runs it and whatever their pgaudit.log says.
    await admin.query('GRANT UPDATE ON public.items TO rds_pgaudit');
  });
}

/**
 * Runs what humans, tools and services do against the source, so the server log
 * holds the real records the tests read. The marker statements let tests wait for
 * and find each part.
 */
export async function runWorkload(server: PgauditServer): Promise<void> {
  const url = (user: string) => server.userUrl(user, APP_DATABASE);
  // alice in psql: ad-hoc statements over the simple protocol, and one with parameters.
  await withClient(
    url('alice'),
    async (alice) => {
      await alice.query(
        "SELECT id,\n       name, 'a,b' AS \"x\"\"y\"\n  FROM items\n WHERE note = 'it''s';",
      );
      await alice.query('INSERT INTO items (id, name, note) VALUES ($1, $2, $3)', [
        1,
        'x,y',
        'say "hi"\nthere',
      ]);
      await alice.query('UPDATE items SET name = $1, note = $2 WHERE id = $3', [null, '', 1]);
      await alice.query('GRANT SELECT ON items TO app_svc');
      await alice.query('REVOKE SELECT ON items FROM app_svc');
      await alice.query("CREATE ROLE bob PASSWORD 'hunter2'");
      await alice.query("DO $$ BEGIN UPDATE items SET name = 'z' WHERE id = 1; END $$");
      await alice.query('COPY items TO STDOUT');
      await alice.query('CREATE TABLE scratch (id int)');
      await alice.query(
        'SELECT i.name, c.relname FROM items i JOIN pg_catalog.pg_class c ON c.relname = i.name',
      );
      await alice.query('DELETE FROM items WHERE id = 1');
    },
    { applicationName: 'psql' },
  );
  // dana in a JDBC GUI: driver start-up, catalog browsing, then one real read.
  await withClient(
    url('dana'),
    async (dana) => {
      await dana.query('SET extra_float_digits = 3');
      await dana.query("SET application_name = 'PostgreSQL JDBC Driver'");
      await dana.query('SHOW TRANSACTION ISOLATION LEVEL');
      await dana.query(
        'SELECT c.oid, c.relname, n.nspname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1',
        ['public'],
      );
      await dana.query('SELECT table_name FROM information_schema.tables WHERE table_schema = $1', [
        'public',
      ]);
      await dana.query('SELECT current_schema(), session_user');
      await dana.query('SELECT * FROM public.items WHERE id = $1', [7]);
    },
    { applicationName: 'DBeaver 24.1.0 - Main' },
  );
  // The application and its health checks.
  await withClient(url('app_svc'), async (app) => {
    await app.query("INSERT INTO items (id, name) VALUES (2, 'by app')");
    await app.query("UPDATE items SET name = 'by app, again' WHERE id = 2");
  });
  await withClient(url('health_svc'), async (health) => {
    await health.query('SELECT 1');
  });
}
