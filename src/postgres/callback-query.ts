import type pg from 'pg';

/**
 * Sends one statement as `client.query(text, values)` or `client.query(config)` would, and
 * answers the same result or error, but hands node-postgres a callback instead of using
 * its promise.
 *
 * Why: through node-postgres's promise (its callback a closure set on the query inside
 * the promise's executor, in the scope that also holds the query), every result stayed
 * reachable to V8's young-generation collector until the next full collection. Each
 * scavenge then copied and promoted the results (rows, parameter values and all) of every
 * statement since the last full one, and took several ms instead of well under one
 * (BENCHMARKS 4 for the history reads, 2 for the engine). With a callback they die young.
 *
 * The statement is queued at once, as node-postgres queues it (a pipelined connection
 * sends it at once), so statement order is the caller's. A failed statement's error is
 * the one node-postgres gives, its stack taken again here, as node-postgres's promise
 * does, so it shows the awaiting caller instead of the socket read.
 *
 * @example
 * ```ts
 * await query(client, 'BEGIN');
 * const { rowCount } = await query(client, 'UPDATE t SET a = $1 WHERE k = $2', [a, k]);
 * await query(client, { name: 'insert_t', text, values });
 * ```
 */
export async function query<R extends pg.QueryResultRow = pg.QueryResultRow>(
  client: pg.ClientBase,
  statement: string | pg.QueryConfig,
  values?: readonly unknown[],
): Promise<pg.QueryResult<R>> {
  try {
    return await new Promise<pg.QueryResult<R>>((resolve, reject) => {
      const answered = (error: Error | undefined, result: pg.QueryResult<R>) => {
        if (error) reject(error);
        else resolve(result);
      };
      if (typeof statement === 'string') client.query(statement, values as unknown[], answered);
      else client.query(statement, answered);
    });
  } catch (error) {
    if (error instanceof Error) Error.captureStackTrace(error);
    throw error;
  }
}
