import type { BenchCase } from '.';
import type { BenchContext } from '../lib/profile';
import { parseConfig } from '../../src/config';
import type { SourceContextConfig } from '../../src/config/source-context';
import { createKysely } from '../../src/postgres/connect';
import { quoteQualified } from '../../src/postgres/identifiers';
import { contextInsertStatement, installSourceContext } from '../../src/source-context';
import { contextRowInsert } from '../../src/source-context/begin-with-context';
import { figure, type Figure, type FigureId } from '../lib/figures';
import type { LocalPostgres } from '../../src/postgres/local-server';
import { queryValue, startBenchServer, withClient } from '../lib/servers';
import { median, round, roundSpread, spread } from '../lib/stats';
import { CHANGES_PER_TRANSACTION, createWorkloadTables, runPgbench } from '../lib/workload';

/** An actor, a per-transaction request id, a client and a reason, as a typical call sets them. */
const PGBENCH_CONTEXT_VALUES = ["'bench-user'", 'NULL', ':aid', "'pgbench'", "'benchmark'", 'NULL'];

/** `$1`..`$6` of a helper statement replaced by the pgbench values. */
function withPgbenchValues(text: string): string {
  return text.replace(/\$(\d)/g, (_, n: string) => PGBENCH_CONTEXT_VALUES[Number(n) - 1]!);
}

type Variant = 'plain' | 'context' | 'contextSeparate';

/** One interleaved measurement: a figure, the server's commit mode and the transaction size. */
interface ContextSetting {
  readonly id: FigureId;
  /**
   * Commits wait for the WAL flush (`fsync` and `synchronous_commit` on), as every commit
   * on Aurora waits for its storage quorum; otherwise the servers' CPU-bound defaults.
   */
  readonly durable: boolean;
  /** Times the workload's three changes are made per transaction. */
  readonly blocks: number;
  readonly variants: readonly Variant[];
}

/**
 * The goal figure first (CPU-bound, 3 changes, with the separate-statement form beside
 * it), then what a user sees: durable commits, and a transaction of 12 changes.
 */
const SETTINGS: readonly ContextSetting[] = [
  {
    id: 'source_tps_ratio_context_vs_plain',
    durable: false,
    blocks: 1,
    variants: ['plain', 'context', 'contextSeparate'],
  },
  {
    id: 'source_tps_ratio_context_vs_plain_12_changes',
    durable: false,
    blocks: 4,
    variants: ['plain', 'context'],
  },
  {
    id: 'source_tps_ratio_context_vs_plain_durable',
    durable: true,
    blocks: 1,
    variants: ['plain', 'context'],
  },
  {
    id: 'source_tps_ratio_context_vs_plain_durable_12_changes',
    durable: true,
    blocks: 4,
    variants: ['plain', 'context'],
  },
];

/**
 * Case: what setting context costs the source. The workload of case 1 (3 changes per
 * transaction, or 4 times that), interleaved in short runs: round `i` runs the variants
 * in the `i`-th of their orders (so each variant runs in each position, before and after
 * each other, equally often), a CHECKPOINT before each run; each figure is the median
 * over rounds of the context/plain ratio within a round:
 * - `plain`: no context;
 * - `context`: what `withAuditContext` / `beginWithAuditContext` do, the context row in the
 *   same round trip as `BEGIN`, as a prepared INSERT. The helpers send `BEGIN; EXECUTE
 *   <prepared insert>(<literals>)` as one simple query; pgbench cannot mix a simple query
 *   into a prepared workload, so it sends BEGIN and the same prepared INSERT in one
 *   pipeline (one round trip, the insert planned once, as the helpers' EXECUTE is);
 * - `contextSeparate`: what `setAuditContext` does inside an open transaction, one more
 *   statement and round trip (`INSERT ... ON CONFLICT DO NOTHING`), for comparison.
 * Each setting of {@link SETTINGS} is measured this way, CPU-bound ones first, then the
 * server is switched to durable commits. Source only, no capture running: this is the
 * cost in the application's write path; the context row is then one more row per
 * transaction for DMS or the engine to carry.
 */
export const sourceContextCase: BenchCase = {
  title: 'source context: workload TPS with a context row per transaction vs without',
  figures: SETTINGS.map((setting) => setting.id),
  async run(ctx) {
    const figures: Figure[] = [];
    const settings: Record<string, unknown> = {};
    const details: Record<string, unknown>[] = [];
    for (const durable of [false, true]) {
      const server = await startBenchServer({ durable });
      try {
        const source = await prepareSource(server, ctx.profile.sourceAccounts);
        for (const setting of SETTINGS.filter((s) => s.durable === durable)) {
          const measured = await measure(ctx, source, setting);
          figures.push(measured.figure);
          settings[setting.id] = measured.detail;
        }
        details.push(await source.detail());
      } finally {
        await server.stop();
      }
    }
    return {
      figures: SETTINGS.map((setting) => figures.find((f) => f.id === setting.id)!),
      detail: {
        clients: 2,
        secondsPerCase: ctx.profile.contextSeconds,
        rounds: ctx.profile.contextRounds,
        settings,
        servers: details,
      },
    };
  },
};

