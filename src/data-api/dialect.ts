import {
  BeginTransactionCommand,
  CommitTransactionCommand,
  ExecuteStatementCommand,
  RDSDataClient,
  RollbackTransactionCommand,
} from '@aws-sdk/client-rds-data';
import {
  CompiledQuery,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type QueryCompiler,
  type QueryResult,
  type TransactionSettings,
} from 'kysely';
import { AuditTrailError } from '../errors';
import { PINNED_OUTPUT_SETTINGS } from '../postgres/connect';
import { EXACT_RESULT_OPTIONS, fromField, toSqlParameter } from './values';

/** Where and as whom statements run through the RDS Data API. */
export interface DataApiTarget {
  /** ARN of the Aurora cluster (its Data API enabled). */
  readonly resourceArn: string;
  /** ARN of the Secrets Manager secret of the login to run as (the auditor's, for reads). */
  readonly secretArn: string;
  /** Database on the cluster. */
  readonly database: string;
  /**
   * The client to call the Data API with (region and credentials from the usual AWS
   * sources). @default a new RDSDataClient, region taken from the cluster ARN
   */
  readonly client?: RDSDataClient;
}

/**
 * A kysely dialect over the RDS Data API (HTTPS and IAM, no network path to the
 * database): PostgreSQL SQL, parameters sent as named Data API parameters (`:p1`), values
 * read back exactly (see `fromField` in src/data-api/values.ts). Transactions map to BeginTransaction /
 * CommitTransaction / RollbackTransaction; an isolation level or access mode is set by
 * the transaction's first statement. Streaming is not supported.
 *
 * Written here rather than taken from `kysely-data-api`, which declares kysely 0.27 and
 * sends a JS bigint as a double and reads `bigint` columns as doubles.
 *
 * @example
 * ```ts
 * const db = new Kysely<unknown>({
 *   dialect: new DataApiDialect({ resourceArn, secretArn, database: 'audit' }),
 * });
 * const history = createHistory(db, { auditSchema: 'audit' });
 * ```
 */
export class DataApiDialect implements Dialect {
  constructor(private readonly target: DataApiTarget) {}

  createAdapter(): DialectAdapter {
    return new PostgresAdapter();
  }

  createDriver(): Driver {
    return new DataApiDriver(this.target);
  }

  createIntrospector(db: Kysely<unknown>): DatabaseIntrospector {
    return new PostgresIntrospector(db);
  }

  createQueryCompiler(): QueryCompiler {
    return new DataApiQueryCompiler();
  }
}

/** PostgreSQL SQL with `:p1, :p2, ...` placeholders, the Data API's named parameters. */
export class DataApiQueryCompiler extends PostgresQueryCompiler {
  protected override getCurrentParameterPlaceholder(): string {
    return `:p${this.numParameters}`;
  }
}

/** A Data API call failed: the message names the cluster and what AWS said. */
export class DataApiError extends AuditTrailError {
  override readonly name = 'DataApiError';
  constructor(resourceArn: string, cause: unknown) {
    const error = cause as { name?: string; message?: string };
    const denied = error.name === 'AccessDeniedException' || error.name === 'ForbiddenException';
    super(`target (Data API ${resourceArn}): ${error.name ?? 'Error'}: ${error.message ?? cause}`, {
      code: denied ? 'DATA_API_DENIED' : 'DATA_API_FAILED',
      kind: 'connection',
      cause,
      hint: denied
        ? "attach the stack's AuditorPolicyArn policy to your role, and use the auditor login's secret"
        : 'check the cluster ARN, that its Data API is enabled, the secret ARN and the database name',
    });
  }
}

/** SQL errors keep PostgreSQL's message; the kit's error mapping reads the SQLSTATE when there is one. */
function sqlStateOf(cause: unknown): string | undefined {
  const message = (cause as { message?: string }).message ?? '';
  return /SQLState: ([0-9A-Z]{5})/.exec(message)?.[1];
}

class DataApiDriver implements Driver {
  private readonly client: RDSDataClient;

  constructor(private readonly target: DataApiTarget) {
    this.client = target.client ?? new RDSDataClient({ region: regionOf(target.resourceArn) });
  }

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    return new DataApiConnection(this.target, this.client);
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings) {
    await (connection as DataApiConnection).begin(settings);
  }

  async commitTransaction(connection: DatabaseConnection) {
    await (connection as DataApiConnection).end('commit');
  }

  async rollbackTransaction(connection: DatabaseConnection) {
    await (connection as DataApiConnection).end('rollback');
  }

  async releaseConnection(): Promise<void> {}

  async destroy(): Promise<void> {
    if (this.target.client === undefined) this.client.destroy();
  }
}

