import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { parseConfig, type AuditTrailConfigInput } from '../../src/config';
import { createHistory, type ColumnSchemaChange, type History } from '../../src/history';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { cdc, DmsApplier } from '../support/dms-apply';
import { createTestDatabase, withClient } from '../support/databases';

/** Source schema changes: migrate mirrors them on staging and logs them. */

interface Urls {
  readonly sourceUrl: string;
  readonly targetUrl: string;
}

async function databases(sourceDdl: string, targetSql?: string): Promise<Urls> {
  const sourceUrl = await createTestDatabase('src');
  const targetUrl = await createTestDatabase('tgt');
  await withClient(sourceUrl, (client) => client.query(sourceDdl));
  if (targetSql) await withClient(targetUrl, (client) => client.query(targetSql));
  return { sourceUrl, targetUrl };
}

const migrate = (input: AuditTrailConfigInput, urls: Urls) =>
  migrateTarget({ config: parseConfig(input), ...urls });

const onSource = (urls: Urls, statements: string) =>
  withClient(urls.sourceUrl, (client) => client.query(statements));

async function withHistory<T>(urls: Urls, work: (history: History) => Promise<T>): Promise<T> {
  const db = new Kysely<unknown>({
    dialect: new PostgresDialect({
      pool: new pg.Pool({ connectionString: urls.targetUrl, max: 1 }),
    }),
  });
  try {
    return await work(createHistory(db));
  } finally {
    await db.destroy();
  }
}

async function stagingTypes(urls: Urls, table: string): Promise<Record<string, string>> {
  return withClient(urls.targetUrl, async (client) => {
    const { rows } = await client.query<{ name: string; type: string }>(
      `SELECT attname AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute
       WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped AND attname NOT LIKE 'ar\\_h\\_%'
       ORDER BY attnum`,
      [`audit.${table}_staging`],
    );
    return Object.fromEntries(rows.map((row) => [row.name, row.type]));
  });
}

const items = { tables: [{ table: 'items' }] };

describe('type changes on the source (#17 item 3)', () => {
  it('widens staging in place, so wider values are recorded exactly', async () => {
    const urls = await databases(
      'CREATE TABLE items (id int PRIMARY KEY, price numeric(10,2), code varchar(5), n int)',
    );
    await migrate(items, urls);
    await onSource(
      urls,
      `ALTER TABLE items ALTER COLUMN price TYPE numeric(12,4),
         ALTER COLUMN code TYPE varchar(20), ALTER COLUMN n TYPE bigint`,
    );
    const report = await migrate(items, urls);
    expect(
      report.schemaChanges.map((c) => [c.change, c.column, c.before?.type, c.after?.type]),
    ).toEqual([
      ['RETYPE', 'price', 'numeric(10,2)', 'numeric(12,4)'],
      ['RETYPE', 'code', 'character varying(5)', 'character varying(20)'],
      ['RETYPE', 'n', 'integer', 'bigint'],
    ]);
    expect(await stagingTypes(urls, 'items')).toEqual({
      id: 'integer',
      price: 'numeric(12,4)',
      code: 'character varying(20)',
      n: 'bigint',
    });

    await withClient(urls.targetUrl, async (client) => {
      const dms = new DmsApplier(client, 'audit', 'items', ['id']);
      await dms.insert(
        { id: '1', price: '1.2345', code: 'abcdefghij', n: '9000000000' },
        cdc('INSERT', '2026-11-22 10:00:00', 1),
      );
    });
    const versions = await withHistory(urls, (history) => history.history('public.items', [1]));
    expect(versions.map((v) => v.newRow)).toEqual([
      { id: 1, price: '1.2345', code: 'abcdefghij', n: '9000000000' },
    ]);
    expect((await migrate(items, urls)).schemaChanges).toEqual([]);
  });

  it('refuses a change that would alter values in staging, with the remedy', async () => {
    const urls = await databases('CREATE TABLE items (id int PRIMARY KEY, price numeric(10,2))');
    await migrate(items, urls);
    await onSource(urls, 'ALTER TABLE items ALTER COLUMN price TYPE numeric(8,1)');
    await expect(migrate(items, urls)).rejects.toThrow(
      /source column public\.items\.price changed type from numeric\(10,2\) to numeric\(8,1\).*alter "audit"\."items_staging" column "price" to numeric\(8,1\) yourself.*or remove the table from the config, run migrate --drop-staging, and add it back/,
    );
    // Nothing was changed: staging keeps its type.
    expect(await stagingTypes(urls, 'items')).toEqual({ id: 'integer', price: 'numeric(10,2)' });
  });
});

