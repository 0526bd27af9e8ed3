import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseConfig } from '../../src/config';
import { createEngine, silentLogger } from '../../src/engine';
import { ensurePublication } from '../../src/engine/source-setup';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { verifyIntegrity } from '../../src/trust/integrity';
import { verifyAuditTrail } from '../../src/verify';
import { dropSlot } from '../engine/helpers';
import { createTestDatabase, withClient } from '../support/databases';
import {
  compareHistory,
  describeDifference,
  installOracle,
  oracleMark,
  type ComparedTable,
} from '../support/oracle';
import { readColumnTypes } from '../support/oracle/install';

/**
 * The engine's multi-row statements (the capture triggers' set path) on a table release
 * 0.1.0 audited: its staging table made by that release, its triggers reinstalled in
 * place by the upgrade, its history recorded before. test/migrate/upgrade.test.ts covers
 * the upgrade itself with one DMS-shaped row; the oracle scenarios that upgrade from
 * 0.1.0 drop `public.items` from the config, so they never capture into that table.
 */

const config = parseConfig({ tables: [{ table: 'items' }] });
const RELEASE_0_1_0 = readFileSync(path.join(__dirname, 'fixtures', 'target-0.1.0.sql'), 'utf8');
/** The highest audit-log id in the fixture: the rows 0.1.0 recorded. */
const RELEASE_ROWS_UP_TO = '4';
const ITEMS: ComparedTable = { schema: 'public', table: 'items', keyColumns: ['id'] };

/**
 * Source changes, each its own transaction, every statement many rows. Keys 1 (deleted
 * under 0.1.0: its staging row flagged deleted) and 2 (live, written by 0.1.0) take part.
 */
const WORKLOAD = [
  // Many new keys, with key 1 back (the staging INSERT's ON CONFLICT over 0.1.0's row).
  `INSERT INTO items SELECT g, 'n' || g, g / 4.0 FROM generate_series(10, 59) AS g
   UNION ALL SELECT 1, 'first again', 1.50`,
  // Many rows, key 2 among them; every third row changes nothing (no version).
  `UPDATE items SET price = CASE WHEN id % 3 = 0 THEN price ELSE price + 1 END,
                    name = CASE WHEN id % 3 = 0 THEN name ELSE name || '!' END`,
  // Key changes, 0.1.0's key 2 among them.
  `UPDATE items SET id = id + 100 WHERE id BETWEEN 10 AND 19 OR id = 2`,
  `DELETE FROM items WHERE id BETWEEN 20 AND 29 OR id = 1`,
  // Keys moved back onto the keys freed above (staging rows flagged deleted), and
  // several changes of one key in one transaction.
  `BEGIN;
   UPDATE items SET id = id - 100 WHERE id BETWEEN 110 AND 119;
   INSERT INTO items SELECT g, 'again ' || g, g FROM generate_series(20, 29) AS g;
   UPDATE items SET price = price * 2 WHERE id BETWEEN 10 AND 29;
   DELETE FROM items WHERE id BETWEEN 25 AND 29;
   COMMIT`,
];

describe('the engine capturing into a table audited since release 0.1.0', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const cleanup of cleanups) await cleanup();
  });

  it('records each multi-row change once, as the oracle has it, and the chain verifies', async () => {
    const slotName = `test_${randomBytes(6).toString('hex')}`;
    const sourceUrl = await createTestDatabase('src');
    const targetUrl = await createTestDatabase('tgt');
    // The source as the 0.1.0 engine left it: the row its staging holds live, and the
    // slot (with the engine's publication) confirmed where its target position says.
    const slotLsn = await withClient(sourceUrl, async (source) => {
      await source.query(`CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(10,2));
                          INSERT INTO items VALUES (2, 'second', 2.25)`);
      await ensurePublication(source, slotName, config.tables);
      const { rows } = await source.query<{ lsn: string }>(
        `SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')`,
        [slotName],
      );
      cleanups.push(() => dropSlot(sourceUrl, slotName));
      await installOracle(source, [ITEMS]);
      return rows[0]!.lsn;
    });
    const releaseRows = await withClient(targetUrl, async (target) => {
      await target.query(RELEASE_0_1_0);
      await target.query(
        `UPDATE audit.cdc_engine_position SET slot_name = $1, last_commit_lsn = $2, last_end_lsn = $2`,
        [slotName, slotLsn],
      );
      return releaseAuditRows(target);
    });
    await migrateTarget({ config, sourceUrl, targetUrl });

    const loadMark = await withClient(sourceUrl, oracleMark);
    const types = await withClient(sourceUrl, (source) => readColumnTypes(source, ITEMS));
    for (const statement of WORKLOAD)
      await withClient(sourceUrl, (source) => source.query(statement));
    const run = await createEngine({
      config,
      sourceUrl,
      targetUrl,
      slotName,
      logger: silentLogger,
      lagIntervalMs: 0,
    }).runUntilIdle();
    expect(run.initialLoadRows).toEqual({}); // the slot's tables were loaded by 0.1.0

    const report = await withClient(sourceUrl, (source) =>
      withClient(targetUrl, (target) =>
        compareHistory({
          source,
          target,
          // No load now: the stream goes on from what 0.1.0 loaded and recorded.
          tables: [{ ...ITEMS, windows: [{ loadedAt: loadMark, rows: [], types }] }],
          loadMark,
          recordedAfter: RELEASE_ROWS_UP_TO,
        }),
      ),
    );
    expect(report.differences.map(describeDifference)).toEqual([]);

    await withClient(targetUrl, async (target) => {
      // Exactly one audit row per version the oracle expects, none twice.
      const { rows } = await target.query<{ rows: number; changes: number }>(
        `SELECT count(*)::int AS rows, count(DISTINCT (change_seq, operation, row_key))::int AS changes
           FROM audit.audit_log WHERE id > $1`,
        [RELEASE_ROWS_UP_TO],
      );
      expect(rows[0]).toEqual({ rows: report.versions, changes: report.versions });
      expect(report.versions).toBeGreaterThan(150);
      // The set path ran: statements of many rows sealed as blocks of many rows.
      const blocks = await target.query<{ rows: number }>(
        `SELECT max(cardinality(row_ids))::int AS rows FROM audit.audit_chain WHERE kind = 'capture'`,
      );
      expect(blocks.rows[0]!.rows).toBeGreaterThanOrEqual(50);
      // 0.1.0's history is as it recorded it.
      expect(await releaseAuditRows(target)).toEqual(releaseRows);
    });

    const integrity = await verifyIntegrity({ targetUrl, auditSchema: 'audit' });
    expect(integrity).toMatchObject({ ok: true, findingCount: 0 });
    expect(integrity.rows).toBe(Number(RELEASE_ROWS_UP_TO) + report.versions);
    const verified = await verifyAuditTrail({ config, sourceUrl, targetUrl });
    expect(verified.mismatches).toEqual([]);
    expect(verified.ok).toBe(true);
  });
});

/** The audit rows release 0.1.0 recorded, as text (commit times in UTC, whatever the session's zone). */
async function releaseAuditRows(target: {
  query: (sql: string, values: unknown[]) => Promise<{ rows: unknown[] }>;
}): Promise<unknown[]> {
  const { rows } = await target.query(
    `SELECT id, row_key::text, operation, to_char(commit_timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS commit_timestamp, change_seq, transaction_id,
            old_row::text, new_row::text, changed_columns
       FROM audit.audit_log WHERE id <= $1 ORDER BY id`,
    [RELEASE_ROWS_UP_TO],
  );
  return rows;
}
