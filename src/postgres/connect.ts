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

/**
 * Session settings that change how PostgreSQL prints values as text. A database or role
 * can set any of them (`ALTER DATABASE src SET DateStyle = 'SQL, DMY'`), and pgoutput,
 * `COPY`/`SELECT` and the target's input functions all follow the session: unpinned,
 * 2024-02-01 could travel as 01/02/2024 and be read back as 2 January, floats could lose
 * digits. Every connection the kit opens sends these in its startup packet, which
 * outranks database and role settings (the walsender included).
 */
export const PINNED_OUTPUT_SETTINGS: Readonly<Record<string, string>> = {
  DateStyle: 'ISO,MDY',
  IntervalStyle: 'postgres',
  extra_float_digits: '3',
  bytea_output: 'hex',
  TimeZone: 'UTC',
  // money prints (and parses) with the locale's currency symbol and separators.
  lc_monetary: 'C',
  // Not an output setting, but pinned the same way: JIT (on by default where LLVM is
  // present) compiles every multi-row staging statement again, ~1.6 s instead of ~10 ms,
  // and the apply lag grows without bound. The kit's statements are short and
  // generic-planned; they never gain from it.
  jit: 'off',
};

/** `PINNED_OUTPUT_SETTINGS` as a startup `options` string (`-c name=value ...`). */
function pinnedOptions(): string {
  return Object.entries(PINNED_OUTPUT_SETTINGS)
    .map(([name, value]) => `-c ${name}=${value}`)
    .join(' ');
}

/**
 * node-postgres settings for a connection to `url` with the output settings pinned.
 * Options already in the URL (`?options=-c%20statement_timeout%3D5000`) are kept; the
 * pinned settings come last, so they win.
 *
 * @example
 * ```ts
 * const client = new pg.Client(pinnedClientConfig(url, 'audit-trail-engine'));
 * ```
 */
export function pinnedClientConfig(url: string, applicationName: string): pg.ClientConfig {
  const parsed = new URL(url);
  const fromUrl = parsed.searchParams.get('options');
  parsed.searchParams.delete('options');
  return {
    connectionString: parsed.toString(),
    application_name: applicationName,
    options: fromUrl ? `${fromUrl} ${pinnedOptions()}` : pinnedOptions(),
  };
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
    ...pinnedClientConfig(url, options.applicationName ?? 'audit-trail'),
    max: options.max ?? 4,
  });
}

/** A kysely instance over a fresh pool for `url`; destroy it when done. */
export function createKysely<DB>(url: string, options: PoolOptions = {}): Kysely<DB> {
  return new Kysely<DB>({ dialect: new PostgresDialect({ pool: createPool(url, options) }) });
}
