import type { BenchCase } from '.';
import { quoteQualified } from '../../src/postgres/identifiers';
import { stagingTableName } from '../../src/staging/header-columns';
import { loadEngine, prepareItemsDatabases } from '../lib/engine-capture';
import { figure, missing } from '../lib/figures';
import { startServers, withClient } from '../lib/servers';
import { stagingTriggerSwitch } from '../lib/staging-triggers';
import { ITEMS_TABLE, type StagedTable } from '../lib/staged-tables';
import { median, round, roundSpread, spread } from '../lib/stats';
import { backlogSql } from './engine';

const TRANSACTION_SIZE = 100;

/** Rows in each of the engine-shaped statements of {@link engineShapedScript}. */
export const ROWS_PER_STATEMENT = 100;

/**
 * One target transaction shaped as the engine applies case 3's backlog (for
 * `bench/tools/instructions.ts --case engine`): an INSERT of `rows` (default
 * `ROWS_PER_STATEMENT`; `--rows`) new rows of `table` (default `items`) into staging in
 * one statement, with `ON CONFLICT ... DO UPDATE` as the engine sends it (so the staging
 * UPDATE triggers fire too, with no rows), then one UPDATE of those rows joined to a
 * set, as the engine's `UPDATE ... FROM unnest(...)`. Every row carries its change
 * headers, the change sequence growing per key. pgbench keeps `:n` per client across
 * transactions: `:base` separates runs.
 */
export function engineShapedScript(
  staging: string,
  rows = ROWS_PER_STATEMENT,
  table: StagedTable = ITEMS_TABLE,
): string {
  const last = rows - 1;
  const seq = (offset: number, key: string) =>
    `'2026120200000000' || lpad((${key} * 2 + ${offset})::text, 19, '0')`;
  const insert = {
    ...table.insertValues('g'),
    ar_h_operation: `'INSERT'`,
    ar_h_commit_timestamp: 'now()::timestamp',
    ar_h_change_seq: seq(0, 'g'),
    ar_h_transaction_id: ':n',
    ar_h_stream_position: `'0/16B3748'`,
    ar_h_indicator: `'I'`,
  };
  const columns = Object.keys(insert);
  const update = {
    ...table.updateValues,
    ar_h_operation: `'UPDATE'`,
    ar_h_commit_timestamp: 'now()::timestamp',
    ar_h_change_seq: seq(1, 's.id'),
    ar_h_transaction_id: ':n',
    ar_h_stream_position: `'0/16B3748'`,
    ar_h_indicator: `'U'`,
  };
  return [
    '\\set n :n + 1',
    `\\set first :base + :n * ${rows}`,
    'BEGIN;',
    `INSERT INTO ${staging} (${columns.join(', ')}) SELECT ${Object.values(insert).join(', ')} ` +
      `FROM generate_series(:first::bigint, :first::bigint + ${last}) AS g ` +
      `ON CONFLICT (id) DO UPDATE SET ${columns.map((c) => `${c} = EXCLUDED.${c}`).join(', ')};`,
    `UPDATE ${staging} AS s SET ${Object.entries(update)
      .map(([column, value]) => `${column} = ${value}`)
      .join(
        ', ',
      )} FROM generate_series(:first::bigint, :first::bigint + ${last}) AS g WHERE s.id = g;`,
    'COMMIT;',
    '',
  ].join('\n');
}

/**
 * Case 3: the engine applying the same kind of backlog into staging with the audit
 * trigger enabled and disabled, alternating in every round (the order flips each
 * round); the figure is the median of the per-round rate ratios with/without.
 */
export const targetTriggerCase: BenchCase = {
  title: 'target trigger cost: staging apply rate with the audit trigger vs without',
  figures: ['target_trigger_apply_ratio'],
  async run(ctx) {
    const { engine, missing: why } = await loadEngine();
    if (!engine) {
      return {
        figures: [missing('target_trigger_apply_ratio', why ?? 'engine missing')],
        detail: { skipped: why },
      };
    }
    const servers = await startServers();
    try {
      const { sourceUrl, targetUrl, config } = await prepareItemsDatabases(servers, 'trigger');
      const make = () =>
        engine.createEngine({
          config,
          sourceUrl,
          targetUrl,
          logger: engine.silentLogger,
          lagIntervalMs: 0,
        });
      await make().runUntilIdle();
      const staging = quoteQualified(config.auditSchema, stagingTableName('items'));
      const { triggers, setEnabled: setTrigger } = await stagingTriggerSwitch(targetUrl, staging);
      const rows = Math.max(1, Math.floor(ctx.profile.triggerChanges / 2));
      let nextId = 1;
      const rates = { with: [] as number[], without: [] as number[] };
      const ratios: number[] = [];
      for (let roundIndex = 0; roundIndex < ctx.profile.triggerRounds; roundIndex++) {
        const order = roundIndex % 2 === 0 ? [true, false] : [false, true];
        const roundRates: Record<string, number> = {};
        for (const enabled of order) {
          await withClient(sourceUrl, (client) =>
            client.query(backlogSql(nextId, rows, TRANSACTION_SIZE)),
          );
          nextId += rows;
          await setTrigger(enabled);
          const started = process.hrtime.bigint();
          const result = await make().runUntilIdle();
          const rate = result.changes / (Number(process.hrtime.bigint() - started) / 1e9);
          const label = enabled ? 'with' : 'without';
          rates[label].push(rate);
          roundRates[label] = rate;
          ctx.log(`  round ${roundIndex + 1} ${label} trigger: ${rate.toFixed(0)} changes/s`);
        }
        ratios.push(roundRates.with! / roundRates.without!);
      }
      await setTrigger(true);
      return {
        figures: [
          figure('target_trigger_apply_ratio', round(median(ratios), 3), {
            note: `engine apply of ${ctx.profile.triggerChanges.toLocaleString('en-US')} changes (${TRANSACTION_SIZE}-row transactions) per run`,
            detail: {
              perRoundRatios: roundSpread(spread(ratios), 3),
              withTriggerChangesPerS: roundSpread(spread(rates.with)),
              withoutTriggerChangesPerS: roundSpread(spread(rates.without)),
            },
          }),
        ],
        detail: {
          auditTriggers: triggers,
          perRoundRatios: roundSpread(spread(ratios), 3),
          withTriggerChangesPerS: roundSpread(spread(rates.with)),
          withoutTriggerChangesPerS: roundSpread(spread(rates.without)),
        },
      };
    } finally {
      await servers.stop();
    }
  },
};
