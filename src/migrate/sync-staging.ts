import { sql, type Transaction } from 'kysely';
import { createStagingTableSql } from '../../migrations/target/staging-table';
import { formatTextArray, quoteIdent, quoteLiteral, quoteQualified } from '../postgres/identifiers';
import {
  CHANGE_SEQ_COLUMN,
  HEADER_COLUMN_NAMES,
  stagingTableName,
} from '../staging/header-columns';
import { generatedPlaceholderNames } from '../staging/generated-placeholders';
import { rowDocumentColumns } from '../staging/row-document';
import { SourceTableError, type SourceTable } from './introspect';
import { syncColumns, type DetectedSchemaChange } from './sync-columns';
import { noProgress, type ProgressTask } from '../support/progress';

const CHANGE_SEQ = quoteIdent(CHANGE_SEQ_COLUMN.name);

/**
 * The kit's triggers on every staging table (see triggers/capture-change.sql): the
 * statement-level audit triggers, and the row triggers that let staging take DMS's
 * replays after a task restart and key changes (onto a deleted key too). BEFORE
 * triggers fire in name order; `when` limits a row trigger to the rows it concerns, so
 * every other row costs only that test.
 */
export const STAGING_TRIGGERS: readonly StagingTrigger[] = [
  {
    name: 'capture_insert',
    timing: 'AFTER INSERT',
    level: 'STATEMENT',
    transitionTables: 'NEW TABLE AS new_rows',
  },
  {
    name: 'capture_update',
    timing: 'AFTER UPDATE',
    level: 'STATEMENT',
    transitionTables: 'OLD TABLE AS old_rows NEW TABLE AS new_rows',
  },
  {
    name: 'skip_applied_change',
    timing: `BEFORE UPDATE OF ${CHANGE_SEQ}`,
    level: 'ROW',
    // Change sequences are fixed-width digits: "C" order is their order.
    when: () => `NEW.${CHANGE_SEQ} <> '' AND NEW.${CHANGE_SEQ} COLLATE "C" <= OLD.${CHANGE_SEQ}`,
  },
  {
    name: 'yield_deleted_key',
    timing: 'BEFORE UPDATE',
    level: 'ROW',
    when: keyChanged,
  },
  {
    name: 'keep_moved_key',
    timing: 'AFTER UPDATE',
    level: 'ROW',
    when: keyChanged,
  },
];

/** One kit trigger on staging tables; its function has the same name. */
interface StagingTrigger {
  readonly name: string;
  /** `BEFORE`/`AFTER` and the event (`UPDATE OF column` included). */
  readonly timing: string;
  readonly level: 'ROW' | 'STATEMENT';
  readonly transitionTables?: string;
  /** The trigger's WHEN condition for a table. */
  readonly when?: (table: SourceTable) => string;
}

/** A row trigger's WHEN for an UPDATE that changes the primary key. */
function keyChanged(table: SourceTable): string {
  const key = (side: string) =>
    table.primaryKey.map((column) => `${side}.${quoteIdent(column)}`).join(', ');
  return `ROW(${key('OLD')}) IS DISTINCT FROM ROW(${key('NEW')})`;
}

/** Names of the kit's staging triggers (to disable them for a benchmark, say). */
export const CAPTURE_TRIGGER_NAMES: readonly string[] = STAGING_TRIGGERS.map(
  (trigger) => trigger.name,
);

