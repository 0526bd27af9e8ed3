import pg from 'pg';
import { startLocalPostgres, type LocalPostgres } from '../../src/postgres/local-server';

/** The source and target servers a benchmark runs against. */
export interface BenchServers {
  readonly source: LocalPostgres;
  readonly target: LocalPostgres;
  readonly sourceVersion: string;
  stop(): Promise<void>;
}

/** Server settings of every bench server, on top of the kit's local ones. */
export const BENCH_SETTINGS = {
  shared_buffers: '256MB',
  max_wal_size: '4GB',
  checkpoint_timeout: '30min',
};

/**
 * Settings for durable commits: each commit waits for its WAL flush, as every commit on
 * Aurora waits for its storage quorum. `full_page_writes` stays off (Aurora writes no
 * full pages either). Command-line settings win over `ALTER SYSTEM`, so a server is
 * started durable rather than switched.
 */
export const DURABLE_COMMIT_SETTINGS = { fsync: 'on', synchronous_commit: 'on' } as const;

/**
 * Starts two separate PostgreSQL servers on this machine, as production has two
 * clusters: the source (wal_level=logical) and the target. Both use the kit's local
 * settings (fsync off, synchronous_commit off), which make the workload CPU-bound:
 * the harshest setting for measuring CPU overhead, since no I/O wait hides it.
 */
export async function startServers(): Promise<BenchServers> {
  const [source, target] = await Promise.all([startBenchServer(), startBenchServer()]);
  const sourceVersion = await queryValue(source.url(), 'SHOW server_version');
  return {
    source,
    target,
    sourceVersion,
    async stop() {
      await Promise.allSettled([source.stop(), target.stop()]);
    },
  };
}

/** One bench server: CPU-bound commits, or durable ones ({@link DURABLE_COMMIT_SETTINGS}). */
export function startBenchServer(options: { durable?: boolean } = {}): Promise<LocalPostgres> {
  const settings = { ...BENCH_SETTINGS, ...(options.durable ? DURABLE_COMMIT_SETTINGS : {}) };
  return startLocalPostgres({ settings });
}

/** Runs `sql` on a fresh connection and returns the first column of the first row as text. */
export async function queryValue(
  url: string,
  sql: string,
  params: unknown[] = [],
): Promise<string> {
  return withClient(url, async (client) => {
    const { rows } = await client.query({ text: sql, values: params, rowMode: 'array' });
    return String((rows[0] as unknown[] | undefined)?.[0] ?? '');
  });
}

/** Runs `work` with a connected client, always closing it. */
export async function withClient<T>(
  url: string,
  work: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: 'audit-trail-bench' });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}
