import { AUDIT_CONTEXT_COLUMNS, type AuditContextField } from '../config';
import { quoteIdent, quoteLiteral, quoteQualified } from '../postgres/identifiers';

const FIELDS = Object.keys(AUDIT_CONTEXT_COLUMNS) as AuditContextField[];

/** The context table's columns the helpers write, in their parameter order. */
export const CONTEXT_INSERT_COLUMNS: readonly string[] = [
  ...FIELDS.map((field) => AUDIT_CONTEXT_COLUMNS[field]),
  'metadata',
];

/** The statements that start a transaction carrying context; see {@link beginWithContext}. */
export interface BeginWithContextStatements {
  /** `BEGIN; EXECUTE <prepared insert>(<literals>)`: the usual case, one round trip. */
  readonly begin: string;
  /** `PREPARE ...; BEGIN; EXECUTE ...`: the first time on a connection (or after DISCARD). */
  readonly prepareThenBegin: string;
}

/**
 * The context row's INSERT that {@link beginWithContextStatements} prepares: `$1`..`$5`
 * the text fields in {@link AUDIT_CONTEXT_COLUMNS} order, `$6` the metadata JSON.
 * Exported for the benchmark.
 */
export function contextRowInsert(schema: string, table: string): string {
  return (
    `INSERT INTO ${quoteQualified(schema, table)} (${CONTEXT_INSERT_COLUMNS.map(quoteIdent).join(', ')}) ` +
    `VALUES (${CONTEXT_INSERT_COLUMNS.map((_, i) => `$${i + 1}`).join(', ')})`
  );
}

/**
 * `BEGIN` and the context row as one simple-protocol query, so setting context costs the
 * application no extra round trip. Bind parameters cannot travel with a second statement
 * in one query, so the row is an `EXECUTE` of a statement the connection prepared once
 * (planned once, as a prepared INSERT; pasting the values into an INSERT would make the
 * server parse and plan it in every transaction, which costs more than the round trip
 * saved), its arguments quoted as literals by pg's `escapeLiteral`, never pasted.
 * `values` are the text fields in {@link AUDIT_CONTEXT_COLUMNS} order, then the metadata
 * JSON text. A plain INSERT: in a transaction just begun no context row can exist yet.
 */
export function beginWithContextStatements(
  schema: string,
  table: string,
  values: readonly (string | null)[],
): BeginWithContextStatements {
  if (values.length !== CONTEXT_INSERT_COLUMNS.length) {
    throw new TypeError(`expected ${CONTEXT_INSERT_COLUMNS.length} context values`);
  }
  const types = CONTEXT_INSERT_COLUMNS.map((column) => (column === 'metadata' ? 'jsonb' : 'text'));
  const insert = contextRowInsert(schema, table);
  const name = quoteIdent(`audit_trail_begin_context_${hash(insert)}`);
  const prepare = `PREPARE ${name} (${types.join(', ')}) AS ${insert}`;
  const literals = values.map((value) => (value === null ? 'NULL' : quoteLiteral(value)));
  const begin = `BEGIN; EXECUTE ${name}(${literals.join(', ')})`;
  return { begin, prepareThenBegin: `${prepare}; ${begin}` };
}

/**
 * Starts a transaction carrying context with `run` (a simple-protocol query on one
 * connection): `BEGIN; EXECUTE ...`, and where the connection has not prepared the
 * insert yet (SQLSTATE 26000), `PREPARE ...; BEGIN; EXECUTE ...` after rolling back.
 * Any other failure rolls the transaction back and is thrown: the connection is left
 * outside a transaction, as it was.
 */
export async function beginWithContext(
  run: (text: string) => Promise<unknown>,
  statements: BeginWithContextStatements,
): Promise<void> {
  const rollBack = () => run('ROLLBACK').catch(() => undefined);
  try {
    await run(statements.begin);
    return;
  } catch (error) {
    await rollBack();
    if (!isUndefinedPreparedStatement(error)) throw error;
  }
  try {
    await run(statements.prepareThenBegin);
  } catch (error) {
    await rollBack();
    throw error;
  }
}

function isUndefinedPreparedStatement(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === '26000';
}

/** A short stable name suffix for a statement text. */
export function hash(text: string): string {
  let value = 0;
  for (const char of text) value = (Math.imul(value, 31) + char.charCodeAt(0)) | 0;
  return (value >>> 0).toString(16);
}