/** A bench source with the workload tables and the context table, and the variants' statements. */
interface ContextSource {
  readonly url: string;
  readonly options: Record<Variant, { withBegin?: string; firstStatement?: string }>;
  /** Server, commit mode, statements and context rows written, for the JSON. */
  detail(): Promise<Record<string, unknown>>;
}

/**
 * The source of this case in the database at `url`: the workload tables, the context table
 * installed as the kit installs it, and the prepared context insert that pgbench sends with
 * `BEGIN` (what `withAuditContext` does). bench/tools/instructions.ts measures the same.
 */
export async function prepareContextWorkload(
  url: string,
  accounts: number,
): Promise<{ context: SourceContextConfig; withBegin: string }> {
  await createWorkloadTables(url, accounts);
  const config = parseConfig({
    tables: [{ table: 'accounts' }, { table: 'tellers' }, { table: 'movements' }],
    sourceContext: {},
  });
  const db = createKysely<unknown>(url, { max: 1 });
  await installSourceContext(db, config).finally(() => db.destroy());
  const context = config.sourceContext!;
  return { context, withBegin: withPgbenchValues(contextRowInsert(context.schema, context.table)) };
}

async function prepareSource(server: LocalPostgres, accounts: number): Promise<ContextSource> {
  const url = await server.createDatabase('bench_context');
  const { context, withBegin } = await prepareContextWorkload(url, accounts);
  const firstStatement = `${withPgbenchValues(
    contextInsertStatement(context.schema, context.table).text,
  )};\n`;
  return {
    url,
    options: { plain: {}, context: { withBegin }, contextSeparate: { firstStatement } },
    async detail() {
      const rows = await queryValue(
        url,
        `SELECT count(*) FROM ${quoteQualified(context.schema, context.table)}`,
      );
      return {
        sourceServer: await queryValue(url, 'SHOW server_version'),
        commitMode: await commitMode(url),
        statements: { withBegin, separate: firstStatement.trim() },
        contextRowsWritten: Number(rows),
      };
    },
  };
}

/** The interleaved rounds of one setting, and its figure. */
async function measure(
  ctx: BenchContext,
  source: ContextSource,
  setting: ContextSetting,
): Promise<{ figure: Figure; detail: Record<string, unknown> }> {
  const { profile } = ctx;
  const mode = await commitMode(source.url);
  const expected = setting.durable
    ? 'fsync=on, synchronous_commit=on'
    : 'fsync=off, synchronous_commit=off';
  if (mode !== expected)
    throw new Error(`${setting.id} needs ${expected}; the server runs ${mode}`);
  const tps: Partial<Record<Variant, number[]>> = {};
  const ratios: Partial<Record<Variant, number[]>> = {};
  const orders = permutations(setting.variants);
  for (let index = 0; index < profile.contextRounds; index++) {
    const order = orders[index % orders.length]!;
    const roundTps: Partial<Record<Variant, number>> = {};
    for (const which of order) {
      await withClient(source.url, (client) => client.query('CHECKPOINT'));
      const result = await runPgbench({
        url: source.url,
        accounts: profile.sourceAccounts,
        seconds: profile.contextSeconds,
        clients: 2,
        blocks: setting.blocks,
        ...source.options[which],
      });
      (tps[which] ??= []).push(result.tps);
      roundTps[which] = result.tps;
      ctx.log(`  ${setting.id} round ${index + 1} ${which}: ${result.tps.toFixed(0)} tps`);
    }
    for (const which of setting.variants)
      if (which !== 'plain') (ratios[which] ??= []).push(roundTps[which]! / roundTps.plain!);
  }
  const changes = CHANGES_PER_TRANSACTION * setting.blocks;
  const contextRatios = ratios.context!;
  const separate = ratios.contextSeparate;
  return {
    figure: figure(setting.id, round(median(contextRatios), 3), {
      detail: {
        perRoundRatios: roundSpread(spread(contextRatios), 3),
        method: `median over ${profile.contextRounds} rounds (each order of the variants equally often) of context/plain TPS in the same round; context = the row in the BEGIN round trip; ${changes} changes per transaction; ${mode}`,
        ...(separate && {
          separateStatementRatio: round(median(separate), 3),
          separateStatementPerRoundRatios: roundSpread(spread(separate), 3),
        }),
      },
    }),
    detail: {
      changesPerTransaction: changes,
      commitMode: mode,
      tps: Object.fromEntries(
        Object.entries(tps).map(([which, values]) => [which, roundSpread(spread(values), 4)]),
      ),
    },
  };
}

/** `fsync` and `synchronous_commit` as the server runs them (checked, not assumed). */
async function commitMode(url: string): Promise<string> {
  const fsync = await queryValue(url, 'SHOW fsync');
  const sync = await queryValue(url, 'SHOW synchronous_commit');
  return `fsync=${fsync}, synchronous_commit=${sync}`;
}

/** Every order of `items` (6 for 3), each item first equally often. */
function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, i) =>
    permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]),
  );
}
