import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { KIT_MIGRATIONS } from '../../migrations/target';
import { parseConfig, type AuditTrailConfigInput } from '../../src/config';
import { createHistory } from '../../src/history';
import { SourceTableError } from '../../src/migrate/introspect';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { quoteIdent } from '../../src/postgres/identifiers';
import { TRIGGER_SQL_FILES } from '../../src/migrate/sql-files';
import { cdc, DmsApplier } from '../support/dms-apply';
import { createTestDatabase, withClient } from '../support/databases';

async function databases(sourceDdl: string): Promise<{ sourceUrl: string; targetUrl: string }> {
  const sourceUrl = await createTestDatabase('src');
  const targetUrl = await createTestDatabase('tgt');
  await withClient(sourceUrl, (client) => client.query(sourceDdl));
  return { sourceUrl, targetUrl };
}

const migrate = (input: AuditTrailConfigInput, urls: { sourceUrl: string; targetUrl: string }) =>
  migrateTarget({ config: parseConfig(input), ...urls });

async function columnsOf(url: string, schema: string, table: string): Promise<string[]> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ name: string }>(
      'SELECT column_name AS name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position',
      [schema, table],
    );
    return rows.map((row) => row.name);
  });
}

describe('migrateTarget', () => {
  it('is a no-op when run again, and installs only a newly configured table', async () => {
    const urls = await databases(`
      CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(10,2));
      CREATE TABLE shops (id int PRIMARY KEY, city text);`);
    const first = await migrate({ tables: [{ table: 'items' }] }, urls);
    expect(first.applied).toEqual(KIT_MIGRATIONS.map((migration) => migration.name));
    expect(first.installedSqlFiles).toEqual(TRIGGER_SQL_FILES);
    expect(first.createdStagingTables).toEqual(['public.items']);
    expect(first.triggersInstalled).toEqual(['public.items']);
    expect(await columnsOf(urls.targetUrl, 'audit', 'items_staging')).toEqual([
      'id',
      'name',
      'price',
      'ar_h_operation',
      'ar_h_commit_timestamp',
      'ar_h_change_seq',
      'ar_h_transaction_id',
      'ar_h_stream_position',
      'ar_h_indicator',
    ]);

    const again = await migrate({ tables: [{ table: 'items' }] }, urls);
    expect(again).toMatchObject({
      applied: [],
      installedSqlFiles: [],
      createdStagingTables: [],
      triggersInstalled: [],
      addedColumns: {},
    });

    const added = await migrate({ tables: [{ table: 'items' }, { table: 'shops' }] }, urls);
    expect(added).toMatchObject({
      applied: [],
      installedSqlFiles: [],
      createdStagingTables: ['public.shops'],
      triggersInstalled: ['public.shops'],
    });
  });

  it('adds a column that appeared on the source, and history keeps working across it', async () => {
    const urls = await databases('CREATE TABLE items (id int PRIMARY KEY, name text);');
    await migrate({ tables: [{ table: 'items' }] }, urls);
    const target = new pg.Client({ connectionString: urls.targetUrl });
    await target.connect();
    const dms = new DmsApplier(target, 'audit', 'items', ['id']);
    await dms.insert({ id: '1', name: 'old' }, cdc('INSERT', '2026-11-22 10:00:00', 1));

    await withClient(urls.sourceUrl, (client) =>
      client.query('ALTER TABLE items ADD COLUMN colour text'),
    );
    const report = await migrate({ tables: [{ table: 'items' }] }, urls);
    expect(report.addedColumns).toEqual({ 'public.items': ['colour'] });
    await dms.update({ id: '1' }, { colour: 'red' }, cdc('UPDATE', '2026-11-22 10:00:01', 2));
    await target.end();

    const db = new Kysely<unknown>({
      dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: urls.targetUrl }) }),
    });
    const versions = await createHistory(db).history('public.items', [1]);
    await db.destroy();
    expect(versions.map((v) => [v.operation, v.newRow])).toEqual([
      ['INSERT', { id: 1, name: 'old' }],
      ['UPDATE', { id: 1, name: 'old', colour: 'red' }],
    ]);
    expect(versions[1]?.changedColumns).toEqual(['colour']);
  });

  it('re-installs the trigger when the ignored columns change', async () => {
    const urls = await databases(
      'CREATE TABLE items (id int PRIMARY KEY, name text, seen_at timestamptz);',
    );
    await migrate({ tables: [{ table: 'items' }] }, urls);
    const report = await migrate(
      { tables: [{ table: 'items', ignoreColumns: ['seen_at'] }] },
      urls,
    );
    expect(report.triggersInstalled).toEqual(['public.items']);
    const target = new pg.Client({ connectionString: urls.targetUrl });
    await target.connect();
    const dms = new DmsApplier(target, 'audit', 'items', ['id']);
    await dms.insert(
      { id: '1', name: 'a', seen_at: null },
      cdc('INSERT', '2026-11-22 10:00:00', 1),
    );
    await dms.update(
      { id: '1' },
      { seen_at: '2026-11-22 10:00:00+00' },
      cdc('UPDATE', '2026-11-22 10:00:01', 2),
    );
    const { rows } = await target.query('SELECT operation, new_row FROM audit.audit_log');
    await target.end();
    expect(rows).toEqual([{ operation: 'INSERT', new_row: { id: 1, name: 'a' } }]);
  });

  it('refuses a table without a primary key, a missing table and a wrong configured key', async () => {
    const urls = await databases(
      'CREATE TABLE loose (id int, name text); CREATE TABLE items (id int PRIMARY KEY, code text UNIQUE);',
    );
    await expect(migrate({ tables: [{ table: 'loose' }] }, urls)).rejects.toThrow(
      /source table public\.loose has no primary key: DMS would silently drop its UPDATEs and DELETEs/,
    );
    await expect(migrate({ tables: [{ table: 'nope' }] }, urls)).rejects.toThrow(SourceTableError);
    await expect(
      migrate({ tables: [{ table: 'items', primaryKey: ['code'] }] }, urls),
    ).rejects.toThrow(/primaryKey \[code\] does not match the source primary key \[id\]/);
    await expect(
      migrate({ tables: [{ table: 'items', ignoreColumns: ['ghost'] }] }, urls),
    ).rejects.toThrow(/ghost/);
  });

  it('quotes hostile identifiers everywhere instead of interpolating them', async () => {
    const schema = 'we"ird; drop';
    const table = `it'ems`;
    const urls = await databases(`
      CREATE SCHEMA "we""ird; drop";
      CREATE TABLE "we""ird; drop"."it'ems" ("Key ""1""" int, "sel'ect" text, "é" text, PRIMARY KEY ("Key ""1"""));`);
    await migrate(
      { auditSchema: 'Audit Log', tables: [{ schema, table, ignoreColumns: ['é'] }] },
      urls,
    );
    const target = new pg.Client({ connectionString: urls.targetUrl });
    await target.connect();
    const dms = new DmsApplier(target, 'Audit Log', table, ['Key "1"']);
    await dms.insert(
      { 'Key "1"': '7', "sel'ect": 'x', é: 'e' },
      cdc('INSERT', '2026-11-22 10:00:00', 1),
    );
    await dms.update(
      { 'Key "1"': '7' },
      { "sel'ect": 'y' },
      cdc('UPDATE', '2026-11-22 10:00:01', 2),
    );
    await target.end();
    const db = new Kysely<unknown>({
      dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: urls.targetUrl }) }),
    });
    const versions = await createHistory(db, { auditSchema: 'Audit Log' }).history(
      `${schema}.${table}`,
      [7],
    );
    await db.destroy();
    expect(versions.map((v) => v.newRow)).toEqual([
      { 'Key "1"': 7, "sel'ect": 'x' },
      { 'Key "1"': 7, "sel'ect": 'y' },
    ]);
  });

  it.each([
    // The functions' dollar-quote tag: inside the name, it would end a body early.
    ['contains the dollar-quote tag of the functions', 'a$function$b'],
    // Quoted, this is a valid name. Pasted into a `--` comment line of the trigger files,
    // its second line would be SQL the migrator runs.
    ['holds a line break and SQL (the trigger files name it in comments)', 'audit\nSELECT 1/0; --'],
  ])('installs into an audit schema whose name %s', async (_, auditSchema) => {
    const urls = await databases('CREATE TABLE items (id int PRIMARY KEY, name text);');
    await migrate({ auditSchema, tables: [{ table: 'items' }] }, urls);
    const target = new pg.Client({ connectionString: urls.targetUrl });
    await target.connect();
    const dms = new DmsApplier(target, auditSchema, 'items', ['id']);
    await dms.insert({ id: '1', name: 'a' }, cdc('INSERT', '2026-11-22 10:00:00', 1));
    const { rows } = await target.query(
      `SELECT operation FROM ${quoteIdent(auditSchema)}.audit_log`,
    );
    await target.end();
    expect(rows).toEqual([{ operation: 'INSERT' }]);
  });

  it('keeps every placeholder of the trigger files on a code line or a whole comment line', () => {
    // renderTriggerSql leaves whole comment lines unfilled; a placeholder in a comment
    // after code (`x; -- {{audit_schema}}`) would be filled, and a line break in the name
    // would end that comment.
    for (const file of TRIGGER_SQL_FILES) {
      const text = readFileSync(path.join('triggers', file), 'utf8');
      const trailing = text
        .split('\n')
        .filter((line) => !/^\s*--/.test(line) && /--.*\{\{/.test(line));
      expect(trailing, file).toEqual([]);
    }
  });

  it('refuses a source column named like a DMS header column, with the reason', async () => {
    const urls = await databases('CREATE TABLE items (id int PRIMARY KEY, ar_h_operation text);');
    await expect(migrate({ tables: [{ table: 'items' }] }, urls)).rejects.toThrow(
      /source table public\.items has column\(s\) ar_h_operation: names starting with ar_h_ are the DMS header columns/,
    );
  });

  it('reads the history of a table whose schema name contains a dot; refuses an ambiguous reference', async () => {
    const urls = await databases(`
      CREATE SCHEMA "s.x"; CREATE TABLE "s.x".t (id int PRIMARY KEY, v text);
      CREATE SCHEMA s; CREATE TABLE s."x.t" (id int PRIMARY KEY, v text);
      CREATE SCHEMA "a.b"; CREATE TABLE "a.b".only (id int PRIMARY KEY, v text);`);
    await migrate(
      {
        tables: [
          { schema: 's.x', table: 't' },
          { schema: 's', table: 'x.t' },
          { schema: 'a.b', table: 'only' },
        ],
      },
      urls,
    );
    const target = new pg.Client({ connectionString: urls.targetUrl });
    await target.connect();
    const dms = new DmsApplier(target, 'audit', 'only', ['id']);
    await dms.insert({ id: '1', v: 'a' }, cdc('INSERT', '2026-11-22 10:00:00', 1));
    await target.end();
    const db = new Kysely<unknown>({
      dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: urls.targetUrl }) }),
    });
    try {
      const history = createHistory(db);
      const versions = await history.history('a.b.only', [1]);
      expect(versions.map((v) => [v.schema, v.table, v.newRow])).toEqual([
        ['a.b', 'only', { id: 1, v: 'a' }],
      ]);
      await expect(history.history('s.x.t', [1])).rejects.toThrow(
        /table reference s\.x\.t is ambiguous: \["s","x\.t"\] or \["s\.x","t"\]/,
      );
    } finally {
      await db.destroy();
    }
  });
});
