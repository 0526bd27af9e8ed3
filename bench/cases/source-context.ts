import type { BenchCase } from '.';
import { parseConfig } from '../../src/config';
import { createKysely } from '../../src/postgres/connect';
import { quoteQualified } from '../../src/postgres/identifiers';
import { contextInsertStatement, installSourceContext } from '../../src/source-context';
import { contextRowInsert } from '../../src/source-context/begin-with-context';
import { figure } from '../lib/figures';
import { startServers, withClient } from '../lib/servers';
import { median, round, roundSpread, spread } from '../lib/stats';
import { createWorkloadTables, runPgbench } from '../lib/workload';

/** An actor, a per-transaction request id, a client and a reason, as a typical call sets them. */
const PGBENCH_CONTEXT_VALUES = ["'bench-user'", 'NULL', ':aid', "'pgbench'", "'benchmark'", 'NULL'];

/** `$1`..`$6` of a helper statement replaced by the pgbench values. */
function withPgbenchValues(text: string): string {
  return text.replace(/\$(\d)/g, (_, n: string) => PGBENCH_CONTEXT_VALUES[Number(n) - 1]!);
}

type Variant = 'plain' | 'context' | 'contextSeparate';

/**
 * Case: what setting context costs the source. The workload of case 1 (3 changes per
 * transaction), interleaved in short runs: round `i` runs the variants in the `i`-th of
 * their 6 orders (so each variant runs first, second and third, before and after each
 * other, equally often), a CHECKPOINT before each run; the figure is the median over
 * rounds of the context/plain ratio within a round:
 * - `plain`: no context;
 * - `context`: what `withAuditContext` / `beginWithAuditContext` do, the context row in the
 *   same round trip as `BEGIN`, as a prepared INSERT. The helpers send `BEGIN; EXECUTE
 *   <prepared insert>(<literals>)` as one simple query; pgbench cannot mix a simple query
 *   into a prepared workload, so it sends BEGIN and the same prepared INSERT in one
 *   pipeline (one round trip, the insert planned once, as the helpers' EXECUTE is);
 * - `contextSeparate`: what `setAuditContext` does inside an open transaction, one more
 *   statement and round trip (`INSERT ... ON CONFLICT DO NOTHING`), for comparison.
 * Source only, no capture running: this is the cost in the application's write path; the
 * context row is then one more row per transaction for DMS or the engine to carry.
 */
export const sourceContextCase: BenchCase = {
  title: 'source context: workload TPS with a context row per transaction vs without',
  figures: ['source_tps_ratio_context_vs_plain'],
  async run(ctx) {
    const { profile } = ctx;
    const servers = await startServers();
    try {
      const sourceUrl = await servers.source.createDatabase('bench_context');
      await createWorkloadTables(sourceUrl, profile.sourceAccounts);
      const config = parseConfig({
        tables: [{ table: 'accounts' }, { table: 'tellers' }, { table: 'movements' }],
        sourceContext: {},
      });
      const source = createKysely<unknown>(sourceUrl, { max: 1 });
      await installSourceContext(source, config).finally(() => source.destroy());
      const context = config.sourceContext!;
      const withBegin = withPgbenchValues(contextRowInsert(context.schema, context.table));
      const firstStatement = `${withPgbenchValues(
        contextInsertStatement(context.schema, context.table).text,
      )};\n`;
      const options: Record<Variant, { withBegin?: string; firstStatement?: string }> = {
        plain: {},
        context: { withBegin },
        contextSeparate: { firstStatement },
      };
      const variants = Object.keys(options) as Variant[];
      const tps: Record<Variant, number[]> = { plain: [], context: [], contextSeparate: [] };
      const ratios: number[] = [];
      const separateRatios: number[] = [];
      const orders = permutations(variants);
      for (let index = 0; index < profile.contextRounds; index++) {
        const order = orders[index % orders.length]!;
        const roundTps: Partial<Record<Variant, number>> = {};
        for (const which of order) {
          await withClient(sourceUrl, (client) => client.query('CHECKPOINT'));
          const result = await runPgbench({
            url: sourceUrl,
            accounts: profile.sourceAccounts,
            seconds: profile.contextSeconds,
            clients: 2,
            ...options[which],
          });
          tps[which].push(result.tps);
          roundTps[which] = result.tps;
          ctx.log(`  round ${index + 1} ${which}: ${result.tps.toFixed(0)} tps`);
        }
        ratios.push(roundTps.context! / roundTps.plain!);
        separateRatios.push(roundTps.contextSeparate! / roundTps.plain!);
      }
      const rows = await withClient(sourceUrl, (client) =>
        client.query<{ n: string }>(
          `SELECT count(*)::text AS n FROM ${quoteQualified(context.schema, context.table)}`,
        ),
      );
      return {
        figures: [
          figure('source_tps_ratio_context_vs_plain', round(median(ratios), 3), {
            detail: {
              perRoundRatios: roundSpread(spread(ratios), 3),
              method:
                'median over rounds (each order of the 3 variants equally often) of context/plain TPS in the same round; context = the row in the BEGIN round trip',
              separateStatementRatio: round(median(separateRatios), 3),
              separateStatementPerRoundRatios: roundSpread(spread(separateRatios), 3),
            },
          }),
        ],
        detail: {
          clients: 2,
          secondsPerCase: profile.contextSeconds,
          rounds: profile.contextRounds,
          tps: {
            plain: roundSpread(spread(tps.plain), 4),
            context: roundSpread(spread(tps.context), 4),
            contextSeparate: roundSpread(spread(tps.contextSeparate), 4),
          },
          contextRowsWritten: Number(rows.rows[0]?.n ?? 0),
          statements: { withBegin, separate: firstStatement.trim() },
          sourceServer: servers.sourceVersion,
        },
      };
    } finally {
      await servers.stop();
    }
  },
};

/** Every order of `items` (6 for 3), each item first equally often. */
function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, i) =>
    permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]),
  );
}
