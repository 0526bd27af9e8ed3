import path from 'node:path';
import type { BenchCase } from '.';
import { loadEngine, prepareItemsDatabases } from '../lib/engine-capture';
import { figure, missing } from '../lib/figures';
import { run, sleep } from '../lib/processes';
import type { BenchContext } from '../lib/profile';
import { startServers, withClient } from '../lib/servers';
import { median, percentile, round, roundSpread, spread } from '../lib/stats';
import { runPgbench } from '../lib/workload';

const TABLES = ['items', 'accounts', 'tellers', 'movements'];
const TRANSACTION_SIZES = [1, 100, 10_000] as const;
/** The steady rates of the lag measurements: workload transactions/s x 3 changes. */
const LAG_TPS = 667; // 2,000 changes/s
const BUSY_LAG_TPS = 1667; // 5,000 changes/s, a busy OLTP table

/**
 * Case 2: engine throughput by source transaction size, commit-to-audit-row lag at a
 * steady 2,000 changes/s, and peak memory applying one big transaction.
 */
export const engineCase: BenchCase = {
  title:
    'engine throughput (1 / 100 / 10,000-row transactions) and lag at 2,000 and 5,000 changes/s',
  figures: [
    'engine_changes_per_s',
    'engine_lag_p99_ms',
    'engine_lag_p99_ms_5000',
    'engine_lag_p99_ms_durable',
  ],
  async run(ctx) {
    const { engine, missing: why } = await loadEngine();
    if (!engine) {
      const note = why ?? 'engine missing';
      return {
        figures: [
          missing('engine_changes_per_s', note),
          missing('engine_lag_p99_ms', note),
          missing('engine_lag_p99_ms_5000', note),
          missing('engine_lag_p99_ms_durable', note),
          missing('engine_peak_rss_mb', note),
        ],
        detail: { skipped: note },
      };
    }
    const servers = await startServers();
    try {
      const { createWorkloadTables } = await import('../lib/workload');
      const { sourceUrl, targetUrl, config } = await prepareItemsDatabases(
        servers,
        'engine',
        TABLES,
        (url) => createWorkloadTables(url, 10_000),
      );
      const make = () =>
        engine.createEngine({
          config,
          sourceUrl,
          targetUrl,
          logger: engine.silentLogger,
          lagIntervalMs: 0,
        });
      await make().runUntilIdle(); // initial load

      const throughput = await measureThroughput(ctx, sourceUrl, targetUrl, make);
      const lag = await measureLag(ctx, sourceUrl, targetUrl, make, LAG_TPS);
      const durableLag = await measureLag(ctx, sourceUrl, targetUrl, make, LAG_TPS, {
        durableCommits: true,
      });
      const busyLag = await measureLag(ctx, sourceUrl, targetUrl, make, BUSY_LAG_TPS);
      const slowest = Math.min(...Object.values(throughput.medians));
      return {
        figures: [
          figure('engine_changes_per_s', round(slowest, 4), {
            note: 'slowest of the three transaction sizes (median over rounds); source commit to audit row, backlog applied',
            detail: { bySize: throughput.bySize },
          }),
          figure('engine_lag_p99_ms', round(lag.p99, 4), { detail: lag }),
          figure('engine_lag_p99_ms_5000', round(busyLag.p99, 4), { detail: busyLag }),
          figure('engine_lag_p99_ms_durable', round(durableLag.p99, 4), { detail: durableLag }),
        ],
        detail: { throughput: throughput.bySize, lag, busyLag, durableLag },
      };
    } finally {
      await servers.stop();
    }
  },
};

type MakeEngine = () => {
  runUntilIdle(): Promise<{ changes: number }>;
  run(): Promise<unknown>;
  stop(): Promise<void>;
  status(): { phase: string };
};

/**
 * Generates a backlog of `throughputChanges` changes on `items` in transactions of
 * the given size (half inserts, half updates of those rows), then times the engine
 * applying it until idle. Sizes are interleaved over rounds.
 */
