import pg from 'pg';
import { parseConfig } from '../../src/config';
import { readStagingTables } from '../../src/engine/staging-tables';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { createTestDatabase, withClient } from '../support/databases';

/** How the engine reads its staging tables at start-up (src/engine/staging-tables.ts). */
describe('readStagingTables', () => {
  const input = {
    tables: [{ table: 'orders' }, { table: 'lines' }, { schema: 'shop', table: 'gens' }],
  };
  let targetUrl: string;
  beforeAll(async () => {
    const sourceUrl = await createTestDatabase('stsrc');
    targetUrl = await createTestDatabase('sttgt');
    await withClient(sourceUrl, (client) =>
      client.query(`CREATE TABLE orders (id int PRIMARY KEY, note text);
        CREATE TABLE lines (line_no int, order_id bigint, qty numeric(10,2), PRIMARY KEY (order_id, line_no));
        CREATE SCHEMA shop;
        CREATE TABLE shop.gens (id int PRIMARY KEY, a int, twice int GENERATED ALWAYS AS (a * 2) STORED)`),
    );
    await migrateTarget({ config: parseConfig(input), sourceUrl, targetUrl });
  }, 120_000);

  /** Runs `work` on a target client that counts the queries sent. */
  async function counting<T>(
    work: (client: pg.Client) => Promise<T>,
  ): Promise<{ result: T; queries: number }> {
    const client = new pg.Client({ connectionString: targetUrl });
    await client.connect();
    let queries = 0;
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args) => {
      queries += 1;
      return query(...args);
    };
    try {
      return { result: await work(client), queries };
    } finally {
      await client.end();
    }
  }

  it('reads every table in one catalog query: columns in order, key in key order, no placeholders', async () => {
    const { result, queries } = await counting((client) =>
      readStagingTables(client, parseConfig(input)),
    );
    expect(queries).toBe(1);
    expect(result).toEqual([
      {
        source: { schema: 'public', table: 'orders' },
        qualifiedName: '"audit"."orders_staging"',
        columns: [
          { name: 'id', type: 'integer' },
          { name: 'note', type: 'text' },
        ],
        primaryKey: ['id'],
      },
      {
        source: { schema: 'public', table: 'lines' },
        qualifiedName: '"audit"."lines_staging"',
        columns: [
          { name: 'line_no', type: 'integer' },
          { name: 'order_id', type: 'bigint' },
          { name: 'qty', type: 'numeric(10,2)' },
        ],
        primaryKey: ['order_id', 'line_no'],
      },
      {
        source: { schema: 'shop', table: 'gens' },
        qualifiedName: '"audit"."gens_staging"',
        // twice: a generated column's placeholder, which the engine never writes.
        columns: [
          { name: 'id', type: 'integer' },
          { name: 'a', type: 'integer' },
        ],
        primaryKey: ['id'],
      },
    ]);
  });

  it('names a staging table that is missing', async () => {
    const config = parseConfig({ tables: [...input.tables, { table: 'absent' }] });
    await expect(counting((client) => readStagingTables(client, config))).rejects.toThrow(
      /staging table audit\.absent_staging does not exist on the target: run "audit-trail migrate" first/,
    );
  });
});
