import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { BenchCase } from '.';
import { quoteQualified } from '../../src/postgres/identifiers';
import { stagingTableName } from '../../src/staging/header-columns';
import { prepareItemsDatabases } from '../lib/engine-capture';
import { figure } from '../lib/figures';
import { PG_BIN, run } from '../lib/processes';
import type { Profile } from '../lib/profile';
import { startServers, withClient } from '../lib/servers';
import { ITEMS_TABLE, type StagedTable } from '../lib/staged-tables';
import { stagingTriggerSwitch } from '../lib/staging-triggers';
import { median, round, roundSpread, spread } from '../lib/stats';

/** Rows one target transaction inserts and then updates (2 x this many statements). */
export const ROWS_PER_TRANSACTION = 5;

/**
 * The statements DMS sends for one applied source transaction, one row per statement:
 * `ROWS_PER_TRANSACTION` INSERTs of new rows of `table` (default `items`) into staging, then an UPDATE by
 * primary key of each, every statement with its change headers (operation, commit time,
 * a change sequence growing per key, transaction id, stream position, indicator).
 * pgbench keeps `:n` per client across transactions, so keys and change sequences never
 * repeat: `:base` separates rounds and `:client_id` the two clients.
 */
export function dmsScript(staging: string, table: StagedTable = ITEMS_TABLE): string {
  const lines = [
    '\\set n :n + 1',
    `\\set first :base + :client_id * 1000000000 + :n * ${ROWS_PER_TRANSACTION}`,
    'BEGIN;',
  ];
  const headers = (operation: 'INSERT' | 'UPDATE', indicator: 'I' | 'U', offset: number) => ({
    ar_h_operation: `'${operation}'`,
    ar_h_commit_timestamp: 'now()::timestamp',
    // 16-digit time + 19-digit counter, unique and growing per key: (first + k, offset).
    ar_h_change_seq: `'2026120200000000' || lpad((:first::bigint * 2 + ${offset})::text, 19, '0')`,
    ar_h_transaction_id: ':n',
    ar_h_stream_position: `'0/16B3748'`,
    ar_h_indicator: `'${indicator}'`,
  });
  for (let k = 0; k < ROWS_PER_TRANSACTION; k++) {
    const values = {
      ...table.insertValues(`(:first::bigint + ${k})`),
      ...headers('INSERT', 'I', 2 * k),
    };
    lines.push(
      `INSERT INTO ${staging} (${Object.keys(values).join(', ')}) VALUES (${Object.values(values).join(', ')});`,
    );
  }
  for (let k = 0; k < ROWS_PER_TRANSACTION; k++) {
    const set = {
      ...table.updateValues,
      ...headers('UPDATE', 'U', 2 * k + 1),
    };
    lines.push(
      `UPDATE ${staging} SET ${Object.entries(set)
        .map(([column, value]) => `${column} = ${value}`)
        .join(', ')} WHERE id = :first::bigint + ${k};`,
    );
  }
  lines.push('COMMIT;');
  return `${lines.join('\n')}\n`;
}

/**
 * Case 3b (`dms_apply_ratio`): the production path in AWS. DMS applies every change as
 * its own single-row statement (INSERT, UPDATE by key), so each statement fires the
 * staging triggers with a one-row transition table. pgbench (C, prepared statements, 2
 * clients, as DMS's apply threads) sends DMS-shaped statements straight to the staging
 * table on the target with the audit triggers enabled, then disabled, interleaved (the
 * order flips each round); the figure is the median per-round ratio of changes/s.
 */
