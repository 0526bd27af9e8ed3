import { sql, type Kysely } from 'kysely';
import {
  AUDIT_CONTEXT_COLUMNS,
  CONTEXT_TRANSACTION_COLUMN,
  type AuditTrailConfig,
  type SourceContextConfig,
} from '../config';
import { AuditTrailError } from '../errors';

/** What {@link installSourceContext} did. */
export interface SourceContextInstallReport {
  /** `schema.table` of the context table. */
  readonly table: string;
  /** True when this run created the table. */
  readonly created: boolean;
  /** Columns made NOT NULL / nullable by this run (the config's `require` changed). */
  readonly required: readonly string[];
  readonly optional: readonly string[];
  /** Roles granted INSERT by this run's statements (grants are re-issued every run). */
  readonly grantedTo: readonly string[];
}

/** Thrown when the config has no `sourceContext` to install. */
export class SourceContextError extends AuditTrailError {
  override readonly name = 'SourceContextError';
}

/**
 * Creates (or brings in line with the config) the source context table: one row per
 * source transaction that sets context, keyed by the transaction's own id.
 *
 * - `transaction_id bigint` defaults to `txid_current()` and a guard trigger refuses any
 *   other value, so a row can only describe the transaction that wrote it, and (as the
 *   primary key) at most once; the guard refuses an UPDATE by any later transaction, so
 *   context rows cannot be rewritten (DELETE for retention still works).
 * - the text fields the config `require`s are NOT NULL; the guard refuses a `metadata`
 *   that is not a JSON object.
 * - the guard is a row trigger (`ENABLE ALWAYS`, so replica mode does not skip it), not
 *   CHECK constraints: PostgreSQL re-reads and re-plans a table's CHECK expressions in
 *   every INSERT statement, which cost the application more than the row's insert
 *   itself; the trigger's plan stays cached per connection. A table with the CHECKs of
 *   an earlier version gets the guard and loses the CHECKs, in one transaction.
 * - INSERT (and USAGE on the schema) is granted to `grantInsertTo` only; nothing to PUBLIC.
 *
 * The target never trusts the `transaction_id` column: history joins context by the
 * change headers (source xid and commit time) DMS or the engine attach to the row.
 */
export async function installSourceContext(
  db: Kysely<any>, // eslint-disable-line @typescript-eslint/no-explicit-any -- the application's typed db too
  config: AuditTrailConfig,
): Promise<SourceContextInstallReport> {
  const source = db as Kysely<unknown>;
  const context = config.sourceContext;
  if (context === undefined) {
    throw new SourceContextError(
      '--source-context: the config has no "sourceContext" section (add "sourceContext": {} for the defaults)',
      { code: 'SOURCE_CONTEXT_NOT_CONFIGURED', kind: 'usage' },
    );
  }
  return source.transaction().execute(async (trx) => {
    const table = sql.id(context.schema, context.table);
    await sql`CREATE SCHEMA IF NOT EXISTS ${sql.id(context.schema)}`.execute(trx);
    const exists = await tableExists(trx, context);
    if (!exists) await createContextTable(trx, context);
    await installGuard(trx, context);
    const { required, optional } = await alignRequired(trx, context);
    await sql`REVOKE ALL ON ${table} FROM PUBLIC`.execute(trx);
    for (const role of context.grantInsertTo) {
      await sql`GRANT USAGE ON SCHEMA ${sql.id(context.schema)} TO ${sql.id(role)}`.execute(trx);
      await sql`GRANT INSERT ON ${table} TO ${sql.id(role)}`.execute(trx);
    }
    return {
      table: `${context.schema}.${context.table}`,
      created: !exists,
      required,
      optional,
      grantedTo: context.grantInsertTo,
    };
  });
}

async function tableExists(db: Kysely<unknown>, context: SourceContextConfig): Promise<boolean> {
  const { rows } = await sql<{ found: boolean }>`
    SELECT pg_catalog.to_regclass(${`${quote(context.schema)}.${quote(context.table)}`}) IS NOT NULL AS found`.execute(
    db,
  );
  return rows[0]?.found === true;
}

