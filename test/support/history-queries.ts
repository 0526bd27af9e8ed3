import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { createHistory, type History } from '../../src/history';

/** A statement as kysely sent it: its text and bound values. */
export interface RecordedQuery {
  readonly sql: string;
  readonly parameters: readonly unknown[];
}

/**
 * The queries the history API sends to `url` while `read` runs, recorded by kysely's log
 * (to EXPLAIN them). The API here sends them unnamed, as on a kysely instance of your own.
 */
export async function historyQueriesOf(
  url: string,
  read: (history: History) => Promise<unknown>,
): Promise<RecordedQuery[]> {
  const queries: RecordedQuery[] = [];
  const logged = new Kysely<unknown>({
    dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 1 }) }),
    log: (event) => {
      if (event.level === 'query') queries.push(event.query);
    },
  });
  try {
    await read(createHistory(logged));
  } finally {
    await logged.destroy();
  }
  return queries;
}
