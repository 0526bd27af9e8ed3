import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import type pg from 'pg';
import { connectClient, createKysely, createPool } from '../../src/postgres/connect';
import { createDryRunKysely } from '../../src/postgres/dry-run';
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

  // What the README's pool.connect() examples (beginWithAuditContext) and createPool's doc
  // say: release a client whose statement failed with `true`, so the pool closes it. The
  // server's FATAL reaches the statement before node-postgres reads the connection's end,
  // so a plain release() can hand the ended connection to the next caller (f652b40).
  it('hand out a new connection after a createPool client whose statement the server ended is released as broken', async () => {
    const url = await createTestDatabase('pool_release_broken');
    const pool = createPool(url, { max: 1, applicationName: 'release-broken' });
    try {
      await withClient(url, async (admin) => {
        for (let round = 0; round < 10; round++) {
          const client = await pool.connect();
          let broken = false;
          try {
            const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid'))
              .rows[0]!.pid;
            await admin.query('SELECT pg_advisory_lock(7045)');
            const running = client.query('SELECT pg_advisory_lock(7045)');
            const failed = expect(running).rejects.toMatchObject({ code: '57P01' });
            await waitForAdvisoryWait(admin, pid);
            await admin.query('SELECT pg_terminate_backend($1)', [pid]);
            await failed;
            broken = true;
          } finally {
            client.release(broken);
          }
          // At once, as the next caller would: the connection's end may not have been read.
          const next = pool.query<{ ok: number }>('SELECT 1 AS ok');
          await admin.query('SELECT pg_advisory_unlock_all()');
          expect((await next).rows).toEqual([{ ok: 1 }]);
        }
      });
    } finally {
      await pool.end();
    }
  });

  // A dry run's work lives in one transaction on one connection: ended by the server, every
  // later statement of that dry run must fail, never run on a new connection (where each
  // would commit on its own). The next dry run works.
  it('fail every later statement of a dry run whose connection the server ended; nothing is committed', async () => {
    const url = await createTestDatabase('dry_run_ended');
    const dry = createDryRunKysely<unknown>(url, { applicationName: 'dry-run-ended' });
    try {
      await sql`CREATE TABLE before_end (id int)`.execute(dry.db);
      await withClient(url, (admin) =>
        admin.query(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`,
          ['dry-run-ended'],
        ),
      );
      await expect(sql`CREATE TABLE after_end (id int)`.execute(dry.db)).rejects.toThrow();
      await expect(sql`CREATE TABLE after_end (id int)`.execute(dry.db)).rejects.toThrow();
    } finally {
      await dry.db.destroy().catch(() => undefined);
    }
    const next = createDryRunKysely<unknown>(url, { applicationName: 'dry-run-next' });
    try {
      const { rows } = await sql<{ tables: string | null }>`
        SELECT string_agg(relname, ',') AS tables FROM pg_class
         WHERE relname IN ('before_end', 'after_end')`.execute(next.db);
      expect(rows).toEqual([{ tables: null }]);
    } finally {
      await next.db.destroy();
    }
  });

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

/** Waits until backend `pid` waits for an advisory lock. */
async function waitForAdvisoryWait(admin: pg.ClientBase, pid: number): Promise<void> {
  for (;;) {
    const { rows } = await admin.query<{ wait_event: string | null }>(
      'SELECT wait_event FROM pg_stat_activity WHERE pid = $1',
      [pid],
    );
    if (rows[0]?.wait_event === 'advisory') return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

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