async function measureThroughput(
  ctx: BenchContext,
  sourceUrl: string,
  targetUrl: string,
  make: MakeEngine,
) {
  const total = ctx.profile.throughputChanges;
  const rates: Record<number, number[]> = {};
  const idleStarted = process.hrtime.bigint();
  await make().runUntilIdle();
  const idleRunMs = Number(process.hrtime.bigint() - idleStarted) / 1e6;
  let nextId = 1;
  for (let roundIndex = 0; roundIndex < ctx.profile.throughputRounds; roundIndex++) {
    for (const size of TRANSACTION_SIZES) {
      const rows = Math.max(1, Math.floor(total / 2));
      const first = nextId;
      nextId += rows;
      await withClient(sourceUrl, (client) => client.query(backlogSql(first, rows, size)));
      const before = await auditRows(targetUrl);
      const started = process.hrtime.bigint();
      const result = await make().runUntilIdle();
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const written = (await auditRows(targetUrl)) - before;
      if (written !== rows * 2)
        throw new Error(
          `expected ${rows * 2} audit rows for ${size}-row transactions, found ${written}`,
        );
      (rates[size] ??= []).push(result.changes / seconds);
      ctx.log(
        `  ${size}-row transactions: ${(result.changes / seconds).toFixed(0)} changes/s (${result.changes} changes)`,
      );
    }
  }
  const bySize = Object.fromEntries(
    Object.entries(rates).map(([size, values]) => [`${size}-row`, roundSpread(spread(values))]),
  );
  const medians = Object.fromEntries(
    Object.entries(rates).map(([size, values]) => [size, median(values)]),
  );
  return {
    bySize: { ...bySize, fixedCostOfAnIdleRunMs: round(idleRunMs, 3), changesPerRun: total },
    medians,
  };
}

/** A DO block inserting then updating `rows` items, committing every `size` changes. */
export function backlogSql(first: number, rows: number, size: number): string {
  const last = first + rows - 1;
  return `DO $$
    DECLARE n int := 0;
    BEGIN
      FOR i IN ${first}..${last} LOOP
        INSERT INTO items (id, name, price, qty) VALUES (i, 'item ' || i, 9.99, 1);
        n := n + 1;
        IF n % ${size} = 0 THEN COMMIT; END IF;
      END LOOP;
      FOR i IN ${first}..${last} LOOP
        UPDATE items SET price = price + 0.01, qty = qty + 1, updated_at = clock_timestamp() WHERE id = i;
        n := n + 1;
        IF n % ${size} = 0 THEN COMMIT; END IF;
      END LOOP;
    END $$`;
}

async function auditRows(targetUrl: string): Promise<number> {
  return withClient(targetUrl, async (client) =>
    Number(
      (await client.query<{ n: string }>('SELECT count(*) AS n FROM audit.audit_log')).rows[0]!.n,
    ),
  );
}

/**
 * Runs the pgbench workload at a steady `tps` x 3 changes/s with the engine live, while a
 * poller reads new audit rows every 10 ms: a row's lag is the poll's start time minus
 * its source commit time (same machine clock), so it overstates lag by at most one
 * poll interval plus the query time. `durableCommits`: the workload's commits wait for
 * the WAL flush, as a production source's do (see `PgbenchOptions.durableCommits`).
 */
