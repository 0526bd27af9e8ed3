import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { KIT_MIGRATIONS } from '../../migrations/target';
import { parseConfig } from '../../src/config';
import { createHistory } from '../../src/history';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { renderTriggerSql, sqlChecksum, TRIGGER_SQL_FILES } from '../../src/migrate/sql-files';
import { verifyIntegrity } from '../../src/trust/integrity';
import { cdc, DmsApplier } from '../support/dms-apply';
import { createTestDatabase, withClient } from '../support/databases';

/**
 * Upgrades from what release 0.1.0 installed (test/migrate/fixtures/target-0.1.0.sql: a
 * pg_dump of a target migrated by that release, with history in it) to the current kit.
 */

const SOURCE_DDL = 'CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(10,2))';
const config = parseConfig({ tables: [{ table: 'items' }] });
const RELEASE_0_1_0 = readFileSync(path.join(__dirname, 'fixtures', 'target-0.1.0.sql'), 'utf8');

async function sourceDatabase(): Promise<string> {
  const url = await createTestDatabase('src');
  await withClient(url, (client) => client.query(SOURCE_DDL));
  return url;
}

/** A target as release 0.1.0 left it. */
async function release010Target(): Promise<string> {
  const url = await createTestDatabase('tgt');
  await withClient(url, (client) => client.query(RELEASE_0_1_0));
  return url;
}

async function withDb<T>(url: string, work: (db: Kysely<unknown>) => Promise<T>): Promise<T> {
  const db = new Kysely<unknown>({
    dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 1 }) }),
  });
  try {
    return await work(db);
  } finally {
    await db.destroy();
  }
}

/**
 * Everything about the audit schema a kit version defines: columns, constraints,
 * indexes, functions, triggers, privileges and row-level security. Not the data.
 */
async function schemaShape(url: string): Promise<Record<string, string[]>> {
  const queries = {
    columns: `SELECT format('%s.%s %s null=%s default=%s identity=%s collation=%s', table_name, column_name,
                            data_type, is_nullable, column_default, is_identity, collation_name)
              FROM information_schema.columns WHERE table_schema = 'audit'`,
    constraints: `SELECT format('%s %s', conname, pg_get_constraintdef(oid)) FROM pg_constraint
                  WHERE connamespace = 'audit'::regnamespace`,
    indexes: `SELECT indexdef FROM pg_indexes WHERE schemaname = 'audit'`,
    functions: `SELECT format('%s acl=%s', pg_get_functiondef(oid), coalesce(proacl, acldefault('f', proowner)))
                FROM pg_proc WHERE pronamespace = 'audit'::regnamespace`,
    triggers: `SELECT format('%s enabled=%s', pg_get_triggerdef(t.oid), t.tgenabled) FROM pg_trigger t
               JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = 'audit'::regnamespace
               AND NOT t.tgisinternal`,
    tables: `SELECT format('%s kind=%s rls=%s acl=%s', relname, relkind, relrowsecurity,
                           coalesce(relacl, acldefault('r', relowner)))
             FROM pg_class WHERE relnamespace = 'audit'::regnamespace`,
  };
  return withClient(url, async (client) => {
    const shape: Record<string, string[]> = {};
    for (const [name, query] of Object.entries(queries)) {
      const { rows } = await client.query<{ line: string }>(
        `SELECT line FROM (${query}) AS q(line) ORDER BY 1`,
      );
      shape[name] = rows.map((row) => row.line);
    }
    return shape;
  });
}

