import { sql, type ColumnType, type Kysely, type Transaction } from 'kysely';
import type pg from 'pg';
import { AUDIT_CONTEXT_COLUMNS, type AuditContextField } from '../config';
import { stringifyRowJson } from '../history/row-json';
import { quoteIdent, quoteQualified } from '../postgres/identifiers';
import { beginWithContext, beginWithContextStatements, hash } from './begin-with-context';
import { AuditContextError } from './errors';
import { transactionBegunWith } from './kysely-transaction';

export { AuditContextError } from './errors';

/** Who made a source transaction's changes, and why. Every field is optional unless required. */
export interface AuditContext {
  /** The acting user (an application user id, an email, a service name). */
  readonly actor?: string | null;
  /** The user the actor acts for (support staff acting for a customer). */
  readonly onBehalfOf?: string | null;
  /** The request or trace id that caused the transaction. */
  readonly requestId?: string | null;
  /** The client application or component (`web`, `billing-job`). */
  readonly client?: string | null;
  /** Why (a ticket, a comment the user typed). */
  readonly reason?: string | null;
  /** Anything else, as a JSON object. */
  readonly metadata?: Readonly<Record<string, unknown>> | null;
}

/** An {@link AuditContext} with `Required` fields present (the config's `sourceContext.require`). */
export type AuditContextWith<Required extends AuditContextField> = AuditContext & {
  readonly [Field in Required]-?: string;
};

/** The config's `sourceContext` as the helpers need it (a config object or its input form). */
export interface SourceContextLike {
  readonly sourceContext?:
    | {
        readonly schema?: string;
        readonly table?: string;
        readonly require?: readonly AuditContextField[];
      }
    | undefined;
}

/**
 * The fields a config requires, as a type: literal when the config is a literal
 * (`as const`, `satisfies`, or written inline), none when only known at run time (a
 * loaded JSON file; the helpers still check at run time).
 */
export type RequiredContextFields<Config extends SourceContextLike> = Config extends {
  readonly sourceContext?: { readonly require?: infer Fields };
}
  ? Fields extends readonly AuditContextField[]
    ? AuditContextField[] extends Fields
      ? never
      : Fields[number]
    : never
  : never;

/**
 * A row of the source context table as a kysely table type: the columns a config's
 * `require` names are `string`, the other text fields `string | null`. `transaction_id`
 * (a `bigint`, which pg returns as text) and `recorded_at` are the table's defaults and
 * cannot be inserted; no column can be updated (the table's guard refuses it from a
 * later transaction). Write rows with the helpers; use this type to read them.
 *
 * @example
 * ```ts
 * interface SourceDb {
 *   'audit_context.transaction_context': AuditContextRowFor<typeof config>;
 * }
 * const rows = await db.selectFrom('audit_context.transaction_context').selectAll().execute();
 * ```
 */
export type AuditContextRow<Required extends AuditContextField = never> = {
  readonly transaction_id: ColumnType<string, never, never>;
  readonly metadata: ColumnType<Record<string, unknown> | null, string | null | undefined, never>;
  readonly recorded_at: ColumnType<Date, never, never>;
} & {
  readonly [
    Field in AuditContextField as (typeof AUDIT_CONTEXT_COLUMNS)[Field]
  ]: Field extends Required
    ? ColumnType<string, string, never>
    : ColumnType<string | null, string | null | undefined, never>;
};

/** {@link AuditContextRow} for a config: its `require`d fields are `string`. */
export type AuditContextRowFor<Config extends SourceContextLike> = AuditContextRow<
  RequiredContextFields<Config>
>;

/** The helpers bound to one config's context table; see {@link auditContext}. */
export interface AuditContextWriter<Required extends AuditContextField> {
  /**
   * Runs `work` in a kysely transaction that carries `context`: the context row is
   * written first, in the same transaction, in the same round trip as its `BEGIN` (see
   * {@link beginWithAuditContext}), so it costs the application no extra wait. `work`
   * gets a transaction that behaves as `db.transaction()`'s (committed when `work`
   * resolves, rolled back when it throws). Given a transaction (`db.isTransaction`), it
   * writes the row there (one more statement) and runs `work` in it without opening another.
   */
  withAuditContext<DB, T>(
    db: Kysely<DB> | Transaction<DB>,
    context: AuditContextWith<Required>,
    work: (trx: Transaction<DB>) => Promise<T>,
  ): Promise<T>;
  /**
   * Writes the context row of the `pg` client's current transaction (call it after
   * `BEGIN`; a client outside a transaction is refused, as the row would describe a
   * transaction of its own).
   */
  setAuditContext(client: pg.ClientBase, context: AuditContextWith<Required>): Promise<void>;
  /**
   * Starts a transaction on the `pg` client that carries `context`: `BEGIN` and the
   * context row go to the server as one query (one round trip, so setting context costs
   * about what the row's insert costs the server, not a wait), with the values quoted as
   * SQL literals, never pasted. Use it in place of `BEGIN`; end the transaction with
   * `COMMIT` or `ROLLBACK` as usual. If the context row fails (a missing grant), the
   * transaction is rolled back and the error thrown. A client already in a transaction
   * is refused: use {@link setAuditContext} there.
   *
   * @example
   * ```ts
   * const client = await pool.connect();
   * let failed = false;
   * try {
   *   await beginWithAuditContext(client, { actor: 'alice', reason: 'TICKET-7' });
   *   await client.query('UPDATE items SET price = 9.50 WHERE id = 42');
   *   await client.query('COMMIT');
   * } catch (error) {
   *   failed = true;
   *   await client.query('ROLLBACK').catch(() => undefined);
   *   throw error;
   * } finally {
   *   client.release(failed); // a connection the server ended is not handed out again
   * }
   * ```
   */
  beginWithAuditContext(client: pg.ClientBase, context: AuditContextWith<Required>): Promise<void>;
}