describe('generated columns on the source (#17 items 5 and 21)', () => {
  const schemaLog = (urls: Urls) =>
    withClient(urls.targetUrl, async (client) => {
      const { rows } = await client.query<{ line: string }>(
        `SELECT change || ' ' || column_name AS line FROM audit.schema_change ORDER BY id`,
      );
      return rows.map((row) => row.line);
    });

  it('refuses one made plain (DROP EXPRESSION): its rows hold values no change carried', async () => {
    const urls = await databases(
      `CREATE TABLE items (id int PRIMARY KEY, price numeric,
         gross numeric GENERATED ALWAYS AS (price * 1.2) STORED);
       INSERT INTO items (id, price) VALUES (1, 10), (2, 20)`,
    );
    await migrate(items, urls);
    await onSource(urls, 'ALTER TABLE items ALTER COLUMN gross DROP EXPRESSION');
    // Taken for a column added without a default, it was given NULL in staging and in the
    // log, while every source row holds its computed value.
    await expect(migrate(items, urls)).rejects.toThrow(
      /source column public\.items\.gross was a generated column.*DROP EXPRESSION.*migrate --drop-staging/,
    );
    // Staging keeps the placeholder it had (text: DMS writes generated columns).
    expect(await stagingTypes(urls, 'items')).toEqual({
      id: 'integer',
      price: 'numeric',
      gross: 'text',
    });
    expect(await schemaLog(urls)).toEqual([]);
    // The remedy it names: out with its staging table, then back (reloaded).
    await onSource(urls, 'CREATE TABLE other (id int PRIMARY KEY)');
    await migrateTarget({
      config: parseConfig({ tables: [{ table: 'other' }] }),
      ...urls,
      dropStaging: true,
    });
    await migrate(items, urls);
    expect(await stagingTypes(urls, 'items')).toEqual({
      id: 'integer',
      price: 'numeric',
      gross: 'numeric',
    });
  });

  it('refuses a table whose primary key is a generated column', async () => {
    const urls = await databases(
      'CREATE TABLE items (id int, k int GENERATED ALWAYS AS (id * 2) STORED PRIMARY KEY)',
    );
    await expect(migrate(items, urls)).rejects.toThrow(
      /source table public\.items has generated primary-key column\(s\) k:.*primary key of plain columns/,
    );
  });

  it('keeps a text placeholder for each in staging, added, renamed and dropped with it, and logs nothing', async () => {
    const urls = await databases(
      'CREATE TABLE items (id int PRIMARY KEY, price numeric, note text)',
    );
    await migrate(items, urls);
    await onSource(
      urls,
      `ALTER TABLE items ADD COLUMN gross numeric GENERATED ALWAYS AS (price * 1.2) STORED;
       ALTER TABLE items ADD COLUMN tax numeric GENERATED ALWAYS AS (price * 0.2) STORED`,
    );
    await migrate(items, urls);
    expect(await stagingTypes(urls, 'items')).toEqual({
      id: 'integer',
      price: 'numeric',
      note: 'text',
      gross: 'text',
      tax: 'text',
    });
    // What DMS writes (test_decoding prints generated columns): taken, and left out of
    // the row document like an ignored column.
    await withClient(urls.targetUrl, async (client) => {
      const dms = new DmsApplier(client, 'audit', 'items', ['id']);
      await dms.insert(
        { id: '1', price: '10', note: 'a', gross: '12.0', tax: '2.0' },
        cdc('INSERT', '2026-11-22 10:00:00', 1),
      );
      await dms.update(
        { id: '1' },
        { id: '1', price: '20', note: 'a', gross: '24.0', tax: '4.0' },
        cdc('UPDATE', '2026-11-22 10:00:01', 2),
      );
      const { rows } = await client.query<{ operation: string; new_row: unknown }>(
        `SELECT operation, new_row FROM audit.audit_log ORDER BY id`,
      );
      expect(rows).toEqual([
        { operation: 'INSERT', new_row: { id: 1, price: 10, note: 'a' } },
        { operation: 'UPDATE', new_row: { id: 1, price: 20, note: 'a' } },
      ]);
    });
    await onSource(
      urls,
      `ALTER TABLE items RENAME COLUMN gross TO brutto; ALTER TABLE items DROP COLUMN tax;
       ALTER TABLE items ADD COLUMN added text`,
    );
    await migrate(items, urls);
    expect(await schemaLog(urls)).toEqual(['ADD added']);
    expect(await stagingTypes(urls, 'items')).toEqual({
      id: 'integer',
      price: 'numeric',
      note: 'text',
      brutto: 'text',
      added: 'text',
    });
    // Renamed in place: the placeholder keeps what DMS wrote last.
    await withClient(urls.targetUrl, async (client) => {
      const { rows } = await client.query(`SELECT brutto FROM audit.items_staging`);
      expect(rows).toEqual([{ brutto: '24.0' }]);
    });
  });
});

