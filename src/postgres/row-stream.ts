import type { CompiledQuery, Kysely } from 'kysely';
import pg from 'pg';
import { preparedStatementName } from './prepared-statements';

/**
 * One statement's rows, handed to the reader as they arrive: kysely's Postgres `cursor`
 * on connections made by `createKysely` (`stream()`, and the history API's reads).
 *
 * Unlike pg-cursor (and pg-query-stream, a Readable over it), which asks for each chunk
 * with an Execute of its own (a round trip per chunk, a portal open in between), it asks
 * for every row at once, as an ordinary statement does; unlike an ordinary statement, the
 * reader gets the rows of each network read while the server is still producing the
 * rest: a reader that converts rows (the history API) works while it waits instead of
 * after the last row. A first history page of 100 versions arrives in 6-7 reads over the
 * server's 1.5-2 ms; converted as they come, the call ends about 0.2 ms after the last
 * read instead of 0.7 (BENCHMARKS 4).
 *
 * Memory stays bounded as with a cursor: once the rows not yet read fill the reader's
 * chunk, the socket is paused (the server waits to send the rest) until the next read.
 * Closing before the last row drops the rest as they arrive: the statement still runs to
 * its end. Statements registered with `prepareByName` go by name, as on those
 * connections' other statements.
 *
 * A statement's error, or the connection's end, reaches the reader after the rows before
 * it, never as a short answer; while the socket is paused the server acts on a cancel
 * (statement_timeout) once the reader reads again (row-stream-adversary.test). As with
 * any kysely stream, a statement awaited on the same connection inside the loop over the
 * stream (a transaction's) waits for the stream to end: kysely hands the connection to
 * one consumer at a time.
 */
export class RowStream<Row> extends pg.Query<Row & pg.QueryResultRow> {
  readonly #rows: Row[] = [];
  /** The reader's chunk size: unread rows that pause the socket. */
  #chunk = 1;
  #error: Error | undefined;
  #done = false;
  #closed = false;
  /** The pending read, when no row was there to answer it. */
  #reader: { resolve: (rows: Row[]) => void; reject: (error: Error) => void } | undefined;
  /** Answers close() once the statement has ended. */
  #onDone: (() => void) | undefined;
  #closing: Promise<void> | undefined;
  /** The connection the rows come from (set when pg sends the statement). */
  #connection: pg.Connection | undefined;
  #paused = false;

  constructor(text: string, values: readonly unknown[]) {
    const name = preparedStatementName(text);
    const config = { text, values: [...values] };
    super(name === undefined ? config : { ...config, name });
    this.on('row', (row: Row) => this.#arrived(row));
    this.on('error', (error: Error) => this.#end(error));
    this.on('end', () => this.#end(undefined));
  }

  /** pg sends the statement: pg.Query's own submit, the connection kept to pause it. */
  override submit = (connection: pg.Connection): void => {
    this.#connection = connection;
    return QUERY_SUBMIT.call(this, connection);
  };

  /** Up to `count` rows, waiting for the next network read if none are here; [] after the last. */
  read(count: number): Promise<Row[]> {
    this.#chunk = count;
    this.#resume();
    if (this.#rows.length > 0) return Promise.resolve(this.#rows.splice(0, count));
    if (this.#error !== undefined) return Promise.reject(this.#failure());
    if (this.#done) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.#reader = { resolve, reject };
    });
  }

  /** Drops the rows not read; answers once the statement has ended (each call alike). */
  close(): Promise<void> {
    if (this.#closing === undefined) {
      this.#closed = true;
      this.#rows.length = 0;
      this.#resume();
      this.#closing = this.#done
        ? Promise.resolve()
        : new Promise((resolve) => (this.#onDone = resolve));
    }
    return this.#closing;
  }

  #arrived(row: Row): void {
    if (this.#closed) return;
    this.#rows.push(row);
    const reader = this.#reader;
    if (reader !== undefined) {
      // Answered with every row of this network read: pg parses all of it before a
      // microtask runs.
      this.#reader = undefined;
      queueMicrotask(() => reader.resolve(this.#rows.splice(0, this.#chunk)));
    } else if (this.#rows.length >= this.#chunk && !this.#paused && this.#connection) {
      this.#paused = true;
      this.#connection.stream.pause();
    }
  }

  #resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#connection!.stream.resume();
  }

  #end(error: Error | undefined): void {
    if (this.#done) return;
    this.#done = true;
    this.#error = error;
    const reader = this.#reader;
    this.#reader = undefined;
    if (reader !== undefined) {
      if (error !== undefined) reader.reject(this.#failure());
      else queueMicrotask(() => reader.resolve(this.#rows.splice(0, this.#chunk)));
    }
    this.#onDone?.();
  }

  /** The statement's error, its stack taken again so that it shows the reader. */
  #failure(): Error {
    const error = this.#error!;
    Error.captureStackTrace(error);
    return error;
  }
}

/** pg.Query's submit (a method of its prototype; @types/pg calls it a property). */
const QUERY_SUBMIT = (
  pg.Query.prototype as unknown as { submit: (connection: pg.Connection) => void }
).submit;

/** The kysely instances whose dialect streams with {@link RowStream} (createKysely's). */
const streaming = new WeakSet<object>();

/** Marks `db`, whose Postgres dialect has {@link RowStream} as its cursor. */
export function streamsRows<DB>(db: Kysely<DB>): Kysely<DB> {
  streaming.add(db);
  return db;
}

/**
 * A compiled statement's rows in chunks as they arrive, on a `createKysely` instance
 * ({@link RowStream}); on any other kysely instance (a dialect of the caller's, a
 * transaction) all of them in one chunk, from `executeQuery`. The same rows either way.
 */
export async function* rowsAsTheyArrive<Row>(
  db: Kysely<unknown>,
  query: CompiledQuery<Row>,
): AsyncGenerator<readonly Row[]> {
  if (!streaming.has(db)) {
    yield (await db.executeQuery(query)).rows;
    return;
  }
  for await (const chunk of db.getExecutor().stream(query, ROWS_PER_CHUNK)) yield chunk.rows;
}

/**
 * The chunk rowsAsTheyArrive asks for: more than a network read holds (about 14 history
 * rows in 8 KB), so the reader gets each read's rows at once; also the most rows kept
 * unread before the socket pauses.
 */
const ROWS_PER_CHUNK = 1000;
