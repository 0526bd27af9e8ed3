import { createHash } from 'node:crypto';
import type { PostgresPoolClient } from 'kysely';
import type pg from 'pg';
import { query as sendWithCallback } from './callback-query';

/**
 * Statements the kit sends again and again with the same text (the history API's per-key
 * queries), prepared once per connection as node-postgres named statements: PostgreSQL
 * then parses them once per session and, after five executions, may keep one generic plan
 * instead of planning every call (0.4-1 ms each for the history queries). kysely sends
 * every statement unnamed, so connections made by {@link createKysely} look the text up
 * here. Statements not registered are sent as before.
 *
 * The name is derived from the text, so one name never stands for two texts (node-postgres
 * refuses that) and every connection agrees on it.
 */
const names = new Map<string, string>();

/**
 * Marks `text` to be sent as a named prepared statement on connections made by
 * `createKysely`. Register only texts the caller sends many times: each one stays prepared
 * on every connection that ran it, for the connection's life.
 *
 * @example
 * ```ts
 * const compiled = query.compile();
 * prepareByName(compiled.sql);
 * await db.executeQuery(compiled); // Parse once per connection, then Bind/Execute
 * ```
 */
export function prepareByName(text: string): void {
  if (!names.has(text)) {
    names.set(text, `atk_${createHash('sha256').update(text).digest('hex').slice(0, 40)}`);
  }
}

/** The statement name {@link prepareByName} gave `text`, if any. */
export function preparedStatementName(text: string): string | undefined {
  return names.get(text);
}

const wrapped = new WeakMap<pg.PoolClient, PostgresPoolClient>();

/**
 * The pool client as kysely's Postgres dialect uses it, sending registered statements by
 * name. One wrapper per client: kysely keeps one connection object per client object.
 *
 * Statements go to node-postgres with a callback, not through its promise
 * ({@link sendWithCallback} says why): through the promise, every scavenge copied and
 * promoted the results of every query since the last full collection (a quarter of all a
 * history call allocated) and took 4-8 ms instead of well under one: the p99 of the
 * history calls it fell on (BENCHMARKS 4). Same statements, same answers and errors.
 *
 * Released after the server's FATAL error, the client is discarded ({@link endedByServer}).
 */
export function namingPreparedStatements(client: pg.PoolClient): PostgresPoolClient {
  let found = wrapped.get(client);
  if (found === undefined) {
    const query = (text: unknown, parameters?: ReadonlyArray<unknown>): unknown => {
      // A cursor (kysely's streaming): as kysely sent it.
      if (typeof text !== 'string')
        return (client.query as (...args: unknown[]) => unknown)(text, parameters);
      const name = names.get(text);
      const values = [...(parameters ?? [])];
      const config: pg.QueryConfig = name === undefined ? { text, values } : { name, text, values };
      return sendWithCallback(client, config);
    };
    const ended = endedByServer(client);
    // A connection the server has ended is discarded, not put back in the pool.
    const release = () => client.release(ended.error);
    found = { query, release } as PostgresPoolClient;
    wrapped.set(client, found);
  }
  return found;
}

/**
 * Watches `client` for the server's FATAL (or PANIC) error, after which PostgreSQL closes
 * the connection (pg_terminate_backend, a shutdown, a failover). The statement running
 * gets that error before node-postgres has read the connection's end, and kysely releases
 * the client at once: the pool, which discards only clients it already knows are ended,
 * kept it and handed it to the next statement, which then failed with 'Connection
 * terminated unexpectedly' (about half the time). Releasing with the error discards it.
 * One listener per client, nothing per statement.
 */
function endedByServer(client: pg.PoolClient): { error: Error | undefined } {
  const ended: { error: Error | undefined } = { error: undefined };
  // The connection's ErrorResponse messages, as node-postgres's own client listens to
  // them (PoolClient's types leave out the connection pg.Client has).
  (client as unknown as pg.Client).connection.on(
    'errorMessage',
    (message: { severity?: string; code?: string; message?: string }) => {
      if (endsTheConnection(message))
        ended.error = new Error(`the server ended the connection: ${message.message}`);
    },
  );
  return ended;
}

/**
 * Whether an ErrorResponse ends the connection. node-postgres gives only the severity
 * the server's lc_messages translates; class 57P (operator intervention: terminated,
 * shut down, database dropped, idle timeout) is FATAL in any language.
 */
function endsTheConnection(message: { severity?: string; code?: string }): boolean {
  return (
    message.severity === 'FATAL' ||
    message.severity === 'PANIC' ||
    (message.code?.startsWith('57P') ?? false)
  );
}