const FIELDS = Object.keys(AUDIT_CONTEXT_COLUMNS) as AuditContextField[];

/**
 * The application helpers for a config with `sourceContext`: one INSERT per transaction
 * into the source context table, with the transaction's own id; `withAuditContext` and
 * `beginWithAuditContext` send it with the transaction's `BEGIN`, in one round trip.
 * Transactions without context are audited as before (their versions carry `context: null`).
 *
 * @example
 * ```ts
 * const config = { tables: [...], sourceContext: { require: ['actor'] } } as const;
 * const { withAuditContext, beginWithAuditContext, setAuditContext } = auditContext(config);
 *
 * // kysely
 * await withAuditContext(db, { actor: 'alice', reason: 'TICKET-7' }, async (trx) => {
 *   await trx.updateTable('items').set({ price: '9.50' }).where('id', '=', 42).execute();
 * });
 *
 * // pg: BEGIN and the context in one round trip
 * await beginWithAuditContext(client, { actor: 'alice', requestId: req.id });
 * await client.query('UPDATE items SET price = 9.50 WHERE id = 42');
 * await client.query('COMMIT');
 *
 * // pg, inside a transaction already open
 * await setAuditContext(client, { actor: 'alice', requestId: req.id });
 * ```
 */
export function auditContext<const Config extends SourceContextLike>(
  config: Config,
): AuditContextWriter<RequiredContextFields<Config>> {
  const settings = config.sourceContext;
  if (settings === undefined) {
    throw new AuditContextError(
      'the config has no "sourceContext": add it and run audit-trail migrate --source-context',
      { code: 'SOURCE_CONTEXT_NOT_CONFIGURED', kind: 'usage' },
    );
  }
  const schema = settings.schema ?? 'audit_context';
  const table = settings.table ?? 'transaction_context';
  const required = settings.require ?? [];
  const { text, columns } = contextInsertStatement(schema, table);
  // A named statement: parsed and planned once per connection.
  const statementName = `audit_trail_context_${hash(text)}`;
  const valuesOf = (context: AuditContext): (string | null)[] => {
    checkContext(context, required);
    const metadata = context.metadata;
    const metadataText =
      metadata === undefined || metadata === null ? null : stringifyRowJson(metadata);
    if (metadataText !== null) checkStorableText(metadataText, 'metadata');
    return [
      ...FIELDS.map((field) => (context[field] as string | null | undefined) ?? null),
      metadataText,
    ];
  };
  const refuseSecond = (inserted: number | null): void => {
    if (inserted === 0) {
      throw new AuditContextError(
        'audit context is already set in this transaction (one context per transaction)',
        { code: 'AUDIT_CONTEXT_ALREADY_SET', kind: 'usage' },
      );
    }
  };
  const insertKysely = (values: readonly (string | null)[]) =>
    sql`INSERT INTO ${sql.id(schema, table)} (${sql.join(columns.map((column) => sql.id(column)))})
        VALUES (${sql.join(values.slice(0, -1))}, ${values.at(-1)}::jsonb) ON CONFLICT DO NOTHING`;
  const writeKysely = async (db: Kysely<unknown>, context: AuditContext): Promise<void> => {
    const result = await insertKysely(valuesOf(context)).execute(db);
    refuseSecond(Number(result.numAffectedRows ?? 0n));
  };
  const beginStatements = (context: AuditContext) =>
    beginWithContextStatements(schema, table, valuesOf(context));
  async function withAuditContext<DB, T>(
    db: Kysely<DB> | Transaction<DB>,
    context: AuditContext,
    work: (trx: Transaction<DB>) => Promise<T>,
  ): Promise<T> {
    if (db.isTransaction) {
      await writeKysely(db as unknown as Kysely<unknown>, context);
      return work(db as Transaction<DB>);
    }
    const statements = beginStatements(context);
    return transactionBegunWith(
      db,
      (run) => beginWithContext(run, statements),
      work,
      (trx) => writeKysely(trx as unknown as Kysely<unknown>, context),
    );
  }
  return {
    withAuditContext,
    async beginWithAuditContext(client, context) {
      const statements = beginStatements(context);
      if (transactionStatus(client, 'beginWithAuditContext') !== 'I') {
        throw new AuditContextError(
          'beginWithAuditContext starts a transaction: this client is already in one (use setAuditContext there)',
          { code: 'AUDIT_CONTEXT_IN_TRANSACTION', kind: 'usage' },
        );
      }
      await beginWithContext((text) => client.query(text), statements);
    },
    async setAuditContext(client, context) {
      const values = valuesOf(context);
      if (transactionStatus(client, 'setAuditContext') === 'I') {
        throw new AuditContextError(
          'setAuditContext must run inside a transaction (after BEGIN): outside one the context row would be a transaction of its own',
          { code: 'AUDIT_CONTEXT_NO_TRANSACTION', kind: 'usage' },
        );
      }
      const result = await client.query({ name: statementName, text, values });
      refuseSecond(result.rowCount);
    },
  };
}

