import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createKysely } from '../../src/postgres/connect';
import { prepareByName, preparedStatementName } from '../../src/postgres/prepared-statements';
import { RowStream } from '../../src/postgres/row-stream';

// createKysely's stream(): rows handed over as each network read brings them, the whole
// statement asked for at once (RowStream). What the history API converts while the rest of
// a page is on its way.
describe('stream() on connections made by createKysely', () => {
  let db: Kysely<unknown>;
  let other: pg.Client;

  beforeAll(async () => {
    db = createKysely<unknown>(inject('pgAdminUrl'), { max: 1 });
    other = new pg.Client({ connectionString: inject('pgAdminUrl') });
    await other.connect();
  });

  afterAll(async () => {
    await db?.destroy();
    await other?.end();
  });

  const stream = <Row>(query: ReturnType<typeof sql<Row>>, chunk: number) =>
    db.getExecutor().stream(query.compile(db), chunk);

  /** The backend of `db`'s one connection. */
  const backendOf = async () =>
    (await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(db)).rows[0]!.pid;

  it('gives the rows sent before the statement ends while it still runs', async () => {
    const pid = await backendOf();
    await other.query('SELECT pg_advisory_lock(7041)');
    try {
      // Rows 1-3 (20 kB each: the server's 8 kB send buffer flushes them) are sent before
      // row 4 waits for the lock this test holds.
      const rows = stream(
        sql<{ g: number; wait: string | null }>`SELECT g, repeat('x', 20000) AS pad,
               CASE WHEN g = 4 THEN pg_advisory_lock(7041)::text END AS wait
          FROM generate_series(1, 4) AS g`,
        100,
      );
      const first = await rows.next();
      const received = (first.value as { rows: { g: number }[] }).rows.map((row) => row.g);
      expect(received.length).toBeGreaterThan(0);
      expect(received).not.toContain(4);
      const { rows: waiting } = await other.query<{ wait_event: string }>(
        'SELECT wait_event FROM pg_stat_activity WHERE pid = $1',
        [pid],
      );
      expect(waiting[0]!.wait_event).toBe('advisory');
      await other.query('SELECT pg_advisory_unlock(7041)');
      for await (const chunk of { [Symbol.asyncIterator]: () => rows })
        received.push(...chunk.rows.map((row) => row.g));
      expect(received).toEqual([1, 2, 3, 4]);
    } finally {
      await other.query('SELECT pg_advisory_unlock_all()');
    }
  });

  it('answers the same rows as executeQuery, in chunks of at most the size asked', async () => {
    const query = sql<{ g: number; label: string }>`SELECT g, 'row ' || g AS label
      FROM generate_series(1, 2500) AS g`;
    const chunks: number[] = [];
    const streamed: unknown[] = [];
    for await (const chunk of stream(query, 300)) {
      chunks.push(chunk.rows.length);
      streamed.push(...chunk.rows);
    }
    expect(streamed).toEqual((await query.execute(db)).rows);
    expect(Math.max(...chunks)).toBeLessThanOrEqual(300);
  });

  it('pauses the server while the rows not read fill a chunk, then gives every row', async () => {
    await sql`DROP SEQUENCE IF EXISTS row_stream_made`.execute(db);
    await sql`CREATE SEQUENCE row_stream_made`.execute(db);
    const pid = await backendOf();
    // 60,000 rows of 1 kB, more than the socket buffers hold; the sequence counts the rows
    // the server has made.
    const rows = stream(
      sql<{ g: number }>`SELECT nextval('row_stream_made') AS g, repeat('y', 1000) AS pad
          FROM generate_series(1, 60000)`,
      100,
    );
    let count = ((await rows.next()).value as { rows: unknown[] }).rows.length;
    // Not read for now. Without the pause the client takes in every row and the server
    // makes all 60,000; with it the server stops, waiting to write, well before.
    const progress = async () => {
      const { rows: found } = await other.query<{ made: string; wait_event: string | null }>(
        `SELECT (SELECT last_value FROM row_stream_made) AS made, wait_event
           FROM pg_stat_activity WHERE pid = $1`,
        [pid],
      );
      return `${found[0]!.made} ${found[0]!.wait_event}`;
    };
    const seen: string[] = [await progress()];
    while (seen.length < 3 || new Set(seen.slice(-3)).size > 1) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      seen.push(await progress());
    }
    const [made, waitEvent] = seen.at(-1)!.split(' ');
    expect(waitEvent).toBe('ClientWrite');
    expect(Number(made)).toBeLessThan(30000);
    for await (const chunk of { [Symbol.asyncIterator]: () => rows }) count += chunk.rows.length;
    expect(count).toBe(60000);
  });

  it('after a reader stops early, the connection answers the next statement', async () => {
    for await (const chunk of stream(
      sql<{ g: number }>`SELECT g, repeat('z', 1000) AS pad FROM generate_series(1, 20000) AS g`,
      10,
    )) {
      expect(chunk.rows[0]!.g).toBe(1);
      break;
    }
    expect((await sql<{ one: number }>`SELECT 1 AS one`.execute(db)).rows).toEqual([{ one: 1 }]);
  });

  it("rejects with the statement's error after the rows before it", async () => {
    const received: number[] = [];
    const failing = async () => {
      for await (const chunk of stream(
        sql<{ q: number }>`SELECT 6 / (3 - g) AS q FROM generate_series(1, 5) AS g`,
        100,
      ))
        received.push(...chunk.rows.map((row) => row.q));
    };
    await expect(failing()).rejects.toMatchObject({ code: '22012' });
    expect(received).toEqual([3, 6]);
    expect((await sql<{ one: number }>`SELECT 1 AS one`.execute(db)).rows).toEqual([{ one: 1 }]);
  });

  it('answers every close, and the connection then answers the next statement', async () => {
    const client = new pg.Client({ connectionString: inject('pgAdminUrl') });
    await client.connect();
    try {
      const rows = client.query(
        new RowStream<{ g: number }>('SELECT g FROM generate_series(1, 50000) AS g', []),
      );
      expect((await rows.read(5)).map((row) => row.g)).toEqual([1, 2, 3, 4, 5]);
      await Promise.all([rows.close(), rows.close()]);
      await rows.close();
      expect((await client.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
    } finally {
      await client.end();
    }
  });

  it('sends a statement registered with prepareByName by its name', async () => {
    const query = sql<{ g: number }>`SELECT g FROM generate_series(1, 3) AS g WHERE g > ${0}`;
    const text = query.compile(db).sql;
    prepareByName(text);
    const streamed: unknown[] = [];
    for await (const chunk of stream(query, 100)) streamed.push(...chunk.rows);
    expect(streamed).toEqual([{ g: 1 }, { g: 2 }, { g: 3 }]);
    const { rows } = await sql<{ name: string }>`SELECT name FROM pg_prepared_statements`.execute(
      db,
    );
    expect(rows.map((row) => row.name)).toContain(preparedStatementName(text));
  });
});
