import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { buildTableMappings } from '../../mappings';
import { parseConfig } from '../../src/config';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { verifyAuditTrail } from '../../src/verify/verify';
import { createTestDatabase, withClient } from '../support/databases';
import {
  applyLikeDms,
  decode,
  headerValues,
  mappedStaging,
  type DecodedChange,
} from '../support/test-decoding';

/**
 * #17 item 5 under AWS DMS, from a real test_decoding stream (DMS's plugin): it prints
 * stored generated columns in every INSERT and UPDATE, and the kit's mapping selects
 * every column, so DMS writes them into staging. Staging keeps a placeholder for each
 * (added, renamed and dropped by migrate with the source's), and history and verify
 * leave them out, as on the engine pipeline.
 */
describe('generated columns through DMS-shaped staging writes (real test_decoding stream)', () => {
  const slot = `h17gen_${randomBytes(4).toString('hex')}`;
  const config = parseConfig({ tables: [{ table: 'lines' }] });
  let sourceUrl: string;
  let targetUrl: string;
  let source: pg.Client;
  let virtual: boolean;

  beforeAll(async () => {
    sourceUrl = await createTestDatabase('gensrc');
    targetUrl = await createTestDatabase('gentgt');
    source = new pg.Client({ connectionString: sourceUrl });
    await source.connect();
    // PostgreSQL 18 adds VIRTUAL generated columns (no value in the row at all).
    virtual =
      Number((await source.query('SHOW server_version_num')).rows[0].server_version_num) >= 180000;
    await source.query(`
      CREATE TABLE lines (id int PRIMARY KEY, qty int, price numeric(10,2),
        total numeric GENERATED ALWAYS AS (qty * price) STORED
        ${virtual ? ', twice int GENERATED ALWAYS AS (qty * 2) VIRTUAL' : ''});
      INSERT INTO lines (id, qty, price) VALUES (1, 2, 1.50)`);
    // The test server runs with synchronous_commit off; SQL decoding reads flushed WAL only.
    await source.query('SET synchronous_commit = on');
    await source.query(`SELECT pg_create_logical_replication_slot($1, 'test_decoding')`, [slot]);
    await migrateTarget({ config, sourceUrl, targetUrl });
  });
  afterAll(async () => {
    await source?.query('SELECT pg_drop_replication_slot($1)', [slot]).catch(() => undefined);
    await source?.end();
  });

  const mapped = () => mappedStaging(buildTableMappings(config), 'public', 'lines')!;
  let counter = 0;
  /** Applies the slot's pending changes as DMS does; returns them as decoded. */
  const applyStream = async (): Promise<DecodedChange[]> => {
    const { changes, commitTimes } = await decode(source, slot);
    await withClient(targetUrl, async (target) => {
      for (const change of changes) {
        const commitTimestamp = commitTimes.get(change.xid)!;
        counter += 1;
        const headers = headerValues(mapped().headers, {
          operation: change.operation,
          commitTimestamp,
          changeSeq: `${commitTimestamp.replace(/\D/g, '').slice(0, 16).padEnd(16, '0')}${String(counter).padStart(19, '0')}`,
          xid: change.xid,
          lsn: change.lsn,
        });
        await applyLikeDms(
          target,
          mapped().staging,
          ['id'],
          change.operation,
          change.values,
          headers,
        );
      }
    });
    return changes;
  };
  /** A schema change in the documented order: the stream applied, then migrate. */
  const alter = async (ddl: string) => {
    await source.query(ddl);
    await applyStream();
    await migrateTarget({ config, sourceUrl, targetUrl });
  };

  it('records the history the engine records, and verify is clean', async () => {
    // Full load: DMS reads every column of the table, the generated ones too.
    await withClient(targetUrl, async (target) => {
      const { rows } = await source.query<Record<string, string | null>>(
        `SELECT id::text, qty::text, price::text, total::text FROM lines`,
      );
      for (const row of rows)
        await applyLikeDms(
          target,
          mapped().staging,
          ['id'],
          'INSERT',
          row,
          headerValues(mapped().headers, {
            operation: 'INSERT',
            commitTimestamp: '2026-12-03 00:00:00.000000',
            changeSeq: '',
            xid: '',
            lsn: '',
          }),
        );
    });
    await source.query(`INSERT INTO lines (id, qty, price) VALUES (2, 1, 9.99)`);
    await source.query(`UPDATE lines SET qty = 3 WHERE id = 1`);
    const first = await applyStream();
    // What DMS receives: the stored generated column's value in the INSERT and the UPDATE.
    expect(first.map((c) => [c.operation, c.values.total])).toEqual([
      ['INSERT', '9.99'],
      ['UPDATE', '4.50'],
    ]);

    await alter(
      `ALTER TABLE lines ADD COLUMN tax numeric GENERATED ALWAYS AS (price * 0.2) STORED`,
    );
    await source.query(`UPDATE lines SET price = 10 WHERE id = 2`);
    const second = await applyStream();
    expect(second.map((c) => c.values.tax)).toEqual(['2.000']);
    await alter(`ALTER TABLE lines RENAME COLUMN tax TO vat`);
    await source.query(`UPDATE lines SET qty = 4 WHERE id = 1`);
    expect((await applyStream()).map((c) => c.values.vat)).toEqual(['0.300']);
    await alter(`ALTER TABLE lines DROP COLUMN vat`);
    await source.query(`DELETE FROM lines WHERE id = 2`);
    await source.query(`INSERT INTO lines (id, qty, price) VALUES (3, 1, 1)`);
    await applyStream();

    const { rows } = await withClient(targetUrl, (target) =>
      target.query<{ operation: string; new_row: unknown }>(
        `SELECT operation, new_row FROM audit.audit_log ORDER BY id`,
      ),
    );
    expect(rows).toEqual([
      { operation: 'SNAPSHOT', new_row: { id: 1, qty: 2, price: 1.5 } },
      { operation: 'INSERT', new_row: { id: 2, qty: 1, price: 9.99 } },
      { operation: 'UPDATE', new_row: { id: 1, qty: 3, price: 1.5 } },
      { operation: 'UPDATE', new_row: { id: 2, qty: 1, price: 10 } },
      { operation: 'UPDATE', new_row: { id: 1, qty: 4, price: 1.5 } },
      { operation: 'DELETE', new_row: null },
      { operation: 'INSERT', new_row: { id: 3, qty: 1, price: 1 } },
    ]);
    // The placeholders hold what DMS wrote; migrate followed the rename and the drop.
    const { rows: staging } = await withClient(targetUrl, (target) =>
      target.query(`SELECT id, total FROM audit.lines_staging ORDER BY id`),
    );
    expect(staging).toEqual([
      { id: 1, total: '6.00' },
      { id: 2, total: '10.00' },
      { id: 3, total: '1.00' },
    ]);
    const report = await verifyAuditTrail({ config, sourceUrl, targetUrl });
    expect(report.mismatches).toEqual([]);
    expect(report.ok).toBe(true);
  }, 120_000);
});