/** The client's transaction status ('I' idle, 'T' in a transaction, 'E' failed); refuses a pool. */
function transactionStatus(client: pg.ClientBase, helper: string): string | null {
  if (typeof client.getTransactionStatus !== 'function') {
    throw new AuditContextError(
      `${helper} needs a pg client (pool.connect()), not a pool: each pool query may run on another connection`,
      { code: 'AUDIT_CONTEXT_NO_TRANSACTION', kind: 'usage' },
    );
  }
  return client.getTransactionStatus();
}

/**
 * The one statement the helpers run per transaction: `$1`..`$5` are the text fields in
 * {@link AUDIT_CONTEXT_COLUMNS} order, `$6` the metadata JSON. ON CONFLICT DO NOTHING: a
 * second context in one transaction is reported without aborting the application's
 * transaction (and INSERT privilege is enough for it). Exported for the benchmark.
 */
export function contextInsertStatement(
  schema: string,
  table: string,
): { text: string; columns: string[] } {
  const columns = [...FIELDS.map((field) => AUDIT_CONTEXT_COLUMNS[field]), 'metadata'];
  const text =
    `INSERT INTO ${quoteQualified(schema, table)} (${columns.map(quoteIdent).join(', ')}) ` +
    `VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')}::jsonb) ON CONFLICT DO NOTHING`;
  return { text, columns };
}

/** Half of a surrogate pair (UTF-8 encoding would replace it with U+FFFD). */
const UNPAIRED_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Refuses text PostgreSQL cannot store exactly: a NUL (text cannot hold one) or a lone
 * surrogate (it would arrive as U+FFFD). Anything else, quotes and backslashes
 * included, is stored as given.
 */
function checkStorableText(value: string, what: string): void {
  if (value.includes('\u0000') || UNPAIRED_SURROGATE.test(value)) {
    throw new AuditContextError(
      `audit context ${what} contains a NUL character or an unpaired surrogate, which PostgreSQL cannot store as given`,
      { code: 'AUDIT_CONTEXT_INVALID', kind: 'usage' },
    );
  }
}

function checkContext(context: AuditContext, required: readonly AuditContextField[]): void {
  if (typeof context !== 'object' || context === null) {
    throw new AuditContextError('the audit context must be an object', {
      code: 'AUDIT_CONTEXT_INVALID',
      kind: 'usage',
    });
  }
  for (const field of FIELDS) {
    const value = context[field];
    if (value !== undefined && value !== null && typeof value !== 'string') {
      throw new AuditContextError(`audit context ${field} must be a string`, {
        code: 'AUDIT_CONTEXT_INVALID',
        kind: 'usage',
      });
    }
    if (typeof value === 'string') checkStorableText(value, field);
  }
  const missing = required.filter((field) => (context[field] ?? '') === '');
  if (missing.length > 0) {
    throw new AuditContextError(
      `audit context is missing ${missing.join(', ')} (required by sourceContext.require)`,
      { code: 'AUDIT_CONTEXT_INVALID', kind: 'usage' },
    );
  }
  const metadata = context.metadata;
  if (
    metadata !== undefined &&
    metadata !== null &&
    (typeof metadata !== 'object' || Array.isArray(metadata))
  ) {
    throw new AuditContextError('audit context metadata must be a JSON object', {
      code: 'AUDIT_CONTEXT_INVALID',
      kind: 'usage',
    });
  }
}
