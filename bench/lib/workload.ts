import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PG_BIN, run } from './processes';
import { withClient } from './servers';

/**
 * The pgbench-style workload on the audited source tables: per transaction, two
 * single-row updates (an account and a teller) and one insert into a history
 * table, all on tables with primary keys, as every captured table needs.
 */
export const WORKLOAD_TABLES = ['accounts', 'tellers', 'movements'] as const;

/** Changes one workload transaction makes (2 updates + 1 insert). */
export const CHANGES_PER_TRANSACTION = 3;

/** Creates and fills the workload tables in `public`. */
export async function createWorkloadTables(
  url: string,
  accounts: number,
  tellers = 100,
): Promise<void> {
  await withClient(url, async (client) => {
    await client.query(`
      CREATE TABLE accounts (aid int PRIMARY KEY, bid int NOT NULL, abalance int NOT NULL, filler char(84));
      CREATE TABLE tellers (tid int PRIMARY KEY, bid int NOT NULL, tbalance int NOT NULL, filler char(84));
      CREATE TABLE movements (
        mid bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        tid int NOT NULL, aid int NOT NULL, delta int NOT NULL, mtime timestamptz NOT NULL, filler char(22)
      );
      INSERT INTO accounts SELECT g, 1 + g / 100000, 0, '' FROM generate_series(1, ${Number(accounts)}) g;
      INSERT INTO tellers SELECT g, 1 + g / 10, 0, '' FROM generate_series(1, ${Number(tellers)}) g;
    `);
    await client.query('VACUUM ANALYZE accounts, tellers, movements');
  });
}

/**
 * The pgbench script: `blocks` times the workload's three changes (an account, a teller,
 * a movement) in one transaction. Block `i` picks its rows from the `i`-th slice of the
 * accounts and of the tellers, so every transaction locks rows in the same slice order
 * and two clients never deadlock.
 */
export const workloadScript = (
  accounts: number,
  tellers: number,
  first = '',
  withBegin = '',
  blocks = 1,
) => {
  const slice = (rows: number, i: number) =>
    `${Math.floor((rows * i) / blocks) + 1}, ${Math.floor((rows * (i + 1)) / blocks)}`;
  const block = (i: number) => `\\set aid${i} random(${slice(accounts, i)})
\\set tid${i} random(${slice(tellers, i)})
\\set delta${i} random(-5000, 5000)`;
  const changes = (
    i: number,
  ) => `UPDATE accounts SET abalance = abalance + :delta${i} WHERE aid = :aid${i};
UPDATE tellers SET tbalance = tbalance + :delta${i} WHERE tid = :tid${i};
INSERT INTO movements (tid, aid, delta, mtime) VALUES (:tid${i}, :aid${i}, :delta${i}, CURRENT_TIMESTAMP);`;
  const indexes = Array.from({ length: blocks }, (_, i) => i);
  // The context statements use :aid (the first block's account) as their request id.
  return `${indexes.map(block).join('\n')}
\\set aid :aid0
${withBegin === '' ? 'BEGIN;' : `\\startpipeline\nBEGIN;\n${withBegin};\n\\endpipeline`}
${first}${indexes.map(changes).join('\n')}
END;
`;
};

/** One pgbench run's outcome. */
export interface PgbenchResult {
  readonly tps: number;
  readonly transactions: number;
}

/** Options for {@link runPgbench}. */
export interface PgbenchOptions {
  readonly url: string;
  readonly accounts: number;
  readonly tellers?: number;
  /** Seconds to run. */
  readonly seconds: number;
  /** Client connections. @default 2 */
  readonly clients?: number;
  /** Throttle to this many transactions per second (pgbench -R). @default unthrottled */
  readonly rate?: number;
  /** A statement (with its `;` and newline) each transaction runs first. @default none */
  readonly firstStatement?: string;
  /**
   * A statement (without its `;`) sent with `BEGIN` in one round trip (a pgbench
   * pipeline: both prepared, one sync), as the context helpers send the context row.
   * @default none
   */
  readonly withBegin?: string;
  /**
   * How many times each transaction makes the workload's three changes
   * ({@link CHANGES_PER_TRANSACTION} each time). @default 1
   */
  readonly blocks?: number;
  /**
   * The clients' commits wait for the WAL flush (`synchronous_commit = on` in their
   * sessions), as a production source's do. The bench servers run it off, and logical
   * decoding sends only flushed WAL, which the WAL writer then flushes every
   * `wal_writer_delay` (200 ms): a delay between commit and capture that a durable
   * source does not have. The servers keep `fsync = off`, so the flush stays cheap.
   * @default false
   */
  readonly durableCommits?: boolean;
}

/** Runs the workload with pgbench (prepared statements, no vacuum) and returns its TPS. */
export async function runPgbench(options: PgbenchOptions): Promise<PgbenchResult> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'audit-trail-bench-'));
  const script = path.join(dir, 'workload.sql');
  await writeFile(
    script,
    workloadScript(
      options.accounts,
      options.tellers ?? 100,
      options.firstStatement ?? '',
      options.withBegin ?? '',
      options.blocks ?? 1,
    ),
  );
  const clients = options.clients ?? 2;
  const { stdout } = await run(
    path.join(PG_BIN, 'pgbench'),
    [
      '-n',
      '-M',
      'prepared',
      '-c',
      String(clients),
      '-j',
      String(clients),
      '-T',
      String(options.seconds),
      ...(options.rate === undefined ? [] : ['-R', String(options.rate)]),
      '-f',
      script,
      options.url,
    ],
    { env: options.durableCommits ? { PGOPTIONS: '-c synchronous_commit=on' } : {} },
  );
  const tps = /tps = ([\d.]+)/.exec(stdout);
  const count = /number of transactions actually processed: (\d+)/.exec(stdout);
  if (!tps || !count) throw new Error(`could not read pgbench output:\n${stdout}`);
  return { tps: Number(tps[1]), transactions: Number(count[1]) };
}
