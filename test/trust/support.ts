import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { parseConfig, type AuditTrailConfig } from '../../src/config';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { quoteIdent } from '../../src/postgres/identifiers';
import { createTestDatabase, withClient } from '../support/databases';
import { cdc, DmsApplier } from '../support/dms-apply';

/** A migrated source/target pair with a few audited changes of `public.items`. */
export interface Install {
  readonly sourceUrl: string;
  readonly targetUrl: string;
  readonly config: AuditTrailConfig;
}

/** Source `items`, migrated target, two keys with three audited changes. */
export async function installWithHistory(): Promise<Install> {
  const sourceUrl = await createTestDatabase('src');
  const targetUrl = await createTestDatabase('tgt');
  await withClient(sourceUrl, (client) =>
    client.query('CREATE TABLE items (id int PRIMARY KEY, name text)'),
  );
  const config = parseConfig({ tables: [{ table: 'items' }] });
  await migrateTarget({ config, sourceUrl, targetUrl });
  await withClient(targetUrl, async (client) => {
    const dms = new DmsApplier(client, 'audit', 'items', ['id']);
    await dms.insert({ id: '1', name: 'one' }, cdc('INSERT', '2026-11-22 10:00:00', 1));
    await dms.insert({ id: '2', name: 'two' }, cdc('INSERT', '2026-11-22 10:00:01', 2));
    await dms.update({ id: '1' }, { name: 'uno' }, cdc('UPDATE', '2026-11-22 10:00:02', 3));
  });
  return { sourceUrl, targetUrl, config };
}

/**
 * Creates a LOGIN role with a random name and password on the test server and returns
 * its name and a URL that connects to `databaseUrl` as it (session_user is the login,
 * as it would be for a real attacker, not a superuser that SET ROLE).
 */
export async function createLogin(
  databaseUrl: string,
  prefix: string,
): Promise<{ name: string; url: string }> {
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  const password = randomBytes(12).toString('hex');
  await withClient(databaseUrl, (client) =>
    client.query(`CREATE ROLE ${quoteIdent(name)} LOGIN PASSWORD '${password}'`),
  );
  const url = new URL(databaseUrl);
  url.username = name;
  url.password = password;
  return { name, url: url.toString() };
}

/** Runs `work` connected as the login at `url`. */
export async function asLogin<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  return withClient(url, work);
}

/** Every audit row, in id order, as text: any change shows up in a comparison. */
export async function auditRows(targetUrl: string): Promise<string[]> {
  return withClient(targetUrl, async (client) => {
    const { rows } = await client.query<{ r: string }>(
      'SELECT a::text AS r FROM audit.audit_log AS a ORDER BY id',
    );
    return rows.map((row) => row.r);
  });
}

/** Functions in the audit schema (a planted backdoor shows up here). */
export async function auditFunctions(targetUrl: string): Promise<string[]> {
  return withClient(targetUrl, async (client) => {
    const { rows } = await client.query<{ name: string }>(
      `SELECT p.proname AS name FROM pg_catalog.pg_proc p
        WHERE p.pronamespace = 'audit'::regnamespace ORDER BY 1`,
    );
    return rows.map((row) => row.name);
  });
}

/** Runs `attack`; returns its error (or undefined when the attacker got through). */
export async function attempt(attack: () => Promise<unknown>): Promise<Error | undefined> {
  try {
    await attack();
    return undefined;
  } catch (error) {
    return error as Error;
  }
}