function quote(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

async function createContextTable(
  db: Kysely<unknown>,
  context: SourceContextConfig,
): Promise<void> {
  const textColumns = Object.values(AUDIT_CONTEXT_COLUMNS).map(
    (column) => sql`${sql.id(column)} text`,
  );
  await sql`CREATE TABLE ${sql.id(context.schema, context.table)} (
    ${sql.id(CONTEXT_TRANSACTION_COLUMN)} bigint PRIMARY KEY DEFAULT pg_catalog.txid_current(),
    ${sql.join(textColumns, sql`, `)},
    metadata jsonb,
    recorded_at timestamptz NOT NULL DEFAULT pg_catalog.now()
  )`.execute(db);
  await sql`COMMENT ON TABLE ${sql.id(context.schema, context.table)} IS ${sql.lit(
    'audit-trail: who and why, one row per source transaction that sets context (written by withAuditContext / setAuditContext). Audited: changes travel to the audit log with the rows they describe.',
  )}`.execute(db);
}

/** The guard's trigger, and the trigger function's name in the context schema. */
export const CONTEXT_GUARD = 'transaction_context_guard';
/** The constraint names the guard reports (those of the CHECKs it replaced). */
const OWN_TRANSACTION = 'transaction_context_own_transaction';
const METADATA_OBJECT = 'transaction_context_metadata_object';

/**
 * Installs (or replaces) the guard trigger and drops the CHECK constraints it replaces.
 * Its errors are check violations (SQLSTATE 23514) naming those constraints, as the
 * CHECKs' were. Every name in the body is qualified: it runs with the inserting role's
 * search_path. Trigger functions need no EXECUTE privilege to fire, so PUBLIC has none.
 */
async function installGuard(db: Kysely<unknown>, context: SourceContextConfig): Promise<void> {
  const fn = sql.id(context.schema, CONTEXT_GUARD);
  const table = sql.id(context.schema, context.table);
  const id = sql.id(CONTEXT_TRANSACTION_COLUMN);
  await sql`CREATE OR REPLACE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $guard$
BEGIN
  IF NEW.${id} IS NULL OR NEW.${id} OPERATOR(pg_catalog.<>) pg_catalog.txid_current() THEN
    RAISE EXCEPTION USING ERRCODE = 'check_violation', CONSTRAINT = ${sql.lit(OWN_TRANSACTION)},
      MESSAGE = pg_catalog.format('%s on %I.%I violates ${sql.raw(OWN_TRANSACTION)}: ${sql.raw(CONTEXT_TRANSACTION_COLUMN)} must be the writing transaction''s own txid_current()',
        TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME);
  END IF;
  -- Nested, not AND: OLD is not assigned in an INSERT trigger.
  IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN
    IF OLD.${id} OPERATOR(pg_catalog.<>) pg_catalog.txid_current() THEN
      RAISE EXCEPTION USING ERRCODE = 'check_violation', CONSTRAINT = ${sql.lit(OWN_TRANSACTION)},
        MESSAGE = pg_catalog.format('%s on %I.%I violates ${sql.raw(OWN_TRANSACTION)}: only the transaction that wrote a context row may update it',
          TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME);
    END IF;
  END IF;
  IF pg_catalog.jsonb_typeof(NEW.metadata) OPERATOR(pg_catalog.<>) 'object' THEN
    RAISE EXCEPTION USING ERRCODE = 'check_violation', CONSTRAINT = ${sql.lit(METADATA_OBJECT)},
      MESSAGE = pg_catalog.format('%s on %I.%I violates ${sql.raw(METADATA_OBJECT)}: metadata must be a JSON object',
        TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME);
  END IF;
  RETURN NEW;
END
$guard$`.execute(db);
  await sql`REVOKE ALL ON FUNCTION ${fn}() FROM PUBLIC`.execute(db);
  await sql`DROP TRIGGER IF EXISTS ${sql.id(CONTEXT_GUARD)} ON ${table}`.execute(db);
  await sql`CREATE TRIGGER ${sql.id(CONTEXT_GUARD)} BEFORE INSERT OR UPDATE ON ${table}
    FOR EACH ROW EXECUTE FUNCTION ${fn}()`.execute(db);
  await sql`ALTER TABLE ${table} ENABLE ALWAYS TRIGGER ${sql.id(CONTEXT_GUARD)}`.execute(db);
  await sql`ALTER TABLE ${table} DROP CONSTRAINT IF EXISTS ${sql.id(OWN_TRANSACTION)},
    DROP CONSTRAINT IF EXISTS ${sql.id(METADATA_OBJECT)}`.execute(db);
}

/** NOT NULL exactly on the required fields' columns; returns what changed. */
async function alignRequired(
  db: Kysely<unknown>,
  context: SourceContextConfig,
): Promise<{ required: string[]; optional: string[] }> {
  // OPERATOR(pg_catalog.=): this runs as the source's administrator on the caller's
  // search_path, and pg_catalog has no oid = regclass, so an operator of that exact
  // signature planted in public would outrank it (test/source-context/planted-functions).
  const { rows } = await sql<{ name: string; not_null: boolean }>`
    SELECT a.attname AS name, a.attnotnull AS not_null
    FROM pg_catalog.pg_attribute a
    WHERE a.attrelid OPERATOR(pg_catalog.=) ${`${quote(context.schema)}.${quote(context.table)}`}::pg_catalog.regclass
      AND a.attnum > 0 AND NOT a.attisdropped`.execute(db);
  const found = new Map(rows.map((row) => [row.name, row.not_null]));
  const required: string[] = [];
  const optional: string[] = [];
  for (const [field, column] of Object.entries(AUDIT_CONTEXT_COLUMNS)) {
    const notNull = found.get(column);
    if (notNull === undefined) {
      throw new SourceContextError(
        `${context.schema}.${context.table} has no column ${column}: it is not the kit's context table (drop or rename it, or choose another "sourceContext.table")`,
        { code: 'SOURCE_CONTEXT_FOREIGN_TABLE', kind: 'finding' },
      );
    }
    const wanted = (context.require as readonly string[]).includes(field);
    if (wanted === notNull) continue;
    const alter = wanted ? sql`SET NOT NULL` : sql`DROP NOT NULL`;
    await sql`ALTER TABLE ${sql.id(context.schema, context.table)} ALTER COLUMN ${sql.id(column)} ${alter}`.execute(
      db,
    );
    (wanted ? required : optional).push(column);
  }
  return { required, optional };
}
