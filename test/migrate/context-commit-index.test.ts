import { parseConfig } from '../../src/config';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { createTestDatabase, withClient } from '../support/databases';

/**
 * Migration 0026 replaces 0014's context lookup index (by xid, then commit time) with one
 * by commit time first. An install that ran 0014 has the old index; after migrate it has
 * the new one only, so the planner has one index for the lookup, not two alike.
 */

const config = parseConfig({ tables: [{ table: 'items' }] });

/** The audit log's context lookup indexes, by name, with their definitions. */
async function contextIndexes(url: string): Promise<Record<string, string>> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ name: string; definition: string }>(
      `SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS definition
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = 'audit.audit_log'::regclass
          AND c.relname IN ('audit_log_context_row_idx', 'audit_log_context_commit_idx')`,
    );
    return Object.fromEntries(rows.map((row) => [row.name, row.definition]));
  });
}

describe('migration 0026 (context lookup index by commit time)', () => {
  it("replaces 0014's index on an install that has it", async () => {
    const sourceUrl = await createTestDatabase('cmtsrc');
    const targetUrl = await createTestDatabase('cmttgt');
    await withClient(sourceUrl, (client) =>
      client.query('CREATE TABLE items (id int PRIMARY KEY, name text)'),
    );
    await migrateTarget({ config, sourceUrl, targetUrl });
    const current = await contextIndexes(targetUrl);
    // An install as 0025 left it: 0014's index, as 0014 builds it, and no 0026.
    await withClient(targetUrl, (client) =>
      client.query(`
        DROP INDEX audit.audit_log_context_commit_idx;
        CREATE INDEX audit_log_context_row_idx ON audit.audit_log
          (transaction_id, commit_timestamp, id)
          WHERE operation = 'INSERT' AND row_key ? 'transaction_id';
        DELETE FROM audit.kysely_migration WHERE name = '0026-context-commit-index'`),
    );
    expect(Object.keys(await contextIndexes(targetUrl))).toEqual(['audit_log_context_row_idx']);

    const report = await migrateTarget({ config, sourceUrl, targetUrl });
    expect(report.applied).toEqual(['0026-context-commit-index']);
    expect(await contextIndexes(targetUrl)).toEqual(current);
    expect(current).toEqual({
      audit_log_context_commit_idx:
        'CREATE INDEX audit_log_context_commit_idx ON audit.audit_log USING btree (commit_timestamp, transaction_id, id) ' +
        "WHERE ((operation = 'INSERT'::text) AND (row_key ? 'transaction_id'::text))",
    });
  });
});
