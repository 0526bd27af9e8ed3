import pg from 'pg';
import { withClient } from '../support/databases';
import { cdc, DmsApplier } from '../support/dms-apply';
import { installWithHistory } from './support';

/**
 * Scans of the catalogs named by this transaction so far: sequential ones only, or
 * sequential and by index (`'all'`).
 */
async function catalogScans(
  client: pg.Client,
  catalogs: readonly string[],
  kinds: 'seq' | 'all',
): Promise<Record<string, number>> {
  const scans = kinds === 'seq' ? 'seq_scan' : 'coalesce(seq_scan, 0) + coalesce(idx_scan, 0)';
  const { rows } = await client.query<{ relname: string; n: string }>(
    `SELECT relname, (${scans})::text AS n FROM pg_catalog.pg_stat_xact_sys_tables
      WHERE schemaname = 'pg_catalog' AND relname = ANY($1) ORDER BY relname`,
    [catalogs],
  );
  return Object.fromEntries(rows.map((row) => [row.relname, Number(row.n)]));
}

/** Scans of pg_class (sequential and by index), by this transaction so far. */
async function pgClassScans(client: pg.Client): Promise<number> {
  return (await catalogScans(client, ['pg_class'], 'all')).pg_class!;
}

/**
 * Opens a transaction on a fresh install and applies eight one-row INSERTs and
 * UPDATEs from key `first` on at `at`: past plpgsql's first five executions, after
 * which a plan may be kept. `work` runs inside that transaction.
 */
async function afterWarmOneRowPath(
  first: number,
  at: string,
  work: (client: pg.Client, dms: DmsApplier) => Promise<void>,
): Promise<void> {
  const install = await installWithHistory();
  const client = new pg.Client({ connectionString: install.targetUrl });
  await client.connect();
  try {
    const dms = new DmsApplier(client, 'audit', 'items', ['id']);
    await client.query('BEGIN');
    for (let n = 0; n < 8; n += 1) {
      const id = String(first + n);
      await dms.insert({ id, name: 'new' }, cdc('INSERT', at, first + 2 * n));
      await dms.update({ id }, { name: 'newer' }, cdc('UPDATE', at, first + 1 + 2 * n));
    }
    await work(client, dms);
  } finally {
    await client.end();
  }
}

/**
 * DMS applies one row per statement, so the caller check of the capture functions
 * (assert_capture_call) runs once per applied change: it must reach the catalogs by
 * index. capture_update runs with enable_nestloop off, and a check planned under it (a
 * custom plan was made on every call) joined by hash over all of pg_type and pg_proc on
 * every one-row UPDATE. No timing here (that is `npm run bench`, case 3b): the scan
 * counts say which plan ran.
 */
