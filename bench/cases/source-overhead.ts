import { spawn } from 'node:child_process';
import path from 'node:path';
import type { CaptureDriver } from '../lib/capture';
import { installConventionalTrigger, removeConventionalTrigger } from '../lib/conventional-trigger';
import { figure, type Figure } from '../lib/figures';
import { PG_BIN, sleep, stopChild } from '../lib/processes';
import type { BenchContext } from '../lib/profile';
import { withClient } from '../lib/servers';
import { median, round, roundSpread, spread } from '../lib/stats';
import { CHANGES_PER_TRANSACTION, runPgbench, WORKLOAD_TABLES } from '../lib/workload';

/** The five source configurations, interleaved in every round. */
export const SOURCE_CASES = ['A', 'B', 'C', 'D', 'E'] as const;
type SourceCase = (typeof SOURCE_CASES)[number];

const CASE_NAMES: Record<SourceCase, string> = {
  A: 'no auditing',
  B: 'kit capture live (slot + engine + target apply)',
  C: 'row trigger writing JSONB audit rows on the source',
  D: 'bare pgoutput consumer (pg_recvlogical > /dev/null)',
  E: 'slot held, engine catches up after the workload',
};

/** Inputs of the source overhead case. */
export interface SourceOverheadOptions {
  readonly sourceUrl: string;
  /** Ready capture into the target (initial load done), or null when the engine is missing. */
  readonly capture: CaptureDriver | null;
  /** Why `capture` is null. */
  readonly captureMissing?: string;
}

const FLOOR_SLOT = 'bench_floor_slot';
const FLOOR_PUBLICATION = 'bench_floor_pub';

/**
 * Case 1: the pgbench-style workload on the source under A/B/C/D/E, interleaved
 * (the order rotates each round so drift over the run affects every case alike).
 * Before each case, untimed, the engine's slot is moved to the current position so no
 * case inherits a backlog (B and E leave none: B drains, E catches up).
 */
export async function runSourceOverhead(
  ctx: BenchContext,
  options: SourceOverheadOptions,
): Promise<{ figures: Figure[]; detail: Record<string, unknown> }> {
  const { profile } = ctx;
  const tps: Record<SourceCase, number[]> = { A: [], B: [], C: [], D: [], E: [] };
  const catchUpRates: number[] = [];
  const behindMb: number[] = [];
  const ratios = {
    BA: [] as number[],
    BC: [] as number[],
    CA: [] as number[],
    BD: [] as number[],
    EA: [] as number[],
  };
  const cases = options.capture ? SOURCE_CASES : (['A', 'C', 'D'] as const);
  await withClient(options.sourceUrl, (client) =>
    client.query(
      `CREATE PUBLICATION ${FLOOR_PUBLICATION} FOR TABLE ${WORKLOAD_TABLES.map((t) => `public.${t}`).join(', ')}`,
    ),
  );
  const pgbench = () =>
    runPgbench({
      url: options.sourceUrl,
      accounts: profile.sourceAccounts,
      seconds: profile.sourceSeconds,
      clients: 2,
    });

  for (let round = 0; round < profile.sourceRounds; round++) {
    const order = cases.map((_, i) => cases[(i + round) % cases.length] as SourceCase);
    const roundTps: Partial<Record<SourceCase, number>> = {};
    for (const which of order) {
      await prepare(options);
      let result;
      switch (which) {
        case 'A':
          result = await pgbench();
          break;
        case 'B': {
          const live = await options.capture!.startLive();
          await sleep(500);
          result = await pgbench();
          // Untimed: how far the live engine was behind when the workload ended. Its
          // backlog is discarded before the next case (see prepare).
          behindMb.push((await live.stop()).behindBytes / 1024 ** 2);
          break;
        }
        case 'C':
          await installConventionalTrigger(options.sourceUrl, WORKLOAD_TABLES);
          try {
            result = await pgbench();
          } finally {
            await removeConventionalTrigger(options.sourceUrl, WORKLOAD_TABLES);
          }
          break;
        case 'D':
          result = await withFloorConsumer(options.sourceUrl, pgbench);
          break;
        case 'E': {
          result = await pgbench();
          // The catch-up is slow next to the workload: time it in the first rounds only;
          // later rounds discard the backlog before the next case (see prepare).
          if (round >= profile.catchUpRounds) break;
          const caught = await options.capture!.catchUp();
          catchUpRates.push(
            (result.transactions * CHANGES_PER_TRANSACTION) / (caught.applyMs / 1000),
          );
          break;
        }
      }
      tps[which].push(result.tps);
      roundTps[which] = result.tps;
      ctx.log(`  round ${round + 1} ${which} (${CASE_NAMES[which]}): ${result.tps.toFixed(0)} tps`);
    }
    const r = (a: SourceCase, b: SourceCase, into: number[]) => {
      if (roundTps[a] !== undefined && roundTps[b] !== undefined)
        into.push(roundTps[a]! / roundTps[b]!);
    };
    r('B', 'A', ratios.BA);
    r('B', 'C', ratios.BC);
    r('C', 'A', ratios.CA);
    r('B', 'D', ratios.BD);
    r('E', 'A', ratios.EA);
  }
  await withClient(options.sourceUrl, (client) =>
    client.query(`DROP PUBLICATION ${FLOOR_PUBLICATION}`),
  );

  const ratioFigure = (id: Parameters<typeof figure>[0], values: number[], label: string) =>
    values.length === 0
      ? figure(id, null, { note: `needs the engine: ${options.captureMissing ?? 'not available'}` })
      : figure(id, round(median(values), 3), {
          detail: {
            perRoundRatios: roundSpread(spread(values), 3),
            method: `median over rounds of ${label} TPS in the same round`,
          },
        });
  const figures = [
    ratioFigure('source_tps_ratio_capture_vs_none', ratios.BA, 'B/A'),
    ratioFigure('source_tps_ratio_capture_vs_trigger', ratios.BC, 'B/C'),
    ratioFigure('source_tps_ratio_trigger_vs_none', ratios.CA, 'C/A'),
    ratioFigure('source_tps_ratio_capture_vs_floor', ratios.BD, 'B/D'),
    ratioFigure('source_tps_ratio_deferred_vs_none', ratios.EA, 'E/A'),
    catchUpRates.length === 0
      ? figure('catchup_changes_per_s', null, {
          note: `needs the engine: ${options.captureMissing ?? 'not available'}`,
        })
      : figure('catchup_changes_per_s', round(median(catchUpRates), 3), {
          detail: {
            perRound: roundSpread(spread(catchUpRates)),
            changesPerTransaction: CHANGES_PER_TRANSACTION,
          },
        }),
  ];
  const detail = {
    cases: CASE_NAMES,
    clients: 2,
    secondsPerCase: profile.sourceSeconds,
    rounds: profile.sourceRounds,
    tps: Object.fromEntries(cases.map((c) => [c, roundSpread(spread(tps[c]), 4)])),
    liveEngineBehindAtEndMbOfWal: behindMb.length ? roundSpread(spread(behindMb), 3) : null,
  };
  return { figures, detail };
}

