import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { quoteIdent, quoteLiteral } from '../../src/postgres/identifiers';

/** URL of `database` on the run's test server. */
export function testDatabaseUrl(database: string): string {
  const url = new URL(inject('pgAdminUrl'));
  url.pathname = `/${encodeURIComponent(database)}`;
  return url.toString();
}

/**
 * Runs `work` on a connection to `url` (as the test server's superuser with its admin
 * URL), closed afterwards; `applicationName` is what the session reports, as a tool's would.
 */
export async function withClient<T>(
  url: string,
  work: (client: pg.Client) => Promise<T>,
  options: { readonly applicationName?: string } = {},
): Promise<T> {
  const client = new pg.Client({
    connectionString: url,
    ...(options.applicationName === undefined ? {} : { application_name: options.applicationName }),
  });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/**
 * Creates a fresh, uniquely named database for one test file (or test) and returns
 * its URL. Databases are left for the server's teardown, which deletes everything.
 * With `icuLocale`, the database's collation is that ICU locale's (PostgreSQL 15's
 * `LOCALE_PROVIDER icu`; its libc locale stays "C"): text sorts otherwise than in "C",
 * as on a server created with an ICU default.
 */
export async function createTestDatabase(
  prefix = 'test',
  options: { readonly icuLocale?: string } = {},
): Promise<string> {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  const collation =
    options.icuLocale === undefined
      ? ''
      : ` TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE ${quoteLiteral(options.icuLocale)} LOCALE 'C'`;
  await withClient(inject('pgAdminUrl'), (client) =>
    client.query(`CREATE DATABASE ${quoteIdent(name)}${collation}`),
  );
  return testDatabaseUrl(name);
}