export const dmsApplyCase: BenchCase = {
  title: 'DMS-shaped apply: one row per statement into staging, audit triggers on vs off',
  figures: ['dms_apply_ratio'],
  async run(ctx) {
    const { profile } = ctx;
    const servers = await startServers();
    try {
      const { targetUrl, config } = await prepareItemsDatabases(servers, 'dms');
      const staging = quoteQualified(config.auditSchema, stagingTableName('items'));
      const { triggers, setEnabled: setTriggers } = await stagingTriggerSwitch(targetUrl, staging);
      const dir = await mkdtemp(path.join(os.tmpdir(), 'audit-trail-bench-dms-'));
      const script = path.join(dir, 'dms.sql');
      await writeFile(script, dmsScript(staging));
      const rates = { with: [] as number[], without: [] as number[] };
      const ratios: number[] = [];
      let base = 1;
      let auditRowsExpected = 0;
      const auditBefore = await countAuditRows(targetUrl, config.auditSchema);
      for (let roundIndex = 0; roundIndex < profile.triggerRounds; roundIndex++) {
        const order = roundIndex % 2 === 0 ? [true, false] : [false, true];
        const roundRates: Record<string, number> = {};
        for (const enabled of order) {
          await setTriggers(enabled);
          await withClient(targetUrl, (client) => client.query('CHECKPOINT'));
          const result = await runDmsPgbench(targetUrl, script, base, profile);
          base += 100_000_000_000;
          const rate = result.tps * ROWS_PER_TRANSACTION * 2;
          if (enabled) auditRowsExpected += result.transactions * ROWS_PER_TRANSACTION * 2;
          const label = enabled ? 'with' : 'without';
          rates[label].push(rate);
          roundRates[label] = rate;
          ctx.log(`  round ${roundIndex + 1} ${label} triggers: ${rate.toFixed(0)} changes/s`);
        }
        ratios.push(roundRates.with! / roundRates.without!);
      }
      await setTriggers(true);
      // The figure counts only if every change applied with the triggers left one audit row.
      const auditRows = (await countAuditRows(targetUrl, config.auditSchema)) - auditBefore;
      if (auditRows !== auditRowsExpected) {
        throw new Error(
          `expected ${auditRowsExpected} audit rows from the DMS-shaped apply, found ${auditRows}`,
        );
      }
      const detail = {
        perRoundRatios: roundSpread(spread(ratios), 3),
        withTriggersChangesPerS: roundSpread(spread(rates.with)),
        withoutTriggersChangesPerS: roundSpread(spread(rates.without)),
        statementsPerTransaction: ROWS_PER_TRANSACTION * 2,
        auditRowsChecked: auditRows,
        method:
          'pgbench -M prepared -c 2 on the staging table: per transaction 5 one-row INSERTs then 5 one-row UPDATEs by key, with headers',
      };
      return {
        figures: [
          figure('dms_apply_ratio', round(median(ratios), 3), {
            note: `${profile.sourceSeconds} s per case per round, ${ROWS_PER_TRANSACTION * 2} one-row statements per transaction`,
            detail,
          }),
        ],
        detail: { auditTriggers: triggers, ...detail },
      };
    } finally {
      await servers.stop();
    }
  },
};

export async function runDmsPgbench(url: string, script: string, base: number, profile: Profile) {
  const { stdout } = await run(path.join(PG_BIN, 'pgbench'), [
    '-n',
    '-M',
    'prepared',
    '-c',
    '2',
    '-j',
    '2',
    '-T',
    String(profile.sourceSeconds),
    '-D',
    'n=0',
    '-D',
    `base=${base}`,
    '-f',
    script,
    url,
  ]);
  const tps = /tps = ([\d.]+)/.exec(stdout);
  const count = /number of transactions actually processed: (\d+)/.exec(stdout);
  const failed = /number of failed transactions: (\d+)/.exec(stdout);
  if (!tps || !count) throw new Error(`could not read pgbench output:\n${stdout}`);
  if (failed && Number(failed[1]) > 0) throw new Error(`pgbench transactions failed:\n${stdout}`);
  return { tps: Number(tps[1]), transactions: Number(count[1]) };
}

export async function countAuditRows(url: string, auditSchema: string): Promise<number> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM ${quoteQualified(auditSchema, 'audit_log')}`,
    );
    return Number(rows[0]!.n);
  });
}
