import { auditRows, createPipeline, type Pipeline } from './helpers';

const SOURCE_DDL = `
  CREATE SCHEMA shop;
  CREATE TABLE shop.items (
    id int PRIMARY KEY,
    name text,
    price numeric(12, 2),
    big numeric,
    attrs jsonb,
    tags text[],
    blob bytea,
    at timestamptz(6),
    local_at timestamp(6),
    note text
  );
  CREATE TABLE shop.lines (
    region text NOT NULL,
    no bigint NOT NULL,
    qty int,
    PRIMARY KEY (region, no)
  );`;

describe('engine: CDC into staging and the audit log', () => {
  let p: Pipeline;

  beforeAll(async () => {
    p = await createPipeline(SOURCE_DDL, {
      tables: [
        { schema: 'shop', table: 'items' },
        { schema: 'shop', table: 'lines' },
      ],
    });
    await p.replicate(); // initial load of empty tables, creates the slot
  });
  afterAll(async () => p?.dispose());

  it('records inserts, updates, deletes and re-inserts with source headers', async () => {
    await p.source(
      `INSERT INTO shop.items (id, name, price) VALUES (1, 'pen', 1.50), (2, 'ink', 3.00)`,
    );
    await p.source(`UPDATE shop.items SET price = 1.75 WHERE id = 1`);
    await p.source(`DELETE FROM shop.items WHERE id = 2`);
    await p.source(`INSERT INTO shop.items (id, name, price) VALUES (2, 'ink', 3.25)`);
    const { rows: xids } = await p.source(`SELECT txid_current()::text AS xid`);
    const result = await p.replicate();
    expect(result.transactions).toBe(4);
    const rows = await auditRows(p, 'items');
    expect(rows.map((r) => [r.operation, (r.row_key as { id: number }).id])).toEqual([
      ['INSERT', 1],
      ['INSERT', 2],
      ['UPDATE', 1],
      ['DELETE', 2],
      ['INSERT', 2],
    ]);
    expect(rows[2]!.changed_columns).toEqual(['price']);
    expect((rows[2]!.old_row as Record<string, unknown>).price).toBe(1.5);
    expect((rows[2]!.new_row as Record<string, unknown>).price).toBe(1.75);
    expect((rows[3]!.old_row as Record<string, unknown>).price).toBe(3.0);
    for (const row of rows) {
      expect(row.change_seq).toMatch(/^\d{35}$/);
      expect(row.stream_position).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
      expect(Number(row.transaction_id)).toBeLessThan(Number(xids[0].xid));
    }
    const seqs = rows.map((r) => String(r.change_seq));
    expect([...seqs].sort()).toEqual(seqs);
    expect(new Set(seqs).size).toBe(seqs.length);
    const { rows: staged } = await p.target(
      `SELECT id, price::text, ar_h_operation, ar_h_indicator FROM audit.items_staging ORDER BY id`,
    );
    expect(staged).toEqual([
      { id: 1, price: '1.75', ar_h_operation: 'UPDATE', ar_h_indicator: 'U' },
      { id: 2, price: '3.25', ar_h_operation: 'INSERT', ar_h_indicator: 'I' },
    ]);
  });

  it('keeps the source commit time (UTC, microseconds) as the commit timestamp', async () => {
    const clock = `SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS ts`;
    const before = (await p.source(clock)).rows[0].ts as string;
    await p.source(`INSERT INTO shop.items (id, name) VALUES (10, 'clock')`);
    const after = (await p.source(clock)).rows[0].ts as string;
    await p.replicate();
    const { rows } = await p.target(
      `SELECT to_char(ar_h_commit_timestamp, 'YYYY-MM-DD HH24:MI:SS.US') AS ts FROM audit.items_staging WHERE id = 10`,
    );
    expect(rows[0].ts > before && rows[0].ts < after).toBe(true);
    const [version] = (await auditRows(p, 'items')).filter(
      (r) => (r.row_key as { id: number }).id === 10,
    );
    expect(version!.commit_timestamp).toBe(rows[0].ts);
  });

  it('carries values as text: numeric, jsonb, arrays, bytea, NULLs and µs timestamps arrive unchanged', async () => {
    await p.source(`INSERT INTO shop.items VALUES
      (20, 'exact', 9876543210.99, 3.14159265358979323846264338327950288419716939937510,
       '{"b": [1, 2.50, {"c": null}], "a": "x\\"y"}', ARRAY['a,b', NULL, 'c"d', ''],
       '\\x00ff10', '2026-01-02 03:04:05.123456+00', '1999-12-31 23:59:59.999999', NULL)`);
    await p.replicate();
    const textOf = async (url: 'source' | 'target', table: string) => {
      const run = p[url];
      const { rows } = await run(
        `SELECT id::text, name, price::text, big::text, attrs::text, tags::text, blob::text,
                to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS at, local_at::text, note
           FROM ${table} WHERE id = 20`,
      );
      return rows[0];
    };
    expect(await textOf('target', 'audit.items_staging')).toEqual(
      await textOf('source', 'shop.items'),
    );
    const [version] = (await auditRows(p, 'items')).filter(
      (r) => (r.row_key as { id: number }).id === 20,
    );
    expect((version!.new_row as Record<string, unknown>).at).toBe(
      '2026-01-02T03:04:05.123456+00:00',
    );
    expect((version!.new_row as Record<string, unknown>).note).toBeNull();
  });

  it('leaves an unchanged TOASTed column as it is when another column changes', async () => {
    const big = Array.from({ length: 20000 }, (_, i) => `${i}:${(i * 7919) % 1000}`).join(',');
    await p.source(`ALTER TABLE shop.items ALTER COLUMN note SET STORAGE EXTERNAL`);
    await p.source(`INSERT INTO shop.items (id, name, note) VALUES (30, 'toast', $1)`, [big]);
    await p.source(`UPDATE shop.items SET price = 9.99 WHERE id = 30`);
    await p.replicate();
    const { rows } = await p.target(
      `SELECT length(note) AS len, md5(note) AS md5, price::text FROM audit.items_staging WHERE id = 30`,
    );
    const { rows: src } = await p.source(
      `SELECT length(note) AS len, md5(note) AS md5 FROM shop.items WHERE id = 30`,
    );
    expect(rows[0]).toEqual({ ...src[0], price: '9.99' });
    const versions = (await auditRows(p, 'items')).filter(
      (r) => (r.row_key as { id: number }).id === 30,
    );
    expect(versions.map((v) => v.operation)).toEqual(['INSERT', 'UPDATE']);
    expect(versions[1]!.changed_columns).toEqual(['price']);
  });

  it('applies a multi-statement transaction across two tables with composite keys and key changes', async () => {
    await p.source(`BEGIN;
      INSERT INTO shop.lines VALUES ('EU', 1, 5), ('US', 1, 7);
      UPDATE shop.items SET name = 'pen2' WHERE id = 1;
      UPDATE shop.lines SET qty = NULL WHERE region = 'EU';
      UPDATE shop.lines SET no = 2 WHERE region = 'US';
      DELETE FROM shop.items WHERE id = 10;
      COMMIT;`);
    await p.replicate();
    const lines = await auditRows(p, 'lines');
    expect(lines.map((r) => [r.operation, r.row_key])).toEqual([
      ['INSERT', { region: 'EU', no: 1 }],
      ['INSERT', { region: 'US', no: 1 }],
      ['UPDATE', { region: 'EU', no: 1 }],
      // The key change ends the old key and continues under the new one.
      ['DELETE', { region: 'US', no: 1 }],
      ['UPDATE', { region: 'US', no: 2 }],
    ]);
    const txids = new Set(lines.map((r) => r.transaction_id));
    expect(txids.size).toBe(1);
    const items = (await auditRows(p, 'items')).filter((r) => txids.has(r.transaction_id));
    expect(items.map((r) => r.operation)).toEqual(['UPDATE', 'DELETE']);
    const { rows } = await p.target(
      `SELECT region, no::text, qty, ar_h_indicator FROM audit.lines_staging ORDER BY region, no`,
    );
    expect(rows).toEqual([
      { region: 'EU', no: '1', qty: null, ar_h_indicator: 'U' },
      // The old key keeps a row flagged deleted, as a DELETE leaves it (a replayed
      // change of that key finds its row).
      { region: 'US', no: '1', qty: 7, ar_h_indicator: 'D' },
      { region: 'US', no: '2', qty: 7, ar_h_indicator: 'U' },
    ]);
  });

  it('does not replicate TRUNCATE (as with DMS) but says so; a re-inserted key becomes an INSERT version', async () => {
    const warnings: string[] = [];
    const logger = {
      log: (level: string, message: string) => void (level === 'warn' && warnings.push(message)),
    };
    await p.source(`TRUNCATE shop.lines`);
    await p.source(`INSERT INTO shop.lines VALUES ('EU', 1, 99)`);
    await p.replicate({ logger });
    expect(warnings).toContain('TRUNCATE is not replicated (as with DMS); staging keeps its rows');
    const { rows } = await p.target(
      `SELECT region, qty FROM audit.lines_staging WHERE ar_h_indicator <> 'D' ORDER BY region`,
    );
    expect(rows).toEqual([
      { region: 'EU', qty: 99 },
      { region: 'US', qty: 7 },
    ]);
    const last = (await auditRows(p, 'lines')).at(-1)!;
    expect([last.operation, last.new_row]).toEqual(['INSERT', { region: 'EU', no: 1, qty: 99 }]);
  });

  it('moves a row onto the key of a deleted row (the kept delete row does not block the key change)', async () => {
    await p.source(
      `DELETE FROM shop.items WHERE id = 30; UPDATE shop.items SET id = 30 WHERE id = 20`,
    );
    await p.replicate();
    const { rows } = await p.target(
      `SELECT id, name, ar_h_operation, ar_h_indicator FROM audit.items_staging WHERE id IN (20, 30) ORDER BY id DESC`,
    );
    expect(rows).toEqual([
      { id: 30, name: 'exact', ar_h_operation: 'UPDATE', ar_h_indicator: 'U' },
      // The key the row left keeps a row flagged deleted.
      { id: 20, name: 'exact', ar_h_operation: 'DELETE', ar_h_indicator: 'D' },
    ]);
    const versions = (await auditRows(p, 'items')).filter(
      (r) => (r.row_key as { id: number }).id === 30,
    );
    expect(versions.map((v) => v.operation)).toEqual(['INSERT', 'UPDATE', 'DELETE', 'UPDATE']);
    expect((versions[3]!.old_row as { id: number }).id).toBe(20);
    const movedAway = (await auditRows(p, 'items')).filter(
      (r) => (r.row_key as { id: number }).id === 20,
    );
    expect(movedAway.at(-1)?.operation).toBe('DELETE');
  });
});
