import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { createKysely } from '../../src/postgres/connect';
import { createTestDatabase, withClient } from '../support/databases';

describe("the kit's connection pools", () => {
  it('survive an idle connection the server terminates: no crash, the next query reconnects', async () => {
    const url = await createTestDatabase('pool_error');
    const db = createKysely<unknown>(url, { max: 1, applicationName: 'pool-error-test' });
    try {
      await sql`SELECT 1`.execute(db);
      // What a DBA's pg_terminate_backend, a failover or a dropped database does to a
      // connection resting in the pool: node-postgres emits 'error' on the pool, which
      // crashes the process when nothing listens.
      await withClient(url, (client) =>
        client.query(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
            WHERE application_name = 'pool-error-test'`,
        ),
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
      const { rows } = await sql<{ ok: number }>`SELECT 1 AS ok`.execute(db);
      expect(rows).toEqual([{ ok: 1 }]);
    } finally {
      await db.destroy();
    }
  });
});