describe('the schema-change log (#17 item 21)', () => {
  it('records adds, drops, renames and retypes with before/after definitions; a rename is one column', async () => {
    const urls = await databases(
      'CREATE TABLE items (id int PRIMARY KEY, title text, colour text, size varchar(5))',
    );
    await migrate(items, urls);
    await withClient(urls.targetUrl, async (client) => {
      const dms = new DmsApplier(client, 'audit', 'items', ['id']);
      await dms.insert(
        { id: '1', title: 'Lamp', colour: 'red', size: 'S' },
        cdc('INSERT', '2026-11-22 10:00:00', 1),
      );
    });
    await onSource(
      urls,
      `ALTER TABLE items RENAME COLUMN title TO label;
       ALTER TABLE items DROP COLUMN colour;
       ALTER TABLE items ADD COLUMN weight numeric(6,3);
       ALTER TABLE items ALTER COLUMN size TYPE varchar(10)`,
    );
    const sourceLsn = await withClient(urls.sourceUrl, async (client) => {
      const { rows } = await client.query<{ lsn: string }>(
        'SELECT pg_current_wal_lsn()::text AS lsn',
      );
      return rows[0]?.lsn;
    });
    await migrate(items, urls);
    expect(await stagingTypes(urls, 'items')).toEqual({
      id: 'integer',
      label: 'text',
      size: 'character varying(10)',
      weight: 'numeric(6,3)',
    });

    // The staging row kept its value under the new name: the next update is one change.
    await withClient(urls.targetUrl, async (client) => {
      const dms = new DmsApplier(client, 'audit', 'items', ['id']);
      await dms.update({ id: '1' }, { weight: '1.250' }, cdc('UPDATE', '2026-11-22 10:00:05', 2));
    });

    const [changes, versions] = await withHistory(
      urls,
      async (history) =>
        [
          // items is not partitioned: only column changes.
          (await history.schemaChanges('public.items')) as ColumnSchemaChange[],
          await history.history('public.items', [1]),
        ] as const,
    );
    expect(
      changes.map((c) => ({
        change: c.change,
        column: c.column,
        before: c.before,
        after: c.after,
      })),
    ).toEqual([
      {
        change: 'DROP',
        column: 'colour',
        before: { name: 'colour', type: 'text', attnum: 3 },
        after: null,
      },
      {
        change: 'RENAME',
        column: 'label',
        before: { name: 'title', type: 'text', attnum: 2 },
        after: { name: 'label', type: 'text', attnum: 2 },
      },
      {
        change: 'RETYPE',
        column: 'size',
        before: { name: 'size', type: 'character varying(5)', attnum: 4 },
        after: { name: 'size', type: 'character varying(10)', attnum: 4 },
      },
      {
        change: 'ADD',
        column: 'weight',
        before: null,
        // Rows that existed got NULL (no default): stated, not left to a guess.
        after: { name: 'weight', type: 'numeric(6,3)', attnum: 5, existingRows: null },
      },
    ]);
    for (const change of changes) {
      expect(change.detectedBy).toBe('migrate');
      // Seen by migrate: bounded by the source position read after introspection.
      expect(change.sourceLsn).not.toBeNull();
      expect(lsnValue(change.sourceLsn ?? '')).toBeGreaterThanOrEqual(lsnValue(sourceLsn ?? ''));
      expect(change.detectedAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/);
    }
    expect(versions.map((v) => [v.operation, v.newRow, v.changedColumns])).toEqual([
      ['INSERT', { id: 1, title: 'Lamp', colour: 'red', size: 'S' }, null],
      ['UPDATE', { id: 1, label: 'Lamp', size: 'S', weight: '1.250' }, ['weight']],
    ]);
  });

  it('reads a key rename made after a History object first read the table, in one query per call', async () => {
    const urls = await databases('CREATE TABLE items (id int PRIMARY KEY, name text)');
    await migrate(items, urls);
    const queries: string[] = [];
    const db = new Kysely<unknown>({
      dialect: new PostgresDialect({
        pool: new pg.Pool({ connectionString: urls.targetUrl, max: 1 }),
      }),
      log: (event) => {
        if (event.level === 'query') queries.push(event.query.sql);
      },
    });
    try {
      const history = createHistory(db);
      await withClient(urls.targetUrl, (client) =>
        new DmsApplier(client, 'audit', 'items', ['id']).insert(
          { id: '1', name: 'lamp' },
          cdc('INSERT', '2026-11-22 10:00:00', 1),
        ),
      );
      expect((await history.history('public.items', { id: 1 })).length).toBe(1);
      // Warm: the registry and the table's renames are cached, the query checks them.
      queries.length = 0;
      expect((await history.asOf('public.items', { id: 1 }, '2026-11-23T00:00:00Z'))?.name).toBe(
        'lamp',
      );
      expect(queries.length).toBe(1);

      await onSource(urls, 'ALTER TABLE items RENAME COLUMN id TO item_id');
      await migrate(items, urls);
      await withClient(urls.targetUrl, (client) =>
        new DmsApplier(client, 'audit', 'items', ['item_id']).update(
          { item_id: '1' },
          { name: 'desk lamp' },
          cdc('UPDATE', '2026-11-24 10:00:00', 2),
        ),
      );
      // The same History object: the version under the old key name is still this row's.
      const versions = await history.history('public.items', { item_id: 1 });
      expect(versions.map((v) => [v.operation, v.key])).toEqual([
        ['INSERT', { id: 1 }],
        ['UPDATE', { item_id: 1 }],
      ]);
      expect(
        (await history.asOf('public.items', { item_id: 1 }, '2026-11-23T00:00:00Z'))?.name,
      ).toBe('lamp');
    } finally {
      await db.destroy();
    }
  });

  it('is append-only for every role but its owner', async () => {
    const urls = await databases('CREATE TABLE items (id int PRIMARY KEY, a text)');
    await migrate(items, urls);
    await onSource(urls, 'ALTER TABLE items ADD COLUMN b text');
    await migrate(items, urls);
    await withClient(urls.targetUrl, async (client) => {
      await client.query(
        'CREATE ROLE schema_log_writer; GRANT USAGE ON SCHEMA audit TO schema_log_writer',
      );
      await client.query(
        'GRANT SELECT, UPDATE, DELETE ON audit.schema_change TO schema_log_writer',
      );
      await client.query('SET ROLE schema_log_writer');
      await expect(
        client.query("UPDATE audit.schema_change SET column_name = 'x'"),
      ).rejects.toThrow(/append-only|belongs to the/);
      await expect(client.query('DELETE FROM audit.schema_change')).rejects.toThrow(
        /append-only|belongs to the/,
      );
      await client.query('RESET ROLE');
      await client.query('DROP OWNED BY schema_log_writer; DROP ROLE schema_log_writer');
    });
  });

  it('each of its tables refuses UPDATE, DELETE and TRUNCATE, whatever the audit schema is called', async () => {
    const urls = await databases('CREATE TABLE items (id int PRIMARY KEY, a text)');
    const auditSchema = `it's "the" log`;
    await migrateTarget({ config: parseConfig({ ...items, auditSchema }), ...urls });
    const { rows } = await withClient(urls.targetUrl, (client) =>
      client.query<{ relname: string; tgname: string; tgenabled: string; fn: string }>(
        `SELECT c.relname, t.tgname, t.tgenabled, t.tgfoid::regproc::text AS fn
           FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
          WHERE c.relnamespace = to_regnamespace($1) AND t.tgname ~ '_(append_only|no_truncate)$'
            AND c.relname IN ('schema_change', 'schema_change_position', 'partition_change')
          ORDER BY 1, 2`,
        [`"it's ""the"" log"`],
      ),
    );
    const forbid = `"it's ""the"" log".forbid_audit_log_change`;
    expect(rows.map((row) => [row.relname, row.tgname, row.tgenabled, row.fn])).toEqual(
      ['partition_change', 'schema_change', 'schema_change_position'].flatMap((table) => [
        [table, `${table}_append_only`, 'A', forbid],
        [table, `${table}_no_truncate`, 'A', forbid],
      ]),
    );
  });

  it('starts from staging on an install made by release 0.1.0, then tells renames apart', async () => {
    const fixture = readFileSync(path.join(__dirname, 'fixtures', 'target-0.1.0.sql'), 'utf8');
    const urls = await databases(
      'CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(10,2))',
      fixture,
    );
    await onSource(urls, 'ALTER TABLE items ALTER COLUMN price TYPE numeric(12,2)');
    const upgrade = await migrate(items, urls);
    expect(upgrade.schemaChanges.map((c) => [c.change, c.column, c.before?.attnum])).toEqual([
      ['RETYPE', 'price', 3],
    ]);
    await onSource(urls, 'ALTER TABLE items RENAME COLUMN name TO title');
    const renamed = await migrate(items, urls);
    expect(renamed.schemaChanges.map((c) => [c.change, c.before?.name, c.column])).toEqual([
      ['RENAME', 'name', 'title'],
    ]);
    // History recorded before the upgrade still reads under its own column names.
    const versions = await withHistory(urls, (history) => history.history('public.items', [2]));
    expect(versions[0]?.newRow).toEqual({ id: 2, name: 'second', price: '2.00' });
  });
});

function lsnValue(lsn: string): bigint {
  const [high = '0', low = '0'] = lsn.split('/');
  return (BigInt(`0x${high}`) << 32n) + BigInt(`0x${low}`);
}
