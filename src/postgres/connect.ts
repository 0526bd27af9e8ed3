import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';

/** Thrown for a connection string that is not a PostgreSQL URL. */
export class ConnectionUrlError extends Error {
  override readonly name = 'ConnectionUrlError';
}

/**
 * Checks that `url` is a `postgres://` or `postgresql://` URL and returns it.
 * @param label the option the URL came from, named in the error (`--target-url`).
 */
export function assertPostgresUrl(url: string, label: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConnectionUrlError(
      `${label} is not a URL: expected postgres://user:password@host:port/database`,
    );
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new ConnectionUrlError(
      `${label} must start with postgres:// or postgresql://, got ${parsed.protocol}//`,
    );
  }
  return url;
}

/** Options for {@link createPool}. */
export interface PoolOptions {
  /** Most connections held open. @default 4 */
  readonly max?: number;
  /** `application_name` shown in pg_stat_activity and pgAudit logs. @default "audit-trail" */
  readonly applicationName?: string;
}

/** A node-postgres pool for `url`. */
export function createPool(url: string, options: PoolOptions = {}): pg.Pool {
  return new pg.Pool({
    connectionString: url,
    max: options.max ?? 4,
    application_name: options.applicationName ?? 'audit-trail',
  });
}

/** A kysely instance over a fresh pool for `url`; destroy it when done. */
export function createKysely<DB>(url: string, options: PoolOptions = {}): Kysely<DB> {
  return new Kysely<DB>({ dialect: new PostgresDialect({ pool: createPool(url, options) }) });
}
