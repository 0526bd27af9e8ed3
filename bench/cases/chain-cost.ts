import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { BenchCase } from '.';
import { quoteQualified } from '../../src/postgres/identifiers';
import { stagingTableName } from '../../src/staging/header-columns';
import { verifyIntegrity } from '../../src/trust/integrity';
import { loadEngine, prepareItemsDatabases } from '../lib/engine-capture';
import { figure } from '../lib/figures';
import { startServers, withClient } from '../lib/servers';
import { median, round, roundSpread, spread } from '../lib/stats';
import { countAuditRows, dmsScript, runDmsPgbench, ROWS_PER_TRANSACTION } from './dms-apply';
import { backlogSql } from './engine';

/** The chain's steps in the capture path (triggers/trust.sql). */
const CHAIN_FUNCTIONS = ['lock_chain()', 'seal_block(text, integer)'] as const;

/** The deferred trigger on the audit log that seals each transaction at commit. */
const SEAL_TRIGGER = 'seal_at_commit';

/**
 * Switches the hash chain off and on in the capture path for the benchmark only: "off"
 * replaces `lock_chain` and `seal_block` by functions that do nothing and disables the
 * seal-at-commit trigger (superuser on the bench server), "on" restores the kit's
 * definitions and trigger and seals whatever the "off" run captured (in blocks of at most
 * 10,000 rows, as capture does) outside the timed part, so the next "on" run hashes only
 * its own rows and the chain still verifies at the end.
 */
async function chainSwitch(targetUrl: string, auditSchema: string) {
  const fn = (signature: string) => `${quoteQualified(auditSchema, signature.split('(')[0]!)}`;
  const originals = await withClient(targetUrl, async (client) => {
    const definitions: string[] = [];
    for (const signature of CHAIN_FUNCTIONS) {
      const { rows } = await client.query<{ def: string }>(
        `SELECT pg_get_functiondef($1::regprocedure) AS def`,
        [`${fn(signature)}(${signature.split('(')[1]!}`],
      );
      definitions.push(rows[0]!.def);
    }
    return definitions;
  });
  return async (on: boolean) =>
    withClient(targetUrl, async (client) => {
      const auditLog = quoteQualified(auditSchema, 'audit_log');
      if (on) {
        for (const definition of originals) await client.query(definition);
        await client.query(`ALTER TABLE ${auditLog} ENABLE ALWAYS TRIGGER ${SEAL_TRIGGER}`);
        await client.query(`BEGIN; SELECT ${fn('lock_chain')}();
          SELECT ${fn('seal_blocks')}('capture'); COMMIT`);
      } else {
        await client.query(`ALTER TABLE ${auditLog} DISABLE TRIGGER ${SEAL_TRIGGER}`);
        await client.query(`CREATE OR REPLACE FUNCTION ${fn('lock_chain')}() RETURNS void
            LANGUAGE plpgsql AS $$ BEGIN END $$;
          CREATE OR REPLACE FUNCTION ${fn('seal_block')}(block_kind text, max_rows integer) RETURNS integer
            LANGUAGE plpgsql AS $$ BEGIN RETURN 0; END $$`);
      }
    });
}

/**
 * Chain cost (#9): the apply rate with the hash chain on, over the rate with it off, audit
 * triggers on in both, interleaved in every round (the order flips each round); the
 * figures are medians of per-round ratios. DMS-shaped (pgbench, one row per statement:
 * one chain block per statement, the chain's worst case) and the engine (multi-row
 * statements). The chain must verify clean afterwards.
 */