export async function measureLag(
  ctx: BenchContext,
  sourceUrl: string,
  targetUrl: string,
  make: MakeEngine,
  tps: number,
  options: { readonly durableCommits?: boolean } = {},
) {
  // What an earlier run left in the slot (a rate the engine could not keep up with) is
  // applied first: it would count as this run's lag.
  await make().runUntilIdle();
  const live = make();
  const running = live.run();
  running.catch(() => undefined);
  while (live.status().phase !== 'streaming' && live.status().phase !== 'stopped') await sleep(20);
  const lags: number[] = [];
  let polling = true;
  const poller = withClient(targetUrl, async (client) => {
    let lastId = Number(
      (await client.query<{ id: string | null }>('SELECT max(id) AS id FROM audit.audit_log'))
        .rows[0]!.id ?? 0,
    );
    while (polling) {
      const pollStart = Date.now();
      const { rows } = await client.query<{ id: string; commit_ms: string }>(
        `SELECT id, (extract(epoch FROM commit_timestamp) * 1000)::float8 AS commit_ms
         FROM audit.audit_log WHERE id > $1 ORDER BY id`,
        [lastId],
      );
      for (const row of rows) lags.push(pollStart - Number(row.commit_ms));
      if (rows.length > 0) lastId = Number(rows[rows.length - 1]!.id);
      await sleep(Math.max(0, 10 - (Date.now() - pollStart)));
    }
  });
  const workload = await runPgbench({
    url: sourceUrl,
    accounts: 10_000,
    seconds: ctx.profile.lagSeconds,
    clients: 2,
    rate: tps,
    durableCommits: options.durableCommits ?? false,
  });
  await sleep(2000);
  polling = false;
  await poller;
  await live.stop();
  await running;
  if (lags.length === 0) throw new Error('no audit rows arrived during the lag measurement');
  return {
    targetChangesPerS: tps * 3,
    sourceCommits: options.durableCommits ? 'synchronous_commit=on' : 'synchronous_commit=off',
    achievedChangesPerS: round((workload.transactions * 3) / ctx.profile.lagSeconds, 4),
    samples: lags.length,
    p50: round(percentile(lags, 50), 4),
    p99: round(percentile(lags, 99), 4),
    max: round(Math.max(...lags), 4),
    method: 'poll of new audit rows every 10 ms; lag = poll start - source commit timestamp',
  };
}

/** Case 2b: peak resident memory of the engine applying one big source transaction. */
export const memoryCase: BenchCase = {
  title: 'engine peak RSS applying one big source transaction',
  figures: ['engine_peak_rss_mb'],
  async run(ctx) {
    const { engine, missing: why } = await loadEngine();
    if (!engine)
      return {
        figures: [missing('engine_peak_rss_mb', why ?? 'engine missing')],
        detail: { skipped: why },
      };
    const servers = await startServers();
    try {
      const { sourceUrl, targetUrl, config } = await prepareItemsDatabases(servers, 'memory');
      await engine
        .createEngine({
          config,
          sourceUrl,
          targetUrl,
          logger: engine.silentLogger,
          lagIntervalMs: 0,
        })
        .runUntilIdle();
      const memory = await measureMemory(ctx, sourceUrl, targetUrl, ['items']);
      return {
        figures: [
          figure('engine_peak_rss_mb', round(memory.peakMb, 4), {
            note:
              `${ctx.profile.bigTransactionRows.toLocaleString('en-US')}-row transaction` +
              (ctx.profile.bigTransactionRows < 1_000_000
                ? ' (quick profile; --full uses 1,000,000)'
                : ''),
            detail: memory,
          }),
        ],
        detail: memory,
      };
    } finally {
      await servers.stop();
    }
  },
};

/**
 * Applies one transaction of `bigTransactionRows` inserts with the engine in a child
 * process and reads that process's peak resident set (VmHWM) when it is done.
 */
async function measureMemory(
  ctx: BenchContext,
  sourceUrl: string,
  targetUrl: string,
  tables: readonly string[],
) {
  const rows = ctx.profile.bigTransactionRows;
  await withClient(sourceUrl, (client) =>
    client.query(
      `INSERT INTO items (id, name, price, qty) SELECT g, 'big transaction row ' || g, 1.5, g % 100 FROM generate_series(100000000, 100000000 + $1 - 1) g`,
      [rows],
    ),
  );
  const worker = path.join(__dirname, '..', 'workers', 'engine-worker.ts');
  const { stdout } = await run(process.execPath, [
    '--import',
    'tsx',
    worker,
    JSON.stringify({ sourceUrl, targetUrl, tables }),
  ]);
  const report = JSON.parse(stdout.trim().split('\n').pop()!) as {
    changes: number;
    applyMs: number;
    baselineHwmKb: number;
    peakHwmKb: number;
  };
  ctx.log(
    `  ${rows}-row transaction: peak RSS ${(report.peakHwmKb / 1024).toFixed(0)} MB (start ${(report.baselineHwmKb / 1024).toFixed(0)} MB)`,
  );
  return {
    rows,
    changesApplied: report.changes,
    applySeconds: round(report.applyMs / 1000, 3),
    peakMb: report.peakHwmKb / 1024,
    processStartMb: round(report.baselineHwmKb / 1024, 4),
    method:
      'engine alone in a child process (node + tsx); VmHWM from /proc/self/status after runUntilIdle',
  };
}
