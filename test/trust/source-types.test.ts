import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { parseConfig } from '../../src/config';
import type { SourceTable } from '../../src/migrate/introspect';
import { migrateTarget, migrateTargetWith } from '../../src/migrate/migrate-target';
import { createTestDatabase, withClient } from '../support/databases';

async function stagingTypes(url: string): Promise<Record<string, string>> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ name: string; type: string }>(
      `SELECT attname AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute
        WHERE attrelid = 'audit.items_staging'::regclass AND attnum > 0 AND NOT attisdropped`,
    );
    return Object.fromEntries(rows.map((row) => [row.name, row.type]));
  });
}

describe('source catalog distrust', () => {
  it('never pastes a type name from a spoofed source into target DDL', async () => {
    const targetUrl = await createTestDatabase('tgt');
    const payload = 'int); CREATE TABLE public.pwned (x int); --';
    // What a spoofed source (or a source superuser's catalog edit) would report.
    const table: SourceTable = {
      schema: 'public',
      table: 'items',
      primaryKey: ['id'],
      ignoreColumns: [],
      generatedColumns: [],
      columns: [
        {
          name: 'id',
          type: 'integer',
          typmod: -1,
          exactNumber: false,
          carriedAsText: false,
          attnum: 1,
        },
        {
          name: 'evil',
          type: payload,
          typmod: -1,
          exactNumber: false,
          carriedAsText: false,
          attnum: 2,
        },
        {
          name: 'late',
          type: 'numeric(10,2)); DROP TABLE audit.audit_log; --',
          typmod: 655366,
          exactNumber: true,
          carriedAsText: false,
          attnum: 3,
        },
      ],
    };
    const db = new Kysely<unknown>({
      dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: targetUrl, max: 1 }) }),
    });
    try {
      await migrateTargetWith(db, parseConfig({ tables: [{ table: 'items' }] }), [table]);
    } finally {
      await db.destroy();
    }
    const types = await stagingTypes(targetUrl);
    expect(types).toMatchObject({ id: 'integer', evil: 'text', late: 'text' });
    const pwned = await withClient(targetUrl, (client) =>
      client.query(
        `SELECT to_regclass('public.pwned') AS t, to_regclass('audit.audit_log') AS log`,
      ),
    );
    expect(pwned.rows[0]).toEqual({ t: null, log: 'audit.audit_log' });
  });

  it('keeps real types with their modifiers, as the target renders them', async () => {
    const sourceUrl = await createTestDatabase('src');
    const targetUrl = await createTestDatabase('tgt');
    await withClient(sourceUrl, (client) =>
      client.query(`CREATE TYPE mood AS ENUM ('ok');
        CREATE TABLE items (id int PRIMARY KEY, price numeric(10,2), code varchar(20),
          at timestamptz(3), tags text[], feeling mood)`),
    );
    await migrateTarget({
      config: parseConfig({ tables: [{ table: 'items' }] }),
      sourceUrl,
      targetUrl,
    });
    expect(await stagingTypes(targetUrl)).toMatchObject({
      id: 'integer',
      price: 'numeric(10,2)',
      code: 'character varying(20)',
      at: 'timestamp(3) with time zone',
      tags: 'text[]',
      feeling: 'text',
    });
  });
});