export const chainCostCase: BenchCase = {
  title: 'hash chain cost: apply rate with the chain on vs off (DMS-shaped and engine)',
  figures: ['chain_dms_apply_ratio', 'chain_engine_apply_ratio'],
  async run(ctx) {
    const { profile } = ctx;
    const { engine, missing: why } = await loadEngine();
    if (!engine) throw new Error(why ?? 'engine missing');
    const servers = await startServers();
    try {
      const { sourceUrl, targetUrl, config } = await prepareItemsDatabases(servers, 'chain');
      const auditSchema = config.auditSchema;
      const make = () =>
        engine.createEngine({
          config,
          sourceUrl,
          targetUrl,
          logger: engine.silentLogger,
          lagIntervalMs: 0,
        });
      await make().runUntilIdle();
      const setChain = await chainSwitch(targetUrl, auditSchema);
      const dir = await mkdtemp(path.join(os.tmpdir(), 'audit-trail-bench-chain-'));
      const script = path.join(dir, 'dms.sql');
      await writeFile(script, dmsScript(quoteQualified(auditSchema, stagingTableName('items'))));
      const auditBefore = await countAuditRows(targetUrl, auditSchema);
      let auditRowsExpected = 0;
      let base = 1;
      let nextId = 1_500_000_000; // clear of the DMS-shaped keys of the first run (base 1)
      const engineRows = Math.max(1, Math.floor(profile.triggerChanges / 2));
      const rates = {
        dms: { on: [] as number[], off: [] as number[] },
        engine: { on: [] as number[], off: [] as number[] },
      };
      const ratios = { dms: [] as number[], engine: [] as number[] };
      for (let roundIndex = 0; roundIndex < profile.triggerRounds; roundIndex++) {
        const order = roundIndex % 2 === 0 ? [true, false] : [false, true];
        const roundRates = {
          dms: {} as Record<string, number>,
          engine: {} as Record<string, number>,
        };
        for (const on of order) {
          const label = on ? 'on' : 'off';
          await setChain(on);
          await withClient(targetUrl, (client) => client.query('CHECKPOINT'));
          const result = await runDmsPgbench(targetUrl, script, base, profile);
          base += 100_000_000_000;
          auditRowsExpected += result.transactions * ROWS_PER_TRANSACTION * 2;
          roundRates.dms[label] = result.tps * ROWS_PER_TRANSACTION * 2;
          await withClient(sourceUrl, (client) =>
            client.query(backlogSql(nextId, engineRows, 100)),
          );
          nextId += engineRows;
          const started = process.hrtime.bigint();
          const applied = await make().runUntilIdle();
          roundRates.engine[label] =
            applied.changes / (Number(process.hrtime.bigint() - started) / 1e9);
          auditRowsExpected += applied.changes;
          for (const kind of ['dms', 'engine'] as const)
            rates[kind][label].push(roundRates[kind][label]!);
          ctx.log(
            `  round ${roundIndex + 1} chain ${label}: DMS-shaped ${roundRates.dms[label]!.toFixed(0)}, engine ${roundRates.engine[label]!.toFixed(0)} changes/s`,
          );
        }
        for (const kind of ['dms', 'engine'] as const)
          ratios[kind].push(roundRates[kind].on! / roundRates[kind].off!);
      }
      await setChain(true);
      const auditRows = (await countAuditRows(targetUrl, auditSchema)) - auditBefore;
      if (auditRows !== auditRowsExpected)
        throw new Error(`expected ${auditRowsExpected} audit rows, found ${auditRows}`);
      const integrity = await verifyIntegrity({ targetUrl, auditSchema });
      if (!integrity.ok)
        throw new Error(
          `the chain does not verify after the run: ${JSON.stringify(integrity.findings[0])}`,
        );
      const detailOf = (kind: 'dms' | 'engine') => ({
        perRoundRatios: roundSpread(spread(ratios[kind]), 3),
        chainOnChangesPerS: roundSpread(spread(rates[kind].on)),
        chainOffChangesPerS: roundSpread(spread(rates[kind].off)),
      });
      return {
        figures: [
          figure('chain_dms_apply_ratio', round(median(ratios.dms), 3), {
            note: `${profile.sourceSeconds} s of DMS-shaped pgbench per run, ${ROWS_PER_TRANSACTION * 2} one-row statements per transaction`,
            detail: detailOf('dms'),
          }),
          figure('chain_engine_apply_ratio', round(median(ratios.engine), 3), {
            note: `engine apply of ${engineRows.toLocaleString('en-US')} changes (100-row transactions) per run`,
            detail: detailOf('engine'),
          }),
        ],
        detail: {
          dms: detailOf('dms'),
          engine: detailOf('engine'),
          auditRowsChecked: auditRows,
          chainVerified: { blocks: integrity.blocks, rows: integrity.rows },
        },
      };
    } finally {
      await servers.stop();
    }
  },
};
