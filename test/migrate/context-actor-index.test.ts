import { readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { parseConfig } from '../../src/config';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { createTestDatabase, withClient } from '../support/databases';

/**
 * Migrations 0011, 0014, 0019 and 0026 build `audit_log_context_actor_idx`,
 * `audit_log_context_row_idx`, `audit_log_key_apply_order_idx` and
 * `audit_log_context_commit_idx` with a plain CREATE
 * INDEX (kysely runs each migration in a transaction, where CONCURRENTLY cannot run),
 * which holds off audit-log writes while it builds. The README's upgrade notes give the statements to build them CONCURRENTLY by
 * hand before migrate; migrate must then accept that index, and refuse one a failed
 * concurrent build left invalid.
 */

const config = parseConfig({ tables: [{ table: 'items' }] });

describe.each([
  { name: 'audit_log_context_actor_idx', MIGRATION: '0011-context-actor-index' },
  { name: 'audit_log_context_row_idx', MIGRATION: '0014-context-row-index' },
  { name: 'audit_log_key_apply_order_idx', MIGRATION: '0019-audit-log-key-apply-order' },
  { name: 'audit_log_context_commit_idx', MIGRATION: '0026-context-commit-index' },
])('migration $MIGRATION and an index built by hand', ({ name, MIGRATION }) => {
  const INDEX = `audit.${name}`;

  /** The README's statement, with the default audit schema: kept true by running it. */
  function readmeStatement(): string {
    const readme = readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');
    const block = [...readme.matchAll(/```sql\n([\s\S]*?)```/g)]
      .map((match) => match[1]!)
      .find((sql) => sql.includes('CONCURRENTLY') && sql.includes(name));
    if (block === undefined) throw new Error('README has no CREATE INDEX CONCURRENTLY block');
    return block;
  }

  /**
   * A target as the kit before MIGRATION left it: no index, MIGRATION not recorded. (A
   * later migration may have dropped the index already: 0026 replaces 0014's.)
   */
  async function targetBeforeMigration(sourceUrl: string): Promise<string> {
    const targetUrl = await createTestDatabase('idxtgt');
    await migrateTarget({ config, sourceUrl, targetUrl });
    await withClient(targetUrl, (client) =>
      client.query(
        `DROP INDEX IF EXISTS ${INDEX}; DELETE FROM audit.kysely_migration WHERE name = '${MIGRATION}'`,
      ),
    );
    return targetUrl;
  }

  async function indexState(url: string): Promise<{ oid: number; valid: boolean } | null> {
    return withClient(url, async (client) => {
      const { rows } = await client.query<{ oid: number; valid: boolean }>(
        `SELECT i.indexrelid::int AS oid, i.indisvalid AS valid
         FROM pg_index i WHERE i.indexrelid = to_regclass($1)`,
        [INDEX],
      );
      return rows[0] ?? null;
    });
  }

  let sourceUrl: string;

  beforeAll(async () => {
    sourceUrl = await createTestDatabase('idxsrc');
    await withClient(sourceUrl, (client) =>
      client.query('CREATE TABLE items (id int PRIMARY KEY, name text)'),
    );
  });

  it('builds the index when migrate runs it on an install without it', async () => {
    const targetUrl = await targetBeforeMigration(sourceUrl);
    expect(await indexState(targetUrl)).toBeNull();
    const report = await migrateTarget({ config, sourceUrl, targetUrl });
    expect(report.applied).toEqual([MIGRATION]);
    expect(await indexState(targetUrl)).toMatchObject({ valid: true });
  });

  it("accepts the index the README's CONCURRENTLY statement built before migrate", async () => {
    const targetUrl = await targetBeforeMigration(sourceUrl);
    await withClient(targetUrl, (client) => client.query(readmeStatement()));
    const built = await indexState(targetUrl);
    expect(built).toMatchObject({ valid: true });
    const report = await migrateTarget({ config, sourceUrl, targetUrl });
    expect(report.applied).toEqual([MIGRATION]);
    // The same index, not a second build.
    expect(await indexState(targetUrl)).toEqual(built);
    const definition = await withClient(targetUrl, async (client) => {
      const { rows } = await client.query<{ def: string }>(
        'SELECT pg_get_indexdef(to_regclass($1)) AS def',
        [INDEX],
      );
      return rows[0]!.def;
    });
    // What the migration itself builds.
    const freshUrl = await targetBeforeMigration(sourceUrl);
    await migrateTarget({ config, sourceUrl, targetUrl: freshUrl });
    const fresh = await withClient(freshUrl, async (client) => {
      const { rows } = await client.query<{ def: string }>(
        'SELECT pg_get_indexdef(to_regclass($1)) AS def',
        [INDEX],
      );
      return rows[0]!.def;
    });
    expect(definition).toBe(fresh);
  });

  it('refuses an index a failed concurrent build left invalid, naming the remedy', async () => {
    const targetUrl = await targetBeforeMigration(sourceUrl);
    await withClient(targetUrl, async (client) => {
      await client.query(readmeStatement());
      // What a cancelled or failed CREATE INDEX CONCURRENTLY leaves behind.
      await client.query(
        `UPDATE pg_index SET indisvalid = false WHERE indexrelid = '${INDEX}'::regclass`,
      );
    });
    await expect(migrateTarget({ config, sourceUrl, targetUrl })).rejects.toThrow(
      new RegExp(`${name}" is invalid.*DROP INDEX CONCURRENTLY`, 's'),
    );
    const recorded = await withClient(targetUrl, async (client) => {
      const { rows } = await client.query(
        `SELECT 1 FROM audit.kysely_migration WHERE name = '${MIGRATION}'`,
      );
      return rows.length;
    });
    expect(recorded).toBe(0);
  });

  it('refuses an index whose concurrent build is still running, saying to let it finish (not to drop it)', async () => {
    const targetUrl = await targetBeforeMigration(sourceUrl);
    // A writer's open transaction holds the README's build in its first wait, after it
    // has entered the index in the catalog (not valid yet).
    const writer = await connectTo(targetUrl);
    const builder = await connectTo(targetUrl);
    try {
      await writer.query('BEGIN; LOCK TABLE audit.audit_log IN ROW EXCLUSIVE MODE');
      const build = builder.query(readmeStatement());
      await waitForBuildToStart(targetUrl);
      const refused = migrateTarget({ config, sourceUrl, targetUrl });
      await expect(refused).rejects.toThrow(
        new RegExp(`${name}" is still being built.*let it finish, then run migrate again`, 's'),
      );
      await expect(refused).rejects.not.toThrow(/DROP INDEX/);
      await writer.query('COMMIT');
      await build;
    } finally {
      await writer.end();
      await builder.end();
    }
    // Once built, migrate keeps it.
    expect(await indexState(targetUrl)).toMatchObject({ valid: true });
    const report = await migrateTarget({ config, sourceUrl, targetUrl });
    expect(report.applied).toEqual([MIGRATION]);
  });

  /** Until the catalog has the index (the concurrent build past its first step). */
  async function waitForBuildToStart(url: string): Promise<void> {
    for (;;) {
      if ((await indexState(url)) !== null) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
});

async function connectTo(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return client;
}
