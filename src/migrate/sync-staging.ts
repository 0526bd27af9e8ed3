import { sql, type Transaction } from 'kysely';
import { createStagingTableSql } from '../../migrations/target/staging-table';
import { formatTextArray, quoteIdent, quoteLiteral, quoteQualified } from '../postgres/identifiers';
import { HEADER_COLUMN_NAMES, stagingTableName } from '../staging/header-columns';
import { rowDocumentColumns } from '../staging/row-document';
import type { SourceTable } from './introspect';

/** The audit triggers on every staging table, by the event they capture. */
export const CAPTURE_TRIGGERS = {
  insert: { name: 'capture_insert', transitionTables: 'NEW TABLE AS new_rows' },
  update: {
    name: 'capture_update',
    transitionTables: 'OLD TABLE AS old_rows NEW TABLE AS new_rows',
  },
} as const;

/** Names of the audit triggers (to disable them for a benchmark, say). */
export const CAPTURE_TRIGGER_NAMES: readonly string[] = Object.values(CAPTURE_TRIGGERS).map(
  (trigger) => trigger.name,
);

/** What one sync changed; empty arrays mean nothing was needed. */
export interface SyncResult {
  /** `schema.table` of tables whose staging table was created by this run. */
  readonly createdStagingTables: readonly string[];
  /** `schema.table` → columns added to its staging table. */
  readonly addedColumns: Readonly<Record<string, readonly string[]>>;
  /** Tables whose trigger was created or re-created (new table, changed ignore list). */
  readonly triggersInstalled: readonly string[];
}

/**
 * Brings every staging table in line with its source table and the config: creates the
 * staging tables of newly configured tables, adds source columns that appeared since a
 * table was created (history rows are JSON, so they keep working), and (re)installs the
 * audit triggers when their arguments changed. Does nothing when everything is current,
 * so re-running is a no-op. Runs in the caller's transaction, which holds the migrate lock.
 */
export async function syncStagingTables(
  trx: Transaction<unknown>,
  auditSchema: string,
  tables: readonly SourceTable[],
): Promise<SyncResult> {
  const createdStagingTables: string[] = [];
  const addedColumns: Record<string, string[]> = {};
  const triggersInstalled: string[] = [];
  for (const table of tables) {
    const label = `${table.schema}.${table.table}`;
    if (await createMissingStagingTable(trx, auditSchema, table)) createdStagingTables.push(label);
    const added = await addMissingColumns(trx, auditSchema, table);
    if (added.length > 0) addedColumns[label] = added;
    if (await ensureCaptureTrigger(trx, auditSchema, table)) triggersInstalled.push(label);
    await upsertRegistry(trx, auditSchema, table);
  }
  return { createdStagingTables, addedColumns, triggersInstalled };
}

async function createMissingStagingTable(
  trx: Transaction<unknown>,
  auditSchema: string,
  table: SourceTable,
): Promise<boolean> {
  const staging = quoteQualified(auditSchema, stagingTableName(table.table));
  const { rows } = await sql<{ exists: boolean }>`
    SELECT to_regclass(${staging}) IS NOT NULL AS exists`.execute(trx);
  if (rows[0]?.exists) return false;
  await sql.raw(createStagingTableSql(auditSchema, table)).execute(trx);
  return true;
}

async function addMissingColumns(
  trx: Transaction<unknown>,
  auditSchema: string,
  table: SourceTable,
): Promise<string[]> {
  const staging = stagingTableName(table.table);
  const { rows } = await sql<{ name: string }>`
    SELECT column_name AS name FROM information_schema.columns
    WHERE table_schema = ${auditSchema} AND table_name = ${staging}`.execute(trx);
  const existing = new Set(rows.map((row) => row.name));
  const missing = table.columns.filter((column) => !existing.has(column.name));
  for (const column of missing) {
    await sql
      .raw(
        `ALTER TABLE ${quoteQualified(auditSchema, staging)} ADD COLUMN ${quoteIdent(column.name)} ${column.type}`,
      )
      .execute(trx);
  }
  return missing.map((column) => column.name);
}