class DataApiConnection implements DatabaseConnection {
  private transactionId: string | undefined;

  constructor(
    private readonly target: DataApiTarget,
    private readonly client: RDSDataClient,
  ) {}

  private get location() {
    return { resourceArn: this.target.resourceArn, secretArn: this.target.secretArn };
  }

  async begin(settings: TransactionSettings): Promise<void> {
    const response = await this.call(() =>
      this.client.send(
        new BeginTransactionCommand({ ...this.location, database: this.target.database }),
      ),
    );
    this.transactionId = response.transactionId;
    // The Data API opens a plain transaction; the first statement gives it its mode.
    const mode = [
      settings.isolationLevel && `ISOLATION LEVEL ${settings.isolationLevel.toUpperCase()}`,
      settings.accessMode?.toUpperCase(),
    ].filter(Boolean);
    if (mode.length > 0)
      await this.executeQuery(CompiledQuery.raw(`SET TRANSACTION ${mode.join(' ')}`));
    // The Data API's sessions have no start-up options: pin what changes how values print.
    const pinned = Object.entries(PINNED_OUTPUT_SETTINGS);
    await this.executeQuery(
      CompiledQuery.raw(
        `SELECT ${pinned.map((_, i) => `pg_catalog.set_config(:p${2 * i + 1}, :p${2 * i + 2}, true)`).join(', ')}`,
        pinned.flat(),
      ),
    );
  }

  async end(outcome: 'commit' | 'rollback'): Promise<void> {
    const transactionId = this.transactionId;
    if (transactionId === undefined) return;
    this.transactionId = undefined;
    await this.call(() =>
      this.client.send(
        outcome === 'commit'
          ? new CommitTransactionCommand({ ...this.location, transactionId })
          : new RollbackTransactionCommand({ ...this.location, transactionId }),
      ),
    );
  }

  async executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const parameters = compiledQuery.parameters.map((value, index) =>
      toSqlParameter(`p${index + 1}`, value),
    );
    const response = await this.call(() =>
      this.client.send(
        new ExecuteStatementCommand({
          ...this.location,
          database: this.target.database,
          sql: compiledQuery.sql,
          ...(parameters.length > 0 && { parameters }),
          ...(this.transactionId !== undefined && { transactionId: this.transactionId }),
          includeResultMetadata: true,
          resultSetOptions: EXACT_RESULT_OPTIONS,
        }),
      ),
    );
    const columns = response.columnMetadata ?? [];
    const rows = (response.records ?? []).map(
      (record) =>
        Object.fromEntries(
          record.map((field, index) => {
            const column = columns[index];
            return [column?.label ?? column?.name ?? String(index), fromField(field, column)];
          }),
        ) as R,
    );
    return {
      rows,
      ...(response.numberOfRecordsUpdated !== undefined &&
        response.columnMetadata === undefined && {
          numAffectedRows: BigInt(response.numberOfRecordsUpdated),
        }),
    };
  }

  // eslint-disable-next-line require-yield -- the interface needs an iterator; none is served
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new AuditTrailError('the Data API dialect does not stream query results', {
      code: 'DATA_API_NO_STREAM',
    });
  }

  /** Runs one call; an SQL error keeps its SQLSTATE as `code`, anything else names the cluster. */
  private async call<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      const sqlState = sqlStateOf(error);
      if ((error as { name?: string }).name === 'DatabaseErrorException' && sqlState) {
        throw Object.assign(new Error((error as Error).message, { cause: error }), {
          code: sqlState,
        });
      }
      throw new DataApiError(this.target.resourceArn, error);
    }
  }
}

/** `arn:aws:rds:eu-west-1:123456789012:cluster:x` → `eu-west-1`. */
function regionOf(resourceArn: string): string | undefined {
  const region = resourceArn.split(':')[3];
  return region === undefined || region === '' ? undefined : region;
}

/**
 * A kysely instance over the Data API; destroy it when done.
 *
 * @example
 * ```ts
 * const db = createDataApiKysely({ resourceArn, secretArn, database: 'audit' });
 * ```
 */
export function createDataApiKysely<DB>(target: DataApiTarget): Kysely<DB> {
  return new Kysely<DB>({ dialect: new DataApiDialect(target) });
}
