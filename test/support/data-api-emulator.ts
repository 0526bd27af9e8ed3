import { randomUUID } from 'node:crypto';
import {
  BadRequestException,
  BeginTransactionCommand,
  CommitTransactionCommand,
  DatabaseErrorException,
  ExecuteStatementCommand,
  RDSDataClient,
  RollbackTransactionCommand,
  type ColumnMetadata,
  type ExecuteStatementCommandInput,
  type ExecuteStatementCommandOutput,
  type Field,
  type SqlParameter,
} from '@aws-sdk/client-rds-data';
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock';
import pg from 'pg';

/** What the emulated Data API serves: one cluster, secrets mapped to logins (URLs). */
export interface EmulatedCluster {
  readonly resourceArn: string;
  /** Secret ARN → a PostgreSQL URL logging in as that secret's user, database left out. */
  readonly secrets: Readonly<Record<string, string>>;
}

/**
 * The RDS Data API, mocked with aws-sdk-client-mock and answered by a real PostgreSQL:
 * requests and responses have the service's shapes (named `:name` parameters typed as
 * JDBC types them, `Field` unions, `columnMetadata`, `resultSetOptions`, the 1 MiB answer
 * limit and the 64 KB row limit, SQL errors as DatabaseErrorException with the SQLSTATE in the message), so the
 * kit's SQL and value handling are exercised as against Aurora, without AWS.
 */
export function emulateDataApi(cluster: EmulatedCluster): {
  readonly mock: AwsClientStub<RDSDataClient>;
  readonly close: () => Promise<void>;
} {
  const mock = mockClient(RDSDataClient);
  const transactions = new Map<string, pg.Client>();
  const typeNames = new Map<number, string>();

  const login = (input: { resourceArn?: string; secretArn?: string; database?: string }) => {
    if (input.resourceArn !== cluster.resourceArn)
      throw new BadRequestException({
        message: `HttpEndpoint is not enabled for resource ${input.resourceArn}`,
        $metadata: {},
      });
    const base = input.secretArn === undefined ? undefined : cluster.secrets[input.secretArn];
    if (base === undefined)
      throw new BadRequestException({ message: 'Secret not found', $metadata: {} });
    const url = new URL(base);
    if (input.database !== undefined) url.pathname = `/${encodeURIComponent(input.database)}`;
    return url.toString();
  };

  const connect = async (url: string) => {
    // Aurora's defaults: the Data API's sessions get no start-up options of the kit's.
    const client = new pg.Client({ connectionString: url, types: { getTypeParser: rawText } });
    await client.connect();
    if (typeNames.size === 0) {
      const { rows } = await client.query<{ oid: number; typname: string }>(
        'SELECT oid::int, typname FROM pg_catalog.pg_type',
      );
      for (const row of rows) typeNames.set(row.oid, row.typname);
    }
    return client;
  };

  mock.on(BeginTransactionCommand).callsFake(async (input) => {
    const client = await connect(login(input));
    await client.query('BEGIN');
    const transactionId = randomUUID();
    transactions.set(transactionId, client);
    return { transactionId };
  });
  const end = (statement: 'COMMIT' | 'ROLLBACK') => async (input: { transactionId?: string }) => {
    const client = transactions.get(input.transactionId ?? '');
    if (client === undefined)
      throw new BadRequestException({
        message: `Transaction ${input.transactionId} is not found`,
        $metadata: {},
      });
    transactions.delete(input.transactionId!);
    await client.query(statement).finally(() => client.end());
    return {
      transactionStatus: statement === 'COMMIT' ? 'Transaction Committed' : 'Rollback Complete',
    };
  };
  mock.on(CommitTransactionCommand).callsFake(end('COMMIT'));
  mock.on(RollbackTransactionCommand).callsFake(end('ROLLBACK'));

  mock.on(ExecuteStatementCommand).callsFake(async (input: ExecuteStatementCommandInput) => {
    const url = login(input);
    const inTransaction = input.transactionId !== undefined;
    const client = inTransaction ? transactions.get(input.transactionId!) : await connect(url);
    if (client === undefined)
      throw new BadRequestException({
        message: `Transaction ${input.transactionId} is not found`,
        $metadata: {},
      });
    try {
      const { text, values } = positional(input.sql ?? '', input.parameters ?? []);
      let result: pg.QueryResult<unknown[]>;
      try {
        result = await client.query<unknown[]>({ text, values, rowMode: 'array' });
      } catch (error) {
        const { message, code } = error as { message: string; code?: string };
        throw new DatabaseErrorException({
          message: `ERROR: ${message}; SQLState: ${code ?? 'XX000'}`,
          $metadata: {},
        });
      }
      return answer(result, input, typeNames);
    } finally {
      if (!inTransaction) await client.end();
    }
  });

  return {
    mock,
    close: async () => {
      for (const client of transactions.values()) await client.end().catch(() => undefined);
      transactions.clear();
      mock.restore();
    },
  };
}

function rawText(oid: number): (value: string) => unknown {
  // Arrays as node-postgres parses them (the Data API answers arrayValue); all else text.
  const arrays = pg.types.getTypeParser(oid as never);
  return ARRAY_OIDS.has(oid) ? (arrays as (value: string) => unknown) : (value: string) => value;
}

const ARRAY_OIDS = new Set([1000, 1005, 1007, 1009, 1015, 1016, 1021, 1022]);

/**
 * `:name` placeholders → `$n`, outside quotes, comments and `::` casts, each cast to the
 * type the Data API sends its field as (JDBC: a string without a hint is a varchar).
 */