/** Untimed before every case: no backlog in the engine's slot, and a checkpoint evens out WAL state. */
async function prepare(options: SourceOverheadOptions): Promise<void> {
  if (options.capture) await options.capture.discardBacklog();
  await withClient(options.sourceUrl, (client) => client.query('CHECKPOINT'));
}

/**
 * Case D: a throw-away pgoutput slot on the same tables, consumed by pg_recvlogical
 * writing to /dev/null: the cost of logical decoding itself, the floor of any capture.
 */
async function withFloorConsumer<T>(sourceUrl: string, work: () => Promise<T>): Promise<T> {
  await withClient(sourceUrl, (client) =>
    client.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [FLOOR_SLOT]),
  );
  const consumer = spawn(
    path.join(PG_BIN, 'pg_recvlogical'),
    [
      '-d',
      sourceUrl,
      '--slot',
      FLOOR_SLOT,
      '--start',
      '-o',
      'proto_version=1',
      '-o',
      `publication_names=${FLOOR_PUBLICATION}`,
      '-F',
      '0',
      '-s',
      '1',
      '-f',
      '/dev/null',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  consumer.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  try {
    await sleep(500);
    if (consumer.exitCode !== null) throw new Error(`pg_recvlogical exited: ${stderr}`);
    const result = await work();
    // Let the consumer finish decoding what the workload wrote before it is stopped.
    await waitForSlot(sourceUrl, FLOOR_SLOT);
    return result;
  } finally {
    await stopChild(consumer);
    await withClient(sourceUrl, (client) =>
      client.query('SELECT pg_drop_replication_slot($1)', [FLOOR_SLOT]),
    );
  }
}

/** Waits until the slot has confirmed everything written so far (bounded). */
async function waitForSlot(sourceUrl: string, slot: string): Promise<void> {
  await withClient(sourceUrl, async (client) => {
    const target = (await client.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn'))
      .rows[0]!.lsn;
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const { rows } = await client.query<{ done: boolean }>(
        'SELECT confirmed_flush_lsn >= $2::pg_lsn AS done FROM pg_replication_slots WHERE slot_name = $1',
        [slot, target],
      );
      if (rows[0]?.done) return;
      await sleep(100);
    }
  });
}
