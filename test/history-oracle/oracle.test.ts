import { withClient } from '../support/databases';
import { createPipeline, type Pipeline } from '../engine/helpers';
import {
  compareHistory,
  describeDifference,
  installOracle,
  oracleMark,
  type ComparedTable,
} from '../support/oracle';
import { TYPES } from '../support/oracle/workload';

const TABLE: ComparedTable = { schema: 'shop', table: 'item', keyColumns: ['id'] };
const SOURCE_DDL = `
  CREATE SCHEMA shop;
  CREATE TABLE shop.item (id int PRIMARY KEY, price numeric(10, 2), seen timestamptz, tags text[], doc jsonb);`;

/** The oracle itself: agrees with a correct history, and names the first difference exactly. */
describe('history oracle', () => {
  let p: Pipeline;
  let loadMark = 0;
  const compare = () =>
    withClient(p.sourceUrl, (source) =>
      withClient(p.targetUrl, (target) =>
        compareHistory({ source, target, tables: [TABLE], loadMark }),
      ),
    );

  beforeAll(async () => {
    p = await createPipeline(SOURCE_DDL, { tables: [{ schema: 'shop', table: 'item' }] });
    await withClient(p.sourceUrl, (client) => installOracle(client, [TABLE]));
    await p.source(`INSERT INTO shop.item VALUES (1, 1.10, '2024-02-01 10:00:00.123456+00', '{a,b}', '{"n": 1.10}'),
                                               (2, 2, 'infinity', NULL, 'null')`);
    await p.source(`UPDATE shop.item SET price = 1.20 WHERE id = 1`);
    loadMark = await withClient(p.sourceUrl, oracleMark);
    await p.replicate();
    await p.source(`BEGIN; UPDATE shop.item SET price = 3.00, doc = '{"n": 1.100}' WHERE id = 1;
                    INSERT INTO shop.item VALUES (3, NULL, '1999-12-31 23:59:59.999999+00', '{}', '[]'); COMMIT`);
    await p.source(`UPDATE shop.item SET price = price WHERE id = 2`); // changes nothing
    await p.source(`UPDATE shop.item SET id = 4 WHERE id = 3`);
    await p.source(`DELETE FROM shop.item WHERE id = 2`);
    await p.source(`INSERT INTO shop.item VALUES (2, 9.99, now(), '{x}', '{}')`);
    await p.replicate();
  });
  afterAll(async () => p?.dispose());

  it('finds nothing to report on a history the kit recorded correctly', async () => {
    const report = await compare();
    expect(report.differences.map(describeDifference)).toEqual([]);
    // 2 snapshots, UPDATE+INSERT, key change (DELETE+UPDATE), DELETE, INSERT.
    expect(report.versions).toBe(8);
  });

  it('names the key, change, field, expected and recorded value of a wrong value', async () => {
    await p.source(`UPDATE history_oracle.event SET new_text = jsonb_set(new_text, '{price}', '"3.01"')
                     WHERE operation = 'UPDATE' AND new_text ->> 'price' = '3.00'`);
    const report = await compare();
    expect(report.differences).toEqual([
      expect.objectContaining({
        table: 'shop.item',
        key: '["1"]',
        index: 1,
        field: 'newRow.price',
        expected: '3.01',
        got: '3.00',
      }),
    ]);
  });

  it('reports a version the source never made', async () => {
    await p.target(`INSERT INTO audit.audit_log (source_schema, source_table, row_key, operation, commit_timestamp,
                       change_seq, transaction_id, old_row, new_row)
                     VALUES ('shop', 'item', '{"id": 77}', 'INSERT', now(), 'forged', '1', NULL, '{"id": 77}')`);
    const report = await compare();
    expect(report.differences).toContainEqual(
      expect.objectContaining({
        key: '["77"]',
        index: 0,
        field: 'operation',
        expected: '(no version)',
      }),
    );
  });
});

/**
 * The oracle reads json[] and jsonb[] back from both of the kit's forms (a JSON array, the
 * array's text): every value the generator writes, through both forms, agrees.
 */
describe('history oracle: json[] and jsonb[] values', () => {
  const ARRAYS: ComparedTable = { schema: 'shop', table: 'arrays', keyColumns: ['id'] };
  let p: Pipeline;

  afterAll(async () => p?.dispose());

  it('decodes every generated json[] and jsonb[] value as the source holds it', async () => {
    const json = TYPES['json[]']!.values;
    const jsonb = TYPES['jsonb[]']!.values;
    const rows = Array.from(
      { length: Math.max(json.length, jsonb.length) },
      (_, i) => `(${i}, ${json[i % json.length]}, ${jsonb[i % jsonb.length]})`,
    );
    p = await createPipeline(
      `CREATE SCHEMA shop; CREATE TABLE shop.arrays (id int PRIMARY KEY, j json[], jb jsonb[]);`,
      { tables: [{ schema: 'shop', table: 'arrays' }] },
    );
    await withClient(p.sourceUrl, (client) => installOracle(client, [ARRAYS]));
    await p.replicate(); // the initial load, of no row: every row below is a change
    await p.source(`INSERT INTO shop.arrays VALUES ${rows.join(', ')}`);
    // Each row's values moved to the next row's: every value replaces every other kind.
    await p.source(`UPDATE shop.arrays AS a SET j = b.j, jb = b.jb FROM shop.arrays AS b
                     WHERE b.id = (a.id + 1) % ${rows.length}`);
    await p.replicate();
    const report = await withClient(p.sourceUrl, (source) =>
      withClient(p.targetUrl, (target) =>
        compareHistory({ source, target, tables: [ARRAYS], loadMark: 0 }),
      ),
    );
    expect(report.differences.map(describeDifference)).toEqual([]);
    expect(report.versions).toBeGreaterThanOrEqual(rows.length * 2 - 1);
  });
});
