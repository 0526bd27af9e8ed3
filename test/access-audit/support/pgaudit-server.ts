import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdtemp, open, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
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
  stop(): Promise<void>;
}

/**
 * Starts a throw-away server from the system binaries with
 * `shared_preload_libraries=pgaudit` and the RDS log_line_prefix, logging stderr to
 * a file. PostgreSQL refuses to run as root, so as root the data directory is given
 * to the `postgres` OS user and the server runs as that user.
 */
export async function startPgauditServer(
  bin: string,
  options: PgauditServerOptions = {},
): Promise<PgauditServer> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'audit-trail-pgaudit-'));
  await chmod(dir, 0o755);
  const owner = runAsOwner();
  if (owner) await chown(dir, owner.uid, owner.gid);
  const dataDir = path.join(dir, 'data');
  const logFile = path.join(dir, 'postgresql.log');
  execFileSync(
    path.join(bin, 'initdb'),
    ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync'],
    {
      stdio: 'ignore',
      ...owner,
    },
  );
  const port = await freePort();
  const settings: Record<string, string> = {
    port: String(port),
    listen_addresses: '127.0.0.1',
    unix_socket_directories: dir,
    ...pgauditSettings(options),
    ...(options.allFormats
      ? {
          logging_collector: 'on',
          log_destination: 'stderr,csvlog,jsonlog',
          log_directory: path.join(dir, 'log'),
          log_filename: 'postgresql.log',
        }
      : {}),
  };
  const log = await open(logFile, 'a', 0o666);
  if (owner) await chown(logFile, owner.uid, owner.gid);
  const args = [
    '-D',
    dataDir,
    ...Object.entries(settings).flatMap(([name, value]) => ['-c', `${name}=${value}`]),
  ];
  const child = spawn(path.join(bin, 'postgres'), args, {
    stdio: ['ignore', log.fd, log.fd],
    ...owner,
  });
  await log.close();
  const adminUrl = (database = 'postgres') =>
    `postgres://postgres@127.0.0.1:${port}/${encodeURIComponent(database)}`;
  try {
    await waitUntilReady(adminUrl(), child, logFile);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    port,
    adminUrl,
    userUrl: (user, database) =>
      `postgres://${encodeURIComponent(user)}@127.0.0.1:${port}/${encodeURIComponent(database)}`,
    readLog: (format = 'stderr') =>
      options.allFormats
        ? readFile(path.join(dir, 'log', `postgresql.${LOG_FILE_EXTENSIONS[format]}`), 'utf8')
        : readFile(logFile, 'utf8'),
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGINT');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
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

function runAsOwner(): { uid: number; gid: number } | undefined {
  if (os.userInfo().uid !== 0) return undefined;
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

async function waitUntilReady(url: string, child: ChildProcess, logFile: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`postgres exited with ${child.exitCode}: ${await readFile(logFile, 'utf8')}`);
    }
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await client.end();
      return;
    } catch (error) {
      await client.end().catch(() => undefined);
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}
