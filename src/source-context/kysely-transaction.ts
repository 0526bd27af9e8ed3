import {
  PostgresDialect,
  sql,
  Transaction,
  type CompiledQuery,
  type ConnectionProvider,
  type DatabaseConnection,
  type Kysely,
  type KyselyPlugin,
  type QueryExecutor,
  type QueryResult,
  type RootOperationNode,
  type QueryId,
} from 'kysely';
import { AuditContextError } from './errors';

/**
 * Runs `work` in a kysely transaction that `begin` starts, by running simple-protocol
 * queries that may carry more statements than `BEGIN` (the context row in the same round
 * trip as the transaction's start). kysely 0.28 sends its own `begin` and offers no hook
 * to replace it, so this pins one connection of `db`, lets `begin` start it, and hands
 * `work` a real {@link Transaction} on that connection: committed when `work` resolves,
 * rolled back when it (or `begin`) throws, and refusing every query once it is over, as
 * `db.transaction().execute(work)` does.
 */
export async function transactionBegunWith<DB, T>(
  db: Kysely<DB>,
  begin: (run: (text: string) => Promise<unknown>) => Promise<void>,
  work: (trx: Transaction<DB>) => Promise<T>,
  /** What runs first in kysely's own transaction where the connection is not node-postgres. */
  fallback: (trx: Transaction<DB>) => Promise<void>,
): Promise<T> {
  return db.connection().execute(async (connection) => {
    if (!(await isNodePostgres(connection))) {
      return connection.transaction().execute(async (trx) => {
        await fallback(trx);
        return work(trx);
      });
    }
    const state = { over: false };
    const trx = new Transaction<DB>({
      config: { dialect: UNCONNECTABLE_DIALECT },
      dialect: UNCONNECTABLE_DIALECT,
      driver: UNCONNECTABLE_DIALECT.createDriver(),
      executor: new EndingExecutor(connection.getExecutor(), state),
    });
    // `begin` leaves the connection outside a transaction when it throws.
    await begin((text) => sql.raw(text).execute(connection));
    try {
      const result = await work(trx);
      state.over = true;
      await sql.raw('COMMIT').execute(connection);
      return result;
    } catch (error) {
      state.over = true;
      // The first error is the one to report; a ROLLBACK that fails means the
      // connection is gone.
      await sql
        .raw('ROLLBACK')
        .execute(connection)
        .catch(() => undefined);
      throw error;
    }
  });
}

/**
 * Whether the pinned connection is kysely's node-postgres one (PostgresDialect), which
 * runs a query without parameters as one simple-protocol query (several statements, one
 * round trip). Other drivers (the RDS Data API dialect, which cannot run two statements
 * in one call and begins transactions through its API) take kysely's own transaction.
 * kysely does not export the class: it is known by name, and a bundle that renames it
 * only takes the slower path.
 */
async function isNodePostgres<DB>(connection: Kysely<DB>): Promise<boolean> {
  return connection
    .getExecutor()
    .provideConnection(async (pinned) => pinned.constructor.name === 'PostgresConnection');
}

/**
 * The dialect the transaction object carries: kysely reads it only for
 * `trx.introspection` (PostgreSQL's, run through the transaction); its driver would
 * connect only for `trx.startTransaction()`, which a transaction cannot do.
 */
const UNCONNECTABLE_DIALECT = new PostgresDialect({
  pool: () =>
    Promise.reject(
      new AuditContextError('a transaction cannot start another (withAuditContext)', {
        code: 'AUDIT_CONTEXT_NESTED_TRANSACTION',
        kind: 'usage',
      }),
    ),
});

/** An executor that refuses queries once its transaction is committed or rolled back. */
class EndingExecutor implements QueryExecutor {
  constructor(
    private readonly executor: QueryExecutor,
    private readonly state: { over: boolean },
  ) {}

  get adapter() {
    return this.executor.adapter;
  }

  get plugins(): readonly KyselyPlugin[] {
    return this.executor.plugins;
  }

  transformQuery<N extends RootOperationNode>(node: N, queryId: QueryId): N {
    return this.executor.transformQuery(node, queryId);
  }

  compileQuery<R = unknown>(node: RootOperationNode, queryId: QueryId): CompiledQuery<R> {
    return this.executor.compileQuery(node, queryId);
  }

  provideConnection<R>(consumer: (connection: DatabaseConnection) => Promise<R>): Promise<R> {
    this.assertOpen();
    return this.executor.provideConnection(consumer);
  }

  executeQuery<R>(compiledQuery: CompiledQuery<R>): Promise<QueryResult<R>> {
    this.assertOpen();
    return this.executor.executeQuery(compiledQuery);
  }

  stream<R>(
    compiledQuery: CompiledQuery<R>,
    chunkSize: number,
  ): AsyncIterableIterator<QueryResult<R>> {
    this.assertOpen();
    return this.executor.stream(compiledQuery, chunkSize);
  }

  withConnectionProvider(connectionProvider: ConnectionProvider): QueryExecutor {
    return new EndingExecutor(this.executor.withConnectionProvider(connectionProvider), this.state);
  }

  withPlugin(plugin: KyselyPlugin): QueryExecutor {
    return new EndingExecutor(this.executor.withPlugin(plugin), this.state);
  }

  withPlugins(plugins: readonly KyselyPlugin[]): QueryExecutor {
    return new EndingExecutor(this.executor.withPlugins(plugins), this.state);
  }

  withPluginAtFront(plugin: KyselyPlugin): QueryExecutor {
    return new EndingExecutor(this.executor.withPluginAtFront(plugin), this.state);
  }

  withoutPlugins(): QueryExecutor {
    return new EndingExecutor(this.executor.withoutPlugins(), this.state);
  }

  private assertOpen(): void {
    if (this.state.over) {
      throw new AuditContextError(
        'the withAuditContext transaction is already committed or rolled back',
        { code: 'AUDIT_CONTEXT_TRANSACTION_OVER', kind: 'usage' },
      );
    }
  }
}
