import type { BenchCase } from '.';
import { parseConfig } from '../../src/config';
import { createKysely } from '../../src/postgres/connect';
import { quoteQualified } from '../../src/postgres/identifiers';
import { contextInsertStatement, installSourceContext } from '../../src/source-context';
import { figure } from '../lib/figures';
import { startServers, withClient } from '../lib/servers';
import { median, round, roundSpread, spread } from '../lib/stats';
import { createWorkloadTables, runPgbench } from '../lib/workload';

/**
 * The application's context statement as pgbench runs it: the helpers' own INSERT
 * (`contextInsertStatement`), with an actor, a per-transaction request id, a client and a
 * reason, as a typical `withAuditContext` call sets them.
 */
function pgbenchContextStatement(schema: string, table: string): string {
  const values = ["'bench-user'", 'NULL', ':aid', "'pgbench'", "'benchmark'", 'NULL'];
  const { text } = contextInsertStatement(schema, table);
  return `${text.replace(/\$(\d)/g, (_, n: string) => values[Number(n) - 1]!)};\n`;
}

/**
 * Case: what setting context costs the source. The workload of case 1 (3 changes per
 * transaction), plain and with the context INSERT first in every transaction, interleaved
 * (the order alternates each round); a CHECKPOINT before each. Source only, no capture
 * running: this is the cost in the application's write path; the context row is then one
 * more row per transaction for DMS or the engine to carry.
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
      const firstStatement = pgbenchContextStatement(context.schema, context.table);
      const tps = { plain: [] as number[], context: [] as number[] };
      const ratios: number[] = [];
      for (let index = 0; index < profile.sourceRounds; index++) {
        const order =
          index % 2 === 0 ? (['plain', 'context'] as const) : (['context', 'plain'] as const);
        const roundTps: Partial<Record<'plain' | 'context', number>> = {};
        for (const which of order) {
          await withClient(sourceUrl, (client) => client.query('CHECKPOINT'));
          const result = await runPgbench({
            url: sourceUrl,
            accounts: profile.sourceAccounts,
            seconds: profile.sourceSeconds,
            clients: 2,
            ...(which === 'context' ? { firstStatement } : {}),
          });
          tps[which].push(result.tps);
          roundTps[which] = result.tps;
          ctx.log(`  round ${index + 1} ${which}: ${result.tps.toFixed(0)} tps`);
        }
        ratios.push(roundTps.context! / roundTps.plain!);
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
              method: 'median over rounds of context/plain TPS in the same round',
            },
          }),
        ],
        detail: {
          clients: 2,
          secondsPerCase: profile.sourceSeconds,
          rounds: profile.sourceRounds,
          tps: {
            plain: roundSpread(spread(tps.plain), 4),
            context: roundSpread(spread(tps.context), 4),
          },
          contextRowsWritten: Number(rows.rows[0]?.n ?? 0),
          statement: firstStatement.trim(),
          sourceServer: servers.sourceVersion,
        },
      };
    } finally {
      await servers.stop();
    }
  },
};
