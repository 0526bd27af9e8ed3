import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { AuditTrailError } from '../errors';
import { namingPreparedStatements } from './prepared-statements';
import { RowStream, streamsRows } from './row-stream';
import { PINNED_OUTPUT_SETTINGS } from './pinned-settings';
import { warnIfPlaintext } from './tls';
import { ConnectionUrlError, DEFAULT_CONNECT_TIMEOUT_SECONDS } from './url';

export { PINNED_OUTPUT_SETTINGS } from './pinned-settings';
export { assertPostgresUrl, ConnectionUrlError, DEFAULT_CONNECT_TIMEOUT_SECONDS } from './url';

/**
 * Settings as a startup `options` string (`-c name=value ...`). The server splits it at
 * spaces unless escaped with a backslash (`read\ committed`), as libpq documents.
 */
function startupOptions(settings: Readonly<Record<string, string>>): string {
  const escape = (text: string) => text.replace(/([\\ ])/g, '\\$1');
  return Object.entries(settings)
    .map(([name, value]) => `-c ${escape(name)}=${escape(value)}`)
    .join(' ');
}

/**
 * How long to wait for a connection to `url`, in milliseconds, with libpq's meaning
 * of `connect_timeout` (seconds; 0 waits for ever; less than 2 counts as 2). The first
 * that is set wins: the URL's `connect_timeout`, `AUDIT_TRAIL_CONNECT_TIMEOUT` (the
 * CLI's `--connect-timeout`), `PGCONNECT_TIMEOUT`, then 10 seconds. node-postgres's
 * JavaScript driver reads none of these itself: without this, a host that accepts TCP
 * and never answers makes a command hang for ever.
 *
 * @example
 * ```ts
 * connectTimeoutMillis('postgres://db.internal/app?connect_timeout=3'); // 3000
 * ```
 */
export function connectTimeoutMillis(url: string): number {
  const candidates = [
    new URL(url).searchParams.get('connect_timeout'),
    process.env.AUDIT_TRAIL_CONNECT_TIMEOUT,
    process.env.PGCONNECT_TIMEOUT,
  ];
  const chosen = candidates.find((value) => value !== undefined && value !== null && value !== '');
  if (chosen === undefined || chosen === null) return DEFAULT_CONNECT_TIMEOUT_SECONDS * 1000;
  const seconds = Number(chosen);
  if (!Number.isFinite(seconds))
    throw new ConnectionUrlError(`connect timeout "${chosen}" is not a number of seconds`);
  if (seconds <= 0) return 0;
  return Math.max(2, Math.trunc(seconds)) * 1000;
}

/**
 * node-postgres settings for a connection to `url` with the output settings pinned and
 * a connect timeout ({@link connectTimeoutMillis}); `settings` (such as `lock_timeout`)
 * are sent in the startup packet too. Options already in the URL
 * (`?options=-c%20statement_timeout%3D5000`) are kept; the pinned settings come last,
 * so they win.
 *
 * @example
 * ```ts
 * const client = new pg.Client(pinnedClientConfig(url, 'audit-trail-engine'));
 * ```
 */
export function pinnedClientConfig(
  url: string,
  applicationName: string,
  settings: Readonly<Record<string, string>> = {},
): pg.ClientConfig {
  warnIfPlaintext(url);
  const parsed = new URL(url);
  const fromUrl = parsed.searchParams.get('options');
  parsed.searchParams.delete('options');
  const pinned = startupOptions({ ...settings, ...PINNED_OUTPUT_SETTINGS });
  return {
    connectionString: parsed.toString(),
    application_name: applicationName,
    options: fromUrl ? `${fromUrl} ${pinned}` : pinned,
    connectionTimeoutMillis: connectTimeoutMillis(url),
    // A dead peer is noticed by TCP instead of a read that never returns.
    keepAlive: true,
  };
}

/**
 * A database could not be reached, or refused the login. The message names the side
 * (`source`, `target`, or the option the URL came from) and the host, never the password.
 */
export class ConnectionError extends AuditTrailError {
  override readonly name = 'ConnectionError';
  constructor(label: string, url: string, cause: unknown) {
    const timedOut = connectTimedOut(cause);
    super(
      `${label}: cannot connect to ${describeServer(url)}: ${timedOut ? 'no answer within the connect timeout' : errorText(cause)}`,
      timedOut
        ? {
            code: 'CONNECT_TIMEOUT',
            kind: 'connection',
            cause,
            hint: 'check that the host and port are a PostgreSQL server reachable from here; --connect-timeout waits longer',
          }
        : {
            code: 'CONNECTION_FAILED',
            kind: 'connection',
            cause,
            hint: 'check the URL, the network path and the credentials',
          },
    );
  }
}

