import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { startServerFromBinaries } from '../../support/binaries-server';
import { startContainerPostgres } from '../../support/container/postgres-container';

/** Where Debian's PostgreSQL 15 lives; `PGAUDIT_PG_BIN` points elsewhere. */
const DEFAULT_BIN = '/usr/lib/postgresql/15/bin';

/** The RDS log_line_prefix, so the server writes exactly what RDS exports. */
export const RDS_PREFIX = '%t:%r:%u@%d:[%p]:';

/** Whether a PostgreSQL with pgaudit can be started here, and why not. */
export type PgauditAvailability =
  { available: true; bin: string } | { available: false; reason: string };

/** Finds PostgreSQL binaries with the pgaudit library beside them. */
export function detectPgaudit(): PgauditAvailability {
  const bin = process.env.PGAUDIT_PG_BIN ?? DEFAULT_BIN;
  if (!existsSync(path.join(bin, 'postgres'))) {
    return {
      available: false,
      reason: `no PostgreSQL binaries in ${bin} (apt-get install postgresql-15)`,
    };
  }
  const library = path.join(bin, '..', 'lib', 'pgaudit.so');
  if (!existsSync(library)) {
    return {
      available: false,
      reason: `pgaudit is not installed (${library} missing; apt-get install postgresql-15-pgaudit)`,
    };
  }
  return { available: true, bin };
}

/** Options for {@link startPgauditServer}. */
export interface PgauditServerOptions {
  /** Extra `-c name=value` settings. @default {} */
  readonly settings?: Readonly<Record<string, string>>;
  /** Load pgaudit. @default true */
  readonly preload?: boolean;
  /**
   * Log through the logging collector to stderr, csvlog and jsonlog files at once, so
   * one workload yields the same records in all three formats. @default false
   */
  readonly allFormats?: boolean;
}

/** The log formats {@link PgauditServer.readLog} can return. */
export type ServerLogFormat = 'stderr' | 'csvlog' | 'jsonlog';

const LOG_FILE_EXTENSIONS: Record<ServerLogFormat, string> = {
  stderr: 'log',
  csvlog: 'csv',
  jsonlog: 'json',
};

/** A running PostgreSQL 15 with pgaudit, logging to a file in RDS format. */
export interface PgauditServer {
  readonly port: number;
  /** Superuser URL of `database`. */
  adminUrl(database?: string): string;
  /** URL for `user` (trust authentication on 127.0.0.1). */
  userUrl(user: string, database: string): string;
  /** The server log so far (stderr unless the server was started with `allFormats`). */
  readLog(format?: ServerLogFormat): Promise<string>;
  /** Path of the stderr log file (what `pgaudit canary --log-file` watches); not in the container. */
  readonly logFile?: string;
  stop(): Promise<void>;
}

/**
 * Starts a throw-away server from the system binaries (see
 * {@link startServerFromBinaries}) with `shared_preload_libraries=pgaudit` and the RDS
 * log_line_prefix, logging stderr to a file.
 */
export async function startPgauditServer(
  bin: string,
  options: PgauditServerOptions = {},
): Promise<PgauditServer> {
  const server = await startServerFromBinaries(bin, {
    ...pgauditSettings(options),
    ...(options.allFormats
      ? {
          logging_collector: 'on',
          log_destination: 'stderr,csvlog,jsonlog',
          // Relative to the data directory.
          log_directory: 'log',
          log_filename: 'postgresql.log',
        }
      : {}),
  });
  return {
    port: server.port,
    adminUrl: (database) => server.url(database),
    userUrl: (user, database) => server.url(database, user),
    logFile: options.allFormats
      ? path.join(server.dataDir, 'log', 'postgresql.log')
      : server.logFile,
    readLog: (format = 'stderr') =>
      options.allFormats
        ? readFile(
            path.join(server.dataDir, 'log', `postgresql.${LOG_FILE_EXTENSIONS[format]}`),
            'utf8',
          )
        : server.readLog(),
    stop: () => server.stop(),
  };
}

/** What RDS with access audit runs: its log prefix, stderr logging, pgaudit preloaded. */
function pgauditSettings(options: PgauditServerOptions): Record<string, string> {
  return {
    log_line_prefix: RDS_PREFIX,
    log_destination: 'stderr',
    logging_collector: 'off',
    fsync: 'off',
    ...(options.preload === false
      ? {}
      : { shared_preload_libraries: 'pgaudit', 'pgaudit.role': 'rds_pgaudit' }),
    ...options.settings,
  };
}

/**
 * The same server in the Debian-built container (`TEST_PG=container`): PostgreSQL 15
 * with pgaudit and LLVM JIT, on a free loopback port, its log in a host file.
 */
export async function startPgauditContainer(
  options: PgauditServerOptions = {},
): Promise<PgauditServer> {
  if (options.allFormats)
    throw new Error(
      'allFormats (csvlog and jsonlog files) needs the system PostgreSQL, not TEST_PG=container',
    );
  const server = await startContainerPostgres({ settings: pgauditSettings(options) });
  return {
    port: server.port,
    adminUrl: (database) => server.url(database),
    userUrl: (user, database) => server.url(database, user),
    readLog: () => server.readLog(),
    stop: () => server.stop(),
  };
}
