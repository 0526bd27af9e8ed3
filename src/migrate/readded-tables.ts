import { sql, type Transaction } from 'kysely';
import { LOADED_PARTITION_TABLE } from '../engine/partition-loading';
import { LOADED_TABLE_TABLE } from '../engine/position-store';
import { RELOAD_BASELINE_TABLE } from '../staging/reload-baseline';
import type { SourceTable } from './introspect';

/**
 * Prepares the tables this run finds back in the config after a removal (#17 item 19),
 * before their registry entries lose the removal mark. The changes made while a table
 * was out were not captured, so the pipeline reloads it as a new baseline, and history
 * must say exactly what changed meanwhile. The audit log knows what the kit last
 * recorded: each key's newest version. So, whichever pipeline loads it and whether or
 * not its staging table was kept (or dropped with `--drop-staging`):
 *
 * - each key's newest live audit version becomes the table's prior baseline
 *   (`reload_baseline`), replacing any baseline of an earlier re-add never finished;
 * - the kept staging table is emptied, so the load (the engine's, or DMS's with
 *   TargetTablePrepMode DO_NOTHING) writes every row as a full-load INSERT, as into a
 *   new table. The capture trigger records a row as a SNAPSHOT only when it differs from
 *   its key's baseline (or the key has none), and `finish_reload` records a DELETE for
 *   each baseline key the load did not copy (triggers/capture-change.sql);
 * - the local engine's loads of it are forgotten, so the engine reloads it at its next
 *   start, consistently with its stream, and ends the reload in the load's transaction.
 *   With DMS, the first change DMS applies to the table after its load ends it, or the
 *   operator does (`audit-trail reload finish`).
 *
 * Runs in migrate's transaction, after `--drop-staging` dropped what it drops: a crash
 * or a refusal later in the run leaves everything as it was.
 * @returns `schema.table` of the tables added back
 * @example
 * const readded = await prepareReaddedTables(trx, 'audit', tables);
 * // ['public.orders']: the pipeline reloads public.orders against its prior baseline
 */
export async function prepareReaddedTables(
  trx: Transaction<unknown>,
  auditSchema: string,
  tables: readonly SourceTable[],
): Promise<string[]> {
  const { rows } = await sql<{
    source_schema: string;
    source_table: string;
    staging: string | null;
  }>`
    SELECT t.source_schema, t.source_table,
           (SELECT format('%I.%I', n.nspname, k.relname) FROM pg_catalog.pg_class AS k
              JOIN pg_catalog.pg_namespace AS n ON n.oid = k.relnamespace
             WHERE k.oid = t.staging_table) AS staging
    FROM ${sql.id(auditSchema, 'audited_table')} AS t
    JOIN unnest(${tables.map((table) => table.schema)}::text[],
                ${tables.map((table) => table.table)}::text[]) AS c(source_schema, source_table)
      ON (c.source_schema, c.source_table) = (t.source_schema, t.source_table)
    WHERE t.removed_at IS NOT NULL
    ORDER BY t.source_schema, t.source_table`.execute(trx);
  for (const row of rows) {
    const where = sql`source_schema = ${row.source_schema} AND source_table = ${row.source_table}`;
    await sql`DELETE FROM ${sql.id(auditSchema, LOADED_TABLE_TABLE)} WHERE ${where}`.execute(trx);
    await sql`DELETE FROM ${sql.id(auditSchema, LOADED_PARTITION_TABLE)} WHERE ${where}`.execute(
      trx,
    );
    await takePriorBaseline(trx, auditSchema, row.source_schema, row.source_table);
    // Quoted and qualified by format('%I.%I') above. Its rows are in the audit log (and
    // now in the baseline); staging has no delete trigger.
    if (row.staging !== null) await sql`DELETE FROM ${sql.raw(row.staging)}`.execute(trx);
  }
  return rows.map((row) => `${row.source_schema}.${row.source_table}`);
}

/**
 * The table's prior baseline: for each key whose newest audit version (the highest id:
 * ids are allocated in chain order, under the chain lock) is not a DELETE, that
 * version's row as the audit log holds it.
 */
async function takePriorBaseline(
  trx: Transaction<unknown>,
  auditSchema: string,
  schema: string,
  table: string,
): Promise<void> {
  const baseline = sql.id(auditSchema, RELOAD_BASELINE_TABLE);
  await sql`DELETE FROM ${baseline} WHERE source_schema = ${schema} AND source_table = ${table}`.execute(
    trx,
  );
  await sql`
    INSERT INTO ${baseline} (source_schema, source_table, row_key, row_data, row_json_nulls)
    SELECT ${schema}, ${table}, v.row_key, v.new_row, v.new_json_nulls
      FROM (SELECT DISTINCT ON (a.row_key) a.row_key, a.operation, a.new_row, a.new_json_nulls
              FROM ${sql.id(auditSchema, 'audit_log')} AS a
             WHERE a.source_schema = ${schema} AND a.source_table = ${table}
             ORDER BY a.row_key, a.id DESC) AS v
     WHERE v.operation <> 'DELETE'`.execute(trx);
}
