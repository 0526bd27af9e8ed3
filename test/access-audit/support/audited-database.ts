import type pg from 'pg';
import { quoteIdent } from '../../../src/postgres/identifiers';
import { withClient } from '../../support/databases';
import type { PgauditServer } from './pgaudit-server';

/** Who a live test's workload logs in as. */
export interface WorkloadRoles {
  /** Roles created `LOGIN`: the humans and service accounts of the workload. */
  readonly logins: readonly string[];
  /** Roles created `LOGIN SUPERUSER`: a DBA who can silence pgAudit. @default none */
  readonly superusers?: readonly string[];
}

/**
 * Creates `database` on a live pgAudit server and the workload's roles (names as they
 * are, quoted here; roles are the cluster's), then runs `prepare` as the superuser in
 * the new database: the tables and grants the workload needs, and `setupPgaudit` at the
 * point the test wants it (later grants may need the roles it creates).
 * @example
 * await createAuditedDatabase(server, 'appdb', { logins: ['alice'] }, async (admin) => {
 *   await admin.query('CREATE TABLE public.items (id int PRIMARY KEY)');
 *   await setupPgaudit(admin, config);
 * });
 */
export async function createAuditedDatabase(
  server: PgauditServer,
  database: string,
  roles: WorkloadRoles,
  prepare: (admin: pg.Client) => Promise<void>,
): Promise<void> {
  await withClient(server.adminUrl(), async (admin) => {
    await admin.query(`CREATE DATABASE ${quoteIdent(database)}`);
    for (const role of roles.logins) await admin.query(`CREATE ROLE ${quoteIdent(role)} LOGIN`);
    for (const role of roles.superusers ?? [])
      await admin.query(`CREATE ROLE ${quoteIdent(role)} LOGIN SUPERUSER`);
  });
  await withClient(server.adminUrl(database), prepare);
}
