import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { findFreePort } from '../../../src/postgres/local-server';
import type { ThrowawayPostgres } from '../binaries-server';

/** The recipe that builds the image; its hash names the image. */
export const BUILD_SCRIPT = path.join(__dirname, 'build-image.sh');

/** Where the image keeps PostgreSQL 15's binaries. */
const BIN = '/usr/lib/postgresql/15/bin';
/** The container's log folder, bind-mounted from a host folder. */
const LOG_DIR = '/log';
const LOG_FILE = 'postgresql.log';
const READY = 'database system is ready to accept connections';
/** Marks the harness's containers, so CI can remove any a killed run left behind. */
export const CONTAINER_LABEL = 'audit-trail.test';

// No bridge network exists (dockerd --bridge=none): the container shares the host's
// network and listens on 127.0.0.1 only. Ryuk would need a bridge and a pull.
process.env.TESTCONTAINERS_HOST_OVERRIDE ??= '127.0.0.1';
process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true';

/** The image name for the current recipe: `audit-trail-postgres:15-<hash of the recipe>`. */
export function imageName(): string {
  const override = process.env.AUDIT_TRAIL_PG_IMAGE;
  if (override) return override;
  const hash = createHash('sha256').update(readFileSync(BUILD_SCRIPT)).digest('hex');
  return `audit-trail-postgres:15-${hash.slice(0, 12)}`;
}

/** True when a Docker-compatible engine answers within `timeoutMs`. */
export async function containerEngineAvailable(timeoutMs = 1000): Promise<boolean> {
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error('timeout')), timeoutMs).unref(),
    );
    await Promise.race([getContainerRuntimeClient(), timeout]);
    return true;
  } catch {
    return false;
  }
}

/**
 * Makes sure the image for the current recipe exists, running the build script
 * (about 1.5 minutes, root and debootstrap needed) when it does not.
 */
export async function ensureImage(): Promise<string> {
  const { getContainerRuntimeClient, ImageName } = await import('testcontainers');
  const name = imageName();
  const client = await getContainerRuntimeClient();
  if (await client.image.exists(ImageName.fromString(name))) return name;
  console.log(`building ${name} with ${path.relative(process.cwd(), BUILD_SCRIPT)}`);
  await promisify(execFile)('bash', [BUILD_SCRIPT], {
    env: { ...process.env, AUDIT_TRAIL_PG_IMAGE: name },
    maxBuffer: 64 * 1024 * 1024,
  });
  if (!(await client.image.exists(ImageName.fromString(name))))
    throw new Error(`${BUILD_SCRIPT} finished but image ${name} does not exist`);
  return name;
}

/** Options for {@link startContainerPostgres}. */
export interface ContainerPostgresOptions {
  /** Server settings passed as `-c name=value`. @default {} */
  readonly settings?: Readonly<Record<string, string | number>>;
}

/**
 * Starts a throw-away server from the recipe's image: `initdb` into the container's
 * own disk, then `postgres` on a free loopback port of the host's network, its stderr
 * appended to a host file so tests read exactly what the server logged.
 */
export async function startContainerPostgres(
  options: ContainerPostgresOptions = {},
): Promise<ThrowawayPostgres> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const image = await ensureImage();
  const port = await findFreePort();
  const logDir = await mkdtemp(path.join(os.tmpdir(), 'audit-trail-pg-container-'));
  // The container's postgres user (its own uid) writes the log into this folder.
  await chmod(logDir, 0o777);
  const settings = {
    listen_addresses: '127.0.0.1',
    port,
    unix_socket_directories: '/tmp',
    ...options.settings,
  };
  const flags = Object.entries(settings)
    .map(([name, value]) => `-c ${shellQuote(`${name}=${value}`)}`)
    .join(' ');
  const data = '/var/lib/postgresql/data';
  const script = [
    `${BIN}/initdb -D ${data} -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null`,
    `exec ${BIN}/postgres -D ${data} ${flags} 2>>${LOG_DIR}/${LOG_FILE}`,
  ].join(' && ');
  let container;
  try {
    container = await new GenericContainer(image)
      .withNetworkMode('host')
      .withLabels({ [CONTAINER_LABEL]: 'postgres' })
      .withUser('postgres')
      .withBindMounts([{ source: logDir, target: LOG_DIR, mode: 'rw' }])
      .withCommand(['sh', '-c', script])
      .withWaitStrategy(Wait.forSuccessfulCommand(`grep -q '${READY}' ${LOG_DIR}/${LOG_FILE}`))
      .withStartupTimeout(60_000)
      .start();
  } catch (error) {
    const log = await readFile(path.join(logDir, LOG_FILE), 'utf8').catch(() => '');
    await rm(logDir, { recursive: true, force: true });
    throw new Error(`the PostgreSQL container did not start: ${String(error)}\n${log}`);
  }
  const started = container;
  return {
    port,
    url: (database = 'postgres', user = 'postgres') =>
      `postgres://${encodeURIComponent(user)}@127.0.0.1:${port}/${encodeURIComponent(database)}`,
    readLog: () => readFile(path.join(logDir, LOG_FILE), 'utf8'),
    async stop() {
      // A throw-away server: no need to wait for a clean shutdown.
      await started.stop({ timeout: 0 });
      await rm(logDir, { recursive: true, force: true });
    },
  };
}

function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}