/** What one sync changed; empty arrays mean nothing was needed. */
export interface SyncResult {
  /** `schema.table` of tables whose staging table was created by this run. */
  readonly createdStagingTables: readonly string[];
  /** Column changes found on the source and applied to staging, in the order applied. */
  readonly schemaChanges: readonly DetectedSchemaChange[];
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
 * `progress` advances by one as each table is done.
 */
export async function syncStagingTables(
  trx: Transaction<unknown>,
  auditSchema: string,
  tables: readonly SourceTable[],
  sourceLsn?: string,
  progress: ProgressTask = noProgress.start('staging tables'),
): Promise<SyncResult> {
  const createdStagingTables: string[] = [];
  const schemaChanges: DetectedSchemaChange[] = [];
  const addedColumns: Record<string, string[]> = {};
  const triggersInstalled: string[] = [];
  for (const table of tables) {
    const label = `${table.schema}.${table.table}`;
    await assertStagingNotTaken(trx, auditSchema, table);
    const created = await createMissingStagingTable(trx, auditSchema, table);
    if (created) createdStagingTables.push(label);
    const changes = await syncColumns(trx, auditSchema, table, created, sourceLsn);
    schemaChanges.push(...changes);
    const added = changes
      .filter((change) => change.change === 'ADD')
      .map((change) => change.column);
    if (added.length > 0) addedColumns[label] = added;
    if (await ensureCaptureTrigger(trx, auditSchema, table)) triggersInstalled.push(label);
    await upsertRegistry(trx, auditSchema, table);
    progress.advance(1);
  }
  return { createdStagingTables, schemaChanges, addedColumns, triggersInstalled };
}

/**
 * A table removed from the config keeps its staging table; a table configured later
 * under the same name in another schema must not write into it.
 */
async function assertStagingNotTaken(
  trx: Transaction<unknown>,
  auditSchema: string,
  table: SourceTable,
): Promise<void> {
  const staging = quoteQualified(auditSchema, stagingTableName(table.table));
  const { rows } = await sql<{ owner: string }>`
    SELECT source_schema || '.' || source_table AS owner
    FROM ${sql.id(auditSchema, 'audited_table')}
    WHERE staging_table = to_regclass(${staging})
      AND (source_schema, source_table) <> (${table.schema}, ${table.table})`.execute(trx);
  const owner = rows[0]?.owner;
  if (owner !== undefined) {
    throw new SourceTableError(
      `tables: ${table.schema}.${table.table} would use the staging table ${staging}, which still holds ` +
        `${owner} (removed from the config); run migrate --drop-staging once to drop it (its history is kept)`,
    );
  }
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

/** The trigger's arguments: see triggers/capture-change.sql. */
export function captureTriggerArguments(table: SourceTable): string[] {
  const exact = rowDocumentColumns(table);
  return [
    table.schema,
    table.table,
    formatTextArray(table.primaryKey),
    formatTextArray([
      ...HEADER_COLUMN_NAMES,
      ...table.ignoreColumns,
      ...generatedPlaceholderNames(table),
    ]),
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
  for (const trigger of STAGING_TRIGGERS) {
    const name = quoteIdent(trigger.name);
    await sql.raw(`DROP TRIGGER IF EXISTS ${name} ON ${staging}`).execute(trx);
    const referencing = trigger.transitionTables ? `REFERENCING ${trigger.transitionTables}` : '';
    const when = trigger.when ? `WHEN (${trigger.when(table)})` : '';
    await sql
      .raw(
        `CREATE TRIGGER ${name} ${trigger.timing} ON ${staging}
         ${referencing} FOR EACH ${trigger.level} ${when}
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
  const keyTypes = table.primaryKey.map(
    (name) => table.columns.find((column) => column.name === name)?.type ?? 'text',
  );
  await sql`
    INSERT INTO ${sql.id(auditSchema, 'audited_table')}
      (source_schema, source_table, staging_table, key_columns, key_types, ignore_columns,
       exact_number_columns, generated_columns)
    VALUES (${table.schema}, ${table.table}, ${quoteQualified(auditSchema, stagingTableName(table.table))}::regclass,
            ${[...table.primaryKey]}::text[], ${keyTypes}::text[], ${[...table.ignoreColumns]}::text[],
            ${exactNumbers}::text[], ${generatedPlaceholderNames(table)}::text[])
    ON CONFLICT (source_schema, source_table) DO UPDATE SET
      staging_table = excluded.staging_table, key_columns = excluded.key_columns,
      key_types = excluded.key_types, ignore_columns = excluded.ignore_columns,
      exact_number_columns = excluded.exact_number_columns,
      generated_columns = excluded.generated_columns, removed_at = NULL
    WHERE (audited_table.staging_table, audited_table.key_columns, audited_table.key_types,
           audited_table.ignore_columns, audited_table.exact_number_columns,
           audited_table.generated_columns, audited_table.removed_at)
      IS DISTINCT FROM (excluded.staging_table, excluded.key_columns, excluded.key_types,
                        excluded.ignore_columns, excluded.exact_number_columns,
                        excluded.generated_columns, NULL)`.execute(trx);
}

/**
 * Marks registered tables the config no longer lists as removed: their staging table,
 * triggers and history stay; the engine and the DMS mapping follow the config, so they
 * stop capturing them. Adding a table back clears the mark ({@link upsertRegistry}).
 * @returns `schema.table` of the tables found removed by this run
 */
export async function markRemovedTables(
  trx: Transaction<unknown>,
  auditSchema: string,
  tables: readonly SourceTable[],
): Promise<string[]> {
  const schemas = tables.map((table) => table.schema);
  const names = tables.map((table) => table.table);
  const { rows } = await sql<{ label: string }>`
    UPDATE ${sql.id(auditSchema, 'audited_table')} AS t SET removed_at = now()
    WHERE t.removed_at IS NULL
      AND NOT EXISTS (
        SELECT FROM unnest(${schemas}::text[], ${names}::text[]) AS c(source_schema, source_table)
        WHERE (c.source_schema, c.source_table) = (t.source_schema, t.source_table))
    RETURNING source_schema || '.' || source_table AS label`.execute(trx);
  return rows.map((row) => row.label).sort();
}

/**
 * Drops the staging table of every table removed from the config (never one that is
 * configured, never history) and records that it is gone.
 * @returns `schema.table` of the tables whose staging table was dropped
 */
export async function dropRemovedStaging(
  trx: Transaction<unknown>,
  auditSchema: string,
): Promise<string[]> {
  const { rows } = await sql<{ source_schema: string; source_table: string; staging: string }>`
    SELECT t.source_schema, t.source_table, c.relname AS staging
    FROM ${sql.id(auditSchema, 'audited_table')} AS t
    JOIN pg_catalog.pg_class AS c ON c.oid = t.staging_table
    WHERE t.removed_at IS NOT NULL
    ORDER BY t.source_schema, t.source_table`.execute(trx);
  for (const row of rows) {
    await sql.raw(`DROP TABLE ${quoteQualified(auditSchema, row.staging)}`).execute(trx);
    await sql`
      UPDATE ${sql.id(auditSchema, 'audited_table')} SET staging_table = NULL
      WHERE source_schema = ${row.source_schema} AND source_table = ${row.source_table}`.execute(
      trx,
    );
  }
  return rows.map((row) => `${row.source_schema}.${row.source_table}`);
}
