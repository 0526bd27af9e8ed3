import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmod, chown, mkdtemp, open, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { findFreePort } from '../../src/postgres/local-server';

/** A throw-away PostgreSQL on 127.0.0.1 whose log the tests can read. */
export interface ThrowawayPostgres {
  readonly port: number;
  /** URL of `database` for `user` (trust authentication on 127.0.0.1). */
  url(database?: string, user?: string): string;
  /** The server log so far. */
  readLog(): Promise<string>;
  stop(): Promise<void>;
}

/** A throw-away server started from binaries on this machine; it can also be restarted. */
export interface BinariesPostgres extends ThrowawayPostgres {
  /** The data directory (a relative `log_directory` setting lands inside it). */
  readonly dataDir: string;
  /** The file the server's stderr goes to (what {@link ThrowawayPostgres.readLog} reads). */
  readonly logFile: string;
  /** Shuts the server down (fast shutdown) and keeps its data; {@link start} brings it back. */
  shutDown(): Promise<void>;
  /** Starts the server again on the same port and data after {@link shutDown}. */
  start(): Promise<void>;
}

/**
 * Starts a throw-away server from the PostgreSQL binaries in `bin` (the system's, or
 * another major's from npm): initdb with trust authentication, then postgres on a free
 * loopback port with `settings`, logging stderr to a file. PostgreSQL refuses to run as
 * root, so as root the data directory is given to the `postgres` OS user and the
 * server runs as that user.
 */
export async function startServerFromBinaries(
  bin: string,
  settings: Readonly<Record<string, string | number>> = {},
): Promise<BinariesPostgres> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'audit-trail-pg-bin-'));
  await chmod(dir, 0o755);
  const owner = runAsOwner();
  if (owner) await chown(dir, owner.uid, owner.gid);
  const dataDir = path.join(dir, 'data');
  const logFile = path.join(dir, 'postgresql.log');
  execFileSync(
    path.join(bin, 'initdb'),
    ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync'],
    { stdio: 'ignore', ...owner },
  );
  const port = await findFreePort();
  const all = {
    port,
    listen_addresses: '127.0.0.1',
    unix_socket_directories: dir,
    ...settings,
  };
  const args = [
    '-D',
    dataDir,
    ...Object.entries(all).flatMap(([name, value]) => ['-c', `${name}=${value}`]),
  ];
  const url = (database = 'postgres', user = 'postgres') =>
    `postgres://${encodeURIComponent(user)}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
  const launch = async (): Promise<ChildProcess> => {
    const log = await open(logFile, 'a', 0o666);
    if (owner) await chown(logFile, owner.uid, owner.gid);
    const started = spawn(path.join(bin, 'postgres'), args, {
      stdio: ['ignore', log.fd, log.fd],
      ...owner,
    });
    await log.close();
    try {
      await waitUntilReady(url(), started, logFile);
    } catch (error) {
      started.kill('SIGKILL');
      throw error;
    }
    return started;
  };
  let child = await launch();
  const shutDown = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGINT');
    await exited;
  };
  return {
    port,
    dataDir,
    logFile,
    url,
    readLog: () => readFile(logFile, 'utf8'),
    shutDown,
    async start() {
      child = await launch();
    },
    async stop() {
      await shutDown();
      await rm(dir, { recursive: true, force: true });
    },
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
