import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import type pg from 'pg';
import { connectClient, createKysely, createPool } from '../../src/postgres/connect';
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

  // The terminal Ctrl-C bug (#15): the servers end every connection while the demo still
  // holds some. node-postgres emits 'error' on a client whose server goes away even while
  // the client is checked out of a pool or running a query, and nothing listened there:
  // an unhandled 'error' event, a stack trace, exit 1. vitest fails a run on it.
  it('survive a checked-out connection the server terminates: the next query on it fails, no crash', async () => {
    const url = await createTestDatabase('pool_checked_out_error');
    const pool = createPool(url, { max: 1, applicationName: 'checked-out-test' });
    try {
      const client = await pool.connect();
      await terminateAndWaitForEnd(url, client, 'checked-out-test');
      await expect(client.query('SELECT 1')).rejects.toThrow(/not queryable|terminat/i);
      client.release(true);
      // The pool has let the dead connection go and opens a new one.
      const { rows } = await pool.query<{ ok: number }>('SELECT 1 AS ok');
      expect(rows).toEqual([{ ok: 1 }]);
    } finally {
      await pool.end();
    }
  });

  // A statement that the server's FATAL error ends (pg_terminate_backend, a shutdown, a
  // failover) answers that error before the connection's end reaches node-postgres: kysely
  // then released a connection still counted healthy, and the next statement on the pool
  // often got it and failed with 'Connection terminated unexpectedly' (16 of 30 rounds for
  // executeQuery, 11 of 30 for a stream before the fix).
  it.each(['executeQuery', 'stream'] as const)(
    'do not hand out again a createKysely connection ended during a statement (%s)',
    async (mode) => {
      const url = await createTestDatabase(`pool_fatal_${mode.toLowerCase()}`);
      const db = createKysely<unknown>(url, { max: 1, applicationName: `fatal-${mode}` });
      try {
        await withClient(url, async (admin) => {
          for (let round = 0; round < 10; round++) {
            const pid = (await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(db))
              .rows[0]!.pid;
            await admin.query('SELECT pg_advisory_lock(7044)');
            const statement = sql<{ g: number }>`SELECT g,
                CASE WHEN g = 2 THEN pg_advisory_lock(7044)::text END AS wait
                FROM generate_series(1, 3) AS g`.compile(db);
            const running =
              mode === 'executeQuery'
                ? db.executeQuery(statement)
                : (async () => {
                    for await (const _ of db.getExecutor().stream(statement, 100));
                  })();
            const failed = expect(running).rejects.toMatchObject({ code: '57P01' });
            for (;;) {
              const { rows } = await admin.query<{ wait_event: string | null }>(
                'SELECT wait_event FROM pg_stat_activity WHERE pid = $1',
                [pid],
              );
              if (rows[0]?.wait_event === 'advisory') break;
              await new Promise((resolve) => setTimeout(resolve, 20));
            }
            await admin.query('SELECT pg_terminate_backend($1)', [pid]);
            await failed;
            await admin.query('SELECT pg_advisory_unlock_all()');
            const { rows } = await sql<{ ok: number }>`SELECT 1 AS ok`.execute(db);
            expect(rows).toEqual([{ ok: 1 }]);
          }
        });
      } finally {
        await db.destroy();
      }
    },
  );

  it('survive a connectClient connection the server terminates: the next query fails, no crash', async () => {
    const url = await createTestDatabase('client_error');
    const client = await connectClient(url, 'client-error-test', 'target');
    try {
      await terminateAndWaitForEnd(url, client, 'client-error-test');
      await expect(client.query('SELECT 1')).rejects.toThrow(/not queryable|terminat/i);
    } finally {
      await client.end().catch(() => undefined);
    }
  });
});

/** pg_terminate_backend on `applicationName`'s sessions, then waits until `client` sees the end. */
async function terminateAndWaitForEnd(
  url: string,
  client: pg.ClientBase,
  applicationName: string,
): Promise<void> {
  const ended = new Promise((resolve) => client.once('end', resolve));
  await withClient(url, (admin) =>
    admin.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`,
      [applicationName],
    ),
  );
  await ended;
}