describe('upgrading an install made by release 0.1.0', () => {
  it('runs only the new migrations, installs the current functions, and keeps history readable', async () => {
    const sourceUrl = await sourceDatabase();
    const targetUrl = await release010Target();

    const report = await migrateTarget({ config, sourceUrl, targetUrl });
    expect(report.applied).toEqual(
      KIT_MIGRATIONS.map((migration) => migration.name).filter((name) => name !== '0001-audit-log'),
    );
    expect(report.installedSqlFiles).toEqual(TRIGGER_SQL_FILES);
    expect(report.createdStagingTables).toEqual([]);

    // The recorded checksums are those of the files this package ships.
    const recorded = await withClient(targetUrl, async (client) => {
      const { rows } = await client.query<{ file: string; checksum: string }>(
        'SELECT file, checksum FROM audit.kit_sql_file ORDER BY file',
      );
      return Object.fromEntries(rows.map((row) => [row.file, row.checksum]));
    });
    expect(recorded).toEqual(
      Object.fromEntries(
        [...TRIGGER_SQL_FILES]
          .sort()
          .map((file) => [file, sqlChecksum(renderTriggerSql(file, 'audit'))]),
      ),
    );

    // History recorded by 0.1.0 still reads, exact numbers included.
    const history = await withDb(targetUrl, (db) =>
      createHistory(db).history('public.items', { id: 2 }),
    );
    expect(history.map((v) => [v.operation, v.commitTimestamp, v.newRow])).toEqual([
      ['INSERT', '2026-11-20T10:00:00.123456Z', { id: 2, name: 'second', price: '2.00' }],
      ['UPDATE', '2026-11-20T10:00:01.000002Z', { id: 2, name: 'second', price: '2.25' }],
    ]);
    const deleted = await withDb(targetUrl, (db) =>
      createHistory(db).history('public.items', { id: 1 }),
    );
    expect(deleted.map((v) => v.operation)).toEqual(['SNAPSHOT', 'DELETE']);

    // The engine's position survives, and new changes are captured by the new functions.
    await withClient(targetUrl, async (client) => {
      const { rows } = await client.query(
        'SELECT slot_name, last_end_lsn::text AS lsn FROM audit.cdc_engine_position',
      );
      expect(rows).toEqual([{ slot_name: 'audit_trail', lsn: '0/1000038' }]);
      const dms = new DmsApplier(client, 'audit', 'items', ['id']);
      await dms.update({ id: '2' }, { name: 'renamed' }, cdc('UPDATE', '2026-11-21 08:00:00', 703));
    });
    const after = await withDb(targetUrl, (db) =>
      createHistory(db).history('public.items', { id: 2 }),
    );
    expect(after.at(-1)).toMatchObject({ operation: 'UPDATE', changedColumns: ['name'] });

    // The rows 0.1.0 recorded are sealed in a genesis block, the new change in its own
    // block, and the whole chain verifies.
    const integrity = await verifyIntegrity({ targetUrl, auditSchema: 'audit' });
    expect(integrity).toMatchObject({ ok: true, blocks: 2, findingCount: 0 });
    const chain = await withClient(targetUrl, (client) =>
      client.query<{ kind: string; rows: number }>(
        'SELECT kind, cardinality(row_ids) AS rows FROM audit.audit_chain ORDER BY block_no',
      ),
    );
    expect(chain.rows.map((row) => row.kind)).toEqual(['genesis', 'capture']);
    expect(chain.rows[1]?.rows).toBe(1);
    expect(integrity.rows).toBe(chain.rows[0]!.rows + 1);

    const again = await migrateTarget({ config, sourceUrl, targetUrl });
    expect(again).toMatchObject({ applied: [], installedSqlFiles: [], triggersInstalled: [] });
  });

  it('leaves the same schema as a fresh install of this version', async () => {
    const sourceUrl = await sourceDatabase();
    const upgraded = await release010Target();
    const fresh = await createTestDatabase('tgt');
    await migrateTarget({ config, sourceUrl, targetUrl: upgraded });
    await migrateTarget({ config, sourceUrl, targetUrl: fresh });
    expect(await schemaShape(upgraded)).toEqual(await schemaShape(fresh));
  });

  it('re-installs a function file whose installed version differs from the package', async () => {
    const sourceUrl = await sourceDatabase();
    const targetUrl = await createTestDatabase('tgt');
    await migrateTarget({ config, sourceUrl, targetUrl });
    // What an older package would have left: another body, another checksum.
    await withClient(targetUrl, (client) =>
      client.query(`
        CREATE OR REPLACE FUNCTION audit.changed_columns(old_row jsonb, new_row jsonb)
        RETURNS text[] LANGUAGE sql IMMUTABLE AS $$ SELECT ARRAY['stale'] $$;
        UPDATE audit.kit_sql_file SET checksum = 'older' WHERE file = 'capture-change.sql';`),
    );

    const report = await migrateTarget({ config, sourceUrl, targetUrl });
    expect(report.installedSqlFiles).toEqual(['capture-change.sql']);
    await withClient(targetUrl, async (client) => {
      const { rows } = await client.query<{ changed: string[] }>(
        `SELECT audit.changed_columns('{"a": 1, "b": 1}', '{"a": 2, "b": 1}') AS changed`,
      );
      expect(rows[0]?.changed).toEqual(['a']);
    });
  });
});