function positional(sql: string, parameters: readonly SqlParameter[]) {
  const byName = new Map(parameters.map((p) => [p.name ?? '', p]));
  const order: SqlParameter[] = [];
  let text = '';
  for (let i = 0; i < sql.length;) {
    const rest = sql.slice(i);
    const skipped =
      /^'(?:[^']|'')*'/.exec(rest) ??
      /^"(?:[^"]|"")*"/.exec(rest) ??
      /^--[^\n]*/.exec(rest) ??
      /^\$([A-Za-z_]*)\$[\s\S]*?\$\1\$/.exec(rest) ??
      /^::/.exec(rest);
    if (skipped) {
      text += skipped[0];
      i += skipped[0].length;
      continue;
    }
    const named = /^:([A-Za-z_][A-Za-z0-9_]*)/.exec(rest);
    if (named) {
      const parameter = byName.get(named[1]!);
      if (parameter === undefined)
        throw new BadRequestException({
          message: `No value specified for parameter ${named[1]}`,
          $metadata: {},
        });
      order.push(parameter);
      text += `$${order.length}::${sqlTypeOf(parameter)}`;
      i += named[0].length;
      continue;
    }
    text += sql[i];
    i += 1;
  }
  return { text, values: order.map((p) => parameterValue(p.value)) };
}

function sqlTypeOf(parameter: SqlParameter): string {
  const value: Partial<Field> = parameter.value ?? {};
  if (parameter.typeHint !== undefined)
    return {
      DECIMAL: 'numeric',
      TIMESTAMP: 'timestamp',
      DATE: 'date',
      TIME: 'time',
      JSON: 'json',
      UUID: 'uuid',
    }[parameter.typeHint]!;
  if (value.longValue !== undefined) return 'bigint';
  if (value.doubleValue !== undefined) return 'float8';
  if (value.booleanValue !== undefined) return 'boolean';
  if (value.blobValue !== undefined) return 'bytea';
  if (value.arrayValue !== undefined)
    throw new BadRequestException({
      message: 'Array parameters are not supported.',
      $metadata: {},
    });
  return 'varchar';
}

function parameterValue(field: Field | undefined): unknown {
  if (field === undefined || field.isNull) return null;
  if (field.blobValue !== undefined) return Buffer.from(field.blobValue);
  return field.stringValue ?? field.longValue ?? field.doubleValue ?? field.booleanValue ?? null;
}

/** The Data API's answer for a result: records of Field unions and JDBC-style metadata. */
function answer(
  result: pg.QueryResult<unknown[]>,
  input: ExecuteStatementCommandInput,
  typeNames: ReadonlyMap<number, string>,
): ExecuteStatementCommandOutput {
  const $metadata = { httpStatusCode: 200 };
  if (result.fields.length === 0)
    return { numberOfRecordsUpdated: result.rowCount ?? 0, $metadata };
  const options = input.resultSetOptions ?? {};
  const records = result.rows.map((row) =>
    row.map((value, index) => toField(value, result.fields[index]!.dataTypeID, options)),
  );
  // "Each row in the result set must be 64 KB or less" (the Data API's limitations page;
  // its exact error text is not documented, so only the refusal is emulated).
  const wide = result.rows.findIndex((row) => JSON.stringify(row).length > 64 * 1024);
  if (wide >= 0)
    throw new BadRequestException({
      message: `Result set row ${wide + 1} is larger than the 64 KB row size limit`,
      $metadata: {},
    });
  if (JSON.stringify(records).length > 1024 * 1024)
    throw new BadRequestException({
      message: 'Database returned more than the allowed response size limit',
      $metadata: {},
    });
  const columnMetadata: ColumnMetadata[] | undefined = input.includeResultMetadata
    ? result.fields.map((field) => ({
        name: field.name,
        label: field.name,
        typeName: typeNames.get(field.dataTypeID) ?? 'unknown',
        type: 12,
        nullable: 1,
        isSigned: false,
        isCurrency: false,
        isCaseSensitive: true,
        isAutoIncrement: false,
        precision: 0,
        scale: 0,
        schemaName: '',
        tableName: '',
        arrayBaseColumnType: 0,
      }))
    : undefined;
  return {
    records,
    ...(columnMetadata && { columnMetadata }),
    numberOfRecordsUpdated: 0,
    $metadata,
  };
}

function toField(
  value: unknown,
  oid: number,
  options: NonNullable<ExecuteStatementCommandInput['resultSetOptions']>,
): Field {
  if (value === null) return { isNull: true };
  if (Array.isArray(value)) {
    if (oid === 1016 || oid === 1007 || oid === 1005)
      return { arrayValue: { longValues: value.map(Number) } };
    if (oid === 1000) return { arrayValue: { booleanValues: value as boolean[] } };
    return { arrayValue: { stringValues: value as string[] } };
  }
  const text = value as string;
  switch (oid) {
    case 16:
      return { booleanValue: text === 't' };
    case 20:
    case 21:
    case 23:
      // As the SDK reads the wire: a JSON number becomes a double.
      return options.longReturnType === 'STRING'
        ? { stringValue: text }
        : { longValue: JSON.parse(text) as number };
    case 700:
    case 701:
      return { doubleValue: Number(text) };
    case 1700:
      return options.decimalReturnType === 'DOUBLE_OR_LONG'
        ? { doubleValue: Number(text) }
        : { stringValue: text };
    case 17:
      return { blobValue: Buffer.from(text.slice(2), 'hex') };
    case 1184:
      // TIMESTAMPTZ always in UTC; the session's TimeZone is UTC on Aurora by default.
      return { stringValue: text.replace(/\+00$/, '') };
    default:
      return { stringValue: text };
  }
}