/** `host:port/database` of a URL, for messages (no user or password). */
function describeServer(url: string): string {
  const parsed = new URL(url);
  return `${parsed.hostname || 'localhost'}:${parsed.port || '5432'}${parsed.pathname}`;
}

function errorText(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}

/** node-postgres's "timeout expired" / "Connection terminated due to connection timeout". */
function connectTimedOut(cause: unknown): boolean {
  return /timeout/i.test(errorText(cause));
}

/**
 * Opens a pinned connection to `url`; on failure the half-open client is closed and a
 * {@link ConnectionError} naming `label` is thrown.
 *
 * @example
 * ```ts
 * const source = await connectClient(sourceUrl, 'audit-trail-verify', 'source');
 * ```
 */
export async function connectClient(
  url: string,
  applicationName: string,
  label: string,
  extra: Partial<pg.ClientConfig> = {},
  settings: Readonly<Record<string, string>> = {},
): Promise<pg.Client> {
  const client = survivingConnectionLoss(
    new pg.Client({
      ...pinnedClientConfig(url, applicationName, settings),
      ...extra,
    }),
  );
  try {
    await client.connect();
    return client;
  } catch (error) {
    await client.end().catch(() => undefined);
    throw new ConnectionError(label, url, error);
  }
}

/**
 * Gives `client` an 'error' listener, so that a server ending the connection (a restart,
 * `pg_terminate_backend`, a failover, the servers stopping on a terminal's Ctrl-C) does
 * not crash the process with an unhandled 'error' event and a stack trace. node-postgres
 * emits that event even while a query is running (the query is rejected as well), and
 * a pool's checked-out clients have no listener of their own. Nothing is hidden: the
 * client is no longer queryable, so the caller's next query fails with the cause, on the
 * caller's path; callers that must react at once (the engine) add their own listener.
 */
export function survivingConnectionLoss<C extends pg.Client | pg.PoolClient>(client: C): C {
  client.on('error', () => undefined);
  return client;
}

/** Options for {@link createPool}. */
export interface PoolOptions {
  /** Most connections held open. @default 4 */
  readonly max?: number;
  /** `application_name` shown in pg_stat_activity and pgAudit logs. @default "audit-trail" */
  readonly applicationName?: string;
  /** Which database this is, named in connection errors. @default "database" */
  readonly label?: string;
  /**
   * Session settings for every connection, such as `{ lock_timeout: '10s' }` so a
   * command never queues for ever behind another session's lock. @default none
   */
  readonly settings?: Readonly<Record<string, string>>;
}

/**
 * A node-postgres pool for `url`, with pinned output settings and a connect timeout.
 * `pool.query()` is safe as it is. A client taken with `pool.connect()` must be released
 * with `client.release(true)` (or the error) after a statement of it failed: the server's
 * FATAL (pg_terminate_backend, a shutdown, a failover) reaches the statement before
 * node-postgres reads the connection's end, so a plain `release()` can put the ended
 * connection back, and the next `pool.connect()` gets it ('Connection terminated
 * unexpectedly'). {@link createKysely} does this itself.
 */
export function createPool(url: string, options: PoolOptions = {}): pg.Pool {
  const pool = new pg.Pool({
    ...pinnedClientConfig(url, options.applicationName ?? 'audit-trail', options.settings),
    max: options.max ?? 4,
  });
  // A connection resting in the pool that the server ends (pg_terminate_backend, a
  // failover, a dropped database) makes node-postgres emit 'error' on the pool, which
  // crashes the process when nothing listens. The pool has already discarded that
  // connection and the next query opens a new one, so nothing is lost by ignoring it: if the
  // server is really gone, that next query fails with it, through the caller's path.
  pool.on('error', () => undefined);
  // Checked-out clients have no pool listener: see survivingConnectionLoss.
  pool.on('connect', survivingConnectionLoss);
  return pool;
}

/**
 * A kysely instance over a fresh pool for `url`; destroy it when done. A connection
 * that cannot be made fails with a {@link ConnectionError} naming `options.label`.
 *
 * @example
 * ```ts
 * const db = createKysely<unknown>(targetUrl, { max: 1, label: 'target' });
 * ```
 */
export function createKysely<DB>(url: string, options: PoolOptions = {}): Kysely<DB> {
  const pool = createPool(url, options);
  const label = options.label ?? 'database';
  return streamsRows(
    new Kysely<DB>({
      dialect: new PostgresDialect({
        // stream(): each network read's rows as they arrive (the history API converts them
        // while the rest are on their way).
        cursor: RowStream,
        pool: {
          // Statements registered with prepareByName go as named prepared statements.
          connect: () =>
            pool.connect().then(namingPreparedStatements, (error: unknown) => {
              throw new ConnectionError(label, url, error);
            }),
          end: () => pool.end(),
        },
      }),
    }),
  );
}