/** The trigger's arguments: see triggers/capture-change.sql. */
export function captureTriggerArguments(table: SourceTable): string[] {
  const exact = rowDocumentColumns(table);
  return [
    table.schema,
    table.table,
    formatTextArray(table.primaryKey),
    formatTextArray([...HEADER_COLUMN_NAMES, ...table.ignoreColumns]),
    formatTextArray(exact.json),
    formatTextArray(exact.float),
  ];
}

async function ensureCaptureTrigger(
  trx: Transaction<unknown>,
  auditSchema: string,
  table: SourceTable,
): Promise<boolean> {
  const staging = quoteQualified(auditSchema, stagingTableName(table.table));
  const wanted = captureTriggerArguments(table);
  const { rows } = await sql<{ args: Buffer }>`
    SELECT tgargs AS args FROM pg_catalog.pg_trigger
    WHERE tgrelid = ${staging}::regclass AND tgname = ANY(${CAPTURE_TRIGGER_NAMES})`.execute(trx);
  const current = rows.filter(
    (row) => decodeTriggerArgs(row.args).join('\u0000') === wanted.join('\u0000'),
  );
  if (current.length === CAPTURE_TRIGGER_NAMES.length) return false;
  const args = wanted.map(quoteLiteral);
  for (const [event, trigger] of Object.entries(CAPTURE_TRIGGERS)) {
    const name = quoteIdent(trigger.name);
    // Statement-level with transition tables: one set-based audit insert per statement.
    await sql.raw(`DROP TRIGGER IF EXISTS ${name} ON ${staging}`).execute(trx);
    await sql
      .raw(
        `CREATE TRIGGER ${name} AFTER ${event.toUpperCase()} ON ${staging}
         REFERENCING ${trigger.transitionTables} FOR EACH STATEMENT
         EXECUTE FUNCTION ${quoteQualified(auditSchema, trigger.name)}(${args.join(', ')})`,
      )
      .execute(trx);
    // ENABLE ALWAYS: DMS may apply with session_replication_role = replica, which
    // silences ordinary triggers.
    await sql.raw(`ALTER TABLE ${staging} ENABLE ALWAYS TRIGGER ${name}`).execute(trx);
  }
  return true;
}

/** pg_trigger.tgargs holds the arguments NUL-terminated, one after another. */
function decodeTriggerArgs(args: Buffer): string[] {
  const parts = args.toString('utf8').split('\u0000');
  parts.pop();
  return parts;
}

async function upsertRegistry(
  trx: Transaction<unknown>,
  auditSchema: string,
  table: SourceTable,
): Promise<void> {
  const exactNumbers = table.columns
    .filter((column) => column.exactNumber)
    .map((column) => column.name);
  await sql`
    INSERT INTO ${sql.id(auditSchema, 'audited_table')}
      (source_schema, source_table, staging_table, key_columns, ignore_columns, exact_number_columns)
    VALUES (${table.schema}, ${table.table}, ${quoteQualified(auditSchema, stagingTableName(table.table))}::regclass,
            ${[...table.primaryKey]}::text[], ${[...table.ignoreColumns]}::text[], ${exactNumbers}::text[])
    ON CONFLICT (source_schema, source_table) DO UPDATE SET
      staging_table = excluded.staging_table, key_columns = excluded.key_columns,
      ignore_columns = excluded.ignore_columns, exact_number_columns = excluded.exact_number_columns
    WHERE (audited_table.staging_table, audited_table.key_columns, audited_table.ignore_columns,
           audited_table.exact_number_columns)
      IS DISTINCT FROM (excluded.staging_table, excluded.key_columns, excluded.ignore_columns,
                        excluded.exact_number_columns)`.execute(trx);
}