describe('the capture caller check on the one-row path', () => {
  it('reads pg_type and pg_proc by index on every one-row INSERT and UPDATE', async () => {
    await afterWarmOneRowPath(100, '2026-11-23 10:00:00', async (client, dms) => {
      const before = await catalogScans(client, ['pg_proc', 'pg_type'], 'seq');
      await dms.insert({ id: '200', name: 'x' }, cdc('INSERT', '2026-11-23 10:00:02', 200));
      await dms.update({ id: '200' }, { name: 'y' }, cdc('UPDATE', '2026-11-23 10:00:03', 201));
      await dms.update({ id: '200' }, { name: 'z' }, cdc('UPDATE', '2026-11-23 10:00:04', 202));
      const after = await catalogScans(client, ['pg_proc', 'pg_type'], 'seq');
      expect(after).toEqual(before);
      const { rows } = await client.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM audit.audit_log WHERE row_key = '{"id": 200}'`,
      );
      expect(rows[0]!.n).toBe('3');
      await client.query('COMMIT');
    });
  });

  /**
   * Each one-row statement runs the check, and a catalog lookup costs an index scan. The
   * staging columns' types come from the bootstrap catalog and the audit tables' triggers
   * run the kit's own functions: neither needs a pg_type or pg_proc lookup to be judged
   * (a column of any other type, a trigger on any other function still gets one, below and
   * in attacks.test.ts).
   */
  it('judges built-in column types and the kit trigger functions without a pg_type or pg_proc lookup', async () => {
    await afterWarmOneRowPath(600, '2026-11-23 12:00:00', async (client, dms) => {
      const before = await catalogScans(client, ['pg_proc', 'pg_type'], 'all');
      await dms.insert({ id: '700', name: 'x' }, cdc('INSERT', '2026-11-23 12:00:01', 700));
      await dms.update({ id: '700' }, { name: 'y' }, cdc('UPDATE', '2026-11-23 12:00:02', 701));
      const after = await catalogScans(client, ['pg_proc', 'pg_type'], 'all');
      expect(after).toEqual(before);
      await client.query('COMMIT');
    });
  });

  it('holds the shortcut to its premise: every type below OID 12000 is in pg_catalog', async () => {
    const install = await installWithHistory();
    const outside = await withClient(install.targetUrl, async (client) => {
      const { rows } = await client.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM pg_catalog.pg_type
          WHERE oid < 12000 AND typnamespace <> 'pg_catalog'::regnamespace`,
      );
      return Number(rows[0]!.n);
    });
    expect(outside).toBe(0);
  });

  it('still refuses a staging column of a type made by initdb outside pg_catalog', async () => {
    const install = await installWithHistory();
    const client = new pg.Client({ connectionString: install.targetUrl });
    await client.connect();
    try {
      // information_schema's domains get OIDs above 12000 at initdb: past the shortcut.
      await client.query(
        'ALTER TABLE audit.items_staging ADD COLUMN extra information_schema.sql_identifier',
      );
      const dms = new DmsApplier(client, 'audit', 'items', ['id']);
      await expect(
        dms.insert({ id: '800', name: 'x' }, cdc('INSERT', '2026-11-23 12:00:03', 800)),
      ).rejects.toThrow(
        /audit capture refused: .*items_staging has a column of a type outside pg_catalog/,
      );
    } finally {
      await client.end();
    }
  });

  it('finds foreign triggers on the audit tables in one query, inlined into both callers', async () => {
    const install = await installWithHistory();
    await withClient(install.targetUrl, async (client) => {
      // As the capture role, which runs both callers (a function is inlined only for a
      // role that may execute it), under their search_path.
      await client.query(`BEGIN; SET LOCAL ROLE audit_capture;
        SET LOCAL search_path = pg_catalog, pg_temp`);
      const { rows: plan } = await client.query<{ 'QUERY PLAN': string }>(
        `EXPLAIN (COSTS OFF) SELECT f.description FROM audit.foreign_audit_trigger() AS f LIMIT 1`,
      );
      const text = plan.map((row) => row['QUERY PLAN']).join('\n');
      expect(text).not.toMatch(/Function Scan/);
      expect(text).toMatch(/Index Scan (using|on) pg_trigger_tgrelid_tgname_index/);
      await client.query('ROLLBACK');
      const { rows } = await client.query<{ name: string; body: string }>(
        `SELECT proname AS name, prosrc AS body FROM pg_catalog.pg_proc
          WHERE pronamespace = 'audit'::regnamespace AND proname IN ('assert_capture_call', 'seal_at_commit')
          ORDER BY 1`,
      );
      expect(rows.map((row) => row.name)).toEqual(['assert_capture_call', 'seal_at_commit']);
      for (const { body } of rows) {
        expect(body).toMatch(/"audit"\.foreign_audit_trigger\(\) AS f/);
        expect(body).not.toContain('pg_trigger');
      }
    });
  });

  /**
   * seal_at_commit is queued for every audit row of a one-row statement and fires once per
   * row at commit (the first firing seals them all). Each firing first checks that it runs
   * as the audit log's trigger; that check must not cost a catalog scan per row, so the
   * scans a transaction's sealing makes do not grow with its rows. SET CONSTRAINTS ALL
   * IMMEDIATE fires the queued seals inside the transaction, where its scan counts are read.
   */
  it('seals a transaction of one-row statements without a catalog scan per audit row', async () => {
    const install = await installWithHistory();
    const client = new pg.Client({ connectionString: install.targetUrl });
    await client.connect();
    try {
      const dms = new DmsApplier(client, 'audit', 'items', ['id']);
      const sealScans = async (rows: number, first: number): Promise<number> => {
        await client.query('BEGIN');
        for (let n = 0; n < rows; n += 1) {
          const id = String(first + n);
          await dms.insert({ id, name: 'new' }, cdc('INSERT', '2026-11-23 11:00:00', first + n));
        }
        const before = await pgClassScans(client);
        await client.query('SET CONSTRAINTS ALL IMMEDIATE');
        const scans = (await pgClassScans(client)) - before;
        await client.query('COMMIT');
        return scans;
      };
      await sealScans(2, 300); // plans cached
      const few = await sealScans(2, 400);
      const many = await sealScans(12, 500);
      expect(many).toBe(few);
      const { rows } = await client.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM audit.audit_log WHERE (row_key ->> 'id')::int >= 300`,
      );
      expect(rows[0]!.n).toBe('16');
    } finally {
      await client.end();
    }
  });
});
