import pg from 'pg';
import { parseConfig } from '../../src/config';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { createTestDatabase, withClient } from '../support/databases';

describe('migrate waiting for a lock', () => {
  it('gives up after lockTimeout with a clear error, leaving staging as it was', async () => {
    const sourceUrl = await createTestDatabase('src');
    const targetUrl = await createTestDatabase('tgt');
    const config = parseConfig({ tables: [{ table: 'items' }] });
    await withClient(sourceUrl, (c) => c.query('CREATE TABLE items (id int PRIMARY KEY, a text)'));
    await migrateTarget({ config, sourceUrl, targetUrl });
    await withClient(sourceUrl, (c) => c.query('ALTER TABLE items ADD COLUMN b text'));

    // A session that reads staging inside a long transaction (a report, DMS mid-batch).
    const holder = new pg.Client({ connectionString: targetUrl });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE audit.items_staging IN ACCESS SHARE MODE');
      const failure = migrateTarget({ config, sourceUrl, targetUrl, lockTimeout: '300ms' });
      await expect(failure).rejects.toMatchObject({ code: 'MIGRATE_LOCK_TIMEOUT' });
      await expect(failure).rejects.toThrow(/waited 300ms for a lock/);
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    const columns = await withClient(targetUrl, (c) =>
      c.query(`SELECT column_name FROM information_schema.columns
                WHERE table_schema = 'audit' AND table_name = 'items_staging' AND column_name = 'b'`),
    );
    expect(columns.rowCount).toBe(0);
    // Once the lock is free, the same run succeeds.
    await migrateTarget({ config, sourceUrl, targetUrl, lockTimeout: '300ms' });
  });

  it('refuses a lockTimeout PostgreSQL would not read as a duration', async () => {
    const config = parseConfig({ tables: [{ table: 'items' }] });
    await expect(
      migrateTarget({
        config,
        sourceUrl: 'postgres://x',
        targetUrl: 'postgres://y',
        lockTimeout: '5 minutes; DROP',
      }),
    ).rejects.toMatchObject({ code: 'USAGE', kind: 'usage' });
  });
});
